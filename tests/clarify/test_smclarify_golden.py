"""clarify_compatible mode equals smclarify 0.5 on every metric, dataset and group.

The expected values in data/smclarify_golden.json were computed by smclarify itself, in
its own environment, by bench/clarify/smclarify_golden.py (which also stores the rows it
saw); nothing in this file or that file computes them with trivet.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from trivet.clarify import Facet, Label, Prediction
from trivet.clarify.bias import analyze
from trivet.clarify.config import Stage

GOLDEN = Path(__file__).parent / "data" / "smclarify_golden.json"
TOLERANCE = 1e-9


@cache
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())  # type: ignore[no-any-return]


def dataset(key: str) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {}
    for name, spec in golden()["datasets"][key].items():
        if "codes" in spec:
            columns[name] = [spec["values"][int(c)] for c in spec["codes"]]
        elif "floats" in spec:
            columns[name] = spec["floats"]
        else:
            columns[name] = spec["values_list"]
    return pd.DataFrame(columns)


def facet_of(spec: dict[str, Any]) -> Facet:
    if spec.get("threshold") is not None:
        return Facet(spec["column"], threshold=spec["threshold"], op=">")
    return Facet(spec["column"], values=spec.get("values"))


def label_of(spec: dict[str, Any], df: pd.DataFrame) -> Label:
    if spec.get("threshold") is not None:
        return Label(spec["column"], threshold=spec["threshold"], op=">")
    if spec.get("positive"):
        return Label(spec["column"], positive=tuple(spec["positive"]))
    return Label(spec["column"], positive=sorted(set(df[spec["column"]]))[0])


CASES = [case["name"] for case in golden()["cases"]]


@pytest.mark.parametrize("name", CASES)
def test_clarify_compatible_equals_smclarify(name: str) -> None:
    case = next(c for c in golden()["cases"] if c["name"] == name)
    df = dataset(case["dataset"])
    expected: dict[str, dict[str, Any]] = case["results"]
    metrics = sorted({m for group in expected.values() for m in group})
    stages: tuple[Stage, ...] = (
        ("pre_training", "post_training") if case.get("prediction") else ("pre_training",)
    )
    report = analyze(
        df,
        label=label_of(case["label"], df),
        facet=facet_of(case["facet"]),
        prediction=Prediction(case["prediction"]) if case.get("prediction") else None,
        group_variable=case.get("group_variable"),
        features=case.get("features") or None,
        metrics=metrics,
        mode="clarify_compatible",
        label_distribution=case["label_distribution"],
        stages=stages,
    )
    ours = [g.name for g in report.groups]
    if case["facet"].get("threshold") is not None:
        assert len(ours) == len(expected) == 1
        pairs = list(zip(ours, expected.values(), strict=True))
    else:
        assert sorted(ours) == sorted(expected)
        pairs = [(group, expected[group]) for group in ours]
    checked = 0
    for group, metrics_expected in pairs:
        for metric, want in metrics_expected.items():
            got = report.get(metric, group)
            where = f"{name} / {group} / {metric}"
            if want["value"] is None:
                assert got.value is None, (
                    f"{where}: smclarify failed ({want['error']}), we gave {got.value}"
                )
                assert got.reason
            elif want["value"] in ("inf", "-inf"):
                assert got.value == float(want["value"]), f"{where}: {got.value} != {want['value']}"
            else:
                assert got.value is not None, f"{where}: we gave None ({got.reason})"
                assert math.isclose(got.value, want["value"], rel_tol=0, abs_tol=TOLERANCE), (
                    f"{where}: {got.value!r} != smclarify's {want['value']!r}"
                )
            checked += 1
    assert checked == sum(len(m) for m in expected.values())


def test_golden_covers_every_metric_and_the_edge_cases() -> None:
    names = {m for c in golden()["cases"] for g in c["results"].values() for m in g}
    assert len(names) == 21
    values = [
        m["value"] for c in golden()["cases"] for g in c["results"].values() for m in g.values()
    ]
    assert "inf" in values and "-inf" in values  # x/0 conventions are exercised
    assert any(isinstance(v, float) and v < 0 for v in values)
    kl = [g["KL"]["value"] for c in golden()["cases"] for g in c["results"].values() if "KL" in g]
    assert any(isinstance(v, float) and v < 0 for v in kl)  # smclarify's negative KL
