"""The web console over plain HTTP: sign-in, cookies, CSRF, headers, pages and denials.

One real server per module over the scenario of ``console_scenario``; a test that
decides on a model version registers a fresh pending version of its own.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.console_scenario import (
    Scenario,
    csrf_in,
    pending_version,
    running,
    sign_in,
)
from tests.server.live import Live
from trivet._web._auth import safe_next
from trivet._web._svg import layers

PAGES = [
    "/",
    "/feature-groups",
    "/feature-groups/customers",
    "/pipelines",
    "/pipelines/tiny",
    "/models",
    "/models/scorer",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, Scenario]]:
    with running(tmp_path_factory.mktemp("console")) as started:
        yield started


@pytest.fixture(scope="module")
def live(site: tuple[Live, Scenario]) -> Live:
    return site[0]


@pytest.fixture(scope="module")
def sc(site: tuple[Live, Scenario]) -> Scenario:
    return site[1]


def text_of(page: str) -> str:
    """The page's visible text, tags dropped and whitespace folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# -- sign-in ---------------------------------------------------------------------------------
def test_pages_redirect_to_sign_in_keeping_where_you_were(live: Live, sc: Scenario) -> None:
    with live.client() as http:
        for path in [*PAGES, f"/executions/{sc.execution_id}", f"/reports/{sc.report_digest}"]:
            r = http.get(path)
            assert r.status_code == 303, path
            expected = "/login" if path == "/" else "/login?next="
            assert r.headers["location"].startswith(expected), path
        r = http.get("/models/scorer?project=default")
    assert r.headers["location"] == "/login?next=%2Fmodels%2Fscorer%3Fproject%3Ddefault"


def test_an_empty_cookie_never_signs_in_as_the_workspace_owner(live: Live) -> None:
    # the SDK falls back to the OS user (the admin) without a token: the console must not
    with live.client() as http:
        for value in ("", '""', '" "'):
            r = http.get("/", headers={"Cookie": f"trivet_session={value}"})
            assert r.status_code == 303, repr(value)
            assert r.headers["location"].startswith("/login")


