"""The OnlineStore contract: every implementation passes this suite.

Adding a store is one line in ``STORES`` (a name and a factory taking a tmp folder).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trivet.featurestore.online import OnlineRow, OnlineStore, SqliteOnlineStore, open_online_store

STORES: dict[str, Callable[[Path, str], OnlineStore]] = {
    "sqlite": lambda tmp, _: SqliteOnlineStore(tmp / "online.db"),
    # a key prefix per test keeps runs apart on the shared server
    "redis": lambda tmp, url: open_online_store(f"{url}?prefix=test:{tmp.name}:"),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    made = STORES[request.param](tmp_path, url)
    yield made
    made.close()


def row(key: str, event: int, write: int, payload: bytes | None = b"[1]") -> OnlineRow:
    return OnlineRow(key=key, event_time=event, write_time=write, payload=payload)


def test_is_an_online_store(store: OnlineStore) -> None:
    assert isinstance(store, OnlineStore)


def test_read_missing_and_present_in_order(store: OnlineStore) -> None:
    store.write("g", [row("a", 1, 1, b"A"), row("b", 1, 1, b"B")])
    assert store.read("g", []) == []
    assert store.read("g", ["zz"]) == [None]
    got = store.read("g", ["b", "zz", "a", "b"])
    assert [r.payload if r else None for r in got] == [b"B", None, b"A", b"B"]
    assert got[0] == row("b", 1, 1, b"B")


def test_newer_event_time_wins_older_is_ignored(store: OnlineStore) -> None:
    store.write("g", [row("a", 10, 1, b"ten")])
    store.write("g", [row("a", 5, 99, b"five")])  # older event, later write: ignored
    assert store.read("g", ["a"])[0] == row("a", 10, 1, b"ten")
    store.write("g", [row("a", 11, 2, b"eleven")])
    assert store.read("g", ["a"])[0] == row("a", 11, 2, b"eleven")


def test_equal_event_time_the_later_write_wins(store: OnlineStore) -> None:
    store.write("g", [row("a", 10, 5, b"first")])
    store.write("g", [row("a", 10, 4, b"earlier write")])
    assert store.read("g", ["a"])[0].payload == b"first"  # type: ignore[union-attr]
    store.write("g", [row("a", 10, 6, b"later write")])
    assert store.read("g", ["a"])[0].payload == b"later write"  # type: ignore[union-attr]
    store.write("g", [row("a", 10, 6, b"later write")])  # re-applying is a no-op
    assert store.read("g", ["a"])[0] == row("a", 10, 6, b"later write")


def test_tombstones_are_rows_with_no_payload(store: OnlineStore) -> None:
    store.write("g", [row("a", 10, 1)])
    store.write("g", [row("a", 12, 2, None)])
    assert store.read("g", ["a"])[0] == row("a", 12, 2, None)
    store.write("g", [row("a", 11, 3)])  # an older late row does not resurrect it
    assert store.read("g", ["a"])[0] == row("a", 12, 2, None)


def test_groups_are_separate_and_delete_and_drop(store: OnlineStore) -> None:
    store.write("g1", [row("a", 1, 1, b"1"), row("b", 1, 1, b"1")])
    store.write("g2", [row("a", 1, 1, b"2")])
    store.delete("g1", ["a", "nope"])
    assert store.read("g1", ["a", "b"])[0] is None
    assert store.read("g2", ["a"])[0] == row("a", 1, 1, b"2")
    store.write("g1", [row("a", 0, 0, b"back")])  # a delete leaves no tombstone
    assert store.read("g1", ["a"])[0] == row("a", 0, 0, b"back")
    store.drop("g1")
    assert store.read("g1", ["a", "b"]) == [None, None]
    assert store.read("g2", ["a"])[0] is not None


def test_many_keys_in_one_read(store: OnlineStore) -> None:
    store.write("g", [row(f"k{i}", i, 1, str(i).encode()) for i in range(1500)])
    keys = [f"k{i}" for i in range(1499, -1, -1)] + ["none"]
    got = store.read("g", keys)
    assert [r.payload for r in got[:-1]] == [str(i).encode() for i in range(1499, -1, -1)]  # type: ignore[union-attr]
    assert got[-1] is None


def test_a_batch_keeps_the_newest_per_key(store: OnlineStore) -> None:
    store.write("g", [row("a", 3, 1, b"3"), row("a", 1, 1, b"1"), row("a", 2, 1, b"2")])
    assert store.read("g", ["a"])[0].payload == b"3"  # type: ignore[union-attr]


def test_concurrent_writers_keep_the_newest(store: OnlineStore) -> None:
    def writer(offset: int) -> None:
        for i in range(offset, 200, 4):
            store.write("g", [row("a", i, i, str(i).encode())])

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read("g", ["a"])[0] == row("a", 199, 199, b"199")


def test_open_by_url(tmp_path: Path) -> None:
    made = open_online_store(f"sqlite:///{tmp_path}/o.db")
    assert isinstance(made, SqliteOnlineStore)
    made.close()
