"""Per-feature statistics of a feature group, over each record's latest offline row.

:meth:`FeatureStore.statistics <trivet.featurestore.FeatureStore.statistics>` reads the
latest row of every record from the offline table (as :meth:`~trivet.featurestore.
FeatureStore.latest_rows` does: soft-deleted records left out, TTL not applied) and
summarises each column. It needs ``feature:read_offline`` on the group.

What each :class:`FeatureStatistics` holds, by feature type:

====================  =========================================================
type                  fields filled (the others are None or empty)
====================  =========================================================
``int``, ``float``    ``count``, ``nulls``, ``distinct``, ``min``, ``max``,
                      ``mean``, ``stddev``, ``histogram``; floats also ``infinite``
``timestamp``         ``count``, ``nulls``, ``distinct``, ``min``, ``max``,
                      ``histogram`` (edges are datetimes)
``string``, ``bool``  ``count``, ``nulls``, ``distinct``, ``top``
``list<…>``           ``count``, ``nulls``
====================  =========================================================

The rules, stated once:

- ``count`` is the number of records (rows of the latest-row table), nulls included;
  ``nulls`` counts missing values, and for floats NaN too. A float's ``±inf`` values are
  counted in ``infinite`` and left out of ``min``, ``max``, ``mean``, ``stddev`` and the
  histogram, so ``sum(histogram.counts) == count - nulls - infinite`` always.
- ``mean`` is the arithmetic mean; ``stddev`` the *sample* standard deviation
  (divisor ``n - 1``), None with fewer than two values.
- The histogram has ``bins`` equal-width bins from ``min`` to ``max``: ``edges`` holds
  ``len(counts) + 1`` ascending edges, every bin is half-open ``[lo, hi)`` except the
  last, ``[lo, max]``, as in :func:`numpy.histogram`. An int feature spanning fewer
  than ``bins`` integers gets one bin per integer (``max - min + 1`` bins). When every
  value is equal there is one bin, ``edges == (v, v)``. No value: no histogram.
- ``top`` holds up to 10 ``(value, count)`` pairs, most frequent first, ties by value.

Example:
    >>> import pyarrow as pa
    >>> s = column_statistics("age", "int", pa.array([30, 40, None, 40]), bins=4)
    >>> s.count, s.nulls, s.distinct, s.min, s.max, s.mean
    (4, 1, 2, 30, 40, 36.666666666666664)
    >>> s.histogram.edges, s.histogram.counts
    ((30.0, 32.5, 35.0, 37.5, 40.0), (1, 0, 0, 2))
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from trivet.errors import ValidationError, did_you_mean
from trivet.featurestore.definitions import Dtype, FeatureGroup
from trivet.platform.catalog import now_utc

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from trivet.featurestore.store import FeatureStore

__all__ = [
    "MAX_BINS",
    "FeatureStatistics",
    "GroupStatistics",
    "Histogram",
    "ValueCount",
    "column_statistics",
    "group_statistics",
    "table_statistics",
]

MAX_BINS = 1000
TOP_VALUES = 10
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Number = int | float
Scalar = int | float | dt.datetime


@dataclass(frozen=True, kw_only=True)
class Histogram:
    """Equal-width bins: ``counts[i]`` values lie in ``[edges[i], edges[i + 1])``.

    The last bin also holds its upper edge. ``len(edges) == len(counts) + 1``.
    Edges are floats for numbers, aware UTC datetimes for timestamps.
    """

    edges: tuple[float, ...] | tuple[dt.datetime, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class ValueCount:
    """One of the most frequent values of a string or bool feature."""

    value: str | bool
    count: int


@dataclass(frozen=True, kw_only=True)
class FeatureStatistics:
    """The summary of one column (see the module's docstring for which fields apply)."""

    name: str
    dtype: str  # the feature type's name: "int", "float", "string", ...
    count: int  # records, nulls included
    nulls: int  # missing values (floats: NaN too)
    infinite: int = 0  # float ±inf values (kept out of min/max/mean/stddev/histogram)
    distinct: int | None = None  # distinct non-null values (None for lists)
    min: Scalar | None = None
    max: Scalar | None = None
    mean: float | None = None  # numbers only
    stddev: float | None = None  # numbers only; sample (n - 1); None under two values
    histogram: Histogram | None = None  # numbers and timestamps
    top: tuple[ValueCount, ...] = ()  # strings and bools


@dataclass(frozen=True, kw_only=True)
class GroupStatistics:
    """Statistics of a feature group's records (each record's latest offline row)."""

    group: str
    records: int  # records summarised (soft-deleted ones are left out)
    bins: int  # the histogram bins asked for
    computed_at: dt.datetime
    event_time: FeatureStatistics  # the event-time column's statistics
    features: tuple[FeatureStatistics, ...]  # in the group's feature order

    def feature(self, name: str) -> FeatureStatistics:
        """Return the statistics of feature ``name``."""
        for stats in self.features:
            if stats.name == name:
                return stats
        raise ValidationError(
            f"There are no statistics for a feature {name!r} of group {self.group!r}.",
            hint=did_you_mean(name, [s.name for s in self.features]),
        )


def check_bins(bins: object) -> int:
    """Return ``bins`` if it is an int from 1 to :data:`MAX_BINS`, else raise."""
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise ValidationError(
            f"bins must be an integer from 1 to {MAX_BINS}, not {bins!r}.", hint="e.g. bins=20"
        )
    return bins


def group_statistics(store: FeatureStore, name: str, *, bins: int = 20) -> GroupStatistics:
    """See :meth:`trivet.featurestore.FeatureStore.statistics`."""
    check_bins(bins)
    # latest_rows authorizes feature:read_offline and refuses a group without offline table
    table = cast("pa.Table", store.latest_rows(name, 1, to="arrow"))
    group, _ = store._load(name)
    return table_statistics(group, table, bins=bins)


def table_statistics(group: FeatureGroup, table: pa.Table, *, bins: int = 20) -> GroupStatistics:
    """Summarise a table holding the group's event time and features (one row a record)."""
    check_bins(bins)
    features = tuple(
        column_statistics(f.name, f.dtype, table[f.name], bins=bins)
        for f in group.features
        if f.name in table.column_names
    )
    return GroupStatistics(
        group=group.name,
        records=table.num_rows,
        bins=bins,
        computed_at=now_utc(),
        event_time=column_statistics(
            group.event_time, Dtype.TIMESTAMP, table[group.event_time], bins=bins
        ),
        features=features,
    )


def column_statistics(
    name: str,
    dtype: Dtype | str,
    values: pa.Array | pa.ChunkedArray,
    *,
    bins: int = 20,
    top: int = TOP_VALUES,
) -> FeatureStatistics:
    """Summarise one column of feature type ``dtype`` (see the module's rules).

    Args:
        name: the column's name (copied into the result).
        dtype: its feature type.
        values: its values, an Arrow array of that type.
        bins: the histogram's bins (numbers and timestamps).
        top: how many most frequent values to keep (strings and bools).
    """
    import pyarrow as pa

    kind = Dtype.parse(dtype)
    check_bins(bins)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    count, nulls = len(values), values.null_count
    if kind.is_list:
        return FeatureStatistics(name=name, dtype=kind.value, count=count, nulls=nulls)
    if kind in (Dtype.STRING, Dtype.BOOL):
        distinct, tops = _top(values, top)
        return FeatureStatistics(
            name=name, dtype=kind.value, count=count, nulls=nulls, distinct=distinct, top=tops
        )
    if kind is Dtype.TIMESTAMP:
        return _timestamps(name, values, bins)
    return _numbers(name, kind, values, bins)


def _top(values: pa.Array, top: int) -> tuple[int, tuple[ValueCount, ...]]:
    import pyarrow.compute as pc

    counted = pc.value_counts(values.drop_null())
    pairs = sorted(
        zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True),
        key=lambda vc: (-vc[1], vc[0]),
    )
    return len(pairs), tuple(ValueCount(value=v, count=int(c)) for v, c in pairs[:top])


