"""Sign-in and sign-out, and the console's one stylesheet."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from trivet._web._auth import (
    COOKIE,
    LOGIN_COOKIE,
    Console,
    check_csrf,
    console,
    csrf_for,
    forget_cookie,
    new_login_nonce,
    read_form,
    safe_next,
    set_cookie,
)
from trivet._web._render import ConsoleRoute, page, secure
from trivet.errors import NotAuthenticated, PermissionDenied

__all__ = ["router"]

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@functools.cache
def _stylesheet() -> bytes:
    return (Path(__file__).parent / "static" / "console.css").read_bytes()


@router.get("/static/console.css")
def stylesheet() -> Response:
    """The console's stylesheet (the only asset; cached for an hour)."""
    response = Response(_stylesheet(), media_type="text/css")
    return secure(response, {"Cache-Control": "public, max-age=3600"})


def _login_form(
    request: Request, target: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    nonce = new_login_nonce()
    response = page(
        "login.html",
        {
            "c": None,
            "next": target,
            "csrf": csrf_for(request, nonce, "login"),
            "error": error,
            "expired": request.query_params.get("expired") == "1",
        },
        status=status,
    )
    set_cookie(request, response, LOGIN_COOKIE, nonce, "/login")
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    """The sign-in form: paste an API token."""
    return _login_form(request, safe_next(request.query_params.get("next")))


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token; on success set the sign-in cookie and go to ``next``."""
    form = await read_form(request)
    target = safe_next(form.get("next"))
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce:
        raise PermissionDenied(
            "The sign-in form was refused: its security cookie is missing.",
            hint="open /login again and sign in from there (cookies must be enabled)",
        )
    check_csrf(request, form, nonce, "login")
    token = form.get("token", "").strip()
    if not token:
        return _login_form(request, target, error="Paste an API token.", status=422)
    pool = request.app.state.sessions
    try:
        await run_in_threadpool(pool.get, token, None)
    except NotAuthenticated as exc:
        return _login_form(request, target, error=exc.message, status=401)
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, COOKIE, token, "/")
    forget_cookie(request, response, LOGIN_COOKIE, "/login")
    return secure(response)


@router.post("/logout")
async def logout(request: Request, c: Annotated[Console, Depends(console)]) -> Response:
    """Forget the sign-in cookie (the token itself stays valid until revoked)."""
    check_csrf(request, await read_form(request), c.token)
    response = RedirectResponse("/login", status_code=303)
    forget_cookie(request, response, COOKIE, "/")
    return secure(response)
