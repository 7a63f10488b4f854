"""Grants and roles, managed through a Session (``session.access``).

Writing a grant needs ``grant:manage`` on the pattern *and*, for an allow, holding
every action it grants there: nobody can hand out more than they hold.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from trivet.errors import AlreadyExists, NotFound, PermissionDenied, ValidationError, did_you_mean
from trivet.platform import identity
from trivet.platform.catalog import now_utc
from trivet.platform.catalog._catalog import as_utc
from trivet.platform.catalog.schema import grants, principals, roles, workspace_meta
from trivet.platform.identity import Principal
from trivet.platform.names import check_name, check_pattern, check_resource
from trivet.platform.permissions import (
    BUILTIN_ROLES,
    Decision,
    Effect,
    bump_epoch,
    check_privilege,
    custom_roles,
    expand_privilege,
    validate_role_actions,
)

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = ["POLICIES", "Access", "Grant", "insert_grant", "policy", "write_policy"]

POLICIES: dict[str, bool] = {"four_eyes": False}
"""The workspace policies and their defaults."""


def policy(conn: sa.Connection, name: str) -> bool:
    """Read a workspace policy from the catalog (its default when never set)."""
    value = conn.execute(
        sa.select(workspace_meta.c.value).where(workspace_meta.c.key == f"policy.{name}")
    ).scalar()
    return POLICIES[name] if value is None else value == "true"


def write_policy(conn: sa.Connection, name: str, value: bool) -> None:
    """Set a workspace policy inside the caller's write transaction (no checks)."""
    key = f"policy.{name}"
    conn.execute(sa.delete(workspace_meta).where(workspace_meta.c.key == key))
    conn.execute(sa.insert(workspace_meta).values(key=key, value="true" if value else "false"))


@dataclass(frozen=True, kw_only=True)
class Grant:
    """A subject's allow or deny of an action or role on a resource pattern."""

    id: str
    subject: str
    effect: Effect
    privilege: str
    pattern: str
    expires_at: dt.datetime | None
    created_at: dt.datetime
    created_by: str | None
    reason: str


def insert_grant(
    session: Session,
    conn: sa.Connection,
    *,
    subject: Principal,
    effect: Effect,
    privilege: str,
    pattern: str,
    expires_at: dt.datetime | None = None,
    reason: str = "",
) -> str:
    """Insert a grant row (no permission check), audit it and bump the policy epoch."""
    gid = str(uuid.uuid4())
    conn.execute(
        sa.insert(grants).values(
            id=gid,
            subject_id=subject.id,
            effect=effect,
            privilege=privilege,
            pattern=pattern,
            expires_at=expires_at,
            created_at=now_utc(),
            created_by=session.principal.id,
            reason=reason,
        )
    )
    bump_epoch(conn, session.catalog)
    session.record(
        conn,
        action="grant:create",
        resource=pattern if pattern != "*" else "_workspace",
        detail={
            "grant": gid,
            "subject": subject.name,
            "effect": effect,
            "privilege": privilege,
            "pattern": pattern,
            "reason": reason,
        },
    )
    return gid


def _grant_resource(pattern: str) -> str:
    """The node a ``grant:manage`` check for ``pattern`` is made on."""
    return "_workspace" if pattern == "*" else pattern.removesuffix("/*")


