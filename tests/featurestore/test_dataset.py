"""``FeatureStore.build_dataset``: point-in-time training sets from the offline tables.

The engine (``_pit.py``) has its own oracle tests; these check the wiring end to end:
rows ingested through ``fs.ingest`` (several batches, late arrivals, equal event times,
a soft delete, a TTL) against a brute-force loop over the offline table's rows, with
their real write times.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import trivet
from trivet.errors import PermissionDenied, ValidationError
from trivet.featurestore import Feature, FeatureGroupNotFound, FeatureStore, VersionVacuumed
from trivet.platform import audit
from trivet.platform.catalog import now_utc
from trivet.platform.lineage import Node
from trivet.platform.settings import Settings

from .conftest import at, customers_spec, user_store

DAY = dt.timedelta(days=1)
FEATURES = ["age", "income", "segment"]


def rows(*items: tuple[Any, ...], columns: tuple[str, ...] = ("customer_id", "ts", "age")) -> Any:
    return pd.DataFrame(items, columns=list(columns))


def tick() -> dt.datetime:
    """Now, strictly after every write so far and before every later one."""
    time.sleep(0.002)
    moment = now_utc()
    time.sleep(0.002)
    return moment


def oracle(
    history: list[dict[str, Any]],
    entity: list[tuple[str, dt.datetime]],
    *,
    ttl: dt.timedelta | None,
    created_cutoff: bool = False,
    as_of: dt.datetime | None = None,
    include_deleted: bool = False,
) -> list[list[Any]]:
    """The semantics of issue #3, item 5, as a loop: one list of features per entity row."""
    out = []
    for key, when in entity:
        candidates = [
            r
            for r in history
            if r["customer_id"] == key
            and r["ts"] <= when
            and (ttl is None or r["ts"] >= when - ttl)
            and (not created_cutoff or r["__write_time"] <= when)
            and (as_of is None or r["__write_time"] <= as_of)
            and not (include_deleted and r["__deleted"])
        ]
        if not candidates:
            out.append([None] * len(FEATURES))
            continue
        winner = max(candidates, key=lambda r: (r["ts"], r["__write_time"], r["__batch"]))
        out.append([None if winner["__deleted"] else winner[f] for f in FEATURES])
    return out


def values(frame: pd.DataFrame, columns: list[str]) -> list[list[Any]]:
    return [
        [None if pd.isna(v) else v for v in row]
        for row in frame[columns].astype(object).itertuples(index=False)
    ]


def test_matches_a_brute_force_loop_over_the_ingested_rows(fs: FeatureStore) -> None:
    ttl = 6 * DAY
    fs.create_group(customers_spec(ttl=ttl))
    base = now_utc().replace(microsecond=0) - 10 * DAY
    cols = ("customer_id", "ts", "age", "income", "segment")
    fs.ingest(
        "customers",
        rows(
            ("a", base, 30, 1.0, "x"),
            ("a", base + 2 * DAY, 31, None, "y"),  # a null stays null
            ("b", base + DAY, 40, 2.0, "z"),
            ("c", base + 5 * DAY, 50, 3.0, None),
            columns=cols,
        ),
    )
    c1 = tick()
    fs.ingest(
        "customers",
        rows(
            ("a", base + 2 * DAY, 32, 5.0, "w"),  # same event time, later write: wins
            ("b", base + 7 * DAY, 41, 2.5, "z"),
            ("a", base - DAY, 29, 0.5, "old"),  # a late arrival, older than everything
            columns=cols,
        ),
    )
    c2 = tick()
    fs.delete_record("customers", "b", event_time=base + 8 * DAY)
    c3 = tick()
    fs.ingest(
        "customers",
        rows(
            ("b", base + 7 * DAY + dt.timedelta(hours=1), 42, 9.0, "late"),  # before delete
            ("c", base + 6 * DAY, 51, None, "c6"),
            ("a", base + 9 * DAY, 33, 6.0, "n"),
            columns=cols,
        ),
    )
    c4 = tick()
    keys = ["a", "b", "c", "nobody"]
    offsets = [-2 * DAY, 0 * DAY, DAY, 2 * DAY, 5 * DAY, 6 * DAY, 8 * DAY, 9 * DAY, 12 * DAY]
    boundary = base + 2 * DAY + ttl
    times = [base + o for o in offsets] + [boundary, boundary + dt.timedelta(seconds=1)]
    times += [c1, c2, c3, c4]
    entity = list(itertools.product(keys, times))
    entity += entity[:7]  # duplicates, kept in place
    frame = pd.DataFrame(
        {
            "customer_id": [k for k, _ in entity],
            "when": [t for _, t in entity],
            "label": range(len(entity)),
        }
    )
    history = fs.offline_table("customers").to_pylist()
    assert len(history) == 4 + 3 + 1 + 3

    cases: list[dict[str, Any]] = [
        {},
        {"created_cutoff": True},
        {"include_deleted": True},
        {"as_of": c2},
        {"as_of": c3, "created_cutoff": True, "include_deleted": True},
    ]
    for options in cases:
        got = fs.build_dataset(frame, ["customers:*"], timestamp="when", **options)
        assert list(got.columns) == ["customer_id", "when", "label", *FEATURES]
        assert got["label"].tolist() == list(range(len(entity))), options
        assert values(got, FEATURES) == oracle(history, entity, ttl=ttl, **options), options
    # the TTL boundary is inclusive; the entity rows before any feature row match nothing
    got = fs.build_dataset(frame, ["customers:age"], timestamp="when")
    assert got["age"].iloc[entity.index(("a", boundary))] == 32
    assert got["age"].iloc[entity.index(("a", boundary + dt.timedelta(seconds=1)))] is pd.NA
    assert got["age"].iloc[entity.index(("a", base - 2 * DAY))] is pd.NA


