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
import json
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from trivet.errors import BackendError, ValidationError, did_you_mean
from trivet.featurestore._codec import Codec, from_us, record_key, to_us
from trivet.featurestore.definitions import FeatureGroup
from trivet.featurestore.ingest import IngestReport, validate_record
from trivet.featurestore.online import OnlineRow, OnlineStore

if TYPE_CHECKING:
    from trivet.featurestore.store import FeatureStore

__all__ = ["batch_get_record", "get_record", "put_record", "soft_delete"]

_clock = threading.Lock()
_last_write_us = 0
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_delta = dt.timedelta  # positional (days, seconds, microseconds): faster than keywords
_scan = json.JSONDecoder().raw_decode


def get_record(
    store: FeatureStore, name: str, record_id: object, *, features: Sequence[str] | None
) -> dict[str, Any] | None:
    """See :meth:`trivet.featurestore.FeatureStore.get_record`."""
    store._require("feature:read_online", name)
    group, codec = store._load(name)
    if features is not None:
        _check_features(group, features)
    typed, key = record_key(group, record_id)
    rows = _read_payloads(store.online, group.id, [key])
    return _decode_many(codec, [typed], rows, _oldest(group), features)[0]


def batch_get_record(
    store: FeatureStore,
    requests: Mapping[str, Sequence[object]] | Sequence[tuple[str, object]],
) -> Any:
    """See :meth:`trivet.featurestore.FeatureStore.batch_get_record`.

    Every group asked for is authorized before any is looked up; then each group's
    records are read with one online-store call and their payloads decoded together.
    """
    if isinstance(requests, Mapping):
        wanted = {name: list(ids) for name, ids in requests.items()}
        for name, ids in wanted.items():
            if ids:
                store._require("feature:read_online", name)
        return {name: _read_group(store, name, ids) for name, ids in wanted.items()}
    by_group: dict[str, list[object]] = {}
    order: list[tuple[str, int]] = []  # per pair: its group, and its place among the group's
    for item in requests:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValidationError(f"batch_get_record takes (group, record id) pairs, got {item!r}.")
        name, record_id = item
        ids = by_group.setdefault(name, [])
        order.append((name, len(ids)))
        ids.append(record_id)
    for name in by_group:
        store._require("feature:read_online", name)
    found = {name: _read_group(store, name, ids) for name, ids in by_group.items()}
    return [found[name][i] for name, i in order]


def _read_group(
    store: FeatureStore, name: str, record_ids: Sequence[object]
) -> list[dict[str, Any] | None]:
    """Read one group's records (the caller authorized it), in the ids' order."""
    if not record_ids:
        return []
    group, codec = store._load(name)
    typed, keys = _record_keys(group, codec, record_ids)
    rows = _read_payloads(store.online, group.id, keys)
    return _decode_many(codec, typed, rows, _oldest(group), None)


def _record_keys(
    group: FeatureGroup, codec: Codec, record_ids: Sequence[object]
) -> tuple[list[object], list[str]]:
    """The typed record ids and their online keys, as :func:`record_key` makes them.

    Ids of exactly the group's type (non-empty ``str``, or ``int``) need no conversion;
    any other id goes through :func:`record_key` (which converts or refuses it).
    """
    if codec.key_is_int:
        if all(type(r) is int for r in record_ids):
            return list(record_ids), [str(r) for r in record_ids]
    elif all(type(r) is str and r for r in record_ids):
        return list(record_ids), cast("list[str]", list(record_ids))
    typed: list[object] = []
    keys: list[str] = []
    for record_id in record_ids:
        value, key = record_key(group, record_id)
        typed.append(value)
        keys.append(key)
    return typed, keys


def _read_payloads(
    online: OnlineStore, group_id: str, keys: Sequence[str]
) -> list[tuple[int, bytes | None] | None]:
    """Each key's ``(event time, payload)``, or None: ``read_payloads`` where a store has
    it (the SQLite and Redis stores: no OnlineRow per key), else :meth:`OnlineStore.read`.
    """
    fast = getattr(online, "read_payloads", None)
    if fast is not None:
        rows: list[tuple[int, bytes | None] | None] = fast(group_id, keys)
        return rows
    return [None if r is None else (r.event_time, r.payload) for r in online.read(group_id, keys)]


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


