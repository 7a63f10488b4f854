"""trivet.pipelines beside plain calls, Hamilton, Kedro and Prefect, in one run (issue #5).

The same two shapes of no-op steps — a 20-step chain and a 1 → 100 → 1 fan-out/fan-in —
and a one-step run, measured by one small script per tool (``bench/pipelines/peers/``):
warm (median of ``--repeats`` runs after a warm-up, in one process), and cold: the
20-step chain as ``python <script> --cold`` in fresh processes (``hyperfine`` if it is
installed, else timed subprocesses). Per-step overhead = (median run − the same plain
calls) / steps; "beyond the first step" also takes off the one-step run (a tool's fixed
cost per run) and spreads the rest over the other steps.

Each peer is installed by ``uv`` into a virtual environment of its own under the work
folder — never into trivet's — with trivet's Python version; a peer that does not
install is reported as "not installed: <reason>". trivet runs with this interpreter, on
a workspace made in the work folder (every record written, see ``overhead.py``).
Prefect runs twice: against the temporary server it starts in each process when
``PREFECT_API_URL`` is unset (its start measured apart), and against a ``prefect server
start`` left running (its start timed until ``/api/health`` answers).

Every process runs with ``PYTHONPYCACHEPREFIX`` in the work folder (bytecode compiled
once, by the warm-up, for every tool alike) and the tools' telemetry off.

Run: ``uv run python bench/pipelines/peers.py`` (writes bench/results/pipelines-peers.md;
needs ``uv`` on PATH and, for the peers, access to PyPI).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "peers"
RESULTS = HERE.parent / "results" / "pipelines-peers.md"
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Tool:
    """A tool to measure: its script, and what to install (empty: runs in trivet's env)."""

    name: str
    script: str
    packages: tuple[str, ...] = ()
    records: str = ""


PLAIN = Tool("plain Python calls (the floor)", "plain_bench.py", records="nothing")
TRIVET = Tool(
    "trivet",
    "trivet_bench.py",
    records="execution + step rows, cache entries, audit rows, run token (SQLite catalog)",
)
HAMILTON = Tool("Hamilton", "hamilton_bench.py", ("sf-hamilton",), "nothing")
KEDRO = Tool("Kedro", "kedro_bench.py", ("kedro",), "nothing (logs each node at INFO)")
PREFECT = Tool(
    "Prefect",
    "prefect_bench.py",
    ("prefect",),
    "flow run, task runs, their states and logs (SQLite, through its API server)",
)
PEERS = (HAMILTON, KEDRO, PREFECT)
SHAPES = ("one", "chain", "fan")


@dataclass
class Row:
    """One line of the table: a tool in one configuration, or why it has no figures."""

    label: str
    records: str
    shapes: dict[str, dict[str, float]] = field(default_factory=dict)
    cold_s: float | None = None
    problem: str = ""


@dataclass
class Run:
    """What the whole run collects."""

    rows: list[Row] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def last_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of a process's output (its error or its JSON result)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else "no output"


def base_env(work: Path) -> dict[str, str]:
    """The environment of every measured process (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    for name in ("PREFECT_API_URL", "VIRTUAL_ENV"):
        env.pop(name, None)
    env.update(
        PYTHONPYCACHEPREFIX=str(work / "pycache"),
        DO_NOT_TRACK="1",
        HAMILTON_TELEMETRY_ENABLED="false",
        KEDRO_DISABLE_TELEMETRY="true",
        PREFECT_HOME=str(work / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    return env


def install(tool: Tool, work: Path) -> tuple[Path | None, str]:
    """Make ``tool``'s own virtual environment; (its python, "") or (None, the reason)."""
    uv = shutil.which("uv")
    if uv is None:
        return None, "uv is not on PATH (install it: pip install uv)"
    venv = work / "venvs" / tool.name.lower()
    steps = [
        [uv, "venv", "-q", "--clear", "--python", platform.python_version(), str(venv)],
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *tool.packages],
    ]
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, f"`{shlex.join(cmd[1:4])}` took over {INSTALL_TIMEOUT_S} s"
        if done.returncode != 0:
            return None, last_line(done.stderr or done.stdout)
    return venv / "bin" / "python", ""


def versions(python: Path, names: tuple[str, ...]) -> str:
    """Installed versions of ``names`` (and what they pulled in under the same stem)."""
    code = (
        "import importlib.metadata as m\n"
        "for d in sorted(m.distributions(), key=lambda d: d.metadata['Name'].lower()):\n"
        "    print(d.metadata['Name'], d.version)"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    stems = {name.split("-")[-1].lower() for name in names}
    found = [
        line
        for line in done.stdout.splitlines()
        if any(stem in line.split()[0].lower() for stem in stems)
    ]
    return ", ".join(found)


def warm(python: Path, tool: Tool, args: list[str], env: Mapping[str, str]) -> dict[str, Any]:
    """Run a tool's script warm; its JSON result. Raises RuntimeError naming the failure."""
    cmd = [str(python), str(SCRIPTS / tool.script), *args]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=dict(env), timeout=RUN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"no result in {RUN_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {last_line(done.stderr or done.stdout)}")
    try:
        result: dict[str, Any] = json.loads(last_line(done.stdout, limit=1_000_000))
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"no JSON result on stdout: {last_line(done.stdout)}") from exc
    return result


