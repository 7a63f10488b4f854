"""Start-up cost: `import trivet` and `trivet --help` in fresh processes.

Run: uv run python bench/startup.py   (after `uv sync --compile-bytecode`, as an installed
package would be; with PYTHONDONTWRITEBYTECODE set and no .pyc files every start-up
compiles the sources and is several times slower).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15
BIN = Path(sys.executable).parent


def measure(cmd: list[str]) -> tuple[float, float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the OS caches
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times)


def main() -> None:
    rows = [
        ("python -c pass (the floor)", [sys.executable, "-c", "pass"]),
        ("python -c 'import trivet'", [sys.executable, "-c", "import trivet"]),
        (
            "python -c 'import trivet; trivet.connect'",
            [sys.executable, "-c", "import trivet; trivet.connect"],
        ),
        ("trivet --help", [str(BIN / "trivet"), "--help"]),
    ]
    lines = ["| command | median (ms) | max (ms) |", "|---|---:|---:|"]
    for label, cmd in rows:
        med, worst = measure(cmd)
        lines.append(f"| `{label}` | {med * 1000:.0f} | {worst * 1000:.0f} |")
    table = "\n".join(lines)
    print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "startup.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
