"""The example's feature groups, defined in Python."""

from __future__ import annotations

import datetime as dt

from trivet.featurestore import Dtype, Feature, FeatureGroupSpec

__all__ = ["GROUPS"]

GROUPS = (
    FeatureGroupSpec(
        name="applicants",
        record_id="applicant_id",
        event_time="ts",
        description="Applicant profile as declared on the latest application form",
        tags=("pii", "profile"),
        features=[
            Feature("income", Dtype.FLOAT, description="yearly income", parameters={"unit": "EUR"}),
            Feature("age", Dtype.INT, description="age in years (protected)"),
            Feature("sex", Dtype.STRING, description="sex (protected)"),
            Feature("occupation", Dtype.STRING, description="occupation group"),
            Feature("years_at_address", Dtype.INT),
        ],
    ),
    FeatureGroupSpec(
        name="credit_history",
        record_id="applicant_id",
        event_time="ts",
        ttl=dt.timedelta(days=90),
        description="Monthly credit bureau snapshot",
        tags=("bureau",),
        features=[
            Feature("open_accounts", Dtype.INT),
            Feature("utilization", Dtype.FLOAT, description="revolving credit used / limit"),
            Feature("late_payments", Dtype.INT, description="late payments that month"),
        ],
    ),
    FeatureGroupSpec(
        name="transactions",
        record_id="applicant_id",
        event_time="ts",
        ttl=dt.timedelta(days=90),
        description="Monthly account transaction aggregates",
        tags=("transactions",),
        features=[
            Feature("monthly_spend", Dtype.FLOAT, parameters={"unit": "EUR"}),
            Feature("cash_withdrawals", Dtype.INT),
        ],
    ),
)
