"""The pipelines' HTTP routes (mounted by :mod:`trivet.server`).

Under ``/v1/projects/{project}``: the pipelines (list, describe, graph), their
executions (list, read, step logs), starting an execution, which answers ``202``
with the execution's id while the steps run in a background thread, and the approval
steps waiting for a decision (list, approve, reject: ``pipeline:approve``).

The server never imports code an HTTP caller names: only the pipelines the operator
loaded at start-up (``trivet serve --pipeline module:NAME`` or ``FILE.py:NAME``, or
``create_app(..., pipelines=[...])``) can be started; they are kept, by pipeline name,
in ``app.state.pipelines`` (see :func:`load_startable`). Every route goes through
:class:`~trivet.pipelines.Pipelines`, so the permissions are those of the SDK:
``pipeline:describe`` to read, ``pipeline:run`` to start (and ``pipeline:create`` or
``pipeline:update`` for a pipeline new to the project or changed), ``principal:use``
to run as a service. ``path`` parameters cannot be set over HTTP: they would name
files on the server.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from trivet.errors import NotFound, ValidationError
from trivet.platform.http import (
    ERRORS,
    Cursor,
    Limit,
    Page,
    ProjectSession,
    cursor_number,
    error_body,
    paginate,
)

if TYPE_CHECKING:
    from trivet.pipelines import (
        Approval,
        Execution,
        Pipeline,
        PipelineInfo,
        Pipelines,
        StepRun,
    )
    from trivet.platform.session import Session

__all__ = ["load_startable", "router"]

router = APIRouter(prefix="/v1/projects/{project}", tags=["pipelines"], responses=ERRORS)
_MAX_ROWS = 1_000_000

PipelineName = Annotated[
    str,
    Path(
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="The pipeline's name (e.g. `train`).",
    ),
]
ExecutionId = Annotated[
    str,
    Path(
        max_length=36,
        pattern=r"^[0-9a-f-]{4,36}$",
        description="An execution id, or a unique prefix of at least 4 characters.",
    ),
]


# -- loading what may be started -----------------------------------------------------------
def load_startable(targets: Iterable[str]) -> dict[str, Pipeline]:
    """Load the pipelines the operator names, by pipeline name, for the server to start.

    Each target is ``module:NAME`` or ``FILE.py:NAME`` (``NAME`` may be left out when
    the module defines one pipeline), loaded as ``trivet pipelines run`` loads it; each
    DAG is validated now, so a broken pipeline stops the server from starting rather
    than failing its first run.

    Raises:
        NotFound: no such module, file or pipeline.
        ValidationError: two targets define different pipelines with the same name.
        PipelineDefinitionError: an invalid DAG.
    """
    from trivet.pipelines import load_pipeline

    loaded: dict[str, Pipeline] = {}
    for target in targets:
        found = load_pipeline(target)
        found.dag()
        other = loaded.get(found.name)
        if other is not None and other is not found:
            raise ValidationError(
                f"Two --pipeline targets define a pipeline named {found.name!r}.",
                hint="load one of them, or name them apart with @pipeline(name=...)",
            )
        loaded[found.name] = found
    return loaded


def _startable(request: Request) -> Mapping[str, Pipeline]:
    found: Mapping[str, Pipeline] = getattr(request.app.state, "pipelines", {})
    return found


# -- response models -----------------------------------------------------------------------
class ParameterOut(BaseModel):
    """A pipeline parameter."""

    name: str
    type: str = Field(
        description="`str`, `int`, `float`, `bool`, `path`, `list`, `dict` or "
        "`any`; `| None` when it may be null."
    )
    required: bool
    default: Any = Field(None, description="The default (absent when required).")
    help: str


class StepOut(BaseModel):
    """A step of a pipeline's definition."""

    name: str
    kind: str = Field(description="`step`, or `fail` for a fail step.")
    function: str | None = Field(None, description="`module:qualname` of the step's code.")
    depends_on: list[str]
    condition: str | None = Field(None, description="When it runs only under a condition.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Cache, retries, backoff, timeout, cache expiry."
    )
    message: str | None = Field(None, description="A fail step's message.")


