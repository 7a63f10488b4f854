"""Blobs in S3 or an S3-compatible object store (MinIO, Ceph, moto), via ``pyarrow.fs``.

Credentials come from the standard AWS sources (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``~/.aws``, instance metadata);
never from the URL.

pyarrow completes an upload even when the code writing it fails midway
(apache/arrow#40502 asks for a way to abort), which would publish a truncated object
under its content key. So a blob is uploaded under a staging key (``tmp/<random>.part``)
and then moved into place (S3 copies server-side), and a failed upload's staging object
is deleted (gc removes any left by a crash). S3 copies at most 5 GiB in one request, so
a larger blob is uploaded in place instead, and deleted again if its upload fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trivet.errors import BackendError, ValidationError
from trivet.platform.artifacts._base import (
    STAGING_PREFIX,
    BlobInfo,
    BlobNotFound,
    BlobReader,
    check_key,
)

__all__ = ["S3BlobStore", "parse_s3_url"]

_CHUNK = 8 << 20
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into the bucket and the prefix (may be empty).

    >>> parse_s3_url("s3://models/team-a/artifacts/")
    ('models', 'team-a/artifacts')
    """
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    hint = "use s3://bucket or s3://bucket/prefix; credentials go in AWS_* variables"
    if not _BUCKET.fullmatch(bucket):
        raise ValidationError(f"The S3 URL {url!r} does not name a valid bucket.", hint=hint)
    if prefix and not all(_PREFIX_SEGMENT.fullmatch(s) for s in prefix.split("/")):
        raise ValidationError(f"The S3 URL {url!r} has an invalid prefix {prefix!r}.", hint=hint)
    return bucket, prefix


