"""The executor protocol: where step attempts run.

The engine (in the calling thread) decides what runs and records everything; an
executor only runs zero-argument callables and reports through futures. A callable
never raises: it returns the attempt's outcome, error included.

An executor whose ``in_process`` is False runs attempts in other processes: the engine
then submits self-contained, picklable
:class:`~trivet.pipelines.executors._attempt.RemoteAttempt` objects (the step by
reference, its inputs as artifact digests, the run token) instead of closures over
itself.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

__all__ = ["Executor"]

T = TypeVar("T")


class Executor(Protocol):
    """Runs step attempts; at most ``max_parallel`` of an execution at once (None: the
    executor's own limit)."""

    @property
    def max_parallel(self) -> int | None:
        """The most attempts of one execution running at once (None: no cap of its own)."""
        ...

    @property
    def in_process(self) -> bool:
        """True: attempts run in this process (they may share the engine's objects)."""
        ...

    def submit(self, fn: Callable[[], T], /) -> Future[T]:
        """Start ``fn`` (when a slot is free); return a future of its result."""
        ...

    def abandon(self, future: Future[Any], /) -> None:
        """Give up on an attempt that timed out: its slot is freed for other attempts,
        whether or not its work can be stopped."""
        ...

    def close(self) -> None:
        """Release the executor's workers (attempts still running are not waited for)."""
        ...
