"""Progress of a long ingest: its steps and rows, told to a callback or drawn by rich.

An ingest reports each step it runs — ``read`` (a file only), ``validate``,
``batch id``, ``write offline``, ``write online``, ``record`` — as calls
``progress(step, done, total)``: ``done == 0`` when the step starts, ``done == total``
when it ends, and in between where the step counts its rows (``write online``, a chunk
at a time). ``total`` is the step's rows (0 for reading a file: not known yet).

:class:`RichProgress` draws them as bars on a terminal. :func:`progress_for` turns
``FeatureStore.ingest``'s ``progress=`` argument into a callback: ``False`` (the
default) reports nothing; ``"auto"`` draws on stderr only when it is a terminal and
the batch is large (:data:`AUTO_ROWS` rows, or a file of :data:`AUTO_BYTES`); ``True``
draws on stderr when it is a terminal, whatever the size; a callable is called as above.
Nothing is ever drawn on a stream that is not a terminal (a pipe, a file, a test).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, Task, TaskID

__all__ = [
    "AUTO_BYTES",
    "AUTO_ROWS",
    "ProgressArg",
    "ProgressFn",
    "RichProgress",
    "StepTimer",
    "progress_for",
    "quiet",
]

ProgressFn = Callable[[str, int, int], None]
"""``(step, rows done, rows in the step)``; see the module docstring."""

ProgressArg = bool | Literal["auto"] | ProgressFn
"""What ``FeatureStore.ingest(progress=...)`` takes."""

AUTO_ROWS = 100_000
"""``progress="auto"`` draws for a batch of at least this many rows..."""
AUTO_BYTES = 16 * 2**20
"""...or a file of at least this many bytes."""


def quiet(step: str, done: int, total: int) -> None:
    """Report nothing (the default callback)."""


class RichProgress:
    """Draws an ingest's steps as rich progress bars, one line per step.

    Call it as a :data:`ProgressFn`; :meth:`close` stops the display (the finished
    lines stay, with each step's time).

    Args:
        console: where to draw (default: a console on stderr). A console that is not
            a terminal shows nothing.
    """

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console

        self.console = console if console is not None else Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._step: str | None = None

    def _start(self) -> Progress:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description:<14}"),
            BarColumn(),
            _rows_column(),
            _seconds_column(),
            console=self.console,
        )
        progress.start()
        self._progress = progress
        return progress

    def __call__(self, step: str, done: int, total: int) -> None:
        if not self.console.is_terminal:
            return
        progress = self._progress or self._start()
        if step != self._step:
            self._finish_task()
            self._task = progress.add_task(step, total=total or None)
            self._step = step
        assert self._task is not None
        progress.update(self._task, total=total or None, completed=done)
        if total and done >= total:
            self._finish_task()

    def _finish_task(self) -> None:
        """Stop the current step's clock and fill its bar."""
        if self._progress is not None and self._task is not None:
            task = next(t for t in self._progress.tasks if t.id == self._task)
            self._progress.update(self._task, total=task.total or 1, completed=task.total or 1)
            self._progress.stop_task(self._task)
        self._task = None

    def close(self) -> None:
        """Stop drawing (the lines drawn stay on the terminal)."""
        self._finish_task()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _rows_column() -> ProgressColumn:
    """A column "1,000/4,000 rows" (or "1,000 rows" while the total is not known)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rows(ProgressColumn):
        def render(self, task: Task) -> Text:
            done = f"{int(task.completed):,}"
            text = done if task.total is None else f"{done}/{int(task.total):,}"
            return Text(f"{text} rows", style="progress.download")

    return Rows()


def _seconds_column() -> ProgressColumn:
    """A column with the step's time so far, in seconds ("1.4 s")."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Seconds(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.elapsed or 0.0:.1f} s", style="progress.elapsed")

    return Seconds()


def progress_for(progress: ProgressArg, data: object) -> tuple[ProgressFn, Callable[[], None]]:
    """Return the callback for ``progress=`` on ``data``, and what closes it.

    Raises:
        TypeError: ``progress`` is none of False, True, "auto", or a callable.
    """
    if progress is False:
        return quiet, _nothing
    if progress is True or progress == "auto":
        if not sys.stderr.isatty() or (progress == "auto" and not _large(data)):
            return quiet, _nothing
        bars = RichProgress()
        return bars, bars.close
    if callable(progress):
        return progress, _nothing
    raise TypeError(f"progress must be False, True, 'auto' or a callable, not {progress!r}")


def _nothing() -> None:
    """Close nothing."""


def _large(data: object) -> bool:
    """Whether ``data`` is big enough for ``progress="auto"`` to draw."""
    if isinstance(data, str | os.PathLike):
        try:
            return Path(data).stat().st_size >= AUTO_BYTES
        except OSError:
            return False
    rows = getattr(data, "num_rows", None)
    if rows is None:
        rows = len(data) if hasattr(data, "__len__") else 0
    return int(rows) >= AUTO_ROWS


class StepTimer:
    """A :data:`ProgressFn` that records how long each step took (for benchmarks).

    Args:
        then: another callback to pass every call on to.
    """

    def __init__(self, then: ProgressFn = quiet) -> None:
        self.seconds: dict[str, float] = {}
        self._then = then
        self._started: dict[str, float] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == 0 and step not in self._started:
            self._started[step] = now
        if done >= total and step in self._started:
            self.seconds[step] = now - self._started[step]
        self._then(step, done, total)
