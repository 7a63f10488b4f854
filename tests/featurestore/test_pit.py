"""The point-in-time join engine against a brute-force loop oracle, and labelled cases."""

from __future__ import annotations

import datetime as dt
import doctest
import pickle
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trivet.errors import BackendError, ValidationError
from trivet.featurestore import _pit, _pit_sql
from trivet.featurestore._pit import GroupSource, latest_rows, point_in_time_join

UTC = dt.UTC
BASE = dt.datetime(2024, 3, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
INT = pa.int64()
STRATEGIES = ["asof", "asof-generic", "range"]


def T(seconds: float) -> dt.datetime:
    """A time ``seconds`` after BASE."""
    return BASE + dt.timedelta(seconds=seconds)


def group_table(rows: Sequence[dict[str, Any]], *, key_type: pa.DataType = INT) -> pa.Table:
    """A group's offline rows: id, ts, features rid/x/s, and the reserved columns."""
    schema = pa.schema(
        [
            ("id", key_type),
            ("ts", TS),
            ("rid", pa.int64()),
            ("x", pa.int64()),
            ("s", pa.string()),
            ("__write_time", TS),
            ("__deleted", pa.bool_()),
            ("__batch", pa.string()),
        ]
    )
    full = [
        {
            "rid": i,
            "x": None,
            "s": None,
            "__deleted": False,
            "__batch": "b",
            **row,
            "__write_time": row.get("__write_time", row["ts"]),
        }
        for i, row in enumerate(rows)
    ]
    return pa.Table.from_pylist(full, schema=schema)


def source(
    table: pa.Table,
    *,
    name: str = "g",
    ttl: dt.timedelta | None = None,
    features: Sequence[str] = ("x",),
) -> GroupSource:
    return GroupSource(
        name=name, record_id="id", event_time="ts", features=features, ttl=ttl, table=table
    )


def entity(keys: Sequence[int | None], times: Sequence[dt.datetime | None]) -> pa.Table:
    return pa.table({"id": pa.array(keys, pa.int64()), "t": pa.array(times, TS)})


@contextmanager
def strategy_mode(name: str) -> Iterator[_pit.Strategy]:
    """Run the engine with one strategy; 'asof-generic' disables the fast ordering key."""
    if name == "asof-generic":
        with mock.patch.object(_pit_sql, "ENCODE_MAX_VERSIONS", 0):
            yield "asof"
    else:
        yield "asof" if name == "asof" else "range"


def join(ent: pa.Table, sources: Sequence[GroupSource], **options: Any) -> pa.Table:
    options.setdefault("timestamp", "t")
    mode = options.pop("mode", "asof")
    with strategy_mode(mode) as strategy:
        return point_in_time_join(ent, sources, strategy=strategy, **options)


# ------------------------------------------------------------------------------ oracle


def oracle(
    ent: pa.Table,
    sources: Sequence[GroupSource],
    *,
    timestamp: str,
    entity_key: dict[str, str],
    created_cutoff: bool = False,
    as_of: dt.datetime | None = None,
    include_deleted: bool = False,
    event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
) -> list[list[Any]]:
    """Each source's features (then match event time) per entity row, by plain loops."""
    entity_rows = ent.to_pylist()
    out: list[list[Any]] = []
    for src in sources:
        assert src.table is not None
        rows = src.table.to_pylist()
        columns: list[list[Any]] = [[] for _ in (*src.features, "event_time")]
        for e in entity_rows:
            t, key = e[timestamp], e[entity_key[src.name]]
            candidates = []
            for r in rows:
                ev, wt = r[src.event_time], r["__write_time"]
                if t is None or key is None or r[src.record_id] != key:
                    continue
                if ev > t or (src.ttl is not None and ev < t - src.ttl):
                    continue
                if created_cutoff and wt > t:
                    continue
                if as_of is not None and wt > as_of:
                    continue
                if include_deleted and r["__deleted"]:
                    continue
                if event_time_range is not None:
                    lo, hi = event_time_range
                    if (lo is not None and ev < lo) or (hi is not None and ev > hi):
                        continue
                candidates.append(r)
            if candidates:
                win = max(
                    candidates, key=lambda r: (r[src.event_time], r["__write_time"], r["__batch"])
                )
                values = [None if win["__deleted"] else win[f] for f in src.features]
                values.append(win[src.event_time])
            else:
                values = [None] * (len(src.features) + 1)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        out.extend(columns)
    return out


def engine_columns(
    result: pa.Table, ent: pa.Table, sources: Sequence[GroupSource]
) -> list[list[Any]]:
    """The same columns from the engine's result (run with include_match_times=True)."""
    cols: list[list[Any]] = []
    position = ent.num_columns
    for src in sources:
        for _ in src.features:
            cols.append(result.column(position).to_pylist())
            position += 1
        cols.append(result.column(position).to_pylist())  # <group>__event_time
        position += 2  # skip <group>__write_time
    return cols


# ------------------------------------------------------------------ hypothesis: data

KEYS = 3  # record ids 0..2 exist in groups; entity keys 0..3 (3 is unknown)


@dataclass
class Case:
    ent: pa.Table
    sources: list[GroupSource]
    entity_key: dict[str, str]
    options: dict[str, Any]


@st.composite
def group_rows(draw: st.DrawFn, index: int, key_is_str: bool, *, min_rows: int = 0) -> GroupSource:
    # each write (batch) has one write time, as ingestion stamps them; two writes often
    # share one, so ties on (event time, write time) are broken by the batch id
    batches = draw(st.lists(st.integers(0, 14), min_size=2, max_size=4))
    if draw(st.booleans()):
        batches[draw(st.integers(1, len(batches) - 1))] = batches[0]
    raw = draw(
        st.lists(
            st.tuples(
                st.integers(0, KEYS - 1),  # key
                st.integers(0, 10),  # event second
                st.integers(0, len(batches) - 1),  # batch
                st.booleans() if draw(st.booleans()) else st.just(False),  # tombstone
                st.none() | st.integers(-3, 3),  # x (int feature, nullable)
                st.none() | st.sampled_from(["a", "b", ""]),  # s (string feature)
            ),
            min_size=min_rows,
            max_size=30,
            unique_by=lambda r: (r[0], r[1], r[2]),  # no duplicates within one write
        )
    )
    rows = [
        {
            "id": f"k{k}" if key_is_str else k,
            "ts": T(ev),
            "__write_time": T(batches[b]),
            "__batch": f"b{b}",
            "__deleted": deleted,
            "x": None if deleted and draw(st.booleans()) else x,
            "s": s,
        }
        for k, ev, b, deleted, x, s in raw
    ]
    ttl = draw(st.none() | st.integers(0, 6).map(lambda s: dt.timedelta(seconds=s)))
    table = group_table(rows, key_type=pa.string() if key_is_str else pa.int64())
    return GroupSource(
        name=f"g{index}",
        record_id="id",
        event_time="ts",
        features=draw(st.permutations(["rid", "x", "s"])),
        ttl=ttl,
        table=table,
    )


maybe_time = st.none() | st.integers(-2, 16).map(T)


@st.composite
def cases(draw: st.DrawFn, /, **fixed: Any) -> Case:
    """A random case; ``fixed`` pins options (and then favours denser groups)."""
    kinds = draw(st.lists(st.booleans(), min_size=1, max_size=1 if fixed else 2))
    min_rows = 6 if fixed else 0
    sources = [draw(group_rows(i, s, min_rows=min_rows)) for i, s in enumerate(kinds)]
    n = draw(st.integers(1 if fixed else 0, 25))
    data: dict[str, Any] = {}
    for i, is_str in enumerate(kinds):
        # -1 stands for a null key (rare); KEYS for a key no group has
        keys = draw(st.lists(st.integers(-1, KEYS), min_size=n, max_size=n))
        data[f"k{i}"] = pa.array(
            [None if k < 0 else (f"k{k}" if is_str else k) for k in keys],
            pa.string() if is_str else pa.int64(),
        )
    seconds = draw(st.lists(st.integers(-3, 16), min_size=n, max_size=n))
    times = [None if t == -3 else T(t) for t in seconds]  # -3: a null time (rare)
    data["t"] = pa.array(times, TS)
    data["label"] = pa.array(range(n), pa.int64())
    options: dict[str, Any] = {
        "created_cutoff": draw(st.booleans()),
        "as_of": draw(st.none() | st.integers(0, 15).map(T)),
        "include_deleted": draw(st.booleans()),
        "event_time_range": draw(st.none() | st.tuples(maybe_time, maybe_time)),
    }
    options.update(fixed)
    rng = options["event_time_range"]
    if rng is not None and None not in rng and rng[0] > rng[1]:
        options["event_time_range"] = (rng[1], rng[0])
    return Case(
        ent=pa.table(data),
        sources=sources,
        entity_key={s.name: f"k{i}" for i, s in enumerate(sources)},
        options=options,
    )


def examples(n: int) -> settings:
    """Hypothesis settings: ``n`` examples (each runs DuckDB: about 40 ms per call)."""
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------ hypothesis: properties


@pytest.mark.parametrize("mode", STRATEGIES)
@examples(100)
@given(case=cases())
def test_engine_equals_loop_oracle(mode: str, case: Case) -> None:
    result = join(
        case.ent,
        case.sources,
        entity_key=case.entity_key,
        include_match_times=True,
        mode=mode,
        **case.options,
    )
    expected = oracle(
        case.ent, case.sources, timestamp="t", entity_key=case.entity_key, **case.options
    )
    assert result.num_rows == case.ent.num_rows
    assert result.select(case.ent.column_names).equals(case.ent)  # input order, unchanged
    assert engine_columns(result, case.ent, case.sources) == expected
    for src in case.sources:  # integer features stay integers, with nulls
        assert result.schema.field(_feature_name(result, src, "x")).type == pa.int64()


def _feature_name(result: pa.Table, src: GroupSource, feature: str) -> str:
    return feature if feature in result.column_names else f"{src.name}__{feature}"


@pytest.mark.parametrize("mode", STRATEGIES)
@examples(60)
@given(case=cases(created_cutoff=True, as_of=None, event_time_range=None, include_deleted=False))
def test_created_cutoff_equals_loop_oracle(mode: str, case: Case) -> None:
    # created_cutoff is where the ASOF trick needs care (rows written late, corrections),
    # so it gets denser data of its own
    result = join(
        case.ent,
        case.sources,
        entity_key=case.entity_key,
        include_match_times=True,
        mode=mode,
        **case.options,
    )
    expected = oracle(
        case.ent, case.sources, timestamp="t", entity_key=case.entity_key, **case.options
    )
    assert engine_columns(result, case.ent, case.sources) == expected


@examples(50)
@given(case=cases())
def test_no_leakage_and_ttl_respected(case: Case) -> None:
    result = join(
        case.ent, case.sources, entity_key=case.entity_key, include_match_times=True, **case.options
    )
    times = case.ent.column("t").to_pylist()
    as_of = case.options["as_of"]
    for src in case.sources:
        events = result.column(f"{src.name}__event_time").to_pylist()
        writes = result.column(f"{src.name}__write_time").to_pylist()
        for t, ev, wt in zip(times, events, writes, strict=True):
            if ev is None:
                continue
            assert ev <= t, "a feature from after the entity time leaked in"
            if src.ttl is not None:
                assert ev >= t - src.ttl, "a feature older than the TTL was returned"
            if case.options["created_cutoff"]:
                assert wt <= t, "a row written after the entity time was used"
            if as_of is not None:
                assert wt <= as_of


@examples(40)
@given(case=cases(), seed=st.randoms(use_true_random=False))
def test_permuting_entity_rows_permutes_the_result(case: Case, seed: Any) -> None:
    order = list(range(case.ent.num_rows))
    seed.shuffle(order)
    base = join(case.ent, case.sources, entity_key=case.entity_key, **case.options)
    shuffled = join(
        case.ent.take(pa.array(order, INT)),
        case.sources,
        entity_key=case.entity_key,
        **case.options,
    )
    assert shuffled.equals(base.take(pa.array(order, INT)))


# ---------------------------------------------------------------- labelled edge cases


@pytest.mark.parametrize("mode", STRATEGIES)
def test_equal_event_times_later_write_wins(mode: str) -> None:
    rows = [
        {"id": 1, "ts": T(5), "x": 2, "__write_time": T(20)},
        {"id": 1, "ts": T(5), "x": 1, "__write_time": T(10)},
        {"id": 1, "ts": T(5), "x": 3, "__write_time": T(15)},
    ]
    result = join(entity([1], [T(30)]), [source(group_table(rows))], mode=mode)
    assert result["x"].to_pylist() == [2]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_equal_event_and_write_times_greater_batch_wins(mode: str) -> None:
    rows = [
        {"id": 1, "ts": T(5), "x": 1, "__write_time": T(9), "__batch": "b2"},
        {"id": 1, "ts": T(5), "x": 2, "__write_time": T(9), "__batch": "b1"},
    ]
    for ordered in (rows, rows[::-1]):  # whatever the rows' order
        for cutoff in (False, True):
            result = join(entity([1], [T(30)]), [source(group_table(ordered))], mode=mode,
                          created_cutoff=cutoff)  # fmt: skip
            assert result["x"].to_pylist() == [1]


def test_duplicates_within_one_write_return_one_of_them() -> None:
    rows = [{"id": 1, "ts": T(5), "x": v, "__write_time": T(9)} for v in (1, 2)]
    result = join(entity([1, 1], [T(30), T(30)]), [source(group_table(rows))])
    assert result.num_rows == 2
    assert set(result["x"].to_pylist()) <= {1, 2}


@pytest.mark.parametrize("mode", STRATEGIES)
def test_ttl_lower_bound_is_inclusive_to_the_microsecond(mode: str) -> None:
    ttl = dt.timedelta(days=30)
    t = T(100 * 86400)
    at_bound = group_table([{"id": 1, "ts": t - ttl, "x": 1}])
    past_bound = group_table([{"id": 1, "ts": t - ttl - dt.timedelta(seconds=1), "x": 1}])
    just_past = group_table([{"id": 1, "ts": t - ttl - dt.timedelta(microseconds=1), "x": 1}])
    assert join(entity([1], [t]), [source(at_bound, ttl=ttl)], mode=mode)["x"].to_pylist() == [1]
    for table in (past_bound, just_past):
        assert join(entity([1], [t]), [source(table, ttl=ttl)], mode=mode)["x"].to_pylist() == [
            None
        ]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_upper_bound_is_inclusive_and_future_rows_never_match(mode: str) -> None:
    table = group_table(
        [
            {"id": 1, "ts": T(10), "x": 1},
            {"id": 1, "ts": T(10) + dt.timedelta(microseconds=1), "x": 2},
        ]
    )
    result = join(entity([1], [T(10)]), [source(table)], mode=mode)
    assert result["x"].to_pylist() == [1]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_zero_ttl_matches_only_the_same_instant(mode: str) -> None:
    table = group_table([{"id": 1, "ts": T(9), "x": 1}, {"id": 1, "ts": T(10), "x": 2}])
    src = source(table, ttl=dt.timedelta(0))
    assert join(entity([1, 1], [T(10), T(11)]), [src], mode=mode)["x"].to_pylist() == [2, None]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_ttl_hides_an_old_winner_even_when_no_newer_row_exists(mode: str) -> None:
    table = group_table([{"id": 1, "ts": T(0), "x": 1}, {"id": 1, "ts": T(50), "x": 2}])
    src = source(table, ttl=dt.timedelta(seconds=10))
    result = join(entity([1, 1, 1], [T(5), T(30), T(55)]), [src], mode=mode)
    assert result["x"].to_pylist() == [1, None, 2]


def test_nanosecond_entity_times_are_compared_exactly() -> None:
    ttl = dt.timedelta(seconds=1)
    rows = [
        {"id": 1, "ts": T(9), "x": 1},  # 1 s + 500 ns before the entity: too old
        {"id": 2, "ts": T(9) + dt.timedelta(microseconds=1), "x": 2},  # inside the TTL
        {"id": 3, "ts": T(10), "x": 3},  # 500 ns before the entity: inside
    ]
    t_ns = pd.Timestamp(T(10)).as_unit("ns") + pd.Timedelta(nanoseconds=500)
    ent = pa.table({"id": [1, 2, 3], "t": pa.array([t_ns] * 3, pa.timestamp("ns", tz="UTC"))})
    for mode in STRATEGIES:
        result = join(ent, [source(group_table(rows), ttl=ttl)], mode=mode)
        assert result["x"].to_pylist() == [None, 2, 3]


def test_entity_times_in_another_time_zone() -> None:
    table = group_table([{"id": 1, "ts": T(0), "x": 1}, {"id": 1, "ts": T(3600), "x": 2}])
    paris = pa.array([T(1800), T(3600)], TS).cast(pa.timestamp("us", tz="Europe/Paris"))
    result = join(pa.table({"id": [1, 1], "t": paris}), [source(table)])
    assert result["x"].to_pylist() == [1, 2]
    assert result["t"].type == paris.type


@pytest.mark.parametrize("mode", STRATEGIES)
def test_entity_rows_before_any_feature_row_and_unknown_keys_get_nulls(mode: str) -> None:
    table = group_table([{"id": 1, "ts": T(10), "x": 1}])
    result = join(entity([1, 2, None, 1], [T(5), T(20), T(20), None]), [source(table)], mode=mode)
    assert result["x"].to_pylist() == [None, None, None, None]
    assert result.num_rows == 4


@pytest.mark.parametrize("mode", STRATEGIES)
def test_null_latest_value_stays_null(mode: str) -> None:
    table = group_table(
        [{"id": 1, "ts": T(1), "x": 7, "s": "old"}, {"id": 1, "ts": T(2), "x": None, "s": None}]
    )
    result = join(entity([1], [T(3)]), [source(table, features=["x", "s"])], mode=mode)
    assert result["x"].to_pylist() == [None]
    assert result["s"].to_pylist() == [None]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_late_arriving_rows_and_created_cutoff(mode: str) -> None:
    rows = [
        {"id": 1, "ts": T(1), "x": 1, "__write_time": T(1)},
        {"id": 1, "ts": T(5), "x": 5, "__write_time": T(50)},  # arrived late
    ]
    ent = entity([1, 1], [T(10), T(60)])
    src = source(group_table(rows))
    assert join(ent, [src], mode=mode)["x"].to_pylist() == [5, 5]
    assert join(ent, [src], mode=mode, created_cutoff=True)["x"].to_pylist() == [1, 5]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_created_cutoff_a_late_correction_does_not_hide_the_earlier_version(mode: str) -> None:
    rows = [
        {"id": 1, "ts": T(5), "x": 1, "__write_time": T(6)},
        {"id": 1, "ts": T(5), "x": 2, "__write_time": T(30)},  # correction, same event time
        {"id": 1, "ts": T(3), "x": 3, "__write_time": T(3)},
    ]
    ent = entity([1, 1, 1, 1], [T(4), T(10), T(30), T(5)])
    result = join(ent, [source(group_table(rows))], mode=mode, created_cutoff=True)
    # at T(5) the row at T(5) had not been written yet (T(6)): the T(3) row wins
    assert result["x"].to_pylist() == [3, 1, 2, 3]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_created_cutoff_greatest_event_wins_not_the_last_written(mode: str) -> None:
    rows = [
        {"id": 1, "ts": T(1), "x": 1, "__write_time": T(10)},  # old event, written late
        {"id": 1, "ts": T(5), "x": 5, "__write_time": T(3)},
    ]
    result = join(entity([1, 1], [T(12), T(6)]), [source(group_table(rows))], mode=mode,
                  created_cutoff=True)  # fmt: skip
    assert result["x"].to_pylist() == [5, 5]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_created_cutoff_with_ttl_uses_the_latest_available_event(mode: str) -> None:
    rows = [
        {"id": 1, "ts": T(9), "x": 9, "__write_time": T(100)},  # newest event, written late
        {"id": 1, "ts": T(2), "x": 2, "__write_time": T(3)},
        {"id": 1, "ts": T(8), "x": 8, "__write_time": T(9)},  # available later than T(2)'s
    ]
    src = source(group_table(rows), ttl=dt.timedelta(seconds=5))
    result = join(entity([1, 1, 1], [T(10), T(20), T(4)]), [src], mode=mode, created_cutoff=True)
    assert result["x"].to_pylist() == [8, None, 2]


def test_as_of_travels_back_in_time() -> None:
    rows = [
        {"id": 1, "ts": T(5), "x": 1, "__write_time": T(10)},
        {"id": 1, "ts": T(5), "x": 2, "__write_time": T(20)},  # a correction
        {"id": 1, "ts": T(7), "x": 3, "__write_time": T(30)},
    ]
    src = source(group_table(rows))
    ent = entity([1], [T(100)])
    assert join(ent, [src], as_of=T(9))["x"].to_pylist() == [None]
    assert join(ent, [src], as_of=T(15))["x"].to_pylist() == [1]
    assert join(ent, [src], as_of=T(25))["x"].to_pylist() == [2]
    assert join(ent, [src])["x"].to_pylist() == [3]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_tombstones(mode: str) -> None:
    rows = [
        {"id": 1, "ts": T(1), "x": 1},
        {"id": 1, "ts": T(5), "__deleted": True},
        {"id": 1, "ts": T(9), "x": 9},  # re-created
    ]
    src = source(group_table(rows))
    ent = entity([1, 1, 1], [T(3), T(6), T(10)])
    assert join(ent, [src], mode=mode)["x"].to_pylist() == [1, None, 9]
    assert join(ent, [src], mode=mode, include_deleted=True)["x"].to_pylist() == [1, 1, 9]


def test_a_winning_tombstone_nulls_features_even_if_it_carries_values() -> None:
    rows = [{"id": 1, "ts": T(1), "x": 1}, {"id": 1, "ts": T(5), "x": 5, "__deleted": True}]
    result = join(entity([1], [T(6)]), [source(group_table(rows))], include_match_times=True)
    assert result["x"].to_pylist() == [None]
    assert result["g__event_time"].to_pylist() == [T(5)]


def test_event_time_range() -> None:
    rows = [{"id": 1, "ts": T(s), "x": s} for s in (1, 5, 9)]
    src = source(group_table(rows))
    ent = entity([1, 1], [T(6), T(20)])
    assert join(ent, [src], event_time_range=(T(2), T(8)))["x"].to_pylist() == [5, 5]
    assert join(ent, [src], event_time_range=(T(6), None))["x"].to_pylist() == [None, 9]
    assert join(ent, [src], event_time_range=(None, T(1)))["x"].to_pylist() == [1, 1]


@pytest.mark.parametrize("mode", STRATEGIES)
def test_duplicate_entity_rows_are_kept_in_input_order(mode: str) -> None:
    table = group_table([{"id": k, "ts": T(k), "x": k * 10} for k in (1, 2, 3)])
    ent = entity([3, 1, 3, 2, 1, 3], [T(9), T(9), T(9), T(0), T(9), T(2)])
    ent = ent.append_column("label", pa.array(list("abcdef")))
    result = join(ent, [source(table)], mode=mode)
    assert result["label"].to_pylist() == list("abcdef")
    assert result["x"].to_pylist() == [30, 10, 30, None, 10, None]


def test_integer_features_stay_integers_with_nulls() -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 2**53 + 1}])
    result = join(entity([1, 2], [T(2), T(2)]), [source(table)])
    assert result.schema.field("x").type == pa.int64()
    assert result["x"].to_pylist() == [2**53 + 1, None]  # not a float: exact beyond 2**53


