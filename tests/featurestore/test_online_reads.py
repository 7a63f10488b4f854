"""Online reads: what ``get_record`` and ``batch_get_record`` return, on every store.

The batch path parses many payloads at once and reads through ``read_payloads``; these
tests pin its answers to values written out by hand (tombstones, TTL, features added
after a row was written, typed ids, duplicates), check that a store offering only the
protocol's ``read`` gives the same answers, and that a revoked grant or token stops
reads at once (nothing about permissions is cached by the read path).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import trivet
from trivet.errors import PermissionDenied
from trivet.featurestore import Feature, FeatureGroupSpec, FeatureStore
from trivet.featurestore.online import OnlineRow, OnlineStore, open_online_store
from trivet.platform.catalog import now_utc
from trivet.platform.settings import Settings

from .conftest import user_store

NOW = now_utc().replace(microsecond=123456)
EARLIER = NOW - dt.timedelta(hours=1)
LONG_AGO = NOW - dt.timedelta(days=30)


def kinds_spec(name: str, **changes: object) -> FeatureGroupSpec:
    values: dict[str, object] = {
        "name": name,
        "record_id": "id",
        "record_id_dtype": "int",
        "event_time": "ts",
        "ttl": dt.timedelta(days=7),
        "features": [
            Feature(name="score", dtype="float"),
            Feature(name="visits", dtype="int"),
            Feature(name="segment", dtype="string"),
            Feature(name="active", dtype="bool"),
            Feature(name="seen", dtype="timestamp"),
        ],
    }
    values.update(changes)
    return FeatureGroupSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def kinds(fs: FeatureStore) -> FeatureStore:
    """Group ``kinds`` (int ids, TTL 7 days): live, deleted, expired and re-added records."""
    fs.create_group(kinds_spec("kinds"))
    put = fs.put_record
    put("kinds", {"id": 1, "ts": EARLIER, "score": 0.5, "visits": 3, "segment": "gold"})
    put("kinds", {"id": 2, "ts": EARLIER, "active": True, "seen": LONG_AGO, "score": float("inf")})
    put("kinds", {"id": 3, "ts": LONG_AGO, "score": 9.0})  # older than the TTL
    put("kinds", {"id": 4, "ts": EARLIER, "segment": 'quote " and \\ and é'})
    fs.delete_record("kinds", 4, event_time=NOW)  # a tombstone
    fs.add_features("kinds", [Feature(name="late", dtype="list[int]")])
    put("kinds", {"id": 5, "ts": NOW, "visits": -7, "late": [1, None, 3]})
    return fs


def record(rid: int, ts: dt.datetime, **values: Any) -> dict[str, Any]:
    out = {"id": rid, "ts": ts, "score": None, "visits": None, "segment": None, "active": None}
    out |= {"seen": None, "late": None}
    return out | values


ONE = record(1, EARLIER, score=0.5, visits=3, segment="gold")
TWO = record(2, EARLIER, active=True, seen=LONG_AGO, score=float("inf"))
FIVE = record(5, NOW, visits=-7, late=[1, None, 3])


def test_batch_get_returns_each_kind_of_record(kinds: FeatureStore) -> None:
    got = kinds.batch_get_record({"kinds": [5, 1, 2, 3, 4, 6, "1", 1]})["kinds"]
    assert got == [FIVE, ONE, TWO, None, None, None, ONE, ONE]
    assert got[1] is not got[6] and got[6] is not got[7]  # each record is a dict of its own
    assert [kinds.get_record("kinds", i) for i in (5, 1, 2, 3, 4, 6)] == [
        FIVE,
        ONE,
        TWO,
        None,
        None,
        None,
    ]
    assert kinds.get_record("kinds", "0005", features=["late", "score"]) == {
        "id": 5,
        "ts": NOW,
        "late": [1, None, 3],
        "score": None,
    }
    assert kinds.batch_get_record({"kinds": []}) == {"kinds": []}
    assert kinds.batch_get_record([]) == []


def test_pairs_across_groups_keep_their_order(kinds: FeatureStore) -> None:
    kinds.create_group(kinds_spec("names", record_id_dtype="string", ttl=None))
    kinds.put_record("names", {"id": "a", "ts": LONG_AGO, "segment": "x"})  # no TTL: kept
    kinds.put_record("names", {"id": "b", "ts": NOW, "visits": 2})
    a = {"id": "a", "ts": LONG_AGO, "score": None, "visits": None, "segment": "x"}
    a |= {"active": None, "seen": None}
    b = a | {"id": "b", "ts": NOW, "visits": 2, "segment": None}
    got = kinds.batch_get_record(
        [("names", "b"), ("kinds", 1), ("names", "zz"), ("kinds", 3), ("names", "a"), ("kinds", 5)]
    )
    assert got == [b, ONE, None, None, a, FIVE]


class ProtocolOnly:
    """An online store with only the protocol's methods (no ``read_payloads``)."""

    def __init__(self, inner: OnlineStore) -> None:
        self.inner = inner

    def write(self, group_id: str, rows: Sequence[OnlineRow]) -> None:
        self.inner.write(group_id, rows)

    def read(self, group_id: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        return self.inner.read(group_id, keys)

    def delete(self, group_id: str, keys: Sequence[str]) -> None:
        self.inner.delete(group_id, keys)

    def drop(self, group_id: str) -> None:
        self.inner.drop(group_id)

    def close(self) -> None:
        self.inner.close()


def test_a_store_with_only_the_protocol_gives_the_same_answers(kinds: FeatureStore) -> None:
    kinds._online = ProtocolOnly(kinds.online)
    assert not hasattr(kinds.online, "read_payloads")
    assert kinds.batch_get_record({"kinds": [5, 1, 2, 3, 4, 6]})["kinds"] == [
        FIVE,
        ONE,
        TWO,
        None,
        None,
        None,
    ]
    assert kinds.get_record("kinds", 2) == TWO


def test_revoking_a_grant_or_a_token_stops_reads_at_once(
    kinds: FeatureStore, admin: trivet.Session, workspace: Settings
) -> None:
    app = user_store(admin, workspace, "app", [("online_reader", "default/feature_groups/*")])
    assert app.batch_get_record({"kinds": [1]})["kinds"] == [ONE]
    assert app.get_record("kinds", 1) == ONE
    grant = admin.access.grants(subject="app")[0]
    admin.access.revoke(grant.id)
    with pytest.raises(PermissionDenied):
        app.batch_get_record({"kinds": [1]})
    with pytest.raises(PermissionDenied):
        app.get_record("kinds", 1)

    admin.identity.create_user("bot")
    admin.access.grant("bot", "online_reader", "default/*")
    token = admin.identity.create_token("bot")
    bot = FeatureStore(trivet.connect(workspace.workspace, token=token.secret))
    assert bot.get_record("kinds", 1) == ONE
    admin.identity.revoke_token(token.info.prefix)
    with pytest.raises(PermissionDenied, match="revoked"):
        bot.get_record("kinds", 1)
    with pytest.raises(PermissionDenied, match="revoked"):
        bot.batch_get_record([("kinds", 1)])


# -- read_payloads: the same rows as read, on every store ---------------------------------
@pytest.fixture(params=["sqlite", "redis"])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        store = open_online_store(f"{url}?prefix=test:{tmp_path.name}:")
    else:
        store = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
    yield store
    store.drop("g")
    store.close()


def test_read_payloads_returns_what_read_returns(online: OnlineStore) -> None:
    rows = [
        OnlineRow(key=f"k{i}", event_time=i - 5, write_time=i, payload=b"[%d]" % i)
        for i in range(700)
    ]
    rows[3] = OnlineRow(key="k3", event_time=-2, write_time=3, payload=None)  # a tombstone
    online.write("g", rows)
    keys = ["k3", "nope", "k0", "k699", "k0", *(f"k{i}" for i in range(600))]  # > 500 keys
    expected = [None if r is None else (r.event_time, r.payload) for r in online.read("g", keys)]
    assert expected[:5] == [(-2, None), None, (-5, b"[0]"), (694, b"[699]"), (-5, b"[0]")]
    reader = getattr(online, "read_payloads")  # noqa: B009 - not part of the protocol
    assert reader("g", keys) == expected
    assert reader("g", ["k1"]) == [(-4, b"[1]")]
    assert reader("g", ["nope"]) == [None]
    assert reader("g", []) == []
