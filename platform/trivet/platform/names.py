"""Validation of user-supplied names: principals, resource paths and grant patterns.

Every name that reaches SQL, a file path or a permission check passes through here.
A segment is ``[a-z0-9._-]{1,64}`` and not made of dots only; a resource path is
``<project>/<kind>/<name>[/<more>...]``; a pattern is an exact path, ``path/*`` (the
node and everything below it) or ``*``. Workspace-level resources live under
reserved first segments that start with ``_`` (``_principals/<name>``, ``_audit``).
"""

from __future__ import annotations

import re
import unicodedata

from trivet.errors import ValidationError

__all__ = [
    "MAX_PATH",
    "RESERVED_ROOTS",
    "check_name",
    "check_pattern",
    "check_project",
    "check_resource",
    "pattern_covers",
    "pattern_includes",
]

MAX_PATH = 512
RESERVED_ROOTS = frozenset({"_principals", "_audit", "_workspace"})
_SEGMENT = re.compile(r"[a-z0-9._-]{1,64}")
_RULE = "lower-case letters, digits, '.', '_' or '-', 1 to 64 characters, not only dots"


def _is_segment(text: str) -> bool:
    return _SEGMENT.fullmatch(text) is not None and text.strip(".") != ""


def check_name(name: object, *, what: str = "name") -> str:
    """Return ``name`` if it is a valid single segment, else raise ValidationError.

    >>> check_name("credit-model")
    'credit-model'
    """
    if not isinstance(name, str):
        raise ValidationError(f"The {what} must be a string, got {type(name).__name__}.")
    if not _is_segment(name):
        suggestion = re.sub(r"[^a-z0-9._-]+", "-", unicodedata.normalize("NFC", name).lower())
        suggestion = suggestion.strip("-.")[:64]
        hint = f"use {_RULE}" + (f", e.g. {suggestion!r}" if _is_segment(suggestion) else "")
        raise ValidationError(f"The {what} {name!r} is not valid.", hint=hint)
    return name


def check_project(name: object) -> str:
    """Return ``name`` if it can name a project: a segment not starting with ``_``
    (those are reserved for the workspace's own resources, such as ``_principals``).

    >>> check_project("credit")
    'credit'
    """
    check_name(name, what="project name")
    assert isinstance(name, str)
    if name.startswith("_"):
        raise ValidationError(
            f"The project name {name!r} is reserved (names starting with '_' belong to the "
            "workspace itself).",
            hint=f"e.g. {name.lstrip('_') or 'default'!r}",
        )
    return name


def check_resource(path: object) -> str:
    """Return ``path`` if it is a valid resource path, else raise ValidationError.

    >>> check_resource("credit/feature_groups/applicants")
    'credit/feature_groups/applicants'
    """
    if not isinstance(path, str):
        raise ValidationError(f"A resource path must be a string, got {type(path).__name__}.")
    if not path or len(path) > MAX_PATH:
        raise ValidationError(
            f"The resource path {path[:80]!r} must have 1 to {MAX_PATH} characters."
        )
    segments = path.split("/")
    first, *rest = segments
    if not (_is_segment(first) or first in RESERVED_ROOTS):
        raise ValidationError(
            f"The resource path {path!r} has an invalid first segment {first!r}.",
            hint=f"segments use {_RULE}; paths look like 'project/kind/name'",
        )
    for seg in rest:
        if not _is_segment(seg):
            shown = seg if seg else "(empty)"
            raise ValidationError(
                f"The resource path {path!r} has an invalid segment {shown!r}.",
                hint=f"segments use {_RULE}; no '//', trailing '/', '*' or '..'",
            )
    return path


def check_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is ``*``, ``<path>/*`` or an exact path; else raise.

    >>> check_pattern("credit/feature_groups/*")
    'credit/feature_groups/*'
    """
    if pattern == "*":
        return "*"
    if isinstance(pattern, str) and pattern.endswith("/*"):
        check_resource(pattern[:-2])
        return pattern
    if isinstance(pattern, str) and "*" in pattern:
        raise ValidationError(
            f"The pattern {pattern!r} has a '*' that is not a whole last segment.",
            hint="use '*', 'path/*' (the node and everything below it) or an exact path",
        )
    return check_resource(pattern)


def pattern_covers(pattern: str, resource: str) -> bool:
    """Return whether ``pattern`` matches ``resource`` (segment-aware).

    >>> pattern_covers("p/fraud/*", "p/fraudulent/x")
    False
    """
    if pattern == "*":
        return True
    if pattern.endswith("/*"):
        node = pattern[:-2]
        return resource == node or resource.startswith(node + "/")
    return pattern == resource


def pattern_includes(outer: str, inner: str) -> bool:
    """Return whether every resource ``inner`` matches is matched by ``outer`` too.

    >>> pattern_includes("p/*", "p/fraud/*"), pattern_includes("p/fraud", "p/fraud/*")
    (True, False)
    """
    if outer == "*":
        return True
    if inner == "*":
        return False
    if inner.endswith("/*"):
        return outer.endswith("/*") and pattern_covers(outer, inner[:-2])
    return pattern_covers(outer, inner)
