"""Stored reports: permissions, artifacts, lineage, audit, and the sign-off."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest

import trivet
from trivet.clarify import BiasReport, Clarify, Facet, Label, Prediction
from trivet.clarify.checks import Check
from trivet.clarify.report import Report, StoredReport
from trivet.errors import Conflict, NotFound, PermissionDenied, ValidationError
from trivet.platform import audit
from trivet.platform.lineage import Node
from trivet.platform.settings import Settings


def tiny() -> pd.DataFrame:
    rows = []
    for sex, (tp, fn, fp, tn) in (("m", (5, 1, 1, 3)), ("f", (2, 1, 1, 6))):
        rows += [(sex, 1, 1)] * tp + [(sex, 1, 0)] * fn + [(sex, 0, 1)] * fp + [(sex, 0, 0)] * tn
    return pd.DataFrame(rows, columns=["sex", "y", "yhat"])


def user(
    admin: trivet.Session, ws: Settings, name: str, *grants: tuple[str, str]
) -> trivet.Session:
    admin.identity.create_user(name)
    for privilege, pattern in grants:
        admin.access.grant(name, privilege, pattern)
    return trivet.connect(ws.workspace, token=admin.identity.create_token(name).secret)


def compute(session: trivet.Session) -> BiasReport:
    return Clarify(session).bias(
        tiny(),
        label=Label("y", positive=1),
        facet=Facet("sex", values="f"),
        prediction=Prediction("yhat"),
        metrics=["DPL", "DPPL", "DI", "RD", "DAR"],
        min_group_size=0,
    )


@pytest.fixture
def team(admin: trivet.Session, workspace: Settings) -> Iterator[dict[str, trivet.Session]]:
    sessions = {
        "dana": user(admin, workspace, "dana", ("data_scientist", "default/*")),
        "rita": user(admin, workspace, "rita", ("approver", "default/*")),
        "vic": user(admin, workspace, "vic", ("viewer", "default/*")),
        "olga": user(admin, workspace, "olga", ("viewer", "other/*")),
    }
    yield sessions
    for s in sessions.values():
        s.close()


def test_report_is_stored_as_json_and_html_with_lineage(
    admin: trivet.Session, team: dict[str, trivet.Session]
) -> None:
    dana = team["dana"]
    data = dana.artifacts.put_dataframe(tiny(), folder="default/datasets/tiny")
    stored = Clarify(dana).report(
        "credit",
        bias=compute(dana),
        checks={"DI": (0.8, 1.25)},
        data_digest=data.digest[:12],  # a unique prefix is enough
    )
    assert isinstance(stored, StoredReport)
    assert stored.folder == "default/reports/credit"
    assert stored.checks_passed is False  # DI = 0.5
    doc = stored.report.document
    assert doc["created_by"] == "dana" and doc["data_digest"] == data.digest
    refs = {r.digest: r for r in dana.artifacts.list("default/reports/credit")}
    assert refs[stored.digest].media_type == "application/json"
    assert refs[stored.html_digest].media_type == "text/html"
    assert json.loads(dana.artifacts.get_bytes(stored.digest)) == doc
    html = dana.artifacts.get_bytes(stored.html_digest).decode()
    assert stored.digest in html and "<svg" in html
    up = admin.lineage.upstream(Node(kind="report", id=stored.digest))
    assert Node(kind="dataset", id=data.digest) in up
    down = admin.lineage.downstream(Node(kind="report", id=stored.digest))
    assert Node(kind="artifact", id=stored.html_digest) in down
    actions = [e.action for e in audit.entries(admin.catalog, actor="dana")]
    assert "clarify:report" in actions


def test_model_version_lineage(admin: trivet.Session) -> None:
    from sklearn.linear_model import LogisticRegression

    df = tiny()
    model = LogisticRegression().fit(df[["yhat"]], df["y"])
    version = admin.registry.register("scorer", model=model)
    stored = Clarify(admin).report(
        "scorer", bias=compute(admin), model_version=f"scorer/{version.version}"
    )
    path = f"default/models/scorer/{version.version}"
    assert stored.report.document["model_version"] == path
    up = admin.lineage.upstream(Node(kind="report", id=stored.digest))
    assert Node(kind="model_version", id=path) in up
    with pytest.raises(ValidationError, match="does not name a model version"):
        Clarify(admin).report("scorer", bias=compute(admin), model_version="scorer")


def test_reading_needs_clarify_read_report_only(team: dict[str, trivet.Session]) -> None:
    stored = Clarify(team["dana"]).report("credit", bias=compute(team["dana"]))
    vic = team["vic"]  # viewer: clarify:read_report, no artifact:read
    report = Clarify(vic).get_report(stored.digest)
    assert isinstance(report, Report) and report.digest == stored.digest
    assert report.document == stored.report.document
    assert Clarify(vic).get_report(stored.digest[:10]).digest == stored.digest
    with pytest.raises(PermissionDenied, match="clarify:read_report"):
        Clarify(team["olga"]).get_report(stored.digest)
    with pytest.raises(NotFound):
        Clarify(vic).get_report("0" * 64)
    with pytest.raises(NotFound):  # the HTML is not a report document
        Clarify(vic).get_report(stored.html_digest)
    with pytest.raises(ValidationError, match="not a report digest"):
        Clarify(vic).get_report("xyz")


def test_storing_needs_clarify_run(team: dict[str, trivet.Session]) -> None:
    bias = compute(team["dana"])
    for name in ("rita", "vic"):
        with pytest.raises(PermissionDenied, match="clarify:run"):
            Clarify(team[name]).report("credit", bias=bias)
        with pytest.raises(PermissionDenied, match="clarify:run"):
            Clarify(team[name]).explain(lambda a: a[:, 0], [[1.0, 2.0]])
    with pytest.raises(ValidationError, match="report name"):
        Clarify(team["dana"]).report("a/b", bias=bias)
    with pytest.raises(ValidationError, match="Checks need bias results"):
        Clarify(team["dana"]).report("credit", checks=[Check("DI", low=0.8)])


def test_sign_off_stores_a_new_version_linked_and_audited(
    admin: trivet.Session, team: dict[str, trivet.Session]
) -> None:
    dana, rita = team["dana"], team["rita"]
    first = Clarify(dana).report(
        "credit",
        bias=compute(dana),
        checks={"RD": (-0.2, 0.2)},
        definition="equal_opportunity",
        rationale="proposed by the author",
    )
    assert first.report.review["status"] == "proposed"
    with pytest.raises(PermissionDenied, match="clarify:review"):
        Clarify(dana).sign_off(
            first.digest, definition="equal_opportunity", rationale="r", tradeoffs="t"
        )
    signed = Clarify(rita).sign_off(
        first.digest,
        definition="equal_opportunity",
        rationale="A wrongly refused applicant who would repay is the harm that matters.",
        tradeoffs="We accept unequal selection rates (DI 0.5) and unequal precision.",
    )
    assert signed.digest != first.digest and signed.previous == first.digest
    assert signed.folder == first.folder
    review = signed.report.review
    assert review["status"] == "signed_off" and signed.report.is_signed_off
    assert review["sign_off"]["principal"] == "rita"
    assert review["sign_off"]["signed"] == first.digest
    assert review["tradeoffs"].startswith("We accept unequal selection rates")
    assert {c["definition"] for c in review["conflicts"]} == {
        "demographic_parity",
        "predictive_parity",
    }
    # the signed version is readable, its page shows the sign-off
    again = Clarify(team["vic"]).get_report(signed.digest)
    assert again.is_signed_off
    assert "signed off</span> by rita" in again.to_html()
    # lineage: signed ← first
    up = admin.lineage.upstream(Node(kind="report", id=signed.digest))
    assert Node(kind="report", id=first.digest) in up
    # audit: principal, time and justification
    (entry,) = [
        e for e in audit.entries(admin.catalog, actor="rita") if e.action == "clarify:sign_off"
    ]
    assert entry.resource == "default/reports/credit"
    assert entry.detail["definition"] == "equal_opportunity"
    assert entry.detail["rationale"].startswith("A wrongly refused")
    assert entry.detail["previous"] == first.digest and entry.detail["report"] == signed.digest
    assert entry.ts is not None
    # a sign-off is final
    with pytest.raises(Conflict, match="signed off already"):
        Clarify(admin).sign_off(
            signed.digest, definition="demographic_parity", rationale="r", tradeoffs="t"
        )


def test_sign_off_validates_its_justification(
    admin: trivet.Session, team: dict[str, trivet.Session]
) -> None:
    stored = Clarify(team["dana"]).report("credit", bias=compute(team["dana"]))
    rita = Clarify(team["rita"])
    with pytest.raises(ValidationError, match="Unknown fairness definition"):
        rita.sign_off(stored.digest, definition="fair", rationale="r", tradeoffs="t")
    with pytest.raises(ValidationError, match="needs a rationale"):
        rita.sign_off(stored.digest, definition="equal_opportunity", rationale=" ", tradeoffs="t")
    with pytest.raises(ValidationError, match="trade-offs"):
        rita.sign_off(stored.digest, definition="equal_opportunity", rationale="r", tradeoffs="")


def test_four_eyes_and_service_principals(admin: trivet.Session, workspace: Settings) -> None:
    admin.access.set_policy("four_eyes", True)
    stored = Clarify(admin).report("credit", bias=compute(admin))
    with pytest.raises(PermissionDenied, match="four eyes"):
        Clarify(admin).sign_off(
            stored.digest, definition="equal_opportunity", rationale="r", tradeoffs="t"
        )
    admin.identity.create_service("ci")
    admin.access.grant("ci", "owner", "default/*")
    admin.access.grant(admin.principal.name, "principal:use", "_principals/ci")
    bot = admin.assume("ci")
    with pytest.raises(PermissionDenied, match="service principal"):
        Clarify(bot).sign_off(
            stored.digest, definition="equal_opportunity", rationale="r", tradeoffs="t"
        )
