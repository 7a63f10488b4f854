"""The CLI end to end in a real process, and a runner killed with SIGKILL mid-execution."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import trivet
from trivet.pipelines import ExecutionStatus, Pipelines
from trivet.platform.catalog.schema import pipeline_step_runs, tokens
from trivet.platform.settings import Settings

PIPELINE = """
import time
from pathlib import Path

from trivet.pipelines import pipeline, step, when, fail


@step
def prepare(n: int) -> dict:
    print("preparing", n)
    return {"n": n, "score": 0.9}


@step
def slow(data: dict, gate: str) -> int:
    while gate and Path(gate).exists():  # the test holds the step here, then kills the runner
        time.sleep(0.05)
    return data["n"] * 2


@pipeline
def demo(n: int = 3, gate: str = "") -> None:
    data = prepare(n)
    out = slow(data, gate)
    when(data["score"] < 0.5, then=lambda: fail("score too low"))
"""


def trivet_cli(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVET_")}
    return subprocess.run(
        [sys.executable, "-m", "trivet.cli", "-w", str(ws), "pipelines", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo_pipeline.py"
    path.write_text(textwrap.dedent(PIPELINE))
    return path


def test_cli_run_list_describe_executions_logs_graph_why(
    workspace: Settings, pipeline_file: Path
) -> None:
    ws = workspace.workspace
    first = trivet_cli(ws, "run", str(pipeline_file), "--param", "n=4", "--json")
    assert first.returncode == 0, first.stderr
    execution = json.loads(first.stdout)
    assert execution["status"] == "succeeded" and execution["params"]["n"] == 4
    eid = execution["id"]
    again = trivet_cli(ws, "run", f"{pipeline_file}:demo", "-p", "n=5")
    assert again.returncode == 0 and "succeeded" in again.stderr
    listed = json.loads(trivet_cli(ws, "list", "--json").stdout)
    assert [p["name"] for p in listed] == ["demo"]
    definition = json.loads(trivet_cli(ws, "describe", "demo").stdout)
    assert [s["name"] for s in definition["steps"]] == ["prepare", "slow", "fail"]
    runs = json.loads(trivet_cli(ws, "executions", "demo", "--json").stdout)
    assert len(runs) == 2 and runs[1]["id"] == eid
    logs = trivet_cli(ws, "logs", eid[:8], "prepare")
    assert "preparing 4" in logs.stdout
    mermaid = trivet_cli(ws, "graph", "demo", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TD") and "-->" in mermaid
    why = trivet_cli(ws, "why", runs[0]["id"], "prepare")
    assert "parameter 'n': 4 → 5" in why.stdout
    bad = trivet_cli(ws, "run", str(pipeline_file), "--param", "n=many")
    assert bad.returncode == 2 and "expects int" in bad.stderr
    unknown = trivet_cli(ws, "run", str(pipeline_file), "--param", "nn=1")
    assert unknown.returncode == 2 and "did you mean 'n'" in unknown.stderr


def test_sigkill_mid_execution_is_interrupted_and_retry_finishes_it(
    workspace: Settings, pipeline_file: Path, tmp_path: Path
) -> None:
    ws = workspace.workspace
    gate = tmp_path / "hold"
    gate.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVET_")}
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trivet.cli",
            "-w",
            str(ws),
            "pipelines",
            "run",
            str(pipeline_file),
            "--param",
            f"gate={gate}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    admin = trivet.connect(ws)
    deadline = time.monotonic() + 60
    try:
        while True:  # until `prepare` is recorded (records are flushed within 0.2 s)
            with admin.catalog.read() as conn:
                done = conn.execute(
                    sa.select(pipeline_step_runs.c.execution_id).where(
                        pipeline_step_runs.c.step == "prepare",
                        pipeline_step_runs.c.status == "succeeded",
                    )
                ).first()
            if done is not None:
                break
            assert time.monotonic() < deadline, "the runner never finished `prepare`"
            time.sleep(0.05)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    pl = Pipelines(admin)
    [killed] = pl.executions("demo", with_steps=True)
    assert killed.status is ExecutionStatus.INTERRUPTED
    assert killed.step("slow").status.value == "interrupted"
    with admin.catalog.read() as conn:
        revoked = conn.execute(
            sa.select(tokens.c.revoked_at).where(tokens.c.run_id == killed.id)
        ).scalar()
    assert revoked is not None  # its run token ended with it
    gate.unlink()
    resumed = pl.retry(killed.id)  # loads the pipeline from its file again
    assert resumed.succeeded, resumed.error
    assert resumed.step("prepare").cache_hit and not resumed.step("slow").cache_hit
    assert pl.output(resumed.id, "slow") == 6
