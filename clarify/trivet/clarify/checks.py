"""Checks: thresholds that turn bias metrics into pass/fail results with reasons.

A check bounds one metric, for every facet group or one, on its value or on its whole
bootstrap interval. :func:`run_checks` evaluates checks against a
:class:`~trivet.clarify.BiasReport`; the :class:`CheckOutcome` it returns says what
passed, what failed and why — the input of a pipeline gate::

    outcome = run_checks(report, {"DI": (0.8, 1.25), "DPPL": (-0.1, 0.1)})
    if not outcome.passed:
        print(*outcome.failures, sep="\\n")

>>> from trivet.clarify import Facet, Label, pretraining_bias
>>> from trivet.clarify.data import berkeley_admissions
>>> report = pretraining_bias(berkeley_admissions(), label=Label("admitted", positive=True),
...                           facet=Facet("sex", values="female"), metrics=["DPL"])
>>> outcome = run_checks(report, {"DPL": (-0.1, 0.1)})
>>> outcome.passed
False
>>> print(outcome.results[0].reason)
DPL for group 'female' = 0.1416 is above the upper bound 0.1 of the allowed range [-0.1, 0.1]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal

from trivet.clarify.config import metric_key
from trivet.clarify.results import BiasReport, MetricValue
from trivet.errors import ValidationError

__all__ = ["Check", "CheckOn", "CheckOutcome", "CheckResult", "ChecksSpec", "run_checks"]

CheckOn = Literal["value", "interval"]
"""What a check bounds: the point value, or the whole bootstrap interval."""

Bound = float | None


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{what} must be a number or None, not {value!r}.")
    number = float(value)
    if math.isnan(number):
        raise ValidationError(f"{what} must not be NaN.", hint="use None for no bound")
    return number


@dataclass(frozen=True)
class Check:
    """An allowed range for one metric.

    Args:
        metric: the metric's short name (``"DI"``; case-insensitive, ``DCAcc`` = ``DCA``).
        low: the lowest allowed value (None: no lower bound). Bounds are inclusive.
        high: the highest allowed value (None: no upper bound).
        facet_group: the facet group checked; None checks every group of the report.
        on: ``"value"`` bounds the point value; ``"interval"`` requires the whole
            bootstrap interval to lie within the bounds (the report needs ``bootstrap=``).

    >>> Check("DI", low=0.8, high=1.25).describe()
    'DI in [0.8, 1.25]'
    """

    metric: str
    _: KW_ONLY
    low: float | None = None
    high: float | None = None
    facet_group: str | None = None
    on: CheckOn = "value"

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ValidationError(f"A check names a metric, not {self.metric!r}.")
        object.__setattr__(self, "metric", metric_key(self.metric))
        low = _number(self.low, f"The lower bound of the {self.metric} check")
        high = _number(self.high, f"The upper bound of the {self.metric} check")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if low is None and high is None:
            raise ValidationError(
                f"The {self.metric} check has no bound.",
                hint=f"e.g. Check({self.metric!r}, low=-0.1, high=0.1)",
            )
        if low is not None and high is not None and low > high:
            raise ValidationError(
                f"The {self.metric} check's lower bound {low:g} is above its upper bound {high:g}.",
                hint="swap them",
            )
        if self.on not in ("value", "interval"):
            raise ValidationError(
                f"A check is on 'value' or 'interval', not {self.on!r}.",
                hint="'interval' requires the whole bootstrap interval within the bounds",
            )

    def describe(self) -> str:
        """Return the check as text, e.g. ``DI in [0.8, 1.25]`` or ``DPPL <= 0.1``."""
        what = self.metric if self.on == "value" else f"the interval of {self.metric}"
        if self.facet_group is not None:
            what += f" for group {self.facet_group!r}"
        return f"{what} in {self.range_text()}"

    def range_text(self) -> str:
        """Return the allowed range as text: ``[a, b]``, ``[a, inf)`` or ``(-inf, b]``."""
        low = "(-inf" if self.low is None else f"[{self.low:g}"
        high = "inf)" if self.high is None else f"{self.high:g}]"
        return f"{low}, {high}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "metric": self.metric,
            "low": self.low,
            "high": self.high,
            "facet_group": self.facet_group,
            "on": self.on,
        }


ChecksSpec = Mapping[str, Any] | Iterable[Check]
"""Checks as ``{"DI": (0.8, 1.25), ...}`` (a pair of bounds, None for no bound, or a
dict of :class:`Check`'s options), or as :class:`Check` objects."""


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """One check on one facet group: passed or not, and why.

    Attributes:
        check: the check.
        group: the facet group checked.
        passed: whether the value (or interval) lies within the bounds.
        value: the metric's value (None when undefined).
        interval: the metric's bootstrap interval, when computed.
        reason: a sentence naming the metric, the group, the value or interval and the
            bounds.
    """

    check: Check
    group: str
    passed: bool
    value: float | None
    interval: tuple[float, float] | None
    reason: str

    @property
    def metric(self) -> str:
        """The metric checked."""
        return self.check.metric

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (infinite values as ``"Infinity"``/``"-Infinity"``)."""
        from trivet.clarify.results import json_number

        return {
            **self.check.to_dict(),
            "group": self.group,
            "passed": self.passed,
            "value": json_number(self.value),
            "interval": None
            if self.interval is None
            else [json_number(self.interval[0]), json_number(self.interval[1])],
            "reason": self.reason,
        }


@dataclass(frozen=True, kw_only=True)
class CheckOutcome:
    """The results of a set of checks on one report; ``passed`` when every one passed.

    Attributes:
        results: one result per check and facet group, in the order of the checks.
        allow_undefined: whether an undefined value counted as a pass.
    """

    results: tuple[CheckResult, ...]
    allow_undefined: bool = False

    @property
    def passed(self) -> bool:
        """Whether every check passed (True when there are no checks)."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The results that failed."""
        return tuple(r for r in self.results if not r.passed)

    def __str__(self) -> str:
        head = f"{'passed' if self.passed else 'FAILED'}: {len(self.failures)} of "
        head += f"{len(self.results)} checks failed"
        return "\n".join([head, *(f"  {r}" for r in self.results)])

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict: ``passed``, ``allow_undefined`` and the results."""
        return {
            "passed": self.passed,
            "allow_undefined": self.allow_undefined,
            "results": [r.to_dict() for r in self.results],
        }


def parse_checks(spec: ChecksSpec) -> tuple[Check, ...]:
    """Return the checks a spec describes.

    Raises:
        ValidationError: a malformed entry (not a pair of bounds, a dict or a Check).
    """
    if isinstance(spec, Check):
        return (spec,)
    if isinstance(spec, Mapping):
        out: list[Check] = []
        for metric, bounds in spec.items():
            if isinstance(bounds, Check):
                out.append(bounds)
            elif isinstance(bounds, Mapping):
                out.append(Check(str(metric), **dict(bounds)))
            elif isinstance(bounds, Sequence) and not isinstance(bounds, str) and len(bounds) == 2:
                out.append(Check(str(metric), low=bounds[0], high=bounds[1]))
            else:
                raise ValidationError(
                    f"The check for {metric!r} must be a (low, high) pair, a dict or a Check, "
                    f"not {bounds!r}.",
                    hint=f'e.g. {{"{metric}": (-0.1, 0.1)}} or '
                    f'{{"{metric}": {{"low": -0.1, "high": 0.1, "on": "interval"}}}}',
                )
        return tuple(out)
    checks = tuple(spec)
    for check in checks:
        if not isinstance(check, Check):
            raise ValidationError(
                f"Checks must be Check objects, not {type(check).__name__}.",
                hint="e.g. [Check('DI', low=0.8, high=1.25)] or {'DI': (0.8, 1.25)}",
            )
    return checks


def _outside(check: Check, x: float) -> str | None:
    """Return how ``x`` misses the bounds ("below"/"above"), or None when within."""
    if check.low is not None and x < check.low:
        return "below"
    if check.high is not None and x > check.high:
        return "above"
    return None


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def _evaluate(
    check: Check, v: MetricValue, level: float | None, allow_undefined: bool
) -> CheckResult:
    allowed = f"the allowed range {check.range_text()}"
    subject = f"{check.metric} for group {v.group!r}"
    verdict = "allowed (allow_undefined=True)" if allow_undefined else "a failure"

    def result(passed: bool, reason: str) -> CheckResult:
        return CheckResult(
            check=check,
            group=v.group,
            passed=passed,
            value=v.value,
            interval=v.interval,
            reason=reason,
        )

    if check.on == "value":
        if v.value is None:
            why = v.reason or f"{check.metric} is undefined"
            return result(allow_undefined, f"{subject} is undefined ({why}): {verdict}")
        side = _outside(check, v.value)
        if side is None:
            return result(True, f"{subject} = {_fmt(v.value)} is within {allowed}")
        which, bound = ("lower", check.low) if side == "below" else ("upper", check.high)
        return result(
            False,
            f"{subject} = {_fmt(v.value)} is {side} the {which} bound {bound:g} of {allowed}",
        )
    share = f"{level:.0%} " if level is not None else ""
    if v.interval is None:
        why = (
            f"all {v.undefined_resamples} resamples left it undefined"
            if v.undefined_resamples
            else (v.reason or "no interval")
        )
        return result(
            allow_undefined, f"the {share}interval of {subject} is undefined ({why}): {verdict}"
        )
    lo, hi = v.interval
    text = f"the {share}interval of {subject}, [{_fmt(lo)}, {_fmt(hi)}],"
    if _outside(check, lo) is None and _outside(check, hi) is None:
        return result(True, f"{text} lies within {allowed}")
    return result(False, f"{text} is not entirely within {allowed}")


def run_checks(
    report: BiasReport, checks: ChecksSpec, *, allow_undefined: bool = False
) -> CheckOutcome:
    """Evaluate checks against a bias report.

    Args:
        report: the bias report.
        checks: ``{"DI": (0.8, 1.25), "DPPL": (-0.1, 0.1)}`` or :class:`Check` objects.
        allow_undefined: count an undefined value (or interval) as a pass; by default it
            is a failure whose reason says why the value is undefined.

    Returns:
        A :class:`CheckOutcome`: one result per check and group.

    Raises:
        ValidationError: a check names a metric or a facet group the report does not
            hold, or is on ``"interval"`` while the report has no bootstrap intervals.
    """
    parsed = parse_checks(checks)
    level = report.bootstrap.level if report.bootstrap is not None else None
    results: list[CheckResult] = []
    for check in parsed:
        if check.on == "interval" and report.bootstrap is None:
            raise ValidationError(
                f"The check {check.describe()!r} is on the interval, but the report has no "
                "bootstrap intervals.",
                hint="compute the report with bootstrap=1000, or check on='value'",
            )
        groups = (
            [check.facet_group]
            if check.facet_group is not None
            else [g.name for g in report.groups]
        )
        for group in groups:
            results.append(
                _evaluate(check, report.get(check.metric, group), level, allow_undefined)
            )
    return CheckOutcome(results=tuple(results), allow_undefined=allow_undefined)