def test_feature_types_are_preserved() -> None:
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("ts", TS),
            ("i32", pa.int32()),
            ("f", pa.float64()),
            ("b", pa.bool_()),
            ("when", TS),
            ("tags", pa.list_(pa.string())),
            ("nums", pa.list_(pa.int64())),
            ("__write_time", TS),
            ("__deleted", pa.bool_()),
            ("__batch", pa.string()),
        ]
    )
    row = {
        "id": "u1", "ts": T(1), "i32": 7, "f": 0.5, "b": True, "when": T(-5),
        "tags": ["a", None], "nums": [1, None], "__write_time": T(1), "__deleted": False,
        "__batch": "b",
    }  # fmt: skip
    table = pa.Table.from_pylist([row], schema=schema)
    features = ["i32", "f", "b", "when", "tags", "nums"]
    src = GroupSource(name="g", record_id="id", event_time="ts", features=features, table=table)
    result = join(pa.table({"id": ["u1", "u2"], "t": pa.array([T(2)] * 2, TS)}), [src])
    assert result.schema.remove_metadata() == pa.schema(
        [("id", pa.string()), ("t", TS)] + [schema.field(f) for f in features]
    )
    first, second = result.to_pylist()
    assert first == {"id": "u1", "t": T(2)} | {f: row[f] for f in features}
    assert second == {"id": "u2", "t": T(2)} | dict.fromkeys(features)


