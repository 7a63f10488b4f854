"""Approval steps: an execution pauses until a person approves or rejects.

SageMaker's Callback step, without the queue: when an execution reaches an
``approval`` step, the engine records a request (the step's rendered message) in
the catalog and keeps running everything that does not depend on it; the steps
behind the approval wait. Anyone holding ``pipeline:approve`` on the pipeline decides
it — ``trivet pipelines approve|reject``, :meth:`Pipelines.approve` /
:meth:`Pipelines.reject`, the REST API or a button in the web console — and the
engine, which polls for decisions while one is outstanding, carries on.

``pipeline:approve`` is a reviewing action: the ``approver`` role and owners hold it,
a pipeline's creator (``maintainer``) and the execution's run token never do, so an
execution cannot approve itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from trivet.errors import Conflict, NotFound, ValidationError, did_you_mean
from trivet.pipelines._expr import Output
from trivet.pipelines.dag import ApprovalSpec, require_trace, when
from trivet.pipelines.errors import PipelineDefinitionError
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import pipeline_approvals, pipeline_executions
from trivet.platform.identity import redact

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = [
    "COMMENT_LIMIT",
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "MESSAGE_LIMIT",
    "Approval",
    "Decision",
    "approval",
    "decide",
    "list_approvals",
    "render",
    "request_row",
    "to_approval",
]

Decision = Literal["approved", "rejected", "expired"]
MESSAGE_LIMIT = 4000
"""Characters of a rendered approval message that are kept."""
COMMENT_LIMIT = 2000
"""Characters of a decision's comment that are accepted."""
DEFAULT_TIMEOUT = dt.timedelta(days=7)
"""How long an approval step waits by default (as SageMaker's Callback step)."""
MAX_TIMEOUT = dt.timedelta(days=30)
"""The longest an approval step may wait: the execution's run token lives that long."""


@dataclass(frozen=True, kw_only=True)
class Approval:
    """An approval step's request and, once given, its decision."""

    execution_id: str
    pipeline: str
    project: str
    step: str
    message: str
    requested_at: dt.datetime
    expires_at: dt.datetime | None
    decision: Decision | None
    """None while waiting; ``expired`` when its timeout passed without a decision."""
    decided_by: str | None
    decided_at: dt.datetime | None
    comment: str

    @property
    def waiting(self) -> bool:
        """Whether it still waits for a decision."""
        return self.decision is None

    def output(self) -> dict[str, Any]:
        """Return the step's output: what downstream steps and conditions read."""
        return {
            "approved": self.decision == "approved",
            "decision": self.decision,
            "by": self.decided_by,
            "comment": self.comment,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }


def _seconds(timeout: float | dt.timedelta, name: str) -> float:
    seconds = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else timeout
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds <= MAX_TIMEOUT.total_seconds()
    ):
        raise PipelineDefinitionError(
            f"The approval step {name!r} has the timeout {timeout!r}.",
            hint="give a positive number of seconds or a datetime.timedelta of at most "
            f"{MAX_TIMEOUT.days} days",
        )
    return float(seconds)


