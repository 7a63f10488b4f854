"""The example's own code is small, and the docs state its size truthfully.

Counted: the feature definitions and the pipeline with its steps
(``trivet/examples/credit/features.py`` and ``pipeline.py``), not the data generator —
physical lines holding code, without blank lines, comments and docstrings.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "platform" / "trivet" / "examples" / "credit"
SKIP = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def code_lines(source: str) -> int:
    """Count the lines holding code: no blank lines, comments or docstrings."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in SKIP:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def test_the_counter_counts_code_only() -> None:
    source = (
        '"""Doc."""\n\nimport os  # why\n\n\n'
        'def f(x):\n    """Doc\n    more."""\n    return (\n        x\n    )\n'
    )
    assert code_lines(source) == 5  # import, def, return, x, )


def test_the_docs_state_the_examples_size() -> None:
    total = sum(code_lines((EXAMPLE / f).read_text()) for f in ("features.py", "pipeline.py"))
    text = (ROOT / "docs" / "getting-started.md").read_text()
    stated = re.search(r"example's own code is (\d+) lines", text)
    assert stated, "docs/getting-started.md should state the example's size"
    assert int(stated.group(1)) == total, f"the example has {total} lines of code now"