@pytest.mark.parametrize("mode", STRATEGIES)
def test_empty_entity_gives_empty_result_with_the_schema(mode: str) -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 1, "s": "a"}])
    src = source(table, features=["x", "s"])
    for ent in (
        entity([], []),
        pd.DataFrame(
            {"id": pd.Series([], dtype="int64"), "t": pd.Series([], dtype="datetime64[ns, UTC]")}
        ),
    ):
        result = join(ent, [src], mode=mode, include_match_times=True)
        assert result.num_rows == 0
        assert result.schema.field("x").type == pa.int64()
        assert result.schema.field("s").type == pa.string()
        assert result.schema.field("g__event_time").type == TS


@pytest.mark.parametrize("mode", STRATEGIES)
def test_empty_group_gives_nulls(mode: str) -> None:
    empty = group_table([])
    result = join(entity([1], [T(1)]), [source(empty, features=["x", "s"])], mode=mode)
    assert result["x"].to_pylist() == [None]
    assert result.schema.field("x").type == pa.int64()
    no_rows = GroupSource(
        name="g", record_id="id", event_time="ts", features=["x"], schema=empty.schema
    )
    result = join(entity([1], [T(1)]), [no_rows], mode=mode)
    assert result["x"].to_pylist() == [None]
    assert result.schema.field("x").type == pa.int64()


