"""``@step``: a plain Python function as a pipeline step.

Outside a ``@pipeline`` function a step is its function: calling it calls it, so a
step is unit-tested like any function. Inside a ``@pipeline`` function calling it
records a node of the DAG and returns an :class:`~trivet.pipelines.Output`.
"""

from __future__ import annotations

import datetime as dt
import inspect
import itertools
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, overload

from trivet.errors import TrivetError
from trivet.pipelines.errors import PipelineDefinitionError

__all__ = ["Declaration", "Step", "StepOptions", "Uses", "step"]

STEP_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,63}")
SESSION_PARAMETER = "session"

Declaration: TypeAlias = "str | Callable[[Mapping[str, Any]], Iterable[str | None]]"
"""A path a step reads or writes: a template such as ``"feature_groups/{group}"`` (filled
in from the call's arguments), or a function of the arguments returning paths."""


@dataclass(frozen=True, kw_only=True)
class Uses:
    """What a step, or a whole pipeline, reads and writes: paths in the project.

    A path is ``<kind>/<name>`` without the project: ``feature_groups/applicants``,
    ``models/credit``, ``reports/credit``, ``datasets/train``; any other folder of
    artifacts (``exports/daily``); or ``<kind>/*`` for every one of a kind. An
    execution's run token covers these (see ``docs/pipelines.md``, "Identity").

    Example:
        >>> from trivet.pipelines.steps import register_model
        >>> register_model.uses({"name": "credit"})
        Uses(reads=(), writes=('models/credit',))
    """

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    def __or__(self, other: Uses) -> Uses:
        return Uses(
            reads=tuple(sorted({*self.reads, *other.reads})),
            writes=tuple(sorted({*self.writes, *other.writes})),
        )


def _template_fields(template: str) -> list[str]:
    """Return the argument names a path template names; raise on a malformed one."""
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise PipelineDefinitionError(
            f"The path template {template!r} is malformed: {exc}.",
            hint='name arguments in braces, e.g. "feature_groups/{group}"',
        ) from None
    for field in fields:
        if not field.isidentifier():
            raise PipelineDefinitionError(
                f"The path template {template!r} names {field!r}, not an argument.",
                hint='name a whole argument in braces, e.g. "models/{name}"',
            )
    return fields


def expand(declaration: Declaration, arguments: Mapping[str, Any]) -> list[str]:
    """Return the paths a declaration stands for, given the call's (or run's) values.

    A template's ``{name}`` is replaced by that argument's value — one path segment, so
    a value never widens what is declared (``"*"`` or ``"a/b"`` are refused); a list
    value gives a path per item, and None (an output not asked for) gives no path.

    Raises:
        PipelineDefinitionError: a value that is not one path segment.
        KeyError: the template names an argument ``arguments`` lacks.
    """
    if callable(declaration):
        return [str(p) for p in declaration(arguments) if p is not None]
    fields = _template_fields(declaration)
    choices: list[list[str]] = []
    for field in fields:
        value = arguments[field]
        if value is None:
            return []
        items = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        for item in items:
            if not str(item) or any(c in str(item) for c in "/*"):
                raise PipelineDefinitionError(
                    f"The path {declaration!r} gets {item!r} for {{{field}}}, which is not a "
                    "single name.",
                    hint="pass a name without '/' or '*'; to declare more, list the paths",
                )
        choices.append([str(v) for v in items])
    out = []
    for combination in itertools.product(*choices):
        text = declaration
        for field, value in zip(fields, combination, strict=True):
            text = text.replace("{" + field + "}", value)
        out.append(text)
    return out


def check_path(path: str, *, where: str) -> str:
    """Return ``path`` if it names resources in a project; else raise PipelineDefinitionError."""
    from trivet.platform.names import check_pattern

    try:
        if not isinstance(path, str) or path.startswith("/") or path in ("", "*"):
            raise ValueError
        check_pattern(f"p/{path}")
    except (TrivetError, ValueError):
        raise PipelineDefinitionError(
            f"{where} declares the path {path!r}, which names nothing in a project.",
            hint="give '<kind>/<name>' without the project, e.g. 'feature_groups/applicants', "
            "'models/credit', 'reports/credit', or 'feature_groups/*'",
        ) from None
    return path


