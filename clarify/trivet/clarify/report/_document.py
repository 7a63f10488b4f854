"""The report document: ``analysis.json``-shaped JSON, version ``1.0`` of trivet's format.

The layout follows SageMaker Clarify's ``analysis.json`` so that Clarify users can diff
the two: ``pre_training_bias_metrics`` and ``post_training_bias_metrics`` each hold
``label``, ``label_value_or_threshold`` and ``facets`` (facet column → list of
``{value_or_threshold, metrics: [{name, description, value}]}``), and
``explanations`` holds ``<method>_shap.label0.{global_shap_values, expected_value}``
and ``pdp``. trivet adds fields Clarify does not have (``sizes``, ``error``,
``interval``, ``checks``, ``review``, ...); docs/clarify.md documents every one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trivet.clarify.report._review import review_section
from trivet.errors import ValidationError

if TYPE_CHECKING:
    from trivet.clarify._explain import Explanation
    from trivet.clarify.checks import CheckOutcome
    from trivet.clarify.results import BiasReport

__all__ = ["FORMAT", "FORMAT_VERSION", "Report", "build_document", "canonical_json"]

FORMAT = "trivet.clarify.report"
FORMAT_VERSION = "1.0"

_STAGE_KEYS = {
    "pre_training": "pre_training_bias_metrics",
    "post_training": "post_training_bias_metrics",
}


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Serialise a document: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (
        json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    ).encode("utf-8")


def _label_rule(bias: BiasReport) -> str:
    label = bias.label
    if label.threshold is not None:
        return f"{label.op} {label.threshold:g}"
    return ",".join(str(v) for v in label.positive or ())


def _bias_config(bias: BiasReport) -> dict[str, Any]:
    data = bias.to_dict()
    from trivet.clarify.config import Intersection

    facet = bias.facet
    facets = facet.facets if isinstance(facet, Intersection) else (facet,)
    return {
        "facet": ",".join(facet.columns),
        "facet_rules": [
            {
                "column": f.column,
                "values": None if f.values is None else [str(v) for v in f.values],
                "threshold": f.threshold,
                "op": f.op if f.threshold is not None else None,
            }
            for f in facets
        ],
        "stages": data["stages"],
        "mode": data["mode"],
        "label": data["label"],
        "label_rule": data["label_rule"],
        "prediction": data["prediction"],
        "prediction_rule": None
        if bias.prediction is None
        else bias.prediction.resolved(bias.label).column
        + (
            f" {bias.prediction.op} {bias.prediction.threshold:g}"
            if bias.prediction.threshold is not None
            else ""
        ),
        "group_variable": data["group_variable"],
        "rows": data["rows"],
        "missing": data["missing"],
        "dropped_rows": data["dropped_rows"],
        "empty_groups": data["empty_groups"],
        "warnings": data["warnings"],
        "bootstrap": data["bootstrap"],
        "min_group_size": data["min_group_size"],
    }


def _bias_sections(reports: Sequence[BiasReport]) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    label_column = reports[0].label.column
    for bias in reports:
        if bias.label.column != label_column:
            raise ValidationError(
                f"The bias results label {bias.label.column!r} and {label_column!r}; a report "
                "covers one label.",
                hint="make one report per label",
            )
        data = bias.to_dict()
        facet_key, groups = next(iter(data["facets"].items()))
        for stage in bias.stages:
            key = _STAGE_KEYS[stage]
            section = sections.setdefault(
                key,
                {
                    "label": bias.label.column,
                    "label_value_or_threshold": _label_rule(bias),
                    "facets": {},
                },
            )
            if stage == "post_training" and bias.prediction is not None:
                section["predicted_label"] = bias.prediction.column
            listed = section["facets"].setdefault(facet_key, [])
            known = {g["value_or_threshold"]: g for g in listed}
            for group in groups:
                metrics = [
                    {k: v for k, v in m.items() if k != "stage"}
                    for m in group["metrics"]
                    if m["stage"] == stage
                ]
                name = group["value_or_threshold"]
                if name in known:
                    have = {m["name"] for m in known[name]["metrics"]}
                    known[name]["metrics"] += [m for m in metrics if m["name"] not in have]
                    known[name]["metrics"].sort(key=lambda m: m["name"])
                    continue
                entry = {
                    "value_or_threshold": name,
                    "sizes": group["sizes"],
                    "metrics": metrics,
                }
                listed.append(entry)
                known[name] = entry
    return sections


def build_document(
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
) -> dict[str, Any]:
    """Return a report document (a JSON-able dict) from results computed before.

    ``definition`` and ``rationale`` record a proposed fairness definition (the review's
    status is then ``"proposed"``); a sign-off makes it ``"signed_off"``.
    """
    from trivet.clarify.results import BiasReport

    reports: list[BiasReport] = []
    if isinstance(bias, BiasReport):
        reports = [bias]
    elif bias is not None:
        reports = list(bias)
        for item in reports:
            if not isinstance(item, BiasReport):
                raise ValidationError(
                    f"bias must hold BiasReport objects, not {type(item).__name__}."
                )
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": name,
        "created_at": created_at,
        "created_by": created_by,
        "data_digest": data_digest,
        "model_version": model_version,
        "previous": None,
        "bias_config": [_bias_config(b) for b in reports],
    }
    if reports:
        document.update(_bias_sections(reports))
    document["checks"] = None if checks is None else checks.to_dict()
    if explanations is not None:
        document["explanations"] = explanations.to_dict()
    document["review"] = review_section(
        document,
        definition=definition,
        rationale=rationale,
        status="proposed" if definition is not None else "unreviewed",
    )
    _check_finite(document)
    return document


def _check_finite(value: Any, where: str = "report") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{where} holds a non-finite number {value!r}.")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


@dataclass(frozen=True, kw_only=True)
class Report:
    """A fairness report: the JSON document, and its digest once stored.

    Attributes:
        document: the ``analysis.json``-shaped document (see docs/clarify.md).
        digest: the sha256 of its JSON bytes in the artifact store, when it was stored.
    """

    document: Mapping[str, Any]
    digest: str | None = None

    @classmethod
    def from_json(cls, data: bytes | str, *, digest: str | None = None) -> Report:
        """Parse a report's JSON.

        Raises:
            ValidationError: not a trivet report, or a format version this trivet
                does not read.
        """
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"The report is not valid JSON: {exc}.") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValidationError(
                "This JSON is not a trivet clarify report.",
                hint="reports are made by Clarify(session).report(...)",
            )
        major = str(document.get("version", "")).split(".")[0]
        if major != FORMAT_VERSION.split(".")[0]:
            raise ValidationError(
                f"The report's format version {document.get('version')!r} is not readable "
                f"by this trivet (it reads {FORMAT_VERSION}).",
                hint="upgrade trivet",
            )
        return cls(document=document, digest=digest)

    @property
    def name(self) -> str:
        """The report's name."""
        return str(self.document["name"])

    @property
    def checks_passed(self) -> bool | None:
        """Whether every check passed; None when the report has no checks."""
        checks = self.document.get("checks")
        return None if checks is None else bool(checks["passed"])

    @property
    def review(self) -> Mapping[str, Any]:
        """The review section."""
        return self.document["review"]  # type: ignore[no-any-return]

    @property
    def is_signed_off(self) -> bool:
        """Whether a reviewer signed this report off."""
        return self.review.get("status") == "signed_off"

    def to_json(self) -> bytes:
        """Return the canonical JSON bytes (the bytes that are stored)."""
        return canonical_json(self.document)

    def to_html(self) -> str:
        """Return the self-contained HTML page (inline SVG charts, no external assets)."""
        from trivet.clarify.report._html import render_report

        return render_report(self.document, digest=self.digest)

    def _repr_html_(self) -> str:
        from trivet.clarify.report._html import render_report

        return render_report(self.document, digest=self.digest, fragment=True)
