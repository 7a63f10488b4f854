"""The artifact store on the local disk: round trips, integrity, permissions, gc.

Tests where the catalog matters run on SQLite and PostgreSQL (``catalog_backend``).
The S3 store and the blob-store contract suite are in ``test_artifacts_s3.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import pickle
import subprocess
import sys
import threading
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trivet
from trivet.errors import (
    AlreadyExists,
    BackendError,
    IntegrityError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from trivet.platform import audit
from trivet.platform.artifacts import ArtifactRef, ArtifactStore, LocalBlobStore
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import (
    artifact_entries,
    artifacts,
    model_groups,
    model_versions,
)
from trivet.platform.settings import Settings

DAY = dt.timedelta(days=1)
NOW = dt.timedelta(0)


# -- helpers -----------------------------------------------------------------------------
def blob_path(session: trivet.Session, digest: str) -> Path:
    return Path(session.settings.artifacts_url) / "sha256" / digest[:2] / digest


def tamper(session: trivet.Session, digest: str, data: bytes | None = None) -> Path:
    """Overwrite a blob on disk (default: flip one byte, same size)."""
    path = blob_path(session, digest)
    path.chmod(0o644)
    if data is None:
        original = bytearray(path.read_bytes())
        original[len(original) // 2] ^= 0xFF
        data = bytes(original)
    path.write_bytes(data)
    return path


def user(admin: trivet.Session, workspace: Settings, name: str, *grants: tuple[str, str]) -> Any:
    admin.identity.create_user(name)
    for privilege, pattern in grants:
        admin.access.grant(name, privilege, pattern)
    token = admin.identity.create_token(name)
    return trivet.connect(workspace.workspace, token=token.secret)


def rows(session: trivet.Session, table: sa.Table) -> list[Any]:
    with session.catalog.read() as conn:
        return list(conn.execute(sa.select(table)).all())


def add_model_version(session: trivet.Session, *, artifact: str, report: str | None) -> None:
    """Reference digests from model_versions the way the registry does (rows only)."""
    gid = str(uuid.uuid4())
    with session.catalog.write() as conn:
        conn.execute(
            sa.insert(model_groups).values(
                id=gid, project="default", name=f"m{gid[:8]}", description="", created_at=now_utc()
            )
        )
        conn.execute(
            sa.insert(model_versions).values(
                id=str(uuid.uuid4()),
                group_id=gid,
                version=1,
                artifact_digest=artifact,
                flavor="pickle",
                signature={},
                params={},
                metrics={},
                fairness_report_digest=report,
                gate_status="none",
                status="PendingManualApproval",
                description="",
                created_at=now_utc(),
            )
        )


class Boom:
    """Unpickling this creates a marker file: stands for code run by a hostile pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


@pytest.fixture
def store(admin: trivet.Session) -> ArtifactStore:
    return admin.artifacts


# -- round trips ----------------------------------------------------------------------------
def test_bytes_round_trip_and_ref(
    admin: trivet.Session, store: ArtifactStore, catalog_backend: str
) -> None:
    ref = store.put_bytes(b"hello", media_type="text/plain", label="greeting")
    assert ref == ArtifactRef(
        digest=hashlib.sha256(b"hello").hexdigest(),
        kind="blob",
        size=5,
        media_type="text/plain",
        meta={},
        folder="default/artifacts",
        created_at=ref.created_at,
        created_by=admin.principal.id,
        label="greeting",
    )
    assert ref.created_at.tzinfo is not None
    assert store.get_bytes(ref.digest) == b"hello"
    assert store.describe(ref.digest) == ref
    assert store.get_bytes(f"sha256:{ref.digest}") == b"hello"
    assert store.get_bytes(ref.digest[:8]) == b"hello"  # a unique prefix
    assert store.list() == [ref]
    put = [e for e in audit.entries(admin.catalog) if e.action == "artifact:put"]
    assert [(e.resource, e.detail["digest"]) for e in put] == [("default/artifacts", ref.digest)]
    assert blob_path(admin, ref.digest).read_bytes() == b"hello"
    assert audit.verify(admin.catalog).ok


def test_empty_bytes(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"")
    assert ref.size == 0
    assert store.get_bytes(ref.digest) == b""


