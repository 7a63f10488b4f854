"""Plain Python calls: the floor (no orchestration, nothing recorded).

Run by ``bench/pipelines/peers.py``; see ``_peer_common.py`` for the protocol.
"""

from __future__ import annotations

import platform

from _peer_common import (
    CHAIN_STEPS,
    FAN_STEPS,
    Result,
    emit,
    measure,
    parse_args,
    plain_chain,
    plain_fan,
    plain_one,
)


def main() -> None:
    args = parse_args(__doc__)
    if args.cold:
        plain_chain()
        return
    shapes = dict(
        [
            measure("chain", CHAIN_STEPS, plain_chain, plain_chain, args.repeats),
            measure("fan", FAN_STEPS, plain_fan, plain_fan, args.repeats),
            measure("one", 1, plain_one, plain_one, args.repeats),
        ]
    )
    emit(Result("plain Python calls", platform.python_version(), shapes))


if __name__ == "__main__":
    main()
