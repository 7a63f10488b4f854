"""The web console: server-rendered pages over the callers' own sessions (no external assets).

Pages (all but ``/login`` need the sign-in cookie; ``?project=`` picks the project):
``/`` (dashboard), ``/feature-groups[/{name}]``, ``/pipelines[/{name}]``,
``/executions/{id}``, ``/models[/{name}]`` with approve/reject for reviewers, and
``/reports/{digest}``. Sign in at ``/login`` with an API token; every POST form carries
a CSRF token; every response carries a strict Content-Security-Policy (no script).
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI

__all__ = ["mount"]


def mount(app: FastAPI) -> None:
    """Add the console's pages to ``app`` (and draw its CSRF secret)."""
    from trivet._web._models import router as models_router
    from trivet._web._pages import router as pages_router
    from trivet._web._signin import router as signin_router

    app.state.console_secret = secrets.token_bytes(32)
    app.include_router(signin_router)
    app.include_router(pages_router)
    app.include_router(models_router)
