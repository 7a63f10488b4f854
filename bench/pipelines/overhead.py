"""Orchestration overhead per step of trivet.pipelines on the local executor.

Two shapes of no-op steps — a 20-step chain and a 1 → 100 → 1 fan-out/fan-in — run
with every record written (execution and step rows, cache entries, audit rows, run
token), beside the same functions called as plain Python (the floor). Per-step
overhead = (median wall time of a run − plain calls) / steps. Three cases:

* ``run``: every step runs (``refresh=True``: cache keys computed, entries written);
* ``cached``: every step is a cache hit;
* ``run, JSON out``: every step returns a small dict, stored as an artifact.

Run: ``uv run python bench/pipelines/overhead.py`` (writes bench/results/pipelines.md).
"""

from __future__ import annotations

import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trivet
from trivet.pipelines import Pipeline, Pipelines, pipeline, step

REPEATS = 7


@step
def noop(*inputs: Any) -> None:
    return None


@step
def small(*inputs: Any) -> dict[str, int]:
    return {"n": len(inputs)}


def chain(fn: Any, n: int) -> Callable[[], None]:
    def build() -> None:
        out = fn()
        for _ in range(n - 1):
            out = fn(out)

    return build


def fan(fn: Any, width: int) -> Callable[[], None]:
    def build() -> None:
        root = fn()
        fn(*[fn(root) for _ in range(width)])

    return build


def plain_chain(n: int) -> None:
    out = noop.fn()
    for _ in range(n - 1):
        out = noop.fn(out)


def plain_fan(width: int) -> None:
    root = noop.fn()
    noop.fn(*[noop.fn(root) for _ in range(width)])


def median_time(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ws = trivet.init(Path(tempfile.mkdtemp()) / "ws")
    session = trivet.connect(ws.workspace)
    pl = Pipelines(session)
    shapes: list[tuple[str, int, Callable[[Any], Callable[[], None]], Callable[[], None]]] = [
        ("20-step chain", 20, lambda f: chain(f, 20), lambda: plain_chain(20)),
        ("1 → 100 → 1 fan", 102, lambda f: fan(f, 100), lambda: plain_fan(100)),
    ]
    rows = []
    one = pipeline(name="one-step")(lambda: noop())
    pl.run(one).raise_for_status()
    fixed = median_time(lambda: pl.run(one, refresh=True).raise_for_status())
    for label, steps, build, plain in shapes:
        floor = median_time(plain)
        cases: list[tuple[str, Pipeline, bool]] = [
            ("run", pipeline(name="noop-" + str(steps))(build(noop)), True),
            ("cached", pipeline(name="noop-" + str(steps))(build(noop)), False),
            ("run, JSON out", pipeline(name="small-" + str(steps))(build(small)), True),
        ]
        for case, pipe, refresh in cases:
            pl.run(pipe).raise_for_status()  # warm: registered, cached
            wall = median_time(lambda p=pipe, r=refresh: pl.run(p, refresh=r).raise_for_status())
            per_step = (wall - floor) / steps * 1e6
            marginal = (wall - fixed - floor) / (steps - 1) * 1e6
            rows.append((label, case, steps, wall * 1e3, floor * 1e6 / steps, per_step, marginal))
    table = [
        "| shape | case | steps | run (ms) | plain call (µs/step) | overhead (µs/step) "
        "| beyond the first step (µs/step) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    table += [
        f"| {a} | {b} | {c} | {d:.1f} | {e:.2f} | {f:.0f} | {g:.0f} |"
        for a, b, c, d, e, f, g in rows
    ]
    machine = f"{platform.machine()}, Python {platform.python_version()}, SQLite catalog"
    text = "\n".join(
        [
            "# trivet.pipelines: orchestration overhead per step",
            "",
            f"`uv run python bench/pipelines/overhead.py` — {machine}; median of {REPEATS} "
            "runs after a warm-up; every record written (execution, step rows, cache "
            "entries, audit, run token). A one-step execution costs "
            f"{fixed * 1e3:.1f} ms (permission checks, the execution row, run token, "
            "final flush); the last column spreads only the rest over the other steps.",
            "",
            *table,
            "",
        ]
    )
    print(text)
    out = Path(__file__).resolve().parents[1] / "results" / "pipelines.md"
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