def test_file_round_trip_streams_without_loading(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    hasher = hashlib.sha256()
    with src.open("wb") as f:
        for _ in range(24):  # 24 MiB of incompressible data
            chunk = os.urandom(1 << 20)
            hasher.update(chunk)
            f.write(chunk)
    tracemalloc.start()
    try:
        ref = store.put_file(src, folder="default/artifacts/raw")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 << 20, f"put_file held {peak / 2**20:.1f} MiB in memory"
    assert ref.digest == hasher.hexdigest()
    assert (ref.size, ref.label, ref.media_type) == (
        24 << 20,
        "big.bin",
        "application/octet-stream",
    )
    assert ref.meta == {"filename": "big.bin"}

    tracemalloc.start()
    try:
        out = store.get_file(ref.digest, tmp_path / "out" / "copy.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 << 20, f"get_file held {peak / 2**20:.1f} MiB in memory"
    assert out == tmp_path / "out" / "copy.bin"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == ref.digest
    assert [p.name for p in out.parent.iterdir()] == ["copy.bin"]  # no temporary left


def test_file_media_type_guessed_and_errors(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    assert store.put_file(tmp_path / "t.csv").media_type == "text/csv"
    with pytest.raises(NotFound, match="does not exist"):
        store.put_file(tmp_path / "missing.csv")
    with pytest.raises(ValidationError, match="put_dir"):
        store.put_file(tmp_path)
    ref = store.put_bytes(b"x")
    with pytest.raises(ValidationError, match="is a folder"):
        store.get_file(ref.digest, tmp_path)


def test_dir_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "config.json").write_text('{"a": 1}')
    (src / "sub" / "weights.bin").write_bytes(os.urandom(5000))
    (src / "sub" / "deeper" / "same.txt").write_text("dup")
    (src / "dup.txt").write_text("dup")  # same content twice: one blob
    (src / "link.json").symlink_to("config.json")  # inside: followed
    (src / "sublink").symlink_to("sub/deeper", target_is_directory=True)
    ref = store.put_dir(src, label="model-dir")
    assert ref.kind == "dir"
    assert ref.meta["files"] == 6
    assert ref.size == 8 + 5000 + 3 + 3 + 8 + 3

    out = store.get_dir(ref.digest, tmp_path / "restored")
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == [
        "config.json",
        "dup.txt",
        "link.json",
        "sub/deeper/same.txt",
        "sub/weights.bin",
        "sublink/same.txt",
    ]
    assert (out / "sub" / "weights.bin").read_bytes() == (src / "sub" / "weights.bin").read_bytes()
    assert not (out / "link.json").is_symlink()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    # the same tree elsewhere has the same digest; the manifest is canonical JSON
    copy = tmp_path / "copy"
    store.get_dir(ref.digest, copy)
    assert store.put_dir(copy).digest == ref.digest
    manifest = store.get_bytes(ref.digest)
    assert manifest.startswith(b'{"files":{"config.json":{"digest":"')
    assert b" " not in manifest

    empty = tmp_path / "empty"
    empty.mkdir()
    assert store.get_dir(ref.digest, empty) == empty  # an empty folder may be the target
    with pytest.raises(AlreadyExists):
        store.get_dir(ref.digest, out)
    with pytest.raises(ValidationError, match="not a directory"):
        store.get_dir(store.put_bytes(b"x").digest, tmp_path / "nope")


def test_dir_rejects_escaping_and_looping_symlinks(store: ArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    src = tmp_path / "d"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    (src / "escape").symlink_to(outside)
    with pytest.raises(ValidationError, match="points outside"):
        store.put_dir(src)
    (src / "escape").unlink()
    (src / "up").symlink_to("..", target_is_directory=True)
    with pytest.raises(ValidationError, match="outside"):
        store.put_dir(src)
    (src / "up").unlink()
    (src / "sub").mkdir()
    (src / "sub" / "loop").symlink_to("..", target_is_directory=True)
    with pytest.raises(ValidationError, match="own parents"):
        store.put_dir(src)
    (src / "sub" / "loop").unlink()
    (src / "broken").symlink_to("nowhere")
    with pytest.raises(ValidationError, match="broken"):
        store.put_dir(src)
    (src / "broken").unlink()
    with pytest.raises(NotFound):
        store.put_dir(tmp_path / "missing")
    with pytest.raises(ValidationError, match="not a folder"):
        store.put_dir(src / "ok.txt")
    assert store.put_dir(src).meta["files"] == 1


def test_dataframe_round_trip(store: ArtifactStore) -> None:
    df = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "score": [0.5, np.nan, 1.25],
            "name": ["a", None, "c"],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"], utc=True),
            "flag": [True, False, True],
        },
        index=pd.Index([10, 20, 30], name="row"),
    )
    ref = store.put_dataframe(df, label="train")
    assert ref.kind == "dataframe"
    assert ref.media_type == "application/vnd.apache.parquet"
    assert ref.meta["rows"] == 3
    assert [c["name"] for c in ref.meta["schema"]] == ["id", "score", "name", "when", "flag", "row"]
    pd.testing.assert_frame_equal(store.get_dataframe(ref.digest), df)
    assert store.put_dataframe(df.copy()).digest == ref.digest  # deterministic bytes: dedupe

    table = pa.table({"x": pa.array([1, 2], pa.int32()), "y": ["p", "q"]})
    tref = store.put_dataframe(table)
    assert tref.meta["schema"] == [{"name": "x", "type": "int32"}, {"name": "y", "type": "string"}]
    got = store.get_dataframe(tref.digest)
    assert got["x"].tolist() == [1, 2] and got["y"].tolist() == ["p", "q"]

    with pytest.raises(ValidationError, match="DataFrame or a pyarrow Table"):
        store.put_dataframe([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Parquet"):
        store.put_dataframe(pd.DataFrame({"mixed": [1, "a", 2.5]}))
    with pytest.raises(ValidationError, match="not a Parquet file"):
        store.get_dataframe(store.put_bytes(b"not parquet").digest)


def test_sklearn_model_round_trip_with_skops(store: ArtifactStore) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.random(80), "b": rng.random(80), "c": ["x", "y", "z", "w"] * 20})
    y = np.where(X["a"] + (X["c"] == "x") > 0.8, "yes", "no")
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["c"]), remainder="passthrough"),
        HistGradientBoostingClassifier(max_iter=10, random_state=0),
    ).fit(X, y)
    ref = store.put_model(model, label="hgb")
    assert ref.kind == "model" and ref.media_type == "application/vnd.skops"
    assert ref.meta["flavor"] == "sklearn" and ref.meta["format"] == "skops"
    assert ref.meta["class"] == "sklearn.pipeline.Pipeline"
    assert ref.meta["skops_types"] == [
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    ]
    assert ref.meta["needs_trust"] == []  # on the allow-list
    assert ref.meta["signature"] == {
        "n_features_in": 3,
        "feature_names_in": ["a", "b", "c"],
        "classes": ["no", "yes"],
    }
    assert ref.meta["versions"]["sklearn"]
    loaded = store.load_model(ref.digest)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    with pytest.raises(ValidationError, match="not a model"):
        store.load_model(store.put_bytes(b"x").digest)


