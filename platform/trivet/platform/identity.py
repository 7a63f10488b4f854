"""Identity: principals (users, groups, service principals) and API tokens.

A token reads ``trv_<kind>_<random>_<checksum>``: ``kind`` is ``usr``, ``svc`` or
``run``; ``random`` is 40 base62 characters (238 bits); ``checksum`` is 6 base62
characters of CRC32 over the rest, so a mistyped token is refused before any lookup.
Only the token's sha256 is stored, beside a display prefix (``trv_usr_`` plus the first
eight random characters) used to find the row. Every token expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from trivet.errors import NotAuthenticated, NotFound, ValidationError, did_you_mean
from trivet.platform.catalog import Catalog, now_utc
from trivet.platform.catalog._catalog import as_utc
from trivet.platform.catalog.schema import memberships, principals, tokens
from trivet.platform.permissions import TokenScope

__all__ = [
    "Principal",
    "PrincipalKind",
    "TokenInfo",
    "authenticate",
    "find_principal",
    "get_principal",
    "make_token",
    "redact",
    "split_token",
]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TOKEN = re.compile(r"trv_(usr|svc|run)_([0-9A-Za-z]{40})_([0-9A-Za-z]{6})")
_ANY_TOKEN = re.compile(r"trv_[a-z]{3}_[0-9A-Za-z]{6,}(?:_[0-9A-Za-z]*)?")
MAX_TOKEN_LIFETIME = dt.timedelta(days=366)


class PrincipalKind(StrEnum):
    """What a principal is."""

    USER = "user"
    GROUP = "group"
    SERVICE = "service"


_TOKEN_KIND = {PrincipalKind.USER: "usr", PrincipalKind.SERVICE: "svc"}


@dataclass(frozen=True, kw_only=True)
class Principal:
    """A user, group or service principal. ``id`` never changes; ``name`` is a label."""

    id: str
    name: str
    kind: PrincipalKind
    description: str = ""
    os_user: str | None = None
    created_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TokenInfo:
    """What the catalog knows of a token (never the secret)."""

    id: str
    prefix: str
    principal_id: str
    kind: str
    description: str
    scope: TokenScope | None
    run_id: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def is_active(self) -> bool:
        """Whether the token is neither revoked nor expired."""
        return self.revoked_at is None and self.expires_at > now_utc()


def _b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _b62(zlib.crc32(body.encode()), 6)


def make_token(kind: str) -> str:
    """Return a fresh random token of the given kind (``usr``, ``svc`` or ``run``)."""
    # 40 base-62 digits (238 bits) of one 320-bit draw: one read of the OS's randomness
    # instead of forty; the modulo bias is below 2**-80
    random = int.from_bytes(secrets.token_bytes(40), "big") % 62**40
    body = f"trv_{kind}_{_b62(random, 40)}"
    return f"{body}_{_checksum(body)}"


def split_token(token: str) -> tuple[str, str]:
    """Return ``(prefix, sha256)`` of a well-formed token; raise NotAuthenticated otherwise.

    The checksum is verified here, before any database lookup.
    """
    match = _TOKEN.fullmatch(token.strip()) if isinstance(token, str) else None
    if match is None or _checksum(token.strip().rsplit("_", 1)[0]) != match.group(3):
        raise NotAuthenticated(
            "The token is malformed or mistyped (its checksum does not match).",
            hint="copy the whole token as `trivet auth token create` printed it",
        )
    token = token.strip()
    prefix = f"trv_{match.group(1)}_{match.group(2)[:8]}"
    return prefix, hashlib.sha256(token.encode()).hexdigest()


def redact(text: str) -> str:
    """Mask anything that looks like a trivet token in ``text``."""
    return _ANY_TOKEN.sub(lambda m: m.group(0)[:8] + "…[redacted]", text)


def _principal(row: Mapping[Any, Any]) -> Principal:
    return Principal(
        id=row["id"],
        name=row["name"],
        kind=PrincipalKind(row["kind"]),
        description=row["description"] or "",
        os_user=row["os_user"],
        created_at=as_utc(row["created_at"]),
    )


def token_info(row: Mapping[Any, Any]) -> TokenInfo:
    """Build a TokenInfo from a ``tokens`` row."""
    expires = as_utc(row["expires_at"])
    created = as_utc(row["created_at"])
    assert expires is not None and created is not None
    return TokenInfo(
        id=row["id"],
        prefix=row["prefix"],
        principal_id=row["principal_id"],
        kind=row["kind"],
        description=row["description"] or "",
        scope=TokenScope.from_json(row["scope"]),
        run_id=row["run_id"],
        created_at=created,
        expires_at=expires,
        revoked_at=as_utc(row["revoked_at"]),
    )


def find_principal(conn: sa.Connection, name: str) -> Principal | None:
    """Return the principal called ``name``, or None."""
    row = conn.execute(sa.select(principals).where(principals.c.name == name)).first()
    return None if row is None else _principal(row._mapping)


def get_principal(conn: sa.Connection, name: str) -> Principal:
    """Return the principal called ``name``; raise NotFound with suggestions."""
    found = find_principal(conn, name)
    if found is None:
        known = conn.execute(sa.select(principals.c.name)).scalars().all()
        raise NotFound(
            f"There is no principal named {name!r}.",
            hint=did_you_mean(name, known) or "list them with `trivet auth principals`",
        )
    return found


def principal_by_id(conn: sa.Connection, principal_id: str) -> Principal | None:
    """Return the principal with this id, or None."""
    row = conn.execute(sa.select(principals).where(principals.c.id == principal_id)).first()
    return None if row is None else _principal(row._mapping)


def principal_by_os_user(conn: sa.Connection, os_user: str) -> Principal | None:
    """Return the principal bound to an OS user name, or None."""
    row = conn.execute(sa.select(principals).where(principals.c.os_user == os_user)).first()
    return None if row is None else _principal(row._mapping)


def list_principals(conn: sa.Connection, kind: PrincipalKind | None = None) -> list[Principal]:
    """Return every principal (optionally of one kind), by name."""
    query = sa.select(principals).order_by(principals.c.name)
    if kind is not None:
        query = query.where(principals.c.kind == kind.value)
    return [_principal(r._mapping) for r in conn.execute(query)]


def insert_principal(
    conn: sa.Connection,
    *,
    name: str,
    kind: PrincipalKind,
    description: str = "",
    os_user: str | None = None,
    created_by: str | None = None,
) -> Principal:
    """Insert a principal with a fresh id; the caller checks the name is free."""
    pid = str(uuid.uuid4())
    created = now_utc()
    conn.execute(
        sa.insert(principals).values(
            id=pid,
            name=name,
            kind=kind.value,
            os_user=os_user,
            description=description,
            created_at=created,
            created_by=created_by,
        )
    )
    return Principal(
        id=pid, name=name, kind=kind, description=description, os_user=os_user, created_at=created
    )


def members(conn: sa.Connection, group_id: str) -> list[Principal]:
    """Return the direct members of a group, by name."""
    rows = conn.execute(
        sa.select(principals)
        .join(memberships, memberships.c.member_id == principals.c.id)
        .where(memberships.c.group_id == group_id)
        .order_by(principals.c.name)
    )
    return [_principal(r._mapping) for r in rows]


def insert_token(
    conn: sa.Connection,
    *,
    principal: Principal,
    kind: str,
    expires_in: dt.timedelta,
    scope: TokenScope | None,
    description: str,
    created_by: str | None,
    run_id: str | None = None,
    parent_id: str | None = None,
) -> tuple[TokenInfo, str]:
    """Create a token row; return its info and the secret (shown once, never stored).

    ``parent_id`` is the token the creator signed in with: revoking it revokes this one.
    """
    if expires_in <= dt.timedelta(0):
        raise ValidationError("A token's lifetime must be positive.", hint="e.g. expires_in=30d")
    if expires_in > MAX_TOKEN_LIFETIME:
        raise ValidationError(
            f"A token may live at most {MAX_TOKEN_LIFETIME.days} days, not {expires_in.days}.",
            hint="create a new token before the old one expires",
        )
    secret = make_token(kind)
    prefix, digest = split_token(secret)
    created = now_utc()
    row = {
        "id": str(uuid.uuid4()),
        "principal_id": principal.id,
        "prefix": prefix,
        "token_hash": digest,
        "kind": kind,
        "description": description,
        "scope": scope.to_json() if scope is not None else None,
        "run_id": run_id,
        "created_at": created,
        "created_by": created_by,
        "expires_at": created + expires_in,
        "revoked_at": None,
        "parent_id": parent_id,
    }
    conn.execute(sa.insert(tokens), row)
    return token_info(row), secret


def token_kind_for(principal: Principal) -> str:
    """Return the token kind for a principal; groups cannot hold tokens."""
    kind = _TOKEN_KIND.get(principal.kind)
    if kind is None:
        raise ValidationError(
            f"{principal.name!r} is a group; groups cannot hold tokens.",
            hint="create the token for a user or service principal",
        )
    return kind


def authenticate(catalog: Catalog, token: str) -> tuple[Principal, TokenInfo]:
    """Return the principal and token row for a presented token, or raise NotAuthenticated.

    Malformed tokens and bad checksums are refused before any lookup; the stored hash is
    compared in constant time; revoked and expired tokens are refused.
    """
    prefix, digest = split_token(token)
    with catalog.read() as conn:
        row = conn.execute(sa.select(tokens).where(tokens.c.prefix == prefix)).first()
        principal = None if row is None else principal_by_id(conn, row.principal_id)
    if row is None or principal is None or not hmac.compare_digest(row.token_hash, digest):
        raise NotAuthenticated(
            f"The token {prefix}… is not known to this workspace.",
            hint="check TRIVET_TOKEN / --token and the workspace it belongs to",
        )
    info = token_info(row._mapping)
    if info.revoked_at is not None:
        raise NotAuthenticated(
            f"The token {prefix}… was revoked.", hint="ask for a new one: trivet auth token create"
        )
    if info.expires_at <= now_utc():
        raise NotAuthenticated(
            f"The token {prefix}… expired at {info.expires_at:%Y-%m-%d %H:%M} UTC.",
            hint="create a new one: trivet auth token create",
        )
    return principal, info


def revoke_with_descendants(conn: sa.Connection, token_id: str) -> list[str]:
    """Revoke a token and every token created with it, transitively.

    Returns the ids of the tokens this revoked (those already revoked are not counted).

    A token minted while signed in with another (a narrower one for a CI job, a run
    token) must not outlive its parent's revocation.
    """
    revoked: list[str] = []
    frontier = [token_id]
    seen = {token_id}
    now = now_utc()
    while frontier:
        live = tokens.c.id.in_(frontier) & tokens.c.revoked_at.is_(None)
        revoked += conn.execute(sa.select(tokens.c.id).where(live)).scalars().all()
        conn.execute(sa.update(tokens).where(live).values(revoked_at=now))
        children = conn.execute(
            sa.select(tokens.c.id).where(tokens.c.parent_id.in_(frontier))
        ).scalars()
        frontier = [c for c in children if c not in seen]
        seen.update(frontier)
    return revoked
