"""Post-training bias metrics: DPPL, DI, DCA, DCR, RD, SD, DAR, DRR, AD, TE, CDDPL, FT, GE.

Notation per facet group s (a: the rest, d: the group): ``n_s`` rows, ``n_s^(1)`` and
``n_s^(0)`` positive and negative labels, ``n̂_s^(1)`` and ``n̂_s^(0)`` positive and negative
predictions, ``TP_s, FP_s, FN_s, TN_s`` the confusion counts, ``q̂_s = n̂_s^(1)/n_s``.

Every metric but FT is a vectorised function of the count tables. Undefined values are
NaN, reported as None with a reason. In ``clarify_compatible`` mode a ratio with a zero
denominator is +/-inf (0/0 = 0) and inf - inf = 0, as smclarify 0.5 computes them; in
``default`` mode such a value is undefined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trivet.clarify._counts import A, D, Tables
from trivet.clarify.config import Mode
from trivet.clarify.metrics._spec import (
    Bases,
    BasesFn,
    FloatArray,
    Metric,
    MetricSpec,
    Reason,
    confusion,
    difference,
    divide,
    empty_to_nan,
    group_sizes,
    predictions,
    sizes,
    zero_bases_reason,
)
from trivet.clarify.metrics.pretraining import cdd, cdd_reason

__all__ = [
    "AD",
    "CDDPL",
    "DAR",
    "DCA",
    "DCR",
    "DI",
    "DPPL",
    "DRR",
    "GE",
    "RD",
    "SD",
    "SPECS",
    "TE",
    "FlipTest",
    "flip_test",
]


def _tp_fp_fn_tn(t: Tables) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    c = confusion(t)  # (..., side, label, predicted)
    return c[..., 1, 1], c[..., 0, 1], c[..., 1, 0], c[..., 0, 0]


def DPPL(t: Tables, mode: Mode) -> FloatArray:
    """Difference in positive proportions in predicted labels: ``q̂_a - q̂_d``; range [-1, 1].

    Positive when the model predicts the positive outcome more often for a.
    """
    p = predictions(t)
    with np.errstate(all="ignore"):
        q = p[..., 1] / p.sum(axis=-1)
    return empty_to_nan(q[..., A] - q[..., D], t)


def DI(t: Tables, mode: Mode) -> FloatArray:
    """Disparate impact: ``DI = q̂_d / q̂_a``; range [0, +inf), 1 means parity.

    Below 1 when d receives positive predictions less often (the "four-fifths rule"
    flags DI < 0.8). ``clarify_compatible``: q̂_a = 0 gives +inf (0 if q̂_d = 0 too);
    ``default``: undefined.
    """
    p = predictions(t)
    with np.errstate(all="ignore"):
        q = p[..., 1] / p.sum(axis=-1)
    return empty_to_nan(divide(q[..., D], q[..., A], mode), t)


def DCA(t: Tables, mode: Mode) -> FloatArray:
    """Difference in conditional acceptance (Clarify docs: DCAcc): ``c_a - c_d``.

    ``c_s = n_s^(1) / n̂_s^(1)``: observed positives per predicted positive. Range
    (-inf, +inf); positive when the model accepts d more readily than its labels warrant
    relative to a. Undefined (compatible: +/-inf) without positive predictions in a group.
    """
    y = confusion(t).sum(axis=-1)
    p = predictions(t)
    c = divide(y[..., 1], p[..., 1], mode)
    return empty_to_nan(difference(c[..., A], c[..., D], mode), t)


def DCR(t: Tables, mode: Mode) -> FloatArray:
    """Difference in conditional rejection: ``r_d - r_a``, ``r_s = n_s^(0) / n̂_s^(0)``.

    Range (-inf, +inf); positive when d is rejected more readily than its labels warrant
    relative to a. Undefined (compatible: +/-inf) without negative predictions in a group.
    """
    y = confusion(t).sum(axis=-1)
    p = predictions(t)
    r = divide(y[..., 0], p[..., 0], mode)
    return empty_to_nan(difference(r[..., D], r[..., A], mode), t)


def RD(t: Tables, mode: Mode) -> FloatArray:
    """Recall difference: ``TP_a/(TP_a + FN_a) - TP_d/(TP_d + FN_d)``; range [-1, 1].

    Positive when the model finds the true positives of a more often (equal opportunity).
    Undefined (compatible: 0) when a group has no positive labels.
    """
    tp, _, fn, _ = _tp_fp_fn_tn(t)
    rec = divide(tp, tp + fn, mode)
    return empty_to_nan(rec[..., A] - rec[..., D], t)


def SD(t: Tables, mode: Mode) -> FloatArray:
    """Specificity difference: ``TN_d/(TN_d + FP_d) - TN_a/(TN_a + FP_a)``; range [-1, 1].

    Positive when d's true negatives are recognised more often, i.e. a suffers more false
    positives. Undefined (compatible: 0) when a group has no negative labels.
    """
    _, fp, _, tn = _tp_fp_fn_tn(t)
    spec = divide(tn, tn + fp, mode)
    return empty_to_nan(spec[..., D] - spec[..., A], t)


def DAR(t: Tables, mode: Mode) -> FloatArray:
    """Difference in acceptance rates (precision): ``TP_a/n̂_a^(1) - TP_d/n̂_d^(1)``; [-1, 1].

    Positive when a positive prediction is more often right for a than for d. Undefined
    (compatible: 0) without positive predictions in a group.
    """
    tp, _, _, _ = _tp_fp_fn_tn(t)
    p = predictions(t)
    ar = divide(tp, p[..., 1], mode)
    return empty_to_nan(ar[..., A] - ar[..., D], t)


def DRR(t: Tables, mode: Mode) -> FloatArray:
    """Difference in rejection rates: ``TN_d/n̂_d^(0) - TN_a/n̂_a^(0)``; range [-1, 1].

    Positive when a negative prediction is more often right for d than for a. Undefined
    (compatible: 0) without negative predictions in a group.
    """
    _, _, _, tn = _tp_fp_fn_tn(t)
    p = predictions(t)
    rr = divide(tn, p[..., 0], mode)
    return empty_to_nan(rr[..., D] - rr[..., A], t)


def AD(t: Tables, mode: Mode) -> FloatArray:
    """Accuracy difference: ``(TP_a + TN_a)/n_a - (TP_d + TN_d)/n_d``; range [-1, 1].

    Positive when the model is more accurate for a.
    """
    tp, _, _, tn = _tp_fp_fn_tn(t)
    acc = divide(tp + tn, sizes(t), mode)
    return empty_to_nan(acc[..., A] - acc[..., D], t)


def TE(t: Tables, mode: Mode) -> FloatArray:
    """Treatment equality: ``FN_d/FP_d - FN_a/FP_a``; range (-inf, +inf).

    Positive when d's errors lean more towards false negatives than a's. Undefined
    (compatible: +/-inf, or 0 when both ratios are inf) when a group has no false
    positives.
    """
    _, fp, fn, _ = _tp_fp_fn_tn(t)
    tau = divide(fn, fp, mode)
    return empty_to_nan(difference(tau[..., D], tau[..., A], mode), t)


def CDDPL(t: Tables, mode: Mode) -> FloatArray:
    """Conditional demographic disparity in predicted labels; range [-1, 1].

    CDDL's formula (see :func:`trivet.clarify.metrics.pretraining.CDDL`) with predicted
    instead of observed labels. Needs a group variable.
    """
    return cdd(t.binary.sum(axis=-3), t, mode)


def GE(t: Tables, mode: Mode) -> FloatArray:
    """Generalized entropy index with alpha = 2 over the whole dataset; range [0, +inf).

    ``b_i = ŷ_i - y_i + 1`` (0 for a false negative, 1 when right, 2 for a false
    positive), ``GE = sum_i ((b_i / mean(b))^2 - 1) / (2 n)``: half the squared
    coefficient of variation of b. It does not depend on the facet (every group reports
    the same value). Undefined when every prediction is a false negative.
    """
    c = confusion(t).sum(axis=-3)  # (..., label, predicted)
    b0, b2 = c[..., 1, 0], c[..., 0, 1]
    b1 = c[..., 1, 1] + c[..., 0, 0]
    n = b0 + b1 + b2
    with np.errstate(all="ignore"):
        mean = (b1 + 2 * b2) / n
        value = (b1 * ((1 / mean) ** 2 - 1) + b2 * ((2 / mean) ** 2 - 1) - b0) / (2 * n)
    return np.where((n == 0) | (mean == 0), np.nan, value)


# -- flip test ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class FlipTest:
    """The flip test of one comparison: the value and each d row's flip (-1, 0, +1)."""

    value: float
    flips: npt.NDArray[np.int8]
    neighbors: int


