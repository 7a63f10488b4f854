"""Scoring over HTTP: ``POST /v1/projects/{project}/models/{name}/predict``."""

from __future__ import annotations

from fastapi import APIRouter

from trivet.platform.http import ERRORS

__all__ = ["router"]

router = APIRouter(responses=ERRORS)
