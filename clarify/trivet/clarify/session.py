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
    from trivet.clarify.monitor import Baseline, MonitorResult, RangesSpec
    from trivet.clarify.report import Report, ReportEntry, StoredReport
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

    def reports(self, name: str | None = None) -> list[ReportEntry]:
        """Return the stored report versions you may read (of one report, or all), newest first.

        Each entry names a version (digest, name, when, who); read its document with
        :meth:`get_report`. Versions you lack ``clarify:read_report`` on are left out.

        Raises:
            ValidationError: a malformed report name.
        """
        from trivet.clarify.report._store import list_reports

        return list_reports(self._session, name)

    def report_html(self, digest: str) -> str:
        """Return a stored report's self-contained HTML page (the one stored with it).

        Raises:
            PermissionDenied: no ``clarify:read_report`` on the report's folder.
            NotFound: no report has that digest.
        """
        from trivet.clarify.report._store import read_report_html

        return read_report_html(self._session, digest)

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

    # -- drift monitoring ----------------------------------------------------------------
    def baseline(
        self,
        name: str,
        *,
        bias: BiasReport | Sequence[BiasReport],
        explanations: Explanation | None = None,
        ranges: RangesSpec | None = None,
        margin: float = 0.5,
        metrics: Iterable[str] | None = None,
        ndcg_threshold: float = 0.9,
        data_digest: str | None = None,
        model_version: str | None = None,
    ) -> Baseline:
        """Store bias results (and explanations) as a baseline to monitor new data against.

        The baseline is a fairness report (JSON and HTML in ``<project>/reports/<name>``,
        lineage as :meth:`report`, audit row ``clarify:baseline``) with a ``baseline``
        section: the configuration that recomputes the same metrics on other data, and
        an allowed range per monitored metric and facet group. A range is given in
        ``ranges``, or derived from the baseline's bootstrap interval ``[lo, hi]`` as
        ``[lo - margin*(hi - lo), hi + margin*(hi - lo)]``; a metric with neither is
        not monitored (``Baseline.unmonitored`` says why).

        Args:
            name: the report's name (one path segment).
            bias: bias results on the baseline data, computed with ``bootstrap=`` for
                derived ranges; several (e.g. one per facet) on the same label.
            explanations: an :class:`Explanation` of the model on the baseline data: its
                global importance is the reference for explanation drift.
            ranges: allowed ranges, e.g. ``{"DI": (0.8, 1.25)}`` (every group) or
                :class:`~trivet.clarify.monitor.AllowedRange` objects (one facet or
                group); they take precedence over derived ones.
            margin: how far a derived range extends beyond the interval on each side,
                in interval widths (>= 0).
            metrics: monitor only these metrics (default: every one with a range).
            ndcg_threshold: flag explanation drift when NDCG falls below this.
            data_digest: the artifact digest of the baseline data (lineage).
            model_version: the model version evaluated, ``"<group>/<version>"``.

        Returns:
            The stored :class:`~trivet.clarify.monitor.Baseline`.

        Raises:
            PermissionDenied: no ``clarify:run`` (or ``artifact:write``) on the folder.
            ValidationError: no metric would be monitored, a range matching no metric,
                a rule value JSON cannot hold.
        """
        from trivet.clarify.monitor import create_baseline

        return create_baseline(
            self._session,
            name,
            bias=bias,
            explanations=explanations,
            ranges=ranges,
            margin=margin,
            metrics=metrics,
            ndcg_threshold=ndcg_threshold,
            data_digest=data_digest,
            model_version=model_version,
        )

    def get_baseline(self, digest: str) -> Baseline:
        """Return a stored baseline by its digest (or a unique prefix of 8+ characters).

        Raises:
            PermissionDenied: no ``clarify:read_report`` on its folder.
            NotFound: no report has that digest.
            ValidationError: the report is not a baseline.
        """
        from trivet.clarify.monitor import read_baseline

        return read_baseline(self._session, digest)

    def monitor(
        self,
        batch: pd.DataFrame,
        baseline: Baseline | str,
        *,
        model: Any = None,
        explanations: Explanation | None = None,
        bootstrap: Bootstrap | int | None = None,
        name: str | None = None,
        store: bool = True,
        data_digest: str | None = None,
        model_version: str | None = None,
    ) -> MonitorResult:
        """Compute the baseline's metrics on a new batch and report violations.

        The batch needs the baseline's columns (label, facets, prediction, group
        variable), e.g. logged predictions joined with the ground truth that came later.
        Each monitored metric is computed as in the baseline, with bootstrap intervals
        (the baseline's settings unless ``bootstrap`` is given), and is a
        **violation** when its whole confidence interval ``[l, u]`` lies outside its
        allowed range ``[low, high]`` (``u < low`` or ``l > high``); an interval that
        overlaps the range, even when the point estimate lies outside, is not. A
        metric without a live interval is ``undefined`` and not a violation.

        With ``model`` (or a ready ``explanations``) and a baseline that has
        explanations, the batch is explained the baseline's way and the ranking of
        global SHAP importance is compared with the baseline's by
        :func:`~trivet.clarify.monitor.ndcg` (relevance: the baseline's mean |SHAP|;
        discount ``log2(rank + 1)``; normalised by the ideal ordering); NDCG below the
        baseline's ``ndcg_threshold`` is a violation too.

        The run is stored as a report in ``<project>/reports/<name>`` (default: the
        baseline's name) holding the live metrics and a ``monitoring`` section, with
        lineage ``baseline → run`` (``baseline_for``) and an audit row
        ``clarify:monitor``.

        Args:
            batch: the new data.
            baseline: a :class:`~trivet.clarify.monitor.Baseline` or its digest.
            model: the model, to explain the batch for explanation drift.
            explanations: the batch's explanation, computed by you (instead of model).
            bootstrap: resamples or :class:`Bootstrap` settings for the live intervals.
            name: the report name the run is stored under.
            store: store the run (False: compute and return it only).
            data_digest: the artifact digest of the batch (lineage).
            model_version: the model version monitored, ``"<group>/<version>"``.

        Returns:
            A :class:`~trivet.clarify.monitor.MonitorResult`; ``passed`` is False when
            there is a violation.

        Raises:
            PermissionDenied: no ``clarify:read_report`` on the baseline's folder, or no
                ``clarify:run`` (or ``artifact:write``) on the run's.
            ValidationError: the batch lacks a column or a facet value, or the baseline
                has no explanations while ``model`` is given.
        """
        from trivet.clarify.monitor import run_monitor

        return run_monitor(
            self._session,
            batch,
            baseline,
            model=model,
            explanations=explanations,
            bootstrap=bootstrap,
            name=name,
            store=store,
            data_digest=data_digest,
            model_version=model_version,
        )
