"""Per-feature statistics: hand-computed small tables, and properties of any column."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trivet
from tests.featurestore.conftest import T0, at, detached_group, user_store
from trivet.errors import PermissionDenied, ValidationError
from trivet.featurestore import Dtype, Feature, FeatureGroupSpec, FeatureStore
from trivet.featurestore.stats import (
    FeatureStatistics,
    Histogram,
    ValueCount,
    column_statistics,
    table_statistics,
)
from trivet.platform.settings import Settings

TS = pa.timestamp("us", tz="UTC")


def _group(fs: FeatureStore, name: str = "g", **changes: object) -> None:
    values: dict[str, object] = {
        "name": name,
        "record_id": "id",
        "event_time": "ts",
        "features": [
            Feature(name="x", dtype="float"),
            Feature(name="n", dtype="int"),
            Feature(name="s", dtype="string"),
            Feature(name="t", dtype="timestamp"),
            Feature(name="tags", dtype="list<string>"),
        ],
    }
    values.update(changes)
    fs.create_group(FeatureGroupSpec(**values))  # type: ignore[arg-type]


def _table(rows: list[tuple[object, ...]]) -> pa.Table:
    ids, ts, x, n, s, t, tags = zip(*rows, strict=True)
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "ts": pa.array(ts, TS),
            "x": pa.array(x, pa.float64()),
            "n": pa.array(n, pa.int64()),
            "s": pa.array(s, pa.string()),
            "t": pa.array(t, TS),
            "tags": pa.array(tags, pa.list_(pa.string())),
        }
    )


# -- hand-computed, through the store --------------------------------------------------------
def test_statistics_of_a_small_group(fs: FeatureStore) -> None:
    _group(fs)
    fs.ingest(
        "g",
        _table(
            [
                # id, ts, x, n, s, t, tags
                ("a", at(0), 100.0, 100, "old", at(-100), ["z"]),  # superseded by a's next row
                ("a", at(1), 1.0, 2, "red", at(-1), ["p", "q"]),
                ("b", at(0), 2.0, 2, "blue", at(-2), []),
                ("c", at(0), float("nan"), None, "red", None, None),
                ("d", at(0), float("inf"), 5, None, at(-5), ["p"]),
                ("e", at(0), 4.0, 3, "red", at(-3), None),
                ("f", at(0), None, 2, "blue", at(-4), ["q"]),
            ]
        ),
    )
    stats = fs.statistics("g", bins=3)
    assert (stats.group, stats.records, stats.bins) == ("g", 6, 3)
    assert [f.name for f in stats.features] == ["x", "n", "s", "t", "tags"]

    # x: 1, 2, NaN, inf, 4, null -> values 1, 2, 4; NaN and null are nulls, inf is apart
    x = stats.feature("x")
    assert (x.count, x.nulls, x.infinite, x.distinct) == (6, 2, 1, 3)
    assert (x.min, x.max) == (1.0, 4.0)
    assert x.mean == pytest.approx(7 / 3)
    assert x.stddev == pytest.approx(math.sqrt(7 / 3))  # squares about 7/3: 16/9+1/9+25/9
    assert x.histogram == Histogram(edges=(1.0, 2.0, 3.0, 4.0), counts=(1, 1, 1))
    assert x.top == ()

    # n: 2, 2, null, 5, 3, 2 -> min 2, max 5 spans 4 integers > 3 bins: 3 equal bins
    n = stats.feature("n")
    assert (n.count, n.nulls, n.infinite, n.distinct, n.min, n.max) == (6, 1, 0, 3, 2, 5)
    assert isinstance(n.min, int) and isinstance(n.max, int)
    assert n.mean == pytest.approx(14 / 5)
    assert n.stddev == pytest.approx(math.sqrt(6.8 / 4))  # squares about 2.8: 3 x .64, 4.84, .04
    assert n.histogram == Histogram(edges=(2.0, 3.0, 4.0, 5.0), counts=(3, 1, 1))

    s = stats.feature("s")
    assert (s.count, s.nulls, s.distinct) == (6, 1, 2)
    assert s.top == (ValueCount(value="red", count=3), ValueCount(value="blue", count=2))
    assert s.histogram is None and s.min is None and s.mean is None

    # t: -1h, -2h, null, -5h, -3h, -4h: 3 bins of 80 minutes from -5h to -1h
    t = stats.feature("t")
    assert (t.count, t.nulls, t.distinct, t.min, t.max) == (6, 1, 5, at(-5), at(-1))
    assert t.mean is None and t.stddev is None
    assert t.histogram == Histogram(
        edges=(at(-5), at(-5 + 4 / 3), at(-5 + 8 / 3), at(-1)), counts=(2, 1, 2)
    )

    tags = stats.feature("tags")
    assert tags == FeatureStatistics(name="tags", dtype="list<string>", count=6, nulls=2)

    assert stats.event_time.name == "ts"
    assert (stats.event_time.min, stats.event_time.max) == (at(0), at(1))
    assert stats.computed_at.tzinfo is not None


def test_soft_deleted_records_are_left_out(fs: FeatureStore) -> None:
    _group(fs)
    fs.ingest(
        "g",
        _table(
            [
                ("a", at(0), 1.0, 1, "u", at(0), None),
                ("b", at(0), 3.0, 3, "v", at(0), None),
            ]
        ),
    )
    fs.delete_record("g", "b", event_time=at(1))
    stats = fs.statistics("g")
    assert stats.records == 1
    assert (stats.feature("x").min, stats.feature("x").max) == (1.0, 1.0)


def test_one_value_gives_one_bin_and_small_int_ranges_one_bin_per_integer(
    fs: FeatureStore,
) -> None:
    _group(fs)
    fs.ingest(
        "g",
        _table(
            [
                ("a", at(0), 5.0, 0, "u", at(0), None),
                ("b", at(0), 5.0, 1, "u", at(0), None),
                ("c", at(0), 5.0, 1, "u", at(0), None),
            ]
        ),
    )
    stats = fs.statistics("g", bins=20)
    x = stats.feature("x")
    assert x.histogram == Histogram(edges=(5.0, 5.0), counts=(3,))
    assert (x.stddev, x.distinct) == (0.0, 1)
    # 0..1 spans two integers: two bins, [0, 0.5) and [0.5, 1]
    assert stats.feature("n").histogram == Histogram(edges=(0.0, 0.5, 1.0), counts=(1, 2))
    assert stats.feature("t").histogram == Histogram(edges=(at(0), at(0)), counts=(3,))


def test_an_empty_group_has_counts_of_zero(fs: FeatureStore) -> None:
    _group(fs)
    stats = fs.statistics("g")
    assert stats.records == 0
    x = stats.feature("x")
    assert (x.count, x.nulls, x.distinct, x.min, x.mean, x.stddev, x.histogram) == (
        0,
        0,
        0,
        None,
        None,
        None,
        None,
    )
    assert stats.feature("s").top == ()


def test_a_single_value_has_no_stddev(fs: FeatureStore) -> None:
    _group(fs)
    fs.ingest("g", _table([("a", at(0), 2.5, 7, "u", at(0), None)]))
    x = fs.statistics("g").feature("x")
    assert (x.mean, x.stddev) == (2.5, None)


def test_bins_must_be_sane(fs: FeatureStore) -> None:
    _group(fs)
    for bad in (0, 1001, 2.5, True):
        with pytest.raises(ValidationError, match="bins"):
            fs.statistics("g", bins=bad)  # type: ignore[arg-type]


def test_an_online_only_group_has_no_offline_statistics(fs: FeatureStore) -> None:
    _group(fs, offline=False)
    with pytest.raises(ValidationError, match="offline"):
        fs.statistics("g")


def test_statistics_need_offline_read(
    fs: FeatureStore, admin: trivet.Session, workspace: Settings
) -> None:
    _group(fs)
    project = admin.project
    reader = user_store(admin, workspace, "otto", [("online_reader", f"{project}/*")])
    with pytest.raises(PermissionDenied, match="feature:read_offline"):
        reader.statistics("g")
    scientist = user_store(admin, workspace, "dana", [("data_scientist", f"{project}/*")])
    assert scientist.statistics("g").records == 0


def test_asking_for_an_unknown_feature_suggests_one() -> None:
    group = detached_group("g", Dtype.STRING, [("x", "float")], id="1")
    table = pa.table({"id": ["a"], "ts": pa.array([T0], TS), "x": [1.0]})
    with pytest.raises(ValidationError, match="did you mean 'x'"):
        table_statistics(group, table).feature("xx")


# -- properties of any column ----------------------------------------------------------------
def _in_bin(value: float, edges: tuple[float, ...], i: int) -> bool:
    last = i == len(edges) - 2
    return edges[i] <= value < edges[i + 1] or (last and value == edges[i + 1])


def _check_histogram(stats: FeatureStatistics, values: list[float]) -> None:
    """The histogram's invariants, checked against the values one by one."""
    if not values:
        assert stats.histogram is None
        return
    assert stats.histogram is not None
    edges = tuple(float(e) for e in stats.histogram.edges)  # type: ignore[arg-type]
    counts = stats.histogram.counts
    assert len(edges) == len(counts) + 1
    assert list(edges) == sorted(edges)
    assert sum(counts) == len(values)
    if edges[0] == edges[-1]:
        assert counts == (len(values),)
        return
    for i, c in enumerate(counts):
        assert c == sum(1 for v in values if _in_bin(v, edges, i)), (i, edges, values)


