"""The errors trivet.pipelines raises (all under :class:`trivet.errors.TrivetError`)."""

from __future__ import annotations

from trivet.errors import Conflict, NotFound, TrivetError, ValidationError

__all__ = [
    "ExecutionFailed",
    "ExecutionNotFound",
    "PipelineDefinitionError",
    "StepTimeout",
]


class PipelineDefinitionError(ValidationError):
    """A pipeline's definition is invalid: a cycle, a missing input, a duplicate name,
    an unknown or ill-typed parameter. The message names the step and the fix."""


class ExecutionNotFound(NotFound):
    """No execution has that id (or the caller may not see it)."""


class ExecutionFailed(Conflict):
    """Raised by :meth:`Execution.raise_for_status` for an execution that did not succeed."""


class StepTimeout(TrivetError):
    """A step ran longer than its ``timeout``.

    The engine stops waiting for it and marks it failed; the thread that runs it
    cannot be killed and finishes in the background (its result is discarded).
    """

    exit_code = 1
