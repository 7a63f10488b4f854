"""docs/cli.md is generated from the typer app and must match it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "uv run typer trivet.cli utils docs --name trivet --output docs/cli.md"


def test_cli_reference_is_current(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "typer",
            "trivet.cli",
            "utils",
            "docs",
            "--name",
            "trivet",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    current = (ROOT / "docs" / "cli.md").read_text()
    assert out.read_text() == current, f"docs/cli.md is stale; regenerate it with: {REGENERATE}"
