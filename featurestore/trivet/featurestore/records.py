"""Single records: ``get_record``, ``batch_get_record``, ``put_record``, soft deletes.

The FeatureStore's methods of those names call these. TTL is applied on read: a record
whose event time is older than ``now - ttl`` reads as None, as does one never written
or deleted. Each group is authorized once per call (``feature:read_online``), never per
record.

Writes go through the durable buffer (:mod:`trivet.featurestore.buffer`): validate,
commit the row to the buffer (fsynced), write it online, return. The offline table
gets it in a micro-batch.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError, did_you_mean
from trivet.featurestore._codec import Codec, from_us, record_key, to_us
from trivet.featurestore.definitions import FeatureGroup
from trivet.featurestore.ingest import IngestReport, validate_record
from trivet.featurestore.online import OnlineRow

if TYPE_CHECKING:
    from trivet.featurestore.store import FeatureStore

__all__ = ["batch_get_record", "get_record", "put_record", "soft_delete"]

_clock = threading.Lock()
_last_write_us = 0


def get_record(
    store: FeatureStore, name: str, record_id: object, *, features: Sequence[str] | None
) -> dict[str, Any] | None:
    """See :meth:`trivet.featurestore.FeatureStore.get_record`."""
    store._require("feature:read_online", name)
    group, codec = store._load(name)
    _check_features(group, features)
    _, key = record_key(group, record_id)
    row = store.online.read(group.id, [key])[0]
    return _decode(codec, row, features, _oldest(group))


def batch_get_record(
    store: FeatureStore,
    requests: Mapping[str, Sequence[object]] | Sequence[tuple[str, object]],
) -> Any:
    """See :meth:`trivet.featurestore.FeatureStore.batch_get_record`."""
    if isinstance(requests, Mapping):
        pairs = [(g, rid) for g, ids in requests.items() for rid in ids]
    else:
        pairs = []
        for item in requests:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValidationError(
                    f"batch_get_record takes (group, record id) pairs, got {item!r}."
                )
            pairs.append(item)
    names = list(dict.fromkeys(g for g, _ in pairs))
    for name in names:
        store._require("feature:read_online", name)
    results: dict[tuple[str, int], dict[str, Any] | None] = {}
    for name in names:
        group, codec = store._load(name)
        oldest = _oldest(group)
        positions = [i for i, (g, _) in enumerate(pairs) if g == name]
        keys = [record_key(group, pairs[i][1])[1] for i in positions]
        rows = store.online.read(group.id, keys)
        for i, row in zip(positions, rows, strict=True):
            results[(name, i)] = _decode(codec, row, None, oldest)
    ordered = [results[(g, i)] for i, (g, _) in enumerate(pairs)]
    if not isinstance(requests, Mapping):
        return ordered
    out: dict[str, list[dict[str, Any] | None]] = {g: [] for g in requests}
    for (g, _), record in zip(pairs, ordered, strict=True):
        out[g].append(record)
    return out


def _oldest(group: FeatureGroup) -> int | None:
    """The oldest event time (µs) still valid under the group's TTL, or None."""
    if group.ttl is None:
        return None
    return int(time.time() * 1_000_000) - group.ttl // dt.timedelta(microseconds=1)


def _check_features(group: FeatureGroup, features: Sequence[str] | None) -> None:
    if features is None:
        return
    if isinstance(features, str):
        raise ValidationError("features must be a list of names, not a string.")
    names = {f.name for f in group.features}
    for name in features:
        if name not in names:
            raise ValidationError(
                f"Feature group {group.name!r} has no feature {name!r}.",
                hint=did_you_mean(name, names),
            )


def _decode(
    codec: Codec,
    row: OnlineRow | None,
    features: Sequence[str] | None,
    oldest: int | None,
) -> dict[str, Any] | None:
    if row is None or row.payload is None:
        return None
    if oldest is not None and row.event_time < oldest:
        return None
    return codec.decode(row, features)


# -- writes --------------------------------------------------------------------------------
def put_record(store: FeatureStore, name: str, record: Mapping[str, Any]) -> IngestReport:
    """See :meth:`trivet.featurestore.FeatureStore.put_record`."""
    store._require("feature:write", name)
    group, codec = store._load(name)
    if not isinstance(record, Mapping):
        raise ValidationError(
            f"put_record needs a mapping of column to value, got {type(record).__name__}."
        )
    values = validate_record(group, record)
    event_time = values[group.event_time]
    assert isinstance(event_time, dt.datetime)  # validated: present and aware
    key = str(values[group.record_id])
    return _buffered(
        store, group, key, to_us(event_time), codec.encode(values), action="feature:put_record"
    )


def soft_delete(store: FeatureStore, group: FeatureGroup, key: str, when: dt.datetime) -> None:
    """Buffer a tombstone for ``key`` at event time ``when`` (authorized by the caller)."""
    _buffered(store, group, key, to_us(when), None, action="feature:delete_record")


def _write_time_us() -> int:
    """Now in microseconds, strictly increasing within the process.

    Two writes of one record at one event time are told apart by write time (the later
    wins, online and in training sets), so no two writes here may share one.
    """
    global _last_write_us
    now = time.time_ns() // 1000
    with _clock:
        _last_write_us = max(now, _last_write_us + 1)
        return _last_write_us


def _buffered(
    store: FeatureStore,
    group: FeatureGroup,
    key: str,
    event_us: int,
    payload: bytes | None,
    *,
    action: str,
) -> IngestReport:
    """Commit one write to the buffer (durably), then online; flush when one is due."""
    from trivet.featurestore.buffer import write_id

    buffer = store._buffer()
    row = OnlineRow(key=key, event_time=event_us, write_time=_write_time_us(), payload=payload)
    written = write_id()
    buffer.append(group.id, row, action=action, write_id=written, writer=store._writer())
    if group.online:
        store.online.write(group.id, [row])
    store._buffered_one(group)
    return IngestReport(
        group=group.name,
        batch_id=written,
        rows=1,
        records=1,
        offline_version=None,
        write_time=from_us(row.write_time),
        duplicate=False,
        buffered=True,
    )