def test_order_duplicates_index_and_dtypes_are_kept(fs: FeatureStore) -> None:
    fs.create_group(customers_spec())
    fs.ingest("customers", rows(("a", at(0), 30), ("b", at(0), None)))
    entity = pd.DataFrame(
        {
            "customer_id": ["b", "a", "zz", "a", "b"],
            "when": [at(1)] * 5,
            "label": [0.5, 1.5, 2.5, 1.5, 0.5],
        },
        index=[7, 3, 3, 9, 1],
    )
    got = fs.build_dataset(entity, ["customers:age", "customers:income"], timestamp="when")
    assert list(got.index) == [7, 3, 3, 9, 1]
    assert got["age"].dtype == "Int64"
    assert got["age"].tolist() == [pd.NA, 30, pd.NA, 30, pd.NA]
    assert got["income"].dtype == "float64"
    pd.testing.assert_frame_equal(got[entity.columns], entity)  # the entity, untouched
    assert got.attrs == {}
    table = fs.build_dataset(entity, ["customers:age"], timestamp="when", to="arrow")
    assert isinstance(table, pa.Table) and table.schema.field("age").type == pa.int64()
    assert table["age"].to_pylist() == [None, 30, None, 30, None]
    arrow_in = fs.build_dataset(pa.Table.from_pandas(entity), ["customers:age"], timestamp="when")
    assert arrow_in["age"].tolist() == [pd.NA, 30, pd.NA, 30, pd.NA]
    empty = fs.build_dataset(entity.iloc[:0], ["customers:*"], timestamp="when")
    assert len(empty) == 0 and empty["age"].dtype == "Int64"


def test_two_groups_joined_with_their_own_keys_and_ttls(fs: FeatureStore) -> None:
    fs.create_group(customers_spec(ttl=DAY))
    fs.create_group(
        customers_spec(
            "accounts",
            record_id="account",
            record_id_dtype="int",
            features=[Feature(name="age", dtype="int"), Feature(name="limit", dtype="float")],
        )
    )
    fs.ingest("customers", rows(("a", at(0), 30), ("a", at(30), 31)))
    fs.ingest(
        "accounts",
        rows(
            (1, at(0), 5, 100.0), (1, at(10), 6, 200.0), columns=("account", "ts", "age", "limit")
        ),
    )
    entity = pd.DataFrame(
        {"customer_id": ["a", "a", "a"], "acct": [1, 1, 2], "when": [at(5), at(26), at(31)]}
    )
    got = fs.build_dataset(
        entity,
        ["customers:age", "accounts:*"],
        timestamp="when",
        entity_key={"accounts": "acct"},
        include_match_times=True,
    )
    assert list(got.columns) == [
        "customer_id",
        "acct",
        "when",
        "customers__age",  # the name clash is resolved with the group's name
        "customers__event_time",
        "customers__write_time",
        "accounts__age",
        "limit",
        "accounts__event_time",
        "accounts__write_time",
    ]
    assert got["customers__age"].tolist() == [30, pd.NA, 31]  # at(26) is past the 1-day TTL
    assert got["accounts__age"].tolist() == [5, 6, pd.NA]
    assert got["limit"].fillna(-1.0).tolist() == [100.0, 200.0, -1.0]
    assert got["accounts__event_time"].iloc[1] == pd.Timestamp(at(10))
    with pytest.raises(ValidationError, match="holds integers"):
        fs.build_dataset(entity, ["accounts:age"], timestamp="when", entity_key="customer_id")


