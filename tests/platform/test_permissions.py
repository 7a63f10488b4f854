"""The permission model's 24 cases (``shared/specs/permissions.md``), as one table.

Every case runs on SQLite and on PostgreSQL. Below the table: the evaluator against a
brute-force oracle (hypothesis), and the policy-epoch race between threads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trivet
from trivet.errors import NotAuthenticated, PermissionDenied, TrivetError, ValidationError
from trivet.platform import audit, identity
from trivet.platform.catalog.schema import audit_log, grants, memberships, tokens
from trivet.platform.identity import PrincipalKind, insert_token, split_token
from trivet.platform.names import pattern_covers
from trivet.platform.permissions import (
    ACTIONS,
    BUILTIN_ROLES,
    TokenScope,
    bump_epoch,
    expand_privilege,
)

FG = "default/feature_groups"


# -- helpers ---------------------------------------------------------------------------
@dataclasses.dataclass
class Env:
    admin: trivet.Session
    backend: str
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    caplog: pytest.LogCaptureFixture

    @property
    def workspace(self) -> Path:
        return self.admin.settings.workspace

    def user(
        self, name: str, *grants_: tuple[str, str], scope: dict[str, Any] | None = None
    ) -> trivet.Session:
        """Create user ``name`` with allow grants ``(privilege, pattern)``; sign in by token."""
        self.admin.identity.create_user(name)
        for privilege, pattern in grants_:
            self.admin.access.grant(name, privilege, pattern)
        return self.login(name, **(scope or {}))

    def login(self, name: str, **token_args: Any) -> trivet.Session:
        token = self.admin.identity.create_token(name, **token_args)
        return trivet.connect(self.workspace, token.secret)

    def denials(self) -> list[audit.AuditEntry]:
        return audit.entries(self.admin.catalog, outcome="denied")


def allowed(session: trivet.Session, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(a, r) for a, r in pairs if session.can(a, r)}


def every(actions: Iterable[str], resources: Iterable[str]) -> list[tuple[str, str]]:
    return [(a, r) for a in actions for r in resources]


RESOURCES = [
    "default",
    "default/feature_groups",
    f"{FG}/credit",
    f"{FG}/credit/v2",
    f"{FG}/credit2",
    "default/models/credit/3",
    "default/pipelines/train",
    "other/feature_groups/credit",
    "_principals/default-runner",
    "_workspace",
]


# -- the 24 cases ------------------------------------------------------------------------
def case01(env: Env) -> None:
    alice = env.user("alice")
    assert allowed(alice, every(ACTIONS, RESOURCES)) == set()
    # a truly empty store: even the workspace admin is denied everything
    with env.admin.catalog.write() as conn:
        conn.execute(sa.delete(grants))
        bump_epoch(conn, env.admin.catalog)
    assert allowed(env.admin, every(ACTIONS, RESOURCES)) == set()
    decision = env.admin.authorize("model:approve", "default/models/credit/3")
    assert not decision.allowed
    assert decision.reason == "no grant allows it (default deny)"
    assert decision.grants == ()


def case02(env: Env) -> None:
    alice = env.user("alice", ("feature:read_online", f"{FG}/credit"))
    bob = env.user("bob")
    pairs = every(ACTIONS, [*RESOURCES, f"{FG}/credit/x", f"{FG}/cred"])
    assert allowed(alice, pairs) == {("feature:read_online", f"{FG}/credit")}
    assert allowed(bob, pairs) == set()
    decision = alice.authorize("feature:read_online", f"{FG}/credit")
    (grant,) = env.admin.access.grants(subject="alice")
    assert decision.grants == (grant.id,)
    assert grant.id in decision.reason


def case03(env: Env) -> None:
    alice = env.user("alice", ("viewer", "late/*"), ("data_scientist", f"{FG}/*"))
    env.admin.identity.create_project("late")  # the project is created after the grant
    assert alice.can("feature:describe", "late/feature_groups/new")
    assert alice.can("model:describe", "late/models/new/7")
    assert alice.can("feature:describe", "late")  # the node itself
    # children of FG that did not exist at grant time, at any depth
    for resource in (FG, f"{FG}/born-later", f"{FG}/born-later/v/1/2/3"):
        assert alice.can("feature:write", resource), resource
    assert not alice.can("feature:write", "default/models/born-later")
    assert not alice.can("feature:describe", "later/feature_groups/x")


def case04(env: Env) -> None:
    alice = env.user("alice", ("viewer", "default/fraud/*"))
    assert alice.can("feature:describe", "default/fraud")
    assert alice.can("feature:describe", "default/fraud/x")
    for resource in ("default/fraudulent", "default/fraudulent/x", "default/fraud-x", "default"):
        assert not alice.can("feature:describe", resource), resource


def case05(env: Env) -> None:
    alice = env.user("alice", ("data_scientist", "default/*"))
    deny = env.admin.access.grant("alice", "feature:read_online", f"{FG}/pii", deny=True)
    env.admin.access.grant("alice", "feature:read_offline", f"{FG}/pii/*", deny=True)
    decision = alice.authorize("feature:read_online", f"{FG}/pii")
    assert not decision.allowed
    assert decision.grants == (deny.id,)
    assert "explicitly denied" in decision.reason
    assert not alice.can("feature:read_offline", f"{FG}/pii/v1")
    # for that action only, and only there
    assert alice.can("feature:describe", f"{FG}/pii")
    assert alice.can("feature:write", f"{FG}/pii")
    assert alice.can("feature:read_online", f"{FG}/pii/v1")  # the exact deny is exact
    assert alice.can("feature:read_online", f"{FG}/other")
    assert alice.can("feature:read_offline", f"{FG}/pii-other")


def case06(env: Env) -> None:
    env.admin.identity.create_group("contractors")
    alice = env.user("alice", ("owner", f"{FG}/credit"))
    env.admin.identity.add_member("contractors", "alice")
    env.admin.access.grant("contractors", "feature:read_offline", "default/*", deny=True)
    assert not alice.can("feature:read_offline", f"{FG}/credit")
    assert alice.can("feature:read_online", f"{FG}/credit")
    env.admin.identity.remove_member("contractors", "alice")
    assert alice.can("feature:read_offline", f"{FG}/credit")


def _within_seconds(fn: Callable[[], Any], seconds: float) -> Any:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the check did not terminate"
    return box[0]


def case07(env: Env) -> None:
    ident = env.admin.identity
    for g in ("g1", "g2", "g3"):
        ident.create_group(g)
    alice = env.user("alice")
    ident.add_member("g1", "g2")
    ident.add_member("g2", "g3")
    ident.add_member("g3", "alice")
    env.admin.access.grant("g1", "viewer", "default/*")
    assert _within_seconds(lambda: alice.can("feature:describe", FG), 5)
    ident.add_member("g3", "g1")  # g1 > g2 > g3 > g1: a cycle
    assert _within_seconds(lambda: alice.can("feature:describe", FG), 5)
    assert _within_seconds(lambda: not alice.can("feature:write", FG), 5)
    env.admin.access.grant("g2", "feature:describe", FG, deny=True)
    assert not _within_seconds(lambda: alice.can("feature:describe", FG), 5)
    assert alice.can("model:describe", "default/models/m")
    with pytest.raises(ValidationError, match="cannot contain itself"):
        ident.add_member("g1", "g1")


def case08(env: Env) -> None:
    env.user("alice")
    with pytest.raises(ValidationError, match="feature:read_online") as err:
        env.admin.access.grant("alice", "feature:raed_online", f"{FG}/*")
    assert "did you mean" in str(err.value)
    with pytest.raises(ValidationError):
        env.admin.access.grant("alice", "data_scientists", f"{FG}/*")
    with pytest.raises(ValidationError):
        env.admin.identity.create_token("alice", actions=["feature:raed_online"])
    assert env.admin.access.grants(subject="alice") == []
    # the admin owns '*', yet an unknown action is denied (and the denial audited)
    before = len(env.denials())
    decision = env.admin.authorize("feature:raed_online", f"{FG}/credit")
    assert not decision.allowed
    assert "unknown action" in decision.reason
    assert not env.admin.can("feature:raed_online", f"{FG}/credit")
    assert not env.admin.can("", f"{FG}/credit")
    long_action = "x:" + "y" * 200
    assert not env.admin.authorize(long_action, f"{FG}/credit").allowed
    denials = env.denials()
    assert len(denials) == before + 2
    assert denials[-1].detail["reason"].startswith("unknown action")


BAD_NAMES = [
    "default/../x",
    "default//x",
    "default/Models/x",
    "default/models/x/",
    "default/*/x",
    "default/models/x\x00",
    "default/models/x#1",
    "default\\models\\x",
    "/default/models/x",
    "",
    "default/models/..",
    "default/models/.",
    "default/models/x y",
    "default/modèles/x",
]


def case09(env: Env) -> None:
    from trivet.platform.names import check_pattern, check_resource

    env.user("alice")
    for bad in BAD_NAMES:
        with pytest.raises(ValidationError):
            check_resource(bad)
        with pytest.raises(ValidationError):
            check_pattern(bad)
        with pytest.raises(ValidationError):
            env.admin.access.grant("alice", "viewer", bad)
        with pytest.raises(ValidationError):
            env.admin.authorize("feature:describe", bad)
    for bad in ("*/models", "default/mod*", "default/*/*", "**"):
        with pytest.raises(ValidationError):
            env.admin.access.grant("alice", "viewer", bad)
    for bad_user in ("Alice", "a/b", "..", "a b", "al\x00ice", "a#b", "a\\b", "x" * 65):
        with pytest.raises(ValidationError):
            env.admin.identity.create_user(bad_user)
    assert env.admin.access.grants(subject="alice") == []


def case10(env: Env) -> None:
    alice = env.user("alice")
    env.admin.access.grant(
        "alice", "viewer", "default/*", expires_at=trivet_now() + dt.timedelta(seconds=0.6)
    )
    env.admin.access.grant("alice", "feature:describe", "default/models/*")
    assert alice.can("feature:describe", FG)
    assert alice.can("model:describe", "default/models/m")
    time.sleep(0.65)
    # no flush, no new write: the expired grant simply stops counting
    assert not alice.can("model:describe", "default/models/m")
    assert not alice.can("feature:describe", FG)
    assert alice.can("feature:describe", "default/models/m")
    with pytest.raises(ValidationError, match="timezone-aware"):
        env.admin.access.grant("alice", "viewer", "default/*", expires_at=dt.datetime(2099, 1, 1))


def trivet_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


WATCHER = r"""
import sys, time, trivet
session = trivet.connect()
action, resource, wanted = sys.argv[1], sys.argv[2], int(sys.argv[3])
last, seen, deadline = None, 0, time.time() + 15
while seen < wanted and time.time() < deadline:
    now = session.can(action, resource)
    if now != last:
        print(f"{int(now)} {time.time():.6f}", flush=True)
        last, seen = now, seen + 1
    time.sleep(0.002)
