"""Point-in-time training sets from the offline tables: ``FeatureStore.build_dataset``.

This module is the FeatureStore's side of the exact join in
:mod:`trivet.featurestore._pit` (which states the semantics): it parses the features
asked for (``"group:feature"``, ``"group:*"``), authorizes ``feature:read_offline``
once per group, hands the engine each group's current (or ``as_of``) Delta files with
the group's schema and TTL, turns the Arrow result into pandas with nullable integers,
and, when asked, stores the result as an artifact with lineage edges
``feature_group → dataset``.

``as_of`` is applied twice, and the two agree: the files are those of the Delta
version current at ``as_of`` (the last commit made by then: Delta time travel), and
the engine keeps only rows whose ``__write_time`` is at or before ``as_of``. A batch
is stamped before its commit, so together they mean "rows committed, and stamped, by
``as_of``"; the write-time filter alone still holds when Delta's log no longer reaches
back that far (it then returns its oldest version).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from trivet.errors import BackendError, ValidationError
from trivet.featurestore._pit import GroupSource, latest_rows, point_in_time_join
from trivet.featurestore.definitions import FeatureGroup
from trivet.platform.names import check_name

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from trivet.featurestore.store import FeatureStore

__all__ = [
    "DATASET_ATTR",
    "Output",
    "build_dataset",
    "check_as_of",
    "latest",
    "parse_features",
    "readable_group",
    "to_pandas",
]

Output = Literal["pandas", "arrow"]

DATASET_ATTR = "trivet.dataset"
"""Where a stored training set's digest goes: ``df.attrs[DATASET_ATTR]`` (pandas) or
the schema metadata key ``b"trivet.dataset"`` (Arrow)."""

_RELATION = "joined_into"


@dataclass(frozen=True)
class _Wanted:
    """The features asked for from one group, in order."""

    group: str
    features: list[str]
    everything: bool


def parse_features(features: Sequence[str]) -> list[_Wanted]:
    """Split ``["group:feature", "group:*", ...]`` into groups in order of first mention.

    A feature named twice (or also covered by ``group:*``) is returned once.
    """
    if isinstance(features, str) or not isinstance(features, Sequence):
        raise ValidationError(
            f"features must be a list of 'group:feature' strings, not {features!r}.",
            hint=f"wrap it: features=[{features!r}]" if isinstance(features, str) else None,
        )
    if not features:
        raise ValidationError(
            "features is empty.", hint="name at least one, e.g. ['customers:age', 'orders:*']"
        )
    wanted: dict[str, _Wanted] = {}
    for item in features:
        if not isinstance(item, str) or item.count(":") != 1:
            raise ValidationError(
                f"{item!r} does not name a feature as 'group:feature'.",
                hint="e.g. 'customers:age', or 'customers:*' for all of a group's features",
            )
        group, feature = (part.strip() for part in item.split(":"))
        check_name(group, what="feature group name")
        if not feature:
            raise ValidationError(
                f"{item!r} names no feature after the colon.",
                hint=f"e.g. '{group}:*' for all of its features",
            )
        entry = wanted.setdefault(group, _Wanted(group, [], False))
        if feature == "*":
            wanted[group] = _Wanted(group, entry.features, True)
        elif feature not in entry.features:
            entry.features.append(feature)
    return list(wanted.values())


def check_as_of(as_of: object) -> dt.datetime | None:
    """Return ``as_of`` if it is None or an aware datetime, else raise ValidationError."""
    if as_of is None:
        return None
    if not isinstance(as_of, dt.datetime):
        raise ValidationError(
            f"as_of must be a timezone-aware datetime, not {type(as_of).__name__}.",
            hint="e.g. as_of=datetime(2024, 6, 1, tzinfo=UTC); Delta version numbers differ "
            "per group, so only times are accepted here",
        )
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValidationError(
            f"as_of {as_of.isoformat()} is naive; the time zone is ambiguous.",
            hint="e.g. as_of.replace(tzinfo=datetime.UTC)",
        )
    return as_of


def readable_group(store: FeatureStore, group: FeatureGroup) -> FeatureGroup:
    """Check that ``group`` keeps an offline table; return it."""
    if not group.offline:
        raise ValidationError(
            f"Feature group {group.name!r} keeps no offline table (it was created with "
            "offline=False), so it cannot be read point-in-time or with SQL.",
            hint="read its latest values with get_record, or create a group with offline=True",
        )
    return group


def _source(
    store: FeatureStore, group: FeatureGroup, features: Sequence[str], as_of: dt.datetime | None
) -> GroupSource:
    store._settle(group)  # buffered single-record writes first (see buffer.py)
    return GroupSource(
        name=group.name,
        record_id=group.record_id,
        event_time=group.event_time,
        features=features,
        ttl=group.ttl,
        files=store.offline.offline_files(group, as_of=as_of),
        schema=group.arrow_schema(),
    )


def _sources(
    store: FeatureStore, features: Sequence[str], as_of: dt.datetime | None
) -> list[GroupSource]:
    """Authorize every group (all before any lookup), then resolve features to sources."""
    wanted = parse_features(features)
    for entry in wanted:
        store._require("feature:read_offline", entry.group)
    sources = []
    for entry in wanted:
        group = readable_group(store, store._load(entry.group)[0])
        names = [group.feature(name).name for name in entry.features]
        if entry.everything:
            names += [f.name for f in group.features if f.name not in names]
        sources.append(_source(store, group, names, as_of))
    return sources


def build_dataset(
    store: FeatureStore,
    entity: pd.DataFrame | pa.Table,
    features: Sequence[str],
    *,
    timestamp: str,
    entity_key: str | Mapping[str, str] | None,
    created_cutoff: bool,
    as_of: dt.datetime | None,
    include_deleted: bool,
    event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None,
    include_match_times: bool,
    to: Output,
    dataset_name: str | None,
) -> pd.DataFrame | pa.Table:
    """See :meth:`trivet.featurestore.FeatureStore.build_dataset`."""
    import pandas as pd

    if to not in ("pandas", "arrow"):
        raise ValidationError(f"to must be 'pandas' or 'arrow', not {to!r}.")
    if dataset_name is not None:
        check_name(dataset_name, what="dataset name")
    as_of = check_as_of(as_of)
    sources = _sources(store, features, as_of)
    keep_entity = to == "pandas" and isinstance(entity, pd.DataFrame)
    joined = _skeleton(entity, sources, timestamp, entity_key) if keep_entity else entity
    try:
        table = point_in_time_join(
            joined,
            sources,
            timestamp=timestamp,
            entity_key=entity_key,
            created_cutoff=created_cutoff,
            as_of=as_of,
            include_deleted=include_deleted,
            event_time_range=event_time_range,
            include_match_times=include_match_times,
        )
    except BackendError as exc:
        if as_of is None:
            raise
        raise BackendError(
            exc.message,
            hint="as_of may reach back before a hard delete, whose vacuum removed the files "
            "of earlier versions; use a later as_of",
        ) from exc
    result: pd.DataFrame | pa.Table
    if keep_entity:
        assert isinstance(entity, pd.DataFrame)
        result = entity.copy(deep=False)
        for name in table.column_names[entity.shape[1] :]:
            result[name] = to_pandas_column(table.column(name))
    elif to == "pandas":
        result = to_pandas(table)
    else:
        result = table
    if dataset_name is not None:
        digest = _store_dataset(store, result, sources, dataset_name, as_of)
        if isinstance(result, pd.DataFrame):
            result.attrs[DATASET_ATTR] = digest
        else:
            metadata = dict(result.schema.metadata or {})
            metadata[DATASET_ATTR.encode()] = digest.encode()
            result = result.replace_schema_metadata(metadata)
    return result


def _skeleton(
    entity: pd.DataFrame,
    sources: Sequence[GroupSource],
    timestamp: str,
    entity_key: str | Mapping[str, str] | None,
) -> pa.Table:
    """The entity as the join needs it: its key and time columns, the others as nulls.

    The other columns keep their names (they decide output name clashes) but not their
    values, which the result takes from the DataFrame itself, dtypes and index intact.
    """
    import pyarrow as pa

    names = [str(c) for c in entity.columns]
    needed = {timestamp}
    for source in sources:
        if isinstance(entity_key, str):
            needed.add(entity_key)
        elif isinstance(entity_key, Mapping):
            needed.add(entity_key.get(source.name, source.record_id))
        else:
            needed.add(source.record_id)
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise ValidationError(
            f"The entity has duplicate column names: {', '.join(map(repr, dupes))}.",
            hint="rename them",
        )
    n = len(entity)
    columns: list[pa.Array | pa.ChunkedArray] = []
    for position, name in enumerate(names):
        if name in needed:
            part = entity.iloc[:, [position]]
            try:
                columns.append(pa.Table.from_pandas(part, preserve_index=False).column(0))
            except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
                raise ValidationError(
                    f"The entity column {name!r} cannot be converted to Arrow: {exc}",
                    hint="give the column a single type",
                ) from exc
        else:
            columns.append(pa.nulls(n))
    return pa.Table.from_arrays(columns, names=names)


def _nullable(kind: pa.DataType) -> Any:
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(kind):
        return pd.api.types.pandas_dtype(str(kind).replace("int", "Int").replace("uInt", "UInt"))
    if pa.types.is_boolean(kind):
        return pd.BooleanDtype()
    return None


def to_pandas_column(column: pa.ChunkedArray) -> Any:
    """Return a column as a pandas array: integers and booleans nullable, the rest as usual."""
    return column.to_pandas(types_mapper=_nullable).array


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Return a table as a DataFrame: integers as ``Int64`` and booleans as ``boolean``."""
    return table.to_pandas(types_mapper=_nullable)


