"""Encoding records for the online store, and record keys.

A payload is the compact JSON array of a record's feature values in definition
order, timestamps as integer microseconds since the epoch (UTC). Features added to
the group later are appended, so an older, shorter payload decodes with nulls for
them. The record id and event time are not in the payload: the store keeps them.

A large batch's payloads are written by DuckDB (:meth:`Codec.latest_chunks`), byte for
byte what ``json.dumps`` writes for one record (:meth:`Codec.encode`).
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import json
import math
import random
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError
from trivet.featurestore.definitions import Dtype, FeatureGroup
from trivet.featurestore.online._base import OnlineBatch, OnlineRow

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_loads = json.JSONDecoder().decode  # skips json.loads' encoding detection: payloads are UTF-8
_US = dt.timedelta(microseconds=1)


def to_us(value: dt.datetime) -> int:
    """Return an aware datetime as integer microseconds since the epoch."""
    return (value - _EPOCH) // _US


def from_us(value: int) -> dt.datetime:
    """Return integer microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + dt.timedelta(microseconds=value)


def record_key(group: FeatureGroup, record_id: object) -> tuple[Any, str]:
    """Return ``record_id`` typed for the group, and its key text in the online store.

    An int group also accepts a string of digits (as the CLI passes them).
    """
    if group.record_id_dtype is Dtype.INT:
        if isinstance(record_id, bool):
            pass
        elif isinstance(record_id, int):
            return record_id, str(record_id)
        elif isinstance(record_id, str) and record_id.strip().lstrip("-").isdigit():
            value = int(record_id)
            return value, str(value)
        raise ValidationError(
            f"Feature group {group.name!r} has integer record ids, not {record_id!r}.",
            hint="pass an int",
        )
    if isinstance(record_id, str) and record_id:
        return record_id, record_id
    raise ValidationError(
        f"Feature group {group.name!r} has string record ids, not {record_id!r}.",
        hint="pass a non-empty str",
    )


def _encoder(dtype: Dtype) -> Callable[[Any], Any] | None:
    if dtype is Dtype.TIMESTAMP:
        return to_us
    if dtype is Dtype.LIST_TIMESTAMP:
        return lambda v: [None if x is None else to_us(x) for x in v]
    return None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic objects.

    A 1M-row batch creates millions of tuples and rows; the collector would scan the
    growing young generation again and again (a third of the time, measured).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_dumps = json.JSONEncoder(separators=(",", ":")).encode
_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _float_token(value: float | None) -> str:
    if value is None:
        return "null"
    text = float.__repr__(value)
    return _SPECIAL.get(text, text)


def _json_tokens(column: pa.ChunkedArray, dtype: Dtype) -> list[str]:
    """Return each value of a column as the JSON ``json.dumps`` would write for it.

    The same text, a column at a time: floats with ``float.__repr__`` (NaN and
    infinities as ``NaN``/``Infinity``), ints with ``int.__repr__``, timestamps as
    integer microseconds, strings with the C escaper ``json.dumps`` uses; lists through
    ``json.dumps`` itself.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if dtype is Dtype.TIMESTAMP:
        column = column.cast(pa.int64())
    elif dtype is Dtype.LIST_TIMESTAMP:
        column = column.cast(pa.list_(pa.int64()))
    values = column.to_pylist()
    clean = column.null_count == 0
    if dtype is Dtype.FLOAT:
        finite = clean and bool(pc.all(pc.is_finite(column)).as_py() or len(values) == 0)
        return list(map(float.__repr__, values)) if finite else list(map(_float_token, values))
    if dtype in (Dtype.INT, Dtype.TIMESTAMP):
        if clean:
            return list(map(int.__repr__, values))
        return ["null" if v is None else int.__repr__(v) for v in values]
    if dtype is Dtype.BOOL:
        return ["null" if v is None else ("true" if v else "false") for v in values]
    if dtype is Dtype.STRING:
        escape = json.encoder.encode_basestring_ascii
        return ["null" if v is None else escape(v) for v in values]
    return [_dumps(v) for v in values]


def _decoder(dtype: Dtype) -> Callable[[Any], Any] | None:
    if dtype is Dtype.TIMESTAMP:
        return lambda v: None if v is None else from_us(v)
    if dtype is Dtype.LIST_TIMESTAMP:
        return lambda v: None if v is None else [None if x is None else from_us(x) for x in v]
    return None


VECTOR_ROWS = 20_000
"""From this many records, DuckDB writes a batch's payloads (below, Python is quicker)."""
_SCAN_ROWS = 16_384

