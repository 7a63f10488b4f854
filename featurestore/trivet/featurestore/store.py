"""The feature store's front: ``FeatureStore(session)`` (``session.featurestore``).

Resources and actions: a feature group is ``<project>/feature_groups/<name>``.

==========================================  ===========================
operation                                   action on the group
==========================================  ===========================
create_group, add_features                  ``feature:create``
describe, list_groups, search               ``feature:describe``
ingest, put_record, delete_record (soft),   ``feature:write``
flush, maintain (vacuum retention >= 168 h)
get_record, batch_get_record                ``feature:read_online``
offline_table, build_dataset, latest_rows,  ``feature:read_offline``
statistics, sql (the groups it sees)
delete_group, delete_record(hard=True),     ``feature:delete``
maintain (vacuum retention < 168 h)
==========================================  ===========================

The creator of a group gets an explicit ``maintainer`` grant on ``<group>/*`` in the
transaction that creates it. Permission is checked before a group is looked up, so
a caller learns nothing about groups it may not see; a missing group's error suggests
only names the caller may describe. Every write appends an audit row in the catalog
transaction that records it; audit rows never hold a record id or a feature value
(a record is named by ``sha256(group id, record key)``), so a hard delete leaves no
personal data in the append-only log. Group definitions are cached for a second:
another process's ``add_features`` or ``delete_group`` shows here within a second.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import hashlib
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from trivet.errors import AlreadyExists, TrivetError, ValidationError
from trivet.featurestore import records
from trivet.featurestore._codec import Codec, record_key
from trivet.featurestore._gate import WriteGate, gate_for
from trivet.featurestore._groups import (
    KIND,
    insert_features,
    insert_group,
    read_group_by_id,
    read_groups,
)
from trivet.featurestore._progress import ProgressArg, progress_for
from trivet.featurestore.buffer import Flusher, RecordBuffer, Writer, flush_groups
from trivet.featurestore.definitions import (
    Feature,
    FeatureGroup,
    FeatureGroupSpec,
)
from trivet.featurestore.errors import FeatureGroupNotFound
from trivet.featurestore.ingest import IngestReport, ingest_data
from trivet.featurestore.offline import DeltaOfflineStore
from trivet.featurestore.online import OnlineStore, open_online_store
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import (
    feature_batches,
    feature_definitions,
    feature_groups,
)
from trivet.platform.lineage import delete_edges_under
from trivet.platform.names import check_name

if TYPE_CHECKING:
    import os

    import pandas as pd
    import pyarrow as pa

    from trivet.featurestore.datasets import Output
    from trivet.featurestore.maintenance import MaintenanceReport
    from trivet.featurestore.stats import GroupStatistics
    from trivet.platform.session import Session

__all__ = ["FeatureStore", "SearchHit"]

_CACHE_SECONDS = 1.0
_BACKPRESSURE = 10  # unflushed rows beyond flush_rows times this: the writer flushes itself

log = logging.getLogger("trivet.featurestore")
_open_stores: weakref.WeakSet[FeatureStore] = weakref.WeakSet()
_at_exit = threading.Lock()
_exit_hook: list[bool] = []


def _flush_at_exit() -> None:
    """Close (and so flush) every store that buffered writes in this process."""
    for store in list(_open_stores):
        try:
            store.close()
        except Exception:
            log.warning("could not flush the write buffer at exit", exc_info=True)


@dataclass(frozen=True, kw_only=True)
class SearchHit:
    """A feature group found by :meth:`FeatureStore.search`, and where it matched.

    ``matches`` names the fields: ``name``, ``description``, ``tag:<tag>``,
    ``feature:<name>``, ``feature:<name>.description``, ``feature:<name>.parameters``.
    """

    group: FeatureGroup
    matches: tuple[str, ...]


class FeatureStore:
    """Feature groups and their records under one session's grants.

    Args:
        session: the session whose principal, project and workspace settings apply.
        flush_rows: flush a group's buffered single-record writes to its offline table
            once this many wait (see :mod:`trivet.featurestore.buffer`).
        flush_seconds: ... or once the oldest has waited this long.

    Raises:
        ValidationError: ``flush_rows`` or ``flush_seconds`` is not positive.
    """

    def __init__(
        self, session: Session, *, flush_rows: int = 1000, flush_seconds: float = 5.0
    ) -> None:
        if isinstance(flush_rows, bool) or not isinstance(flush_rows, int) or flush_rows < 1:
            raise ValidationError(f"flush_rows must be a positive int, not {flush_rows!r}.")
        if not isinstance(flush_seconds, int | float) or not flush_seconds > 0:
            raise ValidationError(f"flush_seconds must be positive, not {flush_seconds!r}.")
        self._s = session
        self._offline: DeltaOfflineStore | None = None
        self._online: OnlineStore | None = None
        self._cache: dict[tuple[str, str], tuple[float, FeatureGroup, Codec]] = {}
        self._flush_rows = flush_rows
        self._flush_seconds = float(flush_seconds)
        self._records: RecordBuffer | None = None
        self._flusher: Flusher | None = None
        self._opening = threading.Lock()
        self._unflushed: dict[str, int] = {}  # this process's writes since a flush, by group
        self._counting = threading.Lock()

    def __repr__(self) -> str:
        return f"<FeatureStore project={self._s.project!r}>"

    # -- backends ----------------------------------------------------------------------
    @property
    def offline(self) -> DeltaOfflineStore:
        """The offline store (Delta tables under the ``offline_url`` setting)."""
        if self._offline is None:
            self._offline = DeltaOfflineStore(self._s.settings.offline_url)
        return self._offline

    @property
    def online(self) -> OnlineStore:
        """The online store (from the ``online_url`` setting)."""
        if self._online is None:
            self._online = open_online_store(self._s.settings.online_url)
        return self._online

    def close(self) -> None:
        """Flush buffered writes to the offline tables, then close connections.

        A flush that fails (storage unreachable) is logged, not raised: the writes stay
        in the durable buffer and the next process to open it flushes them.
        """
        with self._opening:
            flusher, self._flusher = self._flusher, None
            buffer = self._records
        if flusher is not None:
            flusher.stop()
        if buffer is not None:
            try:
                flush_groups(self, None, wait=True)
            except TrivetError:
                log.warning("could not flush the write buffer on close", exc_info=True)
            with self._opening:
                self._records = None
            buffer.close()
            _open_stores.discard(self)
        if self._online is not None:
            self._online.close()
            self._online = None

    # -- the write buffer (see buffer.py) ----------------------------------------------
    @functools.cached_property
    def _gate(self) -> WriteGate:
        """The workspace's write gate in this process (writes shared, erasures alone)."""
        return gate_for(str(self._s.settings.workspace.resolve()))

    def _buffer(self) -> RecordBuffer:
        """The workspace's write buffer, opened on first use.

        Opening it is the "next open" after a crash: if rows wait in it (a process died
        before flushing, or another is writing), the flusher thread starts and its first
        pass flushes them all.
        """
        buffer = self._records
        if buffer is not None:
            return buffer
        with self._opening:
            if self._records is None:
                self._records = RecordBuffer(self._s.settings.workspace / "buffer")
                self._flusher = Flusher(self, rows=self._flush_rows, seconds=self._flush_seconds)
                _open_stores.add(self)
                with _at_exit:
                    if not _exit_hook:
                        atexit.register(_flush_at_exit)
                        _exit_hook.append(True)
                if self._records.pending():
                    self._flusher.ensure(everything=True)
            return self._records

    def _writer(self) -> Writer:
        session = self._s
        return Writer(
            actor=session.principal.name,
            actor_id=session.principal.id,
            on_behalf_of=session.on_behalf_of.name if session.on_behalf_of else None,
            run_id=session.run_id,
        )

    def _buffered_one(self, group: FeatureGroup) -> None:
        """After a buffered write: wake the flusher, or flush here if it falls behind.

        Counts this process's writes since the group's last flush here (a count query
        per write would cost O(rows waiting)); the flusher thread checks the buffer's
        own counts and ages, which include other processes' writes.
        """
        with self._counting:
            waiting = self._unflushed.get(group.id, 0) + 1
            self._unflushed[group.id] = waiting
        flusher = self._flusher
        if waiting >= self._flush_rows * _BACKPRESSURE:
            flush_groups(self, [group.id], wait=True)
        elif flusher is not None:
            if waiting >= self._flush_rows:
                flusher.wake()
            else:
                flusher.ensure()

    def _flushed(self, group_id: str) -> None:
        """Note that a flush of the group's buffered writes up to now began: count anew."""
        with self._counting:
            self._unflushed.pop(group_id, None)

    def _has_buffer(self) -> bool:
        """Whether this workspace's write buffer exists (readers need not create it)."""
        return (
            self._records is not None
            or (self._s.settings.workspace / "buffer" / "records.db").exists()
        )

    def _flush_ids(self, group_ids: Sequence[str]) -> int:
        """Flush these groups' buffered writes (waiting for another flush); return how many."""
        if not group_ids or not self._has_buffer():
            return 0
        return flush_groups(self, group_ids, wait=True)

    def _settle(self, group: FeatureGroup) -> None:
        """Flush the group's buffered writes before its offline table is read."""
        if group.offline:
            self._flush_ids([group.id])

    def flush(self, name: str | None = None) -> int:
        """Write buffered single-record writes to the offline tables now.

        ``put_record`` and soft ``delete_record`` are durable (and online) when they
        return, and reach the offline table in micro-batches; readers of the offline
        table flush first, so this is only needed to make the Delta table itself
        current for readers outside trivet. Needs ``feature:write`` on the group; with
        no name, flushes every group of the project you may write.

        Returns:
            How many buffered writes were flushed.
        """
        if name is not None:
            self._require("feature:write", name)
            return self._flush_ids([self._load(name)[0].id])
        return self._flush_ids(
            [g.id for g in self.list_groups() if self._s.can("feature:write", g.resource)]
        )

    def _resource(self, name: str) -> str:
        return self._s.resource(KIND, name)

    # -- catalog reads -----------------------------------------------------------------
    def _group_by_id(self, group_id: str) -> FeatureGroup | None:
        """Return a group of any project by id (for flushing the buffer), or None."""
        with self._s.catalog.read() as conn:
            return read_group_by_id(conn, group_id)

    def _visible_names(self) -> list[str]:
        with self._s.catalog.read() as conn:
            names = (
                conn.execute(
                    sa.select(feature_groups.c.name).where(
                        feature_groups.c.project == self._s.project
                    )
                )
                .scalars()
                .all()
            )
        return [n for n in names if self._s.can("feature:describe", self._resource(n))]

    def _load(self, name: str) -> tuple[FeatureGroup, Codec]:
        """Return a group and its codec (cached for a second); raise if it does not exist."""
        key = (self._s.project, name)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            return hit[1], hit[2]
        with self._s.catalog.read() as conn:
            found = read_groups(conn, self._s.project, name)
        if not found:
            self._cache.pop(key, None)
            raise FeatureGroupNotFound(name, known=self._visible_names())
        group = found[0]
        codec = hit[2] if hit is not None and hit[1] == group else Codec(group)
        self._cache[key] = (now, group, codec)
        return group, codec

    def _forget(self, name: str) -> None:
        self._cache.pop((self._s.project, name), None)

    def _require(self, action: str, name: str) -> str:
        check_name(name, what="feature group name")
        resource = self._resource(name)
        self._s.require(action, resource)
        return resource

    # -- groups ------------------------------------------------------------------------
    def create_group(self, spec: FeatureGroupSpec) -> FeatureGroup:
        """Create a feature group from a spec; you get ``maintainer`` on it.

        Needs ``feature:create`` on ``<project>/feature_groups/<name>``. The offline
        table (if ``spec.offline``) is created at once, at a path made of the project and
        the group's new id.

        Raises:
            AlreadyExists: a group of that name exists in the project.
        """
        if not isinstance(spec, FeatureGroupSpec):
            raise ValidationError(
                f"create_group needs a FeatureGroupSpec, got {type(spec).__name__}.",
                hint="build one with FeatureGroupSpec(...) or infer_spec(df, ...)",
            )
        resource = self._require("feature:create", spec.name)
        with self._s.catalog.read() as conn:
            if read_groups(conn, self._s.project, spec.name):
                raise self._exists(spec.name)
        now = now_utc()
        group = FeatureGroup(
            id=str(uuid.uuid4()),
            name=spec.name,
            project=self._s.project,
            resource=resource,
            record_id=spec.record_id,
            record_id_dtype=spec.record_id_dtype,
            event_time=spec.event_time,
            features=tuple(spec.features),
            description=spec.description,
            tags=tuple(spec.tags),
            ttl=spec.ttl,
            online=spec.online,
            offline=spec.offline,
            created_at=now,
            created_by=self._s.principal.name,
            updated_at=now,
        )
        if group.offline:
            self.offline.ensure(group)
        try:
            with self._s.catalog.write() as conn:
                if read_groups(conn, self._s.project, spec.name):
                    raise self._exists(spec.name)
                insert_group(self._s, conn, group)
        except BaseException:
            if group.offline:
                self.offline.drop(group)
            raise
        self._forget(spec.name)
        return self._load(spec.name)[0]

    @staticmethod
    def _exists(name: str) -> AlreadyExists:
        return AlreadyExists(
            f"Feature group {name!r} exists already.",
            hint="add features to it with add_features, or pick another name",
        )

    def describe(self, name: str) -> FeatureGroup:
        """Return a feature group (needs ``feature:describe`` on it)."""
        self._require("feature:describe", name)
        self._forget(name)
        return self._load(name)[0]

    def list_groups(self) -> list[FeatureGroup]:
        """Return the project's feature groups you may describe, by name."""
        with self._s.catalog.read() as conn:
            groups = read_groups(conn, self._s.project)
        return [g for g in groups if self._s.can("feature:describe", g.resource)]

    def search(self, text: str | None = None, *, tag: str | None = None) -> list[SearchHit]:
        """Find feature groups you may describe by words and/or a tag.

        Every word of ``text`` must appear (case-insensitively) in the group's name or
        description, or in a tag, a feature's name, description or parameters (keys and
        values). ``tag`` keeps only groups carrying that exact tag.
        """
        terms = (text or "").lower().split()
        hits: list[SearchHit] = []
        for group in self.list_groups():
            if tag is not None and tag not in group.tags:
                continue
            fields: list[tuple[str, str]] = [
                ("name", group.name),
                ("description", group.description),
                *((f"tag:{t}", t) for t in group.tags),
            ]
            for f in group.features:
                fields.append((f"feature:{f.name}", f.name))
                fields.append((f"feature:{f.name}.description", f.description))
                params = " ".join(f"{k} {v}" for k, v in f.parameters.items())
                fields.append((f"feature:{f.name}.parameters", params))
            matched: list[str] = []
            if all(any(t in value.lower() for _, value in fields) for t in terms):
                matched = [
                    where for where, value in fields if any(t in value.lower() for t in terms)
                ]
                hits.append(SearchHit(group=group, matches=tuple(matched)))
        return hits

    def add_features(self, name: str, features: Iterable[Feature]) -> FeatureGroup:
        """Add features to a group (existing ones never change or go; as in SageMaker).

        Needs ``feature:create`` on the group. Existing records read the new features
        as null; the offline table gains the columns (older files lack them).

        Raises:
            ValidationError: a name is taken, repeated or invalid.
        """
        resource = self._require("feature:create", name)
        new = list(features)
        if not new:
            raise ValidationError("add_features needs at least one Feature.")
        for feat in new:
            if not isinstance(feat, Feature):
                raise ValidationError(
                    f"add_features takes Feature objects, got {type(feat).__name__}.",
                    hint="e.g. Feature(name='score', dtype='float')",
                )
        with self._s.catalog.write() as conn:
            found = read_groups(conn, self._s.project, name)
            if not found:
                raise FeatureGroupNotFound(name, known=())
            group = found[0]
            # the spec's checks: valid, unique names that do not clash with the keys
            FeatureGroupSpec(
                name=group.name,
                record_id=group.record_id,
                event_time=group.event_time,
                record_id_dtype=group.record_id_dtype,
                features=[*group.features, *new],
            )
            insert_features(conn, group.id, new, start=2 + len(group.features))
            conn.execute(
                sa.update(feature_groups)
                .where(feature_groups.c.id == group.id)
                .values(updated_at=now_utc())
            )
            self._s.record(
                conn,
                action="feature:add_features",
                resource=resource,
                detail={"features": [f.to_dict() for f in new]},
            )
        self._forget(name)
        group = self._load(name)[0]
        if group.offline:
            self.offline.ensure(group)
        return group

    def delete_group(self, name: str) -> None:
        """Delete a group: its definition, grants, lineage, online rows and offline table.

        Needs ``feature:delete``. A group created later under the same name is a new
        group with none of this one's grants or data.
        """
        resource = self._require("feature:delete", name)
        with self._s.catalog.write() as conn:
            found = read_groups(conn, self._s.project, name)
            if not found:
                raise FeatureGroupNotFound(name, known=())
            group = found[0]
            for table in (feature_batches, feature_definitions):
                conn.execute(sa.delete(table).where(table.c.group_id == group.id))
            conn.execute(sa.delete(feature_groups).where(feature_groups.c.id == group.id))
            dropped = self._s.access.drop_resource(conn, resource)
            edges = delete_edges_under(conn, "feature_group", resource)
            self._s.record(
                conn,
                action="feature:delete_group",
                resource=resource,
                detail={"id": group.id, "grants_dropped": dropped, "lineage_edges_dropped": edges},
            )
        self._forget(name)
        if self._has_buffer():
            self._buffer().discard(group.id)
        if group.online:
            self.online.drop(group.id)
        if group.offline:
            self.offline.drop(group)

    # -- writing records ---------------------------------------------------------------
    def ingest(
        self,
        name: str,
        data: pd.DataFrame | pa.Table | str | os.PathLike[str],
        *,
        max_workers: int | None = None,
        progress: ProgressArg = False,
    ) -> IngestReport:
        """Validate a batch, then write it offline and online, exactly once.

        See :mod:`trivet.featurestore.ingest` for the rules. Needs ``feature:write``.

        Args:
            name: the feature group.
            data: a pandas DataFrame, a pyarrow Table, or a path to a .parquet/.csv file.
            max_workers: threads validating columns at once (large batches only).
            progress: ``False`` (default): quiet. ``"auto"``: progress bars on stderr if
                it is a terminal and the batch is large (100,000 rows, or a 16 MiB
                file); ``True``: on a terminal, whatever the size. A callable is called
                as ``progress(step, rows_done, rows_in_step)`` when each step starts
                (0 done), ends, and in between where it counts rows; the steps are
                ``read`` (a file), ``validate``, ``batch id``, ``write offline``,
                ``write online``, ``record``.

        Raises:
            IngestValidationError: the batch has problems (all listed); nothing was written.
        """
        self._require("feature:write", name)
        group, _ = self._load(name)
        report, close = progress_for(progress, data)
        try:
            with self._gate.write():
                return ingest_data(self, group, data, max_workers=max_workers, progress=report)
        finally:
            close()

    def put_record(self, name: str, record: Mapping[str, Any]) -> IngestReport:
        """Validate and write one record: durably buffered, online at once, offline soon.

        When this returns, the record is on disk in the workspace's write buffer and in
        the online store (newer event time wins); it reaches the offline table in a
        micro-batch, exactly once, within ``flush_seconds`` or ``flush_rows`` writes
        (readers of the offline table flush first). See :mod:`trivet.featurestore.buffer`
        for the durability contract. Use :meth:`ingest` for batches. Needs
        ``feature:write``.

        Args:
            name: the feature group.
            record: the record id, the event time and any features (others are null),
                validated as a one-row :meth:`ingest` would be.

        Returns:
            An IngestReport with ``buffered=True``: ``batch_id`` is this write's own id
            (its audit row's ``write``), ``offline_version`` None, ``write_time`` its
            ``__write_time``.

        Raises:
            IngestValidationError: the record is not valid for the group.
        """
        return records.put_record(self, name, record)

    def delete_record(
        self,
        name: str,
        record_id: object,
        *,
        hard: bool = False,
        event_time: dt.datetime | None = None,
    ) -> None:
        """Delete a record: a soft tombstone, or (``hard=True``) erase it everywhere.

        Soft (``feature:write``): a tombstone row (``__deleted`` true, features null) at
        ``event_time`` (default now) goes through the write buffer as ``put_record``
        does: online the record reads as missing at once (unless a row with a newer
        event time arrives later), offline the tombstone lands with the next flush.
        Its history stays in the offline table.

        Hard (``feature:delete``; for erasure requests such as GDPR's): the group's
        buffered writes are flushed, every row of the record is deleted from the offline
        table, which is then vacuumed so no file still holding it remains, the record
        is removed from the online store, and the write buffer's file is scrubbed. Time
        travel to versions before the delete stops working.
        """
        action = "feature:delete" if hard else "feature:write"
        resource = self._require(action, name)
        group, _ = self._load(name)
        typed, key = record_key(group, record_id)
        if not hard:
            when = event_time if event_time is not None else now_utc()
            if not isinstance(when, dt.datetime) or when.utcoffset() is None:
                raise ValidationError(
                    f"event_time must be a timezone-aware datetime, not {when!r}.",
                    hint="e.g. datetime.now(UTC)",
                )
            records.soft_delete(self, group, key, when)
            return
        digest = hashlib.sha256(f"{group.id}\0{key}".encode()).hexdigest()
        with self._gate.erase():  # no write of this process is half done meanwhile
            self._flush_ids([group.id])  # buffered rows of it are erased too
            removed: list[str] = []
            if group.offline:
                removed = self.offline.hard_delete(group, [typed])
            if group.online:
                self.online.delete(group.id, [key])
            if self._has_buffer():
                self._buffer().scrub()
        with self._s.catalog.write() as conn:
            self._s.record(
                conn,
                action="feature:erase_record",
                resource=resource,
                detail={"record_sha256": digest, "files_vacuumed": len(removed)},
            )

    # -- reading records ---------------------------------------------------------------
    def get_record(
        self, name: str, record_id: object, *, features: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """Return a record's latest values from the online store, or None.

        None when the record was never written, was deleted, or (with a TTL) its event
        time is older than ``now - ttl``. The result holds the record id, the event time
        and the features (only ``features`` if given). Needs ``feature:read_online``.
        """
        return records.get_record(self, name, record_id, features=features)

    def batch_get_record(
        self, requests: Mapping[str, Sequence[object]] | Sequence[tuple[str, object]]
    ) -> Any:
        """Return many records from one or several groups in one call.

        Each group is authorized once per call (``feature:read_online``), never per
        record; if any group is refused, the whole call is.

        Args:
            requests: ``{group: [id, ...]}``, or a list of ``(group, id)`` pairs.

        Returns:
            For a mapping, ``{group: [record or None, ...]}`` in the ids' order; for a
            list of pairs, a list of records or None in the pairs' order.
        """
        return records.batch_get_record(self, requests)

    # -- the offline table -------------------------------------------------------------
    def offline_table(self, name: str, *, as_of: int | dt.datetime | None = None) -> pa.Table:
        """Return every row of the group's offline table (needs ``feature:read_offline``).

        Args:
            name: the feature group.
            as_of: a Delta version number or an aware datetime (time travel).
        """
        from trivet.featurestore.datasets import check_as_of

        if not isinstance(as_of, int) or isinstance(as_of, bool):
            check_as_of(as_of)  # None, or an aware datetime (a naive one is refused)
        elif as_of < 0:
            raise ValidationError(f"as_of version {as_of} is negative.", hint="versions start at 0")
        self._require("feature:read_offline", name)
        group, _ = self._load(name)
        self._settle(group)
        return self.offline.read(group, as_of=as_of)

    def maintain(self, name: str, *, vacuum_hours: int = 168) -> MaintenanceReport:
        """Compact the group's offline table, checkpoint it, and vacuum old files.

        Flushes the group's buffered writes, rewrites small files into large ones (one
        commit; readers see the same rows), writes a Delta checkpoint, then deletes the
        files no version younger than ``vacuum_hours`` needs (and files a crashed
        writer left uncommitted, once that old). Time travel to versions older than the
        retention may stop working (:class:`VersionVacuumed`). Files replaced by this
        compaction are freed by a later run, once older than the retention.

        Needs ``feature:write`` with the default retention (168 h) or longer; a shorter
        one needs ``feature:delete``, as it erases history that reproducible training
        sets (``as_of``) may rely on.

        Args:
            name: the feature group.
            vacuum_hours: keep files any version of the last ``vacuum_hours`` hours
                needs; at least 1, since writers in flight may have written files they
                have not committed yet.

        Returns:
            Files and bytes before and after, what compaction and vacuum did.

        Raises:
            ValidationError: ``vacuum_hours`` is below 1 or not an int, or the group
                keeps no offline table.
        """
        from trivet.featurestore.maintenance import maintain

        return maintain(self, name, vacuum_hours=vacuum_hours)

    # -- training sets and SQL (in datasets.py and sql.py) -----------------------------
    def build_dataset(
        self,
        entity: pd.DataFrame | pa.Table,
        features: Sequence[str],
        *,
        timestamp: str,
        entity_key: str | Mapping[str, str] | None = None,
        created_cutoff: bool = False,
        as_of: dt.datetime | None = None,
        include_deleted: bool = False,
        event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
        include_match_times: bool = False,
        to: Output = "pandas",
        dataset_name: str | None = None,
    ) -> pd.DataFrame | pa.Table:
        """Return a point-in-time training set: each entity row joined to the features
        as they were at the row's time.

        For each entity row and each group: the candidates are the group's rows with
        the row's key and ``entity_ts - ttl <= event_ts <= entity_ts`` (no TTL: no lower
        bound); the one with the greatest ``(event_ts, __write_time)`` wins and its
        values are returned as they are; no candidate, or a soft-delete tombstone wins:
        nulls. Exactly one output row per entity row, in input order, duplicates kept.
        Needs ``feature:read_offline`` on every group (checked once per group, before
        any group is looked up; a denial is audited).

        Args:
            entity: the entity rows (a DataFrame or an Arrow table): keys, a timezone-
                aware timestamp column, and anything else (labels), kept as given.
            features: ``"group:feature"`` or ``"group:*"`` (all of a group's features,
                in definition order) strings; groups in order of first mention.
            timestamp: the entity column holding each row's time.
            entity_key: the entity column holding the record id: one name for every
                group, ``{group: column}``, or None for a column named like each
                group's record id.
            created_cutoff: only use rows written by the entity time: what online
                serving could have seen then.
            as_of: time travel: only rows committed and stamped by then (the Delta
                version current at ``as_of``, and ``__write_time <= as_of``).
            include_deleted: ignore tombstones: a deleted record's values from before
                the delete are returned.
            event_time_range: ``(start, end)``, inclusive; None leaves a side open.
            include_match_times: add ``<group>__event_time`` and ``<group>__write_time``.
            to: ``"pandas"`` (integers and booleans nullable: ``Int64``, ``boolean``;
                a DataFrame entity keeps its index and dtypes) or ``"arrow"``.
            dataset_name: also store the result as an artifact in
                ``<project>/datasets/<name>`` (needs ``artifact:write`` there), with
                lineage edges ``feature_group → dataset``; its digest is then in
                ``df.attrs["trivet.dataset"]`` (Arrow: schema metadata ``trivet.dataset``).

        Returns:
            A pandas DataFrame (or an Arrow table): the entity's columns, then each
            group's features (``<group>__<feature>`` when a name clashes).

        Raises:
            PermissionDenied: a group may not be read offline.
            FeatureGroupNotFound: a group does not exist.
            ValidationError: an unknown feature, a group without an offline table, a
                missing or naive entity column, a key of the wrong type.
        """
        from trivet.featurestore.datasets import build_dataset

        return build_dataset(
            self,
            entity,
            features,
            timestamp=timestamp,
            entity_key=entity_key,
            created_cutoff=created_cutoff,
            as_of=as_of,
            include_deleted=include_deleted,
            event_time_range=event_time_range,
            include_match_times=include_match_times,
            to=to,
            dataset_name=dataset_name,
        )

    def latest_rows(
        self,
        name: str,
        n: int = 1,
        *,
        features: Sequence[str] | None = None,
        as_of: dt.datetime | None = None,
        include_deleted: bool = False,
        event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
        to: Output = "pandas",
    ) -> pd.DataFrame | pa.Table:
        """Return each record's ``n`` most recent rows from the offline table, newest first.

        Each ``(record id, event time)`` counts once (its latest write); rows at or
        before a record's latest tombstone are left out unless ``include_deleted``.
        ``as_of`` and ``event_time_range`` as in :meth:`build_dataset`. Needs
        ``feature:read_offline``.

        Returns:
            The record id, the event time and the features (all, or ``features``),
            ordered by record id, then event time descending.
        """
        from trivet.featurestore.datasets import latest

        return latest(
            self,
            name,
            n=n,
            features=features,
            as_of=as_of,
            include_deleted=include_deleted,
            event_time_range=event_time_range,
            to=to,
        )

    def statistics(self, name: str, *, bins: int = 20) -> GroupStatistics:
        """Return per-feature statistics over each record's latest offline row.

        Counts, nulls, distinct values, min/max/mean/stddev and an equal-width histogram
        for numbers, min/max and a histogram for timestamps, the most frequent values for
        strings and bools (rules in :mod:`trivet.featurestore.stats`). Soft-deleted
        records are left out; the TTL is not applied. Needs ``feature:read_offline``.

        Args:
            name: the feature group.
            bins: histogram bins, 1 to 1000.

        Raises:
            ValidationError: bad ``bins``, or the group keeps no offline table.
        """
        from trivet.featurestore.stats import group_statistics

        return group_statistics(self, name, bins=bins)

    def sql(
        self, query: str, *, as_of: dt.datetime | None = None, to: Output = "pandas"
    ) -> pd.DataFrame | pa.Table:
        """Run one SQL ``SELECT`` (DuckDB's dialect) over the offline tables you may read.

        Each feature group you may ``feature:read_offline`` is a relation named after
        it (quote names with ``.`` or ``-``) holding its offline table as it is: every
        version of every record, tombstones, and the ``__write_time``, ``__deleted``
        and ``__batch`` columns. Nothing else is reachable: no file, no network, no
        extension (see :mod:`trivet.featurestore.sql`).

        Args:
            query: one ``SELECT`` (or ``EXPLAIN``) statement.
            as_of: each table as it was then (as in :meth:`build_dataset`).
            to: ``"pandas"`` (integers and booleans nullable) or ``"arrow"``.

        Raises:
            ValidationError: the query does not parse, names an unknown relation or
                column, or is not a single ``SELECT``.
            PermissionDenied: the query tried to read a file or load an extension.
        """
        from trivet.featurestore.sql import run_sql

        return run_sql(self, query, as_of=as_of, to=to)