def _mtime(value: Any) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime.now(dt.UTC)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class S3BlobStore:
    """Blobs as objects ``<prefix>/sha256/ab/<digest>`` in one bucket.

    Args:
        filesystem: a ``pyarrow.fs.FileSystem`` (an ``S3FileSystem``; any pyarrow
            filesystem works, which the contract tests use).
        base: ``bucket/prefix`` (no leading or trailing slash).
        url: how to show the store in messages, e.g. ``s3://bucket/prefix``.
    """

    staging: Path | None = None
    max_copy_size: int = 5 << 30
    """The largest blob uploaded under a staging key and moved into place: S3's limit
    for copying an object in one request (what ``move`` does)."""

    def __init__(self, filesystem: Any, base: str, *, url: str) -> None:
        self._fs = filesystem
        self._base = base.strip("/")
        self.url = url

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3BlobStore:
        """Connect to ``s3://bucket/prefix`` (``endpoint_url`` for a non-AWS endpoint)."""
        from pyarrow import fs

        bucket, prefix = parse_s3_url(url)
        options: dict[str, Any] = {"connect_timeout": 10.0, "request_timeout": 60.0}
        if endpoint_url:
            options["endpoint_override"] = endpoint_url
            if endpoint_url.startswith("http://"):
                options["scheme"] = "http"
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        try:
            if region is None and not endpoint_url:
                region = fs.resolve_s3_region(bucket)
            if region is not None:
                options["region"] = region
            filesystem = fs.S3FileSystem(**options)
        except OSError as exc:
            raise BackendError(
                f"Cannot connect to the artifact store {url!r}: {_first_line(exc)}.",
                hint="check the bucket name, the endpoint and the AWS_* credentials",
            ) from exc
        base = f"{bucket}/{prefix}" if prefix else bucket
        return cls(filesystem, base, url=f"s3://{base}")

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self._base}/{check_key(key)}"

    def _fail(self, what: str, exc: OSError) -> BackendError:
        return BackendError(
            f"The artifact store {self.url!r} failed to {what}: {_first_line(exc)}.",
            hint="check that the bucket exists, the endpoint is reachable and the AWS_* "
            "credentials may read and write it",
        )

    def put(self, key: str, source: bytes | Path) -> None:
        """Upload ``source`` to ``key``: the object appears whole, or not at all.

        See the module docstring: the upload goes to a staging key, then is moved.
        """
        path = self._path(key)
        try:
            size = len(source) if isinstance(source, bytes) else source.stat().st_size
        except OSError as exc:
            raise self._fail(f"write {key!r}", exc) from exc
        if size > self.max_copy_size:  # too large to move: upload in place
            self._upload(path, source, key=key, size=size, keep_whole=True)
            return
        staging = self._path(f"{STAGING_PREFIX}{uuid.uuid4().hex}.part")
        self._upload(staging, source, key=key, size=size, keep_whole=False)
        try:
            self._fs.move(staging, path)
        except OSError as exc:
            self._discard(staging)
            raise self._fail(f"write {key!r}", exc) from exc

    def _upload(
        self, path: str, source: bytes | Path, *, key: str, size: int, keep_whole: bool
    ) -> None:
        """Write ``source`` to the object ``path``; remove what a failed upload left."""
        try:
            with self._fs.open_output_stream(path) as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    with source.open("rb") as src:
                        while chunk := src.read(_CHUNK):
                            out.write(chunk)
        except BaseException as exc:  # also KeyboardInterrupt: the stream completed anyway
            self._discard(path, unless_size=size if keep_whole else None)
            if isinstance(exc, OSError):
                raise self._fail(f"write {key!r}", exc) from exc
            raise

    def _discard(self, path: str, *, unless_size: int | None = None) -> None:
        """Delete a failed upload's object (best effort), unless it is whole."""
        from pyarrow import fs

        with contextlib.suppress(OSError):
            if unless_size is not None:
                found = self._fs.get_file_info(path)
                if found.type == fs.FileType.File and found.size == unless_size:
                    return  # whole: the failure came after the last byte, or a racing put
            self._fs.delete_file(path)

    def open(self, key: str) -> BlobReader:
        """Return a stream over the object."""
        try:
            stream: BlobReader = self._fs.open_input_stream(self._path(key))
        except FileNotFoundError as exc:
            raise BlobNotFound(f"No blob {key!r} in {self.url!r}.") from exc
        except OSError as exc:
            raise self._fail(f"read {key!r}", exc) from exc
        return _Reader(stream, self, key)

    def info(self, key: str) -> BlobInfo | None:
        """Return the object's size and last-modified time, or None."""
        from pyarrow import fs

        try:
            found = self._fs.get_file_info(self._path(key))
        except OSError as exc:
            raise self._fail(f"inspect {key!r}", exc) from exc
        if found.type != fs.FileType.File:
            return None
        return BlobInfo(key=key, size=int(found.size), mtime=_mtime(found.mtime))

    def delete(self, key: str) -> None:
        """Delete the object if it exists."""
        try:
            self._fs.delete_file(self._path(key))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail(f"delete {key!r}", exc) from exc

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Yield the objects under the folder ``prefix``."""
        from pyarrow import fs

        selector = fs.FileSelector(
            self._path(prefix.rstrip("/")), recursive=True, allow_not_found=True
        )
        try:
            found = self._fs.get_file_info(selector)
        except OSError as exc:
            raise self._fail(f"list {prefix!r}", exc) from exc
        start = len(self._base) + 1
        for item in sorted(found, key=lambda i: str(i.path)):
            if item.type == fs.FileType.File:
                yield BlobInfo(key=item.path[start:], size=int(item.size), mtime=_mtime(item.mtime))


class _Reader:
    """A pyarrow input stream whose failures surface as BackendError."""

    def __init__(self, stream: BlobReader, store: S3BlobStore, key: str) -> None:
        self._stream = stream
        self._store = store
        self._key = key

    def read(self, size: int, /) -> bytes:
        try:
            return self._stream.read(size)
        except OSError as exc:
            raise self._store._fail(f"read {self._key!r}", exc) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.close()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
