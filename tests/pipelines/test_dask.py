"""The Dask executor on a real LocalCluster of worker processes: same outputs and cache
keys as the local executor, retries and errors coming back, the run token's identity on
the worker, and a worker killed mid-step (SIGKILL) ending cleanly, never hanging.

The step functions live at module level (the workers import this module by name, as
they would a user's installed project), except where a test checks code sent by value.
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import trivet
from trivet.errors import MissingDependency, ValidationError
from trivet.pipelines import (
    DaskExecutor,
    ExecutionStatus,
    Pipelines,
    StepStatus,
    WorkerCodeMismatch,
    pipeline,
    step,
)
from trivet.pipelines.cache import fingerprint
from trivet.pipelines.executors import executor_for
from trivet.pipelines.executors._attempt import RemoteAttempt, RunToken, StepFunction
from trivet.pipelines.executors.dask import scheduler_address
from trivet.platform import audit

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two worker processes with one thread each; a worker that dies twice running one
    task makes it fail (``allowed-failures`` 1), so the kill tests stay short."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        dask_client = distributed.Client(cluster)
        try:
            dask_client.wait_for_workers(2, timeout=60)
            yield dask_client
        finally:
            dask_client.close()
            cluster.close()


@pytest.fixture
def dask_executor(client: Any) -> DaskExecutor:
    return DaskExecutor(client)


# -- a DAG with parallel branches --------------------------------------------------------------
def _wait_for(path: Path, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} never appeared: the branches did not overlap")
        time.sleep(0.02)


@step
def base(n: int) -> pd.DataFrame:
    print(f"base: {n} rows")
    return pd.DataFrame({"x": list(range(n))})


@step
def left(df: pd.DataFrame, meet: str) -> dict[str, Any]:
    print(f"pid {os.getpid()}")
    if meet:  # both branches must be running at once to get past this
        Path(meet, "left").touch()
        _wait_for(Path(meet, "right"))
    return {"sum": int(df["x"].sum())}


@step
def right(df: pd.DataFrame, meet: str) -> dict[str, Any]:
    print(f"pid {os.getpid()}")
    if meet:
        Path(meet, "right").touch()
        _wait_for(Path(meet, "left"))
    return {"max": int(df["x"].max())}


@step
def join(a: dict[str, Any], b: dict[str, Any], scale: int) -> pd.DataFrame:
    return pd.DataFrame({"sum": [a["sum"] * scale], "max": [b["max"] * scale]})


@pipeline
def branches(n: int = 5, scale: int = 10, meet: str = "") -> None:
    df = base(n)
    join(left(df, meet), right(df, meet), scale)


def test_parallel_branches_give_the_local_outputs_and_cache_keys(
    admin: trivet.Session, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    pl = Pipelines(admin)
    local = pl.run(branches, params={"n": 4})
    assert local.succeeded
    meet = tmp_path / "meet"
    meet.mkdir()
    # the same parameters (meet is only a rendezvous folder: a different value would
    # change the keys), computed again on the cluster
    remote = pl.run(branches, params={"n": 4}, executor=dask_executor, refresh=True)
    assert remote.succeeded, remote.error
    assert [s.cache_hit for s in remote.steps] == [False] * 4
    for name in ("base", "left", "right", "join"):
        mine, theirs = remote.step(name), local.step(name)
        assert (name, mine.cache_key) == (name, theirs.cache_key)
        assert (name, mine.output_digest) == (name, theirs.output_digest)
    # x = 0..3: sum 6, max 3; join scales by 10
    assert pl.output(remote.id, "join").to_dict("list") == {"sum": [60], "max": [30]}
    assert pl.output(remote.id, "left") == {"sum": 6}
    assert remote.step("base").logs == "base: 4 rows\n"
    assert remote.step("left").logs != f"pid {os.getpid()}\n"  # ran in a worker process
    # a rerun on the cluster hits the cache for every step
    again = pl.run(branches, params={"n": 4}, executor=dask_executor)
    assert [s.cache_hit for s in again.steps] == [True] * 4

    # the two branches ran at once: each waits until the other has started
    both = pl.run(branches, params={"n": 3, "meet": str(meet)}, executor=dask_executor)
    assert both.succeeded, both.error
    assert pl.output(both.id, "join").to_dict("list") == {"sum": [30], "max": [20]}
    pids = {both.step("left").logs, both.step("right").logs}
    assert len(pids) == 2 and f"pid {os.getpid()}\n" not in pids


# -- failures and retries ----------------------------------------------------------------------
class Transient(Exception):
    """A failure worth retrying (module level, so it pickles by reference)."""


@step(retries=2, retry_on=Transient, backoff=0.01)
def flaky(folder: str) -> int:
    calls = Path(folder, "calls")
    count = len(calls.read_text()) + 1 if calls.exists() else 1
    calls.write_text("x" * count)
    print(f"attempt {count} in {os.getpid()}")
    if count < 3:
        raise Transient(f"not yet ({count})")
    return count


@step(retries=1, retry_on=Transient, backoff=0.01)
def broken(x: int) -> int:
    print("about to fail")
    raise ValueError(f"bad value <{x}>")


@pipeline
def failing(folder: str = "", x: int = 1) -> None:
    flaky(folder)
    broken(x)


def test_a_failing_step_is_retried_on_the_cluster_and_its_error_comes_back(
    admin: trivet.Session, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    @step
    def after(x: int) -> int:  # defined in a function: sent to the workers by value
        return x + 1

    @pipeline
    def failing_too(folder: str = "", x: int = 1) -> None:
        after(flaky(folder))
        after(broken(x))

    run = Pipelines(admin).run(
        failing_too, params={"folder": str(tmp_path)}, executor=dask_executor
    )
    assert run.status is ExecutionStatus.FAILED
    ok = run.step("flaky")
    assert ok.status is StepStatus.SUCCEEDED and ok.attempts == 3
    assert Pipelines(admin).output(run.id, "flaky") == 3
    assert "attempt 1 failed (Transient: not yet (1)); retry in 0.01 s" in ok.logs
    assert "attempt 2 failed (Transient: not yet (2)); retry in 0.02 s" in ok.logs
    assert "attempt 3 in " in ok.logs
    bad = run.step("broken")
    # a ValueError is not in retry_on: one attempt, its error, traceback and output back
    assert bad.status is StepStatus.FAILED and bad.attempts == 1
    assert bad.error == "ValueError: bad value <1>"
    assert bad.traceback is not None and "in broken" in bad.traceback
    assert 'raise ValueError(f"bad value <{x}>")' in bad.traceback
    assert bad.logs == "about to fail\n"
    assert Pipelines(admin).output(run.id, "after") == 4  # 3 + 1, computed by value
    assert run.step("after_2").status is StepStatus.UPSTREAM_FAILED
    assert run.error == "step 'broken' failed: ValueError: bad value <1>"


# -- timeouts and the cap ----------------------------------------------------------------------
@step
def span(tag: str) -> str:
    start = time.time()
    time.sleep(0.2)
    print(f"{start} {time.time()}")
    return tag


@step(timeout=0.5)
def too_slow() -> None:
    time.sleep(2)


@pipeline
def capped() -> None:
    span("a")
    span("b")
    span("c")


@pipeline
def timing_out() -> None:
    too_slow()


def test_timeouts_and_a_per_execution_cap(admin: trivet.Session, client: Any) -> None:
    pl = Pipelines(admin)
    shared = DaskExecutor(client, max_parallel=1)
    slow = pl.start(timing_out, executor=shared)  # holds a worker for 2 s
    run = pl.run(capped, executor=shared)  # its own cap: one at a time, on the other worker
    assert run.succeeded, run.error
    spans = sorted(tuple(map(float, s.logs.split())) for s in run.steps)
    assert len(spans) == 3
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # never two at once
    timed_out = slow.wait(timeout=30)
    failed = timed_out.step("too_slow")
    assert failed.status is StepStatus.FAILED
    assert failed.error == (
        "StepTimeout: Step 'too_slow' ran longer than its timeout of 0.5 s. "
        "(raise timeout= on the step, or make it faster)"
    )


# -- identity ----------------------------------------------------------------------------------
@step(cache=False)
def who(session: Any) -> dict[str, Any]:
    return {
        "principal": session.principal.name,
        "on_behalf_of": session.on_behalf_of.name if session.on_behalf_of else None,
        "token": session.token.kind if session.token else None,
        "run_id": session.run_id,
        "pid": os.getpid(),
    }


@pipeline
def identity_check() -> None:
    who()


def test_a_step_on_a_worker_acts_with_the_run_token_as_the_run_as_principal(
    admin: trivet.Session, dask_executor: DaskExecutor
) -> None:
    pl = Pipelines(admin)
    run = pl.run(identity_check, run_as="runner", executor=dask_executor)
    assert run.succeeded, run.error
    seen = pl.output(run.id, "who")
    assert seen == {
        "principal": "default-runner",
        "on_behalf_of": admin.principal.name,
        "token": "run",
        "run_id": run.id,
        "pid": seen["pid"],
    }
    assert seen["pid"] != os.getpid()
    # the worker wrote the step's output: its audit row names the runner, for the
    # admin, in this run — not the admin's own identity
    puts = [
        e
        for e in audit.entries(admin.catalog)
        if e.action == "artifact:put" and e.resource == f"default/runs/{run.id}"
    ]
    assert [(e.actor, e.on_behalf_of, e.run_id, e.outcome) for e in puts] == [
        ("default-runner", admin.principal.name, run.id, "ok")
    ]


def test_what_crosses_the_wire_is_small_and_never_shows_the_token() -> None:
    token = RunToken("trv_run_SECRETSECRET_abcdef")
    attempt = RemoteAttempt(
        execution_id="0123456789abcdef",
        step="left",
        attempt=1,
        function=StepFunction.of(left.fn, fingerprint(left.fn)),
        args={},
        inputs={},
        params={},
        folder="default/runs/0123456789abcdef",
        workspace="/nowhere",
        project="default",
        session_class=trivet.Session,
        token=token,
    )
    assert "SECRET" not in repr(attempt) and "SECRET" not in repr(token)
    assert attempt.function.by_value is None  # a module-level step goes by reference
    data = pickle.dumps(attempt)
    assert len(data) < 4096
    back = pickle.loads(data)
    assert back.token.reveal() == token.reveal() and back.function.module == __name__


class Stubborn(Exception):
    def __init__(self, a: int, b: int) -> None:  # unpickling calls Stubborn(message): fails
        super().__init__(f"{a} and {b}")


def test_an_exception_that_does_not_pickle_comes_back_as_its_type_and_message() -> None:
    from trivet.pipelines import RemoteStepError
    from trivet.pipelines.executors._attempt import _portable

    kept = Transient("fine")
    assert _portable(kept) is kept
    sent = _portable(Stubborn(1, 2))
    assert isinstance(sent, RemoteStepError)
    assert str(sent) == f"{__name__}.Stubborn: 1 and 2"
    assert str(pickle.loads(pickle.dumps(sent))) == str(sent)


# -- code on the workers -----------------------------------------------------------------------
def test_a_worker_with_other_code_refuses_to_run_the_step() -> None:
    expected = fingerprint(left.fn)
    changed = type(expected)(code="0" * 64, deps=expected.deps, packages=expected.packages)
    function = StepFunction.of(left.fn, changed)
    with pytest.raises(WorkerCodeMismatch, match="the step function's code"):
        function.load()
    assert StepFunction.of(left.fn, expected).load() is left.fn
    missing = StepFunction(
        module="nowhere_to_be_found",
        qualname="f",
        by_value=None,
        fingerprint=None,
        python=function.python,
    )
    with pytest.raises(WorkerCodeMismatch, match="cannot import 'nowhere_to_be_found'"):
        missing.load()


# -- configuration -----------------------------------------------------------------------------
def test_the_workspace_setting_picks_the_dask_executor(
    workspace: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert scheduler_address("dask://h:8786") == "tcp://h:8786"
    assert scheduler_address("h:8786") == "tcp://h:8786"
    with pytest.raises(ValidationError, match="not a Dask scheduler address"):
        scheduler_address("dask://")
    monkeypatch.setenv("TRIVET_EXECUTOR", "yarn://x")
    with pytest.raises(ValidationError, match="executor 'yarn://x' is not known"):
        executor_for(trivet.connect(workspace.workspace).settings)
    monkeypatch.setenv("TRIVET_EXECUTOR", client.scheduler.address)
    session = trivet.connect(workspace.workspace)
    run = Pipelines(session).run(identity_check)
    assert run.succeeded, run.error
    assert Pipelines(session).output(run.id, "who")["pid"] != os.getpid()


def test_without_distributed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingDependency, match=r"trivet\[dask\]"):
        DaskExecutor()


# -- a worker killed mid-step ------------------------------------------------------------------
@step(timeout=40)
def survives(folder: str) -> int:
    marker = Path(folder, "pid")
    if marker.exists():  # the scheduler ran it again on a live worker
        return os.getpid()
    marker.write_text(str(os.getpid()))
    time.sleep(40)  # killed here
    return -1


@pipeline
def killed_once(folder: str = "") -> None:
    survives(folder)


@step(timeout=150)  # a guard against a hang; two worker restarts take seconds, more under load
def kills_its_worker() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


@pipeline
def always_killed() -> None:
    kills_its_worker()


def test_a_worker_killed_mid_step_is_replaced_and_the_step_runs_again(
    admin: trivet.Session, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    pl = Pipelines(admin)
    started = pl.start(killed_once, params={"folder": str(tmp_path)}, executor=dask_executor)
    marker = tmp_path / "pid"
    _wait_for(marker, 30)
    time.sleep(0.1)  # the pid is written whole
    victim = int(marker.read_text())
    os.kill(victim, signal.SIGKILL)
    run = started.wait(timeout=60)  # never hangs
    assert run.succeeded, run.error
    assert pl.output(run.id, "survives") not in (victim, -1)


def test_a_step_that_keeps_killing_its_worker_fails_cleanly(
    admin: trivet.Session, dask_executor: DaskExecutor, client: Any
) -> None:
    run = Pipelines(admin).start(always_killed, executor=dask_executor).wait(timeout=200)
    assert run.status is ExecutionStatus.FAILED
    failed = run.step("kills_its_worker")
    assert failed.status is StepStatus.FAILED and failed.attempts == 1
    assert (failed.error or "").startswith("WorkerLost: The workers running this step died")
    client.wait_for_workers(2, timeout=60)  # the nannies bring the workers back
