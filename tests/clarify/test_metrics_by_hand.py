"""Every metric against a value computed by hand from the counts (formulas cited).

The tables: facet a = "m" with TP=20, FN=10, FP=5, TN=15 (n_a = 50, 30 positive labels,
25 positive predictions); facet d = "f" with TP=6, FN=9, FP=3, TN=12 (n_d = 30, 15
positive labels, 9 positive predictions). Formulas: SageMaker Clarify documentation,
"Pre-training bias metrics" and "Post-training data and model bias metrics".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from trivet.clarify import (
    Facet,
    Intersection,
    Label,
    Prediction,
    posttraining_bias,
    pretraining_bias,
)
from trivet.clarify.config import Mode

# (label, predicted) -> count; label/predicted are 1 for positive, 0 for negative.
Cells = Mapping[tuple[int, int], int]


def rows_from_counts(groups: Mapping[str, Cells], *, stratum: str | None = None) -> pd.DataFrame:
    """Expand {facet value: {(label, predicted): count}} into one row per example."""
    records = []
    for value, cells in groups.items():
        for (label, predicted), count in cells.items():
            records += [{"sex": value, "y": label, "yhat": predicted, "stratum": stratum}] * count
    return pd.DataFrame.from_records(records, columns=["sex", "y", "yhat", "stratum"])


def confusion(tp: int, fn: int, fp: int, tn: int) -> dict[tuple[int, int], int]:
    """A group's cells from its confusion counts."""
    return {(1, 1): tp, (1, 0): fn, (0, 1): fp, (0, 0): tn}


A_CELLS = confusion(tp=20, fn=10, fp=5, tn=15)
D_CELLS = confusion(tp=6, fn=9, fp=3, tn=12)
LABEL = Label("y", positive=1)
FACET = Facet("sex", values="f")
PRED = Prediction("yhat")


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return rows_from_counts({"m": A_CELLS, "f": D_CELLS}).drop(columns="stratum")


def by_hand_pre() -> dict[str, float]:
    n_a, n_d = 50, 30
    q_a, q_d = 30 / 50, 15 / 30  # positive label rates
    p_a, p_d = [0.4, 0.6], [0.5, 0.5]  # label distributions (negative, positive)
    m = [(x + y) / 2 for x, y in zip(p_a, p_d, strict=True)]
    return {
        "CI": (n_a - n_d) / (n_a + n_d),  # (n_a - n_d)/(n_a + n_d)
        "DPL": q_a - q_d,  # q_a - q_d
        "KL": sum(x * math.log(x / y) for x, y in zip(p_a, p_d, strict=True)),
        "JS": 0.5 * sum(x * math.log(x / z) for x, z in zip(p_a, m, strict=True))
        + 0.5 * sum(y * math.log(y / z) for y, z in zip(p_d, m, strict=True)),
        "LP": math.sqrt((0.4 - 0.5) ** 2 + (0.6 - 0.5) ** 2),  # L2 of P_a - P_d
        "TVD": 0.5 * (abs(0.4 - 0.5) + abs(0.6 - 0.5)),
        "KS": max(abs(0.4 - 0.5), abs(0.6 - 0.5)),
    }


def by_hand_post() -> dict[str, float]:
    # a: TP=20 FN=10 FP=5 TN=15; d: TP=6 FN=9 FP=3 TN=12
    benefit_counts = {0: 10 + 9, 1: 20 + 15 + 6 + 12, 2: 5 + 3}  # b = yhat - y + 1
    n = 80
    mean_b = (benefit_counts[1] * 1 + benefit_counts[2] * 2) / n
    ge = sum(c * ((b / mean_b) ** 2 - 1) for b, c in benefit_counts.items()) / (n * 2 * 1)
    return {
        "DPPL": 25 / 50 - 9 / 30,  # q̂_a - q̂_d
        "DI": (9 / 30) / (25 / 50),  # q̂_d / q̂_a
        "DCA": 30 / 25 - 15 / 9,  # n_a(1)/n̂_a(1) - n_d(1)/n̂_d(1)
        "DCR": 15 / 21 - 20 / 25,  # n_d(0)/n̂_d(0) - n_a(0)/n̂_a(0)
        "RD": 20 / 30 - 6 / 15,  # TP_a/(TP_a+FN_a) - TP_d/(TP_d+FN_d)
        "SD": 12 / 15 - 15 / 20,  # TN_d/(TN_d+FP_d) - TN_a/(TN_a+FP_a)
        "DAR": 20 / 25 - 6 / 9,  # TP_a/n̂_a(1) - TP_d/n̂_d(1)
        "DRR": 12 / 21 - 15 / 25,  # TN_d/n̂_d(0) - TN_a/n̂_a(0)
        "AD": 35 / 50 - 18 / 30,  # ACC_a - ACC_d
        "TE": 9 / 3 - 10 / 5,  # FN_d/FP_d - FN_a/FP_a
        "GE": ge,  # alpha = 2
    }