def test_model_that_would_run_code_is_refused(store: ArtifactStore, admin: trivet.Session) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = np.random.default_rng(1).random((20, 2)), [0, 1] * 10
    sneaky = make_pipeline(FunctionTransformer(eval), LogisticRegression())
    with pytest.raises(ValidationError, match=r"builtins\.eval"):
        store.put_model(sneaky)
    with pytest.raises(ValidationError, match=r"builtins\.eval"):
        store.put_model(sneaky, trusted_types=["builtins.eval"])  # never, even when named
    with pytest.raises(ValidationError, match="could not be loaded again"):
        store.put_model(make_pipeline(FunctionTransformer(lambda x: x), LogisticRegression()))
    model = LogisticRegression().fit(X, y)
    ref = store.put_model(model)
    assert ref.meta["skops_types"] == [] and ref.meta["needs_trust"] == []
    # what the catalog says is trusted does not matter: the load decides from the bytes
    meta = {**ref.meta, "needs_trust": ["posix.system"], "trusted_types": ["posix.system"]}
    with admin.catalog.write() as conn:
        conn.execute(sa.update(artifacts).where(artifacts.c.digest == ref.digest).values(meta=meta))
    assert store.load_model(ref.digest).predict(X).tolist() == model.predict(X).tolist()


def store_crafted_model(admin: trivet.Session, model: Any) -> str:
    """Store a skops file as a model without put_model's checks (a crafted upload)."""
    import skops.io as sio

    from trivet.platform.artifacts._entries import record_put

    data = sio.dumps(model)
    digest = hashlib.sha256(data).hexdigest()
    admin.artifacts.blobs.put(f"sha256/{digest[:2]}/{digest}", data)
    meta = {"flavor": "sklearn", "format": "skops", "skops_types": [], "needs_trust": []}
    record_put(
        admin,
        "default/artifacts",
        "",
        digest=digest,
        kind="model",
        size=len(data),
        media_type="application/vnd.skops",
        meta=meta,
    )
    return digest


def test_a_skops_model_trusts_only_the_allow_list(
    store: ArtifactStore, admin: trivet.Session, tmp_path: Path
) -> None:
    """The review's repro: FunctionTransformer(pydoc.pipepager) ran a command on use."""
    import pydoc

    from sklearn.preprocessing import FunctionTransformer

    marker = tmp_path / "pwned"
    evil = FunctionTransformer(func=pydoc.pipepager, kw_args={"cmd": f"touch {marker}"})
    evil.fit(np.zeros((1, 1)))
    with pytest.raises(ValidationError, match=r"pydoc\.pipepager"):
        store.put_model(evil)
    with pytest.raises(ValidationError, match=r"pydoc\.pipepager"):
        store.put_model(evil, trusted_types=["pydoc.pipepager"])
    # a file crafted to need it is refused on load, before anything is built
    with pytest.raises(IntegrityError, match=r"pydoc\.pipepager"):
        store.load_model(store_crafted_model(admin, evil))
    assert not marker.exists()

    # under numpy's prefix but a function that reads (and may unpickle) files: refused
    loader = FunctionTransformer(func=np.load).fit(np.zeros((1, 1)))
    with pytest.raises(ValidationError, match=r"not trusted by default.*numpy\.load"):
        store.put_model(loader)
    crafted = store_crafted_model(admin, loader)
    with pytest.raises(ValidationError, match=r"numpy\.load"):
        store.load_model(crafted)


