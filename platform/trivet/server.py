"""The trivet server: one FastAPI app that mounts each part's router and the web console.

``trivet serve`` runs it under uvicorn. Every route authenticates a bearer token (or,
for the web console, the sign-in cookie) against the workspace's identity layer and
authorizes through the same :meth:`~trivet.platform.Session.authorize` checks as the SDK
and the CLI. This module only assembles; the routes live in the parts' ``http.py``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from trivet import __version__
from trivet.errors import BackendError
from trivet.platform.http import SessionPool, install_error_handlers
from trivet.platform.identity import redact
from trivet.platform.settings import Settings, load_settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from trivet.platform.session import Session

__all__ = ["create_app", "in_background", "running", "serve"]

access_log = logging.getLogger("trivet.access")
# record ids can be personal data: the access log shows that a record was read, not which
_RECORD_ID = re.compile(r"(/records/)[^/]+")

_DESCRIPTION = """\
The REST API of a trivet workspace: feature store, pipelines, model registry, fairness
reports and audit, under the same identities and grants as the Python SDK and the CLI.

Authenticate with `Authorization: Bearer trv_…` (create a token with
`trivet auth token create`). Errors are `{"error": {"type", "message", "hint"}}`;
lists take `limit` and `cursor` and return `next_cursor` while more remain.
"""


def _open(settings: Settings, token: str, project: str | None) -> Session:
    from trivet._session import Session as AssembledSession
    from trivet.platform.workspace import open_session

    return open_session(settings, token, AssembledSession, project=project)


def create_app(
    workspace: str | Path | Settings | None = None,
    *,
    console: bool = True,
    pipelines: Sequence[str] = (),
) -> FastAPI:
    """Return the FastAPI app serving ``workspace`` (default: as :func:`trivet.connect`).

    Args:
        workspace: the workspace folder, or its loaded settings.
        console: also serve the web console (the HTML pages under ``/``).
        pipelines: pipelines the API may start, as ``module:NAME`` or ``FILE.py:NAME``;
            they are imported now (the server never imports code an HTTP caller names).

    Raises:
        NotFound: a pipeline target that does not load.
    """
    from trivet.clarify.http import router as clarify_router
    from trivet.featurestore.http import router as featurestore_router
    from trivet.pipelines.http import load_startable
    from trivet.pipelines.http import router as pipelines_router
    from trivet.platform.http import router as platform_router

    settings = workspace if isinstance(workspace, Settings) else load_settings(workspace)
    app = FastAPI(
        title="trivet",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.sessions = SessionPool(settings, _open)
    app.state.pipelines = load_startable(pipelines)
    install_error_handlers(app)
    app.include_router(platform_router)
    app.include_router(featurestore_router)
    app.include_router(pipelines_router)
    app.include_router(clarify_router)
    _mount_serving(app)
    if console:
        from trivet._web import mount

        mount(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(_AccessLog)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.sessions.close()


class _AccessLog:
    """One line per request: client, method, path (never the query or headers), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            client = scope.get("client")
            access_log.info(
                "%s %s %s %d %.1fms",
                client[0] if client else "-",
                scope["method"],
                _RECORD_ID.sub(r"\1…", redact(scope["path"])),
                status,
                (time.perf_counter() - start) * 1000,
            )


def _mount_serving(app: FastAPI) -> None:
    from trivet._serving import router

    app.include_router(router)


def serve(
    workspace: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8420,
    log_level: str = "info",
    pipelines: Sequence[str] = (),
) -> None:
    """Serve ``workspace`` over HTTP until interrupted (SIGINT/SIGTERM shut down gracefully).

    ``pipelines`` (``module:NAME`` or ``FILE.py:NAME``) are the ones the API may start.
    """
    import uvicorn

    app = create_app(workspace, pipelines=pipelines)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # ours (trivet.access) never logs query strings or headers
        timeout_graceful_shutdown=10,
    )


@contextlib.contextmanager
def running(
    workspace: str | Path | Settings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    pipelines: Sequence[str] = (),
) -> Iterator[str]:
    """Run the server in a background thread; yield its base URL; stop it gracefully.

    For notebooks, examples and tests: ``port=0`` picks a free port.

    Example:
        >>> import trivet, tempfile, urllib.request
        >>> ws = trivet.init(tempfile.mkdtemp() + "/ws")
        >>> with running(ws) as url:
        ...     urllib.request.urlopen(url + "/healthz").status
        200
    """
    with in_background(create_app(workspace, pipelines=pipelines), host=host, port=port) as url:
        yield url


@contextlib.contextmanager
def in_background(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` under uvicorn in a daemon thread; yield its base URL once it accepts.

    Leaving the block shuts it down gracefully (requests in flight finish, the app's
    shutdown hooks run) and waits for that.

    Raises:
        BackendError: the server did not start (e.g. the port is taken), or did not stop
            within 30 s.
    """
    import threading

    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="trivet-server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise BackendError(
                f"The server did not start on {host}:{port}.",
                hint="is the port free? pass another one",
            )
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        if thread.is_alive():
            raise BackendError(
                f"The server on {host}:{bound} did not stop within 30 s.",
                hint="a request or a shutdown hook is stuck",
            )
