"""``bias_check``: a model's bias metrics and checks, stored as a fairness report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError
from trivet.pipelines.step import step
from trivet.pipelines.steps._data import check_frame, data_digest, model_features

if TYPE_CHECKING:
    import pandas as pd

    from trivet.clarify import Bootstrap, CheckOutcome, Facet, Intersection, Label, Mode
    from trivet.clarify.checks import ChecksSpec
    from trivet.platform.session import Session

__all__ = ["bias_check", "summarize"]

PREDICTION_COLUMN = "prediction"


def _python(value: Any) -> Any:
    """Return a NumPy scalar as its Python value (a label class, say)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "shape", None) == () else value


def summarize(outcome: CheckOutcome) -> str:
    """Return one line saying how the checks went, with each failure's reason."""
    total, failed = len(outcome.results), outcome.failures
    if not failed:
        return f"all {total} fairness checks passed"
    reasons = "; ".join(r.reason for r in failed)
    return f"{len(failed)} of {total} fairness checks failed: {reasons}"


def _prediction_column(frame: pd.DataFrame) -> str:
    name, n = PREDICTION_COLUMN, 1
    while name in frame.columns:
        n += 1
        name = f"{PREDICTION_COLUMN}_{n}"
    return name


@step(cache_per_principal=True, writes=["reports/{report_name}"])  # it stores a report
def bias_check(
    model: Any,
    data: pd.DataFrame,
    *,
    label: str | Label,
    facet: str | Facet | Intersection,
    checks: ChecksSpec,
    report_name: str,
    session: Session,
    positive: Any = None,
    features: Sequence[str] | None = None,
    group_variable: str | None = None,
    metrics: Iterable[str] | None = None,
    bootstrap: Bootstrap | int | None = None,
    explain: bool | Mapping[str, Any] = False,
    definition: str | None = None,
    rationale: str | None = None,
    allow_undefined: bool = False,
    mode: Mode = "default",
    min_group_size: int = 30,
) -> dict[str, Any]:
    """Check a model's predictions for bias; store the fairness report; return the verdict.

    The model predicts on ``data``; ``trivet.clarify`` computes the pre-training and
    post-training bias metrics of the label and those predictions for the facet, runs
    ``checks`` on them, and stores the report (JSON and HTML, with lineage to the data)
    as ``<project>/reports/<report_name>`` through ``Clarify(session).report``. Needs
    ``clarify:run`` on ``<project>/reports`` (and ``artifact:write`` on the report's
    folder, which the step declares it writes): a principal who may not run clarify
    cannot run it through a pipeline.

    Args:
        model: a fitted classifier.
        data: the data to check, with the label, the facet and the model's features.
        label: the label column (positive: ``positive``, default the model's last
            class, ``classes_[-1]``) or a :class:`~trivet.clarify.Label`.
        facet: a column (each value against the rest) or a
            :class:`~trivet.clarify.Facet` / :class:`~trivet.clarify.Intersection`.
        checks: the thresholds, e.g. ``{"DI": (0.8, 1.25), "DPPL": (-0.1, 0.1)}`` or
            :class:`~trivet.clarify.Check` objects (see :func:`trivet.clarify.run_checks`).
        report_name: the report's name (one path segment, e.g. ``"credit"``).
        session: the execution's session (given by the engine).
        positive: the positive label value(s), when ``label`` is a column name.
        features: the columns the model predicts from (default: those it was fitted
            on); their numeric ones are FT's neighbour space.
        group_variable: strata for CDDL and CDDPL.
        metrics: the metrics to compute (default: all of both stages).
        bootstrap: resamples, or :class:`~trivet.clarify.Bootstrap` settings, for
            confidence intervals (needed by checks ``on="interval"``).
        explain: add SHAP explanations to the report; a dict gives
            :func:`trivet.clarify.explain`'s options.
        definition, rationale: the fairness definition proposed for review, and why.
        allow_undefined: an undefined metric passes its check (by default it fails).
        mode: ``"default"`` or ``"clarify_compatible"``.
        min_group_size: counts below this are flagged in the report's warnings.

    Returns:
        JSON: ``passed`` (every check passed — what a gate reads), ``summary`` (one
        line, with the failures' reasons), ``failures`` (their reasons), ``checks``
        (each check's result), ``metrics`` (``{metric: {group: value}}``, undefined as
        null), ``report`` and ``html`` (the report's digests; ``report`` is what
        :func:`register_model` records), ``report_name``, ``rows`` and ``warnings``.

    Raises:
        PermissionDenied: no ``clarify:run`` (or ``artifact:write``) on the reports.
        ValidationError: a bad configuration (an unknown column, facet value or metric).
    """
    from trivet.clarify import Clarify, Facet, Label, Prediction, run_checks
    from trivet.clarify.results import json_number

    clarify = Clarify(session)
    frame = check_frame(data, step="bias_check")
    if isinstance(label, str):
        if positive is None:
            classes = getattr(model, "classes_", None)
            if classes is None or len(classes) < 2:
                raise ValidationError(
                    f"Step 'bias_check' cannot tell the positive value of {label!r}.",
                    hint="pass positive=... or label=Label(column, positive=...)",
                )
            positive = _python(classes[-1])
        label = Label(label, positive=positive)
    if isinstance(facet, str):
        facet = Facet(facet)
    columns = model_features(model, frame, label=label.column, features=features, step="bias_check")
    scored = frame.copy(deep=False)
    predicted = _prediction_column(frame)
    scored[predicted] = model.predict(frame[columns])
    numeric = [c for c in columns if scored[c].dtype.kind in "biuf"]
    report = clarify.bias(
        scored,
        label=label,
        facet=facet,
        prediction=Prediction(predicted),
        group_variable=group_variable,
        features=numeric or None,
        metrics=metrics,
        mode=mode,
        bootstrap=bootstrap,
        min_group_size=min_group_size,
    )
    outcome = run_checks(report, checks, allow_undefined=allow_undefined)
    explanation = None
    if explain:
        options = dict(explain) if isinstance(explain, Mapping) else {}
        explanation = clarify.explain(model, frame[columns], **options)
    stored = clarify.report(
        report_name,
        bias=report,
        checks=outcome,
        explanations=explanation,
        data_digest=data_digest(session, frame, label="bias_check data"),
        definition=definition,
        rationale=rationale,
    )
    values: dict[str, dict[str, Any]] = {}
    for v in report.values:
        values.setdefault(v.metric, {})[v.group] = json_number(v.value)
    return {
        "passed": outcome.passed,
        "summary": summarize(outcome),
        "failures": [r.reason for r in outcome.failures],
        "checks": [r.to_dict() for r in outcome.results],
        "metrics": values,
        "report": stored.digest,
        "html": stored.html_digest,
        "report_name": report_name,
        "rows": report.rows,
        "warnings": list(report.warnings),
    }
