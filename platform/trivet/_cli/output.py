"""Output helpers of the root CLI: the shared console functions, plus CLI-only bits."""

from __future__ import annotations

import datetime as dt
import re

import typer

from trivet.errors import ValidationError
from trivet.platform.console import emit_json, note, plain, table, tagged

__all__ = ["JSON_OPTION", "emit_json", "note", "parse_duration", "plain", "table", "tagged", "when"]

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")


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
