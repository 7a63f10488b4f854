"""Per-thread connections to one SQLite file, and write transactions that queue.

Shared by the SQLite online store and the write buffer: both keep a WAL-mode file that
several threads and processes read and write.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from trivet.errors import BackendError

__all__ = ["ThreadConnections"]

BUSY_TIMEOUT_S = 60.0

_file_locks: dict[str, threading.Lock] = {}
_file_locks_guard = threading.Lock()


def _file_lock(path: str) -> threading.Lock:
    with _file_locks_guard:
        return _file_locks.setdefault(path, threading.Lock())


class ThreadConnections:
    """One connection per thread to the SQLite file at ``path``, in WAL mode.

    Args:
        path: the database file.
        what: what the file is, for the error after :meth:`close` ("The online store").
        pragmas: run on each new connection after ``journal_mode = WAL``.
        failed: turns a SQLite error inside a write into the caller's BackendError.
    """

    def __init__(
        self,
        path: str,
        *,
        what: str,
        pragmas: Sequence[str],
        failed: Callable[[sqlite3.Error], BackendError],
    ) -> None:
        self.path = path
        self._what = what
        self._pragmas = tuple(pragmas)
        self._failed = failed
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise BackendError(f"{self._what} was closed.")
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode = WAL")
            for pragma in self._pragmas:
                conn.execute(f"PRAGMA {pragma}")
            self._local.conn = conn
            with self._guard:
                self._conns.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction, committed on success, rolled back on error.

        Threads of one process queue on a mutex per file: SQLite's busy handler would
        sleep a millisecond or more each time a write finds another one in progress.
        """
        with _file_lock(self.path):
            conn = self.get()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def close(self) -> None:
        """Close every thread's connection; later use raises BackendError."""
        self._closed = True
        with self._guard:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
