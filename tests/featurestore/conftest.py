"""Fixtures for the feature store: a FeatureStore on the admin session, users, frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

import trivet
from trivet.featurestore import Dtype, Feature, FeatureGroup, FeatureGroupSpec, FeatureStore
from trivet.platform.settings import Settings

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    """A time ``hours`` after 2024-01-01T00:00Z."""
    return T0 + dt.timedelta(hours=hours)


def customers_spec(name: str = "customers", **changes: object) -> FeatureGroupSpec:
    values: dict[str, object] = {
        "name": name,
        "record_id": "customer_id",
        "event_time": "ts",
        "features": [
            Feature(name="age", dtype="int", description="age in years"),
            Feature(name="income", dtype="float", parameters={"unit": "EUR"}),
            Feature(name="segment", dtype="string"),
        ],
        "description": "customer profile",
        "tags": ("pii",),
    }
    values.update(changes)
    return FeatureGroupSpec(**values)  # type: ignore[arg-type]


def detached_group(
    name: str, id_dtype: Dtype, features: list[tuple[str, str]], *, id: str
) -> FeatureGroup:
    """A group that is in no catalog (record id ``id``, event time ``ts``), for the code
    that only reads a definition: validation, encoding, statistics."""
    return FeatureGroup(
        id=id,
        name=name,
        project="p",
        resource=f"p/feature_groups/{name}",
        record_id="id",
        record_id_dtype=id_dtype,
        event_time="ts",
        features=tuple(Feature(name=n, dtype=d) for n, d in features),
        description="",
        tags=(),
        ttl=None,
        online=True,
        offline=True,
        created_at=T0,
        created_by=None,
        updated_at=T0,
    )


@pytest.fixture
def fs(admin: trivet.Session) -> Iterator[FeatureStore]:
    store = FeatureStore(admin)
    yield store
    store.close()


def user_store(
    admin: trivet.Session,
    workspace: Settings,
    name: str,
    grants: list[tuple[str, str]],
) -> FeatureStore:
    """A FeatureStore for a new user holding ``grants`` (privilege, pattern)."""
    admin.identity.create_user(name)
    for privilege, pattern in grants:
        admin.access.grant(name, privilege, pattern)
    token = admin.identity.create_token(name)
    return FeatureStore(trivet.connect(workspace.workspace, token=token.secret))
