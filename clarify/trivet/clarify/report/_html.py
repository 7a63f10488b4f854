"""Render a report document as one self-contained HTML page (jinja2, inline SVG).

The page has no external asset — no script, stylesheet, font or image is fetched — so
it opens offline and can be attached to an approval as one file. Everything that comes
from data (group names, feature names, justifications) is escaped.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trivet.clarify.report._svg import Bar, bar_chart, line_chart

if TYPE_CHECKING:
    import jinja2

__all__ = ["render_bias_fragment", "render_report"]

_TEMPLATES = Path(__file__).parent / "templates"
_PARITY = {"DI": 1.0}


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    return env


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    return float(value)


def _num(value: Any, digits: int = 4) -> str:
    number = _number(value) if not isinstance(value, bool) else None
    if number is None:
        return "—" if value is None else str(value)
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    return f"{number:.{digits}g}"


def _checks_by_metric(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per metric: the thresholds to draw and the groups whose checks failed."""
    out: dict[str, dict[str, Any]] = {}
    for result in (document.get("checks") or {}).get("results", []):
        slot = out.setdefault(result["metric"], {"thresholds": set(), "failed": set()})
        for bound in (result["low"], result["high"]):
            if bound is not None:
                slot["thresholds"].add(float(bound))
        if not result["passed"]:
            slot["failed"].add(str(result["group"]))
    return out


def _stage_view(
    section: Mapping[str, Any], checks: Mapping[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per facet: one bar chart per metric (a bar per group), a sizes chart, a table."""
    facets = []
    for facet, groups in section.get("facets", {}).items():
        metrics: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        for group in groups:
            for metric in group["metrics"]:
                metrics.setdefault(metric["name"], []).append(
                    (str(group["value_or_threshold"]), metric)
                )
        charts = []
        for name, rows in metrics.items():
            info = checks.get(name, {"thresholds": set(), "failed": set()})
            bars = [
                Bar(
                    label=group,
                    value=_number(m.get("value")),
                    interval=None
                    if m.get("interval") is None
                    else (
                        _number(m["interval"][0]) or 0.0,
                        _number(m["interval"][1]) or 0.0,
                    ),
                    note=str(m.get("error") or ""),
                    failed=group in info["failed"],
                )
                for group, m in rows
            ]
            title = f"{name} — {rows[0][1].get('description', name)}"
            charts.append(
                bar_chart(
                    title,
                    bars,
                    origin=_PARITY.get(name, 0.0),
                    thresholds=sorted(info["thresholds"]),
                )
            )
        sizes = bar_chart(
            "Rows in each group (d)",
            [
                Bar(label=str(g["value_or_threshold"]), value=float(g["sizes"]["rows_d"]))
                for g in groups
            ],
        )
        facets.append(
            {
                "facet": facet,
                "charts": charts,
                "sizes_chart": sizes,
                "groups": groups,
                "metric_names": list(metrics),
            }
        )
    return facets


def _explanation_view(explanations: Mapping[str, Any]) -> dict[str, Any] | None:
    method_key = next((k for k in explanations if k.endswith("_shap")), None)
    if method_key is None:
        return None
    body = explanations[method_key]
    label0 = body["label0"]
    stats = label0.get("global_shap_statistics", {})
    importance = bar_chart(
        "Global importance: mean |SHAP|",
        [Bar(label=f, value=float(v)) for f, v in label0["global_shap_values"].items()],
    )
    pdps = [
        line_chart(
            f"Partial dependence: {p['feature_name']}",
            [float(v) for v in p["feature_values"]],
            [float(v) for v in p["model_predictions"][0]],
            x_label=str(p["feature_name"]),
            y_label="mean output",
        )
        for p in explanations.get("pdp", [])
    ]
    return {
        "method": method_key.removesuffix("_shap"),
        "output": body.get("output"),
        "rows": body.get("rows"),
        "num_samples": body.get("num_samples"),
        "baseline_size": body.get("baseline_size"),
        "expected_value": label0["expected_value"],
        "importance_chart": importance,
        "stats": stats,
        "local": [
            {
                **entry,
                "top": sorted(entry["shap_values"].items(), key=lambda kv: (-abs(kv[1]), kv[0]))[
                    :5
                ],
            }
            for entry in label0.get("local_shap_values", [])
        ],
        "pdp_charts": pdps,
    }


def _view(document: Mapping[str, Any], digest: str | None) -> dict[str, Any]:
    from markupsafe import Markup

    checks = _checks_by_metric(document)
    stages = []
    for key, title in (
        ("pre_training_bias_metrics", "Pre-training bias (data)"),
        ("post_training_bias_metrics", "Post-training bias (model)"),
    ):
        if document.get(key):
            stages.append(
                {
                    "title": title,
                    "section": document[key],
                    "facets": _stage_view(document[key], checks),
                }
            )
    explanation = (
        _explanation_view(document["explanations"]) if document.get("explanations") else None
    )

    def mark(view: Any) -> Any:
        """Mark the generated SVG strings safe (they escape their own text)."""
        if isinstance(view, str) and view.startswith("<svg "):
            return Markup(view)  # noqa: S704 - built by _svg with every text escaped
        if isinstance(view, dict):
            return {k: mark(v) for k, v in view.items()}
        if isinstance(view, list):
            return [mark(v) for v in view]
        return view

    return {
        "doc": document,
        "digest": digest,
        "stages": mark(stages),
        "explanation": mark(explanation),
        "checks": document.get("checks"),
        "review": document.get("review") or {},
    }


def render_report(
    document: Mapping[str, Any], *, digest: str | None = None, fragment: bool = False
) -> str:
    """Return the report as a full HTML page, or as a fragment for Jupyter."""
    env = _environment()
    template = env.get_template("fragment.html.j2" if fragment else "report.html.j2")
    return template.render(**_view(document, digest))


def render_bias_fragment(document: Mapping[str, Any]) -> str:
    """Return the bias part of a document as an HTML fragment (``BiasReport._repr_html_``)."""
    return render_report(document, fragment=True)
