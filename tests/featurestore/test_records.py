"""Single records: put, get (with TTL), batch get, soft and hard deletes, permissions."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import trivet
from trivet.errors import PermissionDenied, ValidationError
from trivet.featurestore import FeatureStore, IngestValidationError
from trivet.platform import audit
from trivet.platform.catalog import now_utc
from trivet.platform.settings import Settings

from .conftest import at, customers_spec, user_store


@pytest.fixture
def customers(fs: FeatureStore) -> FeatureStore:
    fs.create_group(customers_spec())
    return fs


def rows(*items: tuple[str, dt.datetime, int]) -> pd.DataFrame:
    return pd.DataFrame(items, columns=["customer_id", "ts", "age"])


def test_put_and_get_record(customers: FeatureStore, admin: trivet.Session) -> None:
    report = customers.put_record(
        "customers", {"customer_id": "a", "ts": at(1), "age": 41, "segment": "gold"}
    )
    assert report.rows == 1
    assert customers.get_record("customers", "a") == {
        "customer_id": "a",
        "ts": at(1),
        "age": 41,
        "income": None,
        "segment": "gold",
    }
    assert customers.get_record("customers", "a", features=["segment"]) == {
        "customer_id": "a",
        "ts": at(1),
        "segment": "gold",
    }
    assert customers.offline_table("customers").num_rows == 1
    assert ("feature:put_record", "default/feature_groups/customers", "ok") in [
        (e.action, e.resource, e.outcome) for e in audit.entries(admin.catalog)
    ]
    with pytest.raises(ValidationError, match="no feature 'segmnt'") as err:
        customers.get_record("customers", "a", features=["segmnt"])
    assert "segment" in str(err.value.hint)
    with pytest.raises(IngestValidationError, match="'old' cannot be read as int"):
        customers.put_record("customers", {"customer_id": "b", "ts": at(1), "age": "old"})
    with pytest.raises(IngestValidationError, match="no time zone"):
        customers.put_record("customers", {"customer_id": "b", "ts": dt.datetime(2024, 1, 1)})
    with pytest.raises(ValidationError, match="string record ids"):
        customers.get_record("customers", 7)


def test_ttl_is_applied_on_read(fs: FeatureStore) -> None:
    fs.create_group(customers_spec(ttl=dt.timedelta(hours=1)))
    now = now_utc()
    fs.ingest(
        "customers",
        rows(
            ("fresh", now - dt.timedelta(minutes=30), 1), ("stale", now - dt.timedelta(hours=2), 2)
        ),
    )
    assert fs.get_record("customers", "fresh") is not None
    assert fs.get_record("customers", "stale") is None
    assert fs.batch_get_record({"customers": ["stale", "fresh"]})["customers"][0] is None
    fs.put_record("customers", {"customer_id": "stale", "ts": now, "age": 3})
    assert fs.get_record("customers", "stale")["age"] == 3  # type: ignore[index]


def test_batch_get_across_groups_keeps_order(fs: FeatureStore) -> None:
    fs.create_group(customers_spec("one"))
    fs.create_group(customers_spec("two", record_id_dtype="int"))
    fs.ingest("one", rows(("a", at(0), 1), ("b", at(0), 2)))
    fs.ingest("two", pd.DataFrame({"customer_id": [1, 2], "ts": [at(0)] * 2, "age": [10, 20]}))
    by_group = fs.batch_get_record({"one": ["b", "zz", "a"], "two": [2, "1"]})
    assert [r and r["age"] for r in by_group["one"]] == [2, None, 1]
    assert [r and r["age"] for r in by_group["two"]] == [20, 10]
    pairs = fs.batch_get_record([("two", 1), ("one", "a"), ("two", 3), ("one", "a")])
    assert [r and r["age"] for r in pairs] == [10, 1, None, 1]
    with pytest.raises(ValidationError, match="pairs"):
        fs.batch_get_record(["one"])  # type: ignore[list-item]


def test_reads_need_read_online_denials_are_audited(
    customers: FeatureStore, admin: trivet.Session, workspace: Settings
) -> None:
    customers.ingest("customers", rows(("a", at(0), 1)))
    vera = user_store(admin, workspace, "vera", [("viewer", "default/*")])
    with pytest.raises(PermissionDenied, match="feature:read_online"):
        vera.get_record("customers", "a")
    with pytest.raises(PermissionDenied):
        vera.batch_get_record({"customers": ["a"]})
    with pytest.raises(PermissionDenied, match="feature:write"):
        vera.put_record("customers", {"customer_id": "b", "ts": at(0)})
    denied = [
        (e.actor, e.action, e.resource) for e in audit.entries(admin.catalog, outcome="denied")
    ]
    assert denied == [
        ("vera", "feature:read_online", "default/feature_groups/customers"),
        ("vera", "feature:read_online", "default/feature_groups/customers"),
        ("vera", "feature:write", "default/feature_groups/customers"),
    ]
    # no existence oracle: an unknown group is refused the same way
    with pytest.raises(PermissionDenied):
        vera.get_record("nosuchgroup", "a")


def test_batch_get_authorizes_once_per_group(
    fs: FeatureStore, admin: trivet.Session, workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs.create_group(customers_spec("one"))
    fs.create_group(customers_spec("two"))
    ids = [f"c{i}" for i in range(100)]
    fs.ingest("one", rows(*((i, at(0), 1) for i in ids)))
    fs.ingest("two", rows(*((i, at(0), 2) for i in ids)))
    app = user_store(admin, workspace, "app", [("online_reader", "default/feature_groups/one")])
    calls: list[tuple[str, str]] = []
    session = app._s
    real = session.authorize

    def counting(action: str, resource: str):  # type: ignore[no-untyped-def]
        calls.append((action, resource))
        return real(action, resource)

    monkeypatch.setattr(session, "authorize", counting)
    got = app.batch_get_record({"one": ids})
    assert len(got["one"]) == 100 and all(r is not None for r in got["one"])
    assert calls == [("feature:read_online", "default/feature_groups/one")]
    calls.clear()
    with pytest.raises(PermissionDenied, match="feature_groups/two"):
        app.batch_get_record([("one", "c1"), ("two", "c1"), ("one", "c2"), ("two", "c3")])
    assert calls == [
        ("feature:read_online", "default/feature_groups/one"),
        ("feature:read_online", "default/feature_groups/two"),
    ]


def test_soft_delete_leaves_a_tombstone(customers: FeatureStore) -> None:
    customers.ingest("customers", rows(("a", at(0), 1), ("b", at(0), 2)))
    customers.delete_record("customers", "a", event_time=at(5))
    assert customers.get_record("customers", "a") is None
    assert customers.get_record("customers", "b") is not None
    table = customers.offline_table("customers").to_pandas().sort_values("ts")
    tomb = table[table["__deleted"]]
    assert list(tomb["customer_id"]) == ["a"] and list(tomb["ts"]) == [pd.Timestamp(at(5))]
    assert tomb["age"].isna().all()
    customers.ingest("customers", rows(("a", at(3), 3)))  # late and older: stays deleted
    assert customers.get_record("customers", "a") is None
    customers.ingest("customers", rows(("a", at(6), 6)))  # newer: back
    assert customers.get_record("customers", "a")["age"] == 6  # type: ignore[index]
    with pytest.raises(ValidationError, match="timezone-aware"):
        customers.delete_record("customers", "a", event_time=dt.datetime(2024, 1, 1))


def _parquet_files(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, fs in os.walk(root) for f in fs if f.endswith(".parquet")]


def test_hard_delete_erases_every_version_and_vacuums(
    customers: FeatureStore, admin: trivet.Session
) -> None:
    secret = "subject-4711"
    for hour in range(3):  # three commits, three files holding the record
        customers.ingest("customers", rows((secret, at(hour), hour), (f"other{hour}", at(hour), 9)))
    customers.delete_record("customers", secret, event_time=at(4))  # a tombstone too
    group = customers.describe("customers")
    root = Path(customers.offline.table_uri(group))
    before = set(_parquet_files(root))
    customers.delete_record("customers", secret, hard=True)
    after = set(_parquet_files(root))
    assert before - after, "vacuum removed the files that held the record"
    for path in after:  # no file left on disk holds it, referenced or not
        assert secret not in pq.read_table(path).column("customer_id").to_pylist()
    assert {Path(f) for f in customers.offline.offline_files(group)} == after
    table = customers.offline_table("customers")
    assert sorted(table["customer_id"].to_pylist()) == ["other0", "other1", "other2"]
    assert customers.online.read(group.id, [secret]) == [None]  # gone, not a tombstone
    # neither the Delta log nor the audit log names the record
    for log_file in (root / "_delta_log").iterdir():
        assert secret not in log_file.read_text(errors="replace")
    erased = [e for e in audit.entries(admin.catalog) if e.action == "feature:erase_record"]
    assert len(erased) == 1 and secret not in str(erased[0].detail)
    assert all(secret not in str(e.detail) for e in audit.entries(admin.catalog))
    customers.ingest("customers", rows((secret, at(9), 1)))  # a new record may come later
    assert customers.get_record("customers", secret)["age"] == 1  # type: ignore[index]


def test_hard_delete_needs_feature_delete(
    customers: FeatureStore, admin: trivet.Session, workspace: Settings
) -> None:
    customers.ingest("customers", rows(("a", at(0), 1)))
    dana = user_store(admin, workspace, "dana", [("data_scientist", "default/*")])
    dana.delete_record("customers", "a")  # soft: feature:write
    with pytest.raises(PermissionDenied, match="feature:delete"):
        dana.delete_record("customers", "a", hard=True)


def test_offline_only_and_online_only_groups(fs: FeatureStore) -> None:
    fs.create_group(customers_spec("offline_only", online=False))
    fs.create_group(customers_spec("online_only", offline=False))
    fs.ingest("offline_only", rows(("a", at(0), 1)))
    fs.ingest("online_only", rows(("a", at(0), 1)))
    assert fs.get_record("offline_only", "a") is None
    assert fs.offline_table("offline_only").num_rows == 1
    assert fs.get_record("online_only", "a") is not None
    assert fs.offline_table("online_only").num_rows == 0
    assert not fs.offline.exists(fs.describe("online_only"))
    fs.delete_record("online_only", "a", hard=True)
    assert fs.get_record("online_only", "a") is None


def test_offline_files_refuse_deletion_vectors(fs: FeatureStore) -> None:
    from deltalake import DeltaTable

    group = fs.create_group(customers_spec())
    fs.ingest("customers", rows(("a", at(0), 1)))
    assert len(fs.offline.offline_files(group)) == 1
    assert fs.offline.offline_files(group, as_of=0) == []
    DeltaTable(fs.offline.table_uri(group)).alter.set_table_properties(
        {"delta.enableDeletionVectors": "true"}
    )
    from trivet.errors import BackendError

    with pytest.raises(BackendError, match="deletionVectors"):
        fs.offline.offline_files(group)


def test_the_feature_store_serves_reads_from_redis(
    admin: trivet.Session, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With online_url at a Redis server, ingest and reads go through it end to end."""
    monkeypatch.setenv("TRIVET_ONLINE_URL", f"{redis_url}?prefix=test:{tmp_path.name}:")
    session = trivet.connect(admin.settings.workspace)
    store = FeatureStore(session)
    assert "RedisOnlineStore" in repr(store.online)
    store.create_group(customers_spec())
    store.ingest("customers", rows(("a", at(1), 30), ("a", at(2), 31), ("b", at(1), 50)))
    assert store.get_record("customers", "a")["age"] == 31  # type: ignore[index]
    store.put_record("customers", {"customer_id": "a", "ts": at(0.5), "age": 29})  # older
    assert store.get_record("customers", "a")["age"] == 31  # type: ignore[index]
    store.delete_record("customers", "b")
    assert store.get_record("customers", "b") is None
    store.close()


def test_a_repeated_delete_after_a_re_put_deletes_again(customers: FeatureStore) -> None:
    """Single-record writes are intents of their own, never deduplicated as a batch."""
    record = {"customer_id": "a", "ts": at(1), "age": 40}
    customers.put_record("customers", record)
    customers.delete_record("customers", "a", event_time=at(1))
    assert customers.get_record("customers", "a") is None
    customers.put_record("customers", record)
    assert customers.get_record("customers", "a") is not None
    customers.delete_record("customers", "a", event_time=at(1))
    assert customers.get_record("customers", "a") is None
