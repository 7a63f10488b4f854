"""Estimators as step parameters: a canonical form the cache can key on.

A fitted-model step's result depends on the estimator's class and its constructor
parameters, not on the object's identity. :class:`EstimatorSpec` is that, as data
(a frozen dataclass the cache key hashes by value): the class as ``module:QualName``,
``get_params(deep=False)`` with nested estimators as nested specs and classes or
functions (``dtype=np.float64``) as :class:`ObjectRef`, the version of the
distribution providing the class, and — for a class of the user's own project — the
digest of its code. Equal specs build equal, unfitted estimators.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trivet.errors import ValidationError
from trivet.pipelines._expr import Expr

__all__ = ["EstimatorSpec", "ObjectRef", "split_estimator"]

_REPR_LIMIT = 200  # the length the exported definition keeps a value's repr up to


def _path_of(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _import(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(
            f"Cannot import {path!r}: {exc}.",
            hint="install the package that provides it, or define it at the top level of a module",
        ) from None
    return found


def _local_code(obj: Any) -> str | None:
    """Return the code digest of a class or function of the user's project, else None."""
    from trivet.pipelines._source import is_local_module
    from trivet.pipelines.cache import fingerprint

    if not is_local_module(getattr(obj, "__module__", None)):
        return None
    code = fingerprint(obj)
    if not code.deps:
        return code.code
    from trivet.pipelines.cache import canonical_digest

    return canonical_digest({"code": code.code, "deps": dict(code.deps)})


def _version(obj: Any) -> str | None:
    """Return ``distribution==version`` for the installed package providing ``obj``."""
    top = (getattr(obj, "__module__", None) or "").split(".", 1)[0]
    if not top:
        return None
    names = _distributions().get(top, [])
    for dist in names:
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


@dataclass(frozen=True, kw_only=True)
class ObjectRef:
    """A class or function given as an estimator parameter, by its import path.

    Attributes:
        path: ``module:QualName``.
        code: for an object of the user's project, the digest of its code.
    """

    path: str
    code: str | None = None

    @classmethod
    def of(cls, obj: Any) -> ObjectRef | None:
        """Return a reference to ``obj`` if it can be imported back by path, else None."""
        if not (inspect.isclass(obj) or isinstance(obj, types.FunctionType)):
            return None
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
        if not module or "<" in qualname:
            return None
        path = f"{module}:{qualname}"
        try:
            if _import(path) is not obj:
                return None
        except ValidationError:
            return None
        return cls(path=path, code=_local_code(obj))

    def resolve(self) -> Any:
        """Import the object."""
        return _import(self.path)


@dataclass(frozen=True, kw_only=True)
class EstimatorSpec:
    """A scikit-learn-style estimator as data: its class and constructor parameters.

    Build one from an estimator with :meth:`of`, or from a class path and parameters
    (``EstimatorSpec(cls="sklearn.linear_model:LogisticRegression", params={"C": 0.5})``);
    :meth:`build` returns a fresh, unfitted estimator. The :func:`train` step accepts
    either, and turns an estimator given inside a pipeline into a spec, so an unchanged
    estimator hits the cache and a changed hyperparameter misses.

    Attributes:
        cls: the estimator's class, ``module:QualName``.
        params: its ``get_params(deep=False)``; nested estimators are specs, classes and
            functions :class:`ObjectRef`.
        version: ``distribution==version`` of the installed package providing the class.
        code: for a class of the user's project, the digest of its code.

    >>> from sklearn.linear_model import LogisticRegression
    >>> spec = EstimatorSpec.of(LogisticRegression(C=0.5))
    >>> spec.cls, spec.params["C"]
    ('sklearn.linear_model._logistic:LogisticRegression', 0.5)
    >>> spec.build().C
    0.5
    """

    cls: str
    params: Mapping[str, Any] = field(default_factory=dict)
    version: str | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cls, str) or ":" not in self.cls:
            raise ValidationError(
                f"EstimatorSpec.cls must be 'module:ClassName', not {self.cls!r}.",
                hint="e.g. 'sklearn.linear_model:LogisticRegression', or use "
                "EstimatorSpec.of(estimator)",
            )
        if not isinstance(self.params, Mapping) or not all(isinstance(k, str) for k in self.params):
            raise ValidationError("EstimatorSpec.params must map parameter names to values.")

    @classmethod
    def of(cls, estimator: Any) -> EstimatorSpec:
        """Return the spec of an estimator (an instance with ``get_params`` and ``fit``).

        Raises:
            ValidationError: not an estimator instance, or a class defined inside a
                function (it could not be imported again).
        """
        spec, lifted = split_estimator(estimator)
        if lifted:
            raise ValidationError(
                f"The estimator's parameters {sorted(lifted)} are pipeline values, known only "
                "when the pipeline runs.",
                hint="pass the estimator to the train step; it sets them at run time",
            )
        return spec

    def build(self) -> Any:
        """Return a new, unfitted estimator of this class with these parameters.

        Raises:
            ValidationError: the class cannot be imported.
        """
        kind = _import(self.cls)
        if not inspect.isclass(kind):
            raise ValidationError(f"{self.cls!r} is not a class.")
        return kind(**{k: _build_value(v) for k, v in self.params.items()})

    def __repr__(self) -> str:
        # kept under the length an exported definition shows in full, so a changed
        # hyperparameter changes the pipeline's definition (and version)
        name = self.cls.rpartition(":")[2]
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        text = f"EstimatorSpec({name}({args}))"
        if len(text) <= _REPR_LIMIT:
            return text
        from trivet.pipelines.cache import Unhashable, canonical_digest

        try:
            digest = canonical_digest(self)
        except Unhashable:  # a parameter without a canonical value: no key either
            return f"EstimatorSpec({name}(…))"
        return f"EstimatorSpec({name}(…), sha256={digest[:16]})"


