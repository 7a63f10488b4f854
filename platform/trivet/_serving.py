"""Scoring over HTTP, with explanations: ``POST /v1/projects/{project}/models/{name}/predict``.

Clarify's "explain individual inferences in production": an application sends feature
values, or the ids of records in the online store, and gets the Approved model's
prediction and, on request, its SHAP explanation; every prediction is logged so that
the bias drift monitor can run on live traffic once ground truth arrives.

**Who may score.** Whoever holds ``model:predict`` on the version (on the group, to
name it by alias or leave it out) — plus, for ``records``, ``feature:read_online`` on
every feature group read. ``model:predict`` gets an Approved version's predictions, and
explanations of them, from the server; the model's bytes never leave it, so an
application needs no ``model:read`` (which would let it copy the model) and no
``artifact:read``. The ``online_reader`` role holds it, so the quickstart's
``scoring-app`` (``online_reader`` on ``credit/*``) scores with the latest online
features and nothing more; ``data_scientist`` and ``approver`` hold it too, a viewer
does not. The check runs on every request, before the model cache is consulted, so a
model another caller loaded never serves one who may not use it.

**Which version.** Only an ``Approved`` version serves (409 otherwise). ``version``
null: the ``champion`` alias if the group has one, else the latest Approved version.

**Features.** Their order is the version's signature (``feature_names_in``, recorded
from a model fitted on a DataFrame, or ``features``), else the model's
``feature_names_in_``. A missing (or null) feature is a 422 naming it; keys the model
does not use are ignored (and not logged), so a record from a wider feature group, or
an instance carrying its own id, scores as is.

**Explanations** (``explain: true``) follow :func:`trivet.clarify.explain`: shap's tree
explainer for scikit-learn tree models, otherwise its kernel explainer; for the
positive (last) class of a classifier. The background comes from the version's
signature ``baseline`` (rows in feature order, or objects; register it with
``registry.register(name, model, signature={"feature_names_in": [...],
"baseline": X_holdout.sample(100).to_numpy().tolist()})``): interventional tree SHAP on
the probability scale, or kernel SHAP against its k-means summary. Without a baseline,
a tree model is explained path-dependently (the trees' own training statistics are the
background) on the model's raw scale — log-odds for gradient boosting — and any other
model is a 409 that says how to register one. Each explanation is additive:
``base_value + sum(all SHAP values) = prediction`` on the scale it names; the response
gives the ``top_k`` features by |SHAP| and the ``rest`` of the sum.

**Caching.** Loaded models and their explainers are kept per artifact digest in a small
LRU (``app.state.serving``); a digest names immutable bytes, so an entry never goes
stale.

**The prediction log** is :mod:`trivet.platform.predictions`: a Delta table per model
group beside the offline store, written in batches by a background thread and flushed
on graceful shutdown; read it with :func:`read_predictions` (``model:read``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from fastapi import APIRouter, FastAPI, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from trivet.errors import Conflict, NotFound, ValidationError
from trivet.platform.http import ERRORS, ProjectSession
from trivet.platform.predictions import LoggedPrediction, PredictionLog, read_predictions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from trivet._session import Session as AssembledSession
    from trivet.platform.registry import ModelVersion
    from trivet.platform.session import Session
    from trivet.platform.settings import Settings

__all__ = ["MAX_EXPLAINED", "MAX_INSTANCES", "Serving", "read_predictions", "router"]

MAX_INSTANCES = 1000
"""The most instances (or records) one request may score."""
MAX_EXPLAINED = 100
"""The most instances one request may have explained."""

_TREE_BACKGROUND = 100
_KERNEL_CLUSTERS = 10
_MAX_BASELINE = 10_000

Scalar = float | int | bool | str | None
ModelName = Annotated[str, Path(max_length=64, description="The model group.")]


# -- the request and response ------------------------------------------------------------------
class RecordRef(BaseModel):
    """An instance to score from the online store: one record, from one or several groups."""

    model_config = ConfigDict(extra="forbid")
    group: str | None = Field(
        None, max_length=64, description="The feature group holding the record."
    )
    groups: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="Several groups keyed by the same id; their features are merged "
        "(a later group's value wins).",
    )
    id: (
        Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
        | Annotated[str, Field(min_length=1, max_length=256)]
    ) = Field(description="The record id.")

    @model_validator(mode="after")
    def _one_source(self) -> RecordRef:
        if (self.group is None) == (self.groups is None):
            raise ValueError("give exactly one of 'group' and 'groups'")
        return self


class PredictRequest(BaseModel):
    """What to score: feature values (`instances`) or online records (`records`)."""

    model_config = ConfigDict(extra="forbid")
    version: StrictInt | Annotated[str, Field(max_length=64)] | None = Field(
        None,
        description="A version number or an alias; null: the `champion` alias, else the "
        "latest Approved version.",
    )
    instances: list[dict[Annotated[str, Field(max_length=256)], Scalar]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_INSTANCES,
        description="Feature values by name, one object per instance.",
    )
    ids: list[Annotated[str, Field(max_length=256)]] | None = Field(
        None,
        max_length=MAX_INSTANCES,
        description="Your ids of the `instances`, in order: logged with each prediction "
        "so that ground truth can be joined to it later.",
    )
    records: list[RecordRef] | None = Field(
        None,
        min_length=1,
        max_length=MAX_INSTANCES,
        description="Records to read from the online store (with your grants) and score.",
    )
    explain: bool = Field(False, description="Add each prediction's SHAP explanation.")
    top_k: int = Field(10, ge=1, le=1000, description="Features per explanation, by |SHAP|.")

    @field_validator("version")
    @classmethod
    def _version_number(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"version numbers start at 1, not {value}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> PredictRequest:
        if (self.instances is None) == (self.records is None):
            raise ValueError("give exactly one of 'instances' and 'records'")
        if self.ids is not None and (
            self.instances is None or len(self.ids) != len(self.instances)
        ):
            raise ValueError("'ids' must name each of the 'instances', in order")
        count = len(self.instances or self.records or ())
        if self.explain and count > MAX_EXPLAINED:
            raise ValueError(f"at most {MAX_EXPLAINED} instances can be explained per request")
        return self


class Contribution(BaseModel):
    """One feature's part in a prediction."""

    feature: str
    value: Scalar = Field(description="The feature's value in this instance.")
    shap: float = Field(description="Its SHAP value, on the explanation's scale.")


