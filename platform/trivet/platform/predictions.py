"""The prediction log: every prediction the server made, for monitoring on live traffic.

One **Delta Lake table per model group** (the ``deltalake`` package, as the feature
store's offline tables), at ``<offline_url>/_predictions/<project>/<key>`` where
``<key>`` is the first 32 hex digits of ``sha256("<project>/models/<name>")``: never a
user's string as a path, and no project can be called ``_predictions`` (names starting
with ``_`` are reserved), so it never meets a feature group's table.

Why a Delta table and not the catalog or the artifact store: the log is append-only
data-plane traffic (thousands of rows a minute), which belongs beside the offline store
rather than in the catalog database (no migration, no write lock shared with grants and
audit); appends are atomic commits on local disk and S3 without a catalog service;
and the drift monitor reads "features, output, model version, time" of one model with
one scan that Delta's file statistics prune by ``ts`` and ``version`` — readable by
DuckDB, Polars or Spark without trivet too. The artifact store would need an
``artifact:write`` grant for whoever is scored, which an application principal that
only scores should not hold; the log, like the audit log, is written by the platform
for every authorized prediction, whoever the caller.

Columns (one row per scored instance):

==================  ======================  ===============================================
``ts``              timestamp[us, UTC]      when the request was scored
``inference_id``    string                  ``<request id>-<position>``: join ground truth on it
``request_id``      string                  the request's id (``X-Request-ID``)
``record_id``       string, nullable        the record id scored, or the caller's id
``model``           string                  the model group
``version``         int64                   the version number
``digest``          string                  the model artifact's sha256
``registered_at``   timestamp[us, UTC]      the version's registration time (identity)
``principal``       string                  the caller's name
``principal_id``    string                  the caller's id
``features``        string (JSON object)    the features the model saw, in its order
``prediction``      string (JSON value)     the model's ``predict`` output
``probabilities``   list<float64>, nullable ``predict_proba``, aligned with ``classes``
``classes``         string (JSON list)      the classifier's classes (``null`` otherwise)
==================  ======================  ===============================================

:class:`PredictionLog` buffers rows in memory and appends them in batches (every
``flush_rows`` rows or ``flush_seconds`` seconds, from a background thread, and on
:meth:`~PredictionLog.close`), so scoring never waits on storage. Rows still buffered
when the process is killed (not shut down) are lost: at most ``flush_seconds`` of them.
:func:`read_predictions` reads a model's log under the caller's grants.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trivet.errors import BackendError, ValidationError
from trivet.platform.names import check_name

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from trivet.platform.session import Session

__all__ = ["COLUMNS", "LoggedPrediction", "PredictionLog", "read_predictions", "table_uri"]

log = logging.getLogger("trivet.predictions")

COLUMNS: tuple[str, ...] = (
    "ts",
    "inference_id",
    "request_id",
    "record_id",
    "model",
    "version",
    "digest",
    "registered_at",
    "principal",
    "principal_id",
    "features",
    "prediction",
    "probabilities",
    "classes",
)
"""The log's columns, in table order."""

_ATTEMPTS = 8


def _schema() -> pa.Schema:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            pa.field("ts", ts, nullable=False),
            pa.field("inference_id", pa.string(), nullable=False),
            pa.field("request_id", pa.string(), nullable=False),
            pa.field("record_id", pa.string()),
            pa.field("model", pa.string(), nullable=False),
            pa.field("version", pa.int64(), nullable=False),
            pa.field("digest", pa.string(), nullable=False),
            pa.field("registered_at", ts, nullable=False),
            pa.field("principal", pa.string(), nullable=False),
            pa.field("principal_id", pa.string(), nullable=False),
            pa.field("features", pa.string(), nullable=False),
            pa.field("prediction", pa.string(), nullable=False),
            pa.field("probabilities", pa.list_(pa.float64())),
            pa.field("classes", pa.string(), nullable=False),
        ]
    )


def table_uri(root: str, project: str, model: str) -> str:
    """Return where the log of ``<project>/models/<model>`` lives under ``root``.

    >>> table_uri("/ws/offline", "credit", "credit-model")[-32:]
    '12b6e84320c1ab0423fb364f2822d4e3'
    """
    check_name(project, what="project name")
    check_name(model, what="model group name")
    key = hashlib.sha256(f"{project}/models/{model}".encode()).hexdigest()[:32]
    return f"{root.rstrip('/')}/_predictions/{project}/{key}"


def drop_log(root: str, project: str, model: str) -> bool:
    """Delete the prediction log of ``<project>/models/<model>``; return whether one existed.

    The registry calls this when a model group is deleted: the log holds the features of
    everyone scored, which must not outlive the model (a group created later under the
    same name starts with an empty log).
    """
    import pyarrow.fs as pafs

    uri = table_uri(root, project, model)
    try:
        fs, path = pafs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return False
        fs.delete_dir(path)
    except OSError as exc:
        raise _backend(exc, f"delete the prediction log of {model!r}") from exc
    return True


