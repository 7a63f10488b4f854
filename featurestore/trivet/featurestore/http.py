"""The feature store's HTTP routes (mounted by :mod:`trivet.server`).

Every route sits under ``/v1/projects/{project}`` and calls :class:`~trivet.featurestore.
FeatureStore` on the caller's session, so the SDK's permission checks apply unchanged:

- ``GET /feature-groups`` (``?q=&tag=``): list or search (``feature:describe``);
- ``GET /feature-groups/{name}``: the schema (``feature:describe``);
- ``GET /feature-groups/{name}/statistics``: per-feature statistics
  (``feature:read_offline``);
- ``GET /feature-groups/{name}/records/{id}``: one record, online (``feature:read_online``);
- ``POST /records:batch-get``: up to 1000 records of any groups (``feature:read_online``);
- ``PUT /feature-groups/{name}/records``: write one record (``feature:write``, and
  ``feature:describe`` to read the group's types);
- ``DELETE /feature-groups/{name}/records/{id}?mode=soft|hard``: a tombstone
  (``feature:write``) or an erase everywhere (``feature:delete``).

Records are JSON objects: the record id, the event time and the features, timestamps
as ISO-8601 UTC strings (``2024-01-01T00:00:00Z``). A record id in a path is text; an
int group reads it as an integer (a non-integer is a 422 naming ``record_id``).

The online read is the hot path: its route is ``async`` (the read is a primary-key
lookup of some tens of microseconds, cheaper than a hop to the thread pool) and
answers with JSON encoded directly, without a pydantic model.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from trivet.errors import NotAuthenticated, NotFound, ValidationError, did_you_mean
from trivet.featurestore.definitions import Dtype, FeatureGroup
from trivet.featurestore.errors import IngestValidationError
from trivet.featurestore.store import FeatureStore
from trivet.platform.http import (
    ERRORS,
    Cursor,
    Limit,
    Page,
    ProjectSession,
    SessionPool,
    error_body,
    paginate,
)

if TYPE_CHECKING:
    from trivet.featurestore.stats import FeatureStatistics, GroupStatistics
    from trivet.platform.session import Session

__all__ = ["MAX_BATCH", "router"]

MAX_BATCH = 1000
"""The most records one ``records:batch-get`` may ask for."""

_PROJECT = "/v1/projects/{project}"
_GROUPS = _PROJECT + "/feature-groups"
_KIND = "feature_groups"
_INT = re.compile(r"\s*-?\d+\s*")  # as trivet.featurestore._codec.record_key reads ints

router = APIRouter(responses=ERRORS, tags=["feature store"])

GroupName = Annotated[str, Path(max_length=64, description="The feature group (e.g. `customers`).")]
RecordId = Annotated[
    str,
    Path(
        max_length=256,
        description="The record id; an int group reads it as an integer.",
    ),
]


# -- the hot path: the session and parameters, read directly -----------------------------------
def _bearer_token(request: Request) -> str:
    """The request's bearer token, or 401 (as :data:`~trivet.platform.http.ProjectSession`)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated(
            "This request carries no bearer token.",
            hint="send the header 'Authorization: Bearer trv_…' "
            "(create a token with `trivet auth token create`)",
        )
    return token.strip()


def _hot_session(request: Request, token: str, project: str) -> Session:
    """The caller's session from the server's pool, resolved on the event loop.

    A warm lookup is a dict hit and a revocation check (microseconds), far cheaper than
    the thread-pool hop of a sync dependency. A token's first request opens its session
    here (a few catalog reads, once per token and project).
    """
    pool: SessionPool = request.app.state.sessions
    return pool.get(token, project)


_PATH_LIMITS = (("project", 64), ("name", 64), ("record_id", 256))


def _too_long(path: Mapping[str, str]) -> JSONResponse | None:
    for key, limit in _PATH_LIMITS:
        if len(path[key]) > limit:
            problem = ValidationError(
                f"path.{key}: String should have at most {limit} characters",
                hint="see the API's schema at /docs",
            )
            return _invalid(problem, f"path.{key}")
    return None


def _path_parameter(name: str, description: str, limit: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "maxLength": limit, "title": name.replace("_", " ").title()},
    }


