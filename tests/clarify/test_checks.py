"""Checks: thresholds on hand-built reports give pass/fail results with reasons."""

from __future__ import annotations

import json
import math

import pytest

from trivet.clarify import BiasReport, Bootstrap, Facet, FacetGroup, Label, MetricValue
from trivet.clarify.checks import Check, CheckOutcome, parse_checks, run_checks
from trivet.errors import ValidationError


def report(*values: MetricValue, bootstrap: Bootstrap | None = None) -> BiasReport:
    """A report holding exactly ``values``, for groups 'f' and 'm'."""
    groups = tuple(dict.fromkeys(v.group for v in values))
    return BiasReport(
        mode="default",
        stages=("post_training",),
        label=Label("y", positive=1),
        facet=Facet("sex"),
        prediction=None,
        group_variable=None,
        groups=tuple(
            FacetGroup(name=g, rows_d=50, rows_a=50, label_positive_d=20, label_positive_a=25)
            for g in groups
        ),
        values=values,
        rows=100,
        missing={},
        dropped_rows=0,
        bootstrap=bootstrap,
    )


def mv(
    metric: str,
    group: str,
    value: float | None,
    *,
    interval: tuple[float, float] | None = None,
    reason: str | None = None,
    undefined: int | None = None,
) -> MetricValue:
    return MetricValue(
        metric=metric,
        stage="post_training",
        group=group,
        value=value,
        interval=interval,
        reason=reason,
        undefined_resamples=undefined,
    )


REPORT = report(
    mv("DI", "f", 0.75),
    mv("DI", "m", 1.1),
    mv("DPPL", "f", 0.1),
    mv("DPPL", "m", -0.02),
    mv("TE", "f", None, reason="TE is undefined: there are no false positives in facet d"),
    mv("TE", "m", 0.3),
)


def test_value_checks_pass_and_fail_with_reasons() -> None:
    outcome = run_checks(REPORT, {"DI": (0.8, 1.25), "DPPL": (-0.1, 0.1)})
    assert isinstance(outcome, CheckOutcome)
    assert [(r.metric, r.group, r.passed) for r in outcome.results] == [
        ("DI", "f", False),
        ("DI", "m", True),
        ("DPPL", "f", True),  # bounds are inclusive
        ("DPPL", "m", True),
    ]
    assert not outcome.passed
    assert outcome.failures == (outcome.results[0],)
    assert outcome.results[0].reason == (
        "DI for group 'f' = 0.75 is below the lower bound 0.8 of the allowed range [0.8, 1.25]"
    )
    assert (
        outcome.results[1].reason
        == "DI for group 'm' = 1.1 is within the allowed range [0.8, 1.25]"
    )
    assert str(outcome.results[0]).startswith("FAIL DI for group 'f'")
    assert "1 of 4 checks failed" in str(outcome)


def test_one_sided_bounds_and_a_single_group() -> None:
    outcome = run_checks(REPORT, [Check("DI", low=0.8, facet_group="m"), Check("dppl", high=0.05)])
    assert [(r.metric, r.group, r.passed) for r in outcome.results] == [
        ("DI", "m", True),
        ("DPPL", "f", False),
        ("DPPL", "m", True),
    ]
    assert outcome.results[1].reason == (
        "DPPL for group 'f' = 0.1 is above the upper bound 0.05 of the allowed range (-inf, 0.05]"
    )
    assert Check("DI", low=0.8).describe() == "DI in [0.8, inf)"


def test_undefined_value_fails_with_its_reason_unless_allowed() -> None:
    failed = run_checks(REPORT, {"TE": (-1, 1)})
    te_f = failed.results[0]
    assert not te_f.passed and te_f.value is None
    assert te_f.reason == (
        "TE for group 'f' is undefined (TE is undefined: there are no false positives in "
        "facet d): a failure"
    )
    allowed = run_checks(REPORT, {"TE": (-1, 1)}, allow_undefined=True)
    assert allowed.passed
    assert "allowed (allow_undefined=True)" in allowed.results[0].reason
    assert allowed.to_dict()["allow_undefined"] is True


def test_interval_checks_need_the_whole_interval_within_bounds() -> None:
    boot = report(
        mv("DPPL", "f", 0.02, interval=(-0.03, 0.07)),
        mv("DPPL", "m", 0.05, interval=(0.01, 0.12)),
        mv("DI", "f", None, reason="no positive predictions in facet a", undefined=200),
        mv("DI", "m", 1.0, interval=(0.9, 1.1)),
        bootstrap=Bootstrap(200, level=0.9),
    )
    outcome = run_checks(boot, {"DPPL": {"low": -0.1, "high": 0.1, "on": "interval"}})
    assert [r.passed for r in outcome.results] == [True, False]
    assert outcome.results[1].reason == (
        "the 90% interval of DPPL for group 'm', [0.01, 0.12], is not entirely within the "
        "allowed range [-0.1, 0.1]"
    )
    # on the value alone, the same check passes: the interval is the stricter test
    assert run_checks(boot, {"DPPL": (-0.1, 0.1)}).passed
    di = run_checks(boot, [Check("DI", low=0.8, high=1.25, on="interval")])
    assert [r.passed for r in di.results] == [False, True]
    assert "all 200 resamples left it undefined" in di.results[0].reason


def test_interval_check_on_a_report_without_intervals_is_an_error() -> None:
    with pytest.raises(ValidationError, match="no bootstrap intervals") as info:
        run_checks(REPORT, [Check("DI", low=0.8, on="interval")])
    assert "bootstrap=1000" in str(info.value)


def test_infinite_values_compare_as_numbers() -> None:
    compat = report(mv("DI", "f", math.inf), mv("DI", "m", 1.0))
    outcome = run_checks(compat, {"DI": (0.8, 1.25)})
    assert [r.passed for r in outcome.results] == [False, True]
    assert "= inf is above the upper bound" in outcome.results[0].reason
    assert outcome.to_dict()["results"][0]["value"] == "Infinity"
    json.dumps(outcome.to_dict(), allow_nan=False)


def test_outcome_to_dict_is_json_and_complete() -> None:
    data = run_checks(REPORT, {"DI": (0.8, 1.25)}).to_dict()
    assert data["passed"] is False
    assert data["results"][0] == {
        "metric": "DI",
        "low": 0.8,
        "high": 1.25,
        "facet_group": None,
        "on": "value",
        "group": "f",
        "passed": False,
        "value": 0.75,
        "interval": None,
        "reason": "DI for group 'f' = 0.75 is below the lower bound 0.8 of the allowed range "
        "[0.8, 1.25]",
    }


def test_no_checks_pass() -> None:
    assert run_checks(REPORT, {}).passed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"DI": (1.25, 0.8)}, "lower bound 1.25 is above its upper bound"),
        ({"DI": (None, None)}, "has no bound"),
        ({"DI": 0.8}, "must be a \\(low, high\\) pair"),
        ({"DI": ("a", 1)}, "must be a number"),
        ({"DI": {"low": 0.8, "on": "mean"}}, "'value' or 'interval'"),
        (["DI"], "Check objects"),
    ],
)
def test_bad_specs_are_rejected(spec: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_checks(spec)  # type: ignore[arg-type]


def test_unknown_metric_or_group_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="not computed") as info:
        run_checks(REPORT, {"RD": (-0.1, 0.1)})
    assert "DI" in str(info.value)
    with pytest.raises(ValidationError, match="No facet group 'x'"):
        run_checks(REPORT, [Check("DI", low=0.8, facet_group="x")])


def test_dcacc_is_dca() -> None:
    assert Check("DCAcc", high=0.1).metric == "DCA"
