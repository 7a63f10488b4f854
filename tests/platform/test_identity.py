"""Identity: token format and checks, principals, groups, OS-user sign-in, TRIVET_TOKEN."""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import os
import re
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import trivet
from trivet.errors import (
    AlreadyExists,
    Conflict,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from trivet.platform import audit, identity, workspace
from trivet.platform.catalog import Catalog, metadata
from trivet.platform.catalog.schema import tokens
from trivet.platform.identity import (
    MAX_TOKEN_LIFETIME,
    PrincipalKind,
    authenticate,
    insert_token,
    make_token,
    split_token,
)
from trivet.platform.permissions import TokenScope

TOKEN = re.compile(r"trv_(usr|svc|run)_([0-9A-Za-z]{40})_([0-9A-Za-z]{6})")
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
UNREACHABLE = "postgresql://nobody:pw@127.0.0.1:1/none"


def b62(n: int, width: int) -> str:
    digits = []
    for _ in range(width):
        n, r = divmod(n, 62)
        digits.append(B62[r])
    return "".join(reversed(digits))


def count_queries(catalog: Catalog) -> list[str]:
    seen: list[str] = []
    sa.event.listen(catalog.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


# -- token format ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["usr", "svc", "run"])
def test_token_format_and_checksum(kind: str) -> None:
    made = {make_token(kind) for _ in range(200)}
    assert len(made) == 200
    for token in made:
        match = TOKEN.fullmatch(token)
        assert match is not None and match.group(1) == kind
        body = token.rsplit("_", 1)[0]
        assert match.group(3) == b62(zlib.crc32(body.encode()), 6)
        prefix, digest = split_token(token)
        assert prefix == f"trv_{kind}_{match.group(2)[:8]}"
        assert digest == hashlib.sha256(token.encode()).hexdigest()
    # the random part uses the whole alphabet (238 bits per token)
    assert set("".join(TOKEN.fullmatch(t).group(2) for t in made)) == set(B62)  # type: ignore[union-attr]


def test_tokens_are_made_per_principal_kind(admin: trivet.Session) -> None:
    admin.identity.create_user("alice")
    admin.identity.create_service("svc")
    admin.identity.create_group("grp")
    assert admin.identity.create_token("alice").secret.startswith("trv_usr_")
    assert admin.identity.create_token("svc").secret.startswith("trv_svc_")
    with pytest.raises(ValidationError, match="groups cannot hold tokens"):
        admin.identity.create_token("grp")


_valid = make_token("usr")


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(_valid) - 1),
    char=st.sampled_from(B62 + "_-. "),
)
def test_any_one_character_typo_is_caught_by_the_checksum_without_a_lookup(
    position: int, char: str
) -> None:
    typo = _valid[:position] + char + _valid[position + 1 :]
    if typo == _valid:
        return
    # an unreachable catalog: any lookup would raise BackendError, not NotAuthenticated
    catalog = Catalog(UNREACHABLE)
    queries = count_queries(catalog)
    with pytest.raises(NotAuthenticated) as err:
        authenticate(catalog, typo)
    assert queries == []
    assert _valid.split("_")[2] not in str(err.value)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "trv_usr_",
        "trv_xyz_" + "a" * 40 + "_" + "a" * 6,
        "Bearer " + _valid,
        _valid[:-1],
        _valid + "0",
        _valid.upper(),
        _valid.replace("trv_usr_", "trv_svc_"),
    ],
)
def test_malformed_tokens_are_refused_before_any_lookup(admin: trivet.Session, bad: str) -> None:
    queries = count_queries(admin.catalog)
    with pytest.raises(NotAuthenticated, match="malformed or mistyped"):
        authenticate(admin.catalog, bad)
    assert queries == []


def test_a_well_formed_unknown_token_is_looked_up_and_refused(admin: trivet.Session) -> None:
    queries = count_queries(admin.catalog)
    with pytest.raises(NotAuthenticated, match="not known"):
        authenticate(admin.catalog, make_token("usr"))
    assert len(queries) >= 1


