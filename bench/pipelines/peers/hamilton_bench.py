"""Hamilton (``sf-hamilton``, now ``apache-hamilton``): a driver over generated modules.

Run by ``bench/pipelines/peers.py`` in an environment of its own (not trivet's); see
``_peer_common.py``. Shapes, as Hamilton expresses a static DAG — one function a node,
each parameter naming the node it depends on:

* the 20-step chain: ``s00() -> s01(s00) -> … -> s19(s18)``;
* the 1 → 100 → 1 fan: ``root()``, 100 functions ``fNNN(root)``, ``sink(f000, …, f099)``.

Also the same fan as Hamilton's dynamic ``Parallelizable``/``Collect`` (one node
expanded into 100 tasks; experimental mode, synchronous local executor). Hamilton writes
no records: ``execute`` returns the requested outputs and nothing is kept.
"""

# mypy: ignore-errors
# (runs only in its own environment, where Hamilton is installed and trivet is not)

from __future__ import annotations

import sys
import types
from importlib.metadata import version

from _peer_common import (
    CHAIN_STEPS,
    FAN_STEPS,
    FAN_WIDTH,
    Result,
    emit,
    measure,
    parse_args,
    plain_chain,
    plain_fan,
    plain_one,
)
from hamilton import driver
from hamilton.execution import executors

ONE_SOURCE = "def s00() -> int:\n    return 0\n"

PARALLEL_SOURCE = f"""
from hamilton.htypes import Collect, Parallelizable

def root() -> int:
    return 0

def item(root: int) -> Parallelizable[int]:
    for _ in range({FAN_WIDTH}):
        yield root

def work(item: int) -> int:
    return 0

def sink(work: Collect[int]) -> int:
    return 0
"""


def make_module(name: str, source: str) -> types.ModuleType:
    """A module made from ``source`` (Hamilton reads functions from modules)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def chain_source() -> str:
    """The 20 chained no-op functions."""
    lines = [ONE_SOURCE]
    lines += [f"def s{i:02d}(s{i - 1:02d}: int) -> int:\n    return 0\n" for i in range(1, 20)]
    return "\n".join(lines)


def fan_source() -> str:
    """``root``, 100 functions of ``root`` and a ``sink`` of all 100."""
    lines = ["def root() -> int:\n    return 0\n"]
    lines += [f"def f{i:03d}(root: int) -> int:\n    return 0\n" for i in range(FAN_WIDTH)]
    params = ", ".join(f"f{i:03d}: int" for i in range(FAN_WIDTH))
    lines.append(f"def sink({params}) -> int:\n    return 0\n")
    return "\n".join(lines)


def main() -> None:
    args = parse_args(__doc__)
    chain = driver.Builder().with_modules(make_module("h_chain", chain_source())).build()
    if args.cold:
        chain.execute([f"s{CHAIN_STEPS - 1:02d}"])
        return
    fan = driver.Builder().with_modules(make_module("h_fan", fan_source())).build()
    parallel = (
        driver.Builder()
        .with_modules(make_module("h_parallel", PARALLEL_SOURCE))
        .enable_dynamic_execution(allow_experimental_mode=True)
        .with_local_executor(executors.SynchronousLocalTaskExecutor())
        .build()
    )
    one = driver.Builder().with_modules(make_module("h_one", ONE_SOURCE)).build()
    shapes = dict(
        [
            measure(
                "chain",
                CHAIN_STEPS,
                lambda: chain.execute([f"s{CHAIN_STEPS - 1:02d}"]),
                plain_chain,
                args.repeats,
            ),
            measure("fan", FAN_STEPS, lambda: fan.execute(["sink"]), plain_fan, args.repeats),
            measure(
                "fan, Parallelizable/Collect",
                FAN_STEPS,
                lambda: parallel.execute(["sink"]),
                plain_fan,
                args.repeats,
            ),
            measure("one", 1, lambda: one.execute(["s00"]), plain_one, args.repeats),
        ]
    )
    notes = [
        "Hamilton: the fan is 100 generated functions (static DAG); the "
        "Parallelizable/Collect row expands one node into 100 tasks at run time."
    ]
    emit(Result("Hamilton", version("apache-hamilton"), shapes, notes))


if __name__ == "__main__":
    main()