# The hot route reads its parameters itself (FastAPI's parameter and dependency
# machinery costs more than the read); this is what it declares in the OpenAPI.
_GET_RECORD_OPENAPI: dict[str, Any] = {
    "security": [{"HTTPBearer": []}],
    "parameters": [
        _path_parameter("project", "The project (e.g. `credit`).", 64),
        _path_parameter("name", "The feature group (e.g. `customers`).", 64),
        _path_parameter("record_id", "The record id; an int group reads it as an integer.", 256),
        {
            "name": "features",
            "in": "query",
            "required": False,
            "description": "Only these features (repeat it: `?features=a&features=b`).",
            "schema": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                "title": "Features",
            },
        },
    ],
}


# -- response and request models ---------------------------------------------------------------
class FeatureOut(BaseModel):
    """One typed feature of a group."""

    model_config = ConfigDict(from_attributes=True)
    name: str
    dtype: str = Field(description="int, float, string, bool, timestamp, or list<…> of these.")
    description: str
    parameters: dict[str, str] = Field(description="Free key/value pairs (unit, source, ...).")


class FeatureGroupOut(BaseModel):
    """A feature group's definition."""

    name: str
    project: str
    resource: str = Field(description="What grants apply to: `<project>/feature_groups/<name>`.")
    description: str
    record_id: str = Field(description="The column identifying a record.")
    record_id_dtype: str = Field(description="`string` or `int`.")
    event_time: str = Field(description="The column saying when a record's values were true.")
    features: list[FeatureOut]
    tags: list[str]
    ttl_seconds: float | None = Field(
        description="How long a record stays valid after its event time; null: forever."
    )
    online: bool = Field(description="The latest record per id is kept online.")
    offline: bool = Field(description="Every version of every record is kept offline.")
    owner: str | None = Field(description="Who created the group.")
    created_at: dt.datetime
    updated_at: dt.datetime


class FeatureGroupHit(FeatureGroupOut):
    """A feature group in a list; with `q`, where the words matched."""

    matches: list[str] = Field(
        default_factory=list,
        description="With `q`: `name`, `description`, `tag:<t>`, `feature:<f>`, "
        "`feature:<f>.description`, `feature:<f>.parameters`.",
    )


class HistogramOut(BaseModel):
    """Equal-width bins: `counts[i]` values lie in `[edges[i], edges[i+1])` (the last bin
    also holds its upper edge); `len(edges) == len(counts) + 1`."""

    model_config = ConfigDict(from_attributes=True)
    edges: list[float] | list[dt.datetime] = Field(
        description="Ascending bin edges: numbers, or ISO-8601 UTC times for timestamps."
    )
    counts: list[int]


class ValueCountOut(BaseModel):
    """A frequent value of a string or bool feature, and how many records hold it."""

    model_config = ConfigDict(from_attributes=True)
    value: str | bool
    count: int


class FeatureStatisticsOut(BaseModel):
    """One column's statistics; fields that do not apply to its type are null or empty."""

    model_config = ConfigDict(from_attributes=True)
    name: str
    dtype: str
    count: int = Field(description="Records, nulls included.")
    nulls: int = Field(description="Missing values (for floats, NaN too).")
    infinite: int = Field(description="Float ±inf values (left out of min…histogram).")
    distinct: int | None = Field(description="Distinct non-null values; null for lists.")
    min: StrictInt | float | dt.datetime | None
    max: StrictInt | float | dt.datetime | None
    mean: float | None = Field(description="Numbers only.")
    stddev: float | None = Field(description="Numbers only: the sample standard deviation.")
    histogram: HistogramOut | None = Field(description="Numbers and timestamps.")
    top: list[ValueCountOut] = Field(description="Strings and bools: most frequent first.")


class GroupStatisticsOut(BaseModel):
    """Per-feature statistics over each record's latest offline row."""

    model_config = ConfigDict(from_attributes=True)
    group: str
    records: int = Field(description="Records summarised (soft-deleted ones are left out).")
    bins: int
    computed_at: dt.datetime
    event_time: FeatureStatisticsOut
    features: list[FeatureStatisticsOut]


class RecordOut(BaseModel):
    """One record as the online store holds it."""

    record: dict[str, Any] = Field(
        description="The record id, the event time (ISO-8601 UTC) and the features."
    )


