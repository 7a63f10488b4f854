"""Turn a DataFrame and an explicit configuration into integer codes, validating both.

Every column becomes a small integer code per row (facet group, label value, predicted
outcome, group-variable value), from which :mod:`trivet.clarify._counts` builds the
count table in one ``bincount``. All the configuration errors a user can make are
raised here, each naming the column and the value and proposing the fix.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from trivet.clarify.config import Facet, Intersection, Label, MissingPolicy, Prediction
from trivet.errors import ValidationError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MISSING_NAME = "<missing>"


@dataclass(frozen=True, kw_only=True, eq=False)
class FacetLevels:
    """The finest partition of the rows by facet, and which cells form each group d."""

    codes: IntArray
    names: tuple[str, ...]
    comparisons: tuple[tuple[str, tuple[int, ...]], ...]
    empty: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, eq=False)
class Encoded:
    """A validated dataset as integer codes, ready to count."""

    facet: FacetLevels
    label_codes: IntArray
    label_names: tuple[str, ...]
    label_positive: BoolArray
    predicted: IntArray | None
    group_codes: IntArray | None
    group_names: tuple[str, ...]
    keep: BoolArray | None
    rows: int
    missing: dict[str, int]
    dropped: int


def check_columns(df: pd.DataFrame, columns: Sequence[str], *, role: str) -> None:
    """Raise ValidationError naming the first of ``columns`` not in ``df``."""
    known = [str(c) for c in df.columns]
    for column in columns:
        if column not in df.columns:
            raise ValidationError(
                f"The {role} column {column!r} is not in the data.",
                hint=did_you_mean(str(column), known),
            )


def _show(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _factorize(series: pd.Series) -> tuple[IntArray, list[Hashable]]:
    """Return codes (-1 for missing) and the sorted distinct values."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        cat = series.cat.remove_unused_categories()
        return np.asarray(cat.cat.codes, dtype=np.int64), list(cat.cat.categories)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    values = list(uniques)
    try:
        order = sorted(range(len(values)), key=lambda i: values[i])
    except TypeError:
        order = sorted(
            range(len(values)), key=lambda i: (type(values[i]).__name__, repr(values[i]))
        )
    remap = np.empty(len(values) + 1, dtype=np.int64)
    remap[np.asarray(order, dtype=np.int64)] = np.arange(len(values), dtype=np.int64)
    remap[-1] = -1
    return remap[np.asarray(codes, dtype=np.int64)], [values[i] for i in order]


def _numeric(series: pd.Series, *, role: str) -> npt.NDArray[np.float64]:
    import pandas as pd

    if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series)):
        raise ValidationError(
            f"The {role} column {series.name!r} is not numeric (dtype {series.dtype}), "
            "so it cannot take a threshold.",
            hint="give positive values (values=... / positive=...) for a categorical column",
        )
    return np.asarray(series.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)


def _format_threshold(column: str, op: str, threshold: float) -> tuple[str, str]:
    other = "<=" if op == ">" else "<"
    return f"{column} {op} {threshold:g}", f"{column} {other} {threshold:g}"


def _in_values(
    codes: IntArray,
    uniques: list[Hashable],
    wanted: tuple[Hashable, ...],
    *,
    what: str,
    column: str,
) -> BoolArray:
    """Return a per-unique mask of ``wanted``; raise when a wanted value is absent."""
    import pandas as pd

    index = pd.Index(uniques, dtype=object)
    mask = np.asarray(index.isin(list(wanted)), dtype=np.bool_)
    for value in wanted:
        if not bool(np.asarray(index.isin([value])).any()):
            raise ValidationError(
                f"The {what} value {value!r} does not occur in column {column!r}.",
                hint=_value_hint(value, uniques),
            )
    return mask


def _value_hint(value: Hashable, uniques: list[Hashable]) -> str:
    """Propose the value the user probably meant: same text, other type or case."""
    for u in uniques:
        if str(u) == str(value):
            return (
                f"the column holds {u!r} ({type(u).__name__}), not {value!r} "
                f"({type(value).__name__})"
            )
    for u in uniques:
        if str(u).casefold() == str(value).casefold():
            return f"did you mean {u!r}?"
    return did_you_mean(str(value), [str(u) for u in uniques]) or (
        f"values present: {_show(uniques)}"
    )


