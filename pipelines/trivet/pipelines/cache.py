"""Cache keys that are correct by construction, and explanations of misses.

A step's result is reused only when its key matches an earlier successful run in the
same project. The key is the sha256 of these *components*:

* ``format``: the key format's version (bumped when this module changes how keys are made);
* ``code``: the step function's normalised AST — comments, docstrings, formatting and
  the ``@step`` decorator line do not count;
* ``deps``: transitively, every project-local function, class and module constant the
  step reaches (through its globals, closures, module attributes and imports), each
  by its normalised AST or its canonical value;
* ``packages``: the version of every installed distribution the step or those helpers
  import or reference (``importlib.metadata``);
* ``params``: the arguments that are not step outputs, canonically serialised (dict
  key order does not matter; a ``Path`` counts by its content, not its name or mtime);
  an argument with no canonical form forces the step to run, and says so;
* ``inputs``: each upstream output by its artifact digest (so a rerun upstream that
  produced identical bytes lets the downstream step hit);
* ``python``: the interpreter and its version;
* ``serializers``: the versions of the output formats.

Code the key cannot see: objects without a canonical value that are not the project's
(a logger, a database client) count by their type and their distribution's version;
code reached only dynamically (``getattr(module, name_in_a_variable)``) is not
followed; data read from outside (a URL, a table) is not hashed — pass it as a
``Path`` or a step output, or set ``cache=False``.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import importlib.metadata
import inspect
import json
import math
import sys
import textwrap
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trivet.pipelines._source import function_id, is_local_module, module_label

__all__ = [
    "KEY_FORMAT",
    "SERIALIZERS",
    "CacheExplanation",
    "CacheKey",
    "CodeFingerprint",
    "Unhashable",
    "canonical",
    "canonical_digest",
    "diff_components",
    "distribution_version",
    "fingerprint",
    "make_key",
]

KEY_FORMAT = "1"
SERIALIZERS: Mapping[str, int] = {"json": 1, "none": 1, "parquet": 1, "skops": 1}
_INLINE = 200  # canonical parameter values up to this many characters are kept readable


class Unhashable(Exception):
    """A value has no canonical form (internal: the engine forces the step to run)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _path_digest(path: Path) -> Any:
    """Return a path's content digest: a file's bytes, a folder's files and names."""
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                h.update(chunk)
        return {"file": h.hexdigest()}
    if path.is_dir():
        entries = [
            [p.relative_to(path).as_posix(), _path_digest(p)["file"]]
            for p in sorted(path.rglob("*"))
            if p.is_file()
        ]
        return {"dir": _sha(_dumps(entries))}
    return {"missing": str(path)}


def canonical(value: Any) -> Any:
    """Return ``value`` as canonical JSON data, or raise :class:`Unhashable`.

    Dicts are compared without regard to key order, tuples equal lists, a ``Path``
    is its content's digest, NumPy scalars their Python value.
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {k: canonical(v) for k, v in value.items()}
        items = [[canonical(k), canonical(v)] for k, v in value.items()]
        return {"items": sorted(items, key=_dumps)}
    if isinstance(value, set | frozenset):
        return {"set": sorted((canonical(v) for v in value), key=_dumps)}
    if isinstance(value, Path):
        return _path_digest(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return {"time": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"timedelta": value.total_seconds()}
    if isinstance(value, enum.Enum):
        return {"enum": f"{type(value).__qualname__}.{value.name}"}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"bytes": _sha(bytes(value))}
    if type(value).__module__ == "numpy":
        if getattr(value, "shape", None) == () and hasattr(value, "item"):
            return canonical(value.item())
        if hasattr(value, "tobytes") and getattr(value.dtype, "hasobject", True) is False:
            return {
                "ndarray": _sha(value.tobytes()),
                "dtype": str(value.dtype),
                "shape": list(value.shape),
            }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "dataclass": function_id(type(value)),
            "fields": {
                f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
            },
        }
    raise Unhashable(type(value).__qualname__)


def canonical_digest(value: Any) -> str:
    """Return the sha256 of ``value``'s canonical JSON (raises :class:`Unhashable`)."""
    return _sha(_dumps(canonical(value)))


def _readable(value: Any) -> Any:
    """Return a canonical value as kept in the key's components: inline if short."""
    text = _dumps(value)
    return value if len(text) <= _INLINE else {"sha256": _sha(text)}