# DuckDB SQL writing a column's JSON token exactly as json.dumps does (checked by
# duckdb_floats_match for floats); timestamps arrive as int64 microseconds
_SQL_TOKENS = {
    # to_json (yyjson) is twice as quick as CAST but writes 1e+16 as 1e16 and 1e-05 as
    # 0.00001, and -0.0 as 0.0: it takes only the range where Python writes plain decimals
    Dtype.FLOAT: (
        "CASE WHEN abs({c}) >= 1e-4 AND abs({c}) < 1e16 THEN to_json({c})::VARCHAR "
        "WHEN {c} IS NULL THEN 'null' WHEN isfinite({c}) THEN CAST({c} AS VARCHAR) "
        "WHEN isnan({c}) THEN 'NaN' WHEN {c} > 0 THEN 'Infinity' ELSE '-Infinity' END"
    ),
    Dtype.INT: "coalesce(CAST({c} AS VARCHAR), 'null')",
    Dtype.TIMESTAMP: "coalesce(CAST({c} AS VARCHAR), 'null')",
    Dtype.BOOL: "CASE WHEN {c} IS NULL THEN 'null' WHEN {c} THEN 'true' ELSE 'false' END",
}
_PROBE = (
    0.0,
    -0.0,
    0.1,
    1.0,
    -1.5,
    100.0,
    1e15,
    1e16,
    1e22,
    1e-4,
    1e-5,
    3e-7,
    0.0001234,
    123456789012345.6,
    1234567890123456.0,
    9999999999999998.0,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    2.0**53,
    2.0**53 + 2,
    1 / 3,
    math.pi,
    -math.e * 1e-300,
    math.nan,
    math.inf,
    -math.inf,
)


@functools.cache
def duckdb_floats_match() -> bool:
    """Whether DuckDB writes floats as ``json.dumps`` does (the vector path's premise).

    Checked once per process (~50 ms) on edge cases, 2,000 random bit patterns
    (subnormals, huge and tiny exponents) and 2,000 values of every magnitude from 1e-6
    to 1e18: were a DuckDB release to format a float differently, the payloads are
    written by Python, as before, instead of differing from put_record's.
    """
    import duckdb
    import pyarrow as pa

    rng = random.Random(20240601)  # noqa: S311 - a fixed probe, not a secret
    bits = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(2000)]
    scaled = [rng.random() * 10.0 ** rng.randint(-6, 18) for _ in range(2000)]
    floats = [*_PROBE, *bits, *scaled, *(-v for v in scaled[:1000]), None]
    expected = [_float_token(v) for v in floats]
    con = duckdb.connect(":memory:")
    try:
        con.register("probe", pa.table({"c": pa.array(floats, type=pa.float64())}))
        query = f"SELECT {_SQL_TOKENS[Dtype.FLOAT].format(c='c')} AS t FROM probe"
        got = con.sql(query).to_arrow_table()["t"].to_pylist()
    except duckdb.Error:
        return False
    finally:
        con.close()
    return bool(got == expected)


_SPAN = 8  # ints spanning under this many times their count are checked with a bitmap


