"""Pre-training bias metrics: CI, DPL, KL, JS, LP, TVD, KS, CDDL.

Each is a vectorised function of the count tables (see :mod:`trivet.clarify._counts`),
with SageMaker Clarify's definitions. Notation: ``n_a``, ``n_d`` rows in facet a (the
rest) and facet d (the group); ``n_a^(1)``, ``n_d^(1)`` rows with a positive label;
``q_a = n_a^(1)/n_a``, ``q_d = n_d^(1)/n_d``; ``P_a``, ``P_d`` the label distributions
(over the two classes, or over every label value) of each group.

Undefined values are NaN (reported as None with a reason). ``mode`` switches between
smclarify 0.5's conventions (``clarify_compatible``) and the corrected ones (``default``):
see docs/clarify.md for the table of differences.
"""

from __future__ import annotations

import numpy as np

from trivet.clarify._counts import A, D, Tables
from trivet.clarify.config import Mode
from trivet.clarify.metrics._spec import (
    Bases,
    BoolArray,
    FloatArray,
    MetricSpec,
    Reason,
    divide,
    empty_to_nan,
    group_sizes,
    labels,
    sizes,
    zero_bases_reason,
)

__all__ = ["CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "SPECS", "TVD", "cdd"]


def CI(t: Tables, mode: Mode) -> FloatArray:
    """Class imbalance: ``CI = (n_a - n_d) / (n_a + n_d)``; range [-1, 1].

    Positive when d is the smaller group. Both modes agree; undefined if a group is empty.
    """
    n = sizes(t)
    with np.errstate(all="ignore"):
        value = (n[..., A] - n[..., D]) / (n[..., A] + n[..., D])
    return empty_to_nan(value, t)


def DPL(t: Tables, mode: Mode) -> FloatArray:
    """Difference in proportions of labels: ``DPL = q_a - q_d``; range [-1, 1].

    Positive when a has the higher rate of positive labels. Both modes agree.
    """
    y = labels(t)
    with np.errstate(all="ignore"):
        q = y[..., 1] / y.sum(axis=-1)
    return empty_to_nan(q[..., A] - q[..., D], t)


def _distributions(t: Tables, mode: Mode) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Return (P_a, P_d, support mask) over the label values, per mode.

    ``clarify_compatible``: the proportions of each group, kept only where both are
    non-zero, without renormalising (smclarify's ``pdfs_aligned_nonzero``).
    ``default``: the full distributions, after adding ``t.smoothing`` to every count.
    """
    counts = t.values
    if mode == "default" and t.smoothing > 0:
        counts = counts + t.smoothing
    with np.errstate(all="ignore"):
        p = counts / counts.sum(axis=-1, keepdims=True)
    p_a, p_d = p[..., A, :], p[..., D, :]
    mask: BoolArray
    if mode == "clarify_compatible":
        mask = (t.values[..., A, :] > 0) & (t.values[..., D, :] > 0)
    else:
        mask = np.ones(p_a.shape, dtype=np.bool_)
    return np.asarray(p_a, dtype=np.float64), np.asarray(p_d, dtype=np.float64), mask


def _support_to_nan(value: FloatArray, mask: BoolArray, t: Tables) -> FloatArray:
    return empty_to_nan(np.where(mask.any(axis=-1), value, np.nan), t)


def _xlogy(x: FloatArray, y: FloatArray, mask: BoolArray) -> FloatArray:
    """Sum of ``x * log(x / y)`` over ``mask & x > 0`` (0 log 0 = 0)."""
    use = mask & (x > 0)
    with np.errstate(all="ignore"):
        terms = np.where(use, x * np.log(x / y), 0.0)
    return np.asarray(terms.sum(axis=-1), dtype=np.float64)


def KL(t: Tables, mode: Mode) -> FloatArray:
    """Kullback-Leibler divergence: ``KL = sum_y P_a(y) log(P_a(y) / P_d(y))``.

    Range [0, +inf); 0 when the label distributions agree. ``clarify_compatible`` sums
    only over label values present in both groups without renormalising, so it can be
    negative (e.g. when d has no positive labels). ``default`` sums over the support of
    P_a; where P_d(y) = 0 < P_a(y) the divergence is infinite and reported undefined
    (or finite with ``divergence_smoothing``).
    """
    p_a, p_d, mask = _distributions(t, mode)
    value = _xlogy(p_a, p_d, mask)
    if mode == "default":
        value = np.where(((p_a > 0) & (p_d == 0)).any(axis=-1), np.nan, value)
    return _support_to_nan(value, mask, t)


def JS(t: Tables, mode: Mode) -> FloatArray:
    """Jensen-Shannon divergence: ``JS = (KL(P_a, P) + KL(P_d, P)) / 2``, ``P = (P_a + P_d)/2``.

    Range [0, ln 2]. ``clarify_compatible`` restricts to label values present in both
    groups (smclarify); ``default`` uses the full distributions (always finite).
    """
    p_a, p_d, mask = _distributions(t, mode)
    m = (p_a + p_d) / 2
    value = 0.5 * (_xlogy(p_a, m, mask) + _xlogy(p_d, m, mask))
    return _support_to_nan(value, mask, t)


def _norm(t: Tables, mode: Mode, order: float) -> FloatArray:
    p_a, p_d, mask = _distributions(t, mode)
    diff = np.where(mask, np.abs(p_a - p_d), 0.0)
    if order == np.inf:
        value = diff.max(axis=-1)
    elif order == 1:
        value = diff.sum(axis=-1)
    else:
        value = np.sqrt((diff**2).sum(axis=-1))
    return _support_to_nan(np.asarray(value, dtype=np.float64), mask, t)


def LP(t: Tables, mode: Mode) -> FloatArray:
    """Lp-norm (p = 2): ``LP = sqrt(sum_y (P_a(y) - P_d(y))^2)``; range [0, sqrt(2)].

    For a binary label, ``LP = sqrt(2) |DPL|`` in default mode. ``clarify_compatible``
    restricts to label values present in both groups.
    """
    return _norm(t, mode, 2)


def TVD(t: Tables, mode: Mode) -> FloatArray:
    """Total variation distance: ``TVD = 1/2 sum_y |P_a(y) - P_d(y)|``; range [0, 1].

    For a binary label, ``TVD = |DPL|`` in default mode. ``clarify_compatible``
    restricts to label values present in both groups.
    """
    return _norm(t, mode, 1) / 2


def KS(t: Tables, mode: Mode) -> FloatArray:
    """Kolmogorov-Smirnov (Clarify's): ``KS = max_y |P_a(y) - P_d(y)|``; range [0, 1].

    As Clarify defines it this is the largest gap between the two distributions' values,
    not between their CDFs. ``clarify_compatible`` restricts to values present in both.
    """
    return _norm(t, mode, np.inf)


def cdd(strata: FloatArray, t: Tables, mode: Mode) -> FloatArray:
    """Conditional demographic disparity of an outcome, from ``(..., side, outcome, V)``.

    ``DD_i = n_d,i^(0) / n_i^(0) - n_d,i^(1) / n_i^(1)`` (d's share of the rejected minus
    its share of the accepted in stratum i), ``CDD = sum_i n_i DD_i / sum_i n_i``.
    ``clarify_compatible`` takes a share with no rows as 0 and needs both outcomes in
    the data; ``default`` averages over the strata where DD_i is defined only.
    """
    total = strata.sum(axis=-3)  # (..., outcome, V)
    n_v = total.sum(axis=-2)
    d0, d1 = strata[..., D, 0, :], strata[..., D, 1, :]
    n0, n1 = total[..., 0, :], total[..., 1, :]
    with np.errstate(all="ignore"):
        if mode == "clarify_compatible":
            dd = np.where(n0 > 0, d0 / n0, 0.0) - np.where(n1 > 0, d1 / n1, 0.0)
            value = divide((n_v * dd).sum(axis=-1), n_v.sum(axis=-1), mode)
            both = (n0.sum(axis=-1) > 0) & (n1.sum(axis=-1) > 0)
            value = np.where(both, value, np.nan)
        else:
            ok = (n0 > 0) & (n1 > 0)
            dd = np.where(ok, d0 / n0 - d1 / n1, 0.0)
            weight = np.where(ok, n_v, 0.0)
            value = divide((weight * dd).sum(axis=-1), weight.sum(axis=-1), mode)
    if not t.has_group:
        value = np.full(np.shape(value), np.nan)
    return empty_to_nan(np.asarray(value, dtype=np.float64), t)


def CDDL(t: Tables, mode: Mode) -> FloatArray:
    """Conditional demographic disparity in labels; range [-1, 1].

    ``CDDL = sum_i n_i DD_i / n`` over the strata i of the group variable, with
    ``DD_i = n_d,i^(0)/n_i^(0) - n_d,i^(1)/n_i^(1)``. Positive when d's share of the
    rejected exceeds its share of the accepted within strata. Needs a group variable.
    """
    return cdd(t.binary.sum(axis=-2), t, mode)


def cdd_reason(name: str, outcome: str) -> Reason:
    """Return the reason function of CDDL/CDDPL."""

    def reason(t: Tables, mode: Mode) -> str | None:
        empty = zero_bases_reason(name, group_sizes(t))
        if empty:
            return empty
        if not t.has_group:
            return f"{name} needs a group variable: pass group_variable=<column>"
        if mode == "clarify_compatible":
            return f"{name} is undefined: the data has no positive or no negative {outcome}s"
        return (
            f"{name} is undefined: no stratum of the group variable has both positive and "
            f"negative {outcome}s"
        )

    return reason


def _divergence_reason(name: str) -> Reason:
    def reason(t: Tables, mode: Mode) -> str | None:
        empty = zero_bases_reason(name, group_sizes(t))
        if empty:
            return empty
        if mode == "clarify_compatible":
            return (
                f"{name} is undefined: no label value occurs in both facet groups "
                "(smclarify raises here)"
            )
        return (
            f"{name} is infinite: a label value that occurs in facet a never occurs in "
            "facet d; use JS or TVD, or pass divergence_smoothing=0.5"
        )

    return reason


def _reason_from_bases(name: str) -> Reason:
    def reason(t: Tables, mode: Mode) -> str | None:
        return zero_bases_reason(name, group_sizes(t))

    return reason


def _label_bases(t: Tables) -> Bases:
    return group_sizes(t)


SPECS: tuple[MetricSpec, ...] = tuple(
    MetricSpec(
        name=fn.__name__,
        stage="pre_training",
        title=title,
        compute=fn,
        bases=_label_bases,
        reason=reason,
    )
    for fn, title, reason in (
        (CI, "Class Imbalance", _reason_from_bases("CI")),
        (DPL, "Difference in Positive Proportions in Labels", _reason_from_bases("DPL")),
        (KL, "Kullback-Leibler Divergence", _divergence_reason("KL")),
        (JS, "Jensen-Shannon Divergence", _divergence_reason("JS")),
        (LP, "L-p Norm", _divergence_reason("LP")),
        (TVD, "Total Variation Distance", _divergence_reason("TVD")),
        (KS, "Kolmogorov-Smirnov Distance", _divergence_reason("KS")),
        (CDDL, "Conditional Demographic Disparity in Labels", cdd_reason("CDDL", "label")),
    )
)
