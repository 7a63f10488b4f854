"""The 21 bias metrics SageMaker Clarify defines, as functions of the count table.

Pre-training (need the label only): CI, DPL, KL, JS, LP, TVD, KS, CDDL.
Post-training (need predictions): DPPL, DI, DCA, DCR, RD, SD, DAR, DRR, AD, TE, CDDPL,
FT, GE. Each function's docstring gives its formula and range.
"""

from __future__ import annotations

from collections.abc import Iterable

from trivet.clarify.config import Stage, metric_key
from trivet.clarify.metrics._spec import MetricSpec
from trivet.clarify.metrics.posttraining import SPECS as POSTTRAINING
from trivet.clarify.metrics.pretraining import SPECS as PRETRAINING
from trivet.errors import ValidationError, did_you_mean

__all__ = ["ALL", "POSTTRAINING", "PRETRAINING", "MetricSpec", "select"]

ALL: dict[str, MetricSpec] = {spec.name: spec for spec in (*PRETRAINING, *POSTTRAINING)}


def select(names: Iterable[str] | None, stages: tuple[Stage, ...]) -> tuple[MetricSpec, ...]:
    """Return the specs named (case-insensitive; ``DCAcc`` = ``DCA``), or every one.

    Raises:
        ValidationError: a name is unknown, or belongs to a stage not being computed.
    """
    if names is None:
        return tuple(spec for spec in ALL.values() if spec.stage in stages)
    if isinstance(names, str):
        names = [names]
    chosen: list[MetricSpec] = []
    for raw in names:
        key = metric_key(str(raw))
        spec = ALL.get(key)
        if spec is None:
            raise ValidationError(
                f"Unknown bias metric {raw!r}.",
                hint=did_you_mean(key, ALL) or f"known: {', '.join(ALL)}",
            )
        if spec.stage not in stages:
            stage = spec.stage.replace("_", "-")
            raise ValidationError(
                f"{spec.name} is a {stage} metric and cannot be computed here.",
                hint="post-training metrics need predictions: "
                "use posttraining_bias(..., prediction=...)",
            )
        if spec not in chosen:
            chosen.append(spec)
    return tuple(chosen)
