"""The catalog side of the artifact store: content rows, folder entries, digests.

``artifacts`` holds one row per content (first writer's metadata; a plain blob learns
its kind when the same bytes are later put as a DataFrame, a directory or a model);
``artifact_entries`` holds one row per folder that holds it. Reading a digest needs
``artifact:read`` on one of those folders.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import sqlalchemy as sa

from trivet.errors import NotFound, ValidationError
from trivet.platform.catalog import now_utc
from trivet.platform.catalog._catalog import as_utc
from trivet.platform.catalog.schema import artifact_entries, artifacts, model_versions

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = [
    "ArtifactRef",
    "Kind",
    "held_among",
    "insert_entry",
    "readable",
    "record_put",
    "ref_query",
    "resolve",
    "to_ref",
]

Kind = Literal["blob", "dir", "dataframe", "model"]

_DIGEST = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"[0-9a-f]{8,63}")
_DIGEST_HINT = (
    "a digest is the 64 lower-case hexadecimal characters of a sha256 "
    "(or a unique prefix of at least 8 of them)"
)


@dataclass(frozen=True, kw_only=True)
class ArtifactRef:
    """An artifact as one folder holds it.

    ``created_at``, ``created_by`` (a principal id) and ``label`` describe the folder's
    entry; the other fields describe the content, which is the same in every folder.
    """

    digest: str
    kind: Kind
    size: int
    """Bytes of content; for a directory, the total of its files."""
    media_type: str
    meta: Mapping[str, Any] = field(hash=False)
    folder: str
    created_at: dt.datetime
    created_by: str | None
    label: str = ""


@functools.cache
def _insert_ignoring_duplicates(dialect: str, table: sa.Table, *, returning: bool = False) -> Any:
    """Return an insert that skips a row whose key exists (values are bound at execute).

    Built once per dialect and table: building a statement per row cost more than
    running it.
    """
    statement: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).on_conflict_do_nothing()
    return statement.returning(*table.primary_key.columns) if returning else statement


def ref_query() -> sa.Select[Any]:
    """Select folder entries joined with their content rows (filter and order it)."""
    return sa.select(
        artifacts.c.digest,
        artifacts.c.kind,
        artifacts.c.size,
        artifacts.c.media_type,
        artifacts.c.meta,
        artifact_entries.c.folder,
        artifact_entries.c.label,
        artifact_entries.c.created_at,
        artifact_entries.c.created_by,
    ).select_from(artifact_entries.join(artifacts, artifacts.c.digest == artifact_entries.c.digest))


_KNOWN_KIND = (
    sa.update(artifacts)
    .where(artifacts.c.digest == sa.bindparam("b_digest"), artifacts.c.kind == "blob")
    .values(
        kind=sa.bindparam("kind"),
        size=sa.bindparam("size"),
        media_type=sa.bindparam("media_type"),
        meta=sa.bindparam("meta"),
    )
)
_RELABEL = (
    sa.update(artifact_entries)
    .where(
        artifact_entries.c.folder == sa.bindparam("b_folder"),
        artifact_entries.c.digest == sa.bindparam("b_digest"),
        artifact_entries.c.label != sa.bindparam("label"),
    )
    .values(label=sa.bindparam("label"))
)
_ENTRY = ref_query().where(
    artifact_entries.c.folder == sa.bindparam("b_folder"),
    artifact_entries.c.digest == sa.bindparam("b_digest"),
)


def to_ref(row: sa.Row[Any]) -> ArtifactRef:
    """Build a reference from a row of :func:`ref_query`."""
    created = as_utc(row.created_at)
    assert created is not None
    return ArtifactRef(
        digest=row.digest,
        kind=cast(Kind, row.kind),
        size=int(row.size),
        media_type=row.media_type,
        meta=dict(row.meta or {}),
        folder=row.folder,
        created_at=created,
        created_by=row.created_by,
        label=row.label or "",
    )


def held_among(session: Session, digests: Sequence[str]) -> set[str]:
    """Return which of ``digests`` are held: by a folder's entry or a model version.

    A held digest's row (and so its blob) is safe from gc; a row that is merely present
    is not: a row nobody holds is exactly what gc deletes.
    """
    found: set[str] = set()
    with session.catalog.read() as conn:
        for i in range(0, len(digests), 500):
            batch = list(digests[i : i + 500])
            for query in _HOLDERS:
                found.update(conn.execute(query, {"b_digests": batch}).scalars())
    return found


_HOLDERS = tuple(
    sa.select(column).where(column.in_(sa.bindparam("b_digests", expanding=True))).distinct()
    for column in (
        artifact_entries.c.digest,
        model_versions.c.artifact_digest,
        model_versions.c.fairness_report_digest,
    )
)


def insert_entry(
    session: Session, conn: sa.Connection, *, folder: str, digest: str, label: str = ""
) -> bool:
    """File a stored digest in ``folder`` too, inside the caller's write transaction.

    The caller checks the permissions (the registry, for instance, files a model it
    registers under the model group's folder). An existing entry is left as it is.
    Returns whether an entry was added (and audited as ``artifact:link``).
    """
    added = conn.execute(  # returning: rowcount is -1 on PostgreSQL here
        _insert_ignoring_duplicates(session.catalog.dialect, artifact_entries, returning=True),
        {
            "folder": folder,
            "digest": digest,
            "label": label,
            "created_at": now_utc(),
            "created_by": session.principal.id,
        },
    ).first()
    if added is None:
        return False
    session.record(conn, action="artifact:link", resource=folder, detail={"digest": digest})
    return True


def record_put(
    session: Session,
    folder: str,
    label: str,
    *,
    digest: str,
    kind: Kind,
    size: int,
    media_type: str,
    meta: Mapping[str, Any] | None = None,
) -> ArtifactRef:
    """Write the content's row (if new), the folder's entry and an audit row."""
    now, pid = now_utc(), session.principal.id
    dialect = session.catalog.dialect
    with session.catalog.write() as conn:
        content = {"kind": kind, "size": size, "media_type": media_type, "meta": dict(meta or {})}
        conn.execute(
            _insert_ignoring_duplicates(dialect, artifacts),
            {"digest": digest, **content, "created_at": now, "created_by": pid},
        )
        if kind != "blob":  # the same bytes put plainly before: now we know what they are
            conn.execute(_KNOWN_KIND, {"b_digest": digest, **content})
        entry = {"folder": folder, "digest": digest}
        conn.execute(
            _insert_ignoring_duplicates(dialect, artifact_entries),
            {**entry, "label": label, "created_at": now, "created_by": pid},
        )
        where = {"b_folder": folder, "b_digest": digest}
        if label:
            conn.execute(_RELABEL, {**where, "label": label})
        row = conn.execute(_ENTRY, where).one()
        session.record(
            conn,
            action="artifact:put",
            resource=folder,
            detail={"digest": digest, "kind": row.kind, "size": int(row.size)},
        )
    return to_ref(row)


def resolve(session: Session, digest: object) -> str:
    """Return the full digest for a digest or a unique prefix of one."""
    if isinstance(digest, str):
        text = digest.removeprefix("sha256:")
        if _DIGEST.fullmatch(text):
            return text
        if _PREFIX.fullmatch(text):
            return _expand(session, text)
        shown = repr(digest[:80])
    else:
        shown = f"a {type(digest).__name__}"
    raise ValidationError(f"{shown} is not an artifact digest.", hint=_DIGEST_HINT)


def _expand(session: Session, prefix: str) -> str:
    with session.catalog.read() as conn:
        rows = conn.execute(
            sa.select(artifact_entries.c.digest, artifact_entries.c.folder)
            .where(artifact_entries.c.digest.startswith(prefix, autoescape=True))
            .limit(1000)
        ).all()
    everything = {r.digest for r in rows}
    if not everything:
        raise NotFound(f"No artifact's digest starts with {prefix!r}.")
    if len(everything) == 1:
        return str(everything.pop())
    mine = {r.digest for r in rows if session.can("artifact:read", r.folder)}
    if len(mine) == 1:
        return str(mine.pop())
    raise ValidationError(
        f"The digest prefix {prefix!r} matches several artifacts.",
        hint="give more of the digest",
    )


def readable(session: Session, digest: object) -> ArtifactRef:
    """Resolve ``digest`` and check ``artifact:read`` on a folder that holds it."""
    resolved = resolve(session, digest)
    with session.catalog.read() as conn:
        rows = conn.execute(
            ref_query()
            .where(artifact_entries.c.digest == resolved)
            .order_by(artifact_entries.c.folder)
        ).all()
    if not rows:
        raise NotFound(
            f"There is no artifact {resolved}.",
            hint="see what you may read with `trivet artifacts list`",
        )
    for row in rows:
        if session.can("artifact:read", row.folder):
            return to_ref(row)
    session.require("artifact:read", rows[0].folder)  # denied: raises, and is audited
    return to_ref(rows[0])
