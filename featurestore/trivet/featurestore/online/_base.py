"""The online-store protocol: the latest record per id, behind five methods.

An online store keeps, per feature group (by its id) and record key, one
:class:`OnlineRow`: the record's event time, the time trivet wrote it, and its
values as an opaque payload (the feature store encodes and decodes it; a store only
keeps bytes). ``payload=None`` is a tombstone: a soft-deleted record.

The one rule every implementation keeps, atomically per key: a row replaces the
stored one only if its event time is newer, or equal with a write time at least as
new (so a later write wins a tie, and re-applying the same row is a no-op). An older
row is ignored. The contract suite ``tests/featurestore/test_online_contract.py`` runs
against every implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, overload, runtime_checkable

__all__ = ["OnlineBatch", "OnlineRow", "OnlineStore"]


@dataclass(frozen=True, slots=True)
class OnlineRow:
    """One record in the online store.

    Args:
        key: the record id, as text.
        event_time: the record's event time, microseconds since the Unix epoch (UTC).
        write_time: when trivet wrote it, microseconds since the Unix epoch (UTC).
        payload: the encoded feature values; None marks a soft-deleted record.
    """

    key: str
    event_time: int
    write_time: int
    payload: bytes | None


class OnlineBatch(Sequence[OnlineRow]):
    """Many rows with one write time, held as columns: what a batch ingest writes.

    A sequence of :class:`OnlineRow` like any other (a row is built when it is looked
    at), so every store accepts it; a store may read the columns instead, and skip
    building a million row objects.

    Args:
        keys: the record ids, as text.
        event_times: each row's event time, microseconds since the Unix epoch (UTC).
        write_time: the write time of every row.
        payloads: each row's payload (None: a tombstone).
    """

    __slots__ = ("event_times", "keys", "payloads", "write_time")

    def __init__(
        self,
        keys: Sequence[str],
        event_times: Sequence[int],
        write_time: int,
        payloads: Sequence[bytes | None],
    ) -> None:
        if not len(keys) == len(event_times) == len(payloads):
            raise ValueError("an OnlineBatch needs as many event times and payloads as keys")
        self.keys = keys
        self.event_times = event_times
        self.write_time = write_time
        self.payloads = payloads

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> OnlineRow: ...

    @overload
    def __getitem__(self, index: slice) -> OnlineBatch: ...

    def __getitem__(self, index: int | slice) -> OnlineRow | OnlineBatch:
        if isinstance(index, slice):
            return OnlineBatch(
                self.keys[index], self.event_times[index], self.write_time, self.payloads[index]
            )
        return OnlineRow(
            self.keys[index], self.event_times[index], self.write_time, self.payloads[index]
        )


@runtime_checkable
class OnlineStore(Protocol):
    """Where the latest row of each record lives, for reads in microseconds."""

    def write(self, group_id: str, rows: Sequence[OnlineRow]) -> None:
        """Upsert rows; per key, keep the newer ``(event_time, write_time)`` (ties: the new)."""
        ...

    def read(self, group_id: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        """Return the stored row of each key, in order (None where there is none)."""
        ...

    def delete(self, group_id: str, keys: Sequence[str]) -> None:
        """Remove the keys' rows entirely (no tombstone is left)."""
        ...

    def drop(self, group_id: str) -> None:
        """Remove every row of a feature group."""
        ...

    def close(self) -> None:
        """Release connections; the store may not be used afterwards."""
        ...
