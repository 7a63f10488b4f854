"""Render a pipeline definition as text, a Mermaid flowchart or an SVG picture.

The SVG is self-contained — no script, no stylesheet, no font or image to fetch —
so it shows inline in Jupyter (``_repr_html_``), in the server's pages and in a file.
Nodes are laid out in layers (a step sits one layer below its deepest input; the
order within a layer follows its neighbours' to keep edges short), coloured by the
step's status in an execution.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from trivet.errors import ValidationError

if TYPE_CHECKING:
    from trivet.pipelines._records import Execution, StepRun

__all__ = ["GraphFormat", "execution_html", "pipeline_html", "render", "step_details", "svg"]

GraphFormat = Literal["text", "mermaid", "svg"]


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
    format: GraphFormat = "text",
    statuses: Mapping[str, str] | None = None,
    details: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """Render ``definition`` (from :meth:`Pipeline.definition`) as text, Mermaid or SVG.

    ``statuses`` (step → status) annotates the steps, e.g. after an execution;
    ``details`` (see :func:`step_details`) adds cache hits and tooltips to the SVG.
    """
    steps = definition["steps"]
    statuses = statuses or {}
    if format == "svg":
        return svg(definition, statuses=statuses, details=details)
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
            if s["kind"] == "approval":
                line += f"  [approval: {s['message']}]"
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
            shape = {"fail": f'{{{{"{label}"}}}}', "approval": f'{{"{label}"}}'}.get(
                s["kind"], f'["{label}"]'
            )
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
    raise ValidationError(f"Unknown graph format {format!r}.", hint="use text, mermaid or svg")


# -- SVG ---------------------------------------------------------------------------------------
_CHAR = 7.2  # the width of a character of 12 px monospace text
_GAP_X, _GAP_Y, _PAD = 24.0, 56.0, 16.0
_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
# status → (fill, stroke, text colour)
_COLOURS: Mapping[str, tuple[str, str, str]] = {
    "pending": ("#ffffff", "#9e9e9e", "#424242"),
    "running": ("#e3f2fd", "#1e88e5", "#0d47a1"),
    "succeeded": ("#e8f5e9", "#2e7d32", "#1b5e20"),
    "cached": ("#f1f8e9", "#7cb342", "#33691e"),
    "failed": ("#ffebee", "#c62828", "#b71c1c"),
    "upstream_failed": ("#fff3e0", "#ef6c00", "#e65100"),
    "skipped": ("#f5f5f5", "#bdbdbd", "#757575"),
    "interrupted": ("#fff8e1", "#f9a825", "#8d6e00"),
    "waiting": ("#f3e5f5", "#8e24aa", "#4a148c"),
}
_PLAIN = ("#fafafa", "#607d8b", "#263238")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _duration(value: dt.timedelta | None) -> str:
    if value is None:
        return ""
    seconds = value.total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def step_details(steps: Sequence[StepRun]) -> dict[str, dict[str, Any]]:
    """Return what the SVG shows of each step of an execution (status, cache, tooltip)."""
    out: dict[str, dict[str, Any]] = {}
    for s in steps:
        out[s.name] = {
            "cache_hit": s.cache_hit,
            "attempts": s.attempts,
            "duration": _duration(s.duration),
            "note": s.cache_note,
            "error": s.error or "",
        }
    return out


def _centre(
    name: str, links: Mapping[str, list[str]], where: Mapping[str, int], current: Mapping[str, int]
) -> float:
    """Return the mean position of a node's neighbours in the next layer (else its own)."""
    found = [where[n] for n in links.get(name, []) if n in where]
    return sum(found) / len(found) if found else float(current[name])


