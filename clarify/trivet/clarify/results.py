"""Frozen results of a bias analysis: values per facet group, reasons, counts, intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from trivet.clarify.config import (
    Bootstrap,
    Facet,
    Intersection,
    Label,
    MissingPolicy,
    Mode,
    Prediction,
    Stage,
    metric_key,
)
from trivet.errors import ValidationError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BiasReport", "FacetGroup", "MetricValue", "json_number"]


def json_number(value: float | None) -> float | str | None:
    """JSON-able number: +/-inf as "Infinity"/"-Infinity" (Clarify's analysis.json)."""
    if value is None:
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


@dataclass(frozen=True, kw_only=True)
class MetricValue:
    """One metric for one facet group (d) against the rest (a).

    Attributes:
        metric: the metric's short name (``"DPL"``).
        stage: ``"pre_training"`` or ``"post_training"``.
        group: the facet group's name.
        value: the value, or None when it is undefined (``reason`` says why). In
            ``clarify_compatible`` mode it may be +/-inf, as smclarify computes it.
        reason: why the value is None.
        interval: the bootstrap percentile interval, when one was asked for.
        undefined_resamples: how many bootstrap resamples left the metric undefined.
    """

    metric: str
    stage: Stage
    group: str
    value: float | None
    reason: str | None = None
    interval: tuple[float, float] | None = None
    undefined_resamples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        out: dict[str, Any] = {
            "name": self.metric,
            "stage": self.stage,
            "value": json_number(self.value),
        }
        if self.reason is not None:
            out["error"] = self.reason
        if self.interval is not None:
            out["interval"] = [json_number(self.interval[0]), json_number(self.interval[1])]
            out["undefined_resamples"] = self.undefined_resamples
        return out


@dataclass(frozen=True, kw_only=True)
class FacetGroup:
    """The sizes behind one comparison: facet group d against the rest a.

    ``*_positive`` count positive labels; ``*_predicted_positive`` positive predictions
    (None before training).
    """

    name: str
    rows_d: int
    rows_a: int
    label_positive_d: int
    label_positive_a: int
    predicted_positive_d: int | None = None
    predicted_positive_a: int | None = None


@dataclass(frozen=True, kw_only=True)
class BiasReport:
    """The bias metrics of one facet (or intersection), per group, with their context.

    Build one with :func:`trivet.clarify.pretraining_bias` or
    :func:`trivet.clarify.posttraining_bias`.

    Attributes:
        mode: ``"default"`` or ``"clarify_compatible"``.
        stages: the stages computed.
        label, facet, prediction, group_variable: the configuration.
        groups: the facet groups compared, with their sizes.
        values: every metric for every group.
        rows: the rows analysed (after dropping).
        missing: missing values per column read; ``dropped_rows`` how many were dropped.
        empty_groups: intersection cells with no rows (not compared).
        warnings: groups too small for a metric to mean much (see ``min_group_size``).
        bootstrap: the bootstrap settings, when intervals were computed.
        counts: the count table: ``{"axes": [...], "labels": {...}, "counts": [...]}``.
        missing_policy, label_distribution, divergence_smoothing, features,
        flip_neighbors: the options the metrics were computed with (what a drift
            monitor needs to compute the same metrics on new data).
    """

    mode: Mode
    stages: tuple[Stage, ...]
    label: Label
    facet: Facet | Intersection
    prediction: Prediction | None
    group_variable: str | None
    groups: tuple[FacetGroup, ...]
    values: tuple[MetricValue, ...]
    rows: int
    missing: Mapping[str, int]
    dropped_rows: int
    empty_groups: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    bootstrap: Bootstrap | None = None
    min_group_size: int = 30
    counts: Mapping[str, Any] = field(default_factory=dict, repr=False)
    missing_policy: MissingPolicy = "error"
    label_distribution: Literal["binary", "values"] = "binary"
    divergence_smoothing: float = 0.0
    features: tuple[str, ...] | None = None
    flip_neighbors: int = 5

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics computed, in order."""
        return tuple(dict.fromkeys(v.metric for v in self.values))

    def get(self, metric: str, group: str | None = None) -> MetricValue:
        """Return one metric's result; ``group`` may be left out when there is one group.

        Raises:
            ValidationError: the metric or the group is not in this report.
        """
        names = [g.name for g in self.groups]
        if group is None:
            if len(names) != 1:
                raise ValidationError(
                    f"This report compares {len(names)} groups; name one.",
                    hint=f"groups: {', '.join(repr(n) for n in names)}",
                )
            group = names[0]
        key = metric_key(metric)
        for v in self.values:
            if v.metric == key and v.group == group:
                return v
        if group not in names:
            raise ValidationError(
                f"No facet group {group!r} in this report.", hint=did_you_mean(group, names)
            )
        raise ValidationError(
            f"Metric {metric!r} was not computed in this report.",
            hint=did_you_mean(key, self.metrics),
        )

    def value(self, metric: str, group: str | None = None) -> float | None:
        """Return one metric's value (None when undefined); see :meth:`get`."""
        return self.get(metric, group).value

    def to_frame(self) -> pd.DataFrame:
        """Return one row per (group, metric): value, reason, interval bounds."""
        import pandas as pd

        rows = [
            {
                "group": v.group,
                "metric": v.metric,
                "stage": v.stage,
                "value": v.value,
                "lower": v.interval[0] if v.interval else None,
                "upper": v.interval[1] if v.interval else None,
                "reason": v.reason,
            }
            for v in self.values
        ]
        frame = pd.DataFrame(
            rows, columns=["group", "metric", "stage", "value", "lower", "upper", "reason"]
        )
        return frame.astype({"value": "float64", "lower": "float64", "upper": "float64"})

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict, grouped like Clarify's ``analysis.json`` facets.

        ``facets[<column(s)>]`` lists, per group, ``value_or_threshold`` and its
        ``metrics`` (``name``, ``description``-free ``value``, ``error`` when undefined,
        and ``interval`` when bootstrapped). Infinite values are the strings
        ``"Infinity"``/``"-Infinity"``, as in Clarify.
        """
        from trivet.clarify.metrics import ALL

        facet_key = ",".join(self.facet.columns)
        by_group: dict[str, list[dict[str, Any]]] = {g.name: [] for g in self.groups}
        for v in self.values:
            entry = v.to_dict()
            entry["description"] = ALL[v.metric].title
            by_group[v.group].append(entry)
        return {
            "version": 1,
            "mode": self.mode,
            "stages": list(self.stages),
            "label": self.label.column,
            "label_rule": self.label.describe(),
            "prediction": self.prediction.column if self.prediction else None,
            "group_variable": self.group_variable,
            "rows": self.rows,
            "missing": dict(self.missing),
            "dropped_rows": self.dropped_rows,
            "facets": {
                facet_key: [
                    {
                        "value_or_threshold": g.name,
                        "sizes": {
                            "rows_d": g.rows_d,
                            "rows_a": g.rows_a,
                            "label_positive_d": g.label_positive_d,
                            "label_positive_a": g.label_positive_a,
                            "predicted_positive_d": g.predicted_positive_d,
                            "predicted_positive_a": g.predicted_positive_a,
                        },
                        "metrics": sorted(by_group[g.name], key=lambda m: m["name"]),
                    }
                    for g in self.groups
                ]
            },
            "empty_groups": list(self.empty_groups),
            "warnings": list(self.warnings),
            "bootstrap": None
            if self.bootstrap is None
            else {
                "resamples": self.bootstrap.resamples,
                "level": self.bootstrap.level,
                "seed": self.bootstrap.seed,
            },
            "min_group_size": self.min_group_size,
            "counts": dict(self.counts),
        }

    def _repr_html_(self) -> str:
        """Show the report in Jupyter: configuration, a chart per metric, the table."""
        from trivet.clarify.report._document import build_document
        from trivet.clarify.report._html import render_bias_fragment

        return render_bias_fragment(build_document("bias", bias=self))
