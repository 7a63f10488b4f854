"""Every API route refuses a request without a token (401) and a stranger's token (403).

The routes are enumerated from the server's OpenAPI document, so a new route is
covered the day it is added; a route that takes a body needs an example body below, or
this test fails and says so.
"""

from __future__ import annotations

import re
from typing import Any

from tests.server.live import Live

# A valid body for each route that takes one, so that the request reaches the
# authorization check instead of stopping at validation (422).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/projects/{project}/models/{name}/versions/{version}/approve"): {
        "justification": "ok"
    },
    ("POST", "/v1/projects/{project}/models/{name}/versions/{version}/reject"): {
        "justification": "no"
    },
    ("POST", "/v1/projects/{project}/records:batch-get"): {
        "requests": [{"group": "credit", "id": "42"}]
    },
    ("PUT", "/v1/projects/{project}/feature-groups/{name}/records"): {"record": {"id": "42"}},
    ("POST", "/v1/projects/{project}/pipelines/{name}/executions"): {"parameters": {}},
    ("POST", "/v1/projects/{project}/models/{name}/predict"): {"instances": [{"x": 1.0}]},
    ("POST", "/v1/projects/{project}/executions/{execution_id}/approvals/{step}/approve"): {
        "comment": "ok"
    },
    ("POST", "/v1/projects/{project}/executions/{execution_id}/approvals/{step}/reject"): {
        "comment": "no"
    },
}

# Routes any authenticated principal may call.
OPEN_TO_ANY_PRINCIPAL = {("GET", "/v1/whoami")}

# Values for path parameters: real-looking names that need not exist — a stranger must be
# refused before the server says whether the thing exists.
PATH_VALUES = {
    "name": "credit",
    "version": "1",
    "record_id": "42",
    "execution_id": "0123456789abcdef0123456789abcdef",
    "digest": "ab" * 32,
    "step": "train",
}


def _routes(live: Live) -> list[tuple[str, str]]:
    """Every (method, path) the server documents in its OpenAPI."""
    with live.client() as http:
        spec = http.get("/openapi.json").json()
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops]


def _url(path: str, project: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "project":
            return project
        assert name in PATH_VALUES, f"add a value for the path parameter {name!r} to PATH_VALUES"
        return PATH_VALUES[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def _call(live: Live, token: str | None, method: str, path: str, project: str) -> Any:
    body = BODIES.get((method, path))
    with live.client(token) as http:
        return http.request(method, _url(path, project), json=body)


def test_routes_are_enumerated(live: Live) -> None:
    routes = _routes(live)
    assert ("GET", "/v1/whoami") in routes
    assert len(routes) >= 9


def test_every_route_needs_a_token(live: Live) -> None:
    project = live.admin.project
    for method, path in _routes(live):
        r = _call(live, None, method, path, project)
        assert r.status_code == 401, f"{method} {path}: {r.status_code} {r.text}"
        assert r.json()["error"]["type"] == "NotAuthenticated"


def test_every_route_refuses_a_principal_without_the_permission(live: Live) -> None:
    project = live.admin.project
    live.admin.identity.create_project("elsewhere")
    # eve is an owner — of another project; here she holds nothing
    stranger = live.user("eve", ("owner", "elsewhere/*"))
    missing_bodies = [
        (m, p) for m, p in _routes(live) if m in ("POST", "PUT", "PATCH") and (m, p) not in BODIES
    ]
    assert not missing_bodies, f"add example bodies to BODIES for {missing_bodies}"
    for method, path in _routes(live):
        r = _call(live, stranger, method, path, project)
        if (method, path) in OPEN_TO_ANY_PRINCIPAL:
            assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
            continue
        assert r.status_code == 403, f"{method} {path}: {r.status_code} {r.text}"
        assert r.json()["error"]["type"] == "PermissionDenied"