def test_names_are_checked_with_suggestions(fs: FeatureStore) -> None:
    fs.create_group(customers_spec())
    fs.create_group(customers_spec("online_only", offline=False))
    entity = pd.DataFrame({"customer_id": ["a"], "when": [at(1)]})
    with pytest.raises(FeatureGroupNotFound, match="'custmers'") as err:
        fs.build_dataset(entity, ["custmers:age"], timestamp="when")
    assert "customers" in str(err.value.hint)
    with pytest.raises(ValidationError, match="no feature 'agee'") as verr:
        fs.build_dataset(entity, ["customers:agee"], timestamp="when")
    assert "age" in str(verr.value.hint)
    with pytest.raises(ValidationError, match="no offline table"):
        fs.build_dataset(entity, ["online_only:age"], timestamp="when")
    for bad in (["customers"], ["customers:"], ["a:b:c"], [], "customers:age"):
        with pytest.raises(ValidationError):
            fs.build_dataset(entity, bad, timestamp="when")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="no timestamp column 'ts'"):
        fs.build_dataset(entity, ["customers:age"], timestamp="ts")
    with pytest.raises(ValidationError, match="naive"):
        fs.build_dataset(entity, ["customers:age"], timestamp="when", as_of=dt.datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="to must be"):
        fs.build_dataset(entity, ["customers:age"], timestamp="when", to="polars")  # type: ignore[arg-type]
    # a feature asked for twice (or also by '*') comes once
    got = fs.build_dataset(entity, ["customers:segment", "customers:*"], timestamp="when")
    assert list(got.columns)[2:] == ["segment", "age", "income"]


