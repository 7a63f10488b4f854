"""Built-in steps: the canonical flow in a few lines.

Plain ``@step`` functions over the other parts, each acting through the execution's
session (so the run-as principal's grants apply) and returning a DataFrame, a model
or JSON (so caching and lineage work as for any step)::

    ingest_features ► read_training_set ► train ► evaluate ► bias_check ► gate ► register_model
     (featurestore)      (featurestore)                       (clarify)          (registry)

- :func:`ingest_features` — a DataFrame into a feature group;
- :func:`read_training_set` — a point-in-time training set from the feature store;
- :func:`train` — fit a fresh copy of any scikit-learn-style estimator
  (:class:`EstimatorSpec` is its canonical form in the cache key);
- :func:`evaluate` — accuracy, precision, recall, F1, ROC AUC, log loss;
- :func:`bias_check` — clarify's bias metrics and checks; stores the fairness report;
- :func:`gate` — fail the execution unless a condition holds (``when`` + ``fail``);
- :func:`register_model` — a registry version, ``PendingManualApproval``, with the
  gate's outcome and the report's digest.

See ``docs/pipelines.md`` ("Built-in steps").
"""

from __future__ import annotations

from trivet.pipelines.steps._bias import bias_check
from trivet.pipelines.steps._estimator import EstimatorSpec, ObjectRef
from trivet.pipelines.steps._evaluate import evaluate
from trivet.pipelines.steps._features import ingest_features, read_training_set
from trivet.pipelines.steps._gate import gate
from trivet.pipelines.steps._register import register_model
from trivet.pipelines.steps._train import train

__all__ = [
    "EstimatorSpec",
    "ObjectRef",
    "bias_check",
    "evaluate",
    "gate",
    "ingest_features",
    "read_training_set",
    "register_model",
    "train",
]