class PipelineSummaryOut(BaseModel):
    """A pipeline, as listed."""

    name: str
    description: str
    version: int | None = Field(description="The latest version; null if it never ran here.")
    versions: int = Field(description="How many versions the project has recorded.")
    steps: int
    startable: bool = Field(description="Whether this server loaded it, so it can be started.")


class PipelineOut(BaseModel):
    """A pipeline's definition: its steps and parameters."""

    name: str
    project: str
    description: str
    version: int | None = Field(description="The version shown; null if it never ran here.")
    versions: int = Field(description="How many versions the project has recorded.")
    created_at: dt.datetime | None = Field(description="When this version was recorded.")
    startable: bool = Field(description="Whether this server loaded it, so it can be started.")
    parameters: list[ParameterOut]
    steps: list[StepOut]


class GraphNodeOut(BaseModel):
    """A node of the DAG: a step."""

    id: str = Field(description="The step's name.")
    kind: str
    function: str | None
    condition: str | None
    status: str | None = Field(None, description="Its status in the execution asked for.")


class GraphEdgeOut(BaseModel):
    """An edge of the DAG: `target` reads the output of `source`."""

    source: str
    target: str
    conditional: bool = Field(description="Whether `target` runs only under a condition.")


class GraphOut(BaseModel):
    """A pipeline's DAG as nodes and edges (in topological order), and as Mermaid."""

    pipeline: str
    version: int | None
    execution: str | None
    nodes: list[GraphNodeOut]
    edges: list[GraphEdgeOut]
    mermaid: str = Field(description="The same graph as a Mermaid flowchart.")


class StepRunOut(BaseModel):
    """A step of an execution."""

    name: str
    status: str = Field(
        description="pending, running, waiting (an approval step), succeeded, failed, "
        "skipped, upstream_failed or interrupted."
    )
    attempts: int
    cache_hit: bool
    cache_note: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_seconds: float | None
    error: str | None


class ExecutionSummaryOut(BaseModel):
    """An execution, as listed."""

    id: str
    pipeline: str
    version: int
    status: str = Field(description="running, succeeded, failed or interrupted.")
    invoked_by: str
    run_as: str
    retry_of: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_seconds: float | None
    error: str | None


class ExecutionOut(ExecutionSummaryOut):
    """An execution with its parameters and steps."""

    project: str
    parameters: dict[str, Any]
    steps: list[StepRunOut]


class StepLogOut(BaseModel):
    """What a step printed and logged, with its error and traceback (secrets redacted)."""

    step: str
    status: str
    logs: str
    error: str | None
    traceback: str | None


class LogsOut(BaseModel):
    """An execution's step logs."""

    execution: str
    steps: list[StepLogOut]


class StartExecution(BaseModel):
    """How to run a pipeline the server loaded."""

    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameter values by name (JSON values; strings are converted as the "
        "CLI's `--param` are). Left out: the defaults.",
    )
    run_as: str | None = Field(
        None,
        max_length=64,
        description="null to run as yourself; `runner` for the project's runner service "
        "principal, or a service principal's name (needs `principal:use` on it).",
    )


class ApprovalOut(BaseModel):
    """An approval step's request and, once given, its decision."""

    execution: str
    pipeline: str
    step: str
    message: str = Field(description="What the approver is asked (values filled in).")
    requested_at: dt.datetime
    expires_at: dt.datetime | None = Field(description="When it fails with no decision.")
    decision: str | None = Field(description="null while waiting; approved, rejected or expired.")
    decided_by: str | None
    decided_at: dt.datetime | None
    comment: str


class Decide(BaseModel):
    """A decision's comment, for the record (the approval step's output carries it)."""

    comment: str = Field("", max_length=2000)


class ExecutionStartedOut(BaseModel):
    """An execution that started: poll `href` until its status is no longer `running`."""

    id: str
    pipeline: str
    project: str
    status: str
    href: str


# -- conversions ---------------------------------------------------------------------------
def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 6)


