"""Models as artifacts: skops for scikit-learn (no code runs on load), pickle on request.

A scikit-learn model is written with skops. skops refuses, on load, every type it
does not trust by default unless the caller names it; the names skops reports for a
model when it is saved are recorded in the catalog, and loading trusts exactly those.
Pickle runs arbitrary code on load, so it is written only with ``trust_pickle=True``
and read only with ``trust_pickle=True`` from a blob whose bytes hash to the digest
the catalog holds.
"""

from __future__ import annotations

import pickle
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from trivet.errors import IntegrityError, MissingDependency, ValidationError

__all__ = [
    "Flavor",
    "check_load",
    "check_request",
    "dump_model",
    "load_model_bytes",
    "model_signature",
]

Flavor = Literal["sklearn", "pickle"]
FLAVORS: tuple[Flavor, ...] = ("sklearn", "pickle")
SKOPS_MEDIA_TYPE = "application/vnd.skops"
PICKLE_MEDIA_TYPE = "application/vnd.python.pickle"

# Trusting any of these would let a skops file run code; a model that needs one is
# refused on save and on load, whatever the catalog says.
_FORBIDDEN_MODULES = frozenset(
    {
        "builtins",
        "code",
        "codeop",
        "ctypes",
        "functools",
        "importlib",
        "marshal",
        "nt",
        "operator",
        "os",
        "pickle",
        "posix",
        "pty",
        "runpy",
        "shutil",
        "socket",
        "subprocess",
        "sys",
        "webbrowser",
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


def _forbidden(types: list[str]) -> list[str]:
    return sorted(t for t in types if t.split(".", 1)[0] in _FORBIDDEN_MODULES)


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


def dump_model(model: Any, dest: Path, *, flavor: Flavor) -> tuple[str, dict[str, Any]]:
    """Write ``model`` to ``dest``; return its media type and the catalog metadata."""
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
    untrusted = sorted(str(t) for t in sio.get_untrusted_types(file=dest))
    bad = _forbidden(untrusted)
    if bad:
        raise ValidationError(
            f"The model holds objects that could run code when loaded: {', '.join(bad)}.",
            hint="remove them from the model (e.g. lambdas, functools.partial), or " + _PICKLE_HINT,
        )
    unimportable = [t for t in untrusted if "<" in t]  # <lambda>, <locals>: no import path
    if unimportable:
        raise ValidationError(
            f"The model holds objects that could not be loaded again: {', '.join(unimportable)}.",
            hint="define those functions and classes at the top level of a module",
        )
    meta["format"] = "skops"
    meta["skops_version"] = _skops_version()
    meta["trusted_types"] = untrusted
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
    data: bytes, meta: Mapping[str, Any], *, digest: str, trust_pickle: bool
) -> Any:
    """Rebuild a model from its verified bytes and its catalog metadata."""
    check_load(meta, digest=digest, trust_pickle=trust_pickle)
    if meta.get("flavor") == "pickle":
        return pickle.loads(data)  # noqa: S301 - trusted explicitly, digest verified
    if meta.get("format") != "skops":
        raise IntegrityError(f"The model {digest} has an unknown format in the catalog.")
    trusted = meta.get("trusted_types")
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        raise IntegrityError(f"The model {digest} has no list of trusted types in the catalog.")
    bad = _forbidden(trusted)
    if bad:
        raise IntegrityError(
            f"The catalog trusts types for the model {digest} that could run code: "
            f"{', '.join(bad)}; it is not loaded.",
            hint="someone edited the catalog or stored a crafted model; investigate",
        )
    sio = _skops()
    try:
        return sio.loads(data, trusted=list(trusted))
    except Exception as exc:  # skops: untrusted types, a newer format, a broken archive
        raise IntegrityError(
            f"The model {digest} cannot be loaded with the types trusted at save time: {exc}.",
            hint="load it with the scikit-learn and skops versions it was saved with "
            f"({meta.get('versions')}, skops {meta.get('skops_version')})",
        ) from exc
