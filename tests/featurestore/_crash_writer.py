"""Writer processes for the crash tests (tests/featurestore/test_crash.py); not a test.

``python _crash_writer.py`` is a fork server: it imports trivet, pandas, pyarrow and
deltalake once (opening nothing: no database, no table, no thread), prints
``ready``, then for each line ``OUTFILE MODE ARGS...`` on stdin forks a writer
process and answers ``pid <pid>``. A writer is a real process of its own, killed by
the test with SIGKILL; forking from a warm server only saves each trial the second
of imports. Modes:

    put WORKSPACE GROUP PREFIX           put_record in a loop
    ingest WORKSPACE GROUP PREFIX ROWS   ingest batches of ROWS rows in a loop
    batches WORKSPACE GROUP NAMES ROWS   ingest the named batches (NAMES: a,b,c), then exit

A writer appends to OUTFILE (one ``write`` per line, so a kill never leaves half a
line): ``ready`` once its store is open, then, only *after* a call has returned,
``ack <record id>`` (put) or ``ack <n> <batch id> new|duplicate`` (ingest, batches),
``start <n>`` before each ingest, and ``done`` at the end of ``batches``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
WARM = (
    "deltalake",
    "pandas",
    "pyarrow.compute",
    "pyarrow.dataset",
    "sqlalchemy.dialects.sqlite",
    "trivet._session",
    "trivet.featurestore.buffer",
    "trivet.featurestore.offline.delta",
    "trivet.featurestore.store",
    "trivet.platform.audit",
    "trivet.platform.workspace",
)


def batch(name: str, rows: int) -> Any:
    """The deterministic batch ``name``: ids ``<name>-<k>``, x = k, tag = name."""
    import pyarrow as pa

    return pa.table(
        {
            "id": [f"{name}-{k}" for k in range(rows)],
            "ts": pa.array(
                [T0 + dt.timedelta(seconds=k) for k in range(rows)],
                type=pa.timestamp("us", tz="UTC"),
            ),
            "x": [float(k) for k in range(rows)],
            "tag": [name] * rows,
        }
    )


def run(argv: Sequence[str], emit: Callable[[str], None]) -> None:
    """Run one writer (in the forked process)."""
    import trivet
    from trivet.featurestore import FeatureStore

    mode, workspace, group = argv[:3]
    # tiny micro-batches and a short age, so that kills also land inside flushes
    store = FeatureStore(trivet.connect(workspace), flush_rows=16, flush_seconds=0.05)
    emit("ready")
    if mode == "put":
        prefix = argv[3]
        i = 0
        while True:
            record_id = f"{prefix}-{i}"
            store.put_record(
                group,
                {"id": record_id, "ts": T0 + dt.timedelta(seconds=i), "x": float(i), "tag": prefix},
            )
            emit(f"ack {record_id}")
            i += 1
    names: list[str]
    if mode == "ingest":
        prefix, rows = argv[3], int(argv[4])
        names = [f"{prefix}-b{n}" for n in range(10_000)]
    elif mode == "batches":
        names, rows = argv[3].split(","), int(argv[4])
    else:
        raise ValueError(f"unknown mode {mode!r}")
    for n, name in enumerate(names):
        emit(f"start {n}")
        report = store.ingest(group, batch(name, rows))
        emit(f"ack {n} {report.batch_id} {'duplicate' if report.duplicate else 'new'}")
    store.close()
    emit("done")


def child(out: str, argv: Sequence[str]) -> int:
    """Run a writer in the forked process, its lines going to ``out``; return its exit code."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def emit(text: str) -> None:
        os.write(fd, (text + "\n").encode())

    try:
        run(argv, emit)
    except BaseException:  # report it to the test, then exit
        emit("error " + traceback.format_exc().replace("\n", " | "))
        return 1
    return 0


def serve() -> None:
    """Fork a writer per line of stdin; answer each with its pid."""
    # warm imports only: nothing is opened (no database, table or thread) before a fork
    for module in WARM:
        importlib.import_module(module)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # writers are reaped as they end
    print("ready", flush=True)
    while line := sys.stdin.readline():
        out, *argv = line.split()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os._exit(child(out, argv))
        print("pid", pid, flush=True)


if __name__ == "__main__":
    serve()