def test_same_prefix_other_secret_is_refused(admin: trivet.Session) -> None:
    admin.identity.create_user("alice")
    real = admin.identity.create_token("alice").secret
    # keep the display prefix, change the rest, fix the checksum: the hash comparison refuses
    forged_body = real[: len("trv_usr_") + 8] + "x" * 32
    forged = f"{forged_body}_{b62(zlib.crc32(forged_body.encode()), 6)}"
    assert split_token(forged)[0] == split_token(real)[0]
    with pytest.raises(NotAuthenticated, match="not known"):
        authenticate(admin.catalog, forged)


# -- life cycle -------------------------------------------------------------------------------
def test_revoked_and_expired_tokens_are_refused(
    admin: trivet.Session, catalog_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = admin.settings.workspace
    admin.identity.create_user("alice")
    token = admin.identity.create_token("alice", expires_in=dt.timedelta(days=2))
    principal, info = authenticate(admin.catalog, token.secret)
    assert principal.name == "alice" and info.is_active
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2, seconds=1)
    monkeypatch.setattr(identity, "now_utc", lambda: later)
    with pytest.raises(NotAuthenticated, match="expired"):
        trivet.connect(ws, token.secret)
    monkeypatch.undo()
    assert trivet.connect(ws, token.secret).principal.name == "alice"
    revoked = admin.identity.revoke_token(token.info.prefix)
    assert revoked.revoked_at is not None and not revoked.is_active
    with pytest.raises(NotAuthenticated, match="revoked"):
        trivet.connect(ws, token.secret)
    with pytest.raises(NotFound):
        admin.identity.revoke_token("trv_usr_nothere0")


def test_only_the_hash_is_stored(admin: trivet.Session, catalog_backend: str) -> None:
    admin.identity.create_user("alice")
    created = [admin.identity.create_token("alice", description=f"t{i}") for i in range(3)]
    dump = []
    with admin.catalog.read() as conn:
        for table in metadata.sorted_tables:
            dump += [dict(r._mapping) for r in conn.execute(sa.select(table))]
        rows = [dict(r._mapping) for r in conn.execute(sa.select(tokens))]
    text = json.dumps(dump, default=str)
    for token in created:
        assert token.secret not in text
        assert token.secret.split("_")[2] not in text
        assert token.info.prefix in text  # the display prefix is what is kept
    assert sorted(r["token_hash"] for r in rows if r["description"].startswith("t")) == sorted(
        hashlib.sha256(t.secret.encode()).hexdigest() for t in created
    )
    assert all(set(r) >= {"prefix", "token_hash"} and "secret" not in r for r in rows)


def test_expiry_is_mandatory_and_capped(admin: trivet.Session) -> None:
    assert (
        inspect.signature(insert_token).parameters["expires_in"].default is inspect.Parameter.empty
    )
    admin.identity.create_user("alice")
    for bad in (dt.timedelta(0), dt.timedelta(seconds=-1), MAX_TOKEN_LIFETIME + dt.timedelta(1)):
        with pytest.raises(ValidationError):
            admin.identity.create_token("alice", expires_in=bad)
    longest = admin.identity.create_token("alice", expires_in=MAX_TOKEN_LIFETIME)
    default = admin.identity.create_token("alice")
    now = dt.datetime.now(dt.UTC)
    assert longest.info.expires_at - now <= MAX_TOKEN_LIFETIME
    assert dt.timedelta(days=29) < default.info.expires_at - now <= dt.timedelta(days=30)
    principal = admin.identity.get("alice")
    with admin.catalog.write() as conn, pytest.raises(ValidationError):
        insert_token(
            conn,
            principal=principal,
            kind="run",
            expires_in=dt.timedelta(days=400),
            scope=None,
            description="",
            created_by=None,
        )


