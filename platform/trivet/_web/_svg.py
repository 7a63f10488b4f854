"""Inline SVG for the console: histograms, top-value bars, the pipeline DAG, step timings.

Every function returns :class:`markupsafe.Markup` built from escaped text, styled only
by presentation attributes and CSS classes (the console's Content-Security-Policy
forbids inline ``style``). No scripts, no external references.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

__all__ = [
    "Bar",
    "dag_svg",
    "duration_text",
    "histogram_svg",
    "layers",
    "timing_svg",
    "top_values_svg",
]

_ids = itertools.count(1)


def _markup(parts: list[str]) -> Markup:
    """Join SVG pieces whose every text was escaped where it was put in."""
    return Markup("".join(parts))  # noqa: S704 - built here, every text escaped


def _n(x: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _label(value: float | dt.datetime) -> str:
    """A short readable number (or time) for an axis label."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00")
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.2e}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def duration_text(seconds: float) -> str:
    """A duration for people: ``27 ms``, ``1.25 s``, ``3 min 4 s``, ``2 h 5 min``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _status_class(status: str | None) -> str:
    return "st-" + re.sub(r"[^a-z_]", "", (status or "none").lower())


def histogram_svg(
    edges: Sequence[float] | Sequence[dt.datetime],
    counts: Sequence[int],
    *,
    label: str,
    width: int = 240,
    height: int = 64,
) -> Markup:
    """Draw a histogram: one bar per bin, its height proportional to the bin's count.

    ``edges`` has one more element than ``counts`` (bin ``i`` is ``[edges[i], edges[i+1])``).
    Each bar carries a ``<title>`` with its range and count; the axis shows the first and
    last edge.
    """
    if len(counts) == 0 or len(edges) != len(counts) + 1:
        return Markup('<span class="muted">no histogram</span>')
    top = max(max(counts), 1)
    plot_h = height - 14
    bar_w = width / len(counts)
    parts = [
        f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape("histogram of " + label)}">'
    ]
    for i, count in enumerate(counts):
        h = plot_h * count / top
        tip = f"[{_label(edges[i])}, {_label(edges[i + 1])}): {count}"
        parts.append(
            f'<rect class="bar" x="{_n(i * bar_w + 0.5)}" y="{_n(plot_h - h)}" '
            f'width="{_n(max(bar_w - 1, 0.5))}" height="{_n(h)}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    parts.append(
        f'<line class="axis" x1="0" y1="{plot_h}" x2="{width}" y2="{plot_h}"/>'
        f'<text class="tick" x="0" y="{height - 2}">{escape(_label(edges[0]))}</text>'
        f'<text class="tick" x="{width}" y="{height - 2}" text-anchor="end">'
        f"{escape(_label(edges[-1]))}</text></svg>"
    )
    return _markup(parts)


def top_values_svg(
    values: Sequence[tuple[Any, int]], *, label: str, width: int = 240, row: int = 14
) -> Markup:
    """Draw the most frequent values as horizontal bars (value, then its count)."""
    if not values:
        return Markup('<span class="muted">no values</span>')
    top = max(max(c for _, c in values), 1)
    height = row * len(values)
    text_w = width * 0.45
    parts = [
        f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape("most frequent values of " + label)}">'
    ]
    for i, (value, count) in enumerate(values):
        shown = str(value)
        short = shown if len(shown) <= 14 else shown[:13] + "…"
        w = (width - text_w - 30) * count / top
        y = i * row
        parts.append(
            f'<text class="tick" x="{_n(text_w - 4)}" y="{_n(y + row - 3)}" text-anchor="end">'
            f"{escape(short)}</text>"
            f'<rect class="bar" x="{_n(text_w)}" y="{_n(y + 2)}" width="{_n(max(w, 0.5))}" '
            f'height="{row - 4}"><title>{escape(f"{shown}: {count}")}</title></rect>'
            f'<text class="tick" x="{_n(text_w + w + 3)}" y="{_n(y + row - 3)}">{count}</text>'
        )
    parts.append("</svg>")
    return _markup(parts)


# -- the pipeline DAG ------------------------------------------------------------------------
def layers(steps: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Assign each step to a column: one more than the deepest step it depends on.

    Within a column, steps are ordered by the mean row of their parents (barycenter),
    then by their order in the definition, which keeps edges from crossing in the
    common shapes (chains, fan-out, fan-in, diamonds).
    """
    import networkx as nx

    order = {str(s["name"]): i for i, s in enumerate(steps)}
    graph = nx.DiGraph()
    graph.add_nodes_from(order)
    for s in steps:
        for dep in s.get("depends_on") or ():
            if dep in order:
                graph.add_edge(dep, s["name"])
    depth: dict[str, int] = {}
    try:
        topo = list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:  # not a DAG: fall back to the definition's order
        topo = list(order)
    for name in topo:
        preds = [p for p in graph.predecessors(name) if p in depth]
        depth[name] = 1 + max((depth[p] for p in preds), default=-1)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    for col, members in enumerate(columns):
        members.extend(n for n in order if depth[n] == col)

        def key(name: str) -> tuple[float, int]:
            parents = [row[p] for p in graph.predecessors(name) if p in row]
            return (sum(parents) / len(parents) if parents else order[name], order[name])

        members.sort(key=key)
        for i, name in enumerate(members):
            row[name] = float(i)
    return columns


