"""Approval steps: an execution waits for a person's decision, given through the SDK,
the CLI (from another process) or by nobody (timeout); decisions are authorized,
audited, final, and reused by a retry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import trivet
from trivet.errors import Conflict, NotFound, PermissionDenied
from trivet.pipelines import (
    Approval,
    ExecutionStatus,
    PipelineDefinitionError,
    Pipelines,
    StartedExecution,
    StepStatus,
    approval,
    pipeline,
    step,
)
from trivet.platform import audit
from trivet.platform.settings import Settings


@step
def score(auc: float) -> dict[str, float]:
    return {"auc": auc}


@step
def publish(metrics: dict[str, float]) -> str:
    return f"published {metrics['auc']}"


@step
def archive(metrics: dict[str, float]) -> str:
    return "archived"


@step
def unrelated() -> int:
    return 7


@pipeline
def release(auc: float = 0.91) -> None:
    """Publish a model once someone approves it."""
    metrics = score(auc)
    approval(
        "Publish the model with AUC {auc:.2f}?",
        auc=metrics["auc"],
        then=lambda: publish(metrics),
        timeout=120,
    )
    unrelated()


@pipeline
def release_or_archive(auc: float = 0.5) -> None:
    metrics = score(auc)
    approval(
        "Publish (AUC {auc})?",
        name="sign_off",
        auc=metrics["auc"],
        then=lambda: publish(metrics),
        otherwise=lambda: archive(metrics),
    )


def until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def waiting(pl: Pipelines, started: StartedExecution | str) -> Approval:
    eid = started if isinstance(started, str) else started.id
    [found] = until("the approval to wait", lambda: pl.approvals(eid))
    return found  # type: ignore[no-any-return]


def approver(admin: trivet.Session, workspace: Settings, name: str = "rita") -> trivet.Session:
    admin.identity.create_user(name)
    admin.access.grant(name, "approver", "default/*")
    return trivet.connect(workspace.workspace, token=admin.identity.create_token(name).secret)


def test_an_approved_execution_runs_what_waited_and_only_that_waited(
    admin: trivet.Session, workspace: Settings
) -> None:
    pl = Pipelines(admin)
    started = pl.start(release)
    asked = waiting(pl, started)
    assert asked.message == "Publish the model with AUC 0.91?"
    assert asked.pipeline == "release" and asked.step == "approval" and asked.waiting
    assert asked.expires_at is not None
    assert 119 <= (asked.expires_at - asked.requested_at).total_seconds() <= 121
    now = pl.get_execution(started.id)
    assert now.status is ExecutionStatus.RUNNING
    assert now.step("approval").status is StepStatus.WAITING
    assert now.step("publish").status is StepStatus.PENDING
    # what does not depend on the approval ran meanwhile
    until("unrelated to finish", lambda: pl.get_execution(started.id).step("unrelated").ended_at)

    rita = approver(admin, workspace)
    decided = Pipelines(rita).approve(started.id[:8], "approval", comment="looks good")
    assert decided.decision == "approved" and decided.decided_by == "rita"
    done = started.wait(timeout=30)
    assert done.succeeded, done.error
    assert pl.output(done.id, "publish") == "published 0.91"
    out = pl.output(done.id, "approval")
    assert out["approved"] is True and out["by"] == "rita" and out["comment"] == "looks good"
    assert done.step("approval").cache_note == "approved by rita"
    assert pl.approvals(done.id) == []  # nothing waits any more
    [record] = pl.approvals(done.id, waiting=False)
    assert record.decision == "approved" and record.comment == "looks good"
    rows = [e for e in audit.entries(admin.catalog, outcome="ok") if e.action == "pipeline:approve"]
    assert [(r.actor, r.resource, r.detail["decision"]) for r in rows] == [
        ("rita", "default/pipelines/release", "approved")
    ]


def test_a_rejection_fails_the_execution_with_the_deciders_comment(
    admin: trivet.Session, workspace: Settings
) -> None:
    pl = Pipelines(admin)
    started = pl.start(release)
    waiting(pl, started)
    Pipelines(approver(admin, workspace)).reject(started.id, "approval", comment="too risky")
    done = started.wait(timeout=30)
    assert done.status is ExecutionStatus.FAILED
    assert done.step("approval").error == "rejected by rita: too risky"
    assert done.step("publish").status is StepStatus.UPSTREAM_FAILED
    assert done.step("unrelated").status is StepStatus.SUCCEEDED
    assert "rejected by rita" in (done.error or "")


def test_a_rejection_with_otherwise_takes_that_branch(
    admin: trivet.Session, workspace: Settings
) -> None:
    pl = Pipelines(admin)
    started = pl.start(release_or_archive)
    assert waiting(pl, started).message == "Publish (AUC 0.5)?"
    Pipelines(approver(admin, workspace)).reject(started.id, "sign_off")
    done = started.wait(timeout=30)
    assert done.succeeded, done.error
    assert done.step("publish").status is StepStatus.SKIPPED
    assert pl.output(done.id, "archive") == "archived"
    decision = pl.output(done.id, "sign_off")
    assert decision["approved"] is False and decision["decision"] == "rejected"


def test_no_decision_within_the_timeout_fails_the_step(admin: trivet.Session) -> None:
    @pipeline
    def impatient() -> None:
        approval("Go?", name="go", timeout=0.5, then=lambda: unrelated())

    pl = Pipelines(admin)
    started = time.monotonic()
    done = pl.run(impatient)
    assert 0.5 <= time.monotonic() - started < 20
    assert done.status is ExecutionStatus.FAILED
    assert done.step("go").error == "no decision within the approval step's timeout of 0.5 s"
    assert done.step("unrelated").status is StepStatus.UPSTREAM_FAILED
    [record] = pl.approvals(done.id, waiting=False)
    assert record.decision == "expired"
    with pytest.raises(Conflict, match="already expired"):
        pl.approve(done.id, "go")


def test_deciding_needs_pipeline_approve_which_creators_and_run_tokens_lack(
    admin: trivet.Session, workspace: Settings
) -> None:
    admin.identity.create_user("dana")
    admin.access.grant("dana", "data_scientist", "default/*")
    dana = trivet.connect(workspace.workspace, token=admin.identity.create_token("dana").secret)
    attempts: list[str] = []

    @step
    def approve_myself(session: Any) -> str:
        # a step of the execution tries to approve its own approval step
        eid = session.run_id
        until("the approval", lambda: Pipelines(session).approvals(eid), timeout=20)
        try:
            Pipelines(session).approve(eid, "approval")
        except PermissionDenied as exc:
            attempts.append(str(exc))
        return "tried"

    @pipeline
    def self_approving() -> None:
        metrics = score(0.8)
        approval("ok?", auc=metrics["auc"], then=lambda: publish(metrics), timeout=60)
        approve_myself()

    started = Pipelines(dana).start(self_approving)  # dana creates it: maintainer, no approve
    waiting(Pipelines(dana), started)
    with pytest.raises(PermissionDenied, match="pipeline:approve"):
        Pipelines(dana).approve(started.id, "approval")
    until("the step's attempt", lambda: attempts)
    assert "pipeline:approve" in attempts[0]
    assert Pipelines(dana).get_execution(started.id).step("approval").status is StepStatus.WAITING
    denied = [
        e for e in audit.entries(admin.catalog, outcome="denied") if e.action == "pipeline:approve"
    ]
    assert len(denied) == 2
    Pipelines(approver(admin, workspace)).approve(started.id, "approval")
    assert started.wait(timeout=30).succeeded


def test_decisions_are_final_and_errors_name_the_problem(
    admin: trivet.Session, workspace: Settings
) -> None:
    pl = Pipelines(admin)
    started = pl.start(release)
    waiting(pl, started)
    with pytest.raises(NotFound, match="did you mean 'approval'"):
        pl.approve(started.id, "aproval")
    pl.approve(started.id, "approval", comment="yes")
    with pytest.raises(Conflict, match=f"already approved by {admin.principal.name} at 20"):
        pl.reject(started.id, "approval")
    assert started.wait(timeout=30).succeeded
    with pytest.raises(Conflict, match="already approved"):
        pl.approve(started.id, "approval")


def test_a_retry_reuses_the_decision_when_nothing_it_showed_changed(
    admin: trivet.Session, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    flag.touch()

    @step
    def deploy(metrics: dict[str, float], flag: str) -> str:
        if Path(flag).exists():
            raise RuntimeError("the deployment target is down")
        return "deployed"

    @pipeline
    def careful(flag: str = str(flag)) -> None:
        metrics = score(0.75)
        approval("Deploy {auc}?", auc=metrics["auc"], then=lambda: deploy(metrics, flag))

    pl = Pipelines(admin)
    started = pl.start(careful)
    waiting(pl, started)
    pl.approve(started.id, "approval")
    failed = started.wait(timeout=30)
    assert failed.step("deploy").status is StepStatus.FAILED
    flag.unlink()
    resumed = pl.retry(failed.id, pipeline=careful)  # asks nobody again
    assert resumed.succeeded, resumed.error
    assert resumed.step("approval").cache_hit
    assert resumed.step("approval").cache_note == "hit: the decision of the execution being retried"
    assert pl.approvals(resumed.id, waiting=False) == []
    # a new execution asks again
    again = pl.start(careful)
    assert waiting(pl, again).message == "Deploy 0.75?"
    pl.reject(again.id, "approval")
    assert again.wait(timeout=30).status is ExecutionStatus.FAILED


def test_the_definition_and_graph_show_approval_steps() -> None:
    definition = release.definition()
    [node] = [s for s in definition["steps"] if s["name"] == "approval"]
    assert node["kind"] == "approval"
    assert node["message"] == "Publish the model with AUC {auc:.2f}?"
    assert node["options"] == {"timeout": 120.0, "on_reject": "fail"}
    assert node["depends_on"] == ["score"]
    publish_node = next(s for s in definition["steps"] if s["name"] == "publish")
    assert publish_node["depends_on"] == ["approval", "score"]
    text = release.graph()
    lines = [line.split() for line in text.splitlines()]
    assert lines[2][:5] == ["approval", "←", "score", "[approval:", "Publish"]
    assert lines[3] == ["publish", "←", "approval,", "score", "[when", "approval['approved']]"]
    assert '{"approval"}' in release.graph(format="mermaid")
    assert 'class="node approval"' in release.graph(format="svg")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "has the timeout 0"),
        ({"timeout": 31 * 86400}, "has the timeout"),
        ({"then": "publish"}, "then= takes a function"),
        ({"name": "Bad Name"}, "The step name .Bad Name. is not valid"),
    ],
)
def test_bad_approval_definitions_are_refused(kwargs: dict[str, Any], message: str) -> None:
    @pipeline
    def bad() -> None:
        approval("ok?", **kwargs)

    with pytest.raises(PipelineDefinitionError, match=message):
        bad.dag()
    with pytest.raises(PipelineDefinitionError, match="only meaningful inside a @pipeline"):
        approval("ok?")


PIPELINE = """
from trivet.pipelines import approval, pipeline, step