def approval(
    message: str,
    /,
    *,
    then: Callable[[], object] | None = None,
    otherwise: Callable[[], object] | None = None,
    name: str = "approval",
    timeout: float | dt.timedelta = DEFAULT_TIMEOUT,
    **values: Any,
) -> Output:
    """Pause the execution until a person approves or rejects; return their decision.

    Call it inside a ``@pipeline`` function. When the execution reaches it (once the
    steps its ``values`` come from have finished), the step waits — status
    ``waiting`` — with ``message`` (braces name ``values``, filled in then) for
    someone holding ``pipeline:approve`` on the pipeline to decide:
    ``trivet pipelines approve EXECUTION STEP``, :meth:`Pipelines.approve`, the REST API
    or the web console. Steps that do not depend on it go on running meanwhile; the
    process running the execution must stay up (a runner that dies leaves the
    execution ``interrupted``; ``retry`` asks again).

    Approved: the steps ``then`` calls run. Rejected: without ``otherwise`` the step
    fails, and so does the execution, with the decider's comment; with ``otherwise``
    the step succeeds, ``otherwise``'s steps run and ``then``'s are skipped. No
    decision within ``timeout`` (7 days by default, as SageMaker's Callback step; at
    most 30): the step fails.

    The step's output is ``{"approved": bool, "decision": "approved" | "rejected", "by":
    principal, "comment": str, "decided_at": ISO time}``: pass it to a step
    (``register_model(..., description=decision["comment"])``) or branch on it. A
    retried execution reuses a decision when the approval's message and values are
    unchanged; a new execution always asks again.

    Args:
        message: what the approver is asked; may name ``values`` in braces.
        then: a function calling the steps that run once approved.
        otherwise: a function calling the steps that run when rejected.
        name: the step's name in the execution's records (and in ``approve``).
        timeout: seconds (or a timedelta) to wait, at most 30 days.
        values: values the message names: step outputs, values inside them
            (``auc=metrics["roc_auc"]``), parameters or constants.

    Returns:
        The approval step's output, for use in later conditions or steps.

    Raises:
        PipelineDefinitionError: outside a ``@pipeline`` function, an empty message, a
            bad name or timeout.

    Example (inside a ``@pipeline`` function)::

        approval("Register credit-risk with AUC {auc:.3f}?", auc=metrics["roc_auc"],
                 then=lambda: register_model(model, name="credit-risk"),
                 timeout=dt.timedelta(days=2))
    """
    trace = require_trace("approval()")
    if not isinstance(message, str) or not message.strip():
        raise PipelineDefinitionError(
            "approval() needs a message saying what is to be approved.",
            hint='e.g. approval("Register the model with AUC {auc}?", auc=metrics["auc"])',
        )
    for label, branch in (("then", then), ("otherwise", otherwise)):
        if branch is not None and not callable(branch):
            raise PipelineDefinitionError(
                f"approval()'s {label}= takes a function that calls steps.",
                hint=f"e.g. {label}=lambda: register_model(model, ...)",
            )
    spec = ApprovalSpec(
        timeout=_seconds(timeout, name), on_reject="fail" if otherwise is None else "branch"
    )
    decision = trace.add_approval(message, values, name, spec)
    if then is not None or otherwise is not None:
        when(
            decision["approved"],
            then=then if then is not None else _nothing,
            otherwise=otherwise,
        )
    return decision


def _nothing() -> None:
    return None


# -- the catalog side ----------------------------------------------------------------------
def to_approval(row: Any) -> Approval:
    """Build an :class:`Approval` from a ``pipeline_approvals`` row."""
    return Approval(
        execution_id=row.execution_id,
        pipeline=row.pipeline,
        project=row.project,
        step=row.step,
        message=row.message,
        requested_at=row.requested_at,
        expires_at=row.expires_at,
        decision=row.decision,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        comment=row.comment,
    )


def list_approvals(
    session: Session,
    *,
    execution_id: str | None = None,
    waiting: bool = True,
    limit: int = 100,
) -> list[Approval]:
    """Return approvals of the session's project the caller may see, newest first.

    ``waiting`` keeps those of running executions that wait for a decision; an
    ``execution_id`` (a full id) selects one execution's, decided or not.
    """
    t = pipeline_approvals
    query = sa.select(t).where(t.c.project == session.project)
    if execution_id is not None:
        query = query.where(t.c.execution_id == execution_id)
    if waiting:
        running = sa.select(pipeline_executions.c.id).where(
            pipeline_executions.c.status == "running"
        )
        query = query.where(t.c.decision.is_(None), t.c.execution_id.in_(running))
    query = query.order_by(t.c.requested_at.desc(), t.c.step).limit(limit)
    with session.catalog.read() as conn:
        rows = conn.execute(query).all()
    allowed: dict[str, bool] = {}
    out = []
    for row in rows:
        if row.pipeline not in allowed:
            resource = session.resource("pipelines", row.pipeline)
            allowed[row.pipeline] = session.can("pipeline:describe", resource)
        if allowed[row.pipeline]:
            out.append(to_approval(row))
    return out


