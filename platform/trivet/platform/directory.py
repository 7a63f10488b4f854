"""Managing principals, groups, tokens and projects through a Session (``session.identity``).

Managing another principal needs ``principal:manage`` on ``_principals/<name>``; a
principal may always list and create or revoke tokens of its own. Every change is
audited and bumps the policy epoch where it can change a decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from trivet.errors import AlreadyExists, Conflict, NotFound, ValidationError, did_you_mean
from trivet.platform import identity
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import memberships, principals, projects, tokens
from trivet.platform.identity import Principal, PrincipalKind, TokenInfo
from trivet.platform.names import check_name, check_pattern, check_project
from trivet.platform.permissions import ACTIONS, TokenScope, bump_epoch

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = ["Directory", "NewToken", "Project", "assume", "runner_name"]

DEFAULT_TOKEN_LIFETIME = dt.timedelta(days=30)


@dataclass(frozen=True, kw_only=True)
class NewToken:
    """A token just created: ``secret`` is shown this once and never stored."""

    info: TokenInfo
    secret: str

    def __repr__(self) -> str:  # never show the secret in a repr or a log line
        return f"NewToken(prefix={self.info.prefix!r}, expires_at={self.info.expires_at})"


@dataclass(frozen=True, kw_only=True)
class Project:
    """A namespace for feature groups, pipelines and models, with its runner principal."""

    name: str
    runner: str | None
    description: str


def runner_name(project: str) -> str:
    """Return the name of a project's default pipeline service principal."""
    return f"{project}-runner"[:64]


def _principal_resource(name: str) -> str:
    return f"_principals/{name}"


