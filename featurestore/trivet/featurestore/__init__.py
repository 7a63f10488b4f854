"""trivet.featurestore: feature groups, ingestion, online and offline stores.

>>> from trivet.featurestore import Feature, FeatureGroupSpec
>>> spec = FeatureGroupSpec(name="applicants", record_id="applicant_id",
...                         event_time="ts", features=[Feature(name="income", dtype="float")])
>>> spec.columns
('applicant_id', 'ts', 'income')

Open it on a session: ``FeatureStore(session)`` (``session.featurestore``). See
``docs/featurestore.md``.
"""

from __future__ import annotations

from trivet.featurestore.definitions import (
    Dtype,
    Feature,
    FeatureGroup,
    FeatureGroupSpec,
    infer_spec,
)
from trivet.featurestore.errors import FeatureGroupNotFound, IngestValidationError, RowProblem
from trivet.featurestore.ingest import IngestReport
from trivet.featurestore.offline import DeltaOfflineStore
from trivet.featurestore.online import OnlineRow, OnlineStore, SqliteOnlineStore
from trivet.featurestore.store import FeatureStore, SearchHit

__all__ = [
    "DeltaOfflineStore",
    "Dtype",
    "Feature",
    "FeatureGroup",
    "FeatureGroupNotFound",
    "FeatureGroupSpec",
    "FeatureStore",
    "IngestReport",
    "IngestValidationError",
    "OnlineRow",
    "OnlineStore",
    "RowProblem",
    "SearchHit",
    "SqliteOnlineStore",
    "infer_spec",
]