@pytest.mark.parametrize("mode", ["default", "clarify_compatible"])
def test_pretraining_by_hand(df: pd.DataFrame, mode: Mode) -> None:
    report = pretraining_bias(df, label=LABEL, facet=FACET, mode=mode)
    for metric, expected in by_hand_pre().items():
        assert report.value(metric) == pytest.approx(expected, abs=1e-12), metric
    cddl = report.get("CDDL")
    assert cddl.value is None and cddl.reason and "group variable" in cddl.reason


@pytest.mark.parametrize("mode", ["default", "clarify_compatible"])
def test_posttraining_by_hand(df: pd.DataFrame, mode: Mode) -> None:
    report = posttraining_bias(
        df, label=LABEL, facet=FACET, prediction=PRED, mode=mode, metrics=list(by_hand_post())
    )
    for metric, expected in by_hand_post().items():
        assert report.value(metric) == pytest.approx(expected, abs=1e-12), metric
    group = report.groups[0]
    assert (group.rows_d, group.rows_a) == (30, 50)
    assert (group.label_positive_d, group.label_positive_a) == (15, 30)
    assert (group.predicted_positive_d, group.predicted_positive_a) == (9, 25)


def cdd_rows() -> pd.DataFrame:
    s1 = rows_from_counts(
        {"m": {(1, 0): 10, (0, 0): 10}, "f": {(1, 0): 2, (0, 0): 8}}, stratum="s1"
    )
    s2 = rows_from_counts({"m": {(1, 0): 5, (0, 0): 5}, "f": {(1, 0): 6, (0, 0): 4}}, stratum="s2")
    s3 = rows_from_counts({"m": {(1, 0): 3}, "f": {(1, 0): 1}}, stratum="s3")  # no rejections
    return pd.concat([s1, s2, s3], ignore_index=True)


def test_cddl_by_hand_in_both_modes() -> None:
    # DD_i = n_d(0)/n(0) - n_d(1)/n(1) in stratum i; CDD = sum n_i DD_i / n.
    dd1 = 8 / 18 - 2 / 12
    dd2 = 4 / 9 - 6 / 11
    # s3 has no rejected rows: smclarify takes n_d(0)/n(0) = 0, so DD_3 = 0 - 1/4 ...
    dd3_compatible = 0 - 1 / 4
    compatible = (30 * dd1 + 20 * dd2 + 4 * dd3_compatible) / 54
    # ... while the default mode leaves the undefined stratum out of the average.
    default = (30 * dd1 + 20 * dd2) / 50
    df = cdd_rows()
    cases: tuple[tuple[Mode, float], ...] = (
        ("clarify_compatible", compatible),
        ("default", default),
    )
    for mode, expected in cases:
        report = pretraining_bias(
            df, label=LABEL, facet=FACET, group_variable="stratum", mode=mode, metrics=["CDDL"]
        )
        assert report.value("CDDL") == pytest.approx(expected, abs=1e-12), mode