def test_extra_types_need_the_savers_and_the_loaders_trust(
    store: ArtifactStore, admin: trivet.Session
) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X = np.random.default_rng(2).normal(size=(20, 2))
    model = make_pipeline(
        FunctionTransformer(np.clip, kw_args={"a_min": -1.0, "a_max": 1.0}), StandardScaler()
    ).fit(X)
    with pytest.raises(ValidationError, match=r"numpy\.clip.*trusted_types=\['numpy\.clip'\]"):
        store.put_model(model)
    ref = store.put_model(model, trusted_types=["numpy.clip"])
    assert ref.meta["needs_trust"] == ["numpy.clip"]
    # the saver's word is not the loader's: loading needs the loader to name it too
    with pytest.raises(ValidationError, match=r"numpy\.clip"):
        store.load_model(ref.digest)
    with pytest.raises(ValidationError, match=r"numpy\.clip"):
        admin.registry.load(admin.registry.register("clipped", artifact=ref.digest).name)
    loaded = store.load_model(ref.digest, trusted_types=["numpy.clip"])
    np.testing.assert_allclose(loaded.transform(X), model.transform(X))

    with pytest.raises(ValidationError, match="list of names"):
        store.load_model(ref.digest, trusted_types="numpy.clip")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not a type or function name"):
        store.put_model(model, trusted_types=[""])
    with pytest.raises(ValidationError, match="not to pickles"):
        store.put_model({"w": 1}, flavor="pickle", trust_pickle=True, trusted_types=["x.y"])


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", True),
        ("sklearn.metrics._classification.f1_score", True),
        ("sklearn.feature_selection._univariate_selection.f_classif", True),
        ("sklearn.utils.validation.check_array", True),
        ("functools.partial", True),
        ("numpy.dtype", True),
        ("numpy.float64", True),
        ("numpy.random.mtrand.RandomState", True),
        ("scipy.sparse._csr.csr_matrix", True),
        ("scipy.interpolate._bsplines.BSpline", True),
        ("builtins.object", True),
        ("numpy.load", False),
        ("numpy.memmap", False),  # a class, but its constructor truncates files
        ("numpy.clip", False),  # numpy functions are not on the list
        ("numpy.lib._npyio_impl.NpzFile", False),
        ("numpy.vectorize", False),
        ("sklearn.utils.validation.joblib", False),  # resolves, but joblib is not defined there
        ("sklearn.base.clone", False),  # functions only from metrics and feature_selection
        ("sklearn.datasets.dump_svmlight_file", False),
        ("sklearn.utils._testing.assert_run_python_script_without_output", False),
        ("sklearn.utils.parallel.Parallel", False),
        ("sklearn.linear_model._logistic.LogisticRegression.predict", False),  # a bound method
        ("pydoc.pipepager", False),
        ("timeit.timeit", False),
        ("_posixsubprocess.fork_exec", False),
        ("multiprocessing.Process", False),
        ("pandas.io.pickle.read_pickle", False),
        ("joblib.load", False),
        ("builtins.eval", False),
        ("functools.reduce", False),
    ],
)
def test_the_allow_list(name: str, allowed: bool) -> None:
    from trivet.platform.artifacts._models import is_allowed_type

    assert is_allowed_type(name) is allowed


def _common_models() -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    df = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": rng.choice(["x", "y", "z"], 60)})
    cats = np.c_[X[:, :2], rng.integers(0, 3, 60)]
    column_model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])]),
        LogisticRegression(),
    )
    return {
        "logistic": (LogisticRegression().fit(X, y), X),
        "gradient_boosting": (GradientBoostingClassifier(n_estimators=5).fit(X, y), X),
        "random_forest": (RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y), X),
        "column_pipeline": (column_model.fit(df, y), df),
        "hist_gradient_boosting": (
            HistGradientBoostingClassifier(max_iter=5, categorical_features=[2]).fit(cats, y),
            cats,
        ),
        "knn": (KNeighborsClassifier(algorithm="kd_tree").fit(X, y), X),
        "grid_search": (
            GridSearchCV(
                LogisticRegression(), {"C": [0.1, 1.0]}, cv=2, scoring=make_scorer(f1_score)
            ).fit(X, y),
            X,
        ),
        "select_k_best": (
            make_pipeline(SelectKBest(f_classif, k=2), LogisticRegression()).fit(X, y),
            X,
        ),
        "spline": (make_pipeline(SplineTransformer(), LogisticRegression()).fit(X, y), X),
        "imputer": (make_pipeline(SimpleImputer(), LogisticRegression()).fit(X, y), X),
    }


