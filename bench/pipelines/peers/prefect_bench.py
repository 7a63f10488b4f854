"""Prefect: a ``@flow`` calling ``@task``s, against Prefect's temporary local server.

Run by ``bench/pipelines/peers.py`` in an environment of its own (not trivet's); see
``_peer_common.py``. With ``PREFECT_API_URL`` unset, the first flow run of a process
starts a temporary API server (a subprocess, on a SQLite database in ``PREFECT_HOME``);
its start is measured apart: the first one-task flow run minus a warm one. Shapes, as
Prefect's docs write them:

* the 20-step chain: each task called with the previous one's result (runs in the
  flow's thread);
* the 1 → 100 → 1 fan: 100 ``.submit``s on the default ``ThreadPoolTaskRunner``, then a
  task of the 100 futures.

Prefect records a flow run and each task run, with their state transitions (and log
lines), through its API into its database; results are not persisted by default.
``--quiet`` sets ``PREFECT_LOGGING_LEVEL=WARNING`` (it must be set before the import).
"""

# mypy: ignore-errors
# (runs only in its own environment, where Prefect is installed and trivet is not)

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import version
from typing import Any

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

if "--quiet" in sys.argv:
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"

from prefect import flow, task


@task
def noop(*inputs: Any) -> int:
    return 0


@task
def sink(inputs: list[int]) -> int:
    return 0


@flow
def one_step() -> None:
    noop()


@flow
def chain() -> None:
    out = noop()
    for _ in range(CHAIN_STEPS - 1):
        out = noop(out)


@flow
def fan() -> None:
    root = noop()
    sink([noop.submit(root) for _ in range(FAN_WIDTH)])


def main() -> None:
    args = parse_args(__doc__)
    if args.cold:
        chain()
        return
    t0 = time.perf_counter()
    one_step()
    first = time.perf_counter() - t0
    shapes = dict(
        [
            measure("chain", CHAIN_STEPS, chain, plain_chain, args.repeats),
            measure("fan", FAN_STEPS, fan, plain_fan, args.repeats),
            measure("one", 1, one_step, plain_one, args.repeats),
        ]
    )
    server = first - shapes["one"].wall_s
    notes = [
        f"Prefect: the first flow run of a process took {first:.1f} s — {server:.1f} s "
        "more than a warm one-task flow run: the temporary server's start."
    ]
    extra = {"server_start_s": server}
    emit(Result("Prefect", version("prefect"), shapes, notes, extra))


if __name__ == "__main__":
    main()