class ExplanationOut(BaseModel):
    """A prediction's SHAP explanation: `base_value + sum(SHAP) = prediction`."""

    method: Literal["tree", "kernel"]
    output: str = Field(description="What is explained, e.g. `probability of class 1`.")
    base_value: float = Field(description="The expected output over the background.")
    prediction: float = Field(description="The model's output on that scale.")
    top: list[Contribution] = Field(description="The `top_k` features by |SHAP|.")
    rest: float = Field(description="The sum of the other features' SHAP values.")


class PredictionOut(BaseModel):
    """One scored instance."""

    inference_id: str = Field(description="Logged with the prediction: join ground truth on it.")
    record_id: str | None = Field(None, description="The record (or your id) scored.")
    prediction: Any = Field(description="The model's `predict` output (a class or a number).")
    probabilities: list[float | None] | None = Field(
        None, description="A classifier's `predict_proba`, aligned with `classes`."
    )
    explanation: ExplanationOut | None = None


class PredictResponse(BaseModel):
    """The predictions of one model version."""

    request_id: str
    model: str
    version: int
    digest: str = Field(description="The sha256 of the model artifact that scored.")
    features: list[str] = Field(description="The features the model used, in its order.")
    classes: list[Any] | None = Field(None, description="A classifier's classes.")
    predictions: list[PredictionOut]


