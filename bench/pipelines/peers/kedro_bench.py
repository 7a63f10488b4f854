"""Kedro: a ``Pipeline`` of ``node``s run by a ``SequentialRunner`` over in-memory data.

Run by ``bench/pipelines/peers.py`` in an environment of its own (not trivet's); see
``_peer_common.py``. As Kedro's docs run a pipeline from Python: nodes whose outputs are
``MemoryDataset``s in a ``DataCatalog``, run by ``SequentialRunner().run(pipeline,
catalog)``. The no-op returns 0: Kedro refuses to save ``None`` to a dataset. Kedro
writes no records here (no session store, nothing persisted); it logs each node and
dataset load/save at INFO through its rich handler — ``--quiet`` sets the ``kedro``
logger to WARNING.
"""

# mypy: ignore-errors
# (runs only in its own environment, where Kedro is installed and trivet is not)

from __future__ import annotations

import logging
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
    plain_noop,
    plain_one,
)
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner


def chain_pipeline() -> Pipeline:
    """``s0 -> d0 -> s1 -> d1 … -> s19 -> d19``."""
    nodes = [node(plain_noop, None, "d0", name="s0")]
    nodes += [node(plain_noop, f"d{i - 1}", f"d{i}", name=f"s{i}") for i in range(1, CHAIN_STEPS)]
    return Pipeline(nodes)


def fan_pipeline() -> Pipeline:
    """``root``, 100 nodes reading it, a ``sink`` reading all 100."""
    nodes = [node(plain_noop, None, "root", name="root")]
    nodes += [node(plain_noop, "root", f"f{i}", name=f"f{i}") for i in range(FAN_WIDTH)]
    nodes.append(node(plain_noop, [f"f{i}" for i in range(FAN_WIDTH)], "out", name="sink"))
    return Pipeline(nodes)


def run(pipeline: Pipeline) -> None:
    """One run, in a fresh catalog (every intermediate a ``MemoryDataset``)."""
    SequentialRunner().run(pipeline, DataCatalog())


def main() -> None:
    args = parse_args(__doc__)
    if args.quiet:
        logging.getLogger("kedro").setLevel(logging.WARNING)
    chain = chain_pipeline()
    if args.cold:
        run(chain)
        return
    fan = fan_pipeline()
    one = Pipeline([node(plain_noop, None, "d0", name="s0")])
    shapes = dict(
        [
            measure("chain", CHAIN_STEPS, lambda: run(chain), plain_chain, args.repeats),
            measure("fan", FAN_STEPS, lambda: run(fan), plain_fan, args.repeats),
            measure("one", 1, lambda: run(one), plain_one, args.repeats),
        ]
    )
    emit(Result("Kedro", version("kedro"), shapes))


if __name__ == "__main__":
    main()
