"""Maintenance of the offline tables: compact, checkpoint, vacuum (``FeatureStore.maintain``).

Every ingest and every flushed micro-batch adds a Delta commit and a parquet file, so
a busy group's table grows many small files and a long log. ``maintain`` does, in
this order:

1. flush the group's buffered writes (so they are compacted too);
2. **compact**: rewrite small files into files of up to 100 MB in one commit
   (``optimize.compact``); the rows, with their ``__write_time``, ``__deleted`` and
   ``__batch``, are copied as they are, so readers see the same table;
3. **checkpoint**: write the current version's state as a Delta checkpoint, so opening
   the table reads one parquet file instead of replaying every commit;
4. **vacuum**: delete files that no version younger than the retention needs — files
   replaced by compactions, deletes and merges more than ``vacuum_hours`` ago — and
   files a crashed writer left uncommitted, once older than the retention.

**The retention floor.** A writer in flight writes its parquet files before it commits
them; a vacuum that runs meanwhile sees files the log does not mention. Delta's own
guard refuses retentions under 7 days unless told otherwise
(``enforce_retention_duration``); trivet turns that guard off so that shorter
retentions are possible, and enforces its own floor of **1 hour** instead: no write
takes that long, while a zero retention (as a hard delete uses, in *lite* mode that
only touches files the log removed) could delete a running writer's files.

**Time travel** reaches back only as far as the retention: reading an older version
whose files were vacuumed raises :class:`~trivet.featurestore.VersionVacuumed`.
Files a compaction replaces are freed by a *later* run, once older than the retention.

**Permissions.** ``feature:write`` on the group with the default retention (168 h) or
longer — compaction and checkpoints change no row, and a week of history stays; a
shorter retention needs ``feature:delete``, because it erases history that
reproducible training sets (``as_of``) may depend on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trivet.errors import ValidationError

if TYPE_CHECKING:
    from trivet.featurestore.store import FeatureStore

__all__ = [
    "DEFAULT_VACUUM_HOURS",
    "MIN_VACUUM_HOURS",
    "MaintenanceReport",
    "check_vacuum_hours",
    "maintain",
    "maintainable",
]

DEFAULT_VACUUM_HOURS = 168
MIN_VACUUM_HOURS = 1


@dataclass(frozen=True, kw_only=True)
class MaintenanceReport:
    """What :meth:`FeatureStore.maintain` did to one group's offline table.

    Attributes:
        group: the feature group.
        files_before: data files in the current version before maintenance
            (``bytes_before``: their size).
        files_after: data files in the current version after it (``bytes_after``).
        files_compacted: small files the compaction replaced (they stay on disk, for
            time travel, until a later vacuum finds them older than the retention).
        files_written: the files the compaction wrote instead.
        files_vacuumed: files the vacuum deleted from storage (``bytes_freed``: their
            size): replaced more than ``vacuum_hours`` ago, or never committed.
        checkpoint_version: the table version the new checkpoint holds.
        vacuum_hours: the retention used.
        flushed: buffered single-record writes flushed first.
        seconds: how long it took.
    """

    group: str
    files_before: int
    bytes_before: int
    files_after: int
    bytes_after: int
    files_compacted: int
    files_written: int
    files_vacuumed: int
    bytes_freed: int
    checkpoint_version: int | None
    vacuum_hours: int
    flushed: int
    seconds: float


def check_vacuum_hours(vacuum_hours: object) -> int:
    """Return ``vacuum_hours`` if it is an int of at least 1, else raise ValidationError."""
    if isinstance(vacuum_hours, bool) or not isinstance(vacuum_hours, int):
        raise ValidationError(
            f"vacuum_hours must be a whole number of hours, not {vacuum_hours!r}.",
            hint=f"e.g. vacuum_hours={DEFAULT_VACUUM_HOURS} (the default: a week)",
        )
    if vacuum_hours < MIN_VACUUM_HOURS:
        raise ValidationError(
            f"A vacuum retention of {vacuum_hours} hours is below the minimum of "
            f"{MIN_VACUUM_HOURS} hour: a writer in flight may have written files it has "
            "not committed yet, and a shorter retention could delete them.",
            hint=f"use --vacuum-hours {MIN_VACUUM_HOURS} or more (default "
            f"{DEFAULT_VACUUM_HOURS}); to erase one record now, use "
            "`trivet featurestore delete GROUP ID --hard`",
        )
    return vacuum_hours


def _action(vacuum_hours: int) -> str:
    return "feature:write" if vacuum_hours >= DEFAULT_VACUUM_HOURS else "feature:delete"


def maintain(store: FeatureStore, name: str, *, vacuum_hours: int) -> MaintenanceReport:
    """See :meth:`trivet.featurestore.FeatureStore.maintain`."""
    hours = check_vacuum_hours(vacuum_hours)
    resource = store._require(_action(hours), name)
    group, _ = store._load(name)
    if not group.offline:
        raise ValidationError(
            f"Feature group {name!r} keeps no offline table, so there is nothing to maintain.",
            hint="maintain groups created with offline=True",
        )
    start = time.perf_counter()
    flushed = store._flush_ids([group.id])
    offline = store.offline
    files_before, bytes_before = offline.table_files(group)
    compacted, written = offline.compact(group)
    checkpoint = offline.checkpoint(group)
    vacuumed, freed = offline.vacuum(group, retention_hours=hours)
    files_after, bytes_after = offline.table_files(group)
    report = MaintenanceReport(
        group=group.name,
        files_before=files_before,
        bytes_before=bytes_before,
        files_after=files_after,
        bytes_after=bytes_after,
        files_compacted=compacted,
        files_written=written,
        files_vacuumed=len(vacuumed),
        bytes_freed=freed,
        checkpoint_version=checkpoint,
        vacuum_hours=hours,
        flushed=flushed,
        seconds=round(time.perf_counter() - start, 3),
    )
    with store._s.catalog.write() as conn:
        store._s.record(
            conn,
            action="feature:maintain",
            resource=resource,
            detail={k: v for k, v in vars(report).items() if k not in ("group", "seconds")},
        )
    return report


def maintainable(store: FeatureStore, *, vacuum_hours: int) -> list[str]:
    """Return the groups with an offline table that you may maintain with that retention."""
    action = _action(check_vacuum_hours(vacuum_hours))
    return [g.name for g in store.list_groups() if g.offline and store._s.can(action, g.resource)]
