"""Generate docs/api.md, the Python API reference, from the public names' docstrings.

    uv run python tools/api_reference.py            # rewrite docs/api.md
    uv run python tools/api_reference.py --check    # exit 1 if docs/api.md is stale

What is public is what each module's ``__all__`` says; for classes, their public methods
and properties. tests/test_api_reference.py runs ``--check``. Signatures are fenced as
```py (not ```python), so tests/test_docs.py does not try to run them.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "api.md"

# (module, names) — None means the module's __all__
SECTIONS: list[tuple[str, str, list[str] | None]] = [
    ("trivet", "Connecting", ["connect", "init", "Session"]),
    ("trivet.errors", "Errors", None),
    ("trivet.platform.directory", "Identity: `session.identity`", ["Directory"]),
    ("trivet.platform.access", "Grants: `session.access`", ["Access"]),
    ("trivet.platform.artifacts", "Artifacts: `session.artifacts`", ["ArtifactStore"]),
    ("trivet.platform.registry", "Model registry: `session.registry`", None),
    ("trivet.platform.lineage", "Lineage: `session.lineage`", ["Lineage", "Node"]),
    ("trivet.featurestore", "Feature store: `session.featurestore`", None),
    ("trivet.clarify", "Clarify: `session.clarify`", None),
    ("trivet.pipelines", "Pipelines: `session.pipelines`", None),
    ("trivet.pipelines.steps", "Built-in pipeline steps", None),
]

INTRO = """\
# Python API reference

Generated from the docstrings by `uv run python tools/api_reference.py`; do not edit by
hand (`tests/test_api_reference.py` fails when this file is stale). Each part hangs off
a session: `trivet.connect()` returns a `Session` whose `featurestore`, `clarify`,
`pipelines`, `registry`, `artifacts`, `lineage`, `identity` and `access` attributes
are the objects documented below, all acting under that session's identity and grants.
"""


def _signature(obj: Any) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    return sig.replace("'", "")


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj) or "*(no docstring)*"
    lines = []
    for line in doc.splitlines():
        # docstring sections (Args:, Returns:, Raises:, Example:) as bold lines
        stripped = line.strip()
        if stripped in ("Args:", "Returns:", "Raises:", "Example:", "Examples:", "Attributes:"):
            lines.append(f"**{stripped[:-1]}**")
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties defined by the class or a trivet base class."""
    own = [c for c in cls.__mro__ if c.__module__.startswith("trivet")]
    found = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or not any(name in c.__dict__ for c in own):
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, property | classmethod | staticmethod) or inspect.isfunction(member):
            found.append((name, member))
    return found


def _render_class(qual: str, cls: type) -> list[str]:
    out = [f"### `{qual}`", ""]
    if issubclass(cls, enum.Enum):
        out += [_doc(cls), "", "Values: " + ", ".join(f"`{m.value}`" for m in cls), ""]
        return out
    if dataclasses.is_dataclass(cls):
        out += [f"```py\n{cls.__name__}{_signature(cls)}\n```", ""]
    out += [_doc(cls), ""]
    if issubclass(cls, BaseException):
        return out
    for name, member in _members(cls):
        static = inspect.getattr_static(cls, name)
        if isinstance(static, property):
            out += [f"#### `{cls.__name__}.{name}` *(property)*", "", _doc(static), ""]
        else:
            out += [
                f"#### `{cls.__name__}.{name}`",
                "",
                f"```py\n{name}{_signature(member)}\n```",
                "",
                _doc(member),
                "",
            ]
    return out


def render() -> str:
    """Return the reference's markdown."""
    out = [INTRO]
    for module_name, title, names in SECTIONS:
        module = importlib.import_module(module_name)
        chosen = names if names is not None else list(module.__all__)
        out += [f"## {title}", "", f"`import {module_name}`", ""]
        for name in chosen:
            if name.startswith("_"):
                continue
            obj = getattr(module, name)
            qual = f"{module_name}.{name}"
            if typing.get_origin(obj) is not None:  # a type alias, e.g. Literal[...]
                shown = repr(obj).replace("typing.", "").replace("'", '"')
                out += [f"### `{qual}`", "", f"```py\n{name} = {shown}\n```", ""]
            elif inspect.isclass(obj):
                out += _render_class(qual, obj)
            elif callable(obj):
                out += [f"### `{qual}`", "", f"```py\n{name}{_signature(obj)}\n```", ""]
                out += [_doc(obj), ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print("docs/api.md is stale: run `uv run python tools/api_reference.py`")
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
