"""The artifact store on S3, against a real moto server on loopback; and the BlobStore
contract suite, run against every implementation (local folder and S3).
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyarrow import fs

import trivet
from trivet.errors import BackendError, IntegrityError
from trivet.platform.artifacts import BlobStore, LocalBlobStore, S3BlobStore
from trivet.platform.artifacts._base import BlobNotFound
from trivet.platform.settings import Settings

BUCKET = "trivet-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server process with one bucket; dummy AWS credentials in the environment."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
            mp.delenv(name, raising=False)
        port = _free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"moto server exited: {log.read_text()[-2000:]}")
                try:
                    urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail("moto server did not answer within 30 s")
                    time.sleep(0.05)
            s3 = fs.S3FileSystem(endpoint_override=url, scheme="http", allow_bucket_creation=True)
            s3.create_dir(BUCKET)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def raw_s3(endpoint: str) -> fs.S3FileSystem:
    return fs.S3FileSystem(endpoint_override=endpoint, scheme="http")


@pytest.fixture
def prefix() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def s3_admin(
    workspace: Settings, endpoint: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> trivet.Session:
    monkeypatch.setenv("TRIVET_ARTIFACTS_URL", f"s3://{BUCKET}/{prefix}")
    monkeypatch.setenv("TRIVET_S3_ENDPOINT_URL", endpoint)
    return trivet.connect(workspace.workspace)


def _object(prefix: str, digest: str) -> str:
    return f"{BUCKET}/{prefix}/sha256/{digest[:2]}/{digest}"


# -- the artifact store on S3 ------------------------------------------------------------------
def test_round_trips_on_s3(
    s3_admin: trivet.Session, raw_s3: fs.S3FileSystem, prefix: str, tmp_path: Path
) -> None:
    store = s3_admin.artifacts
    assert isinstance(store.blobs, S3BlobStore)
    assert store.blobs.url == f"s3://{BUCKET}/{prefix}"

    ref = store.put_bytes(b"hello s3")
    assert store.get_bytes(ref.digest) == b"hello s3"
    assert raw_s3.get_file_info(_object(prefix, ref.digest)).size == 8
    assert store.put_bytes(b"hello s3").digest == ref.digest

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 << 20))  # above pyarrow's multipart part size
    fref = store.put_file(big)
    out = store.get_file(fref.digest, tmp_path / "big.out")
    assert (
        hashlib.sha256(out.read_bytes()).hexdigest()
        == fref.digest
        == hashlib.sha256(big.read_bytes()).hexdigest()
    )

    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    pd.testing.assert_frame_equal(store.get_dataframe(store.put_dataframe(df).digest), df)

    from sklearn.linear_model import LogisticRegression

    X, y = np.random.default_rng(0).random((30, 2)), [0, 1] * 15
    model = LogisticRegression().fit(X, y)
    loaded = store.load_model(store.put_model(model).digest)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))

    src = tmp_path / "d"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    restored = store.get_dir(store.put_dir(src).digest, tmp_path / "restored")
    assert (restored / "sub" / "b.txt").read_text() == "b"


def test_corrupt_and_lost_objects_on_s3(
    s3_admin: trivet.Session, raw_s3: fs.S3FileSystem, prefix: str
) -> None:
    store = s3_admin.artifacts
    ref = store.put_bytes(b"original")
    with raw_s3.open_output_stream(_object(prefix, ref.digest)) as out:
        out.write(b"tampered")
    with pytest.raises(IntegrityError, match=f"{ref.digest} is corrupt"):
        store.get_bytes(ref.digest)
    raw_s3.delete_file(_object(prefix, ref.digest))
    with pytest.raises(IntegrityError, match=f"{ref.digest} is lost"):
        store.get_bytes(ref.digest)
    store.put_bytes(b"original")  # a re-put restores it
    assert store.get_bytes(ref.digest) == b"original"


def test_gc_on_s3(s3_admin: trivet.Session, raw_s3: fs.S3FileSystem, prefix: str) -> None:
    store = s3_admin.artifacts
    kept = store.put_bytes(b"kept")
    dropped = store.put_bytes(b"dropped")
    store.unlink(dropped.digest, folder="default/artifacts")
    assert store.gc().blobs_deleted == 0  # within the grace period
    report = store.gc(grace=dt.timedelta(0))
    assert (report.rows_deleted, report.blobs_deleted, report.bytes_freed) == (1, 1, 7)
    assert raw_s3.get_file_info(_object(prefix, dropped.digest)).type == fs.FileType.NotFound
    assert store.get_bytes(kept.digest) == b"kept"


def test_s3_failures_are_backend_errors(
    workspace: Settings, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIVET_ARTIFACTS_URL", "s3://no-such-bucket/x")
    monkeypatch.setenv("TRIVET_S3_ENDPOINT_URL", endpoint)
    session = trivet.connect(workspace.workspace)
    with pytest.raises(BackendError, match="no-such-bucket") as info:
        session.artifacts.put_bytes(b"data")
    assert isinstance(info.value.__cause__, OSError)
    assert session.artifacts.list() == []

    monkeypatch.setenv("TRIVET_ARTIFACTS_URL", f"s3://{BUCKET}/x")
    monkeypatch.setenv("TRIVET_S3_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nobody
    session = trivet.connect(workspace.workspace)
    started = time.monotonic()
    with pytest.raises(BackendError, match="failed"):
        session.artifacts.put_bytes(b"data")
    assert time.monotonic() - started < 15


class _FailingReader:
    """A file whose reads fail once ``limit`` bytes were read: a source breaking midway."""

    def __init__(self, raw: Any, limit: int, error: BaseException) -> None:
        self._raw, self._limit, self._error, self._done = raw, limit, error, 0

    def read(self, size: int = -1) -> bytes:
        if self._done >= self._limit:
            raise self._error
        chunk: bytes = self._raw.read(size)
        self._done += len(chunk)
        return chunk

    def __enter__(self) -> _FailingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()


def breaking(path: Path, limit: int, error: BaseException) -> Path:
    """Return ``path`` as a Path whose opened file fails after ``limit`` bytes."""

    class Breaking(type(path)):  # type: ignore[misc]
        def open(self, *args: Any, **kwargs: Any) -> Any:
            return _FailingReader(super().open(*args, **kwargs), limit, error)

    return Breaking(path)  # type: ignore[no-any-return]


@pytest.mark.parametrize("in_place", [False, True], ids=["staged", "in_place"])
def test_a_failed_upload_leaves_no_object(
    endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    """pyarrow completes an upload whose writer fails (apache/arrow#40502): nothing shows."""
    from trivet.platform.artifacts import s3 as s3_module

    monkeypatch.setattr(s3_module, "_CHUNK", 1 << 20)
    blobs = S3BlobStore.from_url(
        f"s3://{BUCKET}/fail-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint
    )
    if in_place:
        blobs.max_copy_size = 0  # as for a blob too large to copy: uploaded under its key
    eio = OSError(errno.EIO, "Input/output error")
    # one PutObject request (below 5 MB), then a multipart upload
    for size, limit in ((3 << 20, 1 << 20), (12 << 20, 6 << 20)):
        src = tmp_path / f"{size}.bin"
        src.write_bytes(os.urandom(size))
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        key = f"sha256/{digest[:2]}/{digest}"
        with pytest.raises(BackendError, match="Input/output error"):
            blobs.put(key, breaking(src, limit, eio))
        assert blobs.info(key) is None
        with pytest.raises(KeyboardInterrupt):  # not an OSError: cleaned up all the same
            blobs.put(key, breaking(src, limit, KeyboardInterrupt()))
        assert blobs.info(key) is None
        assert list(blobs.list("tmp/")) == []  # no staging object left either
        blobs.put(key, src)
        found = blobs.info(key)
        assert found is not None and found.size == size
        reader = blobs.open(key)
        copied = hashlib.sha256()
        while chunk := reader.read(1 << 20):
            copied.update(chunk)
        reader.close()
        assert copied.hexdigest() == digest
        assert list(blobs.list("tmp/")) == []


# -- the BlobStore contract, for every implementation ------------------------------------------
@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    endpoint = request.getfixturevalue("endpoint")
    return S3BlobStore.from_url(
        f"s3://{BUCKET}/contract-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint
    )


def test_contract_put_info_open_list_delete(blobs: BlobStore, tmp_path: Path) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    blobs.put("sha256/ab/one", b"first")
    staged = tmp_path / "staged"
    payload = os.urandom(3 << 20)  # several read chunks
    staged.write_bytes(payload)
    blobs.put("sha256/cd/two", staged)
    blobs.put("tmp/other", b"elsewhere")

    info = blobs.info("sha256/ab/one")
    assert info is not None and info.key == "sha256/ab/one" and info.size == 5
    assert info.mtime.tzinfo is not None and info.mtime >= before
    assert blobs.info("sha256/ab/missing") is None

    reader = blobs.open("sha256/cd/two")
    parts = []
    while chunk := reader.read(1 << 20):
        parts.append(chunk)
    reader.close()
    assert b"".join(parts) == payload

    listed = list(blobs.list("sha256/"))
    assert [(b.key, b.size) for b in listed] == [("sha256/ab/one", 5), ("sha256/cd/two", 3 << 20)]
    assert all(b.mtime.tzinfo is not None for b in listed)
    assert [b.key for b in blobs.list("tmp/")] == ["tmp/other"]
    assert list(blobs.list("nothing/")) == []

    blobs.put("sha256/ab/one", b"first")  # putting again replaces, same content
    reader = blobs.open("sha256/ab/one")
    assert reader.read(100) == b"first"
    reader.close()

    blobs.delete("sha256/ab/one")
    blobs.delete("sha256/ab/one")  # deleting a missing blob is fine
    assert blobs.info("sha256/ab/one") is None
    with pytest.raises(BlobNotFound):
        blobs.open("sha256/ab/one")
    assert [b.key for b in blobs.list("sha256/")] == ["sha256/cd/two"]


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "A/b", "a/../b", "a/.hidden", ""])
def test_contract_rejects_bad_keys(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="bad blob key"):
        blobs.put(key, b"x")
    with pytest.raises(ValueError, match="bad blob key"):
        blobs.open(key)
