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

from typing import TYPE_CHECKING

# Eager: `step` is also the name of a submodule, which would shadow a lazy attribute.
from trivet.pipelines.step import Step, StepOptions, Uses, step
from trivet.platform.lazy import lazy_names

if TYPE_CHECKING:
    from trivet.pipelines._approval import Approval, approval
    from trivet.pipelines._background import StartedExecution
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
        RemoteStepError,
        StepTimeout,
        WorkerCodeMismatch,
        WorkerLost,
    )
    from trivet.pipelines.executors import DaskExecutor, Executor, LocalExecutor

_LAZY = {
    "Approval": "trivet.pipelines._approval",
    "CacheExplanation": "trivet.pipelines.cache",
    "CacheKey": "trivet.pipelines.cache",
    "Compare": "trivet.pipelines._expr",
    "DaskExecutor": "trivet.pipelines.executors",
    "Execution": "trivet.pipelines._records",
    "ExecutionFailed": "trivet.pipelines.errors",
    "ExecutionNotFound": "trivet.pipelines.errors",
    "ExecutionStatus": "trivet.pipelines._records",
    "Executor": "trivet.pipelines.executors",
    "Expr": "trivet.pipelines._expr",
    "Get": "trivet.pipelines._expr",
    "LocalExecutor": "trivet.pipelines.executors",
    "Logic": "trivet.pipelines._expr",
    "Output": "trivet.pipelines._expr",
    "Param": "trivet.pipelines.dag",
    "ParamRef": "trivet.pipelines._expr",
    "ParamSpec": "trivet.pipelines.dag",
    "Pipeline": "trivet.pipelines.dag",
    "PipelineDefinitionError": "trivet.pipelines.errors",
    "PipelineInfo": "trivet.pipelines._records",
    "Pipelines": "trivet.pipelines._pipelines",
    "RemoteStepError": "trivet.pipelines.errors",
    "StepRun": "trivet.pipelines._records",
    "StepStatus": "trivet.pipelines._records",
    "StartedExecution": "trivet.pipelines._background",
    "StepTimeout": "trivet.pipelines.errors",
    "WorkerCodeMismatch": "trivet.pipelines.errors",
    "WorkerLost": "trivet.pipelines.errors",
    "approval": "trivet.pipelines._approval",
    "fail": "trivet.pipelines.dag",
    "load_pipeline": "trivet.pipelines._source",
    "pipeline": "trivet.pipelines.dag",
    "when": "trivet.pipelines.dag",
}

__all__ = [
    "Approval",
    "CacheExplanation",
    "CacheKey",
    "Compare",
    "DaskExecutor",
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
    "RemoteStepError",
    "StartedExecution",
    "Step",
    "StepOptions",
    "StepRun",
    "StepStatus",
    "StepTimeout",
    "Uses",
    "WorkerCodeMismatch",
    "WorkerLost",
    "approval",
    "fail",
    "load_pipeline",
    "pipeline",
    "step",
    "when",
]


# Names load on first use, so `import trivet`, `trivet --help` and the parts' CLIs stay
# fast: heavy dependencies load with the command that needs them.
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
