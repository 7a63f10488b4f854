"""The clarify's HTTP routes (mounted by :mod:`trivet.server`)."""

from __future__ import annotations

from fastapi import APIRouter

from trivet.platform.http import ERRORS

__all__ = ["router"]

router = APIRouter(responses=ERRORS)
