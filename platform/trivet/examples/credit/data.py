"""Deterministic synthetic credit-lending data with a bias a naive model learns.

Three feature groups' worth of history with event times, and a table of loan
applications with the outcome:

- ``applicants`` — profile snapshots: income, age, sex, occupation, years at address.
- ``credit_history`` — monthly bureau snapshots: open accounts, utilisation, late payments.
- ``transactions`` — monthly aggregates: spend, cash withdrawals.
- ``applications`` — one row per application: applicant, time, and ``repaid`` (1/0).

The *ground truth* of repayment depends only on financial features. The recorded
labels, however, come from past human decisions that penalised one occupation group,
``care``, in which women are over-represented (a proxy for sex): a model trained
naively on ``occupation`` reproduces the disparity against women, and removing the
proxy (or reweighing) largely removes it. Everything is seeded: the same arguments
give the same frames, byte for byte.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CreditData", "generate"]

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
OCCUPATIONS = ("care", "trades", "office", "tech", "retail")


@dataclass(frozen=True, kw_only=True)
class CreditData:
    """The generated frames (all event times are timezone-aware UTC)."""

    applicants: pd.DataFrame
    credit_history: pd.DataFrame
    transactions: pd.DataFrame
    applications: pd.DataFrame

    @property
    def rows(self) -> int:
        """Rows of feature history in all three groups."""
        return len(self.applicants) + len(self.credit_history) + len(self.transactions)


def generate(n_applicants: int = 20_000, *, months: int = 12, seed: int = 7) -> CreditData:
    """Generate the example data.

    Args:
        n_applicants: how many people.
        months: months of monthly history per person before their application.
        seed: the random seed.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ids = np.array([f"a{i:06d}" for i in range(n_applicants)])
    sex = rng.choice(np.array(["female", "male"]), size=n_applicants)
    female = sex == "female"
    # occupation: women are over-represented in care work (the proxy)
    p_care = np.where(female, 0.45, 0.08)
    is_care = rng.random(n_applicants) < p_care
    other = rng.choice(np.array(OCCUPATIONS[1:]), size=n_applicants)
    occupation = np.where(is_care, "care", other)
    age = rng.integers(19, 75, size=n_applicants)
    income = np.round(rng.lognormal(10.4, 0.35, n_applicants) * np.where(is_care, 0.92, 1.0), 2)
    years_at_address = np.clip(rng.poisson(np.maximum(age - 18, 1) / 6), 0, 40)

    # each person applies at a random time in the second year; history precedes it
    applied = START + pd.to_timedelta(rng.integers(365, 2 * 365, size=n_applicants), unit="D")
    profile_ts = applied - pd.to_timedelta(rng.integers(30, 300, size=n_applicants), unit="D")
    applicants = pd.DataFrame(
        {
            "applicant_id": ids,
            "ts": profile_ts,
            "income": income,
            "age": age.astype("int64"),
            "sex": sex,
            "occupation": occupation,
            "years_at_address": years_at_address.astype("int64"),
        }
    )

    month = pd.to_timedelta(30, unit="D")
    steps = np.arange(1, months + 1)
    rep_ids = np.repeat(ids, months)
    rep_ts = np.repeat(applied, months) - np.tile(steps, n_applicants) * month
    base_util = rng.beta(2, 5, size=n_applicants)
    utilization = np.clip(
        np.repeat(base_util, months) + rng.normal(0, 0.05, size=n_applicants * months), 0, 1
    )
    risk = rng.random(n_applicants)
    late = rng.poisson(np.repeat(0.05 + 0.6 * risk, months))
    credit_history = pd.DataFrame(
        {
            "applicant_id": rep_ids,
            "ts": rep_ts,
            "open_accounts": rng.integers(1, 8, size=n_applicants * months).astype("int64"),
            "utilization": np.round(utilization, 4),
            "late_payments": late.astype("int64"),
        }
    )
    spend = np.repeat(income / 12 * rng.uniform(0.4, 0.9, size=n_applicants), months)
    transactions = pd.DataFrame(
        {
            "applicant_id": rep_ids,
            "ts": rep_ts + pd.to_timedelta(3, unit="D"),
            "monthly_spend": np.round(spend * rng.uniform(0.8, 1.2, size=len(spend)), 2),
            "cash_withdrawals": rng.poisson(4, size=len(spend)).astype("int64"),
        }
    )

    # ground truth: financial only; recorded label: past decisions penalised care work
    last_util = utilization.reshape(n_applicants, months)[:, 0]
    late_12m = late.reshape(n_applicants, months).sum(axis=1)
    score = (
        1.2 * np.log(income / 30_000)
        - 2.5 * last_util
        - 0.35 * late_12m
        + 0.02 * years_at_address
        + rng.normal(0, 0.5, size=n_applicants)
    )
    truth = score > np.quantile(score, 0.3)  # about 70 % would repay
    penalised = is_care & (rng.random(n_applicants) < 0.35)
    repaid = (truth & ~penalised).astype("int64")
    applications = pd.DataFrame(
        {"applicant_id": ids, "application_ts": applied, "sex": sex, "age": age, "repaid": repaid}
    )
    return CreditData(
        applicants=applicants,
        credit_history=credit_history,
        transactions=transactions,
        applications=applications,
    )