def test_zero_denominators_per_mode() -> None:
    # d has no positive prediction and a has no false positive.
    df = rows_from_counts(
        {"m": confusion(tp=4, fn=2, fp=0, tn=6), "f": confusion(tp=0, fn=3, fp=0, tn=5)}
    )
    metrics = ["DI", "DCA", "DAR", "TE"]
    compat = posttraining_bias(
        df, label=LABEL, facet=FACET, prediction=PRED, mode="clarify_compatible", metrics=metrics
    )
    # c_d = n_d(1)/n̂_d(1) = 3/0 = +inf, so DCA = 4/4 - inf = -inf; precision_d = 0/0 = 0;
    # tau_a = FN_a/FP_a = 2/0 = inf and tau_d = 3/0 = inf: inf - inf is taken as 0.
    assert compat.value("DI") == 0.0  # (0/8) / (4/12)
    assert compat.value("DCA") == -math.inf
    assert compat.value("DAR") == pytest.approx(4 / 4 - 0.0)
    assert compat.value("TE") == 0.0
    default = posttraining_bias(
        df, label=LABEL, facet=FACET, prediction=PRED, mode="default", metrics=metrics
    )
    assert default.value("DI") == 0.0
    for metric in ("DCA", "DAR", "TE"):
        result = default.get(metric)
        assert result.value is None, metric
        assert result.reason and "facet d" in result.reason
    assert "false positives in facet a" in str(default.get("TE").reason)


def test_divergences_when_d_has_no_positive_label() -> None:
    # a: 6 positive of 10; d: 0 positive of 5.
    df = rows_from_counts({"m": {(1, 0): 6, (0, 0): 4}, "f": {(0, 0): 5}})
    metrics = ["KL", "JS", "LP", "TVD", "KS"]
    compat = pretraining_bias(
        df, label=LABEL, facet=FACET, mode="clarify_compatible", metrics=metrics
    )
    # smclarify keeps only the label values present in both groups: the negative one,
    # without renormalising: P_a = [0.4], P_d = [1.0].
    assert compat.value("KL") == pytest.approx(0.4 * math.log(0.4 / 1.0))  # negative!
    kl_compat = compat.value("KL")
    assert kl_compat is not None and kl_compat < 0
    assert compat.value("TVD") == pytest.approx(0.5 * 0.6)
    assert compat.value("LP") == pytest.approx(0.6)
    default = pretraining_bias(df, label=LABEL, facet=FACET, metrics=metrics)
    assert default.value("KL") is None and "infinite" in str(default.get("KL").reason)
    m = [(0.4 + 1.0) / 2, (0.6 + 0.0) / 2]
    js = 0.5 * (0.4 * math.log(0.4 / m[0]) + 0.6 * math.log(0.6 / m[1])) + 0.5 * (
        1.0 * math.log(1.0 / m[0])
    )
    assert default.value("JS") == pytest.approx(js)
    assert default.value("TVD") == pytest.approx(0.6)  # = |DPL|
    assert default.value("LP") == pytest.approx(0.6 * math.sqrt(2))
    assert default.value("KS") == pytest.approx(0.6)
    smoothed = pretraining_bias(
        df, label=LABEL, facet=FACET, metrics=["KL"], divergence_smoothing=0.5
    )
    p_a = [(4 + 0.5) / 11, (6 + 0.5) / 11]
    p_d = [(5 + 0.5) / 6, (0 + 0.5) / 6]
    kl = sum(x * math.log(x / y) for x, y in zip(p_a, p_d, strict=True))
    assert smoothed.value("KL") == pytest.approx(kl)
    assert kl > 0


def test_label_values_distribution_for_a_multiclass_label() -> None:
    df = pd.DataFrame(
        {
            "sex": ["m"] * 6 + ["f"] * 4,
            "grade": ["A", "A", "B", "C", "C", "C", "A", "B", "B", "C"],
        }
    )
    label = Label("grade", positive=("A", "B"))
    report = pretraining_bias(
        df, label=label, facet=FACET, label_distribution="values", metrics=["TVD", "KS", "DPL"]
    )
    p_a = np.array([2, 1, 3]) / 6  # A, B, C
    p_d = np.array([1, 2, 1]) / 4
    assert report.value("TVD") == pytest.approx(0.5 * np.abs(p_a - p_d).sum())
    assert report.value("KS") == pytest.approx(np.abs(p_a - p_d).max())
    assert report.value("DPL") == pytest.approx(3 / 6 - 3 / 4)  # A or B is positive


