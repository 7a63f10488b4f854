"""Ingestion: validation reports every bad row and writes nothing; exactly-once writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

import trivet
from trivet.errors import NotFound, ValidationError
from trivet.featurestore import Feature, FeatureStore, IngestValidationError
from trivet.featurestore.ingest import batch_id_of, validate
from trivet.platform import audit
from trivet.platform.catalog.schema import feature_batches

from .conftest import at, customers_spec


def frame(
    rows: list[tuple[str, dt.datetime, int | None, float | None, str | None]],
) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "ts", "age", "income", "segment"]).astype(
        {"age": "Int64"}
    )


@pytest.fixture
def customers(fs: FeatureStore) -> FeatureStore:
    fs.create_group(customers_spec())
    return fs


def offline_rows(fs: FeatureStore, name: str = "customers") -> int:
    return int(fs.offline_table(name).num_rows)


def test_every_bad_row_is_reported_and_nothing_is_written(customers: FeatureStore) -> None:
    bad = pd.DataFrame(
        {
            "customer_id": ["a", None, "c", "", "e", "f"],
            "ts": [
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:00:00Z",
                "2024-01-01 00:00:00",  # no zone
                "2024-01-01T00:00:00+02:00",
                "not a time",
                None,
            ],
            "age": [1, 2.5, "x", 4, 5, 6],
            "income": [1.0, 2.0, 3.0, "lots", 5.0, 6.0],
            "colour": ["r"] * 6,
            "__batch": ["x"] * 6,
        }
    )
    with pytest.raises(IngestValidationError) as err:
        customers.ingest("customers", bad)
    found = {(p.row, p.column) for p in err.value.problems}
    assert found == {
        (None, "colour"),
        (None, "__batch"),
        (1, "customer_id"),
        (1, "age"),
        (2, "ts"),
        (2, "age"),
        (3, "customer_id"),
        (3, "income"),
        (4, "ts"),
        (5, "ts"),
    }
    reasons = {(p.row, p.column): p.reason for p in err.value.problems}
    assert "no time zone" in reasons[(2, "ts")]
    assert "not an ISO 8601 timestamp" in reasons[(4, "ts")]
    assert "'x' cannot be read as int" in reasons[(2, "age")]
    assert "missing" in reasons[(5, "ts")]
    assert "add_features" in reasons[(None, "colour")]
    assert err.value.exit_code == 2 and isinstance(err.value, ValidationError)
    assert offline_rows(customers) == 0
    assert customers.get_record("customers", "a") is None


def test_missing_key_columns_and_naive_timestamps(customers: FeatureStore) -> None:
    with pytest.raises(IngestValidationError) as err:
        customers.ingest("customers", pd.DataFrame({"age": [1]}))
    assert {(p.column, p.reason) for p in err.value.problems} == {
        ("customer_id", "the record id column is missing"),
        ("ts", "the event time column is missing"),
    }
    naive = pd.DataFrame({"customer_id": ["a"], "ts": pd.to_datetime(["2024-01-01"])})
    with pytest.raises(IngestValidationError, match="without a time zone") as err:
        customers.ingest("customers", naive)
    assert "tz_localize('UTC')" in str(err.value)
    objects = pd.DataFrame({"customer_id": ["a", "b"], "ts": [at(0), dt.datetime(2024, 1, 1)]})
    with pytest.raises(IngestValidationError) as err:
        customers.ingest("customers", objects)
    assert [(p.row, p.column) for p in err.value.problems] == [(1, "ts")]


def test_duplicate_record_and_event_time_is_refused(customers: FeatureStore) -> None:
    df = frame([("a", at(0), 1, 1.0, "x"), ("b", at(0), 2, 2.0, "y"), ("a", at(0), 3, 3.0, "z")])
    with pytest.raises(
        IngestValidationError, match="repeats the record id and event time of row 0"
    ):
        customers.ingest("customers", df)


def test_more_than_twenty_problems_are_all_kept(customers: FeatureStore) -> None:
    df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(30)], "ts": [at(0)] * 30})
    df["age"] = "old"
    with pytest.raises(IngestValidationError) as err:
        customers.ingest("customers", df)
    assert len(err.value.problems) == 30 and "and 10 more" in str(err.value)


def test_types_are_converted_and_missing_features_are_null(customers: FeatureStore) -> None:
    df = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "ts": pd.to_datetime(  # Paris time, converted to UTC; nanoseconds truncated
                ["2024-01-01T01:00:00.0000000", "2024-01-01T01:00:00.0000019"]
            ).tz_localize("Europe/Paris"),
            "age": [30.0, None],  # whole floats read as ints
            "income": [1, 2],  # ints read as floats
        }
    )
    report = customers.ingest("customers", df)
    assert (report.rows, report.records, report.duplicate) == (2, 2, False)
    table = customers.offline_table("customers").sort_by("customer_id")
    assert table["ts"].to_pylist() == [at(0), at(0) + dt.timedelta(microseconds=1)]
    assert table["age"].to_pylist() == [30, None]
    assert table["income"].to_pylist() == [1.0, 2.0]
    assert table["segment"].to_pylist() == [None, None]
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert set(table["__batch"].to_pylist()) == {report.batch_id}
    assert table["__deleted"].to_pylist() == [False, False]
    assert table["__write_time"].to_pylist() == [report.write_time] * 2


def test_newer_event_time_wins_online_and_every_version_stays_offline(
    customers: FeatureStore,
) -> None:
    customers.ingest("customers", frame([("a", at(2), 2, 2.0, "two"), ("a", at(1), 1, 1.0, "one")]))
    assert customers.get_record("customers", "a")["segment"] == "two"  # type: ignore[index]
    customers.ingest("customers", frame([("a", at(0), 0, 0.0, "late")]))  # older: offline only
    assert customers.get_record("customers", "a")["segment"] == "two"  # type: ignore[index]
    customers.ingest("customers", frame([("a", at(2), 9, 9.0, "tie")]))  # same time, later write
    record = customers.get_record("customers", "a")
    assert record == {
        "customer_id": "a",
        "ts": at(2),
        "age": 9,
        "income": 9.0,
        "segment": "tie",
    }
    assert sorted(customers.offline_table("customers")["segment"].to_pylist()) == [
        "late",
        "one",
        "tie",
        "two",
    ]


def test_reingesting_the_same_batch_is_a_no_op(
    customers: FeatureStore, admin: trivet.Session
) -> None:
    df = frame([("a", at(0), 1, 1.0, "x"), ("b", at(1), 2, 2.0, "y")])
    first = customers.ingest("customers", df)
    second = customers.ingest("customers", pa.Table.from_pandas(df))
    assert second.duplicate and second.batch_id == first.batch_id
    assert second.write_time == first.write_time and second.offline_version == first.offline_version
    assert offline_rows(customers) == 2
    third = customers.ingest("customers", df.iloc[::-1])  # other order: another batch
    assert not third.duplicate and offline_rows(customers) == 4
    logged = [e for e in audit.entries(admin.catalog) if e.action == "feature:ingest"]
    assert [e.detail["batch"] for e in logged] == [first.batch_id, third.batch_id]


def test_a_crash_after_the_delta_commit_is_recovered_without_a_second_write(
    customers: FeatureStore, admin: trivet.Session
) -> None:
    """Simulate a process dying after the Delta commit, before the online and catalog writes."""
    group = customers.describe("customers")
    df = frame([("a", at(0), 1, 1.0, "x")])
    table = validate(group, df)
    batch = batch_id_of(group, table)
    first_write = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    customers.offline.append(group, table, batch_id=batch, write_time=first_write)
    assert customers.get_record("customers", "a") is None  # the crash: online never written
    report = customers.ingest("customers", df)
    assert report.batch_id == batch and not report.duplicate
    assert report.write_time == first_write  # the first attempt's write time is kept
    assert offline_rows(customers) == 1  # not appended twice
    assert customers.get_record("customers", "a")["age"] == 1  # type: ignore[index]
    with admin.catalog.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(feature_batches)).scalar() == 1
    assert customers.ingest("customers", df).duplicate


def test_files_csv_and_parquet(customers: FeatureStore, tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text(
        "customer_id,ts,age,income,segment\n"
        "007,2024-01-01T00:00:00Z,30,1.5,\n"
        "008,2024-01-01T00:00:00Z,,2.5,b\n"
    )
    report = customers.ingest("customers", csv)
    assert report.rows == 2
    assert customers.get_record("customers", "007") == {
        "customer_id": "007",  # a string id stays a string: CSV columns are read as text
        "ts": at(0),
        "age": 30,
        "income": 1.5,
        "segment": None,
    }
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(frame([("p", at(1), 1, 1.0, "q")])), parquet)
    assert customers.ingest("customers", str(parquet)).rows == 1
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("customer_id,ts,age\nx,2024-01-01T00:00:00Z,old\n")
    with pytest.raises(IngestValidationError, match="row 0, column 'age'"):
        customers.ingest("customers", bad_csv)
    with pytest.raises(NotFound):
        customers.ingest("customers", tmp_path / "missing.parquet")
    with pytest.raises(ValidationError, match=r"only \.parquet and \.csv"):
        customers.ingest("customers", tmp_path / "rows.json")
    with pytest.raises(ValidationError, match="Cannot ingest a list"):
        customers.ingest("customers", [1, 2])  # type: ignore[arg-type]


def test_lists_timestamps_and_bools(fs: FeatureStore) -> None:
    fs.create_group(
        customers_spec(
            "events",
            record_id_dtype="int",
            features=[
                Feature(name="scores", dtype="list<float>"),
                Feature(name="seen", dtype="list<timestamp>"),
                Feature(name="first", dtype="timestamp"),
                Feature(name="active", dtype="bool"),
            ],
        )
    )
    df = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "ts": [at(0), at(1)],
            "scores": [[1, 2.5], None],
            "seen": [[at(3)], []],
            "first": [at(4), None],
            "active": [True, None],
        }
    )
    fs.ingest("events", df)
    assert fs.get_record("events", 1) == {
        "customer_id": 1,
        "ts": at(0),
        "scores": [1.0, 2.5],
        "seen": [at(3)],
        "first": at(4),
        "active": True,
    }
    assert fs.get_record("events", "2")["seen"] == []  # type: ignore[index]
    with pytest.raises(IngestValidationError, match="cannot be read as list<float>"):
        fs.ingest("events", pd.DataFrame({"customer_id": [3], "ts": [at(0)], "scores": ["x"]}))
    mixed = pd.DataFrame({"customer_id": [3, 4], "ts": [at(0)] * 2, "scores": [[1.0], "x"]})
    with pytest.raises(IngestValidationError, match="row 1, column 'scores': 'x' is not a list"):
        fs.ingest("events", mixed)


def test_large_batches_validate_in_parallel(customers: FeatureStore) -> None:
    n = 60_000
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "ts": pd.Timestamp("2024-01-01", tz="UTC"),
            "age": 1,
            "income": ["1.5"] * n,
        }
    )
    df.loc[41_000, "income"] = "bad"
    with pytest.raises(IngestValidationError) as err:
        customers.ingest("customers", df, max_workers=2)
    assert [(p.row, p.column) for p in err.value.problems] == [(41_000, "income")]
    df.loc[41_000, "income"] = "2"
    report = customers.ingest("customers", df, max_workers=2)
    assert report.rows == n and report.records == n
    assert customers.get_record("customers", "c41000")["income"] == 2.0  # type: ignore[index]


def test_an_empty_batch_writes_nothing(customers: FeatureStore) -> None:
    report = customers.ingest("customers", frame([]))
    assert report.rows == 0 and not report.duplicate
    assert customers.offline.version(customers.describe("customers")) == 0
