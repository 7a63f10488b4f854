"""The web console in a real headless Chromium (Debian's), driven by Playwright.

Sign in with a token, open a feature group, open a pipeline execution, approve a model
version and reject a waiting approval step as a reviewer, and see a viewer denied; CSRF
refuses a POST without its token. One screenshot per page goes to
``test-output/screenshots/``. Chromium is Debian's ``/usr/bin/chromium`` (no browser
download); without it these tests skip, or fail when ``CI`` is set.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import service_missing
from tests.server.console_scenario import Scenario, pending_version, running
from tests.server.live import Live

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_missing("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, Scenario]]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running(tmp_path_factory.mktemp("browser")) as started:
        yield started


class Csp:
    """Collects the Content-Security-Policy violations a page reports on its console."""

    def __init__(self, page: Page) -> None:
        self.violations: list[str] = []
        page.on("console", self._seen)

    def _seen(self, message: object) -> None:
        text = str(getattr(message, "text", ""))
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.violations.append(text)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1366, "height": 860})
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


def sign_in(page: Page, live: Live, token: str, path: str = "/") -> None:
    """Open ``path``, get sent to the sign-in form, paste the token, and come back."""
    page.goto(live.url + path)
    assert "/login" in page.url
    page.fill("#token", token)
    page.click("button:text-is('Sign in')")
    page.wait_for_url(re.compile(re.escape(live.url + path.split("?")[0]) + r"(\?.*)?$"))


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_sign_in_with_a_token(context: BrowserContext, site: tuple[Live, Scenario]) -> None:
    live, sc = site
    page = context.new_page()
    csp = Csp(page)
    page.goto(live.url + "/feature-groups")
    assert page.url == live.url + "/login?next=%2Ffeature-groups"
    page.fill("#token", "trv_usr_not-a-real-token")
    page.click("button:text-is('Sign in')")
    page.locator("p.error").wait_for()  # refused on the form, with the reason
    assert "token" in page.locator("p.error").inner_text().lower()
    assert page.input_value("#token") == ""  # the refused token is not echoed back
    page.fill("#token", sc.tokens["vic"])
    shot(page, "login")
    page.click("button:text-is('Sign in')")
    page.wait_for_url(live.url + "/feature-groups")
    assert page.locator("h1").inner_text() == "Feature groups"
    assert page.locator(".me").inner_text() == "vic"
    cookie = next(c for c in context.cookies() if c["name"] == "trivet_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # not readable by scripts
    shot(page, "feature-groups")
    page.goto(live.url + "/")
    assert "Signed in as vic" in page.locator("p.lead").inner_text()
    shot(page, "dashboard")
    assert csp.violations == []


def test_open_a_feature_group(context: BrowserContext, site: tuple[Live, Scenario]) -> None:
    live, sc = site
    page = context.new_page()
    csp = Csp(page)
    sign_in(page, live, sc.tokens["dana"], "/feature-groups")
    page.click("a:text-is('customers')")
    page.wait_for_url(live.url + "/feature-groups/customers")
    schema = page.locator("table.schema tbody tr")
    assert schema.count() == 3
    assert schema.nth(0).inner_text().split() == ["age", "int", "age", "in", "years"]
    histogram = page.locator("#stat-age svg.hist")
    assert histogram.is_visible()
    box = histogram.bounding_box()
    assert box is not None and box["width"] >= 200 and box["height"] >= 50
    assert page.locator("#stat-age svg.hist rect").count() == 20
    assert page.locator("#stat-segment svg.hist rect").count() == 3
    shot(page, "feature-group")
    assert csp.violations == []


def test_open_a_pipeline_execution(context: BrowserContext, site: tuple[Live, Scenario]) -> None:
    live, sc = site
    page = context.new_page()
    csp = Csp(page)
    sign_in(page, live, sc.tokens["vic"], "/pipelines")
    page.click("a:text-is('tiny')")
    page.wait_for_url(live.url + "/pipelines/tiny")
    assert page.locator("svg.dag g.node").count() == 4
    assert page.locator("svg.dag").is_visible()
    shot(page, "pipeline")
    page.click(f"a:text-is('{sc.execution_id[:12]}')")
    page.wait_for_url(live.url + f"/executions/{sc.execution_id}")
    rows = page.locator("table.steps tbody tr")
    assert rows.count() == 4
    seen = {rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i) for i in range(4)}
    assert set(seen) == {"load", "double", "square", "total"}
    for row in seen.values():
        assert row.locator("td").nth(1).inner_text() == "succeeded"
    assert page.locator("svg.timing rect.bar").count() == 4
    assert page.locator("svg.dag g.node.st-succeeded").count() == 4
    shot(page, "execution")
    assert csp.violations == []


def test_approve_a_model_version_as_a_reviewer(
    context: BrowserContext, site: tuple[Live, Scenario]
) -> None:
    live, sc = site
    version = pending_version(live)
    page = context.new_page()
    csp = Csp(page)
    sign_in(page, live, sc.tokens["rita"], "/models/scorer")
    section = page.locator(f"#version-{version}")
    # the justification is required: the browser does not send the form without it
    section.locator("button:text-is('Approve')").click()
    assert page.url == live.url + "/models/scorer"
    assert live.admin.registry.get("scorer", version).status.value == "PendingManualApproval"
    section.locator("textarea").fill("DI 0.5 accepted for the pilot; reviewed with risk")
    shot(page, "model")
    section.locator("button:text-is('Approve')").click()
    page.wait_for_url(re.compile(r".*/models/scorer\?done=approved"))
    assert page.locator("p.notice").inner_text() == f"Version {version} approved."
    assert "Approved" in page.locator(f"#version-{version} h2").inner_text()
    decided = live.admin.registry.get("scorer", version)
    assert decided.status.value == "Approved"
    assert decided.decided_by == "rita"
    assert decided.decision_reason == "DI 0.5 accepted for the pilot; reviewed with risk"
    shot(page, "model-approved")
    # the version's fairness report, shown inline in a sandboxed frame
    page.click(f"#version-1 a:text-is('{sc.report_digest[:12]}')")
    page.wait_for_url(live.url + f"/reports/{sc.report_digest}")
    frame = page.frame_locator("iframe.report")
    frame.locator("body").wait_for()
    assert "scorer" in frame.locator("body").inner_text()
    shot(page, "report")
    assert csp.violations == []


def test_reject_a_waiting_approval_step(
    context: BrowserContext, site: tuple[Live, Scenario]
) -> None:
    from tests.server.console_scenario import signed
    from trivet.pipelines import Pipelines, StepStatus

    live, sc = site
    pipes = Pipelines(live.admin)
    started = pipes.start(signed)
    deadline = time.monotonic() + 30
    while not pipes.approvals(started.id):
        assert time.monotonic() < deadline, "the approval step never waited"
        time.sleep(0.05)
    page = context.new_page()
    csp = Csp(page)
    sign_in(page, live, sc.tokens["rita"], f"/executions/{started.id}")
    section = page.locator("#approval-approval")
    assert section.locator("p.ask").inner_text() == "Double 2 numbers?"
    assert "waiting" in section.locator("h2").inner_text()
    assert page.locator("svg.dag g.node.st-waiting").count() == 1
    shot(page, "approval-waiting")
    section.locator("textarea").fill("not this week")
    section.locator("button:text-is('Reject')").click()
    page.wait_for_url(re.compile(r".*/executions/.*\?done=rejected"))
    assert page.locator("p.notice").inner_text() == "Step approval rejected."
    done = started.wait(timeout=30)
    assert done.step("approval").status is StepStatus.FAILED
    assert done.step("approval").error == "rejected by rita: not this week"
    assert done.step("double").status is StepStatus.UPSTREAM_FAILED
    page.reload()
    assert "rejected by rita" in page.locator("#approval-approval").inner_text()
    assert page.locator("#approval-approval button").count() == 0  # decided: no form
    shot(page, "approval-rejected")
    assert csp.violations == []


def test_a_viewer_is_denied(
    browser: Browser, context: BrowserContext, site: tuple[Live, Scenario]
) -> None:
    live, sc = site
    version = pending_version(live)
    page = context.new_page()
    sign_in(page, live, sc.tokens["vic"], "/models/scorer")
    assert page.locator("button:text-is('Approve')").count() == 0
    assert page.locator("textarea").count() == 0
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    forged = page.request.post(
        live.url + f"/models/scorer/versions/{version}/decision",
        form={"csrf": csrf or "", "decision": "approve", "justification": "me too"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert "may not model:approve" in forged.text()
    assert live.admin.registry.get("scorer", version).status.value == "PendingManualApproval"

    other = browser.new_context(viewport={"width": 1366, "height": 860})
    try:
        fay = other.new_page()
        sign_in(fay, live, sc.tokens["fay"], "/feature-groups")
        response = fay.goto(live.url + "/models")
        assert response is not None and response.status == 403
        assert fay.locator("h1").inner_text() == "Forbidden"
        assert "fay" in fay.locator("p.message").inner_text()
        shot(fay, "forbidden")
    finally:
        other.close()


def test_csrf_a_post_without_the_token_is_refused(
    context: BrowserContext, site: tuple[Live, Scenario]
) -> None:
    live, sc = site
    version = pending_version(live)
    page = context.new_page()
    sign_in(page, live, sc.tokens["rita"], "/models/scorer")
    url = live.url + f"/models/scorer/versions/{version}/decision"
    body = {"decision": "approve", "justification": "no token"}
    missing = page.request.post(url, form=body, max_redirects=0)
    wrong = page.request.post(url, form={**body, "csrf": "0" * 64}, max_redirects=0)
    for r in (missing, wrong):
        assert r.status == 403
        assert "security token" in r.text()
    assert live.admin.registry.get("scorer", version).status.value == "PendingManualApproval"
