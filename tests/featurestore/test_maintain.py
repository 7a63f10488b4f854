"""`maintain`: compaction, checkpoints and vacuum of the offline tables; time travel after it."""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import trivet
from trivet.cli import app
from trivet.errors import PermissionDenied, ValidationError
from trivet.featurestore import FeatureGroup, FeatureStore, VersionVacuumed
from trivet.platform import audit
from trivet.platform.catalog import now_utc
from trivet.platform.settings import Settings

from .conftest import at, customers_spec, user_store


def rows(*items: tuple[str, dt.datetime, int]) -> pd.DataFrame:
    return pd.DataFrame(items, columns=["customer_id", "ts", "age"])


def sorted_rows(table: pa.Table) -> list[dict[str, object]]:
    return sorted(table.to_pylist(), key=lambda r: (r["customer_id"], r["ts"], r["__write_time"]))


def data_files(fs: FeatureStore, group: FeatureGroup) -> set[str]:
    root = Path(fs.offline.table_uri(group))
    return {p.name for p in root.glob("*.parquet")}


@pytest.fixture
def filled(fs: FeatureStore) -> FeatureGroup:
    """A group whose table has 6 ingest commits and a micro-batch of 3 puts waiting."""
    group = fs.create_group(customers_spec())
    for i in range(6):
        fs.ingest("customers", rows((f"c{i}", at(i), i), ("shared", at(i), 100 + i)))
    for i in range(3):
        fs.put_record("customers", {"customer_id": f"p{i}", "ts": at(9), "age": i})
    return group


def test_maintain_compacts_checkpoints_and_keeps_every_row(
    fs: FeatureStore, filled: FeatureGroup, admin: trivet.Session
) -> None:
    before = fs.offline_table("customers")  # flushes the puts: 7 files
    version_before = fs.offline.version(filled)
    report = fs.maintain("customers")
    assert (report.files_before, report.files_after) == (7, 1)
    assert (report.files_compacted, report.files_written) == (7, 1)
    assert report.files_vacuumed == 0 and report.bytes_freed == 0  # replaced files are young
    assert report.bytes_after > 0 and report.vacuum_hours == 168 and report.flushed == 0
    log = Path(fs.offline.table_uri(filled)) / "_delta_log"
    assert (log / f"{report.checkpoint_version:020d}.checkpoint.parquet").exists()
    after = fs.offline_table("customers")
    assert sorted_rows(after) == sorted_rows(before)  # same rows, stamps and all
    assert len(data_files(fs, filled)) == 8  # the 7 small files stay until a later vacuum
    assert sorted_rows(fs.offline_table("customers", as_of=version_before)) == sorted_rows(before)
    entity = pd.DataFrame({"customer_id": ["shared", "p1"], "when": [at(10), at(10)]})
    got = fs.build_dataset(entity, ["customers:age"], timestamp="when")
    assert got["age"].tolist() == [105, 1]
    [entry] = [e for e in audit.entries(admin.catalog) if e.action == "feature:maintain"]
    assert entry.detail["files_before"] == 7 and entry.detail["files_after"] == 1


def test_buffered_writes_are_flushed_and_compacted_too(
    fs: FeatureStore, filled: FeatureGroup
) -> None:
    report = fs.maintain("customers")
    assert report.flushed == 3 and (report.files_before, report.files_after) == (7, 1)
    assert fs.offline_table("customers").num_rows == 15


def test_vacuum_frees_a_crashed_writer_s_old_files_and_keeps_fresh_ones(
    fs: FeatureStore, filled: FeatureGroup
) -> None:
    fs.flush("customers")
    root = Path(fs.offline.table_uri(filled))
    some = sorted(root.glob("*.parquet"))[0]
    old, fresh = root / "part-00000-crashed-old.parquet", root / "part-00000-crashed-new.parquet"
    shutil.copy(some, old)  # files a writer wrote and never committed (it was killed)
    shutil.copy(some, fresh)
    two_hours_ago = time.time() - 2 * 3600
    os.utime(old, (two_hours_ago, two_hours_ago))
    report = fs.maintain("customers", vacuum_hours=1)
    assert report.files_vacuumed == 1 and report.bytes_freed == some.stat().st_size
    assert not old.exists() and fresh.exists()  # a writer in flight keeps its files
    assert fs.offline_table("customers").num_rows == 15


