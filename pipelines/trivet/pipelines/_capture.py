"""Capture what a step prints and logs, per thread, while an execution runs."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["capturing", "step_output"]

_local = threading.local()
_lock = threading.Lock()
_users = 0
_saved: tuple[TextIO, TextIO] | None = None


class _Router(io.TextIOBase):
    """A stream that writes to the current thread's step buffer, else to ``fallback``."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, text: str) -> int:
        buffer: io.StringIO | None = getattr(_local, "buffer", None)
        if buffer is not None:
            return buffer.write(text)
        return self.fallback.write(text)

    def flush(self) -> None:
        if getattr(_local, "buffer", None) is None:
            self.fallback.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fallback, name)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer: io.StringIO | None = getattr(_local, "buffer", None)
        if buffer is not None:
            try:
                buffer.write(self.format(record) + "\n")
            except Exception:  # a broken log record must not fail the step
                self.handleError(record)
        elif (
            record.levelno >= logging.WARNING
            and logging.lastResort is not None
            and all(h is self for h in logging.getLogger().handlers)
        ):
            # Outside a step, do what Python does when logging is not configured (this
            # handler being the only one): warnings go to stderr.
            logging.lastResort.handle(record)


_handler = _Handler()
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


@contextlib.contextmanager
def capturing() -> Iterator[None]:
    """Route ``print`` and log records of step threads to their buffers (re-entrant)."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = (sys.stdout, sys.stderr)
            sys.stdout = _Router(sys.stdout)
            sys.stderr = _Router(sys.stderr)
            logging.getLogger().addHandler(_handler)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                if isinstance(sys.stdout, _Router):
                    sys.stdout = _saved[0]
                if isinstance(sys.stderr, _Router):
                    sys.stderr = _saved[1]
                logging.getLogger().removeHandler(_handler)
                _saved = None


@contextlib.contextmanager
def step_output() -> Iterator[io.StringIO]:
    """Collect this thread's output into a buffer while the block runs."""
    buffer = io.StringIO()
    _local.buffer = buffer
    try:
        yield buffer
    finally:
        _local.buffer = None
