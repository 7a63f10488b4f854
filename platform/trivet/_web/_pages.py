"""The console's reading pages: dashboard, feature catalog, pipelines and executions
(where a reviewer also approves or rejects a waiting approval step).

Every page reads through the signed-in caller's own :class:`trivet.Session`, so what a
page shows, and whether it may be shown at all, is the platform's decision: a list is
filtered by the caller's grants, and a denial renders the 403 page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from trivet._web._auth import Console, approves, check_csrf, console, read_form
from trivet._web._render import ConsoleRoute, page, secure
from trivet._web._svg import Bar, dag_svg, histogram_svg, timing_svg, top_values_svg
from trivet.errors import NotFound, PermissionDenied, TrivetError
from trivet.platform.names import check_name

if TYPE_CHECKING:
    from trivet.featurestore.stats import FeatureStatistics
    from trivet.pipelines import Execution

__all__ = ["router"]

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Caller = Annotated[Console, Depends(console)]
_EXECUTION_ID = re.compile(r"[0-9a-f-]{4,36}")
RECENT = 10


def _pending(c: Console) -> list[Any]:
    from trivet.platform.registry import ApprovalStatus

    found = []
    for group in c.session.registry.groups():
        try:
            versions = c.session.registry.versions(group.name)
        except PermissionDenied:
            continue
        found += [v for v in versions if v.status is ApprovalStatus.PENDING]
    return found


@router.get("/")
def dashboard(c: Caller) -> HTMLResponse:
    """Who you are, what the project holds, what ran lately, what waits for approval."""
    s = c.session
    groups = s.featurestore.list_groups()
    pipelines = s.pipelines.list()
    recent = s.pipelines.executions(limit=RECENT)
    models = s.registry.groups()
    pending = _pending(c)
    return page(
        "dashboard.html",
        {
            "c": c,
            "counts": {
                "Feature groups": (len(groups), c.href("/feature-groups")),
                "Pipelines": (len(pipelines), c.href("/pipelines")),
                "Model groups": (len(models), c.href("/models")),
                "Pending approval": (len(pending), c.href("/models")),
            },
            "recent": recent,
            "pending": pending,
        },
    )


# -- feature store -----------------------------------------------------------------------------
@router.get("/feature-groups")
def feature_groups(c: Caller) -> HTMLResponse:
    """The feature catalog: every group you may describe; ``?q=`` searches it."""
    s = c.session
    s.require_listing("feature:describe", "feature_groups")
    query = (c.request.query_params.get("q") or "").strip()[:200]
    if query:
        groups = [hit.group for hit in s.featurestore.search(query)]
    else:
        groups = s.featurestore.list_groups()
    return page("feature_groups.html", {"c": c, "groups": groups, "q": query})


def _distribution(stats: FeatureStatistics) -> Any:
    if stats.histogram is not None:
        return histogram_svg(stats.histogram.edges, stats.histogram.counts, label=stats.name)
    if stats.top:
        return top_values_svg([(t.value, t.count) for t in stats.top[:5]], label=stats.name)
    return None


@router.get("/feature-groups/{name}")
def feature_group(c: Caller, name: str) -> HTMLResponse:
    """One feature group: schema, tags, TTL and per-feature statistics."""
    s = c.session
    group = s.featurestore.describe(check_name(name, what="feature group name"))
    stats: list[tuple[Any, Any]] = []
    records = None
    unavailable = None
    if not group.offline:
        unavailable = "This group has no offline table, which statistics are computed from."
    elif not s.can("feature:read_offline", group.resource):
        unavailable = (
            "You may describe this group but not read its offline data "
            "(feature:read_offline), which statistics are computed from."
        )
    else:
        try:
            summary = s.featurestore.statistics(group.name, bins=20)
        except PermissionDenied as exc:
            unavailable = exc.message
        except TrivetError as exc:
            unavailable = f"Statistics could not be computed: {exc.message}"
        else:
            records = summary.records
            stats = [(f, _distribution(f)) for f in (summary.event_time, *summary.features)]
    return page(
        "feature_group.html",
        {"c": c, "group": group, "stats": stats, "records": records, "unavailable": unavailable},
    )


# -- pipelines ---------------------------------------------------------------------------------
@router.get("/pipelines")
def pipelines(c: Caller) -> HTMLResponse:
    """Every pipeline you may describe, with its latest execution."""
    s = c.session
    s.require_listing("pipeline:describe", "pipelines")
    infos = s.pipelines.list()
    latest: dict[str, Execution] = {}
    for execution in s.pipelines.executions(limit=200):
        latest.setdefault(execution.pipeline, execution)
    return page("pipelines.html", {"c": c, "pipelines": infos, "latest": latest})


@router.get("/pipelines/{name}")
def pipeline(c: Caller, name: str) -> HTMLResponse:
    """One pipeline: its DAG, its steps and its executions."""
    s = c.session
    info = s.pipelines.describe(check_name(name, what="pipeline name"))
    steps = list(info.definition.get("steps", []))
    executions = s.pipelines.executions(info.name, limit=25)
    return page(
        "pipeline.html",
        {
            "c": c,
            "info": info,
            "steps": steps,
            "params": info.definition.get("params", []),
            "dag": dag_svg(steps),
            "executions": executions,
        },
    )


@router.get("/executions/{execution_id}")
def execution(c: Caller, execution_id: str) -> HTMLResponse:
    """One execution: per-step status, start, duration, cache hit and error, and timings."""
    s = c.session
    if not _EXECUTION_ID.fullmatch(execution_id):
        raise NotFound(
            f"There is no execution {execution_id[:40]!r}.",
            hint="an execution id is hexadecimal (e.g. from the pipeline's page)",
        )
    ex = s.pipelines.get_execution(execution_id)
    statuses = {step.name: step.status.value for step in ex.steps}
    try:
        steps = list(s.pipelines.describe(ex.pipeline, version=ex.version).definition["steps"])
    except NotFound:
        steps = [{"name": n, "depends_on": [], "when": [], "kind": "step"} for n in statuses]
    bars = [
        Bar(
            name=step.name,
            status=step.status.value,
            start=(step.started_at - ex.started_at).total_seconds() if step.started_at else None,
            seconds=step.duration.total_seconds() if step.duration is not None else None,
            cache_hit=step.cache_hit,
        )
        for step in sorted(
            ex.steps, key=lambda st: (st.started_at is None, st.started_at or ex.started_at)
        )
    ]
    resource = s.resource("pipelines", ex.pipeline)
    approvals = s.pipelines.approvals(ex.id, waiting=False) if _has_approvals(steps) else []
    return page(
        "execution.html",
        {
            "c": c,
            "ex": ex,
            "approvals": approvals,
            "may_decide": any(a.waiting for a in approvals) and s.can("pipeline:approve", resource),
            "done": c.request.query_params.get("done"),
            "duration": (ex.ended_at - ex.started_at) if ex.ended_at else None,
            "dag": dag_svg(steps, statuses=statuses, link_steps=True),
            "timing": timing_svg(bars),
        },
    )


def _has_approvals(steps: Sequence[Mapping[str, Any]]) -> bool:
    return any(step.get("kind") == "approval" for step in steps)


_STEP = re.compile(r"[a-z_][a-z0-9._-]{0,63}")


@router.post("/executions/{execution_id}/approvals/{step}/decision")
async def decide_approval(request: Request, c: Caller, execution_id: str, step: str) -> Response:
    """Approve or reject a waiting approval step (``Pipelines`` authorizes it)."""
    form = await read_form(request)
    check_csrf(request, form, c.token)
    if not _EXECUTION_ID.fullmatch(execution_id) or not _STEP.fullmatch(step):
        raise NotFound(f"There is no approval step {step[:64]!r} of that execution.")
    approve = approves(form, "the execution's page")
    comment = form.get("comment", "").strip()
    pipes = c.session.pipelines
    decide = pipes.approve if approve else pipes.reject
    await run_in_threadpool(decide, execution_id, step, comment=comment)
    done = "approved" if approve else "rejected"
    target = c.href(f"/executions/{execution_id}", done=f"{done}:{step}")
    return secure(RedirectResponse(target, status_code=303))
