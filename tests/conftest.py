"""Shared fixtures: workspaces on SQLite and on the real PostgreSQL server.

PostgreSQL is reached through TRIVET_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test); each test gets a database of its own.
Where the server is missing its tests skip, except when CI is set, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import trivet
from trivet.platform.settings import Settings

PG_URL = os.environ.get("TRIVET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TRIVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(what: str, why: str) -> None:
    """Skip (or, under CI, fail) a test whose service is unreachable."""
    message = f"{what} is not reachable: {why}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so a missing service fails the run)")
    pytest.skip(message)


def _pg_admin_connect() -> object:
    import psycopg

    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL at {PG_URL}", str(exc).strip().splitlines()[0])
        raise  # unreachable


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = _pg_admin_connect()
    name = f"trivet_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        from trivet.platform import workspace as ws_module

        for url, cat in list(ws_module._catalogs.items()):
            if name in url:
                cat.dispose()
                del ws_module._catalogs[url]
        with contextlib.suppress(psycopg.Error):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The Redis test server's URL (its keys are prefixed per test by the users)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_URL}", str(exc))
    finally:
        client.close()
    yield REDIS_URL
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match="test:*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_backend(request: pytest.FixtureRequest) -> str:
    """The catalog backend under test: each catalog test runs on both."""
    return str(request.param)


@pytest.fixture
def workspace(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """A fresh workspace; on PostgreSQL when the test uses ``catalog_backend``."""
    backend = (
        request.getfixturevalue("catalog_backend")
        if "catalog_backend" in request.fixturenames
        else "sqlite"
    )
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    return trivet.init(tmp_path / "ws", catalog_url=url)


@pytest.fixture
def admin(workspace: Settings) -> Iterator[trivet.Session]:
    """A session as the workspace's admin (the OS user who created it)."""
    session = trivet.connect(workspace.workspace)
    yield session
