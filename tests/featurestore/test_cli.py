"""`trivet featurestore`: create, list, describe, search, ingest, get, stats and delete."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from trivet.cli import app

from .conftest import at, customers_spec

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def ws(tmp_path: Path) -> str:
    path = tmp_path / "ws"
    assert cli("init", str(path))[0] == 0
    return str(path)


def test_a_group_from_the_command_line(ws: str, tmp_path: Path) -> None:
    data = tmp_path / "rows.parquet"
    pd.DataFrame(
        {"customer_id": ["a", "b"], "ts": [at(0), at(1)], "age": [30, 40], "income": [1.0, 2.0]}
    ).to_parquet(data)
    base = ["-w", ws, "featurestore"]
    flags = ["--from-data", str(data), "--name", "customers", "--record-id", "customer_id"]
    code, out, err = cli(*base, "create", *flags, "--event-time", "ts")
    assert code == 0 and "nothing was created" in err
    assert [f["name"] for f in json.loads(out)["features"]] == ["age", "income"]
    assert cli(*base, "list")[2].strip() == "(none)"
    code, out, _ = cli(*base, "create", *flags, "--event-time", "ts", "--yes", "--json")
    assert code == 0 and json.loads(out)["name"] == "customers"

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(customers_spec("profiles").to_dict()))
    assert cli(*base, "create", str(spec))[0] == 0
    code, out, _ = cli(*base, "list", "--json")
    assert [g["name"] for g in json.loads(out)] == ["customers", "profiles"]
    code, out, _ = cli(*base, "describe", "profiles")
    assert code == 0 and "income" in out and "EUR" in out
    code, out, _ = cli(*base, "search", "eur", "--json")
    assert json.loads(out) == [{"matches": ["feature:income.parameters"], "name": "profiles"}]

    code, out, _ = cli(*base, "ingest", "customers", str(data), "--json")
    assert code == 0 and json.loads(out)["rows"] == 2
    code, _, err = cli(*base, "ingest", "customers", str(data))
    assert code == 0 and "ingested before" in err
    code, out, _ = cli(*base, "get", "customers", "b", "--json")
    assert code == 0 and json.loads(out) == {
        "age": 40,
        "customer_id": "b",
        "income": 2.0,
        "ts": at(1).isoformat(),
    }
    code, out, err = cli(*base, "stats", "customers")
    assert code == 0 and "2 records" in err
    cells = [[c.strip() for c in line.split("│")] for line in out.splitlines()[2:]]
    rows = {row[0]: row[1:] for row in cells}
    assert rows["age"][:7] == ["int", "2", "0", "2", "30", "40", "35"]  # mean of 30 and 40
    assert rows["income"][:7] == ["float", "2", "0", "2", "1", "2", "1.5"]
    code, out, _ = cli(*base, "stats", "customers", "--bins", "2", "--json")
    age = next(f for f in json.loads(out)["features"] if f["name"] == "age")
    assert age["histogram"]["counts"] == [1, 1] and age["mean"] == 35.0
    assert cli(*base, "delete", "customers", "b")[0] == 0
    code, _, err = cli(*base, "get", "customers", "b")
    assert code == 3 and "No record" in err
    assert cli(*base, "delete", "customers", "a", "--hard")[0] == 0


def test_errors_are_one_line_with_their_exit_code(ws: str, tmp_path: Path) -> None:
    base = ["-w", ws, "featurestore"]
    code, out, err = cli(*base, "describe", "nope")
    assert code == 3 and "does not exist" in err and "Traceback" not in out + err
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,ts,age\na,2024-01-01,x\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(customers_spec().to_dict()))
    assert cli(*base, "create", str(spec))[0] == 0
    code, _, err = cli(*base, "ingest", "customers", str(bad))
    assert code == 2 and "row 0, column 'age'" in err and "row 0, column 'ts'" in err
    code, _, err = cli(*base, "create")
    assert code == 2 and "spec file or --from-data" in err