def test_all_rows_filtered_out_gives_nulls() -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 1, "__write_time": T(50)}])
    for mode in STRATEGIES:
        result = join(entity([1], [T(60)]), [source(table)], mode=mode, as_of=T(10))
        assert result["x"].to_pylist() == [None]
        result = join(
            entity([1], [T(60)]), [source(table)], mode=mode, as_of=T(10), created_cutoff=True
        )
        assert result["x"].to_pylist() == [None]


def test_no_sources_returns_the_entity() -> None:
    ent = entity([1], [T(1)])
    assert join(ent, []).equals(ent)


def test_pandas_entity_keeps_every_column_and_the_order() -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 1}, {"id": 2, "ts": T(1), "x": 2}])
    df = pd.DataFrame(
        {"id": [2, 1, 2], "t": pd.to_datetime([T(5), T(5), T(0)]), "label": [0.5, 1.5, 2.5]},
        index=[10, 3, 7],
    )
    result = join(df, [source(table)])
    assert result.column_names == ["id", "t", "label", "x"]
    assert result["x"].to_pylist() == [2, 1, None]
    back = result.to_pandas()
    assert back["label"].tolist() == [0.5, 1.5, 2.5]


def test_name_clashes_are_prefixed_with_the_group() -> None:
    a = group_table([{"id": 1, "ts": T(1), "x": 1, "s": "a"}])
    b = group_table([{"id": "u", "ts": T(1), "x": 2, "s": "b"}], key_type=pa.string())
    ent = pa.table({"id": [1], "user": ["u"], "t": pa.array([T(2)], TS), "s": ["mine"]})
    sources = [source(a, name="a", features=["x", "s"]), GroupSource(
        name="b", record_id="id", event_time="ts", features=["x", "rid"], table=b)]  # fmt: skip
    result = join(ent, sources, entity_key={"b": "user"})
    assert result.column_names == ["id", "user", "t", "s", "a__x", "a__s", "b__x", "rid"]
    assert result.to_pylist()[0] == {
        "id": 1, "user": "u", "t": T(2), "s": "mine", "a__x": 1, "a__s": "a", "b__x": 2, "rid": 0,
    }  # fmt: skip


