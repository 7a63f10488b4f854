"""Models as artifacts: skops for scikit-learn (no code runs on load), pickle on request.

A scikit-learn model is written with skops. A skops file names the types and
functions it is rebuilt from; skops itself trusts only plain data, numpy arrays and
ufuncs and scikit-learn's public estimators, and reports every other name. trivet
trusts a reported name only if it is on this module's allow-list:

- classes defined in ``sklearn`` (outside its test, dataset, vendored, parallel and
  callback modules): estimators and their fitted parts (``Tree``, ``TreePredictor``,
  ``KDTree``, kernels, scorers, CV splitters...);
- functions defined in ``sklearn.metrics`` and ``sklearn.feature_selection`` (the
  score functions of ``GridSearchCV`` and ``SelectKBest``);
- numpy data types (``numpy.dtype``, scalar types) and random generators; scipy
  sparse matrices and B-splines;
- exactly ``builtins.object``, ``builtins.complex``, ``builtins.frozenset``,
  ``functools.partial`` (whose function and arguments are checked on their own),
  ``sklearn.utils.validation.check_array`` and scipy's vendored ``asarray``.

A name qualifies only if the object it resolves to is *defined* there (a re-export
such as ``joblib`` seen through a scikit-learn module does not), and no name that
mentions loading, pickling, executing, opening... does (``numpy.load``,
``numpy.memmap`` and other numpy functions do not qualify). Anything else — e.g. the
function a ``FunctionTransformer`` calls — is refused when the model is stored unless
the caller names it in ``trusted_types``, and refused when it is loaded unless *the
loader* names it too: the names a saver vouched for are kept in the catalog
(``needs_trust``) for information only, never trusted from there. What is trusted is
decided from the verified bytes at each load, not from the catalog. Modules that exist
to run code (``os``, ``subprocess``, ``builtins``, ``pydoc``, ``pickle``...) are refused
even when named.

Pickle runs arbitrary code on load, so it is written only with ``trust_pickle=True``
and read only with ``trust_pickle=True`` from a blob whose bytes hash to the digest
the catalog holds.
"""

from __future__ import annotations

import importlib
import pickle
import platform
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from trivet.errors import IntegrityError, MissingDependency, ValidationError

__all__ = [
    "Flavor",
    "check_load",
    "check_request",
    "check_trusted_types",
    "dump_model",
    "is_allowed_type",
    "load_model_bytes",
    "model_signature",
]

Flavor = Literal["sklearn", "pickle"]
FLAVORS: tuple[Flavor, ...] = ("sklearn", "pickle")
SKOPS_MEDIA_TYPE = "application/vnd.skops"
PICKLE_MEDIA_TYPE = "application/vnd.python.pickle"

# -- what a skops model may need without anyone vouching for it --------------------------
_ALLOWED_NAMES = frozenset(
    {
        "builtins.complex",
        "builtins.frozenset",
        "builtins.object",  # make_column_selector(dtype_include=object)
        "functools.partial",  # skops checks its function and arguments on their own
        "sklearn.utils.validation.check_array",  # HistGradientBoosting, categorical
        "scipy._lib.array_api_compat.numpy._aliases.asarray",  # SplineTransformer
    }
)
_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})
_FUNCTION_MODULES = ("sklearn.metrics.", "sklearn.feature_selection.")
_EXCLUDED_SEGMENTS = frozenset(
    {
        "__check_build",
        "_build_utils",
        "_datasource",
        "_npyio_impl",
        "_pytesttester",
        "_show_versions",
        "_testing",
        "callback",  # a progress monitor is a threading.Thread
        "conftest",
        "ctypeslib",
        "datasets",  # fetch_*, load_*, dump_svmlight_file: files and network
        "distutils",
        "estimator_checks",
        "externals",
        "f2py",
        "npyio",
        "parallel",
        "testing",
        "tests",
    }
)
_RISKY_NAME = re.compile(
    r"load|dump|save|pickle|marshal|exec|eval|system|spawn|popen|fork|shell|open|fetch|"
    r"download|memmap|fromfile|tofile|import|compile|subprocess",
    re.IGNORECASE,
)

# Never trusted, even when a caller names them: they exist to run code or programs.
_NEVER_MODULES = frozenset(
    {
        "_io",
        "_pickle",
        "_posixsubprocess",
        "_thread",
        "asyncio",
        "bdb",
        "builtins",
        "cloudpickle",
        "code",
        "codeop",
        "concurrent",
        "copyreg",
        "cProfile",
        "ctypes",
        "dill",
        "functools",
        "importlib",
        "io",
        "joblib",
        "marshal",
        "multiprocessing",
        "nt",
        "operator",
        "os",
        "pathlib",
        "pdb",
        "pickle",
        "posix",
        "profile",
        "pty",
        "pydoc",
        "runpy",
        "shelve",
        "shutil",
        "signal",
        "site",
        "socket",
        "subprocess",
        "sys",
        "threading",
        "timeit",
        "trace",
        "types",
        "webbrowser",
        "zipimport",
    }
)