@dataclass(frozen=True, kw_only=True)
class LoggedPrediction:
    """One prediction to log (the server builds these; see the module's columns)."""

    ts: dt.datetime
    inference_id: str
    request_id: str
    record_id: str | None
    project: str
    model: str
    version: int
    digest: str
    registered_at: dt.datetime
    principal: str
    principal_id: str
    features: Mapping[str, Any]
    prediction: Any
    probabilities: Sequence[float | None] | None
    classes: Sequence[Any] | None


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, allow_nan=False)


def _arrow(rows: Sequence[LoggedPrediction]) -> pa.Table:
    import pyarrow as pa

    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for row in rows:
        columns["ts"].append(row.ts)
        columns["inference_id"].append(row.inference_id)
        columns["request_id"].append(row.request_id)
        columns["record_id"].append(row.record_id)
        columns["model"].append(row.model)
        columns["version"].append(row.version)
        columns["digest"].append(row.digest)
        columns["registered_at"].append(row.registered_at)
        columns["principal"].append(row.principal)
        columns["principal_id"].append(row.principal_id)
        columns["features"].append(_json(dict(row.features)))
        columns["prediction"].append(_json(row.prediction))
        columns["probabilities"].append(
            None
            if row.probabilities is None
            else [None if p is None else float(p) for p in row.probabilities]
        )
        columns["classes"].append(_json(None if row.classes is None else list(row.classes)))
    return pa.Table.from_pydict(columns, schema=_schema())


