"""The example's pipeline: point-in-time training set → train → evaluate → bias check →
fairness gate → register (``PendingManualApproval``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sklearn.ensemble import HistGradientBoostingClassifier

from trivet.clarify import Facet
from trivet.examples.credit.data import OCCUPATIONS, generate
from trivet.pipelines import Param, pipeline, step, steps

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHECKS", "FEATURES", "credit_model"]

FEATURES = [
    "applicants:income",
    "applicants:occupation",
    "applicants:years_at_address",
    "credit_history:*",
    "transactions:*",
]
CHECKS = {"DPPL": (-0.1, 0.1), "DI": (0.8, 1.25)}  # parity of approvals, the 4/5 rule
NAIVE = Param(default=["sex", "age"], help="columns the model never sees")


@step
def applications(n: int, seed: int) -> pd.DataFrame:
    """The loan applications to learn from: applicant, time, outcome (and sex, for the check)."""
    return generate(n, seed=seed).applications


@step
def prepare(training_set: pd.DataFrame, part: str) -> pd.DataFrame:
    """Encode occupation as a number and keep one part: 70 % train, 30 % holdout."""
    frame = training_set.assign(
        occupation_code=training_set["occupation"].map(OCCUPATIONS.index).astype("int64")
    ).drop(columns=["occupation", "applicant_id", "application_ts"])
    is_train = frame.index % 10 < 7
    return frame[is_train if part == "train" else ~is_train].reset_index(drop=True)


@pipeline
def credit_model(
    n: int = 20_000,
    seed: int = 7,
    drop: list[str] = NAIVE,  # type: ignore[assignment]  # Param carries default and help
) -> None:
    """Train a credit model on point-in-time features; register it only if it is fair."""
    rows = steps.read_training_set(
        applications(n, seed), features=FEATURES, timestamp="application_ts"
    )
    history, holdout = prepare(rows, "train"), prepare(rows, "holdout")
    model = steps.train(
        history,
        label="repaid",
        drop=drop,
        estimator=HistGradientBoostingClassifier(max_iter=100, random_state=0),
    )
    metrics = steps.evaluate(model, holdout, label="repaid")
    bias = steps.bias_check(
        model,
        holdout,
        label="repaid",
        facet=Facet("sex", values="female"),
        checks=CHECKS,
        report_name="credit-model",
    )
    steps.gate(
        bias,
        then=lambda: steps.register_model(
            model, name="credit-model", metrics=metrics, bias=bias, training_set=rows
        ),
    )