def _layers(steps: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Return the steps in layers (each one below its deepest input), ordered within a
    layer by the barycentre of their neighbours (a few sweeps down and up)."""
    depth: dict[str, int] = {}
    for s in steps:  # definitions list steps in topological order
        depth[s["name"]] = 1 + max((depth.get(d, 0) for d in s["depends_on"]), default=-1)
    layers: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=0))]
    for s in steps:
        layers[depth[s["name"]]].append(s["name"])
    ups = {s["name"]: list(s["depends_on"]) for s in steps}
    downs: dict[str, list[str]] = {s["name"]: [] for s in steps}
    for name, deps in ups.items():
        for d in deps:
            downs.setdefault(d, []).append(name)
    for sweep in range(4):
        down = sweep % 2 == 0
        order = range(1, len(layers)) if down else range(len(layers) - 2, -1, -1)
        for i in order:
            near = layers[i - 1] if down else layers[i + 1]
            where = {n: k for k, n in enumerate(near)}
            current = {n: k for k, n in enumerate(layers[i])}
            layers[i] = sorted(
                layers[i],
                key=lambda n: (_centre(n, ups if down else downs, where, current), current[n]),
            )
    return layers


def svg(
    definition: Mapping[str, Any],
    *,
    statuses: Mapping[str, str] | None = None,
    details: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """Return the DAG of ``definition`` as a self-contained SVG document fragment.

    Each step is a ``<g class="node step|fail|approval status-<status>">`` with a ``<title>``
    (its tooltip), a box and its name; each dependency an ``<path class="edge">``
    (``conditional`` when the step runs under a ``when``). No script, no CSS, no
    external reference; every name and message is escaped.
    """
    statuses = statuses or {}
    details = details or {}
    steps = list(definition["steps"])
    by_name = {s["name"]: s for s in steps}
    layers = _layers(steps)
    show_status = bool(statuses)
    height = 44.0 if show_status else 28.0

    def label_of(name: str) -> str:
        status = statuses.get(name)
        if status is None:
            return ""
        extra = details.get(name, {})
        text = status.replace("_", " ")
        if extra.get("cache_hit"):
            text += " · cached"
        elif extra.get("duration"):
            text += f" · {extra['duration']}"
        return text

    width_of = {n: max(80.0, _CHAR * max(len(n), len(label_of(n))) + 24.0) for n in by_name}
    rows = [sum(width_of[n] for n in layer) + _GAP_X * (len(layer) - 1) for layer in layers]
    total_w = max(rows, default=0.0) + 2 * _PAD
    legend = sorted({_kind(statuses.get(n), details.get(n)) for n in statuses if n in by_name})
    legend_h = 28.0 if legend else 0.0
    total_h = 2 * _PAD + len(layers) * height + (len(layers) - 1) * _GAP_Y + legend_h
    pos: dict[str, tuple[float, float]] = {}  # top-left corner
    for i, layer in enumerate(layers):
        x = (total_w - rows[i]) / 2
        y = _PAD + i * (height + _GAP_Y)
        for n in layer:
            pos[n] = (x, y)
            x += width_of[n] + _GAP_X

    name = str(definition.get("name", ""))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trivet-dag" '
        f'width="{_num(total_w)}" height="{_num(total_h)}" '
        f'viewBox="0 0 {_num(total_w)} {_num(total_h)}" role="img" '
        f'aria-label="pipeline {_esc(name)}" '
        f'font-family="{_FONT}" font-size="12">',
        f"<title>pipeline {_esc(name)} ({len(steps)} steps)</title>",
        '<g class="edges">',
    ]
    for s in steps:
        for dep in s["depends_on"]:
            x1 = pos[dep][0] + width_of[dep] / 2
            y1 = pos[dep][1] + height
            x2 = pos[s["name"]][0] + width_of[s["name"]] / 2
            y2 = pos[s["name"]][1]
            bend = (y2 - y1) / 2
            conditional = bool(s["when"])
            title = f"{dep} → {s['name']}"
            if conditional:
                title += f" when {_guard(s['when'])}"
            out.append(
                f'<g class="edge{" conditional" if conditional else ""}" '
                f'data-from="{_esc(dep)}" data-to="{_esc(s["name"])}">'
                f"<title>{_esc(title)}</title>"
                f'<path d="M{_num(x1)},{_num(y1)} C{_num(x1)},{_num(y1 + bend)} '
                f'{_num(x2)},{_num(y2 - bend)} {_num(x2)},{_num(y2 - 6)}" fill="none" '
                f'stroke="#78909c" stroke-width="1.4"'
                f"{' stroke-dasharray=' + chr(34) + '5 4' + chr(34) if conditional else ''}/>"
                f'<polygon points="{_num(x2 - 4)},{_num(y2 - 7)} {_num(x2 + 4)},{_num(y2 - 7)} '
                f'{_num(x2)},{_num(y2)}" fill="#78909c"/></g>'
            )
    out.append("</g>")
    out.append('<g class="nodes">')
    for s in steps:
        n = s["name"]
        x, y = pos[n]
        w = width_of[n]
        status = statuses.get(n)
        extra = details.get(n, {})
        kind = _kind(status, extra)
        fill, stroke, ink = _COLOURS.get(kind, _PLAIN)
        classes = ["node", s["kind"] if s["kind"] in ("fail", "approval") else "step"]
        if status is not None:
            classes.append(f"status-{status}")
        if extra.get("cache_hit"):
            classes.append("cached")
        tip = [f"{n} ({s['kind']})"]
        if s.get("function"):
            tip.append(str(s["function"]))
        if s["kind"] == "fail":
            tip.append(f"fails with: {s.get('message', '')}")
        if s["kind"] == "approval":
            tip.append(f"asks: {s.get('message', '')}")
        if s["when"]:
            tip.append(f"when {_guard(s['when'])}")
        if status is not None:
            tip.append(f"status: {status}")
        for key in ("attempts", "duration", "note", "error"):
            value = extra.get(key)
            if value:
                text = str(value)
                tip.append(f"{key}: {text[:300] + '…' if len(text) > 300 else text}")
        dash = {"fail": ' stroke-dasharray="4 3"', "approval": ' stroke-dasharray="1 2"'}.get(
            s["kind"], ""
        )
        out.append(
            f'<g class="{" ".join(classes)}" data-step="{_esc(n)}">'
            f"<title>{_esc(chr(10).join(tip))}</title>"
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(height)}" '
            f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>'
            f'<text x="{_num(x + w / 2)}" y="{_num(y + 18)}" text-anchor="middle" '
            f'fill="{ink}" font-weight="bold">{_esc(n)}</text>'
        )
        label = label_of(n)
        if label:
            out.append(
                f'<text class="status" x="{_num(x + w / 2)}" y="{_num(y + 35)}" '
                f'text-anchor="middle" fill="{ink}" font-size="11">{_esc(label)}</text>'
            )
        out.append("</g>")
    out.append("</g>")
    if legend:
        out.append('<g class="legend">')
        x = _PAD
        y = total_h - _PAD - 10
        for kind in legend:
            fill, stroke, ink = _COLOURS.get(kind, _PLAIN)
            text = kind.replace("_", " ")
            out.append(
                f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="12" height="12" rx="2" '
                f'fill="{fill}" stroke="{stroke}"/>'
                f'<text x="{_num(x + 17)}" y="{_num(y + 1)}" fill="#424242" '
                f'font-size="11">{_esc(text)}</text>'
            )
            x += 17 + _CHAR * len(text) + 14
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _kind(status: str | None, extra: Mapping[str, Any] | None) -> str:
    if status == "succeeded" and extra and extra.get("cache_hit"):
        return "cached"
    return status or "plain"


def _scroll(picture: str) -> str:
    """Wrap a picture so that a wide DAG scrolls instead of overflowing the page."""
    return f'<div style="overflow-x:auto">{picture}</div>'


def pipeline_html(definition: Mapping[str, Any]) -> str:
    """Return a pipeline's HTML for Jupyter: its name, parameters and DAG."""
    params = definition.get("params", {})
    parts = [
        f"{_esc(p)}: {_esc(spec.get('type', ''))} = {_esc(repr(spec.get('default')))}"
        for p, spec in params.items()
    ]
    head = (
        f"<p><b>pipeline {_esc(definition['name'])}</b> · {len(definition['steps'])} steps"
        + (f" · parameters: <code>{', '.join(parts)}</code>" if parts else "")
        + "</p>"
    )
    about = definition.get("description") or ""
    text = f"<p>{_esc(about)}</p>" if about else ""
    return f'<div class="trivet-pipeline">{head}{text}{_scroll(svg(definition))}</div>'


def execution_html(execution: Execution) -> str:
    """Return an execution's HTML for Jupyter: its summary, DAG by status and steps."""
    e = execution
    fill, stroke, ink = _COLOURS.get(e.status.value, _PLAIN)
    took = _duration(e.ended_at - e.started_at) if e.ended_at is not None else "running"
    head = (
        f"<p><b>execution</b> <code>{_esc(e.id)}</code> of <b>{_esc(e.pipeline)}</b> "
        f"(version {e.version}): "
        f'<span style="background:{fill};border:1px solid {stroke};color:{ink};'
        f'padding:0 4px;border-radius:3px">{_esc(e.status.value)}</span> · {_esc(took)} · '
        f"run as <code>{_esc(e.run_as)}</code> by <code>{_esc(e.invoked_by)}</code></p>"
    )
    if e.error:
        head += f'<p style="color:#b71c1c">{_esc(e.error)}</p>'
    picture = ""
    if e.definition is not None:
        picture = _scroll(
            svg(
                e.definition,
                statuses={s.name: s.status.value for s in e.steps},
                details=step_details(e.steps),
            )
        )
    rows = []
    for s in e.steps:
        error = (s.error or "").splitlines()[0][:200] if s.error else ""
        rows.append(
            f'<tr class="status-{_esc(s.status.value)}"><td><code>{_esc(s.name)}</code></td>'
            f"<td>{_esc(s.status.value)}</td><td>{s.attempts}</td>"
            f"<td>{'hit' if s.cache_hit else ''}</td><td>{_esc(_duration(s.duration))}</td>"
            f"<td>{_esc(error)}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>step</th><th>status</th><th>attempts</th><th>cache</th>"
        f"<th>duration</th><th>error</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return f'<div class="trivet-execution">{head}{picture}{table}</div>'
