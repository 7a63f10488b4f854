"""Render a pipeline definition as text or as a Mermaid flowchart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from trivet.errors import ValidationError

__all__ = ["render"]


def _expr(value: Any) -> str:
    """Return a readable form of an expression's JSON."""
    if isinstance(value, dict):
        if "step" in value:
            return str(value["step"])
        if "param" in value:
            return f"${value['param']}"
        if "get" in value:
            base, key = value["get"]
            return f"{_expr(base)}[{key!r}]"
        if "op" in value:
            return f"{_expr(value['left'])} {value['op']} {_expr(value['right'])}"
        for op in ("and", "or"):
            if op in value:
                return f" {op} ".join(f"({_expr(v)})" for v in value[op])
        if "not" in value:
            return f"not ({_expr(value['not'][0])})"
        if "value" in value:
            return str(value["value"])
    return repr(value)


def _guard(when: list[dict[str, Any]]) -> str:
    parts = [_expr(g["condition"]) if g["is"] else f"not ({_expr(g['condition'])})" for g in when]
    return " and ".join(parts)


def render(
    definition: Mapping[str, Any],
    *,
    format: Literal["text", "mermaid"] = "text",
    statuses: Mapping[str, str] | None = None,
) -> str:
    """Render ``definition`` (from :meth:`Pipeline.definition`) as text or Mermaid.

    ``statuses`` (step → status) annotates the steps, e.g. after an execution.
    """
    steps = definition["steps"]
    statuses = statuses or {}
    if format == "text":
        width = max(len(s["name"]) for s in steps)
        lines = [f"pipeline {definition['name']} ({len(steps)} steps)"]
        for s in steps:
            line = f"  {s['name']:<{width}}"
            if s["depends_on"]:
                line += "  ← " + ", ".join(s["depends_on"])
            if s["when"]:
                line += f"  [when {_guard(s['when'])}]"
            if s["kind"] == "fail":
                line += f"  [fail: {s['message']}]"
            if s["name"] in statuses:
                line += f"  ({statuses[s['name']]})"
            lines.append(line.rstrip())
        return "\n".join(lines)
    if format == "mermaid":
        ids = {s["name"]: f"s{i}" for i, s in enumerate(steps)}
        lines = ["flowchart TD"]
        for s in steps:
            label = s["name"] + (f" ({statuses[s['name']]})" if s["name"] in statuses else "")
            label = label.replace('"', "'")
            shape = f'{{{{"{label}"}}}}' if s["kind"] == "fail" else f'["{label}"]'
            lines.append(f"    {ids[s['name']]}{shape}")
        for s in steps:
            for dep in s["depends_on"]:
                if s["when"]:
                    text = _guard(s["when"]).replace('"', "'")
                    lines.append(f'    {ids[dep]} -. "{text}" .-> {ids[s["name"]]}')
                else:
                    lines.append(f"    {ids[dep]} --> {ids[s['name']]}")
        for status in sorted(set(statuses.values())):
            members = [ids[n] for n, st in statuses.items() if st == status and n in ids]
            if members:
                lines.append(f"    class {','.join(members)} {status}")
        if statuses:
            lines += [
                "    classDef succeeded fill:#d4f7d4",
                "    classDef failed fill:#f7d4d4",
                "    classDef skipped fill:#eeeeee",
            ]
        return "\n".join(lines)
    raise ValidationError(f"Unknown graph format {format!r}.", hint="use text or mermaid")
