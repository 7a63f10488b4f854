"""Bootstrap confidence intervals for bias metrics.

Count-based metrics: a row-level bootstrap (draw n rows with replacement) changes only
how many rows fall into each cell of the count table, and the cell counts of such a
resample follow a multinomial distribution with the observed cell proportions. Drawing
that multinomial directly is therefore an exact row-level bootstrap, at a cost that
depends on the number of cells, not rows; with a group variable its values are cells
too, so CDDL/CDDPL resample exactly as well.

FT: the k-NN counterfactuals are not refitted per resample (that would cost a k-NN
search each time). Its interval resamples the per-row flips of group d (-1, 0, +1), so
it reflects the sampling of d given the fitted neighbours, not of a: it is narrower than
a full bootstrap.

Intervals are percentile intervals over the resamples where the metric is defined;
the number of resamples where it is not is reported beside the interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from trivet.clarify._counts import CountTable, Tables

__all__ = ["percentile_interval", "resample_flips", "resampled_tables"]

#: The cap on array elements per chunk of resamples, to bound memory.
_CHUNK_ELEMENTS = 4_000_000


def resampled_tables(
    table: CountTable,
    rng: np.random.Generator,
    resamples: int,
    fold: Callable[[npt.NDArray[np.int64]], Tables],
) -> Iterator[Tables]:
    """Yield the folded tables of ``resamples`` exact bootstrap resamples, in chunks."""
    per_resample = table.counts.size * max(table.membership.shape[0], 1) * 8
    chunk = max(1, min(resamples, _CHUNK_ELEMENTS // max(per_resample, 1)))
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        yield fold(table.resample(rng, size))
        done += size


def resample_flips(
    flips: npt.NDArray[np.int8], rng: np.random.Generator, resamples: int
) -> npt.NDArray[np.float64]:
    """Return FT for ``resamples`` bootstrap resamples of group d's flips."""
    n = len(flips)
    if n == 0:
        return np.full(resamples, np.nan)
    counts = np.array([(flips == -1).sum(), (flips == 0).sum(), (flips == 1).sum()])
    draws = rng.multinomial(n, counts / n, size=resamples)
    return np.asarray((draws[:, 2] - draws[:, 0]) / n, dtype=np.float64)


def percentile_interval(
    samples: npt.NDArray[np.float64], level: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Return (lower, upper, undefined count) over axis 0 of ``samples``.

    NaN resamples are left out; where every resample is NaN the bounds are NaN.
    Interpolates linearly between order statistics, except where infinities (possible in
    ``clarify_compatible`` mode) make that meaningless: there the nearest order
    statistic at or beyond the quantile is used.
    """
    alpha = (1.0 - level) / 2.0
    undefined = np.isnan(samples).sum(axis=0).astype(np.int64)
    flat = samples.reshape(samples.shape[0], -1)
    lower = np.full(flat.shape[1], np.nan)
    upper = np.full(flat.shape[1], np.nan)
    for j in range(flat.shape[1]):
        column = flat[:, j]
        column = column[~np.isnan(column)]
        if column.size == 0:
            continue
        if np.isfinite(column).all():
            lo, hi = np.quantile(column, [alpha, 1.0 - alpha], method="linear")
        else:
            lo, hi = np.quantile(column, [alpha, 1.0 - alpha], method="inverted_cdf")
        lower[j], upper[j] = lo, hi
    shape = samples.shape[1:]
    return lower.reshape(shape), upper.reshape(shape), undefined