class Access:
    """Grants, roles and decisions under the session's own permissions."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def check(self, action: str, resource: str, *, principal: str | None = None) -> Decision:
        """Explain the decision for ``principal`` (default: you) without auditing it."""
        check_resource(resource)
        if principal is None or principal == self._s.principal.name:
            return self._s._ceiling(
                self._s._evaluator.check(
                    self._s.principal.id, self._s.principal.name, action, resource
                )
            )
        self._s.require("grant:manage", resource)
        with self._s.catalog.read() as conn:
            target = identity.get_principal(conn, principal)
        return self._s._evaluator.check(target.id, target.name, action, resource)

    def grant(
        self,
        subject: str,
        privilege: str,
        pattern: str,
        *,
        deny: bool = False,
        expires_at: dt.datetime | None = None,
        reason: str = "",
    ) -> Grant:
        """Allow (or, with ``deny=True``, explicitly deny) ``privilege`` on ``pattern``.

        Args:
            subject: a user, group or service principal name.
            privilege: an action (``feature:read_online``) or a role (``data_scientist``).
            pattern: ``project/kind/name``, ``project/kind/*`` (node and subtree) or ``*``.
            deny: write an explicit deny, which beats every allow.
            expires_at: when the grant stops counting (aware datetime).
            reason: why; kept in the grant and the audit log.

        Raises:
            PermissionDenied: you lack ``grant:manage`` there, or (for an allow) one of
                the actions you are granting.
        """
        check_pattern(pattern)
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValidationError(
                "expires_at must be timezone-aware.", hint="e.g. datetime.now(UTC) + timedelta(7)"
            )
        if expires_at is not None and expires_at <= now_utc():
            raise ValidationError(
                f"expires_at {expires_at.isoformat()} is in the past; the grant would never count.",
                hint="give a future time, or leave it out for a grant that does not expire",
            )
        with self._s.catalog.read() as conn:
            custom = custom_roles(conn)
            target = identity.get_principal(conn, subject)
        check_privilege(privilege, custom)
        self._s.require("grant:manage", _grant_resource(pattern))
        needed = {"grant:manage"} | (set() if deny else expand_privilege(privilege, custom))
        self._require_held(needed, pattern, f"grant {privilege!r} on {pattern!r}")
        with self._s.catalog.write() as conn:
            gid = insert_grant(
                self._s,
                conn,
                subject=target,
                effect="deny" if deny else "allow",
                privilege=privilege,
                pattern=pattern,
                expires_at=expires_at,
                reason=reason,
            )
        return self._get(gid)

    def revoke(self, grant_id: str) -> None:
        """Delete a grant by its id, or a unique prefix of it (as `trivet auth grants`
        shows); the change counts from the next check."""
        row = self._find(grant_id)
        grant_id = row.id
        self._s.require("grant:manage", _grant_resource(row.pattern))
        if row.effect == "deny":  # lifting a deny hands the actions back: as for granting
            with self._s.catalog.read() as conn:
                custom = custom_roles(conn)
            self._require_held(
                expand_privilege(row.privilege, custom),
                row.pattern,
                f"lift the deny of {row.privilege!r} on {row.pattern!r}",
            )
        with self._s.catalog.write() as conn:
            conn.execute(sa.delete(grants).where(grants.c.id == grant_id))
            bump_epoch(conn, self._s.catalog)
            self._s.record(
                conn,
                action="grant:revoke",
                resource=_grant_resource(row.pattern),
                detail={"grant": grant_id, "pattern": row.pattern, "privilege": row.privilege},
            )

    def _find(self, grant_id: str) -> sa.Row[Any]:
        """Return the grant row whose id is ``grant_id`` or starts with it (≥ 8 characters)."""
        if not isinstance(grant_id, str) or not re.fullmatch(r"[0-9a-f-]{8,36}", grant_id):
            raise ValidationError(
                f"{grant_id!r} is not a grant id.", hint="copy it from `trivet auth grants`"
            )
        with self._s.catalog.read() as conn:
            rows = conn.execute(
                sa.select(grants).where(grants.c.id.startswith(grant_id, autoescape=True)).limit(2)
            ).all()
        if not rows:
            raise NotFound(
                f"There is no grant {grant_id!r}.", hint="list grants with `trivet auth grants`"
            )
        if len(rows) > 1:
            raise ValidationError(
                f"The prefix {grant_id!r} matches several grants.", hint="give more characters"
            )
        return rows[0]

    def _require_held(self, actions: Iterable[str], pattern: str, what: str) -> None:
        """Raise PermissionDenied unless the session holds every action on all of ``pattern``.

        Held means: granted on the whole pattern, denied nowhere in it, and within the
        session token's scope.
        """
        ev, scope = self._s._evaluator, self._s._scope
        missing = sorted(
            a
            for a in set(actions)
            if not ev.check_pattern(self._s.principal.id, a, pattern)
            or (scope is not None and not scope.permits_pattern(a, pattern))
        )
        if missing:
            reason = f"does not hold {', '.join(missing)} on all of {pattern!r}"
            with self._s.catalog.write() as conn:  # a refused grant is a denial: audit it
                self._s.record(
                    conn,
                    action="grant:manage",
                    resource=_grant_resource(pattern),
                    outcome="denied",
                    detail={"reason": reason, "attempt": what},
                )
            raise PermissionDenied(
                f"{self._s.principal.name!r} cannot {what}: it does not hold "
                f"{', '.join(missing)} on all of it.",
                hint="grant only what you hold, or ask an owner of that resource",
            )

    def grants(self, *, subject: str | None = None, pattern: str | None = None) -> list[Grant]:
        """Return grants, optionally of one subject or on one exact pattern.

        You see the grants of yourself and your groups, and those on patterns where you
        hold ``grant:manage``.
        """
        query = (
            sa.select(grants, principals.c.name.label("subject"))
            .join(principals, principals.c.id == grants.c.subject_id)
            .order_by(grants.c.pattern, principals.c.name, grants.c.privilege)
        )
        if subject is not None:
            query = query.where(principals.c.name == subject)
        if pattern is not None:
            query = query.where(grants.c.pattern == pattern)
        with self._s.catalog.read() as conn:
            rows = conn.execute(query).all()
            mine = self._s._evaluator.group_ids(conn, self._s.principal.id)
        mine.add(self._s.principal.id)
        return [
            _grant(r)
            for r in rows
            if r.subject_id in mine or self._s.can("grant:manage", _grant_resource(r.pattern))
        ]

    def _get(self, gid: str) -> Grant:
        with self._s.catalog.read() as conn:
            row = conn.execute(
                sa.select(grants, principals.c.name.label("subject"))
                .join(principals, principals.c.id == grants.c.subject_id)
                .where(grants.c.id == gid)
            ).one()
        return _grant(row)

    def drop_resource(self, conn: sa.Connection, resource: str) -> int:
        """Delete the grants on ``resource`` and anywhere below it; return how many.

        Parts call this inside the transaction that deletes the resource, so that a new
        resource with the same name (or a new child of it) starts with no grants.
        """
        check_resource(resource)
        result = conn.execute(
            sa.delete(grants).where(
                sa.or_(
                    grants.c.pattern == resource,
                    grants.c.pattern.startswith(resource + "/", autoescape=True),
                )
            )
        )
        dropped = int(result.rowcount or 0)
        bump_epoch(conn, self._s.catalog)
        if dropped:
            self._s.record(
                conn, action="grant:drop", resource=resource, detail={"dropped": dropped}
            )
        return dropped

    # -- workspace policies ----------------------------------------------------------------
    def policies(self) -> dict[str, bool]:
        """Return the workspace's policies (kept in the catalog, the same for everyone)."""
        with self._s.catalog.read() as conn:
            return {name: policy(conn, name) for name in POLICIES}

    def set_policy(self, name: str, value: bool) -> None:
        """Change a workspace policy (needs ``grant:manage`` on ``_workspace``; audited).

        Policies: ``four_eyes`` — nobody approves a model version they registered.
        """
        if name not in POLICIES:
            raise ValidationError(
                f"There is no workspace policy {name!r}.", hint=did_you_mean(name, POLICIES)
            )
        if not isinstance(value, bool):
            raise ValidationError(f"The policy {name!r} is true or false, not {value!r}.")
        self._s.require("grant:manage", "_workspace")
        with self._s.catalog.write() as conn:
            write_policy(conn, name, value)
            self._s.record(conn, action="policy:set", resource="_workspace", detail={name: value})

    # -- roles -----------------------------------------------------------------------------
    def roles(self) -> dict[str, frozenset[str]]:
        """Return every role (built-in and custom) with its actions."""
        with self._s.catalog.read() as conn:
            return {**BUILTIN_ROLES, **custom_roles(conn)}

    def create_role(self, name: str, actions: Iterable[str], *, description: str = "") -> None:
        """Define a custom role: a named set of catalogued actions (needs ``grant:manage``)."""
        check_name(name, what="role name")
        acts = validate_role_actions(name, actions)
        self._s.require("grant:manage", "_workspace")
        with self._s.catalog.write() as conn:
            if conn.execute(sa.select(roles.c.name).where(roles.c.name == name)).first():
                raise AlreadyExists(f"The role {name!r} exists already.")
            conn.execute(
                sa.insert(roles).values(
                    name=name,
                    actions=sorted(acts),
                    description=description,
                    created_at=now_utc(),
                    created_by=self._s.principal.id,
                )
            )
            bump_epoch(conn, self._s.catalog)
            self._s.record(conn, action="role:create", resource="_workspace", detail={"role": name})


def _grant(row: sa.Row[object]) -> Grant:
    m = row._mapping
    created = as_utc(m["created_at"])
    assert created is not None
    return Grant(
        id=m["id"],
        subject=m["subject"],
        effect=m["effect"],
        privilege=m["privilege"],
        pattern=m["pattern"],
        expires_at=as_utc(m["expires_at"]),
        created_at=created,
        created_by=m["created_by"],
        reason=m["reason"] or "",
    )
