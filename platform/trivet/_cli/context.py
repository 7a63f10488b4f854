"""How CLI commands open a session: workspace and token from options or environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import trivet

_state: dict[str, str | None] = {"workspace": None, "token": None, "project": None}


def configure(*, workspace: str | None, token: str | None, project: str | None) -> None:
    """Remember the root options for the commands of this invocation."""
    _state.update(workspace=workspace, token=token, project=project)


def session() -> trivet.Session:
    """Open a session with the root options (or TRIVET_* environment variables)."""
    import trivet

    return trivet.connect(_state["workspace"], _state["token"], project=_state["project"])


def workspace_path() -> str | None:
    """Return the workspace folder given by ``--workspace`` (or None: the default search)."""
    return _state["workspace"]
