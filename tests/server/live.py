"""A real uvicorn server on loopback, and tokens to call it with (shared by the server tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

import trivet
from trivet.platform.settings import Settings
from trivet.server import create_app


@dataclass
class Live:
    """A running server: its base URL and a way to mint callers."""

    url: str
    admin: trivet.Session
    server: uvicorn.Server
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


def start(settings: Settings, **app_options: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Start uvicorn on a free loopback port in a thread; return it once it accepts."""
    app = create_app(settings, **app_options)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"