def test_token_scope_ceilings(admin: trivet.Session) -> None:
    whole = TokenScope(actions=frozenset({"a:x", "a:y"}), patterns=("p/*",))
    assert whole.intersect(None) == whole
    assert TokenScope().intersect(whole) == whole
    narrow = TokenScope(actions=frozenset({"a:y", "a:z"}), patterns=("p/q/*", "r/*", "p/s"))
    assert whole.intersect(narrow) == TokenScope(
        actions=frozenset({"a:y"}), patterns=("p/q/*", "p/s")
    )
    assert narrow.intersect(whole) == whole.intersect(narrow)
    assert TokenScope(patterns=("p/q",)).intersect(TokenScope(patterns=("p/q/*",))).patterns == (
        "p/q",
    )
    assert TokenScope(patterns=("p/a/*",)).intersect(TokenScope(patterns=("p/b/*",))).patterns == ()
    assert whole.permits_pattern("a:x", "p/models/*")
    assert not whole.permits_pattern("a:x", "*")
    assert not whole.permits_pattern("a:z", "p/models/*")
    assert TokenScope.from_json(whole.to_json()) == whole
    assert TokenScope.from_json(None) is None
    # through the API: a scope that does not overlap the token's own is refused
    admin.identity.create_user("alice")
    admin.access.grant("alice", "viewer", "default/*")
    token = admin.identity.create_token("alice", resources=["default/models/*"])
    scoped = trivet.connect(admin.settings.workspace, token.secret)
    with pytest.raises(ValidationError, match="outside the scope"):
        scoped.identity.create_token(resources=["default/feature_groups/*"])
    with pytest.raises(ValidationError, match="Unknown action"):
        admin.identity.create_token("alice", actions=["model:aprove"])
    with pytest.raises(ValidationError):
        admin.identity.create_token("alice", resources=["default/*/x"])


def test_tokens_of_others_need_principal_manage(admin: trivet.Session) -> None:
    ws = admin.settings.workspace
    for name in ("alice", "bob"):
        admin.identity.create_user(name)
    alice = trivet.connect(ws, admin.identity.create_token("alice").secret)
    bob_token = admin.identity.create_token("bob")
    mine = alice.identity.create_token(description="laptop")  # one's own: always
    assert next(t.prefix for t in alice.identity.list_tokens()) == mine.info.prefix
    with pytest.raises(PermissionDenied):
        alice.identity.create_token("bob")
    with pytest.raises(PermissionDenied):
        alice.identity.list_tokens("bob")
    with pytest.raises(PermissionDenied):
        alice.identity.revoke_token(bob_token.info.prefix)
    alice.identity.revoke_token(mine.info.prefix)
    admin.access.grant("alice", "principal:manage", "_principals/bob")
    assert alice.identity.create_token("bob").info.principal_id == admin.identity.get("bob").id
    alice.identity.revoke_token(bob_token.info.prefix)
    with pytest.raises(NotAuthenticated, match="revoked"):
        trivet.connect(ws, bob_token.secret)


# -- principals and groups ------------------------------------------------------------------------
def test_principals_have_immutable_ids_and_unique_names(
    admin: trivet.Session, catalog_backend: str
) -> None:
    ident = admin.identity
    alice = ident.create_user("alice", description="analyst")
    assert alice.kind is PrincipalKind.USER and len(alice.id) == 36
    assert ident.get("alice") == alice
    with pytest.raises(AlreadyExists):
        ident.create_user("alice")
    with pytest.raises(AlreadyExists):
        ident.create_group("alice")
    with pytest.raises(NotFound, match="did you mean 'alice'"):
        ident.get("alicee")
    kinds = {p.name: p.kind for p in ident.principals()}
    assert kinds["alice"] is PrincipalKind.USER and kinds["default-runner"] is PrincipalKind.SERVICE
    assert [p.name for p in ident.principals(kind="user")] == sorted(
        n for n, k in kinds.items() if k is PrincipalKind.USER
    )
    with pytest.raises(Conflict):
        ident.delete(admin.principal.name)


def test_group_nesting_and_cycles(admin: trivet.Session, catalog_backend: str) -> None:
    ident = admin.identity
    for g in ("a", "b", "c"):
        ident.create_group(g)
    ident.create_user("u")
    ident.add_member("a", "b")
    ident.add_member("b", "c")
    ident.add_member("c", "u")
    ident.add_member("c", "a")  # cycle
    ident.add_member("c", "a")  # twice: no duplicate, no error
    assert [p.name for p in ident.members("c")] == ["a", "u"]
    ids = {n: ident.get(n).id for n in ("a", "b", "c", "u")}
    with admin.catalog.read() as conn:
        assert admin._evaluator.group_ids(conn, ids["u"]) == {ids["a"], ids["b"], ids["c"]}
        assert admin._evaluator.group_ids(conn, ids["a"]) == {ids["b"], ids["c"]}
    with pytest.raises(ValidationError, match="not a group"):
        ident.add_member("u", "a")
    with pytest.raises(ValidationError):
        ident.add_member("a", "a")
    ident.remove_member("c", "u")
    with admin.catalog.read() as conn:
        assert admin._evaluator.group_ids(conn, ids["u"]) == set()