class RecordRef(BaseModel):
    """One record to read: its group and id."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(max_length=64, description="The feature group.")
    id: StrictInt | Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="The record id (a string, or an integer for an int group)."
    )


class BatchGetIn(BaseModel):
    """Records to read, from one or several groups."""

    model_config = ConfigDict(extra="forbid")
    requests: list[RecordRef] = Field(max_length=MAX_BATCH, description="At most 1000.")


class BatchGetOut(BaseModel):
    """The records, in the order asked; null where a record is missing or expired."""

    records: list[dict[str, Any] | None]


class PutRecordIn(BaseModel):
    """One record to write."""

    model_config = ConfigDict(extra="forbid")
    record: dict[str, Any] = Field(
        description="The record id, the event time (ISO-8601 with a zone, e.g. "
        "`2024-05-01T12:00:00Z`) and any features; features left out are null.",
        examples=[{"customer_id": 42, "ts": "2024-05-01T12:00:00Z", "income": 52000.0}],
    )


class WriteOut(BaseModel):
    """What a write did."""

    model_config = ConfigDict(from_attributes=True)
    group: str
    batch_id: str
    rows: int
    records: int
    offline_version: int | None = Field(description="The Delta version holding the write.")
    write_time: dt.datetime
    duplicate: bool


# -- JSON for records (the hot path: no pydantic) -------------------------------------------------
def _default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default
).encode


def _finite(value: Any) -> Any:
    """Replace NaN and ±inf (which JSON cannot hold) by null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _json(body: Mapping[str, Any]) -> Response:
    try:
        text = _encode(body)
    except ValueError:  # a NaN or infinity somewhere: null it
        text = _encode(_finite(dict(body)))
    return Response(content=text.encode(), media_type="application/json")


def _store(session: Session) -> FeatureStore:
    """The session's FeatureStore (the server's sessions are assembled with the parts)."""
    store = getattr(session, "featurestore", None)
    if not isinstance(store, FeatureStore):  # pragma: no cover - a wiring bug
        raise TypeError("the server's sessions must carry the parts (trivet._session.Session)")
    return store


# -- 422s that name the field -----------------------------------------------------------------
def _invalid(exc: ValidationError, field: str | None) -> JSONResponse:
    return JSONResponse(
        error_body("ValidationError", exc.message, exc.hint, field=field), status_code=422
    )


def _describable(session: Session, name: str) -> FeatureGroup | None:
    """The group, if the caller may describe it (not audited); used on error paths only."""
    try:
        if session.can("feature:describe", session.resource(_KIND, name)):
            return _store(session).describe(name)
    except (ValidationError, NotFound):
        return None
    return None


def _record_id_fits(group: FeatureGroup, record_id: object) -> bool:
    if group.record_id_dtype is Dtype.INT:
        if isinstance(record_id, bool):
            return False
        return isinstance(record_id, int) or bool(
            isinstance(record_id, str) and _INT.fullmatch(record_id)
        )
    return isinstance(record_id, str) and record_id != ""


def _field_of(
    session: Session, name: str, record_id: str, features: Sequence[str] | None
) -> str | None:
    """Which request field a 422 of get/delete is about: `features` or `record_id`."""
    group = _describable(session, name)
    if group is None:
        return None
    known = {f.name for f in group.features}
    if features and any(f not in known for f in features):
        return "features"
    return None if _record_id_fits(group, record_id) else "record_id"


# -- groups ------------------------------------------------------------------------------------
def _group_fields(group: FeatureGroup) -> dict[str, Any]:
    return dict(
        name=group.name,
        project=group.project,
        resource=group.resource,
        description=group.description,
        record_id=group.record_id,
        record_id_dtype=group.record_id_dtype.value,
        event_time=group.event_time,
        features=[
            FeatureOut(
                name=f.name,
                dtype=f.dtype.value,
                description=f.description,
                parameters=dict(f.parameters),
            )
            for f in group.features
        ],
        tags=list(group.tags),
        ttl_seconds=None if group.ttl is None else group.ttl.total_seconds(),
        online=group.online,
        offline=group.offline,
        owner=group.created_by,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


@router.get(_GROUPS, summary="List or search feature groups")
def list_feature_groups(
    session: ProjectSession,
    limit: Limit = 100,
    cursor: Cursor = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words that must all appear in the name, description, a tag, or a "
            "feature's name, description or parameters (case-insensitive).",
        ),
    ] = None,
    tag: Annotated[
        str | None, Query(max_length=64, description="Only groups carrying this exact tag.")
    ] = None,
) -> Page[FeatureGroupHit]:
    """The project's feature groups you may describe, by name (needs `feature:describe`)."""
    session.require_listing("feature:describe", _KIND)
    store = _store(session)
    if q is None and tag is None:
        items: list[tuple[FeatureGroup, Sequence[str]]] = [(g, ()) for g in store.list_groups()]
    else:
        items = [(hit.group, hit.matches) for hit in store.search(q, tag=tag)]
    return Page[FeatureGroupHit](
        **paginate(
            items,
            limit,
            cursor,
            lambda it: FeatureGroupHit(**_group_fields(it[0]), matches=list(it[1])),
        )
    )