def _check_declarations(name: str, label: str, values: object) -> tuple[Declaration, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise PipelineDefinitionError(
            f"{label} of step {name!r} takes a list of paths, not {values!r}.",
            hint=f'e.g. {label}=["feature_groups/applicants"]',
        )
    for value in values:
        if isinstance(value, str):
            _template_fields(value)
        elif not callable(value):
            raise PipelineDefinitionError(
                f"{label} of step {name!r} holds {value!r}: give paths (templates such as "
                "'models/{name}') or functions of the step's arguments returning paths."
            )
    return tuple(values)


def check_step_name(name: object) -> str:
    """Return ``name`` if it is a valid step name, else raise PipelineDefinitionError."""
    if not isinstance(name, str) or STEP_NAME.fullmatch(name) is None:
        raise PipelineDefinitionError(
            f"The step name {name!r} is not valid.",
            hint="use 1 to 64 lower-case letters, digits, '_', '.' or '-', starting with a "
            "letter or '_'; pass @step(name=...) to choose one",
        )
    return name


@dataclass(frozen=True, kw_only=True)
class StepOptions:
    """How a step runs and caches.

    Attributes:
        name: the step's name in the pipeline (default: the function's name).
        cache: reuse an earlier result whose cache key matches (see ``docs/pipelines.md``).
        retries: how many times to retry a failed attempt.
        retry_on: the exception classes that are retried (a timeout is a
            :class:`~trivet.pipelines.StepTimeout`).
        backoff: seconds before the first retry; doubled for each further one.
        timeout: seconds an attempt may run before it counts as failed.
        cache_expiry: cached results older than this are not reused.
        cache_per_principal: key the cache by the run's principal too, for a step whose
            result stands for a side effect that needs a permission (registering a
            model, storing a report): another principal's cached result is never
            reused, so the step runs — and is authorized — under this run's grants.
        reads: what the step reads through its session beyond its run's folder:
            project paths (``"feature_groups/applicants"``), templates filled in from
            the call's arguments (``"feature_groups/{group}"``), or functions of the
            arguments returning paths. The run token covers only what is declared.
        writes: what the step writes, registers or stores, likewise.
    """

    name: str
    cache: bool = True
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 1.0
    timeout: float | None = None
    cache_expiry: dt.timedelta | None = None
    cache_per_principal: bool = False
    reads: tuple[Declaration, ...] = ()
    writes: tuple[Declaration, ...] = ()

    def __post_init__(self) -> None:
        check_step_name(self.name)
        object.__setattr__(self, "reads", _check_declarations(self.name, "reads", self.reads))
        object.__setattr__(self, "writes", _check_declarations(self.name, "writes", self.writes))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise PipelineDefinitionError(
                f"retries of step {self.name!r} must be a non-negative integer, not "
                f"{self.retries!r}."
            )
        if not isinstance(self.retry_on, tuple) or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in self.retry_on
        ):
            raise PipelineDefinitionError(
                f"retry_on of step {self.name!r} must be a tuple of exception classes.",
                hint="e.g. retry_on=(ConnectionError, TimeoutError)",
            )
        for label, value in (("backoff", self.backoff), ("timeout", self.timeout)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise PipelineDefinitionError(
                    f"{label} of step {self.name!r} must be a non-negative number of seconds, "
                    f"not {value!r}."
                )
        if self.timeout == 0:
            raise PipelineDefinitionError(f"timeout of step {self.name!r} must be positive.")
        if self.cache_expiry is not None and (
            not isinstance(self.cache_expiry, dt.timedelta) or self.cache_expiry <= dt.timedelta(0)
        ):
            raise PipelineDefinitionError(
                f"cache_expiry of step {self.name!r} must be a positive timedelta.",
                hint="e.g. cache_expiry=datetime.timedelta(days=1)",
            )

    def to_json(self) -> dict[str, Any]:
        """Return the options as they appear in an exported definition."""
        from trivet.pipelines._source import function_id

        out: dict[str, Any] = {
            "cache": self.cache,
            "retries": self.retries,
            "retry_on": sorted(f"{c.__module__}.{c.__qualname__}" for c in self.retry_on),
            "backoff": self.backoff,
            "timeout": self.timeout,
            "cache_expiry": self.cache_expiry.total_seconds() if self.cache_expiry else None,
        }
        for label, values in (("reads", self.reads), ("writes", self.writes)):
            if values:  # what the run token will cover: part of what a reviewer reads
                out[label] = [v if isinstance(v, str) else function_id(v) for v in values]
        return out


_NOTHING = Uses()


class _WithDefaults(Mapping[str, Any]):
    """A call's arguments, falling back on the function's defaults."""

    def __init__(self, given: Mapping[str, Any], signature: inspect.Signature) -> None:
        self.given = given
        self.defaults = {
            k: p.default for k, p in signature.parameters.items() if p.default is not p.empty
        }

    def __getitem__(self, key: str) -> Any:
        if key in self.given:
            return self.given[key]
        return self.defaults[key]

    def __iter__(self) -> Any:
        return iter({*self.given, *self.defaults})

    def __len__(self) -> int:
        return len({*self.given, *self.defaults})


class Step:
    """A function made a pipeline step by :func:`step`."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        if not callable(fn) or inspect.isclass(fn):
            raise PipelineDefinitionError(f"@step decorates a function, not {fn!r}.")
        self.fn = fn
        self.options = options
        self.signature = inspect.signature(fn)
        self.wants_session = SESSION_PARAMETER in self.signature.parameters
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        arguments = set(self.signature.parameters) - {SESSION_PARAMETER}
        for template in (*options.reads, *options.writes):
            if not isinstance(template, str):
                continue
            unknown = [f for f in _template_fields(template) if f not in arguments]
            if unknown:
                raise PipelineDefinitionError(
                    f"Step {options.name!r} declares {template!r}, but has no argument "
                    f"{unknown[0]!r}.",
                    hint=f"name one of its arguments: {', '.join(sorted(arguments)) or 'none'}",
                )

    @property
    def name(self) -> str:
        """The step's name."""
        return self.options.name

    def __repr__(self) -> str:
        return f"<step {self.name!r} ({self.fn.__module__}.{self.fn.__qualname__})>"

    def with_options(self, **changes: Any) -> Step:
        """Return this step with some :class:`StepOptions` changed, e.g. another name."""
        if "retry_on" in changes and isinstance(changes["retry_on"], type):
            changes["retry_on"] = (changes["retry_on"],)
        return Step(self.fn, replace(self.options, **changes))

    def uses(self, arguments: Mapping[str, Any]) -> Uses:
        """Return what a call of this step reads and writes, from its arguments.

        Args:
            arguments: the call's arguments by name (missing ones take the function's
                defaults).

        Returns:
            The paths its ``reads`` and ``writes`` declarations stand for.

        Raises:
            PipelineDefinitionError: a declaration names an argument the call lacks,
                or comes out as a path that names nothing in a project.
        """
        if not self.options.reads and not self.options.writes:
            return _NOTHING
        values = _WithDefaults(arguments, self.signature)
        where = f"Step {self.name!r}"
        try:
            reads = [p for d in self.options.reads for p in expand(d, values)]
            writes = [p for d in self.options.writes for p in expand(d, values)]
        except KeyError as exc:
            raise PipelineDefinitionError(
                f"{where} declares a path with the argument {exc.args[0]!r}, which the call "
                "does not give.",
                hint="pass it when calling the step",
            ) from None
        return Uses(
            reads=tuple(sorted({check_path(p, where=where) for p in reads})),
            writes=tuple(sorted({check_path(p, where=where) for p in writes})),
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from trivet.pipelines.dag import current_trace

        trace = current_trace()
        if trace is None:
            return self.fn(*args, **kwargs)
        return trace.add_step(self, args, kwargs)


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
    backoff: float = 1.0,
    timeout: float | None = None,
    cache_expiry: dt.timedelta | None = None,
    cache_per_principal: bool = False,
    reads: Sequence[Declaration] = (),
    writes: Sequence[Declaration] = (),
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
    backoff: float = 1.0,
    timeout: float | None = None,
    cache_expiry: dt.timedelta | None = None,
    cache_per_principal: bool = False,
    reads: Sequence[Declaration] = (),
    writes: Sequence[Declaration] = (),
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step.

    A step takes step outputs, parameters and plain values; it returns a pandas
    DataFrame (stored as Parquet), a scikit-learn model (skops), JSON data, or None.
    A parameter named ``session`` receives the execution's Session (the run-as
    principal's), through which every data access is checked. Its run token covers
    the execution's folder and what the pipeline's steps declare with ``reads`` and
    ``writes``; anything else is refused with a PermissionDenied saying what to declare.

    Args:
        fn: the function (when used as ``@step`` without parentheses).
        name: the step's name (default: the function's).
        cache: reuse an earlier result whose cache key matches.
        retries: retries of a failed attempt.
        retry_on: exception classes that are retried.
        backoff: seconds before the first retry, doubled for each further one.
        timeout: seconds an attempt may run (it is then marked failed; see
            :class:`~trivet.pipelines.StepTimeout`).
        cache_expiry: do not reuse cached results older than this.
        cache_per_principal: reuse only results computed by the same principal (for
            steps with side effects that need a permission).
        reads: what the step reads through ``session`` beyond its run's folder:
            paths in the project (``"feature_groups/applicants"``), templates filled
            in from the call's arguments (``"feature_groups/{group}"``; a list gives
            a path per item, None none), or functions of the arguments returning paths.
        writes: what it writes, registers or stores through ``session``, likewise
            (``"models/{name}"``).

    Example:
        >>> @step(retries=2)
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> double(21)  # outside a pipeline a step is its function
        42
    """

    def wrap(func: Callable[..., Any]) -> Step:
        on = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        step_name = check_step_name(name if name is not None else getattr(func, "__name__", ""))
        options = StepOptions(
            name=step_name,
            cache=cache,
            retries=retries,
            retry_on=on,
            backoff=backoff,
            timeout=timeout,
            cache_expiry=cache_expiry,
            cache_per_principal=cache_per_principal,
            reads=_check_declarations(step_name, "reads", reads),
            writes=_check_declarations(step_name, "writes", writes),
        )
        return Step(func, options)

    return wrap(fn) if fn is not None else wrap
