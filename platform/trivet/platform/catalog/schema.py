"""The catalog's tables (SQLAlchemy Core).

One metadata object holds the platform's tables. Migrations under ``migrations/``
create and evolve them; a test checks that the migrated database equals this module.
Times are stored as timezone-aware UTC timestamps; ids are uuid4 strings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

ID = 36  # uuid4 text
NAME = 64
PATH = 512


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware timestamp stored in UTC on every backend.

    SQLite keeps a datetime's wall-clock digits and drops its offset, so a value given
    in another time zone would be read back shifted; this type converts to UTC before
    binding and marks values read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")  # a bug, not user input
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _ts(name: str, *, nullable: bool = False) -> Column[dt.datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


workspace_meta = Table(
    "workspace_meta",
    metadata,
    Column("key", String(NAME), primary_key=True),
    Column("value", Text, nullable=False),
)

policy_epoch = Table(
    "policy_epoch",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("os_user", String(256), nullable=True, unique=True),
    Column("description", Text, nullable=False, default=""),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
)

memberships = Table(
    "memberships",
    metadata,
    Column(
        "group_id", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "member_id", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    ),
    _ts("created_at"),
    Index("ix_memberships_member", "member_id"),
)

projects = Table(
    "projects",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("runner_id", String(ID), ForeignKey("principals.id"), nullable=True),
    Column("description", Text, nullable=False, default=""),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "principal_id", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), nullable=False
    ),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("scope", JSON, nullable=True),
    Column("run_id", String(ID), nullable=True),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    _ts("expires_at"),
    _ts("revoked_at", nullable=True),
    # the token this one was created with (None: by the OS-user admin); revoking a token
    # revokes every token made with it, transitively
    Column("parent_id", String(ID), nullable=True),
    Index("ix_tokens_principal", "principal_id"),
    Index("ix_tokens_parent", "parent_id"),
)

roles = Table(
    "roles",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("actions", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
)

grants = Table(
    "grants",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "subject_id", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), nullable=False
    ),
    Column("effect", String(8), nullable=False),
    Column("privilege", String(NAME), nullable=False),
    Column("pattern", String(PATH), nullable=False),
    _ts("expires_at", nullable=True),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_grants_subject", "subject_id"),
    Index("ix_grants_pattern", "pattern"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(128), nullable=False),
    Column("meta", JSON, nullable=False),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
)

artifact_entries = Table(
    "artifact_entries",
    metadata,
    Column("folder", String(PATH), primary_key=True),
    Column("digest", String(64), ForeignKey("artifacts.digest"), primary_key=True),
    Column("label", String(256), nullable=False, default=""),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    Index("ix_artifact_entries_digest", "digest"),
)

model_groups = Table(
    "model_groups",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), ForeignKey("projects.name"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("description", Text, nullable=False, default=""),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    UniqueConstraint("project", "name", name="uq_model_groups_project_name"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "group_id", String(ID), ForeignKey("model_groups.id", ondelete="CASCADE"), nullable=False
    ),
    Column("version", Integer, nullable=False),
    Column("artifact_digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("signature", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("fairness_report_digest", String(64), nullable=True),
    Column("gate_status", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("run_id", String(ID), nullable=True),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    _ts("decided_at", nullable=True),
    Column("decided_by", String(ID), nullable=True),
    Column("decision_reason", Text, nullable=True),
    UniqueConstraint("group_id", "version", name="uq_model_versions_group_version"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "group_id", String(ID), ForeignKey("model_groups.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("alias", String(NAME), primary_key=True),
    Column("version_id", String(ID), ForeignKey("model_versions.id"), nullable=False),
    _ts("updated_at"),
    Column("updated_by", String(ID), nullable=True),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("src_kind", String(32), nullable=False),
    Column("src_id", String(PATH), nullable=False),
    Column("dst_kind", String(32), nullable=False),
    Column("dst_id", String(PATH), nullable=False),
    Column("relation", String(32), nullable=False),
    Column("run_id", String(ID), nullable=True),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    UniqueConstraint(
        "src_kind", "src_id", "dst_kind", "dst_id", "relation", name="uq_lineage_edges_edge"
    ),
    Index("ix_lineage_edges_dst", "dst_kind", "dst_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    _ts("ts"),
    Column("actor", String(NAME), nullable=False),
    Column("actor_id", String(ID), nullable=True),
    Column("on_behalf_of", String(NAME), nullable=True),
    Column("run_id", String(ID), nullable=True),
    Column("action", String(NAME), nullable=False),
    Column("resource", String(PATH), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


# -- feature store (trivet.featurestore) --------------------------------------------------------
feature_groups = Table(
    "feature_groups",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), ForeignKey("projects.name"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("record_id", String(NAME), nullable=False),
    Column("event_time", String(NAME), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("ttl_us", BigInteger, nullable=True),  # time to live in microseconds; NULL = none
    Column("online", Boolean, nullable=False),
    Column("offline", Boolean, nullable=False),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    _ts("updated_at"),
    UniqueConstraint("project", "name", name="uq_feature_groups_project_name"),
)

feature_definitions = Table(
    "feature_definitions",
    metadata,
    Column(
        "group_id",
        String(ID),
        ForeignKey("feature_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),  # 0 = record id, 1 = event time, then features
    Column("name", String(NAME), nullable=False),
    Column("dtype", String(32), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("parameters", JSON, nullable=False),
    _ts("created_at"),
    UniqueConstraint("group_id", "name", name="uq_feature_definitions_group_name"),
)

feature_batches = Table(
    "feature_batches",
    metadata,
    Column(
        "group_id",
        String(ID),
        ForeignKey("feature_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("batch_id", String(64), primary_key=True),  # sha256 of the validated batch
    Column("rows", BigInteger, nullable=False),
    Column("offline_version", BigInteger, nullable=True),  # the Delta version that holds it
    _ts("write_time"),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
)


# -- pipelines (trivet.pipelines) ---------------------------------------------------------------
pipelines = Table(
    "pipelines",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), ForeignKey("projects.name"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("description", Text, nullable=False, default=""),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    UniqueConstraint("project", "name", name="uq_pipelines_project_name"),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column(
        "pipeline_id", String(ID), ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),  # sha256 of the canonical definition
    Column("definition", JSON, nullable=False),
    _ts("created_at"),
    Column("created_by", String(ID), nullable=True),
    UniqueConstraint("pipeline_id", "digest", name="uq_pipeline_versions_pipeline_digest"),
)

pipeline_executions = Table(
    "pipeline_executions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "pipeline_id", String(ID), ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False
    ),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("options", JSON, nullable=False),  # refresh, from/only, max_parallel, source
    Column("run_as", String(NAME), nullable=False),
    Column("invoked_by", String(NAME), nullable=False),
    Column("retry_of", String(ID), nullable=True),
    Column("runner_host", String(256), nullable=False),
    Column("runner_pid", Integer, nullable=False),
    Column("runner_start", String(32), nullable=False),  # the runner process's start mark
    _ts("started_at"),
    _ts("heartbeat_at"),
    _ts("ended_at", nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_pipeline_executions_pipeline", "pipeline_id", "started_at"),
    Index("ix_pipeline_executions_status", "status"),
)

pipeline_step_runs = Table(
    "pipeline_step_runs",
    metadata,
    Column(
        "execution_id",
        String(ID),
        ForeignKey("pipeline_executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step", String(NAME), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("cache_hit", Boolean, nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("cache_note", Text, nullable=False, default=""),
    Column("output_digest", String(64), nullable=True),
    Column("output_kind", String(16), nullable=True),
    _ts("started_at", nullable=True),
    _ts("ended_at", nullable=True),
    Column("logs", Text, nullable=False, default=""),
    Column("error", Text, nullable=True),
    Column("traceback", Text, nullable=True),
)

pipeline_approvals = Table(
    "pipeline_approvals",
    metadata,
    Column(
        "execution_id",
        String(ID),
        ForeignKey("pipeline_executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step", String(NAME), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("pipeline", String(NAME), nullable=False),
    Column("message", Text, nullable=False),
    _ts("requested_at"),
    _ts("expires_at", nullable=True),
    Column("decision", String(16), nullable=True),
    Column("decided_by", String(NAME), nullable=True),
    _ts("decided_at", nullable=True),
    Column("comment", Text, nullable=False, default=""),
    Index("ix_pipeline_approvals_waiting", "project", "decision"),
)

pipeline_cache = Table(
    "pipeline_cache",
    metadata,
    Column("project", String(NAME), ForeignKey("projects.name"), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("step", String(NAME), nullable=False),
    Column("function", String(PATH), nullable=False),
    Column("components", JSON, nullable=False),  # what the key was made of, for `why`
    Column("output_digest", String(64), nullable=True),
    Column("output_kind", String(16), nullable=False),
    Column("execution_id", String(ID), nullable=False),
    _ts("created_at"),
    Index("ix_pipeline_cache_step", "project", "step"),
)
