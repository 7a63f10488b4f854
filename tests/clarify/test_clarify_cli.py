"""`trivet clarify`: bias, explain, report list|show|open and monitor, run for real."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import trivet
from trivet.clarify.data import synthetic_credit
from trivet.cli import app

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def ws(tmp_path: Path) -> str:
    path = tmp_path / "ws"
    assert cli("init", str(path))[0] == 0
    return str(path)


def tiny() -> pd.DataFrame:
    """20 rows with confusion tables chosen by hand.

    men (a):   TP 5, FN 1, FP 1, TN 3 -> 6 positive labels, 6 positive predictions
    women (d): TP 2, FN 1, FP 1, TN 6 -> 3 positive labels, 3 positive predictions
    So DPL = 6/10 - 3/10 = 0.3, DPPL = 0.3, DI = 0.3 / 0.6 = 0.5. Women are 50, men
    30 (age >= 40 selects the women); score is 0.9 where yhat is 1, else 0.1.
    """
    rows = []
    for sex, age, cells in (("m", 30, (5, 1, 1, 3)), ("f", 50, (2, 1, 1, 6))):
        tp, fn, fp, tn = cells
        rows += [(sex, age, 1, 1)] * tp + [(sex, age, 1, 0)] * fn
        rows += [(sex, age, 0, 1)] * fp + [(sex, age, 0, 0)] * tn
    frame = pd.DataFrame(rows, columns=["sex", "age", "y", "yhat"])
    frame["score"] = frame["yhat"].map({1: 0.9, 0: 0.1})
    return frame


def values(out: str) -> dict[tuple[str, str], float]:
    """(group, metric) -> value from `bias --json`."""
    found = {}
    for bias in json.loads(out)["bias"]:
        for groups in bias["facets"].values():
            for g in groups:
                for m in g["metrics"]:
                    found[(g["value_or_threshold"], m["name"])] = m["value"]
    return found


def test_bias_on_csv_with_checks_and_a_stored_report(ws: str, tmp_path: Path) -> None:
    data = tmp_path / "tiny.csv"
    tiny().to_csv(data, index=False)
    base = ["-w", ws, "clarify", "bias", str(data), "--label", "y", "--positive", "1"]
    flags = ["--facet", "sex=f", "--predicted", "yhat", "--min-group-size", "0"]
    metrics = ["--metric", "DPL", "--metric", "DPPL", "--metric", "DI"]
    code, out, err = cli(*base, *flags, *metrics, "--json")
    assert code == 0, err
    got = values(out)
    assert got[("f", "DPL")] == pytest.approx(0.3)
    assert got[("f", "DPPL")] == pytest.approx(0.3)
    assert got[("f", "DI")] == pytest.approx(0.5)

    # a failing check: exit code 10, the reason printed; --report stores it anyway
    code, out, err = cli(*base, *flags, *metrics, "--check", "DI=0.8:1.25", "--report", "tiny")
    assert code == 10, err
    assert "DI for group 'f' = 0.5 is below the lower bound 0.8" in out
    assert "1 of 1 checks failed" in err and "Stored report 'tiny'" in err
    code, _, err = cli(*base, *flags, *metrics, "--check", "DPPL=:0.5")
    assert code == 0, err

    code, out, _ = cli("-w", ws, "clarify", "report", "list", "--json")
    (listed,) = json.loads(out)
    assert code == 0 and listed["name"] == "tiny" and listed["kind"] == "report"
    assert listed["checks_passed"] is False
    digest = listed["digest"]
    code, out, _ = cli("-w", ws, "clarify", "report", "show", digest[:12], "--json")
    assert code == 0 and json.loads(out)["checks"]["passed"] is False
    code, out, _ = cli("-w", ws, "clarify", "report", "show", digest[:12])
    assert code == 0 and "checks   FAILED" in out and "DPPL" in out

    page = tmp_path / "page.html"
    code, out, _ = cli("-w", ws, "clarify", "report", "open", digest, "--output", str(page))
    assert code == 0 and out.strip() == str(page.resolve())
    assert page.read_text().startswith("<!DOCTYPE html>") and digest in page.read_text()


def test_report_open_in_the_browser(
    ws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "tiny.csv"
    tiny().to_csv(data, index=False)
    code, out, _ = cli(
        "-w", ws, "clarify", "bias", str(data), "--label", "y", "--positive", "1",
        "--facet", "sex=f", "--metric", "DPL", "--report", "tiny", "--json",
    )  # fmt: skip
    digest = json.loads(out)["report"]
    opened: list[str] = []

    def fake_open(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr("webbrowser.open", fake_open)
    page = tmp_path / "out.html"
    code, out, _ = cli("-w", ws, "clarify", "report", "open", digest, "-o", str(page), "--browser")
    assert code == 0 and opened == [page.resolve().as_uri()]


def test_threshold_facet_and_probability_cutoff_on_parquet(ws: str, tmp_path: Path) -> None:
    data = tmp_path / "tiny.parquet"
    tiny().to_parquet(data)
    code, out, err = cli(
        "-w", ws, "clarify", "bias", str(data), "--label", "y", "--positive", "1",
        "--facet", "age>=40", "--probability", "score", "--cutoff", "0.5",
        "--metric", "DPPL", "--metric", "DI", "--min-group-size", "0", "--json",
    )  # fmt: skip
    assert code == 0, err
    got = values(out)  # age >= 40 selects the women; score > 0.5 is yhat
    assert got[("age >= 40", "DPPL")] == pytest.approx(0.3)
    assert got[("age >= 40", "DI")] == pytest.approx(0.5)
    # a numeric label with a threshold: score >= 0.9 is the same as yhat = 1
    code, out, err = cli(
        "-w", ws, "clarify", "bias", str(data), "--label", "score", "--threshold", "0.9",
        "--compare", ">=", "--facet", "sex=f", "--metric", "DPL", "--min-group-size", "0",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert values(out)[("f", "DPL")] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--label", "y", "--facet", "sex=f"], "--positive VALUE"),
        (["--label", "yy", "--positive", "1", "--facet", "sex=f"], "did you mean 'y'"),
        (["--label", "y", "--positive", "1", "--facet", "sx=f"], "did you mean 'sex'"),
        (["--label", "y", "--positive", "1"], "--facet sex=female"),
        (["--label", "y", "--positive", "x", "--facet", "sex=f"], "holds integers"),
        (["--label", "y", "--positive", "1", "--facet", "sex="], "names no value"),
        (["--label", "y", "--positive", "1", "--facet", "sex=f", "--check", "DI>0.8"],
         "METRIC=LOW:HIGH"),
        (["--label", "y", "--positive", "1", "--facet", "sex=f", "--cutoff", "0.5"],
         "--probability COL"),
        (["--label", "y", "--positive", "1", "--facet", "sex=f", "--probability", "score"],
         "--cutoff 0.5"),
        (["--label", "y", "--positive", "1", "--facet", "sex=f", "--range", "DI=0.8:1.25"],
         "--baseline NAME"),
        (["--label", "y", "--positive", "1", "--facet", "sex=f", "--baseline", "b"],
         "--bootstrap 1000"),
        (["--label", "y", "--positive", "1", "--facet", "sex=f", "--seed", "3"],
         "--bootstrap N"),
        (["--label", "y", "--positive", "1", "--facet", "sex=f", "--mode", "compat"],
         "clarify_compatible"),
        (["--label", "y", "--threshold", "0.5", "--compare", "=>", "--facet", "sex=f"],
         "'>='"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_errors_naming_the_fix(
    ws: str, tmp_path: Path, flags: list[str], needle: str
) -> None:
    data = tmp_path / "tiny.csv"
    tiny().to_csv(data, index=False)
    code, out, err = cli("-w", ws, "clarify", "bias", str(data), *flags)
    assert code == 2, err
    assert needle in err and "Traceback" not in out + err
    assert err.startswith("error: ")


def test_unreadable_data_is_an_error(ws: str, tmp_path: Path) -> None:
    text = tmp_path / "data.txt"
    text.write_text("x")
    code, _, err = cli("-w", ws, "clarify", "bias", str(text), "--label", "y")
    assert code == 2 and ".csv or .parquet" in err
    code, _, err = cli("-w", ws, "clarify", "bias", str(tmp_path / "no.csv"), "--label", "y")
    assert code == 2 and "no file" in err


def test_baseline_and_monitor_exit_codes(ws: str, tmp_path: Path) -> None:
    synthetic_credit(20_000, seed=0).to_csv(tmp_path / "base.csv", index=False)
    synthetic_credit(20_000, seed=1).to_parquet(tmp_path / "same.parquet")
    synthetic_credit(20_000, seed=2, prediction_bias=0.3).to_csv(
        tmp_path / "biased.csv", index=False
    )
    code, out, err = cli(
        "-w", ws, "clarify", "bias", str(tmp_path / "base.csv"), "--label", "approved",
        "--positive", "true", "--facet", "sex=female", "--predicted", "predicted",
        "--metric", "DPL", "--metric", "DPPL", "--metric", "DI", "--bootstrap", "500",
        "--baseline", "credit", "--json",
    )  # fmt: skip
    assert code == 0, err
    baseline = json.loads(out)["baseline"]

    monitor = ["-w", ws, "clarify", "monitor"]
    code, out, err = cli(*monitor, str(tmp_path / "same.parquet"), "--baseline", baseline[:12])
    assert code == 0, err
    assert "VIOLATION" not in out and "Stored monitoring run 'credit'" in err

    # the same generator with women's scores cut by 30%: DPPL above, DI below their
    # ranges (the labels are unchanged, so DPL is not)
    code, out, err = cli(
        *monitor, str(tmp_path / "biased.csv"), "--baseline", baseline, "--json", "--no-store"
    )
    assert code == 11, err
    section = json.loads(out)
    assert section["violations"] == 2 and section["report"] is None
    assert {r["metric"]: r["status"] for r in section["results"]} == {
        "DPL": "ok",
        "DPPL": "violation",
        "DI": "violation",
    }
    assert "2 violations" in err

    code, out, _ = cli("-w", ws, "clarify", "report", "list", "--json")
    assert [r["kind"] for r in json.loads(out)] == ["monitoring", "baseline"]
    code, out, _ = cli("-w", ws, "clarify", "report", "show", baseline)
    assert code == 0 and "baseline: allowed ranges" in out and "derived" in out

    code, _, err = cli(*monitor, str(tmp_path / "same.parquet"), "--baseline", "0" * 12)
    assert code == 3 and "no report" in err


def test_explain_a_registered_model_and_monitor_explanation_drift(ws: str, tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    features = ["age", "income", "debt_ratio", "years_employed"]
    train = synthetic_credit(3_000, seed=0)
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    model.fit(train[features], train["approved"])
    with trivet.connect(ws) as session:
        version = session.registry.register("scorer", model)
    data = tmp_path / "train.csv"
    train.to_csv(data, index=False)

    explain = ["-w", ws, "clarify", "explain"]
    code, out, err = cli(*explain, "scorer", str(data), "--sample", "80", "--json")
    assert code == 0, err
    shap = json.loads(out)["tree_shap"]
    assert shap["features"] == features and shap["rows"] == 80
    importance = shap["label0"]["global_shap_values"]
    assert max(importance, key=importance.get) == "income"  # the label leans on income most
    code, out, err = cli(*explain, version.artifact_digest[:16], str(data), "--row", "0")
    assert code == 0, err
    assert "income" in out and "row 0:" in out
    code, _, err = cli(*explain, "scorer@prod", str(data))
    assert code == 3 and "alias 'prod'" in err
    code, _, err = cli(*explain, "scorer:1", str(data), "--target", "maybe")
    assert code == 2 and "classes: False, True" in err

    code, out, err = cli(
        "-w", ws, "clarify", "bias", str(data), "--label", "approved", "--positive", "true",
        "--facet", "sex=female", "--predicted", "predicted", "--metric", "DPPL",
        "--bootstrap", "200", "--baseline", "credit", "--model", "scorer", "--json",
    )  # fmt: skip
    assert code == 0, err
    baseline = json.loads(out)["baseline"]
    code, out, err = cli(
        "-w", ws, "clarify", "monitor", str(data), "--baseline", baseline, "--model", "scorer:1",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    drift = json.loads(out)["explanation_drift"]
    assert drift["ndcg"] == pytest.approx(1.0) and drift["flagged"] is False  # same data


def test_a_baseline_with_a_given_range_needs_no_bootstrap(ws: str, tmp_path: Path) -> None:
    data = tmp_path / "tiny.csv"
    tiny().to_csv(data, index=False)
    base = ["-w", ws, "clarify", "bias", str(data), "--label", "y", "--positive", "1"]
    flags = ["--facet", "sex=f", "--metric", "DPL", "--min-group-size", "0", "--baseline", "b"]
    code, _, err = cli(*base, *flags, "--range", "DI=0.8:1.25")
    assert code == 2 and "matches no metric" in err
    code, out, err = cli(*base, *flags, "--range", "DPL=:0.5", "--json")
    assert code == 0, err
    digest = json.loads(out)["baseline"]
    code, out, _ = cli("-w", ws, "clarify", "report", "show", digest)
    assert code == 0 and "(-inf, 0.5]" in out and "given" in out
    # DPL = 0.3 on this very data: its interval holds 0.3, so it cannot lie entirely
    # above 0.5 (the baseline had no intervals: monitoring bootstraps 1000 resamples)
    code, out, err = cli("-w", ws, "clarify", "monitor", str(data), "--baseline", digest, "--json")
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert result["status"] == "ok" and result["value"] == pytest.approx(0.3)