_PICKLE_HINT = (
    "pass flavor='pickle', trust_pickle=True only if everyone who may load it trusts "
    "everyone who may write it: loading a pickle runs code"
)


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - skops is a dependency
        raise MissingDependency("skops", extra="sklearn") from exc
    return sio


def _class_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _never(types: Iterable[str]) -> list[str]:
    """Return the names no one may trust: those of modules that exist to run code."""
    return sorted(
        t
        for t in types
        if t not in _ALLOWED_NAMES
        and (t.split(".", 1)[0] in _NEVER_MODULES or re.search("pickle|marshal", t, re.I))
    )


def _defined_at(module_name: str, attr: str) -> Any:
    """Return the object ``module_name.attr`` names if it is defined there, else None.

    skops rebuilds a name with ``getattr(import_module(module), attr)``, so a module's
    imports are reachable too (``sklearn.utils.validation.joblib``); only an object
    whose own ``__module__`` and ``__name__`` are these counts.
    """
    try:
        module = importlib.import_module(module_name)
        found = getattr(module, attr)
    except Exception:  # whatever a module or its __getattr__ raises: not resolvable
        return None
    defined_here = getattr(found, "__module__", None) == module_name
    if not defined_here or getattr(found, "__name__", None) != attr:
        return None
    return found


def _is_safe_class(package: str, cls: type) -> bool:
    if package == "sklearn":
        return True
    if package == "numpy":
        import numpy as np

        random = np.random
        return issubclass(
            cls, (np.generic, np.dtype, random.BitGenerator, random.Generator)
        ) or cls in (random.RandomState, random.SeedSequence)
    from scipy import interpolate, sparse

    return issubclass(cls, (sparse.spmatrix, sparse.sparray, interpolate.BSpline))


def is_allowed_type(name: str) -> bool:
    """Return whether a name skops reports may be trusted without anyone vouching for it.

    See the module docstring for the allow-list.

    >>> is_allowed_type("sklearn.tree._tree.Tree"), is_allowed_type("numpy.load")
    (True, False)
    """
    if name in _ALLOWED_NAMES:
        return True
    module_name, _, attr = name.rpartition(".")
    segments = module_name.split(".")
    if (
        segments[0] not in _PACKAGES
        or not attr
        or _EXCLUDED_SEGMENTS.intersection(segments)
        or _RISKY_NAME.search(name)
    ):
        return False
    found = _defined_at(module_name, attr)
    if found is None:
        return False
    if isinstance(found, type):
        return _is_safe_class(segments[0], found)
    return module_name.startswith(_FUNCTION_MODULES) and callable(found)


def check_trusted_types(trusted_types: object) -> frozenset[str]:
    """Return the names a caller trusts, or raise if ``trusted_types`` is malformed."""
    if isinstance(trusted_types, str | bytes) or not isinstance(trusted_types, Iterable):
        raise ValidationError(
            f"trusted_types must be a list of names, got {type(trusted_types).__name__}.",
            hint="e.g. trusted_types=['mypackage.features.log_ratio']",
        )
    names = list(trusted_types)
    bad = [n for n in names if not isinstance(n, str) or not n or len(n) > 512]
    if bad:
        raise ValidationError(
            f"trusted_types holds {bad[0]!r}, which is not a type or function name.",
            hint="give dotted names as skops reports them, e.g. 'mypackage.module.func'",
        )
    return frozenset(names)


