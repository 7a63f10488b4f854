"""The built-in datasets: Berkeley 1973 (Simpson's paradox) and the synthetic credit data."""

from __future__ import annotations

import pandas as pd
import pytest

from trivet.clarify import Facet, Label, Prediction, posttraining_bias, pretraining_bias
from trivet.clarify.data import berkeley_admissions, berkeley_counts, synthetic_credit

ADMITTED = Label("admitted", positive=True)
WOMEN = Facet("sex", values="female")


def test_berkeley_numbers_are_the_published_ones() -> None:
    counts = berkeley_counts()
    assert len(counts) == 24
    df = berkeley_admissions()
    assert len(df) == 4526  # R's UCBAdmissions: 4526 applicants
    men = df[df["sex"] == "male"]
    women = df[df["sex"] == "female"]
    assert (len(men), int(men["admitted"].sum())) == (2691, 1198)  # 44.5% admitted
    assert (len(women), int(women["admitted"].sum())) == (1835, 557)  # 30.4%
    a = df[df["department"] == "A"]
    assert int((a["sex"] == "female").sum()) == 108  # 89 admitted + 19 rejected


def test_berkeley_simpsons_paradox() -> None:
    report = pretraining_bias(
        berkeley_admissions(), label=ADMITTED, facet=WOMEN, group_variable="department"
    )
    # Aggregated, the admission rate favours men by 14 points (1198/2691 - 557/1835) ...
    assert report.value("DPL") == pytest.approx(1198 / 2691 - 557 / 1835)
    dpl = report.value("DPL")
    assert dpl is not None and dpl > 0.14
    # ... but conditioned on department the disparity is small and reversed: within
    # departments women made up a larger share of the admitted than of the rejected.
    cddl = report.value("CDDL")
    assert cddl is not None and -0.05 < cddl < 0
    # Department A, by hand: women's share of rejected minus their share of admitted.
    dept_a = pretraining_bias(
        berkeley_admissions().query("department == 'A'"),
        label=ADMITTED,
        facet=WOMEN,
        group_variable="department",
        metrics=["CDDL"],
    )
    assert dept_a.value("CDDL") == pytest.approx(19 / (313 + 19) - 89 / (512 + 89))


def test_synthetic_credit_is_seeded_and_carries_the_injected_bias() -> None:
    first = synthetic_credit(2000, seed=3)
    pd.testing.assert_frame_equal(first, synthetic_credit(2000, seed=3))
    assert not first.equals(synthetic_credit(2000, seed=4))
    df = synthetic_credit(200_000, seed=0, label_bias=0.3, prediction_bias=0.2)
    women = Facet("sex", values="female")
    rate = df.groupby("sex")["approved"].mean()
    # In expectation women's approval rate is (1 - label_bias) times men's.
    assert rate["female"] / rate["male"] == pytest.approx(0.7, abs=0.02)
    post = posttraining_bias(
        df,
        label=Label("approved", positive=True),
        facet=women,
        prediction=Prediction("score", threshold=0.5),
        metrics=["DI", "DPPL"],
    )
    di = post.value("DI")
    assert di is not None and di < 0.8  # the score cut lowers women's positive predictions
    fair = synthetic_credit(200_000, seed=0, label_bias=0.0)
    neutral = pretraining_bias(fair, label=Label("approved", positive=True), facet=women)
    dpl = neutral.value("DPL")
    assert dpl is not None and abs(dpl) < 0.01
