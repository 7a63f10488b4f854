"""Execution records in the catalog: executions, step runs, the step cache.

An execution row carries who ran it (``invoked_by``), as whom (``run_as``), its
parameters, the pipeline version (whose definition it ran), its status, and the
runner process (host, pid and the process's start mark) with a heartbeat. A row
left ``running`` by a runner that died is marked ``interrupted`` the next time
executions are listed or started (:func:`reap`): on the same host when the pid is
gone or belongs to a newer process; elsewhere when the heartbeat is older than
:data:`STALE_AFTER`.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from trivet.pipelines.errors import ExecutionFailed
from trivet.platform.catalog import Catalog, now_utc
from trivet.platform.catalog.schema import (
    pipeline_executions,
    pipeline_step_runs,
    pipeline_versions,
    pipelines,
    tokens,
)
from trivet.platform.permissions import bump_epoch

__all__ = [
    "HEARTBEAT",
    "STALE_AFTER",
    "Execution",
    "ExecutionStatus",
    "PipelineInfo",
    "StepRun",
    "StepStatus",
    "execution_query",
    "reap",
    "runner_identity",
    "to_execution",
]

HEARTBEAT = dt.timedelta(seconds=10)
"""How often a running execution refreshes its heartbeat (at least)."""
STALE_AFTER = dt.timedelta(seconds=60)
"""A running execution of another host whose heartbeat is older is interrupted."""
LOG_LIMIT = 64 * 1024


class ExecutionStatus(enum.StrEnum):
    """The state of an execution."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StepStatus(enum.StrEnum):
    """The state of a step within an execution."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """A condition sent the execution the other way, or the step was not selected."""
    UPSTREAM_FAILED = "upstream_failed"
    INTERRUPTED = "interrupted"
    WAITING = "waiting"
    """An approval step waits for a person's decision."""


@dataclass(frozen=True, kw_only=True)
class StepRun:
    """One step of an execution."""

    name: str
    status: StepStatus
    attempts: int
    cache_hit: bool
    cache_key: str | None
    cache_note: str
    output_digest: str | None
    output_kind: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    logs: str = field(repr=False)
    error: str | None
    traceback: str | None = field(repr=False)

    @property
    def duration(self) -> dt.timedelta | None:
        """How long the step ran (None if it did not run)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(frozen=True, kw_only=True)
class Execution:
    """One run of a pipeline, with its steps."""

    id: str
    pipeline: str
    project: str
    version: int
    status: ExecutionStatus
    params: Mapping[str, Any]
    run_as: str
    invoked_by: str
    retry_of: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    error: str | None
    steps: Sequence[StepRun] = field(repr=False)
    definition: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    """The definition of the pipeline version it ran (None when not read)."""

    def _repr_html_(self) -> str:
        """Show the execution in Jupyter: its DAG coloured by step status, its steps."""
        from trivet.pipelines._graph import execution_html

        return execution_html(self)

    @property
    def succeeded(self) -> bool:
        """Whether the execution succeeded."""
        return self.status is ExecutionStatus.SUCCEEDED

    def step(self, name: str) -> StepRun:
        """Return the step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        from trivet.errors import NotFound, did_you_mean

        raise NotFound(
            f"Execution {self.id} has no step {name!r}.",
            hint=did_you_mean(name, [s.name for s in self.steps]),
        )

    def raise_for_status(self) -> Execution:
        """Return the execution if it succeeded, else raise :class:`ExecutionFailed`."""
        if self.succeeded:
            return self
        failed = [s.name for s in self.steps if s.status is StepStatus.FAILED]
        raise ExecutionFailed(
            f"Execution {self.id} of pipeline {self.pipeline!r} {self.status.value}"
            + (f": {self.error}" if self.error else "")
            + (f" (failed steps: {', '.join(failed)})" if failed else "")
            + ".",
            hint=f"see `trivet pipelines logs {self.id}`; resume with "
            f"`trivet pipelines retry {self.id}`",
        )


@dataclass(frozen=True, kw_only=True)
class PipelineInfo:
    """A pipeline known to the catalog, with its latest (or a chosen) version."""

    name: str
    project: str
    description: str
    version: int
    versions: int
    definition: Mapping[str, Any] = field(repr=False)
    created_at: dt.datetime


