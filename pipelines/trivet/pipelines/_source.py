"""Where a pipeline's code lives: module labels, function ids, project-local modules,
and loading a pipeline from a file (``trivet pipelines run FILE.py:NAME``)."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import site
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from trivet.errors import NotFound, ValidationError, did_you_mean

if TYPE_CHECKING:
    from trivet.pipelines.dag import Pipeline

__all__ = [
    "FILE_MODULE_PREFIX",
    "function_id",
    "is_local_module",
    "load_pipeline",
    "module_label",
    "source_of",
]

FILE_MODULE_PREFIX = "_trivet_file_"
"""Modules loaded from a file path are registered under this prefix and the file's stem."""


def module_label(name: str) -> str:
    """Return a module's stable label: a script's or a loaded file's stem, else its name.

    The same file run as ``python pipeline.py`` (``__main__``) and loaded by
    ``trivet pipelines run pipeline.py`` gets the same label, so its cache keys match.
    """
    if name == "__main__":
        main = sys.modules.get("__main__")
        file = getattr(main, "__file__", None)
        return Path(file).stem if file else name
    return name.removeprefix(FILE_MODULE_PREFIX)


def function_id(obj: Any) -> str:
    """Return ``module:qualname`` of a function or class, with the module's label."""
    module = module_label(getattr(obj, "__module__", None) or "?")
    return f"{module}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    roots.add(sys.base_prefix)
    return tuple(sorted({os.path.realpath(r) + os.sep for r in roots if r}))


def is_local_module(name: str | None) -> bool:
    """Return whether a module is the project's own code (not stdlib, trivet or installed).

    Project code is what the cache key follows into, function by function; installed
    distributions count by their versions instead.
    """
    if not name:
        return False
    top = name.split(".", 1)[0]
    if top in sys.stdlib_module_names or top in ("builtins", "trivet"):
        return False
    if name == "__main__":
        return True
    module = sys.modules.get(name)
    if module is None:
        return True  # code run by exec (a notebook cell, a docs example): the user's
    file = getattr(module, "__file__", None)
    if file is None:
        return False  # a built-in or namespace module
    real = os.path.realpath(file)
    return not any(real.startswith(root) for root in _library_roots())


def source_of(pipeline: Pipeline) -> dict[str, str]:
    """Return how to load ``pipeline`` again (for ``retry``): its module, file and name."""
    fn = pipeline.fn
    module = sys.modules.get(fn.__module__)
    file = getattr(module, "__file__", None)
    return {
        "module": fn.__module__,
        "file": str(Path(file).resolve()) if file else "",
        "name": fn.__name__,
    }


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise NotFound(f"The pipeline file {str(path)!r} does not exist.")
    name = FILE_MODULE_PREFIX + path.stem.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValidationError(f"{str(path)!r} is not a Python file.", hint="give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # so the file's own helper modules import
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _pick(module: ModuleType, name: str | None, where: str) -> Pipeline:
    from trivet.pipelines.dag import Pipeline

    found = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
    if name is not None:
        chosen = found.get(name)
        if chosen is None:
            by_pipeline_name = [p for p in found.values() if p.name == name]
            if len(by_pipeline_name) == 1:
                return by_pipeline_name[0]
            raise NotFound(
                f"{where} defines no pipeline {name!r}.",
                hint=did_you_mean(name, found) or "decorate a function with @pipeline",
            )
        return chosen
    if len(found) != 1:
        raise ValidationError(
            f"{where} defines {len(found)} pipelines"
            + (f" ({', '.join(sorted(found))})" if found else "")
            + "; say which.",
            hint=f"use {where}:NAME",
        )
    return next(iter(found.values()))


def load_pipeline(spec: str | dict[str, str]) -> Pipeline:
    """Load a pipeline from ``FILE.py[:NAME]``, ``module[:NAME]`` or a :func:`source_of` dict."""
    if isinstance(spec, dict):
        module_name, file, name = spec.get("module", ""), spec.get("file", ""), spec.get("name")
        existing = sys.modules.get(module_name)
        if existing is not None and module_name != "__main__":
            return _pick(existing, name, module_name)
        if file:
            return _pick(_load_file(Path(file)), name, file)
        return _pick(importlib.import_module(module_name), name, module_name)
    target, _, name = spec.partition(":")
    if target.endswith(".py") or os.sep in target:
        path = Path(target).resolve()
        return _pick(_load_file(path), name or None, target)
    try:
        module = importlib.import_module(target)
    except ImportError as exc:
        raise NotFound(
            f"Cannot import {target!r}: {exc}.", hint="give FILE.py[:NAME] or module[:NAME]"
        ) from exc
    return _pick(module, name or None, target)
