"""``evaluate``: a classifier's quality metrics on held-out data, as JSON."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError
from trivet.pipelines.step import step
from trivet.pipelines.steps._data import check_frame, model_features

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["evaluate"]


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


@step
def evaluate(
    model: Any,
    data: pd.DataFrame,
    *,
    label: str,
    features: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score a fitted classifier on ``data``; return its metrics as JSON.

    ``accuracy``, ``precision``, ``recall`` and ``f1`` (for two classes, of the positive
    class — the model's last, ``classes_[-1]``; for more, their unweighted mean over
    classes), and when the model has ``predict_proba``: ``roc_auc`` (one-vs-rest for
    more than two classes) and ``log_loss``. A metric that is undefined
    on this data (``roc_auc`` with one class present) is left out. Every value is a
    finite number, so the output can be registered as a model version's metrics and
    read in conditions: ``metrics["roc_auc"] >= 0.8``.

    Args:
        model: a fitted classifier.
        data: the evaluation data, with the label column.
        label: the label column.
        features: the columns to predict from (default: those the model was fitted on,
            else every column but the label).

    Returns:
        ``{"accuracy": ..., "precision": ..., "recall": ..., "f1": ..., "roc_auc": ...,
        "log_loss": ...}``.

    Raises:
        ValidationError: a missing column, or data without rows.
    """
    from sklearn import metrics as skm

    frame = check_frame(data, step="evaluate")
    columns = model_features(model, frame, label=label, features=features, step="evaluate")
    if len(frame) == 0:
        raise ValidationError("Step 'evaluate' got data without rows.")
    x, y = frame[columns], frame[label]
    predicted = model.predict(x)
    classes = list(getattr(model, "classes_", sorted(set(y))))
    binary = len(classes) == 2
    average: Any = "binary" if binary else "macro"
    positive = classes[-1] if binary else 1
    out: dict[str, Any] = {
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(
            y, predicted, average=average, pos_label=positive, zero_division=0
        ),
        "recall": skm.recall_score(
            y, predicted, average=average, pos_label=positive, zero_division=0
        ),
        "f1": skm.f1_score(y, predicted, average=average, pos_label=positive, zero_division=0),
    }
    if callable(getattr(model, "predict_proba", None)):
        proba = model.predict_proba(x)
        with contextlib.suppress(ValueError):  # undefined: one class present
            out["roc_auc"] = (
                skm.roc_auc_score(y, proba[:, 1])
                if binary
                else skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
            )
        with contextlib.suppress(ValueError):
            out["log_loss"] = skm.log_loss(y, proba, labels=classes)
    metrics = {k: _finite(v) for k, v in out.items()}
    return {k: v for k, v in sorted(metrics.items()) if v is not None}