class Directory:
    """Principals, groups, tokens and projects, managed under the session's grants."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # -- principals ---------------------------------------------------------------
    def whoami(self) -> Principal:
        """Return the session's principal."""
        return self._s.principal

    def get(self, name: str) -> Principal:
        """Return the principal called ``name``."""
        with self._s.catalog.read() as conn:
            return identity.get_principal(conn, name)

    def principals(self, *, kind: PrincipalKind | str | None = None) -> list[Principal]:
        """Return every principal, optionally of one kind."""
        with self._s.catalog.read() as conn:
            return identity.list_principals(conn, PrincipalKind(kind) if kind else None)

    def create_user(self, name: str, *, description: str = "") -> Principal:
        """Create a user principal."""
        return self._create(name, PrincipalKind.USER, description)

    def create_group(self, name: str, *, description: str = "") -> Principal:
        """Create a group; add members with :meth:`add_member`."""
        return self._create(name, PrincipalKind.GROUP, description)

    def create_service(self, name: str, *, description: str = "") -> Principal:
        """Create a service principal (an application or a pipeline's run-as identity)."""
        return self._create(name, PrincipalKind.SERVICE, description)

    def _create(self, name: str, kind: PrincipalKind, description: str) -> Principal:
        check_name(name, what="principal name")
        self._s.require("principal:manage", _principal_resource(name))
        with self._s.catalog.write() as conn:
            if identity.find_principal(conn, name) is not None:
                raise AlreadyExists(
                    f"A principal named {name!r} exists already.",
                    hint="pick another name or delete the old principal first",
                )
            created = identity.insert_principal(
                conn, name=name, kind=kind, description=description, created_by=self._s.principal.id
            )
            self._s.record(
                conn,
                action="principal:create",
                resource=_principal_resource(name),
                detail={"id": created.id, "kind": kind.value},
            )
        return created

    def delete(self, name: str) -> None:
        """Delete a principal with its grants, memberships and tokens.

        A principal created later under the same name gets a new id and none of them.
        """
        self._s.require("principal:manage", _principal_resource(name))
        with self._s.catalog.write() as conn:
            target = identity.get_principal(conn, name)
            if target.id == self._s.principal.id:
                raise Conflict("You cannot delete your own principal.")
            conn.execute(
                sa.update(projects).where(projects.c.runner_id == target.id).values(runner_id=None)
            )
            conn.execute(sa.delete(principals).where(principals.c.id == target.id))
            # grants *on* it (principal:use, principal:manage) go too, so a new principal
            # of the same name does not come with them
            self._s.access.drop_resource(conn, _principal_resource(name))
            bump_epoch(conn, self._s.catalog)
            self._s.record(
                conn,
                action="principal:delete",
                resource=_principal_resource(name),
                detail={"id": target.id},
            )

    # -- groups ------------------------------------------------------------------------
    def add_member(self, group: str, member: str) -> None:
        """Add ``member`` (a user, service or group) to ``group``; cycles are harmless."""
        self._s.require("principal:manage", _principal_resource(group))
        with self._s.catalog.read() as conn:
            grp = identity.get_principal(conn, group)
            mem = identity.get_principal(conn, member)
            if grp.kind is not PrincipalKind.GROUP:
                raise ValidationError(f"{group!r} is a {grp.kind.value}, not a group.")
            if grp.id == mem.id:
                raise ValidationError(f"A group cannot contain itself ({group!r}).")
            conferred = _conferred_allows(self._s, conn, grp.id)
        # Joining a group hands over its grants: as for granting, you may add members
        # only to a group whose every allow you hold yourself.
        for pattern, actions in sorted(conferred.items()):
            self._s.access._require_held(actions, pattern, f"add {member!r} to {group!r}")
        with self._s.catalog.write() as conn:
            exists = conn.execute(
                sa.select(memberships.c.group_id).where(
                    memberships.c.group_id == grp.id, memberships.c.member_id == mem.id
                )
            ).first()
            if exists is None:
                conn.execute(
                    sa.insert(memberships).values(
                        group_id=grp.id, member_id=mem.id, created_at=now_utc()
                    )
                )
                bump_epoch(conn, self._s.catalog)
                self._s.record(
                    conn,
                    action="group:add_member",
                    resource=_principal_resource(group),
                    detail={"member": member},
                )

    def remove_member(self, group: str, member: str) -> None:
        """Remove ``member`` from ``group``."""
        self._s.require("principal:manage", _principal_resource(group))
        with self._s.catalog.write() as conn:
            grp = identity.get_principal(conn, group)
            mem = identity.get_principal(conn, member)
            conn.execute(
                sa.delete(memberships).where(
                    memberships.c.group_id == grp.id, memberships.c.member_id == mem.id
                )
            )
            bump_epoch(conn, self._s.catalog)
            self._s.record(
                conn,
                action="group:remove_member",
                resource=_principal_resource(group),
                detail={"member": member},
            )

    def members(self, group: str) -> list[Principal]:
        """Return the direct members of ``group``."""
        with self._s.catalog.read() as conn:
            return identity.members(conn, identity.get_principal(conn, group).id)

    # -- tokens --------------------------------------------------------------------------
    def create_token(
        self,
        principal: str | None = None,
        *,
        expires_in: dt.timedelta | None = None,
        actions: Iterable[str] | None = None,
        resources: Iterable[str] | None = None,
        description: str = "",
    ) -> NewToken:
        """Create an API token; its secret is returned once and only its hash is stored.

        Args:
            principal: whose token (default: your own). Another principal's needs
                ``principal:manage`` on it.
            expires_in: lifetime, at most a year (default 30 days); a token created
                while signed in with a token never outlives that token.
            actions: optional ceiling on the actions the token may use.
            resources: optional ceiling on the resource patterns it may touch.
            description: a note shown in listings.
        """
        scope = None
        if actions is not None or resources is not None:
            acts = frozenset(actions) if actions is not None else None
            unknown = sorted((acts or frozenset()) - ACTIONS)
            if unknown:
                raise ValidationError(
                    f"Unknown action {unknown[0]!r} in the token scope.",
                    hint=did_you_mean(unknown[0], ACTIONS),
                )
            pats = tuple(check_pattern(p) for p in resources) if resources is not None else None
            scope = TokenScope(actions=acts, patterns=pats)
        with self._s.catalog.read() as conn:
            target = identity.get_principal(conn, principal) if principal else self._s.principal
        if target.id != self._s.principal.id:
            self._s.require("principal:manage", _principal_resource(target.name))
        if self._s.token is not None and self._s.token.kind == "run":
            raise ValidationError("A run token cannot create further tokens.")
        parent = self._s.token
        # (a second's margin: the new token's clock starts a moment after this one)
        left = parent.expires_at - now_utc() - dt.timedelta(seconds=1) if parent else None
        if expires_in is None:
            expires_in = (
                DEFAULT_TOKEN_LIFETIME if left is None else min(DEFAULT_TOKEN_LIFETIME, left)
            )
        if parent is not None and left is not None and expires_in > left:
            # a token never mints one that outlives it
            raise ValidationError(
                f"A token created with token {parent.prefix}… cannot outlive it "
                f"(it expires in {max(left.days, 0)} days).",
                hint=f"ask for expires_in of at most {left.days}d, or sign in otherwise",
            )
        own = self._s.token.scope if self._s.token is not None else None
        if own is not None:  # a scoped token cannot mint a broader one
            scope = own if scope is None else scope.intersect(own)
            if scope.actions == frozenset() or scope.patterns == ():
                raise ValidationError(
                    "The requested scope lies outside the scope of the token you use.",
                    hint="ask for a subset of its actions and resources, or use another token",
                )
        with self._s.catalog.write() as conn:
            info, secret = identity.insert_token(
                conn,
                principal=target,
                kind=identity.token_kind_for(target),
                expires_in=expires_in,
                scope=scope,
                description=description,
                created_by=self._s.principal.id,
                parent_id=self._s.token.id if self._s.token is not None else None,
            )
            self._s.record(
                conn,
                action="token:create",
                resource=_principal_resource(target.name),
                detail={"prefix": info.prefix, "expires_at": info.expires_at.isoformat()},
            )
        return NewToken(info=info, secret=secret)

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        """Return the tokens of a principal (default: your own), newest first."""
        with self._s.catalog.read() as conn:
            target = identity.get_principal(conn, principal) if principal else self._s.principal
        if target.id != self._s.principal.id:
            self._s.require("principal:manage", _principal_resource(target.name))
        with self._s.catalog.read() as conn:
            rows = conn.execute(
                sa.select(tokens)
                .where(tokens.c.principal_id == target.id)
                .order_by(tokens.c.created_at.desc())
            )
            return [identity.token_info(r._mapping) for r in rows]

    def revoke_token(self, prefix: str) -> TokenInfo:
        """Revoke a token by its display prefix (``trv_usr_Ab12Cd34``).

        Every token created while signed in with it (and, transitively, with those) is
        revoked too: a derived token never outlives its parent's revocation.
        """
        with self._s.catalog.read() as conn:
            row = conn.execute(sa.select(tokens).where(tokens.c.prefix == prefix)).first()
            owner = None if row is None else identity.principal_by_id(conn, row.principal_id)
        if row is None or owner is None:
            raise NotFound(
                f"There is no token with prefix {prefix!r}.",
                hint="list tokens with `trivet auth token list`",
            )
        if owner.id != self._s.principal.id:
            self._s.require("principal:manage", _principal_resource(owner.name))
        with self._s.catalog.write() as conn:
            revoked = identity.revoke_with_descendants(conn, row.id)
            bump_epoch(conn, self._s.catalog, tokens_only=True)
            self._s.record(
                conn,
                action="token:revoke",
                resource=_principal_resource(owner.name),
                detail={
                    "prefix": prefix,
                    "with_tokens_made_from_it": len([t for t in revoked if t != row.id]),
                },
            )
            fresh = conn.execute(sa.select(tokens).where(tokens.c.id == row.id)).one()
        return identity.token_info(fresh._mapping)

    # -- projects -----------------------------------------------------------------------
    def create_project(self, name: str, *, description: str = "") -> Project:
        """Create a project with its default runner service principal.

        Needs ``grant:manage`` on ``*`` (a workspace owner). The creator becomes owner of
        ``<project>/*``; the runner holds ``data_scientist`` there, so pipelines run with
        no further set-up.
        """
        from trivet.platform.access import insert_grant

        check_project(name)
        self._s.require("grant:manage", "_workspace")
        with self._s.catalog.write() as conn:
            if conn.execute(sa.select(projects.c.name).where(projects.c.name == name)).first():
                raise AlreadyExists(f"The project {name!r} exists already.")
            runner = runner_name(name)
            if identity.find_principal(conn, runner) is not None:
                raise AlreadyExists(
                    f"A principal named {runner!r} exists already; it would be the project's "
                    "runner.",
                    hint="delete or rename that principal, or pick another project name",
                )
            sp = identity.insert_principal(
                conn,
                name=runner,
                kind=PrincipalKind.SERVICE,
                description=f"Default pipeline runner of project {name!r}",
                created_by=self._s.principal.id,
            )
            conn.execute(
                sa.insert(projects).values(
                    name=name,
                    runner_id=sp.id,
                    description=description,
                    created_at=now_utc(),
                    created_by=self._s.principal.id,
                )
            )
            for subject, role in ((self._s.principal, "owner"), (sp, "data_scientist")):
                insert_grant(
                    self._s,
                    conn,
                    subject=subject,
                    effect="allow",
                    privilege=role,
                    pattern=f"{name}/*",
                    reason=f"project {name!r} created",
                )
            self._s.record(conn, action="project:create", resource=name, detail={"runner": runner})
        return Project(name=name, runner=runner, description=description)

    def list_projects(self) -> list[Project]:
        """Return the projects you hold any grant in (an owner of ``*``: every one)."""
        with self._s.catalog.read() as conn:
            rows = conn.execute(
                sa.select(projects.c.name, projects.c.description, principals.c.name.label("r"))
                .select_from(
                    projects.outerjoin(principals, principals.c.id == projects.c.runner_id)
                )
                .order_by(projects.c.name)
            ).all()
        return [
            Project(name=r.name, runner=r.r, description=r.description)
            for r in rows
            if self._s.has_access_to(r.name)
        ]