def test_managing_principals_needs_principal_manage(admin: trivet.Session) -> None:
    admin.identity.create_user("alice")
    admin.access.grant("alice", "owner", "default/*")  # owner of a project, not of people
    alice = trivet.connect(admin.settings.workspace, admin.identity.create_token("alice").secret)
    with pytest.raises(PermissionDenied, match="principal:manage"):
        alice.identity.create_user("mallory")
    with pytest.raises(PermissionDenied):
        alice.identity.add_member("default-runner", "alice")
    with pytest.raises(PermissionDenied):
        alice.identity.delete("default-runner")
    admin.access.grant("alice", "principal:manage", "_principals/*")
    alice.identity.create_user("mallory")


def test_deleting_and_recreating_a_principal(admin: trivet.Session, catalog_backend: str) -> None:
    ws = admin.settings.workspace
    ident = admin.identity
    first = ident.create_user("alice")
    ident.create_group("team")
    ident.add_member("team", "alice")
    admin.access.grant("alice", "data_scientist", "default/*")
    token = ident.create_token("alice")
    session = trivet.connect(ws, token.secret)
    assert session.can("feature:write", "default/feature_groups/x")
    ident.delete("alice")
    assert not session.can("feature:write", "default/feature_groups/x")  # next check
    with pytest.raises(NotAuthenticated):
        trivet.connect(ws, token.secret)
    second = ident.create_user("alice")
    assert second.id != first.id
    assert ident.members("team") == []
    assert admin.access.grants(subject="alice") == []
    assert ident.list_tokens("alice") == []
    fresh = trivet.connect(ws, ident.create_token("alice").secret)
    assert not fresh.can("feature:describe", "default/feature_groups/x")
    # deleting a project's runner leaves the project without one, not broken
    ident.delete("default-runner")
    assert [p.runner for p in ident.list_projects()] == [None]


def test_revoking_a_token_revokes_every_token_made_with_it(
    admin: trivet.Session, catalog_backend: str
) -> None:
    ws = admin.settings.workspace
    admin.identity.create_user("dana")
    parent = admin.identity.create_token("dana")
    dana = trivet.connect(ws, parent.secret)
    child = dana.identity.create_token(description="for CI")
    grandchild = trivet.connect(ws, child.secret).identity.create_token(description="narrower")
    sibling = admin.identity.create_token("dana")  # made by the admin, not from parent
    for new in (child, grandchild, sibling):
        assert trivet.connect(ws, new.secret).principal.name == "dana"
    # revoking the child leaves the parent alone, and takes the grandchild with it
    admin.identity.revoke_token(child.info.prefix)
    for gone in (child, grandchild):
        with pytest.raises(NotAuthenticated, match="revoked"):
            trivet.connect(ws, gone.secret)
    assert trivet.connect(ws, parent.secret).principal.name == "dana"
    # revoking the parent: the tokens made from it go too, the admin's sibling stays
    fresh_child = dana.identity.create_token()
    open_session = trivet.connect(ws, fresh_child.secret)
    dana.identity.revoke_token(parent.info.prefix)
    with pytest.raises(NotAuthenticated, match="revoked"):
        trivet.connect(ws, fresh_child.secret)
    assert not open_session.can("feature:describe", "default/feature_groups/x")
    assert trivet.connect(ws, sibling.secret).principal.name == "dana"
    revocations = [e for e in audit.entries(admin.catalog) if e.action == "token:revoke"]
    assert revocations[-1].detail["with_tokens_made_from_it"] == 1


def test_project_listings_show_only_projects_you_hold_a_grant_in(admin: trivet.Session) -> None:
    ident = admin.identity
    for name in ("credit", "fraud", "secret"):
        ident.create_project(name)
    ident.create_user("dana")
    admin.access.grant("dana", "data_scientist", "credit/*")
    admin.access.grant("dana", "viewer", "fraud/models/scores")
    admin.access.grant("dana", "audit:read", "_audit")  # not a project
    dana = trivet.connect(admin.settings.workspace, ident.create_token("dana").secret)
    assert [p.name for p in dana.identity.list_projects()] == ["credit", "fraud"]
    assert [p.name for p in ident.list_projects()] == ["credit", "default", "fraud", "secret"]
    ident.create_user("nobody")
    nobody = trivet.connect(admin.settings.workspace, ident.create_token("nobody").secret)
    assert nobody.identity.list_projects() == []