def flip_test(
    x_a: npt.NDArray[np.float64],
    pred_a: npt.NDArray[np.bool_],
    x_d: npt.NDArray[np.float64],
    pred_d: npt.NDArray[np.bool_],
    *,
    mode: Mode,
    neighbors: int = 5,
    n_jobs: int | None = None,
) -> FlipTest:
    """Counterfactual flip test: ``FT = (F+ - F-) / n_d``; range [-1, 1].

    For every row of d, the model's predictions for its k nearest neighbours in a
    (majority vote) give the outcome "had it been in a". ``default``: features are
    standardised (z-scores over both groups), k = ``neighbors`` (odd, at most n_a), and
    ``F+`` counts d rows predicted negative whose a-neighbours are predicted positive,
    ``F-`` the reverse, as the Clarify documentation defines it: positive FT means d is
    disadvantaged. Neighbours come from SciPy's k-d tree; ties among equidistant
    neighbours are broken arbitrarily. ``clarify_compatible`` reproduces smclarify 0.5's
    code: raw features, k = 5 if n_a > 9 else 1, scikit-learn's neighbours, and the
    opposite sign (it counts d rows predicted positive whose a-neighbours are predicted
    negative as F+).
    """
    n_a, n_d = len(x_a), len(x_d)
    if n_a == 0 or n_d == 0:
        return FlipTest(value=float("nan"), flips=np.zeros(n_d, dtype=np.int8), neighbors=0)
    if mode == "clarify_compatible":
        k = 5 if n_a > 9 else 1
    else:
        both = np.concatenate([x_a, x_d])
        mean = both.mean(axis=0)
        scale = both.std(axis=0)
        scale[scale == 0] = 1.0
        x_a, x_d = (x_a - mean) / scale, (x_d - mean) / scale
        k = min(neighbors, n_a)
        k -= 1 - k % 2  # odd: a binary majority vote never ties
    nearest = _nearest(x_a, x_d, k, exact_sklearn=mode == "clarify_compatible", n_jobs=n_jobs)
    as_if_a = pred_a[nearest].sum(axis=1) * 2 > k
    model_d = pred_d.astype(bool)
    flips = as_if_a.astype(np.int8) - model_d.astype(np.int8)  # +1: d denied, a-like granted
    if mode == "clarify_compatible":
        flips = -flips
    return FlipTest(value=float(flips.sum()) / n_d, flips=flips, neighbors=k)


