"""Executors: where step attempts run (local threads today; Dask in a later version)."""

from trivet.pipelines.executors._base import Executor
from trivet.pipelines.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
