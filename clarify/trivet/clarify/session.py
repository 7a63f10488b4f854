"""``session.clarify``: clarify's face on a Session, with its permission checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from trivet.clarify.bias import LabelDistribution, analyze
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
from trivet.clarify.results import BiasReport

if TYPE_CHECKING:
    import pandas as pd

    from trivet.platform.session import Session

__all__ = ["Clarify"]


class Clarify:
    """Bias analysis bound to a session; every call checks ``clarify:run`` first."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __repr__(self) -> str:
        return f"<trivet.clarify.Clarify project={self._session.project!r}>"

    def bias(
        self,
        df: pd.DataFrame,
        *,
        label: Label,
        facet: Facet | Intersection,
        prediction: Prediction | None = None,
        group_variable: str | None = None,
        features: Sequence[str] | None = None,
        metrics: Iterable[str] | None = None,
        mode: Mode = "default",
        missing: MissingPolicy = "error",
        label_distribution: LabelDistribution = "binary",
        divergence_smoothing: float = 0.0,
        bootstrap: Bootstrap | int | None = None,
        min_group_size: int = 30,
    ) -> BiasReport:
        """Compute pre-training metrics, and post-training ones when ``prediction`` is given.

        The arguments are those of :func:`trivet.clarify.pretraining_bias` and
        :func:`trivet.clarify.posttraining_bias`.

        Raises:
            PermissionDenied: the principal may not ``clarify:run`` on
                ``<project>/reports``.
            ValidationError: a bad configuration (see ``pretraining_bias``).
        """
        self._session.require("clarify:run", f"{self._session.project}/reports")
        stages: tuple[Stage, ...] = (
            ("pre_training",) if prediction is None else ("pre_training", "post_training")
        )
        return analyze(
            df,
            label=label,
            facet=facet,
            stages=stages,
            prediction=prediction,
            group_variable=group_variable,
            features=features,
            metrics=metrics,
            mode=mode,
            missing=missing,
            label_distribution=label_distribution,
            divergence_smoothing=divergence_smoothing,
            bootstrap=bootstrap,
            min_group_size=min_group_size,
        )