@pytest.mark.parametrize("name", sorted(_common_models()))
def test_common_models_need_no_extra_trust(store: ArtifactStore, name: str) -> None:
    model, X = _common_models()[name]
    ref = store.put_model(model)
    assert ref.meta["needs_trust"] == []
    loaded = store.load_model(ref.digest)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_pickle_needs_trust_and_a_matching_digest(
    store: ArtifactStore, admin: trivet.Session, tmp_path: Path
) -> None:
    model = {"weights": [0.5, -1.0]}
    with pytest.raises(ValidationError, match="not a scikit-learn estimator"):
        store.put_model(model)
    with pytest.raises(ValidationError, match="trust_pickle=True"):
        store.put_model(model, flavor="pickle")
    with pytest.raises(ValidationError, match="not supported"):
        store.put_model(model, flavor="onnx")  # type: ignore[arg-type]
    ref = store.put_model(model, flavor="pickle", trust_pickle=True)
    assert ref.meta["flavor"] == "pickle"
    with pytest.raises(ValidationError, match="trust_pickle=True"):
        store.load_model(ref.digest)
    assert store.load_model(ref.digest, trust_pickle=True) == model

    marker = tmp_path / "pwned"
    tamper(admin, ref.digest, pickle.dumps(Boom(marker)))
    with pytest.raises(IntegrityError, match=ref.digest):
        store.load_model(ref.digest, trust_pickle=True)
    assert not marker.exists()  # the hostile pickle never ran


# -- dedupe and idempotence ---------------------------------------------------------------
def test_dedupe(admin: trivet.Session, store: ArtifactStore, catalog_backend: str) -> None:
    first = store.put_bytes(b"same", label="one")
    path = blob_path(admin, first.digest)
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    again = store.put_bytes(b"same")
    assert again.digest == first.digest
    assert again.label == "one"  # an empty label keeps the entry's label
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp  # no rewrite
    other = store.put_bytes(b"same", folder="default/artifacts/other", label="two")
    assert other.folder == "default/artifacts/other" and other.label == "two"
    assert len(rows(admin, artifacts)) == 1
    assert len(rows(admin, artifact_entries)) == 2
    assert len(list(Path(admin.settings.artifacts_url, "sha256").rglob("*.*"))) == 0
    assert len([p for p in Path(admin.settings.artifacts_url).rglob("*") if p.is_file()]) == 1
    assert [r.folder for r in store.list()] == ["default/artifacts", "default/artifacts/other"]
    assert [r.folder for r in store.list("default/artifacts/other")] == ["default/artifacts/other"]

    # bytes first stored plainly, then as a DataFrame: the row learns what they are
    table = pa.table({"x": [1]})
    sink = pa.BufferOutputStream()
    import pyarrow.parquet as pq

    pq.write_table(table, sink, compression="zstd")
    plain = store.put_bytes(sink.getvalue().to_pybytes())
    as_df = store.put_dataframe(table)
    assert as_df.digest == plain.digest and as_df.kind == "dataframe"
    assert store.describe(plain.digest).kind == "dataframe"


def test_concurrent_puts_of_the_same_content(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    errors: list[BaseException] = []
    refs: list[ArtifactRef] = []
    barrier = threading.Barrier(4)

    def put() -> None:
        session = trivet.connect(workspace.workspace)
        try:
            barrier.wait()
            refs.append(session.artifacts.put_bytes(b"race" * 1000))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.digest for r in refs}) == 1
    assert len(rows(admin, artifacts)) == 1 and len(rows(admin, artifact_entries)) == 1
    assert admin.artifacts.get_bytes(refs[0].digest) == b"race" * 1000


# -- integrity ------------------------------------------------------------------------------
def test_corrupted_blob_is_detected_on_every_read(
    admin: trivet.Session, store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(3 << 20)
    ref = store.put_bytes(data)
    tamper(admin, ref.digest)  # one flipped byte, same size
    with pytest.raises(IntegrityError, match=f"{ref.digest} is corrupt"):
        store.get_bytes(ref.digest)
    dest = tmp_path / "out" / "out.bin"
    with pytest.raises(IntegrityError, match=ref.digest):
        store.get_file(ref.digest, dest)
    assert list(dest.parent.iterdir()) == []  # nothing half-written

    df_ref = store.put_dataframe(pd.DataFrame({"a": range(100)}))
    tamper(admin, df_ref.digest)
    with pytest.raises(IntegrityError, match=df_ref.digest):
        store.get_dataframe(df_ref.digest)

    from sklearn.linear_model import LinearRegression

    model_ref = store.put_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
    tamper(admin, model_ref.digest, b"PK-not-the-model")
    with pytest.raises(IntegrityError, match=model_ref.digest):
        store.load_model(model_ref.digest)

    src = tmp_path / "d"
    src.mkdir()
    (src / "a.txt").write_text("aaa")
    (src / "b.txt").write_text("bbb")
    dir_ref = store.put_dir(src)
    tamper(admin, hashlib.sha256(b"bbb").hexdigest(), b"BBB")
    with pytest.raises(IntegrityError, match=hashlib.sha256(b"bbb").hexdigest()):
        store.get_dir(dir_ref.digest, tmp_path / "restored")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "out", "ws"]


