"""Compute smclarify 0.5's bias metrics on fixed datasets: the golden file for our tests.

Run it in a separate environment (smclarify 0.5 needs numpy<2 and pandas 2.0, and is
not a trivet dependency):

    uv venv /tmp/smclarify-env --python 3.11
    VIRTUAL_ENV=/tmp/smclarify-env uv pip install 'numpy<2' 'pandas==2.0.*' \
        'scikit-learn==1.3.*' pyfunctional
    VIRTUAL_ENV=/tmp/smclarify-env uv pip install --no-deps smclarify==0.5
    /tmp/smclarify-env/bin/python bench/clarify/smclarify_golden.py

It writes tests/clarify/data/smclarify_golden.json: every dataset (so the test reads
exactly the rows smclarify saw), its configuration, and every metric smclarify's
``bias_report`` returns for it (and, for a multicategory label, its KL/JS/LP/TVD/KS
called on the raw label values). The values come from smclarify itself, never from
trivet. This script imports no trivet code.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import smclarify
from smclarify.bias import report as sm
from smclarify.bias.metrics import pretraining as sm_pre

OUT = Path(__file__).resolve().parents[2] / "tests" / "clarify" / "data" / "smclarify_golden.json"
logging.disable(logging.CRITICAL)  # smclarify logs a traceback for every metric it cannot compute

BERKELEY = (  # department, admitted men, rejected men, admitted women, rejected women
    ("A", 512, 313, 89, 19),
    ("B", 353, 207, 17, 8),
    ("C", 120, 205, 202, 391),
    ("D", 138, 279, 131, 244),
    ("E", 53, 138, 94, 299),
    ("F", 22, 351, 24, 317),
)


def number(value: Any) -> Any:
    """JSON-able metric value: floats as is, infinities and NaN as strings."""
    if value is None:
        return None
    if isinstance(value, str):  # smclarify's own "Infinity"
        return {"Infinity": "inf", "-Infinity": "-inf"}[value]
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def small() -> pd.DataFrame:
    """24 hand-made rows: three facet values; z has no positive label or prediction."""
    rng = np.random.default_rng(7)
    group = ["x"] * 10 + ["y"] * 8 + ["z"] * 6
    outcome = (
        ["yes"] * 6
        + ["no"] * 4  # x: 6/10 positive
        + ["yes"] * 3
        + ["no"] * 5  # y: 3/8
        + ["no"] * 6  # z: none
    )
    pred = (
        ["yes", "yes", "yes", "yes", "no", "no", "yes", "no", "no", "no"]  # x
        + ["yes", "no", "no", "yes", "yes", "no", "no", "no"]  # y
        + ["no"] * 6  # z
    )
    stratum = ["s1", "s2"] * 12
    return pd.DataFrame(
        {
            "group": group,
            "outcome": outcome,
            "pred": pred,
            "stratum": stratum,
            "f1": rng.normal(size=24).round(6),
            "f2": rng.uniform(0, 10, size=24).round(6),
        }
    )


def lopsided() -> pd.DataFrame:
    """30 rows where only group "d" has positive predictions and "a" has no false
    positives: DI, DCA, DCR and TE hit smclarify's x/0 conventions."""
    rng = np.random.default_rng(11)
    group = ["a"] * 14 + ["d"] * 16
    outcome = ["yes"] * 5 + ["no"] * 9 + ["yes"] * 4 + ["no"] * 12
    pred = ["no"] * 14 + ["yes"] * 6 + ["no"] * 10
    return pd.DataFrame(
        {
            "group": group,
            "outcome": outcome,
            "pred": pred,
            "stratum": rng.choice(["p", "q", "r"], size=30),
            "f1": rng.normal(size=30).round(6),
        }
    )


