"""The durable write buffer behind put_record and soft deletes (featurestore/buffer.py).

What is checked: a write is on disk in the buffer and online when put_record returns,
and offline only after a flush; flushes happen by count, by age, on close, on a read of
the offline table, and after a crash (a flush killed at each of its steps, by fault
injection here and by SIGKILL in test_crash.py), exactly once; micro-batches keep each
write's own write time, so ties break as online; validation and permissions are those
of a one-row ingest; hard deletes scrub the buffer file.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trivet
from trivet.errors import PermissionDenied, ValidationError
from trivet.featurestore import (
    Dtype,
    Feature,
    FeatureGroupSpec,
    FeatureStore,
    IngestValidationError,
)
from trivet.featurestore._codec import Codec, to_us
from trivet.featurestore.buffer import RecordBuffer, flush_groups
from trivet.featurestore.ingest import validate, validate_record
from trivet.platform import audit
from trivet.platform.catalog.schema import feature_batches
from trivet.platform.settings import Settings

from .conftest import at, customers_spec, detached_group, user_store

WAIT_S = 20.0  # polling deadline for the background flusher (a bound, not a measurement)


def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, "the background flusher never flushed"
        time.sleep(0.01)


def quiet_store(session: trivet.Session) -> FeatureStore:
    """A store whose flusher waits for a reader or close (no count or age trigger)."""
    return FeatureStore(session, flush_rows=1_000_000, flush_seconds=3600)


def abandon(store: FeatureStore) -> None:
    """Forget a store as a killed process would: no flush, no close, ever."""
    from trivet.featurestore import store as store_module

    assert store._flusher is not None and store._records is not None
    store._flusher.stop()
    store._records.close()
    store._flusher = store._records = None
    store_module._open_stores.discard(store)


def put(fs: FeatureStore, rid: str, hours: float, age: int, name: str = "customers") -> Any:
    return fs.put_record(name, {"customer_id": rid, "ts": at(hours), "age": age})


def raw_rows(fs: FeatureStore, name: str = "customers") -> int:
    """Rows in the Delta table itself (no flush first, unlike offline_table)."""
    return int(fs.offline.read(fs.describe(name)).num_rows)


def batches(admin: trivet.Session, group_id: str) -> list[Any]:
    with admin.catalog.read() as conn:
        return list(
            conn.execute(sa.select(feature_batches).where(feature_batches.c.group_id == group_id))
        )


@pytest.fixture
def quiet(admin: trivet.Session) -> FeatureStore:
    store = quiet_store(admin)
    store.create_group(customers_spec())
    yield store
    store.close()


def test_a_put_is_buffered_online_at_once_and_offline_in_one_micro_batch(
    quiet: FeatureStore, admin: trivet.Session
) -> None:
    group = quiet.describe("customers")
    version = quiet.offline.version(group)
    reports = [put(quiet, f"c{i}", 1, i) for i in range(50)]
    assert all(r.buffered and r.offline_version is None for r in reports)
    assert len({r.batch_id for r in reports}) == 50  # each write has its own id
    assert quiet.get_record("customers", "c7")["age"] == 7  # type: ignore[index]
    assert raw_rows(quiet) == 0 and quiet.offline.version(group) == version  # not yet
    assert quiet._buffer().pending(group.id)[group.id].rows == 50

    table = quiet.offline_table("customers")  # a reader flushes first
    assert table.num_rows == 50
    assert quiet.offline.version(group) == version + 1  # one commit for the 50 writes
    assert len(set(table["__batch"].to_pylist())) == 1
    ids, stamps = table["customer_id"].to_pylist(), table["__write_time"].to_pylist()
    stamps = dict(zip(ids, stamps, strict=True))
    assert all(stamps[f"c{i}"] == r.write_time for i, r in enumerate(reports))
    assert sorted(stamps.values()) == [r.write_time for r in reports]  # strictly increasing
    assert quiet._buffer().pending(group.id) == {}
    [recorded] = batches(admin, group.id)
    assert recorded.rows == 50 and recorded.batch_id == table["__batch"][0].as_py()
    entries = [e for e in audit.entries(admin.catalog) if e.action == "feature:put_record"]
    assert {e.actor for e in entries} == {admin.principal.name}
    assert [e.detail["write"] for e in entries] == [r.batch_id for r in reports]  # one each
    assert {e.detail["batch"] for e in entries} == {recorded.batch_id}
    assert [e.detail["written_at"] for e in entries] == [r.write_time.isoformat() for r in reports]
    assert audit.verify(admin.catalog).ok  # the chain holds across rows appended together


def test_flush_by_count_by_age_and_on_close(admin: trivet.Session) -> None:
    by_count = FeatureStore(admin, flush_rows=10, flush_seconds=3600)
    by_count.create_group(customers_spec())
    for i in range(25):
        put(by_count, f"c{i}", 1, i)
    eventually(lambda: raw_rows(by_count) >= 20)  # two micro-batches of >= 10, by count
    by_count.close()
    assert raw_rows(by_count) == 25  # the rest on close

    by_age = FeatureStore(admin, flush_rows=1_000_000, flush_seconds=0.2)
    by_age.create_group(customers_spec("aged"))
    put(by_age, "a", 1, 1, name="aged")
    eventually(lambda: raw_rows(by_age, "aged") == 1)
    by_age.close()


def test_flush_and_its_permission(
    quiet: FeatureStore, admin: trivet.Session, workspace: Settings
) -> None:
    put(quiet, "a", 1, 1)
    vera = user_store(admin, workspace, "vera", [("viewer", "default/*")])
    with pytest.raises(PermissionDenied, match="feature:write"):
        vera.flush("customers")
    assert vera.flush() == 0  # nothing of what vera may write waits
    assert quiet.flush("customers") == 1 and raw_rows(quiet) == 1
    assert quiet.flush() == 0
    vera.close()


def test_ties_break_by_write_time_offline_as_online(quiet: FeatureStore) -> None:
    """Two puts of one record at one event time, in one micro-batch: the later wins both places."""
    put(quiet, "a", 1, 30)
    put(quiet, "a", 1, 31)
    put(quiet, "a", 0.5, 29)  # older event time: offline only
    assert quiet.get_record("customers", "a")["age"] == 31  # type: ignore[index]
    entity = pd.DataFrame({"customer_id": ["a"], "when": [at(2)]})
    got = quiet.build_dataset(entity, ["customers:age"], timestamp="when")
    assert got["age"].tolist() == [31]
    assert quiet.offline_table("customers").num_rows == 3


def test_soft_deletes_are_buffered_too(quiet: FeatureStore, admin: trivet.Session) -> None:
    put(quiet, "subject-x", 1, 1)
    quiet.delete_record("customers", "subject-x", event_time=at(2))
    assert quiet.get_record("customers", "subject-x") is None  # online at once
    assert raw_rows(quiet) == 0
    table = quiet.offline_table("customers").to_pandas().sort_values("ts")
    assert table["__deleted"].tolist() == [False, True]
    assert pd.isna(table["age"].iloc[1])
    [entry] = [e for e in audit.entries(admin.catalog) if e.action == "feature:delete_record"]
    assert len(entry.detail["record_sha256"]) == 64 and "subject-x" not in str(entry.detail)
    with pytest.raises(ValidationError, match="timezone-aware"):
        quiet.delete_record("customers", "subject-x", event_time=dt.datetime(2024, 1, 1))


def test_readers_flush_the_groups_they_read(quiet: FeatureStore) -> None:
    put(quiet, "a", 1, 41)
    assert quiet.sql("select age from customers")["age"].tolist() == [41]
    put(quiet, "b", 1, 42)
    assert quiet.latest_rows("customers")["age"].tolist() == [41, 42]
    put(quiet, "c", 1, 43)
    assert quiet.statistics("customers").records == 3


@pytest.mark.parametrize("step", ["append", "online", "record", "finish"])
def test_a_flush_that_dies_at_any_step_is_completed_once(
    admin: trivet.Session, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Fault injection at each step of a flush; the next open completes it, exactly once."""
    first = quiet_store(admin)
    group = first.create_group(customers_spec())
    for i in range(5):
        put(first, f"c{i}", 1, i)

    class Died(Exception):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Died

    import trivet.featurestore.buffer as buffer_module

    if step == "append":
        monkeypatch.setattr(first.offline, "append", die)
    elif step == "online":
        monkeypatch.setattr(first.online, "write", die)
    elif step == "record":
        monkeypatch.setattr(buffer_module, "_record", die)
    else:
        monkeypatch.setattr(RecordBuffer, "finish", die)
    with pytest.raises(Died):
        flush_groups(first, [group.id], wait=True)
    monkeypatch.undo()
    pending = first._buffer().pending(group.id)[group.id]
    assert pending.claimed and pending.rows == 5  # a claimed micro-batch was left behind
    abandon(first)  # "the process died": its store is never used or closed again

    second = FeatureStore(admin, flush_rows=1_000_000, flush_seconds=3600)
    put(second, "late", 2, 9)  # written after the crash: a micro-batch of its own
    table = second.offline_table("customers")
    assert sorted(table["customer_id"].to_pylist()) == ["c0", "c1", "c2", "c3", "c4", "late"]
    assert len(batches(admin, group.id)) == 2
    assert second._buffer().pending() == {}
    entries = [e for e in audit.entries(admin.catalog) if e.action == "feature:put_record"]
    assert len(entries) == 6  # every write audited once, the recovered ones too
    recovered = {
        e.detail["recovered"] for e in entries if e.detail["batch"] != entries[-1].detail["batch"]
    }
    assert recovered == {step != "finish"}  # "finish" died after the catalog had it
    second.close()


