"""The catalog database: schema and migrations, concurrent writers, errors at its boundary."""

from __future__ import annotations

import inspect
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import trivet
import trivet.errors as errors_module
from trivet.errors import BackendError, Conflict, MissingDependency, TrivetError, ValidationError
from trivet.platform import audit
from trivet.platform.catalog import Catalog, metadata
from trivet.platform.catalog._catalog import HEAD_REVISION, MIGRATIONS, after_commit
from trivet.platform.catalog.schema import grants, policy_epoch, principals, tokens, workspace_meta


# -- schema and migrations -----------------------------------------------------------------
def test_head_revision_is_alembics_head() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_heads() == [HEAD_REVISION]  # one head, the one the code expects


def test_migrated_schema_equals_the_metadata(admin: trivet.Session, catalog_backend: str) -> None:
    catalog = admin.catalog
    assert not catalog.needs_upgrade()
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
            HEAD_REVISION
        )
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diffs = compare_metadata(context, metadata)
    assert diffs == []
    assert set(sa.inspect(catalog.engine).get_table_names()) == set(metadata.tables) | {
        "alembic_version"
    }


# -- several processes writing at once ----------------------------------------------------------
WRITER = r"""
import sys, trivet
me = sys.argv[1]
session = trivet.connect()
print("ready", flush=True)
sys.stdin.readline()
for j in range(25):
    name = f"w{me}-u{j}"
    session.identity.create_user(name)
    session.access.grant(name, "viewer", f"default/feature_groups/{name}")
    session.identity.create_token(name, description=name)
print("done", flush=True)
"""