def _store_dataset(
    store: FeatureStore,
    frame: pd.DataFrame | pa.Table,
    sources: Sequence[GroupSource],
    name: str,
    as_of: dt.datetime | None,
) -> str:
    """Store ``frame`` under ``<project>/datasets/<name>``; link each group to it."""
    from trivet.platform.lineage import Node, insert_edge

    session = store._s
    folder = session.resource("datasets", name)
    ref = session.artifacts.put_dataframe(frame, folder=folder, label="point-in-time training set")
    dataset = Node(kind="dataset", id=ref.digest)
    with session.catalog.write() as conn:
        for source in sources:
            insert_edge(
                session,
                conn,
                Node(kind="feature_group", id=session.resource("feature_groups", source.name)),
                dataset,
                _RELATION,
            )
        session.record(
            conn,
            action="feature:build_dataset",
            resource=folder,
            detail={
                "digest": ref.digest,
                "rows": int(ref.meta.get("rows", 0)),
                "features": {s.name: list(s.features) for s in sources},
                "as_of": None if as_of is None else as_of.isoformat(),
            },
        )
    return ref.digest


def latest(
    store: FeatureStore,
    name: str,
    *,
    n: int,
    features: Sequence[str] | None,
    as_of: dt.datetime | None,
    include_deleted: bool,
    event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None,
    to: Output,
) -> pd.DataFrame | pa.Table:
    """See :meth:`trivet.featurestore.FeatureStore.latest_rows`."""
    if to not in ("pandas", "arrow"):
        raise ValidationError(f"to must be 'pandas' or 'arrow', not {to!r}.")
    as_of = check_as_of(as_of)
    store._require("feature:read_offline", name)
    group = readable_group(store, store._load(name)[0])
    if isinstance(features, str):
        raise ValidationError("features must be a list of names, not a string.")
    names = (
        [f.name for f in group.features]
        if features is None
        else [group.feature(f).name for f in dict.fromkeys(features)]
    )
    table = latest_rows(
        _source(store, group, names, as_of),
        n,
        as_of=as_of,
        include_deleted=include_deleted,
        event_time_range=event_time_range,
    )
    return to_pandas(table) if to == "pandas" else table
