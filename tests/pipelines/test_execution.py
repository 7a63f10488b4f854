"""Execution: records, outputs as artifacts, lineage, retries, timeouts, parallelism,
failures that stop only their downstream, retry/resume, --from and --only."""

from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import trivet
from trivet.errors import Conflict
from trivet.pipelines import (
    ExecutionFailed,
    ExecutionStatus,
    LocalExecutor,
    Pipelines,
    StepStatus,
    fail,
    pipeline,
    step,
    when,
)
from trivet.platform.catalog.schema import lineage_edges, tokens
from trivet.platform.lineage import Node


class Box:
    """Mutable test state with no canonical form: the cache key counts it by type only
    (a dict or list a step reads is hashed by value, so changing it would miss)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def statuses(execution: Any) -> dict[str, str]:
    return {s.name: s.status.value for s in execution.steps}


def test_records_outputs_and_lineage(admin: trivet.Session, pl: Pipelines) -> None:
    from sklearn.linear_model import LogisticRegression

    @step
    def frame(n: int) -> pd.DataFrame:
        print(f"making {n} rows")
        return pd.DataFrame({"x": [float(i) for i in range(n)], "y": [i % 2 for i in range(n)]})

    @step
    def train(df: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression().fit(df[["x"]], df["y"])

    @step
    def evaluate(model: LogisticRegression, df: pd.DataFrame) -> dict[str, Any]:
        return {"metrics": {"accuracy": float(model.score(df[["x"]], df["y"]))}, "n": len(df)}

    @pipeline
    def p_train(n: int = 8) -> None:
        df = frame(n)
        evaluate(train(df), df)

    run = pl.run(p_train, params={"n": 10})
    assert run.status is ExecutionStatus.SUCCEEDED and run.error is None
    assert (run.pipeline, run.version, run.invoked_by, run.run_as) == ("p_train", 1, "root", "root")
    assert run.params == {"n": 10}
    assert [s.output_kind for s in run.steps] == ["parquet", "skops", "json"]
    assert all(s.attempts == 1 and s.duration is not None for s in run.steps)
    assert pl.logs(run.id, "frame") == {"frame": "making 10 rows\n"}
    assert isinstance(pl.output(run.id, "train"), LogisticRegression)
    assert pl.output(run.id, "evaluate")["n"] == 10
    pd.testing.assert_frame_equal(pl.output(run.id, "frame"), pl.output(run.id, "frame"))
    folder = f"default/runs/{run.id}"
    assert {r.label for r in admin.artifacts.list(folder)} == {"frame", "train", "evaluate"}
    model_digest = run.step("train").output_digest
    assert model_digest is not None
    up = admin.lineage.upstream(Node(kind="artifact", id=model_digest))
    assert Node(kind="step", id=f"{folder}/train") in up
    assert Node(kind="execution", id=folder) in up
    frame_digest = run.step("frame").output_digest
    with admin.catalog.read() as conn:
        consumers = conn.execute(
            sa.select(lineage_edges.c.dst_id).where(
                lineage_edges.c.src_id == frame_digest, lineage_edges.c.relation == "input"
            )
        ).scalars()
        assert set(consumers) == {f"{folder}/train", f"{folder}/evaluate"}
        run_token = conn.execute(sa.select(tokens).where(tokens.c.run_id == run.id)).one()
    assert run_token.kind == "run" and run_token.revoked_at is not None  # ends with its run
    assert [e.id for e in pl.executions("p_train")] == [run.id]
    assert pl.describe("p_train").definition == p_train.definition()


def test_a_failing_step_fails_only_its_downstream(pl: Pipelines) -> None:
    @step
    def ok(x: int) -> int:
        return x

    @step
    def boom(x: int) -> int:
        raise ValueError(f"bad input {x}")

    @step
    def after(x: int) -> int:
        return x

    @pipeline
    def p_boom() -> None:
        after(boom(ok(1)))
        after.with_options(name="independent")(ok.with_options(name="other")(2))

    run = pl.run(p_boom)
    assert run.status is ExecutionStatus.FAILED
    assert statuses(run) == {
        "ok": "succeeded",
        "boom": "failed",
        "after": "upstream_failed",
        "other": "succeeded",
        "independent": "succeeded",
    }
    failed = run.step("boom")
    assert failed.error == "ValueError: bad input 1"
    assert failed.traceback is not None and "raise ValueError" in failed.traceback
    assert "boom" in (run.error or "")
    with pytest.raises(ExecutionFailed, match="failed steps: boom"):
        run.raise_for_status()


def test_retries_with_backoff_by_exception_class(pl: Pipelines) -> None:
    calls: list[float] = []

    @step(retries=3, retry_on=ConnectionError, backoff=0.05)
    def flaky() -> int:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("try again")
        return len(calls)

    @step(retries=3, retry_on=ConnectionError, backoff=0.0)
    def wrong_kind() -> int:
        raise KeyError("not retried")

    @pipeline
    def p_flaky() -> None:
        flaky()
        wrong_kind()

    run = pl.run(p_flaky)
    assert run.step("flaky").status is StepStatus.SUCCEEDED
    assert run.step("flaky").attempts == 3
    assert calls[1] - calls[0] >= 0.05 and calls[2] - calls[1] >= 0.1  # doubled
    assert "retry in 0.05 s" in run.step("flaky").logs
    assert run.step("wrong_kind").attempts == 1
    assert run.step("wrong_kind").status is StepStatus.FAILED


def test_timeout_marks_the_step_failed_and_moves_on(pl: Pipelines) -> None:
    release = threading.Event()

    @step(timeout=0.2)
    def slow() -> int:
        release.wait(10)
        return 1

    @step
    def quick() -> int:
        return 2

    @pipeline
    def p_slow() -> None:
        slow()
        quick()

    started = time.monotonic()
    run = pl.run(p_slow, max_parallel=1)  # the abandoned thread frees its slot
    release.set()
    assert time.monotonic() - started < 5
    assert statuses(run) == {"slow": "failed", "quick": "succeeded"}
    assert (run.step("slow").error or "").startswith("StepTimeout: Step 'slow' ran longer")


def test_parallel_branches_run_in_parallel_and_max_parallel_caps(pl: Pipelines) -> None:
    lock = threading.Lock()
    active = [0]
    peak = [0]

    @step(cache=False)
    def branch(i: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        return i

    @step(cache=False)
    def join(*parts: int) -> int:
        return sum(parts)

    @pipeline
    def p_fan() -> None:
        join(*[branch(i) for i in range(6)])

    started = time.monotonic()
    run = pl.run(p_fan)
    assert run.succeeded and pl.output(run.id, "join") == 15
    assert peak[0] == 6 and time.monotonic() - started < 0.15 * 6
    peak[0] = 0
    assert pl.run(p_fan, executor=LocalExecutor(max_parallel=2)).succeeded
    assert peak[0] == 2


def test_conditions_and_fail_step(pl: Pipelines) -> None:
    @step
    def evaluate(score: float) -> dict[str, Any]:
        return {"metrics": {"auc": score}}

    @step
    def register(m: dict[str, Any]) -> str:
        return "registered"

    @step
    def notify(m: dict[str, Any]) -> str:
        return "notified"

    @pipeline
    def p_gate(score: float = 0.9, bar: float = 0.8) -> None:
        m = evaluate(score)
        when(
            m["metrics"]["auc"] >= bar,
            then=lambda: notify(register(m)),
            otherwise=lambda: fail("AUC {auc} is below {bar}", auc=m["metrics"]["auc"], bar=bar),
        )

    good = pl.run(p_gate)
    assert statuses(good) == {
        "evaluate": "succeeded",
        "register": "succeeded",
        "notify": "succeeded",
        "fail": "skipped",
    }
    bad = pl.run(p_gate, params={"score": 0.5})
    assert statuses(bad)["register"] == "skipped" and statuses(bad)["notify"] == "skipped"
    assert bad.status is ExecutionStatus.FAILED
    assert bad.step("fail").error == "AUC 0.5 is below 0.8"
    assert "is False" in bad.step("register").cache_note


def test_retry_resumes_from_the_failed_step(pl: Pipelines) -> None:
    state = Box(broken=True, calls=0)

    @step(cache=False)
    def expensive() -> int:
        state.calls += 1
        return 41

    @step
    def fragile(x: int) -> int:
        if state.broken:
            raise RuntimeError("flaky service")
        return x + 1

    @pipeline
    def p_retry() -> None:
        fragile(expensive())

    failed = pl.run(p_retry)
    assert failed.status is ExecutionStatus.FAILED
    state.broken = False
    resumed = pl.retry(failed.id[:8], pipeline=p_retry)
    assert resumed.succeeded and resumed.retry_of == failed.id
    assert state.calls == 1  # reused although cache=False: it is the same execution
    assert resumed.step("expensive").cache_note == "hit: reused from the execution being retried"
    assert pl.output(resumed.id, "fragile") == 42
    with pytest.raises(Conflict, match="only failed or interrupted"):
        pl.retry(resumed.id, pipeline=p_retry)


def test_from_step_and_only(pl: Pipelines) -> None:
    log = Box(ran=[])

    @step
    def a() -> int:
        log.ran.append("a")
        return 1

    @step
    def b(x: int) -> int:
        log.ran.append("b")
        return x + 1

    @step
    def c(x: int) -> int:
        log.ran.append("c")
        return x + 1

    @pipeline
    def p_part() -> None:
        c(b(a()))

    with pytest.raises(ExecutionFailed):
        pl.run(p_part, only="b").raise_for_status()  # nothing cached upstream yet
    pl.run(p_part)
    log.ran = []
    assert pl.run(p_part, from_step="b").succeeded and log.ran == ["b", "c"]
    log.ran = []
    only = pl.run(p_part, only="b")
    assert only.succeeded and log.ran == ["b"]
    assert statuses(only) == {"a": "succeeded", "b": "succeeded", "c": "skipped"}


def test_new_definition_is_a_new_version(pl: Pipelines) -> None:
    @step
    def one() -> int:
        return 1

    @pipeline(name="versioned")
    def v1() -> None:
        one()

    @pipeline(name="versioned")
    def v2() -> None:
        one()
        one()

    assert pl.run(v1).version == 1
    assert pl.run(v2).version == 2
    assert pl.run(v1).version == 1
    info = pl.describe("versioned")
    assert (info.version, info.versions) == (2, 2)
    assert "one_2" in pl.graph("versioned")
