"""Fixtures of the server tests: a real uvicorn server on a fresh workspace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import trivet
from tests.server.live import Live, serving
from trivet.platform.settings import Settings


@pytest.fixture
def live(workspace: Settings, admin: trivet.Session) -> Iterator[Live]:
    """A server on a fresh workspace; ``live.admin`` is the admin's SDK session."""
    with serving(workspace, admin) as live:
        yield live