def test_one_entity_key_for_every_group() -> None:
    a = group_table([{"id": 1, "ts": T(1), "x": 1}])
    result = join(
        pa.table({"cust": [1], "t": pa.array([T(2)], TS)}), [source(a)], entity_key="cust"
    )
    assert result["x"].to_pylist() == [1]


def test_parquet_files_union_of_schemas_and_dataset(tmp_path: Path) -> None:
    first = group_table([{"id": 1, "ts": T(1), "x": 1}, {"id": 2, "ts": T(1), "x": 2}])
    second = group_table([{"id": 1, "ts": T(3), "x": 3}]).append_column("y", pa.array([0.5]))
    pq.write_table(first, tmp_path / "a.parquet")
    pq.write_table(second, tmp_path / "b.parquet")
    files = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    ent = entity([1, 2, 1], [T(2), T(4), T(4)])
    for mode in STRATEGIES:
        src = GroupSource(
            name="g", record_id="id", event_time="ts", features=["x", "y"], files=files
        )
        result = join(ent, [src], mode=mode)
        assert result["x"].to_pylist() == [1, 2, 3]
        assert result["y"].to_pylist() == [None, None, 0.5]
        assert result.schema.field("x").type == pa.int64()
    ds = GroupSource(
        name="g", record_id="id", event_time="ts", features=["x"], table=pads.dataset(files[0])
    )
    assert join(ent, [ds])["x"].to_pylist() == [1, 2, 1]


