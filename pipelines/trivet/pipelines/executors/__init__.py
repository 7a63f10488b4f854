"""Executors: where step attempts run — threads of this process, or a Dask cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trivet.errors import ValidationError
from trivet.pipelines.executors._base import Executor
from trivet.pipelines.executors.dask import DaskExecutor  # light: distributed loads on use
from trivet.pipelines.executors.local import LocalExecutor

if TYPE_CHECKING:
    from trivet.platform.settings import Settings

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "executor_for"]


def executor_for(settings: Settings, max_parallel: int | None = None) -> Executor:
    """Return the executor the workspace's settings name (``[pipelines] executor``).

    ``"local"`` (the default) is a :class:`LocalExecutor`; ``"dask://host:port"`` (or
    ``tcp://``, ``tls://``) a :class:`DaskExecutor` connected to that scheduler, closed
    when its execution ends.

    Raises:
        ValidationError: an executor setting trivet does not know.
    """
    spec = (settings.executor or "local").strip()
    if spec == "local":
        return LocalExecutor(max_parallel)
    if spec.startswith(("dask://", "tcp://", "tls://")):
        executor = DaskExecutor(spec, max_parallel=max_parallel)
        executor._shutdown_on_close = True
        return executor
    raise ValidationError(
        f"The workspace's pipelines executor {spec!r} is not known.",
        hint='set [pipelines] executor (or TRIVET_EXECUTOR) to "local" or '
        '"dask://scheduler-host:8786"',
    )