def _decode_many(
    codec: Codec,
    record_ids: Sequence[object],
    rows: Sequence[tuple[int, bytes | None] | None],
    oldest: int | None,
    features: Sequence[str] | None,
) -> list[dict[str, Any] | None]:
    """Return each stored ``(event time, payload)`` as ``{record id, event time,
    features...}`` (only ``features`` if given), or None.

    None where there is no row, a tombstone, or (``oldest`` given) an event time older
    than the TTL allows. ``record_ids`` are the typed ids the rows were read for. The
    live rows' payloads (JSON arrays, see :mod:`trivet.featurestore._codec`) are parsed
    in one pass; each record gets a dict of its own.
    """
    out: list[dict[str, Any] | None] = [None] * len(rows)
    live: list[tuple[int, int, bytes]] = []
    for i, row in enumerate(rows):
        if row is None:
            continue
        event_us, payload = row
        if payload is None or (oldest is not None and event_us < oldest):
            continue
        live.append((i, event_us, payload))
    if not live:
        return out
    text = b",".join([payload for _, _, payload in live]).decode()
    try:
        values, end = _scan(f"[{text}]")
    except ValueError as exc:
        raise BackendError(f"The online store holds a payload that is not JSON: {exc}.") from exc
    if end != len(text) + 2 or len(values) != len(live):
        raise BackendError("The online store holds a payload that is not one JSON array.")
    width = len(codec.names)
    build = _builder(codec) if features is None else _picker(codec, features)
    for (i, event_us, _), vals in zip(live, values, strict=True):
        if len(vals) < width:  # features added after this row was written
            vals.extend([None] * (width - len(vals)))
        out[i] = build(record_ids[i], event_us, vals)
    return out


_Build = Callable[[object, int, list[Any]], dict[str, Any]]
_builders: weakref.WeakKeyDictionary[Codec, _Build] = weakref.WeakKeyDictionary()


def _builder(codec: Codec) -> _Build:
    """The function making a whole record's dict from ``(record id, event µs, values)``.

    Compiled once per codec from generated source, a dict display whose keys are the
    group's column names as ``repr`` literals: ``lambda rid, us, v: {'id': rid, 'ts':
    _EPOCH + _delta(0, 0, us), 'score': v[0], 'seen': _decode1(v[1]), ...}``. That is
    2-3x quicker than filling a dict from ``zip`` (a batch of 100 records spends a
    quarter of its time making dicts), and no text but those literals enters the source.
    """
    found = _builders.get(codec)
    if found is not None:
        return found
    group = codec.group
    scope: dict[str, Any] = {"_EPOCH": _EPOCH, "_delta": _delta}
    items = [f"{group.record_id!r}: rid", f"{group.event_time!r}: _EPOCH + _delta(0, 0, us)"]
    for i, (name, decode) in enumerate(zip(codec.names, codec.decoders, strict=True)):
        if decode is None:
            items.append(f"{name!r}: v[{i}]")
        else:
            scope[f"_decode{i}"] = decode
            items.append(f"{name!r}: _decode{i}(v[{i}])")
    built: _Build = eval(f"lambda rid, us, v: {{{', '.join(items)}}}", scope)  # noqa: S307
    _builders[codec] = built
    return built


def _picker(codec: Codec, features: Sequence[str]) -> _Build:
    """The function making a record's dict with only ``features`` (checked names)."""
    group = codec.group
    picked = [(name, codec.names.index(name)) for name in features]
    decoders = codec.decoders

    def build(rid: object, us: int, v: list[Any]) -> dict[str, Any]:
        record = {group.record_id: rid, group.event_time: _EPOCH + _delta(0, 0, us)}
        for name, j in picked:
            decode = decoders[j]
            record[name] = v[j] if decode is None else decode(v[j])
        return record

    return build


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
    with store._gate.write():  # an erasure of the record waits for both steps, or goes first
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
