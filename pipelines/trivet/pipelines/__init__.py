"""trivet.pipelines: Python-defined ML pipelines with caching, conditions and lineage.

>>> from trivet.pipelines import pipeline, step
>>> @step
... def double(x: int) -> int:
...     return 2 * x
>>> @pipeline
... def demo(x: int = 2) -> None:
...     double(double(x))
>>> print(demo.graph())
pipeline demo (2 steps)
  double
  double_2  ← double

Run it with ``Pipelines(session).run(demo)`` (``session.pipelines``), or
``trivet pipelines run FILE.py``. See ``docs/pipelines.md``.
"""

from __future__ import annotations

from trivet.pipelines._expr import Compare, Expr, Get, Logic, Output, ParamRef
from trivet.pipelines._pipelines import Pipelines
from trivet.pipelines._records import (
    Execution,
    ExecutionStatus,
    PipelineInfo,
    StepRun,
    StepStatus,
)
from trivet.pipelines._source import load_pipeline
from trivet.pipelines.cache import CacheExplanation, CacheKey
from trivet.pipelines.dag import Param, ParamSpec, Pipeline, fail, pipeline, when
from trivet.pipelines.errors import (
    ExecutionFailed,
    ExecutionNotFound,
    PipelineDefinitionError,
    StepTimeout,
)
from trivet.pipelines.executors import Executor, LocalExecutor
from trivet.pipelines.step import Step, StepOptions, step

__all__ = [
    "CacheExplanation",
    "CacheKey",
    "Compare",
    "Execution",
    "ExecutionFailed",
    "ExecutionNotFound",
    "ExecutionStatus",
    "Executor",
    "Expr",
    "Get",
    "LocalExecutor",
    "Logic",
    "Output",
    "Param",
    "ParamRef",
    "ParamSpec",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineInfo",
    "Pipelines",
    "Step",
    "StepOptions",
    "StepRun",
    "StepStatus",
    "StepTimeout",
    "fail",
    "load_pipeline",
    "pipeline",
    "step",
    "when",
]