# -- the loaded models -------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A numpy scalar as a Python one; a non-finite float as None (JSON has none)."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        value = item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Explainer:
    """A SHAP explainer of one model on one background, reused across requests."""

    def __init__(
        self,
        model: Any,
        features: tuple[str, ...],
        as_frame: bool,
        baseline: npt.NDArray[np.float64] | None,
        label: str,
    ) -> None:
        import numpy as np

        from trivet.clarify._explain import import_shap, is_tree_model

        shap = import_shap()
        self.model = model
        self.features = features
        self.as_frame = as_frame
        self.classifier = hasattr(model, "predict_proba")
        self.lock = threading.Lock()
        self.method: Literal["tree", "kernel"]
        tree = is_tree_model(model)
        positive = ""
        if self.classifier:
            classes = [_plain(c) for c in getattr(model, "classes_", [])]
            positive = f" of class {classes[-1]!r}" if classes else ""
        if tree:
            self.method = "tree"
            if baseline is not None:
                rng = np.random.default_rng(0)
                size = min(_TREE_BACKGROUND, baseline.shape[0])
                rows = np.sort(rng.choice(baseline.shape[0], size=size, replace=False))
                self.explainer = shap.TreeExplainer(
                    model,
                    data=self._shaped(baseline[rows]),
                    model_output="probability" if self.classifier else "raw",
                    feature_perturbation="interventional",
                )
                self.scale = "probability" if self.classifier else "raw_value"
            else:
                self.explainer = shap.TreeExplainer(model)  # path-dependent: no background
                self.scale = str(self.explainer.model.tree_output)
        elif baseline is not None:
            self.method = "kernel"
            summary: Any = baseline
            if baseline.shape[0] > _KERNEL_CLUSTERS:
                from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

                with threadpool_limits(limits=1):  # as trivet.clarify: k-means on one thread
                    summary = shap.kmeans(baseline, _KERNEL_CLUSTERS)
            self.scale = "probability" if self.classifier else "raw_value"
            self.explainer = shap.KernelExplainer(self._output, summary, seed=0)
        else:
            raise Conflict(
                f"{label} has no SHAP baseline, and a {type(model).__name__} is not a tree "
                "model, so its predictions cannot be explained.",
                hint="register the version with signature={'feature_names_in': [...], "
                "'baseline': X_holdout.sample(100).to_numpy().tolist()}, or score with "
                "explain=false",
            )
        self.output = {
            "probability": f"probability{positive}",
            "log_odds": f"log-odds{positive}",
        }.get(self.scale, "prediction")

    def _shaped(self, matrix: npt.NDArray[np.float64]) -> Any:
        if not self.as_frame:
            return matrix
        import pandas as pd

        return pd.DataFrame(matrix, columns=list(self.features))

    def _output(self, matrix: Any) -> npt.NDArray[np.float64]:
        """The explained output of each row: positive-class probability, log-odds or value."""
        import numpy as np

        data = self._shaped(np.asarray(matrix, dtype=np.float64).reshape(-1, len(self.features)))
        if self.scale == "log_odds":
            out = np.asarray(self.model.decision_function(data), dtype=np.float64)
        elif self.classifier:
            out = np.asarray(self.model.predict_proba(data), dtype=np.float64)
        else:
            out = np.asarray(self.model.predict(data), dtype=np.float64)
        return out[:, -1] if out.ndim == 2 else out

    def explain(
        self, matrix: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], float, npt.NDArray[np.float64]]:
        """Return (SHAP values per row and feature, base value, the explained outputs)."""
        import numpy as np

        with self.lock:  # a kernel explainer keeps per-call state
            if self.method == "tree":
                raw = self.explainer.shap_values(self._shaped(matrix))
            else:
                raw = self.explainer.shap_values(matrix, nsamples="auto", silent=True)
            expected = np.atleast_1d(np.asarray(self.explainer.expected_value, dtype=np.float64))
        values = np.asarray(raw, dtype=np.float64)
        if values.ndim == 3:  # one slice per class: the positive (last) one
            values = values[:, :, -1]
        return values, float(expected[-1]), self._output(matrix)


