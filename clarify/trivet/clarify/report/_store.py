"""Reports in the artifact store: storing, reading and signing off, with lineage and audit.

A report named ``credit`` lives in the artifact folder ``<project>/reports/credit``:
each version is one JSON artifact (the document) and one HTML artifact (its page).
Permissions are clarify's, on that folder:

- storing needs ``clarify:run`` (and, because the bytes go through the public artifact
  store, ``artifact:write`` — the data_scientist role has both);
- reading needs ``clarify:read_report`` (the viewer role has it; ``artifact:read`` is
  not needed, so reviewers and viewers read reports without reading other artifacts);
- signing off needs ``clarify:review`` (the approver role), and writes the signed
  version without ``artifact:write``: a reviewer adds a version to a report's folder,
  nothing else.

Reading and the reviewer's write go under the artifact store's own permission check,
through its internal helpers (the registry does the same for model folders); the
bytes are still content-addressed and verified on every read.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trivet.clarify.report._document import Report, canonical_json
from trivet.clarify.report._review import check_definition, review_section
from trivet.errors import Conflict, NotFound, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = [
    "ReportEntry",
    "list_reports",
    "read_report",
    "read_report_html",
    "report_folder",
    "sign_off",
    "store_report",
]

_HEX = re.compile(r"[0-9a-f]{8,64}")
_MAX_TEXT = 4000


@dataclass(frozen=True, kw_only=True)
class StoredReport:
    """A report version in the artifact store.

    Attributes:
        name: the report's name.
        digest: the sha256 of its JSON (what ``get_report`` and the registry take).
        html_digest: the sha256 of its HTML page.
        folder: the artifact folder, ``<project>/reports/<name>``.
        report: the report itself.
    """

    name: str
    digest: str
    html_digest: str
    folder: str
    report: Report

    @property
    def checks_passed(self) -> bool | None:
        """Whether every check passed (None: no checks) — the input of a gate."""
        return self.report.checks_passed

    @property
    def previous(self) -> str | None:
        """The digest of the version this one revises (a sign-off's source)."""
        value = self.report.document.get("previous")
        return None if value is None else str(value)

    def _repr_html_(self) -> str:
        return self.report._repr_html_()


@dataclass(frozen=True, kw_only=True)
class ReportEntry:
    """A stored report version, as listed (its document is read with ``get_report``).

    Attributes:
        name: the report's name.
        digest: the sha256 of its JSON.
        html_digest: the sha256 of its HTML page.
        folder: the artifact folder, ``<project>/reports/<name>``.
        created_at: when this version was stored.
        created_by: the name of the principal who stored it (None if since deleted).
    """

    name: str
    digest: str
    html_digest: str
    folder: str
    created_at: dt.datetime
    created_by: str | None


def report_folder(session: Session, name: str) -> str:
    """Return ``<project>/reports/<name>`` after checking the name."""
    from trivet.platform.names import check_name

    return session.resource("reports", check_name(name, what="report name"))


def model_version_path(session: Session, model_version: str) -> str:
    """Return a model version's resource path from ``name/3`` or ``project/models/name/3``."""
    if not isinstance(model_version, str):
        raise ValidationError(
            f"model_version must be a string, not {type(model_version).__name__}."
        )
    parts = model_version.split("/")
    if len(parts) == 2:
        return session.resource("models", *parts)
    if len(parts) == 4 and parts[1] == "models":
        return model_version
    raise ValidationError(
        f"{model_version!r} does not name a model version.",
        hint="use '<model group>/<version>' (e.g. 'credit/3') or "
        "'<project>/models/<group>/<version>'",
    )


def _now() -> str:
    from trivet.platform.catalog import now_utc

    return now_utc().isoformat(timespec="seconds")


def _edges(
    session: Session,
    *,
    action: str,
    folder: str,
    digest: str,
    html_digest: str,
    sources: list[tuple[Any, str]],
    detail: Mapping[str, Any],
) -> None:
    from trivet.platform.lineage import Node, insert_edge

    report = Node(kind="report", id=digest)
    with session.catalog.write() as conn:
        for src, relation in sources:
            insert_edge(session, conn, src, report, relation)
        insert_edge(session, conn, report, Node(kind="artifact", id=html_digest), "rendered_as")
        session.record(
            conn,
            action=action,
            resource=folder,
            detail={"report": digest, "html": html_digest, **detail},
        )


def store_report(
    session: Session,
    name: str,
    document: dict[str, Any],
    *,
    folder: str,
    model_path: str | None,
    action: str = "clarify:report",
    sources: Sequence[tuple[Any, str]] = (),
    detail: Mapping[str, Any] | None = None,
) -> StoredReport:
    """Store a document built for ``name`` (the caller checked ``clarify:run``).

    ``action`` names the audit row; ``sources`` adds lineage edges ``(node, relation)``
    into the report, ``detail`` fields to the audit row (a baseline and a monitoring
    run use these).
    """
    from trivet.clarify.report._html import render_report
    from trivet.platform.lineage import Node

    data = canonical_json(document)
    ref = session.artifacts.put_bytes(
        data, folder=folder, media_type="application/json", label=f"fairness report {name}"
    )
    page = render_report(document, digest=ref.digest).encode("utf-8")
    html = session.artifacts.put_bytes(
        page, folder=folder, media_type="text/html", label=f"fairness report {name} (HTML)"
    )
    edges = list(sources)
    if document.get("data_digest"):
        edges.append((Node(kind="dataset", id=document["data_digest"]), "evaluated_on"))
    if model_path is not None:
        edges.append((Node(kind="model_version", id=model_path), "evaluated"))
    checks = document.get("checks")
    _edges(
        session,
        action=action,
        folder=folder,
        digest=ref.digest,
        html_digest=html.digest,
        sources=edges,
        detail={"checks_passed": None if checks is None else checks["passed"], **(detail or {})},
    )
    return StoredReport(
        name=name,
        digest=ref.digest,
        html_digest=html.digest,
        folder=folder,
        report=Report(document=document, digest=ref.digest),
    )


def _locate(session: Session, digest: object, action: str) -> tuple[str, str, str | None]:
    """Resolve a report digest (or unique prefix); require ``action`` on a folder of it.

    Returns (digest, folder, the principal id that filed it there).
    """
    import sqlalchemy as sa

    from trivet.platform.catalog.schema import artifact_entries, artifacts

    if not isinstance(digest, str) or _HEX.fullmatch(digest) is None:
        raise ValidationError(
            f"{str(digest)[:80]!r} is not a report digest.",
            hint="a digest is the 64 hexadecimal characters of a sha256 (or a unique prefix "
            "of at least 8)",
        )
    with session.catalog.read() as conn:
        rows = conn.execute(
            sa.select(
                artifact_entries.c.digest,
                artifact_entries.c.folder,
                artifact_entries.c.created_by,
            )
            .join(artifacts, artifacts.c.digest == artifact_entries.c.digest)
            .where(
                artifact_entries.c.digest.startswith(digest, autoescape=True),
                artifact_entries.c.folder.contains("/reports/", autoescape=True),
                artifacts.c.media_type == "application/json",
            )
            .order_by(artifact_entries.c.folder)
        ).all()
    found = sorted({r.digest for r in rows})
    if not found:
        raise NotFound(
            f"There is no report {digest}.",
            hint="a report's digest is the one Clarify(session).report(...) returned",
        )
    if len(found) > 1:
        raise ValidationError(
            f"The prefix {digest!r} matches {len(found)} reports.", hint="give more characters"
        )
    for row in rows:
        if session.can(action, row.folder):
            return row.digest, row.folder, row.created_by
    session.require(action, rows[0].folder)  # audits the denial and raises
    raise AssertionError("unreachable")  # pragma: no cover


def list_reports(session: Session, name: str | None = None) -> list[ReportEntry]:
    """Return the project's report versions the session may read, newest first.

    A report version is a JSON artifact in ``<project>/reports/<name>`` that clarify
    stored (it has a ``rendered_as`` lineage edge to its page); other JSON filed there
    is not listed.
    """
    import sqlalchemy as sa

    from trivet.platform.catalog.schema import (
        artifact_entries,
        artifacts,
        lineage_edges,
        principals,
    )

    prefix = report_folder(session, name) if name is not None else session.resource("reports", "")
    folder_clause = (
        artifact_entries.c.folder == prefix
        if name is not None
        else artifact_entries.c.folder.startswith(prefix, autoescape=True)
    )
    with session.catalog.read() as conn:
        rows = conn.execute(
            sa.select(
                artifact_entries.c.digest,
                artifact_entries.c.folder,
                artifact_entries.c.created_at,
                principals.c.name.label("creator"),
                lineage_edges.c.dst_id.label("html_digest"),
            )
            .select_from(
                artifact_entries.join(artifacts, artifacts.c.digest == artifact_entries.c.digest)
                .join(
                    lineage_edges,
                    sa.and_(
                        lineage_edges.c.src_kind == "report",
                        lineage_edges.c.src_id == artifact_entries.c.digest,
                        lineage_edges.c.relation == "rendered_as",
                        lineage_edges.c.dst_kind == "artifact",
                    ),
                )
                .outerjoin(principals, principals.c.id == artifact_entries.c.created_by)
            )
            .where(folder_clause, artifacts.c.media_type == "application/json")
            .order_by(artifact_entries.c.created_at.desc(), artifact_entries.c.digest)
        ).all()
    seen: set[str] = set()
    entries: list[ReportEntry] = []
    for row in rows:
        if row.digest in seen or row.folder.count("/") != 2:
            continue
        if not session.can("clarify:read_report", row.folder):
            continue
        seen.add(row.digest)
        entries.append(
            ReportEntry(
                name=row.folder.rsplit("/", 1)[1],
                digest=row.digest,
                html_digest=row.html_digest,
                folder=row.folder,
                created_at=row.created_at,
                created_by=row.creator,
            )
        )
    return entries


def read_report_html(session: Session, digest: str) -> str:
    """Return a stored report's HTML page; needs ``clarify:read_report`` on its folder.

    The page stored with the report is returned (verified against its digest); a
    report stored without one is rendered from its JSON.
    """
    import sqlalchemy as sa

    from trivet.platform.catalog.schema import artifact_entries, lineage_edges

    resolved, folder, _ = _locate(session, digest, "clarify:read_report")
    with session.catalog.read() as conn:
        page = conn.execute(
            sa.select(lineage_edges.c.dst_id)
            .join(
                artifact_entries,
                sa.and_(
                    artifact_entries.c.digest == lineage_edges.c.dst_id,
                    artifact_entries.c.folder == folder,
                ),
            )
            .where(
                lineage_edges.c.src_kind == "report",
                lineage_edges.c.src_id == resolved,
                lineage_edges.c.relation == "rendered_as",
                lineage_edges.c.dst_kind == "artifact",
            )
            .limit(1)
        ).scalar()
    if page is None:
        return _read(session, resolved).to_html()
    return session.artifacts._read(page).decode("utf-8")


def _read(session: Session, digest: str) -> Report:
    data = session.artifacts._read(digest)  # verified against the digest
    return Report.from_json(data, digest=digest)


def read_report(session: Session, digest: str) -> Report:
    """Return a stored report; needs ``clarify:read_report`` on its folder."""
    resolved, _, _ = _locate(session, digest, "clarify:read_report")
    return _read(session, resolved)


def _put_reviewed(session: Session, data: bytes, folder: str, media_type: str, label: str) -> str:
    """File bytes in a report folder for a reviewer (``clarify:review`` checked)."""
    from trivet.platform.artifacts._entries import record_put

    store = session.artifacts
    digest = hashlib.sha256(data).hexdigest()
    kept = store._store_blob(digest, data, len(data))
    record_put(
        session, folder, label, digest=digest, kind="blob", size=len(data), media_type=media_type
    )
    store._restore_kept(kept)
    return digest


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"A sign-off needs a {what}.",
            hint="say it in a sentence or two; it is kept in the report and the audit log",
        )
    text = value.strip()
    if len(text) > _MAX_TEXT:
        raise ValidationError(f"The {what} is longer than {_MAX_TEXT} characters.")
    return text