def _condition(step: Mapping[str, Any]) -> str | None:
    from trivet.pipelines._graph import _guard

    return _guard(step["when"]) if step.get("when") else None


def _steps(definition: Mapping[str, Any]) -> list[StepOut]:
    return [
        StepOut(
            name=s["name"],
            kind=s["kind"],
            function=s.get("function"),
            depends_on=list(s["depends_on"]),
            condition=_condition(s),
            options=dict(s.get("options") or {}),
            message=s.get("message"),
        )
        for s in definition["steps"]
    ]


def _parameters(definition: Mapping[str, Any]) -> list[ParameterOut]:
    return [
        ParameterOut(
            name=name,
            type=spec["type"],
            required=spec["required"],
            default=spec["default"],
            help=spec["help"],
        )
        for name, spec in definition["params"].items()
    ]


def _summary(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.id,
        "pipeline": execution.pipeline,
        "version": execution.version,
        "status": execution.status.value,
        "invoked_by": execution.invoked_by,
        "run_as": execution.run_as,
        "retry_of": execution.retry_of,
        "started_at": execution.started_at,
        "ended_at": execution.ended_at,
        "duration_seconds": _seconds(execution.started_at, execution.ended_at),
        "error": execution.error,
    }


def _step_run(step: StepRun) -> StepRunOut:
    return StepRunOut(
        name=step.name,
        status=step.status.value,
        attempts=step.attempts,
        cache_hit=step.cache_hit,
        cache_note=step.cache_note,
        started_at=step.started_at,
        ended_at=step.ended_at,
        duration_seconds=_seconds(step.started_at, step.ended_at),
        error=step.error,
    )


def _pipelines(session: Session) -> Pipelines:
    from trivet.pipelines import Pipelines

    return Pipelines(session)


def _registered(session: Session, name: str) -> PipelineInfo | None:
    """The pipeline as the catalog has it (None if it never ran in the project)."""
    session.require("pipeline:describe", session.resource("pipelines", name))
    try:
        return _pipelines(session).describe(name)
    except NotFound:
        return None


def _unknown(session: Session, name: str, startable: Mapping[str, Pipeline]) -> NotFound:
    from trivet.errors import did_you_mean

    return NotFound(
        f"There is no pipeline {name!r} in project {session.project!r}, and this server "
        "did not load one of that name.",
        hint=did_you_mean(name, startable)
        or "run it once, or restart the server with `trivet serve --pipeline module:NAME`",
    )


def _no_versions(name: str) -> NotFound:
    return NotFound(
        f"Pipeline {name!r} has no recorded versions: it never ran in this project.",
        hint="leave out version= to see the definition this server loaded",
    )


# -- pipelines -----------------------------------------------------------------------------
@router.get("/pipelines", summary="List pipelines")
def list_pipelines(
    request: Request, session: ProjectSession, limit: Limit = 100, cursor: Cursor = None
) -> Page[PipelineSummaryOut]:
    """The project's pipelines you may describe, by name: those recorded in the catalog
    (they ran at least once) and those this server loaded (`startable`)."""
    session.require_listing("pipeline:describe", "pipelines")
    startable = _startable(request)
    items: dict[str, PipelineSummaryOut] = {}
    for info in _pipelines(session).list():
        items[info.name] = PipelineSummaryOut(
            name=info.name,
            description=info.description,
            version=info.version,
            versions=info.versions,
            steps=len(info.definition["steps"]),
            startable=info.name in startable,
        )
    for name, loaded in startable.items():
        if name not in items and session.can(
            "pipeline:describe", session.resource("pipelines", name)
        ):
            items[name] = PipelineSummaryOut(
                name=name,
                description=loaded.description,
                version=None,
                versions=0,
                steps=len(loaded.dag().nodes),
                startable=True,
            )
    ordered = [items[k] for k in sorted(items)]
    return Page[PipelineSummaryOut](**paginate(ordered, limit, cursor, lambda item: item))


