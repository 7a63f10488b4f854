"""A real uvicorn server on loopback, and tokens to call it with (shared by the server tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

import trivet
from trivet.platform.settings import Settings
from trivet.server import create_app, in_background


@dataclass
class Live:
    """A running server: its base URL and a way to mint callers."""

    url: str
    admin: trivet.Session
    tokens: dict[str, str] = field(default_factory=dict)

    def user(self, name: str, *grants: tuple[str, str]) -> str:
        """Create user ``name`` with ``(privilege, pattern)`` grants; return a token."""
        self.admin.identity.create_user(name)
        for privilege, pattern in grants:
            self.admin.access.grant(name, privilege, pattern)
        secret = self.admin.identity.create_token(name).secret
        self.tokens[name] = secret
        return secret

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client for the server, sending ``token`` as the bearer."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


@contextlib.contextmanager
def serving(settings: Settings, admin: trivet.Session, **app_options: Any) -> Iterator[Live]:
    """A real server over ``settings`` on a free loopback port, stopped gracefully after."""
    with in_background(create_app(settings, **app_options)) as url:
        yield Live(url=url, admin=admin)
