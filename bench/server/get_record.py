"""Online ``get_record`` over HTTP on loopback: latency at a fixed request rate.

Set-up: a fresh workspace (SQLite catalog and online store) with one feature group of
100 000 records (an int record id, an event time, 4 float, 1 int, 1 string and 1 bool
feature; ~210-byte JSON answers), a user holding ``online_reader`` on the project and
an API token for them. Then ``trivet serve`` — the real command, run as ``python -m
trivet.cli serve``: uvicorn with one worker, default log level ``info`` so the access
log is written as in production — starts in a subprocess on 127.0.0.1.

Load: an open-loop generator in this process (asyncio; a minimal HTTP/1.1 keep-alive
client over a fixed pool of connections, so that the client's own cost stays small on a
2-core machine). Request ``i`` is due at ``start + i / rate`` whether or not earlier
ones have finished; each asks ``GET /v1/projects/<p>/feature-groups/users/records/<id>``
for a uniformly random id with the bearer token. It is bounded: at most
``--connections`` requests on the wire, at most 10 000 waiting for a connection (more
are counted as dropped), and a 5 s timeout per request. A warm-up (default 3 s, same
rate) is not counted.

Two latencies are recorded for every request:

- *latency*: from the moment the request was due (its scheduled time) to the last
  byte of the answer — so waiting for a free connection or a late timer counts
  (no coordinated omission);
- *service*: from writing the request on a connection to the last byte of the answer.

Reported: p50/p90/p99/p99.9/max of both (ms), the timer lag of the generator itself
(asyncio timers fire with millisecond granularity: ~0.7 ms at the median, included in
*latency*), the achieved rate, errors (non-200, timeouts, dropped), the server's CPU
time per request, and how much CPU other processes used meanwhile (all from ``/proc``:
the machine is shared, and a busy neighbour shows up in the tail). The JSON
goes to ``bench/results/get_record-<rate>rps-<seconds>s.json``; a Markdown row is printed.

Run: ``uv run python bench/server/get_record.py [--rate 500] [--seconds 60]
[--records 100000] [--connections 16] [--log-level info] [--profile FILE]``;
``--seconds 10`` for a quick run. ``--profile`` samples the server with py-spy during
the measured run (``uv run --with py-spy python bench/server/get_record.py …``);
``uv run --with httptools --with uvloop …`` measures uvicorn's compiled parser and loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"
GROUP = "users"
MAX_WAITING = 10_000
TIMEOUT_S = 5.0


# -- the workspace -------------------------------------------------------------------------------
def build_workspace(root: Path, records: int, seed: int) -> tuple[Path, str, str]:
    """Create the workspace, the group and its records; return (workspace, project, token)."""
    import numpy as np
    import pyarrow as pa

    import trivet
    from trivet.featurestore import Feature, FeatureGroupSpec

    settings = trivet.init(root / "ws")
    admin = trivet.connect(settings.workspace)
    fs = admin.featurestore
    fs.create_group(
        FeatureGroupSpec(
            name=GROUP,
            record_id="user_id",
            record_id_dtype="int",
            event_time="ts",
            features=[
                *(Feature(name=f"f{i}", dtype="float") for i in range(4)),
                Feature(name="clicks_7d", dtype="int"),
                Feature(name="segment", dtype="string"),
                Feature(name="active", dtype="bool"),
            ],
        )
    )
    rng = np.random.default_rng(seed)
    start_us = 1_704_067_200_000_000  # 2024-01-01T00:00Z
    table = pa.table(
        {
            "user_id": np.arange(records, dtype=np.int64),
            "ts": pa.array(
                start_us + rng.integers(0, 86_400_000_000 * 365, records),
                pa.timestamp("us", tz="UTC"),
            ),
            **{f"f{i}": rng.normal(size=records) for i in range(4)},
            "clicks_7d": rng.integers(0, 500, records),
            "segment": pa.array([f"segment-{k}" for k in rng.integers(0, 12, records)]),
            "active": rng.random(records) < 0.7,
        }
    )
    fs.ingest(GROUP, table)
    admin.identity.create_user("reader")
    admin.access.grant("reader", "online_reader", f"{admin.project}/*")
    token = admin.identity.create_token("reader").secret
    project = admin.project
    admin.close()
    return settings.workspace, project, token


# -- the server ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(workspace: Path, port: int, log_level: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `trivet serve` in a subprocess; return it once /healthz answers."""
    # `trivet serve`, run by this interpreter (so `uv run --with …` reaches the server too)
    cmd = [sys.executable, "-m", "trivet.cli", "--workspace", str(workspace), "serve"]
    cmd += ["--port", str(port)]
    cmd += ["--log-level", log_level]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start within 60 s")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / ticks, sum(values) / ticks


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- the load generator --------------------------------------------------------------------------
class Connection:
    """One keep-alive HTTP/1.1 connection: send a GET, read one answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body


class Load:
    """An open-loop load at a fixed rate over a pool of connections."""

    def __init__(self, port: int, paths: list[str], token: str, connections: int) -> None:
        self.port, self.paths, self.token, self.size = port, paths, token, connections
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()
        self.waiting = 0

    async def open(self) -> None:
        for _ in range(self.size):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.idle.put_nowait(Connection(reader, writer))

    def request(self, path: str) -> bytes:
        return (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nAccept: application/json\r\n\r\n"
        ).encode()

    async def one(self, due: float, path: str, out: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        self.waiting += 1
        conn = await self.idle.get()
        self.waiting -= 1
        sent = loop.time()
        try:
            status, body = await asyncio.wait_for(conn.get(self.request(path)), TIMEOUT_S)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            out["errors"] += 1
            conn.writer.close()  # its state is unknown: replace it
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.idle.put_nowait(Connection(reader, writer))
            return
        done = loop.time()
        self.idle.put_nowait(conn)
        if status != 200 or not body.startswith(b'{"record":'):
            out["non_200"] += 1
            return
        out["latency"].append(done - due)
        out["service"].append(done - sent)
        out["lag"].append(sent - due)

    async def run(self, rate: float, seconds: float, rng: random.Random) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        out: dict[str, Any] = {
            "latency": [],
            "service": [],
            "lag": [],
            "errors": 0,
            "non_200": 0,
            "dropped": 0,
        }
        total = int(rate * seconds)
        tasks: set[asyncio.Task[None]] = set()
        start = loop.time() + 0.05
        for i in range(total):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.waiting >= MAX_WAITING:
                out["dropped"] += 1
                continue
            task = asyncio.create_task(self.one(due, rng.choice(self.paths), out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*list(tasks))
        out["elapsed"] = loop.time() - start
        out["sent"] = total
        return out

    async def close(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            conn.writer.close()


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max in milliseconds (nearest-rank)."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(q: float) -> float:
        index = min(len(ordered) - 1, max(0, int(-(-q * len(ordered) // 1)) - 1))
        return ordered[index] * 1000

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "p99.9": rank(0.999),
        "max": ordered[-1] * 1000,
        "mean": statistics.fmean(ordered) * 1000,
    }


async def drive(
    port: int, project: str, token: str, args: argparse.Namespace, pid: int
) -> dict[str, Any]:
    rng = random.Random(args.seed)
    base = f"/v1/projects/{project}/feature-groups/{GROUP}/records/"
    paths = [base + str(i) for i in range(args.records)]
    load = Load(port, paths, token, args.connections)
    await load.open()
    try:
        if args.warmup > 0:
            await load.run(args.rate, args.warmup, rng)
        spy = None
        if args.profile is not None:
            spy_args = [
                "--nonblocking",
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(int(args.seconds)),
            ]
            spy = subprocess.Popen(
                ["py-spy", "record", "--pid", str(pid), *spy_args, "--output", str(args.profile)],
                stdout=subprocess.DEVNULL,
            )
        cpu0, own0, (busy0, all0) = cpu_seconds(pid), time.process_time(), machine_cpu()
        measured = await load.run(args.rate, args.seconds, rng)
        measured["server_cpu_s"] = cpu_seconds(pid) - cpu0
        measured["client_cpu_s"] = time.process_time() - own0
        busy1, all1 = machine_cpu()
        measured["machine_busy_s"], measured["machine_total_s"] = busy1 - busy0, all1 - all0
        measured["load_average"] = os.getloadavg()
        if spy is not None:
            spy.wait()
    finally:
        await load.close()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured warm-up (s)")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--log-level", default="info", help="the server's (info: access log)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the workspace and log")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the server with py-spy during the measured run into this file "
        "(collapsed stacks; run under `uv run --with py-spy`)",
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="trivet-bench-server-"))
    t0 = time.perf_counter()
    workspace, project, token = build_workspace(root, args.records, args.seed)
    setup_s = time.perf_counter() - t0
    print(f"workspace with {args.records:,} records ready in {setup_s:.1f} s", file=sys.stderr)
    port = free_port()
    log = root / "server.log"
    server = start_server(workspace, port, args.log_level, log)
    try:
        measured = asyncio.run(drive(port, project, token, args, server.pid))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    ok = len(measured["latency"])
    result = {
        "benchmark": "server get_record",
        "command": " ".join(["uv run python bench/server/get_record.py", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "system": platform.platform(),
        },
        "config": {
            k: getattr(args, k)
            for k in ("rate", "seconds", "warmup", "records", "connections", "log_level", "seed")
        },
        "sent": measured["sent"],
        "ok": ok,
        "errors": measured["errors"],
        "non_200": measured["non_200"],
        "dropped": measured["dropped"],
        "achieved_rps": ok / measured["elapsed"],
        "latency_ms": percentiles(measured["latency"]),
        "service_ms": percentiles(measured["service"]),
        "client_lag_ms": percentiles(measured["lag"]),
        "server_cpu_us_per_request": measured["server_cpu_s"] / max(ok, 1) * 1e6,
        "server_cpu_share": measured["server_cpu_s"] / measured["elapsed"],
        "client_cpu_share": measured["client_cpu_s"] / measured["elapsed"],
        # what else ran on the machine meanwhile (other processes), in cores
        "other_processes_cores": max(
            0.0,
            (measured["machine_busy_s"] - measured["server_cpu_s"] - measured["client_cpu_s"])
            / measured["elapsed"],
        ),
        "machine_busy_fraction": measured["machine_busy_s"] / measured["machine_total_s"],
        "load_average_after": measured["load_average"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"get_record-{args.rate:g}rps-{args.seconds:g}s.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    if args.keep:
        print(f"workspace and server log kept in {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    lat, svc = result["latency_ms"], result["service_ms"]
    print(
        "| target rate | s | requests ok | achieved rps | p50 | p90 | p99 | p99.9 | max "
        "| service p99 | errors | server CPU/req |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.rate:g} | {args.seconds:g} | {ok:,} | {result['achieved_rps']:.1f} "
        f"| {lat.get('p50', 0):.2f} | {lat.get('p90', 0):.2f} | {lat.get('p99', 0):.2f} "
        f"| {lat.get('p99.9', 0):.2f} | {lat.get('max', 0):.2f} | {svc.get('p99', 0):.2f} "
        f"| {result['errors'] + result['non_200'] + result['dropped']} "
        f"| {result['server_cpu_us_per_request']:.0f} µs |"
    )
    print(
        f"(latencies in ms; server {result['server_cpu_share']:.0%} of a core, client "
        f"{result['client_cpu_share']:.0%}, other processes {result['other_processes_cores']:.2f}"
        f" cores; JSON in {path})"
    )


if __name__ == "__main__":
    main()
