"""Lazy references to values known only when a pipeline runs.

Calling a step inside a ``@pipeline`` function returns an :class:`Output`; indexing
it (``out["metrics"]["auc"]``) gives a :class:`Get` (SageMaker's ``JsonGet``, on any
step output); a pipeline parameter is a :class:`ParamRef`. Comparing them builds a
condition (``out["auc"] >= 0.8``) for :func:`trivet.pipelines.when`; ``&``, ``|``
and ``~`` combine conditions. A condition has no truth value while the pipeline is
defined: ``if out > 0.8:`` raises, pointing at ``when``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from trivet.pipelines.errors import PipelineDefinitionError

__all__ = [
    "Compare",
    "Expr",
    "Get",
    "Logic",
    "Output",
    "ParamRef",
    "Resolver",
    "evaluate",
    "exprs_in",
    "literal_json",
]

Resolver = Callable[["Output | ParamRef"], Any]
"""Returns the run-time value of a step's output or of a parameter."""

_OPS: Mapping[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
}


class Expr:
    """A value computed when the pipeline runs (see the module's documentation)."""

    __slots__ = ()
    __hash__ = object.__hash__  # comparisons build conditions; identity stays hashable

    def roots(self) -> Iterator[Output | ParamRef]:
        """Yield the step outputs and parameters this expression reads."""
        raise NotImplementedError

    def evaluate(self, resolve: Resolver) -> Any:
        """Return the expression's value, reading outputs and parameters via ``resolve``."""
        raise NotImplementedError

    def to_json(self) -> Any:
        """Return the expression's form in an exported definition."""
        raise NotImplementedError

    def __getitem__(self, key: str | int) -> Get:
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise PipelineDefinitionError(
                f"A step output can be indexed by a string or an integer, not {key!r}."
            )
        return Get(self, key)

    def __eq__(self, other: object) -> Compare:  # type: ignore[override]
        return Compare("==", self, other)

    def __ne__(self, other: object) -> Compare:  # type: ignore[override]
        return Compare("!=", self, other)

    def __lt__(self, other: object) -> Compare:
        return Compare("<", self, other)

    def __le__(self, other: object) -> Compare:
        return Compare("<=", self, other)

    def __gt__(self, other: object) -> Compare:
        return Compare(">", self, other)

    def __ge__(self, other: object) -> Compare:
        return Compare(">=", self, other)

    def isin(self, values: object) -> Compare:
        """Return the condition "this value is one of ``values``"."""
        return Compare("in", self, values)

    def __and__(self, other: object) -> Logic:
        return Logic("and", (self, other))

    def __or__(self, other: object) -> Logic:
        return Logic("or", (self, other))

    def __invert__(self) -> Logic:
        return Logic("not", (self,))

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(
            f"{self.describe()} is known only when the pipeline runs, so it has no truth "
            "value while the pipeline is defined.",
            hint="branch with when(condition, then=..., otherwise=...), or decide inside a step",
        )

    def __iter__(self) -> Iterator[Any]:
        raise PipelineDefinitionError(
            f"{self.describe()} is known only when the pipeline runs and cannot be iterated.",
            hint="return several values as a dict and index it: out['a'], out['b']",
        )

    def describe(self) -> str:
        """Return a short human description (used in messages and graphs)."""
        return str(self.to_json())


class Output(Expr):
    """The output of a step (what calling a step inside a pipeline returns)."""

    __slots__ = ("node", "tracer")

    def __init__(self, node: str, tracer: object) -> None:
        self.node = node
        self.tracer = tracer  # the trace it belongs to, to catch outputs of another pipeline

    def roots(self) -> Iterator[Output | ParamRef]:
        yield self

    def evaluate(self, resolve: Resolver) -> Any:
        return resolve(self)

    def to_json(self) -> Any:
        return {"step": self.node}

    def describe(self) -> str:
        return f"the output of step {self.node!r}"

    def __repr__(self) -> str:
        return f"<Output of step {self.node!r}>"


