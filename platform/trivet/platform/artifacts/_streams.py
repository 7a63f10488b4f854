"""Hashing while copying: staging files on the way in, verified reads on the way out."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from trivet.errors import IntegrityError
from trivet.platform.artifacts._base import BlobStore, blob_key
from trivet.platform.artifacts.local import new_temp_file

__all__ = [
    "CHUNK",
    "ReadsInto",
    "corrupt",
    "hash_file",
    "read_verified",
    "stage_copy",
    "staging_file",
    "write_verified",
]

CHUNK = 1 << 20  # streaming copies: memory stays small
_WHOLE_CHUNK = 8 << 20  # reads that end in memory anyway: fewer, larger reads


class ReadsInto(Protocol):
    """A binary stream that can fill a buffer (a raw or buffered file)."""

    def readinto(self, buffer: memoryview, /) -> int | None:
        """Fill ``buffer``; return how many bytes were read."""
        ...


@contextlib.contextmanager
def staging_file(blobs: BlobStore) -> Iterator[tuple[Path, BinaryIO]]:
    """Yield a new temporary file (path, open handle) where ``blobs`` can move it from.

    The file is removed on exit unless it was moved away meanwhile.
    """
    if blobs.staging is not None:
        path, handle = new_temp_file(blobs.staging)
    else:
        fd, name = tempfile.mkstemp(prefix="trivet-", suffix=".part")
        path, handle = Path(name), os.fdopen(fd, "wb")
    try:
        yield path, handle
    finally:
        handle.close()
        path.unlink(missing_ok=True)


def stage_copy(source: ReadsInto, dest: BinaryIO) -> tuple[str, int]:
    """Copy ``source`` into ``dest`` in chunks, hashing on the way; return (sha256, size)."""
    hasher = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = 0
    while n := source.readinto(view):
        chunk = view[:n]
        hasher.update(chunk)
        dest.write(chunk)
        size += n
    dest.flush()
    return hasher.hexdigest(), size


def hash_file(path: Path) -> tuple[str, int]:
    """Return the sha256 and size of a local file we wrote ourselves."""
    hasher = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(view):
            hasher.update(view[:n])
            size += n
    return hasher.hexdigest(), size


def corrupt(digest: str, actual: str, url: str) -> IntegrityError:
    """Return the error for a blob whose bytes do not hash to its digest."""
    return IntegrityError(
        f"The artifact {digest} is corrupt: its stored bytes hash to {actual}.",
        hint=f"the blob {blob_key(digest)!r} in {url!r} was altered; restore it from a "
        "backup, or delete that blob and put the same content again",
    )


def read_verified(blobs: BlobStore, digest: str) -> bytes:
    """Return the blob's bytes after checking they hash to ``digest``.

    Raises:
        BlobNotFound: there is no such blob.
        IntegrityError: the bytes do not match.
    """
    hasher = hashlib.sha256()
    parts: list[bytes] = []
    reader = blobs.open(blob_key(digest))
    try:
        while chunk := reader.read(_WHOLE_CHUNK):
            hasher.update(chunk)
            parts.append(chunk)
    finally:
        reader.close()
    actual = hasher.hexdigest()
    if actual != digest:
        raise corrupt(digest, actual, blobs.url)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def write_verified(blobs: BlobStore, digest: str, dest: BinaryIO) -> int:
    """Stream the blob into ``dest`` while hashing; return its size.

    The caller must discard ``dest`` when this raises: it may hold a partial or
    corrupt copy.

    Raises:
        BlobNotFound: there is no such blob.
        IntegrityError: the bytes do not match.
    """
    hasher = hashlib.sha256()
    size = 0
    reader = blobs.open(blob_key(digest))
    try:
        while chunk := reader.read(CHUNK):
            hasher.update(chunk)
            dest.write(chunk)
            size += len(chunk)
    finally:
        reader.close()
    dest.flush()
    actual = hasher.hexdigest()
    if actual != digest:
        raise corrupt(digest, actual, blobs.url)
    return size