def test_the_retention_floor_and_its_type(fs: FeatureStore, filled: FeatureGroup) -> None:
    files = data_files(fs, filled)
    with pytest.raises(ValidationError, match="below the minimum of 1 hour") as err:
        fs.maintain("customers", vacuum_hours=0)
    assert "--vacuum-hours 1" in str(err.value.hint)
    for bad in (0.5, True, "24"):
        with pytest.raises(ValidationError, match="whole number of hours"):
            fs.maintain("customers", vacuum_hours=bad)  # type: ignore[arg-type]
    assert data_files(fs, filled) == files  # nothing was touched


def test_maintain_needs_write_and_delete_below_a_week(
    fs: FeatureStore, filled: FeatureGroup, admin: trivet.Session, workspace: Settings
) -> None:
    dana = user_store(admin, workspace, "dana", [("data_scientist", "default/*")])
    assert dana.maintain("customers").files_after == 1  # feature:write, a week kept
    with pytest.raises(PermissionDenied, match="feature:delete"):
        dana.maintain("customers", vacuum_hours=24)
    vera = user_store(admin, workspace, "vera", [("viewer", "default/*")])
    with pytest.raises(PermissionDenied, match="feature:write"):
        vera.maintain("customers")
    denied = [(e.actor, e.action) for e in audit.entries(admin.catalog, outcome="denied")]
    assert denied == [("dana", "feature:delete"), ("vera", "feature:write")]
    fs.create_group(customers_spec("live", offline=False))
    with pytest.raises(ValidationError, match="keeps no offline table"):
        fs.maintain("live")
    dana.close()
    vera.close()


def test_time_travel_to_a_vacuumed_version_is_a_clear_error(
    fs: FeatureStore, filled: FeatureGroup
) -> None:
    fs.flush("customers")
    moment = now_utc()
    time.sleep(0.002)
    version = fs.offline.version(filled)
    assert version is not None
    fs.maintain("customers")  # compacts: the old files are now replaced, but kept
    assert fs.offline_table("customers", as_of=version).num_rows == 15
    # the retention has passed for them (maintain refuses < 1 h; the store's own method
    # stands in for "a week later")
    fs.offline.vacuum(filled, retention_hours=0)
    with pytest.raises(VersionVacuumed, match=f"Version {version} of the offline table") as err:
        fs.offline_table("customers", as_of=version)
    assert "maintain" in err.value.message and "later version" in str(err.value.hint)
    assert err.value.http_status == 404
    again = pickle.loads(pickle.dumps(err.value))
    assert isinstance(again, VersionVacuumed) and again.message == err.value.message
    entity = pd.DataFrame({"customer_id": ["shared"], "when": [at(10)]})
    with pytest.raises(VersionVacuumed):
        fs.build_dataset(entity, ["customers:age"], timestamp="when", as_of=moment)
    with pytest.raises(VersionVacuumed):
        fs.sql("select count(*) from customers", as_of=moment)
    assert fs.offline_table("customers").num_rows == 15  # the current version reads


def test_maintain_from_the_command_line(
    fs: FeatureStore, filled: FeatureGroup, tmp_path: Path
) -> None:
    ws = str(fs._s.settings.workspace)
    runner = CliRunner()
    result = runner.invoke(app, ["-w", ws, "featurestore", "maintain", "--json"], env={})
    assert result.exit_code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["group"] == "customers" and report["files_after"] == 1
    assert report["flushed"] == 3  # the CLI's process flushed the puts made here
    result = runner.invoke(app, ["-w", ws, "featurestore", "maintain", "customers"], env={})
    assert result.exit_code == 0 and "customers" in result.stdout and "1 → 1" in result.stdout
    result = runner.invoke(
        app, ["-w", ws, "featurestore", "maintain", "customers", "--vacuum-hours", "0"], env={}
    )
    assert result.exit_code == 2  # a ValidationError's exit code
    assert "minimum of 1 hour" in result.stderr and "Traceback" not in result.stderr
    result = runner.invoke(
        app,
        [
            "-w",
            ws,
            "featurestore",
            "put",
            "customers",
            '{"customer_id": "z", "ts": "2024-01-02T00:00:00Z", "age": 7}',
        ],
        env={},
    )
    assert result.exit_code == 0, result.stderr
    assert fs.get_record("customers", "z")["age"] == 7  # type: ignore[index]
    assert fs.offline.read(filled).num_rows == 16  # the CLI flushed its write on exit
