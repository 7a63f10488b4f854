"""Fairness reports: ``analysis.json``-shaped JSON, a self-contained HTML page, a review.

- :func:`build_report` assembles a :class:`Report` from bias results, checks and
  explanations (no session, nothing stored);
- ``Clarify(session).report(...)`` stores one in ``<project>/reports/<name>`` with
  lineage, ``Clarify(session).get_report(digest)`` reads it back and
  ``Clarify(session).sign_off(...)`` records a reviewer's fairness definition, rationale
  and trade-offs as a new version.

The JSON format (version ``1.0``) is documented in docs/clarify.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from trivet.clarify.report._document import FORMAT, FORMAT_VERSION, Report, build_document
from trivet.clarify.report._review import DEFINITIONS, FairnessDefinition
from trivet.clarify.report._store import ReportEntry, StoredReport

if TYPE_CHECKING:
    from trivet.clarify._explain import Explanation
    from trivet.clarify.checks import CheckOutcome
    from trivet.clarify.results import BiasReport

__all__ = [
    "DEFINITIONS",
    "FORMAT",
    "FORMAT_VERSION",
    "FairnessDefinition",
    "Report",
    "ReportEntry",
    "StoredReport",
    "build_report",
]


def build_report(
    name: str,
    *,
    bias: BiasReport | Sequence[BiasReport] | None = None,
    checks: CheckOutcome | None = None,
    explanations: Explanation | None = None,
    created_at: str | None = None,
    created_by: str | None = None,
    data_digest: str | None = None,
    model_version: str | None = None,
    definition: str | None = None,
    rationale: str | None = None,
) -> Report:
    """Return a :class:`Report` built from results, without storing it.

    Args:
        name: the report's name.
        bias: a bias report, or several (e.g. one per facet) on the same label.
        checks: the outcome of :func:`trivet.clarify.run_checks`.
        explanations: the result of :func:`trivet.clarify.explain`.
        created_at, created_by: when and by whom (filled in when stored).
        data_digest, model_version: what the report is about (lineage when stored).
        definition: a proposed fairness definition (see :data:`DEFINITIONS`).
        rationale: why that definition fits this use.

    Raises:
        ValidationError: bias reports on different labels, an unknown definition.
    """
    return Report(
        document=build_document(
            name,
            bias=bias,
            checks=checks,
            explanations=explanations,
            created_at=created_at,
            created_by=created_by,
            data_digest=data_digest,
            model_version=model_version,
            definition=definition,
            rationale=rationale,
        )
    )