# -- signing in ---------------------------------------------------------------------------------
def test_os_user_admin_only_for_the_workspace_owner(
    admin: trivet.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = admin.settings.workspace
    me = trivet.connect(ws)
    assert me.principal.os_user == workspace.os_user() and me.token is None
    assert me.can("grant:manage", "_workspace")
    # another OS user, same folder: no implicit identity
    monkeypatch.setattr(workspace, "os_user", lambda: "mallory")
    with pytest.raises(NotAuthenticated, match="mallory"):
        trivet.connect(ws)
    monkeypatch.undo()
    # same OS user name, but the folder belongs to someone else
    stat = ws.stat()
    os.chown(ws, stat.st_uid + 4242, -1)
    try:
        with pytest.raises(NotAuthenticated, match="not the admin"):
            trivet.connect(ws)
    finally:
        os.chown(ws, stat.st_uid, -1)
    assert trivet.connect(ws).principal.name == me.principal.name


def test_trivet_token_environment_variable(
    admin: trivet.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = admin.settings.workspace
    admin.identity.create_user("alice")
    admin.identity.create_user("bob")
    alice = admin.identity.create_token("alice").secret
    bob = admin.identity.create_token("bob").secret
    monkeypatch.setenv("TRIVET_WORKSPACE", str(ws))
    monkeypatch.setenv("TRIVET_TOKEN", alice)
    session = trivet.connect()
    assert session.principal.name == "alice" and session.token is not None
    assert trivet.connect(ws, bob).principal.name == "bob"  # an argument beats the variable
    monkeypatch.setenv("TRIVET_TOKEN", alice[:-1] + ("0" if alice[-1] != "0" else "1"))
    with pytest.raises(NotAuthenticated):  # a bad token never falls back to the OS user
        trivet.connect()
    monkeypatch.setenv("TRIVET_TOKEN", "")
    assert trivet.connect().token is None  # empty means unset: the OS-user admin


def test_connect_to_a_missing_project_or_workspace(admin: trivet.Session, tmp_path: Path) -> None:
    ws = admin.settings.workspace
    with pytest.raises(ValidationError, match="does not exist"):
        trivet.connect(ws, project="nope")
    with pytest.raises(ValidationError):
        trivet.connect(ws, project="No/pe")
    with pytest.raises(NotFound):
        trivet.connect(tmp_path / "nowhere")


def test_projects_cannot_take_reserved_names(admin: trivet.Session) -> None:
    for reserved in ("_principals", "_workspace", "_audit"):
        with pytest.raises(ValidationError, match="reserved"):
            admin.identity.create_project(reserved)
    with pytest.raises(ValidationError, match="reserved"):  # '_' prefixes are kept free
        admin.identity.create_project("_mine")
    assert admin.identity.create_project("mine").runner == "mine-runner"


def test_listing_refusal_honours_a_scope_with_rules(admin: trivet.Session) -> None:
    from trivet.platform.permissions import TokenScope

    admin.identity.create_user("dana")
    admin.access.grant("dana", "data_scientist", "default/*")
    dana = admin.identity.get("dana")
    scope = TokenScope.of_rules(
        {"default/models/m/*": {"model:describe"}, "default/feature_groups/*": {"feature:write"}}
    )
    with admin.catalog.write() as conn:
        _, secret = identity.insert_token(
            conn,
            principal=dana,
            kind="usr",
            expires_in=dt.timedelta(hours=1),
            scope=scope,
            description="",
            created_by=admin.principal.id,
        )
    narrow = trivet.connect(admin.settings.workspace, secret)
    narrow.require_listing("model:describe", "models")  # a rule reaches into models
    with pytest.raises(PermissionDenied):
        # the scope holds model:describe and reaches feature groups, but its rule there
        # is feature:write only: nothing of model:describe can be listed under them
        narrow.require_listing("model:describe", "feature_groups")
