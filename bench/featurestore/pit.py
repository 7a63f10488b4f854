"""How fast the point-in-time join builds a training set, and how much memory it needs.

Data (deterministic, seeded numpy): 100 000 record ids; 1 000 000 entity rows (a key, a
time uniform over 2024, a label); feature rows with a key, an event time uniform over
2024 and 3 float features, ingested in daily batches (each row written at the midnight
after its event), 1 % of them corrected by a later batch with the same event time (about
400 distinct write times in all), stored as 10 parquet files in the offline-table layout.
TTL 30 days (and, for 1M feature rows, none: the range join's cost grows with the TTL).

Cases: 1M entity rows x 1M feature rows, and x 10M, for the ASOF strategy (the default)
and the range-join strategy, with and without ``created_cutoff`` (at 10M rows, with ASOF
only). Each measurement runs in a fresh process, so its peak RSS (``getrusage``) is its
own: it includes the Python interpreter, pyarrow, DuckDB and the 1M-row entity
DataFrame. The process times the call twice: the first call pays for importing DuckDB
and opening its database; the second, the same join, shows the cost of each further
training set built in a process. The 1M-row cases are run three times (the median is
reported), the 10M-row cases once: the machine is shared.

Run: ``uv run python bench/featurestore/pit.py [--sizes 1000000,10000000]
[--strategies asof,range] [--repeat 3]``. Prints a Markdown table and writes it to
``bench/results/pit.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RESULTS = Path(__file__).resolve().parents[1] / "results" / "pit.md"
IDS = 100_000
ENTITY_ROWS = 1_000_000
FILES = 10
TTL_DAYS = 30
START_US = 1_704_067_200_000_000  # 2024-01-01T00:00Z
DAY_US = 86_400_000_000
SPAN_US = 366 * DAY_US
TS = pa.timestamp("us", tz="UTC")
TARGETS: dict[tuple[int, bool, int | None], str] = {
    (1_000_000, False, TTL_DAYS): "≤ 0.5 s",
    (10_000_000, False, TTL_DAYS): "≤ 5 s, ≤ 2 GiB",
}


def write_features(directory: Path, rows: int, seed: int) -> list[str]:
    """Write ``rows`` feature rows as FILES parquet files; return their paths."""
    rng = np.random.default_rng(seed)
    corrections = rows // 100
    base = rows - corrections
    ids = rng.integers(0, IDS, base)
    event = START_US + rng.integers(0, SPAN_US, base)
    # 1 %: a later batch re-writes an existing (id, event time) with new values
    pick = rng.integers(0, base, corrections)
    ids = np.concatenate([ids, ids[pick]])
    event = np.concatenate([event, event[pick]])
    day = (event - START_US) // DAY_US
    write = START_US + (day + 1) * DAY_US  # the day's batch, written at midnight
    write[base:] += rng.integers(1, 30, corrections) * DAY_US
    order = np.argsort(write, kind="stable")  # files in write order, as a Delta log has them
    paths = []
    for i, chunk in enumerate(np.array_split(order, FILES)):
        n = len(chunk)
        batch_day = (write[chunk] - START_US) // DAY_US
        table = pa.table(
            {
                "user_id": ids[chunk],
                "ts": pa.array(event[chunk], TS),
                "f1": rng.random(n),
                "f2": rng.random(n),
                "f3": rng.random(n),
                "__write_time": pa.array(write[chunk], TS),
                "__deleted": np.zeros(n, dtype=bool),
                "__batch": pa.array([f"day-{d:03d}" for d in batch_day]),
            }
        )
        path = directory / f"part-{i:02d}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def write_entity(directory: Path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "user_id": rng.integers(0, IDS, ENTITY_ROWS),
            "ts": pa.array(START_US + rng.integers(0, SPAN_US, ENTITY_ROWS), TS),
            "label": rng.integers(0, 2, ENTITY_ROWS),
        }
    )
    path = directory / "entity.parquet"
    pq.write_table(table, path)
    return str(path)


def child(spec: dict[str, Any]) -> None:
    """Run one join in this (fresh) process; print wall time and peak RSS as JSON.

    ``wall`` is the first call (it imports DuckDB and opens its database); ``warm`` a
    second, identical call in the same process; the peak RSS is taken between the two.

    With ``spec["out"]``, the features of the result (in entity order) are also written
    to that parquet file, once the figures are taken.
    """
    from trivet.featurestore._pit import GroupSource, point_in_time_join

    entity = pq.read_table(str(spec["entity"])).to_pandas()
    source = GroupSource(
        name="activity",
        record_id="user_id",
        event_time="ts",
        features=["f1", "f2", "f3"],
        ttl=None if spec["ttl_days"] is None else dt.timedelta(days=spec["ttl_days"]),
        files=spec["files"],
    )
    start = time.perf_counter()
    result = point_in_time_join(
        entity,
        [source],
        timestamp="ts",
        strategy=spec["strategy"],
        created_cutoff=bool(spec["cutoff"]),
    )
    wall = time.perf_counter() - start
    assert result.num_rows == ENTITY_ROWS
    matched = result.num_rows - result.column("f1").null_count
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if spec.get("out"):  # for comparisons (feast_compare.py): after the figures are taken
        pq.write_table(result.select(["f1", "f2", "f3"]), str(spec["out"]))
    del result
    start = time.perf_counter()  # again: DuckDB imported and its database open, as in a
    point_in_time_join(  # process that builds more than one training set
        entity,
        [source],
        timestamp="ts",
        strategy=spec["strategy"],
        created_cutoff=bool(spec["cutoff"]),
    )
    warm = time.perf_counter() - start
    print(json.dumps({"wall": wall, "warm": warm, "rss_mib": peak_kib / 1024, "matched": matched}))


def measure(spec: dict[str, Any]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--strategies", default="asof,range")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the 1M-row cases")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return

    import duckdb

    sizes = [int(s) for s in args.sizes.split(",")]
    strategies = args.strategies.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="trivet-bench-pit-") as tmp:
        entity = write_entity(Path(tmp), seed=1)
        for size in sizes:
            directory = Path(tmp) / f"features-{size}"
            directory.mkdir()
            t0 = time.perf_counter()
            files = write_features(directory, size, seed=2)
            print(f"wrote {size:,} feature rows in {time.perf_counter() - t0:.1f} s", flush=True)
            cases: list[tuple[str, bool, int | None]]
            cases = [(s, c, TTL_DAYS) for c in (False, True) for s in strategies]
            if size > 1_000_000:  # the machine is shared: created_cutoff for the default only
                cases = [(s, c, t) for s, c, t in cases if not c or s == "asof"]
            else:  # how each strategy's cost depends on the TTL
                cases += [(s, False, None) for s in strategies]
            for strategy, cutoff, ttl in cases:
                spec = {
                    "entity": entity,
                    "files": files,
                    "strategy": strategy,
                    "cutoff": cutoff,
                    "ttl_days": ttl,
                }
                repeat = args.repeat if size <= 1_000_000 else 1
                runs = [measure(spec) for _ in range(repeat)]
                wall = statistics.median(r["wall"] for r in runs)
                warm = statistics.median(r["warm"] for r in runs)
                rss = max(r["rss_mib"] for r in runs)
                row = (
                    f"| 1M x {size / 1e6:g}M | {strategy} | {'yes' if cutoff else 'no'} "
                    f"| {'none' if ttl is None else f'{ttl} days'} "
                    f"| {wall:.2f} | {warm:.2f} | {rss:,.0f} "
                    f"| {runs[0]['matched'] / ENTITY_ROWS:.1%} "
                    f"| {TARGETS.get((size, cutoff, ttl), '')} |"
                )
                print(row, flush=True)
                rows.append(row)
    load = "load average (1, 5, 15 min) at the end: " + ", ".join(
        f"{x:.1f}" for x in os.getloadavg()
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    header = [
        "Point-in-time join (`point_in_time_join`), 1M entity rows, 100k ids, 3 float "
        "features, parquet input (10 files), pandas entity DataFrame; wall time of the "
        "first call in a fresh process (it imports DuckDB and opens its database) and of a "
        f"second call in that process (median of {args.repeat} for 1M feature rows, one run "
        "for 10M), and peak RSS of the process after the first call. "
        f"{cores} cores, Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
        f"pyarrow {pa.__version__}; {load} (the machine is shared). "
        "Command: `uv run python bench/featurestore/pit.py`.",
        "",
        "| entity x features | strategy | created_cutoff | TTL | first call (s) "
        "| next call (s) | peak RSS (MiB) | rows matched | target |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    text = "\n".join(header + rows) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()
