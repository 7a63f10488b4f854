"""The durable buffer behind ``put_record`` and soft ``delete_record``: micro-batches.

One Delta commit per record is slow (a log entry, a parquet file and a table reload
each: tens of milliseconds) and leaves thousands of tiny files. So, as SageMaker
Feature Store does, single-record writes land in a buffer first and reach the offline
table in micro-batches.

**The contract.** ``put_record`` returns (the write is *acknowledged*) only after

1. the record is validated and authorized, as before;
2. its row is committed to the buffer — a SQLite database in WAL mode with
   ``synchronous = FULL`` at ``<workspace>/buffer/records.db``: the commit is on disk
   (fsynced) before the call goes on, so a process killed at any later moment, or a
   power cut, loses nothing acknowledged;
3. it is written to the online store (newer event time wins, as for ``ingest``), so
   ``get_record`` sees it at once.

A buffered row then reaches the offline table exactly once, in a micro-batch, when
the group holds ``flush_rows`` unflushed rows (by count), when its oldest unflushed
row is ``flush_seconds`` old (by age: a background thread), when a reader of the
offline table asks (``offline_table``, ``build_dataset``, ``latest_rows``,
``statistics``, ``sql`` flush the groups they read first), on ``close()`` and at
interpreter exit, on ``flush()``, and, after a crash, when any process next opens
the buffer.

**Exactly once.** A flush takes the workspace's flush lock (a second SQLite file,
locked exclusively; the lock dies with its process), then:

1. *claims* a micro-batch: one buffer transaction gives the group's unflushed rows a
   new batch id (a sha256 hex string). From now on that batch's rows are fixed;
2. appends them to the Delta table in one commit carrying the app transaction
   ``trivet-batch-<id>`` — the same idempotency ``ingest`` uses: if the table has seen
   that transaction (a flush that died after its commit), nothing is appended again;
3. re-applies the rows to the online store (a no-op unless a writer died between its
   buffer commit and its online write);
4. records the batch in the catalog (``feature_batches``) and audits it, in one
   catalog transaction: one audit row per write, naming its principal, its id
   (``put_record`` returns it as ``batch_id``) and write time — appended together
   (:func:`trivet.platform.audit.append_many`), a few microseconds each;
5. deletes the batch's rows from the buffer.

A process killed anywhere in 1–5 leaves a claimed batch; the next flush completes it
from the step it reached, and Delta's app transaction keeps step 2 from writing twice.
Rows keep their own ``__write_time`` (the time of the ``put_record`` call, as online),
so a training set breaks ties exactly as the online store did.

**Readers flush; they do not merge.** Readers of the offline table flush the groups
they read before planning the read, rather than merging the buffer into each read.
Every reader (DuckDB over the Delta files, the point-in-time join, SQL with
``as_of``, Spark outside trivet) then sees one source with one meaning of a version;
a merge would need a second code path in each, and an ``as_of`` read could not say
which buffered rows "had been written". The cost is one Delta commit on a read that
finds unflushed rows, and a ~10 µs check on one that does not.

The buffer file is private to trivet; hard deletes scrub it (``secure_delete`` and a
WAL truncation), so an erased record's values do not linger in free pages.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from trivet.errors import BackendError
from trivet.featurestore._codec import from_us
from trivet.featurestore._sqlite import ThreadConnections
from trivet.featurestore.online._base import OnlineRow

if TYPE_CHECKING:
    import pyarrow as pa

    from trivet.featurestore.definitions import FeatureGroup
    from trivet.featurestore.store import FeatureStore

__all__ = ["BufferedRow", "Pending", "RecordBuffer", "Writer", "flush_groups"]

log = logging.getLogger("trivet.featurestore.buffer")

_LOCK_WAIT_S = 600.0  # a flush holding the lock commits one micro-batch at a time
_CLAIM_LIMIT = 50_000  # rows per micro-batch at most

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS buffered (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id     TEXT    NOT NULL,
        batch        TEXT,
        key          TEXT    NOT NULL,
        event_time   INTEGER NOT NULL,
        write_time   INTEGER NOT NULL,
        payload      BLOB,
        action       TEXT    NOT NULL,
        write_id     TEXT    NOT NULL,
        actor        TEXT    NOT NULL,
        actor_id     TEXT,
        on_behalf_of TEXT,
        run_id       TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS buffered_pending ON buffered (group_id, batch, write_time)",
    "CREATE INDEX IF NOT EXISTS buffered_batch ON buffered (batch)",
)


@dataclass(frozen=True, slots=True)
class Writer:
    """Who made a buffered write (for its audit row)."""

    actor: str
    actor_id: str | None
    on_behalf_of: str | None
    run_id: str | None


@dataclass(frozen=True, slots=True)
class BufferedRow:
    """One buffered single-record write."""

    seq: int
    row: OnlineRow  # payload None: a soft-delete tombstone
    action: str  # "feature:put_record" or "feature:delete_record"
    write_id: str
    writer: Writer


@dataclass(frozen=True, slots=True)
class Pending:
    """A group's rows waiting in the buffer."""

    rows: int
    oldest_write_us: int
    claimed: bool  # a claimed micro-batch is not complete: a flush is running, or died


