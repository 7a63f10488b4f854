"""A feature group's catalog rows: read them into :class:`FeatureGroup`, insert new ones.

For :class:`~trivet.featurestore.FeatureStore`, which checks permissions first and calls
these inside its own catalog transactions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from trivet.featurestore.definitions import Dtype, Feature, FeatureGroup
from trivet.platform.catalog import now_utc
from trivet.platform.catalog._catalog import as_utc
from trivet.platform.catalog.schema import feature_definitions, feature_groups, principals

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = ["KIND", "group_of", "insert_features", "insert_group", "read_group_by_id", "read_groups"]

KIND = "feature_groups"
"""The resource kind of feature groups: ``<project>/feature_groups/<name>``."""


def read_groups(conn: sa.Connection, project: str, name: str | None = None) -> list[FeatureGroup]:
    """Return a project's groups (or the one called ``name``) with their features."""
    query = (
        sa.select(feature_groups, principals.c.name.label("creator"))
        .outerjoin(principals, principals.c.id == feature_groups.c.created_by)
        .where(feature_groups.c.project == project)
        .order_by(feature_groups.c.name)
    )
    if name is not None:
        query = query.where(feature_groups.c.name == name)
    rows = conn.execute(query).all()
    if not rows:
        return []
    defs: dict[str, list[Any]] = {r.id: [] for r in rows}
    for d in conn.execute(
        sa.select(feature_definitions)
        .where(feature_definitions.c.group_id.in_(list(defs)))
        .order_by(feature_definitions.c.group_id, feature_definitions.c.position)
    ):
        defs[d.group_id].append(d)
    return [group_of(r, defs[r.id]) for r in rows]


def read_group_by_id(conn: sa.Connection, group_id: str) -> FeatureGroup | None:
    """Return a group of any project by id (for flushing the buffer), or None."""
    row = conn.execute(
        sa.select(feature_groups, principals.c.name.label("creator"))
        .outerjoin(principals, principals.c.id == feature_groups.c.created_by)
        .where(feature_groups.c.id == group_id)
    ).first()
    if row is None:
        return None
    defs = conn.execute(
        sa.select(feature_definitions)
        .where(feature_definitions.c.group_id == group_id)
        .order_by(feature_definitions.c.position)
    ).all()
    return group_of(row, defs)


def group_of(row: Any, defs: Sequence[Any]) -> FeatureGroup:
    """Build a :class:`FeatureGroup` from its catalog row and its features' rows."""
    created, updated = as_utc(row.created_at), as_utc(row.updated_at)
    assert created is not None and updated is not None
    return FeatureGroup(
        id=row.id,
        name=row.name,
        project=row.project,
        resource="/".join((row.project, KIND, row.name)),
        record_id=row.record_id,
        record_id_dtype=Dtype(defs[0].dtype),
        event_time=row.event_time,
        features=tuple(
            Feature(
                name=d.name,
                dtype=Dtype(d.dtype),
                description=d.description,
                parameters=d.parameters or {},
            )
            for d in defs[2:]
        ),
        description=row.description,
        tags=tuple(row.tags or ()),
        ttl=None if row.ttl_us is None else dt.timedelta(microseconds=row.ttl_us),
        online=bool(row.online),
        offline=bool(row.offline),
        created_at=created,
        created_by=row.creator,
        updated_at=updated,
    )


def insert_group(session: Session, conn: sa.Connection, group: FeatureGroup) -> None:
    """Record a new group, its features and its creator's grant; audit it."""
    from trivet.platform.access import insert_grant

    ttl_us = None if group.ttl is None else group.ttl // dt.timedelta(microseconds=1)
    conn.execute(
        sa.insert(feature_groups).values(
            id=group.id,
            project=group.project,
            name=group.name,
            record_id=group.record_id,
            event_time=group.event_time,
            description=group.description,
            tags=list(group.tags),
            ttl_us=ttl_us,
            online=group.online,
            offline=group.offline,
            created_at=group.created_at,
            created_by=session.principal.id,
            updated_at=group.updated_at,
        )
    )
    keys = [
        Feature(name=group.record_id, dtype=group.record_id_dtype, description="record id"),
        Feature(name=group.event_time, dtype=Dtype.TIMESTAMP, description="event time"),
    ]
    insert_features(conn, group.id, [*keys, *group.features], start=0)
    insert_grant(
        session,
        conn,
        subject=session.principal,
        effect="allow",
        privilege="maintainer",
        pattern=f"{group.resource}/*",
        reason=f"created feature group {group.name!r}",
    )
    session.record(
        conn,
        action="feature:create_group",
        resource=group.resource,
        detail={"id": group.id, "spec": group.spec.to_dict()},
    )


def insert_features(
    conn: sa.Connection, group_id: str, features: Sequence[Feature], *, start: int
) -> None:
    """Record features of a group from position ``start`` on."""
    now = now_utc()
    conn.execute(
        sa.insert(feature_definitions),
        [
            {
                "group_id": group_id,
                "position": start + i,
                "name": f.name,
                "dtype": f.dtype.value,
                "description": f.description,
                "parameters": dict(f.parameters),
                "created_at": now,
            }
            for i, f in enumerate(features)
        ],
    )
