"""Large ingests: vectorized online payloads, chunked online writes, progress bars."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import random
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

import trivet
from trivet.cli import app
from trivet.featurestore import Feature, FeatureGroupSpec, FeatureStore, _codec, _progress
from trivet.featurestore import ingest as ingest_module
from trivet.featurestore._codec import Codec, all_distinct
from trivet.featurestore._progress import RichProgress, progress_for
from trivet.featurestore.definitions import Dtype
from trivet.featurestore.online import OnlineRow, OnlineStore
from trivet.featurestore.online._base import OnlineBatch

from .conftest import at, detached_group
from .test_online_contract import STORES

MIXED = detached_group(
    "mixed",
    Dtype.INT,
    [
        ("f", "float"),
        ("i", "int"),
        ("s", "string"),
        ("b", "bool"),
        ("t", "timestamp"),
        ("lf", "list<float>"),
        ("ls", "list<string>"),
        ("g", "float"),
    ],
    id="1" * 36,
)
EDGE_FLOATS = [
    0.0, -0.0, 0.1, 1.0, 1e15, 1e16, 1e-4, 9.99e-5, 1e-5, 5e-324, 1.7976931348623157e308,
    123456789012345.6, 9999999999999998.0, 2.0**53 + 2, math.nan, math.inf, -math.inf, None,
]  # fmt: skip


def mixed_table(n: int, seed: int) -> pa.Table:
    """``n`` rows of every type, edge values included, ids in a shuffled order."""
    rng = random.Random(seed)
    floats = [
        rng.choice(
            [
                rng.choice(EDGE_FLOATS),
                struct.unpack("<d", rng.randbytes(8))[0],
                rng.random() * 10.0 ** rng.randint(-8, 20),
            ]
        )
        for _ in range(n)
    ]
    ids = list(range(-5, n - 5))
    rng.shuffle(ids)
    ts = pa.timestamp("us", tz="UTC")
    old = dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC)

    def pick(*choices: Any, type: pa.DataType | None = None) -> pa.Array:
        return pa.array([rng.choice(choices) for _ in range(n)], type)

    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "ts": pa.array([at(rng.uniform(-1e6, 1e6)) for _ in range(n)], ts),
            "f": pa.array(floats, pa.float64()),
            "i": pick(None, 0, -(2**63), 2**63 - 1, 42, type=pa.int64()),
            "s": pick(None, "", 'é ✓ "q"\n\\', "\U0001f600", "plain", type=pa.string()),
            "b": pick(None, True, False, type=pa.bool_()),
            "t": pick(None, old, at(3), type=ts),
            "lf": pick(None, [], [1.5, None, math.nan, -0.0], type=pa.list_(pa.float64())),
            "ls": pick(None, ["a", None, "ü"], type=pa.list_(pa.string())),
            "g": pick(1e-300, 7.0, None, type=pa.float64()),
        }
    )


def chunks_of(table: pa.Table, *, rows: int = 100_000) -> list[tuple[str, int, bytes | None]]:
    out = []
    for chunk in Codec(MIXED).latest_chunks(table, deleted=False, rows=rows):
        out += zip(chunk.keys, chunk.event_times, chunk.payloads, strict=True)
    return out


# -- payloads: DuckDB writes the bytes Python (and put_record) writes ---------------------------
def test_duckdb_writes_floats_as_python_does() -> None:
    """The premise of the vector path holds for the DuckDB this project runs on."""
    assert _codec.duckdb_floats_match()


def test_a_duckdb_formatting_floats_otherwise_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    plain_cast = "coalesce(CAST({c} AS VARCHAR), 'null')"  # writes nan, inf: not JSON
    monkeypatch.setitem(_codec._SQL_TOKENS, Dtype.FLOAT, plain_cast)
    assert _codec.duckdb_floats_match.__wrapped__() is False


def test_vector_payloads_are_the_python_payloads_and_put_record_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = mixed_table(3000, seed=1)
    monkeypatch.setattr(_codec, "VECTOR_ROWS", 1)
    vector = chunks_of(table, rows=700)  # several chunks
    monkeypatch.setattr(_codec, "duckdb_floats_match", lambda: False)
    python = chunks_of(table, rows=700)
    assert vector == python
    codec = Codec(MIXED)  # the independent oracle: json.dumps of each typed record
    expected = {}
    for row in table.to_pylist():
        expected[str(row["id"])] = codec.encode(row)
    assert {key: payload for key, _, payload in vector} == expected
    written = b"".join(p for _, _, p in vector if p)  # the edge cases were there
    for token in (b"NaN", b"-Infinity", b"[-0.0,", b"e-05", b"e+16", b"\\ud83d"):
        assert token in written, token


def test_vector_payloads_decode_to_the_exact_values(monkeypatch: pytest.MonkeyPatch) -> None:
    table = mixed_table(2000, seed=2)
    monkeypatch.setattr(_codec, "VECTOR_ROWS", 1)
    rows = {int(k): (e, p) for k, e, p in chunks_of(table)}
    for row in table.to_pylist():
        event, payload = rows[row["id"]]
        assert event == _codec.to_us(row["ts"])
        assert payload is not None
        values = json.loads(payload)
        f = row["f"]
        if f is None:
            assert values[0] is None
        elif math.isnan(f):
            assert math.isnan(values[0])
        else:  # bit for bit, sign of zero included
            assert struct.pack("<d", values[0]) == struct.pack("<d", f)
        assert values[1] == row["i"] and values[2] == row["s"] and values[3] == row["b"]


# -- the latest row per record, in key order ------------------------------------------------------
def test_only_the_newest_row_per_record_goes_online_in_key_order() -> None:
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "id": pa.array([9, 10, 9, 10, 9, 100, -1]),
            "ts": pa.array([at(2), at(1), at(3), at(0), at(1), at(5), at(0)], ts),
            **{f.name: pa.nulls(7, f.dtype.arrow()) for f in MIXED.features},
        }
    )
    table = table.set_column(2, "f", pa.array([2.0, 1.0, 3.0, 0.0, 1.5, 5.0, -1.0]))
    got = [(k, e, json.loads(p or b"null")[0]) for k, e, p in chunks_of(table, rows=2)]
    us = _codec.to_us
    # text order ("-1" < "10" < "100" < "9"); 9's newest is at(3), 10's is at(1)
    assert got == [
        ("-1", us(at(0)), -1.0),
        ("10", us(at(1)), 1.0),
        ("100", us(at(5)), 5.0),
        ("9", us(at(3)), 3.0),
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (list(range(10)), True),  # ascending
        ([3, 1, 2, 0, 4], True),  # shuffled, dense
        ([3, 1, 2, 1, 4], False),
        ([2**62, -(2**62), 0], True),  # sparse: counted by hashing
        ([2**62, -(2**62), 2**62], False),
        ([0, 1, 2, 2], False),  # ascending but for a repeat
        ([5], True),
        ([], True),
    ],
)
def test_all_distinct(values: list[int], expected: bool) -> None:
    assert all_distinct(pa.array(values, pa.int64())) is expected
    assert all_distinct(pa.chunked_array([values[:2], values[2:]], pa.int64())) is expected
    assert all_distinct(pa.array([str(v) for v in values], pa.string())) is expected


def test_all_distinct_on_a_large_shuffled_column() -> None:
    values = np.random.default_rng(0).permutation(200_000)
    assert all_distinct(pa.array(values))
    values[123_456] = values[7]
    assert not all_distinct(pa.array(values))


# -- online writes: columns, chunks, both stores ------------------------------------------
@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    made = STORES[request.param](tmp_path, url)
    yield made
    made.close()


def test_a_batch_of_columns_upserts_like_rows(store: OnlineStore) -> None:
    n = 25_003  # several SQLite statements and Redis round trips, and a remainder
    keys = [f"k{i}" for i in range(n)]
    store.write("g", [OnlineRow(k, 10, 1, b"old") for k in keys[:100]])
    store.write("g", [OnlineRow("k5", 99, 1, b"newer than the batch")])
    payloads: list[bytes | None] = [str(i).encode() for i in range(n)]
    payloads[7] = None  # a tombstone
    store.write("g", OnlineBatch(keys, [50] * n, 2, payloads))
    got = store.read("g", keys)
    assert got[0] == OnlineRow("k0", 50, 2, b"0")
    assert got[5] == OnlineRow("k5", 99, 1, b"newer than the batch")
    assert got[7] == OnlineRow("k7", 50, 2, None)
    assert [r.payload if r else None for r in got[100:]] == payloads[100:]
    store.write("g", OnlineBatch(["k1", "k1", "k1"], [60, 70, 65], 3, [b"a", b"b", b"c"]))
    assert store.read("g", ["k1"])[0] == OnlineRow("k1", 70, 3, b"b")  # newest in one statement


def test_an_online_batch_is_a_sequence_of_rows() -> None:
    batch = OnlineBatch(["a", "b", "c"], [1, 2, 3], 9, [b"1", None, b"3"])
    assert len(batch) == 3 and batch[1] == OnlineRow("b", 2, 9, None)
    assert list(batch[1:]) == [OnlineRow("b", 2, 9, None), OnlineRow("c", 3, 9, b"3")]
    with pytest.raises(ValueError, match="as many"):
        OnlineBatch(["a"], [1, 2], 9, [None])


# -- ingest: chunked online writes, errors, progress -------------------------------------
def wide_spec(name: str = "wide") -> FeatureGroupSpec:
    return FeatureGroupSpec(
        name=name,
        record_id="id",
        record_id_dtype="int",
        event_time="ts",
        features=[Feature(name="x", dtype="float"), Feature(name="y", dtype="float")],
    )


def wide_frame(n: int, base: float = 0.0) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "ts": pa.array([at(i % 24) for i in range(n)], ts),
            "x": pa.array([base + i / 7 for i in range(n)]),
            "y": pa.array([None if i % 5 == 0 else float(-i) for i in range(n)], pa.float64()),
        }
    )


def test_a_large_ingest_goes_online_a_chunk_at_a_time(
    fs: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs.create_group(wide_spec())
    monkeypatch.setattr(ingest_module, "_ONLINE_CHUNK", 40)
    monkeypatch.setattr(_codec, "VECTOR_ROWS", 1)
    calls: list[tuple[str, int, int]] = []
    report = fs.ingest("wide", wide_frame(150), progress=lambda *c: calls.append(c))
    assert report.rows == report.records == 150
    online = [c for c in calls if c[0] == "write online"]
    assert online == [("write online", d, 150) for d in (0, 40, 80, 120, 150)]
    got = fs.batch_get_record({"wide": list(range(150))})["wide"]
    assert [r and (r["x"], r["y"]) for r in got] == [
        (i / 7, None if i % 5 == 0 else float(-i)) for i in range(150)
    ]


def test_an_encoding_error_surfaces_and_a_retry_completes(
    fs: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs.create_group(wide_spec())
    real = ingest_module.online_chunks

    def broken(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield from []
        raise RuntimeError("encoder broke")

    monkeypatch.setattr(ingest_module, "online_chunks", broken)
    with pytest.raises(RuntimeError, match="encoder broke"):
        fs.ingest("wide", wide_frame(30))
    assert fs.get_record("wide", 3) is None  # offline committed, online not written
    monkeypatch.setattr(ingest_module, "online_chunks", real)
    report = fs.ingest("wide", wide_frame(30))  # the recovery: no second append
    assert not report.duplicate and fs.offline_table("wide").num_rows == 30
    assert fs.get_record("wide", 3)["x"] == 3 / 7  # type: ignore[index]


def test_an_offline_error_stops_the_encoder_and_writes_nothing_online(
    fs: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs.create_group(wide_spec())

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(fs.offline, "append", refuse)
    with pytest.raises(OSError, match="disk full"):
        fs.ingest("wide", wide_frame(30))
    assert fs.get_record("wide", 3) is None


def test_progress_reports_every_step_in_order(fs: FeatureStore, tmp_path: Path) -> None:
    fs.create_group(wide_spec())
    calls: list[tuple[str, int, int]] = []
    path = tmp_path / "rows.parquet"
    pq.write_table(wide_frame(12), path)
    fs.ingest("wide", path, progress=lambda *c: calls.append(c))
    steps = list(dict.fromkeys(c[0] for c in calls))
    assert steps == ["read", "validate", "batch id", "write offline", "write online", "record"]
    for step in steps:
        mine = [c for c in calls if c[0] == step]
        assert mine[0][1] == 0 and mine[-1][1] == mine[-1][2] == 12, mine
    calls.clear()
    fs.ingest("wide", wide_frame(12, base=1.0), progress=lambda *c: calls.append(c))
    assert calls[0] == ("validate", 0, 12)  # no read step for a table in memory


def test_progress_bars_on_a_terminal_and_nothing_elsewhere() -> None:
    def drive(console: Console) -> None:
        bars = RichProgress(console)
        for step, total in [("read", 0), ("validate", 5000), ("write online", 5000)]:
            bars(step, 0, total)
            bars(step, total, total)
        bars.close()

    screen = io.StringIO()
    drive(Console(file=screen, force_terminal=True, width=100))
    shown = screen.getvalue()
    for text in ("read", "validate", "write online", "5,000/5,000 rows"):
        assert text in shown
    piped = io.StringIO()
    drive(Console(file=piped, force_terminal=False, width=100))
    assert piped.getvalue() == ""


def test_progress_auto_draws_only_large_batches_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    quiet = _progress.quiet
    small, large = wide_frame(10), pa.table({"id": pa.nulls(_progress.AUTO_ROWS)})
    assert progress_for(False, large)[0] is quiet
    assert progress_for("auto", large)[0] is quiet  # stderr is not a terminal under pytest
    assert progress_for(True, small)[0] is quiet
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert progress_for("auto", small)[0] is quiet
    assert isinstance(progress_for("auto", large)[0], RichProgress)
    assert isinstance(progress_for(True, small)[0], RichProgress)
    file = tmp_path / "big.csv"
    file.write_bytes(b"x" * _progress.AUTO_BYTES)
    assert isinstance(progress_for("auto", file)[0], RichProgress)
    assert progress_for("auto", tmp_path / "small.csv")[0] is quiet  # missing: not large
    mine = [].append
    assert progress_for(mine, small)[0] is mine
    with pytest.raises(TypeError, match="progress must be"):
        progress_for("loud", small)  # type: ignore[arg-type]


def test_the_cli_draws_no_bars_when_piped(tmp_path: Path) -> None:
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["init", ws], env={}).exit_code == 0
    fs = FeatureStore(trivet.connect(ws))
    fs.create_group(wide_spec())
    fs.close()
    data = tmp_path / "rows.parquet"
    pq.write_table(wide_frame(20), data)
    result = runner.invoke(app, ["-w", ws, "featurestore", "ingest", "wide", str(data)], env={})
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip().startswith("Ingested 20 rows")
    assert "write online" not in result.stderr + result.stdout
