"""Running a recorded execution: in the calling thread (``run``) or in the background
(``start``, which returns a :class:`StartedExecution`)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trivet.pipelines._records import ExecutionStatus, StepStatus

if TYPE_CHECKING:
    from trivet.pipelines._engine import Engine
    from trivet.pipelines._records import Execution

__all__ = ["Launch", "StartedExecution"]

log = logging.getLogger("trivet.pipelines")


@dataclass(frozen=True, kw_only=True)
class Launch:
    """An execution recorded as running, with the engine that will run it."""

    engine: Engine
    record: Execution

    def run(self) -> Execution:
        """Run the execution to its end (in this thread) and return it."""
        status = self.engine.run()
        return dataclasses.replace(
            self.record,
            status=status,
            ended_at=self.engine.ended_at,
            error=self.engine.error,
            steps=self.engine.step_runs(),
        )

    def abandon(self, reason: str) -> None:
        """End an execution that will never run: interrupted, its run token revoked."""
        self.engine.executor.close()
        for name, state in self.engine.state.items():
            state.status = StepStatus.INTERRUPTED
            self.engine.dirty.add(name)
        self.engine.flush(status=ExecutionStatus.INTERRUPTED, error=reason)


class StartedExecution:
    """An execution that was recorded and now runs in a background thread.

    Its catalog row exists (status ``running``) from the moment this object does, so
    ``id`` can be handed out at once; progress is read from the catalog
    (:meth:`Pipelines.get_execution`) or awaited with :meth:`wait`.

    The thread is a daemon: if the process ends first, the execution is marked
    ``interrupted`` the next time executions are listed, and can be retried.

    Attributes:
        id: the execution's id.
        pipeline: the pipeline's name.
        project: the project it runs in.
    """

    def __init__(
        self, *, id: str, pipeline: str, project: str, run: Callable[[], Execution]
    ) -> None:
        self.id = id
        self.pipeline = pipeline
        self.project = project
        self._future: Future[Execution] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(run,), name=f"trivet-execution-{id[:8]}", daemon=True
        )

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<StartedExecution {self.id} of {self.pipeline!r} ({state})>"

    def _begin(self) -> None:
        self._thread.start()

    def _run(self, run: Callable[[], Execution]) -> None:
        try:
            self._future.set_result(run())
        except BaseException as exc:  # the engine recorded the execution interrupted
            log.error(
                "execution %s of %r stopped: %s: %s",
                self.id,
                self.pipeline,
                type(exc).__name__,
                exc,
            )
            self._future.set_exception(exc)

    def done(self) -> bool:
        """Return whether the execution has ended (succeeded or not)."""
        return self._future.done()

    def wait(self, timeout: float | None = None) -> Execution:
        """Block until the execution ends and return it.

        Args:
            timeout: the most seconds to wait (None: as long as it takes).

        Raises:
            TimeoutError: it is still running after ``timeout`` seconds.
        """
        return self._future.result(timeout)