def all_distinct(column: pa.ChunkedArray | pa.Array) -> bool:
    """Whether no value of a column without nulls repeats.

    Integers skip hashing where it is cheap: ascending ids at once (one comparison
    per value), ids spanning a range under 8 times their count by counting them into
    a bitmap; anything else counts distinct values (a hash of every value: 2 s per
    10M on a shared 2-core machine).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(column)
    if n < 2:
        return True
    if pa.types.is_integer(column.type) and column.null_count == 0:
        values = np.asarray(column.to_numpy(), dtype=np.int64)
        if bool(np.all(values[1:] > values[:-1])):
            return True
        low, high = int(values.min()), int(values.max())
        if high - low < _SPAN * n:
            return int(np.bincount(values - low).max()) <= 1
    return int(pc.count_distinct(column).as_py()) == n


def _latest(table: pa.Table, rid: str, et: str) -> tuple[pa.Table, pa.Array]:
    """Return each record's row with the greatest event time, and its key text.

    In key-text order: a B-tree store (SQLite) inserts sorted keys several times
    faster than shuffled ones (each insert lands on the page the last one left in
    cache).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = table[rid]
    text = ids.cast(pa.string()) if pa.types.is_integer(ids.type) else ids  # as str() writes
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    n = table.num_rows
    if n == 0:
        return table, text
    keyed = table.append_column("__key", text)
    if all_distinct(ids):
        order = pc.sort_indices(text)
        ordered = keyed.take(order)
        return ordered.drop_columns(["__key"]), ordered["__key"].combine_chunks()
    order = pc.sort_indices(keyed, sort_keys=[("__key", "ascending"), (et, "ascending")])
    ordered = keyed.take(order)
    keys = ordered["__key"].combine_chunks()
    changes = pc.not_equal(keys.slice(0, n - 1), keys.slice(1))  # a key's last row
    last = pa.concat_arrays([pc.indices_nonzero(changes), pa.array([n - 1], type=pa.uint64())])
    picked = ordered.take(last)
    return picked.drop_columns(["__key"]), picked["__key"].combine_chunks()


@dataclass(frozen=True, slots=True)
class LatestColumns:
    """The latest row of each record in a batch, encoded, before its write time is known."""

    keys: list[str]
    event_times: list[int]
    payloads: list[bytes | None]

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self, write_time_us: int) -> OnlineBatch:
        """Return them as online rows written at ``write_time_us``."""
        return OnlineBatch(self.keys, self.event_times, write_time_us, self.payloads)


