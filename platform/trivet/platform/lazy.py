"""Lazy public names for a package's ``__init__`` (standard library only).

``import trivet`` and ``trivet --help`` stay fast because packages expose their public
names without importing the modules behind them until a name is first used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` a package defines to load ``names``
    (public name → module defining it) on first use.

    >>> __getattr__, __dir__ = lazy_names(__name__, {"dedent": "textwrap"})  # doctest: +SKIP
    """
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        source = names.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(module, name, value)  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(names))

    return __getattr__, __dir__
