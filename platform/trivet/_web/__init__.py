"""The web console: server-rendered pages over the REST API's sessions (no external assets)."""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["mount"]


def mount(app: FastAPI) -> None:
    """Add the console's pages to ``app``."""
