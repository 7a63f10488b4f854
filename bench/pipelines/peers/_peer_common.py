"""What every per-tool script of ``bench/pipelines/peers.py`` shares.

Each tool's script (``<tool>_bench.py`` beside this file) runs in the tool's own
environment, where neither trivet nor this folder is installed: it is imported from the
script's folder, which Python puts first on ``sys.path``. It needs only the standard
library.

Protocol: ``python <tool>_bench.py [--repeats N] [--quiet]`` measures the two shapes warm
and prints one JSON object on the last line of stdout (a tool may log on stdout before
it); ``python <tool>_bench.py --cold`` runs the 20-step chain once and exits — that is
the ``python pipeline.py`` whose wall time the driver takes in fresh processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

CHAIN_STEPS = 20
FAN_WIDTH = 100
FAN_STEPS = FAN_WIDTH + 2


def plain_noop(*inputs: Any) -> int:
    """The no-op step, as a plain function (the floor every tool is compared with)."""
    return 0


def plain_one() -> None:
    """A one-step run as a plain call (the floor of the fixed cost of a run)."""
    plain_noop()


def plain_chain() -> None:
    """The 20-step chain as plain calls."""
    out = plain_noop()
    for _ in range(CHAIN_STEPS - 1):
        out = plain_noop(out)


def plain_fan() -> None:
    """The 1 → 100 → 1 fan-out/fan-in as plain calls."""
    root = plain_noop()
    plain_noop(*[plain_noop(root) for _ in range(FAN_WIDTH)])


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass
class Shape:
    """One measured shape: median wall time of a run and of the same plain calls."""

    steps: int
    wall_s: float
    floor_s: float


@dataclass
class Result:
    """What a tool's script prints (as JSON) for the driver."""

    tool: str
    version: str
    shapes: dict[str, Shape]
    notes: list[str] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)


def measure(
    name: str,
    steps: int,
    run: Callable[[], Any],
    plain: Callable[[], None],
    repeats: int,
) -> tuple[str, Shape]:
    """Warm up ``run`` once, then time it and the plain-call floor ``repeats`` times."""
    run()
    return name, Shape(steps, median_time(run, repeats), median_time(plain, repeats))


def parse_args(doc: str | None) -> argparse.Namespace:
    """The command line every tool's script accepts."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--cold", action="store_true", help="run the 20-step chain once")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per shape")
    parser.add_argument("--quiet", action="store_true", help="the tool's logging at WARNING")
    parser.add_argument("--workspace", help="trivet only: the workspace (made if missing)")
    return parser.parse_args()


def emit(result: Result) -> None:
    """Print the result as one JSON line (the last line of stdout)."""
    print("\n" + json.dumps(asdict(result)), flush=True)
