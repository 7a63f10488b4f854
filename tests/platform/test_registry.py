"""The model registry: groups, immutable versions, approvals, aliases, grants, lineage."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import trivet
from trivet.errors import (
    AlreadyExists,
    Conflict,
    IntegrityError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from trivet.platform import audit
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import artifact_entries, artifacts, grants, lineage_edges
from trivet.platform.lineage import Node
from trivet.platform.registry import ApprovalStatus, GateStatus, ModelRegistry, ModelVersion
from trivet.platform.settings import Settings


def stored(
    session: trivet.Session,
    folder: str = "default/models/m",
    *,
    kind: str = "model",
    meta: dict[str, Any] | None = None,
) -> str:
    """Insert an artifact row (and its folder entry) directly; return its digest."""
    digest = hashlib.sha256(os.urandom(16)).hexdigest()
    with session.catalog.write() as conn:
        conn.execute(
            sa.insert(artifacts).values(
                digest=digest,
                kind=kind,
                size=1,
                media_type="application/octet-stream",
                meta=meta if meta is not None else {"flavor": "sklearn"},
                created_at=now_utc(),
                created_by=session.principal.id,
            )
        )
        conn.execute(
            sa.insert(artifact_entries).values(
                folder=folder,
                digest=digest,
                label="",
                created_at=now_utc(),
                created_by=session.principal.id,
            )
        )
    return digest


def user(
    admin: trivet.Session,
    workspace: Settings,
    name: str,
    role: str | None = "data_scientist",
    pattern: str = "default/*",
) -> trivet.Session:
    admin.identity.create_user(name)
    if role is not None:
        admin.access.grant(name, role, pattern)
    tok = admin.identity.create_token(name)
    return trivet.connect(workspace.workspace, token=tok.secret)


def actions(admin: trivet.Session) -> list[tuple[str, str, str]]:
    return [(e.action, e.resource, e.outcome) for e in audit.entries(admin.catalog)]


@pytest.fixture
def bob(admin: trivet.Session, workspace: Settings) -> trivet.Session:
    return user(admin, workspace, "bob")


# -- groups ------------------------------------------------------------------------------
def test_create_group_gives_an_audited_maintainer_grant(
    admin: trivet.Session, bob: trivet.Session, catalog_backend: str
) -> None:
    group = bob.registry.create_group("credit", description="scores")
    assert group.name == "credit"
    assert group.resource == "default/models/credit"
    assert group.created_by == "bob"
    assert group.latest_version is None and dict(group.aliases) == {}
    owned = admin.access.grants(subject="bob", pattern="default/models/credit/*")
    assert [(g.privilege, g.effect) for g in owned] == [("maintainer", "allow")]
    # the creator may do everything there but sign off its own work
    assert bob.can("model:delete", "default/models/credit/1")
    assert not bob.can("model:approve", "default/models/credit/1")
    log = actions(admin)
    assert ("grant:create", "default/models/credit/*", "ok") in log
    assert ("model:create_group", "default/models/credit", "ok") in log
    with pytest.raises(AlreadyExists):
        bob.registry.create_group("credit")
    with pytest.raises(ValidationError, match="not valid"):
        bob.registry.create_group("Credit Model")


def test_create_group_needs_register(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    viewer = user(admin, workspace, "vera", "viewer")
    with pytest.raises(PermissionDenied, match="model:register"):
        viewer.registry.create_group("credit")
    assert ("model:register", "default/models/credit", "denied") in actions(admin)


def test_groups_lists_only_what_the_caller_may_describe(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    """Spec case 17."""
    for name in ("alpha", "beta", "gamma"):
        admin.registry.create_group(name)
    carol = user(admin, workspace, "carol", "viewer", "default/models/alpha/*")
    admin.access.grant("carol", "model:describe", "default/models/gamma")
    admin.access.grant("carol", "model:describe", "default/models/gamma", deny=True)
    assert [g.name for g in carol.registry.groups()] == ["alpha"]
    assert [g.name for g in admin.registry.groups()] == ["alpha", "beta", "gamma"]
    with pytest.raises(PermissionDenied):
        carol.registry.versions("beta")
    # permission is checked before the lookup: no existence oracle for other names
    with pytest.raises(PermissionDenied):
        carol.registry.get("alpah")
    with pytest.raises(NotFound, match="did you mean 'alpha'"):
        admin.registry.get("alpah")


def test_suggestions_name_only_visible_groups(admin: trivet.Session, workspace: Settings) -> None:
    for name in ("beta", "betb"):
        admin.registry.create_group(name)
    dora = user(admin, workspace, "dora", "viewer", "default/models/*")
    admin.access.grant("dora", "model:describe", "default/models/beta/*", deny=True)
    assert [g.name for g in dora.registry.groups()] == ["betb"]
    with pytest.raises(NotFound) as err:
        dora.registry.get("betc")
    assert err.value.hint is not None and "betb" in err.value.hint
    assert "'beta'" not in err.value.hint


def fairness_report(session: trivet.Session, *, passed: bool | None) -> str:
    """Store a report-shaped JSON artifact whose checks passed (or failed, or are absent)."""
    document: dict[str, Any] = {"metrics": {}}
    if passed is not None:
        document["checks"] = {"passed": passed, "results": []}
    ref = session.artifacts.put_bytes(
        json.dumps(document).encode(),
        folder="default/reports/credit",
        media_type="application/json",
    )
    return ref.digest


# -- registering -----------------------------------------------------------------------------
def test_a_passed_gate_must_be_backed_by_a_report_whose_checks_passed(
    admin: trivet.Session,
) -> None:
    digest = stored(admin)
    with pytest.raises(ValidationError, match="no fairness report was given"):
        admin.registry.register("m", artifact=digest, gate_status="passed")
    for passed, why in ((False, "records failed checks"), (None, "records no passed checks")):
        report = fairness_report(admin, passed=passed)
        with pytest.raises(ValidationError, match=why):
            admin.registry.register(
                "m", artifact=digest, fairness_report=report, gate_status="passed"
            )
    assert admin.registry.groups() == []  # nothing was created
    # a report whose checks failed makes the gate 'failed', whatever is claimed
    failing = fairness_report(admin, passed=False)
    version = admin.registry.register("m", artifact=digest, fairness_report=failing)
    assert version.gate_status is GateStatus.FAILED
    with pytest.raises(Conflict, match="fairness gate"):
        admin.registry.approve("m", version.version, justification="ship it")
    passing = fairness_report(admin, passed=True)
    ok = admin.registry.register(
        "m", artifact=digest, fairness_report=passing, gate_status="passed"
    )
    assert ok.gate_status is GateStatus.PASSED


def test_register_numbers_versions_and_records_everything(
    admin: trivet.Session, bob: trivet.Session, catalog_backend: str
) -> None:
    digest = stored(admin, meta={"flavor": "sklearn", "signature": {"inputs": ["x"]}})
    report = fairness_report(admin, passed=True)
    run = str(uuid.uuid4())
    v1 = bob.registry.register(
        "m",
        artifact=digest,
        params={"C": 1.0, "grid": [1, 2, {"a": None}]},
        metrics={"auc": 0.91},
        fairness_report=report,
        gate_status="passed",
        description="first",
        run_id=run,
    )
    assert v1.version == 1
    assert v1.resource == "default/models/m/1"
    assert v1.status is ApprovalStatus.PENDING
    assert v1.status.value == "PendingManualApproval"
    assert v1.gate_status is GateStatus.PASSED
    assert v1.flavor == "sklearn"
    assert dict(v1.signature) == {"inputs": ["x"]}
    assert dict(v1.params) == {"C": 1.0, "grid": [1, 2, {"a": None}]}
    assert dict(v1.metrics) == {"auc": 0.91}
    assert v1.fairness_report_digest == report
    assert v1.artifact_digest == digest
    assert v1.run_id == run
    assert v1.created_by == "bob"
    assert v1.decided_by is None and v1.decided_at is None and v1.decision_reason is None
    v2 = bob.registry.register("m", artifact=digest, signature={"inputs": ["y"]})
    assert (v2.version, v2.gate_status, dict(v2.signature)) == (
        2,
        GateStatus.NONE,
        {"inputs": ["y"]},
    )
    assert [v.version for v in bob.registry.versions("m")] == [1, 2]
    # the group was created on the fly, and bob owns it
    assert bob.registry.groups()[0].latest_version == 2
    assert admin.access.grants(subject="bob", pattern="default/models/m/*")
    log = actions(admin)
    assert ("model:register", "default/models/m/1", "ok") in log
    assert ("model:register", "default/models/m/2", "ok") in log
    assert audit.verify(admin.catalog).ok


def test_register_adds_lineage(admin: trivet.Session, catalog_backend: str) -> None:
    digest = stored(admin)
    report = fairness_report(admin, passed=True)
    run = str(uuid.uuid4())
    admin.registry.register("m", artifact=digest, fairness_report=report, run_id=run)
    up = admin.lineage.upstream(Node(kind="model_version", id="default/models/m/1"))
    mv = Node(kind="model_version", id="default/models/m/1")
    assert up.edges[Node(kind="artifact", id=digest), mv]["relations"] == ("stored_as",)
    assert up.edges[Node(kind="report", id=report), mv]["relations"] == ("gated",)
    assert up.edges[Node(kind="run", id=run), mv]["relations"] == ("produced",)


def test_register_uses_the_sessions_run(admin: trivet.Session) -> None:
    run = str(uuid.uuid4())
    in_run = admin.derive(run_id=run)
    assert in_run.registry.register("m", artifact=stored(admin)).run_id == run


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metrics": {"auc": float("nan")}}, r"metrics\['auc'\] is nan"),
        ({"metrics": {"auc": float("inf")}}, r"metrics\['auc'\] is inf"),
        ({"params": {"grid": [1, float("-inf")]}}, r"params\['grid'\]\[1\]"),
        ({"params": {"model": object()}}, r"params\['model'\] is a object"),
        ({"params": {1: "x"}}, "has the key 1"),
        ({"params": {"a": {2, 3}}}, r"params\['a'\] is a set"),
        ({"params": {"a": np.array([1, 2])}}, r"array.tolist\(\)"),
        ({"params": ["not", "a", "mapping"]}, "params must be a mapping"),
        ({"gate_status": "ok"}, "gate_status 'ok'"),
        ({"flavor": "Sklearn!"}, "flavor"),
        ({"fairness_report": "abc"}, "not an artifact digest"),
        ({"fairness_report": 12}, "must be a string"),
        ({"run_id": ""}, "run_id"),
        ({"run_id": "Run#1"}, "not valid"),
    ],
)
def test_register_validates(admin: trivet.Session, kwargs: dict[str, Any], match: str) -> None:
    digest = stored(admin)
    with pytest.raises(ValidationError, match=match):
        admin.registry.register("m", artifact=digest, **kwargs)
    assert admin.registry.groups() == []


def test_register_needs_exactly_one_model_source(admin: trivet.Session) -> None:
    digest = stored(admin)
    with pytest.raises(ValidationError, match="either a model object"):
        admin.registry.register("m")
    with pytest.raises(ValidationError, match="either a model object"):
        admin.registry.register("m", object(), artifact=digest)
    with pytest.raises(ValidationError, match="not an artifact digest"):
        admin.registry.register("m", artifact="../../etc/passwd")


def test_register_accepts_numpy_scalars(admin: trivet.Session) -> None:
    v = admin.registry.register(
        "m",
        artifact=stored(admin),
        metrics={"auc": np.float64(0.5), "n": np.int64(3), "ok": np.bool_(True)},
        params={"alpha": np.float32(0.25), "t": (1, 2)},
    )
    assert dict(v.metrics) == {"auc": 0.5, "n": 3, "ok": True}
    assert type(v.metrics["n"]) is int and type(v.metrics["ok"]) is bool
    assert dict(v.params) == {"alpha": 0.25, "t": [1, 2]}


def test_register_unknown_artifact_or_flavor_mismatch(admin: trivet.Session) -> None:
    with pytest.raises(NotFound):
        admin.registry.register("m", artifact="0" * 64)
    with pytest.raises(ValidationError, match="is a 'sklearn' model, not 'pickle'"):
        admin.registry.register("m", artifact=stored(admin), flavor="pickle")


def test_register_needs_register_right(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    digest = stored(admin)
    viewer = user(admin, workspace, "vera", "viewer")
    with pytest.raises(PermissionDenied, match="model:register"):
        viewer.registry.register("m", artifact=digest)
    assert admin.registry.groups() == []


def test_versions_are_immutable(admin: trivet.Session) -> None:
    digest = stored(admin)
    v1 = admin.registry.register("m", artifact=digest, params={"C": 1}, metrics={"auc": 0.8})
    with pytest.raises(dataclasses.FrozenInstanceError):
        v1.metrics = {}  # type: ignore[misc]
    v1.metrics["auc"] = 0.99  # type: ignore[index]  # a copy: the catalog does not change
    admin.registry.register("m", artifact=stored(admin), params={"C": 2}, metrics={"auc": 0.9})
    decided = admin.registry.approve("m", 1, justification="looks fine")
    again = admin.registry.get("m", 1)
    for v in (decided, again):
        assert (dict(v.params), dict(v.metrics), v.artifact_digest) == (
            {"C": 1},
            {"auc": 0.8},
            digest,
        )
    # the only write methods are the documented ones: none edits a version's contents
    public = {n for n in vars(ModelRegistry) if not n.startswith("_")}
    assert public == {
        "approve",
        "create_group",
        "delete_alias",
        "delete_group",
        "get",
        "group",
        "groups",
        "load",
        "load_servable",
        "register",
        "reject",
        "servable",
        "set_alias",
        "versions",
    }


def test_servable_resolves_approved_versions_under_model_predict(
    admin: trivet.Session, workspace: Settings
) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    admin.registry.register("m", model)
    admin.registry.register("m", model)
    app = user(admin, workspace, "app", "online_reader")
    with pytest.raises(Conflict, match="no Approved version"):
        app.registry.servable("m")
    with pytest.raises(Conflict, match="PendingManualApproval"):
        app.registry.servable("m", 2)
    admin.registry.approve("m", 1, justification="ok")
    admin.registry.approve("m", 2, justification="ok")
    assert app.registry.servable("m").version == 2  # no champion: the latest Approved
    admin.registry.set_alias("m", "champion", 1)
    assert app.registry.servable("m").version == 1
    assert app.registry.servable("m", "champion").version == 1
    served = app.registry.load_servable(app.registry.servable("m"))
    assert served.predict_proba([[3.0]]).tolist() == model.predict_proba([[3.0]]).tolist()
    with pytest.raises(PermissionDenied, match="model:read"):
        app.registry.load("m", 1)  # predictions, never the model itself
    viewer = user(admin, workspace, "vera", "viewer")
    for ref in (None, 1, "champion"):
        with pytest.raises(PermissionDenied, match="model:predict"):
            viewer.registry.servable("m", ref)


# -- decisions ---------------------------------------------------------------------------------
def test_approve_and_reject(admin: trivet.Session, catalog_backend: str) -> None:
    admin.registry.register("m", artifact=stored(admin))
    admin.registry.register("m", artifact=stored(admin))
    for blank in ("", "   \n"):
        with pytest.raises(ValidationError, match="non-empty justification"):
            admin.registry.approve("m", 1, justification=blank)
    assert admin.registry.get("m", 1).status is ApprovalStatus.PENDING
    v1 = admin.registry.approve("m", 1, justification="  reviewed the report  ")
    assert v1.status is ApprovalStatus.APPROVED
    assert v1.decided_by == admin.principal.name
    assert v1.decided_at is not None and v1.decided_at.tzinfo is not None
    assert v1.decision_reason == "reviewed the report"
    v2 = admin.registry.reject("m", "2", justification="overfits")
    assert (v2.status, v2.decision_reason) == (ApprovalStatus.REJECTED, "overfits")
    with pytest.raises(Conflict, match="v1 is Approved"):
        admin.registry.reject("m", 1, justification="changed my mind")
    with pytest.raises(Conflict, match="v2 is Rejected"):
        admin.registry.approve("m", 2, justification="changed my mind")
    with pytest.raises(Conflict, match="v1 is Approved"):
        admin.registry.approve("m", 1, justification="twice")
    log = actions(admin)
    assert ("model:approve", "default/models/m/1", "ok") in log
    assert ("model:reject", "default/models/m/2", "ok") in log
    entry = next(e for e in audit.entries(admin.catalog) if e.action == "model:approve")
    assert entry.detail["justification"] == "reviewed the report"


def test_approve_needs_approve_right(
    admin: trivet.Session, bob: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    admin.registry.register("m", artifact=stored(admin))
    with pytest.raises(PermissionDenied, match="model:approve"):
        bob.registry.approve("m", 1, justification="mine")
    with pytest.raises(PermissionDenied, match="model:approve"):
        bob.registry.reject("m", 1, justification="mine")
    anna = user(admin, workspace, "anna", "approver", "default/models/*")
    assert anna.registry.approve("m", 1, justification="ok").decided_by == "anna"
    # an unknown version, by number, is refused before anything is looked up
    with pytest.raises(PermissionDenied):
        bob.registry.approve("nope", 7, justification="x")
    with pytest.raises(NotFound, match="no version 7"):
        anna.registry.approve("m", 7, justification="x")


def test_failed_gate_is_never_approved_nor_aliased(
    admin: trivet.Session, catalog_backend: str
) -> None:
    """Spec case 24: not by the pipeline, not by an owner, and no alias points at it."""
    runner = admin.assume("default-runner")
    failed = runner.registry.register(
        "m", artifact=stored(admin), gate_status="failed", metrics={"di": 0.6}
    )
    assert failed.gate_status is GateStatus.FAILED
    # the runner created the group, so it maintains it, but a creator's grant never
    # includes approving; an owner is stopped by the gate rule itself
    assert not runner.can("model:approve", "default/models/m/1")
    with pytest.raises(PermissionDenied):
        runner.registry.approve("m", 1, justification="the pipeline tries")
    with pytest.raises(Conflict, match="failed its fairness gate"):
        admin.registry.approve("m", 1, justification="owner override")
    assert admin.registry.get("m", 1).status is ApprovalStatus.PENDING
    with pytest.raises(Conflict, match="Approved versions only"):
        admin.registry.set_alias("m", "production", 1)
    rejected = admin.registry.reject("m", 1, justification="DI below 0.8")
    assert rejected.status is ApprovalStatus.REJECTED
    with pytest.raises(Conflict, match="Approved versions only"):
        admin.registry.set_alias("m", "production", 1)
    with pytest.raises(Conflict, match="is Rejected"):
        admin.registry.approve("m", 1, justification="again")
    assert admin.registry.group("m").aliases == {}


def test_four_eyes(admin: trivet.Session, workspace: Settings, catalog_backend: str) -> None:
    bob = user(admin, workspace, "bob")
    admin.access.grant("bob", "approver", "default/models/*")
    admin.access.set_policy("four_eyes", True)
    bob.registry.register("m", artifact=stored(admin))
    with pytest.raises(PermissionDenied, match="four eyes") as err:
        bob.registry.approve("m", 1, justification="my own work is great")
    assert err.value.hint is not None and "another approver" in err.value.hint
    # rejecting your own version is allowed
    bob.registry.register("m", artifact=stored(admin))
    assert bob.registry.reject("m", 2, justification="withdrawn").status == "Rejected"
    second = admin.registry.approve("m", 1, justification="second pair of eyes")
    assert second.decided_by == admin.principal.name
    # registering through a service principal on your behalf counts as registering
    admin.registry.register("n", artifact=stored(admin))
    runner = admin.assume("default-runner")
    runner.registry.register("n", artifact=stored(admin))
    with pytest.raises(PermissionDenied, match="four eyes"):
        admin.registry.approve("n", 2, justification="the pipeline ran on my behalf")
    assert bob.registry.approve("n", 2, justification="reviewed").status == "Approved"


def test_four_eyes_is_a_workspace_policy_no_client_can_switch_off(
    admin: trivet.Session, workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin.access.set_policy("four_eyes", True)
    assert admin.access.policies() == {"four_eyes": True}
    admin.registry.register("m", artifact=stored(admin))
    monkeypatch.setenv("TRIVET_FOUR_EYES", "false")  # not a setting: ignored
    config = workspace.workspace / "trivet.toml"
    config.write_text(config.read_text() + "\n[registry]\nfour_eyes = false\n")
    again = trivet.connect(workspace.workspace)
    with pytest.raises(PermissionDenied, match="four eyes"):
        again.registry.approve("m", 1, justification="mine")
    # only someone with grant:manage on the workspace changes it, and it is audited
    bob = user(admin, workspace, "bob", role="approver", pattern="default/*")
    with pytest.raises(PermissionDenied):
        bob.access.set_policy("four_eyes", False)
    admin.access.set_policy("four_eyes", False)
    assert again.registry.approve("m", 1, justification="ok").status == "Approved"
    rows = [e for e in audit.entries(admin.catalog) if e.action == "policy:set"]
    assert [r.detail for r in rows] == [{"four_eyes": True}, {"four_eyes": False}]


def test_init_can_start_with_four_eyes(tmp_path: Any) -> None:
    settings = trivet.init(tmp_path / "strict", four_eyes=True)
    assert trivet.connect(settings.workspace).access.policies() == {"four_eyes": True}


# -- aliases and lookups ---------------------------------------------------------------------
def test_aliases(admin: trivet.Session, bob: trivet.Session, catalog_backend: str) -> None:
    for _ in range(3):
        admin.registry.register("m", artifact=stored(admin))
    admin.registry.approve("m", 1, justification="ok")
    admin.registry.approve("m", 2, justification="ok")
    v1 = admin.registry.set_alias("m", "production", 1)
    assert v1.aliases == ("production",)
    admin.registry.set_alias("m", "champion", 1)
    assert admin.registry.get("m", "production").version == 1
    assert admin.registry.get("m", 1).aliases == ("champion", "production")
    admin.registry.set_alias("m", "production", 2)  # moves
    assert admin.registry.get("m", "production").version == 2
    assert dict(admin.registry.group("m").aliases) == {"champion": 1, "production": 2}
    with pytest.raises(Conflict, match="PendingManualApproval"):
        admin.registry.set_alias("m", "staging", 3)
    for bad in ("latest", "12", "Prod"):
        with pytest.raises(ValidationError):
            admin.registry.set_alias("m", bad, 1)
    with pytest.raises(PermissionDenied, match="model:approve"):
        bob.registry.set_alias("m", "mine", 1)
    with pytest.raises(PermissionDenied, match="model:approve"):
        bob.registry.delete_alias("m", "production")
    admin.registry.delete_alias("m", "production")
    with pytest.raises(NotFound, match="no alias 'production'") as err:
        admin.registry.get("m", "production")
    assert err.value.hint is not None and "champion" in err.value.hint
    with pytest.raises(NotFound, match="no alias"):
        admin.registry.delete_alias("m", "production")
    log = actions(admin)
    assert ("model:set_alias", "default/models/m", "ok") in log
    assert ("model:delete_alias", "default/models/m", "ok") in log


def test_get_resolves_versions(admin: trivet.Session, workspace: Settings) -> None:
    with pytest.raises(NotFound, match="no model group 'm'"):
        admin.registry.get("m")
    admin.registry.create_group("m")
    with pytest.raises(NotFound, match="no versions yet"):
        admin.registry.get("m")
    admin.registry.register("m", artifact=stored(admin))
    admin.registry.register("m", artifact=stored(admin))
    assert admin.registry.get("m").version == 2
    assert admin.registry.get("m", "latest").version == 2
    assert admin.registry.get("m", 1).version == 1
    assert admin.registry.get("m", "1").version == 1
    with pytest.raises(NotFound, match="no version 3") as err:
        admin.registry.get("m", 3)
    assert err.value.hint == "its latest version is 2"
    with pytest.raises(NotFound, match=r"no model group 'mm'.*did you mean 'm'"):
        admin.registry.get("mm")
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValidationError):
            admin.registry.get("m", bad)  # type: ignore[arg-type]
    viewer = user(admin, workspace, "vera", "viewer")
    assert viewer.registry.get("m").version == 2
    with pytest.raises(PermissionDenied, match="model:read"):
        viewer.registry.load("m")


def test_repr_html(admin: trivet.Session) -> None:
    v = admin.registry.register("m", artifact=stored(admin), description="<b>x</b>")
    assert isinstance(v, ModelVersion)
    page = v._repr_html_()
    assert page.startswith("<table") and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "PendingManualApproval" in page


# -- deleting ------------------------------------------------------------------------------------
def test_delete_group_drops_exact_grants_and_lineage(
    admin: trivet.Session, bob: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    """Spec case 18: a deleted resource's exact grants go; a new one inherits nothing."""
    bob.registry.register("m", artifact=stored(admin))
    bob.registry.register("m", artifact=stored(admin))
    carol = user(admin, workspace, "carol", None)
    admin.access.grant("carol", "viewer", "default/models/m/*")
    admin.access.grant("carol", "model:read", "default/models/m/2")
    admin.access.grant("carol", "model:describe", "default/models/m")
    admin.access.grant("carol", "viewer", "default/models/keep/*")
    assert [g.name for g in carol.registry.groups()] == ["m"]
    with pytest.raises(PermissionDenied, match="model:delete"):
        carol.registry.delete_group("m")
    bob.registry.delete_group("m")  # bob owns what he created
    with admin.catalog.read() as conn:
        patterns = set(conn.execute(sa.select(grants.c.pattern)).scalars())
        edges = conn.execute(sa.select(sa.func.count()).select_from(lineage_edges)).scalar()
    assert not {p for p in patterns if p.startswith("default/models/m")}
    assert "default/models/keep/*" in patterns
    assert edges == 0
    with pytest.raises(NotFound):
        admin.registry.get("m")
    # recreated by someone else: neither bob nor carol inherit anything
    admin.registry.register("m", artifact=stored(admin))
    admin.registry.register("m", artifact=stored(admin))
    assert carol.registry.groups() == []
    with pytest.raises(PermissionDenied):
        carol.registry.get("m", 2)
    with pytest.raises(PermissionDenied, match="model:delete"):
        bob.registry.delete_group("m")
    with pytest.raises(PermissionDenied):
        bob.registry.approve("m", 1, justification="I used to own this")
    up = admin.lineage.upstream(Node(kind="model_version", id="default/models/m/1"))
    assert up.number_of_edges() == 1  # only the new version's artifact
    assert ("model:delete_group", "default/models/m", "ok") in actions(admin)