class ParamRef(Expr):
    """A pipeline parameter, resolved when the pipeline runs."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def roots(self) -> Iterator[Output | ParamRef]:
        yield self

    def evaluate(self, resolve: Resolver) -> Any:
        return resolve(self)

    def to_json(self) -> Any:
        return {"param": self.name}

    def describe(self) -> str:
        return f"the parameter {self.name!r}"

    def __repr__(self) -> str:
        return f"<Param {self.name!r}>"

    def _no_math(self, *_: object) -> Any:
        raise PipelineDefinitionError(
            f"Arithmetic on {self.describe()} is not possible while the pipeline is defined.",
            hint="pass the parameter to a step and compute there",
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _no_math
    __truediv__ = __rtruediv__ = __floordiv__ = __mod__ = __pow__ = _no_math


class Get(Expr):
    """A value inside a step's output: ``out["metrics"]["auc"]`` (like SageMaker's JsonGet)."""

    __slots__ = ("base", "key")

    def __init__(self, base: Expr, key: str | int) -> None:
        self.base = base
        self.key = key

    def roots(self) -> Iterator[Output | ParamRef]:
        yield from self.base.roots()

    def path(self) -> tuple[Output | ParamRef, tuple[str | int, ...]]:
        """Return the root and the keys from it to this value."""
        keys: list[str | int] = []
        node: Expr = self
        while isinstance(node, Get):
            keys.append(node.key)
            node = node.base
        assert isinstance(node, Output | ParamRef)
        return node, tuple(reversed(keys))

    def evaluate(self, resolve: Resolver) -> Any:
        container = self.base.evaluate(resolve)
        try:
            return container[self.key]
        except (KeyError, IndexError, TypeError) as exc:
            from trivet.errors import ValidationError

            raise ValidationError(
                f"{self.describe()} does not exist: {type(exc).__name__}: {exc}.",
                hint="check the keys the step returns",
            ) from None

    def to_json(self) -> Any:
        return {"get": [self.base.to_json(), self.key]}

    def describe(self) -> str:
        root, keys = self.path()
        return f"{root.describe()}{''.join(f'[{k!r}]' for k in keys)}"

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class Compare(Expr):
    """A comparison of a run-time value with another value (a condition)."""

    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Expr, right: object) -> None:
        self.op, self.left, self.right = op, left, right

    def roots(self) -> Iterator[Output | ParamRef]:
        for side in (self.left, self.right):
            if isinstance(side, Expr):
                yield from side.roots()

    def evaluate(self, resolve: Resolver) -> Any:
        right = self.right.evaluate(resolve) if isinstance(self.right, Expr) else self.right
        left = self.left.evaluate(resolve)
        try:
            return bool(_OPS[self.op](left, right))
        except TypeError as exc:
            from trivet.errors import ValidationError

            raise ValidationError(
                f"The condition {self.describe()} cannot be evaluated: {left!r} {self.op} "
                f"{right!r} ({exc})."
            ) from None

    def to_json(self) -> Any:
        return {"op": self.op, "left": self.left.to_json(), "right": literal_json(self.right)}

    def describe(self) -> str:
        right = self.right.describe() if isinstance(self.right, Expr) else repr(self.right)
        return f"{self.left.describe()} {self.op} {right}"


class Logic(Expr):
    """``and``/``or``/``not`` of conditions."""

    __slots__ = ("items", "op")

    def __init__(self, op: str, items: tuple[object, ...]) -> None:
        self.op, self.items = op, items

    def roots(self) -> Iterator[Output | ParamRef]:
        for item in self.items:
            if isinstance(item, Expr):
                yield from item.roots()

    def evaluate(self, resolve: Resolver) -> Any:
        values = [i.evaluate(resolve) if isinstance(i, Expr) else i for i in self.items]
        if self.op == "not":
            return not values[0]
        return all(values) if self.op == "and" else any(values)

    def to_json(self) -> Any:
        return {self.op: [literal_json(i) for i in self.items]}

    def describe(self) -> str:
        if self.op == "not":
            return f"not ({_describe(self.items[0])})"
        return f" {self.op} ".join(f"({_describe(i)})" for i in self.items)


def _describe(value: object) -> str:
    return value.describe() if isinstance(value, Expr) else repr(value)


def literal_json(value: object) -> Any:
    """Return the JSON form of an argument: expressions as such, other values as given."""
    if isinstance(value, Expr):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [literal_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): literal_json(v) for k, v in sorted(value.items(), key=lambda i: str(i[0]))}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return {"value": repr(value) if len(repr(value)) <= 200 else type(value).__qualname__}


def exprs_in(value: object) -> Iterator[Expr]:
    """Yield the expressions in an argument (looking into lists, tuples and dicts)."""
    if isinstance(value, Expr):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from exprs_in(v)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from exprs_in(v)


def evaluate(value: object, resolve: Resolver) -> Any:
    """Return an argument with every expression in it replaced by its value."""
    if isinstance(value, Expr):
        return value.evaluate(resolve)
    if isinstance(value, tuple):
        return tuple(evaluate(v, resolve) for v in value)
    if isinstance(value, list):
        return [evaluate(v, resolve) for v in value]
    if isinstance(value, dict):
        return {k: evaluate(v, resolve) for k, v in value.items()}
    return value
