"""One attempt of a step: what an executor's worker runs.

In process, the engine calls :func:`run_step` with its own resolver and session. Out of
process it sends a :class:`RemoteAttempt`, a small picklable description of the attempt:

* the step function **by reference** (module and name; the worker imports it and checks
  that its code is the code the client keyed the cache on), or by value (cloudpickle)
  when no worker could import it by name — code in ``__main__``, a notebook, a file
  loaded by path, or a function defined inside another;
* its arguments, with step outputs as **artifact digests** (the worker reads them from
  the artifact store) and the pipeline parameters it reads;
* the execution's **run token**, with which the worker opens its own Session — the
  run-as principal's, scoped and revoked like the in-process one. Never the invoker's
  credentials.

The worker stores the step's output in the artifact store and returns a
:class:`RemoteResult`: the output's digest, the captured logs, the error — never the
output's bytes.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import importlib
import importlib.machinery
import inspect
import json
import os
import pickle
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trivet.errors import IntegrityError
from trivet.pipelines._capture import capturing, step_output
from trivet.pipelines._expr import Compare, Expr, Get, Logic, Output, ParamRef, evaluate, exprs_in
from trivet.pipelines._outputs import Stored, load_output, store_output
from trivet.pipelines._source import FILE_MODULE_PREFIX
from trivet.pipelines.errors import RemoteStepError, WorkerCodeMismatch
from trivet.pipelines.step import SESSION_PARAMETER, Step

if TYPE_CHECKING:
    from trivet.pipelines._expr import Resolver
    from trivet.pipelines.cache import CodeFingerprint
    from trivet.platform.session import Session

__all__ = [
    "Attempt",
    "RemoteAttempt",
    "RemoteResult",
    "RunToken",
    "StepFunction",
    "detach",
    "roots_of",
    "run_step",
    "worker_session",
]


# -- one attempt, wherever it runs -------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """What one attempt of a step came to (the engine's view; ``value`` stays in process)."""

    ok: bool
    value: Any = None
    stored: Stored | None = None
    logs: str = ""
    error: BaseException | None = None
    tb: str | None = None


def run_step(
    fn: Callable[..., Any],
    signature: inspect.Signature,
    args: Mapping[str, Any],
    *,
    resolve: Resolver,
    session: Session,
    folder: str,
    name: str,
) -> Attempt:
    """Run one attempt of a step: resolve its arguments, call it, store its output.

    Never raises: an error (in the step, in reading an input, in storing the output)
    is the attempt's outcome, with its traceback and what the step printed or logged.
    """
    with step_output() as buffer:
        try:
            arguments = OrderedDict((k, evaluate(v, resolve)) for k, v in args.items())
            if SESSION_PARAMETER in signature.parameters:
                arguments[SESSION_PARAMETER] = session
            bound = inspect.BoundArguments(signature, arguments)
            result = fn(*bound.args, **bound.kwargs)
            value, stored = store_output(session, result, folder=folder, step=name)
        except BaseException as exc:
            return Attempt(ok=False, error=exc, tb=traceback.format_exc(), logs=buffer.getvalue())
        return Attempt(ok=True, value=value, stored=stored, logs=buffer.getvalue())


# -- what crosses the wire ---------------------------------------------------------------------
class RunToken:
    """An execution's run token on its way to a worker: its repr never shows the secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def __repr__(self) -> str:
        return "RunToken(<redacted>)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RunToken, (self._secret,))

    def reveal(self) -> str:
        """Return the secret (to open a session with it)."""
        return self._secret

    @property
    def digest(self) -> str:
        """The secret's sha256 (a key for the worker's session cache)."""
        return hashlib.sha256(self._secret.encode()).hexdigest()


def detach(value: Any) -> Any:
    """Return an argument with its step outputs detached from the pipeline's trace.

    An :class:`Output` made while the pipeline was defined points at the trace that
    made it (to catch outputs of another pipeline); a worker needs only the step name.
    """
    if not any(True for _ in exprs_in(value)):
        return value
    if isinstance(value, Output):
        return Output(value.node, None)
    if isinstance(value, ParamRef):
        return value
    if isinstance(value, Get):
        return Get(detach(value.base), value.key)
    if isinstance(value, Compare):
        return Compare(value.op, detach(value.left), detach(value.right))
    if isinstance(value, Logic):
        return Logic(value.op, tuple(detach(i) for i in value.items))
    if isinstance(value, Expr):
        raise TypeError(f"cannot send the expression {value!r} to a worker")  # a new Expr kind
    if isinstance(value, tuple):
        return tuple(detach(v) for v in value)
    if isinstance(value, list):
        return [detach(v) for v in value]
    return {k: detach(v) for k, v in value.items()}


def _lookup(module: Any, qualname: str) -> Any:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


@functools.lru_cache(maxsize=256)
def _imports_by_name(module: str) -> bool:
    """Return whether a fresh ``import module`` (on a worker with this environment)
    would find the module this process loaded under that name."""
    if module == "__main__" or module.startswith(FILE_MODULE_PREFIX):
        return False
    loaded = sys.modules.get(module)
    spec = getattr(loaded, "__spec__", None)
    if loaded is None or spec is None or spec.name != module:
        return False  # run by exec, or registered under a name of its own
    top = module.partition(".")[0]
    found = importlib.machinery.PathFinder.find_spec(top)
    if found is None:
        return False
    top_loaded = sys.modules.get(top)
    if top_loaded is None:
        return True
    if found.submodule_search_locations is not None:  # a package
        here = [os.path.realpath(p) for p in getattr(top_loaded, "__path__", [])]
        return any(os.path.realpath(p) in here for p in found.submodule_search_locations)
    file = getattr(top_loaded, "__file__", None)
    return (
        file is not None
        and found.origin is not None
        and (os.path.realpath(found.origin) == os.path.realpath(file))
    )


def _fingerprint_digest(fp: CodeFingerprint) -> str:
    text = json.dumps(dataclasses.asdict(fp), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True, eq=False)
class StepFunction:
    """A step function as a worker finds it: by module and name, or by value."""

    module: str
    qualname: str
    by_value: Callable[..., Any] | None
    """The function itself, for code no worker could import by name (cloudpickled)."""
    fingerprint: CodeFingerprint | None
    """The client's fingerprint of the code (the cache key's code part), to check."""
    python: str

    @classmethod
    def of(cls, fn: Callable[..., Any], fingerprint: CodeFingerprint | None) -> StepFunction:
        """Describe ``fn``: by reference when its module imports by name, else by value."""
        from trivet.pipelines.cache import python_version

        module = getattr(fn, "__module__", None) or ""
        qualname = getattr(fn, "__qualname__", "") or ""
        target = _lookup(sys.modules.get(module), qualname) if module and qualname else None
        named = target is fn or (isinstance(target, Step) and target.fn is fn)
        by_reference = named and "<" not in qualname and _imports_by_name(module)
        return cls(
            module=module,
            qualname=qualname,
            by_value=None if by_reference else fn,
            fingerprint=fingerprint,
            python=python_version(),
        )

    def load(self) -> Callable[..., Any]:
        """Return the function on this worker, checked against the client's code.

        Raises:
            WorkerCodeMismatch: the module does not import here, or its code, a helper,
                a package's version or Python's differs from the client's.
        """
        from trivet.pipelines.cache import python_version

        label = f"{self.module}.{self.qualname}"
        if self.python != python_version():
            raise WorkerCodeMismatch(
                f"The worker runs {python_version()}, the client {self.python}: step "
                f"function {label} would be cached under the client's key.",
                hint="run the same Python version on the workers as on the client",
            )
        if self.by_value is not None:
            return self.by_value
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise WorkerCodeMismatch(
                f"The worker cannot import {self.module!r}, the module of step function "
                f"{label}: {type(exc).__name__}: {exc}.",
                hint="install your project on the workers (the same version as the "
                "client), or put it on their PYTHONPATH; see 'Running on Dask' in "
                "docs/pipelines.md",
            ) from None
        target = _lookup(module, self.qualname)
        fn = target.fn if isinstance(target, Step) else target
        if not callable(fn):
            raise WorkerCodeMismatch(
                f"The worker's module {self.module!r} has no function {self.qualname!r}.",
                hint="install the same version of your project on the workers as on the client",
            )
        if self.fingerprint is not None:
            _check_code(fn, self.fingerprint, label)
        return fn


_checked: dict[tuple[str, str], str | None] = {}
_checked_lock = threading.Lock()


def _check_code(fn: Callable[..., Any], expected: CodeFingerprint, label: str) -> None:
    """Raise WorkerCodeMismatch if this worker's code of ``fn`` differs from the client's
    (computed once per function and client fingerprint in each worker process)."""
    from trivet.pipelines.cache import fingerprint

    key = (label, _fingerprint_digest(expected))
    with _checked_lock:
        known = key in _checked
        problem = _checked.get(key)
    if not known:
        mine = fingerprint(fn)
        differences = []
        if mine.code != expected.code:
            differences.append("the step function's code")
        differences += [
            f"the helper {dep}"
            for dep in sorted(set(mine.deps) & set(expected.deps))
            if mine.deps[dep] != expected.deps[dep]
        ]
        differences += [
            f"{dist} ({expected.packages[dist]} on the client, {mine.packages[dist]} here)"
            for dist in sorted(set(mine.packages) & set(expected.packages))
            if mine.packages[dist] != expected.packages[dist]
        ]
        problem = ", ".join(differences) or None
        with _checked_lock:
            _checked[key] = problem
    if problem is not None:
        raise WorkerCodeMismatch(
            f"The worker's code of step function {label} differs from the client's: "
            f"{problem}; its result would be cached under a key that does not describe it.",
            hint="install the same version of your project and its packages on the "
            "workers as on the client",
        )


# -- the worker's sessions ---------------------------------------------------------------------
_SESSIONS_KEPT = 16
_sessions: collections.OrderedDict[tuple[str, str, str], Session] = collections.OrderedDict()
_sessions_lock = threading.Lock()


def worker_session(
    workspace: str, project: str, token: RunToken, session_class: type[Session]
) -> Session:
    """Return the run-as principal's Session on this worker, opened with the run token.

    Sessions are kept per workspace, project and token (a few per process), so the
    steps of one execution share one; the token's revocation at the end of its
    execution ends what a kept session may do.

    Raises:
        NotAuthenticated: the token is unknown here (another catalog), expired or revoked.
    """
    from trivet.platform.session import Session as BaseSession

    if not (isinstance(session_class, type) and issubclass(session_class, BaseSession)):
        raise TypeError(f"{session_class!r} is not a Session class")
    key = (workspace, project, token.digest)
    with _sessions_lock:
        kept = _sessions.get(key)
        if kept is not None:
            _sessions.move_to_end(key)
    if kept is not None and kept.token_usable():
        return kept
    import sqlalchemy as sa

    from trivet.platform.catalog.schema import tokens
    from trivet.platform.identity import principal_by_id
    from trivet.platform.settings import load_settings
    from trivet.platform.workspace import open_session

    session = open_session(load_settings(workspace), token.reveal(), session_class, project=project)
    assert session.token is not None
    # Audit rows name who the run acts for: the token's creator, when it runs as another.
    with session.catalog.read() as conn:
        creator = conn.execute(
            sa.select(tokens.c.created_by).where(tokens.c.id == session.token.id)
        ).scalar()
        invoker = (
            principal_by_id(conn, creator)
            if creator is not None and creator != session.principal.id
            else None
        )
    if invoker is not None:
        session = session.derive(on_behalf_of=invoker)
    session.artifacts.blobs  # noqa: B018 - open the blob store before threads share it
    with _sessions_lock:
        _sessions[key] = session
        while len(_sessions) > _SESSIONS_KEPT:
            _sessions.popitem(last=False)
    return session


def _portable(exc: BaseException) -> BaseException:
    """Return ``exc`` if it survives pickling (as the result goes back), else a
    :class:`RemoteStepError` with its type and message."""
    picklers: list[tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = [
        (pickle.dumps, pickle.loads)
    ]
    try:
        cloudpickle: Any = importlib.import_module("cloudpickle")  # comes with distributed
        picklers.append((cloudpickle.dumps, cloudpickle.loads))
    except ImportError:
        pass
    for dumps, loads in picklers:
        try:
            loads(dumps(exc))
        except Exception:  # noqa: S112 - try the next pickler
            continue
        return exc
    kind = type(exc)
    return RemoteStepError(f"{kind.__module__}.{kind.__qualname__}: {exc}")


@dataclass(frozen=True, kw_only=True)
class RemoteResult:
    """What a worker sends back for an attempt: never the output's bytes."""

    ok: bool
    stored: Stored | None = None
    logs: str = ""
    error: BaseException | None = None
    tb: str | None = None
    damaged: tuple[str, ...] = ()
    """Upstream steps whose stored outputs failed their checksum here."""


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class RemoteAttempt:
    """One attempt of a step, self-contained and picklable: call it on a worker.

    Build it with the engine (see the module's documentation); calling it never raises.
    """

    execution_id: str
    step: str
    attempt: int
    function: StepFunction
    args: Mapping[str, Any]
    inputs: Mapping[str, Stored]
    params: Mapping[str, Any]
    folder: str
    workspace: str
    project: str
    session_class: type[Session]
    token: RunToken

    def __repr__(self) -> str:  # what Dask logs and shows: never the token
        return (
            f"<trivet step {self.step!r} of execution {self.execution_id[:8]}, "
            f"attempt {self.attempt}>"
        )

    def __call__(self) -> RemoteResult:
        damaged: list[str] = []
        with capturing():
            try:
                session = worker_session(
                    self.workspace, self.project, self.token, self.session_class
                )
                fn = self.function.load()
                signature = inspect.signature(fn)
            except BaseException as exc:
                return RemoteResult(ok=False, error=_portable(exc), tb=traceback.format_exc())
            loaded: dict[str, Any] = {}

            def resolve(ref: Output | ParamRef) -> Any:
                if isinstance(ref, ParamRef):
                    return self.params[ref.name]
                if ref.node not in loaded:
                    try:
                        loaded[ref.node] = load_output(session, self.inputs[ref.node])
                    except IntegrityError:
                        damaged.append(ref.node)
                        raise
                return loaded[ref.node]

            attempt = run_step(
                fn,
                signature,
                self.args,
                resolve=resolve,
                session=session,
                folder=self.folder,
                name=self.step,
            )
        return RemoteResult(
            ok=attempt.ok,
            stored=attempt.stored,
            logs=attempt.logs,
            error=_portable(attempt.error) if attempt.error is not None else None,
            tb=attempt.tb,
            damaged=tuple(damaged),
        )


def roots_of(args: Mapping[str, Any]) -> Iterator[Output | ParamRef]:
    """Yield the step outputs and parameters a step call's arguments read."""
    for value in args.values():
        for expr in exprs_in(value):
            yield from expr.roots()
