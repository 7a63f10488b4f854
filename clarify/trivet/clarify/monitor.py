"""Bias drift monitoring: a baseline with allowed ranges, and ``monitor(batch, baseline)``.

A **baseline** is a stored fairness report (JSON and HTML, in ``<project>/reports/<name>``)
with a ``baseline`` section: the exact configuration its bias metrics were computed with
(label and prediction rules, facets, group variable, mode, options, bootstrap settings),
an **allowed range** for every monitored metric and facet group, and, when the report
has explanations, the global SHAP importance and the settings that produced it.

**Monitoring** computes the same metrics on a new batch — e.g. logged predictions joined
with the ground truth that arrived later — with bootstrap intervals, and compares them
with the allowed ranges:

    A live metric **violates** its allowed range ``[low, high]`` when its whole bootstrap
    confidence interval ``[l, u]`` lies outside the range: ``u < low`` or ``l > high``.
    An interval that overlaps the range, even at one point (``u == low``), is no
    violation, even when the point estimate lies outside: the batch is then consistent
    with an allowed value.

Default ranges come from the baseline's own intervals: the range of a metric is its
baseline interval ``[lo, hi]`` widened by ``margin × (hi − lo)`` on each side (margin 0.5:
the range is twice as wide as the interval). For a live batch as large as the baseline
and drawn from the same distribution, a violation then needs the two point estimates to
differ by about ``(2 + 2 × margin) × 1.96`` standard errors of one estimate (4.2 standard
errors of their difference at margin 0.5): false alarms are rare, and a shift of a few
standard errors is not reported. Give ``ranges`` (e.g. ``{"DI": (0.8, 1.25)}``) to
monitor against a policy rather than against the baseline.

**Explanation drift** compares the ranking of global SHAP importance on the batch with
the baseline's by :func:`ndcg`, and is flagged when it falls below a threshold (0.9 by
default): the model now leans on its features in a different order.

A monitoring run is stored as a report too (the live metrics, and a ``monitoring``
section with every comparison), with lineage ``baseline → run`` (``baseline_for``) and
an audit row ``clarify:monitor``; the baseline's audit row is ``clarify:baseline``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any, Literal

from trivet.clarify.config import Bootstrap, Facet, Intersection, Label, Prediction, metric_key
from trivet.errors import ValidationError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from trivet.clarify._explain import Explanation
    from trivet.clarify.report import Report, StoredReport
    from trivet.clarify.results import BiasReport
    from trivet.platform.session import Session

__all__ = [
    "AllowedRange",
    "Baseline",
    "ExplanationDrift",
    "MetricDrift",
    "MonitorResult",
    "RangesSpec",
    "create_baseline",
    "ndcg",
    "read_baseline",
    "run_monitor",
]

MetricStatus = Literal["ok", "violation", "undefined"]
"""A live metric's verdict: within (or overlapping) its range, a violation, or undefined."""

RangesSpec = Mapping[str, Any] | Iterable["AllowedRange"]
"""Allowed ranges as ``{"DI": (0.8, 1.25), "DPPL": (None, 0.1)}`` (every facet group;
None for no bound), or as :class:`AllowedRange` objects (for one facet or group)."""

DEFAULT_MARGIN = 0.5
DEFAULT_NDCG_THRESHOLD = 0.9


# -- NDCG ------------------------------------------------------------------------------------
def ndcg(relevance: Mapping[str, float], ranking: Sequence[str]) -> float:
    """Return the normalised discounted cumulative gain of ``ranking`` under ``relevance``.

    With the features of ``ranking`` at ranks ``i = 1 … n`` and ``rel(f)`` the
    relevance of feature ``f`` (for explanation drift: its mean |SHAP| in the baseline)::

        DCG  = Σ_i rel(ranking[i]) / log2(i + 1)
        IDCG = the DCG of the ideal ordering (features by relevance, highest first)
        NDCG = DCG / IDCG

    NDCG lies in (0, 1] (with positive relevance): 1 when the ranking orders the
    features as their relevance does (ties in any order), lower the more relevant
    features it puts late. When every relevance is 0 every ordering is ideal: 1.

    Args:
        relevance: a non-negative relevance per feature.
        ranking: the same features, most important first.

    Raises:
        ValidationError: the ranking is not an ordering of exactly the relevance's
            features, or a relevance is negative or not finite.

    >>> ndcg({"a": 3.0, "b": 2.0, "c": 1.0}, ["a", "b", "c"])
    1.0
    >>> round(ndcg({"a": 3.0, "b": 2.0, "c": 1.0}, ["b", "a", "c"]), 4)
    0.9225
    """
    ranked = list(ranking)
    if len(set(ranked)) != len(ranked):
        raise ValidationError("The ranking names a feature twice.", hint=f"ranking: {ranked!r}")
    missing = sorted(set(relevance) - set(ranked))
    extra = sorted(set(ranked) - set(relevance))
    if missing or extra:
        raise ValidationError(
            "NDCG compares two orderings of the same features; "
            + (f"the ranking lacks {missing!r}" if missing else f"it adds {extra!r}")
            + ".",
            hint="explain the batch with the baseline's features",
        )
    for feature, value in relevance.items():
        if not math.isfinite(value) or value < 0:
            raise ValidationError(f"The relevance of {feature!r} must be finite and >= 0.")

    def dcg(order: Sequence[str]) -> float:
        return sum(relevance[f] / math.log2(i + 1) for i, f in enumerate(order, start=1))

    ideal = dcg(sorted(relevance, key=lambda f: -relevance[f]))
    if ideal == 0.0:
        return 1.0
    return dcg(ranked) / ideal


