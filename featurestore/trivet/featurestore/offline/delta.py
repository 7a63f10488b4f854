"""The offline store: one Delta Lake table per feature group (the ``deltalake`` package).

A group's table lives at ``<offline_url>/<project>/<group id>``: ids only, never a
user's string. Its columns are the record id, the event time
(``timestamp[us, tz=UTC]``), the features in definition order, then trivet's
``__write_time`` (``timestamp[us, tz=UTC]``: when trivet wrote the row), ``__deleted``
(a soft-delete tombstone; its features are null) and ``__batch`` (the ingest batch id).
Every version of every record is kept; nothing is updated in place.

Column statistics in the Delta log are collected for the event time and
``__write_time`` only (``delta.dataSkippingStatsColumns``): the log never holds a
record id or a feature value, so a hard delete plus vacuum erases a record for good.
Files written before :meth:`DeltaOfflineStore.ensure` added a feature lack its column;
read them by name (DuckDB: ``read_parquet([...], union_by_name=true)``).

Every commit runs in a retry loop: a conflicting concurrent commit (a delete, a
compaction) makes this one re-read the table and try again.

Maintenance (:mod:`trivet.featurestore.maintenance`) compacts, checkpoints and vacuums
through :meth:`DeltaOfflineStore.compact`, :meth:`~DeltaOfflineStore.checkpoint` and
:meth:`~DeltaOfflineStore.vacuum`. Opening an older version whose files a vacuum removed
raises :class:`~trivet.featurestore.VersionVacuumed` instead of failing later in a reader.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from trivet.errors import BackendError, ValidationError
from trivet.featurestore.definitions import Dtype, FeatureGroup

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable, WriterProperties

__all__ = ["AppendResult", "DeltaOfflineStore"]

T = TypeVar("T")
_ATTEMPTS = 12
_APP_PREFIX = "trivet-batch-"
_UNSUPPORTED_FEATURES = frozenset({"deletionVectors", "columnMapping"})


@dataclass(frozen=True, kw_only=True)
class AppendResult:
    """What :meth:`DeltaOfflineStore.append` did."""

    version: int | None  # the Delta version holding the batch (None: not known)
    write_time: dt.datetime  # the batch's ``__write_time``
    already: bool  # the batch had been committed before (nothing was written now)


def _writer_properties(group: FeatureGroup) -> WriterProperties:
    """Parquet options of an append: no dictionary for the record id and float features.

    Their values rarely repeat, so the writer's dictionary attempt (kept until the
    dictionary page overflows) only cost time: without it a 10-float batch is written in
    half the time, its files 1 % larger. Other columns keep dictionaries (``__batch`` is
    one value per file).
    """
    from deltalake import ColumnProperties, WriterProperties

    plain = ColumnProperties(dictionary_enabled=False)
    names = [group.record_id]
    names += [f.name for f in group.features if f.dtype is Dtype.FLOAT]
    return WriterProperties(column_properties=dict.fromkeys(names, plain))


def _backend(exc: BaseException, what: str) -> BackendError:
    text = str(exc).strip().splitlines()
    return BackendError(
        f"The offline store failed to {what}: {text[0] if text else type(exc).__name__}.",
        hint="check the offline_url setting and that the storage is reachable",
    )


class DeltaOfflineStore:
    """Feature groups' offline tables under one root folder or bucket prefix.

    Args:
        root: the ``featurestore.offline_url`` setting (a folder or ``s3://…``).
        storage_options: passed to ``deltalake`` (credentials, endpoint) for object stores.
    """

    def __init__(self, root: str, *, storage_options: dict[str, str] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = storage_options

    def __repr__(self) -> str:
        return f"DeltaOfflineStore({self.root!r})"

    # -- paths and tables --------------------------------------------------------------
    def table_uri(self, group: FeatureGroup) -> str:
        """Return where the group's table lives: ``<root>/<project>/<group id>``."""
        return f"{self.root}/{group.project}/{group.id}"

    def _open(self, group: FeatureGroup, version: int | str | dt.datetime | None = None) -> Any:
        """Return the group's DeltaTable, or None when it has none yet."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(self.table_uri(group), storage_options=self.storage_options)
            latest = int(table.version())
            if isinstance(version, int) and version > latest:
                raise ValidationError(
                    f"The offline table of {group.name!r} has versions 0 to {latest}; "
                    f"there is no version {version} yet.",
                    hint="pass as_of=<one of those versions> or a point in time",
                )
            if version is not None:
                table.load_as_version(version)
        except TableNotFoundError:
            return None
        except ValidationError:
            raise
        except Exception as exc:
            raise _backend(exc, f"open the table of {group.name!r}") from exc
        if version is not None and int(table.version()) != latest:
            self._check_not_vacuumed(group, table, latest)
        return table

    def _check_not_vacuumed(self, group: FeatureGroup, table: DeltaTable, latest: int) -> None:
        """Raise VersionVacuumed when a file of an older version ``table`` is gone.

        Time travel reads an older version's files; a vacuum (maintenance, or a hard
        delete) removes files no current version needs, so such a version would fail
        deep inside the reader with a file-not-found error. One stat per file, for
        time travel only.
        """
        from trivet.featurestore.errors import VersionVacuumed

        try:
            uris: list[str] = table.file_uris()
        except Exception as exc:
            raise _backend(exc, f"list the files of {group.name!r}") from exc
        missing = _missing_files(uris)
        if missing:
            raise VersionVacuumed(
                group.name,
                version=int(table.version()),
                missing=len(missing),
                files=len(uris),
                current=latest,
            )

    def exists(self, group: FeatureGroup) -> bool:
        """Return whether the group's table exists."""
        return self._open(group) is not None

    def ensure(self, group: FeatureGroup) -> None:
        """Create the group's table, or add the columns of features added since."""
        import pyarrow as pa
        from deltalake import DeltaTable, Field

        schema = group.arrow_schema()

        def attempt() -> None:
            table = self._open(group)
            if table is None:
                DeltaTable.create(
                    self.table_uri(group),
                    schema,
                    mode="ignore",
                    name=group.name,
                    configuration={
                        "delta.dataSkippingStatsColumns": f"{group.event_time},__write_time",
                    },
                    storage_options=self.storage_options,
                )
                return
            have = set(pa.schema(table.schema().to_arrow()).names)
            missing = [f for f in schema if f.name not in have]
            if missing:
                table.alter.add_columns([Field.from_arrow(f) for f in missing])

        self._retry(attempt, f"create the table of {group.name!r}")

    # -- writing -----------------------------------------------------------------------
    def append(
        self,
        group: FeatureGroup,
        data: pa.Table,
        *,
        batch_id: str,
        write_time: dt.datetime,
        deleted: bool = False,
    ) -> AppendResult:
        """Append a validated batch exactly once, stamped with ``write_time`` and ``batch_id``.

        The commit carries a Delta *app transaction* ``trivet-batch-<batch id>``: if that
        batch was committed before (by a run that crashed before recording it, or by a
        concurrent run), nothing is written and the earlier commit's write time is
        returned. Two concurrent commits of one batch conflict in Delta itself.

        Args:
            group: the feature group.
            data: the user columns (record id, event time, features) with their
                offline types, as validation produced them; it may also carry
                per-row ``__write_time`` and ``__deleted`` columns (a flushed
                micro-batch of single-record writes does), which are kept.
            batch_id: the batch's id (a sha256 hex digest).
            write_time: the ``__write_time`` of every row (unless ``data`` has its own).
            deleted: write tombstones (``__deleted`` true; features should be null),
                unless ``data`` has its own ``__deleted`` column.
        """
        import pyarrow as pa
        from deltalake import CommitProperties, Transaction, write_deltalake

        self.ensure(group)
        n = data.num_rows
        ts = pa.timestamp("us", tz="UTC")
        stamped = data
        if "__write_time" not in stamped.column_names:  # pa.repeat: no list of n datetimes
            stamped = stamped.append_column(
                pa.field("__write_time", ts), pa.repeat(pa.scalar(write_time, type=ts), n)
            )
        if "__deleted" not in stamped.column_names:
            stamped = stamped.append_column(
                pa.field("__deleted", pa.bool_()), pa.repeat(pa.scalar(deleted), n)
            )
        stamped = stamped.append_column(
            pa.field("__batch", pa.string()), pa.repeat(pa.scalar(batch_id, type=pa.string()), n)
        )
        schema = group.arrow_schema()
        stamped = stamped.select(schema.names).cast(schema)
        app_id = _APP_PREFIX + batch_id
        commit = CommitProperties(
            app_transactions=[
                Transaction(app_id, 1, int(write_time.timestamp() * 1000)),
            ],
            custom_metadata={"trivet.batch": batch_id, "trivet.group": group.id},
        )

        def attempt() -> AppendResult:
            table = self._open(group)
            if table is not None and table.transaction_version(app_id) is not None:
                return AppendResult(
                    version=None,
                    write_time=self._batch_write_time(table, batch_id) or write_time,
                    already=True,
                )
            write_deltalake(
                table if table is not None else self.table_uri(group),
                stamped,
                mode="append",
                commit_properties=commit,
                storage_options=self.storage_options,
                writer_properties=_writer_properties(group),
            )
            return AppendResult(version=None, write_time=write_time, already=False)

        result = self._retry(attempt, f"write to the table of {group.name!r}")
        if result.already:
            return result
        return AppendResult(
            version=self._version_of(group, app_id), write_time=write_time, already=False
        )

    def _version_of(self, group: FeatureGroup, app_id: str) -> int | None:
        table = self._open(group)
        if table is None:  # pragma: no cover - we just wrote to it
            return None
        for entry in table.history(50):
            if entry.get("trivet.batch") == app_id.removeprefix(_APP_PREFIX):
                return int(entry["version"])
        return None

    @staticmethod
    def _batch_write_time(table: DeltaTable, batch_id: str) -> dt.datetime | None:
        """Return the ``__write_time`` of a committed batch (a scan; for recovery only)."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        found = table.to_pyarrow_dataset().to_table(
            columns=["__write_time"], filter=ds.field("__batch") == batch_id
        )
        if found.num_rows == 0:
            return None
        value = pc.min(found["__write_time"]).as_py()
        return value if isinstance(value, dt.datetime) else None

    def hard_delete(self, group: FeatureGroup, keys: Sequence[object]) -> list[str]:
        """Delete every row of ``keys`` from the table, then vacuum the replaced files.

        The delete is a Delta ``MERGE`` against a table of the keys, so the key values
        never appear in the commit log (a ``DELETE`` would record its predicate there).
        Vacuum runs with zero retention in lite mode: it removes only files the log
        marks as removed, never the uncommitted files of a writer in flight. Versions
        before the delete can no longer be read (that is the point).

        Returns:
            The files vacuum removed.
        """
        import pyarrow as pa

        col = group.record_id
        source = pa.table({col: pa.array(list(keys), type=group.record_id_dtype.arrow())})

        def attempt() -> None:
            table = self._open(group)
            if table is None:
                return
            (
                table.merge(
                    source,
                    predicate=f't."{col}" = s."{col}"',
                    source_alias="s",
                    target_alias="t",
                )
                .when_matched_delete()
                .execute()
            )

        self._retry(attempt, f"delete records from the table of {group.name!r}")
        table = self._open(group)
        if table is None:
            return []
        try:
            removed: list[str] = table.vacuum(
                retention_hours=0, dry_run=False, enforce_retention_duration=False
            )
        except Exception as exc:
            raise _backend(exc, f"vacuum the table of {group.name!r}") from exc
        return removed

    # -- maintenance -------------------------------------------------------------------
    def table_files(self, group: FeatureGroup) -> tuple[int, int]:
        """Return the current version's data files: how many, and their bytes in total."""
        import pyarrow as pa
        import pyarrow.compute as pc

        table = self._open(group)
        if table is None:
            return 0, 0
        try:
            actions = pa.table(table.get_add_actions(flatten=True))
        except Exception as exc:
            raise _backend(exc, f"list the files of {group.name!r}") from exc
        size = pc.sum(actions["size_bytes"]).as_py() if actions.num_rows else 0
        return actions.num_rows, int(size or 0)

    def compact(self, group: FeatureGroup) -> tuple[int, int]:
        """Rewrite the table's small files into large ones, in one commit (with retries).

        Rows are copied as they are (``__write_time``, ``__batch`` and all), so readers
        see the same rows; older versions stay readable until a vacuum removes the
        replaced files.

        Returns:
            (files removed, files added).
        """
        from deltalake import CommitProperties

        commit = CommitProperties(custom_metadata={"trivet.maintenance": "compact"})

        def attempt() -> dict[str, Any]:
            table = self._open(group)
            if table is None:
                return {}
            metrics: dict[str, Any] = table.optimize.compact(commit_properties=commit)
            return metrics

        metrics = self._retry(attempt, f"compact the table of {group.name!r}")
        return int(metrics.get("numFilesRemoved", 0)), int(metrics.get("numFilesAdded", 0))

    def checkpoint(self, group: FeatureGroup) -> int | None:
        """Write a checkpoint of the current version; return that version (None: no table).

        A reader then loads the table from the checkpoint instead of replaying every
        commit since the previous one.
        """
        table = self._open(group)
        if table is None:
            return None
        try:
            table.create_checkpoint()
        except Exception as exc:
            raise _backend(exc, f"checkpoint the table of {group.name!r}") from exc
        return int(table.version())

    def vacuum(self, group: FeatureGroup, *, retention_hours: int) -> tuple[list[str], int]:
        """Delete the files no version younger than ``retention_hours`` needs.

        A *full* vacuum: files the log marks as removed more than ``retention_hours``
        ago, and files the log never mentions (a writer that died before committing)
        last modified more than ``retention_hours`` ago. The retention is trivet's to
        check (Delta's own 168-hour floor is not enforced here): a writer in flight may
        have written files it has not committed yet, so callers must not pass a
        retention shorter than any write may take (:meth:`FeatureStore.maintain`
        refuses less than an hour). Versions older than the retention may no longer be
        readable afterwards.

        Returns:
            The deleted files (relative to the table) and their bytes in total.
        """
        table = self._open(group)
        if table is None:
            return [], 0
        options = {
            "retention_hours": retention_hours,
            "enforce_retention_duration": False,
            "full": True,
        }
        try:
            doomed: list[str] = table.vacuum(dry_run=True, **options)
            sizes = _file_sizes(self.table_uri(group), doomed)
            removed: list[str] = table.vacuum(dry_run=False, **options)
        except Exception as exc:
            raise _backend(exc, f"vacuum the table of {group.name!r}") from exc
        return removed, sum(sizes.get(path, 0) for path in removed)

    def drop(self, group: FeatureGroup) -> None:
        """Delete the group's table and every file in it."""
        import pyarrow.fs as pafs

        uri = self.table_uri(group)
        try:
            fs, path = pafs.FileSystem.from_uri(uri if "://" in uri else "file://" + uri)
            if fs.get_file_info(path).type != pafs.FileType.NotFound:
                fs.delete_dir(path)
        except Exception as exc:
            raise _backend(exc, f"drop the table of {group.name!r}") from exc

    # -- reading -----------------------------------------------------------------------
    def offline_files(
        self, group: FeatureGroup, *, as_of: int | dt.datetime | None = None
    ) -> list[str]:
        """Return the absolute paths of the parquet files making up the table.

        Args:
            group: the feature group.
            as_of: a Delta version number or an aware datetime (time travel); default
                the current version.

        Raises:
            BackendError: the table uses deletion vectors or column mapping (its files
                alone would not give the table's rows), or the storage failed.
        """
        table = self._open(group, as_of)
        if table is None:
            return []
        self._check_plain(group, table)
        try:
            files: list[str] = table.file_uris()
        except Exception as exc:
            raise _backend(exc, f"list the files of {group.name!r}") from exc
        return files

    @staticmethod
    def _check_plain(group: FeatureGroup, table: DeltaTable) -> None:
        """Raise BackendError unless the table's files are its rows, as they are."""
        protocol = table.protocol()
        features = set(protocol.reader_features or ()) | set(protocol.writer_features or ())
        config = table.metadata().configuration
        mapping = config.get("delta.columnMapping.mode", "none") or "none"
        used = sorted(features & _UNSUPPORTED_FEATURES)
        if used or mapping != "none":
            what = ", ".join(used) or f"column mapping ({mapping})"
            raise BackendError(
                f"The offline table of feature group {group.name!r} uses {what}, which "
                "trivet's readers do not support.",
                hint="rewrite the table without deletion vectors and column mapping "
                "(e.g. REORG/purge in Spark), or recreate the group",
            )

    def read(self, group: FeatureGroup, *, as_of: int | dt.datetime | None = None) -> pa.Table:
        """Return every row of the table (all versions of every record)."""
        table = self._open(group, as_of)
        if table is None:
            return group.arrow_schema().empty_table()
        try:
            return table.to_pyarrow_table()
        except Exception as exc:
            raise _backend(exc, f"read the table of {group.name!r}") from exc

    def version(self, group: FeatureGroup) -> int | None:
        """Return the table's current version (None: no table yet)."""
        table = self._open(group)
        return None if table is None else int(table.version())

    # -- retries -----------------------------------------------------------------------
    @staticmethod
    def _retry(attempt: Callable[[], T], what: str) -> T:
        """Run ``attempt``; on a Delta commit conflict, back off and run it again."""
        from deltalake.exceptions import CommitFailedError

        delay = 0.01
        for number in range(1, _ATTEMPTS + 1):
            try:
                return attempt()
            except CommitFailedError as exc:
                if number == _ATTEMPTS:
                    raise BackendError(
                        f"The offline store could not {what}: {_ATTEMPTS} commits in a row "
                        "lost to concurrent writers.",
                        hint="retry later; if it persists, fewer concurrent writers help",
                    ) from exc
                time.sleep(delay * (1 + random.random()))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, 1.0)
            except BackendError:
                raise
            except Exception as exc:
                raise _backend(exc, what) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def _local_path(uri: str) -> str | None:
    """Return a local file's path for ``uri`` (a path or ``file://``), else None."""
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    return None if "://" in uri else uri


