"""Online reads in-process: ``get_record`` and ``batch_get_record`` latency.

Data (seeded): two feature groups, ``profiles`` (string ids ``u<i>``; 3 float, 1 int
and 1 string feature; no TTL) and ``activity`` (int ids; 2 float and 1 timestamp
feature; TTL 365 days, so the TTL check runs on every read), each with ``--records``
records ingested in one batch. The session is the workspace's admin (no token).

Cases, each timed call by call with ``time.perf_counter_ns`` after a warm-up:

- ``get_record``: one record of ``profiles`` per call, random ids, ``--calls`` calls.
- ``batch_get_record``, 100 ids from one group: ``{"profiles": [100 ids]}``.
- ``batch_get_record``, 100 ids across 2 groups: 50 from each, as ``(group, id)`` pairs.

Each runs against the SQLite online store (the default, a file in the workspace) and,
when a server answers at ``--redis`` (default ``redis://127.0.0.1:6379/0``), against
Redis with a key prefix unique to the run; the run deletes its keys afterwards.

Run: ``uv run python bench/featurestore/online.py [--records 10000] [--calls 20000]
[--batches 2000] [--repeat 3] [--redis URL|none]``. Prints a Markdown table and writes it
to ``bench/results/online.md``. :func:`measure_online` is importable (for comparisons).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

RESULTS = Path(__file__).resolve().parents[1] / "results" / "online.md"
REDIS_URL = "redis://127.0.0.1:6379/0"
TS = pa.timestamp("us", tz="UTC")
TARGETS = {"get_record": "p50 ≤ 20 µs, p99 ≤ 100 µs", "batch, 1 group": "p50 ≤ 0.5 ms"}


def open_workspace(workspace_dir: Path, online_url: str | None) -> Any:
    """Create a workspace at ``workspace_dir`` (online store: ``online_url`` or SQLite)."""
    import trivet
    from trivet.featurestore import FeatureStore

    settings = trivet.init(workspace_dir)
    if online_url is not None:
        config = settings.workspace / "trivet.toml"
        text = config.read_text()
        line = 'online_url = "sqlite:///online.db"'
        assert line in text, "the workspace template changed: update the benchmark"
        config.write_text(text.replace(line, f'online_url = "{online_url}"'))
    return FeatureStore(trivet.connect(settings.workspace))


def create_groups(store: Any, records: int, seed: int = 7) -> None:
    """Create ``profiles`` and ``activity`` and ingest ``records`` records into each."""
    from trivet.featurestore import Feature, FeatureGroupSpec

    rng = np.random.default_rng(seed)
    now_us = time.time_ns() // 1000
    store.create_group(
        FeatureGroupSpec(
            name="profiles",
            record_id="user_id",
            event_time="ts",
            features=[
                Feature(name="score", dtype="float"),
                Feature(name="ltv", dtype="float"),
                Feature(name="churn_risk", dtype="float"),
                Feature(name="visits", dtype="int"),
                Feature(name="segment", dtype="string"),
            ],
        )
    )
    store.create_group(
        FeatureGroupSpec(
            name="activity",
            record_id="user_id",
            record_id_dtype="int",
            event_time="ts",
            ttl=dt.timedelta(days=365),
            features=[
                Feature(name="clicks_7d", dtype="float"),
                Feature(name="spend_7d", dtype="float"),
                Feature(name="last_seen", dtype="timestamp"),
            ],
        )
    )
    events = pa.array(now_us - rng.integers(0, 86_400_000_000, records), TS)
    store.ingest(
        "profiles",
        pa.table(
            {
                "user_id": [f"u{i}" for i in range(records)],
                "ts": events,
                "score": rng.random(records),
                "ltv": rng.random(records) * 1000,
                "churn_risk": rng.random(records),
                "visits": rng.integers(0, 1000, records),
                "segment": rng.choice(["gold", "silver", "basic"], records),
            }
        ),
    )
    store.ingest(
        "activity",
        pa.table(
            {
                "user_id": np.arange(records, dtype=np.int64),
                "ts": events,
                "clicks_7d": rng.random(records) * 50,
                "spend_7d": rng.random(records) * 500,
                "last_seen": events,
            }
        ),
    )


def percentiles(latencies_ns: list[int]) -> tuple[float, float]:
    """Return (p50, p99) in microseconds."""
    p50, p99 = np.percentile(np.asarray(latencies_ns, dtype=np.float64), [50, 99])
    return float(p50) / 1000, float(p99) / 1000


def time_calls(call: Callable[[Any], object], args: list[Any], warmup: int) -> list[int]:
    """Call ``call(arg)`` for each arg (after ``warmup`` untimed calls); return ns each."""
    for arg in args[:warmup]:
        call(arg)
    clock = time.perf_counter_ns
    out = []
    for arg in args:
        start = clock()
        call(arg)
        out.append(clock() - start)
    return out


def measure_online(
    workspace_dir: str | os.PathLike[str],
    *,
    online_url: str | None = None,
    records: int = 10_000,
    calls: int = 20_000,
    batches: int = 2_000,
    seed: int = 11,
) -> dict[str, float]:
    """Create a workspace at ``workspace_dir``, fill it, and time the three read cases.

    Args:
        workspace_dir: a folder that does not hold a workspace yet (it is created).
        online_url: the online store (default: SQLite in the workspace); a Redis URL
            should carry a ``?prefix=`` of its own (see :func:`redis_url`).
        records: records per group.
        calls: timed ``get_record`` calls.
        batches: timed calls of each ``batch_get_record`` case.

    Returns:
        ``get_p50_us``, ``get_p99_us``, ``batch1_p50_us``, ``batch1_p99_us`` (100 ids, one
        group), ``batch2_p50_us``, ``batch2_p99_us`` (50 + 50 ids, two groups).
    """
    store = open_workspace(Path(workspace_dir), online_url)
    try:
        create_groups(store, records)
        rng = np.random.default_rng(seed)
        ids = [f"u{i}" for i in rng.integers(0, records, calls)]
        assert store.get_record("profiles", ids[0]) is not None
        get = time_calls(lambda i: store.get_record("profiles", i), ids, warmup=1000)
        one = [
            {"profiles": [f"u{i}" for i in rng.integers(0, records, 100)]} for _ in range(batches)
        ]
        two = [
            [("profiles", f"u{i}") for i in rng.integers(0, records, 50)]
            + [("activity", int(i)) for i in rng.integers(0, records, 50)]
            for _ in range(batches)
        ]
        got = store.batch_get_record(two[0])
        assert len(got) == 100 and all(r is not None for r in got)
        batch1 = time_calls(store.batch_get_record, one, warmup=100)
        batch2 = time_calls(store.batch_get_record, two, warmup=100)
    finally:
        if online_url is not None and online_url.startswith("redis"):
            for name in ("profiles", "activity"):  # the run's keys; best effort
                with contextlib.suppress(Exception):
                    store.online.drop(store.describe(name).id)
        store.close()
    out: dict[str, float] = {}
    for label, latencies in (("get", get), ("batch1", batch1), ("batch2", batch2)):
        out[f"{label}_p50_us"], out[f"{label}_p99_us"] = percentiles(latencies)
    return out


def redis_url(base: str) -> str | None:
    """Return ``base`` with a run-unique key prefix, or None when no server answers."""
    try:
        import redis
    except ImportError:
        return None
    client = redis.Redis.from_url(base, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return f"{base}?prefix=trivet-bench-online:{uuid.uuid4().hex}:"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--redis", default=REDIS_URL, help="a Redis URL, or 'none'")
    args = parser.parse_args()

    stores: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.redis != "none":
        if redis_url(args.redis) is None:
            print(f"no Redis server answers at {args.redis}: SQLite only", flush=True)
        else:
            stores.append(("Redis", args.redis))
    rows = []
    with tempfile.TemporaryDirectory(prefix="trivet-bench-online-") as tmp:
        for label, base in stores:
            runs = []
            for i in range(args.repeat):
                url = None if base is None else redis_url(base)
                runs.append(
                    measure_online(
                        Path(tmp) / f"{label}-{i}",
                        online_url=url,
                        records=args.records,
                        calls=args.calls,
                        batches=args.batches,
                    )
                )
                print(label, {k: round(v, 1) for k, v in runs[-1].items()}, flush=True)
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            for case, key, unit in (
                ("get_record", "get", "µs"),
                ("batch, 1 group", "batch1", "ms"),
                ("batch, 2 groups", "batch2", "ms"),
            ):
                scale = 1.0 if unit == "µs" else 1000.0
                p50, p99 = med[f"{key}_p50_us"] / scale, med[f"{key}_p99_us"] / scale
                fmt = ".1f" if unit == "µs" else ".3f"
                rows.append(
                    f"| {label} | {case} | {p50:{fmt}} {unit} | {p99:{fmt}} {unit} "
                    f"| {TARGETS.get(case, '')} |"
                )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    import redis as redis_module

    header = [
        f"In-process online reads, {args.records:,} records per group, median of "
        f"{args.repeat} runs ({args.calls:,} `get_record` calls, {args.batches:,} calls of "
        f"each batch case per run). Python {platform.python_version()}, redis-py "
        f"{redis_module.__version__}; load average (1, 5, 15 min) at the end: {load}. "
        "Command: `uv run python bench/featurestore/online.py`.",
        "",
        "| store | case | p50 | p99 | target |",
        "|---|---|---:|---:|---|",
    ]
    text = "\n".join(header + rows) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()
