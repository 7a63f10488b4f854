"""Fixtures for the pipelines tests: a Pipelines handle and editable user modules."""

from __future__ import annotations

import importlib
import linecache
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import trivet
from trivet.pipelines import Pipelines


@pytest.fixture
def pl(admin: trivet.Session) -> Pipelines:
    """Pipelines as the workspace's admin."""
    return Pipelines(admin)


ModuleWriter = Callable[[str, str], ModuleType]


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleWriter]:
    """Write (or rewrite) a module of the user's project and import (or reload) it.

    ``write(name, source)``: ``{u}`` in the source becomes a suffix unique to the test,
    so module names never clash across tests; ``name`` gets the same suffix.
    """
    suffix = uuid.uuid4().hex[:8]
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    loaded: list[str] = []

    def write(name: str, source: str) -> ModuleType:
        module_name = f"{name}_{suffix}"
        path = folder / f"{module_name}.py"
        path.write_text(textwrap.dedent(source).replace("{u}", suffix))
        linecache.clearcache()
        importlib.invalidate_caches()
        if module_name in sys.modules:
            return importlib.reload(sys.modules[module_name])
        loaded.append(module_name)
        return importlib.import_module(module_name)

    write.suffix = suffix  # type: ignore[attr-defined]
    yield write
    for name in loaded:
        sys.modules.pop(name, None)
