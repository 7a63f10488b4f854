"""Garbage collection: catalog rows nobody holds, blobs no row needs, stale staging files.

Safe alongside puts in flight: a put writes its blob before its rows, and gc deletes
only what is older than a grace period (rows by creation time, blobs by modification
time, re-checked just before deleting). A put that finds the blob stored reuses it only
if the digest is *held* (a folder's entry or a model version); otherwise it rewrites
it, which renews its modification time.

Blobs are deleted in batches inside a catalog write transaction, which serialises with
every put's commit (SQLite's write lock; PostgreSQL's writer lock): each batch first
re-checks that no ``artifacts`` row names the digest and that no directory committed
since gc started needs it. A put that reused a held blob whose holder went away
meanwhile therefore either committed before the re-check (and gc keeps the blob) or
after the delete, and then it finds the blob gone after its commit and writes it again.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from trivet.errors import IntegrityError
from trivet.platform.artifacts import _dirs
from trivet.platform.artifacts._base import (
    BLOB_PREFIX,
    STAGING_PREFIX,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    digest_of_key,
)
from trivet.platform.artifacts._streams import read_verified
from trivet.platform.catalog import now_utc
from trivet.platform.catalog._catalog import as_utc
from trivet.platform.catalog.schema import artifact_entries, artifacts, model_versions

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = ["GcReport", "collect"]

_STAGING_KEY = re.compile(re.escape(STAGING_PREFIX) + r"[0-9a-f]{32}\.part")
_BATCH = 500
_DELETE_BATCH = 100  # blobs deleted per catalog write transaction (it holds the writer lock)


@dataclass(frozen=True, kw_only=True)
class GcReport:
    """What a garbage collection deleted (or, with ``dry_run``, would delete)."""

    dry_run: bool
    rows_deleted: int
    """Catalog ``artifacts`` rows that no folder held and no model version referenced."""
    blobs_deleted: int
    """Blobs that no remaining row (or directory of one) needed."""
    bytes_freed: int
    """The size of those blobs."""
    temp_files_deleted: int
    """Staging files left behind by interrupted puts."""
    lost: tuple[str, ...] = ()
    """Digests the catalog (or a directory manifest) needs whose blob is missing."""


def _orphan() -> sa.ColumnElement[bool]:
    return sa.and_(
        ~sa.exists().where(artifact_entries.c.digest == artifacts.c.digest),
        ~sa.exists().where(model_versions.c.artifact_digest == artifacts.c.digest),
        ~sa.exists().where(model_versions.c.fairness_report_digest == artifacts.c.digest),
    )


def _batches(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


def _old(mtime: dt.datetime, cutoff: dt.datetime) -> bool:
    return mtime < cutoff


def _delete_rows(session: Session, cutoff: dt.datetime, dry_run: bool) -> tuple[int, set[str]]:
    catalog = session.catalog
    with catalog.read() as conn:
        candidates = conn.execute(
            sa.select(artifacts.c.digest, artifacts.c.created_at).where(_orphan())
        ).all()
    doomed = sorted(
        r.digest for r in candidates if (ts := as_utc(r.created_at)) is not None and ts < cutoff
    )
    if dry_run or not doomed:
        return len(doomed), set(doomed)
    deleted = 0
    with catalog.write() as conn:
        for batch in _batches(doomed):
            result = conn.execute(
                sa.delete(artifacts).where(artifacts.c.digest.in_(batch), _orphan())
            )
            deleted += result.rowcount
    return deleted, set(doomed)


def _members(blobs: BlobStore, dirs: Sequence[str]) -> set[str]:
    members: set[str] = set()
    for digest in dirs:
        try:
            data = read_verified(blobs, digest)
        except BlobNotFound:
            data = None
        except IntegrityError:
            data = None
        if data is None:
            raise IntegrityError(
                f"The directory artifact {digest} has a lost or corrupt manifest, so the "
                "files it needs are unknown; no blob was deleted.",
                hint="unlink it from every folder that holds it (or put the folder again), "
                "then run gc again",
            )
        members.update(m.digest for m in _dirs.parse_manifest(data, digest))
    return members


def _delete_blobs(
    session: Session,
    blobs: BlobStore,
    batch: Sequence[BlobInfo],
    *,
    cutoff: dt.datetime,
    needed: set[str],
    expanded: set[str],
) -> tuple[int, int]:
    """Delete a batch of unneeded blobs, re-checking the catalog under its write lock.

    Returns (blobs deleted, bytes freed). ``needed`` and ``expanded`` (the directories
    whose files are in ``needed``) grow with directories committed since gc started.
    """
    digests = {info.key: digest_of_key(info.key) for info in batch}
    deleted = freed = 0
    with session.catalog.write() as conn:
        rows = set(
            conn.execute(
                sa.select(artifacts.c.digest).where(artifacts.c.digest.in_(digests.values()))
            ).scalars()
        )
        dirs = set(
            conn.execute(sa.select(artifacts.c.digest).where(artifacts.c.kind == "dir")).scalars()
        )
        new_dirs = sorted(dirs - expanded)
        if new_dirs:
            try:
                needed.update(_members(blobs, new_dirs))
            except IntegrityError:
                return 0, 0  # a directory whose files are unknown: keep this batch
            expanded.update(new_dirs)
        for info in batch:
            digest = digests[info.key]
            if digest in rows or digest in needed:
                continue
            fresh = blobs.info(info.key)  # a put may have just rewritten it
            if fresh is None or not _old(fresh.mtime, cutoff):
                continue
            blobs.delete(info.key)
            deleted += 1
            freed += info.size
    return deleted, freed


def collect(session: Session, blobs: BlobStore, *, grace: dt.timedelta, dry_run: bool) -> GcReport:
    """Run one garbage collection (the caller has checked ``grant:manage``)."""
    cutoff = now_utc() - grace
    rows_deleted, doomed = _delete_rows(session, cutoff, dry_run)
    with session.catalog.read() as conn:
        live = {
            r.digest: r.kind
            for r in conn.execute(sa.select(artifacts.c.digest, artifacts.c.kind))
            if r.digest not in doomed
        }
    expanded = {d for d, kind in live.items() if kind == "dir"}
    members = _members(blobs, sorted(expanded))
    needed = set(live) | members

    blobs_deleted = bytes_freed = 0
    seen: set[str] = set()
    candidates: list[BlobInfo] = []
    for info in blobs.list(BLOB_PREFIX):
        digest = digest_of_key(info.key)
        if digest is None:
            continue  # not a blob of ours: leave it alone
        seen.add(digest)
        if digest in needed or not _old(info.mtime, cutoff):
            continue
        if dry_run:
            blobs_deleted += 1
            bytes_freed += info.size
        else:
            candidates.append(info)
    for i in range(0, len(candidates), _DELETE_BATCH):
        deleted, freed = _delete_blobs(
            session,
            blobs,
            candidates[i : i + _DELETE_BATCH],
            cutoff=cutoff,
            needed=needed,
            expanded=expanded,
        )
        blobs_deleted += deleted
        bytes_freed += freed

    temp_files = 0
    for info in blobs.list(STAGING_PREFIX):
        if _STAGING_KEY.fullmatch(info.key) and _old(info.mtime, cutoff):
            if not dry_run:
                blobs.delete(info.key)
            temp_files += 1

    report = GcReport(
        dry_run=dry_run,
        rows_deleted=rows_deleted,
        blobs_deleted=blobs_deleted,
        bytes_freed=bytes_freed,
        temp_files_deleted=temp_files,
        lost=tuple(sorted(needed - seen)),
    )
    if not dry_run:
        with session.catalog.write() as conn:
            session.record(
                conn,
                action="artifact:gc",
                resource="_workspace",
                detail={
                    "rows_deleted": rows_deleted,
                    "blobs_deleted": blobs_deleted,
                    "bytes_freed": bytes_freed,
                    "temp_files_deleted": temp_files,
                    "lost": len(report.lost),
                    "grace_seconds": grace.total_seconds(),
                },
            )
    return report
