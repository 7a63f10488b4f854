"""Blobs in a local folder, written atomically (temporary file, fsync, rename)."""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from trivet.errors import BackendError
from trivet.platform.artifacts._base import (
    STAGING_PREFIX,
    BlobInfo,
    BlobNotFound,
    check_key,
)

__all__ = ["LocalBlobStore", "new_temp_file"]

_WRITE_BITS = 0o222


def new_temp_file(folder: Path, *, prefix: str = "") -> tuple[Path, BinaryIO]:
    """Create a new, empty file with a random name in ``folder``; return it open for writing."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}{uuid.uuid4().hex}.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    return path, os.fdopen(fd, "wb")


def _fsync_dir(folder: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows cannot fsync folders
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_read_only(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    path.chmod(mode & ~_WRITE_BITS)


class LocalBlobStore:
    """Blobs as files under ``root``: ``root/sha256/ab/<digest>``.

    A blob is written to a temporary file under ``root/tmp/`` (the same device),
    flushed to disk, made read-only and renamed into place, so a crash never leaves
    a partial blob under its final key; leftovers in ``tmp/`` are removed by the
    artifact store's garbage collection.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)
        self.staging: Path | None = self.root / STAGING_PREFIX.rstrip("/")

    def __repr__(self) -> str:
        return f"LocalBlobStore({self.url!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _fail(self, what: str, exc: OSError) -> BackendError:
        return BackendError(
            f"The artifact store {self.url!r} failed to {what}: "
            f"{exc.strerror or type(exc).__name__}.",
            hint="check that the folder exists, is writable and that the disk is not full",
        )

    def put(self, key: str, source: bytes | Path) -> None:
        """Store ``source`` under ``key`` atomically (see the class docstring)."""
        dest = self._path(key)
        assert self.staging is not None
        tmp: Path | None = None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, bytes):
                tmp, out = new_temp_file(self.staging)
                with out:
                    out.write(source)
                    out.flush()
                    os.fsync(out.fileno())
                staged = tmp
            else:
                _fsync_file(source)
                staged = source
            _make_read_only(staged)
            try:
                staged.replace(dest)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                tmp, out = new_temp_file(self.staging)  # another device: copy, then rename
                with out, staged.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                    out.flush()
                    os.fsync(out.fileno())
                _make_read_only(tmp)
                tmp.replace(dest)
            tmp = None
            _fsync_dir(dest.parent)
        except OSError as exc:
            raise self._fail(f"write {key!r}", exc) from exc
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    def open(self, key: str) -> BinaryIO:
        """Return the blob's file, open for reading."""
        path = self._path(key)
        try:
            return path.open("rb", buffering=0)
        except FileNotFoundError as exc:
            raise BlobNotFound(f"No blob {key!r} in {self.url!r}.") from exc
        except OSError as exc:
            raise self._fail(f"read {key!r}", exc) from exc

    def info(self, key: str) -> BlobInfo | None:
        """Return the blob's size and modification time, or None."""
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail(f"inspect {key!r}", exc) from exc
        return BlobInfo(
            key=key, size=st.st_size, mtime=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
        )

    def delete(self, key: str) -> None:
        """Delete the blob if it exists."""
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise self._fail(f"delete {key!r}", exc) from exc

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Yield the files under the folder ``prefix``."""
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return

        def fail(exc: OSError) -> None:
            if not isinstance(exc, FileNotFoundError):  # a folder removed meanwhile is fine
                raise exc

        try:
            for folder, dirs, files in os.walk(base, onerror=fail):
                dirs.sort()
                for name in sorted(files):
                    path = Path(folder) / name
                    try:
                        st = path.stat()
                    except FileNotFoundError:
                        continue  # deleted meanwhile
                    yield BlobInfo(
                        key=path.relative_to(self.root).as_posix(),
                        size=st.st_size,
                        mtime=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
                    )
        except OSError as exc:
            raise self._fail(f"list {prefix!r}", exc) from exc
