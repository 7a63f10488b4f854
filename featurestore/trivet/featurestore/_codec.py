"""Encoding records for the online store, and record keys.

A payload is the compact JSON array of a record's feature values in definition
order, timestamps as integer microseconds since the epoch (UTC). Features added to
the group later are appended, so an older, shorter payload decodes with nulls for
them. The record id and event time are not in the payload: the store keeps them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
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
        keys = ordered[rid].to_pylist()
        last = [i for i in range(len(keys)) if i + 1 == len(keys) or keys[i + 1] != keys[i]]
        picked = ordered.take(pa.array(last, type=pa.int64()))
        events = picked[et].cast(pa.int64()).to_pylist()
        key_text = [str(k) for k in picked[rid].to_pylist()]
        if deleted:
            payloads: list[bytes | None] = [None] * len(last)
        else:
            columns = []
            for feat in self.group.features:
                col = picked[feat.name]
                if feat.dtype is Dtype.TIMESTAMP:
                    col = col.cast(pa.int64())
                elif feat.dtype is Dtype.LIST_TIMESTAMP:
                    col = col.cast(pa.list_(pa.int64()))
                columns.append(col.to_pylist())
            payloads = [
                json.dumps(list(values), separators=(",", ":")).encode()
                for values in zip(*columns, strict=True)
            ] or [b"[]"] * len(last)
        return [
            OnlineRow(key=k, event_time=e, write_time=write_time_us, payload=p)
            for k, e, p in zip(key_text, events, payloads, strict=True)
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
