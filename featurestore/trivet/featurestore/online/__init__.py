"""Online stores: the latest row per record, behind :class:`OnlineStore`.

:data:`online_stores` maps a URL scheme to the factory that opens it;
:func:`open_online_store` picks one from the ``featurestore.online_url`` setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from trivet.errors import ValidationError
from trivet.featurestore.online._base import OnlineRow, OnlineStore
from trivet.featurestore.online.sqlite import SqliteOnlineStore

__all__ = [
    "OnlineRow",
    "OnlineStore",
    "RedisOnlineStore",
    "SqliteOnlineStore",
    "online_stores",
    "open_online_store",
]


def _redis(url: str) -> OnlineStore:
    from trivet.featurestore.online.redis import RedisOnlineStore

    return RedisOnlineStore(url)


online_stores: Mapping[str, Callable[[str], OnlineStore]] = {
    "sqlite": SqliteOnlineStore.from_url,
    "redis": _redis,
    "rediss": _redis,
}
"""URL scheme → factory (the Redis client is imported only when a Redis URL is used)."""


def __getattr__(name: str) -> object:
    if name == "RedisOnlineStore":
        from trivet.featurestore.online.redis import RedisOnlineStore

        return RedisOnlineStore
    raise AttributeError(name)


def open_online_store(url: str) -> OnlineStore:
    """Open the online store a URL names (``sqlite:///…`` or ``redis://host:6379/0``)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    factory = online_stores.get(scheme)
    if factory is None:
        raise ValidationError(
            f"The online store URL {url!r} names no known store.",
            hint="use sqlite:///path/online.db or redis://host:6379/0",
        )
    return factory(url)