def _morton_order(points: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Return an order of ``points`` along a Z-order curve (nearby points end up close).

    Querying a k-d tree in this order keeps its nodes in cache: 2-3x faster on large
    inputs, with the same neighbours (each query is independent of the others).
    """
    dims = points.shape[1]
    bits = min(16, 63 // max(dims, 1))
    if bits < 2 or len(points) < 10_000:
        return np.arange(len(points))
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    cells = ((points - low) / span * (2**bits - 1)).astype(np.uint64)
    key = np.zeros(len(points), dtype=np.uint64)
    for b in range(bits):
        for j in range(dims):
            bit = (cells[:, j] >> np.uint64(b)) & np.uint64(1)
            key |= bit << np.uint64(b * dims + j)
    return np.argsort(key, kind="stable")


def _nearest(
    x_a: npt.NDArray[np.float64],
    x_d: npt.NDArray[np.float64],
    k: int,
    *,
    exact_sklearn: bool,
    n_jobs: int | None,
) -> npt.NDArray[np.intp]:
    """Indices into ``x_a`` of the k nearest neighbours of every row of ``x_d``.

    ``exact_sklearn`` uses scikit-learn's NearestNeighbors as smclarify does (the same
    neighbours among equidistant ones); otherwise SciPy's cKDTree, which is faster.
    """
    order = _morton_order(x_d)
    queries = x_d[order]
    if exact_sklearn:
        from sklearn.neighbors import NearestNeighbors

        index = NearestNeighbors(n_neighbors=k, n_jobs=n_jobs).fit(x_a)
        found = index.kneighbors(queries, return_distance=False)
    else:
        from scipy.spatial import cKDTree

        tree = cKDTree(x_a, leafsize=32, balanced_tree=False)
        _, found = tree.query(queries, k=k, workers=n_jobs or 1)
    found = np.asarray(found, dtype=np.intp).reshape(len(queries), k)
    nearest = np.empty_like(found)
    nearest[order] = found
    return nearest


def _ft_placeholder(t: Tables, mode: Mode) -> FloatArray:
    return np.full(sizes(t).shape[:-1], np.nan)


# -- specs ----------------------------------------------------------------------------------


def _pred_bases(outcome: int, what: str) -> BasesFn:
    def bases(t: Tables) -> Bases:
        p = predictions(t)
        return {
            **group_sizes(t),
            f"{what} in facet a": p[..., A, outcome],
            f"{what} in facet d": p[..., D, outcome],
        }

    return bases


def _label_bases(outcome: int, what: str) -> BasesFn:
    def bases(t: Tables) -> Bases:
        y = confusion(t).sum(axis=-1)
        return {
            **group_sizes(t),
            f"{what} in facet a": y[..., A, outcome],
            f"{what} in facet d": y[..., D, outcome],
        }

    return bases


def _fp_bases(t: Tables) -> Bases:
    _, fp, _, _ = _tp_fp_fn_tn(t)
    return {
        **group_sizes(t),
        "false positives in facet a": fp[..., A],
        "false positives in facet d": fp[..., D],
    }


def _di_bases(t: Tables) -> Bases:
    p = predictions(t)
    return {**group_sizes(t), "positive predictions in facet a": p[..., A, 1]}


def _ge_bases(t: Tables) -> Bases:
    return {"rows": sizes(t).sum(axis=-1)}


def _ge_reason(t: Tables, mode: Mode) -> str | None:
    return "GE is undefined: every prediction is a false negative (mean benefit 0)"


def _from_bases(name: str, bases: BasesFn) -> Reason:
    def reason(t: Tables, mode: Mode) -> str | None:
        return zero_bases_reason(name, bases(t))

    return reason


def _spec(fn: Metric, title: str, bases: BasesFn, reason: Reason | None = None) -> MetricSpec:
    return MetricSpec(
        name=fn.__name__,
        stage="post_training",
        title=title,
        compute=fn,
        bases=bases,
        reason=reason if reason is not None else _from_bases(fn.__name__, bases),
    )


SPECS: tuple[MetricSpec, ...] = (
    _spec(DPPL, "Difference in Positive Proportions in Predicted Labels", group_sizes),
    _spec(DI, "Disparate Impact", _di_bases),
    _spec(DCA, "Difference in Conditional Acceptance", _pred_bases(1, "positive predictions")),
    _spec(DCR, "Difference in Conditional Rejection", _pred_bases(0, "negative predictions")),
    _spec(RD, "Recall Difference", _label_bases(1, "positive labels")),
    _spec(SD, "Specificity Difference", _label_bases(0, "negative labels")),
    _spec(DAR, "Difference in Acceptance Rates", _pred_bases(1, "positive predictions")),
    _spec(DRR, "Difference in Rejection Rates", _pred_bases(0, "negative predictions")),
    _spec(AD, "Accuracy Difference", group_sizes),
    _spec(TE, "Treatment Equality", _fp_bases),
    _spec(
        CDDPL,
        "Conditional Demographic Disparity in Predicted Labels",
        group_sizes,
        cdd_reason("CDDPL", "prediction"),
    ),
    MetricSpec(
        name="FT",
        stage="post_training",
        title="Flip Test",
        compute=_ft_placeholder,
        bases=group_sizes,
        count_based=False,
    ),
    _spec(GE, "Generalized Entropy", _ge_bases, _ge_reason),
)
