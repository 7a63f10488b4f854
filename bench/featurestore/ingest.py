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
  an offline-only group; with the time of each step (validation, the Delta append, the
  online upsert).

Records are distinct ids with random floats (seeded). Figures vary ±30 % between runs on
a shared 2-core machine: each buffered case runs ``--repeat`` times and the run with the
median p50 is reported; the unbuffered case (a minute of commits) runs once.

Run: ``uv run python bench/featurestore/ingest.py [--puts 5000] [--unbuffered 200]
[--rows 1000000] [--repeat 3]``. Prints a Markdown table and writes it to
``bench/results/ingest.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

RESULTS = Path(__file__).resolve().parents[1] / "results" / "ingest.md"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def open_store(**options: Any) -> Any:
    import trivet
    from trivet.featurestore import FeatureStore

    ws = trivet.init(Path(tempfile.mkdtemp(prefix="trivet-bench-")) / "ws")
    return FeatureStore(trivet.connect(ws.workspace), **options)


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
    store.close()
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
    store.close()
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


def ingest(rows: int, *, online: bool) -> dict[str, Any]:
    from trivet.featurestore import Feature, FeatureGroupSpec
    from trivet.featurestore import ingest as ingest_module

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
    data = big_table(rows)
    steps: dict[str, float] = {}
    real_validate, real_append = ingest_module.validate, store.offline.append
    real_write = store.online.write

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    import trivet.featurestore.store as store_module

    real_rows, real_id = ingest_module.online_rows, ingest_module.batch_id_of
    store_module.validate = timed("validate", real_validate)  # type: ignore[attr-defined]
    ingest_module.online_rows = timed("encode", real_rows)  # type: ignore[assignment]
    ingest_module.batch_id_of = timed("batch id", real_id)  # type: ignore[assignment]
    store.offline.append = timed("offline", real_append)  # type: ignore[method-assign]
    store.online.write = timed("online", real_write)  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        report = store.ingest("wide", data)
        wall = time.perf_counter() - start
    finally:
        store_module.validate = real_validate  # type: ignore[attr-defined]
        ingest_module.online_rows, ingest_module.batch_id_of = real_rows, real_id
    assert report.rows == rows and not report.duplicate
    store.close()
    return {
        "case": f"ingest {rows:,} rows x 10 floats" + ("" if online else ", offline only"),
        "rows": rows,
        "wall": wall,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=5000)
    parser.add_argument("--unbuffered", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each buffered case")
    args = parser.parse_args()

    puts = [put_unbuffered(args.unbuffered)]
    for quiet in (False, True):  # the median run (by p50) of --repeat
        runs = [put_buffered(args.puts, quiet=quiet) for _ in range(args.repeat)]
        runs.sort(key=lambda r: quantile(r["latencies"], 0.5))
        puts.append(runs[len(runs) // 2])
    ingests = [ingest(args.rows, online=True), ingest(args.rows, online=False)]

    out = [
        f"Machine: {platform.machine()}, Python {platform.python_version()}.",
        "",
        "| put_record | calls | calls/s | p50 (ms) | p99 (ms) | mean (ms) | records/s to offline |",
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
        "| ingest | wall (s) | rows/s | validate (s) | batch id (s) | Delta append (s) "
        "| online rows (s) | online upsert (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ingests:
        s = r["steps"]
        out.append(
            f"| {r['case']} | {r['wall']:.2f} | {r['rows'] / r['wall']:,.0f} | "
            f"{s.get('validate', 0):.2f} | {s.get('batch id', 0):.2f} | "
            f"{s.get('offline', 0):.2f} | {s.get('encode', 0):.2f} | {s.get('online', 0):.2f} |"
        )
    text = "\n".join(out) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