def test_rows_of_a_deleted_group_are_discarded(quiet: FeatureStore, admin: trivet.Session) -> None:
    group = quiet.describe("customers")
    put(quiet, "a", 1, 1)
    quiet.delete_group("customers")
    assert quiet._buffer().pending() == {}
    quiet.create_group(customers_spec())  # same name, new group: starts empty
    assert quiet.offline_table("customers").num_rows == 0
    assert batches(admin, group.id) == []


def test_a_hard_delete_flushes_then_erases_and_scrubs_the_buffer(
    quiet: FeatureStore, workspace: Settings
) -> None:
    secret = "subject-4711-secret-segment"
    quiet.put_record("customers", {"customer_id": "s", "ts": at(1), "segment": secret})
    folder = workspace.workspace / "buffer"
    assert any(secret.encode() in p.read_bytes() for p in folder.iterdir())  # durable: on disk
    put(quiet, "other", 1, 2)
    quiet.delete_record("customers", "s", hard=True)
    assert quiet.offline_table("customers")["customer_id"].to_pylist() == ["other"]
    assert quiet.get_record("customers", "s") is None
    for path in folder.iterdir():  # neither the database nor its WAL keeps the value
        assert secret.encode() not in path.read_bytes(), path.name


def test_online_only_groups_buffer_for_the_record(fs: FeatureStore, admin: trivet.Session) -> None:
    group = fs.create_group(customers_spec("live", offline=False))
    fs.put_record("live", {"customer_id": "a", "ts": at(1), "age": 5})
    assert fs.get_record("live", "a")["age"] == 5  # type: ignore[index]
    assert fs.flush("live") == 1
    assert [b.rows for b in batches(admin, group.id)] == [1]
    assert not fs.offline.exists(group)