class PredictionLog:
    """Buffered, batched appends to the prediction log tables under ``root``.

    Thread-safe. :meth:`add` only appends to an in-memory buffer; a background thread
    writes the buffer every ``flush_seconds`` seconds, or as soon as ``flush_rows`` rows
    wait; :meth:`close` stops it and writes what is left (call it on shutdown). When
    the storage fails, rows stay buffered and are retried on the next flush, up to
    ``max_buffered`` rows; beyond that the oldest are dropped, and the loss is logged.

    Args:
        root: the ``featurestore.offline_url`` setting (a folder or ``s3://…``).
        flush_rows: write as soon as this many rows wait.
        flush_seconds: write rows that waited this long.
        max_buffered: the most rows kept while the storage fails.
        storage_options: passed to ``deltalake`` (credentials, endpoint).
    """

    def __init__(
        self,
        root: str,
        *,
        flush_rows: int = 500,
        flush_seconds: float = 2.0,
        max_buffered: int = 100_000,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        if flush_rows < 1 or flush_seconds <= 0 or max_buffered < flush_rows:
            raise ValidationError(
                "flush_rows and max_buffered must be >= 1 (max_buffered >= flush_rows) and "
                "flush_seconds > 0."
            )
        self.root = root.rstrip("/")
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_buffered = max_buffered
        self.storage_options = storage_options
        self.written = 0  # rows appended since the log was opened
        self.dropped = 0  # rows lost to a failing storage
        self._buffer: list[LoggedPrediction] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"PredictionLog({self.root!r}, buffered={self.buffered})"

    @property
    def buffered(self) -> int:
        """How many rows wait to be written."""
        with self._lock:
            return len(self._buffer)

    def add(self, rows: Sequence[LoggedPrediction]) -> None:
        """Queue rows for writing; return at once.

        Raises:
            ValidationError: the log was closed.
        """
        with self._lock:
            if self._closed:
                raise ValidationError("The prediction log is closed.")
            self._buffer.extend(rows)
            full = len(self._buffer) >= self.flush_rows
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="trivet-prediction-log", daemon=True
                )
                self._thread.start()
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write every buffered row now; return how many were written.

        Raises:
            BackendError: the storage failed (the rows stay buffered for a retry).
        """
        with self._flushing:
            with self._lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            tables: dict[str, list[LoggedPrediction]] = {}
            for row in rows:
                tables.setdefault(table_uri(self.root, row.project, row.model), []).append(row)
            done: set[str] = set()
            try:
                for uri, batch in tables.items():
                    self._append(uri, batch)
                    done.add(uri)
                    self.written += len(batch)
            except BackendError:
                self._requeue([r for uri, b in tables.items() if uri not in done for r in b])
                raise
            return sum(len(tables[uri]) for uri in done)

    def _requeue(self, rows: list[LoggedPrediction]) -> None:
        with self._lock:
            self._buffer = rows + self._buffer
            excess = len(self._buffer) - self.max_buffered
            if excess > 0:
                del self._buffer[:excess]
                self.dropped += excess
                log.error("prediction log: dropped the %d oldest rows (storage failing)", excess)

    def _append(self, uri: str, rows: Sequence[LoggedPrediction]) -> None:
        from deltalake import write_deltalake
        from deltalake.exceptions import CommitFailedError

        data = _arrow(rows)
        delay = 0.01
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                write_deltalake(
                    uri,
                    data,
                    mode="append",
                    storage_options=self.storage_options,
                    configuration={
                        # statistics for pruning by time and version, never feature values
                        "delta.dataSkippingStatsColumns": "ts,version",
                    },
                )
                return
            except CommitFailedError as exc:
                if attempt == _ATTEMPTS:
                    raise _backend(exc, "append to") from exc
                time.sleep(delay * (1 + random.random()))  # noqa: S311 - jitter
                delay = min(delay * 2, 1.0)
            except Exception as exc:
                raise _backend(exc, "append to") from exc

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            with self._lock:
                closed = self._closed
            try:
                self.flush()
            except BackendError as exc:
                log.error("prediction log: %s (rows kept for the next try)", exc.message)
            except Exception:  # pragma: no cover - a bug; keep the thread alive
                log.exception("prediction log: flush failed")
            if closed:
                return

    def close(self) -> None:
        """Stop the background writer and write every buffered row (idempotent).

        Raises:
            BackendError: the last write failed; the rows it held are lost.
        """
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        try:
            self.flush()
        except BackendError:
            lost = self.buffered
            with self._lock:
                self._buffer.clear()
                self.dropped += lost
            log.error("prediction log: %d rows lost at shutdown (storage failing)", lost)
            raise


def _backend(exc: BaseException, what: str) -> BackendError:
    text = str(exc).strip().splitlines()
    return BackendError(
        f"The prediction log failed to {what} its table: "
        f"{text[0] if text else type(exc).__name__}.",
        hint="check the offline_url setting and that the storage is reachable",
    )


def read_predictions(
    session: Session,
    model: str,
    *,
    version: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    expand: bool = True,
) -> pd.DataFrame:
    """Return a model group's logged predictions, oldest first.

    Needs ``model:read`` on ``<project>/models/<model>`` (the log holds the features of
    every instance scored). Only rows of versions the group has now count: after a
    group is deleted and created again, the old group's rows do not show.

    Args:
        session: the reader's session (its project is the model's).
        model: the model group.
        version: only this version's predictions.
        since: only predictions at or after this (aware) time.
        until: only predictions before this (aware) time.
        expand: one column per feature (in the model's order) instead of one
            ``features`` column of dicts.

    Returns:
        A DataFrame with the module's columns; ``prediction`` and ``classes`` decoded
        from JSON; with ``expand``, the features as columns after the others.

    Raises:
        PermissionDenied: no ``model:read`` on the group.
        NotFound: no such model group.
        ValidationError: a naive datetime, or (``expand``) a feature named like a column.
    """
    import pandas as pd
    import pyarrow.compute as pc

    for name, value in (("since", since), ("until", until)):
        if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
            raise ValidationError(
                f"{name} must be an aware datetime, not {value!r}.",
                hint="e.g. datetime.now(datetime.UTC) - timedelta(days=1)",
            )
    group = session.registry.group(model)  # model:describe; NotFound for a missing group
    session.require("model:read", group.resource)
    current = {
        (v.version, v.artifact_digest, v.created_at) for v in session.registry.versions(model)
    }
    mask = None
    for clause in (
        None if version is None else pc.field("version") == version,
        None if since is None else pc.field("ts") >= since,
        None if until is None else pc.field("ts") < until,
    ):
        if clause is not None:
            mask = clause if mask is None else mask & clause
    table = _read(table_uri(session.settings.offline_url, session.project, model), mask)
    frame = _schema().empty_table().to_pandas() if table is None else table.to_pandas()
    if len(frame):
        keep = [
            (int(v), d, r.to_pydatetime()) in current
            for v, d, r in zip(
                frame["version"], frame["digest"], frame["registered_at"], strict=True
            )
        ]
        frame = frame[keep]
    frame = frame.sort_values(["ts", "inference_id"], kind="stable").reset_index(drop=True)
    frame["prediction"] = [json.loads(p) for p in frame["prediction"]]
    frame["classes"] = [json.loads(c) for c in frame["classes"]]
    features = [json.loads(f) for f in frame["features"]]
    if not expand:
        frame["features"] = features
        return frame
    names: dict[str, None] = {}
    for row in features:
        names.update(dict.fromkeys(row))
    clash = [n for n in names if n in COLUMNS]
    if clash:
        raise ValidationError(
            f"The model has a feature named {clash[0]!r}, like a column of the log.",
            hint="read with expand=False: the features are then one column of dicts",
        )
    values = pd.DataFrame.from_records(features, columns=list(names), index=frame.index)
    return pd.concat([frame.drop(columns=["features"]), values], axis=1)


def _read(uri: str, mask: Any) -> pa.Table | None:
    """Return the rows of the table at ``uri`` that ``mask`` keeps (None: no table)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dataset = DeltaTable(uri).to_pyarrow_dataset()  # file statistics prune by ts, version
        return dataset.to_table(filter=mask)
    except TableNotFoundError:
        return None
    except Exception as exc:
        raise _backend(exc, "read") from exc
