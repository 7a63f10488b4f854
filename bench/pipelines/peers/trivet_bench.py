"""trivet.pipelines on the local executor, every record written (the driver's subject).

The steps and shapes are ``bench/pipelines/overhead.py``'s (``noop`` returns None, so no
artifact is stored; ``refresh=True``: every step runs, its cache key is computed and its
cache entry, step row and audit rows are written, with the execution row and run token).
Run by ``bench/pipelines/peers.py`` with trivet's interpreter; see ``_peer_common.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/pipelines/overhead.py

from overhead import chain, fan, noop

import trivet
from trivet.pipelines import Pipelines, pipeline

CHAIN = pipeline(name="noop-" + str(CHAIN_STEPS))(chain(noop, CHAIN_STEPS))
FAN = pipeline(name="noop-" + str(FAN_STEPS))(fan(noop, FAN_WIDTH))
ONE = pipeline(name="one-step")(lambda: noop())


def open_pipelines(workspace: str | None) -> Pipelines:
    """Pipelines on ``workspace``, made first if it does not exist (default: a temp one)."""
    path = Path(workspace) if workspace else Path(tempfile.mkdtemp()) / "ws"
    if not path.exists():
        trivet.init(path)
    return Pipelines(trivet.connect(path))


def main() -> None:
    args = parse_args(__doc__)
    pl = open_pipelines(args.workspace)
    if args.cold:
        pl.run(CHAIN, refresh=True).raise_for_status()
        return
    shapes = dict(
        [
            measure(
                "chain",
                CHAIN_STEPS,
                lambda: pl.run(CHAIN, refresh=True).raise_for_status(),
                plain_chain,
                args.repeats,
            ),
            measure(
                "fan",
                FAN_STEPS,
                lambda: pl.run(FAN, refresh=True).raise_for_status(),
                plain_fan,
                args.repeats,
            ),
            measure(
                "one",
                1,
                lambda: pl.run(ONE, refresh=True).raise_for_status(),
                plain_one,
                args.repeats,
            ),
        ]
    )
    notes = [
        "trivet: the fixed cost of an execution: permission checks, the execution row, "
        "run token, final flush."
    ]
    emit(Result("trivet", getattr(trivet, "__version__", "source tree"), shapes, notes))


if __name__ == "__main__":
    main()