# -- distributions ----------------------------------------------------------------------------
@functools.cache
def _module_distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def distribution_version(distribution: str) -> str | None:
    """Return the installed version of ``distribution`` (None if it is not installed)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _packages_of(module: str) -> dict[str, str]:
    """Return the distributions (with versions) that provide top-level ``module``."""
    top = module.split(".", 1)[0]
    if top in sys.stdlib_module_names or top in ("builtins", "__main__"):
        return {}
    found: dict[str, str] = {}
    for dist in _module_distributions().get(top, []):
        version = distribution_version(dist)
        if version is not None:
            found[dist] = version
    if not found:
        loaded = sys.modules.get(top)
        version = getattr(loaded, "__version__", None)
        if isinstance(version, str):
            found[top] = version
    return found


# -- code ---------------------------------------------------------------------------------------
def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def _bytecode_digest(code: types.CodeType) -> str:
    parts: list[str] = [code.co_code.hex(), repr(code.co_names), repr(code.co_varnames)]
    for const in code.co_consts:
        parts.append(_bytecode_digest(const) if isinstance(const, types.CodeType) else repr(const))
    return _sha("\x00".join(parts))


def _code_digest(obj: Any, *, strip_decorators: bool = False) -> str:
    """Return the digest of a function's or class's normalised AST.

    Falls back to the bytecode where the source is not available (code run by exec).
    A function's is remembered by its code object: the source it was compiled from does
    not change while the code object lives (an edited file makes new code objects when
    it is imported again).
    """
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        key = (code, strip_decorators)
        digest = _DIGESTS.get(key)
        if digest is None:
            digest = _source_digest(obj, strip_decorators=strip_decorators)
            if len(_DIGESTS) >= _REMEMBERED:
                _DIGESTS.clear()
            _DIGESTS[key] = digest
        return digest
    return _source_digest(obj, strip_decorators=strip_decorators)


_REMEMBERED = 4096
_DIGESTS: dict[tuple[types.CodeType, bool], str] = {}
_NAMES: dict[types.CodeType, tuple[frozenset[str], frozenset[str]]] = {}


def _source_digest(obj: Any, *, strip_decorators: bool) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        code = getattr(obj, "__code__", None)
        if code is not None:
            return "bytecode:" + _bytecode_digest(code)
        return "opaque:" + function_id(obj)
    _strip_docstrings(tree)
    if strip_decorators:
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                stmt.decorator_list = []
    return _sha(ast.dump(tree, include_attributes=False))


def _code_objects(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(_code_objects(const))
    return found


def _names_and_imports(code: types.CodeType) -> tuple[frozenset[str], frozenset[str]]:
    """Return the global names a code object (and its nested code) uses, and its imports."""
    found = _NAMES.get(code)
    if found is not None:
        return found
    import dis

    names: set[str] = set()
    imports: set[str] = set()
    for c in _code_objects(code):
        names.update(c.co_names)
        for ins in dis.get_instructions(c):
            if ins.opname == "IMPORT_NAME" and isinstance(ins.argval, str) and ins.argval:
                imports.add(ins.argval)
    if len(_NAMES) >= _REMEMBERED:
        _NAMES.clear()
    found = _NAMES[code] = (frozenset(names), frozenset(imports))
    return found


@dataclasses.dataclass(frozen=True, kw_only=True)
class CodeFingerprint:
    """What a step's code contributes to its key."""

    code: str
    deps: Mapping[str, str]
    packages: Mapping[str, str]


class _Walker:
    def __init__(self) -> None:
        self.deps: dict[str, str] = {}
        self.packages: dict[str, str] = {}
        self._walked: set[int] = set()

    def package(self, module: str | None) -> None:
        if not module or (module in sys.modules and is_local_module(module)):
            return
        self.packages.update(_packages_of(module))

    def code(self, fn: Any) -> None:
        code = getattr(fn, "__code__", None)
        if code is None or id(code) in self._walked:
            return
        self._walked.add(id(code))
        names, imports = _names_and_imports(code)
        module = getattr(fn, "__module__", None) or ""
        scope = getattr(fn, "__globals__", {})
        for name in sorted(names):
            if name in scope:
                self.reach(scope[name], name, module, names)
        for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            self.reach(value, name, module, names)
        for imported in sorted(imports):
            loaded = sys.modules.get(imported)
            if loaded is not None:
                self.reach(loaded, imported, module, names)
            else:  # not imported yet: only an installed distribution can be told
                self.package(imported)

    def reach(self, obj: Any, name: str, module: str, names: frozenset[str]) -> None:
        from trivet.pipelines.dag import Pipeline
        from trivet.pipelines.step import Step

        if isinstance(obj, Step):
            obj = obj.fn
        if isinstance(obj, Pipeline):
            return
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        if isinstance(obj, functools.partial):
            self.reach(obj.func, name, module, names)
            obj = (obj.args, obj.keywords)
        if isinstance(obj, types.ModuleType):
            if is_local_module(obj.__name__):
                if id(obj) in self._walked:
                    return
                self._walked.add(id(obj))
                for attr in sorted(names & set(vars(obj))):
                    self.reach(getattr(obj, attr), attr, obj.__name__, names)
            else:
                self.package(obj.__name__)
            return
        if isinstance(obj, types.FunctionType) or inspect.isclass(obj):
            owner = getattr(obj, "__module__", None)
            if not is_local_module(owner):
                self.package(owner)
                return
            label = function_id(obj)
            if label in self.deps:
                return
            self.deps[label] = _code_digest(obj)
            if inspect.isclass(obj):
                for member in vars(obj).values():
                    fn = getattr(member, "__func__", None) or getattr(member, "fget", None)
                    self.code(fn if fn is not None else member)
            else:
                self.code(obj)
            return
        if callable(obj) and not is_local_module(getattr(obj, "__module__", None)):
            self.package(getattr(obj, "__module__", None))
            return
        if not is_local_module(module):
            return
        label = f"{module_label(module)}.{name}"
        if label in self.deps:
            return
        try:
            self.deps[label] = canonical_digest(obj)
        except Unhashable:
            kind = type(obj)
            self.deps[label] = f"opaque:{function_id(kind)}"
            self.reach(kind, kind.__name__, module, names)


