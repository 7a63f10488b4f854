"""``register_model``: a model version in the registry, with its gate and fairness report."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError
from trivet.pipelines.step import step
from trivet.pipelines.steps._data import check_frame, data_digest

if TYPE_CHECKING:
    import pandas as pd

    from trivet.platform.session import Session

__all__ = ["register_model"]


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Return the finite numbers among ``metrics`` (what the registry records)."""
    return {
        str(k): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def _params(model: Any) -> dict[str, Any]:
    """Return the model's constructor parameters as JSON (others by their repr)."""
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return {}
    out: dict[str, Any] = {}
    for key, value in sorted(get_params(deep=False).items()):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            value = repr(value)[:200]
        out[str(key)] = value
    return out


BASELINE_CENTROIDS = 10


def _explanation_baseline(model: Any, frame: pd.DataFrame | None) -> list[list[float]] | None:
    """Return k-means centroids of the training set's model features, or None.

    The server explains a prediction against this background (kernel SHAP, or
    interventional tree SHAP). Centroids, not rows: the signature is visible to whoever
    may describe the model, and ten cluster means reveal no applicant.
    """
    names = getattr(model, "feature_names_in_", None)
    if frame is None or names is None or not set(names) <= set(frame.columns):
        return None
    features = frame[list(names)]
    if not all(kind in "biuf" for kind in features.dtypes.map(lambda d: d.kind)):
        return None  # non-numeric inputs: an encoding pipeline explains itself
    features = features.dropna()
    if features.empty:
        return None
    from sklearn.cluster import KMeans

    sample = features.sample(min(len(features), 5_000), random_state=0).to_numpy(dtype=float)
    k = min(BASELINE_CENTROIDS, len(sample))
    centres = KMeans(n_clusters=k, n_init=3, random_state=0).fit(sample).cluster_centers_
    return [[float(v) for v in row] for row in centres]


def _gate(bias: Mapping[str, Any] | None) -> tuple[str, str | None]:
    if bias is None:
        return "none", None
    if not isinstance(bias, Mapping) or not isinstance(bias.get("passed"), bool):
        raise ValidationError(
            "register_model's bias= takes the output of a bias_check step.",
            hint="register_model(model, name=..., bias=bias) with bias = bias_check(...)",
        )
    report = bias.get("report")
    if not isinstance(report, str):
        raise ValidationError("The bias_check output holds no report digest.")
    return ("passed" if bias["passed"] else "failed"), report


@step(cache_per_principal=True, writes=["models/{name}"])  # it stands for a registration
def register_model(
    model: Any,
    *,
    name: str,
    session: Session,
    metrics: Mapping[str, Any] | None = None,
    bias: Mapping[str, Any] | None = None,
    training_set: pd.DataFrame | None = None,
    params: Mapping[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """Register ``model`` as a new version of model group ``name``, pending approval.

    Through ``session.registry.register``: needs ``model:register`` on
    ``<project>/models/<name>`` (which the step declares it writes, so the run token
    covers it), so a principal who may not register cannot register through a
    pipeline. The version records the run, the metrics, the fairness report the model
    was gated on (``bias["report"]``) and the gate's outcome
    (``gate_status="passed"`` or ``"failed"``, from ``bias["passed"]``). It starts
    ``PendingManualApproval``; the registry never approves a version whose gate failed.

    The step is cached like any other: a rerun with the same model, metrics and report
    returns the version registered before instead of a duplicate awaiting approval.
    (Use ``register_model.with_options(cache=False)`` to register anew every run.)

    Args:
        model: the fitted model.
        name: the model group (created if missing).
        session: the execution's session (given by the engine).
        metrics: evaluation metrics, e.g. the output of :func:`evaluate`; its finite
            numbers are recorded.
        bias: the output of :func:`bias_check`: its report and verdict.
        training_set: the data the model was trained on, for lineage
            (``dataset → model_version``, ``trained_on``) and, where it holds the
            model's (numeric) features, for the explanation baseline the server's
            ``predict`` endpoint explains against: 10 k-means centroids of them, kept in
            the version's signature (cluster means, never training rows).
        params: training parameters to record (default: the model's ``get_params``).
        description: free text.

    Returns:
        JSON: ``name``, ``version``, ``resource``, ``status``, ``gate_status``,
        ``fairness_report`` and ``artifact`` (the stored model's digest).

    Raises:
        PermissionDenied: no ``model:register`` on the model group.
        ValidationError: ``bias`` is not a bias_check output, or bad metrics or params.
    """
    from trivet.platform.artifacts._models import model_signature
    from trivet.platform.lineage import Node

    gate_status, report = _gate(bias)
    frame = None if training_set is None else check_frame(training_set, step="register_model")
    signature = model_signature(model)
    baseline = _explanation_baseline(model, frame)
    if baseline is not None:
        signature["baseline"] = baseline
    version = session.registry.register(
        name,
        model,
        signature=signature,
        params=_params(model) if params is None else params,
        metrics=_numbers(metrics or {}),
        fairness_report=report,
        gate_status=gate_status,
        description=description,
    )
    if frame is not None:
        digest = data_digest(session, frame, label="training set")
        if digest is not None:
            session.lineage.add(
                Node(kind="dataset", id=digest),
                Node(kind="model_version", id=version.resource),
                "trained_on",
            )
    return {
        "name": version.name,
        "version": version.version,
        "resource": version.resource,
        "status": version.status.value,
        "gate_status": version.gate_status.value,
        "fairness_report": version.fairness_report_digest,
        "artifact": version.artifact_digest,
    }
