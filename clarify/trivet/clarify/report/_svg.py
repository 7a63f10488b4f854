"""Inline SVG charts for the HTML report: horizontal bars with whiskers, and lines.

Self-made and dependency-free: the report must open without internet and without
matplotlib. Every text is escaped; coordinates are rounded so output is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Bar", "bar_chart", "line_chart"]

_WIDTH = 560
_LABEL = 170  # left margin for group labels
_VALUE = 70  # right margin for the value text
_ROW = 22
_TOP = 26
_BOTTOM = 22


@dataclass(frozen=True, kw_only=True)
class Bar:
    """One bar: a label, a value (None: undefined), an optional interval and a note."""

    label: str
    value: float | None
    interval: tuple[float, float] | None = None
    note: str = ""
    failed: bool = False


def _r(x: float) -> str:
    return f"{x:.1f}"


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == int(x) and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.3g}"


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def bar_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    origin: float = 0.0,
    thresholds: Sequence[float] = (),
) -> str:
    """Return an SVG of horizontal bars from ``origin``, with interval whiskers and
    dashed threshold lines (e.g. a check's bounds)."""
    points = _finite(
        [origin, *thresholds]
        + [b.value for b in bars]
        + [x for b in bars if b.interval for x in b.interval]
    )
    lo, hi = min(points), max(points)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad
    plot = _WIDTH - _LABEL - _VALUE
    height = _TOP + _ROW * max(len(bars), 1) + _BOTTOM

    def x(v: float) -> float:
        v = min(max(v, lo), hi)  # infinities are drawn at the edge
        return _LABEL + (v - lo) / (hi - lo) * plot

    out = [
        f'<svg class="chart" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="4" y="16" class="title">{escape(title)}</text>',
    ]
    for i, bar in enumerate(bars):
        y = _TOP + i * _ROW
        out.append(
            f'<text x="{_LABEL - 6}" y="{_r(y + 14)}" text-anchor="end" class="label">'
            f"{escape(bar.label)}</text>"
        )
        if bar.value is None:
            out.append(
                f'<text x="{_r(x(origin) + 4)}" y="{_r(y + 14)}" class="undefined">'
                f"undefined{escape(' — ' + bar.note if bar.note else '')}</text>"
            )
            continue
        x0, x1 = sorted((x(origin), x(bar.value)))
        cls = "bar failed" if bar.failed else "bar"
        out.append(
            f'<rect x="{_r(x0)}" y="{_r(y + 4)}" width="{_r(max(x1 - x0, 1.0))}" height="13" '
            f'class="{cls}"><title>{escape(bar.label)}: {escape(_fmt(bar.value))}</title></rect>'
        )
        if bar.interval is not None:
            a, b = x(bar.interval[0]), x(bar.interval[1])
            mid = _r(y + 10.5)
            out.append(
                f'<path d="M{_r(a)} {mid}H{_r(b)}M{_r(a)} {_r(y + 6)}V{_r(y + 15)}'
                f'M{_r(b)} {_r(y + 6)}V{_r(y + 15)}" class="whisker"/>'
            )
        out.append(
            f'<text x="{_WIDTH - _VALUE + 6}" y="{_r(y + 14)}" class="value">'
            f"{escape(_fmt(bar.value))}</text>"
        )
    bottom = _TOP + _ROW * max(len(bars), 1)
    out.append(
        f'<line x1="{_r(x(origin))}" y1="{_TOP - 2}" x2="{_r(x(origin))}" y2="{bottom}" '
        'class="axis"/>'
    )
    for t in thresholds:
        if math.isfinite(t):
            out.append(
                f'<line x1="{_r(x(t))}" y1="{_TOP - 4}" x2="{_r(x(t))}" y2="{bottom}" '
                f'class="threshold"><title>threshold {escape(_fmt(t))}</title></line>'
            )
            out.append(
                f'<text x="{_r(x(t))}" y="{bottom + 14}" text-anchor="middle" class="tick">'
                f"{escape(_fmt(t))}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def line_chart(
    title: str, xs: Sequence[float], ys: Sequence[float], *, x_label: str, y_label: str
) -> str:
    """Return an SVG line chart (partial dependence): points joined, axes labelled."""
    width, height, left, right, top, bottom = 280, 190, 46, 10, 24, 34
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    if x_hi - x_lo < 1e-12:
        x_lo, x_hi = x_lo - 1.0, x_hi + 1.0
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.05, y_hi + 0.05

    def px(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * (width - left - right)

    def py(v: float) -> float:
        return height - bottom - (v - y_lo) / (y_hi - y_lo) * (height - top - bottom)

    path = " ".join(
        f"{'M' if i == 0 else 'L'}{_r(px(a))} {_r(py(b))}"
        for i, (a, b) in enumerate(zip(xs, ys, strict=True))
    )
    dots = "".join(
        f'<circle cx="{_r(px(a))}" cy="{_r(py(b))}" r="2" class="dot"/>'
        for a, b in zip(xs, ys, strict=True)
    )
    return (
        f'<svg class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">'
        f'<text x="4" y="15" class="title">{escape(title)}</text>'
        f'<path d="M{left} {top}V{height - bottom}H{width - right}" class="axis"/>'
        f'<path d="{path}" class="line"/>{dots}'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="tick">'
        f"{escape(_fmt(y_hi))}</text>"
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" class="tick">'
        f"{escape(_fmt(y_lo))}</text>"
        f'<text x="{left}" y="{height - bottom + 13}" class="tick">{escape(_fmt(x_lo))}</text>'
        f'<text x="{width - right}" y="{height - bottom + 13}" text-anchor="end" class="tick">'
        f"{escape(_fmt(x_hi))}</text>"
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" text-anchor="middle" '
        f'class="label">{escape(x_label)}</text>'
        f'<text x="10" y="{(top + height - bottom) / 2:.1f}" class="label" '
        f'transform="rotate(-90 10 {(top + height - bottom) / 2:.1f})" text-anchor="middle">'
        f"{escape(y_label)}</text>"
        "</svg>"
    )
