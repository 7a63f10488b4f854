"""The SQLite online store: one WAL-mode table keyed by (feature group id, record key).

Reads take one primary-key lookup on a ``WITHOUT ROWID`` table through a per-thread
connection (a few microseconds); writes are ``INSERT … ON CONFLICT DO UPDATE … WHERE``
statements (up to 500 rows each) inside a ``BEGIN IMMEDIATE`` transaction, so the
newer-event-time rule holds atomically even with several processes writing.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import Any

from trivet.errors import BackendError, ValidationError
from trivet.featurestore._sqlite import ThreadConnections
from trivet.featurestore.online._base import OnlineBatch, OnlineRow

__all__ = ["SqliteOnlineStore"]

_CHUNK = 500  # keys per IN (...) query, under SQLite's bound-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_records (
    group_id   TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    event_time INTEGER NOT NULL,
    write_time INTEGER NOT NULL,
    payload    BLOB,
    PRIMARY KEY (group_id, key)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO online_records (group_id, key, event_time, write_time, payload)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (group_id, key) DO UPDATE SET
    event_time = excluded.event_time,
    write_time = excluded.write_time,
    payload = excluded.payload
WHERE excluded.event_time > online_records.event_time
   OR (excluded.event_time = online_records.event_time
       AND excluded.write_time >= online_records.write_time)
"""
_ROWS_PER_UPSERT = 500


@functools.cache
def _upsert(rows: int) -> str:
    """The upsert of ``rows`` rows in one statement (SQLite applies them in order)."""
    return _UPSERT.replace("(?, ?, ?, ?, ?)", ", ".join(["(?, ?, ?, ?, ?)"] * rows))


_READ_ONE = (
    "SELECT key, event_time, write_time, payload FROM online_records WHERE group_id = ? AND key = ?"
)
_PAYLOAD_ONE = "SELECT event_time, payload FROM online_records WHERE group_id = ? AND key = ?"
_PAYLOAD_IN = "SELECT key, event_time, payload FROM online_records WHERE group_id = ? AND key IN "
_READ_IN = (
    "SELECT key, event_time, write_time, payload FROM online_records WHERE group_id = ? AND key IN "
)


def _select_in(
    conn: sqlite3.Connection, select: str, group_id: str, keys: Sequence[str]
) -> Iterator[Any]:
    """Run ``select`` ending in ``key IN `` over the distinct keys, ``_CHUNK`` at a time."""
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        yield from conn.execute(f"{select}({','.join('?' * len(chunk))})", (group_id, *chunk))


class SqliteOnlineStore:
    """An :class:`~trivet.featurestore.online.OnlineStore` in one SQLite file.

    Args:
        path: the database file (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = ThreadConnections(
            self.path,
            what="The online store",
            pragmas=["synchronous = NORMAL"],
            failed=lambda exc: BackendError(f"The online store {self.path!r} failed: {exc}."),
        )
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db.get().execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(
                f"The online store {self.path!r} cannot be opened: {exc}.",
                hint="check the path and its permissions (setting featurestore.online_url)",
            ) from exc

    @classmethod
    def from_url(cls, url: str) -> SqliteOnlineStore:
        """Open the store of a ``sqlite:///path`` URL."""
        if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
            raise ValidationError(
                f"{url!r} is not a SQLite online store URL.",
                hint="use sqlite:////absolute/path/online.db",
            )
        return cls(url.removeprefix("sqlite://"))

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({self.path!r})"

    # -- the protocol ------------------------------------------------------------------
    def write(self, group_id: str, rows: Sequence[OnlineRow]) -> None:
        """Upsert rows; per key, the newer ``(event_time, write_time)`` wins (ties: the new).

        One transaction. A batch of 500 rows or more goes 500 rows per ``INSERT``
        statement (a statement per row cost twice the time on a 1M-row batch); an
        :class:`OnlineBatch` is read by column, without an :class:`OnlineRow` per
        record. Keys in sorted order insert fastest (ingest sorts them).
        """
        if not rows:
            return
        params: Iterable[tuple[str, str, int, int, bytes | None]]
        if isinstance(rows, OnlineBatch):
            params = zip(
                repeat(group_id),
                rows.keys,
                rows.event_times,
                repeat(rows.write_time),
                rows.payloads,
            )
        else:
            params = [(group_id, r.key, r.event_time, r.write_time, r.payload) for r in rows]
        with self._db.write() as conn:
            per = min(_ROWS_PER_UPSERT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 5)
            if len(rows) < per or per < 2:  # put_record's one row: the plain statement
                conn.executemany(_UPSERT, params)
                return
            flat = list(chain.from_iterable(params))  # 5 values a row
            whole = len(rows) - len(rows) % per
            step = 5 * per
            conn.executemany(_upsert(per), (flat[i : i + step] for i in range(0, 5 * whole, step)))
            if whole < len(rows):
                conn.execute(_upsert(len(rows) - whole), flat[5 * whole :])

    def read(self, group_id: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        """Return the stored row of each key, in order (None where there is none)."""
        try:
            conn = self._db.get()
            if len(keys) == 1:
                row = conn.execute(_READ_ONE, (group_id, keys[0])).fetchone()
                return [None if row is None else OnlineRow(*row)]
            found = {row[0]: OnlineRow(*row) for row in _select_in(conn, _READ_IN, group_id, keys)}
        except sqlite3.Error as exc:
            raise BackendError(f"The online store {self.path!r} failed: {exc}.") from exc
        return [found.get(k) for k in keys]

    def read_payloads(
        self, group_id: str, keys: Sequence[str]
    ) -> list[tuple[int, bytes | None] | None]:
        """Return each key's ``(event_time, payload)``, in order (None where there is none).

        :meth:`read` without building an :class:`OnlineRow` per key: what the feature
        store's ``get_record`` and ``batch_get_record`` need (a payload of None is a
        tombstone).
        """
        try:
            conn = self._db.get()
            if len(keys) == 1:
                return [conn.execute(_PAYLOAD_ONE, (group_id, keys[0])).fetchone()]
            found = {
                key: (event_time, payload)
                for key, event_time, payload in _select_in(conn, _PAYLOAD_IN, group_id, keys)
            }
        except sqlite3.Error as exc:
            raise BackendError(f"The online store {self.path!r} failed: {exc}.") from exc
        return [found.get(k) for k in keys]

    def delete(self, group_id: str, keys: Sequence[str]) -> None:
        """Remove the keys' rows entirely."""
        if not keys:
            return
        with self._db.write() as conn:
            conn.executemany(
                "DELETE FROM online_records WHERE group_id = ? AND key = ?",
                [(group_id, k) for k in keys],
            )

    def drop(self, group_id: str) -> None:
        """Remove every row of a feature group."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM online_records WHERE group_id = ?", (group_id,))

    def close(self) -> None:
        """Close every thread's connection."""
        self._db.close()
