"""The feature store's routes over a real server: groups, statistics, records, errors."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.server.live import Live
from trivet.featurestore import Feature, FeatureGroupSpec

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _customers(live: Live) -> str:
    """Create and fill the int-keyed group `customers`; return the project."""
    fs = live.admin.featurestore
    fs.create_group(
        FeatureGroupSpec(
            name="customers",
            record_id="customer_id",
            record_id_dtype="int",
            event_time="ts",
            features=[
                Feature(name="age", dtype="int", description="age in years"),
                Feature(name="income", dtype="float", parameters={"unit": "EUR"}),
                Feature(name="segment", dtype="string"),
                Feature(name="active", dtype="bool"),
                Feature(name="since", dtype="timestamp"),
                Feature(name="scores", dtype="list<float>"),
            ],
            description="customer profile",
            tags=("pii", "core"),
        )
    )
    fs.ingest(
        "customers",
        pd.DataFrame(
            {
                "customer_id": [1, 2, 3, 4, 1],
                "ts": [T0, T0, T0, T0, T0 + dt.timedelta(hours=1)],
                # customer 1's second row (age 31) is the latest; the first (age 99) is not
                "age": pd.array([99, 40, None, 20, 31], dtype="Int64"),
                "income": [0.0, 2000.0, 3000.0, 4000.0, 1000.0],
                "segment": ["x", "b", "a", "b", "a"],
                "active": [False, True, True, False, True],
                "since": [T0 - dt.timedelta(days=d) for d in (1, 2, 3, 4, 10)],
                "scores": [[0.0], [1.0, 2.0], [], None, [0.5]],
            }
        ),
    )
    return live.admin.project


def _accounts(live: Live) -> None:
    """Create the string-keyed group `accounts` with two records."""
    fs = live.admin.featurestore
    fs.create_group(
        FeatureGroupSpec(
            name="accounts",
            record_id="account",
            event_time="ts",
            features=[Feature(name="balance", dtype="float")],
            description="bank accounts",
            tags=("finance",),
        )
    )
    fs.ingest(
        "accounts",
        pd.DataFrame({"account": ["a-1", "a-2"], "ts": [T0, T0], "balance": [10.5, -3.0]}),
    )


def _error(r: object, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body: dict[str, object] = r.json()["error"]  # type: ignore[attr-defined]
    return body


# -- groups --------------------------------------------------------------------------------------
def test_list_search_and_paginate_groups(live: Live) -> None:
    project = _customers(live)
    _accounts(live)
    viewer = live.user("vic", ("viewer", f"{project}/*"))
    base = f"/v1/projects/{project}/feature-groups"
    with live.client(viewer) as http:
        listed = http.get(base)
        assert listed.status_code == 200, listed.text
        assert [g["name"] for g in listed.json()["items"]] == ["accounts", "customers"]
        assert listed.json()["next_cursor"] is None

        first = http.get(base, params={"limit": 1}).json()
        assert [g["name"] for g in first["items"]] == ["accounts"]
        second = http.get(base, params={"limit": 1, "cursor": first["next_cursor"]}).json()
        assert [g["name"] for g in second["items"]] == ["customers"]
        assert second["next_cursor"] is None

        found = http.get(base, params={"q": "EUR"}).json()["items"]
        assert [g["name"] for g in found] == ["customers"]
        assert found[0]["matches"] == ["feature:income.parameters"]

        tagged = http.get(base, params={"tag": "finance"}).json()["items"]
        assert [g["name"] for g in tagged] == ["accounts"]
        assert http.get(base, params={"q": "profile", "tag": "finance"}).json()["items"] == []


def test_a_viewer_sees_only_the_groups_granted(live: Live) -> None:
    project = _customers(live)
    _accounts(live)
    narrow = live.user("nat", ("viewer", f"{project}/feature_groups/accounts"))
    with live.client(narrow) as http:
        items = http.get(f"/v1/projects/{project}/feature-groups").json()["items"]
    assert [g["name"] for g in items] == ["accounts"]


def test_listing_is_denied_to_a_stranger(live: Live) -> None:
    project = _customers(live)
    stranger = live.user("eve")
    with live.client(stranger) as http:
        r = http.get(f"/v1/projects/{project}/feature-groups")
    assert _error(r, 403)["type"] == "PermissionDenied"


def test_describe_a_group(live: Live) -> None:
    project = _customers(live)
    viewer = live.user("vic", ("viewer", f"{project}/*"))
    with live.client(viewer) as http:
        r = http.get(f"/v1/projects/{project}/feature-groups/customers")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "customers"
    assert body["resource"] == f"{project}/feature_groups/customers"
    assert (body["record_id"], body["record_id_dtype"], body["event_time"]) == (
        "customer_id",
        "int",
        "ts",
    )
    assert body["features"][0] == {
        "name": "age",
        "dtype": "int",
        "description": "age in years",
        "parameters": {},
    }
    assert body["features"][1]["parameters"] == {"unit": "EUR"}
    assert [f["dtype"] for f in body["features"]] == [
        "int",
        "float",
        "string",
        "bool",
        "timestamp",
        "list<float>",
    ]
    assert body["tags"] == ["pii", "core"]
    assert body["ttl_seconds"] is None
    assert (body["online"], body["offline"]) == (True, True)
    assert body["owner"] == live.admin.principal.name
    assert body["description"] == "customer profile"
    assert body["created_at"].endswith("Z")


def test_an_unknown_group_is_404_with_a_suggestion(live: Live) -> None:
    project = _customers(live)
    viewer = live.user("vic", ("viewer", f"{project}/*"))
    with live.client(viewer) as http:
        r = http.get(f"/v1/projects/{project}/feature-groups/customer")
    error = _error(r, 404)
    assert error["type"] == "FeatureGroupNotFound"
    assert "'customer'" in str(error["message"])
    assert "customers" in str(error["hint"])


# -- statistics ----------------------------------------------------------------------------------
def test_statistics_over_the_latest_row_of_each_record(live: Live) -> None:
    project = _customers(live)
    scientist = live.user("dana", ("data_scientist", f"{project}/*"))
    with live.client(scientist) as http:
        r = http.get(
            f"/v1/projects/{project}/feature-groups/customers/statistics", params={"bins": 4}
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["group"], body["records"], body["bins"]) == ("customers", 4, 4)
    stats = {f["name"]: f for f in body["features"]}
    # latest rows: ages 31, 40, null, 20; incomes 1000, 2000, 3000, 4000
    age = stats["age"]
    assert (age["count"], age["nulls"], age["distinct"]) == (4, 1, 3)
    assert (age["min"], age["max"]) == (20, 40)
    assert age["mean"] == pytest.approx(91 / 3)
    assert age["stddev"] == pytest.approx(10.016653, rel=1e-6)  # sample sd of 20, 31, 40
    assert age["histogram"] == {"edges": [20.0, 25.0, 30.0, 35.0, 40.0], "counts": [1, 0, 1, 1]}
    income = stats["income"]
    assert (income["min"], income["max"], income["mean"]) == (1000.0, 4000.0, 2500.0)
    assert income["histogram"]["counts"] == [1, 1, 1, 1]
    segment = stats["segment"]
    assert segment["top"] == [{"value": "a", "count": 2}, {"value": "b", "count": 2}]
    assert segment["distinct"] == 2 and segment["histogram"] is None and segment["min"] is None
    assert stats["active"]["top"] == [
        {"value": True, "count": 3},
        {"value": False, "count": 1},
    ]
    since = stats["since"]
    assert since["min"] == "2023-12-22T00:00:00Z"  # customer 1's latest row: 10 days before
    assert since["max"] == "2023-12-30T00:00:00Z"
    assert since["histogram"]["edges"][0] == "2023-12-22T00:00:00Z"
    assert since["histogram"]["counts"] == [1, 0, 0, 3]  # 2-day bins: 22-24, ..., 28-30
    assert (stats["scores"]["count"], stats["scores"]["nulls"]) == (4, 1)
    assert stats["scores"]["histogram"] is None
    event = body["event_time"]
    assert event["name"] == "ts"
    assert (event["min"], event["max"]) == ("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z")


def test_statistics_need_offline_read_and_sane_bins(live: Live) -> None:
    project = _customers(live)
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    scientist = live.user("dana", ("data_scientist", f"{project}/*"))
    url = f"/v1/projects/{project}/feature-groups/customers/statistics"
    with live.client(reader) as http:
        assert _error(http.get(url), 403)["type"] == "PermissionDenied"
    with live.client(scientist) as http:
        assert _error(http.get(url, params={"bins": 0}), 422)["field"] == "query.bins"
        assert _error(http.get(url, params={"bins": 1001}), 422)["field"] == "query.bins"


# -- reading records -----------------------------------------------------------------------------
def test_get_a_record_online(live: Live) -> None:
    project = _customers(live)
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    base = f"/v1/projects/{project}/feature-groups/customers/records"
    with live.client(reader) as http:
        r = http.get(f"{base}/1")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "record": {
                "customer_id": 1,
                "ts": "2024-01-01T01:00:00Z",
                "age": 31,
                "income": 1000.0,
                "segment": "a",
                "active": True,
                "since": "2023-12-22T00:00:00Z",
                "scores": [0.5],
            }
        }
        some = http.get(f"{base}/2", params=[("features", "segment"), ("features", "age")])
        assert some.json() == {
            "record": {"customer_id": 2, "ts": "2024-01-01T00:00:00Z", "segment": "b", "age": 40}
        }


def test_the_online_read_declares_its_parameters_and_needs_a_bearer(live: Live) -> None:
    project = _customers(live)
    route = "/v1/projects/{project}/feature-groups/{name}/records/{record_id}"
    with live.client() as http:
        operation = http.get("/openapi.json").json()["paths"][route]["get"]
        assert operation["security"] == [{"HTTPBearer": []}]
        assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
            ("project", "path", True),
            ("name", "path", True),
            ("record_id", "path", True),
            ("features", "query", False),
        ]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/RecordOut"
        }
        url = f"/v1/projects/{project}/feature-groups/customers/records/1"
        for header in ("Basic dXNlcjpwdw==", "Bearer", "trv_usr_nothing"):
            r = http.get(url, headers={"Authorization": header})
            assert _error(r, 401)["type"] == "NotAuthenticated", header
            assert r.headers["www-authenticate"] == "Bearer"


def test_nan_reads_as_null(live: Live) -> None:
    import pyarrow as pa

    project = _customers(live)
    live.admin.featurestore.ingest(
        "customers",
        pa.table(
            {
                "customer_id": [5],
                "ts": pa.array([T0], pa.timestamp("us", tz="UTC")),
                "income": [float("nan")],
                "scores": pa.array([[1.0, float("inf")]], pa.list_(pa.float64())),
            }
        ),
    )
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    with live.client(reader) as http:
        r = http.get(f"/v1/projects/{project}/feature-groups/customers/records/5")
        assert r.status_code == 200, r.text
        assert "NaN" not in r.text and "Infinity" not in r.text
        assert r.json()["record"]["income"] is None
        assert r.json()["record"]["scores"] == [1.0, None]
        batch = http.post(
            f"/v1/projects/{project}/records:batch-get",
            json={"requests": [{"group": "customers", "id": 5}]},
        )
        assert batch.json()["records"][0]["income"] is None


def test_a_missing_record_is_404_saying_why(live: Live) -> None:
    project = _customers(live)
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    with live.client(reader) as http:
        r = http.get(f"/v1/projects/{project}/feature-groups/customers/records/77")
    error = _error(r, 404)
    assert error["type"] == "NotFound"
    assert "no record '77'" in str(error["message"])
    assert "never written" in str(error["message"]) and "TTL" in str(error["message"])


def test_an_expired_record_is_404(live: Live) -> None:
    live.admin.featurestore.create_group(
        FeatureGroupSpec(
            name="clicks",
            record_id="user",
            event_time="ts",
            features=[Feature(name="n", dtype="int")],
            ttl=dt.timedelta(days=1),
        )
    )
    now = dt.datetime.now(dt.UTC)
    live.admin.featurestore.ingest(
        "clicks",
        pd.DataFrame(
            {"user": ["old", "new"], "ts": [now - dt.timedelta(days=2), now], "n": [1, 2]}
        ),
    )
    project = live.admin.project
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    with live.client(reader) as http:
        base = f"/v1/projects/{project}/feature-groups/clicks/records"
        assert http.get(f"{base}/new").json()["record"]["n"] == 2
        assert _error(http.get(f"{base}/old"), 404)["type"] == "NotFound"


def test_bad_record_ids_and_features_are_422_naming_the_field(live: Live) -> None:
    project = _customers(live)
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    base = f"/v1/projects/{project}/feature-groups/customers/records"
    with live.client(reader) as http:
        bad_id = _error(http.get(f"{base}/abc"), 422)
        assert bad_id["field"] == "record_id"
        assert "'abc'" in str(bad_id["message"]) and "integer" in str(bad_id["message"])
        bad_feature = _error(http.get(f"{base}/1", params={"features": "agee"}), 422)
        assert bad_feature["field"] == "features"
        assert "'agee'" in str(bad_feature["message"]) and "age" in str(bad_feature["hint"])
        too_long = _error(http.get(f"{base}/{'9' * 300}"), 422)
        assert too_long["field"] == "path.record_id"


def test_a_viewer_may_describe_but_not_read_records(live: Live) -> None:
    project = _customers(live)
    viewer = live.user("vic", ("viewer", f"{project}/*"))
    with live.client(viewer) as http:
        assert http.get(f"/v1/projects/{project}/feature-groups/customers").status_code == 200
        r = http.get(f"/v1/projects/{project}/feature-groups/customers/records/1")
        assert _error(r, 403)["type"] == "PermissionDenied"
        batch = http.post(
            f"/v1/projects/{project}/records:batch-get",
            json={"requests": [{"group": "customers", "id": 1}]},
        )
        assert _error(batch, 403)["type"] == "PermissionDenied"


def test_batch_get_across_two_groups_in_request_order(live: Live) -> None:
    project = _customers(live)
    _accounts(live)
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    url = f"/v1/projects/{project}/records:batch-get"
    requests = [
        {"group": "accounts", "id": "a-2"},
        {"group": "customers", "id": 4},
        {"group": "accounts", "id": "nope"},
        {"group": "customers", "id": "2"},  # an int group also reads a string of digits
        {"group": "accounts", "id": "a-1"},
    ]
    with live.client(reader) as http:
        r = http.post(url, json={"requests": requests})
    assert r.status_code == 200, r.text
    records = r.json()["records"]
    assert records[0] == {"account": "a-2", "ts": "2024-01-01T00:00:00Z", "balance": -3.0}
    assert records[1]["customer_id"] == 4 and records[1]["age"] == 20
    assert records[2] is None
    assert records[3]["customer_id"] == 2 and records[3]["segment"] == "b"
    assert records[4]["balance"] == 10.5


def test_batch_get_is_bounded_and_validated(live: Live) -> None:
    project = _customers(live)
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    url = f"/v1/projects/{project}/records:batch-get"
    with live.client(reader) as http:
        many = [{"group": "customers", "id": i} for i in range(1001)]
        assert _error(http.post(url, json={"requests": many}), 422)["field"] == "body.requests"
        assert http.post(url, json={"requests": many[:1000]}).status_code == 200
        bad = [{"group": "customers", "id": 1}, {"group": "customers", "id": "x1"}]
        error = _error(http.post(url, json={"requests": bad}), 422)
        assert error["field"] == "requests.1.id"
        assert "'x1'" in str(error["message"])
        assert http.post(url, json={"requests": []}).json() == {"records": []}


def test_batch_get_of_an_unknown_group_is_404_for_a_project_reader(live: Live) -> None:
    project = _customers(live)
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    with live.client(reader) as http:
        r = http.post(
            f"/v1/projects/{project}/records:batch-get",
            json={"requests": [{"group": "customer", "id": 1}]},
        )
    error = _error(r, 404)
    assert "'customer'" in str(error["message"]) and "customers" in str(error["hint"])


# -- writing and deleting ------------------------------------------------------------------------
def test_put_then_get(live: Live) -> None:
    project = _customers(live)
    scientist = live.user("dana", ("data_scientist", f"{project}/*"))
    base = f"/v1/projects/{project}/feature-groups/customers/records"
    record = {
        "customer_id": 9,
        "ts": "2024-05-01T12:00:00+02:00",
        "age": 50,
        "income": 7,  # a JSON integer for a float feature
        "segment": "z",
        "active": False,
        "since": "2020-01-01T00:00:00Z",
        "scores": [1, 2.5],
    }
    with live.client(scientist) as http:
        put = http.put(base, json={"record": record})
        assert put.status_code == 200, put.text
        assert put.json()["group"] == "customers"
        assert (put.json()["rows"], put.json()["records"], put.json()["duplicate"]) == (1, 1, False)
        got = http.get(f"{base}/9").json()["record"]
    assert got == {
        "customer_id": 9,
        "ts": "2024-05-01T10:00:00Z",
        "age": 50,
        "income": 7.0,
        "segment": "z",
        "active": False,
        "since": "2020-01-01T00:00:00Z",
        "scores": [1.0, 2.5],
    }
    # the write went offline too
    offline = live.admin.featurestore.offline_table("customers").to_pandas()
    assert (offline["customer_id"] == 9).sum() == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"age": "old"}, "record.age", ["'age'", "integer", "a string"]),
        ({"age": True}, "record.age", ["'age'", "integer", "a boolean"]),
        ({"age": 1.5}, "record.age", ["'age'", "integer", "1.5"]),
        ({"age": 2**70}, "record.age", ["'age'"]),  # beyond int64
        ({"income": 10**400}, "record.income", ["'income'", "float can hold"]),
        ({"income": "7"}, "record.income", ["'income'", "number"]),
        ({"active": 1}, "record.active", ["'active'", "true or false"]),
        ({"segment": 5}, "record.segment", ["'segment'", "string"]),
        ({"scores": [1, "x"]}, "record.scores", ["'scores'", "item"]),
        ({"scores": 1.0}, "record.scores", ["'scores'", "array"]),
        ({"ts": "2024-05-01T12:00:00"}, "record.ts", ["'ts'", "zone"]),
        ({"ts": "yesterday"}, "record.ts", ["'ts'", "ISO-8601"]),
        ({"customer_id": "nine"}, "record.customer_id", ["'customer_id'", "integer"]),
        ({"colour": "red"}, "record.colour", ["'colour'", "no column"]),
        ({"ts": None}, "record.ts", ["event time is missing"]),
    ],
)
def test_put_with_a_type_mismatch_is_422_naming_the_feature(
    live: Live, change: dict[str, object], field: str, words: list[str]
) -> None:
    project = _customers(live)
    scientist = live.user("dana", ("data_scientist", f"{project}/*"))
    record: dict[str, object] = {"customer_id": 9, "ts": "2024-05-01T12:00:00Z", "age": 50}
    record.update(change)
    with live.client(scientist) as http:
        r = http.put(
            f"/v1/projects/{project}/feature-groups/customers/records", json={"record": record}
        )
        error = _error(r, 422)
        assert error["field"] == field
        for word in words:
            assert word in str(error["message"]), error
        # nothing was written
        missing = http.get(f"/v1/projects/{project}/feature-groups/customers/records/9")
        assert missing.status_code == 404


def test_put_needs_a_record_object(live: Live) -> None:
    project = _customers(live)
    scientist = live.user("dana", ("data_scientist", f"{project}/*"))
    url = f"/v1/projects/{project}/feature-groups/customers/records"
    with live.client(scientist) as http:
        assert _error(http.put(url, json={"record": [1]}), 422)["field"] == "body.record"
        assert _error(http.put(url, json={}), 422)["field"] == "body.record"


def test_an_online_reader_may_read_but_not_write_or_delete(live: Live) -> None:
    project = _customers(live)
    reader = live.user("otto", ("online_reader", f"{project}/*"))
    base = f"/v1/projects/{project}/feature-groups/customers/records"
    with live.client(reader) as http:
        assert http.get(f"{base}/1").status_code == 200
        put = http.put(base, json={"record": {"customer_id": 1, "ts": "2025-01-01T00:00:00Z"}})
        assert _error(put, 403)["type"] == "PermissionDenied"
        assert "feature:write" in str(_error(put, 403)["message"])
        assert _error(http.delete(f"{base}/1"), 403)["type"] == "PermissionDenied"
        assert _error(http.delete(f"{base}/1", params={"mode": "hard"}), 403)["type"] == (
            "PermissionDenied"
        )
        assert http.get(f"{base}/1").json()["record"]["age"] == 31  # unchanged


def test_soft_delete_hides_the_record_and_keeps_its_history(live: Live) -> None:
    project = _customers(live)
    scientist = live.user("dana", ("data_scientist", f"{project}/*"))
    base = f"/v1/projects/{project}/feature-groups/customers/records"
    with live.client(scientist) as http:
        r = http.delete(f"{base}/2")
        assert r.status_code == 204 and r.content == b""
        assert _error(http.get(f"{base}/2"), 404)["type"] == "NotFound"
        # a data scientist may not erase
        assert _error(http.delete(f"{base}/3", params={"mode": "hard"}), 403)["type"] == (
            "PermissionDenied"
        )
        assert _error(http.delete(f"{base}/2", params={"mode": "gone"}), 422)["field"] == (
            "query.mode"
        )
        assert _error(http.delete(f"{base}/two"), 422)["field"] == "record_id"
    offline = live.admin.featurestore.offline_table("customers").to_pandas()
    assert (offline["customer_id"] == 2).sum() == 2  # the row and its tombstone


def test_hard_delete_erases_the_record_everywhere(live: Live) -> None:
    project = _customers(live)
    keeper = live.user("max", ("maintainer", f"{project}/*"))
    base = f"/v1/projects/{project}/feature-groups/customers/records"
    with live.client(keeper) as http:
        assert http.delete(f"{base}/1", params={"mode": "hard"}).status_code == 204
        assert _error(http.get(f"{base}/1"), 404)["type"] == "NotFound"
        assert http.get(f"{base}/2").status_code == 200  # the others stay
    offline = live.admin.featurestore.offline_table("customers").to_pandas()
    assert 1 not in set(offline["customer_id"])
    assert sorted(set(offline["customer_id"])) == [2, 3, 4]
