"""trivet's feature store beside Feast, on the same data, in one run (issue #3).

Data: ``pit.py``'s generator, written once (100 000 ids; 1 000 000 entity rows; feature
rows with an event time uniform over 2024, 3 float features, written in daily batches,
1 % corrected by a later batch with the same event time; 10 parquet files per size).

Point-in-time training sets, 1M entity rows x each ``--sizes`` feature rows, TTL 30 days:

- trivet: ``pit.py``'s own measurement — ``point_in_time_join`` (the ASOF default) on the
  parquet files, in a fresh process (wall time of the first call, the process's peak
  RSS; ``pit.py`` also times a second call in the same process, reported beside).
- Feast (``--feast``, default ``feast[duckdb]==0.67.0``, in an isolated environment made by
  ``uv run --isolated --no-project``): a repo with the DuckDB offline store, the SQLite
  online store and ``entity_key_serialization_version: 3``; a FileSource over the same
  parquet files (event time ``ts``, created timestamp ``__write_time``, so equal event
  times are ordered as trivet orders them), a feature view with the same TTL; then
  ``get_historical_features(entity_df, ...).to_df()`` in a fresh process (wall time of
  that call, peak RSS). See ``feast/feast_bench.py``.
- Agreement: the two results are compared row by row (Feast's rows are found again by a
  ``row`` column added to its entity frame): rows Feast drops or repeats, rows where only
  one side found a match, rows where both did but the values differ — and of those, how
  many are explained by an exact tie in the input (two rows with the same id, event time
  and write time, which the generator can produce and trivet's ingest would refuse).
  At 1M feature rows, Feast is also run without the created timestamp (its default).

1M-feature-row cases run ``--repeat`` times (median wall, max RSS), 10M ones once.

Online reads, in-process, on the 1M-feature-row data: trivet gets each id's latest row
(the same rows ``materialize`` picks), ingested into a group (TTL 3650 days, so every
record is live and the TTL check still runs) on the default SQLite online store and on
Redis (``--redis``, a key prefix unique to the run, deleted afterwards); Feast
materializes the FileSource into its SQLite online store (same TTL). Both then answer
the same seeded request sequences: ``--calls`` reads of 1 record
(``FeatureStore.get_record`` / ``get_online_features(...).to_dict()``) and ``--batches``
reads of 100 records in one call (``batch_get_record`` / the same with 100 entity rows),
after a warm-up; p50/p99 of the per-call times. The answers for 1 000 ids are compared.

A peer that fails to install or run shows as ``failed: <reason>``; the run goes on.

Run: ``uv run python bench/featurestore/feast_compare.py [--sizes 1000000,10000000]
[--repeat 3] [--calls 10000] [--batches 1000] [--redis URL|none] [--feast SPEC]``.
Prints Markdown and writes it to ``bench/results/feast.md`` (every figure, including
each call's latency, to ``bench/results/feast.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import online as online_bench  # bench/featurestore/online.py: the workspace, the timing
import pit  # bench/featurestore/pit.py: the data, and trivet's PIT measurement

RESULTS = Path(__file__).resolve().parents[1] / "results" / "feast.md"
FEAST_SCRIPT = Path(__file__).resolve().parent / "feast" / "feast_bench.py"
FEAST_SPEC = "feast[duckdb]==0.67.0"
FEATURES = ["f1", "f2", "f3"]
ONLINE_TTL_DAYS = 3650
CHECK_IDS = 1000
PIT_TARGETS = {1_000_000: "≤ 0.5 s", 10_000_000: "≤ 5 s, ≤ 2 GiB"}
TIMEOUT_S = 3600


class PeerFailed(Exception):
    """A peer's step failed; the message is the reason shown in the table."""


