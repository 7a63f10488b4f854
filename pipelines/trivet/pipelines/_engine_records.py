"""The engine's records: step rows, cache entries, lineage, the execution's row and
its end: methods of :class:`~trivet.pipelines._engine.Engine`, defined apart (each
takes the engine as ``self`` and is assigned in its class body) to keep modules short.

Buffered by the engine and written in one transaction per flush: at most every
``FLUSH_INTERVAL`` while the execution runs, and at its end.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from trivet.pipelines._outputs import Stored
from trivet.pipelines._records import LOG_LIMIT, ExecutionStatus, StepRun, StepStatus
from trivet.pipelines._source import function_id
from trivet.pipelines.cache import CacheKey
from trivet.platform.artifacts._entries import insert_entry
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import (
    pipeline_approvals,
    pipeline_cache,
    pipeline_executions,
    pipeline_step_runs,
    tokens,
)
from trivet.platform.identity import redact
from trivet.platform.lineage import Node as LineageNode
from trivet.platform.lineage import insert_new_edges
from trivet.platform.permissions import bump_epoch

if TYPE_CHECKING:
    from trivet.pipelines._engine import Engine

__all__ = [
    "cache_row",
    "flush",
    "inputs_lineage",
    "lineage",
    "pending_records",
    "step_row",
    "step_runs",
]


def cache_row(self: Engine, name: str, key: CacheKey, stored: Stored) -> dict[str, Any]:
    """Return the cache entry of a step that ran (written at the next flush)."""
    node = self.dag.nodes[name]
    assert node.step is not None
    return {
        "project": self.project,
        "key": key.digest,
        "step": name,
        "function": function_id(node.step.fn),
        "components": dict(key.components),
        "output_digest": stored.digest,
        "output_kind": stored.kind,
        "execution_id": self.eid,
        "created_at": now_utc(),
    }


def lineage(self: Engine, name: str, stored: Stored, *, produced: bool) -> None:
    """Buffer the lineage edges of a step's output (produced now, or reused)."""
    if stored.digest is None:
        return
    artifact = LineageNode(kind="artifact", id=stored.digest)
    execution = LineageNode(kind="execution", id=self.folder)
    step_node = LineageNode(kind="step", id=f"{self.folder}/{name}")
    self.edges.append((execution, artifact, "produced" if produced else "reused"))
    self.edges.append((step_node, artifact, "output"))


def inputs_lineage(self: Engine) -> None:
    """Add artifact → step edges for every step that ran on upstream artifacts."""
    for name, st in self.state.items():
        if st.status is not StepStatus.SUCCEEDED or st.hit:
            continue
        for dep in sorted(self.dag.graph.predecessors(name)):
            stored = self.state[dep].stored
            if stored is not None and stored.digest is not None:
                self.edges.append(
                    (
                        LineageNode(kind="artifact", id=stored.digest),
                        LineageNode(kind="step", id=f"{self.folder}/{name}"),
                        "input",
                    )
                )


def step_row(self: Engine, name: str) -> dict[str, Any]:
    """Return a step's row as the catalog records it (logs capped, secrets redacted)."""
    st = self.state[name]
    logs = redact(st.logs if len(st.logs) <= LOG_LIMIT else st.logs[-LOG_LIMIT:])
    return {
        "b_eid": self.eid,
        "b_step": name,
        "status": st.status.value,
        "attempts": st.attempts,
        "cache_hit": st.hit,
        "cache_key": st.key.digest if st.key is not None else None,
        "cache_note": st.note,
        "output_digest": st.stored.digest if st.stored is not None else None,
        "output_kind": st.stored.kind if st.stored is not None else None,
        "started_at": st.started,
        "ended_at": st.ended,
        "logs": logs,
        "error": redact(st.error) if st.error else st.error,
        "traceback": redact(st.tb) if st.tb else st.tb,
    }