def test_timestamp_features_from_files_come_back_in_utc(tmp_path: Path) -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 1}])
    pq.write_table(table, tmp_path / "a.parquet")
    src = GroupSource(
        name="g", record_id="id", event_time="ts", features=["ts"], files=[tmp_path / "a.parquet"]
    )
    result = join(entity([1], [T(2)]), [src])
    assert result.schema.field("ts").type == TS
    assert result["ts"].to_pylist() == [T(1)]


def test_missing_file_is_a_backend_error(tmp_path: Path) -> None:
    src = GroupSource(
        name="g", record_id="id", event_time="ts", features=["x"], files=[tmp_path / "nope.parquet"]
    )
    with pytest.raises(BackendError, match="group 'g'"):
        join(entity([1], [T(1)]), [src])


def test_threads_and_memory_limit_options() -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 1}])
    result = join(entity([1], [T(2)]), [source(table)], threads=1, memory_limit="256MB")
    assert result["x"].to_pylist() == [1]
    with pytest.raises(ValidationError, match="memory_limit"):
        join(entity([1], [T(2)]), [source(table)], memory_limit="lots")


# ---------------------------------------------------------------- errors


def test_naive_entity_timestamps_are_refused_with_a_hint() -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 1}])
    ent = pa.table({"id": [1], "t": pa.array([dt.datetime(2024, 3, 1)], pa.timestamp("us"))})
    with pytest.raises(ValidationError, match="naive") as info:
        join(ent, [source(table)])
    assert info.value.hint is not None and "tz_localize" in info.value.hint
    with pytest.raises(ValidationError, match="not timestamps"):
        join(pa.table({"id": [1], "t": ["2024-03-01"]}), [source(table)])