class _Loaded:
    """A loaded model and its explainers (by background)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.explainers: dict[tuple[str, tuple[str, ...]], _Explainer] = {}
        self.lock = threading.Lock()

    def explainer(
        self,
        features: tuple[str, ...],
        baseline: npt.NDArray[np.float64] | None,
        label: str,
    ) -> _Explainer:
        key = (
            "" if baseline is None else hashlib.sha256(baseline.tobytes()).hexdigest(),
            features,
        )
        with self.lock:
            found = self.explainers.get(key)
            if found is None:
                as_frame = hasattr(self.model, "feature_names_in_")
                found = _Explainer(self.model, features, as_frame, baseline, label)
                self.explainers[key] = found
            return found


class Serving:
    """The server's scoring state (``app.state.serving``): model cache and prediction log.

    Args:
        settings: the workspace's settings.
        log: where predictions go (default: a :class:`PredictionLog` under the
            ``offline_url`` setting).
        cache_size: how many loaded models (by artifact digest) to keep.
    """

    def __init__(
        self, settings: Settings, *, log: PredictionLog | None = None, cache_size: int = 8
    ) -> None:
        self.log = log if log is not None else PredictionLog(settings.offline_url)
        self.cache_size = cache_size
        self._models: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def model(self, session: Session, version: ModelVersion) -> _Loaded:
        """Return the version's loaded model (the caller must be authorized already)."""
        digest = version.artifact_digest
        with self._lock:
            found = self._models.get(digest)
            if found is not None:
                self._models.move_to_end(digest)
                return found
            gate = self._loading.setdefault(digest, threading.Lock())
        with gate:  # one load per digest at a time; the others wait for it
            with self._lock:
                found = self._models.get(digest)
            if found is None:
                found = _Loaded(session.registry.load_servable(version))
            with self._lock:
                self._models[digest] = found
                self._models.move_to_end(digest)
                while len(self._models) > self.cache_size:
                    self._models.popitem(last=False)
                self._loading.pop(digest, None)
        return found

    def close(self) -> None:
        """Write every buffered prediction and drop the cache."""
        with self._lock:
            self._models.clear()
        self.log.close()


_state_lock = threading.Lock()


def _state(app: FastAPI) -> Serving:
    """Return ``app``'s :class:`Serving`, creating it on first use."""
    with _state_lock:
        found: Serving | None = getattr(app.state, "serving", None)
        if found is None:
            found = Serving(app.state.settings)
            app.state.serving = found
        return found


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    from starlette.concurrency import run_in_threadpool

    _state(app)
    try:
        yield
    finally:  # graceful shutdown: uvicorn has finished the requests in flight
        await run_in_threadpool(_state(app).close)


router = APIRouter(responses=ERRORS, lifespan=_lifespan)


# -- the route ---------------------------------------------------------------------------------
def _servable(session: Session, name: str, ref: int | str | None) -> ModelVersion:
    """Resolve the Approved version to serve; the caller needs ``model:predict`` on it."""
    return session.registry.servable(name, ref)


def _features(version: ModelVersion, model: Any) -> tuple[str, ...]:
    label = f"{version.name} v{version.version}"
    signature = version.signature
    names = signature.get("feature_names_in") or signature.get("features")
    fitted = getattr(model, "feature_names_in_", None)
    if names is None and fitted is not None:
        names = [str(n) for n in fitted]
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) for n in names)
        or len(set(names)) != len(names)
    ):
        raise Conflict(
            f"{label} records no usable feature names, so instances cannot be put in order.",
            hint="register it with signature={'features': [names in order]}, or fit it on "
            "a DataFrame",
        )
    if fitted is not None and [str(n) for n in fitted] != names:
        raise Conflict(
            f"The signature of {label} lists other features than its model was fitted on.",
            hint="register the version again with the model's feature_names_in_",
        )
    expected = getattr(model, "n_features_in_", None)
    if isinstance(expected, int) and expected != len(names):
        raise Conflict(
            f"The signature of {label} lists {len(names)} features; its model takes {expected}."
        )
    return tuple(names)