def test_four_processes_writing_at_once(admin: trivet.Session, catalog_backend: str) -> None:
    with admin.catalog.read() as conn:
        epoch_before = conn.execute(sa.select(policy_epoch.c.epoch)).scalar_one()
    audit_before = len(audit.entries(admin.catalog))
    env = {**os.environ, "TRIVET_WORKSPACE": str(admin.settings.workspace), "TRIVET_TOKEN": ""}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(n)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:  # start together
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    for p, (out, err) in zip(procs, outcomes, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "done" and "Error" not in err
    names = {f"w{n}-u{j}" for n in range(4) for j in range(25)}
    with admin.catalog.read() as conn:
        ids = dict(
            conn.execute(
                sa.select(principals.c.name, principals.c.id).where(principals.c.name.like("w%"))
            ).all()
        )
        grant_rows = conn.execute(
            sa.select(grants.c.subject_id, grants.c.pattern).where(
                grants.c.subject_id.in_(ids.values())
            )
        ).all()
        token_rows = conn.execute(
            sa.select(tokens.c.description).where(tokens.c.principal_id.in_(ids.values()))
        ).all()
        epoch_after = conn.execute(sa.select(policy_epoch.c.epoch)).scalar_one()
    assert set(ids) == names
    by_id = {v: k for k, v in ids.items()}
    assert sorted((by_id[r.subject_id], r.pattern) for r in grant_rows) == sorted(
        (n, f"default/feature_groups/{n}") for n in names
    )
    assert sorted(r.description for r in token_rows) == sorted(names)
    assert epoch_after - epoch_before == 100  # every grant bumped the epoch, none was lost
    log = audit.entries(admin.catalog)
    assert len(log) - audit_before == 300
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    result = audit.verify(admin.catalog)
    assert result.ok and result.rows == len(log)
    for name in sorted(names)[::20]:
        assert admin.access.check(
            "feature:describe", f"default/feature_groups/{name}", principal=name
        ).allowed


# -- errors at the boundary --------------------------------------------------------------------
def test_unreachable_postgres_is_a_backend_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://trivet:s3cr3t-pw@127.0.0.1:1/nowhere"
    with pytest.raises(BackendError) as err:
        trivet.init(tmp_path / "ws", catalog_url=url)
    assert "s3cr3t-pw" not in str(err.value) and "127.0.0.1" in str(err.value)
    assert isinstance(err.value.__cause__, sa.exc.DBAPIError)
    assert not (tmp_path / "ws" / "trivet.toml").exists()  # a failed init leaves no workspace
    with pytest.raises(BackendError), Catalog(url).read():
        pass
    with pytest.raises(BackendError), Catalog(url).write():
        pass
    # a workspace whose catalog moved away
    ws = trivet.init(tmp_path / "ok").workspace
    monkeypatch.setenv("TRIVET_CATALOG_URL", url)
    with pytest.raises(BackendError) as err:
        trivet.connect(ws)
    assert "s3cr3t-pw" not in repr(err.value)


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/db", "oracle://h/db"])
def test_unsupported_catalog_urls_are_validation_errors(url: str) -> None:
    with pytest.raises(ValidationError):
        Catalog(url)


def test_database_errors_never_leak_raw(admin: trivet.Session, catalog_backend: str) -> None:
    with pytest.raises(Conflict) as err, admin.catalog.write() as conn:
        conn.execute(sa.insert(workspace_meta).values(key="admin", value="duplicate"))
    assert isinstance(err.value.__cause__, sa.exc.IntegrityError)
    with pytest.raises(BackendError) as backend_err, admin.catalog.write() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert isinstance(backend_err.value.__cause__, sa.exc.DBAPIError)
    if catalog_backend == "postgres":  # PostgreSQL enforces lengths: a DataError
        with pytest.raises(BackendError), admin.catalog.write() as conn:
            conn.execute(sa.insert(workspace_meta).values(key="k" * 100, value="v"))
    with admin.catalog.read() as conn:  # and nothing of it was written
        keys = conn.execute(sa.select(workspace_meta.c.key)).scalars().all()
    assert sorted(keys) == ["admin", "admin_host", "admin_uid", "created_at", "policy.four_eyes"]


def test_after_commit_hooks_run_only_after_a_commit(admin: trivet.Session) -> None:
    ran: list[str] = []
    with admin.catalog.write() as conn:
        after_commit(conn, lambda: ran.append("committed"))
        assert ran == []
    assert ran == ["committed"]
    with pytest.raises(RuntimeError), admin.catalog.write() as conn:
        after_commit(conn, lambda: ran.append("rolled back"))
        raise RuntimeError("boom")
    with admin.catalog.write() as conn:  # the pooled connection kept nothing over
        pass
    assert ran == ["committed"]


# -- errors pickle ------------------------------------------------------------------------------
def _error_classes() -> list[type[TrivetError]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(obj, TrivetError) and obj.__module__ == errors_module.__name__
    ]


def test_every_error_class_is_listed() -> None:
    assert {c.__name__ for c in _error_classes()} <= set(errors_module.__all__)
    assert len(_error_classes()) == 10


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_errors_pickle_round_trip(cls: type[TrivetError]) -> None:
    if cls is MissingDependency:
        original: TrivetError = MissingDependency("psycopg", extra="postgres")
    else:
        original = cls("The thing 'x' failed.", hint="do y instead")
        original.extra_field = {"k": [1, 2]}  # type: ignore[attr-defined]
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(original, protocol=protocol))
        assert type(copy) is cls
        assert (copy.message, copy.hint, str(copy), copy.args) == (
            original.message,
            original.hint,
            str(original),
            original.args,
        )
        assert copy.__dict__ == original.__dict__
        assert (copy.http_status, copy.exit_code) == (cls.http_status, cls.exit_code)
        assert copy.to_dict() == original.to_dict()
    if cls is MissingDependency:
        assert isinstance(copy, MissingDependency)
        assert copy.extra == "postgres" and "trivet[postgres]" in str(copy)


def test_writers_taking_row_locks_in_opposite_orders_do_not_deadlock(
    admin: trivet.Session, catalog_backend: str
) -> None:
    """One writer audits then bumps the policy epoch, the other the other way round."""
    import threading

    from trivet.platform.permissions import bump_epoch

    first_locked, second_locked = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def audit_then_epoch() -> None:
        try:
            with admin.catalog.write() as conn:
                admin.record(conn, action="test:one", resource="_workspace")
                first_locked.set()
                second_locked.wait(0.5)
                bump_epoch(conn, admin.catalog)
        except BaseException as exc:
            failures.append(exc)

    def epoch_then_audit() -> None:
        try:
            first_locked.wait(5)
            with admin.catalog.write() as conn:
                bump_epoch(conn, admin.catalog)
                second_locked.set()
                admin.record(conn, action="test:two", resource="_workspace")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=f) for f in (audit_then_epoch, epoch_then_audit)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert [e.action for e in audit.entries(admin.catalog)][-2:] == ["test:one", "test:two"]
    assert audit.verify(admin.catalog).ok
