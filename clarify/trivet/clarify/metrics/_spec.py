"""What a metric is: a vectorised function of the count tables, plus what it rests on.

Every count-based metric is ``compute(tables, mode) -> values`` over any leading batch
axes; a value that is undefined is NaN (the caller reports it as None with a reason).
``bases`` names the counts a metric divides by; the reason for an undefined value and
the small-group warning are both read from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trivet.clarify._counts import A, D, Tables
from trivet.clarify.config import Mode, Stage

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Bases = Mapping[str, FloatArray]
Reason = Callable[[Tables, Mode], str | None]
BasesFn = Callable[[Tables], Bases]
Metric = Callable[[Tables, Mode], FloatArray]

SIDE_NAMES = {A: "a", D: "d"}


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """One bias metric: its name, stage, computation and the counts it rests on."""

    name: str
    stage: Stage
    title: str
    compute: Metric
    bases: BasesFn
    reason: Reason | None = None
    count_based: bool = True


def divide(num: FloatArray, den: FloatArray, mode: Mode) -> FloatArray:
    """Divide elementwise; a zero denominator gives NaN, or smclarify's values.

    ``clarify_compatible``: x/0 = +inf or -inf by the sign of x, and 0/0 = 0 (smclarify's
    ``divide``). ``default``: x/0 is undefined (NaN).
    """
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(all="ignore"):
        out = num / den
    if mode == "clarify_compatible":
        return np.where(den == 0, np.where(num == 0, 0.0, np.copysign(np.inf, num)), out)
    return np.where(den == 0, np.nan, out)


def difference(x: FloatArray, y: FloatArray, mode: Mode) -> FloatArray:
    """Return x - y; in compatible mode inf - inf is 0 (smclarify's special case)."""
    with np.errstate(all="ignore"):
        out = x - y
    if mode == "clarify_compatible":
        return np.where(np.isinf(x) & (x == y), 0.0, out)
    return out


def labels(t: Tables) -> FloatArray:
    """Counts per side and observed label: shape ``(..., 2, 2)``."""
    return np.asarray(t.binary.sum(axis=(-2, -1)), dtype=np.float64)


def predictions(t: Tables) -> FloatArray:
    """Counts per side and predicted label: shape ``(..., 2, 2)``."""
    return np.asarray(t.binary.sum(axis=(-3, -1)), dtype=np.float64)


def confusion(t: Tables) -> FloatArray:
    """Counts per side, label and prediction: shape ``(..., 2, 2, 2)``."""
    return np.asarray(t.binary.sum(axis=-1), dtype=np.float64)


def sizes(t: Tables) -> FloatArray:
    """Rows per side: shape ``(..., 2)``."""
    return np.asarray(t.binary.sum(axis=(-3, -2, -1)), dtype=np.float64)


def group_sizes(t: Tables) -> Bases:
    """The bases of a metric that compares the two groups as wholes."""
    n = sizes(t)
    return {"rows in facet a": n[..., A], "rows in facet d": n[..., D]}


def empty_to_nan(values: FloatArray, t: Tables) -> FloatArray:
    """Make a value NaN where either group is empty (smclarify raises there)."""
    n = sizes(t)
    return np.where((n[..., A] == 0) | (n[..., D] == 0), np.nan, values)


def zero_bases_reason(name: str, bases: Bases) -> str | None:
    """Explain an undefined value by the bases that are zero (scalar tables)."""
    zero = [what for what, value in bases.items() if float(np.asarray(value)) == 0.0]
    if not zero:
        return None
    return f"{name} is undefined: there are no {' and no '.join(zero)}"
