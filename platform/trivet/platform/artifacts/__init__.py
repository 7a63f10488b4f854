"""The artifact store: content-addressed (sha256) bytes, files, folders, DataFrames, models.

``session.artifacts`` is an :class:`ArtifactStore`; its bytes live in a
:class:`BlobStore` — a local folder (:class:`LocalBlobStore`) or S3-compatible
storage (:class:`S3BlobStore`) — chosen by the workspace's ``artifacts_url``.
"""

from trivet.platform.artifacts._base import BlobInfo, BlobStore
from trivet.platform.artifacts._entries import ArtifactRef, Kind
from trivet.platform.artifacts._gc import GcReport
from trivet.platform.artifacts.local import LocalBlobStore
from trivet.platform.artifacts.s3 import S3BlobStore
from trivet.platform.artifacts.store import ArtifactStore, open_blob_store

__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "BlobInfo",
    "BlobStore",
    "GcReport",
    "Kind",
    "LocalBlobStore",
    "S3BlobStore",
    "open_blob_store",
]