def test_lost_blob_raises_and_a_re_put_restores_it(
    admin: trivet.Session, store: ArtifactStore, tmp_path: Path
) -> None:
    ref = store.put_bytes(b"precious")
    blob_path(admin, ref.digest).unlink()
    with pytest.raises(IntegrityError, match=f"{ref.digest} is lost"):
        store.get_bytes(ref.digest)
    with pytest.raises(IntegrityError, match="lost"):
        store.get_file(ref.digest, tmp_path / "x")
    assert store.put_bytes(b"precious").digest == ref.digest
    assert store.get_bytes(ref.digest) == b"precious"

    src = tmp_path / "d"
    src.mkdir()
    (src / "f.txt").write_text("file")
    dir_ref = store.put_dir(src)
    blob_path(admin, hashlib.sha256(b"file").hexdigest()).unlink()
    with pytest.raises(IntegrityError, match=f"directory {dir_ref.digest}"):
        store.get_dir(dir_ref.digest, tmp_path / "out")
    assert store.put_dir(src).digest == dir_ref.digest  # a re-put restores the lost file
    assert store.get_dir(dir_ref.digest, tmp_path / "out").joinpath("f.txt").read_text() == "file"


def test_filesystem_failures_are_backend_errors(workspace: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("I am a file")
    session = trivet.connect(workspace.workspace)
    store = ArtifactStore(session, blobs=LocalBlobStore(blocker / "artifacts"))
    with pytest.raises(BackendError, match="not-a-folder") as info:
        store.put_bytes(b"data")
    assert isinstance(info.value.__cause__, OSError)
    assert rows(session, artifacts) == []  # no row without a blob


def test_local_store_moves_or_copies_across_devices(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem at /dev/shm")
    blobs = LocalBlobStore(tmp_path / "blobs")
    source = shm / f"trivet-test-{uuid.uuid4().hex}"
    try:
        source.write_bytes(b"from another device")
        blobs.put("sha256/ab/x", source)
    finally:
        source.unlink(missing_ok=True)
    reader = blobs.open("sha256/ab/x")
    assert reader.read(100) == b"from another device"
    reader.close()
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    assert (tmp_path / "blobs" / "sha256" / "ab" / "x").stat().st_mode & 0o222 == 0  # read-only


# -- permissions ----------------------------------------------------------------------------
def test_reader_without_artifact_read_is_denied_and_audited(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    ref = admin.artifacts.put_bytes(b"secret", label="s")
    bob = user(admin, workspace, "bob", ("viewer", "default/*"))
    with pytest.raises(PermissionDenied, match="artifact:read"):
        bob.artifacts.get_bytes(ref.digest)
    with pytest.raises(PermissionDenied):
        bob.artifacts.describe(ref.digest)
    with pytest.raises(PermissionDenied, match="artifact:write"):
        bob.artifacts.put_bytes(b"mine")
    assert bob.artifacts.list() == []
    with pytest.raises(PermissionDenied):
        bob.artifacts.list("default/artifacts")
    with pytest.raises(PermissionDenied):
        bob.artifacts.gc(dry_run=True)
    with pytest.raises(PermissionDenied):
        bob.artifacts.unlink(ref.digest, folder="default/artifacts")
    denied = audit.entries(admin.catalog, outcome="denied", actor="bob")
    assert ("artifact:read", "default/artifacts") in {(e.action, e.resource) for e in denied}
    assert ("artifact:write", "default/artifacts") in {(e.action, e.resource) for e in denied}
    assert ("grant:manage", "_workspace") in {(e.action, e.resource) for e in denied}

    # readable through one of the folders holding it is enough
    admin.artifacts.put_bytes(b"secret", folder="default/shared")
    admin.access.grant("bob", "artifact:read", "default/shared/*")
    assert bob.artifacts.get_bytes(ref.digest) == b"secret"
    assert bob.artifacts.describe(ref.digest).folder == "default/shared"
    assert [r.folder for r in bob.artifacts.list()] == ["default/shared"]
    assert bob.artifacts.list("default") == bob.artifacts.list()


def test_unlink(admin: trivet.Session, store: ArtifactStore, catalog_backend: str) -> None:
    ref = store.put_bytes(b"bye")
    store.put_bytes(b"bye", folder="default/keep")
    store.unlink(ref.digest, folder="default/artifacts")
    assert [r.folder for r in store.list()] == ["default/keep"]
    with pytest.raises(NotFound, match="holds no artifact"):
        store.unlink(ref.digest, folder="default/artifacts")
    store.unlink(ref.digest[:10], folder="default/keep")
    with pytest.raises(NotFound):
        store.get_bytes(ref.digest)  # no folder holds it any more
    actions = [e.action for e in audit.entries(admin.catalog)]
    assert actions.count("artifact:unlink") == 2


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "digest",
    [
        "",
        "xyz",
        "ABCDEF0123456789" * 4,  # upper case
        "a" * 65,
        "abc1234",  # a prefix shorter than 8
        "../../etc/passwd",
        "a" * 63 + "g",
        12345,
        None,
    ],
)
def test_malformed_digests_are_rejected(store: ArtifactStore, digest: Any) -> None:
    with pytest.raises(ValidationError, match="digest"):
        store.get_bytes(digest)


def test_unknown_and_ambiguous_digests(
    store: ArtifactStore, admin: trivet.Session, catalog_backend: str
) -> None:
    with pytest.raises(NotFound, match="no artifact"):
        store.get_bytes("0" * 64)
    with pytest.raises(NotFound):
        store.describe("deadbeef")
    # two contents whose digests share their first 8 hex digits
    seen: dict[str, bytes] = {}
    for i in itertools.count():
        data = str(i).encode()
        head = hashlib.sha256(data).hexdigest()[:8]
        if head in seen:
            break
        seen[head] = data
    a, b = store.put_bytes(seen[head]), store.put_bytes(data)
    with pytest.raises(ValidationError, match="matches several"):
        store.get_bytes(head)
    differ = next(i for i in range(64) if a.digest[i] != b.digest[i])
    assert store.get_bytes(a.digest[: differ + 1]) == seen[head]
    assert store.get_bytes(b.digest[: differ + 1]) == data


@pytest.mark.parametrize(
    "folder", ["", "../x", "Default/a", "a//b", "a/b/", "/a", "a/*", "a\\b", "a/b#c", "a/\x00"]
)
def test_bad_folders_are_rejected(store: ArtifactStore, folder: str) -> None:
    with pytest.raises(ValidationError):
        store.put_bytes(b"x", folder=folder)


def test_bad_labels_and_media_types(store: ArtifactStore) -> None:
    with pytest.raises(ValidationError, match="label"):
        store.put_bytes(b"x", label="a\nb")
    with pytest.raises(ValidationError, match="label"):
        store.put_bytes(b"x", label="x" * 257)
    with pytest.raises(ValidationError, match="media type"):
        store.put_bytes(b"x", media_type="not a type")
    with pytest.raises(ValidationError, match="bytes"):
        store.put_bytes("text")  # type: ignore[arg-type]


# -- garbage collection -------------------------------------------------------------------
def test_gc(
    admin: trivet.Session, store: ArtifactStore, tmp_path: Path, catalog_backend: str
) -> None:
    kept = store.put_bytes(b"kept")
    dropped = store.put_bytes(b"dropped")
    store.unlink(dropped.digest, folder="default/artifacts")
    referenced = store.put_bytes(b"a model")
    report_ref = store.put_bytes(b"a report")
    add_model_version(admin, artifact=referenced.digest, report=report_ref.digest)
    store.unlink(referenced.digest, folder="default/artifacts")
    store.unlink(report_ref.digest, folder="default/artifacts")
    src = tmp_path / "d"
    src.mkdir()
    (src / "member.txt").write_text("member")
    in_dir = store.put_dir(src)
    orphan = hashlib.sha256(b"orphan").hexdigest()
    store.blobs.put(f"sha256/{orphan[:2]}/{orphan}", b"orphan")  # a put that died before its rows
    stale = Path(admin.settings.artifacts_url) / "tmp" / f"{uuid.uuid4().hex}.part"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"half")

    # within the grace period nothing goes
    young = store.gc()
    assert (young.rows_deleted, young.blobs_deleted, young.temp_files_deleted) == (0, 0, 0)

    dry = store.gc(grace=NOW, dry_run=True)
    assert (dry.rows_deleted, dry.blobs_deleted, dry.temp_files_deleted) == (1, 2, 1)
    assert dry.bytes_freed == len(b"dropped") + len(b"orphan")
    assert blob_path(admin, orphan).exists() and stale.exists()

    report = store.gc(grace=NOW)
    assert report == dry.__class__(
        dry_run=False,
        rows_deleted=1,
        blobs_deleted=2,
        bytes_freed=len(b"dropped") + len(b"orphan"),
        temp_files_deleted=1,
    )
    assert not blob_path(admin, orphan).exists() and not blob_path(admin, dropped.digest).exists()
    assert not stale.exists()
    for ref in (kept, referenced, report_ref, in_dir):
        assert blob_path(admin, ref.digest).exists()
    assert blob_path(admin, hashlib.sha256(b"member").hexdigest()).exists()
    assert {r.digest for r in rows(admin, artifacts)} == {
        kept.digest,
        referenced.digest,
        report_ref.digest,
        in_dir.digest,
    }
    assert store.get_dir(in_dir.digest, tmp_path / "out").joinpath("member.txt").exists()
    assert any(e.action == "artifact:gc" for e in audit.entries(admin.catalog))

    # unlinking the directory frees its files too
    store.unlink(in_dir.digest, folder="default/artifacts")
    again = store.gc(grace=NOW)
    assert (again.rows_deleted, again.blobs_deleted) == (1, 2)
    assert not blob_path(admin, hashlib.sha256(b"member").hexdigest()).exists()

    # a lost blob is reported
    blob_path(admin, kept.digest).unlink()
    assert store.gc(grace=NOW).lost == (kept.digest,)


def age(admin: trivet.Session, *digests: str) -> None:
    """Make the rows (where there are some) and blobs of ``digests`` two days old."""
    old = now_utc() - 2 * DAY
    with admin.catalog.write() as conn:
        conn.execute(
            sa.update(artifacts).where(artifacts.c.digest.in_(digests)).values(created_at=old)
        )
    for digest in digests:
        os.utime(blob_path(admin, digest), (old.timestamp(), old.timestamp()))


@pytest.mark.parametrize("how", ["bytes", "file"])
def test_a_re_put_racing_gc_keeps_its_blob(
    admin: trivet.Session,
    store: ArtifactStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    catalog_backend: str,
    how: str,
) -> None:
    """gc runs between a put's blob write and its rows (the review's repro, aged by a day)."""
    from trivet.platform.artifacts import store as store_module

    data = b"model bytes"
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    unheld = store.put_bytes(data, folder="default/artifacts/a")
    store.unlink(unheld.digest, folder="default/artifacts/a")  # a row nobody holds
    age(admin, unheld.digest)
    real = store_module.record_put

    def gc_first(*args: Any, **kwargs: Any) -> ArtifactRef:
        assert store.gc(grace=DAY).rows_deleted == 1
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "record_put", gc_first)

    def put(folder: str) -> ArtifactRef:
        if how == "bytes":
            return store.put_bytes(data, folder=folder)
        return store.put_file(source, folder=folder)

    assert put("default/artifacts/b").digest == unheld.digest
    assert store.get_bytes(unheld.digest) == data

    # held when the put looked, but its holder goes and gc runs before the put commits
    age(admin, unheld.digest)

    def unlink_and_gc_first(*args: Any, **kwargs: Any) -> ArtifactRef:
        store.unlink(unheld.digest, folder="default/artifacts/b")
        report = store.gc(grace=DAY)
        assert (report.rows_deleted, report.blobs_deleted) == (1, 1)
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "record_put", unlink_and_gc_first)
    put("default/artifacts/c")
    assert store.get_bytes(unheld.digest) == data  # restored after the commit
    monkeypatch.undo()
    assert store.gc(grace=NOW).lost == ()