def test_the_flush_settings_are_checked(admin: trivet.Session) -> None:
    with pytest.raises(ValidationError, match="flush_rows"):
        FeatureStore(admin, flush_rows=0)
    with pytest.raises(ValidationError, match="flush_seconds"):
        FeatureStore(admin, flush_seconds=0)


def test_every_type_round_trips_through_the_buffer(fs: FeatureStore) -> None:
    fs.create_group(
        FeatureGroupSpec(
            name="typed",
            record_id="id",
            record_id_dtype="int",
            event_time="ts",
            features=[
                Feature(name=name, dtype=dtype)
                for name, dtype in [
                    ("i", "int"),
                    ("f", "float"),
                    ("s", "string"),
                    ("b", "bool"),
                    ("t", "timestamp"),
                    ("li", "list<int>"),
                    ("lf", "list<float>"),
                    ("ls", "list<string>"),
                    ("lb", "list<bool>"),
                    ("lt", "list<timestamp>"),
                ]
            ],
        )
    )
    record = {
        "id": 2**62,
        "ts": at(1),
        "i": -(2**63),
        "f": 0.1,
        "s": 'é ✓ "quoted"',
        "b": False,
        "t": dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        "li": [1, None, 2**63 - 1],
        "lf": [float("inf"), None, -0.0],
        "ls": ["", None],
        "lb": [True, None],
        "lt": [at(2), None],
    }
    fs.put_record("typed", record)
    online = fs.get_record("typed", 2**62)
    offline = fs.offline_table("typed").to_pylist()[0]
    assert online == record
    assert {k: offline[k] for k in record} == record


# -- validation: the quick path answers exactly as a one-row ingest ---------------------------
GROUP = detached_group(
    "g",
    Dtype.INT,
    [
        ("i", "int"),
        ("f", "float"),
        ("s", "string"),
        ("b", "bool"),
        ("t", "timestamp"),
        ("li", "list<int>"),
        ("ls", "list<string>"),
    ],
    id="0" * 36,
)
_aware = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5))]),
)
_scalars = st.one_of(
    st.none(),
    st.integers(-(2**64), 2**64),
    st.floats(),
    st.booleans(),
    st.text(max_size=4),
    st.sampled_from(["007", "-3", "+4", " 5", "1e3", "nan", "inf", "true", "False", "x", ""]),
    _aware,
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    _aware.map(lambda d: d.isoformat()),
    st.sampled_from([np.int64(3), np.float64(2.5), np.bool_(True), pd.NA, pd.NaT]),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3))
