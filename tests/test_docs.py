"""Every Python block in docs/*.md runs, in order, one namespace per page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PAGES = sorted(p for p in DOCS.glob("*.md") if BLOCK.search(p.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_docs_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIVET_WORKSPACE", raising=False)
    monkeypatch.delenv("TRIVET_TOKEN", raising=False)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    blocks = BLOCK.findall(page.read_text())
    assert blocks
    for number, source in enumerate(blocks, 1):
        code = compile(source, f"{page.name}[block {number}]", "exec")
        exec(code, namespace)
    assert capsys.readouterr().out  # the examples print what they show
