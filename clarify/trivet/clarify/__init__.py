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
from trivet.clarify.explain import (
    Explanation,
    FeatureImportance,
    LocalExplanation,
    PartialDependence,
    explain,
)
from trivet.clarify.report import Report, StoredReport, build_report
from trivet.clarify.results import BiasReport, FacetGroup, MetricValue
from trivet.clarify.session import Clarify

__all__ = [
    "BiasReport",
    "Bootstrap",
    "Check",
    "CheckOutcome",
    "CheckResult",
    "Clarify",
    "Explanation",
    "Facet",
    "FacetGroup",
    "FeatureImportance",
    "Intersection",
    "Label",
    "LocalExplanation",
    "MetricValue",
    "MissingPolicy",
    "Mode",
    "PartialDependence",
    "Prediction",
    "Report",
    "StoredReport",
    "build_report",
    "explain",
    "posttraining_bias",
    "pretraining_bias",
    "run_checks",
]