def _jsonable(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def model_signature(model: Any) -> dict[str, Any]:
    """Return what is cheap to know about a fitted model's inputs and outputs."""
    signature: dict[str, Any] = {}
    for attr, key in (
        ("n_features_in_", "n_features_in"),
        ("feature_names_in_", "feature_names_in"),
        ("classes_", "classes"),
    ):
        try:
            value = getattr(model, attr)
        except Exception:  # noqa: S112 - a Pipeline raises various errors for absent ones
            continue
        signature[key] = _jsonable(value)
    return signature


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    try:
        import sklearn

        found["sklearn"] = str(sklearn.__version__)
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        pass
    return found


def _is_sklearn(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, BaseEstimator)


def check_request(model: Any, *, flavor: object, trust_pickle: bool) -> Flavor:
    """Return the flavor to store ``model`` with, or raise if the request is not allowed."""
    if flavor is None:
        if not _is_sklearn(model):
            raise ValidationError(
                f"A {_class_name(model)} is not a scikit-learn estimator, so it cannot be "
                "stored without pickle.",
                hint=_PICKLE_HINT,
            )
        return "sklearn"
    if flavor == "sklearn":
        return "sklearn"
    if flavor == "pickle":
        if not trust_pickle:
            raise ValidationError(
                "Storing a model as a pickle needs trust_pickle=True.", hint=_PICKLE_HINT
            )
        return "pickle"
    raise ValidationError(
        f"The model flavor {flavor!r} is not supported.",
        hint="use flavor='sklearn' (skops) or flavor='pickle' with trust_pickle=True",
    )


def dump_model(
    model: Any, dest: Path, *, flavor: Flavor, trusted_types: frozenset[str] = frozenset()
) -> tuple[str, dict[str, Any]]:
    """Write ``model`` to ``dest``; return its media type and the catalog metadata.

    Raises:
        ValidationError: the model needs a type that is neither on the allow-list nor
            in ``trusted_types``, or one that is never trusted.
    """
    meta: dict[str, Any] = {
        "flavor": flavor,
        "class": _class_name(model),
        "signature": model_signature(model),
        "versions": _versions(),
    }
    if flavor == "pickle":
        try:
            with dest.open("wb") as out:
                pickle.dump(model, out, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ValidationError(f"The model cannot be pickled: {exc}.") from exc
        meta["format"] = "pickle"
        return PICKLE_MEDIA_TYPE, meta
    sio = _skops()
    try:
        sio.dump(model, dest)
    except Exception as exc:  # skops raises many kinds for objects it cannot represent
        raise ValidationError(
            f"skops cannot store this {_class_name(model)}: {exc}.", hint=_PICKLE_HINT
        ) from exc
    reported = sorted(str(t) for t in sio.get_untrusted_types(file=dest))
    never = _never(reported)
    if never:
        raise ValidationError(
            f"The model holds objects that could run code when loaded: {', '.join(never)}.",
            hint="remove them from the model (e.g. eval, os functions), or " + _PICKLE_HINT,
        )
    unimportable = [t for t in reported if "<" in t]  # <lambda>, <locals>: no import path
    if unimportable:
        raise ValidationError(
            f"The model holds objects that could not be loaded again: {', '.join(unimportable)}.",
            hint="define those functions and classes at the top level of a module",
        )
    needs_trust = [t for t in reported if not is_allowed_type(t)]
    unvouched = [t for t in needs_trust if t not in trusted_types]
    if unvouched:
        raise ValidationError(
            "The model holds functions or types that are not trusted by default, so "
            f"loading it could run their code: {', '.join(unvouched)}.",
            hint="if they are yours and safe to call with any arguments, pass "
            f"trusted_types={unvouched!r} here; whoever loads the model must pass them "
            "too. Otherwise " + _PICKLE_HINT,
        )
    meta["format"] = "skops"
    meta["skops_version"] = _skops_version()
    meta["skops_types"] = reported
    meta["needs_trust"] = needs_trust
    return SKOPS_MEDIA_TYPE, meta


def _skops_version() -> str:
    import skops

    return str(skops.__version__)


def check_load(meta: Mapping[str, Any], *, digest: str, trust_pickle: bool) -> None:
    """Refuse, before any byte is read, to load a pickle without ``trust_pickle``."""
    flavor = meta.get("flavor")
    if flavor == "pickle" and not trust_pickle:
        raise ValidationError(
            f"The model {digest} is a pickle; loading it runs code from whoever stored it.",
            hint="pass trust_pickle=True only if you trust everyone who may write its folder",
        )
    if flavor not in FLAVORS:
        raise IntegrityError(f"The model {digest} has an unknown flavor {flavor!r} in the catalog.")


def load_model_bytes(
    data: bytes,
    meta: Mapping[str, Any],
    *,
    digest: str,
    trust_pickle: bool,
    trusted_types: frozenset[str] = frozenset(),
) -> Any:
    """Rebuild a model from its verified bytes.

    For skops, the types to trust are decided here from the bytes: the allow-list plus
    ``trusted_types`` (the loader's own), never what the catalog records.

    Raises:
        ValidationError: a pickle without ``trust_pickle``; a skops model that needs
            types the loader did not trust.
        IntegrityError: an unknown format, a broken file, or one that needs types that
            are never trusted.
    """
    check_load(meta, digest=digest, trust_pickle=trust_pickle)
    if meta.get("flavor") == "pickle":
        return pickle.loads(data)  # noqa: S301 - trusted explicitly, digest verified
    if meta.get("format") != "skops":
        raise IntegrityError(f"The model {digest} has an unknown format in the catalog.")
    sio = _skops()
    try:
        reported = sorted(str(t) for t in sio.get_untrusted_types(data=data))
    except Exception as exc:  # a broken archive or schema
        raise IntegrityError(f"The model {digest} is not a readable skops file: {exc}.") from exc
    never = _never(reported)
    if never:
        raise IntegrityError(
            f"The model {digest} holds types that could run code: {', '.join(never)}; "
            "it is not loaded.",
            hint="trivet never stores such a model: someone crafted it; investigate",
        )
    missing = [t for t in reported if not is_allowed_type(t) and t not in trusted_types]
    if missing:
        raise ValidationError(
            f"The model {digest} needs functions or types that are not trusted by "
            f"default, so loading it could run their code: {', '.join(missing)}.",
            hint="load it with trusted_types=[...] naming them only if you trust "
            "everyone who may write the folders that hold it",
        )
    try:
        return sio.loads(data, trusted=reported)
    except Exception as exc:  # skops: a newer format, a broken archive
        raise IntegrityError(
            f"The model {digest} cannot be loaded: {exc}.",
            hint="load it with the scikit-learn and skops versions it was saved with "
            f"({meta.get('versions')}, skops {meta.get('skops_version')})",
        ) from exc