finite = st.floats(allow_nan=False, allow_infinity=False)
any_float = st.one_of(st.none(), st.floats(), finite, finite)


@settings(max_examples=300, deadline=None)
@given(st.lists(any_float, max_size=60), st.integers(1, 30))
def test_float_statistics_properties(values: list[float | None], bins: int) -> None:
    stats = column_statistics("x", "float", pa.array(values, pa.float64()), bins=bins)
    kept = [v for v in values if v is not None and math.isfinite(v)]
    nulls = sum(1 for v in values if v is None or math.isnan(v))
    assert stats.count == len(values)
    assert stats.nulls == nulls
    assert stats.infinite == len(values) - nulls - len(kept)
    assert stats.distinct == len(set(kept))
    _check_histogram(stats, kept)
    if not kept:
        assert stats.min is stats.max is stats.mean is stats.stddev is None
        return
    assert stats.min == min(kept) and stats.max == max(kept)
    assert stats.mean is not None and math.isfinite(stats.mean)
    assert stats.min <= stats.mean <= stats.max  # type: ignore[operator]
    if len(kept) < 2:
        assert stats.stddev is None
    else:
        assert stats.stddev is not None and math.isfinite(stats.stddev) and stats.stddev >= 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), max_size=60),
    st.integers(1, 30),
)
def test_int_statistics_properties(values: list[int | None], bins: int) -> None:
    stats = column_statistics("n", "int", pa.array(values, pa.int64()), bins=bins)
    kept = [v for v in values if v is not None]
    assert (stats.count, stats.nulls, stats.infinite) == (len(values), len(values) - len(kept), 0)
    assert stats.distinct == len(set(kept))
    _check_histogram(stats, [float(v) for v in kept])
    if kept:
        assert (stats.min, stats.max) == (min(kept), max(kept))
        assert stats.mean is not None
        assert float(min(kept)) <= stats.mean <= float(max(kept))
        assert stats.mean == pytest.approx(sum(kept) / len(kept), rel=1e-9, abs=1e-6)
        assert stats.histogram is not None
        assert len(stats.histogram.counts) == min(bins, max(kept) - min(kept) + 1) or (
            max(kept) == min(kept)
        )