def synthetic(n: int = 600) -> pd.DataFrame:
    """A seeded synthetic dataset: numeric age and score, categorical sex and grade."""
    rng = np.random.default_rng(2024)
    female = rng.random(n) < 0.4
    age = rng.uniform(18, 75, n).round(2)
    income = rng.normal(0, 1, n).round(6)
    debt = rng.uniform(0, 1, n).round(6)
    logit = 0.8 * income - 1.5 * (debt - 0.5) + 0.02 * (age - 45) - 0.6 * female
    score = (1 / (1 + np.exp(-logit))).round(6)
    model_score = (1 / (1 + np.exp(-(logit + rng.normal(0, 0.7, n))))).round(6)
    grade = np.select([score > 0.7, score > 0.5, score > 0.3], ["A", "B", "C"], "D")
    return pd.DataFrame(
        {
            "sex": np.where(female, "female", "male"),
            "age": age,
            "income": income,
            "debt": debt,
            "region": rng.choice(["north", "south", "east", "west"], size=n),
            "score": score,
            "model_score": model_score,
            "approved": np.where(rng.random(n) < score, "yes", "no"),
            "predicted": np.where(model_score > 0.5, "yes", "no"),
            "grade": grade,
            "predicted_grade": np.select(
                [model_score > 0.7, model_score > 0.5, model_score > 0.3], ["A", "B", "C"], "D"
            ),
        }
    )


def berkeley() -> pd.DataFrame:
    """The 4,526 applicants, with seeded predictions (the label flipped for ~15%)."""
    rows = []
    for dept, men_yes, men_no, women_yes, women_no in BERKELEY:
        for sex, admitted, count in (
            ("male", "yes", men_yes),
            ("male", "no", men_no),
            ("female", "yes", women_yes),
            ("female", "no", women_no),
        ):
            rows += [(dept, sex, admitted)] * count
    df = pd.DataFrame(rows, columns=["department", "sex", "admitted"])
    flip = np.random.default_rng(1973).random(len(df)) < 0.15
    yes = (df["admitted"] == "yes").to_numpy() ^ flip
    df["predicted"] = np.where(yes, "yes", "no")
    return df


def encode_column(series: pd.Series) -> dict[str, Any]:
    if series.dtype == object:
        values = sorted(set(series))
        if len(values) <= 10 and len(series) > 200:  # compact: one character per row
            return {"codes": "".join(str(values.index(v)) for v in series), "values": values}
        return {"values_list": list(series)}
    return {"floats": [float(v) for v in series]}


def run_case(
    name: str,
    df: pd.DataFrame,
    *,
    facet: dict[str, Any],
    label: dict[str, Any],
    prediction: str | None,
    group_variable: str | None,
    features: list[str],
) -> dict[str, Any]:
    """Run smclarify's bias_report (pre, and post when predictions are given)."""
    data = df[[facet["column"], label["column"], *([prediction] if prediction else []), *features]]
    data = data.copy()
    categorical = [c for c in (facet["column"], label["column"], prediction) if c is not None]
    for column in categorical:
        if data[column].dtype == object:
            data[column] = data[column].astype("category")
    facet_values = facet.get("values")
    if facet.get("threshold") is not None:
        facet_values = [facet["threshold"]]
    label_values = label.get("positive") or [label["threshold"]]
    group = df[group_variable] if group_variable else None
    results: dict[str, Any] = {}
    stages = [("pre_training", sm.StageType.PRE_TRAINING)]
    if prediction:
        stages.append(("post_training", sm.StageType.POST_TRAINING))
    for _, stage in stages:
        report = sm.bias_report(
            data,
            sm.FacetColumn(facet["column"], facet_values),
            sm.LabelColumn(label["column"], data[label["column"]], label_values),
            stage,
            sm.LabelColumn(prediction, data[prediction], label_values) if prediction else None,
            metrics=["all"],
            group_variable=group,
        )
        for facet_report in report:
            entry = results.setdefault(str(facet_report["value_or_threshold"]), {})
            for metric in facet_report["metrics"]:
                error = metric.get("error")
                entry[metric["name"]] = {
                    "value": None if error else number(metric["value"]),
                    "error": error,
                }
    return {
        "name": name,
        "facet": facet,
        "label": label,
        "prediction": prediction,
        "group_variable": group_variable,
        "features": features,
        "label_distribution": "binary",
        "results": results,
    }


