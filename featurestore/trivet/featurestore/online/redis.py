"""The Redis online store: one hash per feature group, one field per record.

Each value is ``<event time><write time><flag><payload>``: the two times as 20-digit,
zero-padded decimals (offset by 2**62 so that times before 1970 sort correctly), the
flag ``1`` for a row with a payload and ``0`` for a tombstone. Because the two times
lead the value at fixed width, "newer ``(event_time, write_time)`` wins, a later write
wins a tie" is a plain string comparison, which a small Lua script applies atomically
on the server to 1,000 fields at a time (one ``HMGET``, one ``HSET``). A batch read is
one ``HMGET``.

Needs the optional ``redis`` package: ``pip install 'trivet[redis]'``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from itertools import chain
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trivet.errors import BackendError, MissingDependency, ValidationError
from trivet.featurestore.online._base import OnlineBatch, OnlineRow

__all__ = ["RedisOnlineStore"]

_OFFSET = 2**62
_WIDTH = 20
_HEAD = 2 * _WIDTH + 1
_CHUNK = 1000  # fields per script call
_CALLS_PER_TRIP = 20  # script calls per pipelined round trip

# KEYS[1] = the group's hash; ARGV = field, value, field, value, ...
# one HMGET for the stored values, one HSET for the winners; a field given twice keeps
# the newer value (its second occurrence is compared with the first's if that won)
_UPSERT = """
local fields = {}
for i = 1, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local winners = {}
for j = 1, #fields do
  local field, new = fields[j], ARGV[2 * j]
  local cur = winners[field] or stored[j]
  if (not cur) or string.sub(new, 1, 40) >= string.sub(cur, 1, 40) then
    winners[field] = new
  end
end
local out = {}
for field, value in pairs(winners) do
  out[#out + 1] = field
  out[#out + 1] = value
end
if #out > 0 then
  redis.call('HSET', KEYS[1], unpack(out))
end
return 0
"""


def _encode(row: OnlineRow) -> bytes:
    head = f"{row.event_time + _OFFSET:0{_WIDTH}d}{row.write_time + _OFFSET:0{_WIDTH}d}"
    if row.payload is None:
        return (head + "0").encode()
    return (head + "1").encode() + row.payload


def _encode_batch(rows: OnlineBatch) -> list[bytes]:
    """:func:`_encode` of every row of a batch (one write time)."""
    tail = f"{rows.write_time + _OFFSET:0{_WIDTH}d}"
    live, dead = (tail + "1").encode(), (tail + "0").encode()
    return [
        f"{event + _OFFSET:0{_WIDTH}d}".encode() + (dead if payload is None else live + payload)
        for event, payload in zip(rows.event_times, rows.payloads, strict=True)
    ]


def _decode(key: str, value: bytes) -> OnlineRow:
    event = int(value[:_WIDTH]) - _OFFSET
    write = int(value[_WIDTH : 2 * _WIDTH]) - _OFFSET
    payload = value[_HEAD:] if value[2 * _WIDTH : _HEAD] == b"1" else None
    return OnlineRow(key=key, event_time=event, write_time=write, payload=payload)


def _event_and_payload(value: bytes) -> tuple[int, bytes | None]:
    """A stored value's event time and payload (None: a tombstone); the write time is
    not parsed."""
    payload = value[_HEAD:] if value[2 * _WIDTH : _HEAD] == b"1" else None
    return int(value[:_WIDTH]) - _OFFSET, payload


class RedisOnlineStore:
    """An :class:`~trivet.featurestore.online.OnlineStore` on a Redis server.

    Args:
        url: ``redis://host:6379/0``; an optional ``?prefix=…`` names the key prefix
            (default ``trivet:online:``), so several workspaces can share a server.
    """

    def __init__(self, url: str) -> None:
        if importlib.util.find_spec("redis") is None:
            raise MissingDependency("redis", extra="redis")
        import redis

        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValidationError(f"{url!r} is not a Redis URL.", hint="use redis://host:6379/0")
        query = parse_qs(parts.query)
        self.prefix = query.pop("prefix", ["trivet:online:"])[0]
        clean = parts._replace(query="").geturl()
        self._shown = parts._replace(netloc=parts.hostname or "", query="").geturl()
        try:
            self._client: Any = redis.Redis.from_url(clean, socket_timeout=10)
            self._upsert: Any = self._client.register_script(_UPSERT)
        except redis.RedisError as exc:
            raise BackendError(
                f"The online store {self._shown!r} cannot be opened: {exc}."
            ) from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)

    @classmethod
    def from_url(cls, url: str) -> RedisOnlineStore:
        """Open the store of a ``redis://`` URL."""
        return cls(url)

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self._shown!r})"

    def _key(self, group_id: str) -> str:
        return f"{self.prefix}{group_id}"

    def _failed(self, exc: BaseException) -> BackendError:
        return BackendError(
            f"The online store {self._shown!r} failed: {exc}.",
            hint="check that the Redis server is reachable (setting featurestore.online_url)",
        )

    # -- the protocol ------------------------------------------------------------------
    def write(self, group_id: str, rows: Sequence[OnlineRow]) -> None:
        """Upsert rows; per key, the newer ``(event_time, write_time)`` wins (ties: the new).

        The script runs on 1,000 fields at a time, 20 such calls per round trip (a
        pipeline, not a transaction: each key's rule holds atomically on its own).
        """
        if not rows:
            return
        key = self._key(group_id)
        if isinstance(rows, OnlineBatch):
            fields: Sequence[str] = rows.keys
            values = _encode_batch(rows)
        else:
            fields = [r.key for r in rows]
            values = [_encode(r) for r in rows]
        try:
            pipe = self._client.pipeline(transaction=False)
            for n, start in enumerate(range(0, len(rows), _CHUNK), start=1):
                end = start + _CHUNK
                pairs = zip(fields[start:end], values[start:end], strict=True)
                args = list(chain.from_iterable(pairs))
                self._upsert(keys=[key], args=args, client=pipe)
                if n % _CALLS_PER_TRIP == 0:
                    pipe.execute()
            pipe.execute()
        except self._errors as exc:
            raise self._failed(exc) from exc

    def _values(self, group_id: str, keys: Sequence[str]) -> list[bytes | None]:
        """Return the stored value of each key, in order: one ``HMGET``."""
        if not keys:
            return []
        try:
            return list(self._client.hmget(self._key(group_id), list(keys)))
        except self._errors as exc:
            raise self._failed(exc) from exc

    def read(self, group_id: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        """Return the stored row of each key, in order (None where there is none)."""
        values = self._values(group_id, keys)
        return [None if v is None else _decode(k, v) for k, v in zip(keys, values, strict=True)]

    def read_payloads(
        self, group_id: str, keys: Sequence[str]
    ) -> list[tuple[int, bytes | None] | None]:
        """Return each key's ``(event_time, payload)``, in order (None where there is none).

        :meth:`read` without building an :class:`OnlineRow` per key (one ``HMGET``).
        """
        return [None if v is None else _event_and_payload(v) for v in self._values(group_id, keys)]

    def delete(self, group_id: str, keys: Sequence[str]) -> None:
        """Remove the keys' rows entirely."""
        if not keys:
            return
        try:
            self._client.hdel(self._key(group_id), *keys)
        except self._errors as exc:
            raise self._failed(exc) from exc

    def drop(self, group_id: str) -> None:
        """Remove every row of a feature group."""
        try:
            self._client.delete(self._key(group_id))
        except self._errors as exc:
            raise self._failed(exc) from exc

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
