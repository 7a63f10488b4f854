"""Clarify's HTTP routes (mounted by :mod:`trivet.server`): fairness reports.

Under ``/v1/projects/{project}/reports``: the stored report versions you may read,
one report's JSON document, and its self-contained HTML page. Reading needs
``clarify:read_report`` on the report's folder (``<project>/reports/<name>``); the
viewer role has it. The HTML page holds text from data and from people (group names,
feature names, a reviewer's rationale): it is escaped when rendered, and served with
a Content-Security-Policy that lets it run no script and fetch nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from trivet.platform.http import ERRORS, Cursor, Limit, Page, ProjectSession, paginate

if TYPE_CHECKING:
    from trivet.clarify import Clarify
    from trivet.clarify.report import ReportEntry
    from trivet.platform.session import Session

__all__ = ["REPORT_CSP", "router"]

router = APIRouter(prefix="/v1/projects/{project}", tags=["clarify"], responses=ERRORS)

REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
"""The Content-Security-Policy of a report's HTML page: no script, no fetch, inline
styles and data: images only; framable by the console (same origin) alone."""

Digest = Annotated[
    str,
    Path(
        min_length=8,
        max_length=64,
        pattern=r"^[0-9a-f]{8,64}$",
        description="The report's sha256 (or a unique prefix of at least 8 characters).",
    ),
]


class ReportSummaryOut(BaseModel):
    """A stored report version, as listed."""

    digest: str = Field(description="The sha256 of the report's JSON.")
    name: str
    created_at: dt.datetime
    created_by: str | None
    model_version: str | None = Field(
        description="The model version it evaluated (`<project>/models/<name>/<version>`)."
    )
    checks_passed: bool | None = Field(description="Whether every check passed; null: none.")
    review_status: str = Field(description="`unreviewed`, `proposed` or `signed_off`.")
    previous: str | None = Field(description="The version a sign-off revised.")
    html_digest: str


def _clarify(session: Session) -> Clarify:
    from trivet.clarify import Clarify

    return Clarify(session)


@router.get("/reports", summary="List fairness reports")
def list_reports(
    session: ProjectSession,
    limit: Limit = 100,
    cursor: Cursor = None,
    name: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z0-9._-]{1,64}$", description="One report's versions."),
    ] = None,
) -> Page[ReportSummaryOut]:
    """The project's stored report versions you may read (of one report, or all), newest
    first (needs `clarify:read_report` on each report)."""
    session.require_listing("clarify:read_report", "reports")
    clarify = _clarify(session)

    def summary(entry: ReportEntry) -> ReportSummaryOut:
        report = clarify.get_report(entry.digest)
        document = report.document
        return ReportSummaryOut(
            digest=entry.digest,
            name=entry.name,
            created_at=entry.created_at,
            created_by=entry.created_by,
            model_version=document.get("model_version"),
            checks_passed=report.checks_passed,
            review_status=str((document.get("review") or {}).get("status", "unreviewed")),
            previous=document.get("previous"),
            html_digest=entry.html_digest,
        )

    entries = clarify.reports(name)
    return Page[ReportSummaryOut](**paginate(entries, limit, cursor, summary))


@router.get("/reports/{digest}", summary="Get a report's JSON")
def get_report(session: ProjectSession, digest: Digest) -> dict[str, Any]:
    """The report document (format `trivet.clarify.report` 1.0, shaped like SageMaker
    Clarify's `analysis.json`; see docs/clarify.md)."""
    session.require_listing("clarify:read_report", "reports")
    return dict(_clarify(session).get_report(digest).document)


@router.get(
    "/reports/{digest}/html",
    summary="Get a report's HTML page",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "The report's page."}},
)
def get_report_html(session: ProjectSession, digest: Digest) -> HTMLResponse:
    """The self-contained HTML page stored with the report (inline SVG charts, no
    script), served with a strict Content-Security-Policy."""
    session.require_listing("clarify:read_report", "reports")
    page = _clarify(session).report_html(digest)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": REPORT_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, no-store",
        },
    )
