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
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from trivet.errors import BackendError, ValidationError
from trivet.featurestore.definitions import FeatureGroup

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

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
            if isinstance(version, int) and version > table.version():
                raise ValidationError(
                    f"The offline table of {group.name!r} has versions 0 to {table.version()}; "
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
        return table

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
                offline types, as validation produced them.
            batch_id: the batch's id (a sha256 hex digest).
            write_time: the ``__write_time`` of every row.
            deleted: write tombstones (``__deleted`` true; features should be null).
        """
        import pyarrow as pa
        from deltalake import CommitProperties, Transaction, write_deltalake

        self.ensure(group)
        n = data.num_rows
        ts = pa.timestamp("us", tz="UTC")
        stamped = data.append_column(
            pa.field("__write_time", ts), pa.array([write_time] * n, type=ts)
        )
        stamped = stamped.append_column(
            pa.field("__deleted", pa.bool_()), pa.array([deleted] * n, type=pa.bool_())
        )
        stamped = stamped.append_column(
            pa.field("__batch", pa.string()), pa.array([batch_id] * n, type=pa.string())
        )
        stamped = stamped.cast(group.arrow_schema())
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