def flush(self: Engine, *, status: ExecutionStatus | None = None, error: str | None = None) -> None:
    """Write the buffered records (and, with ``status``, end the execution)."""
    rows = [self._step_row(n) for n in sorted(self.dirty)]
    now = now_utc()
    with self.catalog.write() as conn:
        if rows:
            conn.execute(_UPDATE_STEPS, rows)
        if self.cache_rows:  # a key written again (refresh) replaces its entry
            keys = sorted({row["key"] for row in self.cache_rows})
            conn.execute(_DELETE_CACHED, {"b_project": self.project, "b_keys": keys})
            unique = {row["key"]: row for row in self.cache_rows}
            conn.execute(_INSERT_CACHED, list(unique.values()))
        if self.bad_keys:
            keys = sorted(self.bad_keys)
            conn.execute(_DELETE_CACHED, {"b_project": self.project, "b_keys": keys})
        if self.requests:
            conn.execute(sa.insert(pipeline_approvals), self.requests)
        for digest, name in self.links:
            insert_entry(self.s, conn, folder=self.folder, digest=digest, label=name)
        # every edge touches this execution's own node or steps: new by construction,
        # once those of earlier flushes (two steps may output equal bytes) are left out
        fresh = [e for e in self.edges if e not in self.edges_written]
        insert_new_edges(self.s, conn, fresh)
        self.edges_written.update(fresh)
        if status is None:
            conn.execute(_HEARTBEAT, {"b_id": self.eid, "heartbeat_at": now})
        else:
            conn.execute(
                _END,
                {
                    "b_id": self.eid,
                    "heartbeat_at": now,
                    "status": status.value,
                    "ended_at": now,
                    "error": error,
                },
            )
            if self.run_token_id is not None:
                conn.execute(_REVOKE, {"b_id": self.run_token_id, "revoked_at": now})
                bump_epoch(conn, self.catalog, tokens_only=True)
            self.s.record(
                conn,
                action="pipeline:finish",
                resource=f"{self.project}/pipelines/{self.dag.pipeline}",
                outcome="ok" if status is ExecutionStatus.SUCCEEDED else "failed",
                detail={"execution": self.eid, "status": status.value},
            )
    self.dirty.clear()
    self.requests.clear()
    self.cache_rows.clear()
    self.bad_keys.clear()
    self.links.clear()
    self.edges.clear()
    self.last_flush = time.monotonic()


def pending_records(self: Engine) -> bool:
    """Return whether records wait to be written."""
    return bool(self.dirty or self.cache_rows or self.links or self.edges or self.bad_keys)


def step_runs(self: Engine) -> tuple[StepRun, ...]:
    """Return the steps as recorded (without reading them back)."""
    out = []
    for name, st in self.state.items():
        row = self._step_row(name)
        out.append(
            StepRun(
                name=name,
                status=st.status,
                attempts=st.attempts,
                cache_hit=st.hit,
                cache_key=row["cache_key"],
                cache_note=st.note,
                output_digest=row["output_digest"],
                output_kind=row["output_kind"],
                started_at=st.started,
                ended_at=st.ended,
                logs=row["logs"],
                error=st.error,
                traceback=st.tb,
            )
        )
    return tuple(out)


# Statements built once: building one per flush cost more than running it.
_UPDATE_STEPS = (
    sa.update(pipeline_step_runs)
    .where(
        pipeline_step_runs.c.execution_id == sa.bindparam("b_eid"),
        pipeline_step_runs.c.step == sa.bindparam("b_step"),
    )
    .values(
        {
            k: sa.bindparam(k)
            for k in (
                "status",
                "attempts",
                "cache_hit",
                "cache_key",
                "cache_note",
                "output_digest",
                "output_kind",
                "started_at",
                "ended_at",
                "logs",
                "error",
                "traceback",
            )
        }
    )
)
_DELETE_CACHED = sa.delete(pipeline_cache).where(
    pipeline_cache.c.project == sa.bindparam("b_project"),
    pipeline_cache.c.key.in_(sa.bindparam("b_keys", expanding=True)),
)
_INSERT_CACHED = sa.insert(pipeline_cache)
_HEARTBEAT = (
    sa.update(pipeline_executions)
    .where(pipeline_executions.c.id == sa.bindparam("b_id"))
    .values(heartbeat_at=sa.bindparam("heartbeat_at"))
)
_END = (
    sa.update(pipeline_executions)
    .where(pipeline_executions.c.id == sa.bindparam("b_id"))
    .values(
        heartbeat_at=sa.bindparam("heartbeat_at"),
        status=sa.bindparam("status"),
        ended_at=sa.bindparam("ended_at"),
        error=sa.bindparam("error"),
    )
)
_REVOKE = (
    sa.update(tokens)
    .where(tokens.c.id == sa.bindparam("b_id"), tokens.c.revoked_at.is_(None))
    .values(revoked_at=sa.bindparam("revoked_at"))
)
