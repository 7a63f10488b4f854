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
            Feature(
                name="income",
                dtype=Dtype.FLOAT,
                description="yearly income",
                parameters={"unit": "EUR"},
            ),
            Feature(name="age", dtype=Dtype.INT, description="age in years (protected)"),
            Feature(name="sex", dtype=Dtype.STRING, description="sex (protected)"),
            Feature(name="occupation", dtype=Dtype.STRING, description="occupation group"),
            Feature(name="years_at_address", dtype=Dtype.INT),
        ],
    ),
    FeatureGroupSpec(
        name="credit_history",
        record_id="applicant_id",
        event_time="ts",
        description="Monthly credit bureau snapshot",
        tags=("bureau",),
        ttl=dt.timedelta(days=90),
        features=[
            Feature(name="open_accounts", dtype=Dtype.INT),
            Feature(
                name="utilization", dtype=Dtype.FLOAT, description="revolving credit used / limit"
            ),
            Feature(name="late_payments", dtype=Dtype.INT, description="late payments that month"),
        ],
    ),
    FeatureGroupSpec(
        name="transactions",
        record_id="applicant_id",
        event_time="ts",
        description="Monthly account transaction aggregates",
        tags=("transactions",),
        ttl=dt.timedelta(days=90),
        features=[
            Feature(name="monthly_spend", dtype=Dtype.FLOAT, parameters={"unit": "EUR"}),
            Feature(name="cash_withdrawals", dtype=Dtype.INT),
        ],
    ),
)
