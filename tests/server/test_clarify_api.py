"""Fairness reports over a real server: list, JSON, HTML with its CSP; who may read them.

The data (as in tests/clarify/test_report_store.py): group ``m`` has 6 of 10 positive
labels and 6 of 10 positive predictions; the facet group (``f``, or here a value full
of markup) has 3 and 3. So DPL = 0.6 - 0.3 = 0.3 and DI = 0.3 / 0.6 = 0.5: the check
DI ∈ [0.8, 1.25] fails, DPL ∈ [-0.5, 0.5] passes.
"""

from __future__ import annotations

import pandas as pd
import pytest

import trivet
from tests.server.live import Live
from trivet.clarify import Facet, Label, Prediction
from trivet.clarify.report import StoredReport
from trivet.platform.settings import Settings

HOSTILE = '<script>alert("x")</script>'
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def _data(facet_value: str) -> pd.DataFrame:
    rows = []
    for sex, (tp, fn, fp, tn) in (("m", (5, 1, 1, 3)), (facet_value, (2, 1, 1, 6))):
        rows += [(sex, 1, 1)] * tp + [(sex, 1, 0)] * fn + [(sex, 0, 1)] * fp + [(sex, 0, 0)] * tn
    return pd.DataFrame(rows, columns=["sex", "y", "yhat"])


def _report(
    session: trivet.Session, name: str, checks: dict[str, tuple[float, float]], facet: str = "f"
) -> StoredReport:
    bias = session.clarify.bias(
        _data(facet),
        label=Label("y", positive=1),
        facet=Facet("sex", values=facet),
        prediction=Prediction("yhat"),
        metrics=["DPL", "DI"],
        min_group_size=0,
    )
    return session.clarify.report(name, bias=bias, checks=checks, model_version="credit/1")


@pytest.fixture
def reports(live: Live, workspace: Settings) -> dict[str, StoredReport]:
    """Two reports stored by dana (a data scientist): credit (fails), then loans (passes)."""
    project = live.admin.project
    token = live.user("dana", ("data_scientist", f"{project}/*"))
    with trivet.connect(workspace.workspace, token=token) as dana:
        credit = _report(dana, "credit", {"DI": (0.8, 1.25)}, facet=HOSTILE)
        loans = _report(dana, "loans", {"DPL": (-0.5, 0.5)})
    return {"credit": credit, "loans": loans}


def _base(live: Live) -> str:
    return f"/v1/projects/{live.admin.project}/reports"


