"""Compute bias metrics: ``pretraining_bias`` and ``posttraining_bias``.

>>> from trivet.clarify import Facet, Label, pretraining_bias
>>> from trivet.clarify.data import berkeley_admissions
>>> report = pretraining_bias(
...     berkeley_admissions(), label=Label("admitted", positive=True),
...     facet=Facet("sex", values="female"), group_variable="department")
>>> round(report.value("DPL"), 3), round(report.value("CDDL"), 3)
(0.142, 0.017)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from trivet.clarify._counts import CountTable, Tables
from trivet.clarify._encode import Encoded, check_columns, encode
from trivet.clarify.bootstrap import percentile_interval, resample_flips, resampled_tables
from trivet.clarify.config import (
    Bootstrap,
    Facet,
    Intersection,
    Label,
    MissingPolicy,
    Mode,
    Prediction,
    Stage,
)
from trivet.clarify.metrics import MetricSpec, select
from trivet.clarify.metrics.posttraining import FlipTest, flip_test
from trivet.clarify.results import BiasReport, FacetGroup, MetricValue
from trivet.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["analyze", "posttraining_bias", "pretraining_bias"]

LabelDistribution = Literal["binary", "values"]
Interval = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]


def pretraining_bias(
    df: pd.DataFrame,
    *,
    label: Label,
    facet: Facet | Intersection,
    group_variable: str | None = None,
    metrics: Iterable[str] | None = None,
    mode: Mode = "default",
    missing: MissingPolicy = "error",
    label_distribution: LabelDistribution = "binary",
    divergence_smoothing: float = 0.0,
    bootstrap: Bootstrap | int | None = None,
    min_group_size: int = 30,
) -> BiasReport:
    """Compute pre-training bias metrics (CI, DPL, KL, JS, LP, TVD, KS, CDDL).

    Args:
        df: the data, one row per example.
        label: the label column and its positive rule.
        facet: the sensitive attribute (a :class:`Facet` or an :class:`Intersection`).
        group_variable: a column whose strata condition CDDL (e.g. a department).
        metrics: names of the metrics to compute (default: every pre-training metric).
        mode: ``"default"`` or ``"clarify_compatible"`` (smclarify 0.5's numbers).
        missing: ``"error"``, ``"drop"`` or ``"group"`` (see :data:`MissingPolicy`).
        label_distribution: what KL, JS, LP, TVD and KS compare: the two classes
            (``"binary"``, smclarify's report) or every label value (``"values"``,
            Clarify's multicategory definition).
        divergence_smoothing: default mode only: a pseudo-count added to every label
            value of both groups before KL/JS/LP/TVD/KS (e.g. 0.5), making KL finite.
        bootstrap: resamples (an int) or :class:`Bootstrap` settings for intervals.
        min_group_size: a count below which a metric's value is flagged as unreliable.

    Returns:
        A :class:`BiasReport`.

    Raises:
        ValidationError: a column or facet value is absent, a group is empty, the label
            has one class, or missing values under ``missing="error"``.
    """
    return analyze(
        df,
        label=label,
        facet=facet,
        group_variable=group_variable,
        metrics=metrics,
        mode=mode,
        missing=missing,
        label_distribution=label_distribution,
        divergence_smoothing=divergence_smoothing,
        bootstrap=bootstrap,
        min_group_size=min_group_size,
        stages=("pre_training",),
    )


def posttraining_bias(
    df: pd.DataFrame,
    *,
    label: Label,
    facet: Facet | Intersection,
    prediction: Prediction | str,
    group_variable: str | None = None,
    features: Sequence[str] | None = None,
    metrics: Iterable[str] | None = None,
    mode: Mode = "default",
    missing: MissingPolicy = "error",
    bootstrap: Bootstrap | int | None = None,
    min_group_size: int = 30,
    flip_neighbors: int = 5,
    n_jobs: int | None = None,
) -> BiasReport:
    """Compute post-training bias metrics (DPPL, DI, DCA, DCR, RD, SD, DAR, DRR, AD, TE,
    CDDPL, FT, GE).

    Args:
        df: the data with the model's predictions.
        label: the label column and its positive rule.
        facet: the sensitive attribute.
        prediction: the predicted label column, or a score column with a threshold.
        group_variable: a column whose strata condition CDDPL.
        features: the numeric columns FT searches neighbours in (default: every column
            but the label, prediction, facet and group variable).
        metrics: names of the metrics to compute (default: every post-training metric).
        mode: ``"default"`` or ``"clarify_compatible"``.
        missing: ``"error"``, ``"drop"`` or ``"group"``.
        bootstrap: resamples (an int) or :class:`Bootstrap` settings for intervals.
        min_group_size: a count below which a metric's value is flagged as unreliable.
        flip_neighbors: k of FT's k-NN in default mode (made odd).
        n_jobs: parallel jobs for FT's neighbour search (scikit-learn's meaning).

    Returns:
        A :class:`BiasReport`.

    Raises:
        ValidationError: as :func:`pretraining_bias`, and when the predictions have no
            positive, or an explicit feature column is missing or not numeric.
    """
    return analyze(
        df,
        label=label,
        facet=facet,
        prediction=prediction,
        group_variable=group_variable,
        features=features,
        metrics=metrics,
        mode=mode,
        missing=missing,
        bootstrap=bootstrap,
        min_group_size=min_group_size,
        flip_neighbors=flip_neighbors,
        n_jobs=n_jobs,
        stages=("post_training",),
    )


def _check_config(
    label: object, facet: object, prediction: object
) -> tuple[Label, Facet | Intersection, Prediction | None]:
    """Refuse loose strings where the configuration must be explicit; a prediction
    column name alone is unambiguous (it takes the label's rule)."""
    if not isinstance(label, Label):
        raise ValidationError(
            f"label must be a Label, not {label!r}: which values count as positive?",
            hint=f"e.g. Label({label!r}, positive=[1]) or Label({label!r}, threshold=0.5)",
        )
    if not isinstance(facet, Facet | Intersection):
        raise ValidationError(
            f"facet must be a Facet or an Intersection, not {facet!r}.",
            hint=f"e.g. Facet({facet!r}, values=['female']) or Facet({facet!r}) for every group",
        )
    if isinstance(prediction, str):
        prediction = Prediction(prediction)
    elif prediction is not None and not isinstance(prediction, Prediction):
        raise ValidationError(
            f"prediction must be a Prediction or a column name, not {prediction!r}.",
            hint="e.g. Prediction('pred') or Prediction('score', threshold=0.5)",
        )
    return label, facet, prediction


def _check_options(
    mode: str, label_distribution: str, smoothing: float, min_group_size: int
) -> None:
    if mode not in ("default", "clarify_compatible"):
        raise ValidationError(
            f"mode must be 'default' or 'clarify_compatible', not {mode!r}.",
            hint="'clarify_compatible' reproduces smclarify 0.5's numbers and conventions",
        )
    if label_distribution not in ("binary", "values"):
        raise ValidationError(
            f"label_distribution must be 'binary' or 'values', not {label_distribution!r}."
        )
    if smoothing < 0:
        raise ValidationError(f"divergence_smoothing must be >= 0, not {smoothing!r}.")
    if smoothing > 0 and mode == "clarify_compatible":
        raise ValidationError(
            "divergence_smoothing applies to mode='default' only.",
            hint="smclarify does not smooth; drop the option or use the default mode",
        )
    if min_group_size < 0:
        raise ValidationError(f"min_group_size must be >= 0, not {min_group_size!r}.")


def analyze(
    df: pd.DataFrame,
    *,
    label: Label,
    facet: Facet | Intersection,
    stages: tuple[Stage, ...],
    prediction: Prediction | str | None = None,
    group_variable: str | None = None,
    features: Sequence[str] | None = None,
    metrics: Iterable[str] | None = None,
    mode: Mode = "default",
    missing: MissingPolicy = "error",
    label_distribution: LabelDistribution = "binary",
    divergence_smoothing: float = 0.0,
    bootstrap: Bootstrap | int | None = None,
    min_group_size: int = 30,
    flip_neighbors: int = 5,
    n_jobs: int | None = None,
) -> BiasReport:
    """Compute the metrics of ``stages`` (the engine behind the two public functions)."""
    _check_options(mode, label_distribution, divergence_smoothing, min_group_size)
    label, facet, prediction = _check_config(label, facet, prediction)
    if not isinstance(label, Label):
        raise ValidationError(
            f"label must be a Label, not {type(label).__name__}.",
            hint="e.g. Label('approved', positive=1)",
        )
    if not isinstance(facet, (Facet, Intersection)):
        raise ValidationError(
            f"facet must be a Facet or an Intersection, not {type(facet).__name__}.",
            hint="e.g. Facet('sex', values='female')",
        )
    if "post_training" in stages and prediction is None:
        raise ValidationError(
            "Post-training metrics need the model's predictions.",
            hint="pass prediction=Prediction('<predicted label column>')",
        )
    settings = _bootstrap_settings(bootstrap)
    specs = select(metrics, stages)
    enc = encode(
        df,
        label=label,
        facet=facet,
        prediction=prediction if "post_training" in stages else None,
        group_variable=group_variable,
        missing=missing,
    )
    table = CountTable.build(enc)

    def fold(counts: npt.NDArray[np.int64] | None = None) -> Tables:
        return table.tables(counts, distribution=label_distribution, smoothing=divergence_smoothing)

    tables = fold()
    counted = [s for s in specs if s.count_based]
    point = {s.name: s.compute(tables, mode) for s in counted}

    flips: dict[int, FlipTest] = {}
    ft_reason: str | None = None
    if any(s.name == "FT" for s in specs):
        ft_reason = _flip_tests(
            df,
            enc,
            label,
            facet,
            prediction,
            group_variable,
            features,
            mode,
            flip_neighbors,
            n_jobs,
            flips,
        )

    intervals: dict[str, Interval] = {}
    if settings is not None:
        intervals = _intervals(table, fold, counted, mode, settings, flips)

    values: list[MetricValue] = []
    names = [name for name, _ in enc.facet.comparisons]
    for c, group in enumerate(names):
        one = tables.pick(c)
        for spec in specs:
            if spec.count_based:
                raw = float(point[spec.name][c])
            else:
                raw = flips[c].value if c in flips else float("nan")
            value = None if np.isnan(raw) else raw
            reason = None
            if value is None:
                if spec.count_based and spec.reason is not None:
                    reason = spec.reason(one, mode)
                else:
                    reason = ft_reason or "FT is undefined for this group"
            interval = None
            undefined = None
            if spec.name in intervals:
                lower, upper, bad = intervals[spec.name]
                if not (np.isnan(lower[c]) or np.isnan(upper[c])):
                    interval = (float(lower[c]), float(upper[c]))
                undefined = int(bad[c])
            values.append(
                MetricValue(
                    metric=spec.name,
                    stage=spec.stage,
                    group=group,
                    value=value,
                    reason=reason,
                    interval=interval,
                    undefined_resamples=undefined,
                )
            )
    return BiasReport(
        mode=mode,
        stages=stages,
        label=label,
        facet=facet,
        prediction=prediction if "post_training" in stages else None,
        group_variable=group_variable,
        groups=_groups(tables, names, "post_training" in stages),
        values=tuple(values),
        rows=enc.rows,
        missing=enc.missing,
        dropped_rows=enc.dropped,
        empty_groups=enc.facet.empty,
        warnings=_small_groups(tables, names, counted, min_group_size),
        bootstrap=settings,
        min_group_size=min_group_size,
        counts=_counts_dict(table, enc),
        missing_policy=missing,
        label_distribution=label_distribution,
        divergence_smoothing=divergence_smoothing,
        features=None if features is None else tuple(features),
        flip_neighbors=flip_neighbors,
    )


def _groups(t: Tables, names: list[str], predicted: bool) -> tuple[FacetGroup, ...]:
    b = t.binary  # (C, side, label, predicted, V)
    rows = b.sum(axis=(-3, -2, -1))
    pos = b[..., 1, :, :].sum(axis=(-2, -1))
    ppos = b[..., :, 1, :].sum(axis=(-2, -1))
    return tuple(
        FacetGroup(
            name=name,
            rows_d=int(rows[c, 1]),
            rows_a=int(rows[c, 0]),
            label_positive_d=int(pos[c, 1]),
            label_positive_a=int(pos[c, 0]),
            predicted_positive_d=int(ppos[c, 1]) if predicted else None,
            predicted_positive_a=int(ppos[c, 0]) if predicted else None,
        )
        for c, name in enumerate(names)
    )


def _small_groups(
    t: Tables, names: list[str], specs: list[MetricSpec], threshold: int
) -> tuple[str, ...]:
    """Name the counts below ``threshold`` that metrics rest on, per group."""
    flagged: dict[tuple[str, str, int], list[str]] = {}
    for spec in specs:
        bases = spec.bases(t)
        for what, counts in bases.items():
            for c, group in enumerate(names):
                n = int(np.asarray(counts)[c])
                if n < threshold:
                    flagged.setdefault((group, what, n), []).append(spec.name)
    return tuple(
        f"group {group!r}: only {n} {what} (fewer than {threshold}); "
        f"{', '.join(metrics)} {'is' if len(metrics) == 1 else 'are'} unreliable"
        for (group, what, n), metrics in flagged.items()
    )


def _bootstrap_settings(bootstrap: Bootstrap | int | None) -> Bootstrap | None:
    if bootstrap is None or isinstance(bootstrap, Bootstrap):
        return bootstrap
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int):
        raise ValidationError(
            f"bootstrap must be a number of resamples or a Bootstrap, not {bootstrap!r}.",
            hint="e.g. bootstrap=1000 or bootstrap=Bootstrap(1000, level=0.9, seed=1)",
        )
    return Bootstrap(bootstrap)


def _intervals(
    table: CountTable,
    fold: Callable[[npt.NDArray[np.int64]], Tables],
    specs: list[MetricSpec],
    mode: Mode,
    settings: Bootstrap,
    flips: dict[int, FlipTest],
) -> dict[str, Interval]:
    rng = np.random.default_rng(settings.seed)
    samples: dict[str, list[npt.NDArray[np.float64]]] = {s.name: [] for s in specs}
    for chunk in resampled_tables(table, rng, settings.resamples, fold):
        for spec in specs:
            samples[spec.name].append(spec.compute(chunk, mode))
    out: dict[str, Interval] = {}
    for name, parts in samples.items():
        out[name] = percentile_interval(np.concatenate(parts, axis=0), settings.level)
    if flips:
        n_groups = table.membership.shape[0]
        ft = np.full((settings.resamples, n_groups), np.nan)
        for c, test in flips.items():
            ft[:, c] = resample_flips(test.flips, rng, settings.resamples)
        out["FT"] = percentile_interval(ft, settings.level)
    return out


def _flip_tests(
    df: pd.DataFrame,
    enc: Encoded,
    label: Label,
    facet: Facet | Intersection,
    prediction: Prediction | None,
    group_variable: str | None,
    features: Sequence[str] | None,
    mode: Mode,
    neighbors: int,
    n_jobs: int | None,
    out: dict[int, FlipTest],
) -> str | None:
    """Run FT for every comparison into ``out``; return why it could not run, if so."""
    import pandas as pd

    assert prediction is not None and enc.predicted is not None
    used = {label.column, prediction.column, *facet.columns}
    if group_variable is not None:
        used.add(group_variable)
    explicit = features is not None
    if features is None:
        columns = [c for c in df.columns if c not in used]
    else:
        columns = list(features)
        check_columns(df, columns, role="feature")
    if not columns:
        return "FT needs feature columns: the data has none besides the label, facet and prediction"
    frame = df[columns]
    bad = [
        str(c)
        for c in columns
        if not (
            pd.api.types.is_numeric_dtype(frame[c].dtype) or pd.api.types.is_bool_dtype(frame[c])
        )
    ]
    if bad:
        message = f"FT needs numeric features; not numeric: {', '.join(repr(b) for b in bad)}"
        if explicit:
            raise ValidationError(message + ".", hint="encode them first, or leave them out")
        return message + " (pass features=[...] to choose the columns)"
    x = frame.to_numpy(dtype="float64", na_value=np.nan)
    if enc.keep is not None:
        x = x[enc.keep]
    if np.isnan(x).any():
        message = "FT needs features without missing values"
        if explicit:
            raise ValidationError(message + ".", hint="impute or drop those rows first")
        return message + " (impute them, or pass features=[...])"
    predicted = enc.predicted.astype(bool)
    for c, (_, cells) in enumerate(enc.facet.comparisons):
        in_d = np.isin(enc.facet.codes, cells)
        out[c] = flip_test(
            x[~in_d],
            predicted[~in_d],
            x[in_d],
            predicted[in_d],
            mode=mode,
            neighbors=neighbors,
            n_jobs=n_jobs,
        )
    return None


def _counts_dict(table: CountTable, enc: Encoded) -> dict[str, object]:
    """The count table, JSON-able: axes, their labels, nested counts."""
    return {
        "axes": ["facet_cell", "label_value", "predicted", "group"],
        "labels": {
            "facet_cell": list(enc.facet.names),
            "label_value": list(enc.label_names),
            "label_positive": [bool(b) for b in enc.label_positive],
            "predicted": [0, 1],
            "group": list(enc.group_names) or [None],
        },
        "counts": table.counts.tolist(),
    }