@router.get(_GROUPS + "/{name}", summary="Describe a feature group")
def get_feature_group(session: ProjectSession, name: GroupName) -> FeatureGroupOut:
    """The group's schema: record id, event time, typed features, tags, TTL, flags, owner."""
    return FeatureGroupOut(**_group_fields(_store(session).describe(name)))


@router.get(_GROUPS + "/{name}/statistics", summary="Per-feature statistics")
def get_statistics(
    session: ProjectSession,
    name: GroupName,
    bins: Annotated[int, Query(ge=1, le=1000, description="Histogram bins.")] = 20,
) -> GroupStatisticsOut:
    """Counts, nulls, distinct values, min/max/mean/stddev and histograms of numbers and
    timestamps, top values of strings and bools — over each record's latest offline row
    (needs `feature:read_offline`)."""
    stats = _store(session).statistics(name, bins=bins)
    return _stats_out(stats)


def _feature_stats_out(stats: FeatureStatistics) -> FeatureStatisticsOut:
    return FeatureStatisticsOut(
        name=stats.name,
        dtype=stats.dtype,
        count=stats.count,
        nulls=stats.nulls,
        infinite=stats.infinite,
        distinct=stats.distinct,
        min=stats.min,
        max=stats.max,
        mean=stats.mean,
        stddev=stats.stddev,
        histogram=None if stats.histogram is None else HistogramOut.model_validate(stats.histogram),
        top=[ValueCountOut(value=t.value, count=t.count) for t in stats.top],
    )


def _stats_out(stats: GroupStatistics) -> GroupStatisticsOut:
    return GroupStatisticsOut(
        group=stats.group,
        records=stats.records,
        bins=stats.bins,
        computed_at=stats.computed_at,
        event_time=_feature_stats_out(stats.event_time),
        features=[_feature_stats_out(f) for f in stats.features],
    )


# -- records -----------------------------------------------------------------------------------
@router.get(
    _GROUPS + "/{name}/records/{record_id}",
    summary="Read a record (online)",
    response_model=RecordOut,
    openapi_extra=_GET_RECORD_OPENAPI,
)
async def get_record(request: Request) -> Response:
    """A record's latest values from the online store (needs `feature:read_online`).

    404 when the record was never written, was deleted, or its event time is older than
    the group's TTL. Parameters: the path's `project`, `name` and `record_id`, and
    `features` (repeated) in the query.
    """
    path = request.path_params
    token = _bearer_token(request)
    invalid = _too_long(path)
    if invalid is not None:
        return invalid
    session = _hot_session(request, token, path["project"])
    name, record_id = path["name"], path["record_id"]
    features = request.query_params.getlist("features") or None
    try:
        record = _store(session).get_record(name, record_id, features=features)
    except ValidationError as exc:
        return _invalid(exc, _field_of(session, name, record_id, features))
    if record is None:
        raise NotFound(
            f"Feature group {name!r} has no record {record_id!r} online: it was never written, "
            "was deleted, or is older than the group's TTL.",
            hint="check the id; records are written by ingest or PUT …/records",
        )
    return _json({"record": record})


@router.post(
    _PROJECT + "/records:batch-get",
    summary="Read many records (online)",
    response_model=BatchGetOut,
)
def batch_get_records(session: ProjectSession, body: BatchGetIn) -> Response:
    """Up to 1000 records from one or several groups, in the order asked; null where a
    record is missing, deleted or expired (needs `feature:read_online` on every group —
    if one group is refused, the whole call is)."""
    pairs = [(ref.group, ref.id) for ref in body.requests]
    try:
        records = _store(session).batch_get_record(pairs)
    except ValidationError as exc:
        return _invalid(exc, _batch_field(session, pairs))
    return _json({"records": records})


def _batch_field(session: Session, pairs: Sequence[tuple[str, object]]) -> str | None:
    groups: dict[str, FeatureGroup | None] = {}
    for i, (name, record_id) in enumerate(pairs):
        if name not in groups:
            groups[name] = _describable(session, name)
        group = groups[name]
        if group is not None and not _record_id_fits(group, record_id):
            return f"requests.{i}.id"
    return None


