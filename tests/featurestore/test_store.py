"""Feature groups in the catalog: create, describe, list, search, add features, delete."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import trivet
from trivet.errors import AlreadyExists, PermissionDenied, ValidationError
from trivet.featurestore import Dtype, Feature, FeatureGroupNotFound, FeatureStore
from trivet.platform import audit
from trivet.platform.catalog.schema import feature_definitions, feature_groups, grants
from trivet.platform.lineage import Node
from trivet.platform.settings import Settings

from .conftest import at, customers_spec, user_store


def log(admin: trivet.Session) -> list[tuple[str, str, str]]:
    return [(e.action, e.resource, e.outcome) for e in audit.entries(admin.catalog)]


def test_create_and_describe(fs: FeatureStore, admin: trivet.Session, catalog_backend: str) -> None:
    spec = customers_spec(ttl=dt.timedelta(hours=6))
    group = fs.create_group(spec)
    assert group.spec == spec
    assert group.resource == "default/feature_groups/customers"
    assert group.created_by == admin.principal.name and group.project == "default"
    assert fs.describe("customers") == group
    assert fs.offline.exists(group)
    assert fs.offline.table_uri(group) == f"{admin.settings.offline_url}/default/{group.id}"
    assert ("feature:create_group", group.resource, "ok") in log(admin)
    with pytest.raises(AlreadyExists):
        fs.create_group(spec)
    with pytest.raises(FeatureGroupNotFound, match="did you mean 'customers'"):
        fs.describe("customer")
    with pytest.raises(ValidationError, match="needs a FeatureGroupSpec"):
        fs.create_group({"name": "x"})  # type: ignore[arg-type]


def test_the_creator_gets_maintainer_and_others_need_grants(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    dana = user_store(admin, workspace, "dana", [("data_scientist", "default/*")])
    group = dana.create_group(customers_spec())
    mine = admin.access.grants(subject="dana", pattern=f"{group.resource}/*")
    assert [(g.privilege, g.effect) for g in mine] == [("maintainer", "allow")]
    assert ("grant:create", f"{group.resource}/*", "ok") in log(admin)
    dana.delete_group("customers")  # maintainer holds feature:delete; data_scientist does not
    vera = user_store(admin, workspace, "vera", [("viewer", "default/*")])
    with pytest.raises(PermissionDenied, match="feature:create"):
        vera.create_group(customers_spec("other"))
    assert ("feature:create", "default/feature_groups/other", "denied") in log(admin)


def test_list_and_search_show_only_what_the_caller_may_describe(
    fs: FeatureStore, admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    fs.create_group(customers_spec("customers"))
    fs.create_group(
        customers_spec(
            "transactions",
            description="card payments",
            tags=("finance",),
            features=[Feature(name="amount", dtype="float", parameters={"currency": "EUR"})],
        )
    )
    fs.create_group(customers_spec("secret", description="salaries", tags=("finance",)))
    assert [g.name for g in fs.list_groups()] == ["customers", "secret", "transactions"]
    hits = fs.search("eur")
    assert [(h.group.name, h.matches) for h in hits] == [
        ("customers", ("feature:income.parameters",)),
        ("secret", ("feature:income.parameters",)),
        ("transactions", ("feature:amount.parameters",)),
    ]
    assert [h.group.name for h in fs.search(tag="finance")] == ["secret", "transactions"]
    assert [h.group.name for h in fs.search("CARD payments", tag="finance")] == ["transactions"]
    assert [h.group.name for h in fs.search("card nothing")] == []  # every word must match
    assert [h.group.name for h in fs.search("age years")] == ["customers", "secret"]

    carl = user_store(admin, workspace, "carl", [("viewer", "default/feature_groups/*")])
    admin.access.grant("carl", "feature:describe", "default/feature_groups/secret", deny=True)
    assert [g.name for g in carl.list_groups()] == ["customers", "transactions"]
    assert [h.group.name for h in carl.search(tag="finance")] == ["transactions"]
    with pytest.raises(PermissionDenied):
        carl.describe("secret")
    # a missing name's suggestions only name groups the caller may see
    with pytest.raises(FeatureGroupNotFound) as err:
        carl.describe("secrets")
    assert "secret'" not in str(err.value.hint)


def test_add_features_only_adds(
    fs: FeatureStore, admin: trivet.Session, catalog_backend: str
) -> None:
    fs.create_group(customers_spec())
    fs.ingest(
        "customers",
        pd.DataFrame({"customer_id": ["a"], "ts": [at(0)], "age": [40]}),
    )
    group = fs.add_features(
        "customers",
        [
            Feature(name="score", dtype="float", description="risk"),
            Feature(name="tags", dtype="list<string>"),
        ],
    )
    assert [f.name for f in group.features] == ["age", "income", "segment", "score", "tags"]
    assert group.feature("tags").dtype is Dtype.LIST_STRING
    assert group.updated_at > group.created_at
    # records written before read the new features as null, online and offline
    record = fs.get_record("customers", "a")
    assert record is not None and record["age"] == 40 and record["score"] is None
    fs.ingest(
        "customers",
        pd.DataFrame({"customer_id": ["a"], "ts": [at(1)], "score": [0.5], "tags": [["x"]]}),
    )
    assert fs.get_record("customers", "a")["tags"] == ["x"]  # type: ignore[index]
    table = fs.offline_table("customers").sort_by("ts")
    assert table["score"].to_pylist() == [None, 0.5]
    for clash in ("age", "ts", "customer_id"):
        with pytest.raises(ValidationError, match="appears twice"):
            fs.add_features("customers", [Feature(name=clash, dtype="int")])
    with pytest.raises(ValidationError, match="appears twice"):
        fs.add_features("customers", [Feature(name="n", dtype="int")] * 2)
    with pytest.raises(ValidationError, match="at least one"):
        fs.add_features("customers", [])
    with admin.catalog.read() as conn:
        positions = conn.execute(
            sa.select(feature_definitions.c.position, feature_definitions.c.name).order_by(
                feature_definitions.c.position
            )
        ).all()
    assert [tuple(p) for p in positions] == [
        (0, "customer_id"),
        (1, "ts"),
        (2, "age"),
        (3, "income"),
        (4, "segment"),
        (5, "score"),
        (6, "tags"),
    ]
    assert ("feature:add_features", group.resource, "ok") in log(admin)


def test_delete_group_drops_data_grants_and_lineage(
    fs: FeatureStore, admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    group = fs.create_group(customers_spec())
    fs.ingest("customers", pd.DataFrame({"customer_id": ["a"], "ts": [at(0)], "age": [1]}))
    admin.access.grant(admin.principal.name, "feature:read_online", group.resource)
    admin.lineage.add(Node("feature_group", group.resource), Node("dataset", "d" * 64), "read_by")
    table_path = Path(fs.offline.table_uri(group))
    assert table_path.exists()
    fs.delete_group("customers")
    assert not table_path.exists()
    assert fs.online.read(group.id, ["a"]) == [None]
    with admin.catalog.read() as conn:
        assert conn.execute(sa.select(feature_groups)).first() is None
        assert conn.execute(sa.select(feature_definitions)).first() is None
        left = conn.execute(
            sa.select(grants.c.pattern).where(grants.c.pattern.startswith(group.resource))
        ).all()
    assert left == []
    assert ("feature:delete_group", group.resource, "ok") in log(admin)
    with pytest.raises(FeatureGroupNotFound):
        fs.describe("customers")
    # the same name again is a new group, empty
    again = fs.create_group(customers_spec())
    assert again.id != group.id and fs.get_record("customers", "a") is None
    assert audit.verify(admin.catalog).ok


def test_delete_group_needs_feature_delete(
    admin: trivet.Session, workspace: Settings, fs: FeatureStore
) -> None:
    fs.create_group(customers_spec())
    dana = user_store(admin, workspace, "dana", [("data_scientist", "default/*")])
    with pytest.raises(PermissionDenied, match="feature:delete"):
        dana.delete_group("customers")
    assert fs.describe("customers")
