"""The Session: one principal's authenticated handle on a workspace.

Every public operation of every part hangs off a Session and calls
:meth:`Session.authorize` (or :meth:`Session.require`) before touching data.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from trivet.errors import PermissionDenied
from trivet.platform import audit
from trivet.platform.catalog import Catalog
from trivet.platform.identity import Principal, TokenInfo
from trivet.platform.names import check_project, pattern_includes
from trivet.platform.permissions import Decision, Evaluator

if TYPE_CHECKING:
    from trivet.platform.access import Access
    from trivet.platform.artifacts import ArtifactStore
    from trivet.platform.directory import Directory
    from trivet.platform.lineage import Lineage
    from trivet.platform.registry import ModelRegistry
    from trivet.platform.settings import Settings

__all__ = ["Session"]


class Session:
    """A principal's handle on a workspace. Create one with :func:`trivet.connect`."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        evaluator: Evaluator,
        principal: Principal,
        token: TokenInfo | None = None,
        on_behalf_of: Principal | None = None,
        run_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.principal = principal
        self.token = token
        self.on_behalf_of = on_behalf_of
        self.run_id = run_id if run_id is not None else (token.run_id if token else None)
        self._evaluator = evaluator
        self._scope = token.scope if token is not None else None
        self._token_expiry = token.expires_at.timestamp() if token is not None else math.inf
        self._project = settings.project

    def __repr__(self) -> str:
        return (
            f"<trivet.Session principal={self.principal.name!r} project={self._project!r} "
            f"workspace={str(self.settings.workspace)!r}>"
        )

    # -- identity and projects -------------------------------------------------------
    @property
    def project(self) -> str:
        """The default project for names that do not say one."""
        return self._project

    def use_project(self, name: str) -> None:
        """Make ``name`` the default project of this session."""
        self._project = check_project(name)

    def resource(self, kind: str, name: str, *more: str) -> str:
        """Return the resource path ``<project>/<kind>/<name>/...`` in this session's project."""
        return "/".join((self._project, kind, name, *more))

    # -- permission checks -------------------------------------------------------------
    def can(self, action: str, resource: str) -> bool:
        """Return whether the principal may do ``action`` on ``resource`` (not audited).

        Use it to filter listings; use :meth:`authorize` or :meth:`require` to guard an
        operation, so that a denial is audited.
        """
        decision = self._evaluator.check(self.principal.id, self.principal.name, action, resource)
        return decision.allowed and (
            self.token is None or self._token_problem(action, resource) is None
        )

    def authorize(self, action: str, resource: str) -> Decision:
        """Decide whether the principal may do ``action`` on ``resource``; audit a denial.

        A check costs about a microsecond warm. The token's scope, if any, is a ceiling;
        an expired or revoked token allows nothing, from the next check on.
        """
        decision = self._ceiling(
            self._evaluator.check(self.principal.id, self.principal.name, action, resource)
        )
        if not decision.allowed:
            self._audit_denial(decision)
        return decision

    def token_usable(self) -> bool:
        """Return whether the session's token, if any, is neither expired nor revoked."""
        if self.token is None:
            return True
        return time.time() < self._token_expiry and not self._evaluator.token_revoked(self.token.id)

    def _token_problem(self, action: str, resource: str) -> str | None:
        """Return why the session's token stops an allowed check, or None."""
        if self.token is None:
            return None
        if time.time() >= self._token_expiry:
            return "the token expired"
        if self._evaluator.token_revoked(self.token.id):
            return "the token was revoked"
        if self._scope is not None and not self._scope.permits(action, resource):
            return self._scope.refusal(action, resource)[0]
        return None

    def _ceiling(self, decision: Decision) -> Decision:
        """Apply the token (expiry, revocation, scope) to the grants' decision."""
        if not decision.allowed or self.token is None:
            return decision
        problem = self._token_problem(decision.action, decision.resource)
        if problem is None:
            return decision
        return Decision(
            allowed=False,
            action=decision.action,
            resource=decision.resource,
            principal=decision.principal,
            reason=problem,
        )

    def has_access_to(self, project: str) -> bool:
        """Return whether any grant of the principal reaches into ``project``.

        Listings of projects show only these: a project where you hold nothing is not
        yours to know of (the workspace's owners, holding ``*``, see every one).
        """
        compiled = self._evaluator.compiled(self.principal.id)
        prefix = f"{project}/"
        return any(key == "*" or key == project or key.startswith(prefix) for key in compiled.allow)

    def require_listing(self, action: str, kind: str) -> None:
        """Refuse (and audit) a listing of ``kind`` when no grant could show any of it.

        A listing is filtered item by item with :meth:`can`; this check only tells a
        stranger to the project (no grant of ``action`` anywhere under
        ``<project>/<kind>``) "denied" instead of an empty list, as the HTTP API does.
        """
        prefix = f"{self.project}/{kind}/"
        compiled = self._evaluator.compiled(self.principal.id)
        for key, actions in compiled.allow.items():
            near = key in ("*", f"{self.project}/*") or (key + "/").startswith(prefix)
            if action in actions and near and self._scope_overlaps(action, prefix + "*"):
                return
        self.require(action, f"{self.project}/{kind}")

    def _scope_overlaps(self, action: str, subtree: str) -> bool:
        scope = self._scope
        if scope is None:
            return True
        if scope.actions is not None and action not in scope.actions:
            return False

        def overlaps(p: str) -> bool:
            return pattern_includes(p, subtree) or pattern_includes(subtree, p)

        if scope.patterns is not None and not any(overlaps(p) for p in scope.patterns):
            return False
        return scope.rules is None or any(
            action in actions and overlaps(p) for p, actions in scope.rules
        )

    def require(self, action: str, resource: str) -> Decision:
        """Like :meth:`authorize`, but raise PermissionDenied when not allowed."""
        decision = self.authorize(action, resource)
        if not decision.allowed:
            hint: str | None = None
            if self._scope is not None:
                reason, fix = self._scope.refusal(action, resource)
                if decision.reason == reason:
                    hint = fix or "use a token whose scope covers it"
            raise PermissionDenied(
                f"{self.principal.name!r} may not {action} on {resource!r}: {decision.reason}.",
                hint=hint
                or f"ask an owner to grant it: trivet auth grant {self.principal.name} "
                f"{action} {resource}",
            )
        return decision

    def _audit_denial(self, decision: Decision) -> None:
        with self.catalog.write() as conn:
            self.record(
                conn,
                action=decision.action,
                resource=decision.resource,
                outcome="denied",
                detail={"reason": decision.reason, "grants": list(decision.grants)},
            )

    def record(
        self,
        conn: Connection,
        *,
        action: str,
        resource: str,
        outcome: audit.Outcome = "ok",
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Append an audit row for this session inside the caller's write transaction."""
        return audit.append(
            conn,
            actor=self.principal.name,
            actor_id=self.principal.id,
            on_behalf_of=self.on_behalf_of.name if self.on_behalf_of else None,
            run_id=self.run_id,
            action=action,
            resource=resource,
            outcome=outcome,
            detail=detail,
        )

    # -- the platform's services ------------------------------------------------------------
    @functools.cached_property
    def identity(self) -> Directory:
        """Principals, groups, tokens and projects."""
        from trivet.platform.directory import Directory

        return Directory(self)

    @functools.cached_property
    def access(self) -> Access:
        """Grants, roles and explanations of decisions."""
        from trivet.platform.access import Access

        return Access(self)

    @functools.cached_property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed artifact store."""
        from trivet.platform.artifacts import ArtifactStore

        return ArtifactStore(self)

    @functools.cached_property
    def registry(self) -> ModelRegistry:
        """The model registry."""
        from trivet.platform.registry import ModelRegistry

        return ModelRegistry(self)

    @functools.cached_property
    def lineage(self) -> Lineage:
        """Lineage edges between catalog entities."""
        from trivet.platform.lineage import Lineage

        return Lineage(self)

    def assume(self, service: str) -> Session:
        """Return a session acting as service principal ``service`` (run-as).

        Needs ``principal:use`` on ``_principals/<service>``, the analogue of AWS's
        PassRole; audit rows of the new session name this session's principal as
        ``on_behalf_of``.
        """
        from trivet.platform.directory import assume

        return assume(self, service)

    def derive(self, **changes: Any) -> Session:
        """Return a session of the same class with some constructor arguments changed."""
        args: dict[str, Any] = {
            "settings": self.settings,
            "catalog": self.catalog,
            "evaluator": self._evaluator,
            "principal": self.principal,
            "token": self.token,
            "on_behalf_of": self.on_behalf_of,
            "run_id": self.run_id,
        }
        args.update(changes)
        derived = type(self)(**args)
        derived._project = self._project
        if "settings" not in changes and "artifacts" in self.__dict__:
            # the same store: share its opened blob store (an S3 client is costly to make)
            from trivet.platform.artifacts import ArtifactStore

            derived.__dict__["artifacts"] = ArtifactStore(derived, blobs=self.artifacts.blobs)
        return derived

    def close(self) -> None:
        """Release the session's database connections."""
        self.catalog.dispose()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