@router.get("/pipelines/{name}", summary="Describe a pipeline")
def get_pipeline(
    request: Request,
    session: ProjectSession,
    name: PipelineName,
    version: Annotated[
        int | None, Query(ge=1, description="A version (default: the latest).")
    ] = None,
) -> PipelineOut:
    """A pipeline's steps and parameters (needs `pipeline:describe`)."""
    startable = _startable(request)
    info = _registered(session, name)
    if info is not None:
        if version is not None:
            info = _pipelines(session).describe(name, version=version)
        definition: Mapping[str, Any] = info.definition
        shown, count, created = info.version, info.versions, info.created_at
    elif name in startable:
        if version is not None:
            raise _no_versions(name)
        definition, shown, count, created = startable[name].definition(), None, 0, None
    else:
        raise _unknown(session, name, startable)
    return PipelineOut(
        name=name,
        project=session.project,
        description=definition.get("description", ""),
        version=shown,
        versions=count,
        created_at=created,
        startable=name in startable,
        parameters=_parameters(definition),
        steps=_steps(definition),
    )


@router.get("/pipelines/{name}/graph", summary="A pipeline's DAG")
def get_graph(
    request: Request,
    session: ProjectSession,
    name: PipelineName,
    version: Annotated[
        int | None, Query(ge=1, description="A version (default: the latest).")
    ] = None,
    execution: Annotated[
        str | None,
        Query(
            max_length=36,
            pattern=r"^[0-9a-f-]{4,36}$",
            description="Show the step statuses of this execution (and its version).",
        ),
    ] = None,
) -> GraphOut:
    """The DAG as nodes and edges, optionally with an execution's step statuses."""
    from trivet.pipelines._graph import render

    startable = _startable(request)
    info = _registered(session, name)
    statuses: dict[str, str] = {}
    execution_id = None
    if execution is not None:
        ran = _pipelines(session).get_execution(execution)
        if ran.pipeline != name:
            raise ValidationError(
                f"Execution {ran.id} ran pipeline {ran.pipeline!r}, not {name!r}.",
                hint=f"ask /pipelines/{ran.pipeline}/graph for it",
            )
        statuses = {s.name: s.status.value for s in ran.steps}
        execution_id, version = ran.id, ran.version
    if info is not None:
        if version is not None:
            info = _pipelines(session).describe(name, version=version)
        definition: Mapping[str, Any] = info.definition
        shown: int | None = info.version
    elif name in startable:
        if version is not None:
            raise _no_versions(name)
        definition, shown = startable[name].definition(), None
    else:
        raise _unknown(session, name, startable)
    nodes = [
        GraphNodeOut(
            id=s["name"],
            kind=s["kind"],
            function=s.get("function"),
            condition=_condition(s),
            status=statuses.get(s["name"]),
        )
        for s in definition["steps"]
    ]
    edges = [
        GraphEdgeOut(source=dep, target=s["name"], conditional=bool(s.get("when")))
        for s in definition["steps"]
        for dep in s["depends_on"]
    ]
    return GraphOut(
        pipeline=name,
        version=shown,
        execution=execution_id,
        nodes=nodes,
        edges=edges,
        mermaid=render(definition, format="mermaid", statuses=statuses or None),
    )


# -- executions ----------------------------------------------------------------------------
@router.get("/pipelines/{name}/executions", summary="List a pipeline's executions")
def list_executions(
    request: Request,
    session: ProjectSession,
    name: PipelineName,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ExecutionSummaryOut]:
    """A pipeline's executions, newest first (needs `pipeline:describe`). Executions whose
    runner stopped show as `interrupted`."""
    startable = _startable(request)
    if _registered(session, name) is None:
        if name not in startable:
            raise _unknown(session, name, startable)
        return Page[ExecutionSummaryOut](items=[], next_cursor=None)
    start = cursor_number(cursor)
    # rows up to the end of the page (bounded: a cursor past them gives an empty page)
    found = _pipelines(session).executions(name, limit=min(start + limit + 1, _MAX_ROWS))
    return Page[ExecutionSummaryOut](
        **paginate(found, limit, cursor, lambda e: ExecutionSummaryOut(**_summary(e)))
    )


