"""The executor protocol: where step attempts run.

The engine (in the calling thread) decides what runs and records everything; an
executor only runs zero-argument callables and reports through futures. A callable
never raises: it returns the attempt's outcome, error included.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

__all__ = ["Executor"]

T = TypeVar("T")


class Executor(Protocol):
    """Runs step attempts; at most ``max_parallel`` at once."""

    max_parallel: int

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