def _facet_part(
    df: pd.DataFrame, facet: Facet, policy: MissingPolicy
) -> tuple[IntArray, list[str], list[int], BoolArray]:
    """Encode one facet: (codes, level names, levels that are d on their own, missing)."""
    series = df[facet.column]
    if facet.threshold is not None:
        x = _numeric(series, role="facet")
        missing = np.isnan(x)
        inside = x > facet.threshold if facet.op == ">" else x >= facet.threshold
        codes = np.where(inside, 0, 1).astype(np.int64)
        names = list(_format_threshold(facet.column, facet.op, facet.threshold))
        d_levels = [0]
    else:
        raw, uniques = _factorize(series)
        missing = raw < 0
        if facet.values is not None:
            in_d = _in_values(raw, uniques, facet.values, what="facet", column=facet.column)
            lookup = np.append(np.where(in_d, 0, 1), 1).astype(np.int64)
            codes = lookup[raw]
            d_name = ",".join(str(v) for v in facet.values)
            names = [d_name, f"not {d_name}"]
            d_levels = [0]
        else:
            codes = raw.copy()
            names = [str(u) for u in uniques]
            d_levels = list(range(len(names)))
    if missing.any() and policy == "group":
        codes = np.where(missing, len(names), codes)
        names.append(MISSING_NAME)
        if facet.values is None and facet.threshold is None:
            d_levels.append(len(names) - 1)
    return codes, names, d_levels, missing


def _labelled(facet: Facet, name: str) -> str:
    if facet.threshold is not None:
        return name
    return f"{facet.column}={name}"


def encode_facet(
    df: pd.DataFrame, facet: Facet | Intersection, policy: MissingPolicy
) -> tuple[FacetLevels, BoolArray]:
    """Encode a facet or an intersection into levels and comparisons; return missing too."""
    if isinstance(facet, Facet):
        codes, names, d_levels, missing = _facet_part(df, facet, policy)
        return FacetLevels(
            codes=codes, names=tuple(names), comparisons=tuple((names[i], (i,)) for i in d_levels)
        ), missing
    parts = [_facet_part(df, f, policy) for f in facet.facets]
    codes = np.zeros(len(df), dtype=np.int64)
    cells: list[str] = [""]
    missing = np.zeros(len(df), dtype=np.bool_)
    for f, (part_codes, part_names, _, part_missing) in zip(facet.facets, parts, strict=True):
        codes = codes * len(part_names) + part_codes
        labelled = [_labelled(f, n) for n in part_names]
        cells = [f"{a} & {b}" if a else b for a in cells for b in labelled]
        missing |= part_missing
    return FacetLevels(
        codes=codes,
        names=tuple(cells),
        comparisons=tuple((name, (i,)) for i, name in enumerate(cells)),
    ), missing


def _outcome(
    series: pd.Series,
    *,
    positive: tuple[Hashable, ...] | None,
    threshold: float | None,
    op: str,
    what: str,
) -> tuple[IntArray, list[str], BoolArray, BoolArray]:
    """Encode an outcome: (value codes, value names, positive mask per value, missing)."""
    column = str(series.name)
    if threshold is not None:
        x = _numeric(series, role=what)
        missing = np.isnan(x)
        pos = x > threshold if op == ">" else x >= threshold
        high, low = _format_threshold(column, op, threshold)
        return pos.astype(np.int64), [low, high], np.array([False, True]), missing
    assert positive is not None
    codes, uniques = _factorize(series)
    mask = _in_values(codes, uniques, positive, what=f"positive {what}", column=column)
    return codes, [str(u) for u in uniques], mask, codes < 0