def decide(
    session: Session,
    *,
    execution_id: str,
    pipeline: str,
    step: str,
    approve: bool,
    comment: str = "",
) -> Approval:
    """Record a decision on a waiting approval step (needs ``pipeline:approve``).

    Raises:
        PermissionDenied: no ``pipeline:approve`` on the pipeline.
        NotFound: the execution has no approval step of that name.
        Conflict: the step is not waiting: not reached yet, already decided, expired,
            or its execution is no longer running.
        ValidationError: the comment is too long.
    """
    if not isinstance(comment, str) or len(comment) > COMMENT_LIMIT:
        raise ValidationError(
            f"A decision's comment takes at most {COMMENT_LIMIT} characters.",
            hint="shorten it, or link to a longer text",
        )
    resource = session.resource("pipelines", pipeline)
    session.require("pipeline:approve", resource)
    decision: Decision = "approved" if approve else "rejected"
    t = pipeline_approvals
    now = now_utc()
    running = sa.select(pipeline_executions.c.id).where(
        pipeline_executions.c.id == execution_id, pipeline_executions.c.status == "running"
    )
    with session.catalog.write() as conn:
        changed = conn.execute(
            sa.update(t)
            .where(
                t.c.execution_id == execution_id,
                t.c.step == step,
                t.c.decision.is_(None),
                t.c.execution_id.in_(running),
            )
            .values(
                decision=decision,
                decided_by=session.principal.name,
                decided_at=now,
                comment=redact(comment),
            )
        ).rowcount
        if changed != 1:
            raise _why_not_waiting(conn, execution_id, step)
        session.record(
            conn,
            action="pipeline:approve",
            resource=resource,
            outcome="ok",
            detail={"execution": execution_id, "step": step, "decision": decision},
        )
        row = conn.execute(
            sa.select(t).where(t.c.execution_id == execution_id, t.c.step == step)
        ).one()
    return to_approval(row)


def _why_not_waiting(conn: sa.Connection, execution_id: str, step: str) -> Exception:
    t = pipeline_approvals
    row = conn.execute(
        sa.select(t).where(t.c.execution_id == execution_id, t.c.step == step)
    ).first()
    status = conn.execute(
        sa.select(pipeline_executions.c.status).where(pipeline_executions.c.id == execution_id)
    ).scalar()
    if row is None:
        steps = conn.execute(sa.select(t.c.step).where(t.c.execution_id == execution_id)).scalars()
        return NotFound(
            f"Execution {execution_id} has no approval step {step!r} waiting: it has not "
            "reached one of that name.",
            hint=did_you_mean(step, list(steps))
            or "see its steps with `trivet pipelines show EXECUTION`",
        )
    if row.decision is not None:
        at = f" at {row.decided_at.isoformat(timespec='seconds')}" if row.decided_at else ""
        what = (
            "already expired without a decision"
            if row.decision == "expired"
            else f"already {row.decision} by {row.decided_by}"
        )
        return Conflict(
            f"The approval step {step!r} of execution {execution_id} {what}{at}.",
            hint="a decision is final; run the pipeline again to ask again",
        )
    return Conflict(
        f"Execution {execution_id} is {status}, so its approval step {step!r} no longer "
        "waits for a decision.",
        hint=f"retry it (`trivet pipelines retry {execution_id}`): the retry asks again",
    )


def request_row(
    *,
    execution_id: str,
    project: str,
    pipeline: str,
    step: str,
    message: str,
    spec: ApprovalSpec,
) -> dict[str, Any]:
    """Return the ``pipeline_approvals`` row recording a new request."""
    now = now_utc()
    text = redact(message)
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return {
        "execution_id": execution_id,
        "project": project,
        "pipeline": pipeline,
        "step": step,
        "message": text,
        "requested_at": now,
        "expires_at": now + dt.timedelta(seconds=spec.timeout),
        "decision": None,
        "decided_by": None,
        "decided_at": None,
        "comment": "",
    }


def render(message: str, values: Mapping[str, Any]) -> str:
    """Fill a message's braces with ``values`` (left as written where they don't fit)."""
    try:
        return message.format(**values)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return message
