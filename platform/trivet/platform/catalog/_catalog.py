"""Engine set-up, transactions and migrations for the catalog database."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from trivet.errors import BackendError, Conflict, MissingDependency, ValidationError

SQLITE_BUSY_TIMEOUT_MS = 60_000
MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0005"  # the newest migration; a test checks it against alembic's head
_AFTER_COMMIT = "trivet.after_commit"
_PG_WRITE_LOCK = 0x74726976  # pg_advisory_xact_lock key serialising catalog writers


def after_commit(conn: Connection, hook: Callable[[], None]) -> None:
    """Run ``hook`` once the write transaction ``conn`` belongs to has committed.

    Hooks of a transaction that rolls back are dropped.
    """
    conn.info.setdefault(_AFTER_COMMIT, []).append(hook)


def now_utc() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Return ``value`` as an aware UTC datetime (SQLite returns naive ones)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def redact_url(url: str) -> str:
    """Return ``url`` with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable url>"


def _normalise_url(url: str) -> sa.URL:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ValidationError(
            f"The catalog URL {redact_url(url)!r} is not a database URL.",
            hint="use sqlite:///path/to/catalog.db or postgresql://user@host:5432/dbname",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if importlib.util.find_spec("psycopg") is None:
            raise MissingDependency("psycopg", extra="postgres")
        return parsed.set(drivername="postgresql+psycopg")
    if backend != "sqlite":
        raise ValidationError(
            f"The catalog backend {backend!r} is not supported.",
            hint="use sqlite:///... (default) or postgresql://...",
        )
    return parsed


class Catalog:
    """A connection pool to the catalog database with safe transactions.

    SQLite runs in WAL mode with a long busy timeout, and every write transaction
    starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock
    instead of failing with "database is locked" on a read-to-write upgrade. On
    PostgreSQL a write transaction starts by taking one transaction-level advisory
    lock, for the same effect: writers queue instead of deadlocking on row locks.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = _normalise_url(url)
        self.dialect = parsed.get_backend_name()
        self.engine: Engine
        if self.dialect == "sqlite":
            self.engine = sa.create_engine(
                parsed,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _configure_sqlite(self.engine)
        else:
            self.engine = sa.create_engine(parsed, pool_pre_ping=True)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """Open a write transaction; commit on success, roll back on error."""
        with self._transaction("IMMEDIATE") as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """Open a read-only transaction (a consistent snapshot on SQLite)."""
        with self._transaction("DEFERRED") as conn:
            yield conn

    @contextlib.contextmanager
    def _transaction(self, mode: str) -> Iterator[Connection]:
        hooks: list[Callable[[], None]] = []
        try:
            with self.engine.connect().execution_options(sqlite_begin=mode) as conn:
                try:
                    with conn.begin():
                        if mode == "IMMEDIATE" and self.dialect == "postgresql":
                            # like SQLite's BEGIN IMMEDIATE: writers queue here, so row
                            # locks (audit head, policy epoch, ...) never deadlock; and,
                            # like its busy timeout, a stuck writer is an error, not a hang
                            conn.exec_driver_sql(
                                f"SET LOCAL lock_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                            )
                            conn.execute(
                                sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                {"key": _PG_WRITE_LOCK},
                            )
                        yield conn
                finally:
                    hooks = conn.info.pop(_AFTER_COMMIT, [])
        except sa.exc.IntegrityError as exc:
            raise Conflict(
                "The write conflicts with existing catalog data (a duplicate or a dangling "
                "reference).",
                hint="re-read the current state and retry",
            ) from exc
        except sa.exc.DBAPIError as exc:
            raise BackendError(
                f"The catalog database {redact_url(self.url)!r} failed: {_short(exc)}.",
                hint="check that the database is reachable and not held by a stuck process",
            ) from exc
        for hook in hooks:
            hook()

    def is_empty(self) -> bool:
        """Return whether the database has none of the catalog's tables yet."""
        try:
            return not sa.inspect(self.engine).has_table("workspace_meta")
        except sa.exc.DBAPIError as exc:
            raise BackendError(
                f"Cannot reach the catalog database {redact_url(self.url)!r}: {_short(exc)}."
            ) from exc

    def needs_upgrade(self) -> bool:
        """Return whether the schema is older than this version of trivet expects."""
        if not sa.inspect(self.engine).has_table("alembic_version"):
            return True
        with self.read() as conn:
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return current != HEAD_REVISION

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (creating it when empty)."""
        from alembic import command
        from alembic.config import Config
        from alembic.util.exc import CommandError

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.connect() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
        except CommandError as exc:
            raise BackendError(
                f"The catalog {redact_url(self.url)!r} has a schema this version of trivet does "
                f"not know ({exc}); it was written by a newer trivet.",
                hint="upgrade trivet (uv add -U trivet) on this machine",
            ) from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _short(exc: BaseException) -> str:
    orig: Any = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