def cold(cmd: list[str], env: Mapping[str, str], runs: int, work: Path) -> float:
    """Median wall time (s) of ``cmd`` in fresh processes, after one warm-up run."""
    hyperfine = shutil.which("hyperfine")
    if hyperfine is not None:
        out = work / "hyperfine.json"
        args = ["--warmup", "1", "--runs", str(runs), "--style", "none", "--export-json"]
        subprocess.run(
            [hyperfine, *args, str(out), shlex.join(cmd)],
            capture_output=True,
            check=True,
            env=dict(env),
            timeout=RUN_TIMEOUT_S,
        )
        return float(json.loads(out.read_text())["results"][0]["median"])
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=dict(env), timeout=600)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(
    label: str,
    tool: Tool,
    python: Path,
    env: Mapping[str, str],
    opts: argparse.Namespace,
    extra: list[str] | None = None,
    cold_runs: int | None = None,
) -> tuple[Row, dict[str, Any]]:
    """One configuration of a tool: warm figures and (if ``cold_runs``) the cold one."""
    row = Row(label, tool.records)
    args = ["--repeats", str(opts.repeats), *(extra or [])]
    print(f"… {label}", file=sys.stderr, flush=True)
    try:
        result = warm(python, tool, args, env)
        row.shapes = result["shapes"]
        if cold_runs:
            cmd = [str(python), str(SCRIPTS / tool.script), "--cold", *(extra or [])]
            row.cold_s = cold(cmd, env, cold_runs, Path(opts.work))
    except (RuntimeError, subprocess.SubprocessError) as exc:
        row.problem = f"failed: {exc}"
        return row, {}
    return row, result


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def prefect_server(python: Path, env: Mapping[str, str]) -> Iterator[tuple[str, float]]:
    """A ``prefect server start`` on the loopback: (its API URL, seconds until healthy)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    cmd = [str(python), "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"`prefect server start` exited with {proc.returncode}")
            if time.perf_counter() - t0 > 300:
                raise RuntimeError("`prefect server start` not healthy after 300 s")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield url, time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def measure_prefect(python: Path, env: dict[str, str], opts: argparse.Namespace, run: Run) -> None:
    """Prefect on its temporary server (default and quiet logging), then on a running one."""
    cold_runs = opts.prefect_cold_runs
    row, result = measure("Prefect (temporary server)", PREFECT, python, env, opts, [], cold_runs)
    run.rows.append(row)
    run.notes += result.get("notes", [])
    row, _ = measure("Prefect, logging at WARNING", PREFECT, python, env, opts, ["--quiet"])
    run.rows.append(row)
    if opts.no_prefect_server:
        return
    label = "Prefect (`prefect server start` running)"
    try:
        with prefect_server(python, env) as (url, started):
            url_env = {**env, "PREFECT_API_URL": url}
            row, _ = measure(label, PREFECT, python, url_env, opts, [], opts.cold_runs)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        run.rows.append(Row(label, PREFECT.records, problem=f"failed: {exc}"))
        return
    run.rows.append(row)
    run.notes.append(
        f"Prefect: `prefect server start` answered `/api/health` after {started:.1f} s "
        "(not counted in any row)."
    )


def measure_all(opts: argparse.Namespace) -> Run:
    """Every tool, in order: the floor, trivet, then each peer in its own environment."""
    work = Path(opts.work)
    env = base_env(work)
    run = Run()
    here = Path(sys.executable)
    run.versions["Python"] = platform.python_version()
    for tool, extra in ((PLAIN, []), (TRIVET, ["--workspace", str(work / "trivet-ws")])):
        row, result = measure(tool.name, tool, here, env, opts, extra, opts.cold_runs)
        run.rows.append(row)
        run.notes += result.get("notes", [])
        if tool is TRIVET:
            run.versions["trivet"] = str(result.get("version", "not measured"))
    for peer in PEERS:
        if peer.name.lower() not in opts.peers:
            continue
        print(f"… installing {', '.join(peer.packages)}", file=sys.stderr, flush=True)
        python, why = install(peer, work)
        if python is None:
            run.rows.append(Row(peer.name, peer.records, problem=f"not installed: {why}"))
            continue
        run.versions[peer.name] = versions(python, peer.packages)
        if peer is PREFECT:
            measure_prefect(python, env, opts, run)
            continue
        row, result = measure(peer.name, peer, python, env, opts, [], opts.cold_runs)
        run.rows.append(row)
        run.notes += result.get("notes", [])
        if peer is HAMILTON and "fan, Parallelizable/Collect" in row.shapes:
            fan = row.shapes.pop("fan, Parallelizable/Collect")
            run.rows.append(
                Row("Hamilton, fan as Parallelizable/Collect", peer.records, {"fan": fan})
            )
        if peer is KEDRO:
            row, _ = measure("Kedro, logging at WARNING", peer, python, env, opts, ["--quiet"])
            row.records = "nothing"
            run.rows.append(row)
    return run


def num(value: float) -> str:
    """A figure with three significant digits (at least), thousands separated."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.1e}"