@router.post(
    "/pipelines/{name}/executions",
    summary="Start an execution",
    status_code=202,
    response_model=ExecutionStartedOut,
    responses={202: {"description": "Started; the id is in the body and `Location`."}},
)
def start_execution(
    request: Request,
    session: ProjectSession,
    name: PipelineName,
    body: StartExecution | None = None,
) -> JSONResponse:
    """Start a pipeline this server loaded at start-up, and answer at once with the
    execution's id (`202`); the steps run in the background — poll the execution.

    Needs `pipeline:run` (and `pipeline:create` the first time the pipeline runs in the
    project, `pipeline:update` when its definition changed). A bad parameter is `422`
    naming it (`error.field`), before anything runs.
    """
    session.require("pipeline:run", session.resource("pipelines", name))
    startable = _startable(request)
    pipeline = startable.get(name)
    if pipeline is None:
        from trivet.errors import did_you_mean

        close = did_you_mean(name, startable)
        raise NotFound(
            f"This server did not load a pipeline {name!r}, so it cannot start it.",
            hint=(f"{close}; " if close else "")
            + "the server starts only the pipelines its operator loaded: "
            "`trivet serve --pipeline module:NAME` (or FILE.py:NAME)",
        )
    request_body = body if body is not None else StartExecution(run_as=None)
    problem = _check_parameters(pipeline, request_body.parameters)
    if problem is not None:
        return problem
    started = _pipelines(session).start(
        pipeline, params=request_body.parameters, run_as=request_body.run_as
    )
    href = f"/v1/projects/{session.project}/executions/{started.id}"
    out = ExecutionStartedOut(
        id=started.id,
        pipeline=started.pipeline,
        project=started.project,
        status="running",
        href=href,
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=202, headers={"Location": href})


_EXAMPLES = {
    "str": '"text"',
    "int": "3",
    "float": "0.5",
    "bool": "true",
    "list": '["a", "b"]',
    "dict": '{"C": [0.1, 1]}',
}


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def _check_parameters(pipeline: Pipeline, given: Mapping[str, Any]) -> JSONResponse | None:
    """Return a 422 naming the first bad parameter, or None when they all convert."""
    from trivet.errors import did_you_mean
    from trivet.pipelines import PipelineDefinitionError

    def refuse(param: str, message: str, hint: str | None) -> JSONResponse:
        return JSONResponse(
            error_body("ValidationError", message, hint, field=f"body.parameters.{param}"),
            status_code=422,
        )

    for param in sorted(given):
        spec = pipeline.params.get(param)
        if spec is None:
            return refuse(
                param[:64],
                f"The pipeline {pipeline.name!r} has no parameter {param[:64]!r}.",
                did_you_mean(param, pipeline.params) or "it takes no parameters",
            )
        if spec.type == "path":
            # a path would be read on the server (hashed for the cache, opened by steps)
            return refuse(
                param,
                f"The parameter {param!r} is a path; it cannot be set over HTTP, where it "
                "would name a file on the server.",
                "leave it at its default, or run the pipeline with the SDK or CLI",
            )
        try:
            value = spec.convert(given[param])
        except PipelineDefinitionError as exc:
            example = _EXAMPLES.get(spec.type, "null")
            return refuse(param, exc.message, f'e.g. "parameters": {{"{param}": {example}}}')
        if not _finite(value):  # "inf" or "nan" in a string: JSON could not show it back
            return refuse(
                param,
                f"The parameter {param!r} holds a number that is not finite ({given[param]!r}).",
                "give a finite number",
            )
    for param, spec in pipeline.params.items():
        if spec.required and param not in given:
            return refuse(
                param,
                f"The pipeline {pipeline.name!r} needs the parameter {param!r} ({spec.type}).",
                f'pass "parameters": {{"{param}": ...}}',
            )
    return None