def fingerprint(fn: Any) -> CodeFingerprint:
    """Return the code part of a step function's cache key (see the module's docs)."""
    walker = _Walker()
    code = _code_digest(fn, strip_decorators=True)
    walker.code(fn)
    walker.deps.pop(function_id(fn), None)
    return CodeFingerprint(
        code=code,
        deps=dict(sorted(walker.deps.items())),
        packages=dict(sorted(walker.packages.items())),
    )


# -- keys ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class CacheKey:
    """A step's cache key: its digest and the components it was made from."""

    digest: str
    components: Mapping[str, Any]


def python_version() -> str:
    """Return the interpreter's name and version, as the key records it."""
    v = sys.version_info
    return f"{sys.implementation.name}-{v.major}.{v.minor}.{v.micro}"


def make_key(
    *,
    function: str,
    code: CodeFingerprint,
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> CacheKey:
    """Return the cache key of a step call.

    Args:
        function: the step function's id (``module:qualname``).
        code: its :func:`fingerprint`.
        params: canonical values of the arguments that are not step outputs.
        inputs: canonical forms of the arguments that are (artifact digests).
    """
    components = {
        "format": KEY_FORMAT,
        "python": python_version(),
        "function": function,
        "code": code.code,
        "deps": dict(code.deps),
        "packages": dict(code.packages),
        "params": {k: _readable(v) for k, v in sorted(params.items())},
        "inputs": {k: _readable(v) for k, v in sorted(inputs.items())},
        "serializers": dict(SERIALIZERS),
    }
    return CacheKey(digest=_sha(_dumps(components)), components=components)


def _short(value: Any) -> str:
    if isinstance(value, Mapping) and isinstance(value.get("artifact"), str):
        return "artifact " + str(value["artifact"])[:12] + "…"
    if isinstance(value, Mapping) and isinstance(value.get("of"), Mapping):
        return _short(value["of"]) + "".join(f"[{k!r}]" for k in value.get("get", []))
    text = value if isinstance(value, str) else _dumps(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text[:12] + "…"
    return text if len(text) <= 80 else text[:77] + "…"


def _dep_label(label: str) -> str:
    return f"helper {label}" if ":" in label else f"constant {label}"


def diff_components(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Return, in words, how the key components ``new`` differ from ``old``."""
    out: list[str] = []
    scalars = (
        ("format", "the cache key format"),
        ("python", "the Python version"),
        ("function", "the step's function"),
    )
    for key, label in scalars:
        if old.get(key) != new.get(key):
            out.append(f"{label} changed: {old.get(key)} → {new.get(key)}")
    if old.get("code") != new.get("code"):
        out.append("the step's code changed (its statements, not comments or docstrings)")
    sections = (
        ("deps", _dep_label, "changed"),
        ("packages", lambda k: f"package {k}", None),
        ("params", lambda k: f"parameter {k!r}", None),
        ("inputs", lambda k: f"input {k!r}", None),
        ("serializers", lambda k: f"serializer {k}", None),
    )
    for key, name, fixed in sections:
        before, after = old.get(key) or {}, new.get(key) or {}
        for item in sorted(set(before) | set(after)):
            if item not in before:
                out.append(f"{name(item)} is new")
            elif item not in after:
                out.append(f"{name(item)} is no longer used")
            elif before[item] != after[item]:
                if fixed:
                    out.append(f"{name(item)} {fixed}")
                elif key == "inputs":
                    out.append(
                        f"{name(item)} has new content: {_short(before[item])} → "
                        f"{_short(after[item])}"
                    )
                else:
                    out.append(f"{name(item)}: {_short(before[item])} → {_short(after[item])}")
    return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class CacheExplanation:
    """Why a step of an execution ran or was reused (``trivet pipelines why``)."""

    execution_id: str
    step: str
    cache_hit: bool
    note: str
    """What the engine decided and why, e.g. ``"miss: no earlier result with this key"``."""
    key: str | None
    closest_key: str | None
    closest_execution: str | None
    differences: Sequence[str]
    """How the step's key differs from the closest earlier key of the same step."""

    def __str__(self) -> str:
        lines = [f"step {self.step!r} of execution {self.execution_id}: {self.note}"]
        if self.cache_hit:
            return lines[0]
        if self.closest_key is None:
            lines.append("  no earlier result of this step in the project to compare with")
        elif not self.differences:
            lines.append(
                f"  the closest earlier key ({self.closest_key[:12]}…, execution "
                f"{self.closest_execution}) is the same"
            )
        else:
            lines.append(
                f"  compared with the closest earlier key ({self.closest_key[:12]}…, "
                f"execution {self.closest_execution}):"
            )
            lines += [f"  - {d}" for d in self.differences]
        return "\n".join(lines)
