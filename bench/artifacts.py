"""Artifact store throughput on the local disk: put/get of 1 MB and 100 MB.

Run: uv run python bench/artifacts.py

Each put stores new content (one byte changed per run, so nothing is deduplicated),
hashes it, writes it to a temporary file, fsyncs it and renames it into place, then
commits its catalog rows (SQLite). Each get reads the blob back and verifies its
sha256. Gets are served from the OS page cache (the blob was just written), so they
measure trivet's overhead, not the disk. Two floors put the numbers in context: plain
sha256 of bytes in memory, and copying a file with shutil plus fsync. Prints a Markdown
table (median of several runs) and writes it to bench/results/artifacts.md.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trivet
from trivet.platform.artifacts import ArtifactStore

MB = 1_000_000
SIZES = {1 * MB: 15, 100 * MB: 5}  # size -> runs
T = TypeVar("T")


def median_seconds(runs: int, setup: Callable[[int], T], op: Callable[[T], object]) -> float:
    """Median wall time of ``op(setup(i))``; the first (warm-up) run is dropped."""
    times = []
    for i in range(runs + 1):
        arg = setup(i)
        t = time.perf_counter()
        op(arg)
        elapsed = time.perf_counter() - t
        if i:
            times.append(elapsed)
    return statistics.median(times)


def fsync_copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def bench_size(store: ArtifactStore, root: Path, size: int, runs: int) -> list[tuple[str, float]]:
    base = bytearray(os.urandom(size))
    src, out = root / "src.bin", root / "out.bin"

    def fresh(i: int) -> bytes:  # new content each run: nothing is deduplicated
        base[:8] = (i + 1_000_003 * size).to_bytes(8, "little")
        return bytes(base)

    def fresh_file(i: int) -> Path:
        src.write_bytes(fresh(i + 10_000))
        return src

    blobs: list[str] = []
    files: list[str] = []
    return [
        ("sha256 in memory (floor)", median_seconds(runs, fresh, hashlib.sha256)),
        (
            "file copy + fsync (floor)",
            median_seconds(runs, fresh_file, lambda p: fsync_copy(p, out)),
        ),
        (
            "put_bytes",
            median_seconds(runs, fresh, lambda d: blobs.append(store.put_bytes(d).digest)),
        ),
        ("get_bytes", median_seconds(runs, lambda i: blobs[i], store.get_bytes)),
        (
            "put_file",
            median_seconds(runs, fresh_file, lambda p: files.append(store.put_file(p).digest)),
        ),
        ("get_file", median_seconds(runs, lambda i: files[i], lambda d: store.get_file(d, out))),
        ("put_file again (dedupe)", median_seconds(runs, lambda i: src, store.put_file)),
    ]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="trivet-bench-"))
    try:
        ws = trivet.init(root / "ws")
        store = trivet.connect(ws.workspace).artifacts
        lines = [
            f"Local artifact store; {platform.system()} {platform.machine()}, {os.cpu_count()} "
            f"cores, Python {platform.python_version()}, catalog on SQLite; median of "
            + " and ".join(f"{runs} runs at {size // MB} MB" for size, runs in SIZES.items())
            + " (after one warm-up run).",
            "",
            "| operation | size | median (ms) | MB/s |",
            "|---|---:|---:|---:|",
        ]
        for size, runs in SIZES.items():
            for name, secs in bench_size(store, root, size, runs):
                lines.append(
                    f"| {name} | {size // MB} MB | {secs * 1000:.1f} | {size / MB / secs:,.0f} |"
                )
        table = "\n".join(lines)
        print(table)
        out_dir = Path(__file__).parent / "results"
        out_dir.mkdir(exist_ok=True)
        (out_dir / "artifacts.md").write_text(table + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
