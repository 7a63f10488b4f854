"""``@step``: a plain Python function as a pipeline step.

Outside a ``@pipeline`` function a step is its function: calling it calls it, so a
step is unit-tested like any function. Inside a ``@pipeline`` function calling it
records a node of the DAG and returns an :class:`~trivet.pipelines.Output`.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, overload

from trivet.pipelines.errors import PipelineDefinitionError

__all__ = ["Step", "StepOptions", "step"]

STEP_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,63}")
SESSION_PARAMETER = "session"


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
    """

    name: str
    cache: bool = True
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 1.0
    timeout: float | None = None
    cache_expiry: dt.timedelta | None = None
    cache_per_principal: bool = False

    def __post_init__(self) -> None:
        check_step_name(self.name)
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
        return {
            "cache": self.cache,
            "retries": self.retries,
            "retry_on": sorted(f"{c.__module__}.{c.__qualname__}" for c in self.retry_on),
            "backoff": self.backoff,
            "timeout": self.timeout,
            "cache_expiry": self.cache_expiry.total_seconds() if self.cache_expiry else None,
        }


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
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step.

    A step takes step outputs, parameters and plain values; it returns a pandas
    DataFrame (stored as Parquet), a scikit-learn model (skops), JSON data, or None.
    A parameter named ``session`` receives the execution's Session (the run-as
    principal's), through which every data access is checked.

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

    Example:
        >>> @step(retries=2)
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> double(21)  # outside a pipeline a step is its function
        42
    """

    def wrap(func: Callable[..., Any]) -> Step:
        on = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        options = StepOptions(
            name=check_step_name(name if name is not None else getattr(func, "__name__", "")),
            cache=cache,
            retries=retries,
            retry_on=on,
            backoff=backoff,
            timeout=timeout,
            cache_expiry=cache_expiry,
            cache_per_principal=cache_per_principal,
        )
        return Step(func, options)

    return wrap(fn) if fn is not None else wrap
