"""Orchestration overhead per step on the Dask executor, beside the local executor.

A 20-step chain and a 1 → 18 → 1 fan (20 steps) of no-op steps run on a
``distributed.LocalCluster`` (worker processes, one thread each) and, in the same run,
on the local executor, with every record written. Per-step overhead = (median wall time
of a run − plain calls) / steps. Cases:

* ``run``: every step runs (``refresh=True``); its output is None (no artifact);
* ``run, JSON out``: every step returns a small dict, stored as an artifact — by the
  worker, on Dask;
* ``cached``: every step is a cache hit (decided in the calling process: no task is sent).

Run: ``uv run python bench/pipelines/dask_overhead.py [--workers 2]`` (writes
bench/results/pipelines_dask.md). The file is not called ``dask.py``: run as a script,
its folder comes first on ``sys.path`` and would shadow the ``dask`` package.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trivet
from trivet.pipelines import (
    DaskExecutor,
    Executor,
    LocalExecutor,
    Pipeline,
    Pipelines,
    pipeline,
    step,
)

REPEATS = 5
STEPS = 20


@step
def noop(*inputs: Any) -> None:
    return None


@step
def small(*inputs: Any) -> dict[str, int]:
    return {"n": len(inputs)}


def chain(fn: Any) -> Callable[[], None]:
    def build() -> None:
        out = fn()
        for _ in range(STEPS - 1):
            out = fn(out)

    return build


def fan(fn: Any) -> Callable[[], None]:
    def build() -> None:
        root = fn()
        fn(*[fn(root) for _ in range(STEPS - 2)])

    return build


def nothing() -> None:
    return None


def median_time(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    client.wait_for_workers(args.workers)
    start_s = time.perf_counter() - t0
    ws = trivet.init(Path(tempfile.mkdtemp()) / "ws")
    pl = Pipelines(trivet.connect(ws.workspace))
    dask = DaskExecutor(client)
    floor = median_time(lambda: [noop.fn() for _ in range(STEPS)])
    client.submit(nothing, pure=False).result()
    round_trip = median_time(lambda: client.submit(nothing, pure=False).result(), 40)
    executors: list[tuple[str, Callable[[], Executor]]] = [
        ("local", LocalExecutor),
        (f"Dask, {args.workers} worker processes", lambda: dask),
    ]
    rows = []
    for shape, build in (("20-step chain", chain), ("1 → 18 → 1 fan", fan)):
        for case, fn, refresh in (
            ("run", noop, True),
            ("run, JSON out", small, True),
            ("cached", small, False),
        ):
            pipe: Pipeline = pipeline(name=f"{shape.split()[0]}-{fn.name}")(build(fn))
            for label, make in executors:
                pl.run(pipe, executor=make()).raise_for_status()  # warm: registered, cached
                wall = median_time(
                    lambda p=pipe, r=refresh, m=make: pl.run(  # type: ignore[misc]
                        p, refresh=r, executor=m()
                    ).raise_for_status()
                )
                rows.append((shape, case, label, wall * 1e3, (wall - floor) / STEPS * 1e6))
    client.close()
    cluster.close()
    table = [
        "| shape | case | executor | run (ms) | overhead (µs/step) |",
        "|---|---|---|---:|---:|",
        *(f"| {a} | {b} | {c} | {d:.1f} | {e:,.0f} |" for a, b, c, d, e in rows),
    ]
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        "SQLite catalog, local artifact store"
    )
    text = "\n".join(
        [
            "# trivet.pipelines: per-step overhead on Dask vs the local executor",
            "",
            f"`uv run python bench/pipelines/dask_overhead.py --workers {args.workers}` — "
            f"{machine}; median of {REPEATS} runs after a warm-up; every record written. "
            f"The LocalCluster took {start_s:.1f} s to start (not counted); one Dask "
            f"round trip of an empty task (`client.submit(f).result()`, the floor of a "
            f"step that waits for its input) took {round_trip * 1e3:.1f} ms.",
            "",
            *table,
            "",
        ]
    )
    print(text)
    out = Path(__file__).resolve().parents[1] / "results" / "pipelines_dask.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