class RecordBuffer:
    """The durable buffer: one SQLite file (WAL, ``synchronous = FULL``) and a lock file.

    Args:
        folder: where ``records.db`` and ``flush.lock`` live (created if missing).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "records.db"
        self.lock_path = folder / "flush.lock"
        self._db = ThreadConnections(
            str(self.path),
            what="The write buffer",
            pragmas=[
                "synchronous = FULL",  # a commit is fsynced before it returns
                "secure_delete = ON",  # flushed rows leave no bytes behind
            ],
            failed=lambda exc: _failed(self, exc),
        )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            conn = self._db.get()
            for statement in _SCHEMA:
                conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(
                f"The write buffer {str(self.path)!r} cannot be opened: {exc}.",
                hint="check that the workspace folder is writable",
            ) from exc

    def __repr__(self) -> str:
        return f"RecordBuffer({str(self.path)!r})"

    # -- writers -------------------------------------------------------------------------
    def append(
        self, group_id: str, row: OnlineRow, *, action: str, write_id: str, writer: Writer
    ) -> None:
        """Commit one row durably (fsynced before this returns)."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO buffered (group_id, key, event_time, write_time, payload, action, "
                "write_id, actor, actor_id, on_behalf_of, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    group_id,
                    row.key,
                    row.event_time,
                    row.write_time,
                    row.payload,
                    action,
                    write_id,
                    writer.actor,
                    writer.actor_id,
                    writer.on_behalf_of,
                    writer.run_id,
                ),
            )

    def claim(self, group_id: str, *, up_to: int, limit: int = _CLAIM_LIMIT) -> str | None:
        """Give the group's unclaimed rows (``seq <= up_to``) a new batch id; None if none."""
        batch = hashlib.sha256(f"trivet-buffer\0{group_id}\0{uuid.uuid4()}".encode()).hexdigest()
        with self._db.write() as conn:
            changed = conn.execute(
                "UPDATE buffered SET batch = ? WHERE seq IN (SELECT seq FROM buffered "
                "WHERE group_id = ? AND batch IS NULL AND seq <= ? ORDER BY seq LIMIT ?)",
                (batch, group_id, up_to, limit),
            ).rowcount
        return batch if changed else None

    def finish(self, batch: str) -> None:
        """Forget a completed (or void) micro-batch's rows."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM buffered WHERE batch = ?", (batch,))

    def discard(self, group_id: str) -> int:
        """Forget every row of a group (it was deleted); return how many."""
        with self._db.write() as conn:
            return int(
                conn.execute("DELETE FROM buffered WHERE group_id = ?", (group_id,)).rowcount
            )

    def scrub(self) -> None:
        """Move the WAL into the database and truncate it (after an erasure).

        With ``secure_delete`` the deleted rows' pages are zeroed; the WAL may still
        hold older copies of those pages until it is checkpointed and truncated.
        Best effort: a reader in another process can hold the WAL open for a moment.
        """
        try:
            self._db.get().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("could not truncate the write buffer's WAL: %s", exc)

    # -- readers -------------------------------------------------------------------------
    def _fetch(self, query: str, params: tuple[object, ...] = ()) -> list[Any]:
        """Run a read query on this thread's connection; a SQLite error is a BackendError."""
        try:
            return self._db.get().execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise _failed(self, exc) from exc

    def pending(self, group_id: str | None = None) -> dict[str, Pending]:
        """Return the groups with rows waiting (claimed or not)."""
        query = (
            "SELECT group_id, COUNT(*), MIN(write_time), MAX(batch IS NOT NULL) FROM buffered "
            + ("WHERE group_id = ? " if group_id is not None else "")
            + "GROUP BY group_id"
        )
        found = self._fetch(query, () if group_id is None else (group_id,))
        return {g: Pending(rows=n, oldest_write_us=o, claimed=bool(c)) for g, n, o, c in found}

    def last_seq(self) -> int:
        """Return the greatest sequence number given so far (0: none)."""
        [(last,)] = self._fetch("SELECT MAX(seq) FROM buffered")
        return int(last or 0)

    def claimed(self, group_id: str) -> list[str]:
        """Return the group's claimed, incomplete micro-batches, oldest first."""
        found = self._fetch(
            "SELECT batch FROM buffered WHERE group_id = ? AND batch IS NOT NULL "
            "GROUP BY batch ORDER BY MIN(seq)",
            (group_id,),
        )
        return [b for (b,) in found]

    def rows(self, batch: str) -> list[BufferedRow]:
        """Return a micro-batch's rows in the order they were written."""
        found = self._fetch(
            "SELECT seq, key, event_time, write_time, payload, action, write_id, actor, "
            "actor_id, on_behalf_of, run_id FROM buffered WHERE batch = ? ORDER BY seq",
            (batch,),
        )
        return [
            BufferedRow(
                seq=r[0],
                row=OnlineRow(r[1], r[2], r[3], r[4]),
                action=r[5],
                write_id=r[6],
                writer=Writer(r[7], r[8], r[9], r[10]),
            )
            for r in found
        ]

    # -- the flush lock ------------------------------------------------------------------
    @contextmanager
    def flush_lock(self, *, wait: bool) -> Iterator[bool]:
        """Hold the workspace's flush lock; yield False if ``wait`` is off and it is taken.

        An exclusive SQLite lock on ``flush.lock``: other processes and threads wait
        (or give up), and the lock is released if its holder dies.
        """
        try:
            conn = sqlite3.connect(
                self.lock_path, timeout=_LOCK_WAIT_S if wait else 0.0, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise _failed(self, exc) from exc
        try:
            try:
                conn.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError as exc:
                if not wait and "locked" in str(exc):
                    yield False
                    return
                raise _failed(self, exc) from exc
            try:
                yield True
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()

    def close(self) -> None:
        """Close every thread's connection."""
        self._db.close()


def _failed(buffer: RecordBuffer, exc: BaseException) -> BackendError:
    return BackendError(
        f"The write buffer {str(buffer.path)!r} failed: {exc}.",
        hint="check the disk (space, permissions); buffered writes stay in it until flushed",
    )


# -- flushing ------------------------------------------------------------------------------
def flush_groups(store: FeatureStore, group_ids: Sequence[str] | None, *, wait: bool) -> int:
    """Flush the buffered rows of some groups (None: all) to their tables; return how many.

    Rows written after the flush began wait for the next one. With ``wait`` off, give
    up at once (returning 0) if another flush holds the lock.
    """
    buffer = store._buffer()
    pending = buffer.pending() if group_ids is None else {}
    if group_ids is not None:
        for group_id in group_ids:
            pending.update(buffer.pending(group_id))
    if not pending:
        return 0
    flushed = 0
    with buffer.flush_lock(wait=wait) as held:
        if not held:
            return 0
        for group_id in pending:  # before the cut: writes after it count for the next
            store._flushed(group_id)
        up_to = buffer.last_seq()
        for group_id in pending:
            for left in buffer.claimed(group_id):  # left by a flush that died
                flushed += _complete(store, group_id, left, recovered=True)
            while (batch := buffer.claim(group_id, up_to=up_to)) is not None:
                flushed += _complete(store, group_id, batch, recovered=False)
    return flushed


def rows_table(group: FeatureGroup, rows: Sequence[BufferedRow]) -> pa.Table:
    """Return buffered rows as the group's offline columns, with their own stamps."""
    import pyarrow as pa

    from trivet.featurestore._codec import Codec

    ts = pa.timestamp("us", tz="UTC")
    keys: list[Any] = [r.row.key for r in rows]
    if group.record_id_dtype.value == "int":
        keys = [int(k) for k in keys]
    columns = [
        pa.array(keys, type=group.record_id_dtype.arrow()),
        pa.array([r.row.event_time for r in rows], type=ts),
        *Codec(group).columns([r.row.payload for r in rows]),
        pa.array([r.row.write_time for r in rows], type=ts),
        pa.array([r.row.payload is None for r in rows], type=pa.bool_()),
    ]
    names = [*group.columns, "__write_time", "__deleted"]
    return pa.table(columns, names=names)


def _complete(store: FeatureStore, group_id: str, batch: str, *, recovered: bool) -> int:
    """Write one claimed micro-batch offline, online and to the catalog; then forget it."""
    buffer = store._buffer()
    rows = buffer.rows(batch)
    group = store._group_by_id(group_id)
    if group is None or not rows:  # the group was deleted: its writes went with it
        buffer.finish(batch)
        return 0
    write_time = from_us(max(r.row.write_time for r in rows))
    version: int | None = None
    committed_before = False
    if group.offline:
        result = store.offline.append(
            group, rows_table(group, rows), batch_id=batch, write_time=write_time
        )
        version, committed_before = result.version, result.already
    if group.online:
        store.online.write(group.id, [r.row for r in rows])
    if not _record(store, group, batch, rows, version, recovered or committed_before):
        buffer.finish(batch)  # the group was deleted while we flushed
        return 0
    buffer.finish(batch)
    return len(rows)


def _record(
    store: FeatureStore,
    group: FeatureGroup,
    batch: str,
    rows: Sequence[BufferedRow],
    version: int | None,
    recovered: bool,
) -> bool:
    """Record the micro-batch and its audit rows, once; False if the group is gone.

    One audit row per write, in the order they were made (appended together: a few
    microseconds each), naming its principal, its id and write time and the micro-batch
    it landed in; a soft delete's row also names the record by digest.
    """
    from trivet.platform import audit
    from trivet.platform.catalog import now_utc
    from trivet.platform.catalog.schema import feature_batches, feature_groups

    catalog = store._s.catalog
    with catalog.write() as conn:
        if (
            conn.execute(
                sa.select(feature_groups.c.id).where(feature_groups.c.id == group.id)
            ).first()
            is None
        ):
            return False
        done = conn.execute(
            sa.select(feature_batches.c.batch_id).where(
                feature_batches.c.group_id == group.id, feature_batches.c.batch_id == batch
            )
        ).first()
        if done is not None:
            return True
        conn.execute(
            sa.insert(feature_batches).values(
                group_id=group.id,
                batch_id=batch,
                rows=len(rows),
                offline_version=version,
                write_time=from_us(max(r.row.write_time for r in rows)),
                created_at=now_utc(),
                created_by=rows[0].writer.actor_id,
            )
        )
        events = []
        for r in rows:
            detail: dict[str, Any] = {
                "batch": batch,
                "write": r.write_id,
                "written_at": from_us(r.row.write_time).isoformat(),
                "offline_version": version,
                "recovered": recovered,
            }
            if r.action == "feature:delete_record":  # as before: which record, by digest
                detail["record_sha256"] = hashlib.sha256(
                    f"{group.id}\0{r.row.key}".encode()
                ).hexdigest()
            events.append(
                audit.Event(
                    actor=r.writer.actor,
                    actor_id=r.writer.actor_id,
                    on_behalf_of=r.writer.on_behalf_of,
                    run_id=r.writer.run_id,
                    action=r.action,
                    resource=group.resource,
                    detail=detail,
                )
            )
        audit.append_many(conn, events)
    return True


# -- the background flusher ----------------------------------------------------------------
_RECHECK_S = 1.0


class Flusher:
    """Flush a store's buffered groups by count and by age, from a daemon thread.

    The thread starts with the first buffered write (or at open, if rows are waiting)
    and ends once the buffer has stayed empty for a few periods; the next write starts
    it again. ``wake()`` asks for a pass now (a group reached ``flush_rows``).
    """

    def __init__(self, store: FeatureStore, *, rows: int, seconds: float) -> None:
        self.store = store
        self.rows = rows
        self.seconds = seconds
        self.period = max(0.05, seconds / 2)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._everything = False

    def ensure(self, *, everything: bool = False) -> None:
        """Start the thread unless it runs; ``everything``: flush all that waits, first."""
        with self._lock:
            if everything:
                self._everything = True
                self._wake.set()
            if self._thread is not None and self._thread.is_alive():
                return
            if self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="trivet-buffer-flusher", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """Ask for a pass now."""
        self._wake.set()
        self.ensure()

    def stop(self) -> None:
        """Stop the thread and wait for its pass to end."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        idle = 0
        waiting = False  # rows were left waiting by the last pass
        while not self._stop.is_set():
            # Rows left waiting (not yet due, or another flush held the lock) are looked
            # at again within a second, whatever the period: a wake-up can be missed.
            self._wake.wait(min(self.period, _RECHECK_S) if waiting else self.period)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with self._lock:
                    pending = self.store._buffer().pending()
                    everything, self._everything = self._everything, False
                    if not pending:
                        idle += 1
                        if idle >= 3:
                            self._thread = None
                            return
                        continue
                idle = 0
                now = time.time() * 1_000_000
                due = [
                    group_id
                    for group_id, p in pending.items()
                    if everything
                    or p.claimed
                    or p.rows >= self.rows
                    or now - p.oldest_write_us >= self.seconds * 1_000_000
                ]
                flushed = flush_groups(self.store, due, wait=False) if due else 0
                waiting = flushed == 0 or len(due) < len(pending)
            except Exception:
                log.warning("flushing the write buffer failed; will retry", exc_info=True)
                with self._lock:
                    self._thread = None
                return


def write_id() -> str:
    """Return a new id for one buffered write."""
    return uuid.uuid4().hex