def _numbers(name: str, kind: Dtype, values: pa.Array, bins: int) -> FeatureStatistics:
    import numpy as np
    import pyarrow.compute as pc

    nulls, infinite = values.null_count, 0
    data = values.drop_null().to_numpy(zero_copy_only=False)
    if kind is Dtype.FLOAT:
        nan = np.isnan(data)
        nulls += int(nan.sum())
        finite = np.isfinite(data)
        infinite = int((~finite & ~nan).sum())
        data = data[finite]
    distinct = int(pc.count_distinct(values, mode="only_valid").as_py()) if len(data) else 0
    if kind is Dtype.FLOAT:  # NaN and ±inf are not among the distinct values
        distinct = len(np.unique(data))
    base = FeatureStatistics(
        name=name,
        dtype=kind.value,
        count=len(values),
        nulls=nulls,
        infinite=infinite,
        distinct=distinct,
    )
    if len(data) == 0:
        return base
    low, high = data.min(), data.max()
    width = bins
    if kind is Dtype.INT and int(high) - int(low) + 1 < bins:
        width = int(high) - int(low) + 1
    edges, counts = _histogram(data.astype(np.float64), float(low), float(high), width)
    as_py: type[int] | type[float] = int if kind is Dtype.INT else float
    return FeatureStatistics(
        name=name,
        dtype=kind.value,
        count=base.count,
        nulls=nulls,
        infinite=infinite,
        distinct=distinct,
        min=as_py(low),
        max=as_py(high),
        mean=_mean(data, float(low), float(high)),
        stddev=_stddev(data),
        histogram=Histogram(edges=tuple(float(e) for e in edges), counts=counts),
    )


