"""The catalog: one SQL database (SQLite by default, PostgreSQL by URL) for all metadata."""

from __future__ import annotations

from trivet.platform.catalog._catalog import Catalog, now_utc
from trivet.platform.catalog.schema import metadata

__all__ = ["Catalog", "metadata", "now_utc"]
