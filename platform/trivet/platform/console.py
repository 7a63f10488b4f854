"""Terminal output shared by every CLI of trivet: data to stdout, messages to stderr.

Rich only, no CLI framework, so each part's ``cli.py`` can use it without importing
the root CLI (which sits above the parts). Stored strings are printed as plain text,
never as console markup, so a name like ``[/]`` cannot break or forge output. Piped
output is not cut to 80 columns, so table rows stay on one line for grep & co.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["emit_json", "note", "plain", "table", "tagged"]

_consoles: dict[bool, Console] = {}


def _console(*, stderr: bool) -> Console:
    console = _consoles.get(stderr)
    if console is None:
        from rich.console import Console

        stream = sys.stderr if stderr else sys.stdout
        console = Console(stderr=stderr, soft_wrap=True, width=None if stream.isatty() else 250)
        _consoles[stderr] = console
    return console


def plain(value: Any) -> Any:
    """Turn dataclasses, enums, datetimes, timedeltas and sets into JSON-able values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    sys.stdout.write(json.dumps(plain(value), indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def table(
    rows: Iterable[Sequence[Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    """Print rows as a table on stdout (``(none)`` on stderr when there are none)."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col)
    count = 0
    for row in rows:
        t.add_row(*(Text("" if v is None else str(plain(v))) for v in row))
        count += 1
    if count:
        _console(stderr=False).print(t)
    else:
        note("(none)", style="dim")


def note(message: str, *, style: str | None = None) -> None:
    """Print a message for people on stderr, as plain text."""
    _console(stderr=True).print(message, markup=False, highlight=False, style=style)


def tagged(tag: str, tag_style: str, message: str) -> None:
    """Print ``tag`` in a colour, then ``message`` as plain text, on stderr."""
    from rich.text import Text

    _console(stderr=True).print(Text.assemble((tag, tag_style), " ", message), highlight=False)
