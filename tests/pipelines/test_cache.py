"""The cache key: every case from issue #5, each rerun checked hit or miss per step."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import trivet
from trivet.pipelines import Execution, Pipelines, pipeline, step
from trivet.pipelines import cache as cache_module
from trivet.pipelines.cache import Unhashable, canonical, canonical_digest, fingerprint
from trivet.platform.artifacts._base import blob_key

HELPERS = """
def offset(n):
    return 1
"""

FLOW = """
import numpy as np

from trivet.pipelines import pipeline, step
import helpers_{u} as helpers

SCALE = 2


def local_helper(x):
    return x * SCALE


@step
def compute(n: int) -> int:
    return local_helper(n) + helpers.offset(n)


@step
def final(x: int) -> int:
    return int(np.int64(x)) + 1


@pipeline
def flow(n: int = 3) -> None:
    final(compute(n))
"""


def hits(execution: Execution) -> dict[str, bool]:
    assert execution.succeeded, execution.error
    return {s.name: s.cache_hit for s in execution.steps}


@pytest.fixture
def flow(user_modules: Any) -> tuple[Any, ModuleType]:
    user_modules("helpers", HELPERS)
    return user_modules, user_modules("flow", FLOW)


def test_identical_rerun_hits(pl: Pipelines, flow: tuple[Any, ModuleType]) -> None:
    _, mod = flow
    first = pl.run(mod.flow)
    assert hits(first) == {"compute": False, "final": False}
    again = pl.run(mod.flow)
    assert hits(again) == {"compute": True, "final": True}
    assert pl.output(again.id, "final") == 3 * 2 + 1 + 1
    assert again.step("compute").cache_note.startswith("hit")


def test_comment_docstring_and_formatting_edits_hit(
    pl: Pipelines, flow: tuple[Any, ModuleType]
) -> None:
    write, mod = flow
    pl.run(mod.flow)
    edited = FLOW.replace(
        "def compute(n: int) -> int:\n    return local_helper(n) + helpers.offset(n)",
        'def compute(n: int) -> int:\n    """Now documented."""\n    # a comment\n'
        "    return (local_helper(n)\n            + helpers.offset(n))  # trailing",
    ).replace("@step\ndef compute", "@step(retries=1)\ndef compute")
    assert edited != FLOW
    mod = write("flow", edited)
    assert hits(pl.run(mod.flow)) == {"compute": True, "final": True}


def test_body_edit_misses_but_identical_output_lets_downstream_hit(
    pl: Pipelines, flow: tuple[Any, ModuleType]
) -> None:
    write, mod = flow
    pl.run(mod.flow)
    mod = write("flow", FLOW.replace("helpers.offset(n)\n", "helpers.offset(n) + 0\n"))
    run = pl.run(mod.flow)
    assert hits(run) == {"compute": False, "final": True}  # same bytes out: downstream hits
    why = pl.explain_miss(run.id, "compute")
    assert "the step's code changed (its statements, not comments or docstrings)" in why.differences


def test_same_module_helper_edit_misses(pl: Pipelines, flow: tuple[Any, ModuleType]) -> None:
    write, mod = flow
    pl.run(mod.flow)
    mod = write("flow", FLOW.replace("return x * SCALE", "return x * SCALE * 10"))
    run = pl.run(mod.flow)
    assert hits(run) == {"compute": False, "final": False}
    suffix = write.suffix
    assert pl.explain_miss(run.id, "compute").differences == (
        f"helper flow_{suffix}:local_helper changed",
    )


def test_other_module_helper_edit_misses(pl: Pipelines, flow: tuple[Any, ModuleType]) -> None:
    write, mod = flow
    pl.run(mod.flow)
    write("helpers", HELPERS.replace("return 1", "return 5"))
    run = pl.run(mod.flow)
    assert hits(run) == {"compute": False, "final": False}
    assert pl.output(run.id, "final") == 3 * 2 + 5 + 1
    why = pl.explain_miss(run.id, "compute")
    assert why.differences == (f"helper helpers_{write.suffix}:offset changed",)
    assert "helpers_" in str(why)


def test_module_constant_edit_misses(pl: Pipelines, flow: tuple[Any, ModuleType]) -> None:
    write, mod = flow
    pl.run(mod.flow)
    mod = write("flow", FLOW.replace("SCALE = 2", "SCALE = 3"))
    run = pl.run(mod.flow)
    assert hits(run) == {"compute": False, "final": False}
    assert pl.explain_miss(run.id, "compute").differences == (
        f"constant flow_{write.suffix}.SCALE changed",
    )


def test_parameter_change_misses_and_why_names_it(
    pl: Pipelines, flow: tuple[Any, ModuleType]
) -> None:
    _, mod = flow
    pl.run(mod.flow)
    run = pl.run(mod.flow, params={"n": "4"})  # a string, as from the CLI
    assert hits(run) == {"compute": False, "final": False}
    assert pl.explain_miss(run.id, "compute").differences == ("parameter 'n': 3 → 4",)
    back = pl.run(mod.flow, params={"n": 3})
    assert hits(back) == {"compute": True, "final": True}


def test_library_version_change_misses(
    pl: Pipelines, flow: tuple[Any, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, mod = flow
    first = pl.run(mod.flow)
    assert "numpy" in fingerprint(mod.final.fn).packages
    assert "numpy" not in fingerprint(mod.compute.fn).packages
    real = cache_module.distribution_version

    def fake(dist: str) -> str | None:
        return "999.0" if dist == "numpy" else real(dist)

    monkeypatch.setattr(cache_module, "distribution_version", fake)
    run = pl.run(mod.flow)
    assert hits(run) == {"compute": True, "final": False}
    why = pl.explain_miss(run.id, "final")
    assert why.closest_execution == first.id
    assert why.differences == (f"package numpy: {real('numpy')} → 999.0",)


def test_deleted_payload_reruns(pl: Pipelines, flow: tuple[Any, ModuleType]) -> None:
    _, mod = flow
    first = pl.run(mod.flow)
    digest = first.step("compute").output_digest
    assert digest is not None
    pl._s.artifacts.blobs.delete(blob_key(digest))
    run = pl.run(mod.flow)
    assert hits(run) == {"compute": False, "final": True}
    assert "payload is missing" in run.step("compute").cache_note
    assert pl.output(run.id, "compute") == 7  # and the payload is back


def test_unhashable_argument_forces_a_run_and_says_so(pl: Pipelines) -> None:
    class Opaque:
        pass

    @step
    def use(thing: Any) -> int:
        return 1

    @pipeline
    def p_opaque() -> None:
        use(Opaque())

    for _ in range(2):
        run = pl.run(p_opaque)
        assert hits(run) == {"use": False}
        assert "has no canonical form" in run.step("use").cache_note
        assert "Opaque" in run.step("use").cache_note


def test_cache_false_expiry_and_refresh(pl: Pipelines) -> None:
    @step(cache=False)
    def never(x: int) -> int:
        return x

    @step(cache_expiry=dt.timedelta(microseconds=1))
    def short(x: int) -> int:
        return x

    @step
    def normal(x: int) -> int:
        return x

    @pipeline
    def p_opts(x: int = 1) -> None:
        never(x)
        short(x)
        normal(x)

    pl.run(p_opts)
    run = pl.run(p_opts)
    assert hits(run) == {"never": False, "short": False, "normal": True}
    assert run.step("never").cache_note == "forced: the step has cache=False"
    assert run.step("short").cache_note == "miss: the cached result expired"
    refreshed = pl.run(p_opts, refresh=True)
    assert hits(refreshed) == {"never": False, "short": False, "normal": False}


def test_dict_parameter_key_order_hits(pl: Pipelines) -> None:
    @step
    def take(grid: dict[str, Any]) -> int:
        return len(grid)

    @pipeline
    def p_grid(grid: dict[str, Any] | None = None) -> None:
        take(grid)

    pl.run(p_grid, params={"grid": {"a": 1, "b": [1, 2]}})
    run = pl.run(p_grid, params={"grid": '{"b": [1, 2], "a": 1}'})
    assert hits(run) == {"take": True}
    changed = pl.run(p_grid, params={"grid": {"a": 1, "b": [2, 1]}})
    assert hits(changed) == {"take": False}


def test_input_file_changed_in_place_misses_touched_file_hits(
    pl: Pipelines, tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n2\n")

    @step
    def count(path: Path) -> int:
        return len(path.read_text().splitlines())

    @pipeline
    def p_file(path: Path = data) -> None:
        count(path)

    assert hits(pl.run(p_file)) == {"count": False}
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touched only
    assert hits(pl.run(p_file)) == {"count": True}
    data.write_text("a\n1\n3\n")  # same size, same name, new content
    run = pl.run(p_file)
    assert hits(run) == {"count": False}
    assert pl.output(run.id, "count") == 3
    assert pl.explain_miss(run.id, "count").differences[0].startswith("parameter 'path'")


def test_cache_scope_is_the_project_not_the_pipeline(pl: Pipelines) -> None:
    @step
    def shared(x: int) -> int:
        return x * 2

    @pipeline
    def first(x: int = 2) -> None:
        shared(x)

    @pipeline
    def second(x: int = 2) -> None:
        shared(x)

    pl.run(first)
    assert hits(pl.run(second)) == {"shared": True}


def test_canonical_forms() -> None:
    assert canonical_digest({"a": 1, "b": 2}) == canonical_digest({"b": 2, "a": 1})
    assert canonical_digest((1, 2)) == canonical_digest([1, 2])
    assert canonical_digest(1) != canonical_digest(1.0)
    assert canonical({"s": {3, 1, 2}}) == {"s": {"set": [1, 2, 3]}}
    assert canonical(float("nan")) == {"float": "nan"}
    with pytest.raises(Unhashable):
        canonical(object())


def test_session_of_a_hit_can_read_the_output(admin: trivet.Session, pl: Pipelines) -> None:
    @step
    def make() -> dict[str, int]:
        return {"a": 1}

    @pipeline
    def p_read() -> None:
        make()

    pl.run(p_read)
    again = pl.run(p_read)
    assert again.step("make").cache_hit
    # the hit is filed in the new run's folder too
    folders = {r.folder for r in admin.artifacts.list(f"default/runs/{again.id}")}
    assert folders == {f"default/runs/{again.id}"}
