"""Rendering for the console: the Jinja environment, security headers, HTML error pages.

Every console response passes through :class:`ConsoleRoute`, which adds the security
headers and turns a :class:`~trivet.errors.TrivetError` raised by the caller's session
into a styled error page with the platform's status (403, 404, 409, 422…) — never a
traceback and never the JSON body the REST API answers with.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from trivet._web._svg import duration_text
from trivet.errors import TrivetError
from trivet.platform.http import status_for
from trivet.platform.identity import redact

__all__ = [
    "CSP",
    "ConsoleRoute",
    "SignInNeeded",
    "error_page",
    "page",
    "secure",
]

log = logging.getLogger("trivet.server")

CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The console pages' Content-Security-Policy: no script at all, no inline style."""

_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

_TITLES = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    500: "Server error",
    501: "Not available",
    503: "Unavailable",
}


class SignInNeeded(Exception):
    """Raised when a console request has no usable sign-in cookie."""

    def __init__(self, *, stale: bool = False) -> None:
        super().__init__("sign in")
        self.stale = stale


def secure(response: Response, headers: Mapping[str, str] | None = None) -> Response:
    """Add the console's security headers (``headers`` override the defaults)."""
    for key, value in {**_HEADERS, **(headers or {})}.items():
        response.headers[key] = value
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# -- templates -------------------------------------------------------------------------------
def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def _seconds(value: dt.timedelta | float | None) -> str:
    if value is None:
        return "—"
    return duration_text(value.total_seconds() if isinstance(value, dt.timedelta) else value)


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _ttl(value: dt.timedelta | None) -> str:
    if value is None:
        return "none"
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@functools.cache
def environment() -> jinja2.Environment:
    """The console's Jinja environment (autoescaping every template)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["seconds"] = _seconds
    env.filters["number"] = _number
    env.filters["ttl"] = _ttl
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.globals["urlencode"] = urlencode
    return env


def page(template: str, context: Mapping[str, Any], *, status: int = 200) -> HTMLResponse:
    """Render ``template`` with ``context`` into a secured HTML response."""
    html = environment().get_template(template).render(**context)
    response = HTMLResponse(html, status_code=status)
    secure(response)
    return response


def error_page(
    status: int,
    message: str,
    hint: str | None = None,
    *,
    kind: str = "Error",
    console: Any = None,
) -> HTMLResponse:
    """Render the error page: the status, what failed and how to fix it."""
    return page(
        "error.html",
        {
            "c": console,
            "status": status,
            "title": _TITLES.get(status, "Error"),
            "kind": kind,
            "message": redact(message),
            "hint": redact(hint) if hint else None,
        },
        status=status,
    )


def _sign_in(request: Request, stale: bool) -> Response:
    from trivet._web._auth import COOKIE, forget_cookie, login_url

    target = request.url.path
    if request.url.query and request.method == "GET":
        target += "?" + request.url.query
    response = RedirectResponse(
        login_url(target if request.method == "GET" else "/", stale=stale), status_code=303
    )
    if stale:
        forget_cookie(request, response, COOKIE, "/")
    return secure(response)


class ConsoleRoute(APIRoute):
    """A console route: HTML errors, a redirect to sign in, and the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            console = getattr(request.state, "console", None)
            try:
                response = await handler(request)
            except SignInNeeded as exc:
                return _sign_in(request, exc.stale)
            except TrivetError as exc:
                status = status_for(exc)
                if status >= 500:
                    log.error("%s %s: %s", request.method, request.url.path, redact(exc.message))
                console = getattr(request.state, "console", console)
                return error_page(
                    status, exc.message, exc.hint, kind=type(exc).__name__, console=console
                )
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                return error_page(
                    500,
                    "The server failed on this page; the error is in its log.",
                    "report it with the time of the request",
                    kind="InternalError",
                )
            if "Content-Security-Policy" not in response.headers:
                secure(response)
            return response

        return run