@router.get("/executions/{execution_id}", summary="Get an execution")
def get_execution(session: ProjectSession, execution_id: ExecutionId) -> ExecutionOut:
    """An execution: status, who ran it and as whom, parameters, and each step's status,
    timing, cache hit and error (needs `pipeline:describe` on its pipeline)."""
    session.require_listing("pipeline:describe", "pipelines")
    execution = _pipelines(session).get_execution(execution_id)
    return ExecutionOut(
        **_summary(execution),
        project=execution.project,
        parameters=dict(execution.params),
        steps=[_step_run(s) for s in execution.steps],
    )


@router.get("/executions/{execution_id}/logs", summary="An execution's step logs")
def get_logs(
    session: ProjectSession,
    execution_id: ExecutionId,
    step: Annotated[
        str | None, Query(max_length=64, description="One step (default: every step).")
    ] = None,
) -> LogsOut:
    """What the steps printed and logged, with errors and tracebacks (secrets redacted;
    needs `pipeline:describe` on the execution's pipeline)."""
    session.require_listing("pipeline:describe", "pipelines")
    execution = _pipelines(session).get_execution(execution_id)
    steps = [execution.step(step)] if step is not None else list(execution.steps)
    return LogsOut(
        execution=execution.id,
        steps=[
            StepLogOut(
                step=s.name,
                status=s.status.value,
                logs=s.logs,
                error=s.error,
                traceback=s.traceback,
            )
            for s in steps
        ],
    )


# -- approvals -------------------------------------------------------------------------------
def _approval(a: Approval) -> ApprovalOut:
    return ApprovalOut(
        execution=a.execution_id,
        pipeline=a.pipeline,
        step=a.step,
        message=a.message,
        requested_at=a.requested_at,
        expires_at=a.expires_at,
        decision=a.decision,
        decided_by=a.decided_by,
        decided_at=a.decided_at,
        comment=a.comment,
    )


StepName = Annotated[
    str,
    Path(
        max_length=64,
        pattern=r"^[a-z_][a-z0-9._-]{0,63}$",
        description="The approval step's name.",
    ),
]


@router.get("/approvals", summary="List approval steps")
def list_approvals(
    session: ProjectSession,
    execution: Annotated[
        str | None,
        Query(max_length=36, pattern=r"^[0-9a-f-]{4,36}$", description="Only this execution's."),
    ] = None,
    decided: Annotated[
        bool, Query(description="Decided ones too, not only those waiting.")
    ] = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ApprovalOut]:
    """Approval steps waiting for a decision (or, with `decided=true`, decided ones too),
    newest first, of the pipelines you may describe."""
    session.require_listing("pipeline:describe", "pipelines")
    start = cursor_number(cursor)
    found = _pipelines(session).approvals(
        execution, waiting=not decided, limit=min(start + limit + 1, _MAX_ROWS)
    )
    return Page[ApprovalOut](**paginate(found, limit, cursor, _approval))


def _decide(
    session: Session, execution_id: str, step: str, body: Decide | None, *, approve: bool
) -> ApprovalOut:
    session.require_listing("pipeline:approve", "pipelines")
    pipes = _pipelines(session)
    comment = body.comment if body is not None else ""
    decide = pipes.approve if approve else pipes.reject
    return _approval(decide(execution_id, step, comment=comment))


@router.post(
    "/executions/{execution_id}/approvals/{step}/approve", summary="Approve an approval step"
)
def approve_step(
    session: ProjectSession, execution_id: ExecutionId, step: StepName, body: Decide | None = None
) -> ApprovalOut:
    """Approve a waiting approval step: the steps behind it run (needs `pipeline:approve`
    on the pipeline). `409` if it is not waiting (decided, expired, or the execution is no
    longer running)."""
    return _decide(session, execution_id, step, body, approve=True)


@router.post(
    "/executions/{execution_id}/approvals/{step}/reject", summary="Reject an approval step"
)
def reject_step(
    session: ProjectSession, execution_id: ExecutionId, step: StepName, body: Decide | None = None
) -> ApprovalOut:
    """Reject a waiting approval step: it fails, and the execution with it, unless the
    approval has an `otherwise` branch (needs `pipeline:approve`). `409` if it is not
    waiting."""
    return _decide(session, execution_id, step, body, approve=False)