stamps = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.just(dt.UTC),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), stamps), max_size=40), st.integers(1, 30))
def test_timestamp_statistics_properties(values: list[dt.datetime | None], bins: int) -> None:
    stats = column_statistics("t", "timestamp", pa.array(values, TS), bins=bins)
    kept = [v for v in values if v is not None]
    assert (stats.count, stats.nulls, stats.distinct) == (
        len(values),
        len(values) - len(kept),
        len(set(kept)),
    )
    assert stats.mean is None and stats.stddev is None
    if not kept:
        assert stats.histogram is None and stats.min is None
        return
    assert (stats.min, stats.max) == (min(kept), max(kept))
    assert stats.histogram is not None
    assert sum(stats.histogram.counts) == len(kept)
    edges = stats.histogram.edges
    assert edges[0] == min(kept) and edges[-1] == max(kept)
    assert list(edges) == sorted(edges)  # type: ignore[type-var]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "ü", ""])), max_size=40))
def test_string_statistics_properties(values: list[str | None]) -> None:
    stats = column_statistics("s", "string", pa.array(values, pa.string()), top=2)
    kept = [v for v in values if v is not None]
    assert (stats.count, stats.nulls, stats.distinct) == (
        len(values),
        len(values) - len(kept),
        len(set(kept)),
    )
    expected = sorted((-kept.count(v), v) for v in set(kept))[:2]
    assert [(t.value, t.count) for t in stats.top] == [(v, -c) for c, v in expected]


@settings(max_examples=100, deadline=None)
@given(st.lists(any_float, min_size=1, max_size=40), st.randoms())
def test_statistics_do_not_depend_on_row_order(values: list[float | None], rnd: object) -> None:
    shuffled = list(values)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = column_statistics("x", "float", pa.array(values, pa.float64()), bins=7)
    b = column_statistics("x", "float", pa.array(shuffled, pa.float64()), bins=7)
    assert (a.count, a.nulls, a.infinite, a.distinct, a.min, a.max, a.histogram) == (
        b.count,
        b.nulls,
        b.infinite,
        b.distinct,
        b.min,
        b.max,
        b.histogram,
    )
    if a.mean is not None:
        assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-300)
