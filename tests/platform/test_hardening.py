"""Regression tests for escalation paths and robustness problems found in review."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import trivet
from trivet.errors import BackendError, PermissionDenied, ValidationError
from trivet.platform.settings import Settings


def login(
    admin: trivet.Session, workspace: Settings, name: str, **token_args: object
) -> trivet.Session:
    token = admin.identity.create_token(name, **token_args)  # type: ignore[arg-type]
    return trivet.connect(workspace.workspace, token=token.secret)


def test_assume_keeps_the_callers_token_as_ceiling(
    admin: trivet.Session, workspace: Settings
) -> None:
    admin.identity.create_user("bob")
    admin.access.grant("bob", "principal:use", "_principals/default-runner")
    bob = login(admin, workspace, "bob", actions=["principal:use"])
    runner = bob.assume("default-runner")
    assert runner.on_behalf_of is not None and runner.on_behalf_of.name == "bob"
    # the runner holds data_scientist, but bob's token only allows principal:use
    assert not runner.can("model:register", "default/models/m")
    with pytest.raises(PermissionDenied, match="scope"):
        runner.artifacts.put_bytes(b"x")

    unscoped = login(admin, workspace, "bob")
    runner = unscoped.assume("default-runner")
    assert runner.can("artifact:write", "default/artifacts")
    admin.identity.revoke_token(unscoped.token.prefix)  # type: ignore[union-attr]
    assert not runner.can("artifact:write", "default/artifacts")


def test_run_as_chains_keep_the_original_person(admin: trivet.Session) -> None:
    admin.identity.create_service("svc2")
    admin.access.grant("default-runner", "principal:use", "_principals/svc2")
    second = admin.assume("default-runner").assume("svc2")
    assert second.on_behalf_of is not None
    assert second.on_behalf_of.name == admin.principal.name


def test_joining_a_group_needs_holding_what_it_grants(
    admin: trivet.Session, workspace: Settings
) -> None:
    admin.identity.create_group("admins")
    admin.access.grant("admins", "owner", "*")
    admin.identity.create_user("bob")
    admin.access.grant("bob", "principal:manage", "_principals/admins")
    bob = login(admin, workspace, "bob")
    with pytest.raises(PermissionDenied, match="add 'bob' to 'admins'"):
        bob.identity.add_member("admins", "bob")
    assert not bob.can("grant:manage", "_workspace")
    assert [m.name for m in admin.identity.members("admins")] == []
    # a group whose grants bob holds himself is fine to manage
    admin.identity.create_group("readers")
    admin.access.grant("readers", "viewer", "default/*")
    admin.access.grant("bob", "viewer", "default/*")
    admin.access.grant("bob", "principal:manage", "_principals/readers")
    admin.identity.create_user("carol")
    bob.identity.add_member("readers", "carol")
    assert [m.name for m in admin.identity.members("readers")] == ["carol"]


def test_a_token_never_mints_one_that_outlives_it(
    admin: trivet.Session, workspace: Settings
) -> None:
    admin.identity.create_user("bob")
    bob = login(admin, workspace, "bob", expires_in=dt.timedelta(hours=1))
    with pytest.raises(ValidationError, match="cannot outlive it"):
        bob.identity.create_token(expires_in=dt.timedelta(days=366))
    child = bob.identity.create_token()  # default lifetime is capped by the parent's
    assert child.info.expires_at <= bob.token.expires_at  # type: ignore[union-attr]


def test_creating_a_project_needs_grant_manage_on_the_workspace(
    admin: trivet.Session, workspace: Settings
) -> None:
    admin.identity.create_user("dave")
    admin.access.grant("dave", "grant:manage", "newp")
    dave = login(admin, workspace, "dave")
    with pytest.raises(PermissionDenied, match="_workspace"):
        dave.identity.create_project("newp")
    assert "newp" not in {p.name for p in admin.identity.list_projects()}


@pytest.mark.parametrize("name", ["_audit", "_principals", "_x"])
def test_reserved_project_names_are_refused_before_anything_is_written(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(ValidationError, match="reserved"):
        trivet.init(tmp_path / "ws", project=name)
    assert not (tmp_path / "ws").exists()
    trivet.init(tmp_path / "ws")  # and the folder is usable


def test_a_failed_init_can_simply_be_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trivet.platform import workspace as ws_module

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ws_module.identity, "insert_principal", boom)
    with pytest.raises(RuntimeError):
        trivet.init(tmp_path / "ws")
    monkeypatch.undo()
    settings = trivet.init(tmp_path / "ws")
    assert trivet.connect(settings.workspace).identity.whoami().name


def test_a_catalog_from_a_newer_trivet_is_a_clear_error(workspace: Settings) -> None:
    from trivet.platform import workspace as ws_module

    engine = sa.create_engine(f"sqlite:///{workspace.workspace}/catalog.db")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    for url in list(ws_module._catalogs):
        ws_module._catalogs.pop(url).dispose()
    with pytest.raises(BackendError, match="newer trivet"):
        trivet.connect(workspace.workspace)


def test_the_os_user_comes_from_the_uid_not_the_environment(
    workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trivet.platform.workspace import os_user

    real = os_user()
    monkeypatch.setenv("LOGNAME", "mallory")
    monkeypatch.setenv("USER", "mallory")
    assert os_user() == real
    assert trivet.connect(workspace.workspace).principal.os_user == real


def test_grant_expiry_in_another_time_zone_is_stored_exactly(admin: trivet.Session) -> None:
    admin.identity.create_user("alice")
    tz = dt.timezone(dt.timedelta(hours=-5))
    expires = dt.datetime.now(tz) + dt.timedelta(hours=1)
    grant = admin.access.grant("alice", "viewer", "default/*", expires_at=expires)
    assert grant.expires_at == expires
    assert admin.access.check("model:describe", "default/models/m", principal="alice").allowed


def test_stored_names_cannot_inject_console_markup(workspace: Settings) -> None:
    from trivet.cli import app

    runner = CliRunner()
    ws = str(workspace.workspace)
    result = runner.invoke(app, ["-w", ws, "auth", "add-user", "bob", "--description", "[/]"])
    assert result.exit_code == 0, result.stderr
    listing = runner.invoke(app, ["-w", ws, "auth", "principals"])
    assert listing.exit_code == 0 and "[/]" in listing.stdout
    denied = runner.invoke(app, ["-w", ws, "models", "describe", "[/]"])
    assert denied.exit_code != 0 and "Traceback" not in denied.stderr + denied.stdout


def test_grants_are_revoked_by_the_id_prefix_the_table_shows(admin: trivet.Session) -> None:
    admin.identity.create_user("alice")
    grant = admin.access.grant("alice", "viewer", "default/*")
    admin.access.revoke(grant.id[:8])
    assert admin.access.grants(subject="alice") == []
    with pytest.raises(ValidationError):
        admin.access.revoke("abc")
