"""Sign-in for the console: the token cookie, CSRF tokens, and the caller's context.

The sign-in cookie holds the API token itself (HttpOnly, SameSite=Strict, Path=/,
Secure over https); each request resolves it through the app's
:class:`~trivet.platform.http.SessionPool`, so revocation and expiry apply at once,
exactly as for a bearer token. Every POST form carries a CSRF token, the HMAC of the
cookie's token under a secret the server draws at start-up; the sign-in form, which has
no session yet, uses a random nonce cookie instead (a double-submit token), so a foreign
site can neither post as the user nor sign them in as somebody else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from fastapi import Request, Response

from trivet.errors import NotAuthenticated, PermissionDenied, TrivetError, ValidationError
from trivet.platform.names import check_project

if TYPE_CHECKING:
    from trivet._session import Session

__all__ = [
    "COOKIE",
    "LOGIN_COOKIE",
    "MAX_FORM",
    "Console",
    "approves",
    "check_csrf",
    "console",
    "csrf_for",
    "forget_cookie",
    "login_url",
    "new_login_nonce",
    "read_form",
    "safe_next",
    "set_cookie",
]

COOKIE = "trivet_session"
LOGIN_COOKIE = "trivet_login"
MAX_FORM = 64 * 1024
"""The largest form body the console reads (bytes)."""
_NEXT = re.compile(r"/[^\x00-\x20\\]*")


def _secret(request: Request) -> bytes:
    secret: bytes = request.app.state.console_secret
    return secret


def csrf_for(request: Request, token: str, purpose: str = "form") -> str:
    """Return the CSRF token of a session (``purpose`` separates form kinds)."""
    message = f"{purpose}:{token}".encode()
    return hmac.new(_secret(request), message, hashlib.sha256).hexdigest()


def _same_origin(request: Request) -> bool:
    """Refuse a POST whose ``Origin`` (sent by every current browser) is another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc == host


def check_csrf(request: Request, form: dict[str, str], token: str, purpose: str = "form") -> None:
    """Raise PermissionDenied unless the form's ``csrf`` field matches the session's."""
    sent = form.get("csrf", "")
    expected = csrf_for(request, token, purpose)
    if not _same_origin(request) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied(
            "This form was refused: its security token is missing or does not match your sign-in.",
            hint="reload the page and submit the form again",
        )


def approves(form: dict[str, str], page: str) -> bool:
    """Return whether a decision form's button was Approve (False: Reject).

    Raises:
        ValidationError: neither button (``page`` names where the form is).
    """
    decision = form.get("decision")
    if decision not in ("approve", "reject"):
        raise ValidationError(
            f"The decision {str(decision)[:20]!r} is neither 'approve' nor 'reject'.",
            hint=f"use the Approve or Reject button on {page}",
        )
    return decision == "approve"


async def read_form(request: Request) -> dict[str, str]:
    """Return an url-encoded form body as a dict (the first value of each field).

    An empty body is an empty form.

    Raises:
        ValidationError: the body is not url-encoded, is larger than :data:`MAX_FORM`,
            or is not UTF-8.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise ValidationError(f"The form is larger than {MAX_FORM} bytes.")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != "application/x-www-form-urlencoded":
        raise ValidationError(
            "The console's forms are sent url-encoded.",
            hint="submit the form from its page (Content-Type: application/x-www-form-urlencoded)",
        )
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"The form could not be read: {exc}.") from None
    return {key: values[0] for key, values in fields.items()}


def safe_next(value: str | None) -> str:
    """Return ``value`` if it is a path on this site (``/…``, not ``//…``), else ``/``."""
    if not value or len(value) > 2048 or not _NEXT.fullmatch(value):
        return "/"
    parts = urlsplit(value)
    if value.startswith("//") or parts.scheme or parts.netloc:
        return "/"
    return value


def login_url(target: str, *, stale: bool = False) -> str:
    """Return the sign-in page's URL that leads back to ``target``."""
    query: dict[str, str] = {}
    if safe_next(target) != "/":
        query["next"] = target
    if stale:
        query["expired"] = "1"
    return "/login" + ("?" + urlencode(query) if query else "")


def set_cookie(request: Request, response: Response, name: str, value: str, path: str) -> None:
    """Set an HttpOnly, SameSite=Strict cookie (Secure when the request came over https)."""
    response.set_cookie(
        name,
        value,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def forget_cookie(request: Request, response: Response, name: str, path: str) -> None:
    """Expire a cookie set by :func:`set_cookie` (same attributes, so browsers match it)."""
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


@dataclass
class Console:
    """The signed-in caller: their session in the chosen project, and page helpers."""

    request: Request
    session: Session
    token: str = field(repr=False)
    project: str
    default_project: str

    @property
    def csrf(self) -> str:
        """The CSRF token to put in this session's forms."""
        return csrf_for(self.request, self.token)

    @property
    def who(self) -> Any:
        """The signed-in principal."""
        return self.session.principal

    def href(self, path: str, **query: Any) -> str:
        """Return a console URL in the current project (``query`` adds parameters)."""
        params = {k: v for k, v in query.items() if v is not None}
        if self.project != self.default_project:
            params = {"project": self.project, **params}
        return path + ("?" + urlencode(params) if params else "")

    def seg(self, value: object) -> str:
        """Quote one path segment."""
        return quote(str(value), safe="")

    def projects(self) -> list[str]:
        """The workspace's projects, for the selector."""
        try:
            return [p.name for p in self.session.identity.list_projects()]
        except TrivetError:
            return [self.project]


def console(request: Request) -> Console:
    """The dependency of every signed-in page: the cookie's session in ``?project=``.

    Raises:
        SignInNeeded: no cookie, or a token that is unknown, revoked or expired.
        ValidationError: ``?project=`` names no project.
    """
    from trivet._web._render import SignInNeeded

    token = request.cookies.get(COOKIE, "").strip()
    if not token:
        # never hand an empty token on: the SDK would fall back to the OS user
        raise SignInNeeded()
    settings = request.app.state.settings
    project = request.query_params.get("project") or None
    if project is not None:
        check_project(project)
    try:
        session = request.app.state.sessions.get(token, project)
    except NotAuthenticated:
        raise SignInNeeded(stale=True) from None
    ctx = Console(
        request=request,
        session=session,
        token=token,
        project=session.project,
        default_project=settings.project,
    )
    request.state.console = ctx
    return ctx


def new_login_nonce() -> str:
    """A fresh nonce for the sign-in form's double-submit cookie."""
    return secrets.token_urlsafe(24)
