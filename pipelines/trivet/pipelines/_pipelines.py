"""``Pipelines(session)``: run pipelines and read their executions, under the session's grants.

Permissions, on ``<project>/pipelines/<name>``: ``pipeline:run`` to run (and retry);
``pipeline:create`` to run a pipeline the catalog does not know yet (its creator then
holds ``maintainer`` on it); ``pipeline:update`` to run a changed definition (a new
version); ``pipeline:describe`` to list and read executions.

Identity: an execution runs as its invoker by default. ``run_as="runner"`` (the
project's ``<project>-runner`` service principal) or ``run_as="<service>"`` runs it as
that service principal instead, which needs ``principal:use`` on it — the code comes
from the invoker, so running it as someone else is exactly AWS's PassRole.
``pipeline:run`` alone never changes who the steps act as. Steps get the execution's
Session: the run-as principal with a *run token* — scoped to the execution's folder and
what the pipeline declares (:meth:`Pipeline.uses`; see :mod:`trivet.pipelines._scope`),
never beyond the invoker's own token, tied to the execution id, revoked when the
execution ends (or is found interrupted) and expiring after :data:`RUN_TOKEN_LIFETIME`
at most.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from trivet.errors import Conflict, NotFound, PermissionDenied, ValidationError, did_you_mean
from trivet.pipelines._approval import Approval, decide, list_approvals
from trivet.pipelines._background import Launch, StartedExecution
from trivet.pipelines._engine import Engine, RunPlan
from trivet.pipelines._outputs import Stored, load_output
from trivet.pipelines._records import (
    Execution,
    ExecutionStatus,
    PipelineInfo,
    StepStatus,
    execution_query,
    reap,
    runner_identity,
    to_execution,
)
from trivet.pipelines._scope import run_scope
from trivet.pipelines._source import load_pipeline, source_of
from trivet.pipelines.cache import CacheExplanation, diff_components
from trivet.pipelines.dag import Pipeline, json_value
from trivet.pipelines.errors import ExecutionNotFound, PipelineDefinitionError
from trivet.pipelines.executors import Executor, executor_for
from trivet.platform import identity
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import (
    pipeline_cache,
    pipeline_executions,
    pipeline_step_runs,
    pipeline_versions,
    pipelines,
)
from trivet.platform.directory import runner_name
from trivet.platform.lineage import Node as LineageNode
from trivet.platform.lineage import insert_new_edges

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = ["RUN_TOKEN_LIFETIME", "Pipelines"]

RUN_TOKEN_LIFETIME = dt.timedelta(days=1)
"""The longest a run token lives; it is revoked as soon as its execution ends."""


class Pipelines:
    """Run pipelines and read their records (``session.pipelines``).

    Example:
        >>> execution = Pipelines(session).run(train, params={"min_auc": 0.7})  # doctest: +SKIP
        >>> execution.status                                                    # doctest: +SKIP
        <ExecutionStatus.SUCCEEDED: 'succeeded'>
    """

    def __init__(self, session: Session) -> None:
        self._s = session

    def __repr__(self) -> str:
        return f"<Pipelines project={self._s.project!r} principal={self._s.principal.name!r}>"

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        pipeline: Pipeline,
        /,
        *,
        params: Mapping[str, Any] | None = None,
        run_as: str | None = None,
        refresh: bool = False,
        from_step: str | None = None,
        only: str | None = None,
        max_parallel: int | None = None,
        executor: Executor | None = None,
    ) -> Execution:
        """Run ``pipeline`` and return its execution once it ends (succeeded or not).

        Args:
            pipeline: a :func:`~trivet.pipelines.pipeline`.
            params: parameter values (strings are converted to the declared types).
            run_as: None to run as yourself; ``"runner"`` for the project's runner
                service principal, or a service principal's name (needs
                ``principal:use`` on it).
            refresh: run every step, ignoring the cache (results are still cached).
            from_step: reuse what is cached upstream, run this step and everything
                downstream of it.
            only: run only this step; its inputs must be cached.
            max_parallel: the most steps running at once (local executor).
            executor: where attempts run (default: the workspace's ``[pipelines]
                executor`` setting: a :class:`LocalExecutor`, or a
                :class:`DaskExecutor` for ``dask://host:port``).

        Raises:
            PipelineDefinitionError: an invalid DAG or parameters (nothing ran).
            PermissionDenied: no ``pipeline:run`` (or ``create``/``update``), or no
                ``principal:use`` on the run-as principal.
        """
        return self._start(
            pipeline,
            params=params,
            run_as=run_as,
            plan=RunPlan(refresh=refresh, from_step=from_step, only=only),
            max_parallel=max_parallel,
            executor=executor,
            retry_of=None,
        )

    def retry(
        self,
        execution_id: str,
        /,
        *,
        pipeline: Pipeline | None = None,
        max_parallel: int | None = None,
        executor: Executor | None = None,
    ) -> Execution:
        """Resume a failed or interrupted execution as a new one.

        Steps that succeeded before are reused (even with ``cache=False``) where
        their key is unchanged; the failed, interrupted and not-yet-run steps run.
        The parameters and run-as are the original execution's.

        Args:
            execution_id: the execution (or a unique prefix of its id).
            pipeline: the pipeline object; default: imported again from where the
                execution loaded it (its module or file).

        Raises:
            Conflict: the execution is running or succeeded.
        """
        reap(self._s.catalog)
        old = self.get_execution(execution_id)
        if old.status not in (ExecutionStatus.FAILED, ExecutionStatus.INTERRUPTED):
            raise Conflict(
                f"Execution {old.id} is {old.status.value}; only failed or interrupted "
                "executions can be retried.",
                hint="run the pipeline again instead",
            )
        with self._s.catalog.read() as conn:
            options = conn.execute(
                sa.select(pipeline_executions.c.options).where(pipeline_executions.c.id == old.id)
            ).scalar_one()
        if pipeline is None:
            me = {
                self._s.principal.name,
                *([self._s.on_behalf_of.name] if self._s.on_behalf_of else []),
            }
            if old.invoked_by not in me:
                # Reloading would run code from wherever the invoker loaded it (a file they
                # may have changed since) with this session's identity.
                raise PermissionDenied(
                    f"Execution {old.id} was started by {old.invoked_by!r}; retrying it "
                    "without the pipeline would run code they loaded, as you.",
                    hint="pass the pipeline yourself: Pipelines.retry(id, pipeline=...) — "
                    "or ask them to retry it",
                )
            pipeline = load_pipeline(dict(options.get("source") or {}))
        if pipeline.name != old.pipeline:
            raise ValidationError(
                f"Execution {old.id} ran pipeline {old.pipeline!r}, not {pipeline.name!r}."
            )
        reuse = {
            s.cache_key: Stored(digest=s.output_digest, kind=s.output_kind or "none")  # type: ignore[arg-type]
            for s in old.steps
            if s.status is StepStatus.SUCCEEDED and s.cache_key is not None
        }
        return self._start(
            pipeline,
            params=old.params,
            run_as=options.get("run_as"),
            plan=RunPlan(reuse=reuse),
            max_parallel=max_parallel,
            executor=executor,
            retry_of=old.id,
        )

    def _run_session(self, run_as: str | None) -> Session:
        if run_as is None:
            return self._s
        name = runner_name(self._s.project) if run_as == "runner" else run_as
        return self._s.assume(name)

    def start(
        self,
        pipeline: Pipeline,
        /,
        *,
        params: Mapping[str, Any] | None = None,
        run_as: str | None = None,
        refresh: bool = False,
        from_step: str | None = None,
        only: str | None = None,
        max_parallel: int | None = None,
        executor: Executor | None = None,
    ) -> StartedExecution:
        """Start ``pipeline`` in a background thread; return once its execution is recorded.

        Everything :meth:`run` checks before a step runs (the DAG, the parameters, the
        permissions, the run-as principal) is checked here, in the calling thread, and
        raised here. When this returns, the execution's row exists with the status
        ``running``, so its id can be handed out (the server answers ``202`` with it)
        while the steps run. The arguments are :meth:`run`'s.

        Returns:
            A :class:`StartedExecution`: its ``id``, and ``wait()`` for the result.

        Raises:
            PipelineDefinitionError: an invalid DAG or parameters (nothing ran).
            PermissionDenied: as for :meth:`run`.
        """
        launch = self._prepare(
            pipeline,
            params=params,
            run_as=run_as,
            plan=RunPlan(refresh=refresh, from_step=from_step, only=only),
            max_parallel=max_parallel,
            executor=executor,
            retry_of=None,
        )
        started = StartedExecution(
            id=launch.record.id,
            pipeline=launch.record.pipeline,
            project=launch.record.project,
            run=launch.run,
        )
        try:
            started._begin()
        except BaseException:  # no thread (a resource limit): end the record, not leave it
            launch.abandon("the execution could not start a thread")
            raise
        return started

    def _start(
        self,
        pipeline: Pipeline,
        *,
        params: Mapping[str, Any] | None,
        run_as: str | None,
        plan: RunPlan,
        max_parallel: int | None,
        executor: Executor | None,
        retry_of: str | None,
    ) -> Execution:
        return self._prepare(
            pipeline,
            params=params,
            run_as=run_as,
            plan=plan,
            max_parallel=max_parallel,
            executor=executor,
            retry_of=retry_of,
        ).run()

    def _prepare(
        self,
        pipeline: Pipeline,
        *,
        params: Mapping[str, Any] | None,
        run_as: str | None,
        plan: RunPlan,
        max_parallel: int | None,
        executor: Executor | None,
        retry_of: str | None,
    ) -> Launch:
        """Check, authorize and record an execution; return it ready to run."""
        if not isinstance(pipeline, Pipeline):
            raise ValidationError(
                f"run() needs a pipeline, not {type(pipeline).__name__}.",
                hint="decorate a function with @pipeline",
            )
        if executor is not None and max_parallel is not None:
            raise ValidationError(
                "Give max_parallel or an executor, not both.",
                hint="set the cap on the executor",
            )
        # before anything is recorded: a bad max_parallel must not leave a "running" row
        pool = executor if executor is not None else executor_for(self._s.settings, max_parallel)
        dag = pipeline.dag()
        values = pipeline.resolve_params(params)
        uses = pipeline.uses(values)  # what the run token will cover
        if plan.from_step is not None and plan.only is not None:
            raise ValidationError("Give from_step or only, not both.")
        for chosen in (plan.from_step, plan.only):
            if chosen is not None and chosen not in dag.nodes:
                raise PipelineDefinitionError(
                    f"The pipeline {pipeline.name!r} has no step {chosen!r}.",
                    hint=did_you_mean(chosen, dag.nodes),
                )
        frozen, digest = pipeline.recorded_definition()
        definition = dict(frozen)
        project = self._s.project
        resource = self._s.resource("pipelines", pipeline.name)
        self._s.require("pipeline:run", resource)
        reap(self._s.catalog, unless_within=1.0)
        names = {"b_project": project, "b_name": pipeline.name}
        with self._s.catalog.read() as conn:
            known = conn.execute(_PIPELINE_ID, names).scalar()
            version = None
            if known is not None:
                version = conn.execute(_VERSION, {"b_id": known, "b_digest": digest}).scalar()
        if known is None:
            self._s.require("pipeline:create", resource)
        elif version is None:
            self._s.require("pipeline:update", resource)
        base = self._run_session(run_as)
        eid = str(uuid.uuid4())
        scope = run_scope(
            project=project,
            execution_id=eid,
            pipeline=pipeline.name,
            uses=uses,
            ceiling=self._s.token.scope if self._s.token is not None else None,
        )
        # an execution may wait for decisions: its token lives through their timeouts
        lifetime = RUN_TOKEN_LIFETIME + dt.timedelta(
            seconds=sum(n.approval.timeout for n in dag.nodes.values() if n.approval is not None)
        )
        if self._s.token is not None:  # never outlive the invoker's token
            lifetime = min(lifetime, self._s.token.expires_at - now_utc())
        host, pid, mark = runner_identity()
        now = now_utc()
        options = {
            "refresh": plan.refresh,
            "from_step": plan.from_step,
            "only": plan.only,
            "max_parallel": max_parallel,
            "run_as": run_as,
            "source": source_of(pipeline),
        }
        with self._s.catalog.write() as conn:
            pid_row = conn.execute(_PIPELINE_ID, names).scalar()
            if pid_row is None:
                pid_row = self._create_pipeline(conn, pipeline, resource)
            version = conn.execute(_VERSION, {"b_id": pid_row, "b_digest": digest}).scalar()
            if version is None:
                latest = conn.execute(
                    sa.select(sa.func.max(pipeline_versions.c.version)).where(
                        pipeline_versions.c.pipeline_id == pid_row
                    )
                ).scalar()
                version = int(latest or 0) + 1
                conn.execute(
                    sa.insert(pipeline_versions).values(
                        pipeline_id=pid_row,
                        version=version,
                        digest=digest,
                        definition=definition,
                        created_at=now,
                        created_by=self._s.principal.id,
                    )
                )
            conn.execute(
                _INSERT_EXECUTION,
                {
                    "id": eid,
                    "pipeline_id": pid_row,
                    "version": version,
                    "status": ExecutionStatus.RUNNING.value,
                    "params": {k: json_value(v) for k, v in values.items()},
                    "options": options,
                    "run_as": base.principal.name,
                    "invoked_by": self._s.principal.name,
                    "retry_of": retry_of,
                    "runner_host": host,
                    "runner_pid": pid,
                    "runner_start": mark,
                    "started_at": now,
                    "heartbeat_at": now,
                    "ended_at": None,
                    "error": None,
                },
            )
            conn.execute(
                _INSERT_STEPS,
                [
                    {
                        "execution_id": eid,
                        "step": name,
                        "status": StepStatus.PENDING.value,
                        "attempts": 0,
                        "cache_hit": False,
                        "cache_note": "",
                        "logs": "",
                    }
                    for name in dag.nodes
                ],
            )
            token, secret = identity.insert_token(
                conn,
                principal=base.principal,
                kind="run",
                expires_in=lifetime,
                scope=scope,
                description=f"run token of execution {eid}",
                created_by=self._s.principal.id,
                run_id=eid,
                # revoking the invoker's token revokes the run's
                parent_id=self._s.token.id if self._s.token is not None else None,
            )
            insert_new_edges(  # a new execution: its edge cannot exist yet
                self._s,
                conn,
                [
                    (
                        LineageNode(kind="pipeline", id=resource),
                        LineageNode(kind="execution", id=f"{project}/runs/{eid}"),
                        "ran",
                    )
                ],
            )
            self._s.record(
                conn,
                action="pipeline:run",
                resource=resource,
                detail={
                    "execution": eid,
                    "version": version,
                    "run_as": base.principal.name,
                    "retry_of": retry_of,
                },
            )
        run_session = base.derive(token=token, run_id=eid)
        run_session.artifacts.blobs  # noqa: B018 - open the blob store before threads share it
        engine = Engine(
            session=run_session,
            execution_id=eid,
            dag=dag,
            params=values,
            executor=pool,
            plan=plan,
            run_token_id=token.id,
            run_token=secret,  # for workers in other processes
        )
        record = Execution(
            id=eid,
            pipeline=pipeline.name,
            project=project,
            version=version,
            status=ExecutionStatus.RUNNING,
            params={k: json_value(v) for k, v in values.items()},
            run_as=base.principal.name,
            invoked_by=self._s.principal.name,
            retry_of=retry_of,
            started_at=now,
            ended_at=None,
            error=None,
            steps=engine.step_runs(),
            definition=definition,
        )
        return Launch(engine=engine, record=record)

    def _create_pipeline(self, conn: sa.Connection, pipeline: Pipeline, resource: str) -> str:
        from trivet.platform.access import insert_grant

        pid = str(uuid.uuid4())
        conn.execute(
            sa.insert(pipelines).values(
                id=pid,
                project=self._s.project,
                name=pipeline.name,
                description=pipeline.description,
                created_at=now_utc(),
                created_by=self._s.principal.id,
            )
        )
        insert_grant(
            self._s,
            conn,
            subject=self._s.principal,
            effect="allow",
            privilege="maintainer",
            pattern=f"{resource}/*",
            reason=f"created pipeline {pipeline.name!r}",
        )
        self._s.record(conn, action="pipeline:create", resource=resource, detail={"id": pid})
        return pid

    # -- reading -------------------------------------------------------------------------------
    def _resolve_id(self, conn: sa.Connection, execution_id: str) -> Any:
        if not isinstance(execution_id, str) or len(execution_id) < 4:
            raise ValidationError(
                f"{execution_id!r} is not an execution id.",
                hint="give the id or a unique prefix of at least 4 characters",
            )
        rows = conn.execute(
            execution_query()
            .where(
                pipelines.c.project == self._s.project,
                pipeline_executions.c.id.startswith(execution_id, autoescape=True),
            )
            .limit(2)
        ).all()
        if not rows:
            raise ExecutionNotFound(
                f"There is no execution {execution_id!r} in project {self._s.project!r}.",
                hint="list them with `trivet pipelines executions`",
            )
        if len(rows) > 1:
            raise ValidationError(
                f"The prefix {execution_id!r} matches several executions.", hint="give more of it"
            )
        return rows[0]

    def get_execution(self, execution_id: str) -> Execution:
        """Return an execution with its steps (needs ``pipeline:describe``)."""
        with self._s.catalog.read() as conn:
            row = self._resolve_id(conn, execution_id)
            self._s.require("pipeline:describe", self._s.resource("pipelines", row.pipeline_name))
            return to_execution(conn, row)

    def executions(
        self, pipeline: str | None = None, *, limit: int = 50, with_steps: bool = False
    ) -> list[Execution]:
        """Return the newest executions (of one pipeline, or all) you may describe.

        Executions whose runner died are marked ``interrupted`` first.
        """
        reap(self._s.catalog)
        query = execution_query().where(pipelines.c.project == self._s.project)
        if pipeline is not None:
            query = query.where(pipelines.c.name == pipeline)
        query = query.order_by(pipeline_executions.c.started_at.desc()).limit(limit)
        with self._s.catalog.read() as conn:
            rows = conn.execute(query).all()
            return [
                to_execution(conn, r, with_steps=with_steps)
                for r in rows
                if self._s.can("pipeline:describe", self._s.resource("pipelines", r.pipeline_name))
            ]

    def output(self, execution_id: str, step: str) -> Any:
        """Load a step's output (needs ``artifact:read`` on a folder holding it)."""
        run = self.get_execution(execution_id).step(step)
        if run.status is not StepStatus.SUCCEEDED:
            raise Conflict(
                f"Step {step!r} of execution {execution_id} has no output: {run.status}."
            )
        kind: Any = run.output_kind or "none"
        return load_output(self._s, Stored(digest=run.output_digest, kind=kind))

    def logs(self, execution_id: str, step: str | None = None) -> dict[str, str]:
        """Return what the steps printed and logged (one step, or all), by step."""
        execution = self.get_execution(execution_id)
        steps = [execution.step(step)] if step is not None else execution.steps
        return {s.name: s.logs for s in steps}

    def explain_miss(self, execution_id: str, step: str) -> CacheExplanation:
        """Explain why a step ran instead of being reused: diff its cache key against the
        closest earlier key of the same step in the project (``trivet pipelines why``)."""
        execution = self.get_execution(execution_id)
        run = execution.step(step)
        with self._s.catalog.read() as conn:
            mine = None
            if run.cache_key is not None:
                mine = conn.execute(
                    sa.select(pipeline_cache.c.components).where(
                        pipeline_cache.c.project == self._s.project,
                        pipeline_cache.c.key == run.cache_key,
                    )
                ).scalar()
            query = (
                sa.select(
                    pipeline_cache.c.key,
                    pipeline_cache.c.components,
                    pipeline_cache.c.execution_id,
                    pipeline_cache.c.created_at,
                    pipelines.c.name.label("pipeline"),
                )
                .join(
                    pipeline_executions,
                    pipeline_executions.c.id == pipeline_cache.c.execution_id,
                )
                .join(pipelines, pipelines.c.id == pipeline_executions.c.pipeline_id)
                .where(
                    pipeline_cache.c.project == self._s.project,
                    pipeline_cache.c.step == step,
                    pipeline_cache.c.execution_id != execution.id,
                )
            )
            if run.started_at is not None:
                query = query.where(pipeline_cache.c.created_at <= run.started_at)
            found = conn.execute(query.order_by(pipeline_cache.c.created_at.desc())).all()
        # only keys of pipelines the caller may describe: their parameters are in them
        earlier = [
            row
            for row in found
            if self._s.can("pipeline:describe", self._s.resource("pipelines", row.pipeline))
        ]
        note = run.cache_note or f"the step is {run.status.value}"
        best: tuple[int, Any, list[str]] | None = None
        if mine is not None:
            for row in earlier:
                if row.key == run.cache_key:
                    continue
                diff = diff_components(row.components, mine)
                if best is None or len(diff) < best[0]:
                    best = (len(diff), row, diff)
        elif earlier and not run.cache_hit:
            note += " (its key's components were not kept: the step did not succeed)"
        return CacheExplanation(
            execution_id=execution.id,
            step=step,
            cache_hit=run.cache_hit,
            note=note,
            key=run.cache_key,
            closest_key=best[1].key if best else None,
            closest_execution=best[1].execution_id if best else None,
            differences=tuple(best[2]) if best else (),
        )

    # -- approvals -------------------------------------------------------------------------------
    def approvals(
        self, execution_id: str | None = None, *, waiting: bool = True, limit: int = 100
    ) -> builtins.list[Approval]:
        """Return approval steps, newest first: by default those waiting for a decision.

        Args:
            execution_id: one execution's (or a unique prefix of its id); None for the
                project's, of the pipelines you may describe.
            waiting: only those waiting for a decision (False: decided ones too).
            limit: the most to return.
        """
        reap(self._s.catalog)
        eid = None
        if execution_id is not None:  # its id and the right to see it, not its steps
            with self._s.catalog.read() as conn:
                row = self._resolve_id(conn, execution_id)
            self._s.require("pipeline:describe", self._s.resource("pipelines", row.pipeline_name))
            eid = row.id
        return list_approvals(self._s, execution_id=eid, waiting=waiting, limit=limit)

    def approve(self, execution_id: str, step: str, /, *, comment: str = "") -> Approval:
        """Approve a waiting approval step; the execution goes on (needs ``pipeline:approve``).

        Args:
            execution_id: the execution (or a unique prefix of its id).
            step: the approval step's name.
            comment: why, for the record (the step's output carries it).

        Raises:
            PermissionDenied: no ``pipeline:approve`` on the pipeline.
            NotFound: no such execution, or it has no approval step of that name.
            Conflict: the step is not waiting (already decided, timed out, not reached,
                or the execution is no longer running).
        """
        return self._decide(execution_id, step, approve=True, comment=comment)

    def reject(self, execution_id: str, step: str, /, *, comment: str = "") -> Approval:
        """Reject a waiting approval step (needs ``pipeline:approve``).

        The step fails, and the execution with it, unless the approval has an
        ``otherwise`` branch, which then runs. Arguments and errors are
        :meth:`approve`'s.
        """
        return self._decide(execution_id, step, approve=False, comment=comment)

    def _decide(self, execution_id: str, step: str, *, approve: bool, comment: str) -> Approval:
        reap(self._s.catalog)
        with self._s.catalog.read() as conn:
            row = self._resolve_id(conn, execution_id)
        return decide(
            self._s,
            execution_id=row.id,
            pipeline=row.pipeline_name,
            step=step,
            approve=approve,
            comment=comment,
        )

    # -- pipelines -------------------------------------------------------------------------------
    def list(self) -> builtins.list[PipelineInfo]:
        """Return the project's pipelines you may describe, with their latest versions."""
        with self._s.catalog.read() as conn:
            rows = conn.execute(
                sa.select(pipelines)
                .where(pipelines.c.project == self._s.project)
                .order_by(pipelines.c.name)
            ).all()
            return [
                self._info(conn, r, None)
                for r in rows
                if self._s.can("pipeline:describe", self._s.resource("pipelines", r.name))
            ]

    def describe(self, name: str, *, version: int | None = None) -> PipelineInfo:
        """Return a pipeline's definition (its latest version, or ``version``)."""
        with self._s.catalog.read() as conn:
            row = conn.execute(
                sa.select(pipelines).where(
                    pipelines.c.project == self._s.project, pipelines.c.name == name
                )
            ).first()
            if row is None:
                names = conn.execute(
                    sa.select(pipelines.c.name).where(pipelines.c.project == self._s.project)
                ).scalars()
                raise NotFound(
                    f"There is no pipeline {name!r} in project {self._s.project!r}.",
                    hint=did_you_mean(name, list(names)) or "run it once to register it",
                )
            self._s.require("pipeline:describe", self._s.resource("pipelines", name))
            return self._info(conn, row, version)

    def _info(self, conn: sa.Connection, row: Any, version: int | None) -> PipelineInfo:
        versions = conn.execute(
            sa.select(pipeline_versions)
            .where(pipeline_versions.c.pipeline_id == row.id)
            .order_by(pipeline_versions.c.version)
        ).all()
        chosen = (
            versions[-1]
            if version is None
            else next((v for v in versions if v.version == version), None)
        )
        if chosen is None:
            raise NotFound(
                f"Pipeline {row.name!r} has no version {version}.",
                hint=f"it has versions 1 to {len(versions)}",
            )
        return PipelineInfo(
            name=row.name,
            project=row.project,
            description=row.description,
            version=chosen.version,
            versions=len(versions),
            definition=chosen.definition,
            created_at=chosen.created_at,
        )

    def graph(
        self,
        name: str,
        *,
        format: Literal["text", "mermaid", "svg"] = "text",
        execution: str | None = None,
    ) -> str:
        """Render a registered pipeline's DAG, with the step statuses of an execution.

        Args:
            name: the pipeline.
            format: ``text``, ``mermaid`` or ``svg`` (a self-contained picture: no
                script, no external reference).
            execution: an execution (or an id prefix) whose step statuses to show.
        """
        from trivet.pipelines._graph import render, step_details

        statuses = None
        details = None
        version = None
        if execution is not None:
            ex = self.get_execution(execution)
            statuses = {s.name: s.status.value for s in ex.steps}
            details = step_details(ex.steps)
            version = ex.version
        info = self.describe(name, version=version)
        return render(info.definition, format=format, statuses=statuses, details=details)


# Statements built once (building them cost more than running them).
_PIPELINE_ID = sa.select(pipelines.c.id).where(
    pipelines.c.project == sa.bindparam("b_project"), pipelines.c.name == sa.bindparam("b_name")
)
_VERSION = sa.select(pipeline_versions.c.version).where(
    pipeline_versions.c.pipeline_id == sa.bindparam("b_id"),
    pipeline_versions.c.digest == sa.bindparam("b_digest"),
)
_INSERT_EXECUTION = sa.insert(pipeline_executions)
_INSERT_STEPS = sa.insert(pipeline_step_runs)