def test_reading_offline_is_authorized_once_per_group_and_denials_are_audited(
    fs: FeatureStore, admin: trivet.Session, workspace: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs.create_group(customers_spec("one"))
    fs.create_group(customers_spec("two"))
    fs.ingest("one", rows(("a", at(0), 1)))
    entity = pd.DataFrame({"customer_id": ["a"] * 50, "when": [at(1)] * 50})
    dana = user_store(
        admin,
        workspace,
        "dana",
        [("data_scientist", "default/feature_groups/one"), ("online_reader", "default/*")],
    )
    calls: list[tuple[str, str]] = []
    real = dana._s.authorize

    def counting(action: str, resource: str):  # type: ignore[no-untyped-def]
        calls.append((action, resource))
        return real(action, resource)

    monkeypatch.setattr(dana._s, "authorize", counting)
    got = dana.build_dataset(entity, ["one:age", "one:income"], timestamp="when")
    assert got["age"].tolist() == [1] * 50
    assert calls == [("feature:read_offline", "default/feature_groups/one")]
    with pytest.raises(PermissionDenied, match="feature:read_offline"):
        dana.build_dataset(entity, ["one:age", "two:age"], timestamp="when")
    with pytest.raises(PermissionDenied):  # no existence oracle
        dana.build_dataset(entity, ["nosuchgroup:age"], timestamp="when")
    denied = [
        (e.actor, e.action, e.resource) for e in audit.entries(admin.catalog, outcome="denied")
    ]
    assert denied == [
        ("dana", "feature:read_offline", "default/feature_groups/two"),
        ("dana", "feature:read_offline", "default/feature_groups/nosuchgroup"),
    ]


def test_as_of_travels_in_time_through_delta_and_write_times(
    fs: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = fs.create_group(customers_spec())
    fs.ingest("customers", rows(("a", at(0), 1), ("b", at(0), 10)))
    first = tick()
    fs.ingest("customers", rows(("a", at(1), 2)))
    fs.delete_record("customers", "b", event_time=at(1))
    entity = pd.DataFrame({"customer_id": ["a", "b"], "when": [at(2)] * 2})
    assert fs.build_dataset(entity, ["customers:age"], timestamp="when")["age"].tolist() == [
        2,
        pd.NA,
    ]
    seen: list[Any] = []
    real = fs.offline.offline_files

    def spy(g: Any, *, as_of: Any = None) -> list[str]:
        seen.append(as_of)
        return real(g, as_of=as_of)

    monkeypatch.setattr(fs.offline, "offline_files", spy)
    past = fs.build_dataset(entity, ["customers:age"], timestamp="when", as_of=first)
    assert past["age"].tolist() == [1, 10]
    assert seen == [first]  # the Delta version current then
    assert len(real(group, as_of=first)) == 1 < len(real(group))
    before = fs.build_dataset(entity, ["customers:age"], timestamp="when", as_of=at(-1))
    assert before["age"].isna().all()
    # a hard delete vacuums the old files: travelling back past it fails clearly
    fs.delete_record("customers", "a", hard=True)
    with pytest.raises(VersionVacuumed, match="hard delete"):
        fs.build_dataset(entity, ["customers:age"], timestamp="when", as_of=first)


def test_a_named_dataset_is_stored_with_lineage(fs: FeatureStore, admin: trivet.Session) -> None:
    fs.create_group(customers_spec())
    fs.create_group(customers_spec("other"))
    fs.ingest("customers", rows(("a", at(0), 1)))
    entity = pd.DataFrame({"customer_id": ["a", "b"], "when": [at(1)] * 2, "label": [1, 0]})
    got = fs.build_dataset(
        entity, ["customers:age", "other:segment"], timestamp="when", dataset_name="train-v1"
    )
    digest = got.attrs["trivet.dataset"]
    stored = admin.artifacts.get_dataframe(digest)
    assert stored["age"].fillna(-1).tolist() == [1, -1]
    assert admin.artifacts.describe(digest).folder == "default/datasets/train-v1"
    up = admin.lineage.upstream(Node(kind="dataset", id=digest))
    assert set(up.nodes) == {
        Node(kind="dataset", id=digest),
        Node(kind="feature_group", id="default/feature_groups/customers"),
        Node(kind="feature_group", id="default/feature_groups/other"),
    }
    built = [e for e in audit.entries(admin.catalog) if e.action == "feature:build_dataset"]
    assert len(built) == 1 and built[0].detail["digest"] == digest
    table = fs.build_dataset(
        entity, ["customers:age"], timestamp="when", to="arrow", dataset_name="train-v2"
    )
    assert table.schema.metadata[b"trivet.dataset"].decode() in {
        r.digest for r in admin.artifacts.list("default/datasets/train-v2")
    }
    with pytest.raises(ValidationError, match="dataset name"):
        fs.build_dataset(entity, ["customers:age"], timestamp="when", dataset_name="Bad Name")


def test_latest_rows(fs: FeatureStore) -> None:
    fs.create_group(customers_spec())
    fs.ingest("customers", rows(("a", at(0), 1), ("a", at(1), 2), ("a", at(2), 3), ("b", at(0), 9)))
    fs.delete_record("customers", "b", event_time=at(1))
    got = fs.latest_rows("customers", 2, features=["age"])
    assert got.to_dict("list") == {
        "customer_id": ["a", "a"],
        "ts": [pd.Timestamp(at(2)), pd.Timestamp(at(1))],
        "age": [3, 2],
    }
    assert got["age"].dtype == "Int64"
    assert fs.latest_rows("customers", include_deleted=True)["customer_id"].tolist() == ["a", "b"]


runner = CliRunner()


def test_the_dataset_command(tmp_path: Path) -> None:
    from trivet.cli import app

    ws = tmp_path / "ws"
    settings = trivet.init(ws)
    store = FeatureStore(trivet.connect(settings.workspace))
    store.create_group(customers_spec())
    store.create_group(customers_spec("accounts", record_id_dtype="int"))
    store.ingest("customers", rows(("007", at(0), 30)))
    store.ingest("accounts", rows((7, at(0), 5)))
    store.close()
    entity = tmp_path / "entity.csv"
    entity.write_text(
        "customer_id,when,label\n007,2024-01-01T01:00:00Z,1\n008,2024-01-01T01:00:00+01:00,0\n"
    )
    base = ["-w", str(ws), "featurestore", "dataset"]
    result = runner.invoke(
        app, [*base, str(entity), "-f", "customers:age", "-t", "when", "--json"], env={}
    )
    assert result.exit_code == 0, result.stderr
    assert [(r["customer_id"], r["age"], r["label"]) for r in json.loads(result.stdout)] == [
        ("007", 30, 1),
        ("008", None, 0),
    ]
    out = tmp_path / "out.parquet"
    result = runner.invoke(
        app,
        [*base, str(entity), "-f", "customers:*", "-t", "when", "-o", str(out), "--save", "s1"],
        env={},
    )
    assert result.exit_code == 0, result.stderr
    assert "Saved dataset 's1'" in result.stderr
    assert pd.read_parquet(out)["age"].fillna(-1).tolist() == [30, -1]
    ints = tmp_path / "accounts.parquet"
    pd.DataFrame({"customer_id": [7, 8], "when": [at(1)] * 2}).to_parquet(ints)
    result = runner.invoke(app, [*base, str(ints), "-f", "accounts:age", "-t", "when"], env={})
    assert result.exit_code == 0 and "customer_id" in result.stdout
    naive = tmp_path / "naive.csv"
    naive.write_text("customer_id,when\n007,2024-01-01 01:00\n")
    result = runner.invoke(app, [*base, str(naive), "-f", "customers:age", "-t", "when"], env={})
    assert result.exit_code == 2 and "no time zone" in result.stderr
    result = runner.invoke(
        app,
        [*base, str(entity), "-f", "customers:age", "-t", "when", "--as-of", "2024-01-01"],
        env={},
    )
    assert result.exit_code == 2 and "no time zone" in result.stderr