def test_sign_in_sets_a_strict_http_only_cookie_and_goes_to_next(live: Live, sc: Scenario) -> None:
    with live.client() as http:
        form = http.get("/login", params={"next": "/pipelines/tiny"})
        assert form.status_code == 200
        assert 'name="next" value="/pipelines/tiny"' in form.text
        r = http.post(
            "/login",
            data={"csrf": csrf_in(form.text), "token": sc.tokens["vic"], "next": "/pipelines/tiny"},
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/pipelines/tiny"
        cookie = next(
            c for c in r.headers.get_list("set-cookie") if c.startswith("trivet_session=")
        )
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=strict"} <= attributes
        assert "secure" not in attributes  # plain http on loopback
        assert sc.tokens["vic"] in cookie
        page = http.get("/")
    assert page.status_code == 200
    assert "Signed in as vic (user)" in text_of(page.text)


def test_a_bad_token_is_refused_on_the_form_without_a_cookie(live: Live, sc: Scenario) -> None:
    forged = sc.tokens["vic"][:-1] + ("A" if sc.tokens["vic"][-1] != "A" else "B")
    with live.client() as http:
        form = http.get("/login")
        r = http.post("/login", data={"csrf": csrf_in(form.text), "token": forged})
        empty = http.post("/login", data={"csrf": csrf_in(r.text), "token": "  "})
    assert r.status_code == 401
    assert not any(c.startswith("trivet_session=") for c in r.headers.get_list("set-cookie"))
    assert forged not in r.text
    assert 'role="alert"' in r.text
    assert empty.status_code == 422
    assert "Paste an API token." in empty.text


def test_the_sign_in_form_needs_its_own_csrf_pair(live: Live, sc: Scenario) -> None:
    # login CSRF: a foreign page cannot sign a browser in as the attacker
    with live.client() as http:
        no_cookie = http.post("/login", data={"csrf": "x", "token": sc.tokens["vic"]})
        form = http.get("/login")
        wrong = http.post("/login", data={"csrf": "0" * 64, "token": sc.tokens["vic"]})
        other_site = http.post(
            "/login",
            data={"csrf": csrf_in(form.text), "token": sc.tokens["vic"]},
            headers={"Origin": "https://evil.example"},
        )
    for r in (no_cookie, wrong, other_site):
        assert r.status_code == 403
        assert "<h1>Forbidden</h1>" in r.text
        assert "trivet_session=" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/models/scorer?project=default", "/models/scorer?project=default"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("models", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        (None, "/"),
    ],
)
def test_next_is_only_ever_a_path_on_this_site(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_sign_in_never_redirects_off_site(live: Live, sc: Scenario) -> None:
    with live.client() as http:
        form = http.get("/login")
        r = http.post(
            "/login",
            data={"csrf": csrf_in(form.text), "token": sc.tokens["vic"], "next": "//evil.example"},
        )
    assert r.headers["location"] == "/"


def test_sign_out_needs_the_csrf_token_and_forgets_the_cookie(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        page = http.get("/")
        refused = http.post("/logout", data={})
        assert refused.status_code == 403
        assert http.get("/").status_code == 200  # still signed in
        r = http.post("/logout", data={"csrf": csrf_in(page.text)})
        assert r.status_code == 303
        assert r.headers["location"] == "/login"
        assert http.get("/").status_code == 303


def test_a_revoked_token_signs_the_browser_out(live: Live) -> None:
    token = live.user("tim", ("viewer", f"{live.admin.project}/*"))
    with sign_in(live, token) as http:
        assert http.get("/").status_code == 200
        live.admin.identity.revoke_token(live.admin.identity.list_tokens("tim")[0].prefix)
        r = http.get("/models")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fmodels&expired=1"
    assert 'trivet_session=""' in r.headers["set-cookie"]


# -- headers ---------------------------------------------------------------------------------
def test_every_console_response_carries_the_security_headers(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        responses = [http.get(p) for p in PAGES]
        responses += [http.get("/feature-groups/nope"), http.get("/static/console.css")]
    with live.client() as anonymous:
        responses += [anonymous.get("/login"), anonymous.get("/")]
    for r in responses:
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp, r.url
        assert "script-src 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert responses[0].headers["cache-control"] == "no-store"


def test_pages_use_no_inline_script_or_style_and_no_external_asset(
    live: Live, sc: Scenario
) -> None:
    with sign_in(live, sc.tokens["dana"]) as http:
        pages = [http.get(p).text for p in PAGES]
        pages.append(http.get(f"/executions/{sc.execution_id}").text)
    for page in pages:
        assert "<script" not in page
        assert " style=" not in page
        assert "<style" not in page
        assert not re.search(r'(src|href)="(https?:)?//', page)


def test_console_routes_stay_out_of_the_api_schema(live: Live) -> None:
    with live.client() as http:
        paths = http.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith("/v1/")]


# -- pages -----------------------------------------------------------------------------------
def test_dashboard_counts_and_recent_executions(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        page = text_of(http.get("/").text)
    assert "1 Feature groups 1 Pipelines 1 Model groups" in page
    assert "Recent executions" in page
    assert sc.execution_id[:12] in page
    assert "tiny v1 succeeded" in page


def test_feature_group_page_shows_schema_and_statistics(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["dana"]) as http:
        r = http.get("/feature-groups/customers")
    assert r.status_code == 200
    page = text_of(r.text)
    assert "age int age in years" in page
    assert "income float unit=EUR" in page
    assert "segment string market segment" in page
    assert "30 d" in page and "pii" in page and "credit" in page
    assert "40 records" in page
    # age: 40 records, 8 values (20, 25, ..., 55) five times each; mean (20 + 55) / 2
    assert "age int 40 0 8 20 55 37.5" in page
    row = r.text.split('id="stat-age"')[1].split("</tr>")[0]
    assert row.count("<rect") == 20  # 20 equal bins from 20 to 55, 1.75 wide
    bars = re.findall(r"<title>\[([^,]+), ([^)]+)\): (\d+)</title>", row)
    assert len(bars) == 20
    filled = [(lo, n) for lo, _, n in bars if n != "0"]
    # 20 → bin 0, 25 → bin 2 (5/1.75 = 2.86), 30 → 5, 35 → 8, 40 → 11, 45 → 14, 50 → 17, 55 → last
    assert filled == [
        ("20", "5"),
        ("23.5", "5"),
        ("28.75", "5"),
        ("34", "5"),
        ("39.25", "5"),
        ("44.5", "5"),
        ("49.75", "5"),
        ("53.25", "5"),
    ]
    segment = r.text.split('id="stat-segment"')[1].split("</tr>")[0]
    assert re.findall(r"<title>([^<]+)</title>", segment) == [
        "retail: 25",
        "business: 10",
        "private: 5",
    ]


def test_statistics_are_unavailable_to_who_may_not_read_offline_data(
    live: Live, sc: Scenario
) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        r = http.get("/feature-groups/customers")
    assert r.status_code == 200
    assert "age in years" in r.text  # the schema is there
    assert "Statistics unavailable" in r.text
    assert "feature:read_offline" in r.text
    assert 'class="hist"' not in r.text


def test_feature_catalog_search(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        found = text_of(http.get("/feature-groups", params={"q": "segment"}).text)
        missing = text_of(http.get("/feature-groups", params={"q": "nothing-like-it"}).text)
    assert "customers customer profile 3" in found
    assert "No feature group matches." in missing


def test_pipeline_page_draws_the_dag_in_layers(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        r = http.get("/pipelines/tiny")
    assert r.status_code == 200
    svg = r.text.split('<svg class="dag"')[1].split("</svg>")[0]
    assert svg.count('<g class="node') == 4
    assert svg.count('<path class="edge') == 4  # load→double, load→square, double→total, …
    x = {
        name: float(pos)
        for pos, name in re.findall(
            r'<rect x="([\d.]+)" y="[\d.]+" width="160"[^>]*/>'
            r"<text[^>]*>(\w+)</text>",
            svg,
        )
    }
    assert x["load"] < x["double"] == x["square"] < x["total"]
    assert sc.execution_id[:12] in r.text


def test_layers_are_longest_paths() -> None:
    steps = [
        {"name": "a", "depends_on": []},
        {"name": "b", "depends_on": ["a"]},
        {"name": "c", "depends_on": ["b"]},
        {"name": "d", "depends_on": ["a", "c"]},  # longest path a→b→c→d
        {"name": "e", "depends_on": []},
    ]
    assert layers(steps) == [["a", "e"], ["b"], ["c"], ["d"]]


def test_execution_page_lists_steps_with_status_and_timing(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        r = http.get(f"/executions/{sc.execution_id}")
        prefix = http.get(f"/executions/{sc.execution_id[:8]}")
    assert r.status_code == 200
    page = text_of(r.text)
    for name in ("load", "double", "square", "total"):
        assert re.search(
            rf"{name} succeeded \d{{4}}-\d\d-\d\d [\d:]+ UTC [\d.]+ (ms|s) miss 1", page
        )
    assert "squaring 4 numbers" in page  # the step's log
    assert r.text.count('<rect class="bar st-succeeded') == 4  # the timing chart
    assert "n=4" in page
    assert prefix.status_code == 200


def test_model_page_offers_the_decision_only_to_a_reviewer(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["rita"]) as rita, sign_in(live, sc.tokens["vic"]) as vic:
        for_rita = rita.get("/models/scorer").text
        for_vic = vic.get("/models/scorer").text
    assert 'value="approve"' in for_rita and 'name="justification"' in for_rita
    assert 'value="approve"' not in for_vic and "<textarea" not in for_vic
    assert f"/reports/{sc.report_digest}" in for_vic
    assert "auc=0.81" in text_of(for_vic)


def test_approve_through_the_form(live: Live, sc: Scenario) -> None:
    version = pending_version(live)
    with sign_in(live, sc.tokens["rita"]) as http:
        csrf = csrf_in(http.get("/models/scorer").text)
        r = http.post(
            f"/models/scorer/versions/{version}/decision",
            data={"csrf": csrf, "decision": "approve", "justification": "DI within bounds"},
        )
        assert r.status_code == 303
        assert r.headers["location"] == f"/models/scorer?done=approved%3A{version}"
        page = text_of(http.get(r.headers["location"]).text)
    assert f"Version {version} approved." in page
    assert "Approved by rita" in page and "DI within bounds" in page
    decided = live.admin.registry.get("scorer", version)
    assert decided.status.value == "Approved"
    assert decided.decided_by == "rita"
    assert decided.decision_reason == "DI within bounds"


def test_reject_needs_a_justification(live: Live, sc: Scenario) -> None:
    version = pending_version(live)
    with sign_in(live, sc.tokens["rita"]) as http:
        csrf = csrf_in(http.get("/models/scorer").text)
        url = f"/models/scorer/versions/{version}/decision"
        empty = http.post(url, data={"csrf": csrf, "decision": "reject", "justification": " "})
        odd = http.post(url, data={"csrf": csrf, "decision": "maybe", "justification": "x"})
        ok = http.post(url, data={"csrf": csrf, "decision": "reject", "justification": "AUC low"})
        again = http.post(url, data={"csrf": csrf, "decision": "approve", "justification": "x"})
    assert empty.status_code == 422
    assert "justification" in empty.text.lower()
    assert odd.status_code == 422
    assert "neither &#39;approve&#39; nor &#39;reject&#39;" in odd.text
    assert ok.status_code == 303
    assert again.status_code == 409  # decided already
    assert live.admin.registry.get("scorer", version).status.value == "Rejected"


def test_a_post_without_or_with_a_foreign_csrf_token_is_refused(live: Live, sc: Scenario) -> None:
    version = pending_version(live)
    url = f"/models/scorer/versions/{version}/decision"
    with sign_in(live, sc.tokens["rita"]) as rita, sign_in(live, sc.tokens["dana"]) as dana:
        daras_token = csrf_in(dana.get("/").text)
        rita_token = csrf_in(rita.get("/").text)
        body = {"decision": "approve", "justification": "fine"}
        missing = rita.post(url, data=body)
        foreign = rita.post(url, data={**body, "csrf": daras_token})
        cross_site = rita.post(
            url, data={**body, "csrf": rita_token}, headers={"Origin": "http://evil.example"}
        )
        as_json = rita.post(url, json={**body, "csrf": rita_token})
    for r in (missing, foreign, cross_site):
        assert r.status_code == 403
        assert "security token" in r.text
    assert as_json.status_code == 422
    assert live.admin.registry.get("scorer", version).status.value == "PendingManualApproval"


def test_a_forged_decision_by_a_viewer_is_the_platforms_403(live: Live, sc: Scenario) -> None:
    version = pending_version(live)
    with sign_in(live, sc.tokens["vic"]) as http:
        csrf = csrf_in(http.get("/").text)  # vic's own, valid CSRF token
        r = http.post(
            f"/models/scorer/versions/{version}/decision",
            data={"csrf": csrf, "decision": "approve", "justification": "sure"},
        )
    assert r.status_code == 403
    page = text_of(r.text)
    assert "'vic' may not model:approve" in page
    assert "Hint:" in page
    assert "Traceback" not in r.text
    assert live.admin.registry.get("scorer", version).status.value == "PendingManualApproval"


def test_a_page_outside_your_grants_is_the_403_page(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["fay"]) as http:
        allowed = http.get("/feature-groups/customers")
        models = http.get("/models")
        model = http.get("/models/scorer")
        execution = http.get(f"/executions/{sc.execution_id}")
    assert allowed.status_code == 200
    for r in (models, model, execution):
        assert r.status_code == 403
        assert "<h1>Forbidden</h1>" in r.text
        assert "fay" in r.text


def test_unknown_and_invalid_names_render_error_pages(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        missing = http.get("/feature-groups/nope")
        invalid = http.get("/models/Not%20A%20Name")
        execution = http.get("/executions/zzzz")
        report = http.get("/reports/not-hex")
        project = http.get("/", params={"project": "nowhere"})
    assert missing.status_code == 404
    assert "<h1>Not found</h1>" in missing.text and "nope" in missing.text
    assert invalid.status_code == 422
    assert "is not valid" in invalid.text
    assert execution.status_code == 404
    assert report.status_code == 404
    assert project.status_code == 422
    assert "nowhere" in project.text


def test_report_page_frames_the_stored_report_under_a_sandbox(live: Live, sc: Scenario) -> None:
    with sign_in(live, sc.tokens["vic"]) as http:
        page = http.get(f"/reports/{sc.report_digest}")
        inner = http.get(f"/reports/{sc.report_digest}/html")
    assert page.status_code == 200
    assert f'src="/reports/{sc.report_digest}/html"' in page.text
    assert "sandbox" in page.text.split("<iframe")[1].split(">")[0]
    assert inner.status_code == 200
    assert inner.text.lstrip().lower().startswith("<!doctype html")
    csp = inner.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "frame-ancestors 'self'" in csp
    assert "script" not in csp
    assert inner.headers["x-frame-options"] == "SAMEORIGIN"


def test_the_api_keeps_its_json_errors(live: Live) -> None:
    with live.client() as http:
        r = http.get("/v1/whoami")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "NotAuthenticated"


def test_templates_ship_in_the_package() -> None:
    import trivet._web

    folder = Path(trivet._web.__file__).parent
    names = {p.name for p in (folder / "templates").iterdir()}
    assert {"base.html", "error.html", "login.html", "model.html"} <= names
    assert (folder / "static" / "console.css").is_file()


def test_text_from_the_catalog_is_escaped(live: Live, sc: Scenario) -> None:
    live.admin.registry.create_group("xss", description='<img src=x onerror="alert(1)">')
    with sign_in(live, sc.tokens["vic"]) as http:
        page = http.get("/models/xss").text
        listing = http.get("/models").text
    for text in (page, listing):
        assert "<img src=x" not in text
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in text


def test_timing_chart_leaves_steps_that_did_not_run_without_a_bar() -> None:
    from trivet._web._svg import Bar, timing_svg

    svg = str(
        timing_svg(
            [
                Bar(name="a", status="succeeded", start=0.0, seconds=2.0),
                Bar(name="b", status="succeeded", start=2.0, seconds=0.0, cache_hit=True),
                Bar(name="c", status="skipped", start=None, seconds=None),
            ],
            width=400,
        )
    )
    rects = re.findall(r'<rect class="([^"]+)" x="([\d.]+)" y="\d+" width="([\d.]+)"', svg)
    # plot width 400 - 170 - 90 = 140 px for 2 s: a spans all of it, b sits at its end
    assert rects == [("bar st-succeeded", "170", "140"), ("bar st-succeeded cached", "310", "1.5")]
    assert "skipped" in svg
    assert "0 ms (cache hit)" in svg


def test_a_waiting_approval_is_decided_on_the_execution_page(live: Live, sc: Scenario) -> None:
    from tests.server.console_scenario import signed
    from trivet.pipelines import Pipelines

    started = Pipelines(live.admin).start(signed)
    pipes = Pipelines(live.admin)
    deadline = time.monotonic() + 30
    while not pipes.approvals(started.id):
        assert time.monotonic() < deadline, "the approval step never waited"
        time.sleep(0.05)
    url = f"/executions/{started.id}"
    with sign_in(live, sc.tokens["dana"]) as dana, sign_in(live, sc.tokens["rita"]) as rita:
        for_dana = dana.get(url).text
        for_rita = rita.get(url).text
        assert "Double 2 numbers?" in text_of(for_dana)
        assert 'value="approve"' not in for_dana  # a data scientist may not sign off
        assert 'value="approve"' in for_rita and 'name="comment"' in for_rita
        decision = f"{url}/approvals/approval/decision"
        forged = dana.post(decision, data={"csrf": csrf_in(for_dana), "decision": "approve"})
        assert forged.status_code == 403 and "pipeline:approve" in html.unescape(forged.text)
        r = rita.post(
            decision, data={"csrf": csrf_in(for_rita), "decision": "approve", "comment": "ok"}
        )
        assert r.status_code == 303
        assert r.headers["location"] == f"{url}?done=approved%3Aapproval"
        assert "Step approval approved." in text_of(rita.get(r.headers["location"]).text)
        done = started.wait(timeout=30)
        assert done.succeeded, done.error
        page = text_of(rita.get(url).text)
    assert "Decision approved by rita at" in page
    assert 'value="approve"' not in page  # decided: no form any more