def _baseline(version: ModelVersion, features: tuple[str, ...]) -> npt.NDArray[np.float64] | None:
    import numpy as np

    rows = version.signature.get("baseline")
    if rows is None:
        return None
    label = f"{version.name} v{version.version}"
    try:
        if not isinstance(rows, list) or not rows or len(rows) > _MAX_BASELINE:
            raise TypeError
        matrix = np.asarray(
            [[row[f] for f in features] if isinstance(row, dict) else row for row in rows],
            dtype=np.float64,
        )
        if matrix.ndim != 2 or matrix.shape[1] != len(features) or not np.isfinite(matrix).all():
            raise TypeError
    except (TypeError, ValueError, KeyError):
        raise Conflict(
            f"The SHAP baseline in the signature of {label} is not 1 to {_MAX_BASELINE} rows "
            f"of {len(features)} finite numbers (or objects with those features).",
            hint="register the version again with a baseline of numeric rows in feature order",
        ) from None
    return matrix


def _online_rows(
    session: Session, records: Sequence[RecordRef]
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """Read each record (merged over its groups) under the caller's grants."""
    pairs: list[tuple[str, object]] = []
    for ref in records:
        for group in ref.groups or [ref.group or ""]:
            pairs.append((group, ref.id))
    store = cast("AssembledSession", session).featurestore  # the server opens assembled sessions
    found = store.batch_get_record(pairs)  # feature:read_online per group
    rows: list[Mapping[str, Any]] = []
    position = 0
    for ref in records:
        merged: dict[str, Any] = {}
        for group in ref.groups or [ref.group or ""]:
            record = found[position]
            position += 1
            if record is None:
                raise NotFound(
                    f"Feature group {group!r} has no online record {ref.id!r}.",
                    hint="it was never written, was deleted, or is older than the group's TTL",
                )
            merged.update(record)
        rows.append(merged)
    return rows, [str(ref.id) for ref in records]


def _instance_values(
    rows: Sequence[Mapping[str, Any]], features: tuple[str, ...], where: Sequence[str]
) -> list[list[Any]]:
    """The model's features of each row, in order; 422 naming what is missing."""
    values: list[list[Any]] = []
    for row, place in zip(rows, where, strict=True):
        missing = [f for f in features if row.get(f) is None]
        if missing:
            shown = ", ".join(repr(f) for f in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise _invalid(
                place,
                f"lacks the model's feature(s) {shown}{more} (it takes {', '.join(features)})",
            )
        picked = [row[f] for f in features]
        for f, v in zip(features, picked, strict=True):
            if isinstance(v, float) and not math.isfinite(v):
                raise _invalid(place, f"the value of {f!r} is not a finite number")
        values.append(picked)
    return values


def _invalid(place: str, message: str) -> RequestValidationError:
    """A 422 whose ``error.field`` names ``place`` (a dotted path into the body)."""
    loc = tuple(int(p) if p.isdigit() else p for p in place.split("."))
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


def _score(model: Any, data: Any) -> tuple[list[Any], list[list[Any]] | None]:
    """Return (predict output, predict_proba rows or None); 422 when the model refuses."""
    import numpy as np

    try:
        # an overflow (e.g. 1e308 cast to a tree's float32) raises instead of warning;
        # numpy's error state is per thread (a context variable)
        with np.errstate(over="raise"):
            predicted = [_plain(p) for p in model.predict(data)]
            proba = None
            if hasattr(model, "predict_proba"):
                proba = [[_plain(p) for p in row] for row in model.predict_proba(data)]
    except (ValueError, TypeError, ArithmeticError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ValidationError(
            f"The model could not score these instances: {first}",
            hint="check the feature values' types (most models need numbers)",
        ) from None
    return predicted, proba


def _request_id(given: str | None) -> str:
    return given if given else uuid.uuid4().hex


@router.post(
    "/v1/projects/{project}/models/{name}/predict",
    tags=["serving"],
    summary="Score instances (and explain them) with an Approved model",
)
def predict(
    request: Request,
    response: Response,
    session: ProjectSession,
    name: ModelName,
    body: PredictRequest,
    x_request_id: Annotated[
        str | None,
        Header(
            max_length=64,
            pattern=r"^[A-Za-z0-9._-]+$",
            description="Your id of the request (default: a new one); logged.",
        ),
    ] = None,
) -> PredictResponse:
    """Score `instances` (feature values) or `records` (read from the online store).

    Needs what fetching and loading the version with the SDK needs: `model:describe`
    and `model:read` on it, and `artifact:read` on `<project>/models/<name>` (a viewer
    is refused, and so is an application holding only `online_reader`); for `records`,
    also `feature:read_online` on each group. Only an `Approved` version serves (409
    otherwise); no `version`: the `champion` alias, else the latest Approved one.
    Missing features are a 422 naming them; other keys are ignored. With `explain`,
    each prediction carries its SHAP explanation (at most 100 instances per request).
    Every prediction is logged (features, output, version, caller, time).
    """
    started = dt.datetime.now(dt.UTC)
    request_id = _request_id(x_request_id)
    version = _servable(session, name, body.version)
    state = _state(request.app)
    loaded = state.model(session, version)
    model = loaded.model
    features = _features(version, model)
    if body.records is not None:
        rows: Sequence[Mapping[str, Any]]
        rows, ids = _online_rows(session, body.records)
        where = [f"body.records.{i}" for i in range(len(rows))]
        record_ids: list[str | None] = list(ids)
    else:
        rows = body.instances or []
        where = [f"body.instances.{i}" for i in range(len(rows))]
        record_ids = list(body.ids) if body.ids is not None else [None] * len(rows)
    values = _instance_values(rows, features, where)

    import pandas as pd

    frame = pd.DataFrame.from_records(values, columns=list(features))
    data: Any = frame if hasattr(model, "feature_names_in_") else frame.to_numpy()
    predicted, proba = _score(model, data)
    classes = (
        [_plain(c) for c in model.classes_]
        if proba is not None and hasattr(model, "classes_")
        else None
    )
    explanations: list[ExplanationOut | None] = [None] * len(values)
    if body.explain:
        explanations = list(_explain(loaded, version, features, frame, values, body.top_k))

    out = [
        PredictionOut(
            inference_id=f"{request_id}-{i}",
            record_id=record_ids[i],
            prediction=predicted[i],
            probabilities=None if proba is None else proba[i],
            explanation=explanations[i],
        )
        for i in range(len(values))
    ]
    state.log.add(
        [
            LoggedPrediction(
                ts=started,
                inference_id=p.inference_id,
                request_id=request_id,
                record_id=p.record_id,
                project=session.project,
                model=name,
                version=version.version,
                digest=version.artifact_digest,
                registered_at=version.created_at,
                principal=session.principal.name,
                principal_id=session.principal.id,
                features=dict(zip(features, row, strict=True)),
                prediction=p.prediction,
                probabilities=p.probabilities,
                classes=classes,
            )
            for p, row in zip(out, values, strict=True)
        ]
    )
    response.headers["X-Request-ID"] = request_id
    return PredictResponse(
        request_id=request_id,
        model=name,
        version=version.version,
        digest=version.artifact_digest,
        features=list(features),
        classes=classes,
        predictions=out,
    )


def _explain(
    loaded: _Loaded,
    version: ModelVersion,
    features: tuple[str, ...],
    frame: Any,
    values: list[list[Any]],
    top_k: int,
) -> list[ExplanationOut]:
    import numpy as np

    label = f"{version.name} v{version.version}"
    try:
        matrix = frame.to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise ValidationError(
            "Explanations need numeric feature values.",
            hint="send numbers (or booleans) for every feature, or explain=false",
        ) from None
    explainer = loaded.explainer(features, _baseline(version, features), label)
    shap_values, base, outputs = explainer.explain(matrix)
    explained: list[ExplanationOut] = []
    for i, row in enumerate(values):
        ranked = sorted(range(len(features)), key=lambda j: (-abs(shap_values[i, j]), features[j]))
        top = ranked[:top_k]
        explained.append(
            ExplanationOut(
                method=explainer.method,
                output=explainer.output,
                base_value=base,
                prediction=float(outputs[i]),
                top=[
                    Contribution(
                        feature=features[j], value=_plain(row[j]), shap=float(shap_values[i, j])
                    )
                    for j in top
                ],
                rest=float(sum(shap_values[i, j] for j in ranked[top_k:])),
            )
        )
    return explained
