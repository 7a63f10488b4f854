"""The offline store: every version of every record, as Delta Lake tables."""

from __future__ import annotations

from trivet.featurestore.offline.delta import AppendResult, DeltaOfflineStore

__all__ = ["AppendResult", "DeltaOfflineStore"]