def test_gc_keeps_blobs_whose_rows_commit_while_it_runs(
    admin: trivet.Session,
    store: ArtifactStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    catalog_backend: str,
) -> None:
    """gc re-checks the catalog under its write lock just before deleting."""
    from trivet.platform.artifacts._entries import record_put

    single = store.put_bytes(b"single")
    src = tmp_path / "d"
    src.mkdir()
    (src / "member.txt").write_text("member")
    folder = store.put_dir(src)
    member = hashlib.sha256(b"member").hexdigest()
    for ref in (single, folder):
        store.unlink(ref.digest, folder="default/artifacts")
    age(admin, single.digest, folder.digest, member)
    real_list = store.blobs.list

    def commit_then_list(prefix: str) -> Any:
        if prefix == "sha256/":  # gc has decided what is needed; now two puts commit
            for ref in (single, folder):
                record_put(
                    admin,
                    "default/artifacts",
                    "",
                    digest=ref.digest,
                    kind=ref.kind,
                    size=ref.size,
                    media_type=ref.media_type,
                    meta=ref.meta,
                )
        return real_list(prefix)

    monkeypatch.setattr(store.blobs, "list", commit_then_list)
    report = store.gc(grace=DAY)
    assert (report.rows_deleted, report.blobs_deleted) == (2, 0)
    assert store.get_bytes(single.digest) == b"single"
    out = store.get_dir(folder.digest, tmp_path / "out")
    assert (out / "member.txt").read_text() == "member"


def test_gc_refuses_with_a_broken_directory_manifest(
    admin: trivet.Session, store: ArtifactStore, tmp_path: Path
) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "f").write_text("f")
    ref = store.put_dir(src)
    orphan = store.put_bytes(b"orphan")
    store.unlink(orphan.digest, folder="default/artifacts")
    blob_path(admin, ref.digest).unlink()
    with pytest.raises(IntegrityError, match="no blob was deleted"):
        store.gc(grace=NOW)
    assert blob_path(admin, orphan.digest).exists()


# -- properties and hygiene ---------------------------------------------------------------
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=4096))
def test_bytes_round_trip_property(store: ArtifactStore, data: bytes) -> None:
    ref = store.put_bytes(data)
    assert ref.digest == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    assert store.get_bytes(ref.digest) == data


def test_importing_the_store_imports_no_heavy_library() -> None:
    code = (
        "import sys, trivet.platform.artifacts, trivet.platform.session; "
        "heavy = {'pandas', 'pyarrow', 'skops', 'sklearn', 'numpy'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