def cells(row: Row) -> list[str]:
    """The table cells of a row's figures (— where a shape was not measured).

    The floor's own row shows what its calls cost (µs per call), not an overhead.
    """
    floor_row = row.label == PLAIN.name
    one = row.shapes.get("one")
    fixed = one["wall_s"] - (0.0 if floor_row else one["floor_s"]) if one else None
    out = [num(fixed * 1e3) if fixed is not None else "—"]
    for name in ("chain", "fan"):
        shape = row.shapes.get(name)
        if shape is None:
            out += ["—", "—", "—"]
            continue
        steps, over = shape["steps"], shape["wall_s"] - (0.0 if floor_row else shape["floor_s"])
        beyond = "—"
        if fixed is not None and not floor_row:
            per_step = (over - fixed) / (steps - 1) * 1e6
            beyond = num(per_step) if per_step > 0 else "≤ 0 (within the noise)"
        out += [num(shape["wall_s"] * 1e3), num(over / steps * 1e6), beyond]
    out.append(num(row.cold_s) if row.cold_s is not None else "—")
    return out


def table(run: Run) -> list[str]:
    """The Markdown table of the run."""
    lines = [
        "| tool | records kept | one-step run (ms) | 20-step chain (ms) | µs/step "
        "| beyond the first step (µs/step) | 1 → 100 → 1 fan (ms) | µs/step "
        "| beyond the first step (µs/step) | cold `python pipeline.py`, 20-step chain (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in run.rows:
        if row.problem:
            problem = row.problem.replace("|", "\\|")
            lines.append(f"| {row.label} | {row.records} | {problem} |" + " |" * 7)
        else:
            lines.append(f"| {row.label} | {row.records} | " + " | ".join(cells(row)) + " |")
    return lines


def report(run: Run, opts: argparse.Namespace, load: tuple[float, ...]) -> str:
    """The whole Markdown report."""
    end = os.getloadavg()
    cold_how = "hyperfine" if shutil.which("hyperfine") else "timed subprocesses"
    return "\n".join(
        [
            "# trivet.pipelines beside plain calls, Hamilton, Kedro and Prefect",
            "",
            f"`uv run python bench/pipelines/peers.py --repeats {opts.repeats} --cold-runs "
            f"{opts.cold_runs} --prefect-cold-runs {opts.prefect_cold_runs}` — "
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"warm: median of {opts.repeats} runs after a warm-up; cold: median of "
            f"{opts.cold_runs} fresh processes ({opts.prefect_cold_runs} for Prefect on its "
            f"temporary server) after one warm-up, by {cold_how}. Load average "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the start, "
            f"{end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f} at the end.",
            "",
            "Versions: " + "; ".join(f"{k} {v}" for k, v in run.versions.items()) + ".",
            "",
            *table(run),
            "",
            *[f"- {note}" for note in run.notes],
            "",
        ]
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="warm runs per shape")
    parser.add_argument("--cold-runs", type=int, default=10, help="fresh processes per tool")
    parser.add_argument(
        "--prefect-cold-runs",
        type=int,
        default=3,
        help="fresh processes for Prefect on its temporary server (~15-20 s each)",
    )
    parser.add_argument(
        "--peers",
        default="hamilton,kedro,prefect",
        type=lambda s: {p.strip().lower() for p in s.split(",") if p.strip()},
        help="comma-separated peers to measure (default: all three)",
    )
    parser.add_argument(
        "--no-prefect-server",
        action="store_true",
        help="skip the rows against a running `prefect server start`",
    )
    parser.add_argument(
        "--work", help="work folder: environments, workspace, bytecode (default: a temp one)"
    )
    opts = parser.parse_args()
    opts.work = opts.work or tempfile.mkdtemp(prefix="trivet-peers-")
    return opts


def main() -> None:
    opts = parse_args()
    load = os.getloadavg()
    text = report(measure_all(opts), opts, load)
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(f"wrote {RESULTS} (work folder: {opts.work})", file=sys.stderr)


if __name__ == "__main__":
    main()
