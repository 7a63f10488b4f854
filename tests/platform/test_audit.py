"""The audit log: a hash chain that names the first row edited, deleted or inserted."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

import trivet
from trivet.errors import PermissionDenied
from trivet.platform import audit
from trivet.platform.audit import GENESIS
from trivet.platform.catalog.schema import audit_head, audit_log


def rows(session: trivet.Session) -> list[dict[str, Any]]:
    with session.catalog.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(audit_log).order_by("seq"))]


def append(session: trivet.Session, n: int, *, tag: str = "t") -> None:
    for i in range(n):
        with session.catalog.write() as conn:
            session.record(
                conn, action="test:event", resource="_workspace", detail={"i": i, tag: 1}
            )


def canonical(row: dict[str, Any]) -> bytes:
    """The documented row encoding, written out independently of the module."""
    body = {k: v for k, v in row.items() if k not in ("hash", "prev_hash")}
    ts = body["ts"]
    ts = ts if ts.tzinfo is not None else ts.replace(tzinfo=dt.UTC)
    body["ts"] = ts.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def test_the_chain(admin: trivet.Session, catalog_backend: str) -> None:
    append(admin, 5)
    log = rows(admin)
    assert [r["seq"] for r in log] == list(range(1, len(log) + 1))
    prev = GENESIS
    for row in log:
        assert row["prev_hash"] == prev
        assert row["hash"] == hashlib.sha256(prev.encode() + canonical(row)).hexdigest()
        prev = row["hash"]
    with admin.catalog.read() as conn:
        head = conn.execute(sa.select(audit_head)).one()
    assert (head.seq, head.hash) == (len(log), prev)
    result = audit.verify(admin.catalog)
    assert result.ok and result.rows == len(log) and result.first_bad_seq is None


def test_rows_say_who_for_whom_and_in_which_run(admin: trivet.Session) -> None:
    admin.access.grant(admin.principal.name, "principal:use", "_principals/default-runner")
    runner = admin.assume("default-runner").derive(run_id="run-1")
    with runner.catalog.write() as conn:
        runner.record(conn, action="test:event", resource="default/runs/run-1")
    last = audit.entries(admin.catalog, newest_first=True, limit=1)[0]
    assert (last.actor, last.on_behalf_of, last.run_id) == (
        "default-runner",
        admin.principal.name,
        "run-1",
    )
    assert last.actor_id == runner.principal.id


def test_entries_filters(admin: trivet.Session) -> None:
    admin.identity.create_user("alice")
    alice = trivet.connect(admin.settings.workspace, admin.identity.create_token("alice").secret)
    alice.authorize("model:approve", "default/models/m")
    append(admin, 3)
    everything = audit.entries(admin.catalog)
    assert [e.seq for e in everything] == sorted(e.seq for e in everything)
    assert [e.seq for e in audit.entries(admin.catalog, since_seq=everything[-2].seq)] == [
        everything[-1].seq
    ]
    assert [e.actor for e in audit.entries(admin.catalog, actor="alice")] == ["alice"]
    assert [e.action for e in audit.entries(admin.catalog, outcome="denied")] == ["model:approve"]
    newest = audit.entries(admin.catalog, newest_first=True, limit=2)
    assert [e.seq for e in newest] == [everything[-1].seq, everything[-2].seq]


def test_every_denial_is_audited_with_its_reason(
    admin: trivet.Session, catalog_backend: str
) -> None:
    admin.identity.create_user("alice")
    admin.access.grant("alice", "viewer", "default/*")
    admin.access.grant("alice", "feature:describe", "default/feature_groups/pii", deny=True)
    alice = trivet.connect(admin.settings.workspace, admin.identity.create_token("alice").secret)
    before = audit.entries(admin.catalog)[-1].seq
    expected = []
    for action, resource in [
        ("feature:write", "default/feature_groups/x"),  # default deny
        ("feature:describe", "default/feature_groups/pii"),  # explicit deny
        ("feature:raed", "default/feature_groups/x"),  # unknown action
    ]:
        decision = alice.authorize(action, resource)
        assert not decision.allowed
        expected.append((action, resource, decision.reason))
    calls: list[tuple[Callable[[], object], tuple[str, str]]] = [
        (
            lambda: alice.identity.create_user("mallory"),
            ("principal:manage", "_principals/mallory"),
        ),
        (lambda: alice.assume("default-runner"), ("principal:use", "_principals/default-runner")),
        (lambda: alice.access.grant("alice", "owner", "*"), ("grant:manage", "_workspace")),
        (lambda: alice.identity.create_project("p2"), ("grant:manage", "_workspace")),
    ]
    for call, (action, resource) in calls:
        with pytest.raises(PermissionDenied):
            call()
        expected.append((action, resource, "no grant allows it (default deny)"))
    denied = audit.entries(admin.catalog, since_seq=before)
    assert [(e.action, e.resource, e.detail["reason"]) for e in denied] == expected
    assert all(e.outcome == "denied" and e.actor == "alice" for e in denied)
    explicit = denied[1]
    assert explicit.detail["grants"] and "explicitly denied" in explicit.detail["reason"]
    assert audit.verify(admin.catalog).ok


def _tamper(session: trivet.Session, statement: sa.Executable) -> None:
    with session.catalog.write() as conn:
        conn.execute(statement)


@pytest.mark.parametrize("column", ["detail", "actor", "outcome", "ts", "prev_hash", "hash"])
def test_an_edited_row_is_named(admin: trivet.Session, column: str) -> None:
    append(admin, 6)
    k = rows(admin)[-3]["seq"]
    value: Any = {
        "detail": {"i": 999},
        "actor": "nobody",
        "outcome": "ok!",
        "ts": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        "prev_hash": "f" * 64,
        "hash": "e" * 64,
    }[column]
    _tamper(admin, sa.update(audit_log).where(audit_log.c.seq == k).values({column: value}))
    result = audit.verify(admin.catalog)
    assert not result.ok
    assert result.first_bad_seq == k, result.problem
    assert result.rows == k - 1


def test_a_raw_sql_edit_is_named(admin: trivet.Session, catalog_backend: str) -> None:
    append(admin, 4)
    k = rows(admin)[-2]["seq"]
    with admin.catalog.write() as conn:
        conn.execute(
            sa.text("UPDATE audit_log SET detail = :d WHERE seq = :k"),
            {"d": json.dumps({"i": 1, "t": 2}), "k": k},
        )
    result = audit.verify(admin.catalog)
    assert (result.ok, result.first_bad_seq) == (False, k)
    assert "altered" in (result.problem or "")


def test_deleted_rows_are_named(admin: trivet.Session, catalog_backend: str) -> None:
    append(admin, 6)
    log = rows(admin)
    middle, last = log[len(log) // 2]["seq"], log[-1]["seq"]
    _tamper(admin, sa.delete(audit_log).where(audit_log.c.seq == last))
    result = audit.verify(admin.catalog)
    assert (result.ok, result.first_bad_seq) == (False, last)
    _tamper(admin, sa.delete(audit_log).where(audit_log.c.seq == middle))
    result = audit.verify(admin.catalog)
    assert (result.ok, result.first_bad_seq) == (False, middle)
    assert "missing" in (result.problem or "")
    # the first row too
    _tamper(admin, sa.delete(audit_log).where(audit_log.c.seq == 1))
    assert audit.verify(admin.catalog).first_bad_seq == 1


def test_inserted_rows_are_named(admin: trivet.Session, catalog_backend: str) -> None:
    append(admin, 3)
    log = rows(admin)
    last = log[-1]
    # a forger who knows the scheme appends a row whose hash fits the chain
    forged = dict(last, seq=last["seq"] + 1, actor="mallory", prev_hash=last["hash"])
    forged["hash"] = hashlib.sha256(last["hash"].encode() + canonical(forged)).hexdigest()
    _tamper(admin, sa.insert(audit_log).values(**forged))
    result = audit.verify(admin.catalog)
    assert (result.ok, result.first_bad_seq) == (False, forged["seq"]), result.problem
    # one slipped in between: it takes a free seq and cannot fit the chain
    _tamper(admin, sa.delete(audit_log).where(audit_log.c.seq == forged["seq"]))
    assert audit.verify(admin.catalog).ok
    _tamper(
        admin, sa.update(audit_log).where(audit_log.c.seq >= 2).values(seq=audit_log.c.seq + 1000)
    )
    _tamper(admin, sa.insert(audit_log).values(**dict(log[1], actor="mallory")))
    result = audit.verify(admin.catalog)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_concurrent_appends_from_threads_keep_one_chain(
    admin: trivet.Session, catalog_backend: str
) -> None:
    start = len(rows(admin))
    threads, per_thread = 6, 20
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            append(admin, per_thread, tag=f"thread{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    log = rows(admin)
    assert [r["seq"] for r in log] == list(range(1, start + threads * per_thread + 1))
    assert len({r["hash"] for r in log}) == len(log)
    for n in range(threads):
        assert sum(1 for r in log if f"thread{n}" in r["detail"]) == per_thread
    result = audit.verify(admin.catalog)
    assert result.ok and result.rows == len(log)


def test_verify_while_others_append_reports_no_tampering(
    admin: trivet.Session, catalog_backend: str
) -> None:
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            append(admin, 1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [audit.verify(admin.catalog) for _ in range(30)]
    finally:
        stop.set()
        thread.join()
    assert all(r.ok for r in results), [r.problem for r in results if not r.ok]
    assert results[-1].rows > results[0].rows  # the writer did write meanwhile