"""


def case11(env: Env) -> None:
    resource = f"{FG}/credit"
    alice = env.user("alice", ("data_scientist", "default/*"))
    token = env.admin.identity.create_token("alice")
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHER, "feature:read_online", resource, "4"],
        env={**os.environ, "TRIVET_WORKSPACE": str(env.workspace), "TRIVET_TOKEN": token.secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:

        def next_state() -> tuple[int, float]:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, proc.stderr.read()  # type: ignore[union-attr]
            state, stamp = line.split()
            return int(state), float(stamp)

        assert next_state()[0] == 1
        # 1. a new deny: next check here, within 1 s there
        deny = env.admin.access.grant("alice", "feature:read_online", resource, deny=True)
        changed = time.time()
        assert not alice.can("feature:read_online", resource)
        state, seen = next_state()
        assert state == 0 and seen - changed < 1.0, seen - changed
        # 2. removing it
        env.admin.access.revoke(deny.id)
        changed = time.time()
        assert alice.can("feature:read_online", resource)
        state, seen = next_state()
        assert state == 1 and seen - changed < 1.0, seen - changed
        # 3. revoking the token the other process signed in with
        env.admin.identity.revoke_token(token.info.prefix)
        changed = time.time()
        state, seen = next_state()
        assert state == 0 and seen - changed < 1.0, seen - changed
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()  # type: ignore[union-attr]


def case12(env: Env) -> None:
    env.user("alice", ("data_scientist", "default/*"), ("grant:manage", f"{FG}/*"))
    scope = {"actions": ["feature:read_online", "model:approve"], "resources": [f"{FG}/*"]}
    scoped = env.login("alice", **scope)
    assert scoped.can("feature:read_online", f"{FG}/x")
    assert not scoped.can("feature:read_offline", f"{FG}/x")  # action outside the scope
    assert not scoped.can("feature:read_online", "default/models/m")  # resource outside
    decision = scoped.authorize("feature:read_offline", f"{FG}/x")
    assert decision.reason == "outside the token's scope"
    # the scope names model:approve, which alice does not hold: it is not added
    decision = scoped.authorize("model:approve", f"{FG}/x")
    assert not decision.allowed and "default deny" in decision.reason
    assert not scoped.access.check("feature:read_offline", f"{FG}/x").allowed
    # a scoped token cannot mint a broader one
    wider = scoped.identity.create_token(resources=["*"])
    assert wider.info.scope is not None
    assert wider.info.scope.actions == frozenset({"feature:read_online", "model:approve"})
    assert wider.info.scope.patterns == (f"{FG}/*",)
    inherited = scoped.identity.create_token()
    assert inherited.info.scope == wider.info.scope
    narrower = scoped.identity.create_token(
        actions=["feature:read_online", "feature:write"], resources=[f"{FG}/credit"]
    )
    assert narrower.info.scope == TokenScope(
        actions=frozenset({"feature:read_online"}), patterns=(f"{FG}/credit",)
    )
    for minted in (wider, inherited):
        session = trivet.connect(env.workspace, minted.secret)
        assert not session.can("feature:read_offline", f"{FG}/x")
        assert not session.can("feature:read_online", "default/models/m")
    # nor grant more than it may use itself
    with pytest.raises(PermissionDenied):
        scoped.access.grant("alice", "feature:read_online", f"{FG}/*")  # no grant:manage
    manage = env.login("alice", actions=["grant:manage", "feature:describe"], resources=[f"{FG}/*"])
    env.admin.identity.create_user("bob")
    with pytest.raises(PermissionDenied, match="feature:read_offline"):
        manage.access.grant("bob", "data_scientist", f"{FG}/*")
    with pytest.raises(PermissionDenied):
        manage.access.grant("bob", "feature:describe", "default/*")  # pattern outside scope
    manage.access.grant("bob", "feature:describe", f"{FG}/credit")


def case13(env: Env) -> None:
    alice = env.user("alice", ("data_scientist", "default/*"))
    env.admin.identity.create_service("svc2")
    env.user("bob")
    assert alice.can("pipeline:run", "default/pipelines/train")
    with pytest.raises(PermissionDenied, match="principal:use"):
        alice.assume("default-runner")
    denial = env.denials()[-1]
    assert (denial.actor, denial.action) == ("alice", "principal:use")
    env.admin.access.grant("alice", "principal:use", "_principals/default-runner")
    runner = alice.assume("default-runner")
    assert runner.principal.name == "default-runner"
    assert runner.on_behalf_of is not None and runner.on_behalf_of.name == "alice"
    assert runner.can("feature:write", f"{FG}/x")  # the runner's own data_scientist grant
    assert not runner.can("model:approve", "default/models/m/1")
    assert not runner.authorize("grant:manage", "default").allowed
    row = env.denials()[-1]
    assert (row.actor, row.on_behalf_of, row.action) == ("default-runner", "alice", "grant:manage")
    used = [e for e in audit.entries(env.admin.catalog) if e.action == "principal:use"]
    assert used[-1].outcome == "ok" and used[-1].actor == "alice"
    with pytest.raises(PermissionDenied):
        alice.assume("svc2")  # principal:use on one service is not on another
    env.admin.access.grant("alice", "principal:use", "_principals/*")
    with pytest.raises(ValidationError, match="service"):
        alice.assume("bob")  # users cannot be assumed
    # run-as chains do not widen: the runner cannot assume further without principal:use
    with pytest.raises(PermissionDenied):
        runner.assume("svc2")


BUILTIN_GOLDEN = {
    "viewer": [
        "clarify:read_report",
        "feature:describe",
        "model:describe",
        "pipeline:describe",
    ],
    "online_reader": ["feature:describe", "feature:read_online", "model:predict"],
    "data_scientist": [
        "artifact:read",
        "artifact:write",
        "clarify:read_report",
        "clarify:run",
        "feature:create",
        "feature:describe",
        "feature:read_offline",
        "feature:read_online",
        "feature:write",
        "model:describe",
        "model:predict",
        "model:read",
        "model:register",
        "pipeline:create",
        "pipeline:describe",
        "pipeline:run",
        "pipeline:update",
    ],
    "approver": [
        "artifact:read",
        "clarify:read_report",
        "clarify:review",
        "feature:describe",
        "model:approve",
        "model:describe",
        "model:predict",
        "model:read",
        "pipeline:approve",
        "pipeline:describe",
    ],
    "owner": [
        "artifact:read",
        "artifact:write",
        "audit:read",
        "clarify:read_report",
        "clarify:review",
        "clarify:run",
        "feature:create",
        "feature:delete",
        "feature:describe",
        "feature:read_offline",
        "feature:read_online",
        "feature:write",
        "grant:manage",
        "model:approve",
        "model:delete",
        "model:describe",
        "model:predict",
        "model:read",
        "model:register",
        "pipeline:approve",
        "pipeline:create",
        "pipeline:delete",
        "pipeline:describe",
        "pipeline:run",
        "pipeline:update",
        "principal:manage",
        "principal:use",
    ],
    # what a resource's creator gets: owner without the reviewing actions
    "maintainer": [
        "artifact:read",
        "artifact:write",
        "audit:read",
        "clarify:read_report",
        "clarify:run",
        "feature:create",
        "feature:delete",
        "feature:describe",
        "feature:read_offline",
        "feature:read_online",
        "feature:write",
        "grant:manage",
        "model:delete",
        "model:describe",
        "model:predict",
        "model:read",
        "model:register",
        "pipeline:create",
        "pipeline:delete",
        "pipeline:describe",
        "pipeline:run",
        "pipeline:update",
        "principal:manage",
        "principal:use",
    ],
}


def case14(env: Env) -> None:
    assert {k: sorted(v) for k, v in BUILTIN_ROLES.items()} == BUILTIN_GOLDEN
    assert sorted(ACTIONS) == BUILTIN_GOLDEN["owner"]
    assert env.admin.access.roles() == BUILTIN_ROLES
    for role, actions in BUILTIN_GOLDEN.items():
        session = env.user(f"has-{role.replace('_', '-')}", (role, "default/*"))
        assert sorted(a for a in ACTIONS if session.can(a, f"{FG}/x")) == actions, role
        assert not any(session.can(a, "other/x") for a in ACTIONS)
    with pytest.raises(ValidationError, match="built-in"):
        env.admin.access.create_role("owner", ["feature:describe"])


def case15(env: Env) -> None:
    runner = env.admin.identity.get("default-runner")
    run_id = str(uuid.uuid4())
    scope = TokenScope(
        actions=frozenset({"artifact:read", "artifact:write", "feature:read_offline"})
        | {"model:register"},
        patterns=(f"default/runs/{run_id}/*", f"{FG}/credit", "default/models/credit/*"),
    )

    def run_token(lifetime: float) -> tuple[identity.TokenInfo, str]:
        with env.admin.catalog.write() as conn:
            return insert_token(
                conn,
                principal=runner,
                kind="run",
                expires_in=dt.timedelta(seconds=lifetime),
                scope=scope,
                run_id=run_id,
                description="",
                created_by=env.admin.principal.id,
            )

    info, secret = run_token(5.0)  # long enough for a loaded machine; the test waits it out
    assert secret.startswith("trv_run_") and split_token(secret)[0] == info.prefix
    run = trivet.connect(env.workspace, secret)
    assert run.run_id == run_id and run.token is not None and run.token.kind == "run"
    assert run.can("artifact:write", f"default/runs/{run_id}/step-1/out")
    assert run.can("feature:read_offline", f"{FG}/credit")
    assert run.can("model:register", "default/models/credit")
    assert not run.can("artifact:write", "default/runs/another-run/out")  # outside its run
    assert not run.can("feature:read_offline", f"{FG}/undeclared")  # undeclared input
    assert not run.can("feature:write", f"{FG}/credit")  # undeclared kind of access
    assert not run.can("model:register", "default/models/other")  # undeclared output
    assert not run.authorize("artifact:write", "default/runs/another-run/out").allowed
    assert env.denials()[-1].run_id == run_id
    with pytest.raises(ValidationError, match="run token"):
        run.identity.create_token()
    # the run ends: its token expires, and the open session stops working
    remaining = (info.expires_at - trivet_now()).total_seconds()
    time.sleep(max(0.0, remaining) + 0.05)
    decision = run.authorize("artifact:write", f"default/runs/{run_id}/step-1/out")
    assert not decision.allowed and "expired" in decision.reason
    assert not run.can("feature:read_offline", f"{FG}/credit")
    with pytest.raises(NotAuthenticated, match="expired"):
        trivet.connect(env.workspace, secret)
    # ended early: revoked at the end of the run
    info2, secret2 = run_token(300)
    run2 = trivet.connect(env.workspace, secret2)
    assert run2.can("feature:read_offline", f"{FG}/credit")
    env.admin.identity.revoke_token(info2.prefix)
    assert not run2.can("feature:read_offline", f"{FG}/credit")
    assert "revoked" in run2.authorize("feature:read_offline", f"{FG}/credit").reason


def case16(env: Env) -> None:
    alice = env.user("alice", ("data_scientist", "default/*"))
    env.admin.identity.create_user("bob")
    bob = env.login("bob")
    with pytest.raises(PermissionDenied, match="grant:manage"):
        alice.access.grant("bob", "viewer", "default/*")
    env.admin.access.grant("alice", "grant:manage", "default/*")
    alice.access.grant("bob", "viewer", "default/*")
    assert bob.can("feature:describe", f"{FG}/x")
    for privilege, pattern in (
        ("approver", "default/*"),  # model:approve is not hers to give
        ("owner", "default/models/*"),
        ("model:approve", "default/models/m"),
        ("viewer", "*"),  # outside where she manages grants
        ("viewer", "other/*"),
        ("principal:use", "_principals/default-runner"),
    ):
        with pytest.raises(PermissionDenied):
            alice.access.grant("bob", privilege, pattern)
    assert not bob.can("model:approve", "default/models/m")
    # deny needs grant:manage only
    alice.access.grant("bob", "feature:describe", f"{FG}/secret", deny=True)
    assert not bob.can("feature:describe", f"{FG}/secret")
    # a deny deeper down means she does not hold the action on all of the subtree
    env.admin.access.grant("alice", "feature:read_online", f"{FG}/pii", deny=True)
    (admin_deny,) = [g for g in env.admin.access.grants(subject="alice") if g.effect == "deny"]
    with pytest.raises(PermissionDenied, match="feature:read_online"):
        alice.access.grant("bob", "online_reader", f"{FG}/*")
    refused = env.denials()[-1]  # refused escalations are denials too, and audited
    assert (refused.actor, refused.action, refused.resource) == ("alice", "grant:manage", FG)
    assert "feature:read_online" in refused.detail["reason"]
    assert not bob.can("feature:read_online", f"{FG}/pii")
    alice.access.grant("bob", "online_reader", f"{FG}/public")
    assert bob.can("feature:read_online", f"{FG}/public")
    # and she cannot lift the deny on herself: removing a deny is granting
    with pytest.raises(PermissionDenied):
        alice.access.revoke(admin_deny.id)
    assert not alice.can("feature:read_online", f"{FG}/pii")
    env.admin.access.revoke(admin_deny.id)
    assert alice.can("feature:read_online", f"{FG}/pii")
    # custom roles: only catalogued actions; granted like any other privilege
    with pytest.raises(PermissionDenied):
        alice.access.create_role("reader", ["feature:describe"])
    env.admin.access.create_role("reader", ["feature:describe", "feature:read_offline"])
    with pytest.raises(ValidationError):
        env.admin.access.create_role("broken", ["feature:raed"])
    alice.access.grant("bob", "reader", f"{FG}/*")
    assert bob.can("feature:read_offline", f"{FG}/x")


def case17(env: Env) -> None:
    alice = env.user("alice", ("viewer", f"{FG}/a"), ("model:describe", "default/models/*"))
    env.user("bob", ("data_scientist", "default/*"))
    env.admin.identity.create_group("readers")
    env.admin.identity.add_member("readers", "alice")
    env.admin.access.grant("readers", "feature:describe", f"{FG}/b")
    candidates = [(f"{FG}/{n}", "feature:describe") for n in ("a", "b", "c", "secret")] + [
        (f"default/models/{n}", "model:describe") for n in ("m1", "m2")
    ]
    visible = [r for r, action in candidates if alice.can(action, r)]
    assert visible == [f"{FG}/a", f"{FG}/b", "default/models/m1", "default/models/m2"]
    # listing grants shows her own (and her groups') grants, not bob's
    seen = {(g.subject, g.pattern) for g in alice.access.grants()}
    assert seen == {
        ("alice", f"{FG}/a"),
        ("alice", "default/models/*"),
        ("readers", f"{FG}/b"),
    }
    assert alice.access.grants(subject="bob") == []
    assert {g.subject for g in env.admin.access.grants()} >= {"alice", "bob", "readers"}
    # nor may she ask about other principals' decisions
    with pytest.raises(PermissionDenied):
        alice.access.check("feature:describe", f"{FG}/a", principal="bob")


def case18(env: Env) -> None:
    ident, access = env.admin.identity, env.admin.access
    env.user("alice", ("owner", "default/*"))
    old_token = env.admin.identity.create_token("alice")
    old_id = ident.get("alice").id
    ident.create_group("team")
    ident.add_member("team", "alice")
    access.grant("team", "viewer", "other/*")
    ident.create_service("svc")
    access.grant("alice", "principal:use", "_principals/svc")
    ident.delete("alice")
    ident.delete("svc")
    assert access.grants(subject="alice") == []
    with pytest.raises(NotAuthenticated):
        trivet.connect(env.workspace, old_token.secret)
    again = env.user("alice")
    assert ident.get("alice").id != old_id
    assert allowed(again, every(ACTIONS, [*RESOURCES, "other/x"])) == set()
    assert ident.members("team") == []
    # grants naming a deleted principal as a resource go too
    ident.create_service("svc")
    assert not again.can("principal:use", "_principals/svc")
    assert access.grants(pattern="_principals/svc") == []
    # a deleted resource's grants go (exact and subtree); neighbours keep theirs
    model = "default/models/m_1"
    for pattern in (model, f"{model}/*", f"{model}/3", "default/models/mx1/3", f"{model}x"):
        access.grant("alice", "model:read", pattern)
    with env.admin.catalog.write() as conn:
        dropped = access.drop_resource(conn, model)
    assert dropped == 3
    assert not again.can("model:read", model)
    assert not again.can("model:read", f"{model}/3")
    assert again.can("model:read", "default/models/mx1/3")
    assert again.can("model:read", f"{model}x")


def case19(env: Env) -> None:
    env.user("alice", ("viewer", "default/*"))
    good = env.admin.identity.create_token("alice")
    assert trivet.connect(env.workspace, good.secret).principal.name == "alice"
    body, checksum = good.secret.rsplit("_", 1)
    bad = body + ("A" if checksum[-1] != "A" else "B") + checksum[1:]
    queries: list[str] = []
    sa.event.listen(
        env.admin.catalog.engine,
        "before_cursor_execute",
        lambda *args: queries.append(args[2]),
    )
    with pytest.raises(NotAuthenticated, match="checksum"):
        identity.authenticate(env.admin.catalog, bad)
    assert queries == []
    with pytest.raises(NotAuthenticated, match="not known"):  # right shape, unknown secret
        identity.authenticate(env.admin.catalog, identity.make_token("usr"))
    assert queries  # that one had to look
    revoked = env.admin.identity.create_token("alice")
    env.admin.identity.revoke_token(revoked.info.prefix)
    with pytest.raises(NotAuthenticated, match="revoked"):
        trivet.connect(env.workspace, revoked.secret)
    later = trivet_now() + dt.timedelta(days=31)
    env.monkeypatch.setattr(identity, "now_utc", lambda: later)
    with pytest.raises(NotAuthenticated, match="expired"):
        trivet.connect(env.workspace, good.secret)
    env.monkeypatch.undo()
    with env.admin.catalog.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(tokens))]
    dump = json.dumps(rows, default=str)
    for secret in (good.secret, revoked.secret):
        assert secret not in dump and secret.split("_")[2] not in dump
    import hashlib

    hashes = {r["token_hash"] for r in rows}
    assert hashlib.sha256(good.secret.encode()).hexdigest() in hashes


def case20(env: Env) -> None:
    alice = env.user("alice", ("viewer", "default/*"))
    decision = alice.authorize("feature:write", f"{FG}/credit")
    with pytest.raises(PermissionDenied):
        alice.require("model:approve", "default/models/m/1")
    assert not alice.authorize("feature:describe", "other/x").allowed
    rows = env.denials()[-3:]
    assert [(r.actor, r.action, r.resource) for r in rows] == [
        ("alice", "feature:write", f"{FG}/credit"),
        ("alice", "model:approve", "default/models/m/1"),
        ("alice", "feature:describe", "other/x"),
    ]
    assert rows[0].detail["reason"] == decision.reason
    assert all(r.detail["reason"] for r in rows)
    count = len(env.denials())
    assert not alice.can("feature:write", f"{FG}/other")  # can() is not audited
    assert len(env.denials()) == count
    assert audit.verify(env.admin.catalog).ok
    k = rows[1].seq
    with env.admin.catalog.write() as conn:
        conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.seq == k)
            .values(detail={"reason": "nothing to see"})
        )
    result = audit.verify(env.admin.catalog)
    assert not result.ok and result.first_bad_seq == k and "altered" in (result.problem or "")
    with env.admin.catalog.write() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == k))
    result = audit.verify(env.admin.catalog)
    assert not result.ok and result.first_bad_seq == k and "missing" in (result.problem or "")


def case21(env: Env) -> None:
    env.caplog.set_level(logging.DEBUG)
    env.caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    errors: list[BaseException] = []

    def expect_error(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except TrivetError as exc:
            errors.append(exc)
        else:
            raise AssertionError("expected an error")

    alice = env.user("alice", ("viewer", "default/*"))
    new = env.admin.identity.create_token("alice", description="ci")
    session = trivet.connect(env.workspace, new.secret)
    secrets_ = [new.secret]
    expect_error(lambda: session.require("model:approve", "default/models/m"))
    expect_error(lambda: session.identity.create_token("bob"))
    expect_error(lambda: trivet.connect(env.workspace, new.secret[:-1] + "!"))
    expect_error(lambda: trivet.connect(env.workspace, new.secret + "x"))
    expect_error(lambda: trivet.connect(env.workspace, " " + new.secret[:20]))
    revoked = env.admin.identity.create_token("alice")
    secrets_.append(revoked.secret)
    env.admin.identity.revoke_token(revoked.info.prefix)
    expect_error(lambda: trivet.connect(env.workspace, revoked.secret))
    unknown = identity.make_token("usr")
    secrets_.append(unknown)
    expect_error(lambda: trivet.connect(env.workspace, unknown))
    env.monkeypatch.setenv("TRIVET_TOKEN", revoked.secret)
    expect_error(lambda: trivet.connect(env.workspace))
    env.monkeypatch.delenv("TRIVET_TOKEN")
    expect_error(lambda: env.admin.identity.create_token("alice", expires_in=dt.timedelta(0)))
    assert len(errors) == 9
    objects: list[Any] = [
        new,
        new.info,
        session,
        session.token,
        alice,
        *env.admin.identity.list_tokens("alice"),
    ]
    texts = [str(o) for o in objects] + [repr(o) for o in objects]
    for exc in errors:
        texts += [str(exc), repr(exc), str(exc.__cause__), repr(exc.__cause__)]
        texts.append(repr(pickle.loads(pickle.dumps(exc)).__dict__))
    texts += [r.getMessage() for r in env.caplog.records]
    texts.append(env.caplog.text)
    texts += [
        json.dumps(dataclasses.asdict(e), default=str) for e in audit.entries(env.admin.catalog)
    ]
    assert len(env.caplog.records) > 10  # the SQL was logged, so the check means something
    for secret in secrets_:
        random_part = secret.split("_")[2]
        for text in texts:
            assert random_part not in text, text[:200]
    assert "trv_usr_" in identity.redact(f"Bearer {new.secret}")
    assert new.secret.split("_")[2] not in identity.redact(f"Bearer {new.secret}")


def case22(env: Env) -> None:
    cli = pytest.importorskip("trivet.cli", reason="trivet.cli is not written yet")
    from typer.testing import CliRunner

    runner = CliRunner()
    env.admin.identity.create_user("alice")
    env.admin.identity.create_group("team")
    env.admin.identity.add_member("team", "alice")
    resources = [FG, f"{FG}/a", f"{FG}/a/v1", f"{FG}/ab", "default/models/m", "other/x"]
    patterns = ["*", *resources, *(f"{r}/*" for r in resources)]
    actions = ["feature:describe", "feature:read_online", "model:approve", "feature:raed"]
    privileges = [a for a in actions if a in ACTIONS] + ["viewer", "online_reader", "owner"]
    grant_st = st.tuples(
        st.sampled_from(["alice", "team"]),
        st.sampled_from(privileges),
        st.sampled_from(patterns),
        st.booleans(),
    )
    env_vars = {"TRIVET_WORKSPACE": str(env.workspace), "TRIVET_TOKEN": ""}

    @settings(
        max_examples=12 if env.backend == "sqlite" else 6,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(
        grants_=st.lists(grant_st, max_size=4),
        probes=st.lists(
            st.tuples(st.sampled_from(actions), st.sampled_from(resources)),
            min_size=1,
            max_size=3,
        ),
    )
    def same_decisions(
        grants_: list[tuple[str, str, str, bool]], probes: list[tuple[str, str]]
    ) -> None:
        for old in env.admin.access.grants(subject="alice") + env.admin.access.grants(
            subject="team"
        ):
            env.admin.access.revoke(old.id)
        for subject, privilege, pattern, deny in grants_:
            env.admin.access.grant(subject, privilege, pattern, deny=deny)
        for action, resource in probes:
            sdk = env.admin.access.check(action, resource, principal="alice")
            result = runner.invoke(
                cli.app,
                ["auth", "check", action, resource, "--principal", "alice", "--json"],
                env=env_vars,
            )
            assert result.exit_code == (0 if sdk.allowed else 1), result.output
            shown = json.loads(result.stdout)
            assert shown["allowed"] == sdk.allowed
            assert shown["reason"] == sdk.reason
            assert shown["grants"] == list(sdk.grants)

    same_decisions()


def case23(env: Env) -> None:
    from trivet.errors import IntegrityError, NotFound

    store = env.admin.artifacts
    model = {"weights": [0.5, -1.25], "bias": 0.1}
    with pytest.raises(ValidationError, match="trust_pickle"):
        store.put_model(model, flavor="pickle")
    ref = store.put_model(model, flavor="pickle", trust_pickle=True)
    with pytest.raises(ValidationError):
        store.load_model(ref.digest)  # a pickle needs the explicit trust flag
    assert store.load_model(ref.digest, trust_pickle=True) == model
    # a pickle whose digest the catalog does not hold is never loaded
    import hashlib

    with pytest.raises(NotFound):
        store.load_model(hashlib.sha256(pickle.dumps(model)).hexdigest(), trust_pickle=True)
    # swap the stored bytes for another pickle: the digest no longer matches
    (blob,) = [p for p in Path(env.admin.settings.artifacts_url).rglob(ref.digest) if p.is_file()]
    blob.chmod(0o644)
    blob.write_bytes(pickle.dumps({"weights": [9.9, 9.9], "bias": 0.0}))
    with pytest.raises(IntegrityError):
        store.load_model(ref.digest, trust_pickle=True)
    with pytest.raises(IntegrityError):
        store.get_bytes(ref.digest)


def case24(env: Env) -> None:
    from trivet.errors import Conflict
    from trivet.platform.registry import ApprovalStatus

    ref = env.admin.artifacts.put_model({"w": 1}, flavor="pickle", trust_pickle=True)
    env.admin.access.grant(env.admin.principal.name, "principal:use", "_principals/default-runner")
    pipeline = env.admin.assume("default-runner")
    failed = pipeline.registry.register("credit", artifact=ref.digest, gate_status="failed")
    report = env.admin.artifacts.put_bytes(
        b'{"checks": {"passed": true}}',
        folder="default/models/credit",
        media_type="application/json",
    )
    passed = pipeline.registry.register(
        "credit", artifact=ref.digest, fairness_report=report.digest, gate_status="passed"
    )
    env.admin.access.grant("default-runner", "model:approve", "default/models/*")
    # even where model:approve is held: the pipeline (a service principal) never
    # approves anything, and nobody approves a version that failed its gate
    for who, refusal, reason in (
        (pipeline, PermissionDenied, "person's decision"),
        (env.admin, Conflict, "fairness gate"),
    ):
        assert who.can("model:approve", failed.resource)
        with pytest.raises(refusal, match=reason):
            who.registry.approve("credit", failed.version, justification="ship it anyway")
        with pytest.raises(Conflict):
            who.registry.set_alias("credit", "prod", failed.version)
    assert env.admin.registry.get("credit", failed.version).status is ApprovalStatus.PENDING
    env.admin.registry.approve("credit", passed.version, justification="gate passed")
    assert env.admin.registry.set_alias("credit", "prod", passed.version).version == passed.version
    with pytest.raises(Conflict):
        env.admin.registry.set_alias("credit", "prod", failed.version)
    assert env.admin.registry.get("credit", "prod").version == passed.version


CASES: list[tuple[str, Callable[[Env], None]]] = [
    ("case01-empty-store-denies", case01),
    ("case02-exact-allow-is-exact", case02),
    ("case03-subtree-covers-later-children", case03),
    ("case04-patterns-are-segment-aware", case04),
    ("case05-deeper-deny-beats-shallower-allow", case05),
    ("case06-group-deny-beats-user-allow", case06),
    ("case07-nested-groups-and-cycles", case07),
    ("case08-unknown-actions", case08),
    ("case09-bad-names-rejected", case09),
    ("case10-expired-grant-stops-counting", case10),
    ("case11-changes-seen-next-check-and-other-process", case11),
    ("case12-token-scope-restricts-never-adds", case12),
    ("case13-run-as-needs-principal-use", case13),
    ("case14-builtin-roles-golden", case14),
    ("case15-run-token-confined-to-its-run", case15),
    ("case16-no-escalation-through-grants", case16),
    ("case17-listings-filtered", case17),
    ("case18-deleted-principals-and-resources", case18),
    ("case19-bad-tokens-refused-hashes-stored", case19),
    ("case20-denials-audited-tampering-detected", case20),
    ("case21-no-token-in-logs-or-errors", case21),
    ("case22-sdk-and-cli-agree", case22),
    ("case23-pickle-needs-matching-digest", case23),
    ("case24-failed-gate-cannot-be-approved", case24),
]


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_permission_case(
    case: Callable[[Env], None],
    admin: trivet.Session,
    catalog_backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    case(Env(admin, catalog_backend, tmp_path, monkeypatch, caplog))


def test_cases_are_numbered() -> None:
    assert [i.split("-")[0] for i, _ in CASES] == [f"case{n:02d}" for n in range(1, 25)]


# -- the evaluator against a brute-force oracle ---------------------------------------------
UNIVERSE = ["p", "p/a", "p/a/x", "p/a/x/1", "p/ab", "p/ab/x", "q", "q/a"]
PATTERNS = ["*", *UNIVERSE, *(f"{r}/*" for r in UNIVERSE)]
ORACLE_ACTIONS = ["feature:describe", "feature:read_online", "model:approve", "feature:raed"]
PRIVILEGES = [*ORACLE_ACTIONS[:3], "viewer", "online_reader", "approver", "no-such-role"]
SUBJECTS = ["u", "g0", "g1", "g2", "v"]


def _node(pattern: str) -> tuple[str, bool]:
    return (pattern[:-2], True) if pattern.endswith("/*") else (pattern, False)


def _within(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/")


def _pattern_includes(outer: str, inner: str) -> bool:
    """Whether every resource ``inner`` matches is matched by ``outer``."""
    if outer == "*":
        return True
    if inner == "*":
        return False
    (on, osub), (inode, isub) = _node(outer), _node(inner)
    return _within(inode, on) if osub else (not isub and inode == on)


def _includes_flipped(inner: str, outer: str) -> bool:
    return _pattern_includes(outer, inner)


def _patterns_meet(a: str, b: str) -> bool:
    """Whether some resource is matched by both patterns."""
    if "*" in (a, b):
        return True
    (an, asub), (bn, bsub) = _node(a), _node(b)
    if asub and bsub:
        return _within(an, bn) or _within(bn, an)
    if asub:
        return _within(bn, an)
    if bsub:
        return _within(an, bn)
    return an == bn


grant_rows = st.tuples(
    st.sampled_from(SUBJECTS),
    st.sampled_from(["allow", "deny"]),
    st.sampled_from(PRIVILEGES),
    st.sampled_from(PATTERNS),
    st.sampled_from([None, None, None, "past", "future"]),
)
member_edges = st.lists(
    st.tuples(st.sampled_from(["u", "v", "g0", "g1", "g2"]), st.sampled_from(["g0", "g1", "g2"])),
    max_size=6,
)


def test_evaluator_matches_brute_force_oracle(admin: trivet.Session) -> None:
    ident = admin.identity
    ids = {"u": ident.create_user("u").id, "v": ident.create_user("v").id}
    for g in ("g0", "g1", "g2"):
        ids[g] = ident.create_group(g).id
    catalog, evaluator = admin.catalog, admin._evaluator
    now = trivet_now()
    expiry = {
        None: None,
        "past": now - dt.timedelta(hours=1),
        "future": now + dt.timedelta(hours=1),
    }

    @settings(
        max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(rows=st.lists(grant_rows, max_size=8), edges=member_edges)
    def matches(
        rows: list[tuple[str, str, str, str, str | None]], edges: list[tuple[str, str]]
    ) -> None:
        edges = [(m, g) for m, g in set(edges) if m != g]
        with catalog.write() as conn:
            conn.execute(sa.delete(grants).where(grants.c.subject_id.in_(ids.values())))
            conn.execute(sa.delete(memberships).where(memberships.c.member_id.in_(ids.values())))
            for m, g in edges:
                conn.execute(
                    sa.insert(memberships).values(group_id=ids[g], member_id=ids[m], created_at=now)
                )
            for subject, effect, privilege, pattern, expires in rows:
                conn.execute(
                    sa.insert(grants).values(
                        id=str(uuid.uuid4()),
                        subject_id=ids[subject],
                        effect=effect,
                        privilege=privilege,
                        pattern=pattern,
                        expires_at=expiry[expires],
                        created_at=now,
                        reason="",
                    )
                )
            bump_epoch(conn, catalog)
        # oracle: u and the groups it reaches; deny if any covering deny, else any allow
        subjects, frontier = {"u"}, {"u"}
        while frontier:
            frontier = {g for m, g in edges if m in frontier} - subjects
            subjects |= frontier
        live = [r for r in rows if r[0] in subjects and r[4] != "past"]

        def holds(effect: str, action: str, match: Callable[[str], bool]) -> bool:
            return any(
                e == effect and action in expand_privilege(p, {}) and match(pat)
                for _, e, p, pat, _ in live
            )

        for action in ORACLE_ACTIONS:
            for resource in UNIVERSE:

                def covers(pat: str, r: str = resource) -> bool:
                    return pattern_covers(pat, r)

                expected = (
                    action in ACTIONS
                    and not holds("deny", action, covers)
                    and holds("allow", action, covers)
                )
                got = evaluator.check(ids["u"], "u", action, resource)
                assert got.allowed == expected, (action, resource, got.reason)
            if action not in ACTIONS:
                continue
            for pattern in PATTERNS:
                # holding an action on a whole pattern: one allow includes all of it,
                # and no deny touches any of it (what granting it onwards needs)
                expected = holds(
                    "allow", action, functools.partial(_includes_flipped, pattern)
                ) and not holds("deny", action, functools.partial(_patterns_meet, pattern))
                got_held = evaluator.check_pattern(ids["u"], action, pattern)
                assert got_held == expected, (action, pattern)

    matches()


def test_next_check_sees_a_change_committed_by_another_thread(admin: trivet.Session) -> None:
    """A check racing a policy write must not pin the pre-commit epoch until the next poll."""
    admin.identity.create_user("alice")
    admin.access.grant("alice", "viewer", "default/*")
    alice_id = admin.identity.get("alice").id
    ev = admin._evaluator
    ev.poll_seconds = 3600.0  # only in-process signals may refresh
    assert ev.check(alice_id, "alice", "feature:describe", FG).allowed
    ev._next_poll = time.monotonic() + 3600
    inside, checked = threading.Event(), threading.Event()
    during: list[bool] = []

    def checker() -> None:
        inside.wait(10)
        during.append(ev.check(alice_id, "alice", "feature:describe", FG).allowed)
        checked.set()

    thread = threading.Thread(target=checker)
    thread.start()
    from trivet.platform.access import insert_grant

    with admin.catalog.write() as conn:
        insert_grant(
            admin,
            conn,
            subject=admin.identity.get("alice"),
            effect="deny",
            privilege="feature:describe",
            pattern=FG,
        )
        inside.set()
        assert checked.wait(10)
    thread.join()
    assert during == [True]  # not committed yet: the old policy still holds
    assert not ev.check(alice_id, "alice", "feature:describe", FG).allowed


def test_principal_kinds_cannot_be_confused(admin: trivet.Session) -> None:
    group = admin.identity.create_group("grp")
    assert group.kind is PrincipalKind.GROUP
    with pytest.raises(ValidationError, match="group"):
        admin.identity.create_token("grp")


def test_a_grant_that_expired_before_it_was_written_is_refused(admin: trivet.Session) -> None:
    admin.identity.create_user("alice")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with pytest.raises(ValidationError, match="in the past"):
        admin.access.grant("alice", "viewer", "default/*", expires_at=past)
    assert admin.access.grants(subject="alice") == []
