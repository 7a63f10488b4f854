"""The errors trivet.pipelines raises (all under :class:`trivet.errors.TrivetError`)."""

from __future__ import annotations

from trivet.errors import Conflict, NotFound, TrivetError, ValidationError

__all__ = [
    "ExecutionFailed",
    "ExecutionNotFound",
    "PipelineDefinitionError",
    "RemoteStepError",
    "StepTimeout",
    "WorkerCodeMismatch",
    "WorkerLost",
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


class WorkerLost(TrivetError):
    """The worker process running a step died (on a Dask cluster: the scheduler gave up
    rerunning the step after ``distributed.scheduler.allowed-failures`` worker deaths).

    It counts as a failed attempt: the step's ``retries`` apply (it is an
    ``Exception``, so the default ``retry_on`` retries it).
    """


class WorkerCodeMismatch(Conflict):
    """A worker cannot run a step's code as the client has it: the step's module does
    not import there, or its code, a helper it reaches, a package version or the Python
    version differs — so the client's cache key would not describe the result."""


class RemoteStepError(TrivetError):
    """A step failed on a worker with an exception that could not be sent back as
    itself (it does not pickle); the message keeps its type and text, the step's record
    its traceback."""
