"""Bias configuration, explicit: which column is the label, which rows form a facet group.

Nothing is guessed from dtypes. A label is positive by a set of values or by a threshold
with an explicit comparison; a facet names its sensitive values, a threshold, or nothing
(every value against the rest); an :class:`Intersection` crosses facets. Every class is a
frozen dataclass whose first field is positional and the rest keyword-only::

    Label("approved", positive=True)
    Label("score", threshold=0.5, op=">=")
    Facet("sex", values="female")
    Facet("age", threshold=40)                  # d = age > 40, a = the rest
    Intersection(Facet("sex"), Facet("age", threshold=40))
    Prediction("predicted")                     # same positive rule as the label
    Prediction("probability", threshold=0.5)

This module imports the standard library only.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

from trivet.errors import ValidationError

__all__ = [
    "Bootstrap",
    "Comparison",
    "Facet",
    "Intersection",
    "Label",
    "MissingPolicy",
    "Mode",
    "Prediction",
    "Stage",
    "metric_key",
]

_METRIC_ALIASES = {"DCACC": "DCA"}  # the Clarify docs' name for DCA


def metric_key(name: str) -> str:
    """Return a metric's canonical short name: upper case, ``DCAcc`` = ``DCA``.

    >>> metric_key("dcacc"), metric_key("di")
    ('DCA', 'DI')
    """
    key = name.upper()
    return _METRIC_ALIASES.get(key, key)


Mode = Literal["default", "clarify_compatible"]
"""``default`` fixes smclarify's conventions; ``clarify_compatible`` reproduces them."""

MissingPolicy = Literal["error", "drop", "group"]
"""What to do with missing values in the label, prediction, facet and group columns.

``error`` raises; ``drop`` drops the rows and counts them; ``group`` makes a missing facet
or group-variable value a group of its own (rows with a missing label or prediction are
still dropped and counted, since they have no outcome to compare).
"""

Stage = Literal["pre_training", "post_training"]
Comparison = Literal[">", ">="]


def _as_values(value: Any) -> tuple[Hashable, ...] | None:
    """Normalise a value or a collection of values to a tuple (None stays None)."""
    if value is None:
        return None
    if isinstance(value, (tuple, list, set, frozenset)):
        items = tuple(value)
        if isinstance(value, (set, frozenset)):
            items = tuple(sorted(items, key=repr))
        return items
    return (value,)


def _check_rule(
    what: str, positive: tuple[Hashable, ...] | None, threshold: float | None, op: str
) -> None:
    if op not in (">", ">="):
        raise ValidationError(f"{what}: op must be '>' or '>=', not {op!r}.")
    if positive is not None and threshold is not None:
        raise ValidationError(
            f"{what}: give positive values or a threshold, not both.",
            hint="positive=... for categorical outcomes, threshold=... for numeric ones",
        )
    if positive is not None and len(positive) == 0:
        raise ValidationError(f"{what}: the set of positive values is empty.")


@dataclass(frozen=True)
class Label:
    """The observed outcome and the rule that makes it positive (favourable).

    Args:
        column: the label column.
        positive: the value, or the values, that count as positive (a multiclass label
            collapses to positive/negative through this set).
        threshold: for a numeric label, the cut: positive when ``label op threshold``.
        op: ``">"`` (Clarify's convention) or ``">="``.
    """

    column: str
    _: KW_ONLY
    positive: Any = None
    threshold: float | None = None
    op: Comparison = ">"

    def __post_init__(self) -> None:
        object.__setattr__(self, "positive", _as_values(self.positive))
        _check_rule(f"Label({self.column!r})", self.positive, self.threshold, self.op)
        if self.positive is None and self.threshold is None:
            raise ValidationError(
                f"Label({self.column!r}) needs positive values or a threshold.",
                hint=f"e.g. Label({self.column!r}, positive=1) or "
                f"Label({self.column!r}, threshold=0.5)",
            )

    def describe(self) -> str:
        """Return the rule as text, e.g. ``approved in (True,)`` or ``score > 0.5``."""
        if self.threshold is not None:
            return f"{self.column} {self.op} {self.threshold:g}"
        return f"{self.column} in {self.positive!r}"


@dataclass(frozen=True)
class Prediction:
    """The model's predicted outcome, for post-training metrics.

    With neither ``positive`` nor ``threshold`` the label's rule applies (a predicted
    label column with the same values as the label). A probability or score column
    takes a ``threshold``: predicted positive when ``score op threshold``.
    """

    column: str
    _: KW_ONLY
    positive: Any = None
    threshold: float | None = None
    op: Comparison = ">"

    def __post_init__(self) -> None:
        object.__setattr__(self, "positive", _as_values(self.positive))
        _check_rule(f"Prediction({self.column!r})", self.positive, self.threshold, self.op)

    def resolved(self, label: Label) -> Prediction:
        """Return this prediction with the label's rule filled in where none is given."""
        if self.positive is not None or self.threshold is not None:
            return self
        return Prediction(
            self.column, positive=label.positive, threshold=label.threshold, op=label.op
        )


@dataclass(frozen=True)
class Facet:
    """A sensitive attribute and which of its rows form the group d ("disfavoured").

    Args:
        column: the facet column.
        values: a value or a set of values forming d (the rest form a). ``None`` with no
            threshold: every value is compared against the rest, one group per value.
        threshold: for a numeric column, d is ``column op threshold`` (Clarify: ``>``).
        op: ``">"`` or ``">="``.
    """

    column: str
    _: KW_ONLY
    values: Any = None
    threshold: float | None = None
    op: Comparison = ">"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _as_values(self.values))
        _check_rule(f"Facet({self.column!r})", self.values, self.threshold, self.op)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this facet reads."""
        return (self.column,)


@dataclass(frozen=True, init=False)
class Intersection:
    """The cross product of several facets: every non-empty combination is a group.

    Each combination is compared against all other rows, e.g.
    ``Intersection(Facet("sex"), Facet("age", threshold=40))`` yields the groups
    ``sex=female & age > 40``, ``sex=female & age <= 40``, ``sex=male & age > 40``, ...
    """

    facets: tuple[Facet, ...] = field()

    def __init__(self, *facets: Facet) -> None:
        if len(facets) < 2:
            raise ValidationError(
                "An Intersection needs at least two facets.",
                hint="use the Facet itself for a single attribute",
            )
        for facet in facets:
            if not isinstance(facet, Facet):
                raise ValidationError(
                    f"Intersection takes Facet objects, not {type(facet).__name__}."
                )
        columns = [f.column for f in facets]
        if len(set(columns)) != len(columns):
            raise ValidationError(f"An Intersection names a column twice: {columns!r}.")
        object.__setattr__(self, "facets", tuple(facets))

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this intersection reads."""
        return tuple(f.column for f in self.facets)


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap confidence intervals.

    Count-based metrics resample the count table (a multinomial draw over its cells,
    which is exactly a row-level bootstrap); FT resamples the flip outcomes of group d.

    Args:
        resamples: number of bootstrap resamples.
        level: the confidence level of the two-sided percentile interval.
        seed: the random seed; the same seed gives the same intervals.
    """

    resamples: int = 1000
    _: KW_ONLY
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resamples < 2:
            raise ValidationError(f"Bootstrap needs at least 2 resamples, not {self.resamples}.")
        if not 0.0 < self.level < 1.0:
            raise ValidationError(
                f"Bootstrap level must lie in (0, 1), not {self.level!r}.", hint="e.g. 0.95"
            )