def test_delete_unknown_group(admin: trivet.Session) -> None:
    admin.registry.create_group("credit")
    with pytest.raises(NotFound, match="did you mean 'credit'"):
        admin.registry.delete_group("credi")


# -- concurrency -----------------------------------------------------------------------------
def test_concurrent_registrations_get_consecutive_numbers(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    digests = [stored(admin) for _ in range(8)]
    token = admin.identity.create_token()
    got: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(digests))

    def work(digest: str) -> None:
        session = trivet.connect(workspace.workspace, token=token.secret)
        start.wait()
        try:
            got.append(session.registry.register("race", artifact=digest).version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in digests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(1, 9))
    assert [v.version for v in admin.registry.versions("race")] == list(range(1, 9))
    assert len(admin.access.grants(pattern="default/models/race/*")) == 1
    assert audit.verify(admin.catalog).ok


# -- with the artifact store -----------------------------------------------------------------
@pytest.fixture
def fitted() -> Iterator[Any]:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    yield LogisticRegression().fit(x, np.array([0, 0, 1, 1]))


def test_register_a_model_object_and_load_it(
    admin: trivet.Session, bob: trivet.Session, fitted: Any, catalog_backend: str
) -> None:
    v = bob.registry.register("m", fitted, metrics={"acc": 1.0})
    assert v.flavor == "sklearn"
    assert dict(v.signature)["n_features_in"] == 1
    ref = bob.artifacts.describe(v.artifact_digest)
    assert (ref.kind, ref.folder) == ("model", "default/models/m")
    loaded = bob.registry.load("m")
    assert loaded.predict([[3.0]]).tolist() == fitted.predict([[3.0]]).tolist()
    assert bob.registry.load("m", 1).predict([[0.0]]).tolist() == [0]
    # the same model again by a digest prefix: a new version, same artifact
    again = bob.registry.register("m", artifact=v.artifact_digest[:12])
    assert (again.version, again.artifact_digest) == (2, v.artifact_digest)


