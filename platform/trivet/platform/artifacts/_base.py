"""The blob store protocol: where the artifact store keeps its bytes.

A blob store maps *keys* to immutable byte strings. Keys are made by the artifact
store, never taken from a user: ``sha256/<first two hex digits>/<digest>`` for
content and ``tmp/<random>`` for staging files. A store writes atomically: a reader
sees either no blob or the whole blob under its key, never a part of one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trivet.errors import NotFound

__all__ = [
    "BLOB_PREFIX",
    "STAGING_PREFIX",
    "BlobInfo",
    "BlobNotFound",
    "BlobReader",
    "BlobStore",
    "blob_key",
    "check_key",
    "digest_of_key",
]

BLOB_PREFIX = "sha256/"
STAGING_PREFIX = "tmp/"
_KEY = re.compile(r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*")
_BLOB_KEY = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{64})")


def blob_key(digest: str) -> str:
    """Return the key of the blob whose sha256 is ``digest``.

    >>> blob_key("ab" + "0" * 62)[:13]
    'sha256/ab/ab0'
    """
    return f"{BLOB_PREFIX}{digest[:2]}/{digest}"


def digest_of_key(key: str) -> str | None:
    """Return the digest a blob key names, or None for any other key."""
    match = _BLOB_KEY.fullmatch(key)
    if match is None or match.group(2)[:2] != match.group(1):
        return None
    return match.group(2)


def check_key(key: str) -> str:
    """Return ``key`` if it is a well-formed internal key; a bad one is a bug."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"bad blob key {key!r}")
    return key


@dataclass(frozen=True, kw_only=True)
class BlobInfo:
    """A stored blob (or staging file): its key, its size and when it was last written."""

    key: str
    size: int
    mtime: dt.datetime


class BlobNotFound(NotFound):
    """No blob is stored under the key (the artifact store reports this as a lost blob)."""


class BlobReader(Protocol):
    """A readable binary stream as a blob store returns it."""

    def read(self, size: int, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` at the end."""
        ...

    def close(self) -> None:
        """Release the stream."""
        ...


class BlobStore(Protocol):
    """Immutable blobs under internal keys, written atomically.

    Implementations raise :class:`trivet.errors.BackendError` (from the original
    exception) when the filesystem or object store fails, and :class:`BlobNotFound`
    when :meth:`open` finds no blob.
    """

    url: str
    """Where the blobs live, for messages (no credentials)."""

    staging: Path | None
    """A local folder on the same device as the blobs, for staging files that
    :meth:`put` can then move into place; None: the system's temporary folder."""

    def put(self, key: str, source: bytes | Path) -> None:
        """Store ``source`` (bytes, or a finished local file) under ``key`` atomically.

        A file may be moved into place; the caller removes it if it still exists.
        Putting an existing key again replaces it (with the same content).
        """
        ...

    def open(self, key: str) -> BlobReader:
        """Return a stream over the blob (read it in chunks; close it)."""
        ...

    def info(self, key: str) -> BlobInfo | None:
        """Return the blob's size and modification time, or None if there is none."""
        ...

    def delete(self, key: str) -> None:
        """Delete the blob; a missing one is not an error."""
        ...

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Yield every blob whose key starts with the folder ``prefix`` (e.g. ``sha256/``)."""
        ...
