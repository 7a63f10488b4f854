"""trivet: a local-first ML platform — feature store, pipelines and clarify on one identity layer.

>>> import trivet
>>> session = trivet.connect()          # doctest: +SKIP
>>> session.identity.whoami().name      # doctest: +SKIP
'alice'
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from typing import TYPE_CHECKING

from trivet.platform.lazy import lazy_names

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


# Names load on first use, so `import trivet`, `trivet --help` and the parts' CLIs stay
# fast: heavy dependencies load with the command that needs them.
__getattr__, __dir__ = lazy_names(__name__, _LAZY)
