"""Online stores: the latest row per record, behind :class:`OnlineStore`.

:data:`online_stores` maps a URL scheme to the factory that opens it;
:func:`open_online_store` picks one from the ``featurestore.online_url`` setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from trivet.errors import ValidationError
from trivet.featurestore.online._base import OnlineRow, OnlineStore
from trivet.featurestore.online.sqlite import SqliteOnlineStore

__all__ = ["OnlineRow", "OnlineStore", "SqliteOnlineStore", "online_stores", "open_online_store"]

online_stores: Mapping[str, Callable[[str], OnlineStore]] = {
    "sqlite": SqliteOnlineStore.from_url,
}
"""URL scheme → factory. Redis lands here as ``"redis"``."""


def open_online_store(url: str) -> OnlineStore:
    """Open the online store a URL names (``sqlite:///…``; ``redis://…`` later)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    factory = online_stores.get(scheme)
    if factory is None:
        raise ValidationError(
            f"The online store URL {url!r} names no known store.",
            hint="use sqlite:///path/online.db (Redis is not supported yet)",
        )
    return factory(url)
