"""``FeatureStore.sql``: read-only SQL over the offline tables the caller may read."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import trivet
from trivet.errors import PermissionDenied, ValidationError
from trivet.featurestore import Feature, FeatureStore
from trivet.platform.catalog import now_utc
from trivet.platform.settings import Settings

from .conftest import at, customers_spec, user_store


def rows(*items: tuple[object, ...]) -> pd.DataFrame:
    return pd.DataFrame(items, columns=["customer_id", "ts", "age"])


@pytest.fixture
def customers(fs: FeatureStore) -> FeatureStore:
    fs.create_group(customers_spec())
    fs.ingest("customers", rows(("a", at(0), 30), ("a", at(1), 31), ("b", at(0), 40)))
    return fs


def test_each_group_is_a_relation_of_its_offline_table(customers: FeatureStore) -> None:
    customers.delete_record("customers", "b", event_time=at(2))
    got = customers.sql(
        "select customer_id, count(*) as n, max(age) as age, bool_or(__deleted) as deleted "
        "from customers group by all order by customer_id"
    )
    assert got.to_dict("list") == {
        "customer_id": ["a", "b"],
        "n": [2, 2],
        "age": [31, 40],
        "deleted": [False, True],
    }
    assert got["age"].dtype == "Int64"
    everything = customers.sql("select * from customers order by customer_id, ts")
    assert list(everything.columns) == [
        "customer_id",
        "ts",
        "age",
        "income",
        "segment",
        "__write_time",
        "__deleted",
        "__batch",
    ]
    assert str(everything["ts"].dt.tz) == "UTC"
    table = customers.sql("select age from customers where age > 30 order by age", to="arrow")
    assert isinstance(table, pa.Table) and table["age"].to_pylist() == [31, 40]
    # quoted names for groups with '.' or '-'; features added later read as null
    customers.create_group(customers_spec("credit.apps-2"))
    customers.ingest("credit.apps-2", rows(("z", at(0), 1)))
    customers.add_features("credit.apps-2", [Feature(name="score", dtype="float")])
    got = customers.sql('select customer_id, score from "credit.apps-2"')
    assert got["customer_id"].tolist() == ["z"] and got["score"].isna().all()
    empty = customers.create_group(customers_spec("empty"))
    assert len(customers.sql("select * from empty")) == 0 and empty.offline


def test_as_of(customers: FeatureStore) -> None:
    time.sleep(0.002)
    moment = now_utc()
    time.sleep(0.002)
    customers.ingest("customers", rows(("c", at(0), 50)))
    assert len(customers.sql("select * from customers")) == 4
    assert len(customers.sql("select * from customers", as_of=moment)) == 3
    assert len(customers.sql("select * from customers", as_of=at(-1))) == 0


def test_a_version_not_yet_written_is_a_clear_error(customers: FeatureStore) -> None:
    latest = len(customers.offline_table("customers", as_of=None)) and 1  # one ingest so far
    assert latest
    with pytest.raises(ValidationError, match="there is no version 999 yet") as err:
        customers.offline_table("customers", as_of=999)
    assert err.value.hint is not None and "as_of=" in err.value.hint


def test_only_groups_you_may_read_offline_are_reachable(
    customers: FeatureStore, admin: trivet.Session, workspace: Settings
) -> None:
    customers.create_group(customers_spec("private"))
    customers.ingest("private", rows(("p", at(0), 1)))
    customers.create_group(customers_spec("online_only", offline=False))
    olga = user_store(
        admin,
        workspace,
        "olga",
        [("data_scientist", "default/feature_groups/customers"), ("viewer", "default/*")],
    )
    assert len(olga.sql("select * from customers")) == 3
    for name in ("private", "online_only"):
        with pytest.raises(ValidationError, match=f"{name}") as err:
            olga.sql(f"select * from {name}")
        assert err.value.hint == 'the relations are: "customers"'
    names = olga.sql(
        "select table_name from duckdb_tables() union select view_name from duckdb_views()"
    )
    assert "customers" in names.iloc[:, 0].tolist()
    assert "private" not in names.iloc[:, 0].tolist()


@pytest.mark.parametrize(
    "query",
    [
        "select * from read_parquet('/etc/passwd')",
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/hostname')",
        "select * from glob('/*')",
        "copy (select 1) to '{tmp}/out.csv'",
        "attach '{tmp}/x.duckdb'",
        "install httpfs",
        "load httpfs",
        "set enable_external_access = true",
        "select * from read_parquet({files})",
        "select * from secret_frame",
        "select 1; select 2",
        "create table t as select 1",
        "selec 1",
    ],
)
def test_nothing_else_is_reachable(customers: FeatureStore, tmp_path: Path, query: str) -> None:
    secret_frame = pd.DataFrame({"x": [42]})  # a local that a replacement scan could find
    assert len(secret_frame) == 1
    files = customers.offline.offline_files(customers.describe("customers"))
    target = tmp_path / "target"
    target.mkdir()
    text = query.format(tmp=target, files=files)
    with pytest.raises((PermissionDenied, ValidationError)):
        customers.sql(text)
    assert not list(target.iterdir())


def test_reading_a_file_is_a_permission_error(customers: FeatureStore) -> None:
    with pytest.raises(PermissionDenied, match="outside the feature groups"):
        customers.sql("select * from read_parquet('/etc/passwd')")
    with pytest.raises(ValidationError, match="one SQL statement"):
        customers.sql("select 1; select 2")
    with pytest.raises(ValidationError, match="Only SELECT"):
        customers.sql("insert into customers values (1)")
    assert customers.sql("explain select * from customers") is not None


def test_the_sql_command(tmp_path: Path) -> None:
    from trivet.cli import app

    ws = tmp_path / "ws"
    settings = trivet.init(ws)
    store = FeatureStore(trivet.connect(settings.workspace))
    store.create_group(customers_spec())
    store.ingest("customers", rows(("a", at(0), 30), ("b", at(0), 40)))
    store.close()
    runner = CliRunner()
    base = ["-w", str(ws), "featurestore", "sql"]
    result = runner.invoke(
        app, [*base, "select customer_id, age from customers order by 1", "--json"], env={}
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"customer_id": "a", "age": 30},
        {"customer_id": "b", "age": 40},
    ]
    result = runner.invoke(app, [*base, "select count(*) as n from customers"], env={})
    assert result.exit_code == 0 and "2" in result.stdout
    out = tmp_path / "out.csv"
    result = runner.invoke(app, [*base, "select * from customers", "-o", str(out)], env={})
    assert result.exit_code == 0 and len(pd.read_csv(out)) == 2
    result = runner.invoke(app, [*base, "select * from read_csv('/etc/passwd')"], env={})
    assert result.exit_code != 0 and "outside the feature groups" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_time_travel_past_a_hard_delete_is_a_clear_error(customers: FeatureStore) -> None:
    import datetime as dt

    from trivet.featurestore import VersionVacuumed

    moment = now_utc()
    time.sleep(0.002)
    customers.delete_record("customers", "a", hard=True)
    with pytest.raises(VersionVacuumed, match="hard delete"):
        customers.sql("select * from customers", as_of=moment)
    with pytest.raises(ValidationError, match="is naive"):
        customers.offline_table("customers", as_of=dt.datetime(2024, 1, 1))