def test_naive_option_times_are_refused() -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 1}])
    naive = dt.datetime(2024, 3, 1)
    with pytest.raises(ValidationError, match=r"as_of .* is naive"):
        join(entity([1], [T(2)]), [source(table)], as_of=naive)
    with pytest.raises(ValidationError, match="event_time_range start"):
        join(entity([1], [T(2)]), [source(table)], event_time_range=(naive, None))
    with pytest.raises(ValidationError, match="starts after it ends"):
        join(entity([1], [T(2)]), [source(table)], event_time_range=(T(5), T(1)))


@pytest.mark.parametrize(
    ("keys", "key_type", "fragment"),
    [
        (["1"], pa.int64(), "astype('int64')"),
        ([1], pa.string(), "astype(str)"),
        ([1.0], pa.int64(), "astype('int64')"),
    ],
)
def test_entity_key_type_must_match_the_record_id(
    keys: list[Any], key_type: pa.DataType, fragment: str
) -> None:
    value = "1" if key_type == pa.string() else 1
    table = group_table([{"id": value, "ts": T(1), "x": 1}], key_type=key_type)
    with pytest.raises(ValidationError, match="identifies records by 'id'") as info:
        join(pa.table({"id": keys, "t": pa.array([T(2)], TS)}), [source(table)])
    assert info.value.hint is not None and fragment in info.value.hint


def test_categorical_entity_keys_are_decoded() -> None:
    table = group_table([{"id": "a", "ts": T(1), "x": 1}], key_type=pa.string())
    df = pd.DataFrame({"id": pd.Categorical(["a", "b"]), "t": pd.to_datetime([T(2), T(2)])})
    assert join(df, [source(table)])["x"].to_pylist() == [1, None]


def test_missing_columns_are_named_with_suggestions() -> None:
    table = group_table([{"id": 1, "ts": T(1), "x": 1}])
    with pytest.raises(ValidationError, match=r"no feature 'xx'.*did you mean 'x'"):
        join(entity([1], [T(2)]), [source(table, features=["xx"])])
    with pytest.raises(ValidationError, match="no timestamp column 'time'"):
        join(entity([1], [T(2)]), [source(table)], timestamp="time")
    with pytest.raises(ValidationError, match="no key column 'id'"):
        join(pa.table({"ident": [1], "t": pa.array([T(2)], TS)}), [source(table)])
    with pytest.raises(ValidationError, match="not joined"):
        join(entity([1], [T(2)]), [source(table)], entity_key={"other": "id"})
    bad = GroupSource(name="g", record_id="user", event_time="ts", features=["x"], table=table)
    with pytest.raises(ValidationError, match="no record identifier column 'user'"):
        join(entity([1], [T(2)]), [bad], entity_key="id")
    with pytest.raises(ValidationError, match="reserved column '__deleted'"):
        join(entity([1], [T(2)]), [source(table.drop_columns(["__deleted"]))])