def _missing_files(uris: Sequence[str]) -> list[str]:
    """Return the ``uris`` that do not exist (object stores: best effort, [] if unknown)."""
    import pyarrow.fs as pafs

    local = [_local_path(u) for u in uris]
    if all(p is not None for p in local):
        return [u for u, p in zip(uris, local, strict=True) if not Path(p or "").exists()]
    try:
        fs, _ = pafs.FileSystem.from_uri(uris[0])
        infos = fs.get_file_info([uri.split("://", 1)[1] for uri in uris])
    except Exception:
        return []
    return [u for u, info in zip(uris, infos, strict=True) if info.type == pafs.FileType.NotFound]


def _file_sizes(root: str, paths: Sequence[str]) -> dict[str, int]:
    """Return the sizes of files under a table ``root`` (missing or unknown ones: absent)."""
    import pyarrow.fs as pafs

    sizes: dict[str, int] = {}
    base = _local_path(root)
    if base is not None:
        for path in paths:
            with contextlib.suppress(OSError):
                sizes[path] = (Path(base) / path).stat().st_size
        return sizes
    try:
        fs, prefix = pafs.FileSystem.from_uri(root)
        infos = fs.get_file_info([f"{prefix}/{path}" for path in paths])
    except Exception:
        return sizes
    for path, info in zip(paths, infos, strict=True):
        if info.type == pafs.FileType.File and info.size is not None:
            sizes[path] = int(info.size)
    return sizes
