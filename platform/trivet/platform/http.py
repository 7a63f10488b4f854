"""The platform's HTTP layer: bearer-token sessions, JSON errors, pagination, and routes.

Each part's ``http.py`` builds its :class:`fastapi.APIRouter` on the pieces here:

- :data:`ProjectSession` — a dependency that turns ``Authorization: Bearer trv_…`` and
  the ``{project}`` path parameter into the caller's :class:`~trivet.platform.Session`
  (401 without a usable token; the OS-user fallback of :func:`trivet.connect` never
  applies over HTTP);
- :func:`install_error_handlers` — every :class:`~trivet.errors.TrivetError` becomes
  ``{"error": {"type", "message", "hint"}}`` with its status (422, 401, 403, 404, 409,
  503, ...), request validation errors name the field, and anything unexpected is a
  plain 500 without a traceback;
- :class:`Page` and :func:`paginate` — ``?limit=&cursor=`` on every list.

This module also serves the platform's own routes: ``/v1/whoami``, the model registry
(``/v1/projects/{project}/models…``) and the audit log (``/v1/audit``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from trivet.errors import (
    AlreadyExists,
    BackendError,
    Conflict,
    IntegrityError,
    MissingDependency,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TrivetError,
    ValidationError,
)
from trivet.platform.identity import redact
from trivet.platform.session import Session
from trivet.platform.settings import Settings

__all__ = [
    "ERRORS",
    "MAX_PAGE",
    "ApiError",
    "Page",
    "ProjectSession",
    "SessionPool",
    "WorkspaceSession",
    "cursor_number",
    "error_body",
    "install_error_handlers",
    "paginate",
    "router",
    "status_for",
]

log = logging.getLogger("trivet.server")

MAX_PAGE = 1000
_STATUS: tuple[tuple[type[TrivetError], int], ...] = (
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (Conflict, 409),
    (ValidationError, 422),
    (IntegrityError, 500),
    (MissingDependency, 501),
    (BackendError, 503),
)


def status_for(exc: TrivetError) -> int:
    """Return the HTTP status of a trivet error (its nearest class in the error tree)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


# -- sessions --------------------------------------------------------------------------------
OpenSession = Callable[[Settings, str, "str | None"], Session]


class SessionPool:
    """Open sessions keyed by (token, project), reused across requests.

    A session is opened (token looked up, checksum and hash verified) on a token's first
    request; later requests reuse it, so a warm request costs no catalog round trip.
    Revocation and expiry still apply at once: every request re-checks them (the
    revocation answer is cached per policy epoch, which a revocation bumps), and every
    permission check inside the parts does too.

    Args:
        settings: the workspace's settings.
        open_session: ``(settings, token, project) -> Session`` — the server passes one
            that builds the assembled session, with the parts attached.
        size: how many sessions to keep (least recently used ones are dropped).
    """

    def __init__(self, settings: Settings, open_session: OpenSession, *, size: int = 1024) -> None:
        self.settings = settings
        self._open = open_session
        self._size = size
        self._cache: OrderedDict[tuple[str, str | None], Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, project: str | None) -> Session:
        """Return the session for ``token`` in ``project`` (None: the workspace default).

        Raises:
            NotAuthenticated: the token is unknown, malformed, revoked or expired.
            ValidationError: no such project.
        """
        if not token or not token.strip():
            # never fall through to connect()'s fallbacks (TRIVET_TOKEN, the OS-user admin)
            raise NotAuthenticated(
                "No token was given.", hint="send the header 'Authorization: Bearer trv_…'"
            )
        key = (hashlib.sha256(token.encode()).hexdigest(), project)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None and not cached.token_usable():
            with self._lock:
                self._cache.pop(key, None)
            cached = None
        if cached is None:
            session = self._open(self.settings, token, project)
            with self._lock:
                self._cache[key] = session
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
            return session
        return cached

    def close(self) -> None:
        """Close every cached session."""
        with self._lock:
            cached = list(self._cache.values())
            self._cache.clear()
        for session in cached:
            session.close()


_bearer = HTTPBearer(
    auto_error=False,
    description="An API token: `trivet auth token create` prints one (trv_usr_…/trv_svc_…).",
)


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise NotAuthenticated(
            "This request carries no bearer token.",
            hint="send the header 'Authorization: Bearer trv_…' "
            "(create a token with `trivet auth token create`)",
        )
    return credentials.credentials.strip()


def _pool(request: Request) -> SessionPool:
    pool: SessionPool = request.app.state.sessions
    return pool