def sign_off(
    session: Session, digest: str, *, definition: str, rationale: str, tradeoffs: str
) -> StoredReport:
    """Sign a report off: store a new version with the review filled in (see Clarify)."""
    from trivet.clarify.report._html import render_report
    from trivet.platform.access import policy
    from trivet.platform.identity import PrincipalKind
    from trivet.platform.lineage import Node

    chosen = check_definition(definition)
    why = _text(rationale, "rationale (why this definition fits this use)")
    accepted = _text(tradeoffs, "statement of the trade-offs it accepts")
    resolved, folder, filed_by = _locate(session, digest, "clarify:review")
    if session.principal.kind is PrincipalKind.SERVICE:
        raise PermissionDenied(
            f"{session.principal.name!r} is a service principal; signing off a fairness "
            "review is a person's decision.",
            hint="a pipeline stores the report; a reviewer signs it off",
        )
    with session.catalog.read() as conn:
        four_eyes = policy(conn, "four_eyes")
    if four_eyes and filed_by is not None and filed_by == session.principal.id:
        raise PermissionDenied(
            f"{session.principal.name!r} may not sign off a report it stored: this workspace "
            "requires four eyes.",
            hint="ask another reviewer (the workspace policy four_eyes is on)",
        )
    previous = _read(session, resolved)
    if previous.is_signed_off:
        raise Conflict(
            f"The report {resolved[:12]}… is signed off already; a sign-off is final.",
            hint="compute a new report to review again",
        )
    document = copy.deepcopy(dict(previous.document))
    document["previous"] = resolved
    checks = document.get("checks")
    signature = {
        "principal": session.principal.name,
        "principal_id": session.principal.id,
        "on_behalf_of": session.on_behalf_of.name if session.on_behalf_of else None,
        "at": _now(),
        "signed": resolved,
        "checks_passed": None if checks is None else checks["passed"],
    }
    document["review"] = review_section(
        document,
        definition=chosen.name,
        rationale=why,
        tradeoffs=accepted,
        status="signed_off",
        sign_off=signature,
    )
    name = str(document["name"])
    data = canonical_json(document)
    new = _put_reviewed(session, data, folder, "application/json", f"fairness report {name}")
    page = render_report(document, digest=new).encode("utf-8")
    html = _put_reviewed(session, page, folder, "text/html", f"fairness report {name} (HTML)")
    _edges(
        session,
        action="clarify:sign_off",
        folder=folder,
        digest=new,
        html_digest=html,
        sources=[(Node(kind="report", id=resolved), "signed_off")],
        detail={
            "previous": resolved,
            "definition": chosen.name,
            "rationale": why,
            "tradeoffs": accepted,
            "checks_passed": signature["checks_passed"],
        },
    )
    return StoredReport(
        name=name,
        digest=new,
        html_digest=html,
        folder=folder,
        report=Report(document=document, digest=new),
    )