_chaos = st.dictionaries(
    st.sampled_from(["id", "ts", "i", "f", "s", "b", "t", "li", "ls", "zz", "__batch"]),
    _values,
    max_size=9,
)
_edge_ints = st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1, 2**63, -(2**63), 0])
_typed = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(-(2**63), 2**63 - 1), _edge_ints), "ts": _aware},
    optional={
        "i": st.one_of(st.integers(), _edge_ints, st.floats(), st.none()),
        "f": st.one_of(st.floats(), st.integers(), _edge_ints, st.none()),
        "s": st.one_of(st.text(max_size=5), st.none(), st.integers()),
        "b": st.one_of(st.booleans(), st.none(), st.sampled_from([np.bool_(False), 1])),
        "t": st.one_of(_aware, st.none(), _aware.map(lambda d: d.isoformat())),
        "li": st.lists(st.one_of(st.integers(), _edge_ints, st.none(), st.floats()), max_size=3),
        "ls": st.lists(st.one_of(st.text(max_size=3), st.none()), max_size=3),
    },
)
_records = st.one_of(_chaos, _typed)


def _stored(record: dict[str, Any], how: str) -> tuple[str, int, bytes] | list[str]:
    """What would be stored (key, event µs, payload), or the problems reported."""
    try:
        if how == "quick":
            values = validate_record(GROUP, record)
            return str(values["id"]), to_us(values["ts"]), Codec(GROUP).encode(values)  # type: ignore[arg-type]
        frame = pd.DataFrame({k: pd.Series([v], dtype=object) for k, v in record.items()})
        row = Codec(GROUP).latest_rows(validate(GROUP, frame), 0, deleted=False)[0]
        return row.key, row.event_time, row.payload  # type: ignore[return-value]
    except IngestValidationError as err:
        return [str(p) for p in err.problems]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=_records, base=st.fixed_dictionaries({"id": st.integers(0, 9), "ts": _aware}))
def test_validate_record_equals_a_one_row_ingest(
    record: dict[str, Any], base: dict[str, Any]
) -> None:
    """Whatever the record, the fast path stores the same bytes or reports the same problems."""
    for candidate in (record, {**base, **record}, {**record, **base}):
        assert _stored(candidate, "quick") == _stored(candidate, "batch")


def test_validate_record_reports_like_ingest() -> None:
    with pytest.raises(IngestValidationError, match="'old' cannot be read as int"):
        validate_record(GROUP, {"id": 1, "ts": at(0), "i": "old"})
    with pytest.raises(IngestValidationError, match="the record id is missing"):
        validate_record(GROUP, {"id": None, "ts": at(0)})
    with pytest.raises(IngestValidationError, match="not a feature of group 'g'"):
        validate_record(GROUP, {"id": 1, "ts": at(0), "colour": "red"})
    assert validate_record(GROUP, {"id": "7", "ts": at(0), "f": 1})["f"] == 1.0


def test_buffer_file_is_the_workspace_s(quiet: FeatureStore, workspace: Settings) -> None:
    put(quiet, "a", 1, 1)
    assert quiet._buffer().path == Path(workspace.workspace) / "buffer" / "records.db"


def test_an_erasure_waits_for_a_write_between_its_buffer_and_online_steps(
    quiet: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put stalled after its buffer commit, before its online write: a hard delete of
    the record must wait for it (else it erases offline, then the put writes online)."""
    import threading

    stalled, resume = threading.Event(), threading.Event()
    online_write = quiet.online.write

    def stalling_write(group_id: str, rows: Any) -> None:
        if threading.current_thread().name == "writer" and not resume.is_set():
            stalled.set()
            resume.wait(WAIT_S)
        online_write(group_id, rows)

    monkeypatch.setattr(quiet.online, "write", stalling_write)
    writer = threading.Thread(target=put, args=(quiet, "c9", 1, 9), name="writer")
    writer.start()
    assert stalled.wait(WAIT_S)  # in the buffer, not yet online
    eraser = threading.Thread(
        target=quiet.delete_record, args=("customers", "c9"), kwargs={"hard": True}
    )
    eraser.start()
    eraser.join(0.5)
    assert eraser.is_alive()  # the erasure waits for the write to end
    resume.set()
    writer.join(WAIT_S)
    eraser.join(WAIT_S)
    assert not writer.is_alive() and not eraser.is_alive()
    assert quiet.get_record("customers", "c9") is None  # not written back online
    assert "c9" not in quiet.offline_table("customers")["customer_id"].to_pylist()
