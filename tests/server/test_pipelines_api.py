"""The pipelines' routes over a real server that loaded ``tests/server/tiny_pipeline.py``.

``tiny`` (n=3 by default) runs ``numbers`` → ``hold`` → ``total``; ``total`` is
1 + 2 + … + n, so 6 for n=3 and 10 for n=4. With ``wait=True`` its ``hold`` step
blocks until the test sets ``GATE``: the execution is observably running meanwhile.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import trivet
from tests.server import tiny_pipeline
from tests.server.live import Live, serving
from trivet.errors import NotFound, ValidationError
from trivet.pipelines import ExecutionStatus, PipelineDefinitionError, Pipelines
from trivet.pipelines.http import load_startable
from trivet.platform.settings import Settings

TARGET = "tests.server.tiny_pipeline:tiny"
FILE_TARGET = f"{Path(tiny_pipeline.__file__).resolve()}:tiny"


@pytest.fixture
def gate() -> Iterator[None]:
    """A closed gate; opened at the end so that no step thread is left waiting."""
    tiny_pipeline.GATE.clear()
    yield
    tiny_pipeline.GATE.set()


@pytest.fixture
def served(workspace: Settings, admin: trivet.Session, gate: None) -> Iterator[Live]:
    """A server that loaded the tiny pipeline at start-up."""
    with serving(workspace, admin, pipelines=[TARGET]) as live:
        yield live
        tiny_pipeline.GATE.set()


def _base(live: Live) -> str:
    return f"/v1/projects/{live.admin.project}"


def _poll(
    http: httpx.Client, url: str, done: Callable[[dict[str, Any]], bool], timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = http.get(url)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"gave up waiting; last state: {body}"
        time.sleep(0.05)


def _ended(body: dict[str, Any]) -> bool:
    return body["status"] != "running"


def _steps(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in body["steps"]}


def _run(http: httpx.Client, live: Live, **parameters: Any) -> dict[str, Any]:
    """Start tiny, wait for its end, return the execution."""
    r = http.post(f"{_base(live)}/pipelines/tiny/executions", json={"parameters": parameters})
    assert r.status_code == 202, r.text
    return _poll(http, r.json()["href"], _ended)


# -- starting ------------------------------------------------------------------------------
def test_start_answers_202_at_once_and_the_run_goes_on_in_the_background(served: Live) -> None:
    project = served.admin.project
    dana = served.user("dana", ("data_scientist", f"{project}/*"))
    with served.client(dana) as http:
        r = http.post(
            f"{_base(served)}/pipelines/tiny/executions",
            json={"parameters": {"n": 4, "wait": True}},
        )
        # the gate is closed, so the run cannot have ended: the answer came first
        assert r.status_code == 202, r.text
        started = r.json()
        eid = started["id"]
        assert str(uuid.UUID(eid)) == eid
        assert started["status"] == "running"
        assert started["href"] == f"/v1/projects/{project}/executions/{eid}"
        assert r.headers["location"] == started["href"]

        running = _poll(http, started["href"], lambda b: _steps(b)["hold"]["status"] == "running")
        assert running["status"] == "running"
        assert running["ended_at"] is None and running["duration_seconds"] is None
        steps = _steps(running)
        assert steps["numbers"]["status"] == "succeeded"
        assert steps["total"]["status"] == "pending"
        assert steps["total"]["started_at"] is None

        tiny_pipeline.GATE.set()
        done = _poll(http, started["href"], _ended)
        logs = http.get(f"{started['href']}/logs").json()
    assert done["status"] == "succeeded" and done["error"] is None
    assert done["invoked_by"] == "dana" and done["run_as"] == "dana"
    assert done["pipeline"] == "tiny" and done["version"] == 1
    assert done["parameters"] == {
        "n": 4,
        "wait": True,
        "explode": False,
        "source": None,
        "scale": 1.0,
    }
    assert [s["name"] for s in done["steps"]] == ["numbers", "hold", "total"]
    began = dt.datetime.fromisoformat(done["started_at"])
    for s in done["steps"]:
        assert s["status"] == "succeeded" and s["attempts"] == 1 and s["error"] is None
        start_, end = (
            dt.datetime.fromisoformat(s["started_at"]),
            dt.datetime.fromisoformat(s["ended_at"]),
        )
        assert began <= start_ <= end
        assert s["duration_seconds"] == pytest.approx((end - start_).total_seconds(), abs=1e-5)
    assert _steps(done)["hold"]["duration_seconds"] > 0  # it waited for the gate
    assert done["duration_seconds"] >= _steps(done)["hold"]["duration_seconds"]
    by_step = {s["step"]: s for s in logs["steps"]}
    assert by_step["numbers"]["logs"].strip() == "making 4 numbers"
    assert by_step["total"]["logs"].strip() == "total is 10"
    assert Pipelines(served.admin).output(eid, "total") == 10  # 1 + 2 + 3 + 4


def test_parameters_are_converted_as_the_clis_and_defaults_fill_in(served: Live) -> None:
    dana = served.user("dana", ("data_scientist", f"{served.admin.project}/*"))
    with served.client(dana) as http:
        done = _run(http, served, n="5", explode="false")  # strings, as --param n=5
        no_body = http.post(f"{_base(served)}/pipelines/tiny/executions")
        assert no_body.status_code == 202, no_body.text
        defaults = _poll(http, no_body.json()["href"], _ended)
    assert done["parameters"]["n"] == 5 and done["parameters"]["explode"] is False
    assert Pipelines(served.admin).output(done["id"], "total") == 15
    assert defaults["parameters"]["n"] == 3
    assert Pipelines(served.admin).output(defaults["id"], "total") == 6


def test_a_failing_step_fails_the_execution_with_its_error_and_traceback(served: Live) -> None:
    dana = served.user("dana", ("data_scientist", f"{served.admin.project}/*"))
    with served.client(dana) as http:
        done = _run(http, served, explode=True)
        logs = http.get(
            f"{_base(served)}/executions/{done['id']}/logs", params={"step": "total"}
        ).json()
        unknown_step = http.get(
            f"{_base(served)}/executions/{done['id']}/logs", params={"step": "train"}
        )
    assert done["status"] == "failed"
    assert "total" in done["error"] and "exploded on purpose" in done["error"]
    steps = _steps(done)
    assert steps["numbers"]["status"] == "succeeded" and steps["hold"]["status"] == "succeeded"
    assert steps["total"]["status"] == "failed"
    assert steps["total"]["error"] == "ValueError: exploded on purpose"
    assert [s["step"] for s in logs["steps"]] == ["total"]
    assert "Traceback" in logs["steps"][0]["traceback"]
    assert "exploded on purpose" in logs["steps"][0]["traceback"]
    assert unknown_step.status_code == 404
    assert "'train'" in unknown_step.json()["error"]["message"]


def test_a_viewer_may_read_but_not_start(served: Live) -> None:
    project = served.admin.project
    with served.client(served.user("dana", ("data_scientist", f"{project}/*"))) as http:
        eid = _run(http, served)["id"]
    with served.client(served.user("vic", ("viewer", f"{project}/*"))) as http:
        assert http.get(f"{_base(served)}/pipelines").status_code == 200
        assert http.get(f"{_base(served)}/executions/{eid}").status_code == 200
        r = http.post(f"{_base(served)}/pipelines/tiny/executions", json={"parameters": {}})
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["type"] == "PermissionDenied" and "pipeline:run" in error["message"]
    assert [e.id for e in Pipelines(served.admin).executions("tiny")] == [eid]  # no new one


def test_a_pipeline_the_server_did_not_load_is_404_with_a_hint(served: Live) -> None:
    project = served.admin.project
    with served.client(served.user("dana", ("data_scientist", f"{project}/*"))) as http:
        r = http.post(f"{_base(served)}/pipelines/train/executions", json={})
        near = http.post(f"{_base(served)}/pipelines/tinny/executions", json={})
    assert r.status_code == 404
    assert "did not load" in r.json()["error"]["message"]
    assert "--pipeline" in r.json()["error"]["hint"]
    assert near.status_code == 404 and "'tiny'" in near.json()["error"]["hint"]
    # a stranger to the project learns nothing about what the server loaded
    served.admin.identity.create_project("elsewhere")
    with served.client(served.user("eve", ("owner", "elsewhere/*"))) as http:
        assert http.post(f"{_base(served)}/pipelines/train/executions").status_code == 403
        assert http.post(f"{_base(served)}/pipelines/tiny/executions").status_code == 403


@pytest.mark.parametrize(
    ("parameters", "field", "words"),
    [
        ({"n": "abc"}, "n", ["'n'", "int", "'abc'"]),
        ({"n": 2.5}, "n", ["'n'", "int"]),
        ({"wait": "maybe"}, "wait", ["'wait'", "bool"]),
        ({"bogus": 1}, "bogus", ["no parameter 'bogus'"]),
        ({"source": "/etc/passwd"}, "source", ["'source'", "path", "over HTTP"]),
        ({"scale": "nan"}, "scale", ["'scale'", "not finite"]),
        ({"scale": "-inf"}, "scale", ["'scale'", "not finite"]),
    ],
)
def test_a_bad_parameter_is_422_naming_it_and_nothing_runs(
    served: Live, parameters: dict[str, Any], field: str, words: list[str]
) -> None:
    dana = served.user("dana", ("data_scientist", f"{served.admin.project}/*"))
    with served.client(dana) as http:
        r = http.post(f"{_base(served)}/pipelines/tiny/executions", json={"parameters": parameters})
        listed = http.get(f"{_base(served)}/pipelines/tiny/executions")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == f"body.parameters.{field}"
    assert "--param" not in (error["hint"] or "")  # an HTTP caller's fix, not the CLI's
    for word in words:
        assert word in error["message"]
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert Pipelines(served.admin).list() == []  # not even registered


def test_a_malformed_body_is_422(served: Live) -> None:
    dana = served.user("dana", ("data_scientist", f"{served.admin.project}/*"))
    with served.client(dana) as http:
        r = http.post(f"{_base(served)}/pipelines/tiny/executions", json={"parameters": [1]})
        typed = http.post(
            f"{_base(served)}/pipelines/tiny/executions", json={"parameters": {"n": [1]}}
        )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "body.parameters"
    assert typed.status_code == 422
    assert typed.json()["error"]["hint"] == 'e.g. "parameters": {"n": 3}'


def test_run_as_the_runner_needs_principal_use(served: Live) -> None:
    project = served.admin.project
    runner = f"{project}-runner"
    dana = served.user("dana", ("data_scientist", f"{project}/*"))
    with served.client(dana) as http:
        denied = http.post(f"{_base(served)}/pipelines/tiny/executions", json={"run_as": "runner"})
        assert denied.status_code == 403
        assert "principal:use" in denied.json()["error"]["message"]
        served.admin.access.grant("dana", "principal:use", f"_principals/{runner}")
        r = http.post(f"{_base(served)}/pipelines/tiny/executions", json={"run_as": "runner"})
        assert r.status_code == 202, r.text
        done = _poll(http, r.json()["href"], _ended)
    assert done["status"] == "succeeded", done
    assert done["invoked_by"] == "dana" and done["run_as"] == runner


# -- reading -------------------------------------------------------------------------------
def test_a_loaded_pipeline_is_listed_and_described_before_it_ever_ran(served: Live) -> None:
    vic = served.user("vic", ("viewer", f"{served.admin.project}/*"))
    with served.client(vic) as http:
        listed = http.get(f"{_base(served)}/pipelines").json()
        described = http.get(f"{_base(served)}/pipelines/tiny").json()
        executions = http.get(f"{_base(served)}/pipelines/tiny/executions").json()
        missing = http.get(f"{_base(served)}/pipelines/train")
    assert listed == {
        "items": [
            {
                "name": "tiny",
                "description": "Add up the numbers 1 to n.",
                "version": None,
                "versions": 0,
                "steps": 3,
                "startable": True,
            }
        ],
        "next_cursor": None,
    }
    assert described["version"] is None and described["startable"] is True
    params = {p["name"]: p for p in described["parameters"]}
    assert params["n"] == {
        "name": "n",
        "type": "int",
        "required": False,
        "default": 3,
        "help": "how many numbers",
    }
    assert params["wait"]["type"] == "bool" and params["wait"]["default"] is False
    assert params["source"]["type"] == "path | None" and params["source"]["default"] is None
    steps = {s["name"]: s for s in described["steps"]}
    assert [s["name"] for s in described["steps"]] == ["numbers", "hold", "total"]
    assert steps["numbers"]["depends_on"] == [] and steps["total"]["depends_on"] == ["hold"]
    assert steps["hold"]["function"] == "tests.server.tiny_pipeline:hold"
    assert steps["hold"]["options"]["cache"] is False
    assert executions == {"items": [], "next_cursor": None}
    assert missing.status_code == 404


def test_executions_are_listed_newest_first_with_versions_and_cache_hits(served: Live) -> None:
    project = served.admin.project
    with served.client(served.user("dana", ("data_scientist", f"{project}/*"))) as http:
        first = _run(http, served)
        second = _run(http, served)
        third = _run(http, served, n=4)
        page1 = http.get(f"{_base(served)}/pipelines/tiny/executions", params={"limit": 2})
        page2 = http.get(
            f"{_base(served)}/pipelines/tiny/executions",
            params={"limit": 2, "cursor": page1.json()["next_cursor"]},
        )
        listed = http.get(f"{_base(served)}/pipelines").json()["items"]
        described = http.get(f"{_base(served)}/pipelines/tiny").json()
        bad_cursor = http.get(f"{_base(served)}/pipelines/tiny/executions", params={"cursor": "x"})
    assert [e["id"] for e in page1.json()["items"]] == [third["id"], second["id"]]
    assert page1.json()["next_cursor"] == "2"
    assert [e["id"] for e in page2.json()["items"]] == [first["id"]]
    assert page2.json()["next_cursor"] is None
    assert {e["status"] for e in page1.json()["items"]} == {"succeeded"}
    # numbers(n=3) is cached by the first run; hold and total have cache=False
    assert _steps(first)["numbers"]["cache_hit"] is False
    assert _steps(second)["numbers"]["cache_hit"] is True
    assert _steps(second)["hold"]["cache_hit"] is False
    assert _steps(third)["numbers"]["cache_hit"] is False  # n=4: another key
    assert listed[0]["version"] == 1 and listed[0]["versions"] == 1
    assert described["version"] == 1 and described["created_at"] is not None
    assert bad_cursor.status_code == 422


def test_graph_as_nodes_and_edges_with_an_executions_statuses(served: Live) -> None:
    project = served.admin.project
    with served.client(served.user("dana", ("data_scientist", f"{project}/*"))) as http:
        before = http.get(f"{_base(served)}/pipelines/tiny/graph").json()
        failed = _run(http, served, explode=True)
        after = http.get(
            f"{_base(served)}/pipelines/tiny/graph", params={"execution": failed["id"][:8]}
        ).json()
    assert [n["id"] for n in before["nodes"]] == ["numbers", "hold", "total"]
    assert [(e["source"], e["target"]) for e in before["edges"]] == [
        ("numbers", "hold"),
        ("hold", "total"),
    ]
    assert before["version"] is None and before["execution"] is None
    assert all(n["status"] is None for n in before["nodes"])
    assert before["mermaid"].startswith("flowchart TD")
    assert after["version"] == 1 and after["execution"] == failed["id"]
    assert {n["id"]: n["status"] for n in after["nodes"]} == {
        "numbers": "succeeded",
        "hold": "succeeded",
        "total": "failed",
    }
    assert "class s2 failed" in after["mermaid"]


def test_unknown_and_malformed_execution_ids(served: Live) -> None:
    dana = served.user("dana", ("data_scientist", f"{served.admin.project}/*"))
    with served.client(dana) as http:
        unknown = http.get(f"{_base(served)}/executions/{uuid.uuid4()}")
        malformed = http.get(f"{_base(served)}/executions/not-an-id!")
        short = http.get(f"{_base(served)}/executions/abc")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "ExecutionNotFound"
    assert malformed.status_code == 422 and short.status_code == 422


def test_executions_of_a_pipeline_one_may_not_describe_are_403(served: Live) -> None:
    project = served.admin.project
    with served.client(served.user("dana", ("data_scientist", f"{project}/*"))) as http:
        eid = _run(http, served)["id"]
    # olga may describe another pipeline only
    olga = served.user("olga", ("viewer", f"{project}/pipelines/other/*"))
    with served.client(olga) as http:
        assert http.get(f"{_base(served)}/executions/{eid}").status_code == 403
        assert http.get(f"{_base(served)}/executions/{eid}/logs").status_code == 403
        assert http.get(f"{_base(served)}/pipelines/tiny").status_code == 403
        assert http.get(f"{_base(served)}/pipelines").json()["items"] == []


# -- the Python hook and the loader --------------------------------------------------------
def test_pipelines_start_returns_once_the_execution_is_recorded(
    admin: trivet.Session, gate: None
) -> None:
    started = Pipelines(admin).start(tiny_pipeline.tiny, params={"wait": True})
    assert not started.done()
    row = Pipelines(admin).get_execution(started.id)
    assert row.status is ExecutionStatus.RUNNING
    with pytest.raises(TimeoutError):
        started.wait(timeout=0.05)
    tiny_pipeline.GATE.set()
    execution = started.wait(timeout=20)
    assert execution.id == started.id and execution.succeeded
    assert Pipelines(admin).get_execution(started.id).status is ExecutionStatus.SUCCEEDED
    assert Pipelines(admin).output(started.id, "total") == 6


def test_pipelines_start_checks_everything_before_recording(admin: trivet.Session) -> None:
    with pytest.raises(PipelineDefinitionError, match="'n'"):
        Pipelines(admin).start(tiny_pipeline.tiny, params={"n": "abc"})
    with pytest.raises(ValidationError, match="max_parallel"):
        Pipelines(admin).start(tiny_pipeline.tiny, max_parallel=0)
    assert Pipelines(admin).executions() == []


def test_load_startable_takes_modules_and_files_and_refuses_clashes() -> None:
    assert load_startable([TARGET]) == {"tiny": tiny_pipeline.tiny}
    from_file = load_startable([FILE_TARGET])
    assert list(from_file) == ["tiny"] and from_file["tiny"].name == "tiny"
    with pytest.raises(ValidationError, match="'tiny'"):
        load_startable([TARGET, FILE_TARGET])  # two different pipelines named tiny
    with pytest.raises(NotFound):
        load_startable(["tests.server.tiny_pipeline:nothing"])


def test_the_server_does_not_start_with_a_pipeline_that_does_not_load(
    workspace: Settings,
) -> None:
    from trivet.server import create_app

    with pytest.raises(NotFound, match="no_such_module"):
        create_app(workspace, pipelines=["no_such_module:train"])


# -- approvals -------------------------------------------------------------------------------
@pytest.fixture
def signing(workspace: Settings, admin: trivet.Session) -> Iterator[Live]:
    """A server that loaded the ``signed`` pipeline (an approval step before ``total``)."""
    with serving(workspace, admin, pipelines=["tests.server.tiny_pipeline:signed"]) as live:
        yield live


def test_an_approval_is_listed_decided_over_http_and_the_run_goes_on(signing: Live) -> None:
    base, project = _base(signing), signing.admin.project
    dana = signing.user("dana", ("data_scientist", f"{project}/*"))
    rita = signing.user("rita", ("approver", f"{project}/*"))
    with signing.client(dana) as http:
        r = http.post(f"{base}/pipelines/signed/executions", json={"parameters": {"n": 4}})
        assert r.status_code == 202, r.text
        eid, href = r.json()["id"], r.json()["href"]
        body = _poll(http, href, lambda b: _steps(b)["approval"]["status"] == "waiting")
        assert body["status"] == "running" and _steps(body)["total"]["status"] == "pending"
        listed = http.get(f"{base}/approvals").json()["items"]
        assert [(a["execution"], a["step"], a["message"]) for a in listed] == [
            (eid, "approval", "Add up the numbers to 4?")
        ]
        assert listed[0]["decision"] is None and listed[0]["expires_at"] is not None
        url = f"{base}/executions/{eid}/approvals/approval"
        refused = http.post(f"{url}/approve", json={"comment": "mine"})
        assert refused.status_code == 403  # dana started it; she may not sign it off
        assert "pipeline:approve" in refused.json()["error"]["message"]
    with signing.client(rita) as http:
        r = http.post(f"{url}/approve", json={"comment": "checked"})
        assert r.status_code == 200, r.text
        assert r.json()["decision"] == "approved" and r.json()["decided_by"] == "rita"
        done = _poll(http, href, _ended)
        assert done["status"] == "succeeded" and _steps(done)["total"]["status"] == "succeeded"
        again = http.post(f"{url}/reject")
        assert again.status_code == 409 and "already approved by rita" in again.text
        missing = http.post(f"{base}/executions/{eid}/approvals/aproval/approve")
        assert missing.status_code == 404 and "did you mean 'approval'" in missing.text
        assert http.get(f"{base}/approvals").json()["items"] == []
        decided = http.get(f"{base}/approvals", params={"decided": "true", "execution": eid[:8]})
        [record] = decided.json()["items"]
        assert (record["decision"], record["comment"]) == ("approved", "checked")
    assert Pipelines(signing.admin).output(eid, "total") == 10
