"""Reading records from the online store: ``get_record`` and ``batch_get_record``.

The FeatureStore's methods of those names call these. TTL is applied on read: a record
whose event time is older than ``now - ttl`` reads as None, as does one never written
or deleted. Each group is authorized once per call (``feature:read_online``), never per
record.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError, did_you_mean
from trivet.featurestore._codec import Codec, record_key
from trivet.featurestore.definitions import FeatureGroup
from trivet.featurestore.online import OnlineRow

if TYPE_CHECKING:
    from trivet.featurestore.store import FeatureStore

__all__ = ["batch_get_record", "get_record"]


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
