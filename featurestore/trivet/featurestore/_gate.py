"""A write gate: writes pass together, an erasure waits for them and holds them off.

A write reaches the offline side (the buffer, or the Delta table) before the online
store. An erasure (``delete_record(hard=True)``) that ran between those two steps of a
write of the same record would erase it offline and then see it written online again.
Writes hold the gate *shared* across both steps; an erasure holds it *exclusive*, so it
runs between writes, never inside one. The gate is per workspace buffer, for every
:class:`FeatureStore` of this process; writers in other processes are not held (see
``docs/featurestore.md``, "Deletes and GDPR").
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["WriteGate", "gate_for"]


class WriteGate:
    """A readers-writer lock where writes are the readers and an erasure the writer.

    An erasure waiting keeps new writes out, so a steady stream of writes cannot
    starve it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._writes = 0
        self._erasing = False
        self._waiting = 0

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """Hold the gate for one write (many at once)."""
        with self._cond:
            while self._erasing or self._waiting:
                self._cond.wait()
            self._writes += 1
        try:
            yield
        finally:
            with self._cond:
                self._writes -= 1
                if self._writes == 0:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def erase(self) -> Iterator[None]:
        """Hold the gate alone: no write is between its offline and online steps."""
        with self._cond:
            self._waiting += 1
            try:
                while self._erasing or self._writes:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._erasing = True
        try:
            yield
        finally:
            with self._cond:
                self._erasing = False
                self._cond.notify_all()


_gates: dict[str, WriteGate] = {}
_lock = threading.Lock()


def gate_for(key: str) -> WriteGate:
    """Return the process's gate for a workspace (its buffer's path)."""
    with _lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = WriteGate()
        return gate
