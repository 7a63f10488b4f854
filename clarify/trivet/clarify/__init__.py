"""trivet.clarify: bias metrics, checks, SHAP explanations and fairness reports.

Every pre-training and post-training bias metric SageMaker Clarify defines, from one
count table; two modes (``default`` and ``clarify_compatible``); bootstrap intervals;
threshold checks; explanations with SHAP; reports as JSON and HTML with a fairness
review. See docs/clarify.md.

>>> from trivet.clarify import Facet, Label, pretraining_bias
>>> from trivet.clarify.data import berkeley_admissions
>>> report = pretraining_bias(berkeley_admissions(), label=Label("admitted", positive=True),
...                           facet=Facet("sex", values="female"))
>>> round(report.value("DPL"), 3)
0.142
"""

from typing import TYPE_CHECKING

from trivet.platform.lazy import lazy_names

if TYPE_CHECKING:
    from trivet.clarify._explain import (
        Explanation,
        FeatureImportance,
        LocalExplanation,
        PartialDependence,
        explain,
    )
    from trivet.clarify.bias import posttraining_bias, pretraining_bias
    from trivet.clarify.checks import Check, CheckOutcome, CheckResult, run_checks
    from trivet.clarify.config import (
        Bootstrap,
        Facet,
        Intersection,
        Label,
        MissingPolicy,
        Mode,
        Prediction,
    )
    from trivet.clarify.monitor import (
        AllowedRange,
        Baseline,
        ExplanationDrift,
        MetricDrift,
        MonitorResult,
        ndcg,
    )
    from trivet.clarify.report import Report, StoredReport, build_report
    from trivet.clarify.results import BiasReport, FacetGroup, MetricValue
    from trivet.clarify.session import Clarify

_LAZY = {
    "AllowedRange": "trivet.clarify.monitor",
    "Baseline": "trivet.clarify.monitor",
    "BiasReport": "trivet.clarify.results",
    "Bootstrap": "trivet.clarify.config",
    "Check": "trivet.clarify.checks",
    "CheckOutcome": "trivet.clarify.checks",
    "CheckResult": "trivet.clarify.checks",
    "Clarify": "trivet.clarify.session",
    "Explanation": "trivet.clarify._explain",
    "ExplanationDrift": "trivet.clarify.monitor",
    "Facet": "trivet.clarify.config",
    "FacetGroup": "trivet.clarify.results",
    "FeatureImportance": "trivet.clarify._explain",
    "Intersection": "trivet.clarify.config",
    "Label": "trivet.clarify.config",
    "LocalExplanation": "trivet.clarify._explain",
    "MetricDrift": "trivet.clarify.monitor",
    "MetricValue": "trivet.clarify.results",
    "MissingPolicy": "trivet.clarify.config",
    "Mode": "trivet.clarify.config",
    "MonitorResult": "trivet.clarify.monitor",
    "PartialDependence": "trivet.clarify._explain",
    "Prediction": "trivet.clarify.config",
    "Report": "trivet.clarify.report",
    "StoredReport": "trivet.clarify.report",
    "build_report": "trivet.clarify.report",
    "explain": "trivet.clarify._explain",
    "ndcg": "trivet.clarify.monitor",
    "posttraining_bias": "trivet.clarify.bias",
    "pretraining_bias": "trivet.clarify.bias",
    "run_checks": "trivet.clarify.checks",
}

__all__ = [
    "AllowedRange",
    "Baseline",
    "BiasReport",
    "Bootstrap",
    "Check",
    "CheckOutcome",
    "CheckResult",
    "Clarify",
    "Explanation",
    "ExplanationDrift",
    "Facet",
    "FacetGroup",
    "FeatureImportance",
    "Intersection",
    "Label",
    "LocalExplanation",
    "MetricDrift",
    "MetricValue",
    "MissingPolicy",
    "Mode",
    "MonitorResult",
    "PartialDependence",
    "Prediction",
    "Report",
    "StoredReport",
    "build_report",
    "explain",
    "ndcg",
    "posttraining_bias",
    "pretraining_bias",
    "run_checks",
]


# Names load on first use, so `import trivet`, `trivet --help` and the parts' CLIs stay
# fast: heavy dependencies load with the command that needs them.
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
