"""trivet: a local-first ML platform — feature store, pipelines and clarify on one identity layer.

>>> import trivet
>>> session = trivet.connect()          # doctest: +SKIP
>>> session.identity.whoami().name      # doctest: +SKIP
'alice'
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "BackendError",
    "Conflict",
    "IntegrityError",
    "MissingDependency",
    "NotAuthenticated",
    "NotFound",
    "PermissionDenied",
    "Session",
    "TrivetError",
    "ValidationError",
    "__version__",
    "connect",
    "init",
]

if TYPE_CHECKING:
    from trivet._session import Session, connect, init
    from trivet.errors import (
        AlreadyExists,
        BackendError,
        Conflict,
        IntegrityError,
        MissingDependency,
        NotAuthenticated,
        NotFound,
        PermissionDenied,
        TrivetError,
        ValidationError,
    )

_LAZY = {
    "Session": "trivet._session",
    "connect": "trivet._session",
    "init": "trivet._session",
    "AlreadyExists": "trivet.errors",
    "BackendError": "trivet.errors",
    "IntegrityError": "trivet.errors",
    "MissingDependency": "trivet.errors",
    "Conflict": "trivet.errors",
    "NotAuthenticated": "trivet.errors",
    "NotFound": "trivet.errors",
    "PermissionDenied": "trivet.errors",
    "TrivetError": "trivet.errors",
    "ValidationError": "trivet.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trivet' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
