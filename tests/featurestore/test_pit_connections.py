"""The point-in-time engine's DuckDB databases: shared by calls, private per connection.

Calls with the same ``threads`` and ``memory_limit`` reuse one in-memory database (each
through a connection of its own); these tests check that sharing changes no answer,
also with calls running at once in threads, and that the cache stays bounded.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq

from trivet.featurestore import _pit_sql
from trivet.featurestore._pit import GroupSource, point_in_time_join

UTC = dt.UTC
TS = pa.timestamp("us", tz="UTC")


def t(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day, tzinfo=UTC)


def group(values: list[int]) -> pa.Table:
    """Rows of record 1 on days 1, 3, 5, ... holding ``values``; record 2 on day 2."""
    days = [t(1 + 2 * i) for i in range(len(values))]
    return pa.table(
        {
            "user": pa.array([1] * len(values) + [2], pa.int64()),
            "ts": pa.array([*days, t(2)], TS),
            "v": pa.array([*values, -1], pa.int64()),
            "__write_time": pa.array([*days, t(2)], TS),
            "__deleted": [False] * (len(values) + 1),
        }
    )


ENTITY = pa.table(
    {
        "user": pa.array([1, 1, 2, 3, 1], pa.int64()),
        "when": pa.array([t(2), t(6), t(9), t(9), t(1)], TS),
    }
)


def run(table: pa.Table, name: str = "g", **options: object) -> list[object]:
    source = GroupSource(name=name, record_id="user", event_time="ts", features=["v"], table=table)
    result = point_in_time_join(ENTITY, [source], timestamp="when", **options)  # type: ignore[arg-type]
    return result.column("v").to_pylist()


def test_calls_share_a_database_and_see_only_their_own_rows() -> None:
    assert run(group([10, 20, 30])) == [10, 30, -1, None, 10]
    cached = dict(_pit_sql._databases)
    assert any(key[0] == os.getpid() for key in cached)
    # the same view names, other rows: nothing of the first call is left over
    assert run(group([7])) == [7, 7, -1, None, 7]
    assert _pit_sql._databases == cached


def test_concurrent_calls_in_threads_get_their_own_answers() -> None:
    tables = [group([i, i + 100, i + 200]) for i in range(8)]
    expected = [[i, i + 200, -1, None, i] for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda tb: run(tb), tables * 3))
    assert got == expected * 3


def test_parquet_files_are_read_afresh_by_a_later_call(tmp_path: Path) -> None:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(group([1, 2]), first)
    pq.write_table(group([5, 6, 7]), second)
    for path, values in ((first, [1, 2, -1, None, 1]), (second, [5, 7, -1, None, 5])):
        source = GroupSource(
            name="g", record_id="user", event_time="ts", features=["v"], files=[path]
        )
        result = point_in_time_join(ENTITY, [source], timestamp="when")
        assert result.column("v").to_pylist() == values


def test_beyond_the_cache_a_call_uses_a_private_database(tmp_path: Path) -> None:
    made: list[str] = []
    real = _pit_sql._open_database

    def opening(threads: int, memory_limit: str) -> object:
        con, tmp = real(threads, memory_limit)
        made.append(tmp)
        return con, tmp

    with (
        mock.patch.object(_pit_sql, "_MAX_DATABASES", 0),
        mock.patch.object(_pit_sql, "_open_database", opening),
    ):
        assert run(group([3]), memory_limit="123MB") == [3, 3, -1, None, 3]
    assert len(made) == 1 and not Path(made[0]).exists()  # its spill directory is gone
    assert not any(key[2] == "123MB" for key in _pit_sql._databases)


def test_extreme_entity_times_and_ttls_on_the_packed_key() -> None:
    """The packed ordering key clamps the entity's bounds: far-off times stay exact."""
    ttl_years = dt.timedelta(days=365 * 5000)  # below the "no lower bound" length
    entity = pa.table(
        {
            "user": pa.array([1, 1, 1, 1, 1], pa.int64()),
            "when": pa.array(
                [
                    dt.datetime(1, 1, 1, tzinfo=UTC),  # before every row
                    dt.datetime(3000, 1, 1, tzinfo=UTC),  # the TTL reaches back past them
                    dt.datetime(9999, 12, 31, tzinfo=UTC),  # the TTL ends after them
                    t(4),
                    t(5),
                ],
                TS,
            ),
        }
    )
    for ttl, expected in (
        (ttl_years, [None, 30, None, 20, 30]),
        (dt.timedelta(hours=12), [None, None, None, None, 30]),
        (dt.timedelta(days=1), [None, None, None, 20, 30]),  # both bounds inclusive
        (None, [None, 30, 30, 20, 30]),
    ):
        for strategy in ("asof", "range"):
            source = GroupSource(
                name="g",
                record_id="user",
                event_time="ts",
                features=["v"],
                ttl=ttl,
                table=group([10, 20, 30]),
            )
            result = point_in_time_join(entity, [source], timestamp="when", strategy=strategy)
            assert result.column("v").to_pylist() == expected, (ttl, strategy)
