"""`trivet quickstart` end to end, as a user runs it: a real process in a fresh folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import trivet
from trivet.platform import audit
from trivet.platform.lineage import Node
from trivet.platform.predictions import read_predictions


def run_quickstart(directory: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVET_")}
    return subprocess.run(
        [sys.executable, "-m", "trivet.cli", "quickstart", "--dir", str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_quickstart_tells_the_story_and_leaves_a_consistent_workspace(tmp_path: Path) -> None:
    proc = run_quickstart(tmp_path / "qs")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Done in" in proc.stderr and "Try next:" in proc.stderr

    admin = trivet.connect(tmp_path / "qs" / "workspace")

    # the naive model was gated out and never registered; the mitigated one was
    executions = admin.pipelines.executions()
    first_two = sorted(executions, key=lambda e: e.started_at)[:2]
    naive, fair = (admin.pipelines.get_execution(e.id) for e in first_two)
    assert naive.status == "failed" and naive.step("gate").status.value == "failed"
    assert "DPPL" in (naive.step("gate").error or "")
    assert naive.step("register_model").status.value == "skipped"
    assert fair.status == "succeeded"
    versions = admin.registry.versions("credit-model")
    assert [v.version for v in versions] == [1]

    # registered as pending by the pipeline, then approved by the reviewer
    version = admin.registry.get("credit-model", "champion")
    assert version.status == "Approved" and version.decided_by == "rita"
    assert version.gate_status == "passed" and version.fairness_report_digest
    registered = [e for e in audit.entries(admin.catalog) if e.action == "model:register"]
    assert registered and registered[0].detail.get("status", "PendingManualApproval") == (
        "PendingManualApproval"
    )

    # the application principal may read online features and get the champion's
    # predictions from the server — nothing else
    app = next(p for p in admin.identity.principals() if p.name == "scoring-app")
    assert app.kind.value == "service"
    check = admin.access.check
    fg = "credit/feature_groups/applicants"
    assert check("feature:read_online", fg, principal="scoring-app").allowed
    assert check("model:predict", version.resource, principal="scoring-app").allowed
    logged = read_predictions(admin, "credit-model")
    assert logged["record_id"].tolist() == ["new-applicant"]
    assert logged["principal"].tolist() == ["scoring-app"]
    assert logged["version"].tolist() == [1]
    assert "P(repay)" in proc.stderr and "top reasons" in proc.stderr
    for action, resource in [
        ("feature:read_offline", fg),
        ("feature:write", fg),
        ("model:describe", "credit/models/credit-model"),
        ("model:read", version.resource),
        ("artifact:read", "credit/artifacts"),
        ("pipeline:run", "credit/pipelines/credit_model"),
        ("clarify:read_report", "credit/reports/credit-model"),
    ]:
        assert not check(action, resource, principal="scoring-app").allowed, action
    denials = {(e.actor, e.action) for e in audit.entries(admin.catalog, outcome="denied")}
    assert ("scoring-app", "feature:read_offline") in denials
    assert ("dana", "model:approve") in denials

    # lineage: the approved version back to its report, training set and feature groups
    upstream = admin.lineage.upstream(Node(kind="model_version", id=version.resource))
    nodes = set(upstream.nodes)
    assert Node(kind="report", id=version.fairness_report_digest) in nodes
    assert any(n.kind == "dataset" for n in nodes)
    assert {n.id for n in nodes if n.kind == "feature_group"} == {
        "credit/feature_groups/applicants",
        "credit/feature_groups/credit_history",
        "credit/feature_groups/transactions",
    }
    assert audit.verify(admin.catalog).ok


def test_quickstart_reruns_in_its_own_folder_but_never_clobbers_another(tmp_path: Path) -> None:
    target = tmp_path / "qs"
    assert run_quickstart(target).returncode == 0
    assert run_quickstart(target).returncode == 0  # replaces its own earlier run

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    proc = run_quickstart(foreign)
    assert proc.returncode == 2
    assert "was not made by `trivet quickstart`" in proc.stderr
    assert (foreign / "notes.txt").read_text() == "precious"


@pytest.mark.parametrize("command", [["models", "versions", "credit-model"], ["audit", "verify"]])
def test_the_suggested_next_commands_work(tmp_path: Path, command: list[str]) -> None:
    assert run_quickstart(tmp_path / "qs").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVET_")}
    proc = subprocess.run(
        [sys.executable, "-m", "trivet.cli", "-w", str(tmp_path / "qs" / "workspace"), *command],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
