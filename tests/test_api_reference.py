"""docs/api.md is generated from the docstrings, and is up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "api_reference.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_api_reference_covers_every_part() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    for heading in (
        "### `trivet.connect`",
        "### `trivet.featurestore.FeatureStore`",
        "#### `FeatureStore.get_record`",
        "### `trivet.clarify.Clarify`",
        "### `trivet.pipelines.Pipelines`",
        "### `trivet.pipelines.steps.register_model`",
        "#### `ModelRegistry.servable`",
    ):
        assert heading in text, heading