def test_a_viewer_lists_reports_newest_first_with_their_outcome(
    live: Live, reports: dict[str, StoredReport]
) -> None:
    project = live.admin.project
    with live.client(live.user("vic", ("viewer", f"{project}/*"))) as http:
        r = http.get(_base(live))
        page1 = http.get(_base(live), params={"limit": 1})
        page2 = http.get(_base(live), params={"limit": 1, "cursor": page1.json()["next_cursor"]})
        only_credit = http.get(_base(live), params={"name": "credit"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["name"] for i in items] == ["loans", "credit"]
    loans, credit = items
    assert loans["digest"] == reports["loans"].digest
    assert loans["html_digest"] == reports["loans"].html_digest
    assert loans["checks_passed"] is True  # DPL = 0.3 is inside [-0.5, 0.5]
    assert credit["checks_passed"] is False  # DI = 0.5 is outside [0.8, 1.25]
    assert {i["created_by"] for i in items} == {"dana"}
    assert {i["model_version"] for i in items} == {f"{project}/models/credit/1"}
    assert {i["review_status"] for i in items} == {"unreviewed"}
    assert credit["previous"] is None
    assert [i["name"] for i in page1.json()["items"]] == ["loans"]
    assert [i["name"] for i in page2.json()["items"]] == ["credit"]
    assert page2.json()["next_cursor"] is None
    assert [i["name"] for i in only_credit.json()["items"]] == ["credit"]


def test_the_report_json_by_digest_or_prefix(live: Live, reports: dict[str, StoredReport]) -> None:
    credit = reports["credit"]
    with live.client(live.user("vic", ("viewer", f"{live.admin.project}/*"))) as http:
        full = http.get(f"{_base(live)}/{credit.digest}")
        prefix = http.get(f"{_base(live)}/{credit.digest[:12]}")
    assert full.status_code == 200, full.text
    document = full.json()
    assert document == dict(credit.report.document)
    assert prefix.json() == document
    assert document["name"] == "credit" and document["created_by"] == "dana"
    assert document["checks"]["passed"] is False
    metrics = document["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"]
    assert {m["name"]: m["value"] for m in metrics}["DI"] == pytest.approx(0.5)


def test_the_html_page_is_the_stored_one_under_a_strict_csp(
    live: Live, workspace: Settings, reports: dict[str, StoredReport]
) -> None:
    credit = reports["credit"]
    with live.client(live.user("vic", ("viewer", f"{live.admin.project}/*"))) as http:
        r = http.get(f"{_base(live)}/{credit.digest}/html")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == live.admin.artifacts.get_bytes(credit.html_digest)
    page = r.text
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "<svg" in page  # charts are inline
    # the facet value is data: it is shown escaped, never as markup
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page


def test_a_signed_off_version_is_listed_with_the_version_it_revises(
    live: Live, workspace: Settings, reports: dict[str, StoredReport]
) -> None:
    project = live.admin.project
    token = live.user("rita", ("approver", f"{project}/*"))
    with trivet.connect(workspace.workspace, token=token) as rita:
        signed = rita.clarify.sign_off(
            reports["credit"].digest,
            definition="equal_opportunity",
            rationale="A wrongly refused applicant who would repay is the harm that matters.",
            tradeoffs="We accept unequal selection rates (DI 0.5).",
        )
    with live.client(token) as http:
        items = http.get(_base(live), params={"name": "credit"}).json()["items"]
        html = http.get(f"{_base(live)}/{signed.digest}/html")
    assert [(i["digest"], i["review_status"]) for i in items] == [
        (signed.digest, "signed_off"),
        (reports["credit"].digest, "unreviewed"),
    ]
    assert items[0]["previous"] == reports["credit"].digest
    assert items[0]["created_by"] == "rita"
    assert html.status_code == 200 and "harm that matters" in html.text


def test_only_readable_reports_are_listed_and_the_rest_are_403(
    live: Live, reports: dict[str, StoredReport]
) -> None:
    project = live.admin.project
    # rob may read the credit report only
    rob = live.user("rob", ("clarify:read_report", f"{project}/reports/credit"))
    with live.client(rob) as http:
        listed = http.get(_base(live))
        mine = http.get(f"{_base(live)}/{reports['credit'].digest}")
        other = http.get(f"{_base(live)}/{reports['loans'].digest}")
        other_html = http.get(f"{_base(live)}/{reports['loans'].digest}/html")
    assert [i["name"] for i in listed.json()["items"]] == ["credit"]
    assert mine.status_code == 200
    assert other.status_code == 403 and other_html.status_code == 403
    assert "clarify:read_report" in other.json()["error"]["message"]


def test_a_principal_without_clarify_read_report_is_403(
    live: Live, reports: dict[str, StoredReport]
) -> None:
    project = live.admin.project
    live.admin.identity.create_project("elsewhere")
    for token in (
        live.user("eve", ("owner", "elsewhere/*")),  # an owner, of another project
        live.user("fay", ("pipeline:describe", f"{project}/*")),  # no clarify grant here
    ):
        with live.client(token) as http:
            digest = reports["loans"].digest
            for url in (_base(live), f"{_base(live)}/{digest}", f"{_base(live)}/{digest}/html"):
                r = http.get(url)
                assert r.status_code == 403, (url, r.text)
                assert r.json()["error"]["type"] == "PermissionDenied"


def test_unknown_and_malformed_digests(live: Live, reports: dict[str, StoredReport]) -> None:
    with live.client(live.user("vic", ("viewer", f"{live.admin.project}/*"))) as http:
        unknown = http.get(f"{_base(live)}/{'0' * 64}")
        unknown_html = http.get(f"{_base(live)}/{'0' * 64}/html")
        malformed = http.get(f"{_base(live)}/not-a-digest")
        short = http.get(f"{_base(live)}/abc")
    assert unknown.status_code == 404 and unknown_html.status_code == 404
    assert unknown.json()["error"]["type"] == "NotFound"
    assert malformed.status_code == 422 and short.status_code == 422


def test_an_empty_project_lists_no_reports(live: Live) -> None:
    with live.client(live.user("vic", ("viewer", f"{live.admin.project}/*"))) as http:
        r = http.get(_base(live))
    assert r.status_code == 200
    assert r.json() == {"items": [], "next_cursor": None}