def assume(session: Session, service: str) -> Session:
    """Return a session acting as ``service``; needs ``principal:use`` on it."""
    session.require("principal:use", _principal_resource(check_name(service)))
    with session.catalog.read() as conn:
        target = identity.get_principal(conn, service)
    if target.kind is not PrincipalKind.SERVICE:
        raise ValidationError(
            f"{service!r} is a {target.kind.value}; only service principals can be assumed."
        )
    with session.catalog.write() as conn:
        session.record(conn, action="principal:use", resource=_principal_resource(service))
    # The caller's token (its scope, expiry and revocation) stays the ceiling of the
    # assumed session, and audit rows keep naming the person at the start of the chain.
    return session.derive(
        principal=target,
        token=session.token,
        on_behalf_of=session.on_behalf_of or session.principal,
    )


def _conferred_allows(session: Session, conn: sa.Connection, group_id: str) -> dict[str, set[str]]:
    """Return pattern → actions that membership of a group confers (its own and its
    ancestors' unexpired allows)."""
    from trivet.platform.catalog._catalog import as_utc
    from trivet.platform.catalog.schema import grants
    from trivet.platform.permissions import custom_roles, expand_privilege

    subjects = session._evaluator.group_ids(conn, group_id) | {group_id}
    custom = custom_roles(conn)
    now = now_utc()
    conferred: dict[str, set[str]] = {}
    rows = conn.execute(
        sa.select(grants.c.privilege, grants.c.pattern, grants.c.expires_at).where(
            grants.c.subject_id.in_(subjects), grants.c.effect == "allow"
        )
    )
    for row in rows:
        expires = as_utc(row.expires_at)
        if expires is None or expires > now:
            conferred.setdefault(row.pattern, set()).update(expand_privilege(row.privilege, custom))
    return conferred
