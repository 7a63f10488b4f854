"""Point-in-time training sets: the exact join behind ``build_dataset``.

A pure engine: no catalog, no session. The FeatureStore authorizes the caller, then hands
this module each feature group's offline rows as a :class:`GroupSource` (the current
parquet files of its Delta table, or an in-memory Arrow table). Each group's rows carry
the record-identifier column, the event-time column, the features and the reserved
columns ``__write_time`` (when the row was written), ``__deleted`` (a soft-delete
tombstone whose features are null) and, optionally, ``__batch`` (the write's id).

Semantics of :func:`point_in_time_join`, for each entity row and each group:

1. *Candidates* are the group's rows whose record id equals the entity row's key and whose
   event time ``event_ts`` satisfies ``entity_ts - ttl <= event_ts <= entity_ts`` (both
   bounds inclusive; a group without a TTL has no lower bound). Options narrow them:
   ``created_cutoff`` keeps rows with ``__write_time <= entity_ts`` (only what had been
   written by the entity time), ``as_of`` keeps rows with ``__write_time <= as_of`` (time
   travel), ``event_time_range=(start, end)`` keeps rows with
   ``start <= event_ts <= end`` (inclusive; ``None`` leaves a side open), and
   ``include_deleted=True`` drops tombstones. Rows missing the record id, the event time
   or the write time are never candidates.
2. The *winner* is the candidate with the greatest ``(event_ts, __write_time, __batch)``.
   Its values are returned as they are: a null stays null, nothing is back-filled from an
   older row. Rows equal in all three (duplicates within one write) are the same version
   written twice; which of them is returned is unspecified.
3. By default a tombstone is a candidate like any row; when it wins, the group's features
   are null (the record was deleted then). ``include_deleted=True`` ignores tombstones, so
   the latest values written before a delete are returned.
4. No candidate: the group's features are null.

The result has exactly one row per entity row, in input order, duplicates kept: the
entity's columns unchanged, then each group's features in the order asked for. A feature
keeps its name unless it clashes with an entity column or with a feature of another
group; it is then named ``<group>__<feature>``. Integer features stay integers (Arrow
int64 with nulls, never floats). Entity timestamps must be timezone-aware; group
timestamps are compared at microsecond precision (the offline tables store microseconds),
entity timestamps exactly (a nanosecond entity time is not rounded).

How it runs (DuckDB: a connection of its own per call, to an in-memory database the
process's calls share): per group, an ASOF join of the entity rows (key, time) to the
group's rows, then the TTL as a filter on the match. This
is exact: the ASOF match is the candidate with the greatest event time, so when it is
older than the TTL every other candidate is older still. Equal event times are resolved
before the join by giving each row a single ordering key, ``(event_ts - min) * n + rank``
where ``rank`` orders the ``n`` distinct ``(__write_time, __batch)`` pairs (one per write,
so few); when that key would not fit 64 bits, rows are first reduced to the latest write
per ``(record id, event_ts)`` with a window. With ``created_cutoff`` the candidate set
depends on the entity time through the write time, so the join runs on each row's
*availability* time ``max(event_ts, __write_time)`` instead, over the rows that are a new
running maximum of the ordering key along availability time (the winner among rows
available by ``t`` is the last such row available by ``t``). The range-join strategy
(join every candidate, keep the greatest per entity row with a window) gives the same
answers and is kept for verification and benchmarks; ``bench/featurestore/pit.py``
measures both (ASOF is the default: faster, and its cost does not grow with the TTL).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError, did_you_mean
from trivet.featurestore._pit_sql import RESERVED_COLUMNS, Bounds, Connection, Strategy

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as pads

__all__ = ["RESERVED_COLUMNS", "GroupSource", "Strategy", "latest_rows", "point_in_time_join"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_NO_LOWER_BOUND_US = 2**62  # a TTL this long (146 000 years) bounds nothing


@dataclass(frozen=True, kw_only=True)
class GroupSource:
    """One feature group's offline rows, and which of its features to return.

    Exactly one of ``files`` and ``table`` gives the rows, unless the group has none yet:
    then give neither, and ``schema`` so the (all-null) features get their types.

    Attributes:
        name: The feature group's name; prefixes output columns on a name clash.
        record_id: The record-identifier column (int or string values).
        event_time: The event-time column (a timestamp).
        features: The features to return, in this order.
        ttl: How old a row may be relative to the entity time; ``None`` for no limit.
        files: Parquet files holding the rows (a Delta table's current files).
        table: The rows in memory: a ``pyarrow.Table`` or a ``pyarrow.dataset.Dataset``.
        schema: The group's Arrow schema; when given, output features are cast to it.
    """

    name: str
    record_id: str
    event_time: str
    features: Sequence[str]
    ttl: dt.timedelta | None = None
    files: Sequence[str | os.PathLike[str]] = ()
    table: pa.Table | pads.Dataset | None = None
    schema: pa.Schema | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for what, value in (("features", self.features), ("files", self.files)):
            if isinstance(value, str | os.PathLike):
                raise ValidationError(
                    f"{what} of group {self.name!r} must be a list, not the string {value!r}.",
                    hint=f"wrap it: {what}=[{str(value)!r}]",
                )
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "files", tuple(os.fspath(f) for f in self.files))
        if self.files and self.table is not None:
            raise ValidationError(
                f"Group source {self.name!r} has both files and a table.",
                hint="pass one of them",
            )
        if self.ttl is not None and self.ttl < dt.timedelta(0):
            raise ValidationError(
                f"Group {self.name!r} has a negative ttl {self.ttl}.",
                hint="use a positive duration, or None for no limit",
            )
        seen: set[str] = set()
        for feature in self.features:
            if feature in RESERVED_COLUMNS:
                raise ValidationError(
                    f"{feature!r} is a reserved column of group {self.name!r}, not a feature.",
                    hint="ask for include_match_times=True to see write times",
                )
            if feature in seen:
                raise ValidationError(
                    f"Feature {feature!r} of group {self.name!r} is asked for twice.",
                    hint="list each feature once",
                )
            seen.add(feature)


def point_in_time_join(
    entity: pd.DataFrame | pa.Table,
    sources: Sequence[GroupSource],
    *,
    timestamp: str,
    entity_key: str | Mapping[str, str] | None = None,
    created_cutoff: bool = False,
    as_of: dt.datetime | None = None,
    include_deleted: bool = False,
    event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    include_match_times: bool = False,
    strategy: Strategy = "asof",
    threads: int | None = None,
    memory_limit: str = "50%",
) -> pa.Table:
    """Join each entity row to each group's feature values as of the entity's time.

    The semantics are stated exactly in this module's docstring.

    Args:
        entity: The entity rows (keys, timestamps, and any other columns, e.g. labels).
        sources: The groups to read, each with the features to return.
        timestamp: The entity column holding each row's time (timezone-aware).
        entity_key: The entity column holding the record id: one name for every group, a
            mapping from group name to column, or ``None`` (the default) for a column named
            like each group's record identifier. Groups missing from a mapping use that
            default too.
        created_cutoff: Only use rows written by the entity time (``__write_time <=
            entity_ts``): the training set sees exactly what serving saw then.
        as_of: Only use rows written by this time (time travel).
        include_deleted: Ignore soft-delete tombstones, returning the values a record had
            before it was deleted; by default a delete nulls the record's features.
        event_time_range: ``(start, end)``, both inclusive; only rows whose event time is
            in it are candidates. ``None`` on a side leaves it open.
        include_match_times: Add ``<group>__event_time`` and ``<group>__write_time``
            columns: the winning row's times (null when no row matched).
        strategy: ``"asof"`` (the default, fastest) or ``"range"`` (a range join and a
            window; same results, for verification).
        threads: DuckDB threads; the machine's cores by default.
        memory_limit: DuckDB's memory limit (e.g. ``"4GB"`` or ``"50%"`` of RAM); work
            beyond it spills to a temporary directory.

    Returns:
        An Arrow table: one row per entity row, in input order; the entity's columns, then
        each group's features (and match times when asked for).

    Raises:
        ValidationError: A column is missing, an entity key's type differs from the
            group's record identifier, a timestamp is naive, or options contradict.
        BackendError: DuckDB failed, e.g. a parquet file could not be read.

    Example:
        >>> import datetime as dt, pyarrow as pa
        >>> utc = dt.timezone.utc
        >>> t = lambda day: dt.datetime(2024, 1, day, tzinfo=utc)
        >>> credit = pa.table({
        ...     "user": [1, 1], "ts": [t(1), t(5)], "limit": [100, 250],
        ...     "__write_time": [t(1), t(5)], "__deleted": [False, False]})
        >>> entity = pa.table({"user": [1, 1, 1, 2], "when": [t(4), t(7), t(9), t(7)]})
        >>> src = GroupSource(name="credit", record_id="user", event_time="ts",
        ...                   features=["limit"], ttl=dt.timedelta(days=3), table=credit)
        >>> point_in_time_join(entity, [src], timestamp="when")["limit"].to_pylist()
        [100, 250, None, None]
    """
    import numpy as np
    import pyarrow as pa

    table = _entity_table(entity)
    sources = list(sources)
    _check_sources(sources)
    keys = _entity_keys(table, sources, entity_key)
    if timestamp not in table.column_names:
        raise ValidationError(
            f"The entity has no timestamp column {timestamp!r}.",
            hint=did_you_mean(timestamp, table.column_names),
        )
    ub, frac = _entity_times(table.column(timestamp), timestamp)
    bounds = _bounds(as_of=as_of, event_time_range=event_time_range)
    names = _output_names(table.column_names, sources, include_match_times)

    n = table.num_rows
    rows = np.arange(n, dtype=np.int64)
    columns: list[pa.ChunkedArray | pa.Array] = list(table.columns)
    fields: list[str] = list(table.column_names)
    with Connection(threads=threads, memory_limit=memory_limit) as con:
        for i, source in enumerate(sources):
            view = con.view(source, i)
            key_col = keys[source.name]
            key_type = view.check_key(table.column(key_col), key_col)
            ent = _entity_side(rows, table.column(key_col).cast(key_type), ub, frac, source.ttl)
            result = view.join(
                ent,
                bounds,
                created_cutoff=created_cutoff,
                include_deleted=include_deleted,
                strategy=strategy,
                match_times=include_match_times,
            )
            gathered = _scatter(result, n)
            for j, feature in enumerate(source.features):
                columns.append(view.finish(gathered.column(f"__f{j}"), feature))
                fields.append(names[(source.name, feature)])
            if include_match_times:
                for col, suffix in (("__ev", "event_time"), ("__wt", "write_time")):
                    columns.append(_us_to_timestamp(gathered.column(col)))
                    fields.append(f"{source.name}__{suffix}")
    return pa.Table.from_arrays(columns, names=fields).replace_schema_metadata(
        table.schema.metadata
    )


def latest_rows(
    source: GroupSource,
    n: int = 1,
    *,
    as_of: dt.datetime | None = None,
    include_deleted: bool = False,
    event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    threads: int | None = None,
    memory_limit: str = "50%",
) -> pa.Table:
    """Return the ``n`` most recent rows of each record, newest first.

    Rows are filtered as in :func:`point_in_time_join` (``as_of``, ``event_time_range``,
    ``include_deleted``), then each ``(record id, event time)`` keeps only its latest
    write (greatest ``(__write_time, __batch)``). By default a tombstone deletes the
    record up to its event time: rows at or before a record's latest tombstone are not
    returned (so ``n=1`` gives the same rows as a point-in-time join at the end of time);
    ``include_deleted=True`` ignores tombstones. Tombstones themselves are never returned.

    Args:
        source: The group, with the features to return.
        n: How many rows per record (at least 1).
        as_of: Only use rows written by this time (time travel).
        include_deleted: Ignore tombstones.
        event_time_range: ``(start, end)``, both inclusive.
        threads: DuckDB threads; the machine's cores by default.
        memory_limit: DuckDB's memory limit.

    Returns:
        An Arrow table with the record id, the event time and the features, ordered by
        record id, then event time descending.

    Raises:
        ValidationError: ``n`` is below 1, a column is missing or a time is naive.
        BackendError: DuckDB failed.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError(f"n must be a positive integer, not {n!r}.", hint="use n=1")
    _check_sources([source])
    bounds = _bounds(as_of=as_of, event_time_range=event_time_range)
    with Connection(threads=threads, memory_limit=memory_limit) as con:
        return con.view(source, 0).latest(n, bounds, include_deleted=include_deleted)


# ----------------------------------------------------------------------------- inputs


def _entity_table(entity: pd.DataFrame | pa.Table) -> pa.Table:
    import pyarrow as pa

    if isinstance(entity, pa.Table):
        table = entity
    else:
        import pandas as pd

        if not isinstance(entity, pd.DataFrame):
            raise ValidationError(
                f"The entity must be a pandas DataFrame or a pyarrow Table, "
                f"not {type(entity).__name__}.",
                hint="wrap it, e.g. pd.DataFrame(rows)",
            )
        try:
            table = pa.Table.from_pandas(entity, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise ValidationError(
                f"The entity DataFrame cannot be converted to Arrow: {exc}",
                hint="give each column a single type",
            ) from exc
    dupes = sorted({c for c in table.column_names if table.column_names.count(c) > 1})
    if dupes:
        raise ValidationError(
            f"The entity has duplicate column names: {', '.join(map(repr, dupes))}.",
            hint="rename them",
        )
    return table


def _check_sources(sources: Sequence[GroupSource]) -> None:
    seen: set[str] = set()
    for source in sources:
        if not isinstance(source, GroupSource):
            raise ValidationError(
                f"Expected a GroupSource, got {type(source).__name__}.",
                hint="build one with GroupSource(name=..., record_id=..., ...)",
            )
        if source.name in seen:
            raise ValidationError(
                f"Group {source.name!r} is listed twice.",
                hint="list it once with all the features you need",
            )
        seen.add(source.name)
        if not source.files and source.table is None and source.schema is None:
            raise ValidationError(
                f"Group {source.name!r} has no files, no table and no schema, so the "
                "types of its (all-null) features are unknown.",
                hint="pass schema= for a group without rows",
            )


def _entity_keys(
    table: pa.Table, sources: Sequence[GroupSource], entity_key: str | Mapping[str, str] | None
) -> dict[str, str]:
    names = {s.name for s in sources}
    if isinstance(entity_key, Mapping):
        unknown = sorted(set(entity_key) - names)
        if unknown:
            raise ValidationError(
                f"entity_key names groups that are not joined: {', '.join(map(repr, unknown))}.",
                hint=did_you_mean(unknown[0], names),
            )
    keys: dict[str, str] = {}
    for source in sources:
        if isinstance(entity_key, str):
            column = entity_key
        elif isinstance(entity_key, Mapping):
            column = entity_key.get(source.name, source.record_id)
        else:
            column = source.record_id
        if column not in table.column_names:
            raise ValidationError(
                f"The entity has no key column {column!r} for group {source.name!r}.",
                hint=did_you_mean(column, table.column_names)
                or "pass entity_key= naming the entity column that holds the record id",
            )
        keys[source.name] = column
    return keys


def _output_names(
    entity_columns: Sequence[str], sources: Sequence[GroupSource], match_times: bool
) -> dict[tuple[str, str], str]:
    counts: dict[str, int] = {}
    for source in sources:
        for feature in source.features:
            counts[feature] = counts.get(feature, 0) + 1
    taken = set(entity_columns)
    names: dict[tuple[str, str], str] = {}
    for source in sources:
        wanted = [
            (f, f if counts[f] == 1 and f not in entity_columns else f"{source.name}__{f}")
            for f in source.features
        ]
        if match_times:
            wanted += [(f"\0{s}", f"{source.name}__{s}") for s in ("event_time", "write_time")]
        for feature, name in wanted:
            if name in taken:
                raise ValidationError(
                    f"Output column {name!r} (group {source.name!r}) would appear twice.",
                    hint="rename the clashing entity column",
                )
            taken.add(name)
            names[(source.name, feature)] = name
    return names


def _entity_times(
    column: pa.ChunkedArray, name: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return each time as whole microseconds (floored; null as a sentinel) and the rest.

    The sentinel for a null time is ``INT64_MIN``, which no candidate reaches. ``frac`` is
    the sub-microsecond remainder in nanoseconds (0-999), for the exact TTL lower bound.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if not pa.types.is_timestamp(kind):
        raise ValidationError(
            f"Entity column {name!r} holds {kind}, not timestamps.",
            hint=f"convert it, e.g. df[{name!r}] = pd.to_datetime(df[{name!r}], utc=True)",
        )
    if kind.tz is None:
        raise ValidationError(
            f"Entity column {name!r} holds naive timestamps; the time zone is ambiguous.",
            hint=f"localize it, e.g. df[{name!r}] = df[{name!r}].dt.tz_localize('UTC')",
        )
    raw = pc.fill_null(column.cast(pa.int64()), 0).to_numpy().astype(np.int64, copy=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    per_us = {"s": 1_000_000, "ms": 1_000, "us": 1}
    if kind.unit in per_us:
        us = raw * per_us[kind.unit]
        frac = np.zeros_like(us)
    else:  # ns
        us, frac = np.divmod(raw, 1000)
    us = np.where(valid, us, np.iinfo(np.int64).min)
    return us, frac


def _entity_side(
    rows: npt.NDArray[np.int64],
    keys: pa.ChunkedArray,
    ub: npt.NDArray[np.int64],
    frac: npt.NDArray[np.int64],
    ttl: dt.timedelta | None,
) -> pa.Table:
    """The entity rows as the join sees them: row number, key, time bounds (in µs)."""
    import numpy as np
    import pyarrow as pa

    valid = ub != np.iinfo(np.int64).min
    if keys.null_count:
        valid &= keys.is_valid().to_numpy(zero_copy_only=False)
    if not valid.all():  # rows without a key or a time match nothing: leave them out
        rows, ub, frac, keys = rows[valid], ub[valid], frac[valid], keys.filter(pa.array(valid))
    data: dict[str, Any] = {"__row": rows, "__key": keys, "__ub": ub}
    if ttl is not None:
        ttl_us = ttl // _US
        if ttl_us < _NO_LOWER_BOUND_US:
            ttl_frac = int(getattr(ttl, "nanoseconds", 0))
            # ceil(entity - ttl), exactly: the sub-microsecond parts decide the last step.
            data["__lb"] = ub - ttl_us + (frac > ttl_frac)
    return pa.table(data)


def _bounds(
    *,
    as_of: dt.datetime | None,
    event_time_range: tuple[dt.datetime | None, dt.datetime | None] | None,
) -> Bounds:
    """Check the global filters and turn them into whole microseconds."""
    start = end = None
    if event_time_range is not None:
        if not isinstance(event_time_range, tuple) or len(event_time_range) != 2:
            raise ValidationError(
                f"event_time_range must be a (start, end) pair, not {event_time_range!r}.",
                hint="use None for an open side, e.g. (start, None)",
            )
        lo, hi = event_time_range
        start = None if lo is None else _to_us(lo, "event_time_range start")[1]
        end = None if hi is None else _to_us(hi, "event_time_range end")[0]
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError(
                f"event_time_range starts after it ends: {lo} > {hi}.",
                hint="swap the bounds",
            )
    cut = None if as_of is None else _to_us(as_of, "as_of")[0]
    return Bounds(as_of=cut, start=start, end=end)


def _to_us(value: dt.datetime, what: str) -> tuple[int, int]:
    """Return ``value`` as microseconds since the epoch, floored and ceiled."""
    if not isinstance(value, dt.datetime):
        raise ValidationError(
            f"{what} must be a datetime, not {type(value).__name__}.",
            hint="pass a timezone-aware datetime, e.g. datetime(2024, 1, 1, tzinfo=UTC)",
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{what} {value.isoformat()} is naive; the time zone is ambiguous.",
            hint="pass a timezone-aware datetime, e.g. value.replace(tzinfo=datetime.UTC)",
        )
    floor = (value - _EPOCH) // _US
    return int(floor), int(floor) + (1 if getattr(value, "nanosecond", 0) else 0)


# ----------------------------------------------------------------------------- output


def _scatter(result: pa.Table, n: int) -> pa.Table:
    """Spread the matched rows to their entity positions; unmatched positions are null.

    One ``take`` with null-free indices per column, then the unmatched positions are
    nulled with ``if_else`` (Arrow's ``take`` is several times slower when the indices
    themselves hold nulls).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = result.drop_columns(["__row"])
    if result.num_rows == 0:
        return pa.table([pa.nulls(n, f.type) for f in values.schema], schema=values.schema)
    position = np.zeros(n, dtype=np.int64)
    matched = np.zeros(n, dtype=bool)
    rows = result.column("__row").to_numpy()
    position[rows] = np.arange(len(rows), dtype=np.int64)
    matched[rows] = True
    taken = values.take(pa.array(position))
    if len(rows) == n:
        return taken
    mask = pa.array(matched)
    columns = [pc.if_else(mask, c, pa.scalar(None, c.type)) for c in taken.columns]
    return pa.table(columns, schema=values.schema)


def _us_to_timestamp(column: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa

    return column.cast(pa.int64()).cast(pa.timestamp("us", tz="UTC"))
