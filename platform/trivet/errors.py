"""The trivet error tree.

Every error a user can cause is a :class:`TrivetError`. Each class carries the HTTP
status the server answers with and the exit code the CLI ends with; each message says
what failed, quotes the offending value and, in ``hint``, proposes a fix. Errors pickle,
so they cross process and Dask boundaries unchanged.

This module depends on the standard library only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "BackendError",
    "Conflict",
    "IntegrityError",
    "MissingDependency",
    "NotAuthenticated",
    "NotFound",
    "PermissionDenied",
    "TrivetError",
    "ValidationError",
    "did_you_mean",
]


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """Return a hint naming the closest known names to ``name``, or the known names."""
    options = sorted(set(known))
    if not options:
        return None
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    if len(options) <= 8:
        return "known: " + ", ".join(repr(o) for o in options)
    return None


class TrivetError(Exception):
    """Root of every error trivet raises for a user's mistake or an environment problem."""

    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message} ({hint})")
        self.message = message
        self.hint = hint

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.hint, dict(self.__dict__)))

    def to_dict(self) -> dict[str, str | None]:
        """Return the JSON body the server and ``--json`` CLI output use."""
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}


def _rebuild(
    cls: type[TrivetError], message: str, hint: str | None, state: dict[str, Any]
) -> TrivetError:
    err = TrivetError.__new__(cls)
    TrivetError.__init__(err, message, hint=hint)
    err.__dict__.update(state)
    return err


class ValidationError(TrivetError):
    """An argument, a name or a piece of data is malformed."""

    http_status = 422
    exit_code = 2


class NotAuthenticated(TrivetError):
    """No identity could be established: no token, a bad, expired or revoked one."""

    http_status = 401
    exit_code = 4


class PermissionDenied(TrivetError):
    """The principal may not perform the action on the resource."""

    http_status = 403
    exit_code = 5


class NotFound(TrivetError):
    """The named thing does not exist (or the caller may not know that it does)."""

    http_status = 404
    exit_code = 3


class AlreadyExists(TrivetError):
    """A thing with that name exists already."""

    http_status = 409
    exit_code = 6


class Conflict(TrivetError):
    """The request contradicts the current state (e.g. approving a rejected version)."""

    http_status = 409
    exit_code = 6


class IntegrityError(TrivetError):
    """Stored data does not match its recorded digest or chain: it was altered or lost."""

    http_status = 500
    exit_code = 7


class BackendError(TrivetError):
    """A storage backend (database, object store, online store) failed."""

    http_status = 503
    exit_code = 8


class MissingDependency(TrivetError):
    """An optional dependency is needed for this feature and is not installed."""

    http_status = 501
    exit_code = 9

    def __init__(self, module: str, *, extra: str) -> None:
        super().__init__(
            f"This feature needs the optional package {module!r}, which is not installed.",
            hint=f"install it with: uv add 'trivet[{extra}]' (or pip install 'trivet[{extra}]')",
        )
        self.module = module
        self.extra = extra