def _mean(data: np.ndarray[Any, Any], low: float, high: float) -> float:
    """The mean, without overflow, kept within [low, high] against rounding.

    Integers are added exactly (their high and low 32-bit halves apart, so no int64 sum
    overflows below 2**31 values) and divided once: the correctly rounded mean, where a
    float64 sum of values near 2**62 loses their low digits.
    """
    import numpy as np

    if data.dtype.kind in "iu" and len(data) < 2**31:
        values = data.astype(np.int64, copy=False)
        high_halves = int(np.sum(values >> 32, dtype=np.int64))
        low_halves = int(np.sum(values & 0xFFFFFFFF, dtype=np.int64))
        return min(max((high_halves * 2**32 + low_halves) / len(values), low), high)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.mean(data, dtype=np.float64))
        if not math.isfinite(mean):  # the sum overflowed: add the n-th parts instead
            mean = float(np.sum(data.astype(np.float64) / len(data)))
    return min(max(mean, low), high)


def _stddev(data: np.ndarray[Any, Any]) -> float | None:
    """The sample standard deviation (n - 1), scaled so that it cannot overflow."""
    import numpy as np

    if len(data) < 2:
        return None
    floats = data.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        std = float(np.std(floats, ddof=1))
        if not math.isfinite(std):
            scale = float(np.max(np.abs(floats)))
            std = float(np.std(floats / scale, ddof=1)) * scale
    return std


def _histogram(
    data: np.ndarray[Any, Any], low: float, high: float, bins: int
) -> tuple[np.ndarray[Any, Any], tuple[int, ...]]:
    """Equal-width bins over [low, high] (numpy's rule), safe for any finite range."""
    import numpy as np

    if low == high:
        return np.array([low, high]), (len(data),)
    t = np.linspace(0.0, 1.0, bins + 1)
    edges = low * (1.0 - t) + high * t  # never overflows, unlike low + (high - low) * t
    edges[0], edges[-1] = low, high
    edges = np.maximum.accumulate(edges)
    index = np.searchsorted(edges, data, side="right") - 1
    index = np.clip(index, 0, bins - 1)  # the maximum belongs to the last bin
    counts = np.bincount(index, minlength=bins)
    return edges, tuple(int(c) for c in counts)


def _timestamps(name: str, values: pa.Array, bins: int) -> FeatureStatistics:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    micros = values.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).drop_null()
    data = micros.to_numpy(zero_copy_only=False)
    base = FeatureStatistics(
        name=name,
        dtype=Dtype.TIMESTAMP.value,
        count=len(values),
        nulls=values.null_count,
        distinct=int(pc.count_distinct(micros).as_py()),
    )
    if len(data) == 0:
        return base
    low, high = int(data.min()), int(data.max())
    edges, counts = _histogram(data.astype(np.float64), float(low), float(high), bins)
    stamps = [_from_us(round(float(e))) for e in edges]
    stamps[0], stamps[-1] = _from_us(low), _from_us(high)
    return FeatureStatistics(
        name=name,
        dtype=Dtype.TIMESTAMP.value,
        count=base.count,
        nulls=base.nulls,
        distinct=base.distinct,
        min=_from_us(low),
        max=_from_us(high),
        histogram=Histogram(edges=tuple(stamps), counts=counts),
    )


def _from_us(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=value)
