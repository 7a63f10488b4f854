"""Fairness definitions, and which of them conflict on a given report.

The definitions group bias metrics by the criterion they measure (Barocas, Hardt and
Narayanan, *Fairness and Machine Learning*, ch. 3):

- independence — ``demographic_parity``: equal selection rates (DPPL, DI);
- separation — ``equalized_odds`` (RD, SD) and its half ``equal_opportunity`` (RD);
- sufficiency — ``predictive_parity``: equal precision of positive and negative
  predictions (DAR, DRR), what a calibrated yes/no prediction gives;
- and two that belong to none: ``accuracy_parity`` (AD), ``treatment_equality`` (TE).

When the base rates (the share of positive labels) differ between groups, any two of
independence, separation and sufficiency cannot hold together for a model that is
better than chance and not perfect (Kleinberg, Mullainathan and Raghavan 2016;
Chouldechova 2017). Equal opportunity (recall only) can hold beside demographic or
predictive parity, but only with unequal false-positive rates: a ``tension`` rather
than an impossibility. :func:`review_section` computes, from a report document, whether
each definition holds per facet group and, for the chosen definition, shows the
conflicting ones side by side where the base rates differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trivet.errors import ValidationError, did_you_mean

__all__ = [
    "DEFINITIONS",
    "FairnessDefinition",
    "check_definition",
    "review_section",
]


@dataclass(frozen=True, kw_only=True)
class FairnessDefinition:
    """A fairness definition: its name, the metrics that measure it and what it means."""

    name: str
    title: str
    criterion: str
    metrics: tuple[str, ...]
    meaning: str


DEFINITIONS: Mapping[str, FairnessDefinition] = {
    d.name: d
    for d in (
        FairnessDefinition(
            name="demographic_parity",
            title="Demographic parity",
            criterion="independence",
            metrics=("DPPL", "DI"),
            meaning="every group is selected at the same rate, whatever its labels",
        ),
        FairnessDefinition(
            name="equal_opportunity",
            title="Equal opportunity",
            criterion="separation",
            metrics=("RD",),
            meaning="qualified members of every group are found at the same rate (recall)",
        ),
        FairnessDefinition(
            name="equalized_odds",
            title="Equalized odds",
            criterion="separation",
            metrics=("RD", "SD"),
            meaning="equal true-positive and false-positive rates across groups",
        ),
        FairnessDefinition(
            name="predictive_parity",
            title="Predictive parity (calibration)",
            criterion="sufficiency",
            metrics=("DAR", "DRR"),
            meaning="a positive (or negative) prediction is as often right for every group",
        ),
        FairnessDefinition(
            name="accuracy_parity",
            title="Accuracy parity",
            criterion="none",
            metrics=("AD",),
            meaning="the model is as accurate for every group",
        ),
        FairnessDefinition(
            name="treatment_equality",
            title="Treatment equality",
            criterion="none",
            metrics=("TE",),
            meaning="the ratio of false negatives to false positives is equal across groups",
        ),
    )
}
"""The fairness definitions a review can choose, by name."""

_WHY = {
    frozenset({"independence", "separation"}): (
        "with different base rates, equal selection rates and equal error rates can hold "
        "together only for a model whose predictions are independent of the label"
    ),
    frozenset({"independence", "sufficiency"}): (
        "with different base rates, equal selection rates and equally precise predictions "
        "cannot both hold (independence and sufficiency together imply equal base rates)"
    ),
    frozenset({"separation", "sufficiency"}): (
        "with different base rates, equal error rates and calibration (equal precision) "
        "cannot both hold unless the model is perfect (Chouldechova 2017; Kleinberg et al. "
        "2016)"
    ),
}

_TENSION = {
    "independence": (
        "with different base rates, equal selection rates and equal recall can hold "
        "together only if the false-positive rates differ between the groups"
    ),
    "sufficiency": (
        "with different base rates, equal recall and equal precision can hold together "
        "only if the false-positive rates differ (Chouldechova 2017: FPR = p/(1-p) · "
        "(1-PPV)/PPV · TPR)"
    ),
}


def _relation(a: FairnessDefinition, b: FairnessDefinition) -> tuple[str, str] | None:
    """Return (kind, why) when ``a`` and ``b`` cannot both hold under different base rates.

    ``impossible``: the two cannot both hold for a model better than chance and not
    perfect; ``tension``: they can, but only at a cost the text names.
    """
    if a.name == b.name:
        return None
    why = _WHY.get(frozenset({a.criterion, b.criterion}))
    partial = {a.name, b.name} & {"equal_opportunity"}
    if why is not None and not partial:
        return "impossible", why
    if partial:
        other = b if a.name == "equal_opportunity" else a
        if other.criterion in _TENSION:
            return "tension", _TENSION[other.criterion]
    return None


#: What each metric equals at parity.
_PARITY = {"DI": 1.0}
#: The default tolerance when no check bounds a metric: |value - parity| <= TOLERANCE,
#: and DI in [0.8, 1.25] (the four-fifths rule, both ways).
TOLERANCE = 0.1
DI_RANGE = (0.8, 1.25)
#: Base rates differ when |q_a - q_d| exceeds this (or, with intervals, when DPL's
#: interval excludes 0).
BASE_RATE_TOLERANCE = 0.02


def check_definition(name: object) -> FairnessDefinition:
    """Return the definition called ``name``, or raise ValidationError naming the known ones."""
    if not isinstance(name, str) or name not in DEFINITIONS:
        raise ValidationError(
            f"Unknown fairness definition {name!r}.",
            hint=did_you_mean(str(name), DEFINITIONS) or "known: " + ", ".join(DEFINITIONS),
        )
    return DEFINITIONS[name]


def _entries(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Return (facet, group, {metric: entry}) over both stages, merged per group."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for stage in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        section = document.get(stage) or {}
        for facet, groups in (section.get("facets") or {}).items():
            for group in groups:
                slot = merged.setdefault((facet, str(group["value_or_threshold"])), {})
                slot.setdefault("_sizes", group.get("sizes") or {})
                for metric in group.get("metrics", []):
                    slot[metric["name"]] = metric
    return [(f, g, m) for (f, g), m in merged.items()]


def _check_verdicts(document: Mapping[str, Any]) -> dict[tuple[str, str], bool]:
    """Map (metric, group) to whether all its checks passed, from the checks section."""
    out: dict[tuple[str, str], bool] = {}
    checks = document.get("checks") or {}
    for result in checks.get("results", []):
        key = (result["metric"], str(result["group"]))
        out[key] = out.get(key, True) and bool(result["passed"])
    return out


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if value == "Infinity":
        return float("inf")
    if value == "-Infinity":
        return float("-inf")
    return float(value)


def _metric_verdict(
    metric: str, group: str, entries: Mapping[str, Any], checked: Mapping[tuple[str, str], bool]
) -> dict[str, Any]:
    entry = entries.get(metric)
    value = _number(entry.get("value")) if entry else None
    if (metric, group) in checked:
        satisfied: bool | None = checked[(metric, group)]
        basis = "check"
    elif value is None:
        satisfied, basis = None, "undefined" if entry else "not computed"
    elif metric == "DI":
        satisfied, basis = DI_RANGE[0] <= value <= DI_RANGE[1], "tolerance"
    else:
        satisfied = abs(value - _PARITY.get(metric, 0.0)) <= TOLERANCE
        basis = "tolerance"
    return {
        "metric": metric,
        "value": entry.get("value") if entry else None,
        "satisfied": satisfied,
        "basis": basis,
    }


def _all_of(verdicts: Sequence[Mapping[str, Any]]) -> bool | None:
    states = [v["satisfied"] for v in verdicts]
    if any(s is False for s in states):
        return False
    if any(s is None for s in states):
        return None
    return True


def _base_rates(facet: str, group: str, entries: Mapping[str, Any]) -> dict[str, Any]:
    sizes = entries.get("_sizes") or {}
    rows_d, rows_a = sizes.get("rows_d") or 0, sizes.get("rows_a") or 0
    q_d = sizes.get("label_positive_d", 0) / rows_d if rows_d else None
    q_a = sizes.get("label_positive_a", 0) / rows_a if rows_a else None
    differ: bool | None = None
    basis = "sizes"
    dpl = entries.get("DPL") or {}
    if dpl.get("interval") is not None:
        lo, hi = (_number(x) for x in dpl["interval"])
        differ = not (lo is not None and hi is not None and lo <= 0.0 <= hi)
        basis = "DPL interval"
    elif q_d is not None and q_a is not None:
        differ = abs(q_a - q_d) > BASE_RATE_TOLERANCE
    return {
        "facet": facet,
        "group": group,
        "base_rate_d": q_d,
        "base_rate_a": q_a,
        "differ": differ,
        "basis": basis,
    }


def review_section(
    document: Mapping[str, Any],
    *,
    definition: str | None = None,
    rationale: str | None = None,
    tradeoffs: str | None = None,
    status: str = "unreviewed",
    sign_off: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the ``review`` section for a report document.

    ``definitions`` says, per definition and facet group, whether it holds (True, False,
    or None when a metric is missing or undefined), judged by the report's checks where
    they bound a metric and by the default tolerance otherwise. ``conflicts`` lists, for
    the chosen definition, every definition it cannot hold together with, on the groups
    whose base rates differ, with both sets of metrics side by side and whether their
    verdicts disagree.
    """
    chosen = check_definition(definition) if definition is not None else None
    entries = _entries(document)
    checked = _check_verdicts(document)
    base_rates = [_base_rates(f, g, e) for f, g, e in entries]
    verdicts: dict[str, list[dict[str, Any]]] = {}
    for name, d in DEFINITIONS.items():
        per_group = []
        for facet, group, found in entries:
            metrics = [_metric_verdict(m, group, found, checked) for m in d.metrics]
            per_group.append(
                {"facet": facet, "group": group, "holds": _all_of(metrics), "metrics": metrics}
            )
        verdicts[name] = per_group
    conflicts: list[dict[str, Any]] = []
    if chosen is not None:
        for other in DEFINITIONS.values():
            relation = _relation(chosen, other)
            if relation is None:
                continue
            kind, why = relation
            groups = []
            for i, rates in enumerate(base_rates):
                if not rates["differ"]:
                    continue
                mine, theirs = verdicts[chosen.name][i], verdicts[other.name][i]
                known = mine["holds"] is not None and theirs["holds"] is not None
                groups.append(
                    {
                        "facet": rates["facet"],
                        "group": rates["group"],
                        "base_rate_d": rates["base_rate_d"],
                        "base_rate_a": rates["base_rate_a"],
                        "chosen": mine["metrics"],
                        "other": theirs["metrics"],
                        "chosen_holds": mine["holds"],
                        "other_holds": theirs["holds"],
                        "disagree": known and mine["holds"] != theirs["holds"],
                    }
                )
            if groups:
                conflicts.append(
                    {
                        "definition": other.name,
                        "title": other.title,
                        "criterion": other.criterion,
                        "kind": kind,
                        "why": why,
                        "groups": groups,
                    }
                )
    return {
        "status": status,
        "definition": chosen.name if chosen else None,
        "definition_title": chosen.title if chosen else None,
        "definition_metrics": list(chosen.metrics) if chosen else [],
        "definition_meaning": chosen.meaning if chosen else None,
        "rationale": rationale,
        "tradeoffs": tradeoffs,
        "tolerance": {
            "difference": TOLERANCE,
            "DI": list(DI_RANGE),
            "base_rate": BASE_RATE_TOLERANCE,
        },
        "base_rates": base_rates,
        "definitions": [
            {
                "name": d.name,
                "title": d.title,
                "criterion": d.criterion,
                "metrics": list(d.metrics),
                "meaning": d.meaning,
                "groups": verdicts[d.name],
            }
            for d in DEFINITIONS.values()
        ],
        "conflicts": conflicts,
        "sign_off": dict(sign_off) if sign_off is not None else None,
    }
