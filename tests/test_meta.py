"""Meta-tests: conventions the whole package keeps."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = [
    "trivet",
    "trivet.errors",
    "trivet.featurestore",
    "trivet.clarify",
    "trivet.pipelines",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    names = list(module.__all__)
    assert names == sorted(names), f"{name}.__all__ is not sorted"
    for attr in names:
        assert getattr(module, attr) is not None


def test_import_trivet_is_light() -> None:
    code = (
        "import sys, trivet; heavy = [m for m in ('sqlalchemy', 'pandas', 'numpy', 'typer', "
        "'sklearn', 'pyarrow') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import trivet pulled in: {out.stdout.strip()}"


def test_no_top_level_platform_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert not list((ROOT / "tests").rglob("platform/__init__.py"))
    import platform

    assert hasattr(platform, "python_version"), "the stdlib platform module is shadowed"


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / ".ci" / "lint-imports")], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_cli_loads_no_heavy_library_before_a_command_needs_it() -> None:
    code = (
        "import sys, trivet.cli; heavy = [m for m in ('sqlalchemy', 'pandas', 'numpy', "
        "'sklearn', 'pyarrow', 'duckdb', 'deltalake', 'shap') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"`trivet --help` would load: {out.stdout.strip()}"
