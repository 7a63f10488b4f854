"""Bias drift monitoring: NDCG by hand, the interval rule, baselines, drift, permissions."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import trivet
from trivet.clarify import (
    AllowedRange,
    Baseline,
    Facet,
    Label,
    MonitorResult,
    Prediction,
    ndcg,
)
from trivet.clarify.data import synthetic_credit
from trivet.errors import PermissionDenied, ValidationError
from trivet.platform import audit
from trivet.platform.lineage import Node
from trivet.platform.settings import Settings

LABEL = Label("approved", positive=True)
FEMALE = Facet("sex", values="female")


# -- NDCG, by hand ---------------------------------------------------------------------------
def test_ndcg_of_the_same_ranking_is_one() -> None:
    assert ndcg({"a": 3.0, "b": 2.0, "c": 1.0}, ["a", "b", "c"]) == 1.0


def test_ndcg_of_a_swap_of_the_top_two() -> None:
    # relevance a=3, b=2, c=1; live ranking b, a, c; discounts log2(2)=1, log2(3), log2(4)=2
    # DCG  = 2/1 + 3/log2(3) + 1/2 = 2 + 1.892789 + 0.5 = 4.392789
    # IDCG = 3/1 + 2/log2(3) + 1/2 = 3 + 1.261860 + 0.5 = 4.761860
    # NDCG = 4.392789 / 4.761860 = 0.922495
    assert ndcg({"a": 3.0, "b": 2.0, "c": 1.0}, ["b", "a", "c"]) == pytest.approx(
        0.922495, abs=1e-6
    )


def test_ndcg_of_the_reversed_ranking() -> None:
    # DCG = 1/1 + 2/log2(3) + 3/2 = 1 + 1.261860 + 1.5 = 3.761860; / 4.761860 = 0.789998
    assert ndcg({"a": 3.0, "b": 2.0, "c": 1.0}, ["c", "b", "a"]) == pytest.approx(
        0.789998, abs=1e-6
    )


def test_ndcg_edge_cases() -> None:
    # ties: swapping two features of equal relevance changes nothing
    assert ndcg({"a": 1.0, "b": 1.0}, ["b", "a"]) == 1.0
    # no relevance at all: every ordering is ideal
    assert ndcg({"a": 0.0, "b": 0.0}, ["b", "a"]) == 1.0
    with pytest.raises(ValidationError, match="lacks"):
        ndcg({"a": 1.0, "b": 2.0}, ["a"])
    with pytest.raises(ValidationError, match="twice"):
        ndcg({"a": 1.0}, ["a", "a"])
    with pytest.raises(ValidationError, match=">= 0"):
        ndcg({"a": -1.0}, ["a"])


# -- the interval rule -----------------------------------------------------------------------
def test_a_violation_needs_the_whole_interval_outside_the_range() -> None:
    allowed = AllowedRange("DPPL", low=-0.05, high=0.05)
    assert not allowed.is_violated_by((0.02, 0.12))  # point estimate 0.07 outside, overlap
    assert allowed.is_violated_by((0.06, 0.12))  # entirely above
    assert allowed.is_violated_by((-0.2, -0.051))  # entirely below
    assert not allowed.is_violated_by((0.05, 0.1))  # touches the bound: overlaps
    assert not allowed.is_violated_by((-0.3, 0.3))  # covers the range
    one_sided = AllowedRange("DI", low=0.8)
    assert one_sided.is_violated_by((0.5, 0.79)) and not one_sided.is_violated_by((0.7, 5.0))


def test_allowed_range_errors_name_the_fix() -> None:
    with pytest.raises(ValidationError, match="no bound"):
        AllowedRange("DI")
    with pytest.raises(ValidationError, match="swap"):
        AllowedRange("DI", low=1.25, high=0.8)
    with pytest.raises(ValidationError, match="finite"):
        AllowedRange("DI", low=-math.inf)


def selection(scale: int) -> pd.DataFrame:
    """Men: 20*scale rows, half predicted positive; women: 20*scale, 7 in 20 predicted
    positive. DPPL = 10/20 - 7/20 = 0.15 exactly, at every scale; labels are half
    positive in both groups (DPL = 0)."""
    rows = []
    for sex, predicted in (("m", 10), ("f", 7)):
        for i in range(20 * scale):
            rows.append((sex, i % 2 == 0, (i % 20) < predicted))
    return pd.DataFrame(rows, columns=["sex", "y", "yhat"])


def balanced() -> pd.DataFrame:
    """Both groups half predicted positive: DPPL = 0."""
    frame = selection(5)
    frame["yhat"] = [i % 2 == 1 for i in range(len(frame))]
    return frame


def test_point_outside_but_interval_overlapping_is_no_violation(admin: trivet.Session) -> None:
    label, facet, prediction = (
        Label("y", positive=True),
        Facet("sex", values="f"),
        Prediction("yhat"),
    )
    base = admin.clarify.bias(
        balanced(), label=label, facet=facet, prediction=prediction, metrics=["DPPL"]
    )
    assert base.value("DPPL") == 0.0
    baseline = admin.clarify.baseline("sel", bias=base, ranges={"DPPL": (-0.1, 0.1)})
    (allowed,) = baseline.ranges
    assert (allowed.low, allowed.high, allowed.source) == (-0.1, 0.1, "given")

    # 40 rows: DPPL = 0.15 lies above 0.1, but its interval is about 0.15 +- 0.30
    # (standard error sqrt(.5*.5/20 + .35*.65/20) = 0.155): it overlaps the range
    small = admin.clarify.monitor(selection(1), baseline, bootstrap=1000, store=False)
    (drift,) = small.results
    assert drift.value == pytest.approx(0.15)
    assert drift.interval is not None and drift.value is not None
    assert drift.interval[0] < 0.1 < drift.value  # the point lies outside the range
    assert drift.status == "ok" and small.passed and "overlapping" in drift.reason

    # 4,000 rows, same proportions: standard error 0.0155, interval about [0.12, 0.18]
    large = admin.clarify.monitor(selection(100), baseline, bootstrap=1000, store=False)
    (drift,) = large.results
    assert drift.value == pytest.approx(0.15)
    assert drift.status == "violation" and not large.passed
    assert "entirely above the allowed range [-0.1, 0.1]" in drift.reason
    assert large.violations == (drift,)


# -- baselines from the synthetic generator --------------------------------------------------
@pytest.fixture
def credit_baseline(admin: trivet.Session) -> Baseline:
    bias = admin.clarify.bias(
        synthetic_credit(20_000, seed=0),
        label=LABEL,
        facet=FEMALE,
        prediction=Prediction("predicted"),
        metrics=["DPL", "DPPL", "DI"],
        bootstrap=500,
    )
    return admin.clarify.baseline("credit", bias=bias)


def test_derived_ranges_widen_the_baseline_interval(credit_baseline: Baseline) -> None:
    assert {r.metric for r in credit_baseline.ranges} == {"DPL", "DPPL", "DI"}
    for r in credit_baseline.ranges:
        assert r.source == "derived" and r.group == "female" and r.facet == "sex"
        assert r.baseline_interval is not None and r.low is not None and r.high is not None
        lo, hi = r.baseline_interval
        # margin 0.5: half an interval width on each side, so the range is twice as wide
        assert r.low == pytest.approx(lo - 0.5 * (hi - lo))
        assert r.high == pytest.approx(hi + 0.5 * (hi - lo))
    assert credit_baseline.unmonitored == ()


def test_a_batch_from_the_same_generator_raises_no_violation(
    admin: trivet.Session, credit_baseline: Baseline
) -> None:
    result = admin.clarify.monitor(synthetic_credit(20_000, seed=1), credit_baseline)
    assert isinstance(result, MonitorResult)
    assert result.passed and result.violations == ()
    assert [r.status for r in result.results] == ["ok", "ok", "ok"]
    assert result.explanation_drift is None and result.notes == ()


def test_injected_prediction_bias_raises_violations_on_dppl_and_di(
    admin: trivet.Session, credit_baseline: Baseline
) -> None:
    # prediction_bias=0.3 cuts women's scores by 30%: fewer women are predicted positive,
    # so DPPL (q_a - q_d of predictions) rises and DI (q_d / q_a) falls; the labels are
    # drawn as in the baseline, so DPL stays within its range.
    batch = synthetic_credit(20_000, seed=2, prediction_bias=0.3)
    result = admin.clarify.monitor(batch, credit_baseline.digest[:12])
    status = {r.metric: r for r in result.results}
    assert status["DPPL"].status == "violation" and "entirely above" in status["DPPL"].reason
    assert status["DI"].status == "violation" and "entirely below" in status["DI"].reason
    assert status["DPL"].status == "ok"
    assert not result.passed and len(result.violations) == 2

    # stored: a report whose monitoring section lists the violations, with lineage to
    # the baseline and an audit row
    assert result.digest is not None
    stored = admin.clarify.get_report(result.digest)
    section = stored.document["monitoring"]
    assert section["baseline"] == credit_baseline.digest
    assert section["violations"] == 2 and section["passed"] is False
    assert {r["metric"] for r in section["results"] if r["status"] == "violation"} == {
        "DPPL",
        "DI",
    }
    up = admin.lineage.upstream(Node(kind="report", id=result.digest))
    assert Node(kind="report", id=credit_baseline.digest) in up
    rows = [e for e in audit.entries(admin.catalog) if e.action == "clarify:monitor"]
    assert rows[-1].detail["violations"] == 2 and rows[-1].resource == "default/reports/credit"
    assert "clarify:baseline" in [e.action for e in audit.entries(admin.catalog)]
    html = admin.clarify.report_html(result.digest)
    assert "Monitoring against baseline credit" in html and "2 violations" in html


def test_baseline_round_trips_with_its_configuration(
    admin: trivet.Session, credit_baseline: Baseline
) -> None:
    again = admin.clarify.get_baseline(credit_baseline.digest[:10])
    assert again.ranges == credit_baseline.ranges
    assert again.html_digest == credit_baseline.html_digest != ""
    (config,) = again.analyses
    assert config["label"] == {
        "column": "approved",
        "positive": [True],
        "threshold": None,
        "op": ">",
    }
    assert config["facets"] == [
        {"column": "sex", "values": ["female"], "threshold": None, "op": ">"}
    ]
    assert config["bootstrap"] == {"resamples": 500, "level": 0.95, "seed": 0}
    # a plain report is not a baseline
    plain = admin.clarify.report(
        "plain",
        bias=admin.clarify.bias(
            synthetic_credit(500, seed=0), label=LABEL, facet=FEMALE, metrics=["DPL"]
        ),
    )
    with pytest.raises(ValidationError, match="not a baseline"):
        admin.clarify.get_baseline(plain.digest)


def test_baseline_needs_intervals_or_ranges(admin: trivet.Session) -> None:
    bias = admin.clarify.bias(
        synthetic_credit(2_000, seed=0), label=LABEL, facet=FEMALE, metrics=["DPL", "CI"]
    )
    with pytest.raises(ValidationError, match="monitor nothing") as info:
        admin.clarify.baseline("credit", bias=bias)
    assert "bootstrap" in str(info.value)
    # an explicit range for one metric: the other is listed as unmonitored, with why
    baseline = admin.clarify.baseline("credit", bias=bias, ranges={"DPL": (None, 0.1)})
    assert [r.metric for r in baseline.ranges] == ["DPL"]
    assert len(baseline.unmonitored) == 1 and "CI for sex = 'female'" in baseline.unmonitored[0]
    with pytest.raises(ValidationError, match="matches no metric"):
        admin.clarify.baseline("credit", bias=bias, ranges={"DPPL": (-0.1, 0.1)})


def test_a_batch_missing_a_column_is_one_clear_error(
    admin: trivet.Session, credit_baseline: Baseline
) -> None:
    batch = synthetic_credit(1_000, seed=3).drop(columns=["predicted"])
    with pytest.raises(ValidationError, match="predicted"):
        admin.clarify.monitor(batch, credit_baseline)


# -- explanation drift -----------------------------------------------------------------------
def test_explanation_drift_is_flagged_when_the_ranking_changes(admin: trivet.Session) -> None:
    from sklearn.ensemble import RandomForestClassifier

    features = ["age", "income", "debt_ratio", "years_employed"]
    train = synthetic_credit(4_000, seed=0)
    model = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0)
    model.fit(train[features], train["approved"])
    explanation = admin.clarify.explain(model, train[features], sample=150, top_k=0)
    assert explanation.ranking[0] == "income"  # the label depends on income most
    bias = admin.clarify.bias(
        train,
        label=LABEL,
        facet=FEMALE,
        prediction=Prediction("predicted"),
        metrics=["DPPL"],
        bootstrap=200,
    )
    baseline = admin.clarify.baseline("credit", bias=bias, explanations=explanation)
    assert baseline.importance is not None and baseline.ndcg_threshold == 0.9

    same = admin.clarify.monitor(synthetic_credit(4_000, seed=1), baseline, model=model)
    assert same.explanation_drift is not None and not same.explanation_drift.flagged
    assert same.passed

    # income frozen at one value: its SHAP values are 0 (it never differs from the
    # background), so the baseline's most important feature ranks last. With the
    # baseline importance r1 >= r2 >= r3 >= r4 moved to r2, r3, r4, r1 NDCG is
    # (r2 + r3/log2 3 + r4/2 + r1/log2 5) / (r1 + r2/log2 3 + r3/2 + r4/log2 5), which
    # for importances near 0.08, 0.05, 0.03, 0.02 is about 0.85 < 0.9.
    frozen = synthetic_credit(4_000, seed=1).assign(income=40_000.0)
    drifted = admin.clarify.monitor(frozen, baseline, model=model, store=False)
    drift = drifted.explanation_drift
    assert drift is not None and drift.flagged and drift.live_ranking[-1] == "income"
    assert drift.ndcg < 0.9 and not drifted.passed
    # model without a baseline explanation: a clear error
    plain = admin.clarify.baseline("plain", bias=bias)
    with pytest.raises(ValidationError, match="no explanations"):
        admin.clarify.monitor(frozen, plain, model=model)
    # a baseline with explanations, monitored without a model: said so in the notes
    unexplained = admin.clarify.monitor(frozen, baseline, store=False)
    assert unexplained.explanation_drift is None and "not checked" in unexplained.notes[0]


# -- permissions -----------------------------------------------------------------------------
def user(admin: trivet.Session, ws: Settings, name: str, role: str, pattern: str) -> trivet.Session:
    admin.identity.create_user(name)
    admin.access.grant(name, role, pattern)
    return trivet.connect(ws.workspace, token=admin.identity.create_token(name).secret)


def test_a_viewer_reads_the_baseline_but_may_not_monitor(
    admin: trivet.Session, workspace: Settings, credit_baseline: Baseline
) -> None:
    vic = user(admin, workspace, "vic", "viewer", "default/*")
    olga = user(admin, workspace, "olga", "viewer", "other/*")
    try:
        assert vic.clarify.get_baseline(credit_baseline.digest).ranges == credit_baseline.ranges
        with pytest.raises(PermissionDenied, match="clarify:run"):
            vic.clarify.monitor(synthetic_credit(1_000, seed=1), credit_baseline.digest)
        with pytest.raises(PermissionDenied, match="clarify:read_report"):
            olga.clarify.get_baseline(credit_baseline.digest)
        with pytest.raises(PermissionDenied):
            olga.clarify.monitor(synthetic_credit(1_000, seed=1), credit_baseline.digest)
        denied = audit.entries(admin.catalog, actor="vic", outcome="denied")
        assert [e.action for e in denied] == ["clarify:run"]
    finally:
        vic.close()
        olga.close()


def test_monitoring_result_serialises(admin: trivet.Session, credit_baseline: Baseline) -> None:
    result = admin.clarify.monitor(synthetic_credit(5_000, seed=4), credit_baseline, store=False)
    assert result.digest is None
    section = json.loads(json.dumps(result.to_dict()))
    assert section["baseline_name"] == "credit" and len(section["results"]) == 3
    assert str(result).startswith(("no violation", "1 violation", "2 violations"))
