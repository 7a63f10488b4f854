"""The artifact store: content-addressed bytes, files, folders, DataFrames and models.

Content lives in a :class:`~trivet.platform.artifacts.BlobStore` under its sha256;
the catalog holds one ``artifacts`` row per content (kind, size, media type,
metadata) and one ``artifact_entries`` row per folder that holds it. Folders are
resource paths (``<project>/artifacts``, ``<project>/models/credit``, ...), so the
usual grants apply: ``artifact:write`` on a folder to put into it, ``artifact:read``
on some folder holding a digest to read it. Every read checks the bytes against the
digest.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import functools
import hashlib
import mimetypes
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import sqlalchemy as sa

from trivet.errors import AlreadyExists, BackendError, IntegrityError, NotFound, ValidationError
from trivet.platform.artifacts import _dirs, _models
from trivet.platform.artifacts._base import BlobNotFound, BlobStore, blob_key
from trivet.platform.artifacts._entries import (
    ArtifactRef,
    Kind,
    held_among,
    readable,
    record_put,
    ref_query,
    resolve,
    to_ref,
)
from trivet.platform.artifacts._gc import GcReport, collect
from trivet.platform.artifacts._streams import (
    hash_file,
    read_verified,
    stage_copy,
    staging_file,
    write_verified,
)
from trivet.platform.artifacts.local import LocalBlobStore, new_temp_file
from trivet.platform.catalog.schema import artifact_entries, artifacts
from trivet.platform.names import check_resource

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped, unused-ignore]
    import pyarrow

    from trivet.platform.session import Session

__all__ = ["ArtifactRef", "ArtifactStore", "Kind", "open_blob_store"]

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_MAX_LABEL = 256


def open_blob_store(url: str, *, s3_endpoint_url: str | None = None) -> BlobStore:
    """Return the blob store for an ``artifacts_url``: a local folder or ``s3://...``."""
    if url.startswith("s3://"):
        from trivet.platform.artifacts.s3 import S3BlobStore

        return S3BlobStore.from_url(url, endpoint_url=s3_endpoint_url)
    if url.startswith("file://"):
        url = url.removeprefix("file://")
    if "://" in url or not url:
        raise ValidationError(
            f"The artifacts URL {url!r} is not supported.",
            hint="use a local folder or s3://bucket/prefix",
        )
    return LocalBlobStore(Path(url))


def _check_label(label: object) -> str:
    if not isinstance(label, str):
        raise ValidationError(f"A label must be a string, got {type(label).__name__}.")
    if len(label) > _MAX_LABEL or any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise ValidationError(
            f"The label {label[:80]!r} is not valid.",
            hint=f"use at most {_MAX_LABEL} characters and no control characters",
        )
    return label


def _label_from(name: str) -> str:
    """Return a file's name as a default label (control characters dropped)."""
    return "".join(c for c in name if ord(c) >= 32 and ord(c) != 127)[:_MAX_LABEL]


def _check_media_type(media_type: object) -> str:
    if (
        not isinstance(media_type, str)
        or len(media_type) > 128
        or not _MEDIA_TYPE.fullmatch(media_type)
    ):
        raise ValidationError(
            f"The media type {str(media_type)[:80]!r} is not valid.",
            hint="use type/subtype, e.g. 'text/csv' or 'application/json'",
        )
    return media_type


def _user_file_error(path: Path, exc: OSError, *, folder_hint: str) -> Exception:
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"The file {str(path)!r} does not exist.")
    if isinstance(exc, IsADirectoryError):
        return ValidationError(f"{str(path)!r} is a folder.", hint=folder_hint)
    return ValidationError(
        f"The file {str(path)!r} cannot be read: {exc.strerror or type(exc).__name__}."
    )


