"""The model registry's operations; see the package docstring for the rules."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from trivet.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
    did_you_mean,
)
from trivet.platform.access import policy
from trivet.platform.artifacts._entries import insert_entry
from trivet.platform.catalog import now_utc
from trivet.platform.catalog._catalog import as_utc
from trivet.platform.catalog.schema import (
    audit_log,
    model_aliases,
    model_groups,
    model_versions,
    principals,
)
from trivet.platform.identity import PrincipalKind
from trivet.platform.lineage import Node, delete_edges_under, insert_edge
from trivet.platform.names import check_name
from trivet.platform.registry._records import (
    ApprovalStatus,
    GateStatus,
    ModelGroup,
    ModelVersion,
    check_alias,
    check_flavor,
    check_justification,
    clean_mapping,
)

if TYPE_CHECKING:
    from trivet.platform.artifacts import ArtifactStore
    from trivet.platform.session import Session

__all__ = ["ModelRegistry"]

_creator = principals.alias("creator")
_decider = principals.alias("decider")


class ModelRegistry:
    """Model groups and versions under the session's grants (``session.registry``)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # -- resources ---------------------------------------------------------------------
    def _group_resource(self, name: str) -> str:
        return self._s.resource("models", name)

    def _version_resource(self, name: str, version: int) -> str:
        return self._s.resource("models", name, str(version))

    # -- groups ------------------------------------------------------------------------
    def create_group(self, name: str, *, description: str = "") -> ModelGroup:
        """Create a model group; you become its owner.

        Needs ``model:register`` on ``<project>/models/<name>``.

        Raises:
            AlreadyExists: the group exists.
        """
        check_name(name, what="model group name")
        self._s.require("model:register", self._group_resource(name))
        with self._s.catalog.write() as conn:
            if self._find_group(conn, name) is not None:
                raise AlreadyExists(
                    f"The model group {name!r} exists already.",
                    hint=f"register a version with registry.register({name!r}, ...)",
                )
            self._insert_group(conn, name, description)
        return self._get_group(name)

    def _insert_group(self, conn: sa.Connection, name: str, description: str) -> str:
        from trivet.platform.access import insert_grant

        gid = str(uuid.uuid4())
        resource = self._group_resource(name)
        conn.execute(
            sa.insert(model_groups).values(
                id=gid,
                project=self._s.project,
                name=name,
                description=description,
                created_at=now_utc(),
                created_by=self._s.principal.id,
            )
        )
        insert_grant(
            self._s,
            conn,
            subject=self._s.principal,
            effect="allow",
            privilege="maintainer",  # owner but for approving: nobody reviews their own work
            pattern=f"{resource}/*",
            reason=f"created model group {name!r}",
        )
        self._s.record(conn, action="model:create_group", resource=resource, detail={"id": gid})
        return gid

    def groups(self) -> list[ModelGroup]:
        """Return the project's model groups you may describe, by name."""
        with self._s.catalog.read() as conn:
            rows = conn.execute(
                sa.select(model_groups)
                .where(model_groups.c.project == self._s.project)
                .order_by(model_groups.c.name)
            ).all()
            return [
                self._group(conn, row)
                for row in rows
                if self._s.can("model:describe", self._group_resource(row.name))
            ]

    def group(self, name: str) -> ModelGroup:
        """Return one model group (needs ``model:describe`` on it)."""
        check_name(name, what="model group name")
        self._s.require("model:describe", self._group_resource(name))
        return self._get_group(name)

    def _get_group(self, name: str) -> ModelGroup:
        with self._s.catalog.read() as conn:
            return self._group(conn, self._group_row(conn, name))

    def delete_group(self, name: str) -> None:
        """Delete a group with its versions, aliases, lineage and exact grants.

        Needs ``model:delete`` on ``<project>/models/<name>``. A group created later under
        the same name starts with no grants, versions, lineage or prediction log (the
        server's log of its predictions is deleted with it). Artifacts stay in the
        artifact store.
        """
        from trivet.platform.predictions import drop_log

        check_name(name, what="model group name")
        resource = self._group_resource(name)
        self._s.require("model:delete", resource)
        with self._s.catalog.read() as conn:
            self._group_row(conn, name)  # NotFound before anything is deleted
        # first the prediction log (personal data must not outlive the group; a log lost
        # to a failure below is the lesser harm)
        log_dropped = drop_log(self._s.settings.offline_url, self._s.project, name)
        with self._s.catalog.write() as conn:
            row = self._group_row(conn, name, lock=True)
            numbers = (
                conn.execute(
                    sa.select(model_versions.c.version).where(model_versions.c.group_id == row.id)
                )
                .scalars()
                .all()
            )
            conn.execute(sa.delete(model_aliases).where(model_aliases.c.group_id == row.id))
            conn.execute(sa.delete(model_versions).where(model_versions.c.group_id == row.id))
            conn.execute(sa.delete(model_groups).where(model_groups.c.id == row.id))
            dropped = self._s.access.drop_resource(conn, resource)
            for number in numbers:
                dropped += self._s.access.drop_resource(conn, f"{resource}/{number}")
            edges = delete_edges_under(conn, "model_version", resource)
            edges += delete_edges_under(conn, "model_group", resource)
            self._s.record(
                conn,
                action="model:delete_group",
                resource=resource,
                detail={
                    "id": row.id,
                    "versions": len(numbers),
                    "grants_dropped": dropped,
                    "lineage_edges_dropped": edges,
                    "prediction_log_dropped": log_dropped,
                },
            )

    # -- versions ----------------------------------------------------------------------
    def register(
        self,
        name: str,
        model: object = None,
        *,
        artifact: str | None = None,
        flavor: str | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        fairness_report: str | None = None,
        gate_status: str = "none",
        description: str = "",
        run_id: str | None = None,
    ) -> ModelVersion:
        """Register a new version of model group ``name`` (created if missing).

        Args:
            name: the model group.
            model: a fitted model object; stored in the artifact store under
                ``<project>/models/<name>``. Give either this or ``artifact``.
            artifact: the digest (or a unique prefix of it) of a model already in the
                artifact store, in a folder you may read. It is filed under
                ``<project>/models/<name>`` too, so whoever may read the group's
                models can load it.
            flavor: the model's format (``"sklearn"``, ``"pickle"``…); default: what the
                artifact store recorded.
            params: training parameters (JSON data).
            metrics: evaluation metrics (JSON data; finite numbers).
            signature: the model's input/output description; default: the artifact's.
            fairness_report: the digest (or a unique prefix) of the report the version
                was gated on.
            gate_status: ``"passed"``, ``"failed"`` or ``"none"`` (not gated). A failed
                version can be registered for the record but never approved. The claim
                is checked, not taken on trust: ``"passed"`` needs a fairness report
                whose checks all passed (its JSON records ``checks.passed = true``), and
                a version gated on a report whose checks failed is ``"failed"`` whatever
                is claimed.
            description: free text.
            run_id: the pipeline run that produced it (default: the session's run).

        Returns:
            The new version, ``PendingManualApproval``.

        Raises:
            PermissionDenied: no ``model:register`` on ``<project>/models/<name>``.
            ValidationError: bad arguments (names the offending key).
            NotFound: the artifact or report digest is unknown.
        """
        check_name(name, what="model group name")
        resource = self._group_resource(name)
        if (model is None) == (artifact is None):
            raise ValidationError(
                "Give either a model object or the digest of a stored model artifact.",
                hint="registry.register(name, model) or registry.register(name, artifact=digest)",
            )
        try:
            gate = GateStatus(gate_status)
        except ValueError:
            raise ValidationError(
                f"gate_status {gate_status!r} is not one of 'passed', 'failed', 'none'."
            ) from None
        check_flavor(flavor)
        clean_params = clean_mapping(params, "params")
        clean_metrics = clean_mapping(metrics, "metrics")
        clean_signature = clean_mapping(signature, "signature") if signature is not None else None
        for digest, what in ((artifact, "artifact digest"), (fairness_report, "report digest")):
            if digest is not None and not isinstance(digest, str):
                raise ValidationError(f"The {what} must be a string, got {type(digest).__name__}.")
        if run_id is None:
            run_id = self._s.run_id
        elif not isinstance(run_id, str) or not run_id or len(run_id) > 36:
            raise ValidationError(f"run_id {run_id!r} must be a string of 1 to 36 characters.")
        run_node = Node(kind="run", id=run_id) if run_id is not None else None
        self._s.require("model:register", resource)

        store = self._s.artifacts
        if model is not None:
            ref = store.put_model(
                model,
                folder=resource,
                flavor=cast(Any, flavor),
                trust_pickle=flavor == "pickle",
                label=f"model {name}",
            )
        else:
            assert artifact is not None
            ref = store.describe(artifact)  # a digest or a unique prefix you may read
            if ref.kind != "model":
                raise ValidationError(
                    f"The artifact {ref.digest} is a {ref.kind}, not a model.",
                    hint="store models with session.artifacts.put_model, or pass the "
                    "model object to register",
                )
        meta: Mapping[str, Any] = ref.meta if isinstance(ref.meta, Mapping) else {}
        chosen_flavor = flavor or str(meta.get("flavor") or "unknown")
        if flavor is not None and meta.get("flavor") not in (None, flavor):
            raise ValidationError(
                f"The artifact {ref.digest[:12]}… is a {meta.get('flavor')!r} model, "
                f"not {flavor!r}.",
                hint="leave flavor out to use the artifact's",
            )
        if clean_signature is None:
            raw = meta.get("signature")
            clean_signature = clean_mapping(raw, "signature") if isinstance(raw, Mapping) else {}
        report_digest = None
        if fairness_report is not None:
            report_digest = store.describe(fairness_report).digest  # exists, you may read it
        gate = _checked_gate(gate, report_digest, store)

        self._ensure_group(name)
        with self._s.catalog.write() as conn:
            group = self._group_row(conn, name, lock=True)
            latest = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.group_id == group.id
                )
            ).scalar()
            number = int(latest or 0) + 1
            vid = str(uuid.uuid4())
            conn.execute(
                sa.insert(model_versions).values(
                    id=vid,
                    group_id=group.id,
                    version=number,
                    artifact_digest=ref.digest,
                    flavor=chosen_flavor,
                    signature=clean_signature,
                    params=clean_params,
                    metrics=clean_metrics,
                    fairness_report_digest=report_digest,
                    gate_status=gate.value,
                    status=ApprovalStatus.PENDING.value,
                    description=description,
                    run_id=run_id,
                    created_at=now_utc(),
                    created_by=self._s.principal.id,
                )
            )
            # the model's folder holds its artifact, so that loading a version needs
            # artifact:read there (model readers have it), not where it was first put
            insert_entry(self._s, conn, folder=resource, digest=ref.digest, label=f"model {name}")
            version_resource = self._version_resource(name, number)
            node = Node(kind="model_version", id=version_resource)
            edges = [(Node(kind="artifact", id=ref.digest), "stored_as")]
            if report_digest is not None:
                edges.append((Node(kind="report", id=report_digest), "gated"))
            if run_node is not None:
                edges.append((run_node, "produced"))
            for src, relation in edges:
                insert_edge(self._s, conn, src, node, relation)
            self._s.record(
                conn,
                action="model:register",
                resource=version_resource,
                detail={
                    "id": vid,
                    "artifact": ref.digest,
                    "flavor": chosen_flavor,
                    "gate_status": gate.value,
                    "fairness_report": report_digest,
                    "metrics": clean_metrics,
                },
            )
        return self._get_version(name, number)

    def _ensure_group(self, name: str) -> None:
        """Create the group in its own transaction if missing (tolerating a racing creator)."""
        with self._s.catalog.read() as conn:
            if self._find_group(conn, name) is not None:
                return
        try:
            with self._s.catalog.write() as conn:
                if self._find_group(conn, name) is None:
                    self._insert_group(conn, name, "")
        except Conflict:
            with self._s.catalog.read() as conn:
                if self._find_group(conn, name) is None:
                    raise

    def get(self, name: str, version: int | str | None = None) -> ModelVersion:
        """Return a version: a number, an alias, ``"latest"`` or None (the latest).

        Needs ``model:describe`` on the group and on the version.
        """
        number = self._resolve(name, version, "model:describe")
        return self._get_version(name, number)

    def versions(self, name: str) -> list[ModelVersion]:
        """Return the group's versions you may describe, oldest first."""
        check_name(name, what="model group name")
        self._s.require("model:describe", self._group_resource(name))
        with self._s.catalog.read() as conn:
            group = self._group_row(conn, name)
            return [
                v for v in self._versions(conn, group) if self._s.can("model:describe", v.resource)
            ]

    def load(
        self, name: str, version: int | str | None = None, *, trust_pickle: bool = False
    ) -> Any:
        """Load a version's model from the artifact store (needs ``model:read`` on it).

        Args:
            name: the model group.
            version: a number, an alias, ``"latest"`` or None (the latest).
            trust_pickle: allow loading a pickled model; its bytes are still checked
                against the digest the catalog recorded.
        """
        number = self._resolve(name, version, "model:read")
        found = self._get_version(name, number)
        return self._s.artifacts.load_model(found.artifact_digest, trust_pickle=trust_pickle)

    # -- serving -----------------------------------------------------------------------
    def servable(self, name: str, version: int | str | None = None) -> ModelVersion:
        """Return the Approved version that serves predictions (needs ``model:predict``).

        ``version`` None is the ``champion`` alias if the group has one, else its latest
        Approved version; a number or another alias names one. ``model:predict`` lets
        a principal — typically an application holding ``online_reader`` — get an
        Approved version's predictions from the server without ``model:read``: the model
        runs on the server (:meth:`load_servable`) and its bytes never reach the caller.

        Raises:
            PermissionDenied: no ``model:predict`` on the group or version.
            NotFound: no such group, version or alias.
            Conflict: the version is not Approved, or the group has none.
        """
        check_name(name, what="model group name")
        number: int | None = None
        if isinstance(version, int | str) and str(version).isdigit():
            number = self._resolve(name, version, "model:predict")
        elif version is not None and not isinstance(version, str):
            raise ValidationError(f"A version is a number or an alias, not {version!r}.")
        else:
            self._s.require("model:predict", self._group_resource(name))
            with self._s.catalog.read() as conn:
                group = self._group_row(conn, name)
                alias = "champion" if version is None else version
                number = conn.execute(
                    sa.select(model_versions.c.version)
                    .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
                    .where(model_aliases.c.group_id == group.id, model_aliases.c.alias == alias)
                ).scalar()
                if number is None and version is None:
                    number = conn.execute(
                        sa.select(sa.func.max(model_versions.c.version)).where(
                            model_versions.c.group_id == group.id,
                            model_versions.c.status == ApprovalStatus.APPROVED.value,
                        )
                    ).scalar()
                    if number is None:
                        raise Conflict(
                            f"The model group {name!r} has no Approved version to serve.",
                            hint="a reviewer approves one with `trivet models approve`",
                        )
                elif number is None:
                    raise NotFound(f"The model group {name!r} has no alias {version!r}.")
            self._s.require("model:predict", self._version_resource(name, int(number)))
        found = self._get_version(name, int(number))
        if found.status is not ApprovalStatus.APPROVED:
            raise Conflict(
                f"{name} v{found.version} is {found.status.value}; only Approved versions "
                "serve predictions.",
                hint="ask a reviewer to approve it, or leave the version out to use the "
                "champion (or the latest Approved version)",
            )
        return found

    def load_servable(self, version: ModelVersion) -> Any:
        """Load an Approved version's model to serve predictions on the server.

        Needs ``model:predict`` on the version (not ``model:read``): the caller gets
        predictions, never the model. Only skops models load this way (never a pickle).
        """
        self._s.require("model:predict", version.resource)
        if version.status is not ApprovalStatus.APPROVED:
            raise Conflict(f"{version.name} v{version.version} is not Approved.")
        return self._s.artifacts._load_served_model(version.artifact_digest)

    # -- decisions ---------------------------------------------------------------------
    def approve(self, name: str, version: int | str, *, justification: str) -> ModelVersion:
        """Approve a pending version (needs ``model:approve`` on it).

        Raises:
            ValidationError: an empty justification.
            Conflict: the version is not pending, or it failed its gate.
            PermissionDenied: no ``model:approve``; the caller is a service principal
                (approval is a person's decision, so a pipeline can never approve its
                own output); or four-eyes forbids approving your own version.
        """
        return self._decide(name, version, ApprovalStatus.APPROVED, justification)

    def reject(self, name: str, version: int | str, *, justification: str) -> ModelVersion:
        """Reject a pending version (needs ``model:approve`` on it)."""
        return self._decide(name, version, ApprovalStatus.REJECTED, justification)

    def _decide(
        self, name: str, version: int | str, status: ApprovalStatus, justification: str
    ) -> ModelVersion:
        reason = check_justification(justification)
        number = self._resolve(name, version, "model:approve")
        if status is ApprovalStatus.APPROVED and self._s.principal.kind is PrincipalKind.SERVICE:
            raise PermissionDenied(
                f"{self._s.principal.name!r} is a service principal; approving a model is a "
                "person's decision.",
                hint="a pipeline registers versions as PendingManualApproval; a reviewer "
                "approves them with `trivet models approve`",
            )
        resource = self._version_resource(name, number)
        with self._s.catalog.write() as conn:
            group = self._group_row(conn, name)
            row = conn.execute(
                sa.select(model_versions)
                .where(model_versions.c.group_id == group.id, model_versions.c.version == number)
                .with_for_update()
            ).first()
            if row is None:
                raise self._version_not_found(conn, group, name, number)
            current = ApprovalStatus(row.status)
            if current is not ApprovalStatus.PENDING:
                raise Conflict(
                    f"{name} v{number} is {current.value}, not {ApprovalStatus.PENDING.value}; "
                    "a decision is final.",
                    hint="register a new version to decide again",
                )
            if status is ApprovalStatus.APPROVED and row.gate_status == GateStatus.FAILED:
                raise Conflict(
                    f"{name} v{number} failed its fairness gate and can never be approved.",
                    hint="reject it, fix the model and register a new version",
                )
            if status is ApprovalStatus.APPROVED and policy(conn, "four_eyes"):
                by_id, by_name = self._registrants(conn, row.created_by, resource)
                me = [self._s.principal, *filter(None, [self._s.on_behalf_of])]
                if any(p.id in by_id or p.name in by_name for p in me):
                    raise PermissionDenied(
                        f"{self._s.principal.name!r} may not approve {name} v{number}: it "
                        "registered that version, and this workspace requires four eyes.",
                        hint="ask another approver (the workspace policy four_eyes is on)",
                    )
            conn.execute(
                sa.update(model_versions)
                .where(
                    model_versions.c.id == row.id,
                    model_versions.c.status == ApprovalStatus.PENDING.value,
                )
                .values(
                    status=status.value,
                    decided_at=now_utc(),
                    decided_by=self._s.principal.id,
                    decision_reason=reason,
                )
            )
            verb = "approve" if status is ApprovalStatus.APPROVED else "reject"
            self._s.record(
                conn,
                action=f"model:{verb}",
                resource=resource,
                detail={"status": status.value, "justification": reason},
            )
        return self._get_version(name, number)

    @staticmethod
    def _registrants(
        conn: sa.Connection, created_by: str | None, resource: str
    ) -> tuple[set[str], set[str]]:
        """Who registered a version: its creator's id, and the name it acted for.

        The schema keeps only the creator; the principal it acted on behalf of (a user
        who ran a pipeline as its service principal) comes from the newest
        ``model:register`` audit row of the version.
        """
        ids = {created_by} if created_by else set()
        behalf = conn.execute(
            sa.select(audit_log.c.on_behalf_of)
            .where(audit_log.c.action == "model:register", audit_log.c.resource == resource)
            .order_by(audit_log.c.seq.desc())
            .limit(1)
        ).scalar()
        return ids, {str(behalf)} if behalf else set()

    # -- aliases -------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersion:
        """Point ``alias`` at an approved version (moving it if it exists).

        Needs ``model:approve`` on the group.

        Raises:
            Conflict: the version is not Approved.
        """
        alias = check_alias(alias)
        check_name(name, what="model group name")
        self._s.require("model:approve", self._group_resource(name))
        number = self._resolve(name, version, "model:describe")
        with self._s.catalog.write() as conn:
            group = self._group_row(conn, name, lock=True)
            row = conn.execute(
                sa.select(model_versions.c.id, model_versions.c.status).where(
                    model_versions.c.group_id == group.id, model_versions.c.version == number
                )
            ).first()
            if row is None:
                raise self._version_not_found(conn, group, name, number)
            if row.status != ApprovalStatus.APPROVED:
                raise Conflict(
                    f"The alias {alias!r} cannot point at {name} v{number}: it is "
                    f"{row.status}, and aliases point at Approved versions only.",
                    hint=f"approve it first: registry.approve({name!r}, {number}, "
                    "justification=...)",
                )
            previous = conn.execute(
                sa.select(model_versions.c.version)
                .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
                .where(model_aliases.c.group_id == group.id, model_aliases.c.alias == alias)
            ).scalar()
            values = {
                "version_id": row.id,
                "updated_at": now_utc(),
                "updated_by": self._s.principal.id,
            }
            if previous is None:
                conn.execute(
                    sa.insert(model_aliases).values(group_id=group.id, alias=alias, **values)
                )
            else:
                conn.execute(
                    sa.update(model_aliases)
                    .where(model_aliases.c.group_id == group.id, model_aliases.c.alias == alias)
                    .values(**values)
                )
            self._s.record(
                conn,
                action="model:set_alias",
                resource=self._group_resource(name),
                detail={"alias": alias, "version": number, "previous": previous},
            )
        return self._get_version(name, number)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (needs ``model:approve`` on the group)."""
        alias = check_name(alias, what="alias")
        check_name(name, what="model group name")
        self._s.require("model:approve", self._group_resource(name))
        with self._s.catalog.write() as conn:
            group = self._group_row(conn, name, lock=True)
            result = conn.execute(
                sa.delete(model_aliases).where(
                    model_aliases.c.group_id == group.id, model_aliases.c.alias == alias
                )
            )
            if not result.rowcount:
                known = conn.execute(
                    sa.select(model_aliases.c.alias).where(model_aliases.c.group_id == group.id)
                ).scalars()
                raise NotFound(
                    f"The model group {name!r} has no alias {alias!r}.",
                    hint=did_you_mean(alias, known) or "it has no aliases",
                )
            self._s.record(
                conn,
                action="model:delete_alias",
                resource=self._group_resource(name),
                detail={"alias": alias},
            )

    # -- reading helpers ---------------------------------------------------------------
    def _resolve(self, name: str, version: int | str | None, action: str) -> int:
        """Return the version number ``version`` names, after checking ``action`` on it.

        A number is checked before the lookup, so nobody learns what exists where they
        may not act; an alias or ``latest`` needs ``model:describe`` on the group first.
        """
        check_name(name, what="model group name")
        number: int | None = None
        if isinstance(version, bool):
            raise ValidationError(f"A version is a number, an alias or 'latest', not {version!r}.")
        if isinstance(version, int):
            number = version
        elif isinstance(version, str) and version.isdigit():
            number = int(version)
        elif version is not None and not isinstance(version, str):
            raise ValidationError(
                f"A version is a number, an alias or 'latest', not {type(version).__name__}."
            )
        if number is not None:
            if number < 1:
                raise ValidationError(f"Version numbers start at 1, not {number}.")
            self._s.require(action, self._version_resource(name, number))
            return number
        self._s.require("model:describe", self._group_resource(name))
        with self._s.catalog.read() as conn:
            group = self._group_row(conn, name)
            if version is None or version == "latest":
                latest = conn.execute(
                    sa.select(sa.func.max(model_versions.c.version)).where(
                        model_versions.c.group_id == group.id
                    )
                ).scalar()
                if latest is None:
                    raise NotFound(
                        f"The model group {name!r} has no versions yet.",
                        hint=f"register one with registry.register({name!r}, model)",
                    )
                number = int(latest)
            else:
                found = conn.execute(
                    sa.select(model_versions.c.version)
                    .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
                    .where(model_aliases.c.group_id == group.id, model_aliases.c.alias == version)
                ).scalar()
                if found is None:
                    known = conn.execute(
                        sa.select(model_aliases.c.alias).where(model_aliases.c.group_id == group.id)
                    ).scalars()
                    raise NotFound(
                        f"The model group {name!r} has no alias {version!r}.",
                        hint=did_you_mean(str(version), [*known, "latest"]),
                    )
                number = int(found)
        self._s.require(action, self._version_resource(name, number))
        return number

    def _find_group(self, conn: sa.Connection, name: str) -> Any:
        return conn.execute(
            sa.select(model_groups).where(
                model_groups.c.project == self._s.project, model_groups.c.name == name
            )
        ).first()

    def _group_row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        query = sa.select(model_groups).where(
            model_groups.c.project == self._s.project, model_groups.c.name == name
        )
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            known = [
                n
                for n in conn.execute(
                    sa.select(model_groups.c.name).where(model_groups.c.project == self._s.project)
                ).scalars()
                if self._s.can("model:describe", self._group_resource(n))
            ]
            raise NotFound(
                f"There is no model group {name!r} in project {self._s.project!r}.",
                hint=did_you_mean(name, known) or "list them with `trivet models list`",
            )
        return row

    def _version_not_found(
        self, conn: sa.Connection, group: Any, name: str, number: int
    ) -> NotFound:
        latest = conn.execute(
            sa.select(sa.func.max(model_versions.c.version)).where(
                model_versions.c.group_id == group.id
            )
        ).scalar()
        hint = f"its latest version is {latest}" if latest else "it has no versions yet"
        return NotFound(f"The model group {name!r} has no version {number}.", hint=hint)

    def _group(self, conn: sa.Connection, row: Any) -> ModelGroup:
        creator = conn.execute(
            sa.select(principals.c.name).where(principals.c.id == row.created_by)
        ).scalar()
        latest = conn.execute(
            sa.select(sa.func.max(model_versions.c.version)).where(
                model_versions.c.group_id == row.id
            )
        ).scalar()
        aliases = conn.execute(
            sa.select(model_aliases.c.alias, model_versions.c.version)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(model_aliases.c.group_id == row.id)
            .order_by(model_aliases.c.alias)
        ).all()
        created = as_utc(row.created_at)
        assert created is not None
        return ModelGroup(
            name=row.name,
            project=row.project,
            resource=f"{row.project}/models/{row.name}",
            description=row.description or "",
            created_at=created,
            created_by=creator or row.created_by,
            latest_version=None if latest is None else int(latest),
            aliases={a.alias: int(a.version) for a in aliases},
        )

    def _get_version(self, name: str, number: int) -> ModelVersion:
        with self._s.catalog.read() as conn:
            group = self._group_row(conn, name)
            found = self._versions(conn, group, number)
            if not found:
                raise self._version_not_found(conn, group, name, number)
            return found[0]

    def _versions(
        self, conn: sa.Connection, group: Any, number: int | None = None
    ) -> list[ModelVersion]:
        query = (
            sa.select(
                model_versions,
                _creator.c.name.label("creator_name"),
                _decider.c.name.label("decider_name"),
            )
            .select_from(
                model_versions.outerjoin(
                    _creator, _creator.c.id == model_versions.c.created_by
                ).outerjoin(_decider, _decider.c.id == model_versions.c.decided_by)
            )
            .where(model_versions.c.group_id == group.id)
            .order_by(model_versions.c.version)
        )
        if number is not None:
            query = query.where(model_versions.c.version == number)
        aliases: dict[str, list[str]] = {}
        for a in conn.execute(
            sa.select(model_aliases.c.alias, model_aliases.c.version_id)
            .where(model_aliases.c.group_id == group.id)
            .order_by(model_aliases.c.alias)
        ):
            aliases.setdefault(a.version_id, []).append(a.alias)
        out = []
        for r in conn.execute(query):
            created = as_utc(r.created_at)
            assert created is not None
            out.append(
                ModelVersion(
                    name=group.name,
                    project=group.project,
                    version=int(r.version),
                    resource=f"{group.project}/models/{group.name}/{r.version}",
                    artifact_digest=r.artifact_digest,
                    flavor=r.flavor,
                    signature=dict(r.signature or {}),
                    params=dict(r.params or {}),
                    metrics=dict(r.metrics or {}),
                    fairness_report_digest=r.fairness_report_digest,
                    gate_status=GateStatus(r.gate_status),
                    status=ApprovalStatus(r.status),
                    description=r.description or "",
                    run_id=r.run_id,
                    created_at=created,
                    created_by=r.creator_name or r.created_by,
                    decided_at=as_utc(r.decided_at),
                    decided_by=r.decider_name or r.decided_by,
                    decision_reason=r.decision_reason,
                    aliases=tuple(aliases.get(r.id, ())),
                )
            )
        return out


def _checked_gate(claimed: GateStatus, report: str | None, store: ArtifactStore) -> GateStatus:
    """Return the gate status a registration may record, given its fairness report.

    A fairness report is a JSON artifact with a ``checks`` section whose ``passed``
    says whether every check held (what :mod:`trivet.clarify` writes). ``passed`` must
    be backed by such a report; a report whose checks failed makes the gate ``failed``.
    """
    verdict: bool | None = None
    if report is not None:
        try:
            document = json.loads(store.get_bytes(report))
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = None
        checks = document.get("checks") if isinstance(document, dict) else None
        if isinstance(checks, dict) and isinstance(checks.get("passed"), bool):
            verdict = checks["passed"]
    if claimed is GateStatus.PASSED and verdict is not True:
        why = (
            "no fairness report was given"
            if report is None
            else "its fairness report records no passed checks"
            if verdict is None
            else "its fairness report records failed checks"
        )
        raise ValidationError(
            f"gate_status='passed' is refused: {why}.",
            hint="register with the report of a bias check whose checks passed, or with "
            "gate_status='failed' / 'none'",
        )
    if verdict is False:
        return GateStatus.FAILED
    return claimed
