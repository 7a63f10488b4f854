"""The engine: runs a validated DAG on an executor, with caching, retries, timeouts
and batched records.

The engine runs in the calling thread. It settles each node once its inputs are
settled (skipped by a condition, failed upstream, reused from the cache, or run);
attempts run on the executor and report back through a queue. Records (step rows,
cache entries, artifact links, lineage edges, the heartbeat) are buffered and written
in one transaction at most every :data:`FLUSH_INTERVAL`, and at the end.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import logging
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from trivet.errors import IntegrityError, TrivetError
from trivet.pipelines import _engine_approvals, _engine_records
from trivet.pipelines._capture import capturing
from trivet.pipelines._engine_approvals import APPROVAL_POLL
from trivet.pipelines._expr import Expr, Get, Output, ParamRef, evaluate, exprs_in
from trivet.pipelines._outputs import Stored, load_output
from trivet.pipelines._records import (
    HEARTBEAT,
    ExecutionStatus,
    StepStatus,
)
from trivet.pipelines._source import function_id
from trivet.pipelines.cache import (
    CacheKey,
    CodeFingerprint,
    Unhashable,
    canonical,
    fingerprint,
    make_key,
)
from trivet.pipelines.errors import StepTimeout
from trivet.pipelines.executors._attempt import (
    Attempt,
    RemoteAttempt,
    RemoteResult,
    RunToken,
    StepFunction,
    detach,
    roots_of,
    run_step,
)
from trivet.platform.artifacts._base import blob_key
from trivet.platform.catalog import now_utc
from trivet.platform.catalog._catalog import as_utc
from trivet.platform.catalog.schema import (
    artifact_entries,
    artifacts,
    pipeline_cache,
)
from trivet.platform.lineage import Node as LineageNode

if TYPE_CHECKING:
    from trivet.pipelines.dag import Dag, Node
    from trivet.pipelines.executors import Executor
    from trivet.platform.session import Session

__all__ = ["APPROVAL_POLL", "FLUSH_INTERVAL", "Engine", "RunPlan"]

FLUSH_INTERVAL = 0.2
"""Seconds a record may wait in the buffer before it is written."""
log = logging.getLogger("trivet.pipelines")
_UNSET: Any = object()
_TERMINAL = frozenset(
    {
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.UPSTREAM_FAILED,
        StepStatus.INTERRUPTED,
    }
)
_BROKEN = frozenset({StepStatus.FAILED, StepStatus.UPSTREAM_FAILED, StepStatus.INTERRUPTED})


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """What to run: every step, a part (``from_step``/``only``), with or without the cache."""

    refresh: bool = False
    from_step: str | None = None
    only: str | None = None
    reuse: Mapping[str, Stored] = field(default_factory=dict)
    """Results of the execution being retried, by cache key (reused even with
    ``cache=False`` or past their expiry)."""


@dataclass
class _State:
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    attempt_id: int = 0
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    value: Any = _UNSET
    stored: Stored | None = None
    key: CacheKey | None = None
    note: str = ""
    hit: bool = False
    logs: str = ""
    error: str | None = None
    tb: str | None = None
    future: Future[Any] | None = None
    deadline: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class _CacheEntry:
    digest: str | None
    kind: str
    created_at: dt.datetime
    execution_id: str


class Engine:
    """Runs one execution (create it with :meth:`Pipelines.run`)."""

    # approval steps: trivet.pipelines._engine_approvals
    _approval_key = _engine_approvals.approval_key
    _ask = _engine_approvals.ask
    _poll_approvals = _engine_approvals.poll_approvals
    _decided = _engine_approvals.decided
    # records: trivet.pipelines._engine_records
    _cache_row = _engine_records.cache_row
    _lineage = _engine_records.lineage
    _inputs_lineage = _engine_records.inputs_lineage
    _step_row = _engine_records.step_row
    flush = _engine_records.flush
    _pending_records = _engine_records.pending_records
    step_runs = _engine_records.step_runs

    def __init__(
        self,
        *,
        session: Session,
        execution_id: str,
        dag: Dag,
        params: Mapping[str, Any],
        executor: Executor,
        plan: RunPlan,
        run_token_id: str | None,
        run_token: str | None = None,
    ) -> None:
        self.s = session
        self.catalog = session.catalog
        self.project = session.project
        self.eid = execution_id
        self.folder = f"{self.project}/runs/{execution_id}"
        self.dag = dag
        self.params = params
        self.executor = executor
        self.plan = plan
        self.run_token_id = run_token_id
        # the run token's secret, for executors whose workers open their own session
        self.run_token = RunToken(run_token) if run_token is not None else None
        self.in_process = getattr(executor, "in_process", True)
        self.functions: dict[int, StepFunction] = {}
        self.state = {name: _State() for name in dag.nodes}
        self.waiting = {name: dag.graph.in_degree(name) for name in dag.nodes}
        self.open = len(dag.nodes)
        self.done: queue.SimpleQueue[tuple[str, int, Future[Any]]] = queue.SimpleQueue()
        self.inline: deque[tuple[str, int]] = deque()  # attempts ready to run, in order
        self.pooled = 0  # attempts handed to the executor and not yet answered
        # The engine's thread holds this lock but while it runs a step itself; the
        # watchdog takes it to write records and the heartbeat during a long such step.
        self.records_lock = threading.Lock()
        self.inline_since: float | None = None
        self.stopping = threading.Event()
        self.watched = False
        self.retries: list[tuple[float, int, str]] = []
        self.fingerprints: dict[int, CodeFingerprint] = {}
        self.mode = self._selection()
        # buffered records
        self.dirty: set[str] = set()
        self.cache_rows: list[dict[str, Any]] = []
        self.bad_keys: set[str] = set()
        self.links: list[tuple[str, str]] = []
        self.edges: list[tuple[LineageNode, LineageNode, str]] = []
        self.edges_written: set[tuple[LineageNode, LineageNode, str]] = set()
        self.last_flush = time.monotonic()
        self.index, self.sizes, self.folders = self._load_cache_index()
        self.ended_at: dt.datetime | None = None
        self.error: str | None = None
        # approval steps waiting for a decision: name → when to stop waiting (monotonic)
        self.approvals: dict[str, float] = {}
        self.requests: list[dict[str, Any]] = []  # their rows, until flushed
        self.next_poll = 0.0

    # -- selection --------------------------------------------------------------------------
    def _selection(self) -> dict[str, str]:
        """Return each node's mode: run, forced, cache_only or skip."""
        import networkx as nx

        g = self.dag.graph
        base = "forced" if self.plan.refresh else "run"
        mode = dict.fromkeys(self.dag.nodes, base)
        if self.plan.only is not None:
            mode = dict.fromkeys(self.dag.nodes, "skip")
            for up in nx.ancestors(g, self.plan.only):
                mode[up] = "cache_only"
            mode[self.plan.only] = "forced"
        elif self.plan.from_step is not None:
            for down in nx.descendants(g, self.plan.from_step) | {self.plan.from_step}:
                mode[down] = "forced"
        return mode

    # -- the cache index ----------------------------------------------------------------------
    def _load_cache_index(
        self,
    ) -> tuple[dict[str, _CacheEntry], dict[str, int], dict[str, list[str]]]:
        steps = sorted({n.name for n in self.dag.nodes.values() if n.kind == "step"})
        index: dict[str, _CacheEntry] = {}
        sizes: dict[str, int] = {}
        folders: dict[str, list[str]] = {}
        if self.plan.refresh and not self.plan.reuse:
            return index, sizes, folders  # every step runs: nothing to look up
        with self.catalog.read() as conn:
            rows = conn.execute(_CACHED, {"b_project": self.project, "b_steps": steps}).all()
            for r in rows:
                index[r.key] = _CacheEntry(
                    r.output_digest, r.output_kind, r.created_at, r.execution_id
                )
                if r.output_digest is not None and r.size is not None:
                    sizes[r.output_digest] = int(r.size)
            digests = sorted(sizes | {s.digest: 0 for s in self.plan.reuse.values() if s.digest})
            for i in range(0, len(digests), 500):
                for entry in conn.execute(
                    sa.select(artifact_entries.c.digest, artifact_entries.c.folder).where(
                        artifact_entries.c.digest.in_(digests[i : i + 500])
                    )
                ):
                    folders.setdefault(entry.digest, []).append(entry.folder)
            if self.plan.reuse:
                for art in conn.execute(
                    sa.select(artifacts.c.digest, artifacts.c.size).where(
                        artifacts.c.digest.in_(digests)
                    )
                ):
                    sizes[art.digest] = int(art.size)
        return index, sizes, folders

    def _usable(self, digest: str) -> str | None:
        """Return why a stored output cannot be reused, or None if it can."""
        size = self.sizes.get(digest)
        info = self.s.artifacts.blobs.info(blob_key(digest))
        if size is None or info is None or info.size != size:
            return "the cached output's payload is missing or damaged"
        if not any(self.s.can("artifact:read", f) for f in self.folders.get(digest, ())):
            return "the cached output is in no folder this run may read"
        return None

    def _retried(self, key: CacheKey) -> Stored | None:
        """Return the retried execution's result under ``key``, if it can still be reused."""
        reused = self.plan.reuse.get(key.digest)
        if reused is None or (
            reused.digest is not None and self._usable(reused.digest) is not None
        ):
            return None
        return reused

    def _lookup(self, node: Node, key: CacheKey) -> tuple[Stored | None, str]:
        assert node.step is not None
        options = node.step.options
        reused = self._retried(key) if self.mode[node.name] != "forced" else None
        if reused is not None:
            return reused, "hit: reused from the execution being retried"
        if self.mode[node.name] == "forced":
            return None, "forced: refresh requested"
        if not options.cache:
            return None, "forced: the step has cache=False"
        entry = self.index.get(key.digest)
        if entry is None:
            return None, "miss: no earlier result with this key in the project"
        if options.cache_expiry is not None:
            created = as_utc(entry.created_at)
            if created is not None and now_utc() - created > options.cache_expiry:
                return None, "miss: the cached result expired"
        if entry.digest is None:
            return Stored(digest=None, kind="none"), f"hit: from execution {entry.execution_id}"
        problem = self._usable(entry.digest)
        if problem is not None:
            return None, f"miss: {problem} (recomputed)"
        kind: Any = entry.kind
        return Stored(digest=entry.digest, kind=kind), f"hit: from execution {entry.execution_id}"

    # -- keys ----------------------------------------------------------------------------------
    def _key_form(self, value: Any) -> Any:
        if isinstance(value, Output):
            stored = self.state[value.node].stored
            assert stored is not None
            return {"artifact": stored.digest, "kind": stored.kind}
        if isinstance(value, Get):
            root, keys = value.path()
            if isinstance(root, Output):
                return {"get": list(keys), "of": self._key_form(root)}
        if isinstance(value, Expr):
            return canonical(value.evaluate(self._resolve))
        if isinstance(value, list | tuple):
            return [self._key_form(v) for v in value]
        if isinstance(value, dict) and any(True for _ in exprs_in(value)):
            return {"dict": {str(k): self._key_form(v) for k, v in value.items()}}
        return canonical(value)

    def _key_parts(self, node: Node) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split a node's arguments into parameters and inputs, in their key forms.

        Raises:
            Unhashable: an argument has no canonical form.
        """
        params: dict[str, Any] = {}
        inputs: dict[str, Any] = {}
        for arg, value in node.args.items():
            reads_output = any(isinstance(r, Output) for e in exprs_in(value) for r in e.roots())
            try:
                form = self._key_form(value)
            except Unhashable as exc:
                raise Unhashable(f"the argument {arg!r} (a {exc.what})") from None
            (inputs if reads_output else params)[arg] = form
        return params, inputs

    def _key(self, node: Node) -> tuple[CacheKey | None, str | None]:
        assert node.step is not None
        fn = node.step.fn
        code = self.fingerprints.get(id(fn))
        if code is None:
            code = self.fingerprints[id(fn)] = fingerprint(fn)
        try:
            params, inputs = self._key_parts(node)
        except Unhashable as exc:
            return None, f"forced: {exc.what} has no canonical form, so no cache key"
        if node.step.options.cache_per_principal:
            # a side effect's result stands for a permission: never reuse another's
            params["__principal__"] = self.s.principal.id
        key = make_key(function=function_id(fn), code=code, params=params, inputs=inputs)
        return key, None

    # -- values --------------------------------------------------------------------------------
    def _resolve(self, ref: Output | ParamRef) -> Any:
        if isinstance(ref, ParamRef):
            return self.params[ref.name]
        st = self.state[ref.node]
        with st.lock:
            if st.value is _UNSET:
                assert st.stored is not None
                try:
                    st.value = load_output(self.s, st.stored)
                except IntegrityError:
                    if st.key is not None:
                        self.bad_keys.add(st.key.digest)  # never reuse it again
                    raise
            return st.value

    def _attempt(self, node: Node) -> Attempt:
        """Run one attempt of a step (on an in-process executor's thread); never raises."""
        assert node.step is not None
        return run_step(
            node.step.fn,
            node.step.signature,
            node.args,
            resolve=self._resolve,
            session=self.s,
            folder=self.folder,
            name=node.name,
        )

    def _remote_attempt(self, node: Node, attempt: int) -> RemoteAttempt:
        """Describe one attempt of a step for a worker in another process (picklable)."""
        assert node.step is not None
        if self.run_token is None:
            raise TrivetError(
                "This execution has no run token, so its steps cannot run out of process.",
                hint="run it through Pipelines.run",
            )
        fn = node.step.fn
        function = self.functions.get(id(fn))
        if function is None:
            function = self.functions[id(fn)] = StepFunction.of(fn, self.fingerprints.get(id(fn)))
        inputs: dict[str, Stored] = {}
        params: dict[str, Any] = {}
        for ref in roots_of(node.args):
            if isinstance(ref, ParamRef):
                params[ref.name] = self.params[ref.name]
            else:
                stored = self.state[ref.node].stored
                assert stored is not None
                inputs[ref.node] = stored
        return RemoteAttempt(
            execution_id=self.eid,
            step=node.name,
            attempt=attempt,
            function=function,
            args={k: detach(v) for k, v in node.args.items()},
            inputs=inputs,
            params=params,
            folder=self.folder,
            workspace=str(self.s.settings.workspace),
            project=self.project,
            session_class=type(self.s),
            token=self.run_token,
        )

    # -- settling --------------------------------------------------------------------------------
    def _finish(
        self,
        name: str,
        status: StepStatus,
        *,
        note: str | None = None,
        error: str | None = None,
        tb: str | None = None,
    ) -> None:
        st = self.state[name]
        st.status = status
        st.ended = now_utc() if st.started is not None else None
        if note is not None:
            st.note = note
        if error is not None:
            st.error = error
        st.tb = tb if tb is not None else st.tb
        st.deadline = None
        self.dirty.add(name)
        self.open -= 1
        ready = deque([name])
        while ready:
            done = ready.popleft()
            for child in sorted(self.dag.graph.successors(done)):
                self.waiting[child] -= 1
                if self.waiting[child] == 0:
                    self._settle(child)

    def _settle(self, name: str) -> None:
        node = self.dag.nodes[name]
        deps = sorted(self.dag.graph.predecessors(name))
        broken = [d for d in deps if self.state[d].status in _BROKEN]
        if broken:
            self._finish(
                name,
                StepStatus.UPSTREAM_FAILED,
                error=f"not run: the upstream step {broken[0]!r} did not succeed",
            )
            return
        skipped = [d for d in deps if self.state[d].status is StepStatus.SKIPPED]
        if skipped:
            self._finish(name, StepStatus.SKIPPED, note=f"upstream step {skipped[0]!r} skipped")
            return
        if self.mode[name] == "skip":
            self._finish(name, StepStatus.SKIPPED, note="not selected")
            return
        try:
            for condition, wanted in node.guards:
                outcome = bool(condition.evaluate(self._resolve))
                if outcome != wanted:
                    self._finish(
                        name,
                        StepStatus.SKIPPED,
                        note=f"condition {condition.describe()} is {outcome}",
                    )
                    return
            if node.kind == "fail":
                values = {k: evaluate(v, self._resolve) for k, v in node.args.items()}
                try:
                    message = node.message.format(**values)
                except (KeyError, IndexError, ValueError):
                    message = node.message
                st = self.state[name]
                st.started = now_utc()
                self._finish(name, StepStatus.FAILED, error=message, note="fail step reached")
                return
            if node.kind == "approval":
                self._ask(node)
                return
            key, forced = self._key(node)
        except TrivetError as exc:
            self._finish(name, StepStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            return
        st = self.state[name]
        st.key = key
        stored, note = (None, forced or "") if key is None else self._lookup(node, key)
        st.note = note
        if stored is not None:
            st.started = now_utc()
            self._reuse(name, stored)
            return
        if self.mode[name] == "cache_only":
            self._finish(
                name,
                StepStatus.FAILED,
                error=f"step {name!r} has no cached result to run {self.plan.only!r} alone on",
                note=note,
            )
            return
        self._submit(name)

    def _reuse(self, name: str, stored: Stored) -> None:
        """Settle a step with an earlier result: file it in this run's folder, link it."""
        st = self.state[name]
        st.stored, st.hit = stored, True
        if stored.digest is not None:
            self.links.append((stored.digest, name))
            self._lineage(name, stored, produced=False)
        self._finish(name, StepStatus.SUCCEEDED)

    def _submit(self, name: str) -> None:
        node = self.dag.nodes[name]
        assert node.step is not None
        st = self.state[name]
        st.attempts += 1
        st.attempt_id += 1
        st.status = StepStatus.RUNNING
        if st.started is None:
            st.started = now_utc()
        self.dirty.add(name)
        if self.in_process and node.step.options.timeout is None:
            self.inline.append((name, st.attempt_id))  # the loop decides where it runs
        else:
            self._dispatch(name, st.attempt_id)

    def _dispatch(self, name: str, attempt: int) -> None:
        """Hand an attempt to the executor."""
        node = self.dag.nodes[name]
        assert node.step is not None
        st = self.state[name]
        future: Future[Attempt] | Future[RemoteResult]
        if self.in_process:
            future = self.executor.submit(functools.partial(self._attempt, node))
        else:
            future = self.executor.submit(self._remote_attempt(node, st.attempts))
        self.pooled += 1
        st.future = future
        timeout = node.step.options.timeout
        st.deadline = time.monotonic() + timeout if timeout is not None else None
        future.add_done_callback(lambda f: self.done.put((name, attempt, f)))

    def _run_inline(self) -> None:
        """Run ready attempts: in this thread when one alone is ready and the executor is
        idle (a chain pays no thread hand-off), else on the executor, in parallel."""
        while self.inline:
            name, attempt = self.inline.popleft()
            st = self.state[name]
            if attempt != st.attempt_id or st.status is not StepStatus.RUNNING:
                continue
            if self.inline or self.pooled or self.retries or self.approvals:
                self._dispatch(name, attempt)  # others to wait for: the engine stays free
                continue
            if not self.watched:
                _watchdog.watch(self)
                self.watched = True
            self.inline_since = time.monotonic()
            self.records_lock.release()
            try:
                outcome = self._attempt(self.dag.nodes[name])
            finally:
                self.records_lock.acquire()
                self.inline_since = None
            if isinstance(outcome.error, KeyboardInterrupt):
                raise outcome.error  # Ctrl-C interrupts the execution, not just the step
            future: Future[Attempt] = Future()
            future.set_result(outcome)
            self._handle(name, attempt, future)
            if time.monotonic() - self.last_flush >= FLUSH_INTERVAL and self._pending_records():
                self.flush()

    def watch_once(self) -> None:
        """While a step runs in the engine's thread, write the records (the steps that
        finished before it, its own start) and keep the heartbeat going (called by the
        process's watchdog thread every :data:`FLUSH_INTERVAL`)."""
        since = self.inline_since
        if since is None or time.monotonic() - since < FLUSH_INTERVAL:
            return
        idle = time.monotonic() - self.last_flush
        if not self._pending_records() and idle < HEARTBEAT.total_seconds():
            return
        with self.records_lock:
            if self.inline_since != since or self.stopping.is_set():
                return
            try:
                self.flush()
            except Exception as exc:  # the engine writes them at its next flush
                log.warning("execution %s: could not write its records: %s", self.eid, exc)

    def _handle(self, name: str, attempt: int, future: Future[Any]) -> None:
        st = self.state[name]
        if attempt != st.attempt_id or st.status is not StepStatus.RUNNING:
            return  # a late answer from an attempt that timed out
        try:
            outcome: Attempt | RemoteResult = future.result()
        except BaseException as exc:  # the executor itself failed (or lost the worker)
            outcome = Attempt(ok=False, error=exc, tb=traceback.format_exc())
        if isinstance(outcome, RemoteResult):  # the value stays in the artifact store
            for dep in outcome.damaged:
                key = self.state[dep].key
                if key is not None:
                    self.bad_keys.add(key.digest)  # never reuse it again
            outcome = Attempt(
                ok=outcome.ok,
                value=_UNSET,
                stored=outcome.stored,
                logs=outcome.logs,
                error=outcome.error,
                tb=outcome.tb,
            )
        st.logs += outcome.logs
        if outcome.ok:
            st.value, st.stored = outcome.value, outcome.stored
            assert st.stored is not None
            if st.key is not None:
                self.cache_rows.append(self._cache_row(name, st.key, st.stored))
            self._lineage(name, st.stored, produced=True)
            self._finish(name, StepStatus.SUCCEEDED)
        else:
            assert outcome.error is not None
            self._failed_attempt(name, outcome.error, outcome.tb)

    def _failed_attempt(self, name: str, error: BaseException, tb: str | None) -> None:
        node = self.dag.nodes[name]
        assert node.step is not None
        options = node.step.options
        st = self.state[name]
        text = f"{type(error).__name__}: {error}"
        if st.attempts <= options.retries and isinstance(error, options.retry_on):
            delay = options.backoff * 2 ** (st.attempts - 1)
            st.logs += f"[trivet] attempt {st.attempts} failed ({text}); retry in {delay:g} s\n"
            st.deadline = None
            heapq.heappush(self.retries, (time.monotonic() + delay, st.attempt_id, name))
            return
        self._finish(name, StepStatus.FAILED, error=text, tb=tb)

    def _expire(self) -> None:
        now = time.monotonic()
        for name, st in self.state.items():
            if st.deadline is not None and st.deadline <= now and st.status is StepStatus.RUNNING:
                node = self.dag.nodes[name]
                assert node.step is not None and st.future is not None
                self.executor.abandon(st.future)
                st.deadline = None
                st.attempt_id += 1  # ignore the attempt's late answer
                timeout = node.step.options.timeout or 0.0
                error = StepTimeout(
                    f"Step {name!r} ran longer than its timeout of {timeout:g} s.",
                    hint="raise timeout= on the step, or make it faster",
                )
                self._failed_attempt(name, error, None)

    def _due_retries(self) -> None:
        now = time.monotonic()
        while self.retries and self.retries[0][0] <= now:
            _, _, name = heapq.heappop(self.retries)
            if self.state[name].status is StepStatus.RUNNING:
                self._submit(name)

    # -- the loop ---------------------------------------------------------------------------------
    def _wakeup(self) -> float:
        now = time.monotonic()
        times = [self.last_flush + HEARTBEAT.total_seconds()]
        if self._pending_records():
            times.append(self.last_flush + FLUSH_INTERVAL)
        times += [st.deadline for st in self.state.values() if st.deadline is not None]
        if self.retries:
            times.append(self.retries[0][0])
        if self.approvals:
            times.append(self.next_poll)
        return max(0.0, min(times) - now)

    def run(self) -> ExecutionStatus:
        """Run the execution to its end; return its status (records are written)."""
        with self.records_lock:
            try:
                return self._run()
            finally:
                self.stopping.set()
                if self.watched:
                    _watchdog.forget(self)

    def _run(self) -> ExecutionStatus:
        error: str | None = None
        try:
            with capturing():
                for name in list(self.dag.nodes):
                    if self.waiting[name] == 0 and self.state[name].status is StepStatus.PENDING:
                        self._settle(name)
                while self.open > 0:
                    self._run_inline()
                    if self.open == 0:
                        break
                    running = any(st.status is StepStatus.RUNNING for st in self.state.values())
                    if not running and not self.retries and not self.approvals:
                        raise RuntimeError("the engine has nothing to wait for")  # a bug
                    try:
                        item: tuple[str, int, Future[Any]] | None = self.done.get(
                            timeout=self._wakeup()
                        )
                    except queue.Empty:
                        item = None
                    while item is not None:
                        self.pooled -= 1
                        self._handle(*item)
                        try:
                            item = self.done.get_nowait()
                        except queue.Empty:
                            item = None
                    self._expire()
                    self._due_retries()
                    self._poll_approvals()
                    if time.monotonic() - self.last_flush >= FLUSH_INTERVAL and (
                        self._pending_records()
                        or time.monotonic() - self.last_flush >= HEARTBEAT.total_seconds()
                    ):
                        self.flush()
        except BaseException as exc:  # record what we can, then let it through
            error = f"the engine stopped: {type(exc).__name__}: {exc}"
            for name, st in self.state.items():
                if st.status not in _TERMINAL:
                    st.status = StepStatus.INTERRUPTED
                    self.dirty.add(name)
            self._inputs_lineage()
            self.flush(status=ExecutionStatus.INTERRUPTED, error=error)
            raise
        finally:
            self.executor.close()
        self._inputs_lineage()
        failed = [n for n, st in self.state.items() if st.status is StepStatus.FAILED]
        status = ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCEEDED
        if failed:
            first = self.state[failed[0]]
            error = f"step {failed[0]!r} failed: {first.error}"
        self.flush(status=status, error=error)
        self.ended_at, self.error = now_utc(), error
        return status


# Statements built once: building one per flush cost more than running it.
_CACHED = (
    sa.select(
        pipeline_cache.c.key,
        pipeline_cache.c.output_digest,
        pipeline_cache.c.output_kind,
        pipeline_cache.c.created_at,
        pipeline_cache.c.execution_id,
        artifacts.c.size,
    )
    .select_from(
        pipeline_cache.outerjoin(artifacts, artifacts.c.digest == pipeline_cache.c.output_digest)
    )
    .where(
        pipeline_cache.c.project == sa.bindparam("b_project"),
        pipeline_cache.c.step.in_(sa.bindparam("b_steps", expanding=True)),
    )
)


class _Watchdog:
    """One daemon thread per process that looks at the engines running a step in their
    own thread (:meth:`Engine.watch_once`), started with the first such step."""

    def __init__(self) -> None:
        self.engines: set[Engine] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def watch(self, engine: Engine) -> None:
        with self.lock:
            self.engines.add(engine)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="trivet-records-watchdog", daemon=True
                )
                self.thread.start()

    def forget(self, engine: Engine) -> None:
        with self.lock:
            self.engines.discard(engine)

    def _run(self) -> None:
        idle = 0
        while True:
            time.sleep(FLUSH_INTERVAL)
            with self.lock:
                engines = list(self.engines)
                idle = 0 if engines else idle + 1
                if idle >= 25:  # nothing to watch for 5 s: the next engine starts it again
                    self.thread = None
                    return
            for engine in engines:
                engine.watch_once()


_watchdog = _Watchdog()