# -- ranges ----------------------------------------------------------------------------------
def _bound(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{what} must be a number or None, not {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"{what} must be finite.", hint="use None for no bound")
    return number


def _metric_name(metric: Any) -> str:
    if not isinstance(metric, str) or not metric:
        raise ValidationError(f"A range names a metric, not {metric!r}.")
    return metric_key(metric)


def _fmt(x: float | None) -> str:
    if x is None:
        return "undefined"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


@dataclass(frozen=True)
class AllowedRange:
    """The values a metric may take on live data before it counts as drifted.

    Args:
        metric: the metric's short name (``"DI"``; case-insensitive).
        low: the lowest allowed value (None: no lower bound). Bounds are inclusive.
        high: the highest allowed value (None: no upper bound).
        facet: the facet it applies to, by its column(s) (``"sex"``, ``"sex,age"``);
            None: every facet.
        group: the facet group it applies to (``"female"``); None: every group.

    In a :class:`Baseline` every range names its facet and group, and also says
    where it came from (``source``: ``"given"`` or ``"derived"`` from the baseline's
    interval) and the baseline's value and interval.

    >>> AllowedRange("DI", low=0.8, high=1.25).describe()
    'DI in [0.8, 1.25]'
    """

    metric: str
    _: KW_ONLY
    low: float | None = None
    high: float | None = None
    facet: str | None = None
    group: str | None = None
    source: Literal["given", "derived"] = "given"
    baseline_value: float | None = None
    baseline_interval: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", _metric_name(self.metric))
        low = _bound(self.low, f"The lower bound of the {self.metric} range")
        high = _bound(self.high, f"The upper bound of the {self.metric} range")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if low is None and high is None:
            raise ValidationError(
                f"The {self.metric} range has no bound.",
                hint=f"e.g. AllowedRange({self.metric!r}, low=-0.1, high=0.1)",
            )
        if low is not None and high is not None and low > high:
            raise ValidationError(
                f"The {self.metric} range's lower bound {low:g} is above its upper bound {high:g}.",
                hint="swap them",
            )
        if self.source not in ("given", "derived"):
            raise ValidationError(f"A range's source is 'given' or 'derived', not {self.source!r}.")

    def range_text(self) -> str:
        """Return the range as text: ``[a, b]``, ``[a, inf)`` or ``(-inf, b]``."""
        low = "(-inf" if self.low is None else f"[{self.low:.4g}"
        high = "inf)" if self.high is None else f"{self.high:.4g}]"
        return f"{low}, {high}"

    def describe(self) -> str:
        """Return the range as text, e.g. ``DI for sex = 'female' in [0.8, 1.25]``."""
        where = ""
        if self.group is not None:
            where = f" for {self.facet or 'facet'} = {self.group!r}"
        elif self.facet is not None:
            where = f" for facet {self.facet!r}"
        return f"{self.metric}{where} in {self.range_text()}"

    def is_violated_by(self, interval: tuple[float, float]) -> bool:
        """Whether the interval ``(l, u)`` lies entirely outside: ``u < low`` or ``l > high``.

        >>> r = AllowedRange("DPPL", low=-0.05, high=0.05)
        >>> r.is_violated_by((0.02, 0.12)), r.is_violated_by((0.06, 0.12))
        (False, True)
        """
        lower, upper = interval
        return (self.high is not None and lower > self.high) or (
            self.low is not None and upper < self.low
        )

    def applies_to(self, facet: str, group: str, metric: str) -> bool:
        """Whether this (unresolved) range covers the metric for that facet group."""
        return (
            self.metric == metric
            and (self.facet is None or self.facet == facet)
            and (self.group is None or self.group == group)
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        from trivet.clarify.results import json_number

        return {
            "metric": self.metric,
            "facet": self.facet,
            "group": self.group,
            "low": self.low,
            "high": self.high,
            "source": self.source,
            "baseline_value": json_number(self.baseline_value),
            "baseline_interval": None
            if self.baseline_interval is None
            else [json_number(v) for v in self.baseline_interval],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AllowedRange:
        """Read a range written by :meth:`to_dict`."""
        interval = data.get("baseline_interval")
        return cls(
            str(data["metric"]),
            low=data.get("low"),
            high=data.get("high"),
            facet=data.get("facet"),
            group=data.get("group"),
            source=data.get("source", "given"),
            baseline_value=_from_json_number(data.get("baseline_value")),
            baseline_interval=None
            if interval is None
            else (_as_float(interval[0]), _as_float(interval[1])),
        )


def _from_json_number(value: Any) -> float | None:
    return None if value is None else _as_float(value)


def _as_float(value: Any) -> float:
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    return float(value)


def _parse_ranges(spec: RangesSpec | None) -> list[AllowedRange]:
    if spec is None:
        return []
    if isinstance(spec, AllowedRange):
        return [spec]
    if isinstance(spec, Mapping):
        out = []
        for metric, bounds in spec.items():
            if isinstance(bounds, AllowedRange):
                out.append(bounds)
            elif isinstance(bounds, Sequence) and not isinstance(bounds, str) and len(bounds) == 2:
                out.append(AllowedRange(str(metric), low=bounds[0], high=bounds[1]))
            else:
                raise ValidationError(
                    f"The range for {metric!r} must be a (low, high) pair, not {bounds!r}.",
                    hint=f'e.g. {{"{metric}": (-0.1, 0.1)}}; None for no bound',
                )
        return out
    ranges = list(spec)
    for item in ranges:
        if not isinstance(item, AllowedRange):
            raise ValidationError(
                f"Ranges must be AllowedRange objects, not {type(item).__name__}.",
                hint="e.g. {'DI': (0.8, 1.25)} or [AllowedRange('DI', low=0.8, high=1.25)]",
            )
    return ranges


# -- the configuration, as JSON --------------------------------------------------------------
def _json_value(value: Hashable, what: str) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ValidationError(
        f"{what} {value!r} ({type(value).__name__}) cannot be kept in a baseline.",
        hint="a baseline's rules hold numbers, strings and booleans; convert the column",
    )


def _values(values: tuple[Hashable, ...] | None, what: str) -> list[Any] | None:
    return None if values is None else [_json_value(v, what) for v in values]


def _rule(item: Label | Prediction | Facet, what: str) -> dict[str, Any]:
    values = item.values if isinstance(item, Facet) else item.positive
    return {
        "column": item.column,
        "values" if isinstance(item, Facet) else "positive": _values(values, what),
        "threshold": item.threshold,
        "op": item.op,
    }


def _config(bias: BiasReport) -> dict[str, Any]:
    """The configuration that reproduces ``bias`` on other data, as JSON."""
    facet = bias.facet
    facets = facet.facets if isinstance(facet, Intersection) else (facet,)
    return {
        "label": _rule(bias.label, f"The positive value of label {bias.label.column!r}"),
        "facets": [_rule(f, f"The value of facet {f.column!r}") for f in facets],
        "intersection": isinstance(facet, Intersection),
        "prediction": None
        if bias.prediction is None
        else _rule(bias.prediction, f"The positive value of prediction {bias.prediction.column!r}"),
        "group_variable": bias.group_variable,
        "stages": list(bias.stages),
        "metrics": list(bias.metrics),
        "mode": bias.mode,
        "missing": bias.missing_policy,
        "label_distribution": bias.label_distribution,
        "divergence_smoothing": bias.divergence_smoothing,
        "features": None if bias.features is None else list(bias.features),
        "flip_neighbors": bias.flip_neighbors,
        "min_group_size": bias.min_group_size,
        "bootstrap": None
        if bias.bootstrap is None
        else {
            "resamples": bias.bootstrap.resamples,
            "level": bias.bootstrap.level,
            "seed": bias.bootstrap.seed,
        },
    }


def _facet_key(config: Mapping[str, Any]) -> str:
    return ",".join(str(f["column"]) for f in config["facets"])


def _analysis_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`trivet.clarify.bias.analyze` from a stored config."""
    label = config["label"]
    facets = [
        Facet(f["column"], values=f["values"], threshold=f["threshold"], op=f["op"])
        for f in config["facets"]
    ]
    prediction = config["prediction"]
    return {
        "label": Label(
            label["column"],
            positive=label["positive"],
            threshold=label["threshold"],
            op=label["op"],
        ),
        "facet": Intersection(*facets) if config["intersection"] else facets[0],
        "prediction": None
        if prediction is None
        else Prediction(
            prediction["column"],
            positive=prediction["positive"],
            threshold=prediction["threshold"],
            op=prediction["op"],
        ),
        "group_variable": config["group_variable"],
        "stages": tuple(config["stages"]),
        "mode": config["mode"],
        "missing": config["missing"],
        "label_distribution": config["label_distribution"],
        "divergence_smoothing": config["divergence_smoothing"],
        "features": config["features"],
        "flip_neighbors": config["flip_neighbors"],
        "min_group_size": config["min_group_size"],
    }


def _stored_bootstrap(config: Mapping[str, Any]) -> Bootstrap | None:
    b = config.get("bootstrap")
    return None if b is None else Bootstrap(b["resamples"], level=b["level"], seed=b["seed"])


# -- the baseline ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Baseline:
    """A stored baseline: the report, how to recompute it, and the allowed ranges.

    Attributes:
        name: the report's name; it lives in ``<project>/reports/<name>``.
        digest: the sha256 of its JSON (what ``monitor`` and ``get_baseline`` take).
        html_digest: the sha256 of its HTML page.
        ranges: the allowed range of every monitored metric, per facet and group.
        unmonitored: the metrics that got no range, each with why (e.g. undefined in
            the baseline, or no interval to derive one from).
        analyses: the configuration of each bias analysis, as JSON (label and
            prediction rules, facets, group variable, mode, options, bootstrap).
        importance: the baseline's global importance (mean |SHAP| per feature), when
            the baseline has explanations.
        explain_options: the settings that explain a batch the way the baseline was.
        ndcg_threshold: explanation drift is flagged when NDCG falls below this.
        margin: how far derived ranges extend beyond the baseline's intervals, in
            interval widths per side.
        report: the stored report.
    """

    name: str
    digest: str
    html_digest: str
    ranges: tuple[AllowedRange, ...]
    unmonitored: tuple[str, ...]
    analyses: tuple[Mapping[str, Any], ...]
    importance: Mapping[str, float] | None
    explain_options: Mapping[str, Any] | None
    ndcg_threshold: float
    margin: float
    report: Report

    @classmethod
    def from_report(cls, report: Report, *, html_digest: str = "") -> Baseline:
        """Read a baseline from its stored report.

        Raises:
            ValidationError: the report is not a baseline.
        """
        section = report.document.get("baseline")
        if not isinstance(section, Mapping) or report.digest is None:
            raise ValidationError(
                f"The report {str(report.digest)[:12]}… is a fairness report, not a baseline.",
                hint="store one with session.clarify.baseline(name, bias=...) "
                "or `trivet clarify bias ... --baseline NAME`",
            )
        explanation = section.get("explanation")
        return cls(
            name=report.name,
            digest=report.digest,
            html_digest=html_digest,
            ranges=tuple(AllowedRange.from_dict(r) for r in section["ranges"]),
            unmonitored=tuple(section.get("unmonitored", ())),
            analyses=tuple(section["analyses"]),
            importance=None if explanation is None else dict(explanation["importance"]),
            explain_options=None if explanation is None else dict(explanation["options"]),
            ndcg_threshold=float(
                explanation["ndcg_threshold"] if explanation else DEFAULT_NDCG_THRESHOLD
            ),
            margin=float(section.get("margin", DEFAULT_MARGIN)),
            report=report,
        )

    def range_for(self, metric: str, group: str, facet: str | None = None) -> AllowedRange:
        """Return the allowed range of one metric for one facet group.

        Raises:
            ValidationError: the baseline does not monitor it.
        """
        key = _metric_name(metric)
        for r in self.ranges:
            if r.metric == key and r.group == group and (facet is None or r.facet == facet):
                return r
        raise ValidationError(
            f"The baseline does not monitor {key} for group {group!r}.",
            hint=did_you_mean(key, sorted({r.metric for r in self.ranges}))
            or f"groups: {sorted({str(r.group) for r in self.ranges})!r}",
        )

    def __str__(self) -> str:
        lines = [f"baseline {self.name!r} ({self.digest[:12]}): {len(self.ranges)} ranges"]
        lines += [f"  {r.describe()} ({r.source})" for r in self.ranges]
        if self.importance is not None:
            lines.append(f"  explanation drift flagged below NDCG {self.ndcg_threshold:g}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.report._repr_html_()


def _derive_ranges(
    reports: Sequence[BiasReport],
    given: list[AllowedRange],
    metrics: set[str] | None,
    margin: float,
) -> tuple[list[AllowedRange], list[str]]:
    ranges: list[AllowedRange] = []
    unmonitored: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    used = [False] * len(given)
    for bias in reports:
        facet = ",".join(bias.facet.columns)
        for v in bias.values:
            if metrics is not None and v.metric not in metrics:
                continue
            key = (facet, v.group, v.metric)
            if key in seen:
                raise ValidationError(
                    f"Two bias results compute {v.metric} for {facet} = {v.group!r}.",
                    hint="give each metric of a facet group once (e.g. one bias result per facet)",
                )
            seen.add(key)
            subject = f"{v.metric} for {facet} = {v.group!r}"
            match = [i for i, r in enumerate(given) if r.applies_to(facet, v.group, v.metric)]
            if match:
                rule = given[match[-1]]  # the most specific is listed last
                for i in match:
                    used[i] = True
                ranges.append(
                    AllowedRange(
                        v.metric,
                        low=rule.low,
                        high=rule.high,
                        facet=facet,
                        group=v.group,
                        source="given",
                        baseline_value=v.value,
                        baseline_interval=v.interval,
                    )
                )
                continue
            if v.interval is None:
                why = (
                    "the baseline has no bootstrap intervals"
                    if bias.bootstrap is None
                    else f"its baseline interval is undefined ({v.reason or 'every resample'})"
                )
                unmonitored.append(f"{subject}: {why}; give a range to monitor it")
                continue
            lower, upper = v.interval
            if not (math.isfinite(lower) and math.isfinite(upper)):
                unmonitored.append(
                    f"{subject}: its baseline interval [{_fmt(lower)}, {_fmt(upper)}] is not "
                    "finite; give a range to monitor it"
                )
                continue
            width = upper - lower
            ranges.append(
                AllowedRange(
                    v.metric,
                    low=lower - margin * width,
                    high=upper + margin * width,
                    facet=facet,
                    group=v.group,
                    source="derived",
                    baseline_value=v.value,
                    baseline_interval=v.interval,
                )
            )
    for i, r in enumerate(given):
        if not used[i]:
            known = sorted({m for _, _, m in seen})
            raise ValidationError(
                f"The range {r.describe()!r} matches no metric of the baseline.",
                hint=did_you_mean(r.metric, known) or f"the baseline computes {', '.join(known)}",
            )
    return ranges, unmonitored


def _explain_options(explanation: Explanation) -> dict[str, Any]:
    return {
        "explainer": explanation.method,
        "features": list(explanation.features),
        "sample": explanation.rows,
        "num_samples": explanation.num_samples,
        "baseline_size": explanation.baseline_size,
        "seed": explanation.seed,
    }


def _resolve_context(
    session: Session, data_digest: str | None, model_version: str | None
) -> tuple[str | None, str | None]:
    from trivet.clarify.report._store import model_version_path

    data = None if data_digest is None else session.artifacts.describe(data_digest).digest
    model_path = None
    if model_version is not None:
        model_path = model_version_path(session, model_version)
        session.require("model:describe", model_path)
    return data, model_path


def create_baseline(
    session: Session,
    name: str,
    *,
    bias: BiasReport | Sequence[BiasReport],
    explanations: Explanation | None = None,
    ranges: RangesSpec | None = None,
    margin: float = DEFAULT_MARGIN,
    metrics: Iterable[str] | None = None,
    ndcg_threshold: float = DEFAULT_NDCG_THRESHOLD,
    data_digest: str | None = None,
    model_version: str | None = None,
) -> Baseline:
    """Store a baseline (see :meth:`trivet.clarify.Clarify.baseline`)."""
    from trivet.clarify._explain import Explanation
    from trivet.clarify.report import Report
    from trivet.clarify.report._document import build_document
    from trivet.clarify.report._store import _now, report_folder, store_report
    from trivet.clarify.results import BiasReport as Bias

    folder = report_folder(session, name)
    session.require("clarify:run", folder)
    reports = [bias] if isinstance(bias, Bias) else list(bias)
    if not reports or not all(isinstance(b, Bias) for b in reports):
        raise ValidationError(
            "A baseline needs bias results.",
            hint="pass bias=session.clarify.bias(df, ..., bootstrap=1000)",
        )
    if explanations is not None and not isinstance(explanations, Explanation):
        raise ValidationError(
            f"explanations must be an Explanation, not {type(explanations).__name__}."
        )
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ValidationError(f"margin must be a number >= 0, not {margin!r}.")
    if (
        isinstance(ndcg_threshold, bool)
        or not isinstance(ndcg_threshold, (int, float))
        or not 0.0 <= ndcg_threshold <= 1.0
    ):
        raise ValidationError(
            f"ndcg_threshold must lie in [0, 1], not {ndcg_threshold!r}.", hint="e.g. 0.9"
        )
    chosen = None if metrics is None else {_metric_name(m) for m in metrics}
    computed = {v.metric for b in reports for v in b.values}
    for m in sorted((chosen or set()) - computed):
        raise ValidationError(
            f"metrics names {m}, which the bias results do not hold.",
            hint=did_you_mean(m, sorted(computed)) or f"they hold {', '.join(sorted(computed))}",
        )
    resolved, unmonitored = _derive_ranges(reports, _parse_ranges(ranges), chosen, float(margin))
    if not resolved:
        raise ValidationError(
            "The baseline would monitor nothing: no metric has a range.",
            hint="compute the bias with bootstrap=1000 (ranges derive from its intervals) "
            "or give ranges={'DI': (0.8, 1.25), ...}",
        )
    data, model_path = _resolve_context(session, data_digest, model_version)
    document = build_document(
        name,
        bias=reports,
        explanations=explanations,
        created_at=_now(),
        created_by=session.principal.name,
        data_digest=data,
        model_version=model_path,
    )
    from trivet.clarify.metrics import ALL

    monitored = {(r.facet, r.metric) for r in resolved}
    analyses = []
    for b in reports:
        config = _config(b)
        facet = _facet_key(config)
        config["metrics"] = [m for m in config["metrics"] if (facet, m) in monitored]
        if not config["metrics"]:
            continue
        # compute only the stages the monitored metrics belong to: a batch of labels
        # alone can then be monitored on pre-training metrics
        stages = {ALL[m].stage for m in config["metrics"]}
        config["stages"] = [s for s in config["stages"] if s in stages]
        if "post_training" not in stages:
            config["prediction"] = None
        analyses.append(config)
    document["baseline"] = {
        "analyses": analyses,
        "margin": float(margin),
        "ranges": [r.to_dict() for r in resolved],
        "unmonitored": unmonitored,
        "explanation": None
        if explanations is None
        else {
            "importance": {f.feature: f.mean_abs for f in explanations.importance},
            "options": _explain_options(explanations),
            "ndcg_threshold": float(ndcg_threshold),
        },
    }
    stored = store_report(
        session,
        name,
        document,
        folder=folder,
        model_path=model_path,
        action="clarify:baseline",
        detail={"ranges": len(resolved)},
    )
    report = Report(document=stored.report.document, digest=stored.digest)
    return Baseline.from_report(report, html_digest=stored.html_digest)


def read_baseline(session: Session, digest: str) -> Baseline:
    """Return a stored baseline; needs ``clarify:read_report`` on its folder."""
    from trivet.clarify.report._store import read_report

    report = read_report(session, digest)
    return Baseline.from_report(report, html_digest=_html_digest(session, str(report.digest)))


def _html_digest(session: Session, digest: str) -> str:
    """The digest of the page stored with a report (read access was checked)."""
    import sqlalchemy as sa

    from trivet.platform.catalog.schema import lineage_edges

    with session.catalog.read() as conn:
        found = conn.execute(
            sa.select(lineage_edges.c.dst_id).where(
                lineage_edges.c.src_kind == "report",
                lineage_edges.c.src_id == digest,
                lineage_edges.c.relation == "rendered_as",
                lineage_edges.c.dst_kind == "artifact",
            )
        ).first()
    return "" if found is None else str(found.dst_id)


# -- monitoring ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MetricDrift:
    """One monitored metric for one facet group on the batch, against its allowed range.

    Attributes:
        range: the allowed range (with the baseline's value and interval).
        value: the live value (None when undefined).
        interval: the live bootstrap interval (None when undefined).
        status: ``"violation"`` when the interval lies entirely outside the range,
            ``"undefined"`` when there is no live interval, else ``"ok"``.
        reason: a sentence naming the metric, the group, the live value and interval,
            the range and the verdict.
    """

    range: AllowedRange
    value: float | None
    interval: tuple[float, float] | None
    status: MetricStatus
    reason: str

    @property
    def metric(self) -> str:
        """The metric."""
        return self.range.metric

    @property
    def group(self) -> str:
        """The facet group."""
        return str(self.range.group)

    @property
    def facet(self) -> str:
        """The facet, by its column(s)."""
        return str(self.range.facet)

    def __str__(self) -> str:
        return f"{self.status.upper()} {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        from trivet.clarify.results import json_number

        return {
            **self.range.to_dict(),
            "value": json_number(self.value),
            "interval": None
            if self.interval is None
            else [json_number(self.interval[0]), json_number(self.interval[1])],
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True, kw_only=True)
class ExplanationDrift:
    """The ranking of global SHAP importance on the batch, against the baseline's.

    Attributes:
        ndcg: :func:`ndcg` of the live ranking, with the baseline's mean |SHAP| as
            relevance.
        threshold: drift is flagged when ``ndcg < threshold``.
        baseline_ranking: the features by baseline importance, most important first.
        live_ranking: the features by live importance, most important first.
    """

    ndcg: float
    threshold: float
    baseline_ranking: tuple[str, ...]
    live_ranking: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        """Whether NDCG is below the threshold."""
        return self.ndcg < self.threshold

    @property
    def reason(self) -> str:
        """A sentence with the NDCG, the threshold and the verdict."""
        verdict = "below" if self.flagged else "at or above"
        return (
            f"NDCG of the live SHAP importance ranking = {self.ndcg:.4f}, {verdict} the "
            f"threshold {self.threshold:g} (baseline: {', '.join(self.baseline_ranking[:5])}; "
            f"live: {', '.join(self.live_ranking[:5])})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "ndcg": self.ndcg,
            "threshold": self.threshold,
            "flagged": self.flagged,
            "baseline_ranking": list(self.baseline_ranking),
            "live_ranking": list(self.live_ranking),
            "reason": self.reason,
        }


@dataclass(frozen=True, kw_only=True)
class MonitorResult:
    """A monitoring run: every monitored metric against its range, and explanation drift.

    Attributes:
        baseline: the baseline's digest.
        baseline_name: the baseline's name.
        results: one :class:`MetricDrift` per monitored metric and facet group.
        explanation_drift: the explanation drift, when it was checked.
        notes: what was not checked, and why.
        bias: the live bias results.
        explanations: the live explanation, when computed.
        document: the run's report document (``monitoring`` section included).
        stored: the stored run (None with ``store=False``).
    """

    baseline: str
    baseline_name: str
    results: tuple[MetricDrift, ...]
    explanation_drift: ExplanationDrift | None
    notes: tuple[str, ...]
    bias: tuple[BiasReport, ...]
    explanations: Explanation | None
    document: Mapping[str, Any]
    stored: StoredReport | None

    @property
    def violations(self) -> tuple[MetricDrift, ...]:
        """The metrics whose live interval lies entirely outside their range."""
        return tuple(r for r in self.results if r.status == "violation")

    @property
    def undefined(self) -> tuple[MetricDrift, ...]:
        """The metrics with no live interval (not checked)."""
        return tuple(r for r in self.results if r.status == "undefined")

    @property
    def passed(self) -> bool:
        """Whether no metric violated its range and explanation drift is not flagged."""
        drifted = self.explanation_drift is not None and self.explanation_drift.flagged
        return not self.violations and not drifted

    @property
    def digest(self) -> str | None:
        """The stored run's digest (None when not stored)."""
        return None if self.stored is None else self.stored.digest

    def __str__(self) -> str:
        drift = self.explanation_drift
        count = len(self.violations) + (1 if drift is not None and drift.flagged else 0)
        head = "no violation" if self.passed else f"{count} violation{'s' * (count != 1)}"
        lines = [f"{head} against baseline {self.baseline_name!r} ({self.baseline[:12]})"]
        lines += [f"  {r}" for r in self.results]
        if drift is not None:
            lines.append(f"  {'VIOLATION' if drift.flagged else 'OK'} {drift.reason}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the ``monitoring`` section of the run's document."""
        return dict(self.document["monitoring"])

    def _repr_html_(self) -> str:
        from trivet.clarify.report._html import render_report

        return render_report(self.document, digest=self.digest, fragment=True)


def _judge(
    r: AllowedRange,
    value: float | None,
    interval: tuple[float, float] | None,
    level: float,
    why_undefined: str | None,
) -> MetricDrift:
    subject = f"{r.metric} for {r.facet} = {r.group!r}"
    allowed = f"the allowed range {r.range_text()}"
    if interval is None:
        return MetricDrift(
            range=r,
            value=value,
            interval=None,
            status="undefined",
            reason=f"{subject} has no live interval ({why_undefined or 'undefined'}): not checked",
        )
    text = (
        f"{subject} = {_fmt(value)}, {level:.0%} interval [{_fmt(interval[0])}, "
        f"{_fmt(interval[1])}],"
    )
    if r.is_violated_by(interval):
        side = "above" if r.high is not None and interval[0] > r.high else "below"
        return MetricDrift(
            range=r,
            value=value,
            interval=interval,
            status="violation",
            reason=f"{text} lies entirely {side} {allowed}",
        )
    where = (
        "within"
        if (r.low is None or interval[0] >= r.low) and (r.high is None or interval[1] <= r.high)
        else "overlapping"
    )
    return MetricDrift(
        range=r, value=value, interval=interval, status="ok", reason=f"{text} is {where} {allowed}"
    )


def _batch_explanation(
    model: Any, explanations: Explanation | None, batch: pd.DataFrame, options: Mapping[str, Any]
) -> Explanation:
    from trivet.clarify._explain import Explanation, explain

    if explanations is not None:
        if not isinstance(explanations, Explanation):
            raise ValidationError(
                f"explanations must be an Explanation, not {type(explanations).__name__}."
            )
        return explanations
    return explain(
        model,
        batch,
        features=options["features"],
        explainer=options["explainer"],
        sample=options["sample"],
        num_samples=options["num_samples"],
        baseline_size=options["baseline_size"],
        seed=options["seed"],
        top_k=0,
    )


def run_monitor(
    session: Session,
    batch: pd.DataFrame,
    baseline: Baseline | str,
    *,
    model: Any = None,
    explanations: Explanation | None = None,
    bootstrap: Bootstrap | int | None = None,
    name: str | None = None,
    store: bool = True,
    data_digest: str | None = None,
    model_version: str | None = None,
) -> MonitorResult:
    """Monitor a batch against a baseline (see :meth:`trivet.clarify.Clarify.monitor`)."""
    from trivet.clarify.bias import _bootstrap_settings, analyze
    from trivet.clarify.report._document import build_document
    from trivet.clarify.report._store import _now, report_folder, store_report
    from trivet.platform.lineage import Node

    if isinstance(baseline, Baseline):
        # re-read: the stored baseline is the authority, and reading it checks access
        base = read_baseline(session, baseline.digest)
    elif isinstance(baseline, str):
        base = read_baseline(session, baseline)
    else:
        raise ValidationError(
            f"baseline must be a Baseline or its digest, not {type(baseline).__name__}.",
            hint="e.g. session.clarify.monitor(batch, baseline.digest)",
        )
    folder = report_folder(session, base.name if name is None else name)
    session.require("clarify:run", folder)
    if model is not None and explanations is not None:
        raise ValidationError(
            "Give model= (explained here the baseline's way) or explanations=, not both."
        )
    if (model is not None or explanations is not None) and base.importance is None:
        raise ValidationError(
            "The baseline has no explanations to compare the batch's with.",
            hint="store the baseline with explanations=session.clarify.explain(model, data)",
        )
    override = _bootstrap_settings(bootstrap)
    live: list[BiasReport] = []
    results: list[MetricDrift] = []
    for config in base.analyses:
        settings = override or _stored_bootstrap(config) or Bootstrap(1000)
        kwargs = _analysis_kwargs(config)
        bias = analyze(batch, metrics=config["metrics"], bootstrap=settings, **kwargs)
        live.append(bias)
        facet = _facet_key(config)
        groups = {g.name for g in bias.groups}
        for r in base.ranges:
            if r.facet != facet or r.metric not in config["metrics"]:
                continue
            if r.group not in groups:
                results.append(
                    _judge(r, None, None, settings.level, "the group has no rows in the batch")
                )
                continue
            v = bias.get(r.metric, r.group)
            why = v.reason
            if v.interval is None and v.undefined_resamples:
                why = f"every one of {v.undefined_resamples} resamples left it undefined"
            results.append(_judge(r, v.value, v.interval, settings.level, why))

    notes: list[str] = []
    drift: ExplanationDrift | None = None
    live_explanation: Explanation | None = None
    relevance = base.importance
    if relevance is not None and base.explain_options is not None:
        if model is None and explanations is None:
            notes.append(
                "explanation drift not checked: pass model= (or explanations=) to compare "
                "the SHAP importance ranking with the baseline's"
            )
        else:
            live_explanation = _batch_explanation(model, explanations, batch, base.explain_options)
            importance = {f.feature: f.mean_abs for f in live_explanation.importance}
            baseline_ranking = tuple(sorted(relevance, key=lambda f: (-relevance[f], f)))
            live_ranking = tuple(sorted(importance, key=lambda f: (-importance[f], f)))
            drift = ExplanationDrift(
                ndcg=ndcg(relevance, live_ranking),
                threshold=base.ndcg_threshold,
                baseline_ranking=baseline_ranking,
                live_ranking=live_ranking,
            )

    data, model_path = _resolve_context(session, data_digest, model_version)
    run_name = base.name if name is None else name
    document = build_document(
        run_name,
        bias=live,
        explanations=live_explanation,
        created_at=_now(),
        created_by=session.principal.name,
        data_digest=data,
        model_version=model_path,
    )
    violations = sum(r.status == "violation" for r in results) + int(
        drift is not None and drift.flagged
    )
    document["monitoring"] = {
        "baseline": base.digest,
        "baseline_name": base.name,
        "passed": violations == 0,
        "violations": violations,
        "results": [r.to_dict() for r in results],
        "explanation_drift": None if drift is None else drift.to_dict(),
        "notes": notes,
    }
    stored = None
    if store:
        stored = store_report(
            session,
            run_name,
            document,
            folder=folder,
            model_path=model_path,
            action="clarify:monitor",
            sources=[(Node(kind="report", id=base.digest), "baseline_for")],
            detail={"baseline": base.digest, "violations": violations},
        )
    return MonitorResult(
        baseline=base.digest,
        baseline_name=base.name,
        results=tuple(results),
        explanation_drift=drift,
        notes=tuple(notes),
        bias=tuple(live),
        explanations=live_explanation,
        document=document,
        stored=stored,
    )
