"""The feature store's errors: subclasses of the :mod:`trivet.errors` tree."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trivet.errors import NotFound, ValidationError, did_you_mean

__all__ = ["FeatureGroupNotFound", "IngestValidationError", "RowProblem", "VersionVacuumed"]

SHOWN_PROBLEMS = 20


class FeatureGroupNotFound(NotFound):
    """The named feature group does not exist in the project."""

    def __init__(self, name: str, *, known: Iterable[str]) -> None:
        super().__init__(
            f"Feature group {name!r} does not exist.",
            hint=did_you_mean(name, known) or "list them with `trivet featurestore list`",
        )
        self.name = name


@dataclass(frozen=True, kw_only=True)
class RowProblem:
    """Why one row (or, with ``row=None``, a whole column) of a batch was refused.

    ``row`` counts from 0 in the order the data was given.
    """

    row: int | None
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = [] if self.row is None else [f"row {self.row}"]
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where) or 'batch'}: {self.reason}"


class IngestValidationError(ValidationError):
    """A batch failed validation; nothing of it was written.

    ``problems`` lists every problem found (the message shows the first 20).
    """

    def __init__(self, group: str, problems: Sequence[RowProblem]) -> None:
        rows = {p.row for p in problems if p.row is not None}
        shown = "; ".join(str(p) for p in problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        summary = (
            f"The batch for feature group {group!r} was refused, nothing was written: "
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
            + (f" in {len(rows)} row{'s' if len(rows) != 1 else ''}" if rows else "")
            + f": {shown}"
            + (f"; and {more} more (see .problems)" if more > 0 else "")
            + "."
        )
        super().__init__(summary, hint="fix these rows or columns and ingest the batch again")
        self.group = group
        self.problems = list(problems)


class VersionVacuumed(NotFound):
    """A time-travel read named a version of an offline table whose files were vacuumed.

    Vacuum (``trivet featurestore maintain``, or a hard delete) removes the files that
    no version within its retention needs; older versions then cannot be read.
    """

    def __init__(self, group: str, *, version: int, missing: int, files: int, current: int) -> None:
        super().__init__(
            f"Version {version} of the offline table of feature group {group!r} can no "
            f"longer be read: {missing} of its {files} files were removed by a vacuum "
            "(trivet featurestore maintain, or a hard delete).",
            hint="time travel reaches back only as far as the vacuum retention; read a "
            f"later version (the current one is {current}) or a later as_of",
        )
        self.group = group
        self.version = version
