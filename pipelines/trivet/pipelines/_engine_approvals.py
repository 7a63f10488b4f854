"""The engine's approval steps: ask, poll for decisions, take them.

Methods of :class:`~trivet.pipelines._engine.Engine`, defined apart (each takes the
engine as ``self`` and is assigned in its class body); the DSL and the decisions are in
:mod:`trivet.pipelines._approval`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa

from trivet.errors import TrivetError
from trivet.pipelines._approval import Approval, render, request_row, to_approval
from trivet.pipelines._expr import evaluate
from trivet.pipelines._outputs import store_output
from trivet.pipelines._records import StepStatus
from trivet.pipelines.cache import CacheKey, CodeFingerprint, Unhashable, make_key
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import pipeline_approvals

if TYPE_CHECKING:
    from trivet.pipelines._engine import Engine
    from trivet.pipelines.dag import Node

__all__ = ["APPROVAL_POLL", "approval_key", "ask", "decided", "poll_approvals"]

APPROVAL_POLL = 0.5
"""Seconds between looks at the catalog while an approval step waits for a decision."""
_APPROVAL_CODE = CodeFingerprint(code="trivet.pipelines:approval/1", deps={}, packages={})
log = logging.getLogger("trivet.pipelines")


def approval_key(self: Engine, node: Node) -> CacheKey | None:
    """Return the key a retry finds an approval's decision by (never in the cache)."""
    assert node.approval is not None
    try:
        params, inputs = self._key_parts(node)
    except Unhashable:
        return None
    params["__message__"] = node.message
    params["__on_reject__"] = node.approval.on_reject
    return make_key(
        function="trivet.pipelines:approval", code=_APPROVAL_CODE, params=params, inputs=inputs
    )


def ask(self: Engine, node: Node) -> None:
    """Reach an approval step: reuse the retried execution's decision, or ask for one."""
    assert node.approval is not None
    name = node.name
    st = self.state[name]
    st.started = now_utc()
    st.key = key = self._approval_key(node)
    reused = self._retried(key) if key is not None else None
    if reused is not None:
        st.note = "hit: the decision of the execution being retried"
        self._reuse(name, reused)
        return
    if self.mode[name] == "cache_only":
        self._finish(
            name,
            StepStatus.FAILED,
            error=f"the approval step {name!r} is decided by a person, so {self.plan.only!r} "
            "cannot run alone on it",
        )
        return
    values = {k: evaluate(v, self._resolve) for k, v in node.args.items()}
    row = request_row(
        execution_id=self.eid,
        project=self.project,
        pipeline=self.dag.pipeline,
        step=name,
        message=render(node.message, values),
        spec=node.approval,
    )
    self.requests.append(row)
    st.status = StepStatus.WAITING
    st.note = "waiting for a decision"
    self.dirty.add(name)
    self.approvals[name] = time.monotonic() + node.approval.timeout
    self.next_poll = time.monotonic() + APPROVAL_POLL
    self.flush()  # approvers see the request and the step waiting at once, together
    log.warning(
        "execution %s waits for a decision on its approval step %r: %s — decide with "
        "`trivet pipelines approve %s %s` (or `reject`)",
        self.eid,
        name,
        row["message"],
        self.eid,
        name,
    )


def poll_approvals(self: Engine) -> None:
    """Take the decisions given since the last look; fail approvals past their timeout."""
    if not self.approvals or time.monotonic() < self.next_poll:
        return
    self.next_poll = time.monotonic() + APPROVAL_POLL
    t = pipeline_approvals
    with self.catalog.read() as conn:
        rows = conn.execute(
            sa.select(t).where(
                t.c.execution_id == self.eid,
                t.c.step.in_(sorted(self.approvals)),
                t.c.decision.is_not(None),
            )
        ).all()
    for row in rows:
        self._decided(to_approval(row))
    now = time.monotonic()
    expired = sorted(n for n, end in self.approvals.items() if end <= now)
    if not expired:
        return
    with self.catalog.write() as conn:
        for name in expired:
            changed = conn.execute(
                sa.update(t)
                .where(t.c.execution_id == self.eid, t.c.step == name, t.c.decision.is_(None))
                .values(decision="expired", decided_at=now_utc())
            ).rowcount
            if changed:
                del self.approvals[name]
                timeout = self.dag.nodes[name].approval.timeout  # type: ignore[union-attr]
                self._finish(
                    name,
                    StepStatus.FAILED,
                    error=f"no decision within the approval step's timeout of {timeout:g} s",
                )
            else:  # decided just now: take it at the next look
                self.next_poll = 0.0


def decided(self: Engine, decision: Approval) -> None:
    """Take a decision: the step succeeds with it as output, or fails."""
    name = decision.step
    if name not in self.approvals:
        return
    del self.approvals[name]
    spec = self.dag.nodes[name].approval
    assert spec is not None
    st = self.state[name]
    who = decision.decided_by or "nobody"
    st.note = f"{decision.decision} by {who}"
    if decision.decision != "approved" and spec.on_reject == "fail":
        self._finish(
            name,
            StepStatus.FAILED,
            error=f"{decision.decision} by {who}"
            + (f": {decision.comment}" if decision.comment else ""),
        )
        return
    try:
        st.value, st.stored = store_output(self.s, decision.output(), folder=self.folder, step=name)
    except TrivetError as exc:
        self._finish(name, StepStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return
    self._lineage(name, st.stored, produced=True)
    self._finish(name, StepStatus.SUCCEEDED)