def test_register_refuses_what_is_not_a_readable_model(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    blob = admin.artifacts.put_bytes(b"not a model", folder="default/data/raw")
    with pytest.raises(ValidationError, match="is a blob, not a model"):
        admin.registry.register("m", artifact=blob.digest)
    hidden = stored(admin, "secret/models/m")
    # model:register on the group, but no artifact:read where the model is kept
    eve = user(admin, workspace, "eve", "model:register", "default/models/*")
    with pytest.raises(PermissionDenied, match="artifact:read"):
        eve.registry.register("m", artifact=hidden)
    assert admin.registry.groups() == []
    assert [r.folder for r in admin.artifacts.list() if r.digest == hidden] == ["secret/models/m"]


def test_a_model_reader_loads_a_version_registered_from_another_folder(
    admin: trivet.Session, workspace: Settings, fitted: Any, catalog_backend: str
) -> None:
    """An approver on the models, with no grant where the artifact was first put, loads it."""
    ref = admin.artifacts.put_model(fitted)  # default/artifacts
    admin.registry.register("m", artifact=ref.digest)
    rita = user(admin, workspace, "rita", "approver", "default/models/*")
    assert not rita.can("artifact:read", "default/artifacts")
    assert rita.registry.load("m", 1).predict([[3.0]]).tolist() == fitted.predict([[3.0]]).tolist()
    folders = [r.folder for r in admin.artifacts.list() if r.digest == ref.digest]
    assert folders == ["default/artifacts", "default/models/m"]
    admin.registry.register("m", artifact=ref.digest)  # filed already: nothing new
    assert [a for a in actions(admin) if a[0] == "artifact:link"] == [
        ("artifact:link", "default/models/m", "ok")
    ]
    assert audit.verify(admin.catalog).ok


def _fitted_common_models() -> dict[str, tuple[Any, Any]]:
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] > 0).astype(int)
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": rng.choice(["u", "v"], 60)})
    hgb = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["c"]), (StandardScaler(), ["a", "b"])),
        HistGradientBoostingClassifier(max_iter=5),
    )
    return {
        "logistic": (make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y), x),
        "gradient-boosting": (GradientBoostingClassifier(n_estimators=5).fit(x, y), x),
        "hist-gradient-boosting": (hgb.fit(df, y), df),
    }