@step
def train() -> dict:
    return {"auc": 0.88}


@step
def register(metrics: dict) -> str:
    return "registered"


@pipeline
def gated() -> None:
    metrics = train()
    approval("Register AUC {auc}?", name="sign_off", auc=metrics["auc"],
             then=lambda: register(metrics))
"""


def trivet_cli(ws: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVET_")}
    return subprocess.Popen(
        [sys.executable, "-m", "trivet.cli", "-w", str(ws), "pipelines", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )


def test_the_cli_waits_says_how_to_decide_and_is_approved_from_another_process(
    workspace: Settings, tmp_path: Path
) -> None:
    ws = workspace.workspace
    path = tmp_path / "gated_pipeline.py"
    path.write_text(textwrap.dedent(PIPELINE))
    runner = trivet_cli(ws, "run", str(path), "--json")
    pl = Pipelines(trivet.connect(ws))
    try:
        [asked] = until("the approval", lambda: pl.approvals(), timeout=60)
        listed = trivet_cli(ws, "approvals", "--json").communicate(timeout=60)[0]
        assert [a["step"] for a in json.loads(listed)] == ["sign_off"]
        shown = trivet_cli(ws, "executions").communicate(timeout=60)[0]
        assert asked.execution_id in shown and "waiting" in shown
        decided = trivet_cli(ws, "approve", asked.execution_id[:8], "sign_off", "-m", "fine")
        _, err = decided.communicate(timeout=60)
        assert decided.returncode == 0, err
        assert "sign_off" in err and "approved" in err
        out, err = runner.communicate(timeout=60)
    finally:
        runner.kill()
    assert runner.returncode == 0, err
    assert f"trivet pipelines approve {asked.execution_id} sign_off" in err
    assert json.loads(out)["status"] == "succeeded"
    again = trivet_cli(ws, "approve", asked.execution_id, "sign_off")
    _, err = again.communicate(timeout=60)
    assert again.returncode == Conflict.exit_code and "already approved" in err


def test_a_runner_killed_while_waiting_leaves_nothing_to_approve(
    workspace: Settings, tmp_path: Path
) -> None:
    ws = workspace.workspace
    path = tmp_path / "gated_pipeline.py"
    path.write_text(textwrap.dedent(PIPELINE))
    runner = trivet_cli(ws, "run", str(path))
    pl = Pipelines(trivet.connect(ws))
    try:
        [asked] = until("the approval", lambda: pl.approvals(), timeout=60)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.communicate()
    assert pl.approvals() == []  # the dead runner's execution is reaped first
    with pytest.raises(Conflict, match=r"is interrupted.*retry it"):
        pl.approve(asked.execution_id, "sign_off")
    killed = pl.get_execution(asked.execution_id)
    assert killed.status is ExecutionStatus.INTERRUPTED
    assert killed.step("sign_off").status is StepStatus.INTERRUPTED
