"""Scoring over a real server: Approved versions only, grants, features, SHAP, the log."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import trivet
from tests.server.live import Live
from trivet._serving import Serving, read_predictions
from trivet.errors import PermissionDenied
from trivet.platform import audit
from trivet.platform.predictions import LoggedPrediction, PredictionLog, table_uri
from trivet.platform.settings import Settings
from trivet.server import create_app, in_background

FEATURES = ["income", "debt", "age"]
MODEL = "risk"


def _data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "income": rng.normal(50.0, 15.0, n),
            "debt": rng.normal(20.0, 8.0, n),
            "age": rng.integers(18, 80, n).astype(float),
        }
    )
    y = ((x["income"] - 1.5 * x["debt"] + 0.1 * x["age"] + rng.normal(0, 5, n)) > 25).astype(int)
    return x, y.to_numpy()


def _tree() -> tuple[GradientBoostingClassifier, pd.DataFrame]:
    x, y = _data()
    return GradientBoostingClassifier(n_estimators=25, max_depth=3, random_state=0).fit(x, y), x


def _setup(live: Live) -> tuple[GradientBoostingClassifier, pd.DataFrame]:
    """Register v1 (Approved, champion; with a SHAP baseline) and v2 (pending)."""
    model, x = _tree()
    registry = live.admin.registry
    baseline = x.iloc[:40].to_numpy().tolist()
    registry.register(MODEL, model, signature={"feature_names_in": FEATURES, "baseline": baseline})
    registry.approve(MODEL, 1, justification="holdout AUC and DI reviewed")
    registry.set_alias(MODEL, "champion", 1)
    registry.register(MODEL, model)  # v2 stays PendingManualApproval
    return model, x


def _scorer(live: Live, name: str = "scorer", *extra: tuple[str, str]) -> str:
    """A principal that may score with the model (model:predict), and nothing else."""
    p = live.admin.project
    return live.user(name, ("model:predict", f"{p}/models/{MODEL}/*"), *extra)


def _url(live: Live, model: str = MODEL) -> str:
    return f"/v1/projects/{live.admin.project}/models/{model}/predict"


def _instances(x: pd.DataFrame, rows: list[int]) -> list[dict[str, Any]]:
    return [{k: float(v) for k, v in x.iloc[i].items()} for i in rows]


def test_instances_score_like_the_model_in_the_test(live: Live) -> None:
    model, x = _setup(live)
    rows = [300 - 1, 7, 123]
    sent = _instances(x, rows)
    sent[0]["applicant"] = "a-1"  # a key the model does not use is ignored
    with live.client(_scorer(live)) as http:
        r = http.post(_url(live), json={"instances": sent}, headers={"X-Request-ID": "req-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["version"], body["request_id"]) == (MODEL, 1, "req-1")
    assert r.headers["x-request-id"] == "req-1"
    assert body["features"] == FEATURES
    assert body["classes"] == [0, 1]
    assert body["digest"] == live.admin.registry.get(MODEL, 1).artifact_digest
    expected = model.predict_proba(x.iloc[rows])
    got = np.array([p["probabilities"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert [p["prediction"] for p in body["predictions"]] == model.predict(x.iloc[rows]).tolist()
    assert [p["inference_id"] for p in body["predictions"]] == ["req-1-0", "req-1-1", "req-1-2"]
    assert all(p["explanation"] is None for p in body["predictions"])


def test_records_are_read_from_the_online_store_with_the_callers_grants(live: Live) -> None:
    from trivet.featurestore import Dtype, Feature, FeatureGroupSpec

    model, x = _setup(live)
    fs = live.admin.featurestore
    fs.create_group(
        FeatureGroupSpec(
            name="applicants",
            record_id="applicant_id",
            event_time="ts",
            features=[Feature(name=f, dtype=Dtype.FLOAT) for f in FEATURES]
            + [Feature(name="note", dtype=Dtype.STRING)],
        )
    )
    rows = x.iloc[:5].copy()
    rows["applicant_id"] = [f"a{i}" for i in range(5)]
    rows["ts"] = pd.Timestamp("2024-01-01", tz="UTC")
    rows["note"] = "not a model feature"
    fs.ingest("applicants", rows)
    p = live.admin.project
    # the quickstart's application: online_reader on the project, one grant
    app = live.user("scoring-app", ("online_reader", f"{p}/*"))
    body = {"records": [{"group": "applicants", "id": "a3"}, {"group": "applicants", "id": "a0"}]}
    with live.client(app) as http:
        r = http.post(_url(live), json=body)
        missing = http.post(_url(live), json={"records": [{"group": "applicants", "id": "zz"}]})
    assert r.status_code == 200, r.text
    got = [pr["probabilities"] for pr in r.json()["predictions"]]
    np.testing.assert_allclose(got, model.predict_proba(x.iloc[[3, 0]]), rtol=0, atol=1e-12)
    assert [pr["record_id"] for pr in r.json()["predictions"]] == ["a3", "a0"]
    assert missing.status_code == 404
    assert "'zz'" in missing.json()["error"]["message"]
    # may score but not read the group online: refused, nothing scored
    with live.client(_scorer(live, "no-features")) as http:
        denied = http.post(_url(live), json=body)
    assert denied.status_code == 403
    assert "feature:read_online" in denied.json()["error"]["message"]
    fs.close()


def test_tree_explanations_are_additive_and_ranked(live: Live) -> None:
    model, x = _setup(live)
    rows = [11, 250]
    with live.client(_scorer(live)) as http:
        r = http.post(
            _url(live), json={"instances": _instances(x, rows), "explain": True, "top_k": 2}
        )
    assert r.status_code == 200, r.text
    probability = model.predict_proba(x.iloc[rows])[:, 1]
    # interventional tree SHAP: the base value is the mean output over the background
    background = model.predict_proba(x.iloc[:40])[:, 1].mean()
    for i, pred in enumerate(r.json()["predictions"]):
        why = pred["explanation"]
        assert (why["method"], why["output"]) == ("tree", "probability of class 1")
        assert why["base_value"] == pytest.approx(background, abs=1e-9)
        assert why["prediction"] == pytest.approx(probability[i], abs=1e-12)
        # SHAP's local accuracy: base value + all SHAP values = the model's output
        total = why["base_value"] + sum(c["shap"] for c in why["top"]) + why["rest"]
        assert total == pytest.approx(probability[i], abs=1e-6)
        assert len(why["top"]) == 2
        shap = [abs(c["shap"]) for c in why["top"]]
        assert shap == sorted(shap, reverse=True)
        assert abs(why["rest"]) <= shap[-1] + 1e-12  # one feature left, the smallest
        for c in why["top"]:
            assert c["value"] == pytest.approx(float(x.iloc[rows[i]][c["feature"]]))


def test_a_model_without_a_baseline_explains_only_if_it_is_a_tree(live: Live) -> None:
    x, y = _data()
    linear = LogisticRegression(max_iter=1000).fit(x, y)
    registry = live.admin.registry
    for name, sig in (("lin", None), ("lin-base", x.iloc[:30].to_numpy().tolist())):
        signature = {"feature_names_in": FEATURES} | ({"baseline": sig} if sig else {})
        registry.register(name, linear, signature=signature)
        registry.approve(name, 1, justification="reviewed")
    tree, _ = _tree()
    registry.register("gb", tree)  # the signature recorded from the model: no baseline
    registry.approve("gb", 1, justification="reviewed")
    token = live.user("ds", ("data_scientist", f"{live.admin.project}/*"))
    one = {"instances": _instances(x, [5]), "explain": True}
    with live.client(token) as http:
        refused = http.post(_url(live, "lin"), json=one)
        plain = http.post(_url(live, "lin"), json=one | {"explain": False})
        kernel = http.post(_url(live, "lin-base"), json=one)
        path_dependent = http.post(_url(live, "gb"), json=one)
    assert refused.status_code == 409
    assert "baseline" in refused.json()["error"]["message"]
    assert "signature" in refused.json()["error"]["hint"]
    assert plain.status_code == 200
    why = kernel.json()["predictions"][0]["explanation"]
    assert why["method"] == "kernel"
    p = linear.predict_proba(x.iloc[[5]])[0, 1]
    total = why["base_value"] + sum(c["shap"] for c in why["top"]) + why["rest"]
    assert total == pytest.approx(p, abs=1e-6)  # kernel SHAP is additive by construction
    # a tree without a baseline: path-dependent SHAP on the model's raw scale (log-odds)
    why = path_dependent.json()["predictions"][0]["explanation"]
    assert (why["method"], why["output"]) == ("tree", "log-odds of class 1")
    log_odds = tree.decision_function(x.iloc[[5]])[0]
    total = why["base_value"] + sum(c["shap"] for c in why["top"]) + why["rest"]
    assert total == pytest.approx(log_odds, abs=1e-6)
    assert why["prediction"] == pytest.approx(log_odds, abs=1e-12)


def test_only_an_approved_version_serves(live: Live) -> None:
    _, x = _setup(live)
    one = {"instances": _instances(x, [0])}
    with live.client(_scorer(live)) as http:
        pending = http.post(_url(live), json=one | {"version": 2})
        by_number = http.post(_url(live), json=one | {"version": 1})
        by_alias = http.post(_url(live), json=one | {"version": "champion"})
        live.admin.registry.delete_alias(MODEL, "champion")
        latest_approved = http.post(_url(live), json=one)  # v2 is newer, but pending
        live.admin.registry.reject(MODEL, 2, justification="drifted")
        rejected = http.post(_url(live), json=one | {"version": 2})
    assert pending.status_code == 409
    message = pending.json()["error"]["message"]
    assert "v2 is PendingManualApproval" in message and "only Approved" in message
    assert rejected.status_code == 409
    assert "Rejected" in rejected.json()["error"]["message"]
    assert [r.json()["version"] for r in (by_number, by_alias, latest_approved)] == [1, 1, 1]


def test_callers_without_model_predict_are_refused(live: Live) -> None:
    _, x = _setup(live)
    p = live.admin.project
    live.admin.identity.create_project("other")
    callers = {
        "stranger": live.user("eve", ("owner", "other/*")),
        "viewer": live.user("vic", ("viewer", f"{p}/*")),
        "online reader of the features only": live.user(
            "app", ("online_reader", f"{p}/feature_groups/*")
        ),
        "model:predict on another model": live.user(
            "other-app", ("model:predict", f"{p}/models/another/*")
        ),
    }
    for who, token in callers.items():
        for version in (1, None):
            with live.client(token) as http:
                body = {"instances": _instances(x, [0]), "version": version}
                r = http.post(_url(live), json=body)
            assert r.status_code == 403, (who, version, r.text)
            assert r.json()["error"]["type"] == "PermissionDenied"
            assert "model:predict" in r.json()["error"]["message"]


def test_an_application_scores_but_never_gets_the_model(live: Live) -> None:
    model, x = _setup(live)
    p = live.admin.project
    token = live.user("app", ("online_reader", f"{p}/*"))
    with live.client(token) as http:
        r = http.post(_url(live), json={"instances": _instances(x, [0, 1])})
    assert r.status_code == 200, r.text
    got = [pr["probabilities"] for pr in r.json()["predictions"]]
    np.testing.assert_allclose(got, model.predict_proba(x.iloc[[0, 1]]), rtol=0, atol=1e-12)
    app = trivet.connect(live.admin.settings.workspace, token=token)
    with pytest.raises(PermissionDenied, match="model:read"):
        app.registry.load(MODEL, 1)
    with pytest.raises(PermissionDenied, match="artifact:read"):
        app.artifacts.get_bytes(app.registry.servable(MODEL).artifact_digest)
    assert app.registry.servable(MODEL).version == 1  # the champion


def test_bad_requests_are_422_naming_the_problem(live: Live) -> None:
    _, x = _setup(live)
    good = _instances(x, [0, 1])
    del good[1]["debt"]
    with live.client(_scorer(live)) as http:
        missing = http.post(_url(live), json={"instances": good})
        both = http.post(
            _url(live),
            json={"instances": good, "records": [{"group": "g", "id": "1"}]},
        )
        text = http.post(_url(live), json={"instances": [{**good[0], "age": "old"}]})
        too_many = http.post(
            _url(live), json={"instances": _instances(x, [0]) * 101, "explain": True}
        )
    assert missing.status_code == 422
    error = missing.json()["error"]
    assert error["field"] == "body.instances.1"
    assert "'debt'" in error["message"]
    assert both.status_code == 422
    assert "exactly one of 'instances' and 'records'" in both.json()["error"]["message"]
    assert text.status_code == 422
    assert "could not score" in text.json()["error"]["message"]
    assert too_many.status_code == 422
    assert "at most 100" in too_many.json()["error"]["message"]


# -- the prediction log -----------------------------------------------------------------------
@dataclass
class Stoppable:
    live: Live
    server: contextlib.ExitStack

    def stop(self) -> None:
        """Shut the server down gracefully (as on SIGTERM) and wait until it is down."""
        self.server.close()  # in_background raises if the server did not stop


@pytest.fixture
def slow_flushing(workspace: Settings, admin: trivet.Session) -> Iterator[Stoppable]:
    """A server whose log writes only on shutdown (so a test sees the shutdown flush)."""
    app = create_app(workspace, console=False)
    log = PredictionLog(workspace.offline_url, flush_rows=10_000, flush_seconds=3600)
    app.state.serving = Serving(workspace, log=log)
    stack = contextlib.ExitStack()
    url = stack.enter_context(in_background(app))
    running = Stoppable(Live(url=url, admin=admin), stack)
    yield running
    running.stop()


def test_every_prediction_is_logged_and_graceful_shutdown_flushes(
    slow_flushing: Stoppable,
) -> None:
    live = slow_flushing.live
    model, x = _setup(live)
    first, second = _instances(x, [1, 2]), _instances(x, [3])
    started = dt.datetime.now(dt.UTC)
    with live.client(_scorer(live)) as http:
        a = http.post(_url(live), json={"instances": first, "ids": ["app-1", "app-2"]}).json()
        b = http.post(_url(live), json={"instances": second, "explain": True}).json()
    assert read_predictions(live.admin, MODEL).empty  # buffered: nothing written yet
    slow_flushing.stop()

    log = read_predictions(live.admin, MODEL)
    assert len(log) == 3
    sent = first + second
    responses = a["predictions"] + b["predictions"]
    assert log["inference_id"].tolist() == [p["inference_id"] for p in responses]
    assert log["request_id"].tolist() == [a["request_id"]] * 2 + [b["request_id"]]
    assert log["record_id"].tolist()[:2] == ["app-1", "app-2"]
    assert log["record_id"].isna().tolist() == [False, False, True]  # no id was given
    assert log[FEATURES].to_dict("records") == sent
    assert log["prediction"].tolist() == model.predict(x.iloc[[1, 2, 3]]).tolist()
    np.testing.assert_allclose(
        np.stack(log["probabilities"].to_list()),
        model.predict_proba(x.iloc[[1, 2, 3]]),
        rtol=0,
        atol=1e-12,
    )
    assert set(log["version"]) == {1}
    assert set(log["digest"]) == {live.admin.registry.get(MODEL, 1).artifact_digest}
    assert set(log["principal"]) == {"scorer"}
    assert log["classes"].tolist() == [[0, 1]] * 3
    assert all(started <= t <= dt.datetime.now(dt.UTC) for t in log["ts"])
    assert read_predictions(live.admin, MODEL, version=2).empty
    assert read_predictions(live.admin, MODEL, since=dt.datetime.now(dt.UTC)).empty
    # the log holds features: reading it needs model:read, as loading the model does
    viewer = trivet.connect(
        live.admin.settings.workspace,
        token=live.user("vic", ("viewer", f"{live.admin.project}/*")),
    )
    with pytest.raises(trivet.errors.PermissionDenied, match="model:read"):
        read_predictions(viewer, MODEL)


def _row(n: int, settings: Settings) -> LoggedPrediction:
    now = dt.datetime.now(dt.UTC)
    return LoggedPrediction(
        ts=now,
        inference_id=f"r-{n}",
        request_id="r",
        record_id=None,
        project="default",
        model="m",
        version=1,
        digest="0" * 64,
        registered_at=now,
        principal="p",
        principal_id="p",
        features={"x": n},
        prediction=n % 2,
        probabilities=[0.5, 0.5],
        classes=[0, 1],
    )


def _rows_written(settings: Settings) -> int:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(table_uri(settings.offline_url, "default", "m"))
    except TableNotFoundError:
        return 0
    return int(table.to_pyarrow_table().num_rows)


def _eventually(check: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_the_log_writes_in_batches_by_count_and_by_time(workspace: Settings) -> None:
    by_count = PredictionLog(workspace.offline_url, flush_rows=3, flush_seconds=3600)
    by_count.add([_row(0, workspace), _row(1, workspace)])
    time.sleep(0.3)
    assert _rows_written(workspace) == 0  # two rows wait for a third
    by_count.add([_row(2, workspace)])
    assert _eventually(lambda: _rows_written(workspace) == 3)
    by_count.close()

    by_time = PredictionLog(workspace.offline_url, flush_rows=1000, flush_seconds=0.2)
    by_time.add([_row(3, workspace)])
    assert _eventually(lambda: _rows_written(workspace) == 4)
    by_time.add([_row(4, workspace)])
    by_time.close()  # writes what is left, at once
    assert _rows_written(workspace) == 5
    assert (by_count.written, by_time.written, by_time.dropped) == (3, 2, 0)


def test_deleting_a_model_group_deletes_its_prediction_log(
    workspace: Settings, admin: trivet.Session
) -> None:
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    admin.registry.register("m", model)
    log = PredictionLog(workspace.offline_url, flush_rows=1000, flush_seconds=3600)
    log.add([_row(0, workspace), _row(1, workspace)])
    log.close()
    assert _rows_written(workspace) == 2
    other = _row(2, workspace)
    kept = PredictionLog(workspace.offline_url)
    kept.add([dataclasses.replace(other, model="other")])
    kept.close()
    admin.registry.delete_group("m")
    assert _rows_written(workspace) == 0  # the table is gone, not emptied
    uri = table_uri(workspace.offline_url, "default", "m")
    assert not Path(uri).exists()
    assert Path(table_uri(workspace.offline_url, "default", "other")).exists()  # untouched
    row = next(e for e in audit.entries(admin.catalog) if e.action == "model:delete_group")
    assert row.detail["prediction_log_dropped"] is True
