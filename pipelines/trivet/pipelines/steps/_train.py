"""``train``: fit a fresh copy of any scikit-learn-style estimator on a training set."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError
from trivet.pipelines._expr import Expr
from trivet.pipelines.errors import PipelineDefinitionError
from trivet.pipelines.step import Step, StepOptions
from trivet.pipelines.steps._data import check_frame, feature_columns
from trivet.pipelines.steps._estimator import EstimatorSpec, split_estimator

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["train"]


class _TrainStep(Step):
    """The ``train`` step: inside a pipeline, it turns an estimator into its spec.

    An estimator object has no canonical value, so as an argument it would force the
    step to run every time. Its :class:`EstimatorSpec` does: the step is keyed on the
    class, the parameters and the class's package version. Parameters that are
    pipeline values move to ``params``, resolved when the execution runs.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from trivet.pipelines.dag import current_trace

        if current_trace() is None:
            return self.fn(*args, **kwargs)
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError:
            return super().__call__(*args, **kwargs)  # the trace names the mistake
        estimator = bound.arguments.get("estimator")
        if estimator is not None and not isinstance(estimator, Expr | EstimatorSpec):
            try:
                spec, lifted = split_estimator(estimator)
            except ValidationError as exc:
                raise PipelineDefinitionError(
                    f"Step {self.name!r}: {exc.message}", hint=exc.hint
                ) from None
            bound.arguments["estimator"] = spec
            if lifted:
                given = bound.arguments.get("params")
                if isinstance(given, Expr):
                    raise PipelineDefinitionError(
                        f"Step {self.name!r} gets params= from a pipeline value and an "
                        f"estimator built from pipeline values ({', '.join(sorted(lifted))}).",
                        hint="give the estimator literal values, or all of them in params=",
                    )
                bound.arguments["params"] = {**lifted, **dict(given or {})}
        return super().__call__(*bound.args, **bound.kwargs)

    def with_options(self, **changes: Any) -> Step:
        """Return this step with some options changed (e.g. another name)."""
        if "retry_on" in changes and isinstance(changes["retry_on"], type):
            changes["retry_on"] = (changes["retry_on"],)
        return _TrainStep(self.fn, replace(self.options, **changes))


def _train_step(fn: Any) -> _TrainStep:
    return _TrainStep(fn, StepOptions(name="train"))


@_train_step
def train(
    training_set: pd.DataFrame,
    *,
    estimator: Any,
    label: str,
    features: Sequence[str] | None = None,
    drop: Iterable[str] = (),
    params: Mapping[str, Any] | None = None,
) -> Any:
    """Fit a fresh copy of ``estimator`` on ``training_set``; return the fitted model.

    The estimator given is never fitted itself: the step builds a new one from its class
    and parameters (an :class:`EstimatorSpec`, which is also how it enters the cache
    key), sets ``params`` on it (``set_params``: ``{"C": 0.5}``, ``{"clf__C": 0.5}``) and
    fits it on the features and the label. The model is stored with skops.

    Args:
        training_set: the training data, one row per example.
        estimator: an estimator instance (``LogisticRegression(C=0.5)``) or an
            :class:`EstimatorSpec`. Inside a pipeline its parameters may be pipeline
            parameters (``LogisticRegression(C=c)``).
        label: the label column.
        features: the feature columns (default: every column but the label and ``drop``).
        drop: columns never to train on: identifiers, event times, protected attributes.
        params: parameters set on the estimator before fitting.

    Returns:
        The fitted estimator.

    Raises:
        ValidationError: a missing column, no features left, or a column the estimator
            cannot take (its message says which).
    """
    spec, lifted = split_estimator(estimator)
    if lifted:
        raise ValidationError(
            f"The estimator's parameters {sorted(lifted)} are unresolved pipeline values.",
            hint="call train inside the @pipeline function, where they are resolved",
        )
    frame = check_frame(training_set, step="train", what="training set")
    columns = feature_columns(frame, label=label, features=features, drop=drop, step="train")
    model = spec.build()
    if params:
        model.set_params(**dict(params))
    try:
        model.fit(frame[columns], frame[label])
    except (ValueError, TypeError) as exc:
        kinds = {str(c): str(frame[c].dtype) for c in columns}
        odd = [c for c, k in kinds.items() if k in ("object", "string", "category", "str")]
        hint = (
            f"non-numeric feature columns: {', '.join(odd)}; drop them (drop=[...]) or "
            "encode them in a scikit-learn Pipeline"
            if odd
            else "check the training set's columns and the estimator's parameters"
        )
        raise ValidationError(
            f"Fitting {spec.cls.rpartition(':')[2]} failed: {exc}", hint=hint
        ) from exc
    return model
