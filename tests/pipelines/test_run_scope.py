"""Run tokens confined to what a pipeline declares (permissions spec, case 15).

A run may write its own folder and what its steps declare (built-in steps derive their
declarations from their arguments); anything else — another run's folder, an
undeclared feature group, an undeclared model — is refused even when the run-as
principal holds the grant, with a PermissionDenied that says what to declare, and the
denial is audited with the run's id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import trivet
from trivet.errors import PermissionDenied
from trivet.examples.credit.pipeline import credit_model
from trivet.pipelines import (
    ExecutionStatus,
    PipelineDefinitionError,
    Pipelines,
    Uses,
    pipeline,
    step,
)
from trivet.pipelines.steps import (
    bias_check,
    ingest_features,
    read_training_set,
    register_model,
    train,
)
from trivet.platform import audit
from trivet.platform.catalog.schema import tokens
from trivet.platform.permissions import TokenScope
from trivet.platform.settings import Settings

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


# -- declarations, derived -------------------------------------------------------------------
def test_the_credit_example_declares_exactly_what_it_touches() -> None:
    # by hand, from platform/trivet/examples/credit/pipeline.py: read_training_set's
    # features name the groups applicants, credit_history and transactions; bias_check
    # stores the report "credit-model"; register_model registers "credit-model".
    assert credit_model.uses() == Uses(
        reads=(
            "feature_groups/applicants",
            "feature_groups/credit_history",
            "feature_groups/transactions",
        ),
        writes=("models/credit-model", "reports/credit-model"),
    )
    # parameters do not change what it touches
    assert credit_model.uses({"drop": ["sex"]}) == credit_model.uses()


def test_built_in_steps_derive_their_declarations_from_their_arguments() -> None:
    assert ingest_features.uses({"group": "applicants"}) == Uses(
        writes=("feature_groups/applicants",)
    )
    assert read_training_set.uses({"features": ["b:x", "a:*", "b:y"], "timestamp": "ts"}) == Uses(
        reads=("feature_groups/a", "feature_groups/b")
    )
    # a training set filed under datasets/<name> is written there; a lone string counts
    assert read_training_set.uses(
        {"features": "a:x", "timestamp": "ts", "dataset_name": "train"}
    ) == Uses(reads=("feature_groups/a",), writes=("datasets/train",))
    assert bias_check.uses({"report_name": "fair"}) == Uses(writes=("reports/fair",))
    assert register_model.uses({"name": "m"}) == Uses(writes=("models/m",))
    assert train.uses({"label": "y"}) == Uses()


def test_declarations_follow_parameters_and_templates() -> None:
    @step(writes=["feature_groups/{groups}", "exports/{day}/{kind}"])
    def fan_out(groups: list[str], day: str, kind: str | None = None) -> None:
        return None

    @pipeline(reads=["feature_groups/{source}"])
    def flow(model: str = "scorer", source: str = "raw") -> None:
        register_model(None, name=model)
        fan_out(["g1", "g2"], "mon")

    assert flow.uses({"model": "other"}) == Uses(
        reads=("feature_groups/raw",),
        # a list gives a path per item; None (kind not given) gives none
        writes=("feature_groups/g1", "feature_groups/g2", "models/other"),
    )
    assert flow.definition()["reads"] == ["feature_groups/{source}"]
    fan = next(s for s in flow.definition()["steps"] if s["name"] == "fan_out")
    assert fan["options"]["writes"] == ["feature_groups/{groups}", "exports/{day}/{kind}"]


def test_bad_declarations_are_definition_errors() -> None:
    with pytest.raises(PipelineDefinitionError, match="has no argument 'grup'"):

        @step(writes=["feature_groups/{grup}"])
        def typo(group: str) -> None:
            return None

    def nothing(name: str = "m") -> None:
        return None

    with pytest.raises(PipelineDefinitionError, match="takes a list of paths"):
        step(writes="models/m")(nothing)  # type: ignore[call-overload]
    with pytest.raises(PipelineDefinitionError, match="no parameter 'nme'"):
        pipeline(writes=["models/{nme}"])(nothing)

    @step
    def make_name() -> str:
        return "x"

    @pipeline
    def from_output() -> None:
        ingest_features(None, group=make_name())

    with pytest.raises(PipelineDefinitionError, match="'group', which is the output of"):
        from_output.uses()

    @pipeline
    def by_param(group: str = "applicants") -> None:
        ingest_features(None, group=group)

    assert by_param.uses() == Uses(writes=("feature_groups/applicants",))
    for wider in ("*", "applicants/x"):  # a parameter never widens a declaration
        with pytest.raises(PipelineDefinitionError, match="not a single name"):
            by_param.uses({"group": wider})

    @pipeline(writes=["../models"])
    def escape() -> None:
        make_name()

    with pytest.raises(PipelineDefinitionError, match="names nothing in a project"):
        escape.uses()


# -- the run token, enforced -------------------------------------------------------------------
@step(cache=False)
def own_folder(session: Any) -> str:
    folder = f"{session.project}/runs/{session.run_id}/extra"
    return str(session.artifacts.put_bytes(b"mine", folder=folder).digest)


@step(cache=False, writes=["exports/{name}"])
def export(name: str, session: Any) -> str:
    return str(session.artifacts.put_bytes(b"rows", folder=f"default/exports/{name}").digest)


@step(cache=False)
def other_run(victim: str, session: Any) -> None:
    session.artifacts.put_bytes(b"planted", folder=f"default/runs/{victim}")


@step(cache=False)
def undeclared_group(session: Any) -> None:
    session.featurestore.put_record("scores", {"id": "a", "ts": T0, "score": 2.0})


@step(cache=False, writes=["feature_groups/scores"])
def declared_group(session: Any) -> int:
    return int(session.featurestore.put_record("scores", {"id": "b", "ts": T0, "score": 1.0}).rows)


@step(cache=False)
def undeclared_read(session: Any) -> None:
    session.featurestore.get_record("scores", "b")


@step(cache=False, writes=["models/declared"])
def register_undeclared(session: Any) -> None:
    from sklearn.dummy import DummyClassifier

    session.registry.register("undeclared", DummyClassifier().fit([[0], [1]], [0, 1]))


@step(cache=False, writes=["models/declared"])
def register_declared(session: Any) -> int:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0], [1]], [0, 1])
    return int(session.registry.register("declared", model).version)


@step(cache=False)
def describe_anything(session: Any) -> list[str]:  # describing is not confined
    return [g.name for g in session.featurestore.list_groups()]


@pipeline
def confined(victim: str = "", export_name: str = "daily") -> None:
    own_folder()
    export(export_name)
    other_run(victim)
    declared_group()
    undeclared_read()  # declared by another step: the run token is the run's
    register_undeclared()
    register_declared()
    describe_anything()


@step
def nothing() -> None:
    return None


@pipeline
def earlier() -> None:
    nothing()


def _scores_group(admin: trivet.Session) -> None:
    from trivet.featurestore import Dtype, Feature, FeatureGroupSpec

    admin.featurestore.create_group(
        FeatureGroupSpec(
            name="scores",
            record_id="id",
            event_time="ts",
            features=[Feature(name="score", dtype=Dtype.FLOAT)],
        )
    )


def test_a_run_writes_only_its_folder_and_what_it_declares(
    admin: trivet.Session, pl: Pipelines
) -> None:
    _scores_group(admin)
    me = admin.principal.name  # the OS user who created the workspace
    victim = pl.run(earlier)  # another run, whose folder this one attacks
    run = pl.run(confined, params={"victim": victim.id})
    assert run.status is ExecutionStatus.FAILED
    status = {s.name: s.status.value for s in run.steps}
    # the admin holds every grant: only the run token's scope refuses
    assert status == {
        "own_folder": "succeeded",
        "export": "succeeded",
        "other_run": "failed",
        "declared_group": "succeeded",
        "undeclared_read": "succeeded",
        "register_undeclared": "failed",
        "register_declared": "succeeded",
        "describe_anything": "succeeded",
    }
    assert pl.output(run.id, "describe_anything") == ["scores"]
    assert pl.output(run.id, "register_declared") == 1
    assert [r.folder for r in admin.artifacts.list("default/exports/daily")] == [
        "default/exports/daily"
    ]

    def error(name: str) -> str:
        return run.step(name).error or ""

    other = f"default/runs/{victim.id}"
    assert error("other_run").startswith(
        f"PermissionDenied: '{me}' may not artifact:write on '{other}': outside the "
        f"token's scope (the run token of execution {run.id} covers its folder "
        f"default/runs/{run.id} and what pipeline 'confined' declares: writes "
        "exports/daily, feature_groups/scores, models/declared)"
    )
    assert f'@step(writes=["runs/{victim.id}"])' in error("other_run")
    assert "may not model:register on 'default/models/undeclared'" in error("register_undeclared")
    assert '@step(writes=["models/undeclared"])' in error("register_undeclared")

    denied = sorted(
        (e.actor, e.action, e.resource)
        for e in audit.entries(admin.catalog, outcome="denied")
        if e.run_id == run.id
    )
    assert denied == [
        (me, "artifact:write", other),
        (me, "model:register", "default/models/undeclared"),
    ]


def test_undeclared_feature_groups_are_refused_with_the_fix(
    admin: trivet.Session, pl: Pipelines
) -> None:
    _scores_group(admin)
    me = admin.principal.name

    @pipeline
    def sneaky() -> None:
        undeclared_group()
        undeclared_read()

    run = pl.run(sneaky)
    assert {s.name: s.status.value for s in run.steps} == {
        "undeclared_group": "failed",
        "undeclared_read": "failed",
    }
    write_error = run.step("undeclared_group").error or ""
    assert write_error.startswith(
        f"PermissionDenied: '{me}' may not feature:write on 'default/feature_groups/scores': "
        f"outside the token's scope (the run token of execution {run.id} covers its folder "
        f"default/runs/{run.id} and what pipeline 'sneaky' declares: nothing)"
    )
    assert write_error.endswith(
        '(declare it on the step that touches it: @step(writes=["feature_groups/scores"]), '
        'or on the pipeline: @pipeline(writes=["feature_groups/scores"]))'
    )
    read_error = run.step("undeclared_read").error or ""
    assert "may not feature:read_online on 'default/feature_groups/scores'" in read_error
    assert '@step(reads=["feature_groups/scores"])' in read_error
    denied = sorted(
        (e.action, e.run_id)
        for e in audit.entries(admin.catalog, outcome="denied")
        if e.resource == "default/feature_groups/scores"
    )  # (the two steps run in parallel: either may be denied first)
    assert denied == [("feature:read_online", run.id), ("feature:write", run.id)]

    # declared on the pipeline instead: both pass (the admin holds the grants)
    @pipeline(writes=["feature_groups/scores"])
    def declared() -> None:
        undeclared_group()
        undeclared_read()

    assert pl.run(declared).succeeded


def test_the_stored_run_token_scope_is_the_declared_one(
    admin: trivet.Session, pl: Pipelines
) -> None:
    run = pl.run(confined, params={"victim": "v" * 36})  # (steps fail: no group)
    with admin.catalog.read() as conn:
        row = conn.execute(sa.select(tokens.c.scope).where(tokens.c.run_id == run.id)).one()
    scope = TokenScope.from_json(row.scope)  # what a worker in another process gets
    assert scope is not None and scope.rules is not None
    mine = f"default/runs/{run.id}"
    assert dict(scope.rules) == {
        f"{mine}/*": {"artifact:read", "artifact:write"},
        "default/runs/*": {"artifact:read"},
        "default/*": {
            "feature:describe",
            "pipeline:describe",
            "model:describe",
            "clarify:read_report",
        },
        "default/reports": {"clarify:run"},
        "default/exports/daily/*": {"artifact:read", "artifact:write"},
        "default/feature_groups/scores/*": {
            "feature:describe",
            "feature:read_online",
            "feature:read_offline",
            "feature:write",
            "feature:create",
        },
        "default/models/declared/*": {
            "model:describe",
            "model:read",
            "model:predict",
            "model:register",
            "artifact:read",
            "artifact:write",
        },
    }
    assert scope.permits("artifact:write", f"{mine}/step/x")
    assert scope.permits("artifact:read", "default/runs/another")  # the cache reuses it
    assert not scope.permits("artifact:write", "default/runs/another")
    assert not scope.permits("feature:delete", "default/feature_groups/scores")
    assert not scope.permits("model:approve", "default/models/declared/1")  # never a run's
    assert not scope.permits("feature:read_offline", "default/feature_groups/other")
    assert not scope.permits("feature:describe", "other/feature_groups/x")  # other projects


def test_the_invokers_token_scope_still_bounds_the_run(
    admin: trivet.Session, workspace: Settings
) -> None:
    admin.identity.create_user("dana")
    admin.access.grant("dana", "data_scientist", "default/*")
    narrow = admin.identity.create_token(
        "dana", resources=["default/pipelines/*", "default/runs/*", "default/exports/*"]
    ).secret
    dana = trivet.connect(workspace.workspace, token=narrow)

    @pipeline
    def mixed() -> None:
        export("weekly")
        register_declared()

    run = Pipelines(dana).run(mixed)
    assert run.step("export").status.value == "succeeded"
    error = run.step("register_declared").error or ""
    assert "may not model:register on 'default/models/declared': outside the token's scope" in (
        error
    )
    assert "within the invoker's token's scope" in error


def test_revoking_the_invokers_token_revokes_its_runs_tokens(
    admin: trivet.Session, workspace: Settings
) -> None:
    admin.identity.create_user("dana")
    admin.access.grant("dana", "data_scientist", "default/*")
    token = admin.identity.create_token("dana")
    dana = trivet.connect(workspace.workspace, token=token.secret)
    run = Pipelines(dana).run(earlier)
    with admin.catalog.read() as conn:
        row = conn.execute(sa.select(tokens).where(tokens.c.run_id == run.id)).one()
    assert row.parent_id == token.info.id and row.kind == "run"
    admin.identity.revoke_token(token.info.prefix)
    with admin.catalog.read() as conn:
        revoked = conn.execute(
            sa.select(tokens.c.revoked_at).where(tokens.c.id == row.id)
        ).scalar_one()
    assert revoked is not None


# -- the scope's algebra -------------------------------------------------------------------------
PATTERNS = ["*", "p/*", "p/a/*", "p/a", "p/a/x", "p/b/*", "p/b", "q/*"]
RESOURCES = ["p", "p/a", "p/a/x", "p/a/y", "p/b", "p/b/z", "p/c", "q/a"]
ACTS = ["artifact:read", "artifact:write", "feature:write"]

rule_sets = st.dictionaries(
    st.sampled_from(PATTERNS), st.frozensets(st.sampled_from(ACTS), min_size=1), max_size=4
)
flat = st.builds(
    TokenScope,
    actions=st.none() | st.frozensets(st.sampled_from(ACTS)),
    patterns=st.none() | st.lists(st.sampled_from(PATTERNS), max_size=3).map(tuple),
)
scopes = flat | rule_sets.map(TokenScope.of_rules)


@settings(max_examples=200, deadline=None, database=None)
@given(scopes, scopes, st.sampled_from(ACTS), st.sampled_from(RESOURCES))
def test_intersecting_scopes_allows_exactly_what_both_allow(
    a: TokenScope, b: TokenScope, action: str, resource: str
) -> None:
    both = a.intersect(b)
    assert both.permits(action, resource) == (
        a.permits(action, resource) and b.permits(action, resource)
    )
    assert TokenScope.from_json(both.to_json()) == both


def test_rules_grant_each_pattern_only_its_actions() -> None:
    scope = TokenScope.of_rules(
        {"p/runs/r/*": ["artifact:write"], "p/feature_groups/g/*": ["feature:read_offline"]},
        label="a run",
        hint='declare {access}=["{path}"]',
    )
    assert scope.permits("artifact:write", "p/runs/r/out")
    assert not scope.permits("feature:read_offline", "p/runs/r/out")  # not there
    assert not scope.permits("artifact:write", "p/feature_groups/g")  # nor that here
    assert scope.permits_pattern("feature:read_offline", "p/feature_groups/g/*")
    assert not scope.permits_pattern("feature:read_offline", "p/feature_groups/*")
    assert scope.refusal("feature:write", "p/feature_groups/h/3") == (
        "outside the token's scope (a run)",
        'declare writes=["feature_groups/h"]',
    )
    assert scope.refusal("feature:read_offline", "p/feature_groups/h")[1] == (
        'declare reads=["feature_groups/h"]'
    )
    # a flat scope keeps its old form and message
    assert TokenScope(patterns=("p/*",)).to_json() == {"actions": None, "patterns": ["p/*"]}
    assert TokenScope().refusal("a:b", "p/x") == ("outside the token's scope", None)


def test_a_denied_scope_check_raises_with_the_scope_s_hint(
    admin: trivet.Session, pl: Pipelines
) -> None:
    seen: dict[str, Any] = {}

    @step(cache=False)
    def probe(session: Any) -> None:
        with pytest.raises(PermissionDenied) as caught:
            session.require("model:register", "default/models/m")
        seen["hint"] = caught.value.hint

    @pipeline
    def p_probe() -> None:
        probe()

    assert pl.run(p_probe).succeeded
    assert seen["hint"] == (
        'declare it on the step that touches it: @step(writes=["models/m"]), or on the '
        'pipeline: @pipeline(writes=["models/m"])'
    )
