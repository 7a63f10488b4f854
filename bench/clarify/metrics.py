"""Bias metrics on 1M rows: trivet.clarify against its targets and its peers.

Run:  uv run python bench/clarify/metrics.py [--rows 1000000] [--no-peers]

Times (wall clock; best of several runs for trivet, one run for the peers):
- every metric but FT (8 pre-training + 12 post-training, CDDL/CDDPL by region) for a
  categorical facet (sex = female) and a threshold facet (age > 40); target <= 0.2 s;
- FT (k-NN flip test, 4 numeric features); target <= 2 s;
- 200 bootstrap resamples of every count-based metric (plus the point estimates);
  target <= 2 s.
Peers run in their own environments when present: fairlearn (the six of these metrics
it has, via MetricFrame) in /tmp/fairlearn-env, smclarify 0.5 in /tmp/smclarify-env
(see bench/clarify/smclarify_golden.py for how to build it). Writes the Markdown table
to bench/results/clarify.md and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trivet.clarify import Facet, Label, Prediction
from trivet.clarify.bias import analyze
from trivet.clarify.data import synthetic_credit
from trivet.clarify.metrics import ALL

HERE = Path(__file__).resolve().parent
PEERS = {
    "fairlearn": Path(os.environ.get("FAIRLEARN_PYTHON", "/tmp/fairlearn-env/bin/python")),
    "smclarify": Path(os.environ.get("SMCLARIFY_PYTHON", "/tmp/smclarify-env/bin/python")),
}
FEATURES = ["age", "income", "debt_ratio", "years_employed"]


def best(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Best wall-clock and CPU seconds over ``runs``."""
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    df = synthetic_credit(args.rows, seed=0, label_bias=0.2, prediction_bias=0.1)
    label = Label("approved", positive=True)
    prediction = Prediction("predicted")
    counted = [m for m in ALL if m != "FT"]
    both: Any = ("pre_training", "post_training")
    rows: list[tuple[str, str, float, float | None, str]] = []

    for name, facet in (
        ("categorical", Facet("sex", values="female")),
        ("threshold", Facet("age", threshold=40)),
    ):

        def every(facet: Facet = facet) -> None:
            analyze(
                df,
                label=label,
                facet=facet,
                prediction=prediction,
                group_variable="region",
                metrics=counted,
                stages=both,
            )

        wall, cpu = best(every, 5)
        rows.append(("trivet", f"20 metrics (all but FT), {name} facet", wall, cpu, "0.2 s"))

    for jobs in (1, 2):

        def flip(jobs: int = jobs) -> None:
            analyze(
                df,
                label=label,
                facet=Facet("sex", values="female"),
                prediction=prediction,
                features=FEATURES,
                metrics=["FT"],
                stages=("post_training",),
                n_jobs=jobs,
            )

        wall, cpu = best(flip, 2)
        rows.append(("trivet", f"FT, {len(FEATURES)} features, n_jobs={jobs}", wall, cpu, "2 s"))

    def boot() -> None:
        analyze(
            df,
            label=label,
            facet=Facet("sex", values="female"),
            prediction=prediction,
            group_variable="region",
            metrics=counted,
            stages=both,
            bootstrap=200,
        )

    wall, cpu = best(boot, 3)
    rows.append(("trivet", "20 metrics + 200 bootstrap resamples", wall, cpu, "2 s"))

    if not args.no_peers:
        rows += peers(df)
    lines = [
        f"Rows: {args.rows:,} (synthetic_credit, seed 0); machine: {os.cpu_count()} CPUs, "
        f"shared; Python {sys.version.split()[0]}.",
        "",
        "| tool | task | wall (s) | CPU (s) | target |",
        "|---|---|---:|---:|---|",
    ]
    for tool, task, seconds, used, target in rows:
        cpu_text = "" if used is None else f"{used:.3f}"
        lines.append(f"| {tool} | {task} | {seconds:.3f} | {cpu_text} | {target} |")
    table = "\n".join(lines)
    print(table)
    out = HERE.parent / "results"
    out.mkdir(exist_ok=True)
    (out / "clarify.md").write_text(table + "\n")


def peers(df: Any) -> list[tuple[str, str, float, float | None, str]]:
    rows: list[tuple[str, str, float, float | None, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(
            path,
            female=(df["sex"] == "female").to_numpy(),
            approved=df["approved"].to_numpy(),
            predicted=df["predicted"].to_numpy(),
            region=df["region"].to_numpy(dtype=str),
            **{c: df[c].to_numpy() for c in FEATURES},
        )
        for peer, python in PEERS.items():
            if not python.exists():
                rows.append((peer, f"not run: {python} is missing", float("nan"), None, ""))
                continue
            result = subprocess.run(
                [str(python), str(HERE / "peers.py"), peer, str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                error = result.stderr.strip().splitlines()[-1:] or ["failed"]
                rows.append((peer, f"failed: {error[0][:80]}", float("nan"), None, ""))
                continue
            for task, seconds in json.loads(result.stdout.strip().splitlines()[-1]).items():
                rows.append((peer, task, float(seconds), None, ""))
    return rows


if __name__ == "__main__":
    main()