# -- the runner process ---------------------------------------------------------------------
def process_mark(pid: int) -> str | None:
    """Return a mark that tells process ``pid`` from a later one with the same pid.

    On Linux, the process's start time in clock ticks since boot; elsewhere ``""`` (the
    pid alone is then compared). None if there is no such (live) process.
    """
    try:
        with Path(f"/proc/{pid}/stat").open(encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    if stat:
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields and fields[0] in ("Z", "X"):
            return None  # a zombie: dead, not yet reaped
        return fields[19] if len(fields) > 19 else ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return ""


def runner_identity() -> tuple[str, int, str]:
    """Return this process's host name, pid and start mark."""
    pid = os.getpid()
    return socket.gethostname()[:256], pid, process_mark(pid) or ""


def _is_dead(host: str, pid: int, mark: str, heartbeat: dt.datetime, now: dt.datetime) -> bool:
    if host == socket.gethostname()[:256]:
        current = process_mark(pid)
        return current is None or (bool(mark) and current != mark)
    return now - heartbeat > STALE_AFTER


_RUNNING = sa.select(
    pipeline_executions.c.id,
    pipeline_executions.c.runner_host,
    pipeline_executions.c.runner_pid,
    pipeline_executions.c.runner_start,
    pipeline_executions.c.heartbeat_at,
).where(pipeline_executions.c.status == "running")


_last_reap: dict[str, float] = {}


def reap(catalog: Catalog, *, unless_within: float = 0.0) -> list[str]:
    """Mark executions whose runner died ``interrupted``; return their ids.

    ``unless_within``: skip if this process reaped the same catalog that many seconds
    ago or less (starting an execution reaps at most once a second: a dead runner's
    rows wait at most that long more).
    """
    clock = time.monotonic()
    if unless_within > 0 and clock - _last_reap.get(catalog.url, -math.inf) <= unless_within:
        return []
    _last_reap[catalog.url] = clock
    now = now_utc()
    with catalog.read() as conn:
        rows = conn.execute(_RUNNING).all()
    dead = [
        r.id
        for r in rows
        if _is_dead(r.runner_host, r.runner_pid, r.runner_start, r.heartbeat_at, now)
    ]
    if not dead:
        return []
    with catalog.write() as conn:
        conn.execute(
            sa.update(pipeline_executions)
            .where(
                pipeline_executions.c.id.in_(dead),
                pipeline_executions.c.status == ExecutionStatus.RUNNING.value,
            )
            .values(
                status=ExecutionStatus.INTERRUPTED.value,
                ended_at=now,
                error="the runner process stopped before the execution finished",
            )
        )
        conn.execute(
            sa.update(pipeline_step_runs)
            .where(
                pipeline_step_runs.c.execution_id.in_(dead),
                pipeline_step_runs.c.status.in_(
                    [StepStatus.PENDING.value, StepStatus.RUNNING.value, StepStatus.WAITING.value]
                ),
            )
            .values(status=StepStatus.INTERRUPTED.value)
        )
        conn.execute(  # their run tokens end with them
            sa.update(tokens)
            .where(tokens.c.run_id.in_(dead), tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        bump_epoch(conn, catalog, tokens_only=True)
    return dead


# -- reading ----------------------------------------------------------------------------------
def execution_query() -> sa.Select[Any]:
    """Select execution rows with their pipeline's name and project."""
    return sa.select(
        pipeline_executions, pipelines.c.name.label("pipeline_name"), pipelines.c.project
    ).select_from(
        pipeline_executions.join(pipelines, pipelines.c.id == pipeline_executions.c.pipeline_id)
    )


def to_execution(conn: sa.Connection, row: Any, *, with_steps: bool = True) -> Execution:
    """Build an :class:`Execution` from a row of :func:`execution_query`."""
    steps: list[StepRun] = []
    definition = None
    if with_steps:
        definition = _definition(conn, row.pipeline_id, row.version)
        order = {s["name"]: i for i, s in enumerate((definition or {}).get("steps", []))}
        found = sorted(
            conn.execute(
                sa.select(pipeline_step_runs).where(pipeline_step_runs.c.execution_id == row.id)
            ).all(),
            key=lambda s: order.get(s.step, len(order)),
        )
        steps = [
            StepRun(
                name=s.step,
                status=StepStatus(s.status),
                attempts=s.attempts,
                cache_hit=bool(s.cache_hit),
                cache_key=s.cache_key,
                cache_note=s.cache_note,
                output_digest=s.output_digest,
                output_kind=s.output_kind,
                started_at=s.started_at,
                ended_at=s.ended_at,
                logs=s.logs,
                error=s.error,
                traceback=s.traceback,
            )
            for s in found
        ]
    return Execution(
        id=row.id,
        pipeline=row.pipeline_name,
        project=row.project,
        version=row.version,
        status=ExecutionStatus(row.status),
        params=dict(row.params or {}),
        run_as=row.run_as,
        invoked_by=row.invoked_by,
        retry_of=row.retry_of,
        started_at=row.started_at,
        ended_at=row.ended_at,
        error=row.error,
        steps=tuple(steps),
        definition=definition,
    )


def _definition(conn: sa.Connection, pipeline_id: str, version: int) -> dict[str, Any] | None:
    definition = conn.execute(
        sa.select(pipeline_versions.c.definition).where(
            pipeline_versions.c.pipeline_id == pipeline_id,
            pipeline_versions.c.version == version,
        )
    ).scalar()
    return dict(definition) if definition else None