class Codec:
    """Encodes a group's validated rows to online rows and decodes them to dicts."""

    def __init__(self, group: FeatureGroup) -> None:
        self.group = group
        self.names = [f.name for f in group.features]
        self.decoders = [_decoder(f.dtype) for f in group.features]
        self.encoders = [_encoder(f.dtype) for f in group.features]
        self.has_decoders = any(d is not None for d in self.decoders)
        self.key_is_int = group.record_id_dtype is Dtype.INT

    def latest_rows(self, table: pa.Table, write_time_us: int, *, deleted: bool) -> OnlineBatch:
        """Return one online row per record: the row with the greatest event time.

        Validation has refused two rows with the same record id and event time, so
        the latest row per record is unique. See :meth:`latest_chunks`.
        """
        chunks = list(self.latest_chunks(table, deleted=deleted))
        return OnlineBatch(
            [k for c in chunks for k in c.keys],
            [e for c in chunks for e in c.event_times],
            write_time_us,
            [p for c in chunks for p in c.payloads],
        )

    def latest_chunks(
        self, table: pa.Table, *, deleted: bool, rows: int = 100_000
    ) -> Iterator[LatestColumns]:
        """Yield the key, event time and payload of each record's latest row, by key.

        ``rows`` records at a time, in key order, so that a writer can store one chunk
        while the next is encoded. The payloads are the bytes :meth:`encode` makes for
        each row (None for tombstones when ``deleted``). From :data:`VECTOR_ROWS`
        records on, DuckDB writes them, every column at once on every core (Python's
        float formatting alone took 7 s per 10M values, DuckDB's takes 1.2 s); below, or
        where this DuckDB's floats are not Python's (checked once per process), Python
        does.
        """
        picked, key_text = _latest(table, self.group.record_id, self.group.event_time)
        count = picked.num_rows
        vector = (
            count >= VECTOR_ROWS and bool(self.group.features) and not deleted
        ) and duckdb_floats_match()
        con = None
        if vector:
            import duckdb

            con = duckdb.connect(":memory:")
        try:
            for start in range(0, count, rows):
                part, keys = picked.slice(start, rows), key_text.slice(start, rows)
                if con is not None:
                    yield self._vector_chunk(con, part, keys)
                else:
                    yield self._python_chunk(part, keys, deleted=deleted)
        finally:
            if con is not None:
                con.close()

    def _python_chunk(
        self, picked: pa.Table, key_text: pa.Array, *, deleted: bool
    ) -> LatestColumns:
        """:meth:`latest_chunks`' payloads, made a column at a time in Python."""
        import pyarrow as pa

        count = picked.num_rows
        keys: list[str] = key_text.to_pylist()
        events: list[int] = picked[self.group.event_time].cast(pa.int64()).to_pylist()
        payloads: list[bytes | None]
        with _collector_paused():  # millions of young objects, none of them cyclic
            if deleted:
                payloads = [None] * count
            elif not self.group.features:
                payloads = [b"[]"] * count
            else:
                tokens = [_json_tokens(picked[f.name], f.dtype) for f in self.group.features]
                rows = map(",".join, zip(*tokens, strict=True))
                payloads = list(map(str.encode, map("[{}]".format, rows)))
        return LatestColumns(keys, events, payloads)

    def _vector_chunk(
        self, con: duckdb.DuckDBPyConnection, picked: pa.Table, key_text: pa.Array
    ) -> LatestColumns:
        """:meth:`latest_chunks`' payloads, made by one DuckDB query."""
        import pyarrow as pa

        et = self.group.event_time
        columns: dict[str, pa.ChunkedArray | pa.Array] = {
            "k": key_text,
            "e": picked[et].cast(pa.int64()),
        }
        parts: list[str] = []
        for i, feature in enumerate(self.group.features):
            name = f"c{i}"
            column = picked[feature.name]
            if feature.dtype is Dtype.TIMESTAMP:
                column = column.cast(pa.int64())
            elif feature.dtype not in _SQL_TOKENS:  # strings and lists: Python writes them
                column = pa.array(_json_tokens(column, feature.dtype), type=pa.string())
            columns[name] = column
            parts.append(_SQL_TOKENS.get(feature.dtype, "{c}").format(c=name))
        payload = "concat('[', " + ", ',', ".join(parts) + ", ']')"
        # DuckDB shares the scan of an Arrow table out among its threads by chunks
        source = pa.Table.from_batches(pa.table(columns).to_batches(max_chunksize=_SCAN_ROWS))
        con.register("batch", source)
        try:
            out = con.sql(f"SELECT k, e, {payload} AS p FROM batch").to_arrow_table()
        finally:
            con.unregister("batch")
        with _collector_paused():
            return LatestColumns(
                out["k"].to_pylist(),
                out["e"].to_pylist(),
                out["p"].cast(pa.binary()).to_pylist(),
            )

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """Return the payload of one record's typed values (as :func:`validate_record` gives).

        The same bytes :meth:`latest_rows` makes for that record from an Arrow batch.
        """
        out = []
        for name, encode in zip(self.names, self.encoders, strict=True):
            value = values.get(name)
            out.append(value if encode is None or value is None else encode(value))
        return json.dumps(out, separators=(",", ":")).encode()

    def columns(self, payloads: Sequence[bytes | None]) -> list[pa.Array]:
        """Return the feature columns (Arrow, definition order) of many payloads.

        A None payload (a tombstone) gives nulls; a payload written before features
        were added gives nulls for them. Timestamps stay integer microseconds until
        Arrow types them, so values round-trip exactly.
        """
        import pyarrow as pa

        width = len(self.names)
        rows: list[list[Any]] = []
        for payload in payloads:
            values: list[Any] = [] if payload is None else _loads(payload.decode())
            if len(values) < width:
                values.extend([None] * (width - len(values)))
            rows.append(values)
        return [
            pa.array([r[i] for r in rows], type=f.dtype.arrow())
            for i, f in enumerate(self.group.features)
        ]

    def decode(self, row: OnlineRow, features: Sequence[str] | None = None) -> dict[str, Any]:
        """Return a stored row as ``{record id, event time, features...}``."""
        assert row.payload is not None
        values: list[Any] = _loads(row.payload.decode())
        if len(values) < len(self.names):  # features added after this row was written
            values.extend([None] * (len(self.names) - len(values)))
        if self.has_decoders:
            values = [v if d is None else d(v) for v, d in zip(values, self.decoders, strict=False)]
        out: dict[str, Any] = {
            self.group.record_id: int(row.key) if self.key_is_int else row.key,
            self.group.event_time: from_us(row.event_time),
        }
        if features is None:
            out.update(zip(self.names, values, strict=False))
        else:
            index = {n: i for i, n in enumerate(self.names)}
            for name in features:
                out[name] = values[index[name]]
        return out