def _build_value(value: Any) -> Any:
    if isinstance(value, EstimatorSpec):
        return value.build()
    if isinstance(value, ObjectRef):
        return value.resolve()
    if isinstance(value, tuple):
        return tuple(_build_value(v) for v in value)
    if isinstance(value, list):
        return [_build_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _build_value(v) for k, v in value.items()}
    return value


def _is_estimator(value: Any) -> bool:
    return (
        not inspect.isclass(value)
        and not isinstance(value, Expr)
        and callable(getattr(value, "get_params", None))
        and callable(getattr(value, "fit", None))
    )


def split_estimator(estimator: Any) -> tuple[EstimatorSpec, dict[str, Expr]]:
    """Return an estimator's spec and the parameters that are pipeline values.

    Inside a ``@pipeline`` function an estimator may be built from pipeline parameters
    (``LogisticRegression(C=c)``): those values are expressions, resolved only when the
    pipeline runs. They are returned by their ``set_params`` names (``"clf__C"`` for
    a nested one) and left as None in the spec.

    Raises:
        ValidationError: ``estimator`` is not an estimator instance.
    """
    if isinstance(estimator, EstimatorSpec):
        return estimator, {}
    if not _is_estimator(estimator):
        what = "a class" if inspect.isclass(estimator) else f"a {type(estimator).__name__}"
        raise ValidationError(
            f"An estimator must be an instance with get_params() and fit(), not {what}.",
            hint="e.g. estimator=LogisticRegression(C=0.5), or an EstimatorSpec",
        )
    lifted: dict[str, Expr] = {}
    deep = estimator.get_params(deep=True)
    for name, value in deep.items():
        if isinstance(value, Expr):
            lifted[name] = value
    return _spec(estimator), lifted


def _spec(estimator: Any) -> EstimatorSpec:
    kind = type(estimator)
    if "<" in kind.__qualname__:
        raise ValidationError(
            f"The estimator class {kind.__qualname__!r} is defined inside a function, so it "
            "cannot be imported again to build a fresh estimator.",
            hint="define it at the top level of a module",
        )
    params = {k: _value(v) for k, v in estimator.get_params(deep=False).items()}
    return EstimatorSpec(
        cls=_path_of(kind), params=params, version=_version(kind), code=_local_code(kind)
    )


def _value(value: Any) -> Any:
    if isinstance(value, Expr):
        return None  # set at run time from the lifted parameters
    if _is_estimator(value):
        return _spec(value)
    if isinstance(value, tuple):
        return tuple(_value(v) for v in value)
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    ref = ObjectRef.of(value)
    return value if ref is None else ref