def test_common_models_register_and_load(
    admin: trivet.Session, bob: trivet.Session, workspace: Settings
) -> None:
    rita = user(admin, workspace, "rita", "approver", "default/models/*")
    for name, (model, x) in _fitted_common_models().items():
        version = bob.registry.register(name, model)
        assert version.flavor == "sklearn"
        loaded = rita.registry.load(name, version.version)
        assert loaded.predict(x).tolist() == model.predict(x).tolist()


def test_pickled_models_need_trust_and_a_matching_digest(
    admin: trivet.Session, catalog_backend: str
) -> None:
    """Spec case 23, through the registry."""
    model = {"weights": [0.5, 1.5]}
    with pytest.raises(ValidationError, match="not a scikit-learn estimator"):
        admin.registry.register("m", model)
    v = admin.registry.register("m", model, flavor="pickle")
    assert v.flavor == "pickle"
    with pytest.raises(ValidationError, match="trust_pickle"):
        admin.registry.load("m")
    assert admin.registry.load("m", trust_pickle=True) == model
    blobs = admin.artifacts.blobs
    path = blobs.root / "sha256" / v.artifact_digest[:2] / v.artifact_digest  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError):
        admin.registry.load("m", trust_pickle=True)


def test_a_service_principal_never_approves(admin: trivet.Session, catalog_backend: str) -> None:
    """Even granted model:approve, a service principal cannot approve (a person decides)."""
    admin.access.grant("default-runner", "approver", "default/models/*")
    runner = admin.assume("default-runner")
    report = fairness_report(admin, passed=True)
    version = runner.registry.register(
        "auto", artifact=stored(admin), fairness_report=report, gate_status="passed"
    )
    assert runner.can("model:approve", version.resource)
    with pytest.raises(PermissionDenied, match="person's decision"):
        runner.registry.approve("auto", version.version, justification="gate passed")
    assert runner.registry.get("auto", 1).status == ApprovalStatus.PENDING
    approved = admin.registry.approve("auto", 1, justification="reviewed the report")
    assert approved.status == ApprovalStatus.APPROVED
