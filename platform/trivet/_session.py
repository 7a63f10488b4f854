"""The assembled Session: the platform's Session plus the parts, and ``connect``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from trivet.platform.session import Session as PlatformSession
from trivet.platform.settings import Settings, load_settings
from trivet.platform.workspace import init_workspace, open_session

if TYPE_CHECKING:
    from trivet.clarify import Clarify
    from trivet.featurestore import FeatureStore
    from trivet.pipelines import Pipelines

__all__ = ["Session", "connect", "init"]


class Session(PlatformSession):
    """A principal's handle on a workspace: identity, access, artifacts, registry, lineage.

    The parts hang off it: ``session.featurestore``, ``session.clarify`` and
    ``session.pipelines``.
    """

    @functools.cached_property
    def pipelines(self) -> Pipelines:
        """Pipelines: define, run, retry and inspect executions."""
        from trivet.pipelines import Pipelines

        return Pipelines(self)

    @functools.cached_property
    def clarify(self) -> Clarify:
        """Bias metrics (and, as they land, explanations and fairness reports)."""
        from trivet.clarify import Clarify

        return Clarify(self)

    @functools.cached_property
    def featurestore(self) -> FeatureStore:
        """The feature store: feature groups, ingestion, online and offline reads."""
        from trivet.featurestore import FeatureStore

        return FeatureStore(self)

    def close(self) -> None:
        """Release the session's connections (catalog and, if opened, online store)."""
        if "featurestore" in self.__dict__:
            self.featurestore.close()
        super().close()


def connect(
    workspace: str | Path | None = None,
    token: str | None = None,
    *,
    project: str | None = None,
) -> Session:
    """Open a session on a workspace.

    Args:
        workspace: the workspace folder; default ``TRIVET_WORKSPACE`` or the nearest
            ``.trivet/`` above the current directory.
        token: an API token; default ``TRIVET_TOKEN``. Without one, the OS user who
            created the workspace is signed in as its admin.
        project: the default project for names (default: the workspace's).

    Raises:
        NotFound: no workspace there.
        NotAuthenticated: no usable identity (bad, expired or revoked token).

    Example:
        >>> import trivet, tempfile
        >>> ws = trivet.init(tempfile.mkdtemp() + "/ws")
        >>> trivet.connect(ws.workspace).identity.whoami().kind.value
        'user'
    """
    settings = load_settings(workspace)
    return open_session(settings, token, Session, project=project)


def init(
    path: str | Path | None = None,
    *,
    project: str = "default",
    catalog_url: str | None = None,
    four_eyes: bool = False,
) -> Settings:
    """Create a workspace (see :func:`trivet.platform.workspace.init_workspace`)."""
    return init_workspace(path, project=project, catalog_url=catalog_url, four_eyes=four_eyes)