def test_threshold_label_facet_and_probability_prediction() -> None:
    df = pd.DataFrame(
        {
            "age": [20, 30, 41, 50, 60, 40],
            "score": [0.9, 0.2, 0.6, 0.4, 0.5, 0.7],
            "proba": [0.8, 0.1, 0.3, 0.7, 0.5, 0.9],
        }
    )
    # d = age > 40: rows 2, 3, 4; label score > 0.5: rows 0, 2, 5; predicted proba >= 0.5
    report = posttraining_bias(
        df,
        label=Label("score", threshold=0.5),
        facet=Facet("age", threshold=40),
        prediction=Prediction("proba", threshold=0.5, op=">="),
        metrics=["DPPL", "AD"],
        min_group_size=0,
    )
    assert report.groups[0].name == "age > 40"
    # q̂_a: rows 0,1,5 -> predicted 1,0,1 = 2/3; q̂_d: rows 2,3,4 -> 0,1,1 = 2/3
    assert report.value("DPPL") == pytest.approx(0.0)
    # accuracy a: (1,1),(0,0),(1,1) = 3/3; d: (1,0),(0,1),(0,1) = 0/3
    assert report.value("AD") == pytest.approx(1.0)
    with_ge = pretraining_bias(
        df,
        label=Label("score", threshold=0.5),
        facet=Facet("age", threshold=40, op=">="),
        metrics=["CI"],
    )
    assert with_ge.groups[0].name == "age >= 40"
    assert with_ge.value("CI") == pytest.approx((2 - 4) / 6)


def test_flip_test_sign_and_scaling() -> None:
    # a at x = 0, 10, 20 predicted 1, 0, 1; d next to them predicted 0, 0, 0, plus one
    # d row at 0.2 predicted 1. Nearest a-neighbour (k = 1) predictions: 1, 0, 1, 1.
    df = pd.DataFrame(
        {
            "sex": ["m", "m", "m", "f", "f", "f", "f"],
            "x": [0.0, 10.0, 20.0, 0.1, 10.1, 20.1, 0.2],
            "y": [1, 0, 1, 0, 0, 1, 1],
            "yhat": [1, 0, 1, 0, 0, 0, 1],
        }
    )
    kwargs = {"label": LABEL, "facet": FACET, "prediction": PRED, "metrics": ["FT"]}
    compat = posttraining_bias(df, mode="clarify_compatible", **kwargs)  # type: ignore[arg-type]
    # smclarify: F+ = model 1 & neighbours 0 (none), F- = model 0 & neighbours 1 (2): -2/4
    assert compat.value("FT") == pytest.approx(-2 / 4)
    default = posttraining_bias(df, flip_neighbors=1, **kwargs)  # type: ignore[arg-type]
    # documented sign: F+ = d denied while its a-neighbours are granted (2): +2/4
    assert default.value("FT") == pytest.approx(2 / 4)
    # k = 3 (all of a): the a-majority is positive, so every denied d row flips: 3/4
    assert posttraining_bias(df, **kwargs).value("FT") == pytest.approx(3 / 4)  # type: ignore[arg-type]


def test_every_value_against_the_rest_and_intersections() -> None:
    df = pd.DataFrame(
        {
            "race": ["u", "u", "v", "v", "w", "w", "w", "u"],
            "sex": ["f", "m", "f", "m", "f", "m", "m", "m"],
            "y": [1, 0, 0, 0, 1, 1, 0, 1],
        }
    )
    each = pretraining_bias(df, label=LABEL, facet=Facet("race"), metrics=["DPL"])
    assert [g.name for g in each.groups] == ["u", "v", "w"]
    assert each.value("DPL", "v") == pytest.approx(4 / 6 - 0 / 2)
    cross = pretraining_bias(
        df,
        label=LABEL,
        facet=Intersection(Facet("race"), Facet("sex")),
        metrics=["DPL", "CI"],
        min_group_size=0,
    )
    names = [g.name for g in cross.groups]
    assert names == [f"race={r} & sex={s}" for r in "uvw" for s in "fm"]
    # race=w & sex=m: rows 5, 6: positives 1 of 2; the rest: 3 of 6
    assert cross.value("DPL", "race=w & sex=m") == pytest.approx(3 / 6 - 1 / 2)
    assert cross.value("CI", "race=u & sex=f") == pytest.approx((7 - 1) / 8)
