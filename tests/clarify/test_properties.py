"""Hypothesis properties of the metrics: ranges, symmetry, invariances, DI against DPPL."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trivet.clarify import BiasReport, Facet, Label, Prediction
from trivet.clarify.bias import analyze
from trivet.clarify.config import Mode

COUNTED = [
    "CI", "DPL", "KL", "JS", "LP", "TVD", "KS",
    "DPPL", "DI", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "TE", "GE",
]  # fmt: skip
RANGES = {
    "CI": (-1, 1), "DPL": (-1, 1), "KL": (0, math.inf), "JS": (0, math.log(2)),
    "LP": (0, math.sqrt(2)), "TVD": (0, 1), "KS": (0, 1), "DPPL": (-1, 1), "DI": (0, math.inf),
    "RD": (-1, 1), "SD": (-1, 1), "DAR": (-1, 1), "DRR": (-1, 1), "AD": (-1, 1),
    "GE": (0, math.inf), "CDDL": (-1, 1), "CDDPL": (-1, 1),
}  # fmt: skip
NEGATED = ["CI", "DPL", "DPPL", "DCA", "DCR", "RD", "SD", "DAR", "DRR", "AD", "TE", "CDDL", "CDDPL"]
UNCHANGED = ["JS", "LP", "TVD", "KS", "GE"]

cell = st.integers(min_value=0, max_value=25)
group_cells = st.tuples(cell, cell, cell, cell)  # TP, FN, FP, TN


def frame(
    a: tuple[int, int, int, int], d: tuple[int, int, int, int], strata: list[int]
) -> pd.DataFrame:
    rows = []
    for value, (tp, fn, fp, tn) in (("m", a), ("f", d)):
        for y, yhat, n in ((1, 1, tp), (1, 0, fn), (0, 1, fp), (0, 0, tn)):
            rows += [(value, y, yhat)] * n
    df = pd.DataFrame(rows, columns=["sex", "y", "yhat"])
    df["stratum"] = [f"s{strata[i % len(strata)]}" for i in range(len(df))]
    return df


def valid(a: tuple[int, ...], d: tuple[int, ...]) -> bool:
    positives = a[0] + a[1] + d[0] + d[1]
    predicted = a[0] + a[2] + d[0] + d[2]
    total = sum(a) + sum(d)
    return sum(a) > 0 and sum(d) > 0 and 0 < positives < total and predicted > 0


def run(df: pd.DataFrame, d_value: str = "f", mode: Mode = "default") -> BiasReport:
    return analyze(
        df,
        label=Label("y", positive=1),
        facet=Facet("sex", values=d_value),
        prediction=Prediction("yhat"),
        group_variable="stratum",
        metrics=[*COUNTED, "CDDL", "CDDPL"],
        mode=mode,
        stages=("pre_training", "post_training"),
    )


def values(report: BiasReport) -> dict[str, float | None]:
    return {v.metric: v.value for v in report.values}


tables = st.tuples(group_cells, group_cells, st.lists(st.integers(0, 2), min_size=1, max_size=4))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(tables)
def test_ranges(data: tuple[tuple[int, ...], tuple[int, ...], list[int]]) -> None:
    a, d, strata = data
    assume(valid(a, d))
    for name, value in values(run(frame(a, d, strata))).items():  # type: ignore[arg-type]
        if value is None or name not in RANGES:
            continue
        low, high = RANGES[name]
        assert low - 1e-12 <= value <= high + 1e-12, (name, value)


@SETTINGS
@given(tables)
def test_swapping_the_groups(data: tuple[tuple[int, ...], tuple[int, ...], list[int]]) -> None:
    a, d, strata = data
    assume(valid(a, d))
    df = frame(a, d, strata)  # type: ignore[arg-type]
    forward, backward = values(run(df, "f")), values(run(df, "m"))
    for name in NEGATED:
        if forward[name] is None:
            assert backward[name] is None, name
        else:
            assert backward[name] == pytest.approx(-forward[name], abs=1e-12), name  # type: ignore[operator]
    for name in UNCHANGED:
        assert backward[name] == pytest.approx(forward[name], abs=1e-12), name
    di, di_swapped = forward["DI"], backward["DI"]
    if di is not None and di_swapped is not None and di > 0:
        assert di_swapped == pytest.approx(1 / di)


@SETTINGS
@given(tables, st.randoms(use_true_random=False))
def test_invariant_to_row_order_and_relabelling(
    data: tuple[tuple[int, ...], tuple[int, ...], list[int]], rnd: object
) -> None:
    a, d, strata = data
    assume(valid(a, d))
    df = frame(a, d, strata)  # type: ignore[arg-type]
    expected = values(run(df))
    order = np.random.default_rng(rnd.randrange(2**32)).permutation(len(df))  # type: ignore[attr-defined]
    assert values(run(df.iloc[order].reset_index(drop=True))) == expected
    relabelled = df.assign(
        sex=df["sex"].map({"f": "zz", "m": "aa"}),
        stratum=df["stratum"].map(lambda s: f"other-{s}"),
    )
    assert values(run(relabelled, "zz")) == expected


@SETTINGS
@given(tables)
def test_di_is_consistent_with_dppl(
    data: tuple[tuple[int, ...], tuple[int, ...], list[int]],
) -> None:
    a, d, strata = data
    assume(valid(a, d))
    report = run(frame(a, d, strata))  # type: ignore[arg-type]
    group = report.groups[0]
    assert group.predicted_positive_a is not None and group.predicted_positive_d is not None
    q_a = group.predicted_positive_a / group.rows_a
    q_d = group.predicted_positive_d / group.rows_d
    dppl, di = report.value("DPPL"), report.value("DI")
    assert dppl == pytest.approx(q_a - q_d, abs=1e-12)  # DPPL = q̂_a - q̂_d
    if q_a == 0:
        assert di is None
    else:
        assert di == pytest.approx(q_d / q_a)  # DI = q̂_d / q̂_a
        assert di == pytest.approx((q_a - dppl) / q_a)  # type: ignore[operator]


@SETTINGS
@given(tables)
def test_modes_agree_where_smclarify_is_right(
    data: tuple[tuple[int, ...], tuple[int, ...], list[int]],
) -> None:
    a, d, strata = data
    assume(valid(a, d))
    df = frame(a, d, strata)  # type: ignore[arg-type]
    default, compat = values(run(df)), values(run(df, mode="clarify_compatible"))
    for name in ("CI", "DPL", "DPPL", "AD", "GE"):
        assert default[name] == compat[name], name
    for name, value in default.items():
        if value is not None and compat[name] is not None and name not in ("CDDL", "CDDPL"):
            if not all(c > 0 for c in (*a, *d)):
                continue  # zero cells: the modes may legitimately differ
            assert value == pytest.approx(compat[name], abs=1e-12), name