def encode(
    df: pd.DataFrame,
    *,
    label: Label,
    facet: Facet | Intersection,
    prediction: Prediction | None,
    group_variable: str | None,
    missing: MissingPolicy,
) -> Encoded:
    """Validate the configuration against ``df`` and encode it (see the module doc)."""
    if missing not in ("error", "drop", "group"):
        raise ValidationError(
            f"missing must be 'error', 'drop' or 'group', not {missing!r}.",
            hint="'drop' drops and counts the rows, 'group' makes missing a group of its own",
        )
    check_columns(df, [label.column], role="label")
    check_columns(df, list(facet.columns), role="facet")
    if prediction is not None:
        check_columns(df, [prediction.column], role="prediction")
    if group_variable is not None:
        check_columns(df, [group_variable], role="group variable")
    if len(df) == 0:
        raise ValidationError("The data has no rows.")

    label_codes, label_names, label_positive, label_missing = _outcome(
        df[label.column],
        positive=label.positive,
        threshold=label.threshold,
        op=label.op,
        what="label",
    )
    levels, facet_missing = encode_facet(df, facet, missing)

    predicted: IntArray | None = None
    pred_missing = np.zeros(len(df), dtype=np.bool_)
    if prediction is not None:
        rule = prediction.resolved(label)
        if rule.threshold is not None:
            pcodes, _, ppos, pred_missing = _outcome(
                df[rule.column],
                positive=None,
                threshold=rule.threshold,
                op=rule.op,
                what="prediction",
            )
        else:
            pcodes, _, ppos, pred_missing = _outcome_lenient(df[rule.column], rule)
        predicted = np.append(ppos, False).astype(np.int64)[pcodes]

    group_codes: IntArray | None = None
    group_names: tuple[str, ...] = ()
    group_missing = np.zeros(len(df), dtype=np.bool_)
    if group_variable is not None:
        gcodes, guniques = _factorize(df[group_variable])
        group_missing = gcodes < 0
        names = [str(u) for u in guniques]
        if group_missing.any() and missing == "group":
            gcodes = np.where(group_missing, len(names), gcodes)
            names.append(MISSING_NAME)
            group_missing = np.zeros(len(df), dtype=np.bool_)
        group_codes, group_names = gcodes, tuple(names)

    counts = {
        label.column: int(label_missing.sum()),
        **{c: 0 for c in facet.columns},
    }
    if facet_missing.any():
        for c in facet.columns:
            counts[c] = int(df[c].isna().sum())
    if prediction is not None:
        counts[prediction.column] = int(pred_missing.sum())
    if group_variable is not None:
        counts[group_variable] = int(df[group_variable].isna().sum())
    if missing == "error" and any(counts.values()):
        worst = {c: n for c, n in counts.items() if n}
        raise ValidationError(
            f"Missing values in {', '.join(f'{c!r} ({n})' for c, n in worst.items())}.",
            hint="pass missing='drop' to drop and count those rows, or missing='group' to "
            "make a missing facet value a group of its own",
        )
    drop = label_missing | pred_missing | group_missing
    if missing == "drop":
        drop = drop | facet_missing
    keep: BoolArray | None = None
    if drop.any():
        keep = ~drop
        label_codes = label_codes[keep]
        levels = FacetLevels(
            codes=levels.codes[keep], names=levels.names, comparisons=levels.comparisons
        )
        predicted = predicted[keep] if predicted is not None else None
        group_codes = group_codes[keep] if group_codes is not None else None
    rows = len(label_codes)
    if rows == 0:
        raise ValidationError(
            "No rows are left after dropping the rows with missing values.",
            hint="check the label, prediction, facet and group columns",
        )

    _check_label(label, label_codes, label_positive, label_names)
    if prediction is not None and predicted is not None and not predicted.any():
        raise ValidationError(
            f"The prediction column {prediction.column!r} has no positive predictions "
            f"under the rule {prediction.resolved(label)!r}.",
            hint="check the threshold or the positive values (post-training metrics compare "
            "positive predictions between groups)",
        )
    levels = _check_groups(facet, levels)
    return Encoded(
        facet=levels,
        label_codes=label_codes,
        label_names=tuple(label_names),
        label_positive=label_positive,
        predicted=predicted,
        group_codes=group_codes,
        group_names=group_names,
        keep=keep,
        rows=rows,
        missing=counts,
        dropped=int(drop.sum()),
    )


def _outcome_lenient(
    series: pd.Series, rule: Prediction
) -> tuple[IntArray, list[str], BoolArray, BoolArray]:
    """Encode a predicted label by value; unlike a label, a positive value may be absent."""
    import pandas as pd

    codes, uniques = _factorize(series)
    assert rule.positive is not None
    mask = np.asarray(pd.Index(uniques, dtype=object).isin(list(rule.positive)), dtype=np.bool_)
    return codes, [str(u) for u in uniques], mask, codes < 0


def _check_label(label: Label, codes: IntArray, positive: BoolArray, names: list[str]) -> None:
    is_pos = np.append(positive, False)[codes]
    n_pos = int(is_pos.sum())
    if n_pos == 0 or n_pos == len(codes):
        which = "positive" if n_pos else "negative"
        raise ValidationError(
            f"The label {label.column!r} has one class only: every row is {which} under the "
            f"rule {label.describe()}.",
            hint=f"values present: {_show(names)}; bias metrics compare outcomes, so the "
            "label needs both positive and negative rows",
        )


def _check_groups(facet: Facet | Intersection, levels: FacetLevels) -> FacetLevels:
    sizes = np.bincount(levels.codes, minlength=len(levels.names))
    total = int(sizes.sum())
    keep: list[tuple[str, tuple[int, ...]]] = []
    empty: list[str] = []
    for name, cells in levels.comparisons:
        n_d = int(sizes[list(cells)].sum())
        if n_d == 0:
            if isinstance(facet, Intersection):
                empty.append(name)
                continue
            raise ValidationError(
                f"The facet group {name!r} is empty: no row falls into it.",
                hint="choose a threshold inside the column's range",
            )
        if n_d == total:
            raise ValidationError(
                f"The facet group {name!r} holds every row, so the rest (group a) is empty.",
                hint="a facet compares two groups; choose values or a threshold that split "
                "the rows",
            )
        keep.append((name, cells))
    if not keep:
        raise ValidationError("The intersection has no non-empty group to compare.")
    return FacetLevels(
        codes=levels.codes, names=levels.names, comparisons=tuple(keep), empty=tuple(empty)
    )