def dag_svg(
    steps: Sequence[Mapping[str, Any]],
    *,
    statuses: Mapping[str, str] | None = None,
    link_steps: bool = False,
) -> Markup:
    """Draw a pipeline's steps as boxes in columns (left to right) with arrows.

    ``steps`` are the ``definition["steps"]`` of a pipeline version (``name``,
    ``depends_on``, ``when``, ``kind``). A conditional step's incoming arrows are
    dashed; a fail step has a double border. With ``statuses`` (step → status) each box
    is coloured by its step's status; ``link_steps`` makes each box a link to
    ``#step-<name>`` on the same page.
    """
    if not steps:
        return Markup('<p class="muted">This pipeline has no steps.</p>')
    columns = layers(steps)
    by_name = {str(s["name"]): s for s in steps}
    box_w, box_h, gap_x, gap_y, pad = 160, 40, 56, 18, 8
    tallest = max(len(c) for c in columns)
    width = pad * 2 + len(columns) * box_w + (len(columns) - 1) * gap_x
    height = pad * 2 + tallest * box_h + (tallest - 1) * gap_y
    pos: dict[str, tuple[float, float]] = {}
    for c, members in enumerate(columns):
        offset = (tallest - len(members)) * (box_h + gap_y) / 2
        for r, name in enumerate(members):
            pos[name] = (pad + c * (box_w + gap_x), pad + offset + r * (box_h + gap_y))
    marker = f"arrow{next(_ids)}"
    parts = [
        f'<svg class="dag" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="pipeline graph">'
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path class="arrowhead" d="M0,0 L10,5 L0,10 z"/></marker></defs>'
    ]
    for name, step in by_name.items():
        for dep in step.get("depends_on") or ():
            if dep not in pos:
                continue
            x1, y1 = pos[dep][0] + box_w, pos[dep][1] + box_h / 2
            x2, y2 = pos[name][0], pos[name][1] + box_h / 2
            mid = (x1 + x2) / 2
            cls = "edge cond" if step.get("when") else "edge"
            parts.append(
                f'<path class="{cls}" d="M{_n(x1)},{_n(y1)} C{_n(mid)},{_n(y1)} '
                f'{_n(mid)},{_n(y2)} {_n(x2 - 1)},{_n(y2)}" marker-end="url(#{marker})">'
                f"<title>{escape(dep)} → {escape(name)}</title></path>"
            )
    for name, (x, y) in pos.items():
        status = (statuses or {}).get(name)
        kind = str(by_name[name].get("kind", "step"))
        special = {"fail": "fail step", "approval": "approval step"}.get(kind)
        cls = f"node {_status_class(status)}" + (f" {kind}" if special else "")
        short = name if len(name) <= 20 else name[:19] + "…"
        tip = name + (f" ({status})" if status else "") + (f" — {special}" if special else "")
        box = (
            f'<g class="{cls}"><title>{escape(tip)}</title>'
            f'<rect x="{_n(x)}" y="{_n(y)}" width="{box_w}" height="{box_h}" rx="6"/>'
            f'<text x="{_n(x + box_w / 2)}" y="{_n(y + (17 if status else 25))}" '
            f'text-anchor="middle">{escape(short)}</text>'
        )
        if status:
            box += (
                f'<text class="sub" x="{_n(x + box_w / 2)}" y="{_n(y + 32)}" '
                f'text-anchor="middle">{escape(status)}</text>'
            )
        box += "</g>"
        if link_steps:
            box = f'<a href="#step-{escape(name)}">{box}</a>'
        parts.append(box)
    parts.append("</svg>")
    return _markup(parts)


# -- step timings ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Bar:
    """One row of the timing chart: seconds from the execution's start to the step's."""

    name: str
    status: str
    start: float | None
    seconds: float | None
    cache_hit: bool = False


def timing_svg(bars: Sequence[Bar], *, width: int = 720, row: int = 22) -> Markup:
    """Draw each step's run as a bar on one time axis (a Gantt chart) from 0 to the end.

    A step that did not run has no bar; a cache hit is drawn hatched-light
    (class ``cached``) and labelled.
    """
    if not bars:
        return Markup('<p class="muted">No steps.</p>')
    label_w, right = 170, 90
    ends = [b.start + b.seconds for b in bars if b.start is not None and b.seconds is not None]
    total = max(ends, default=0.0) or 1.0
    plot_w = width - label_w - right
    height = row * len(bars) + 20
    parts = [
        f'<svg class="timing" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="step timings">'
    ]
    for i, bar in enumerate(bars):
        y = i * row
        short = bar.name if len(bar.name) <= 24 else bar.name[:23] + "…"
        parts.append(
            f'<text class="tick" x="{label_w - 6}" y="{y + row - 7}" text-anchor="end">'
            f"{escape(short)}</text>"
        )
        if bar.start is None or bar.seconds is None:
            parts.append(
                f'<text class="tick muted" x="{label_w}" y="{y + row - 7}">'
                f"{escape(bar.status)}</text>"
            )
            continue
        x = label_w + plot_w * bar.start / total
        w = max(plot_w * bar.seconds / total, 1.5)
        cls = f"bar {_status_class(bar.status)}" + (" cached" if bar.cache_hit else "")
        note = duration_text(bar.seconds) + (" (cache hit)" if bar.cache_hit else "")
        parts.append(
            f'<rect class="{cls}" x="{_n(x)}" y="{y + 4}" width="{_n(w)}" height="{row - 8}">'
            f"<title>{escape(bar.name)}: {escape(note)}</title></rect>"
            f'<text class="tick" x="{_n(x + w + 4)}" y="{y + row - 7}">{escape(note)}</text>'
        )
    axis_y = row * len(bars) + 4
    parts.append(
        f'<line class="axis" x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}"/>'
        f'<text class="tick" x="{label_w}" y="{axis_y + 13}">0</text>'
        f'<text class="tick" x="{label_w + plot_w}" y="{axis_y + 13}" text-anchor="end">'
        f"{escape(duration_text(total))}</text></svg>"
    )
    return _markup(parts)
