"""Data frames handed to the built-in steps: choosing columns, and their artifact digests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from trivet.platform.session import Session

__all__ = ["check_frame", "data_digest", "feature_columns", "model_features", "require_columns"]


def check_frame(data: Any, *, step: str, what: str = "data") -> pd.DataFrame:
    """Return ``data`` as a pandas DataFrame (a pyarrow Table is converted).

    Raises:
        ValidationError: anything else.
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    to_pandas = getattr(data, "to_pandas", None)
    if callable(to_pandas) and type(data).__module__.startswith("pyarrow"):
        frame = to_pandas()
        assert isinstance(frame, pd.DataFrame)
        return frame
    raise ValidationError(
        f"The {what} of step {step!r} must be a pandas DataFrame, not "
        f"{type(data).__module__}.{type(data).__qualname__}.",
        hint="pass the output of a step that returns a DataFrame",
    )


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, step: str, role: str) -> None:
    """Raise ValidationError naming the first of ``columns`` that ``frame`` lacks."""
    known = [str(c) for c in frame.columns]
    for column in columns:
        if column not in frame.columns:
            raise ValidationError(
                f"Step {step!r}: the {role} column {column!r} is not in the data.",
                hint=did_you_mean(str(column), known) or f"columns: {', '.join(known)}",
            )


def feature_columns(
    frame: pd.DataFrame,
    *,
    label: str,
    features: Sequence[str] | None,
    drop: Iterable[str],
    step: str,
) -> list[str]:
    """Return the feature columns: ``features``, or every column but the label and ``drop``."""
    if isinstance(features, str) or isinstance(drop, str):
        raise ValidationError(
            f"Step {step!r}: features and drop take lists of column names, not a string.",
            hint=f"e.g. drop=[{drop!r}]" if isinstance(drop, str) else "e.g. features=['a', 'b']",
        )
    dropped = list(drop)
    require_columns(frame, [label], step=step, role="label")
    require_columns(frame, dropped, step=step, role="dropped")
    if features is None:
        chosen = [str(c) for c in frame.columns if c != label and c not in dropped]
    else:
        chosen = [str(c) for c in features if c not in dropped]
        require_columns(frame, chosen, step=step, role="feature")
        if label in chosen:
            raise ValidationError(
                f"Step {step!r}: the label {label!r} is among the features.",
                hint="leave it out of features=",
            )
    if not chosen:
        raise ValidationError(
            f"Step {step!r} has no feature columns left.", hint="check features= and drop="
        )
    return chosen


def model_features(
    model: Any, frame: pd.DataFrame, *, label: str, features: Sequence[str] | None, step: str
) -> list[str]:
    """Return the columns to predict from: ``features``, else those the model was fitted on.

    A scikit-learn estimator fitted on a DataFrame records them (``feature_names_in_``);
    otherwise every column but the label.
    """
    if features is None:
        fitted = getattr(model, "feature_names_in_", None)
        if fitted is not None:
            features = [str(c) for c in fitted]
    return feature_columns(frame, label=label, features=features, drop=(), step=step)


def data_digest(session: Session, frame: pd.DataFrame, *, label: str) -> str | None:
    """Return the artifact digest of ``frame`` in the execution's folder (None outside one).

    Storing is content-addressed and Parquet output is deterministic, so a frame that a
    step of the execution returned (or read from the cache) gets that output's digest:
    lineage written against it joins the engine's.
    """
    if session.run_id is None:
        return None
    folder = f"{session.project}/runs/{session.run_id}"
    return session.artifacts.put_dataframe(frame, folder=folder, label=label).digest