# -- running the two sides ---------------------------------------------------------------
def run_feast(feast: str, command: str, spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Run one ``feast_bench.py`` command in Feast's isolated environment; its JSON."""
    spec_path = tmp / f"feast-{command}-{time.monotonic_ns()}.json"
    spec_path.write_text(json.dumps(spec))
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    cmd = ["uv", "run", "--quiet", "--isolated", "--no-project", "--python", python]
    cmd += ["--with", feast, "python", str(FEAST_SCRIPT), command, str(spec_path)]
    return _json_of(cmd, f"Feast {command}")


def run_trivet(args: list[str], what: str) -> dict[str, Any]:
    """Run this interpreter on ``args`` (a fresh process); its JSON."""
    return _json_of([sys.executable, *args], what)


def _json_of(cmd: list[str], what: str) -> dict[str, Any]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError as exc:
        raise PeerFailed(f"{cmd[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise PeerFailed(f"{what} timed out after {TIMEOUT_S} s") from exc
    if out.returncode != 0:
        lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {out.returncode}"
        raise PeerFailed(f"{what}: {reason[:200]}")
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise PeerFailed(f"{what}: no output")
    return dict(json.loads(lines[-1]))


def attempt(
    failures: list[str], step: Callable[..., dict[str, Any]], *args: Any
) -> dict[str, Any] | str:
    """Return ``step(*args)``; on failure ``failed: <reason>`` (noted in ``failures``)."""
    try:
        return step(*args)
    except PeerFailed as exc:
        failures.append(str(exc))
        print(f"failed: {exc}", flush=True)
        return f"failed: {exc}"


# -- point in time -----------------------------------------------------------------------
def trivet_pit(entity: str, files: list[str], runs: int, out: Path) -> dict[str, Any]:
    """``pit.py``'s measurement (ASOF, TTL 30 days), ``runs`` times; the first writes ``out``."""
    spec = {"entity": entity, "files": files, "strategy": "asof", "cutoff": False}
    spec["ttl_days"] = pit.TTL_DAYS
    results = []
    for i in range(runs):
        run_spec = {**spec, "out": str(out)} if i == 0 else spec
        script = str(Path(pit.__file__).resolve())
        results.append(run_trivet([script, "--child", json.dumps(run_spec)], "trivet PIT"))
    return summarize_pit(results)


def feast_pit(feast: str, repo: Path, entity: str, runs: int, out: Path, tmp: Path) -> Any:
    """Feast's ``get_historical_features`` ``runs`` times, each in a fresh process."""
    results = [
        run_feast(feast, "pit", {"repo": str(repo), "entity": entity, "out": str(out)}, tmp)
        for _ in range(runs)
    ]
    return summarize_pit(results)


def summarize_pit(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median wall time, max peak RSS, and every run's wall time."""
    walls = [float(r["wall"]) for r in results]
    out = {
        "wall": statistics.median(walls),
        "walls": walls,
        "rss_mib": max(float(r["rss_mib"]) for r in results),
    }
    if all("warm" in r for r in results):  # pit.py: a second call in the same process
        out["warm"] = statistics.median(float(r["warm"]) for r in results)
    return out


def exact_ties(files: str) -> dict[tuple[int, float], int]:
    """(id, f1) of every feature row sharing its id, event time and write time with another
    row, mapped to the tie's number."""
    import duckdb

    con = duckdb.connect()
    rows = con.execute(
        f"""
        SELECT user_id, f1, dense_rank() OVER (ORDER BY user_id, ts, __write_time) AS tie
        FROM read_parquet('{files}')
        QUALIFY count(*) OVER (PARTITION BY user_id, ts, __write_time) > 1
        """
    ).fetchall()
    con.close()
    return {(int(u), float(f)): int(t) for u, f, t in rows}


def agreement(trivet_out: Path, feast_out: Path, entity: str, files: str) -> dict[str, int]:
    """Compare two training sets row by row (see the module docstring)."""
    mine = pq.read_table(trivet_out)
    theirs = pq.read_table(feast_out)
    rows = theirs.column("row").to_numpy()
    unique = np.unique(rows)
    n = mine.num_rows
    out = {"rows": n, "dropped": n - len(unique), "repeated": len(rows) - len(unique)}
    _, first = np.unique(rows, return_index=True)  # one Feast row per entity row
    rows = rows[first]

    def matrix(table: pa.Table, take: np.ndarray | None) -> np.ndarray:
        cols = [table.column(c).to_numpy(zero_copy_only=False).astype(float) for c in FEATURES]
        values = np.column_stack(cols)
        return values if take is None else values[take]

    t = matrix(mine, rows)
    f = matrix(theirs, first)
    t_null = np.isnan(t).all(axis=1)
    f_null = np.isnan(f).all(axis=1)
    both = ~t_null & ~f_null
    differ = np.flatnonzero(both & (t != f).any(axis=1))
    out["only_trivet_matched"] = int((~t_null & f_null).sum())
    out["only_feast_matched"] = int((t_null & ~f_null).sum())
    out["both_matched"] = int(both.sum())
    out["values_differ"] = len(differ)
    ties = exact_ties(files) if len(differ) else {}
    ids = pq.read_table(entity, columns=["user_id"]).column("user_id").to_numpy()[rows]
    explained = 0
    for i in differ:
        a = ties.get((int(ids[i]), float(t[i, 0])))
        b = ties.get((int(ids[i]), float(f[i, 0])))
        explained += a is not None and a == b
    out["differ_exact_tie"] = explained
    out["exact_ties_in_input"] = count_exact_ties(files)
    return out


def count_exact_ties(files: str) -> int:
    """How many (id, event time, write time) keys the feature rows hold more than once."""
    import duckdb

    con = duckdb.connect()
    row = con.execute(
        f"""
        SELECT count(*) FROM (
            SELECT 1 FROM read_parquet('{files}')
            GROUP BY user_id, ts, __write_time HAVING count(*) > 1)
        """
    ).fetchone()
    con.close()
    return int(row[0]) if row else 0


# -- online ------------------------------------------------------------------------------
def latest_rows(files: str, path: Path) -> pa.Table:
    """Each id's latest row (greatest event time, then write time); written to ``path``."""
    import duckdb

    con = duckdb.connect()
    table = con.sql(
        f"""
        SELECT user_id, ts, f1, f2, f3 FROM read_parquet('{files}')
        QUALIFY row_number() OVER (
            PARTITION BY user_id ORDER BY ts DESC, __write_time DESC) = 1
        ORDER BY user_id
        """
    ).to_arrow_table()
    con.close()
    pq.write_table(table, path)
    return table


def write_requests(ids: np.ndarray, calls: int, batches: int, path: Path) -> None:
    """The seeded request sequences both sides answer: single ids, 100-id lists, checks."""
    rng = np.random.default_rng(5)
    one = [int(i) for i in rng.choice(ids, calls)]
    batch = [[int(i) for i in rng.choice(ids, 100, replace=False)] for _ in range(batches)]
    check = [int(i) for i in rng.choice(ids, CHECK_IDS, replace=False)]
    path.write_text(json.dumps({"one": one, "batch": batch, "check": check}))


def online_child(spec: dict[str, Any]) -> None:
    """In a fresh process: a workspace, the group, the latest rows, then the timed reads."""
    from trivet.featurestore import Dtype, Feature, FeatureGroupSpec

    store = online_bench.open_workspace(Path(spec["workspace"]), spec["online_url"])
    try:
        store.create_group(
            FeatureGroupSpec(
                name="activity",
                record_id="user_id",
                record_id_dtype=Dtype.INT,
                event_time="ts",
                ttl=dt.timedelta(days=ONLINE_TTL_DAYS),
                features=[Feature(name=f, dtype=Dtype.FLOAT) for f in FEATURES],
            )
        )
        t0 = time.perf_counter()
        store.ingest("activity", pq.read_table(spec["table"]))
        ingest_s = time.perf_counter() - t0
        requests = json.loads(Path(spec["requests"]).read_text())
        warm = spec["warmup"]
        one = online_bench.time_calls(
            lambda i: store.get_record("activity", i), requests["one"], warmup=warm
        )
        many = online_bench.time_calls(
            lambda ids: store.batch_get_record({"activity": ids}),
            requests["batch"],
            warmup=warm // 10,
        )
        check = [store.get_record("activity", i) for i in requests["check"]]
    finally:
        if spec["online_url"]:
            with contextlib.suppress(Exception):  # best effort: the prefix is the run's own
                store.online.drop(store.describe("activity").id)
        store.close()
    print(
        json.dumps(
            {
                "ingest_s": ingest_s,
                "one_us": [ns / 1000 for ns in one],
                "batch_us": [ns / 1000 for ns in many],
                "check": [None if r is None else [r[f] for f in FEATURES] for r in check],
            }
        )
    )


def trivet_online(
    tmp: Path, label: str, online_url: str | None, table: Path, requests: Path, warmup: int
) -> dict[str, Any]:
    """Run :func:`online_child` in a fresh process for one online store."""
    spec = {
        "workspace": str(tmp / f"ws-{label}"),
        "online_url": online_url,
        "table": str(table),
        "requests": str(requests),
        "warmup": warmup,
    }
    return run_trivet([__file__, "--child-online", json.dumps(spec)], f"trivet online ({label})")


def online_agreement(requests: Path, trivet: dict[str, Any], feast: dict[str, Any]) -> int:
    """How many of the checked ids Feast answers with other values than trivet."""
    ids = json.loads(requests.read_text())["check"]
    assert len(ids) == len(trivet["check"]) == len(feast["check"]["user_id"])
    theirs = feast["check"]
    differ = 0
    for i, mine in enumerate(trivet["check"]):
        other = [theirs[f][i] for f in FEATURES]
        if mine is None or any(v is None for v in other):
            differ += not (mine is None and all(v is None for v in other))
        else:
            differ += any(a != b for a, b in zip(mine, other, strict=True))
    return differ


# -- the report --------------------------------------------------------------------------
def cell_s(result: dict[str, Any] | str) -> str:
    """``wall s / RSS MiB`` of a PIT result, or its failure."""
    if isinstance(result, str):
        return result
    return f"{result['wall']:.2f} s / {result['rss_mib']:,.0f} MiB"


def cell_agree(result: dict[str, int] | str) -> str:
    if isinstance(result, str):
        return result
    parts = [f"{result['dropped']:,} dropped", f"{result['repeated']:,} repeated"]
    parts.append(f"{result['only_trivet_matched']:,} matched by trivet only")
    parts.append(f"{result['only_feast_matched']:,} by Feast only")
    parts.append(
        f"{result['values_differ']:,} with other values "
        f"({result['differ_exact_tie']:,} of them on an exact tie; the input holds "
        f"{result['exact_ties_in_input']:,} exact ties)"
    )
    return ", ".join(parts)


def quantiles(values: list[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return float(p50), float(p99)


def online_cells(result: dict[str, Any] | str, key: str) -> str:
    if isinstance(result, str):
        return result
    p50, p99 = quantiles(result[key])
    if key == "one_us":
        return f"{p50:,.1f} µs / {p99:,.1f} µs"
    return f"{p50 / 1000:,.3f} ms / {p99 / 1000:,.3f} ms"


def ratio(mine: dict[str, Any] | str, theirs: dict[str, Any] | str, key: str) -> str:
    if isinstance(mine, str) or isinstance(theirs, str):
        return "–"
    if key == "wall":
        return f"{theirs['wall'] / mine['wall']:.1f}×"
    return f"{quantiles(theirs[key])[0] / quantiles(mine[key])[0]:.1f}×"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# -- main --------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="feature rows, e.g. 1000000")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the 1M-row PIT cases")
    parser.add_argument("--calls", type=int, default=10_000, help="1-record online reads")
    parser.add_argument("--batches", type=int, default=1_000, help="100-record online reads")
    parser.add_argument("--warmup", type=int, default=1_000, help="untimed 1-record reads")
    parser.add_argument("--redis", default=online_bench.REDIS_URL, help="a Redis URL or 'none'")
    parser.add_argument("--feast", default=FEAST_SPEC, help="the Feast requirement to install")
    parser.add_argument("--child-online", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_online:
        online_child(json.loads(args.child_online))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="trivet-bench-feast-") as name:
        tmp = Path(name)
        report = run_all(args, sizes, tmp)
    minutes = (time.perf_counter() - started) / 60
    text = render(args, report, load_start, minutes)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    RESULTS.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    print()
    print(text)


def run_all(args: argparse.Namespace, sizes: list[int], tmp: Path) -> dict[str, Any]:
    """Every measurement of the run; failures of a side are recorded, not raised."""
    failures: list[str] = []
    report: dict[str, Any] = {"pit": [], "failures": failures}
    entity = pit.write_entity(tmp, seed=1)
    globs: dict[int, str] = {}
    for size in sizes:
        directory = tmp / f"features-{size}"
        directory.mkdir()
        t0 = time.perf_counter()
        files = pit.write_features(directory, size, seed=2)
        globs[size] = str(directory / "*.parquet")
        print(f"wrote {size:,} feature rows in {time.perf_counter() - t0:.1f} s", flush=True)
        runs = args.repeat if size <= 1_000_000 else 1
        mine_out, theirs_out = tmp / f"trivet-{size}.parquet", tmp / f"feast-{size}.parquet"
        mine = attempt(failures, trivet_pit, entity, files, runs, mine_out)
        print(f"trivet 1M x {size:,}: {cell_s(mine)}", flush=True)
        variants = [("__write_time", "Feast")]
        if size == 1_000_000:
            variants.append(("", "Feast, no created timestamp"))
        for created, label in variants:
            repo = tmp / f"repo-{size}-{created or 'none'}"
            setup: dict[str, Any] = {"repo": str(repo), "source": globs[size]}
            setup |= {"ttl_days": pit.TTL_DAYS, "created": created}
            versions = attempt(failures, run_feast, args.feast, "setup", setup, tmp)
            if isinstance(versions, dict):
                report["feast_versions"] = versions
                n = runs if created else 1
                theirs = attempt(failures, feast_pit, args.feast, repo, entity, n, theirs_out, tmp)
            else:
                theirs = versions
            agree: dict[str, int] | str = "–"
            if isinstance(mine, dict) and isinstance(theirs, dict):
                agree = agreement(mine_out, theirs_out, entity, globs[size])
            print(f"{label} 1M x {size:,}: {cell_s(theirs)}; {cell_agree(agree)}", flush=True)
            report["pit"].append(
                {"size": size, "peer": label, "trivet": mine, "feast": theirs, "agree": agree}
            )
    report["online"] = run_online(args, globs[min(sizes)], tmp, failures)
    report["load_end"] = load_average()
    return report


def run_online(
    args: argparse.Namespace, files: str, tmp: Path, failures: list[str]
) -> dict[str, Any]:
    """The online reads on the smallest size's data: trivet (SQLite, Redis), then Feast."""
    table = latest_rows(files, tmp / "latest.parquet")
    requests = tmp / "requests.json"
    write_requests(table.column("user_id").to_numpy(), args.calls, args.batches, requests)
    stores: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.redis != "none":
        url = online_bench.redis_url(args.redis)
        stores.append(("Redis", url) if url else ("Redis", "none"))
    out: dict[str, Any] = {"records": table.num_rows, "rows": {}}
    for label, url in stores:
        if url == "none":
            out["rows"][f"trivet, {label}"] = f"failed: no Redis server answers at {args.redis}"
            continue
        out["rows"][f"trivet, {label}"] = attempt(
            failures, trivet_online, tmp, label, url, tmp / "latest.parquet", requests, args.warmup
        )
        print(f"trivet online ({label}) done", flush=True)
    repo = tmp / "repo-online"
    setup = {"repo": str(repo), "source": files, "ttl_days": ONLINE_TTL_DAYS}
    setup["created"] = "__write_time"
    feast = attempt(failures, run_feast, args.feast, "setup", setup, tmp)
    if isinstance(feast, dict):
        spec = {
            "repo": str(repo),
            "start": "2023-12-31T00:00:00+00:00",
            "end": "2025-01-02T00:00:00+00:00",
            "requests": str(requests),
            "warmup": args.warmup,
        }
        feast = attempt(failures, run_feast, args.feast, "online", spec, tmp)
    out["rows"]["Feast, SQLite"] = feast
    mine = out["rows"]["trivet, SQLite"]
    if isinstance(mine, dict) and isinstance(feast, dict):
        out["check_differ"] = online_agreement(requests, mine, feast)
    return out


def render(
    args: argparse.Namespace, report: dict[str, Any], load_start: str, minutes: float
) -> str:
    """The Markdown report."""
    import duckdb

    versions = report.get("feast_versions") or {}
    feast_env = ", ".join(f"{k} {v}" for k, v in versions.items()) or "not installed"
    lines = [
        "## trivet beside Feast, same data, same run",
        "",
        f"Command: `uv run python bench/featurestore/feast_compare.py {' '.join(sys.argv[1:])}`"
        f" ({minutes:.1f} min). trivet: Python {platform.python_version()}, DuckDB "
        f"{duckdb.__version__}, pyarrow {pa.__version__}. Feast (`{args.feast}`, isolated "
        f"environment): {feast_env}. Load average (1, 5, 15 min) at the start: {load_start}; "
        f"at the end: {report['load_end']}.",
        "",
        "### Point-in-time training set (1M entity rows, TTL 30 days; wall / peak RSS)",
        "",
        f"Each run in a fresh process; 1M feature rows: median wall time of {args.repeat} "
        "runs, highest peak RSS; 10M: one run.",
        "",
        "| entity × feature rows | trivet (ASOF) | Feast | Feast ÷ trivet (wall) "
        "| target (trivet) | Feast's rows against trivet's |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in report["pit"]:
        case = f"1M × {row['size'] / 1e6:g}M"
        if row["peer"] != "Feast":
            case += f" ({row['peer'].removeprefix('Feast, ')})"
        lines.append(
            f"| {case} | {cell_s(row['trivet'])} | {cell_s(row['feast'])} "
            f"| {ratio(row['trivet'], row['feast'], 'wall')} "
            f"| {PIT_TARGETS.get(row['size'], '')} | {cell_agree(row['agree'])} |"
        )
    warm = {
        row["size"]: row["trivet"]["warm"]
        for row in report["pit"]
        if isinstance(row["trivet"], dict) and "warm" in row["trivet"]
    }
    if warm:
        lines += [
            "",
            "trivet's figure is its first call in the process (as Feast's is); a second, "
            "identical call in the same process: "
            + ", ".join(f"{w:.2f} s at 1M × {size / 1e6:g}M" for size, w in warm.items())
            + ".",
        ]
    online = report["online"]
    lines += [
        "",
        f"### Online reads, in-process ({online['records']:,} records, 3 floats; p50 / p99)",
        "",
        "| store | 1 record | 100 records in one call | load (s) |",
        "|---|---:|---:|---:|",
        "| *target (trivet)* | *p50 ≤ 20 µs, p99 ≤ 100 µs* | *p50 ≤ 0.5 ms* | |",
    ]
    for label, result in online["rows"].items():
        load = "–"
        if isinstance(result, dict):
            load = f"{result.get('ingest_s', result.get('materialize_s', 0.0)):.1f}"
        lines.append(
            f"| {label} | {online_cells(result, 'one_us')} "
            f"| {online_cells(result, 'batch_us')} | {load} |"
        )
    if "check_differ" in online:
        lines += [
            "",
            f"Answers compared for {CHECK_IDS:,} ids: {online['check_differ']} differ "
            "between trivet (SQLite) and Feast. *Load*: trivet's ingest of the latest rows "
            "(online and offline); Feast's `materialize` of the 1M rows.",
        ]
    if report["failures"]:
        lines += ["", "Failures: " + "; ".join(dict.fromkeys(report["failures"]))]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
