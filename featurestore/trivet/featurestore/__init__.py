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

from typing import TYPE_CHECKING

from trivet.platform.lazy import lazy_names

if TYPE_CHECKING:
    from trivet.featurestore.definitions import (
        Dtype,
        Feature,
        FeatureGroup,
        FeatureGroupSpec,
        infer_spec,
    )
    from trivet.featurestore.errors import (
        FeatureGroupNotFound,
        IngestValidationError,
        RowProblem,
        VersionVacuumed,
    )
    from trivet.featurestore.ingest import IngestReport
    from trivet.featurestore.maintenance import MaintenanceReport
    from trivet.featurestore.offline import DeltaOfflineStore
    from trivet.featurestore.online import OnlineRow, OnlineStore, SqliteOnlineStore
    from trivet.featurestore.stats import FeatureStatistics, GroupStatistics, Histogram
    from trivet.featurestore.store import FeatureStore, SearchHit

_LAZY = {
    "DeltaOfflineStore": "trivet.featurestore.offline",
    "Dtype": "trivet.featurestore.definitions",
    "Feature": "trivet.featurestore.definitions",
    "FeatureGroup": "trivet.featurestore.definitions",
    "FeatureGroupNotFound": "trivet.featurestore.errors",
    "FeatureGroupSpec": "trivet.featurestore.definitions",
    "FeatureStatistics": "trivet.featurestore.stats",
    "FeatureStore": "trivet.featurestore.store",
    "GroupStatistics": "trivet.featurestore.stats",
    "Histogram": "trivet.featurestore.stats",
    "IngestReport": "trivet.featurestore.ingest",
    "IngestValidationError": "trivet.featurestore.errors",
    "MaintenanceReport": "trivet.featurestore.maintenance",
    "OnlineRow": "trivet.featurestore.online",
    "OnlineStore": "trivet.featurestore.online",
    "RowProblem": "trivet.featurestore.errors",
    "SearchHit": "trivet.featurestore.store",
    "SqliteOnlineStore": "trivet.featurestore.online",
    "VersionVacuumed": "trivet.featurestore.errors",
    "infer_spec": "trivet.featurestore.definitions",
}

__all__ = [
    "DeltaOfflineStore",
    "Dtype",
    "Feature",
    "FeatureGroup",
    "FeatureGroupNotFound",
    "FeatureGroupSpec",
    "FeatureStatistics",
    "FeatureStore",
    "GroupStatistics",
    "Histogram",
    "IngestReport",
    "IngestValidationError",
    "MaintenanceReport",
    "OnlineRow",
    "OnlineStore",
    "RowProblem",
    "SearchHit",
    "SqliteOnlineStore",
    "VersionVacuumed",
    "infer_spec",
]


# Names load on first use, so `import trivet`, `trivet --help` and the parts' CLIs stay
# fast: heavy dependencies load with the command that needs them.
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
