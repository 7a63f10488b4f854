"""The platform's routes over a real server: auth, errors, registry approvals, audit."""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tests.server.live import Live


def _model() -> LogisticRegression:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    return LogisticRegression().fit(x, [0, 0, 1, 1])


def test_no_token_is_401_with_a_json_error_and_a_challenge(live: Live) -> None:
    with live.client() as http:
        r = http.get("/v1/whoami")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    body = r.json()["error"]
    assert body["type"] == "NotAuthenticated"
    assert "bearer token" in body["message"]
    assert "Authorization: Bearer" in body["hint"]


def test_bad_and_forged_tokens_are_401_and_never_echoed(live: Live) -> None:
    real = live.user("ann")
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")  # checksum no longer matches
    for token in ("nonsense", forged):
        with live.client(token) as http:
            r = http.get("/v1/whoami")
        assert r.status_code == 401, token
        assert token not in r.text


def test_whoami_names_the_tokens_principal(live: Live) -> None:
    with live.client(live.user("ann")) as http:
        r = http.get("/v1/whoami")
    assert r.status_code == 200
    assert r.json()["name"] == "ann"
    assert r.json()["kind"] == "user"


def test_a_revoked_token_stops_working_on_the_next_request(live: Live) -> None:
    token = live.user("ann")
    with live.client(token) as http:
        assert http.get("/v1/whoami").status_code == 200
        prefix = live.admin.identity.list_tokens("ann")[0].prefix
        live.admin.identity.revoke_token(prefix)
        r = http.get("/v1/whoami")
    assert r.status_code == 401
    assert "revoked" in r.json()["error"]["message"]


def test_an_expired_token_is_refused(live: Live) -> None:
    live.admin.identity.create_user("ann")
    new = live.admin.identity.create_token("ann", expires_in=dt.timedelta(seconds=1))
    with live.client(new.secret) as http:
        assert http.get("/v1/whoami").status_code == 200
        time.sleep(1.1)
        assert http.get("/v1/whoami").status_code == 401


def test_approve_flow_over_http(live: Live) -> None:
    project = live.admin.project
    live.admin.registry.register("credit", _model())
    scientist = live.user("dana", ("data_scientist", f"{project}/*"))
    reviewer = live.user("rita", ("approver", f"{project}/*"))
    base = f"/v1/projects/{project}/models/credit/versions"
    with live.client(scientist) as dana, live.client(reviewer) as rita:
        listed = dana.get(base)
        assert listed.status_code == 200
        assert [v["status"] for v in listed.json()["items"]] == ["PendingManualApproval"]
        # the data scientist may look but not approve — 403, and the version is unchanged
        denied = dana.post(f"{base}/1/approve", json={"justification": "looks fine"})
        assert denied.status_code == 403
        assert denied.json()["error"]["type"] == "PermissionDenied"
        assert "model:approve" in denied.json()["error"]["message"]
        # a justification is required: 422 names the field
        empty = rita.post(f"{base}/1/approve", json={"justification": ""})
        assert empty.status_code == 422
        assert empty.json()["error"]["field"] == "body.justification"
        ok = rita.post(f"{base}/1/approve", json={"justification": "DPPL within bounds"})
        assert ok.status_code == 200
        assert ok.json()["status"] == "Approved"
        assert ok.json()["decided_by"] == "rita"
        assert ok.json()["decision_reason"] == "DPPL within bounds"
        # deciding twice conflicts with the version's state
        again = rita.post(f"{base}/1/reject", json={"justification": "changed my mind"})
        assert again.status_code == 409
    assert live.admin.registry.get("credit", 1).status.value == "Approved"
    rows = [r for r in live.admin.registry.versions("credit")]
    assert rows[0].decided_by == "rita"


def test_unknown_model_is_404_for_someone_allowed_to_look(live: Live) -> None:
    project = live.admin.project
    token = live.user("dana", ("viewer", f"{project}/*"))
    with live.client(token) as http:
        r = http.get(f"/v1/projects/{project}/models/nope")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "NotFound"


def test_lists_page_with_a_cursor(live: Live) -> None:
    project = live.admin.project
    for i in range(5):
        live.admin.registry.create_group(f"m{i}")
    with live.client(live.user("v", ("viewer", f"{project}/*"))) as http:
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = http.get(f"/v1/projects/{project}/models", params=params).json()
            seen += [g["name"] for g in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        bad = http.get(f"/v1/projects/{project}/models", params={"cursor": "x"})
    assert seen == [f"m{i}" for i in range(5)]
    assert pages == 3
    assert bad.status_code == 422


def test_a_stranger_to_the_project_is_denied_the_listing(live: Live) -> None:
    project = live.admin.project
    live.admin.registry.create_group("m")
    live.admin.identity.create_project("other")
    token = live.user("eve", ("viewer", "other/*"))
    with live.client(token) as http:
        r = http.get(f"/v1/projects/{project}/models")
    assert r.status_code == 403, r.text


def test_audit_needs_audit_read_and_pages_newest_first(live: Live) -> None:
    project = live.admin.project
    viewer = live.user("v", ("viewer", f"{project}/*"))
    auditor = live.user("aud", ("audit:read", "_audit"))
    with live.client(viewer) as http:
        assert http.get("/v1/audit").status_code == 403
    with live.client(auditor) as http:
        first = http.get("/v1/audit", params={"limit": 3}).json()
        second = http.get("/v1/audit", params={"limit": 3, "cursor": first["next_cursor"]}).json()
        verify = http.get("/v1/audit/verify").json()
    seqs = [r["seq"] for r in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == 6
    # the viewer's denial is in the log, attributed to them
    assert any(r["actor"] == "v" and r["outcome"] == "denied" for r in first["items"])
    assert verify["ok"] is True


def test_unknown_route_and_method_are_json_errors(live: Live) -> None:
    with live.client(live.user("ann")) as http:
        missing = http.get("/v1/nothing-here")
        wrong = http.delete("/v1/whoami")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "NotFound"
    assert wrong.status_code == 405


def test_the_access_log_names_requests_without_secrets_or_record_ids(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trivet.access")
    token = live.user("ann")
    project = live.admin.project
    with live.client(token) as http:
        http.get("/v1/whoami", params={"token": token})
        http.get(f"/v1/projects/{project}/feature-groups/people/records/alice-1956")
    lines: list[str] = []
    deadline = time.monotonic() + 5  # the line is written just after the response is sent
    while len(lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
        lines = [r.getMessage() for r in caplog.records if r.name == "trivet.access"]
    assert any("GET /v1/whoami 200" in line for line in lines), lines
    assert any("/feature-groups/people/records/… 40" in line for line in lines), lines
    text = "\n".join(lines)
    assert token not in text and "alice-1956" not in text


def test_the_session_pool_never_falls_back_to_the_os_user_admin(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trivet.errors import NotAuthenticated
    from trivet.platform.http import SessionPool
    from trivet.server import _open

    admin_token = live.admin.identity.create_token().secret
    monkeypatch.setenv("TRIVET_TOKEN", admin_token)  # even with one in the environment
    pool = SessionPool(live.admin.settings, _open)
    for empty in ("", "   "):
        with pytest.raises(NotAuthenticated):
            pool.get(empty, None)
    with live.client() as http:
        r = http.get("/v1/whoami", headers={"Authorization": "Bearer"})
    assert r.status_code == 401
