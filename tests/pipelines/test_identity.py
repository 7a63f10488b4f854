"""Identity: a pipeline acts as its invoker (or, with principal:use, as a service
principal) through a run token; it never lends anyone access they do not have."""

from __future__ import annotations

from typing import Any

import pytest

import trivet
from trivet.errors import PermissionDenied
from trivet.pipelines import ExecutionStatus, Pipelines, pipeline, step
from trivet.platform import audit
from trivet.platform.settings import Settings


def user(admin: trivet.Session, workspace: Settings, name: str, *grants: str) -> trivet.Session:
    """A user holding ``action@pattern`` grants."""
    admin.identity.create_user(name)
    for grant in grants:
        action, pattern = grant.split("@")
        admin.access.grant(name, action, pattern)
    return trivet.connect(workspace.workspace, token=admin.identity.create_token(name).secret)


PIPELINE_USER = (
    "pipeline:run@default/pipelines/*",
    "pipeline:create@default/pipelines/*",
    "pipeline:describe@default/pipelines/*",
    "artifact:write@default/runs/*",
    "artifact:read@default/runs/*",
)


def test_a_pipeline_cannot_read_what_its_invoker_cannot(
    admin: trivet.Session, workspace: Settings
) -> None:
    secret = admin.artifacts.put_bytes(b"salaries", folder="default/hr")
    dana = user(admin, workspace, "dana", *PIPELINE_USER)

    @step(reads=["hr"])  # declared: the run token covers default/hr, the grants decide
    def steal(digest: str, session: Any) -> str:
        return str(session.artifacts.get_bytes(digest).decode())

    @pipeline
    def p_steal(digest: str = "") -> None:
        steal(digest)

    run = Pipelines(dana).run(p_steal, params={"digest": secret.digest})
    assert run.status is ExecutionStatus.FAILED
    assert (run.step("steal").error or "").startswith("PermissionDenied: 'dana' may not")
    # the admin, who may read it, can run the same pipeline
    assert Pipelines(admin).run(p_steal, params={"digest": secret.digest}).succeeded


def test_registering_needs_model_register_and_run_as_needs_principal_use(
    admin: trivet.Session, workspace: Settings
) -> None:
    from sklearn.dummy import DummyClassifier

    dana = user(admin, workspace, "dana", *PIPELINE_USER)

    @step(writes=["models/credit"])
    def register(session: Any) -> int:
        model = DummyClassifier().fit([[0], [1]], [0, 1])
        return int(session.registry.register("credit", model).version)

    @pipeline
    def p_register() -> None:
        register()

    mine = Pipelines(dana).run(p_register)
    assert mine.status is ExecutionStatus.FAILED
    assert "may not model:register" in (mine.step("register").error or "")

    # the runner may register, but using it needs principal:use (PassRole), not pipeline:run
    with pytest.raises(PermissionDenied, match="principal:use"):
        Pipelines(dana).run(p_register, run_as="runner")
    admin.access.grant("dana", "principal:use", "_principals/default-runner")
    as_runner = Pipelines(dana).run(p_register, run_as="runner")
    assert as_runner.succeeded and as_runner.run_as == "default-runner"
    assert as_runner.invoked_by == "dana"
    rows = [
        e
        for e in audit.entries(admin.catalog)
        if e.action == "model:register" and e.outcome == "ok"
    ]
    assert [(e.actor, e.on_behalf_of, e.run_id) for e in rows] == [
        ("default-runner", "dana", as_runner.id)
    ]


def test_running_needs_pipeline_run(admin: trivet.Session, workspace: Settings) -> None:
    viewer = user(admin, workspace, "vic", "pipeline:describe@default/*")

    @step
    def noop() -> None:
        return None

    @pipeline
    def p_denied() -> None:
        noop()

    with pytest.raises(PermissionDenied, match="pipeline:run"):
        Pipelines(viewer).run(p_denied)
    Pipelines(admin).run(p_denied)
    assert [e.pipeline for e in Pipelines(viewer).executions()] == ["p_denied"]
    stranger = user(admin, workspace, "sam")
    assert Pipelines(stranger).executions() == []


def test_steps_get_the_execution_session_with_a_run_token(pl: Pipelines) -> None:
    seen: dict[str, Any] = {}

    @step(cache=False)
    def look(session: Any) -> None:
        seen.update(
            kind=session.token.kind,
            run_id=session.run_id,
            can_elsewhere=session.can("artifact:write", "other/runs/x"),
            can_here=session.can("artifact:write", f"default/runs/{session.run_id}"),
        )

    @pipeline
    def p_look() -> None:
        look()

    run = pl.run(p_look)
    assert seen == {"kind": "run", "run_id": run.id, "can_elsewhere": False, "can_here": True}
