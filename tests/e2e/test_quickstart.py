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
    version = admin.registry.get("credit-risk", "champion")
    assert version.version == 1
    assert version.status == "Approved"
    assert version.created_by == "dana" and version.decided_by == "rita"
    assert version.decision_reason

    denials = {(e.actor, e.action) for e in audit.entries(admin.catalog, outcome="denied")}
    assert denials == {
        ("dana", "model:approve"),
        ("scoring-app", "model:describe"),
        ("rita", "model:register"),
    }
    assert audit.verify(admin.catalog).ok

    upstream = admin.lineage.upstream(Node(kind="model_version", id=version.resource))
    kinds = {(n.kind, n.id == version.artifact_digest) for n in upstream.nodes}
    assert ("artifact", True) in kinds  # the stored model
    assert any(n.kind == "artifact" and n.id != version.artifact_digest for n in upstream.nodes)


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


@pytest.mark.parametrize("command", [["models", "versions", "credit-risk"], ["audit", "verify"]])
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
