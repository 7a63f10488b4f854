"""Ingestion: validate a whole batch, then write it offline, online and to the catalog.

**Validation first, all of it.** A batch (a pandas DataFrame, a pyarrow Table, or a
``.parquet``/``.csv`` file) is checked against the group's definition before anything
is written, and *every* problem is reported in one :class:`IngestValidationError`
(``.problems``; rows count from 0 in input order): a missing record-id or event-time
column, unknown or reserved (``__…``) columns, values that cannot be read as the
feature's type (with the value quoted), nulls or empty strings in the record id,
nulls in the event time, and two rows with the same record id and event time (they
would be indistinguishable in a training set). Feature columns left out of the batch
are null. Integers are read as floats where the feature is a float; floats with a
fraction are refused for an int feature; timestamps are truncated to microseconds.

**Naive timestamps are refused.** A timestamp without a time zone (a naive pandas
column, a CSV value without ``Z`` or ``+hh:mm``) is ambiguous; trivet will not guess
that it is UTC. The error names the column and the fix
(``df[col] = df[col].dt.tz_localize("UTC")``). Aware timestamps in any zone are
converted to UTC.

**Then the writes, exactly once.** The validated batch gets an id: the SHA-256 of the
group id and the canonical Arrow IPC stream of the validated table (one schema, no
metadata, fixed record-batch size), so the same rows in the same order are the same
batch. Then, in this order:

1. *Offline* (Delta Lake): one append commit carrying the Delta app transaction
   ``trivet-batch-<id>``. Before committing, the writer checks whether the table has
   seen that transaction; Delta itself refuses a second concurrent commit of it.
2. *Online*: per record, the batch's latest row is upserted where its event time is
   newer than the stored one (equal: the later write wins); older rows go offline only.
   The upsert is idempotent, applied per key, 100,000 records per store write; the
   rows are encoded while the Delta append runs, but written only after it committed.
3. *Catalog*: the ``feature_batches`` row and the audit row, in one transaction.

The catalog row says "this batch is complete"; a batch that has one is skipped
whole (``IngestReport.duplicate``). A process that dies between steps 1 and 3 leaves
a committed Delta version but no catalog row; re-ingesting the batch finds the app
transaction in the table, does not append again, re-applies the online upsert with
the first attempt's ``__write_time``, and records the batch. That is why the Delta
app transaction, not the catalog row alone, guards the offline write: the catalog
cannot commit atomically with the Delta log, and a catalog-first order would record
batches that never reached the table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trivet.errors import NotFound, ValidationError
from trivet.featurestore._codec import Codec, LatestColumns, all_distinct, to_us
from trivet.featurestore._progress import ProgressFn, quiet
from trivet.featurestore.definitions import Dtype, FeatureGroup
from trivet.featurestore.errors import IngestValidationError, RowProblem

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from trivet.featurestore.store import FeatureStore

__all__ = [
    "IngestReport",
    "batch_id_of",
    "ingest_data",
    "load",
    "validate",
    "validate_record",
    "write_batch",
]

_PARALLEL_ROWS = 50_000  # below this, one thread validates: threads would cost more
_CHUNK = 4096  # rows per slice when looking for the bad values of a column
_IPC_BATCH = 65_536
_ONLINE_CHUNK = 100_000  # records per online-store write (a transaction each)


@dataclass(frozen=True, kw_only=True)
class IngestReport:
    """What an ingest (or ``put_record``/``delete_record``) did."""

    group: str
    batch_id: str
    rows: int
    records: int  # distinct record ids in the batch
    offline_version: int | None  # the Delta version holding it (None: offline off or unknown)
    write_time: dt.datetime
    duplicate: bool  # the batch had been ingested before: nothing was written
    buffered: bool = False  # put_record/delete_record: durable in the buffer, offline at its flush


# -- loading -----------------------------------------------------------------------------
def load(data: object, group: FeatureGroup) -> pd.DataFrame | pa.Table:
    """Return ``data`` as a DataFrame or Arrow table (reading a .parquet/.csv path)."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pd.DataFrame | pa.Table):
        return data
    if not isinstance(data, str | os.PathLike):
        raise ValidationError(
            f"Cannot ingest a {type(data).__name__}.",
            hint="pass a pandas DataFrame, a pyarrow Table, or a path to a .parquet or .csv file",
        )
    path = Path(data)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValidationError(
            f"Cannot ingest {str(path)!r}: only .parquet and .csv files are read.",
            hint="convert it, or load it with pandas and pass the DataFrame",
        )
    if not path.is_file():
        raise NotFound(f"The file {str(path)!r} does not exist.")
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pacsv

        # every column as text: the validator reads each as its feature's type, so that
        # "007" stays a string id and a bad value is reported with its row
        names = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16)).schema
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names.names}, strings_can_be_null=True
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError(
            f"Cannot read {str(path)!r}: {str(exc).strip().splitlines()[0]}.",
            hint="check that the file is a valid " + suffix[1:] + " file",
        ) from exc


