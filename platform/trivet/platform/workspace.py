"""Creating a workspace and opening sessions on it."""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa

from trivet.errors import AlreadyExists, NotAuthenticated, NotFound, ValidationError
from trivet.platform import identity
from trivet.platform.catalog import Catalog, now_utc
from trivet.platform.catalog.schema import policy_epoch, projects, workspace_meta
from trivet.platform.settings import (
    CONFIG_FILE,
    DEFAULT_DIR,
    Settings,
    load_settings,
    render_config,
)

__all__ = ["init_workspace", "open_session", "os_user"]

if TYPE_CHECKING:
    from trivet.platform.permissions import Evaluator
    from trivet.platform.session import Session

S = TypeVar("S", bound="Session")

_catalogs: dict[str, Catalog] = {}


def os_user() -> str:
    """Return the name of the OS user running this process, from its uid.

    Not from ``LOGNAME``/``USER``, which anyone can set.
    """
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


def _host() -> str:
    return socket.gethostname()


def _principal_name_for(user: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", user.lower()).strip("-.")[:64]
    return name or "admin"


def init_workspace(
    path: str | Path | None = None,
    *,
    project: str = "default",
    catalog_url: str | None = None,
    four_eyes: bool = False,
) -> Settings:
    """Create a workspace; the OS user running this becomes its admin (owner of ``*``).

    Args:
        path: the folder to create (default ``./.trivet``).
        project: the first project, with its default pipeline runner.
        catalog_url: a PostgreSQL URL to keep the catalog there instead of SQLite.
        four_eyes: the workspace policy that nobody approves a model version they
            registered (change it later with ``session.access.set_policy``).

    Raises:
        AlreadyExists: the folder already holds a workspace, or the catalog is in use.
    """
    from trivet.platform.access import write_policy
    from trivet.platform.names import check_project
    from trivet.platform.permissions import bump_epoch
    from trivet.platform.session import Session

    check_project(project)
    root = Path(path) if path is not None else Path.cwd() / DEFAULT_DIR
    existed = root.exists()
    before = set(root.iterdir()) if existed else set()
    if (root / CONFIG_FILE).exists():
        raise AlreadyExists(
            f"{str(root)!r} is a trivet workspace already.",
            hint="use it as it is, or pick another folder",
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_FILE).write_text(render_config(project=project, catalog_url=catalog_url))
    try:
        settings = load_settings(root)
        catalog = Catalog(settings.catalog_url)
        if not catalog.is_empty():
            raise AlreadyExists(
                "The catalog database already holds a trivet workspace.",
                hint="point catalog_url at an empty database",
            )
        catalog.upgrade()
        user = os_user()
        with catalog.write() as conn:
            admin = identity.insert_principal(
                conn,
                name=_principal_name_for(user),
                kind=identity.PrincipalKind.USER,
                description="workspace administrator (the OS user who ran `trivet init`)",
                os_user=user,
            )
            conn.execute(
                sa.insert(workspace_meta),
                [
                    {"key": "created_at", "value": now_utc().isoformat()},
                    {"key": "admin", "value": admin.id},
                    {"key": "admin_uid", "value": str(os.getuid())},
                    {"key": "admin_host", "value": _host()},
                ],
            )
            conn.execute(sa.insert(policy_epoch).values(id=1, epoch=0))
            write_policy(conn, "four_eyes", four_eyes)
        from trivet.platform.permissions import Evaluator

        session = Session(
            settings=settings, catalog=catalog, evaluator=Evaluator(catalog), principal=admin
        )
        from trivet.platform.access import insert_grant

        with catalog.write() as conn:
            session.record(conn, action="workspace:init", resource="_workspace")
            insert_grant(
                session,
                conn,
                subject=admin,
                effect="allow",
                privilege="owner",
                pattern="*",
                reason="created the workspace",
            )
            bump_epoch(conn, catalog)
        session.identity.create_project(project)
        catalog.dispose()
    except BaseException:
        _undo_init(root, existed=existed, before=before)
        raise
    return settings


def _undo_init(root: Path, *, existed: bool, before: set[Path]) -> None:
    """Remove what a failed ``init`` created, so that it can simply be run again."""
    from trivet.platform import workspace as this

    for url, catalog in list(this._catalogs.items()):
        if url.startswith(f"sqlite:///{root.resolve()}"):
            catalog.dispose()
            del this._catalogs[url]
    if not existed:
        shutil.rmtree(root, ignore_errors=True)
        return
    for entry in set(root.iterdir()) - before:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _catalog_for(settings: Settings) -> Catalog:
    catalog = _catalogs.get(settings.catalog_url)
    if catalog is None:
        catalog = Catalog(settings.catalog_url)
        if catalog.is_empty():
            raise NotFound(
                f"The workspace {str(settings.workspace)!r} has no catalog yet.",
                hint=f"create it with `trivet init {settings.workspace}`",
            )
        if catalog.needs_upgrade():
            catalog.upgrade()  # raises BackendError for a catalog newer than this trivet
        _catalogs[settings.catalog_url] = catalog
    return catalog


def open_session(
    settings: Settings, token: str | None, session_class: type[S], *, project: str | None = None
) -> S:
    """Authenticate and return a session of ``session_class`` (see :func:`trivet.connect`)."""
    catalog = _catalog_for(settings)
    token = token or os.environ.get("TRIVET_TOKEN") or None
    info = None
    if token:
        principal, info = identity.authenticate(catalog, token)
    else:
        user = os_user()
        with catalog.read() as conn:
            found = identity.principal_by_os_user(conn, user)
            meta = dict(conn.execute(sa.select(workspace_meta.c.key, workspace_meta.c.value)).all())
        owns = settings.workspace.stat().st_uid == os.getuid()
        if catalog.dialect != "sqlite":
            # a shared catalog: the folder proves nothing, so the uid and host that
            # created the workspace must match too
            owns = owns and meta.get("admin_uid") == str(os.getuid())
            owns = owns and meta.get("admin_host") == _host()
        if found is None or not owns:
            raise NotAuthenticated(
                f"No token given, and the OS user {user!r} is not the admin of the workspace "
                f"{str(settings.workspace)!r}.",
                hint="pass token=... or set TRIVET_TOKEN (create one with "
                "`trivet auth token create`)",
            )
        principal = found
    if project is not None:
        from trivet.platform.names import check_project

        check_project(project)
    chosen = project or settings.project
    with catalog.read() as conn:
        known = conn.execute(sa.select(projects.c.name)).scalars().all()
    if chosen not in known:
        raise ValidationError(
            f"The project {chosen!r} does not exist in this workspace.",
            hint="create it with `trivet project create " + chosen + "`",
        )
    session = session_class(
        settings=settings,
        catalog=catalog,
        evaluator=_evaluator_for(catalog),
        principal=principal,
        token=info,
    )
    session.use_project(chosen)
    return session


_evaluators: dict[str, Evaluator] = {}


def _evaluator_for(catalog: Catalog) -> Evaluator:
    from trivet.platform.permissions import Evaluator

    ev = _evaluators.get(catalog.url)
    if ev is None:
        ev = _evaluators[catalog.url] = Evaluator(catalog)
    return ev