def test_group_source_validation() -> None:
    table = group_table([])
    with pytest.raises(ValidationError, match="reserved"):
        source(table, features=["__write_time"])
    with pytest.raises(ValidationError, match="asked for twice"):
        source(table, features=["x", "x"])
    with pytest.raises(ValidationError, match="negative ttl"):
        source(table, ttl=dt.timedelta(seconds=-1))
    with pytest.raises(ValidationError, match="must be a list"):
        source(table, features="x")
    with pytest.raises(ValidationError, match="must be a list"):
        GroupSource(name="g", record_id="id", event_time="ts", features=["x"], files="a.parquet")
    with pytest.raises(ValidationError, match="both files and a table"):
        GroupSource(
            name="g", record_id="id", event_time="ts", features=[], files=["a"], table=table
        )
    nothing = GroupSource(name="g", record_id="id", event_time="ts", features=["x"])
    with pytest.raises(ValidationError, match="no files, no table and no schema"):
        join(entity([1], [T(1)]), [nothing])
    with pytest.raises(ValidationError, match="listed twice"):
        join(entity([1], [T(1)]), [source(table), source(table)])
    with pytest.raises(ValidationError, match="Unknown strategy"):
        point_in_time_join(entity([1], [T(1)]), [source(table)], timestamp="t", strategy="magic")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="pandas DataFrame or a pyarrow Table"):
        point_in_time_join([{"id": 1}], [source(table)], timestamp="t")


def test_errors_pickle() -> None:
    with pytest.raises(ValidationError) as info:
        join(entity([1], [T(1)]), [source(group_table([]), features=["nope"])])
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)


def test_docstring_example_runs() -> None:
    failures, tests = doctest.testmod(_pit, optionflags=doctest.ELLIPSIS)
    assert tests > 0 and failures == 0


# ---------------------------------------------------------------- latest_rows


def latest_oracle(
    src: GroupSource, n: int, *, include_deleted: bool, as_of: dt.datetime | None
) -> list[tuple[Any, ...]]:
    assert src.table is not None
    rows = [r for r in src.table.to_pylist() if as_of is None or r["__write_time"] <= as_of]
    if include_deleted:
        rows = [r for r in rows if not r["__deleted"]]
    latest: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in rows:
        k = (r["id"], r["ts"])
        if k not in latest or (r["__write_time"], r["__batch"]) > (
            latest[k]["__write_time"],
            latest[k]["__batch"],
        ):
            latest[k] = r
    out = []
    for key in sorted({k for k, _ in latest}):
        versions = sorted(
            (r for (k, _), r in latest.items() if k == key), key=lambda r: r["ts"], reverse=True
        )
        alive = []
        for r in versions:
            if r["__deleted"]:
                break  # everything older belongs to before the delete
            alive.append(r)
        out += [(r["id"], r["ts"], *(r[f] for f in src.features)) for r in alive[:n]]
    return out


@examples(60)
@given(
    src=st.booleans().flatmap(lambda is_str: group_rows(0, is_str)),
    n=st.integers(1, 4),
    include_deleted=st.booleans(),
    as_of=st.none() | st.integers(0, 15).map(T),
)
def test_latest_rows_equals_oracle(
    src: GroupSource, n: int, include_deleted: bool, as_of: dt.datetime | None
) -> None:
    result = latest_rows(src, n, include_deleted=include_deleted, as_of=as_of)
    assert result.column_names == ["id", "ts", *src.features]
    assert [tuple(r.values()) for r in result.to_pylist()] == latest_oracle(
        src, n, include_deleted=include_deleted, as_of=as_of
    )


def test_latest_rows_labelled() -> None:
    rows = [
        {"id": 1, "ts": T(1), "x": 1},
        {"id": 1, "ts": T(2), "x": 2, "__write_time": T(2)},
        {"id": 1, "ts": T(2), "x": 22, "__write_time": T(9)},  # correction of T(2)
        {"id": 1, "ts": T(3), "x": 3},
        {"id": 2, "ts": T(1), "x": 10},
        {"id": 2, "ts": T(4), "__deleted": True},
        {"id": 3, "ts": T(1), "x": 30},
        {"id": 3, "ts": T(2), "__deleted": True},
        {"id": 3, "ts": T(5), "x": 35},  # re-created
    ]
    src = source(group_table(rows))
    got = latest_rows(src, 2).to_pylist()
    assert [(r["id"], r["x"]) for r in got] == [(1, 3), (1, 22), (3, 35)]
    got = latest_rows(src, 2, include_deleted=True).to_pylist()
    assert [(r["id"], r["x"]) for r in got] == [(1, 3), (1, 22), (2, 10), (3, 35), (3, 30)]
    got = latest_rows(src, 1, event_time_range=(None, T(1))).to_pylist()
    assert [(r["id"], r["x"]) for r in got] == [(1, 1), (2, 10), (3, 30)]
    assert latest_rows(src, 1).schema == pa.schema(
        [("id", pa.int64()), ("ts", TS), ("x", pa.int64())]
    )
    with pytest.raises(ValidationError, match="positive integer"):
        latest_rows(src, 0)
    empty = GroupSource(
        name="g", record_id="id", event_time="ts", features=["x"], schema=group_table([]).schema
    )
    assert latest_rows(empty).num_rows == 0