@router.put(_GROUPS + "/{name}/records", summary="Write a record", response_model=WriteOut)
def put_record(
    session: ProjectSession, name: GroupName, body: PutRecordIn
) -> WriteOut | JSONResponse:
    """Validate and write one record online and offline (needs `feature:write`, and
    `feature:describe` to read the group's types). JSON values are read as the group's
    types — a mismatch is a 422 naming the feature (`record.<feature>`)."""
    store = _store(session)
    session.require("feature:write", _resource(session, name))
    group = store.describe(name)
    try:
        record = _record_from_json(group, body.record)
        report = store.put_record(name, record)
    except _FieldError as exc:
        return _invalid(exc, exc.field)
    except IngestValidationError as exc:
        columns = [p.column for p in exc.problems if p.column is not None]
        return _invalid(exc, f"record.{columns[0]}" if columns else "record")
    return WriteOut.model_validate(report)


@router.delete(
    _GROUPS + "/{name}/records/{record_id}",
    summary="Delete a record",
    status_code=204,
    response_class=Response,
)
def delete_record(
    session: ProjectSession,
    name: GroupName,
    record_id: RecordId,
    mode: Annotated[
        Literal["soft", "hard"],
        Query(
            description="`soft` (needs `feature:write`): a tombstone; the history stays "
            "offline. `hard` (needs `feature:delete`): erase every row of the record, "
            "offline and online."
        ),
    ] = "soft",
) -> Response:
    """Delete a record: a soft tombstone, or a hard erase (e.g. for a GDPR request)."""
    try:
        _store(session).delete_record(name, record_id, hard=mode == "hard")
    except ValidationError as exc:
        return _invalid(exc, _field_of(session, name, record_id, None))
    return Response(status_code=204)


def _resource(session: Session, name: str) -> str:
    from trivet.platform.names import check_name

    check_name(name, what="feature group name")
    return session.resource(_KIND, name)


# -- JSON values → the group's types ------------------------------------------------------------
class _FieldError(ValidationError):
    """A value of the request that does not fit; ``field`` names it."""

    def __init__(self, message: str, *, field: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_field_error, (self.message, self.field, self.hint))


def _rebuild_field_error(message: str, field: str, hint: str | None) -> _FieldError:
    return _FieldError(message, field=field, hint=hint)


_JSON_TYPE = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}


def _shown(value: object) -> str:
    kind = _JSON_TYPE.get(type(value))
    if kind is None:
        kind = "an array" if isinstance(value, list) else "an object"
    text = json.dumps(value, default=str)
    return f"{kind} ({text[:60]}{'…' if len(text) > 60 else ''})"


def _scalar(value: object, dtype: Dtype) -> object:
    """Read one JSON value as ``dtype`` (a scalar type), or raise ValueError(expected)."""
    if value is None:
        return None
    if dtype is Dtype.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("an integer")
    if dtype is Dtype.FLOAT:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise ValueError("a number a float can hold") from None
        raise ValueError("a number")
    if dtype is Dtype.STRING:
        if isinstance(value, str):
            return value
        raise ValueError("a string")
    if dtype is Dtype.BOOL:
        if isinstance(value, bool):
            return value
        raise ValueError("true or false")
    if isinstance(value, str):  # a timestamp
        try:
            stamp = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("an ISO-8601 timestamp with a zone") from None
        if stamp.tzinfo is None or stamp.utcoffset() is None:
            raise ValueError("an ISO-8601 timestamp with a zone ('Z' or '+00:00')")
        return stamp.astimezone(dt.UTC)
    raise ValueError("an ISO-8601 timestamp string")


def _record_from_json(group: FeatureGroup, record: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``record`` with each value read as its column's type; raise _FieldError."""
    types = {group.record_id: group.record_id_dtype, group.event_time: Dtype.TIMESTAMP}
    types.update({f.name: f.dtype for f in group.features})
    out: dict[str, Any] = {}
    for key, value in record.items():
        dtype = types.get(key)
        if dtype is None:
            raise _FieldError(
                f"Feature group {group.name!r} has no column {key!r}.",
                field=f"record.{key}",
                hint=did_you_mean(key, types) or "its columns: " + ", ".join(types),
            )
        try:
            if dtype.is_list and value is not None:
                if not isinstance(value, list):
                    raise ValueError(f"an array of {dtype.element.value}")
                out[key] = [_scalar(v, dtype.element) for v in value]
            else:
                out[key] = _scalar(value, dtype)
        except ValueError as exc:
            what = "Every item of" if dtype.is_list and isinstance(value, list) else "The value of"
            raise _FieldError(
                f"{what} {key!r} ({dtype.value}) must be {exc}, got {_shown(value)}.",
                field=f"record.{key}",
            ) from None
    return out