def run_values_case(name: str, df: pd.DataFrame, *, facet: str, label: str) -> dict[str, Any]:
    """KL, JS, LP, TVD, KS over every label value (smclarify's functions, raw labels)."""
    results: dict[str, Any] = {}
    for value in sorted(set(df[facet])):
        index = df[facet] == value
        entry = results.setdefault(str(value), {})
        for fn in (sm_pre.KL, sm_pre.JS, sm_pre.LP, sm_pre.TVD, sm_pre.KS):
            try:
                entry[fn.__name__] = {"value": number(fn(df[label], index)), "error": None}
            except Exception as exc:  # smclarify raises for "no common label value"
                entry[fn.__name__] = {"value": None, "error": str(exc)}
    return {
        "name": name,
        "facet": {"column": facet},
        "label": {"column": label},
        "label_distribution": "values",
        "results": results,
    }


def main() -> None:
    datasets = {
        "small": small(),
        "lopsided": lopsided(),
        "synthetic": synthetic(),
        "berkeley": berkeley(),
    }
    yes = {"positive": ["yes"]}
    cases = [
        run_case(
            "small one-vs-all",
            datasets["small"],
            facet={"column": "group"},
            label={"column": "outcome", **yes},
            prediction="pred",
            group_variable="stratum",
            features=["f1", "f2"],
        ),
        run_case(
            "small set of values",
            datasets["small"],
            facet={"column": "group", "values": ["x", "z"]},
            label={"column": "outcome", **yes},
            prediction="pred",
            group_variable="stratum",
            features=["f1", "f2"],
        ),
        run_case(
            "lopsided",
            datasets["lopsided"],
            facet={"column": "group", "values": ["d"]},
            label={"column": "outcome", **yes},
            prediction="pred",
            group_variable="stratum",
            features=["f1"],
        ),
        run_case(
            "synthetic categorical facet",
            datasets["synthetic"],
            facet={"column": "sex", "values": ["female"]},
            label={"column": "approved", **yes},
            prediction="predicted",
            group_variable="region",
            features=["age", "income", "debt"],
        ),
        run_case(
            "synthetic threshold facet, threshold label",
            datasets["synthetic"],
            facet={"column": "age", "threshold": 40.0},
            label={"column": "score", "threshold": 0.5},
            prediction="model_score",
            group_variable="region",
            features=["income", "debt"],
        ),
        run_case(
            "synthetic multiclass label, positive set",
            datasets["synthetic"],
            facet={"column": "region"},
            label={"column": "grade", "positive": ["A", "B"]},
            prediction="predicted_grade",
            group_variable=None,
            features=["age", "income", "debt"],
        ),
        run_case(
            "berkeley",
            datasets["berkeley"],
            facet={"column": "sex", "values": ["female"]},
            label={"column": "admitted", **yes},
            prediction="predicted",
            group_variable="department",
            features=[],
        ),
        run_values_case(
            "synthetic label values", datasets["synthetic"], facet="region", label="grade"
        ),
        run_values_case("small label values", datasets["small"], facet="group", label="outcome"),
    ]
    for case, key in zip(
        cases,
        [
            "small",
            "small",
            "lopsided",
            "synthetic",
            "synthetic",
            "synthetic",
            "berkeley",
            "synthetic",
            "small",
        ],
        strict=True,
    ):
        case["dataset"] = key
    golden = {
        "generator": "bench/clarify/smclarify_golden.py",
        "smclarify": getattr(smclarify, "__version__", "0.5"),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "datasets": {
            key: {column: encode_column(df[column]) for column in df.columns}
            for key, df in datasets.items()
        },
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB, {len(cases)} cases)")


if __name__ == "__main__":
    main()
