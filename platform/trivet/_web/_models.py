"""The console's model registry (with approve/reject for reviewers) and fairness reports.

The approve/reject form is shown only to whom :meth:`Session.can` says may approve; the
POST itself is authorized by the registry (and CSRF-checked), so a forged request from
anyone else is refused with the platform's 403.

A stored fairness report is a self-contained HTML page with its own inline styles. It
is served from a route of its own (``/reports/{digest}/html``) with a strict policy —
no script, no network, sandboxed, frameable only by the console — and shown on the
report's page in a sandboxed ``<iframe>``.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from trivet._web._auth import Console, approves, check_csrf, console, read_form
from trivet._web._render import ConsoleRoute, page, secure
from trivet.errors import NotFound, PermissionDenied, TrivetError
from trivet.platform.names import check_name

__all__ = ["REPORT_CSP", "router"]

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Caller = Annotated[Console, Depends(console)]
_DIGEST = re.compile(r"[0-9a-f]{8,64}")

REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)
"""The policy of a stored report's HTML: its own inline styles and data: images only."""


@router.get("/models")
def models(c: Caller) -> HTMLResponse:
    """Every model group you may describe, with its latest version and pending count."""
    from trivet.platform.registry import ApprovalStatus

    s = c.session
    s.require_listing("model:describe", "models")
    rows = []
    for group in s.registry.groups():
        try:
            versions = s.registry.versions(group.name)
        except PermissionDenied:
            versions = []
        latest = versions[-1] if versions else None
        pending = sum(v.status is ApprovalStatus.PENDING for v in versions)
        rows.append((group, latest, pending))
    return page("models.html", {"c": c, "rows": rows})


@router.get("/models/{name}")
def model(c: Caller, name: str) -> HTMLResponse:
    """One model group: its versions with status, gate, metrics and fairness report."""
    from trivet.platform.registry import ApprovalStatus, GateStatus

    s = c.session
    group = s.registry.group(check_name(name, what="model group name"))
    versions = list(reversed(s.registry.versions(group.name)))
    decidable = {
        v.version
        for v in versions
        if v.status is ApprovalStatus.PENDING
        and v.gate_status is not GateStatus.FAILED
        and s.can("model:approve", v.resource)
    }
    return page(
        "model.html",
        {
            "c": c,
            "group": group,
            "versions": versions,
            "decidable": decidable,
            "done": c.request.query_params.get("done"),
        },
    )


@router.post("/models/{name}/versions/{version}/decision")
async def decide(request: Request, c: Caller, name: str, version: str) -> Response:
    """Approve or reject a version with a justification (the registry authorizes it)."""
    form = await read_form(request)
    check_csrf(request, form, c.token)
    check_name(name, what="model group name")
    if not version.isdigit() or len(version) > 9:
        raise NotFound(f"Model {name!r} has no version {version[:20]!r}.")
    approve = approves(form, "the model's page")
    justification = form.get("justification", "").strip()
    registry = c.session.registry
    decide = registry.approve if approve else registry.reject
    await run_in_threadpool(decide, name, int(version), justification=justification)
    done = "approved" if approve else "rejected"
    target = c.href(f"/models/{c.seg(name)}", done=f"{done}:{int(version)}")
    return secure(RedirectResponse(target, status_code=303))


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise NotFound(
            f"There is no report {value[:70]!r}.",
            hint="a report's digest is 8 to 64 hexadecimal characters",
        )
    return value


@router.get("/reports/{digest}")
def report(c: Caller, digest: str) -> HTMLResponse:
    """A fairness report: its summary, and the report itself inline."""
    stored = c.session.clarify.get_report(_digest(digest))
    return page(
        "report.html",
        {
            "c": c,
            "report": stored,
            "frame": c.href(f"/reports/{stored.digest}/html"),
        },
    )


@router.get("/reports/{digest}/html")
def report_html(c: Caller, digest: str) -> Response:
    """The stored report's own HTML page, under a strict sandboxing policy."""
    try:
        html = c.session.clarify.report_html(_digest(digest))
    except TrivetError as exc:
        # a bare page, since this is shown inside the report's frame
        from markupsafe import escape

        from trivet.platform.http import status_for
        from trivet.platform.identity import redact

        return secure(
            HTMLResponse(f"<p>{escape(redact(exc.message))}</p>", status_for(exc)),
            {"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"},
        )
    return secure(
        HTMLResponse(html),
        {"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )
