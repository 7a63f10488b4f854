"""Bootstrap intervals: reproducible by seed, exact for counts, sane coverage, warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trivet.clarify import Bootstrap, Facet, Label, Prediction, posttraining_bias, pretraining_bias
from trivet.clarify.data import berkeley_admissions, synthetic_credit

LABEL = Label("admitted", positive=True)
WOMEN = Facet("sex", values="female")


def test_same_seed_same_intervals_other_seed_other_intervals() -> None:
    df = berkeley_admissions()
    first = pretraining_bias(df, label=LABEL, facet=WOMEN, bootstrap=Bootstrap(300, seed=5))
    again = pretraining_bias(df, label=LABEL, facet=WOMEN, bootstrap=Bootstrap(300, seed=5))
    other = pretraining_bias(df, label=LABEL, facet=WOMEN, bootstrap=Bootstrap(300, seed=6))
    assert [v.interval for v in first.values] == [v.interval for v in again.values]
    assert first.get("DPL").interval != other.get("DPL").interval
    for v in first.values:
        if v.metric == "CDDL":
            assert v.interval is None and v.undefined_resamples == 300  # no group variable
            continue
        assert v.interval is not None and v.value is not None
        assert v.interval[0] <= v.value <= v.interval[1], v.metric
        assert v.undefined_resamples == 0
    assert first.to_dict()["bootstrap"] == {"resamples": 300, "level": 0.95, "seed": 5}


def test_count_table_resampling_matches_a_row_level_bootstrap() -> None:
    df = berkeley_admissions()
    report = pretraining_bias(
        df, label=LABEL, facet=WOMEN, metrics=["DPL"], bootstrap=Bootstrap(4000, level=0.9)
    )
    # A row-level bootstrap done by hand: resample rows, recompute DPL.
    rng = np.random.default_rng(0)
    female = (df["sex"] == "female").to_numpy()
    admitted = df["admitted"].to_numpy()
    dpl = []
    for _ in range(4000):
        i = rng.integers(0, len(df), len(df))
        f, y = female[i], admitted[i]
        dpl.append(y[~f].mean() - y[f].mean())
    lower, upper = np.quantile(dpl, [0.05, 0.95])
    interval = report.get("DPL").interval
    assert interval is not None
    assert interval[0] == pytest.approx(lower, abs=0.004)
    assert interval[1] == pytest.approx(upper, abs=0.004)


def test_interval_coverage_is_near_nominal() -> None:
    # 120 samples of n=400 from a population with DPL = 0.6 - 0.45 = 0.15.
    rng = np.random.default_rng(42)
    hits = 0
    trials = 120
    for trial in range(trials):
        d = rng.random(400) < 0.4
        y = rng.random(400) < np.where(d, 0.45, 0.6)
        df = pd.DataFrame({"sex": np.where(d, "female", "male"), "admitted": y})
        report = pretraining_bias(
            df, label=LABEL, facet=WOMEN, metrics=["DPL"], bootstrap=Bootstrap(400, seed=trial)
        )
        interval = report.get("DPL").interval
        assert interval is not None
        hits += interval[0] <= 0.15 <= interval[1]
    assert 0.88 <= hits / trials <= 0.99  # nominal 0.95


def test_posttraining_intervals_including_ft_and_a_group_variable() -> None:
    df = synthetic_credit(3000, seed=1, label_bias=0.2, prediction_bias=0.1)
    report = posttraining_bias(
        df,
        label=Label("approved", positive=True),
        facet=WOMEN,
        prediction=Prediction("predicted"),
        group_variable="region",
        features=["age", "income", "debt_ratio", "years_employed"],
        bootstrap=200,
    )
    for v in report.values:
        assert v.interval is not None, v.metric
        assert v.interval[0] <= v.interval[1]
    ft = report.get("FT")
    assert ft.value is not None and ft.interval is not None
    assert ft.interval[0] <= ft.value <= ft.interval[1]


def test_small_groups_are_flagged() -> None:
    rows = [("male", True)] * 200 + [("male", False)] * 200 + [("female", True)] * 4
    rows += [("female", False)] * 6
    df = pd.DataFrame(rows, columns=["sex", "admitted"])
    report = pretraining_bias(df, label=LABEL, facet=WOMEN, bootstrap=100)
    assert any("'female': only 10 rows in facet d" in w for w in report.warnings)
    big = pretraining_bias(berkeley_admissions(), label=LABEL, facet=WOMEN)
    assert big.warnings == ()
    quiet = pretraining_bias(df, label=LABEL, facet=WOMEN, min_group_size=5)
    assert quiet.warnings == ()
