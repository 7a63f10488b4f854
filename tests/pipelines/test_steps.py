"""The built-in steps: train → evaluate → bias_check → gate → register, end to end through
the engine, with caching, identity and lineage; and ingest_features."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import trivet
from trivet.clarify import Clarify, Facet
from trivet.errors import ValidationError
from trivet.pipelines import ExecutionStatus, ParamRef, Pipelines, StepStatus, pipeline, step
from trivet.pipelines.cache import canonical_digest
from trivet.pipelines.errors import PipelineDefinitionError
from trivet.pipelines.steps import (
    EstimatorSpec,
    ObjectRef,
    bias_check,
    evaluate,
    gate,
    ingest_features,
    read_training_set,
    register_model,
    train,
)
from trivet.pipelines.steps._estimator import split_estimator
from trivet.platform.lineage import Node
from trivet.platform.registry import ApprovalStatus, GateStatus
from trivet.platform.settings import Settings

NAIVE = {"drop": ["sex"]}  # keeps the proxy of sex: measurably unfair
FAIR = {"drop": ["sex", "proxy"]}


@step
def applicants(n: int, seed: int) -> pd.DataFrame:
    """Loan applicants whose historical labels favour men; ``proxy`` leaks the sex."""
    rng = np.random.default_rng(seed)
    male = rng.random(n) < 0.5
    skill = rng.normal(size=n)
    return pd.DataFrame(
        {
            "sex": np.where(male, "male", "female"),
            "skill": skill,
            "proxy": male + rng.normal(scale=0.3, size=n),
            "approved": (skill + 1.5 * male + rng.normal(scale=0.5, size=n) > 0.75).astype(int),
        }
    )


@pipeline
def credit(drop: list[str] = ["sex"], c: float = 1.0, n: int = 400) -> None:  # noqa: B006
    """Train, evaluate, check for bias, and register only past the fairness gate."""
    history = applicants(n, 0)
    holdout = applicants(n, 1)
    model = train(history, estimator=LogisticRegression(C=c), label="approved", drop=drop)
    metrics = evaluate(model, holdout, label="approved")
    bias = bias_check(
        model,
        holdout,
        label="approved",
        facet=Facet("sex", values="female"),
        checks={"DI": (0.8, 1.25)},
        report_name="credit",
    )
    gate(
        bias,
        then=lambda: register_model(
            model, name="credit", metrics=metrics, bias=bias, training_set=history
        ),
    )


def user(admin: trivet.Session, workspace: Settings, name: str, *denied: str) -> Pipelines:
    """A data scientist on the project, with ``action@pattern`` explicitly denied."""
    admin.identity.create_user(name)
    admin.access.grant(name, "data_scientist", "default/*")
    for grant in denied:
        action, pattern = grant.split("@")
        admin.access.grant(name, action, pattern, deny=True)
    token = admin.identity.create_token(name).secret
    return Pipelines(trivet.connect(workspace.workspace, token=token))


def statuses(run: Any) -> dict[str, str]:
    return {s.name: s.status.value for s in run.steps}


# -- the canonical flow ------------------------------------------------------------------------
def test_the_naive_model_fails_the_gate_and_the_fair_one_is_registered(
    pl: Pipelines, admin: trivet.Session
) -> None:
    naive = pl.run(credit, params=NAIVE)
    assert naive.status is ExecutionStatus.FAILED
    assert statuses(naive)["register_model"] == "skipped"
    assert statuses(naive)["gate"] == "failed"
    error = naive.step("gate").error or ""
    assert error.startswith("gate 'gate' failed: 1 of 1 fairness checks failed: DI for group")
    assert "below the lower bound 0.8" in error
    verdict = pl.output(naive.id, "bias_check")
    assert verdict["passed"] is False and verdict["failures"] == [error.split(": ", 2)[2]]
    assert verdict["metrics"]["DI"]["female"] < 0.8
    assert admin.registry.groups() == []  # not registered

    fair = pl.run(credit, params=FAIR)
    assert fair.succeeded, fair.error
    assert statuses(fair)["gate"] == "skipped"  # the fail step of the gate, not reached
    bias = pl.output(fair.id, "bias_check")
    registered = pl.output(fair.id, "register_model")
    version = admin.registry.get("credit", registered["version"])
    assert version.status is ApprovalStatus.PENDING
    assert version.gate_status is GateStatus.PASSED
    assert version.fairness_report_digest == bias["report"] == registered["fairness_report"]
    assert version.run_id == fair.id
    assert set(version.metrics) == {"accuracy", "f1", "log_loss", "precision", "recall", "roc_auc"}
    assert version.params["C"] == 1.0
    report = Clarify(admin).get_report(bias["report"])
    assert report.checks_passed is True
    assert report.document["data_digest"] == fair.step("applicants_2").output_digest


def test_a_rerun_hits_the_cache_and_a_new_hyperparameter_misses_downstream(
    pl: Pipelines, admin: trivet.Session
) -> None:
    first = pl.run(credit, params=FAIR)
    again = pl.run(credit, params=FAIR)
    assert again.succeeded
    ran = [s for s in again.steps if s.status is StepStatus.SUCCEEDED]
    assert len(ran) == 6 and all(s.cache_hit for s in ran)
    assert pl.output(again.id, "register_model") == pl.output(first.id, "register_model")
    assert [v.version for v in admin.registry.versions("credit")] == [1]  # no duplicate

    changed = pl.run(credit, params={**FAIR, "c": 0.5})
    hits = {s.name: s.cache_hit for s in changed.steps if s.status is StepStatus.SUCCEEDED}
    assert hits == {
        "applicants": True,
        "applicants_2": True,
        "train": False,
        "evaluate": False,
        "bias_check": False,
        "register_model": False,
    }
    why = str(pl.explain_miss(changed.id, "train"))
    assert "parameter 'params'" in why and '"C":0.5' in why
    assert admin.registry.get("credit", 2).params["C"] == 0.5


def test_lineage_leads_from_the_version_to_its_report_and_training_data(
    pl: Pipelines, admin: trivet.Session
) -> None:
    run = pl.run(credit, params=FAIR)
    registered = pl.output(run.id, "register_model")
    bias = pl.output(run.id, "bias_check")
    graph = admin.lineage.upstream(Node(kind="model_version", id=registered["resource"]))
    history = run.step("applicants").output_digest
    holdout = run.step("applicants_2").output_digest
    assert history is not None and holdout is not None
    report = Node(kind="report", id=bias["report"])
    assert graph.has_edge(report, Node(kind="model_version", id=registered["resource"]))
    assert graph.has_edge(Node(kind="dataset", id=holdout), report)  # evaluated on
    assert graph.has_edge(
        Node(kind="dataset", id=history), Node(kind="model_version", id=registered["resource"])
    )
    # the training set is the output of the step that made it, and the input of train
    downstream = admin.lineage.downstream(Node(kind="artifact", id=history), depth=1)
    assert Node(kind="step", id=f"default/runs/{run.id}/train") in downstream


# -- identity ----------------------------------------------------------------------------------
def test_a_principal_without_model_register_cannot_register_through_the_pipeline(
    admin: trivet.Session, workspace: Settings
) -> None:
    dana = user(admin, workspace, "dana", "model:register@default/models/*")
    run = dana.run(credit, params=FAIR)
    assert run.status is ExecutionStatus.FAILED
    assert statuses(run)["bias_check"] == "succeeded"
    error = run.step("register_model").error or ""
    assert error.startswith("PermissionDenied: 'dana' may not model:register")
    assert admin.registry.groups() == []


def test_a_principal_without_clarify_run_cannot_run_the_bias_check(
    admin: trivet.Session, workspace: Settings
) -> None:
    carl = user(admin, workspace, "carl", "clarify:run@default/reports/*")
    run = carl.run(credit, params=FAIR)
    assert run.status is ExecutionStatus.FAILED
    error = run.step("bias_check").error or ""
    assert error.startswith("PermissionDenied: 'carl' may not clarify:run")
    assert statuses(run)["register_model"] == "upstream_failed"
    assert statuses(run)["gate"] == "upstream_failed"
    assert admin.artifacts.list("default/reports/credit") == []


# -- ingest_features ---------------------------------------------------------------------------
@step
def new_applicants() -> pd.DataFrame:
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pd.DataFrame(
        {
            "applicant_id": ["a1", "a2", "a3"],
            "ts": [t0, t0, t0 + dt.timedelta(days=1)],
            "income": [1000.0, 2000.0, 3000.0],
        }
    )


@pipeline
def feature_processing() -> None:
    ingest_features(new_applicants(), group="applicants")


def test_ingest_features_writes_a_feature_group_through_the_run_session(
    pl: Pipelines, admin: trivet.Session, workspace: Settings
) -> None:
    from trivet.featurestore import Dtype, Feature, FeatureGroupSpec, FeatureStore

    fs = FeatureStore(admin)
    fs.create_group(
        FeatureGroupSpec(
            name="applicants",
            record_id="applicant_id",
            event_time="ts",
            features=[Feature(name="income", dtype=Dtype.FLOAT)],
        )
    )
    first = pl.run(feature_processing)
    assert first.succeeded, first.error
    out = pl.output(first.id, "ingest_features")
    assert (out["group"], out["rows"], out["records"], out["duplicate"]) == (
        "applicants",
        3,
        3,
        False,
    )
    assert fs.get_record("applicants", "a3")["income"] == 3000.0  # type: ignore[index]
    batch = first.step("new_applicants").output_digest
    assert batch is not None
    groups = admin.lineage.downstream(Node(kind="dataset", id=batch))
    assert Node(kind="feature_group", id="default/feature_groups/applicants") in groups

    again = pl.run(feature_processing)  # not cached: the store skips the known batch
    assert again.step("ingest_features").cache_note == "forced: the step has cache=False"
    assert pl.output(again.id, "ingest_features")["duplicate"] is True

    reader = user(admin, workspace, "rob", "feature:write@default/feature_groups/*")
    denied = reader.run(feature_processing)
    assert (denied.step("ingest_features").error or "").startswith(
        "PermissionDenied: 'rob' may not feature:write"
    )
    fs.close()


@step
def loan_requests() -> pd.DataFrame:
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pd.DataFrame(
        {
            "applicant_id": ["a1", "a3", "a3"],
            "ts": [t0 + dt.timedelta(hours=1), t0, t0 + dt.timedelta(days=2)],
            "approved": [1, 0, 1],
        }
    )


@step
def count_rows(df: pd.DataFrame) -> int:
    return len(df)


@pipeline
def training_set() -> None:
    count_rows(read_training_set(loan_requests(), features=["applicants:*"], timestamp="ts"))


def test_read_training_set_joins_features_as_they_were(
    pl: Pipelines, admin: trivet.Session, workspace: Settings
) -> None:
    from trivet.featurestore import Dtype, Feature, FeatureGroupSpec, FeatureStore

    fs = FeatureStore(admin)
    fs.create_group(
        FeatureGroupSpec(
            name="applicants",
            record_id="applicant_id",
            event_time="ts",
            features=[Feature(name="income", dtype=Dtype.FLOAT)],
        )
    )
    fs.ingest("applicants", new_applicants.fn())
    fs.close()
    run = pl.run(training_set)
    assert run.succeeded, run.error
    frame = pl.output(run.id, "read_training_set")
    # no leakage: a3's income has an event time a day after t0, so at t0 it is unknown
    assert frame["income"].tolist()[0] == 1000.0 and pd.isna(frame["income"].tolist()[1])
    assert frame["income"].tolist()[2] == 3000.0
    dataset = run.step("read_training_set").output_digest
    assert dataset is not None
    graph = admin.lineage.upstream(Node(kind="dataset", id=dataset))
    assert Node(kind="feature_group", id="default/feature_groups/applicants") in graph

    again = pl.run(training_set)  # read again (not cached); same bytes: downstream hits
    assert not again.step("read_training_set").cache_hit
    assert again.step("read_training_set").output_digest == dataset
    assert again.step("count_rows").cache_hit

    blind = user(admin, workspace, "bo", "feature:read_offline@default/feature_groups/*")
    denied = blind.run(training_set)
    assert (denied.step("read_training_set").error or "").startswith(
        "PermissionDenied: 'bo' may not feature:read_offline"
    )


# -- the steps as functions --------------------------------------------------------------------
def test_estimator_specs_are_canonical_and_build_fresh_estimators() -> None:
    spec = EstimatorSpec.of(make_pipeline(OneHotEncoder(), LogisticRegression(C=0.5)))
    same = EstimatorSpec.of(make_pipeline(OneHotEncoder(), LogisticRegression(C=0.5)))
    other = EstimatorSpec.of(make_pipeline(OneHotEncoder(), LogisticRegression(C=0.6)))
    assert spec == same and canonical_digest(spec) == canonical_digest(same)
    assert canonical_digest(spec) != canonical_digest(other)
    assert spec.version is not None and spec.version.startswith("scikit-learn==")
    steps = spec.params["steps"]
    assert isinstance(steps[0][1].params["dtype"], ObjectRef)  # np.float64, by path
    built = spec.build()
    assert built.steps[1][1].C == 0.5 and built.steps[0][1].dtype is np.float64
    assert len(repr(spec)) <= 200 and "sha256=" in repr(spec)
    assert repr(EstimatorSpec.of(StandardScaler())) == (
        "EstimatorSpec(StandardScaler(copy=True, with_mean=True, with_std=True))"
    )
    # inside a pipeline, parameters that are pipeline values are set at run time
    spec, lifted = split_estimator(
        make_pipeline(StandardScaler(), LogisticRegression(C=ParamRef("c")))
    )
    assert list(lifted) == ["logisticregression__C"]
    assert spec.params["steps"][1][1].params["C"] is None
    assert isinstance(train.with_options(name="fit"), type(train))
    with pytest.raises(ValidationError, match="not a class"):
        EstimatorSpec.of(LogisticRegression)
    with pytest.raises(ValidationError, match="module:ClassName"):
        EstimatorSpec(cls="LogisticRegression")


def test_train_fits_a_fresh_copy_and_evaluate_scores_it() -> None:
    frame = applicants.fn(200, 0)
    given = LogisticRegression(C=0.5)
    model = train(frame, estimator=given, label="approved", drop=["sex"])
    assert not hasattr(given, "coef_") and model is not given and model.C == 0.5
    assert list(model.feature_names_in_) == ["skill", "proxy"]
    metrics = evaluate(model, frame, label="approved")
    assert 0.7 < metrics["accuracy"] <= 1.0 and 0.5 < metrics["roc_auc"] <= 1.0
    with pytest.raises(ValidationError, match="non-numeric feature columns: sex"):
        train(frame, estimator=given, label="approved")
    with pytest.raises(ValidationError, match="'aproved' is not in the data"):
        train(frame, estimator=given, label="aproved")


def test_bias_check_outside_a_pipeline_stores_a_report(admin: trivet.Session) -> None:
    frame = applicants.fn(300, 0)
    model = train(frame, estimator=LogisticRegression(), label="approved", drop=["sex"])
    out = bias_check(
        model,
        frame,
        label="approved",
        facet="sex",
        checks={"DPPL": (-0.1, 0.1)},
        report_name="adhoc",
        metrics=["DPL", "DPPL", "DI"],
        session=admin,
    )
    assert out["passed"] is False and len(out["failures"]) == 2  # both groups, both ways
    assert out["summary"].startswith("2 of 2 fairness checks failed: DPPL for group")
    assert set(out["metrics"]) == {"DPL", "DPPL", "DI"}
    assert Clarify(admin).get_report(out["report"]).document["data_digest"] is None


def test_gate_and_register_refuse_what_they_cannot_use(admin: trivet.Session) -> None:
    with pytest.raises(PipelineDefinitionError, match="inside a @pipeline"):
        gate(ParamRef("ok"))

    @pipeline
    def p_bad_gate() -> None:
        gate(True)  # type: ignore[arg-type]

    with pytest.raises(PipelineDefinitionError, match="needs a condition"):
        p_bad_gate.dag()
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValidationError, match="output of a bias_check step"):
        register_model(model, name="m", bias={"report": "x"}, session=admin)
