"""Workspace settings: one typed object, read only by ``connect``, the CLI and the server.

Precedence: an explicit argument > a ``TRIVET_*`` environment variable > the
workspace's ``trivet.toml`` > the default. Relative paths in ``trivet.toml`` are
relative to the workspace folder.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from trivet.errors import NotFound, ValidationError

__all__ = ["CONFIG_FILE", "DEFAULT_DIR", "Settings", "find_workspace", "load_settings"]

CONFIG_FILE = "trivet.toml"
DEFAULT_DIR = ".trivet"

# field name -> (toml section, toml key, environment variable)
_SOURCES: Mapping[str, tuple[str, str, str]] = {
    "project": ("workspace", "project", "TRIVET_PROJECT"),
    "catalog_url": ("catalog", "url", "TRIVET_CATALOG_URL"),
    "artifacts_url": ("artifacts", "url", "TRIVET_ARTIFACTS_URL"),
    "s3_endpoint_url": ("artifacts", "s3_endpoint_url", "TRIVET_S3_ENDPOINT_URL"),
    "offline_url": ("featurestore", "offline_url", "TRIVET_OFFLINE_URL"),
    "online_url": ("featurestore", "online_url", "TRIVET_ONLINE_URL"),
    "executor": ("pipelines", "executor", "TRIVET_EXECUTOR"),
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where a workspace keeps each of its stores, and its policies."""

    workspace: Path
    project: str = "default"
    catalog_url: str = ""
    artifacts_url: str = ""
    s3_endpoint_url: str | None = None
    offline_url: str = ""
    online_url: str = ""
    executor: str = "local"

    @property
    def config_path(self) -> Path:
        """The workspace's ``trivet.toml``."""
        return self.workspace / CONFIG_FILE


def find_workspace(start: Path | None = None) -> Path:
    """Return the workspace folder for ``start`` (default: the current directory).

    A folder is a workspace if it holds ``trivet.toml``; otherwise its ``.trivet/``
    child, then each parent folder, is tried, as git finds ``.git``.
    """
    env = os.environ.get("TRIVET_WORKSPACE")
    if start is None and env:
        start = Path(env)
        if not (start / CONFIG_FILE).is_file():
            raise NotFound(
                f"TRIVET_WORKSPACE points at {str(start)!r}, which holds no {CONFIG_FILE}.",
                hint=f"run `trivet init {start}` or fix the variable",
            )
        return start.resolve()
    here = (start or Path.cwd()).resolve()
    if start is not None:
        for candidate in (here, here / DEFAULT_DIR):
            if (candidate / CONFIG_FILE).is_file():
                return candidate
        raise NotFound(
            f"{str(here)!r} is not a trivet workspace (no {CONFIG_FILE}).",
            hint=f"create one with `trivet init {start}`",
        )
    for folder in (here, *here.parents):
        for candidate in (folder, folder / DEFAULT_DIR):
            if (candidate / CONFIG_FILE).is_file():
                return candidate
    raise NotFound(
        f"No trivet workspace in {str(here)!r} or its parents.",
        hint="create one with `trivet init`, or set TRIVET_WORKSPACE",
    )


def _resolve(workspace: Path, value: str) -> str:
    """Make a relative path absolute against the workspace; leave URLs alone."""
    if "://" in value:
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
            rel = value.removeprefix("sqlite:///")
            if rel and rel != ":memory:":
                return "sqlite:///" + str((workspace / rel).resolve())
        return value
    return str((workspace / value).resolve())


def load_settings(workspace: str | Path | None = None, **overrides: Any) -> Settings:
    """Read a workspace's settings with the documented precedence.

    Args:
        workspace: the workspace folder; default: ``TRIVET_WORKSPACE`` or the nearest
            workspace above the current directory.
        **overrides: explicit values for any :class:`Settings` field (None = unset).

    Raises:
        NotFound: there is no workspace there.
        ValidationError: ``trivet.toml`` or a value is malformed.
    """
    root = find_workspace(Path(workspace) if workspace is not None else None)
    path = root / CONFIG_FILE
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{str(path)!r} is not valid TOML: {exc}.") from exc
    known = {f.name for f in fields(Settings)} - {"workspace"}
    unknown = set(overrides) - known
    if unknown:
        raise ValidationError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    values: dict[str, Any] = {}
    for name, (section, key, env) in _SOURCES.items():
        value = overrides.get(name)
        if value is None:
            value = os.environ.get(env)
        if value is None:
            value = config.get(section, {}).get(key)
        if value is not None:
            values[name] = value
    defaults = {
        "catalog_url": "sqlite:///catalog.db",
        "artifacts_url": "artifacts",
        "offline_url": "offline",
        "online_url": "sqlite:///online.db",
    }
    for name, default in defaults.items():
        values[name] = _resolve(root, str(values.get(name) or default))
    return Settings(workspace=root, **values)


def render_config(*, project: str, catalog_url: str | None = None) -> str:
    """Return the text of a new workspace's ``trivet.toml``."""
    catalog = catalog_url or "sqlite:///catalog.db"
    return f"""\
# trivet workspace configuration. Every value can be overridden by a TRIVET_* variable.
# Relative paths are relative to this folder. Never put passwords here: use the
# TRIVET_CATALOG_URL variable or PostgreSQL's own PGPASSWORD / .pgpass instead.

[workspace]
project = "{project}"          # the default project for names like feature groups

[catalog]
url = "{catalog}"              # or postgresql://user@host:5432/dbname

[artifacts]
url = "artifacts"              # or s3://bucket/prefix (with s3_endpoint_url for MinIO & co.)

[featurestore]
offline_url = "offline"        # Delta Lake tables; or s3://bucket/prefix
online_url = "sqlite:///online.db"   # or redis://host:6379/0

[pipelines]
executor = "local"             # or dask://scheduler-host:8786
"""
