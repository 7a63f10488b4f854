"""``session.clarify``: clarify's face on a Session, with its permission checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

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
from trivet.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

    from trivet.clarify._explain import Explanation
    from trivet.clarify.checks import CheckOutcome, CheckResult, ChecksSpec
    from trivet.clarify.report import Report, StoredReport
    from trivet.platform.session import Session

__all__ = ["Clarify"]


class Clarify:
    """Clarify bound to a session: bias, explanations, reports and reviews.

    Every call checks a permission on ``<project>/reports[/<name>]`` first:
    ``clarify:run`` to compute and store, ``clarify:read_report`` to read a report,
    ``clarify:review`` to sign one off.
    """

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

    # -- explanations ------------------------------------------------------------------
    def explain(self, model: Any, data: Any, **options: Any) -> Explanation:
        """Explain a model with SHAP (see :func:`trivet.clarify.explain`).

        Raises:
            PermissionDenied: the principal may not ``clarify:run`` on
                ``<project>/reports``.
        """
        from trivet.clarify._explain import explain

        self._session.require("clarify:run", f"{self._session.project}/reports")
        return explain(model, data, **options)

    # -- reports -------------------------------------------------------------------------
    def report(
        self,
        name: str,
        *,
        bias: BiasReport | Sequence[BiasReport] | None = None,
        checks: CheckOutcome | ChecksSpec | None = None,
        explanations: Explanation | None = None,
        data_digest: str | None = None,
        model_version: str | None = None,
        definition: str | None = None,
        rationale: str | None = None,
        allow_undefined: bool = False,
    ) -> StoredReport:
        """Build a fairness report and store it (JSON and HTML) with lineage.

        The report goes to the artifact folder ``<project>/reports/<name>``; lineage
        links it to the data set (``dataset → report``, ``evaluated_on``) and the model
        version (``model_version → report``, ``evaluated``) when given, and to its HTML
        page (``rendered_as``). The store is audited as ``clarify:report``.

        Args:
            name: the report's name (one path segment, e.g. ``"credit"``).
            bias: a bias report, or several on the same label.
            checks: checks already run (a :class:`CheckOutcome`), or a spec (e.g.
                ``{"DI": (0.8, 1.25)}``) run here against every bias report.
            explanations: an :class:`Explanation`.
            data_digest: the artifact digest (or unique prefix) of the data analysed;
                needs ``artifact:read`` on a folder holding it.
            model_version: ``"<group>/<version>"`` or its resource path; needs
                ``model:describe`` on it.
            definition: a proposed fairness definition (see
                :data:`trivet.clarify.report.DEFINITIONS`); a reviewer confirms or
                changes it with :meth:`sign_off`.
            rationale: why the proposed definition fits this use.
            allow_undefined: for a checks spec: count undefined values as passing.

        Returns:
            A :class:`StoredReport`: the JSON's digest, the HTML's, and the report.

        Raises:
            PermissionDenied: no ``clarify:run`` (or ``artifact:write``) on the report's
                folder; no read access to the data or the model version.
            ValidationError: a bad name, digest, model version or definition.
        """
        from trivet.clarify.checks import CheckOutcome, run_checks
        from trivet.clarify.report._document import build_document
        from trivet.clarify.report._store import _now, model_version_path, report_folder
        from trivet.clarify.report._store import store_report as store
        from trivet.clarify.results import BiasReport as Bias

        folder = report_folder(self._session, name)
        self._session.require("clarify:run", folder)
        resolved_data = None
        if data_digest is not None:
            resolved_data = self._session.artifacts.describe(data_digest).digest
        model_path = None
        if model_version is not None:
            model_path = model_version_path(self._session, model_version)
            self._session.require("model:describe", model_path)
        outcome: CheckOutcome | None = None
        if isinstance(checks, CheckOutcome):
            outcome = checks
        elif checks is not None:
            reports = [bias] if isinstance(bias, Bias) else list(bias or [])
            if not reports:
                raise ValidationError(
                    "Checks need bias results to check.", hint="pass bias=... as well"
                )
            results: list[CheckResult] = []
            for item in reports:
                results += run_checks(item, checks, allow_undefined=allow_undefined).results
            outcome = CheckOutcome(results=tuple(results), allow_undefined=allow_undefined)
        document = build_document(
            name,
            bias=bias,
            checks=outcome,
            explanations=explanations,
            created_at=_now(),
            created_by=self._session.principal.name,
            data_digest=resolved_data,
            model_version=model_path,
            definition=definition,
            rationale=rationale,
        )
        return store(self._session, name, document, folder=folder, model_path=model_path)

    def get_report(self, digest: str) -> Report:
        """Return a stored report by its digest (or a unique prefix of 8+ characters).

        Raises:
            PermissionDenied: no ``clarify:read_report`` on the report's folder.
            NotFound: no report has that digest.
        """
        from trivet.clarify.report._store import read_report

        return read_report(self._session, digest)

    def sign_off(
        self, report_digest: str, *, definition: str, rationale: str, tradeoffs: str
    ) -> StoredReport:
        """Sign a report off: the fairness definition chosen, why, and what it trades.

        Stores a new version of the report whose review section holds the definition,
        the rationale, the trade-offs accepted, the conflicting definitions side by side,
        and the signer and time; lineage links it to the signed version (``signed_off``)
        and the audit log records ``clarify:sign_off`` with the justification. The
        signed version is what a model registration should name as its fairness report.

        Args:
            report_digest: the report version signed (its digest or a unique prefix).
            definition: the fairness definition chosen for this use, e.g.
                ``"equal_opportunity"`` (see :data:`trivet.clarify.report.DEFINITIONS`).
            rationale: why that definition fits this use.
            tradeoffs: which conflicting definitions (and metrics) it accepts to fail,
                and why that is acceptable.

        Raises:
            PermissionDenied: no ``clarify:review`` on ``<project>/reports/<name>``; a
                service principal; or, under the four-eyes policy, the reviewer stored
                the report.
            Conflict: the report is signed off already.
            ValidationError: an unknown definition, an empty rationale or trade-offs.
        """
        from trivet.clarify.report._store import sign_off

        return sign_off(
            self._session,
            report_digest,
            definition=definition,
            rationale=rationale,
            tradeoffs=tradeoffs,
        )
