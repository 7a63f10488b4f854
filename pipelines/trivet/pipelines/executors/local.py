"""The local executor: a pool of daemon threads in the calling process (the default)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from trivet.errors import ValidationError

__all__ = ["LocalExecutor"]

T = TypeVar("T")


class LocalExecutor:
    """Run steps on up to ``max_parallel`` threads of this process (the default executor).

    Threads suit steps that wait (I/O, databases) and libraries that release the GIL
    (NumPy, pandas, scikit-learn, pyarrow). Worker threads are daemons started on
    demand, so a step that hangs does not keep the process alive; a step that timed
    out is abandoned — Python cannot kill a thread, so it runs on in the background
    and its result is discarded — and a new worker takes its slot.

    Args:
        max_parallel: the most steps running at once (default: CPU count + 4, at most 32).
    """

    in_process = True
    """Attempts run on threads of this process."""

    def __init__(self, max_parallel: int | None = None) -> None:
        if max_parallel is None:
            max_parallel = min(32, (os.cpu_count() or 1) + 4)
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            raise ValidationError(f"max_parallel must be a positive integer, not {max_parallel!r}.")
        self.max_parallel = max_parallel
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._live = 0  # worker threads that count against the cap
        self._idle = 0
        self._pending = 0
        self._abandoned: set[Future[Any]] = set()
        self._closed = False

    def submit(self, fn: Callable[[], T], /) -> Future[T]:
        """Queue ``fn``; a worker thread runs it as soon as one is free."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            self._pending += 1
            spawn = self._pending > self._idle and self._live < self.max_parallel
            if spawn:
                self._live += 1
        self._queue.put((future, fn))
        if spawn:
            threading.Thread(target=self._work, name="trivet-step", daemon=True).start()
        return future

    def abandon(self, future: Future[Any], /) -> None:
        """Stop counting a timed-out attempt's thread against the cap."""
        with self._lock:
            if future.done() or future in self._abandoned:
                return
            self._abandoned.add(future)
            self._live -= 1
            backlog = self._pending > self._idle and self._live < self.max_parallel
            if backlog:
                self._live += 1
        if backlog:
            threading.Thread(target=self._work, name="trivet-step", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                if item is not None:
                    self._pending -= 1
            if item is None:
                with self._lock:
                    self._live -= 1
                return
            future, fn = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # the engine's callables do not raise
                    future.set_exception(exc)
            with self._lock:
                if future in self._abandoned:
                    self._abandoned.discard(future)
                    return  # a replacement took this thread's slot
                if self._closed:
                    self._live -= 1
                    return

    def close(self) -> None:
        """Let idle workers exit; running attempts are not waited for."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = self._idle
        for _ in range(idle):
            self._queue.put(None)
