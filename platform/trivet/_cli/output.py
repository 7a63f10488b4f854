"""Output helpers shared by the CLI commands: data to stdout, messages to stderr."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trivet.errors import ValidationError

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")

# Piped output is not cut to 80 columns: rows of a table stay on one line for grep & co.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 250)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 250)


def plain(value: Any) -> Any:
    """Turn dataclasses, enums, datetimes and sets into JSON-able values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    typer.echo(json.dumps(plain(value), indent=2, sort_keys=True, default=str))


def table(
    rows: Iterable[Sequence[Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    """Print rows as a table on stdout."""
    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col)
    count = 0
    for row in rows:
        t.add_row(*(Text("" if v is None else str(plain(v))) for v in row))
        count += 1
    if count:
        out.print(t)
    else:
        err.print("[dim](none)[/dim]")


def note(message: str, *, style: str | None = None) -> None:
    """Print a message for people on stderr (as plain text: stored names cannot inject
    console markup)."""
    err.print(message, markup=False, highlight=False, style=style)


def tagged(tag: str, tag_style: str, message: str) -> None:
    """Print ``tag`` in a colour, then ``message`` as plain text, on stderr."""
    err.print(Text.assemble((tag, tag_style), " ", message), highlight=False)


__all__ = ["emit_json", "note", "parse_duration", "plain", "table", "tagged", "when"]


def when(value: dt.datetime | None) -> str:
    """Format a timestamp for a table."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """Parse ``30d``, ``12h``, ``90m``, ``1w2d`` into a timedelta."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or _DURATION.sub("", text.strip().lower()).strip():
        raise ValidationError(
            f"{text!r} is not a duration.", hint="use a number and a unit: 30d, 12h, 90m, 1w"
        )
    return dt.timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