# -- converting one column -------------------------------------------------------------
_NAIVE_HINT = "localize it, e.g. df[{c!r}] = df[{c!r}].dt.tz_localize('UTC')"


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    # a value can be pd.NA or pd.NaT only once pandas is loaded (or loading, elsewhere)
    pd = sys.modules.get("pandas")
    return pd is not None and (
        value is getattr(pd, "NA", _is_missing) or value is getattr(pd, "NaT", _is_missing)
    )


def _py_value(value: object, dtype: Dtype) -> object:
    """Convert one Python value to ``dtype``'s Python form, or raise ValueError(reason)."""
    import numpy as np

    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if dtype.is_list:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, list | tuple):
            raise ValueError(f"{value!r} is not a list")
        return [_py_value(v, dtype.element) for v in value]
    if dtype is Dtype.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
    elif dtype is Dtype.FLOAT:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:  # an int too large for a float: reported as a bad value
                pass
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif dtype is Dtype.STRING:
        if isinstance(value, str):
            return value
    elif dtype is Dtype.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif dtype is Dtype.TIMESTAMP:
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
        if isinstance(value, dt.datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(
                    f"{value!s} has no time zone (add 'Z' or '+00:00', or localize it)"
                )
            return value.astimezone(dt.UTC)
    raise ValueError(f"{value!r} cannot be read as {dtype.value}")


def _arrow_reason(value: object, dtype: Dtype) -> str:
    import pyarrow as pa
    import pyarrow.compute as pc

    if dtype.element is Dtype.TIMESTAMP and isinstance(value, str):
        try:  # does it parse once the zone is not required? then the zone is what is missing
            pc.cast(pa.array([value]), pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return f"{value!r} is not an ISO 8601 timestamp"
        return f"{value!r} has no time zone (add 'Z' or '+00:00')"
    return f"{value!r} cannot be read as {dtype.value}"


def _convert_arrow(
    column: str, arr: pa.ChunkedArray | pa.Array, dtype: Dtype, problems: list[RowProblem]
) -> pa.Array | None:
    """Cast an Arrow column to ``dtype``; report bad rows (or a bad column) in ``problems``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    target = dtype.arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    source = arr.type
    if pa.types.is_null(source):
        return pa.nulls(len(arr), type=target)
    naive = (pa.types.is_timestamp(source) and source.tz is None) or pa.types.is_date(source)
    naive_list = (
        pa.types.is_list(source)
        and pa.types.is_timestamp(source.value_type)
        and source.value_type.tz is None
    )
    if dtype.element is Dtype.TIMESTAMP and (naive or naive_list):
        problems.append(
            RowProblem(
                row=None,
                column=column,
                reason=f"holds timestamps without a time zone ({source}); "
                + _NAIVE_HINT.format(c=column),
            )
        )
        return None
    options = pc.CastOptions(target, allow_time_truncate=True)
    try:
        return pc.cast(arr, options=options)
    except pa.ArrowNotImplementedError:
        problems.append(
            RowProblem(
                row=None,
                column=column,
                reason=f"holds {source} values, which cannot be read as {dtype.value}",
            )
        )
        return None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    for start in range(0, len(arr), _CHUNK):  # find the bad rows, a slice at a time
        part = arr.slice(start, _CHUNK)
        try:
            pc.cast(part, options=options)
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
        for i in range(len(part)):
            try:
                pc.cast(part.slice(i, 1), options=options)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                value = part[i].as_py()
                problems.append(
                    RowProblem(row=start + i, column=column, reason=_arrow_reason(value, dtype))
                )
    return None


def _convert_objects(
    column: str, values: Sequence[object], dtype: Dtype, problems: list[RowProblem]
) -> pa.Array | None:
    """Convert Python objects one by one (a pandas object column Arrow cannot type)."""
    import pyarrow as pa

    out: list[object] = []
    bad = False
    for row, value in enumerate(values):
        try:
            out.append(_py_value(value, dtype))
        except ValueError as exc:
            problems.append(RowProblem(row=row, column=column, reason=str(exc)))
            bad = True
    if bad:
        return None
    try:
        return pa.array(out, type=dtype.arrow())
    except (pa.ArrowException, OverflowError) as exc:
        problems.append(RowProblem(row=None, column=column, reason=f"cannot be stored: {exc}"))
        return None


def _convert(
    data: pd.DataFrame | pa.Table, column: str, dtype: Dtype
) -> tuple[pa.Array | None, list[RowProblem]]:
    import pyarrow as pa

    problems: list[RowProblem] = []
    if isinstance(data, pa.Table):
        return _convert_arrow(column, data[column], dtype, problems), problems
    series = data[column]
    if dtype.element is Dtype.TIMESTAMP and series.dtype == object:
        # pyarrow silently reads naive datetime objects as UTC: check them one by one
        return _convert_objects(column, series.tolist(), dtype, problems), problems
    try:
        arr = pa.array(series, from_pandas=True)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return _convert_objects(column, series.tolist(), dtype, problems), problems
    return _convert_arrow(column, arr, dtype, problems), problems


# -- the whole batch ---------------------------------------------------------------------
def validate(
    group: FeatureGroup, data: pd.DataFrame | pa.Table, *, max_workers: int | None = None
) -> pa.Table:
    """Return the batch as the group's typed table, or raise with every problem in it.

    Args:
        group: the feature group.
        data: a DataFrame or an Arrow table (see :func:`load` for files).
        max_workers: threads converting columns at once (default: the CPU count; one
            for batches under 50,000 rows).

    Raises:
        IngestValidationError: listing every bad row and column.
    """
    import pandas as pd
    import pyarrow as pa

    columns = [str(c) for c in (data.column_names if isinstance(data, pa.Table) else data.columns)]
    if isinstance(data, pd.DataFrame) and len(set(columns)) != len(columns):
        raise IngestValidationError(
            group.name,
            [RowProblem(row=None, column=c, reason="appears twice") for c in _twice(columns)],
        )
    n = data.num_rows if isinstance(data, pa.Table) else len(data)
    problems: list[RowProblem] = []
    known = set(group.columns)
    for column in columns:
        if column.startswith("__"):
            problems.append(
                RowProblem(row=None, column=column, reason="is reserved for trivet's columns")
            )
        elif column not in known:
            problems.append(
                RowProblem(
                    row=None,
                    column=column,
                    reason=f"is not a feature of group {group.name!r} (add it with "
                    "add_features, or drop the column)",
                )
            )
    for key, what in ((group.record_id, "record id"), (group.event_time, "event time")):
        if key not in columns:
            problems.append(
                RowProblem(row=None, column=key, reason=f"the {what} column is missing")
            )
    dtypes = {group.record_id: group.record_id_dtype, group.event_time: Dtype.TIMESTAMP}
    dtypes.update({f.name: f.dtype for f in group.features})
    present = [c for c in group.columns if c in columns]
    workers = 1 if n < _PARALLEL_ROWS else (max_workers or os.cpu_count() or 1)
    convert: Callable[[str], tuple[pa.Array | None, list[RowProblem]]] = lambda c: _convert(  # noqa: E731
        data, c, dtypes[c]
    )
    if workers > 1 and len(present) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(convert, present))
    else:
        results = [convert(c) for c in present]
    arrays: dict[str, pa.Array | None] = {}
    for column, (arr, found) in zip(present, results, strict=True):
        arrays[column] = arr
        problems.extend(found)
    problems.extend(_key_problems(group, data, problems))
    if not problems:
        problems.extend(_duplicates(group, arrays))
    if problems:
        problems.sort(key=lambda p: (-1 if p.row is None else p.row, p.column or ""))
        raise IngestValidationError(group.name, problems)
    schema = group.arrow_schema()
    return pa.table(
        [
            arrays[c] if c in arrays else pa.nulls(n, type=schema.field(c).type)
            for c in group.columns
        ],
        schema=pa.schema([schema.field(c) for c in group.columns]),
    )


_INT64 = (-(2**63), 2**63 - 1)


def validate_record(group: FeatureGroup, record: Mapping[str, object]) -> dict[str, object]:
    """Return one record's values typed for the group (features left out are None).

    The rules and errors are exactly those of :func:`validate` on a one-row batch: a
    record whose values already have their features' Python types (the usual case) is
    checked here in microseconds; any other goes through :func:`validate` itself, which
    accepts what a one-row ingest accepts and reports what it refuses.

    Raises:
        IngestValidationError: as :func:`validate` would for the one-row batch.
    """
    quick = _quick_record(group, record)
    if quick is not None:
        return quick
    import pandas as pd

    frame = pd.DataFrame({str(k): pd.Series([v], dtype=object) for k, v in record.items()})
    table = validate(group, frame)
    return {c: table[c][0].as_py() for c in group.columns}


def _quick_record(group: FeatureGroup, record: Mapping[str, object]) -> dict[str, object] | None:
    """Return the typed values if every value already has its feature's type, else None.

    Only what a one-row ingest provably reads the same way is accepted here: ints for
    ints (in the int64 range), floats (and ints exact in a float) for floats, str, bool,
    timestamps (which the batch path converts with :func:`_py_value` too), lists of
    those; anything else — text to parse, numpy arrays, an unknown column — goes to
    :func:`validate`.
    """
    dtypes = {group.record_id: group.record_id_dtype, group.event_time: Dtype.TIMESTAMP}
    dtypes.update({f.name: f.dtype for f in group.features})
    if group.record_id not in record or group.event_time not in record:
        return None
    if any(not isinstance(k, str) or k not in dtypes for k in record):
        return None
    out: dict[str, object] = {}
    for name, dtype in dtypes.items():
        value = record.get(name)
        if _is_missing(value):
            out[name] = None
        elif dtype.element is Dtype.TIMESTAMP:  # the batch path reads these with _py_value
            try:
                out[name] = _py_value(value, dtype)
            except ValueError:
                return None
        else:
            typed = _quick_value(value, dtype)
            if typed is _NO:
                return None
            out[name] = typed
    rid = out[group.record_id]
    if rid is None or rid == "" or out[group.event_time] is None:
        return None
    return out


_NO = object()
_FLOAT_EXACT = 2**53


def _quick_value(value: object, dtype: Dtype) -> object:
    """Return a non-timestamp ``value`` as ``dtype`` if it has that type, else ``_NO``."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    if not dtype.is_list:
        return _quick_scalar(value, dtype)
    if not isinstance(value, list | tuple):
        return _NO
    items = [v if v is None else _quick_scalar(v, dtype.element) for v in value]
    return _NO if any(v is _NO for v in items) else items


def _quick_scalar(value: object, dtype: Dtype) -> object:
    low, high = _INT64
    if isinstance(value, bool):
        return value if dtype is Dtype.BOOL else _NO
    if isinstance(value, int):
        if dtype is Dtype.INT and low <= value <= high:
            return value
        if dtype is Dtype.FLOAT and -_FLOAT_EXACT <= value <= _FLOAT_EXACT:
            return float(value)
        return _NO
    if isinstance(value, float):
        return value if dtype is Dtype.FLOAT and not math.isnan(value) else _NO
    if isinstance(value, str):
        return value if dtype is Dtype.STRING else _NO
    return _NO


def _twice(columns: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({c for c in columns if c in seen or seen.add(c)})  # type: ignore[func-returns-value]


def _key_problems(
    group: FeatureGroup, data: pd.DataFrame | pa.Table, reported: Sequence[RowProblem]
) -> list[RowProblem]:
    """Report missing (null, or empty-string) record ids and event times.

    Read from the input itself, so that a key column with unreadable values still has
    its missing values reported; rows already reported for that column are skipped.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[RowProblem] = []
    columns = data.column_names if isinstance(data, pa.Table) else list(data.columns)
    for key, what in ((group.record_id, "record id"), (group.event_time, "event time")):
        if key not in columns:
            continue
        done = {p.row for p in reported if p.column == key}
        if isinstance(data, pa.Table):
            col = data[key]
            bad = pc.is_null(col, nan_is_null=pa.types.is_floating(col.type))
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                bad = pc.or_kleene(bad, pc.equal(col, ""))
            rows = pc.indices_nonzero(pc.fill_null(bad, True)).to_pylist()
        else:
            series = data[key]
            mask = series.isna() | series.map(lambda v: isinstance(v, str) and v == "")
            rows = [int(i) for i in np.flatnonzero(mask.to_numpy(dtype=bool))]
        for row in rows:
            if row not in done:
                out.append(RowProblem(row=row, column=key, reason=f"the {what} is missing"))
    return out


def _duplicates(group: FeatureGroup, arrays: Mapping[str, pa.Array | None]) -> list[RowProblem]:
    """Report rows repeating an earlier row's record id and event time."""
    import pyarrow as pa

    rid, et = arrays[group.record_id], arrays[group.event_time]
    assert rid is not None and et is not None
    if all_distinct(rid):  # the usual batch: one row per record
        return []
    keys = pa.table({"r": rid, "e": et})
    if keys.group_by(["r", "e"]).aggregate([]).num_rows == keys.num_rows:
        return []
    frame = keys.to_pandas()
    first = frame.reset_index().groupby(["r", "e"], sort=False)["index"].transform("min")
    out = []
    for row in frame.index[frame.duplicated(["r", "e"], keep="first")]:
        out.append(
            RowProblem(
                row=int(row),
                column=None,
                reason=f"repeats the record id and event time of row {int(first[row])}",
            )
        )
    return out


# -- writing a batch ---------------------------------------------------------------------
def ingest_data(
    store: FeatureStore,
    group: FeatureGroup,
    data: object,
    *,
    max_workers: int | None = None,
    progress: ProgressFn = quiet,
) -> IngestReport:
    """Load, validate and write a batch (see :meth:`FeatureStore.ingest`), step by step.

    ``progress`` is told each step (see :mod:`trivet.featurestore._progress`).
    """
    if isinstance(data, str | os.PathLike):
        progress("read", 0, 0)
        loaded = load(data, group)
        n = _rows(loaded)
        progress("read", n, n)
    else:
        loaded = load(data, group)
        n = _rows(loaded)
    progress("validate", 0, n)
    table = validate(group, loaded, max_workers=max_workers)
    progress("validate", n, n)
    return write_batch(store, group, table, action="feature:ingest", progress=progress)


def _rows(data: pd.DataFrame | pa.Table) -> int:
    import pyarrow as pa

    return int(data.num_rows) if isinstance(data, pa.Table) else len(data)


def write_batch(
    store: FeatureStore,
    group: FeatureGroup,
    table: pa.Table,
    *,
    action: str,
    progress: ProgressFn = quiet,
) -> IngestReport:
    """Write a validated batch offline, online and to the catalog, exactly once.

    The steps and the recovery are in this module's docstring. A batch's id is its
    content's digest, so ingesting the same batch again is a no-op. (Single-record
    writes go through the write buffer instead: :mod:`trivet.featurestore.buffer`.)
    The online rows are encoded in a second thread while the Delta append runs (both
    spend their time outside the GIL), and written once the append has committed.
    """
    import sqlalchemy as sa

    from trivet.platform.catalog import now_utc
    from trivet.platform.catalog._catalog import as_utc
    from trivet.platform.catalog.schema import feature_batches

    rows = table.num_rows
    progress("batch id", 0, rows)
    batch_id = batch_id_of(group, table, kind="rows")
    records = distinct_records(group, table)
    with store._s.catalog.read() as conn:
        done = conn.execute(
            sa.select(feature_batches).where(
                feature_batches.c.group_id == group.id,
                feature_batches.c.batch_id == batch_id,
            )
        ).first()
    progress("batch id", rows, rows)
    if done is not None or rows == 0:
        written = as_utc(done.write_time) if done is not None else None
        return IngestReport(
            group=group.name,
            batch_id=batch_id,
            rows=rows,
            records=records,
            offline_version=done.offline_version if done is not None else None,
            write_time=written or now_utc(),
            duplicate=done is not None,
        )
    write_time = now_utc()
    version: int | None = None
    recovered = False
    with _Encoder(group, table, online=group.online) as encoded:
        if group.offline:
            progress("write offline", 0, rows)
            result = store.offline.append(group, table, batch_id=batch_id, write_time=write_time)
            write_time, version, recovered = result.write_time, result.version, result.already
            progress("write offline", rows, rows)
        if group.online:
            _write_online(store, group, encoded, to_us(write_time), records, progress)
    progress("record", 0, rows)
    with store._s.catalog.write() as conn:
        exists = conn.execute(
            sa.select(feature_batches.c.batch_id).where(
                feature_batches.c.group_id == group.id,
                feature_batches.c.batch_id == batch_id,
            )
        ).first()
        if exists is None:
            conn.execute(
                sa.insert(feature_batches).values(
                    group_id=group.id,
                    batch_id=batch_id,
                    rows=rows,
                    offline_version=version,
                    write_time=write_time,
                    created_at=now_utc(),
                    created_by=store._s.principal.id,
                )
            )
        store._s.record(
            conn,
            action=action,
            resource=group.resource,
            detail={
                "batch": batch_id,
                "rows": rows,
                "offline_version": version,
                "recovered": recovered,
            },
        )
    progress("record", rows, rows)
    return IngestReport(
        group=group.name,
        batch_id=batch_id,
        rows=rows,
        records=records,
        offline_version=version,
        write_time=write_time,
        duplicate=exists is not None,
    )


def _write_online(
    store: FeatureStore,
    group: FeatureGroup,
    encoded: _Encoder,
    write_time_us: int,
    records: int,
    progress: ProgressFn,
) -> None:
    """Upsert a batch's online rows, a chunk (a store write) at a time, as encoded."""
    progress("write online", 0, records)
    done = 0
    for chunk in encoded:
        store.online.write(group.id, chunk.rows(write_time_us))
        done += len(chunk)
        progress("write online", done, records)


class _Encoder:
    """Encodes a batch's online rows in a thread of its own, a chunk at a time.

    Started on entering (with ``online``), while the caller appends the batch offline
    (both spend their time outside the GIL); iterating yields the chunks in key order
    as they are ready, then re-raises the encoder's error if it had one. Leaving stops
    the thread after its current chunk.
    """

    def __init__(self, group: FeatureGroup, table: pa.Table, *, online: bool) -> None:
        self._group, self._table, self._online = group, table, online
        self._chunks: queue.SimpleQueue[LatestColumns | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> _Encoder:
        if self._online:
            self._thread = threading.Thread(target=self._run, name="trivet-encode", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for chunk in online_chunks(self._group, self._table):
                if self._stop.is_set():
                    return
                self._chunks.put(chunk)
        except BaseException as exc:  # handed to the caller, re-raised in its thread
            self._error = exc
        finally:
            self._chunks.put(None)

    def __iter__(self) -> Iterator[LatestColumns]:
        while (chunk := self._chunks.get()) is not None:
            yield chunk
        if self._error is not None:
            raise self._error

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# -- identity of a batch ---------------------------------------------------------------
class _HashSink:
    """A write-only file object that hashes what is written to it."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def batch_id_of(group: FeatureGroup, table: pa.Table, *, kind: str = "rows") -> str:
    """Return the batch id: sha256 of the group id, the kind and the canonical Arrow IPC."""
    import pyarrow as pa

    sink = _HashSink()
    sink.digest.update(f"trivet-batch-v1\0{group.id}\0{kind}\0".encode())
    canonical = table.replace_schema_metadata(None).combine_chunks()
    with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), canonical.schema) as writer:
        writer.write_table(canonical, max_chunksize=_IPC_BATCH)
    return sink.digest.hexdigest()


def distinct_records(group: FeatureGroup, table: pa.Table) -> int:
    """Return how many distinct record ids the table holds."""
    import pyarrow.compute as pc

    column = table[group.record_id]
    if all_distinct(column):
        return int(table.num_rows)
    return int(pc.count_distinct(column).as_py())


def online_chunks(
    group: FeatureGroup, table: pa.Table, *, deleted: bool = False
) -> Iterator[LatestColumns]:
    """Yield the latest row of each record of a validated batch, encoded, by key.

    :data:`_ONLINE_CHUNK` records at a time (see :meth:`Codec.latest_chunks`).
    """
    return Codec(group).latest_chunks(table, deleted=deleted, rows=_ONLINE_CHUNK)
