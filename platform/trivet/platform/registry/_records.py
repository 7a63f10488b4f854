"""Records of the model registry: statuses, groups, versions, and input checks."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trivet.errors import ValidationError
from trivet.platform.names import check_name

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JUSTIFICATION",
    "ApprovalStatus",
    "GateStatus",
    "ModelGroup",
    "ModelVersion",
    "check_alias",
    "check_flavor",
    "check_justification",
    "clean_mapping",
]

MAX_JUSTIFICATION = 10_000
MAX_JSON_BYTES = 1_000_000
_MAX_DEPTH = 32
_FLAVOR = re.compile(r"[a-z0-9_.-]{1,32}")


class ApprovalStatus(StrEnum):
    """A model version's approval status (persisted as these exact strings)."""

    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class GateStatus(StrEnum):
    """The outcome of the fairness/quality gate a version was registered with."""

    PASSED = "passed"
    FAILED = "failed"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class ModelGroup:
    """A named family of model versions."""

    name: str
    project: str
    resource: str
    description: str
    created_at: dt.datetime
    created_by: str | None
    latest_version: int | None
    aliases: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ModelVersion:
    """One immutable version of a model group, with its approval decision."""

    name: str
    project: str
    version: int
    resource: str
    artifact_digest: str
    flavor: str
    signature: Mapping[str, Any]
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    fairness_report_digest: str | None
    gate_status: GateStatus
    status: ApprovalStatus
    description: str
    run_id: str | None
    created_at: dt.datetime
    created_by: str | None
    decided_at: dt.datetime | None
    decided_by: str | None
    decision_reason: str | None
    aliases: tuple[str, ...] = ()

    def _repr_html_(self) -> str:
        def row(key: str, value: object) -> str:
            shown = "" if value is None else str(value)
            cells = f"<th style='text-align:left'>{html.escape(key)}</th>"
            return f"<tr>{cells}<td>{html.escape(shown)}</td></tr>"

        def dump(value: Mapping[str, Any]) -> str:
            return json.dumps(dict(value), sort_keys=True) if value else ""

        decision = (
            f"{self.status.value} by {self.decided_by} at {self.decided_at:%Y-%m-%d %H:%M} UTC"
            if self.decided_at is not None
            else self.status.value
        )
        rows = [
            row("model", f"{self.name} v{self.version}"),
            row("resource", self.resource),
            row("status", decision),
            row("justification", self.decision_reason),
            row("gate", self.gate_status.value),
            row("fairness report", self.fairness_report_digest),
            row("aliases", ", ".join(self.aliases)),
            row("flavor", self.flavor),
            row("artifact", self.artifact_digest),
            row("metrics", dump(self.metrics)),
            row("params", dump(self.params)),
            row("registered", f"{self.created_at:%Y-%m-%d %H:%M} UTC by {self.created_by}"),
            row("run", self.run_id),
            row("description", self.description),
        ]
        return "<table class='trivet-model-version'>" + "".join(rows) + "</table>"


def _clean_json(value: object, where: str, depth: int = 0) -> Any:
    """Return ``value`` as plain JSON data, or raise ValidationError naming ``where``."""
    if depth > _MAX_DEPTH:
        raise ValidationError(f"{where} is nested more than {_MAX_DEPTH} levels deep.")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                f"{where} is {value!r}, which JSON cannot hold.",
                hint="store a finite number, or None for a missing value",
            )
        return float(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"{where} has the key {key!r} of type {type(key).__name__}.",
                    hint="use string keys",
                )
            out[key] = _clean_json(item, f"{where}[{key!r}]", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_clean_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    item = getattr(value, "item", None)  # numpy and similar 0-d scalars
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _clean_json(item(), where, depth)
    raise ValidationError(
        f"{where} is a {type(value).__name__}, which is not JSON data.",
        hint="use str, int, float, bool, None, lists and dicts (e.g. array.tolist())",
    )


def clean_mapping(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping, got {type(value).__name__}.")
    cleaned: dict[str, Any] = _clean_json(value, what)
    if len(json.dumps(cleaned)) > MAX_JSON_BYTES:
        raise ValidationError(
            f"{what} is larger than {MAX_JSON_BYTES} bytes as JSON.",
            hint="store large data as an artifact and record its digest",
        )
    return cleaned


def check_justification(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(
            "A decision needs a non-empty justification.",
            hint="say why, e.g. justification='fairness report reviewed; DI within 0.8-1.25'",
        )
    if len(text) > MAX_JUSTIFICATION:
        raise ValidationError(f"A justification may have at most {MAX_JUSTIFICATION} characters.")
    return text.strip()


def check_alias(alias: object) -> str:
    name = check_name(alias, what="alias")
    if name == "latest" or name.isdigit():
        raise ValidationError(
            f"{name!r} cannot be an alias: it would read as a version.",
            hint="pick a word such as 'production' or 'champion'",
        )
    return name


def check_flavor(flavor: object) -> str | None:
    """Return a valid model flavor name (or None); raise ValidationError otherwise."""
    if flavor is not None and (not isinstance(flavor, str) or not _FLAVOR.fullmatch(flavor)):
        raise ValidationError(f"The flavor {flavor!r} is not valid.", hint="e.g. 'sklearn'")
    return flavor
