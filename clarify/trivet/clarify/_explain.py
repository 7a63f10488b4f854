"""Explanations with SHAP: global importance, local explanations, partial dependence.

:func:`explain` takes a fitted model — a scikit-learn estimator, or any callable that
maps a 2-D array to predictions or probabilities — and the rows to explain. It uses

- shap's **tree** explainer for scikit-learn tree models (decision trees, random
  forests, extra trees, gradient boosting), interventional, on the probability scale
  for classifiers: exact, fast, and additive (base value + Σ SHAP = model output);
- otherwise shap's **kernel** explainer (or the **permutation** explainer on request)
  against a baseline summarised by k-means (``shap.kmeans``), as SageMaker Clarify
  does, with ``num_samples`` coalitions per row.

From the SHAP values it computes global importance (mean, median and mean square of
|SHAP| per feature), local explanations for the rows asked for, and partial dependence
for the top-k features. Every result is a frozen dataclass with ``to_dict()``.

shap and scikit-learn are imported inside the functions that need them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from trivet.errors import ValidationError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Explainer",
    "Explanation",
    "FeatureImportance",
    "LocalExplanation",
    "PartialDependence",
    "explain",
]

Explainer = Literal["auto", "tree", "kernel", "permutation"]
"""Which SHAP explainer: ``auto`` picks ``tree`` for tree models, else ``kernel``."""

FloatArray = npt.NDArray[np.float64]

_TREE_MODULES = ("sklearn.tree.", "sklearn.ensemble._forest", "sklearn.ensemble._gb")


@dataclass(frozen=True, kw_only=True)
class FeatureImportance:
    """One feature's global importance over the rows explained.

    Attributes:
        feature: the feature's name.
        mean_abs: mean |SHAP| (Clarify's ``global_shap_values``).
        median_abs: median |SHAP|, robust to a few extreme rows.
        mean_square: mean SHAP², which weighs large contributions more.
    """

    feature: str
    mean_abs: float
    median_abs: float
    mean_square: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "feature": self.feature,
            "mean_abs": self.mean_abs,
            "median_abs": self.median_abs,
            "mean_square": self.mean_square,
        }


@dataclass(frozen=True, kw_only=True)
class LocalExplanation:
    """The SHAP values of one row: ``base_value + sum(values) ≈ prediction``.

    Attributes:
        row: the row's position in the data explained.
        prediction: the model's output for the row (on the explained scale).
        base_value: the expected output over the baseline.
        values: SHAP value per feature, in the data's column order.
    """

    row: int
    prediction: float
    base_value: float
    values: Mapping[str, float]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """Return the ``k`` features that moved this prediction most, by |SHAP|."""
        return sorted(self.values.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:k]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "row": self.row,
            "prediction": self.prediction,
            "base_value": self.base_value,
            "shap_values": dict(self.values),
        }


@dataclass(frozen=True, kw_only=True)
class PartialDependence:
    """The average model output as one feature is set to each value of a grid.

    Attributes:
        feature: the feature.
        grid: the values the feature was set to (every distinct value when there are at
            most ``grid_resolution`` of them, else evenly spaced from min to max).
        predictions: the mean output over the rows explained, one per grid value.
        data_type: ``"numerical"`` (evenly spaced grid) or ``"categorical"`` (the
            distinct values).
    """

    feature: str
    grid: tuple[float, ...]
    predictions: tuple[float, ...]
    data_type: Literal["numerical", "categorical"]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict, shaped like Clarify's ``pdp`` entries."""
        return {
            "feature_name": self.feature,
            "data_type": self.data_type,
            "feature_values": list(self.grid),
            "model_predictions": [list(self.predictions)],
        }


@dataclass(frozen=True, kw_only=True)
class Explanation:
    """SHAP explanations of one model on one data set.

    Attributes:
        method: the explainer used: ``"tree"``, ``"kernel"`` or ``"permutation"``.
        output: what was explained, e.g. ``"probability of class 1"``.
        features: the features, in the data's column order.
        base_value: the expected model output over the baseline.
        importance: global importance, most important first.
        local: local explanations of the rows asked for.
        partial_dependence: partial dependence of the chosen features.
        rows: how many rows the global importance averages over.
        num_samples: coalitions per row (kernel) or evaluations (permutation); None
            for the tree explainer, which is exact.
        baseline_size: k-means clusters (kernel, permutation) or sampled rows (tree)
            of the baseline.
        seed: the random seed used for sampling rows and the baseline.
    """

    method: Literal["tree", "kernel", "permutation"]
    output: str
    features: tuple[str, ...]
    base_value: float
    importance: tuple[FeatureImportance, ...]
    local: tuple[LocalExplanation, ...] = ()
    partial_dependence: tuple[PartialDependence, ...] = ()
    rows: int
    num_samples: int | None = None
    baseline_size: int
    seed: int = 0

    @property
    def ranking(self) -> tuple[str, ...]:
        """The features, most important (by mean |SHAP|) first."""
        return tuple(f.feature for f in self.importance)

    def importance_of(self, feature: str) -> FeatureImportance:
        """Return one feature's importance.

        Raises:
            ValidationError: the feature was not explained.
        """
        for item in self.importance:
            if item.feature == feature:
                return item
        raise ValidationError(
            f"No feature {feature!r} in this explanation.",
            hint=did_you_mean(feature, self.features),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict shaped like Clarify's ``explanations`` section.

        ``<method>_shap.label0`` holds ``global_shap_values`` (mean |SHAP| per feature)
        and ``expected_value``, as in Clarify; trivet adds ``global_shap_statistics``,
        ``local_shap_values`` and the settings. ``pdp`` lists the partial dependences.
        """
        return {
            f"{self.method}_shap": {
                "label0": {
                    "global_shap_values": {f.feature: f.mean_abs for f in self.importance},
                    "expected_value": self.base_value,
                    "global_shap_statistics": {
                        f.feature: {
                            "mean_abs": f.mean_abs,
                            "median_abs": f.median_abs,
                            "mean_square": f.mean_square,
                        }
                        for f in self.importance
                    },
                    "local_shap_values": [e.to_dict() for e in self.local],
                },
                "output": self.output,
                "features": list(self.features),
                "rows": self.rows,
                "num_samples": self.num_samples,
                "baseline_size": self.baseline_size,
                "seed": self.seed,
            },
            "pdp": [p.to_dict() for p in self.partial_dependence],
        }


# -- the model as a function of a 2-D float array ------------------------------------------
def _check_fitted(model: Any) -> None:
    """Refuse a scikit-learn estimator that was never fitted, with the fix."""
    try:
        from sklearn.base import BaseEstimator
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        return
    if isinstance(model, BaseEstimator):
        try:
            check_is_fitted(model)
        except NotFittedError:
            raise ValidationError(
                f"The {type(model).__name__} to explain was never fitted.",
                hint="call .fit(X, y) first, or pass the model a pipeline step returned",
            ) from None


class _Predictor:
    """Call a model on a float array; return one output per row (float64)."""

    def __init__(self, model: Any, names: tuple[str, ...], *, as_frame: bool, target: Any) -> None:
        _check_fitted(model)
        self.model = model
        self.names = names
        self.as_frame = as_frame
        self.column: int | None = None
        if hasattr(model, "predict_proba"):
            self.call: Callable[[Any], Any] = model.predict_proba
            classes = [
                c.item() if isinstance(c, np.generic) else c for c in getattr(model, "classes_", [])
            ]
            if target is None:
                self.column = -1
                self.output = f"probability of class {classes[-1]!r}" if classes else "probability"
            elif classes and target in classes:
                self.column = classes.index(target)
                self.output = f"probability of class {target!r}"
            elif isinstance(target, int) and not classes:
                self.column = target
                self.output = f"probability of column {target}"
            else:
                raise ValidationError(
                    f"The model has no class {target!r}.",
                    hint=f"classes: {classes!r}" if classes else None,
                )
        elif callable(model):
            self.call = model
            self.column = -1 if target is None else int(target)
            self.output = "model output"
        elif hasattr(model, "predict"):
            self.call = model.predict
            self.output = "prediction"
        else:
            raise ValidationError(
                f"Cannot explain a {type(model).__name__}: it has no predict_proba or predict "
                "and is not callable.",
                hint="pass a fitted scikit-learn estimator or a function of a 2-D array",
            )

    def __call__(self, x: Any) -> FloatArray:
        array = np.asarray(x, dtype=np.float64)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        data: Any = array
        if self.as_frame:
            import pandas as pd

            data = pd.DataFrame(array, columns=list(self.names))
        out = np.asarray(self.call(data), dtype=np.float64)
        if out.ndim == 2:
            if self.column is None:
                self.column = -1
            out = out[:, self.column]
        if out.ndim != 1 or out.shape[0] != array.shape[0]:
            raise ValidationError(
                f"The model returned an output of shape {out.shape} for {array.shape[0]} rows.",
                hint="it must return one value, or one probability per class, per row",
            )
        return out


def _matrix(
    data: pd.DataFrame | npt.ArrayLike, features: Sequence[str] | None
) -> tuple[FloatArray, tuple[str, ...], bool]:
    """Return (float matrix, feature names, whether the input was a DataFrame)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        columns = [str(c) for c in data.columns]
        if features is not None:
            missing = [f for f in features if f not in columns]
            if missing:
                raise ValidationError(
                    f"No feature column {missing[0]!r} in the data.",
                    hint=did_you_mean(missing[0], columns),
                )
            data = data[list(features)]
            columns = list(features)
        bad = [
            c
            for c in data.columns
            if not (
                pd.api.types.is_numeric_dtype(data[c].dtype)
                or pd.api.types.is_bool_dtype(data[c].dtype)
            )
        ]
        if bad:
            raise ValidationError(
                f"Explanations need numeric features; not numeric: {', '.join(map(repr, bad))}.",
                hint="encode them first (the model must accept the encoded columns)",
            )
        matrix = data.to_numpy(dtype="float64", na_value=np.nan)
        names = tuple(columns)
        frame = True
    else:
        matrix = np.asarray(data, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValidationError(f"The data must be 2-D, not of shape {matrix.shape}.")
        if features is not None and len(features) != matrix.shape[1]:
            raise ValidationError(
                f"{len(features)} feature names for {matrix.shape[1]} columns.",
                hint="name every column, in order",
            )
        names = (
            tuple(features)
            if features is not None
            else tuple(f"x{i}" for i in range(matrix.shape[1]))
        )
        frame = False
    if matrix.shape[0] == 0:
        raise ValidationError("There are no rows to explain.")
    if np.isnan(matrix).any():
        raise ValidationError(
            "The data has missing values.", hint="impute or drop them before explaining"
        )
    return matrix, names, frame


def _wants_frame(model: Any, frame: bool) -> bool:
    """Whether to call the model with a DataFrame rather than an array.

    A scikit-learn estimator fitted on a DataFrame (it has ``feature_names_in_``) wants
    one, and one fitted on an array warns when given one; a plain callable gets what the
    caller gave.
    """
    if hasattr(model, "feature_names_in_"):
        return True
    return frame and not hasattr(model, "fit")


def is_tree_model(model: Any) -> bool:
    """Return whether shap's tree explainer applies to ``model`` (scikit-learn trees)."""
    module = type(model).__module__ + "."
    return any(module.startswith(prefix) for prefix in _TREE_MODULES)


def import_shap() -> Any:
    """Import shap (its optional accelerator's deprecation notices filtered)."""
    # shap (0.51) imports without warnings beside this numpy and pandas; the filter is
    # narrow and only guards against its optional-accelerator notices.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"numba(\.|$)")
        import shap
    return shap


def _pick(values: Any, column: int | None) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 3:
        array = array[:, :, -1 if column is None else column]
    return array


def _base(expected: Any, column: int | None) -> float:
    array = np.atleast_1d(np.asarray(expected, dtype=np.float64))
    if array.size == 1:
        return float(array[0])
    return float(array[-1 if column is None else column])


def _tree_shap(
    model: Any,
    predictor: _Predictor,
    matrix: FloatArray,
    background: FloatArray,
    names: tuple[str, ...],
    frame: bool,
) -> tuple[FloatArray, float]:
    shap = import_shap()
    import pandas as pd

    def shaped(a: FloatArray) -> Any:
        return pd.DataFrame(a, columns=list(names)) if frame else a

    classifier = hasattr(model, "predict_proba")
    explainer = shap.TreeExplainer(
        model,
        data=shaped(background),
        model_output="probability" if classifier else "raw",
        feature_perturbation="interventional",
    )
    values = _pick(explainer.shap_values(shaped(matrix)), predictor.column)
    return values, _base(explainer.expected_value, predictor.column)


def _sampled_shap(
    method: Literal["kernel", "permutation"],
    predictor: _Predictor,
    matrix: FloatArray,
    background: FloatArray,
    clusters: int,
    num_samples: int | None,
    seed: int,
) -> tuple[FloatArray, float]:
    shap = import_shap()
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    k = min(clusters, background.shape[0])
    summary: Any = background
    if k < background.shape[0]:
        # k-means on a baseline-sized problem is fastest on one thread; OpenMP threads
        # on a busy machine made it 100x slower (1.2 s instead of 12 ms).
        with threadpool_limits(limits=1):
            summary = shap.kmeans(background, k)
    if method == "kernel":
        explainer = shap.KernelExplainer(predictor, summary, seed=seed)
        values = explainer.shap_values(
            matrix, nsamples="auto" if num_samples is None else num_samples, silent=True
        )
        return _pick(values, None), _base(explainer.expected_value, None)
    rows = summary.data if hasattr(summary, "data") else summary
    masker = shap.maskers.Independent(np.asarray(rows, dtype=np.float64), max_samples=k)
    explainer = shap.PermutationExplainer(predictor, masker, seed=seed)
    evals = num_samples if num_samples is not None else 2 * matrix.shape[1] + 1
    result = explainer(matrix, max_evals=max(evals, 2 * matrix.shape[1] + 1), silent=True)
    return _pick(result.values, None), _base(np.mean(result.base_values), None)


def _grid(
    column: FloatArray, resolution: int
) -> tuple[FloatArray, Literal["numerical", "categorical"]]:
    distinct = np.unique(column)
    if distinct.size <= resolution:
        return distinct, "categorical"
    return np.linspace(float(column.min()), float(column.max()), resolution), "numerical"


def _partial_dependence(
    predictor: _Predictor, matrix: FloatArray, index: int, name: str, resolution: int
) -> PartialDependence:
    grid, kind = _grid(matrix[:, index], resolution)
    stacked = np.repeat(matrix[np.newaxis, :, :], grid.size, axis=0)
    stacked[:, :, index] = grid[:, np.newaxis]
    out = predictor(stacked.reshape(-1, matrix.shape[1])).reshape(grid.size, matrix.shape[0])
    return PartialDependence(
        feature=name,
        grid=tuple(float(g) for g in grid),
        predictions=tuple(float(p) for p in out.mean(axis=1)),
        data_type=kind,
    )


def explain(
    model: Any,
    data: pd.DataFrame | npt.ArrayLike,
    *,
    features: Sequence[str] | None = None,
    explainer: Explainer = "auto",
    target: Any = None,
    rows: Sequence[int] = (),
    sample: int | None = 100,
    num_samples: int | None = None,
    baseline: pd.DataFrame | npt.ArrayLike | None = None,
    baseline_size: int | None = None,
    pdp_features: Sequence[str] | None = None,
    top_k: int = 5,
    grid_resolution: int = 20,
    seed: int = 0,
) -> Explanation:
    """Explain a model's outputs on ``data`` with SHAP.

    Args:
        model: a fitted scikit-learn estimator (its ``predict_proba`` for classifiers,
            else ``predict``) or a callable mapping a 2-D array to outputs (one per row,
            or one column per class).
        data: the rows to explain: a DataFrame of numeric columns, or a 2-D array.
        features: the columns to use (DataFrame), or the column names (array).
        explainer: ``"auto"`` (tree for scikit-learn tree models, else kernel),
            ``"tree"``, ``"kernel"`` or ``"permutation"``.
        target: the class whose probability is explained (default: the last class, the
            positive one of a binary classifier); for a callable, the output column.
        rows: positions in ``data`` of rows to explain locally.
        sample: how many rows (drawn with ``seed``) global importance and partial
            dependence average over; None uses every row. Kernel SHAP costs
            ``num_samples`` model calls on ``baseline_size`` rows per row explained.
        num_samples: kernel: coalitions per row (default: shap's ``"auto"``, 2p + 2048);
            permutation: model evaluations per row (default 2p + 1).
        baseline: background rows (default: ``data``). Kernel and permutation summarise
            it with k-means (``shap.kmeans``) into ``baseline_size`` weighted centres;
            tree samples ``baseline_size`` rows of it.
        baseline_size: k-means clusters (default 10) or tree background rows (default 100).
        pdp_features: features for partial dependence (default: the ``top_k`` by mean
            |SHAP|).
        top_k: how many features get partial dependence by default (0 for none).
        grid_resolution: grid points per partial dependence.
        seed: random seed for the row sample, the baseline and the explainers.

    Returns:
        An :class:`Explanation`.

    Raises:
        ValidationError: non-numeric or missing feature values, a row out of range, an
            unknown feature, the tree explainer asked for a model it does not support.
    """
    matrix, names, frame = _matrix(data, features)
    if explainer not in ("auto", "tree", "kernel", "permutation"):
        raise ValidationError(
            f"explainer must be 'auto', 'tree', 'kernel' or 'permutation', not {explainer!r}."
        )
    is_tree = is_tree_model(model)
    if explainer == "tree" and not is_tree:
        raise ValidationError(
            f"The tree explainer does not apply to a {type(model).__name__}.",
            hint="use explainer='kernel' (or 'auto')",
        )
    method: Literal["tree", "kernel", "permutation"] = (
        ("tree" if is_tree else "kernel") if explainer == "auto" else explainer
    )
    for option, value, least in (("grid_resolution", grid_resolution, 2), ("top_k", top_k, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValidationError(f"{option} must be an integer >= {least}, not {value!r}.")
    n = matrix.shape[0]
    local_rows = [int(r) for r in rows]
    for r in local_rows:
        if not 0 <= r < n:
            raise ValidationError(f"Row {r} is out of range: the data has {n} rows.")
    rng = np.random.default_rng(seed)
    if sample is None or sample >= n:
        sampled = np.arange(n)
    elif sample < 1:
        raise ValidationError(f"sample must be at least 1 (or None), not {sample!r}.")
    else:
        sampled = np.sort(rng.choice(n, size=sample, replace=False))
    if baseline is None:
        background = matrix
    else:
        background, _, _ = _matrix(baseline, list(names) if frame else None)
        if background.shape[1] != matrix.shape[1]:
            raise ValidationError("The baseline must have the same columns as the data.")
    size = baseline_size if baseline_size is not None else (100 if method == "tree" else 10)
    if size < 1:
        raise ValidationError(f"baseline_size must be at least 1, not {size!r}.")

    if pdp_features is not None:
        for name in pdp_features:
            if name not in names:
                raise ValidationError(
                    f"No feature {name!r} for partial dependence.",
                    hint=did_you_mean(name, names),
                )
    predictor = _Predictor(
        model,
        names,
        as_frame=_wants_frame(model, frame),
        target=target,
    )
    explained = np.unique(np.concatenate([sampled, np.asarray(local_rows, dtype=np.int64)]))
    position = {int(r): i for i, r in enumerate(explained)}
    if method == "tree":
        take = rng.choice(background.shape[0], size=min(size, background.shape[0]), replace=False)
        values, base = _tree_shap(
            model, predictor, matrix[explained], background[np.sort(take)], names, frame
        )
    else:
        values, base = _sampled_shap(
            method, predictor, matrix[explained], background, size, num_samples, seed
        )
    global_values = values[[position[int(r)] for r in sampled]]
    magnitude = np.abs(global_values)
    importance = sorted(
        (
            FeatureImportance(
                feature=name,
                mean_abs=float(magnitude[:, j].mean()),
                median_abs=float(np.median(magnitude[:, j])),
                mean_square=float(np.mean(global_values[:, j] ** 2)),
            )
            for j, name in enumerate(names)
        ),
        key=lambda f: (-f.mean_abs, f.feature),
    )
    local: list[LocalExplanation] = []
    if local_rows:
        predictions = predictor(matrix[local_rows])
        for r, prediction in zip(local_rows, predictions, strict=True):
            row_values = values[position[r]]
            local.append(
                LocalExplanation(
                    row=r,
                    prediction=float(prediction),
                    base_value=base,
                    values={name: float(row_values[j]) for j, name in enumerate(names)},
                )
            )
    chosen = (
        list(pdp_features) if pdp_features is not None else [f.feature for f in importance[:top_k]]
    )
    pdps = []
    for name in chosen:
        pdps.append(
            _partial_dependence(
                predictor, matrix[sampled], names.index(name), name, grid_resolution
            )
        )
    return Explanation(
        method=method,
        output=predictor.output,
        features=names,
        base_value=base,
        importance=tuple(importance),
        local=tuple(local),
        partial_dependence=tuple(pdps),
        rows=int(sampled.size),
        num_samples=None if method == "tree" else num_samples,
        baseline_size=size,
        seed=seed,
    )
