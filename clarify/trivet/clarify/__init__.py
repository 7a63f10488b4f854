"""trivet.clarify: bias metrics with SageMaker Clarify's definitions, and more to come.

Every pre-training and post-training bias metric Clarify defines, from one count table;
two modes (``default`` and ``clarify_compatible``); bootstrap intervals. See
docs/clarify.md.

>>> from trivet.clarify import Facet, Label, pretraining_bias
>>> from trivet.clarify.data import berkeley_admissions
>>> report = pretraining_bias(berkeley_admissions(), label=Label("admitted", positive=True),
...                           facet=Facet("sex", values="female"))
>>> round(report.value("DPL"), 3)
0.142
"""

from trivet.clarify.bias import posttraining_bias, pretraining_bias
from trivet.clarify.config import (
    Bootstrap,
    Facet,
    Intersection,
    Label,
    MissingPolicy,
    Mode,
    Prediction,
)
from trivet.clarify.results import BiasReport, FacetGroup, MetricValue
from trivet.clarify.session import Clarify

__all__ = [
    "BiasReport",
    "Bootstrap",
    "Clarify",
    "Facet",
    "FacetGroup",
    "Intersection",
    "Label",
    "MetricValue",
    "MissingPolicy",
    "Mode",
    "Prediction",
    "posttraining_bias",
    "pretraining_bias",
]