class ArtifactStore:
    """Content-addressed storage bound to a session (``session.artifacts``).

    Args:
        session: whose permissions apply and whose name goes into the catalog.
        blobs: where the bytes go; default: the workspace's ``artifacts_url``.

    Example:
        >>> ref = session.artifacts.put_bytes(b"hello", label="greeting")  # doctest: +SKIP
        >>> session.artifacts.get_bytes(ref.digest)                         # doctest: +SKIP
        b'hello'
    """

    def __init__(self, session: Session, *, blobs: BlobStore | None = None) -> None:
        self._s = session
        self._given_blobs = blobs

    def __repr__(self) -> str:
        url = self._given_blobs.url if self._given_blobs else self._s.settings.artifacts_url
        return f"<ArtifactStore {url!r} principal={self._s.principal.name!r}>"

    @functools.cached_property
    def blobs(self) -> BlobStore:
        """The blob store holding the bytes."""
        if self._given_blobs is not None:
            return self._given_blobs
        settings = self._s.settings
        return open_blob_store(settings.artifacts_url, s3_endpoint_url=settings.s3_endpoint_url)

    # -- putting -------------------------------------------------------------------------
    def put_bytes(
        self,
        data: bytes,
        *,
        folder: str | None = None,
        media_type: str = "application/octet-stream",
        label: str = "",
    ) -> ArtifactRef:
        """Store ``data``; return its reference (the same digest for the same bytes).

        Args:
            data: the bytes.
            folder: the folder to file it in (default ``<project>/artifacts``); needs
                ``artifact:write`` there.
            media_type: e.g. ``text/csv``.
            label: a note kept with the folder's entry.

        Raises:
            PermissionDenied: no ``artifact:write`` on the folder.
            ValidationError: a bad folder, label or media type, or data not bytes.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError(
                f"put_bytes needs bytes, got {type(data).__name__}.",
                hint="encode text first, e.g. text.encode('utf-8'), or use put_file",
            )
        data = bytes(data)
        media_type = _check_media_type(media_type)
        target = self._writable(folder, label)
        digest = hashlib.sha256(data).hexdigest()
        kept = self._store_blob(digest, data, len(data))
        ref = record_put(
            self._s,
            target,
            label,
            digest=digest,
            kind="blob",
            size=len(data),
            media_type=media_type,
        )
        self._restore_kept(kept)
        return ref

    def put_file(
        self,
        path: str | os.PathLike[str],
        *,
        folder: str | None = None,
        media_type: str | None = None,
        label: str = "",
    ) -> ArtifactRef:
        """Store a file's content, streaming it (hashed while copied, never all in memory).

        Args:
            path: the file.
            folder: see :meth:`put_bytes`.
            media_type: default: guessed from the file name.
            label: default: the file's name.

        Raises:
            NotFound: no such file.
            ValidationError: the path is a folder (use :meth:`put_dir`) or unreadable.
        """
        source = Path(path)
        media_type = _check_media_type(
            media_type or mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        )
        target = self._writable(folder, label)
        with self._staged_copy(source) as (staged, digest, size):
            kept = self._store_blob(digest, staged, size)
            ref = record_put(
                self._s,
                target,
                label or _label_from(source.name),
                digest=digest,
                kind="blob",
                size=size,
                media_type=media_type,
                meta={"filename": source.name},
            )
            self._restore_kept(kept)
        return ref

    def put_dir(
        self, path: str | os.PathLike[str], *, folder: str | None = None, label: str = ""
    ) -> ArtifactRef:
        """Store a folder: each file as a blob, plus a manifest whose digest is the folder's.

        Symlinks are followed when they point inside the folder; empty folders are not
        kept.

        Raises:
            NotFound: no such folder.
            ValidationError: not a folder; a symlink leaves it, is broken or loops; an
                entry is not a regular file.
        """
        root = Path(path)
        target = self._writable(folder, label)
        files = _dirs.scan(root)
        with contextlib.ExitStack() as stack:
            members: list[_dirs.Member] = []
            staged: dict[str, Path] = {}
            for rel, real in files:
                copy, digest, size = stack.enter_context(self._staged_copy(real))
                members.append(_dirs.Member(path=rel, digest=digest, size=size))
                staged.setdefault(digest, copy)
            manifest = _dirs.build_manifest(members)
            digest = hashlib.sha256(manifest).hexdigest()
            # Files of a directory that is stored and held already are kept from gc by
            # its row: only missing or truncated ones are written (a re-put repairs a
            # lost file).
            stored = self._is_stored(digest, len(manifest))
            held = set() if stored else held_among(self._s, builtins.list(staged))
            sizes = {m.digest: m.size for m in members}
            kept: dict[str, tuple[bytes | Path, int]] = {}
            for member, copy in staged.items():
                kept |= self._store_blob(member, copy, sizes[member], held=stored or member in held)
            kept |= self._store_blob(digest, manifest, len(manifest), held=stored)
            ref = record_put(
                self._s,
                target,
                label or _label_from(root.name),
                digest=digest,
                kind="dir",
                size=sum(m.size for m in members),
                media_type=_dirs.MEDIA_TYPE,
                meta={
                    "files": len(members),
                    "manifest_size": len(manifest),
                    "format": _dirs.FORMAT,
                },
            )
            self._restore_kept(kept)  # while the staged copies still exist
        return ref

    def put_dataframe(
        self,
        df: pandas.DataFrame | pyarrow.Table,
        *,
        folder: str | None = None,
        label: str = "",
    ) -> ArtifactRef:
        """Store a pandas DataFrame or a pyarrow Table as Parquet (zstd).

        The metadata records the row count and the schema (column names and Arrow types).

        Raises:
            ValidationError: not a DataFrame or Table, or a column Parquet cannot hold.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = _as_table(df)
        target = self._writable(folder, label)
        with staging_file(self.blobs) as (path, handle):
            handle.close()
            try:
                pq.write_table(table, path, compression="zstd")
            except OSError as exc:
                raise BackendError(f"Writing the Parquet file failed: {exc}.") from exc
            except pa.ArrowException as exc:
                raise ValidationError(f"The table cannot be written as Parquet: {exc}.") from exc
            digest, size = hash_file(path)
            kept = self._store_blob(digest, path, size)
            meta = {
                "format": "parquet",
                "rows": int(table.num_rows),
                "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            }
            ref = record_put(
                self._s,
                target,
                label,
                digest=digest,
                kind="dataframe",
                size=size,
                media_type=PARQUET_MEDIA_TYPE,
                meta=meta,
            )
            self._restore_kept(kept)
        return ref

    def put_model(
        self,
        model: Any,
        *,
        folder: str | None = None,
        flavor: Literal["sklearn", "pickle"] | None = None,
        trust_pickle: bool = False,
        trusted_types: Iterable[str] = (),
        label: str = "",
    ) -> ArtifactRef:
        """Store a fitted model: scikit-learn with skops (default), or a pickle on request.

        The metadata records the flavor, the class, library versions, a signature
        (``n_features_in``, ``feature_names_in``, ``classes`` where the model has them)
        and, for skops, the names skops reports (``skops_types``) and those among them
        that are not trusted by default (``needs_trust``, for information: loading
        never trusts them from the catalog).

        Args:
            model: a fitted estimator (a Pipeline too).
            folder: see :meth:`put_bytes`.
            flavor: ``"sklearn"`` (skops; the default for estimators) or ``"pickle"``.
            trust_pickle: must be True for ``flavor="pickle"``: loading a pickle runs code.
            trusted_types: names of functions and types the model holds that are not
                on the allow-list (see :mod:`trivet.platform.artifacts._models`), e.g.
                the function of a ``FunctionTransformer``; you vouch that calling them
                with any arguments is safe. Whoever loads the model must name them too.
            label: see :meth:`put_bytes`.

        Raises:
            ValidationError: pickle without ``trust_pickle=True``, a model skops cannot
                store, or one that needs functions or types that are neither allowed
                nor in ``trusted_types`` (or that are never trusted).
        """
        resolved = _models.check_request(model, flavor=flavor, trust_pickle=trust_pickle)
        trusted = _models.check_trusted_types(trusted_types)
        if trusted and resolved != "sklearn":
            raise ValidationError(
                "trusted_types applies to scikit-learn models stored with skops, not to pickles.",
                hint="leave trusted_types out",
            )
        target = self._writable(folder, label)
        with staging_file(self.blobs) as (path, handle):
            handle.close()
            media_type, meta = _models.dump_model(
                model, path, flavor=resolved, trusted_types=trusted
            )
            digest, size = hash_file(path)
            kept = self._store_blob(digest, path, size)
            ref = record_put(
                self._s,
                target,
                label,
                digest=digest,
                kind="model",
                size=size,
                media_type=media_type,
                meta=meta,
            )
            self._restore_kept(kept)
        return ref

    # -- getting -------------------------------------------------------------------------
    def describe(self, digest: str) -> ArtifactRef:
        """Return an artifact's reference, as the first folder you may read holds it.

        Raises:
            ValidationError: a malformed digest or an ambiguous prefix.
            NotFound: no folder holds the digest.
            PermissionDenied: you may read none of the folders that hold it (audited).
        """
        return readable(self._s, digest)

    def get_bytes(self, digest: str) -> bytes:
        """Return an artifact's bytes (a directory's: its manifest), verified.

        Raises:
            IntegrityError: the stored bytes do not match the digest, or are lost.
            (and see :meth:`describe`)
        """
        return self._read(readable(self._s, digest).digest)

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Write an artifact's bytes to the file ``dest`` (replaced if present); return it.

        The bytes are verified before ``dest`` appears; a corrupt blob leaves no file.
        """
        ref = readable(self._s, digest)
        out_path = Path(dest)
        if out_path.is_dir():
            raise ValidationError(
                f"{str(out_path)!r} is a folder.",
                hint="give the path of the file to write, e.g. folder/name.csv",
            )
        tmp: Path | None = None
        try:
            tmp, handle = new_temp_file(out_path.parent, prefix=".trivet-")
            with handle:
                self._write_verified(ref.digest, handle)
            tmp.replace(out_path)
            tmp = None
        except OSError as exc:
            raise BackendError(f"Writing {str(out_path)!r} failed: {exc.strerror}.") from exc
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        return out_path

    def get_dir(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Recreate a directory artifact at ``dest`` (absent or empty); return it.

        Every file is verified; on any error nothing is left at ``dest``.

        Raises:
            AlreadyExists: ``dest`` exists and is not an empty folder.
            ValidationError: the artifact is not a directory.
        """
        ref = readable(self._s, digest)
        if ref.kind != "dir":
            raise ValidationError(
                f"The artifact {ref.digest} is a {ref.kind}, not a directory.",
                hint="use get_file or get_bytes",
            )
        members = _dirs.parse_manifest(self._read(ref.digest), ref.digest)
        out_dir = Path(dest)
        if not out_dir.name:  # "." or "/": name the folder itself
            out_dir = out_dir.resolve()
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise AlreadyExists(
                f"{str(out_dir)!r} exists and is not an empty folder.",
                hint="choose a new folder, or empty that one",
            )
        work = out_dir.parent / f".{out_dir.name}.trivet-{uuid.uuid4().hex}.part"
        try:
            work.mkdir(parents=True)
            for member in members:
                path = _dirs.target(work, member.path)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("xb") as handle:
                    self._write_verified(member.digest, handle, within=ref.digest)
            if out_dir.exists():
                out_dir.rmdir()
            work.replace(out_dir)
        except OSError as exc:
            raise BackendError(f"Writing {str(out_dir)!r} failed: {exc.strerror}.") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return out_dir

    def get_dataframe(self, digest: str) -> pandas.DataFrame:
        """Return a stored DataFrame (or any stored Parquet file) as a pandas DataFrame.

        Raises:
            ValidationError: the artifact is not Parquet.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        ref = readable(self._s, digest)
        if ref.kind not in ("dataframe", "blob"):
            raise ValidationError(f"The artifact {ref.digest} is a {ref.kind}, not a DataFrame.")
        data = self._read(ref.digest)
        try:
            table = pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(
                f"The artifact {ref.digest} is not a Parquet file.",
                hint="read it with get_bytes or get_file",
            ) from exc
        return table.to_pandas()

    def load_model(
        self, digest: str, *, trust_pickle: bool = False, trusted_types: Iterable[str] = ()
    ) -> Any:
        """Load a stored model.

        A skops model is loaded trusting the allow-list (see
        :mod:`trivet.platform.artifacts._models`) and ``trusted_types``: what it needs
        is read from its verified bytes, and nothing is trusted because whoever stored
        it vouched for it. A pickle is loaded only with ``trust_pickle=True``, and only
        after its bytes were checked against the digest the catalog holds.

        Args:
            digest: the model's digest (or a unique prefix).
            trust_pickle: allow loading a pickle (it runs code from whoever stored it).
            trusted_types: functions and types beyond the allow-list that you trust
                (the model's ``meta["needs_trust"]`` says which it was stored with).

        Raises:
            ValidationError: not a model; a pickle without ``trust_pickle=True``; a
                skops model that needs types you did not trust.
            IntegrityError: the bytes do not match the digest, or cannot be loaded.
        """
        trusted = _models.check_trusted_types(trusted_types)
        ref = readable(self._s, digest)
        if ref.kind != "model":
            raise ValidationError(
                f"The artifact {ref.digest} is a {ref.kind}, not a model.",
                hint="store models with put_model",
            )
        _models.check_load(ref.meta, digest=ref.digest, trust_pickle=trust_pickle)
        data = self._read(ref.digest)
        return _models.load_model_bytes(
            data, ref.meta, digest=ref.digest, trust_pickle=trust_pickle, trusted_types=trusted
        )

    def _load_served_model(self, digest: str) -> Any:
        """Load a model for the registry's serving path, without ``artifact:read``.

        Only :meth:`ModelRegistry.load_servable` calls this, after checking
        ``model:predict`` on the version that holds ``digest``: the model runs on the
        server and its bytes never reach the caller. The bytes are verified against the
        digest and the skops allow-list applies as for :meth:`load_model` (a pickle is
        never loaded this way).
        """
        with self._s.catalog.read() as conn:
            row = conn.execute(ref_query().where(artifacts.c.digest == digest)).first()
        if row is None:
            raise NotFound(f"There is no artifact {digest}.")
        ref = to_ref(row)
        _models.check_load(ref.meta, digest=ref.digest, trust_pickle=False)
        data = self._read(ref.digest)
        return _models.load_model_bytes(
            data, ref.meta, digest=ref.digest, trust_pickle=False, trusted_types=frozenset()
        )

    # -- managing ------------------------------------------------------------------------
    def unlink(self, digest: str, *, folder: str) -> None:
        """Remove ``folder``'s entry for ``digest`` (gc later frees what nobody holds).

        Raises:
            NotFound: the folder holds no such artifact.
            PermissionDenied: no ``artifact:write`` on the folder.
        """
        resolved = resolve(self._s, digest)
        check_resource(folder)
        self._s.require("artifact:write", folder)
        with self._s.catalog.write() as conn:
            result = conn.execute(
                sa.delete(artifact_entries).where(
                    artifact_entries.c.folder == folder, artifact_entries.c.digest == resolved
                )
            )
            if result.rowcount == 0:
                raise NotFound(
                    f"The folder {folder!r} holds no artifact {resolved}.",
                    hint=f"see what it holds with `trivet artifacts list {folder}`",
                )
            self._s.record(
                conn, action="artifact:unlink", resource=folder, detail={"digest": resolved}
            )

    def gc(self, *, grace: dt.timedelta = dt.timedelta(hours=1), dry_run: bool = False) -> GcReport:
        """Delete what nobody needs: unheld rows, unneeded blobs, stale staging files.

        A row goes when no folder holds it and no model version references it; a blob
        goes when no remaining row (or directory of one) needs it. Only things older
        than ``grace`` go, so puts in flight are safe. Needs ``grant:manage`` on
        ``_workspace``.

        Raises:
            IntegrityError: a directory's manifest is lost or corrupt (nothing deleted).
        """
        if not isinstance(grace, dt.timedelta) or grace < dt.timedelta(0):
            raise ValidationError(f"grace must be a non-negative timedelta, not {grace!r}.")
        self._s.require("grant:manage", "_workspace")
        return collect(self._s, self.blobs, grace=grace, dry_run=dry_run)

    def list(self, folder: str | None = None) -> builtins.list[ArtifactRef]:
        """Return the entries you may read in ``folder`` and below it (default: all).

        Entries are ordered by folder, then by time.

        Raises:
            PermissionDenied: a ``folder`` was given that you may not read and that
                shows you nothing.
        """
        query = ref_query()
        if folder is not None:
            check_resource(folder)
            query = query.where(
                sa.or_(
                    artifact_entries.c.folder == folder,
                    artifact_entries.c.folder.startswith(folder + "/", autoescape=True),
                )
            )
        query = query.order_by(
            artifact_entries.c.folder, artifact_entries.c.created_at, artifact_entries.c.digest
        )
        with self._s.catalog.read() as conn:
            rows = conn.execute(query).all()
        refs = [to_ref(r) for r in rows if self._s.can("artifact:read", r.folder)]
        if folder is not None and not refs and not self._s.can("artifact:read", folder):
            self._s.require("artifact:read", folder)
        return refs

    # -- internals -----------------------------------------------------------------------
    def _writable(self, folder: str | None, label: str) -> str:
        target = check_resource(folder if folder is not None else f"{self._s.project}/artifacts")
        _check_label(label)
        self._s.require("artifact:write", target)
        return target

    @contextlib.contextmanager
    def _staged_copy(self, source: Path) -> Iterator[tuple[Path, str, int]]:
        """Copy a user's file into staging while hashing it; yield (copy, digest, size)."""
        try:
            reader = source.open("rb", buffering=0)
        except OSError as exc:
            raise _user_file_error(source, exc, folder_hint="store a folder with put_dir") from exc
        with staging_file(self.blobs) as (path, handle):
            with reader:
                try:
                    digest, size = stage_copy(reader, handle)
                    handle.close()
                except OSError as exc:
                    raise BackendError(
                        f"Copying {str(source)!r} into the artifact store failed: {exc.strerror}.",
                        hint="check free disk space and that the file is readable",
                    ) from exc
            yield path, digest, size

    def _is_stored(self, digest: str, size: int) -> bool:
        """Return whether the blob exists with its size and its digest is held."""
        info = self.blobs.info(blob_key(digest))
        return info is not None and info.size == size and bool(held_among(self._s, [digest]))

    def _store_blob(
        self, digest: str, source: bytes | Path, size: int, *, held: bool | None = None
    ) -> dict[str, tuple[bytes | Path, int]]:
        """Put the blob unless it is stored whole and its digest is held.

        Held means a folder's entry or a model version references the digest; a row
        alone does not keep gc off a blob (an unheld row is what gc deletes). A blob
        that is not held is written again even if present: that renews its time stamp,
        so a concurrent gc (which spares young blobs) cannot delete it between now and
        the moment this put's rows are committed.

        Returns:
            ``{digest: (source, size)}`` if the existing blob was kept, else ``{}``:
            pass it to :meth:`_restore_kept` once the rows are committed.
        """
        key = blob_key(digest)
        info = self.blobs.info(key)
        if info is not None and info.size == size:
            if held is None:
                held = bool(held_among(self._s, [digest]))
            if held:
                return {digest: (source, size)}
        self.blobs.put(key, source)
        return {}

    def _restore_kept(self, kept: dict[str, tuple[bytes | Path, int]]) -> None:
        """Rewrite any blob this put kept that a concurrent gc deleted before the commit.

        Keeping a held blob relies on its holder; if the holder went (an unlink) and a
        gc deleted the blob between the check and this put's commit, the new rows point
        at nothing. gc re-checks the catalog and deletes under the catalog's write lock,
        so it either saw this put's rows (and kept the blob) or deleted before the
        commit, and then this check, which runs after the commit, finds the blob gone.
        """
        for digest, (source, size) in kept.items():
            info = self.blobs.info(blob_key(digest))
            if info is None or info.size != size:
                self.blobs.put(blob_key(digest), source)

    def _lost(self, digest: str, *, within: str | None = None) -> IntegrityError:
        where = f" (a file of the directory {within})" if within else ""
        return IntegrityError(
            f"The artifact {digest}{where} is lost: the catalog lists it but its blob is "
            f"missing from {self.blobs.url!r}.",
            hint="put the same content again to restore it, or unlink it",
        )

    def _read(self, digest: str) -> bytes:
        try:
            return read_verified(self.blobs, digest)
        except BlobNotFound:
            raise self._lost(digest) from None

    def _write_verified(self, digest: str, handle: BinaryIO, *, within: str | None = None) -> None:
        try:
            write_verified(self.blobs, digest, handle)
        except BlobNotFound:
            raise self._lost(digest, within=within) from None


def _as_table(df: object) -> pyarrow.Table:
    import pyarrow as pa

    if isinstance(df, pa.Table):
        return df
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    if not isinstance(df, pd.DataFrame):
        raise ValidationError(
            f"put_dataframe needs a pandas DataFrame or a pyarrow Table, got {type(df).__name__}.",
        )
    try:
        return pa.Table.from_pandas(df)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise ValidationError(
            f"The DataFrame cannot be stored as Parquet: {exc}.",
            hint="give each column one type, e.g. df[col] = df[col].astype(str)",
        ) from exc
