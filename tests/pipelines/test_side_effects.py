"""Cached results never stand in for a permission, and step logs never keep secrets."""

from __future__ import annotations

import pytest

import trivet
from trivet.errors import PermissionDenied
from trivet.pipelines import Pipelines
from trivet.platform.settings import Settings

from .conftest import ModuleWriter

SOURCE = """
from sklearn.linear_model import LogisticRegression
import pandas as pd
from trivet.pipelines import pipeline, step
from trivet.pipelines.steps import register_model, train


@step
def data() -> pd.DataFrame:
    return pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": [0, 0, 0, 1, 1, 1]})


@step
def noisy() -> dict:
    print("connecting with trv_usr_" + "A" * 40 + "_abcdef")
    return {"ok": True}


@pipeline
def side_effects_{u}() -> None:
    model = train(data(), estimator=LogisticRegression(), label="y")
    register_model(model, name="m-{u}")
    noisy()
"""


def test_a_cached_registration_does_not_stand_in_for_a_denied_one(
    admin: trivet.Session, workspace: Settings, user_modules: ModuleWriter
) -> None:
    module = user_modules("side_effects", SOURCE)
    flow = getattr(module, f"side_effects_{user_modules.suffix}")  # type: ignore[attr-defined]
    first = Pipelines(admin).run(flow)
    assert first.status == "succeeded"

    admin.identity.create_user("bob")
    admin.access.grant("bob", "data_scientist", "default/*")
    admin.access.grant("bob", "model:register", "default/models/*", deny=True)
    bob = trivet.connect(workspace.workspace, token=admin.identity.create_token("bob").secret)
    second = Pipelines(bob).run(flow)
    register = second.step("register_model")
    assert second.step("train").cache_hit  # plain computations are shared
    assert not register.cache_hit
    assert register.status.value == "failed" and "model:register" in (register.error or "")
    assert [v.version for v in admin.registry.versions(f"m-{user_modules.suffix}")] == [1]  # type: ignore[attr-defined]


def test_step_logs_are_stored_with_tokens_redacted(
    admin: trivet.Session, user_modules: ModuleWriter
) -> None:
    module = user_modules("side_effects", SOURCE)
    flow = getattr(module, f"side_effects_{user_modules.suffix}")  # type: ignore[attr-defined]
    pl = Pipelines(admin)
    run = pl.run(flow)
    logs = pl.logs(run.id, "noisy")["noisy"]
    assert "connecting with trv_usr" in logs
    assert "A" * 40 not in logs and "redacted" in logs


def test_why_never_shows_keys_of_pipelines_you_may_not_describe(
    admin: trivet.Session, workspace: Settings, user_modules: ModuleWriter
) -> None:
    module = user_modules("side_effects", SOURCE)
    flow = getattr(module, f"side_effects_{user_modules.suffix}")  # type: ignore[attr-defined]
    Pipelines(admin).run(flow)  # the admin's pipeline leaves cache keys for 'data'

    other = user_modules(
        "other",
        """
import pandas as pd
from trivet.pipelines import pipeline, step


@step
def data() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0]})


@pipeline
def other_{u}() -> None:
    data()
""",
    )
    admin.identity.create_user("eve")
    admin.access.grant("eve", "data_scientist", "default/*")
    secret = f"default/pipelines/side_effects_{user_modules.suffix}"  # type: ignore[attr-defined]
    admin.access.grant("eve", "pipeline:describe", secret, deny=True)
    eve = Pipelines(
        trivet.connect(workspace.workspace, token=admin.identity.create_token("eve").secret)
    )
    run = eve.run(getattr(other, f"other_{user_modules.suffix}"))  # type: ignore[attr-defined]
    why = eve.explain_miss(run.id, "data")
    assert why.closest_execution is None  # the admin's execution stays hidden
    assert Pipelines(admin).explain_miss(run.id, "data").closest_execution is not None


def test_retrying_someone_elses_execution_needs_the_pipeline_given(
    admin: trivet.Session, workspace: Settings, user_modules: ModuleWriter
) -> None:
    """A retry without the pipeline reloads the invoker's code: only the invoker may."""
    failing = user_modules(
        "failing",
        """
from trivet.pipelines import pipeline, step


@step
def boom() -> int:
    raise RuntimeError("flaky")


@pipeline
def failing_{u}() -> None:
    boom()
""",
    )
    flow = getattr(failing, f"failing_{user_modules.suffix}")  # type: ignore[attr-defined]
    failed = Pipelines(admin).run(flow)
    assert failed.status == "failed"
    admin.identity.create_user("mallory")
    admin.access.grant("mallory", "data_scientist", "default/*")
    token = admin.identity.create_token("mallory").secret
    mallory = Pipelines(trivet.connect(workspace.workspace, token=token))
    with pytest.raises(PermissionDenied, match="without the pipeline"):
        mallory.retry(failed.id)
    again = mallory.retry(failed.id, pipeline=flow)  # with the pipeline given: allowed
    assert again.status == "failed" and again.step("boom").status.value == "failed"
