"""Feature store steps: ``ingest_features`` (feature processing pipelines) and
``read_training_set`` (a point-in-time training set)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trivet.pipelines.step import step
from trivet.pipelines.steps._data import check_frame, data_digest

if TYPE_CHECKING:
    import pandas as pd

    from trivet.platform.session import Session

__all__ = ["feature_groups_read", "ingest_features", "read_training_set"]


@step(cache=False, writes=["feature_groups/{group}"])
def ingest_features(
    data: pd.DataFrame,
    *,
    group: str,
    session: Session,
    max_workers: int | None = None,
) -> dict[str, Any]:
    """Ingest a DataFrame into a feature group; return the ingest report as JSON.

    Through ``FeatureStore(session).ingest``: needs ``feature:write`` on
    ``<project>/feature_groups/<group>`` (which the step declares it writes, so the
    run token covers it); the batch is validated whole, then written
    offline and online exactly once (a batch ingested before is skipped, and reported
    ``duplicate``). The step is not cached (``cache=False``): what it writes lives in
    the feature store, which the cache key cannot see, and the store's own batch id
    already makes a repeat cheap and harmless. Lineage: ``dataset → feature_group``
    (``ingested``), when the principal may describe the group.

    Args:
        data: the rows, with the group's record id and event time columns.
        group: the feature group.
        session: the execution's session (given by the engine).
        max_workers: threads validating columns at once (large batches only).

    Returns:
        JSON: ``group``, ``batch_id``, ``rows``, ``records``, ``offline_version``,
        ``write_time`` (ISO 8601) and ``duplicate``.

    Raises:
        PermissionDenied: no ``feature:write`` on the group.
        IngestValidationError: the batch has problems (all listed); nothing was written.
    """
    from trivet.featurestore import FeatureStore
    from trivet.platform.lineage import Node

    frame = check_frame(data, step="ingest_features")
    store = FeatureStore(session)
    try:
        report = store.ingest(group, frame, max_workers=max_workers)
    finally:
        store.close()
    resource = session.resource("feature_groups", group)
    if session.can("feature:describe", resource):
        digest = data_digest(session, frame, label="ingested batch")
        if digest is not None:
            session.lineage.add(
                Node(kind="dataset", id=digest), Node(kind="feature_group", id=resource), "ingested"
            )
    return {
        "group": report.group,
        "batch_id": report.batch_id,
        "rows": report.rows,
        "records": report.records,
        "offline_version": report.offline_version,
        "write_time": report.write_time.isoformat(),
        "duplicate": report.duplicate,
    }


def feature_groups_read(arguments: Mapping[str, Any]) -> list[str]:
    """Return the feature groups a ``features=`` list names: what the step reads."""
    features = arguments["features"]
    if isinstance(features, str):
        features = [features]
    groups = {str(f).partition(":")[0] for f in features}
    return [f"feature_groups/{g}" for g in sorted(groups)]


@step(cache=False, reads=[feature_groups_read], writes=["datasets/{dataset_name}"])
def read_training_set(
    entities: pd.DataFrame,
    *,
    features: Sequence[str],
    timestamp: str,
    session: Session,
    entity_key: str | Mapping[str, str] | None = None,
    created_cutoff: bool = False,
    as_of: dt.datetime | None = None,
    event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    dataset_name: str | None = None,
) -> pd.DataFrame:
    """Return a point-in-time training set: each entity row joined to the features as
    they were at its time (``FeatureStore(session).build_dataset``; no leakage).

    Needs ``feature:read_offline`` on every group named (the step declares it reads
    them, and writes ``datasets/<dataset_name>`` when given). The step is not cached
    (``cache=False``): new data in the feature store changes the result without
    changing anything a cache key sees. Its output is still content-addressed, so when
    the training set comes out identical, the steps downstream hit the cache. Lineage:
    ``feature_group → dataset`` (``joined_into``) for every group read, the dataset
    being this step's output.

    Args:
        entities: the entity rows: record ids, a timezone-aware ``timestamp`` column,
            and anything else (labels), kept as given.
        features: ``"group:feature"`` or ``"group:*"`` strings.
        timestamp: the entities' time column.
        session: the execution's session (given by the engine).
        entity_key: the entity column holding the record id (one name, or per group);
            default: a column named like each group's record id.
        created_cutoff: only rows written by the entity time (what serving could see).
        as_of: time travel: only rows committed and stamped by then.
        event_time_range: ``(start, end)`` on the features' event times, inclusive.
        dataset_name: also file the training set under ``<project>/datasets/<name>``
            (needs ``artifact:write`` there).

    Returns:
        The entity columns, then each group's features.

    Raises:
        PermissionDenied: a group may not be read offline.
        FeatureGroupNotFound: a group does not exist.
        ValidationError: an unknown feature, a missing or naive timestamp column.
    """
    import pandas as pd

    from trivet.featurestore import FeatureStore
    from trivet.featurestore.datasets import DATASET_ATTR
    from trivet.platform.lineage import Node

    frame = check_frame(entities, step="read_training_set", what="entities")
    store = FeatureStore(session)
    try:
        result = store.build_dataset(
            frame,
            features,
            timestamp=timestamp,
            entity_key=entity_key,
            created_cutoff=created_cutoff,
            as_of=as_of,
            event_time_range=event_time_range,
            dataset_name=dataset_name,
        )
    finally:
        store.close()
    assert isinstance(result, pd.DataFrame)
    # build_dataset stored it (with its lineage) before noting the digest in attrs;
    # without the note the output's bytes, and so its digest, are that dataset's
    result.attrs.pop(DATASET_ATTR, None)
    if dataset_name is None:
        digest = data_digest(session, result, label="point-in-time training set")
        if digest is not None:
            for group in sorted({f.partition(":")[0] for f in features}):
                session.lineage.add(
                    Node(kind="feature_group", id=session.resource("feature_groups", group)),
                    Node(kind="dataset", id=digest),
                    "joined_into",
                )
    return result