def _project_session(
    request: Request,
    project: Annotated[str, Path(description="The project (e.g. `credit`).", max_length=64)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    return _pool(request).get(_token(credentials), project)


def _workspace_session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    return _pool(request).get(_token(credentials), None)


ProjectSession = Annotated[Session, Depends(_project_session)]
"""The caller's session in the ``{project}`` of the route's path."""

WorkspaceSession = Annotated[Session, Depends(_workspace_session)]
"""The caller's session in the workspace's default project."""


# -- errors ----------------------------------------------------------------------------------
class ApiError(BaseModel):
    """The body of every error response."""

    type: str = Field(description="The error class, e.g. `PermissionDenied`.")
    message: str
    hint: str | None = None
    field: str | None = Field(None, description="For 422: the offending field, dotted.")


class _ErrorBody(BaseModel):
    error: ApiError


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": _ErrorBody, "description": text}
    for code, text in (
        (401, "No, or no usable, bearer token."),
        (403, "The token's principal lacks the permission."),
        (404, "No such resource."),
        (409, "Conflicts with the resource's state."),
        (422, "Invalid input; `error.field` names it."),
    )
}
"""The error responses to declare on every route (``responses=ERRORS``)."""


def error_body(
    kind: str, message: str, hint: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """Return the JSON body of an error response."""
    return {
        "error": ApiError(
            type=kind,
            message=redact(message),
            hint=redact(hint) if hint else None,
            field=field,
        ).model_dump()
    }


async def _trivet_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TrivetError)
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, redact(exc.message))
    return JSONResponse(
        error_body(type(exc).__name__, exc.message, exc.hint), status_code=status, headers=headers
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid')}" if where else "The request is invalid."
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return JSONResponse(
        error_body("ValidationError", message, "see the API's schema at /docs", field=where),
        status_code=422,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "NotFound", 405: "MethodNotAllowed", 401: "NotAuthenticated"}.get(
        exc.status_code, "HTTPError"
    )
    message, hint = str(exc.detail), None
    if exc.status_code == 404 and message == "Not Found":
        message = f"There is no route {request.method} {request.url.path}."
        hint = "the API's routes are listed at /docs"
    elif exc.status_code == 405:
        message = f"{request.url.path} does not take {request.method}."
        hint = "the API's routes and their methods are listed at /docs"
    return JSONResponse(
        error_body(kind, message, hint),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse(
        error_body(
            "InternalError",
            "The server failed on this request; the error is in its log.",
            "report it with the time of the request",
        ),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error a JSON ``{"error": …}`` body with the right status."""
    app.add_exception_handler(TrivetError, _trivet_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


# -- pagination ------------------------------------------------------------------------------
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = Field(None, description="Absent on the last page.")


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
Cursor = Annotated[
    str | None,
    Query(max_length=32, description="`next_cursor` of the previous page."),
]


def cursor_number(cursor: str | None) -> int:
    """Return the number a cursor this API handed out stands for (0: no cursor).

    Raises:
        ValidationError: not a cursor this API made.
    """
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise ValidationError(
            f"The cursor {cursor[:32]!r} is not one this API handed out.",
            hint="pass the next_cursor of the previous page, or none for the first page",
        )
    return int(cursor)


def paginate(items: Sequence[Any], limit: int, cursor: str | None, convert: Any) -> dict[str, Any]:
    """Cut one page out of ``items`` (converted with ``convert``) for a :class:`Page`."""
    start = cursor_number(cursor)
    chunk = items[start : start + limit]
    after = start + len(chunk)
    return {
        "items": [convert(item) for item in chunk],
        "next_cursor": str(after) if after < len(items) else None,
    }


# -- the platform's routes -------------------------------------------------------------------
class PrincipalOut(BaseModel):
    """A user, group or service principal."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    kind: str
    description: str


class ModelGroupOut(BaseModel):
    """A model group."""

    model_config = ConfigDict(from_attributes=True)
    name: str
    project: str
    resource: str
    description: str
    created_at: Any
    created_by: str | None
    latest_version: int | None
    aliases: dict[str, int]


class ModelVersionOut(BaseModel):
    """One immutable model version and its approval decision."""

    model_config = ConfigDict(from_attributes=True)
    name: str
    project: str
    version: int
    resource: str
    artifact_digest: str
    flavor: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    fairness_report_digest: str | None
    gate_status: str
    status: str = Field(description="PendingManualApproval, Approved or Rejected.")
    description: str
    run_id: str | None
    created_at: Any
    created_by: str | None
    decided_at: Any | None
    decided_by: str | None
    decision_reason: str | None
    aliases: list[str]


class Decision(BaseModel):
    """A reviewer's decision on a model version."""

    justification: str = Field(
        min_length=1, max_length=10_000, description="Why — recorded with the decision."
    )


class AuditEntryOut(BaseModel):
    """One row of the hash-chained audit log."""

    model_config = ConfigDict(from_attributes=True)
    seq: int
    ts: Any
    actor: str
    on_behalf_of: str | None
    run_id: str | None
    action: str
    resource: str
    outcome: str
    detail: dict[str, Any]
    hash: str


class VerificationOut(BaseModel):
    """The result of recomputing the audit log's hash chain."""

    model_config = ConfigDict(from_attributes=True)
    ok: bool
    rows: int
    first_bad_seq: int | None
    problem: str | None


router = APIRouter(responses=ERRORS)
_MODELS = "/v1/projects/{project}/models"
ModelName = Annotated[str, Path(max_length=64, description="The model group.")]
VersionRef = Annotated[
    str, Path(max_length=64, description="A version number or an alias (e.g. `champion`).")
]


def _version(ref: str) -> int | str:
    return int(ref) if ref.isdigit() else ref


@router.get("/v1/whoami", tags=["identity"], summary="The token's principal")
def whoami(session: WorkspaceSession) -> PrincipalOut:
    """Return the principal the bearer token belongs to."""
    return PrincipalOut.model_validate(session.principal)


@router.get(_MODELS, tags=["registry"], summary="List model groups")
def list_models(
    session: ProjectSession, limit: Limit = 100, cursor: Cursor = None
) -> Page[ModelGroupOut]:
    """The project's model groups you may describe."""
    session.require_listing("model:describe", "models")
    groups = session.registry.groups()
    return Page[ModelGroupOut](**paginate(groups, limit, cursor, ModelGroupOut.model_validate))


@router.get(_MODELS + "/{name}", tags=["registry"], summary="Describe a model group")
def get_model(session: ProjectSession, name: ModelName) -> ModelGroupOut:
    """One model group with its aliases (needs `model:describe`)."""
    return ModelGroupOut.model_validate(session.registry.group(name))


@router.get(_MODELS + "/{name}/versions", tags=["registry"], summary="List versions")
def list_versions(
    session: ProjectSession, name: ModelName, limit: Limit = 100, cursor: Cursor = None
) -> Page[ModelVersionOut]:
    """Every version of a model group, oldest first (needs `model:describe`)."""
    versions = session.registry.versions(name)
    return Page[ModelVersionOut](
        **paginate(versions, limit, cursor, ModelVersionOut.model_validate)
    )


@router.get(_MODELS + "/{name}/versions/{version}", tags=["registry"], summary="Get a version")
def get_version(session: ProjectSession, name: ModelName, version: VersionRef) -> ModelVersionOut:
    """One model version, by number or alias (needs `model:describe`)."""
    return ModelVersionOut.model_validate(session.registry.get(name, _version(version)))


@router.post(
    _MODELS + "/{name}/versions/{version}/approve", tags=["registry"], summary="Approve a version"
)
def approve(
    session: ProjectSession, name: ModelName, version: VersionRef, body: Decision
) -> ModelVersionOut:
    """Approve a `PendingManualApproval` version (needs `model:approve`; a justification)."""
    decided = session.registry.approve(name, _version(version), justification=body.justification)
    return ModelVersionOut.model_validate(decided)


@router.post(
    _MODELS + "/{name}/versions/{version}/reject", tags=["registry"], summary="Reject a version"
)
def reject(
    session: ProjectSession, name: ModelName, version: VersionRef, body: Decision
) -> ModelVersionOut:
    """Reject a version (needs `model:approve`; a justification)."""
    decided = session.registry.reject(name, _version(version), justification=body.justification)
    return ModelVersionOut.model_validate(decided)


@router.get("/v1/audit", tags=["audit"], summary="Read the audit log")
def audit_log(
    session: WorkspaceSession,
    limit: Limit = 100,
    cursor: Cursor = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(pattern="^(ok|denied|failed)$")] = None,
) -> Page[AuditEntryOut]:
    """Audit rows, newest first (needs `audit:read` on `_audit`)."""
    from trivet.platform import audit

    session.require("audit:read", "_audit")
    before = cursor_number(cursor) if cursor is not None else None
    rows = audit.entries(
        session.catalog,
        limit=limit + 1,
        actor=actor,
        outcome=outcome,
        newest_first=True,
        before_seq=before,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[AuditEntryOut](
        items=[AuditEntryOut.model_validate(r) for r in rows],
        next_cursor=str(rows[-1].seq) if more and rows else None,
    )


@router.get("/v1/audit/verify", tags=["audit"], summary="Verify the audit log")
def audit_verify(session: WorkspaceSession) -> VerificationOut:
    """Recompute the hash chain; `first_bad_seq` names the first tampered row."""
    from trivet.platform import audit

    session.require("audit:read", "_audit")
    return VerificationOut.model_validate(audit.verify(session.catalog))
