"""Write throughput: put_record before and after the durable buffer, and a large ingest.

Cases, each on a fresh workspace (SQLite catalog and online store, local Delta tables):

- ``put, unbuffered``: what ``put_record`` did before the write buffer — validate the
  record as a one-row pandas batch, then one Delta commit, one online upsert and one
  catalog transaction per record (``ingest.write_batch``, the path ``ingest`` uses).
- ``put, buffered``: ``put_record`` today — validate, commit the row to the write
  buffer (fsynced), upsert it online, return; a background thread flushes micro-batches
  of 1,000 rows (the defaults). Latencies are of the calls; "to offline" adds the final
  flush, i.e. the time until every record is in the Delta table.
- ``put, buffered, no flush during the loop``: the same with the flush thresholds out
  of reach, so the calls do not compete with flushes (the cost of a call alone).
- ``ingest``: one batch of ``--rows`` rows (an int record id, an event time, 10 float
  features), as a pyarrow Table, into a group with online and offline stores, and into
  an offline-only group; then ``--big-rows`` rows (default 10M, ~1 GB in memory)
  offline only; with the time of each step, from the ingest's progress callback
  (validation, the batch id, the Delta append, the online upsert), the time the
  encoding of the online rows took (in a thread of its own, overlapping the append and
  the upsert), and the process's CPU time (less sensitive to a busy machine than the
  wall time).

Records are distinct ids with random floats (seeded). Figures vary ±30 % between runs on
a shared 2-core machine: each buffered case and each ``--rows`` ingest runs ``--repeat``
times and the median run is reported (by p50, by wall time); the unbuffered case (a
minute of commits) and the ``--big-rows`` ingest run once.

Run: ``uv run python bench/featurestore/ingest.py [--puts 5000] [--unbuffered 200]
[--rows 1000000] [--big-rows 10000000] [--repeat 3] [--ingest-only]``. Prints Markdown
tables and writes them to ``bench/results/ingest.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

RESULTS = Path(__file__).resolve().parents[1] / "results" / "ingest.md"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


_ROOTS: dict[int, Path] = {}  # id(store) -> its temporary workspace folder


def open_store(**options: Any) -> Any:
    """A FeatureStore on a new workspace in a temporary folder (see :func:`close_store`)."""
    import trivet
    from trivet.featurestore import FeatureStore

    root = Path(tempfile.mkdtemp(prefix="trivet-bench-ingest-"))
    ws = trivet.init(root / "ws")
    store = FeatureStore(trivet.connect(ws.workspace), **options)
    _ROOTS[id(store)] = root
    return store


def close_store(store: Any) -> None:
    """Close a store of :func:`open_store` and delete its workspace (a 10M-row one: 1 GB)."""
    store.close()
    shutil.rmtree(_ROOTS.pop(id(store)), ignore_errors=True)


def small_group(store: Any, name: str = "profiles") -> Any:
    from trivet.featurestore import Feature, FeatureGroupSpec

    return store.create_group(
        FeatureGroupSpec(
            name=name,
            record_id="id",
            event_time="ts",
            features=[
                Feature(name="score", dtype="float"),
                Feature(name="visits", dtype="int"),
                Feature(name="segment", dtype="string"),
            ],
        )
    )


def records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    scores, visits = rng.random(n), rng.integers(0, 1000, n)
    return [
        {
            "id": f"u{i}",
            "ts": T0 + dt.timedelta(seconds=i),
            "score": float(scores[i]),
            "visits": int(visits[i]),
            "segment": "gold" if i % 3 else "basic",
        }
        for i in range(n)
    ]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_calls(
    call: Callable[[dict[str, Any]], object], items: list[dict[str, Any]]
) -> list[float]:
    latencies = []
    for item in items:
        start = time.perf_counter()
        call(item)
        latencies.append(time.perf_counter() - start)
    return latencies


def put_unbuffered(n: int) -> dict[str, Any]:
    """The pre-buffer put_record: a one-row pandas batch and a Delta commit per record."""
    import pandas as pd

    from trivet.featurestore.ingest import validate, write_batch

    store = open_store()
    group = small_group(store)

    def call(record: dict[str, Any]) -> object:
        store._require("feature:write", group.name)
        frame = pd.DataFrame({k: pd.Series([v], dtype=object) for k, v in record.items()})
        return write_batch(store, group, validate(group, frame), action="feature:put_record")

    items = records(n, 1)
    start = time.perf_counter()
    latencies = time_calls(call, items)
    wall = time.perf_counter() - start
    close_store(store)
    return {
        "case": "put, unbuffered (before)",
        "n": n,
        "latencies": latencies,
        "wall": wall,
        "offline_wall": wall,
    }


def put_buffered(n: int, *, quiet: bool) -> dict[str, Any]:
    options = {"flush_rows": 10**9, "flush_seconds": 10**6} if quiet else {}
    store = open_store(**options)
    group = small_group(store)
    items = records(n, 2)
    start = time.perf_counter()
    latencies = time_calls(lambda r: store.put_record(group.name, r), items)
    wall = time.perf_counter() - start
    flush_start = time.perf_counter()
    store.flush(group.name)
    flush = time.perf_counter() - flush_start
    rows = store.offline_table(group.name).num_rows
    assert rows == n, rows
    close_store(store)
    name = "put, buffered (after)" + (", no flush during the loop" if quiet else "")
    return {
        "case": name,
        "n": n,
        "latencies": latencies,
        "wall": wall,
        "offline_wall": wall + flush,
        "final_flush": flush,
    }


def big_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(3)
    ts = pa.array(
        np.datetime64("2024-01-01T00:00:00", "us") + rng.integers(0, 366 * 86_400, rows) * 10**6,
        type=pa.timestamp("us", tz="UTC"),
    )
    columns: dict[str, Any] = {"id": pa.array(np.arange(rows, dtype=np.int64)), "ts": ts}
    for k in range(10):
        columns[f"f{k}"] = pa.array(rng.random(rows))
    return pa.table(columns)


def ingest(rows: int, *, online: bool, data: pa.Table | None = None) -> dict[str, Any]:
    """One ingest of ``rows`` rows x 10 floats into a fresh workspace, timed per step.

    Step times come from the ingest's own progress callback (``StepTimer``); the
    encoding of the online rows runs in a second thread from the Delta append on, a
    chunk at a time, while the online upsert writes the chunks already encoded: its
    time overlaps both.
    """
    from trivet.featurestore import Feature, FeatureGroupSpec
    from trivet.featurestore import ingest as ingest_module
    from trivet.featurestore._progress import StepTimer

    store = open_store()
    store.create_group(
        FeatureGroupSpec(
            name="wide",
            record_id="id",
            record_id_dtype="int",
            event_time="ts",
            features=[Feature(name=f"f{k}", dtype="float") for k in range(10)],
            online=online,
        )
    )
    data = big_table(rows) if data is None else data
    timer = StepTimer()
    real_encode = ingest_module.online_chunks
    encode: dict[str, float] = {}

    def timed_encode(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        yield from real_encode(*args, **kwargs)
        encode["encode"] = time.perf_counter() - start

    ingest_module.online_chunks = timed_encode
    load = os.getloadavg()[0]
    try:
        start, cpu = time.perf_counter(), time.process_time()
        report = store.ingest("wide", data, progress=timer)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        ingest_module.online_chunks = real_encode
    assert report.rows == rows and not report.duplicate
    close_store(store)
    return {
        "case": f"ingest {rows:,} rows x 10 floats" + ("" if online else ", offline only"),
        "rows": rows,
        "wall": wall,
        "cpu": cpu,
        "steps": {**timer.seconds, **encode},
        "load": load,
    }


def ingest_cases(rows: int, big: int, repeat: int) -> list[dict[str, Any]]:
    """The median (by wall time) of ``repeat`` runs of each ingest case."""
    data = big_table(rows)
    cases = [(rows, True, data), (rows, False, data)]
    if big:
        cases.append((big, False, None))
    out = []
    for n, online, table in cases:
        runs = []
        for _ in range(repeat if n == rows else 1):
            runs.append(ingest(n, online=online, data=table))
            print(f"  {runs[-1]['case']}: {runs[-1]['wall']:.2f} s", file=sys.stderr)
        runs.sort(key=lambda r: r["wall"])
        out.append(runs[len(runs) // 2])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=5000)
    parser.add_argument("--unbuffered", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--big-rows", type=int, default=10_000_000, help="rows of the offline-only run (0: none)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each repeated case")
    parser.add_argument("--ingest-only", action="store_true", help="skip the put_record cases")
    args = parser.parse_args()

    puts = []
    if not args.ingest_only:
        puts.append(put_unbuffered(args.unbuffered))
        for quiet in (False, True):  # the median run (by p50) of --repeat
            runs = [put_buffered(args.puts, quiet=quiet) for _ in range(args.repeat)]
            runs.sort(key=lambda r: quantile(r["latencies"], 0.5))
            puts.append(runs[len(runs) // 2])
    ingests = ingest_cases(args.rows, args.big_rows, args.repeat)

    out = [f"Machine: {platform.machine()}, Python {platform.python_version()}.", ""]
    if puts:
        out += [
            "| put_record | calls | calls/s | p50 (ms) | p99 (ms) | mean (ms) "
            "| records/s to offline |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
    for r in puts:
        lat = r["latencies"]
        out.append(
            f"| {r['case']} | {r['n']:,} | {r['n'] / r['wall']:,.0f} | "
            f"{quantile(lat, 0.5) * 1e3:.2f} | {quantile(lat, 0.99) * 1e3:.2f} | "
            f"{statistics.mean(lat) * 1e3:.2f} | {r['n'] / r['offline_wall']:,.0f} |"
        )
    out += [
        "",
        "| ingest | wall (s) | rows/s | CPU (s) | validate (s) | batch id (s) "
        "| Delta append (s) | online rows (s, overlapping) | online upsert (s) | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ingests:
        s = r["steps"]
        out.append(
            f"| {r['case']} | {r['wall']:.2f} | {r['rows'] / r['wall']:,.0f} | {r['cpu']:.2f} | "
            f"{s.get('validate', 0):.2f} | {s.get('batch id', 0):.2f} | "
            f"{s.get('write offline', 0):.2f} | {s.get('encode', 0):.2f} | "
            f"{s.get('write online', 0):.2f} | {r['load']:.1f} |"
        )
    text = "\n".join(out) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
