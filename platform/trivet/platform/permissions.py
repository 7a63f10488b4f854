"""Permissions: the action catalogue, roles, grants and their evaluation.

The model is specified in ``shared/specs/permissions.md``: default deny; an explicit
deny anywhere beats any allow; grants on a subtree (``path/*``) cover children created
later; patterns are segment-aware. A principal's grants (its own and its groups',
transitively) are compiled once per *policy epoch* into two dicts keyed by pattern, so
a check costs at most ``depth + 2`` dict probes, independent of the number of grants.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from trivet.errors import ValidationError, did_you_mean
from trivet.platform.catalog import Catalog, now_utc
from trivet.platform.catalog._catalog import after_commit, as_utc
from trivet.platform.catalog.schema import grants, memberships, policy_epoch, roles, tokens
from trivet.platform.names import check_resource, pattern_covers, pattern_includes

__all__ = [
    "ACTIONS",
    "BUILTIN_ROLES",
    "REVIEW_ACTIONS",
    "Decision",
    "Effect",
    "Evaluator",
    "TokenScope",
    "bump_epoch",
    "expand_privilege",
    "probe_keys",
]

Effect = Literal["allow", "deny"]

ACTIONS: frozenset[str] = frozenset(
    {
        "feature:describe",
        "feature:read_online",
        "feature:read_offline",
        "feature:write",
        "feature:create",
        "feature:delete",
        "pipeline:describe",
        "pipeline:create",
        "pipeline:update",
        "pipeline:run",
        "pipeline:approve",
        "pipeline:delete",
        "model:describe",
        "model:read",
        "model:predict",
        "model:register",
        "model:approve",
        "model:delete",
        "artifact:read",
        "artifact:write",
        "clarify:run",
        "clarify:read_report",
        "clarify:review",
        "principal:use",
        "principal:manage",
        "grant:manage",
        "audit:read",
    }
)

REVIEW_ACTIONS: frozenset[str] = frozenset({"model:approve", "clarify:review", "pipeline:approve"})
"""Actions that sign off someone else's work; a creator's grant never includes them."""

_VIEWER = frozenset(
    {"feature:describe", "pipeline:describe", "model:describe", "clarify:read_report"}
)
BUILTIN_ROLES: Mapping[str, frozenset[str]] = {
    "viewer": _VIEWER,
    # what an application in production needs: online features and an Approved model's
    # predictions (model:predict) — never the model's bytes or the offline data
    "online_reader": frozenset({"feature:describe", "feature:read_online", "model:predict"}),
    "data_scientist": _VIEWER
    | {
        "feature:read_online",
        "feature:read_offline",
        "feature:write",
        "feature:create",
        "pipeline:create",
        "pipeline:update",
        "pipeline:run",
        "model:read",
        "model:predict",
        "model:register",
        "artifact:read",
        "artifact:write",
        "clarify:run",
    },
    "approver": _VIEWER
    | {
        "model:read",
        "model:predict",
        "model:approve",
        "clarify:review",
        "pipeline:approve",
        "artifact:read",
    },
    "owner": ACTIONS,
    # What the creator of a resource gets on it: everything but the reviewing actions,
    # so that whoever makes a thing does not also sign it off (separation of duties).
    "maintainer": ACTIONS - REVIEW_ACTIONS,
}


def expand_privilege(privilege: str, custom_roles: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """Return the actions a privilege (an action or a role name) stands for."""
    if privilege in ACTIONS:
        return frozenset({privilege})
    if privilege in BUILTIN_ROLES:
        return BUILTIN_ROLES[privilege]
    return custom_roles.get(privilege, frozenset())


def check_privilege(privilege: str, custom_roles: Mapping[str, frozenset[str]]) -> str:
    """Return ``privilege`` if it names an action or a role; else raise ValidationError."""
    if privilege in ACTIONS or privilege in BUILTIN_ROLES or privilege in custom_roles:
        return privilege
    known = [*ACTIONS, *BUILTIN_ROLES, *custom_roles]
    raise ValidationError(
        f"{privilege!r} is neither an action nor a role.",
        hint=did_you_mean(privilege, known) or "see `trivet auth actions`",
    )


def probe_keys(resource: str) -> list[str]:
    """Return the grant-pattern keys that can match ``resource``, shallowest first.

    >>> probe_keys("p/models/m")
    ['*', 'p/*', 'p/models/*', 'p/models/m/*', 'p/models/m']
    """
    segments = resource.split("/")
    keys = ["*"]
    for i in range(1, len(segments) + 1):
        keys.append("/".join(segments[:i]) + "/*")
    keys.append(resource)
    return keys


def pattern_probe_keys(pattern: str) -> list[str]:
    """Return the keys whose grants cover every resource a ``pattern`` matches."""
    if pattern == "*":
        return ["*"]
    if pattern.endswith("/*"):
        return probe_keys(pattern[:-2])[:-1]
    return probe_keys(pattern)


_READ_ONLY = frozenset(
    a
    for a in ACTIONS
    if a.split(":")[1]
    in {"describe", "read", "read_online", "read_offline", "read_report", "predict"}
)


@dataclass(frozen=True, kw_only=True)
class TokenScope:
    """A token's ceiling: the actions it may use and the resource patterns it may touch.

    ``actions`` and ``patterns`` bound it as a whole; ``rules``, when given, narrow it
    further to actions per pattern (a run token: each resource its pipeline declares,
    with only the actions that declaration needs). ``label`` says in words what the
    scope covers and ``hint`` how to widen it; both go into a denial's message.
    """

    actions: frozenset[str] | None = None
    patterns: tuple[str, ...] | None = None
    rules: tuple[tuple[str, frozenset[str]], ...] | None = None
    label: str | None = None
    hint: str | None = None

    @classmethod
    def of_rules(
        cls,
        rules: Mapping[str, Iterable[str]],
        *,
        label: str | None = None,
        hint: str | None = None,
    ) -> TokenScope:
        """Return the scope allowing each pattern's actions there, and nothing else."""
        compact = tuple((p, frozenset(acts)) for p, acts in rules.items() if acts)
        outer = [p for p, _ in compact]  # the bound: the patterns no other one includes
        return cls(
            actions=frozenset().union(*(acts for _, acts in compact)),
            patterns=tuple(
                p
                for i, p in enumerate(outer)
                if not any(
                    pattern_includes(q, p) and (q != p or j < i) for j, q in enumerate(outer)
                )
            ),
            rules=compact,
            label=label,
            hint=hint,
        )

    def permits(self, action: str, resource: str) -> bool:
        """Return whether the scope lets ``action`` on ``resource`` through."""
        if self.actions is not None and action not in self.actions:
            return False
        if self.patterns is not None and not any(
            pattern_covers(p, resource) for p in self.patterns
        ):
            return False
        if self.rules is None:
            return True
        by_pattern = self._rules_by_pattern
        return any(action in by_pattern.get(key, ()) for key in probe_keys(resource))

    @functools.cached_property
    def _rules_by_pattern(self) -> dict[str, frozenset[str]]:
        # the patterns matching a resource are exactly its probe keys: a check costs
        # depth + 2 dict probes, however many rules there are
        out: dict[str, frozenset[str]] = {}
        for p, acts in self.rules or ():
            out[p] = out.get(p, frozenset()) | acts
        return out

    def permits_pattern(self, action: str, pattern: str) -> bool:
        """Return whether the scope lets ``action`` through on everything ``pattern`` matches."""
        if self.actions is not None and action not in self.actions:
            return False
        if self.patterns is not None and not any(
            pattern_includes(p, pattern) for p in self.patterns
        ):
            return False
        return self.rules is None or any(
            action in acts and pattern_includes(p, pattern) for p, acts in self.rules
        )

    def refusal(self, action: str, resource: str) -> tuple[str, str | None]:
        """Return the reason and the hint of a denial by this scope."""
        reason = "outside the token's scope"
        if self.label:
            reason += f" ({self.label})"
        if not self.hint:
            return reason, None
        path = "/".join(resource.split("/")[1:3]) or resource
        access = "reads" if action in _READ_ONLY else "writes"
        return reason, self.hint.replace("{path}", path).replace("{access}", access)

    def intersect(self, other: TokenScope | None) -> TokenScope:
        """Return the scope that lets through only what both scopes let through."""
        if other is None:
            return self
        if self.actions is None or other.actions is None:
            actions = self.actions if other.actions is None else other.actions
        else:
            actions = self.actions & other.actions
        if self.patterns is None or other.patterns is None:
            patterns = self.patterns if other.patterns is None else other.patterns
        else:
            patterns = _meet(self.patterns, other.patterns)
        if self.rules is None or other.rules is None:
            rules = self.rules if other.rules is None else other.rules
        else:
            merged: dict[str, frozenset[str]] = {}
            for p, mine in self.rules:
                for q, theirs in other.rules:
                    both = mine & theirs
                    for node in _meet((p,), (q,)) if both else ():
                        merged[node] = merged.get(node, frozenset()) | both
            rules = tuple(merged.items())
        return TokenScope(
            actions=actions,
            patterns=patterns,
            rules=rules,
            label=self.label or other.label,
            hint=self.hint or other.hint,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form stored in the catalog."""
        out: dict[str, Any] = {
            "actions": sorted(self.actions) if self.actions is not None else None,
            "patterns": list(self.patterns) if self.patterns is not None else None,
        }
        if self.rules is not None:
            out["rules"] = [[p, sorted(acts)] for p, acts in self.rules]
        for key in ("label", "hint"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TokenScope | None:
        """Rebuild a scope from its stored JSON form."""
        if data is None:
            return None
        acts, pats, rules = data.get("actions"), data.get("patterns"), data.get("rules")
        return cls(
            actions=frozenset(acts) if acts is not None else None,
            patterns=tuple(pats) if pats is not None else None,
            rules=tuple((p, frozenset(a)) for p, a in rules) if rules is not None else None,
            label=data.get("label"),
            hint=data.get("hint"),
        )


def _meet(ours: Iterable[str], theirs: Iterable[str]) -> tuple[str, ...]:
    """Return the patterns matched by one of ``ours`` and one of ``theirs``."""
    # patterns are nodes or subtrees: two of them overlap only if one includes the other
    meet = [
        q if pattern_includes(p, q) else p
        for p in ours
        for q in theirs
        if pattern_includes(p, q) or pattern_includes(q, p)
    ]
    return tuple(dict.fromkeys(meet))


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The answer to "may this principal do this action on this resource?"."""

    allowed: bool
    action: str
    resource: str
    principal: str
    reason: str
    grants: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(kw_only=True)
class Compiled:
    """A principal's grants compiled for one policy epoch."""

    generation: int
    allow: dict[str, dict[str, str]]
    deny: dict[str, dict[str, str]]
    valid_until: float  # time.time() of the earliest grant expiry
    decisions: dict[tuple[str, str], Decision] = field(default_factory=dict)

    def decide(self, principal: str, action: str, resource: str) -> Decision:
        """Evaluate one check against the compiled grants (no caching)."""
        if action not in ACTIONS:
            return Decision(
                allowed=False,
                action=action,
                resource=resource,
                principal=principal,
                reason=f"unknown action {action!r}",
            )
        allowed_by: str | None = None
        for key in probe_keys(resource):
            denied = self.deny.get(key)
            if denied is not None and action in denied:
                gid = denied[action]
                return Decision(
                    allowed=False,
                    action=action,
                    resource=resource,
                    principal=principal,
                    reason=f"explicitly denied by grant {gid} on {key!r}",
                    grants=(gid,),
                )
            if allowed_by is None:
                allowed = self.allow.get(key)
                if allowed is not None and action in allowed:
                    allowed_by = allowed[action]
                    allowed_key = key
        if allowed_by is None:
            return Decision(
                allowed=False,
                action=action,
                resource=resource,
                principal=principal,
                reason="no grant allows it (default deny)",
            )
        return Decision(
            allowed=True,
            action=action,
            resource=resource,
            principal=principal,
            reason=f"allowed by grant {allowed_by} on {allowed_key!r}",
            grants=(allowed_by,),
        )


# Process-local generation counters per catalog URL and epoch row: a policy write through
# any Catalog object in this process makes every evaluator on the same database
# recompile (or re-read tokens) at once.
_local_generation: dict[tuple[str, int], int] = {}
_lock = threading.Lock()
_GRANTS, _TOKENS = 1, 2
"""Rows of ``policy_epoch``: one for grants, memberships and roles, one for tokens."""


def bump_epoch(conn: sa.Connection, catalog: Catalog, *, tokens_only: bool = False) -> None:
    """Advance the policy epoch inside the caller's write transaction.

    ``tokens_only``: only tokens were revoked or deleted — evaluators re-read token
    states but keep their compiled grants (an execution's end revokes its run token; that
    must not make every process recompile every principal's grants).
    """
    row = _TOKENS if tokens_only else _GRANTS
    updated = conn.execute(_ADVANCE, {"b_id": row})
    if updated.rowcount == 0:
        conn.execute(sa.insert(policy_epoch).values(id=row, epoch=1))
    _bump_local(catalog.url, row)
    # again once committed: a check made between the two must not pin the old policy
    after_commit(conn, lambda: _bump_local(catalog.url, row))


_EPOCHS = sa.select(policy_epoch.c.id, policy_epoch.c.epoch).where(
    policy_epoch.c.id.in_([_GRANTS, _TOKENS])
)
_ADVANCE = (
    sa.update(policy_epoch)
    .where(policy_epoch.c.id == sa.bindparam("b_id"))
    .values(epoch=policy_epoch.c.epoch + 1)
)


def _bump_local(url: str, row: int) -> None:
    with _lock:
        _local_generation[url, row] = _local_generation.get((url, row), 0) + 1


class Evaluator:
    """Compiles and caches each principal's grants; answers checks in about a microsecond.

    Other processes' policy changes are noticed by polling the epoch row at most every
    ``poll_seconds``; changes made in this process are seen on the next check.
    """

    def __init__(self, catalog: Catalog, *, poll_seconds: float = 0.5) -> None:
        self.catalog = catalog
        self.poll_seconds = poll_seconds
        self._compiled: dict[str, Compiled] = {}
        self._revoked: dict[str, bool] = {}
        self._db_epochs: tuple[int, int] = (-1, -1)
        self._local_seen: tuple[int, int] = (-1, -1)
        self._generation = 0
        self._next_poll = 0.0

    def generation(self) -> int:
        """Return a number that changes whenever compiled grants may be stale (and forget
        token states whenever a token may have been revoked)."""
        url = self.catalog.url
        local = (_local_generation.get((url, _GRANTS), 0), _local_generation.get((url, _TOKENS), 0))
        now = time.monotonic()
        if local[0] == self._local_seen[0] and local[1] != self._local_seen[1]:
            # only a token changed, in this process: forget token states, keep the
            # compiled grants, and leave the database to the next poll
            self._local_seen = local
            self._revoked.clear()
        if local != self._local_seen or now >= self._next_poll:
            self._next_poll = now + self.poll_seconds
            self._local_seen = local
            with self.catalog.read() as conn:
                rows = dict(conn.execute(_EPOCHS).all())
            epochs = (int(rows.get(_GRANTS) or 0), int(rows.get(_TOKENS) or 0))
            if epochs[0] != self._db_epochs[0]:
                self._generation += 1
                self._compiled.clear()
            if epochs != self._db_epochs:
                self._revoked.clear()
            self._db_epochs = epochs
        return self._generation

    def token_revoked(self, token_id: str) -> bool:
        """Return whether a token was revoked or deleted (re-read once per policy epoch)."""
        self.generation()
        revoked = self._revoked.get(token_id)
        if revoked is None:
            with self.catalog.read() as conn:
                row = conn.execute(
                    sa.select(tokens.c.revoked_at).where(tokens.c.id == token_id)
                ).first()
            revoked = self._revoked[token_id] = row is None or row.revoked_at is not None
        return revoked

    def compiled(self, principal_id: str) -> Compiled:
        """Return the principal's compiled grants, recompiling when stale or expired."""
        gen = self.generation()
        comp = self._compiled.get(principal_id)
        if comp is None or comp.generation != gen or time.time() >= comp.valid_until:
            comp = self._compile(principal_id, gen)
            self._compiled[principal_id] = comp
        return comp

    def check(self, principal_id: str, principal: str, action: str, resource: str) -> Decision:
        """Decide one check (cached per compiled policy)."""
        comp = self.compiled(principal_id)
        key = (action, resource)
        decision = comp.decisions.get(key)
        if decision is None:
            check_resource(resource)
            decision = comp.decide(principal, action, resource)
            if len(comp.decisions) < 100_000:
                comp.decisions[key] = decision
        return decision

    def check_pattern(self, principal_id: str, action: str, pattern: str) -> bool:
        """Return whether the principal holds ``action`` on everything ``pattern`` matches.

        One allow must include the whole pattern, and no deny may touch any part of it
        (a deny deeper down means the action is not held on all of the subtree).
        """
        comp = self.compiled(principal_id)
        held = False
        for key in pattern_probe_keys(pattern):
            if action in comp.deny.get(key, {}):
                return False
            held = held or action in comp.allow.get(key, {})
        if not held or not pattern.endswith("*"):
            return held
        node = pattern.removesuffix("*")  # '' for '*', 'p/x/' for 'p/x/*'
        return not any(
            action in acts and (key + "/").startswith(node) for key, acts in comp.deny.items()
        )

    def group_ids(self, conn: sa.Connection, principal_id: str) -> set[str]:
        """Return every group the principal belongs to, transitively (cycle-safe)."""
        seen: set[str] = set()
        frontier = {principal_id}
        while frontier:
            rows = conn.execute(
                sa.select(memberships.c.group_id).where(memberships.c.member_id.in_(frontier))
            )
            frontier = {r.group_id for r in rows} - seen - {principal_id}
            seen |= frontier
        return seen

    def _compile(self, principal_id: str, generation: int) -> Compiled:
        now = now_utc()
        with self.catalog.read() as conn:
            subjects = self.group_ids(conn, principal_id) | {principal_id}
            custom = custom_roles(conn)
            rows = conn.execute(
                sa.select(
                    grants.c.id,
                    grants.c.effect,
                    grants.c.privilege,
                    grants.c.pattern,
                    grants.c.expires_at,
                ).where(grants.c.subject_id.in_(subjects))
            ).all()
        allow: dict[str, dict[str, str]] = {}
        deny: dict[str, dict[str, str]] = {}
        valid_until = float("inf")
        for row in rows:
            expires = as_utc(row.expires_at)
            if expires is not None:
                if expires <= now:
                    continue
                valid_until = min(valid_until, expires.timestamp())
            target = deny if row.effect == "deny" else allow
            bucket = target.setdefault(row.pattern, {})
            for action in expand_privilege(row.privilege, custom):
                bucket.setdefault(action, row.id)
        return Compiled(generation=generation, allow=allow, deny=deny, valid_until=valid_until)


def custom_roles(conn: sa.Connection) -> dict[str, frozenset[str]]:
    """Return the custom roles defined in the catalog."""
    return {
        r.name: frozenset(r.actions) & ACTIONS
        for r in conn.execute(sa.select(roles.c.name, roles.c.actions))
    }


def validate_role_actions(name: str, actions: Iterable[str]) -> frozenset[str]:
    """Check a custom role: known actions, within one built-in role, no built-in name."""
    if name in BUILTIN_ROLES:
        raise ValidationError(f"{name!r} is a built-in role and cannot be redefined.")
    acts = frozenset(actions)
    if not acts:
        raise ValidationError(f"The role {name!r} needs at least one action.")
    unknown = sorted(acts - ACTIONS)
    if unknown:
        raise ValidationError(
            f"The role {name!r} names unknown actions: {', '.join(map(repr, unknown))}.",
            hint=did_you_mean(unknown[0], ACTIONS) or "see `trivet auth actions`",
        )
    return acts
