"""Encoding records for the online store, and record keys.

A payload is the compact JSON array of a record's feature values in definition
order, timestamps as integer microseconds since the epoch (UTC). Features added to
the group later are appended, so an older, shorter payload decodes with nulls for
them. The record id and event time are not in the payload: the store keeps them.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError
from trivet.featurestore.definitions import Dtype, FeatureGroup
from trivet.featurestore.online._base import OnlineRow

if TYPE_CHECKING:
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


class Codec:
    """Encodes a group's validated rows to online rows and decodes them to dicts."""

    def __init__(self, group: FeatureGroup) -> None:
        self.group = group
        self.names = [f.name for f in group.features]
        self.decoders = [_decoder(f.dtype) for f in group.features]
        self.encoders = [_encoder(f.dtype) for f in group.features]
        self.has_decoders = any(d is not None for d in self.decoders)
        self.key_is_int = group.record_id_dtype is Dtype.INT

    def latest_rows(self, table: pa.Table, write_time_us: int, *, deleted: bool) -> list[OnlineRow]:
        """Return one online row per record: the row with the greatest event time.

        Validation has refused two rows with the same record id and event time, so
        the latest row per record is unique.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        if table.num_rows == 0:
            return []
        rid, et = self.group.record_id, self.group.event_time
        order = pc.sort_indices(table, sort_keys=[(rid, "ascending"), (et, "ascending")])
        ordered = table.take(order)
        keys = ordered[rid].combine_chunks()
        n = len(keys)
        changes = pc.not_equal(keys.slice(0, n - 1), keys.slice(1))  # a key's last row
        last = pa.concat_arrays([pc.indices_nonzero(changes), pa.array([n - 1], type=pa.uint64())])
        picked = ordered.take(last)
        events = picked[et].cast(pa.int64()).to_pylist()
        key_text = [str(k) for k in picked[rid].to_pylist()]
        count = len(key_text)
        with _collector_paused():  # millions of young objects, none of them cyclic
            if deleted:
                payloads: list[bytes | None] = [None] * count
            elif not self.group.features:
                payloads = [b"[]"] * count
            else:
                tokens = [_json_tokens(picked[f.name], f.dtype) for f in self.group.features]
                rows = map(",".join, zip(*tokens, strict=True))
                payloads = list(map(str.encode, map("[{}]".format, rows)))
            return [
                OnlineRow(key=k, event_time=e, write_time=write_time_us, payload=p)
                for k, e, p in zip(key_text, events, payloads, strict=True)
            ]

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
