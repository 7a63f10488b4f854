"""``@pipeline``: steps composed into a DAG by calling them; parameters, conditions, fail.

The pipeline function runs once, at definition time, with a
:class:`~trivet.pipelines.ParamRef` for each parameter: each step call records a
node and returns an :class:`~trivet.pipelines.Output`, so the DAG is what the
function's data flow says. It is validated with networkx before anything runs.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

from trivet.errors import did_you_mean
from trivet.pipelines._expr import Expr, Output, ParamRef, exprs_in, literal_json
from trivet.pipelines._expr import evaluate as _evaluate
from trivet.pipelines._source import function_id
from trivet.pipelines.errors import PipelineDefinitionError
from trivet.pipelines.step import (
    SESSION_PARAMETER,
    Step,
    Uses,
    check_path,
    check_step_name,
    expand,
)

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "DEFINITION_FORMAT",
    "ApprovalSpec",
    "Dag",
    "Node",
    "Param",
    "ParamSpec",
    "Pipeline",
    "current_trace",
    "fail",
    "pipeline",
    "require_trace",
    "when",
]

DEFINITION_FORMAT = 1
_PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_MISSING: Any = inspect.Parameter.empty
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_SCALARS: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool", Path: "path"}
_CONTAINERS: dict[Any, str] = {list: "list", dict: "dict"}


@dataclass(frozen=True, kw_only=True)
class Param:
    """A pipeline parameter's default and description, as a parameter's default value.

    >>> @pipeline
    ... def train(min_auc: float = Param(default=0.8, help="the gate's threshold")) -> None:
    ...     pass
    >>> train.params["min_auc"].help
    "the gate's threshold"
    """

    default: Any = _MISSING
    help: str = ""


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """A pipeline parameter: its name, type, default and help."""

    name: str
    type: str
    """``str``, ``int``, ``float``, ``bool``, ``path``, ``list``, ``dict`` or ``any``."""
    optional: bool
    default: Any
    required: bool
    help: str

    def convert(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type; a string is parsed (the CLI's form)."""
        if value is None and (self.optional or self.type == "any"):
            return None
        try:
            return _convert(self.type, value)
        except (ValueError, TypeError) as exc:
            raise PipelineDefinitionError(
                f"The parameter {self.name!r} expects {self.type}, not {value!r}"
                + (f" ({exc})" if str(exc) else "")
                + ".",
                hint=_TYPE_HINTS.get(self.type),
            ) from None

    def to_json(self) -> dict[str, Any]:
        """Return the parameter as it appears in an exported definition."""
        return {
            "type": self.type + (" | None" if self.optional else ""),
            "required": self.required,
            "default": None if self.required else json_value(self.default),
            "help": self.help,
        }


_TYPE_HINTS = {
    "int": "e.g. --param n=3",
    "float": "e.g. --param alpha=0.5",
    "bool": "use true or false",
    "list": 'give JSON, e.g. --param cols=\'["a", "b"]\'',
    "dict": "give JSON, e.g. --param grid='{\"C\": [0.1, 1]}'",
}


def _convert(kind: str, value: Any) -> Any:
    if kind == "any":
        return value
    if isinstance(value, str) and kind != "str":
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            low = value.strip().lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
            raise ValueError("not a boolean")
        if kind == "path":
            return Path(value)
        parsed = json.loads(value)
        return _convert(kind, parsed)
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "path": isinstance(value, Path),
        "list": isinstance(value, list | tuple),
        "dict": isinstance(value, Mapping),
    }[kind]
    if not ok:
        raise TypeError("")
    if kind == "float":
        return float(value)
    if kind == "list":
        return list(value)
    if kind == "dict":
        return dict(value)
    return value


def json_value(value: Any) -> Any:
    """Return a parameter value in JSON form (a path as its string)."""
    if isinstance(value, Path):
        return str(value)
    return value


def _param_kind(name: str, annotation: Any) -> tuple[str, bool]:
    if annotation is _MISSING or annotation is Any:
        return "any", False
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(annotation)):
            return _param_kind(name, args[0])[0], True
    if annotation in _SCALARS:
        return _SCALARS[annotation], False
    base = origin if origin is not None else annotation
    if base in _CONTAINERS:
        return _CONTAINERS[base], False
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path", False
    raise PipelineDefinitionError(
        f"The pipeline parameter {name!r} has the type {annotation!r}, which cannot be "
        "given on the command line.",
        hint="use str, int, float, bool, Path, list or dict (optionally | None)",
    )


@dataclass(frozen=True, kw_only=True)
class ApprovalSpec:
    """How an approval step waits: for how long, and what a rejection does."""

    timeout: float
    """Seconds to wait for a decision."""
    on_reject: Literal["fail", "branch"] = "fail"
    """``fail``: a rejection fails the step; ``branch``: the step succeeds with
    ``approved`` false (the ``otherwise`` branch runs)."""

    def to_json(self) -> dict[str, Any]:
        """Return the options as they appear in an exported definition."""
        return {"timeout": self.timeout, "on_reject": self.on_reject}


@dataclass(frozen=True, kw_only=True)
class Node:
    """One node of a pipeline's DAG: a step call, a fail step or an approval step."""

    name: str
    kind: Literal["step", "fail", "approval"]
    step: Step | None
    args: Mapping[str, Any]
    """The call's arguments by parameter name (they may hold expressions)."""
    guards: tuple[tuple[Expr, bool], ...] = ()
    """Conditions (and the outcome each must have) under which the node runs."""
    message: str = ""
    order: int = 0
    approval: ApprovalSpec | None = None

    def exprs(self) -> Iterator[Expr]:
        """Yield every expression the node reads: in its arguments and its guards."""
        for value in self.args.values():
            yield from exprs_in(value)
        for cond, _ in self.guards:
            yield cond

    def deps(self) -> set[str]:
        """Return the names of the nodes whose outputs this node reads."""
        return {r.node for e in self.exprs() for r in e.roots() if isinstance(r, Output)}

    def params(self) -> set[str]:
        """Return the names of the parameters this node reads."""
        return {r.name for e in self.exprs() for r in e.roots() if isinstance(r, ParamRef)}

    def uses(self, params: Mapping[str, Any]) -> Uses:
        """Return what this step call reads and writes, given the run's parameter values.

        Raises:
            PipelineDefinitionError: a declaration needs an argument that comes from
                another step's output (known only while the execution runs).
        """
        if self.step is None:
            return Uses()
        return self.step.uses(_CallArguments(self, params))

    def to_json(self, graph: nx.DiGraph) -> dict[str, Any]:
        """Return the node as it appears in an exported definition."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "depends_on": sorted(graph.predecessors(self.name)),
            "inputs": {k: literal_json(v) for k, v in sorted(self.args.items())},
            "when": [{"condition": c.to_json(), "is": want} for c, want in self.guards],
        }
        if self.step is not None:
            out["function"] = function_id(self.step.fn)
            out["options"] = self.step.options.to_json()
        else:
            out["message"] = self.message
        if self.approval is not None:
            out["options"] = self.approval.to_json()
        return out


class _CallArguments(Mapping[str, Any]):
    """A step call's arguments with the parameters filled in, read when a declaration
    names them: one that depends on a step's output cannot be known before the run."""

    def __init__(self, node: Node, params: Mapping[str, Any]) -> None:
        self.node = node
        self.params = params

    def __contains__(self, key: object) -> bool:
        return key in self.node.args

    def __getitem__(self, key: str) -> Any:
        value = self.node.args[key]
        for expr in exprs_in(value):
            for root in expr.roots():
                if isinstance(root, Output):
                    raise PipelineDefinitionError(
                        f"Step {self.node.name!r} says what it touches with its argument "
                        f"{key!r}, which is {root.describe()}: unknown until the run, so "
                        "the run token cannot be scoped to it.",
                        hint="pass that argument as a value or a pipeline parameter, or "
                        "declare the paths on the pipeline: @pipeline(writes=[...])",
                    )
        return _evaluate(value, self._param)

    def _param(self, ref: Output | ParamRef) -> Any:
        assert isinstance(ref, ParamRef)  # outputs were refused above
        return self.params[ref.name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.node.args)

    def __len__(self) -> int:
        return len(self.node.args)


@dataclass(frozen=True, kw_only=True)
class Dag:
    """A validated DAG: nodes in a deterministic topological order, and the graph."""

    pipeline: str
    nodes: Mapping[str, Node]
    graph: nx.DiGraph = field(repr=False)
    params: Mapping[str, ParamSpec]


_trace: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar(
    "trivet_pipeline_trace", default=None
)


def current_trace() -> _Trace | None:
    """Return the pipeline being defined in this context, or None."""
    return _trace.get()


class _Trace:
    """Records the nodes a pipeline function creates."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.nodes: dict[str, Node] = {}
        self.owners: dict[str, Step | str] = {}
        self.guards: list[tuple[Expr, bool]] = []

    def _name_for(self, base: str, owner: Step | str) -> str:
        if base not in self.owners:
            return base
        first = self.owners[base]
        same = first is owner or (
            isinstance(first, Step) and isinstance(owner, Step) and first.fn is owner.fn
        )
        if not same:
            raise PipelineDefinitionError(
                f"Two different steps of pipeline {self.pipeline!r} are named {base!r}.",
                hint="rename one with @step(name=...) or step.with_options(name=...)",
            )
        n = 2
        while f"{base}_{n}" in self.owners:
            n += 1
        return f"{base}_{n}"

    def _check_exprs(self, where: str, value: Any) -> None:
        for expr in exprs_in(value):
            for root in expr.roots():
                if isinstance(root, Output) and root.tracer is not self:
                    raise PipelineDefinitionError(
                        f"{where} of pipeline {self.pipeline!r} gets {root.describe()}, which "
                        "belongs to another pipeline definition.",
                        hint="call the upstream step inside this @pipeline function",
                    )

    def add_step(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Output:
        name = self._name_for(step.name, step)
        if SESSION_PARAMETER in kwargs and step.wants_session:
            raise PipelineDefinitionError(
                f"Step {name!r} is given a session, but the execution gives every step its own.",
                hint=f"leave out session=... when calling {step.name}(...)",
            )
        try:
            bound = step.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise PipelineDefinitionError(
                f"Step {name!r} of pipeline {self.pipeline!r} is called with the wrong "
                f"arguments: {exc}.",
                hint=f"match the signature {step.name}{step.signature}",
            ) from None
        missing = [
            p.name
            for p in step.signature.parameters.values()
            if p.name not in bound.arguments
            and p.default is _MISSING
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name != SESSION_PARAMETER
        ]
        if missing:
            raise PipelineDefinitionError(
                f"Step {name!r} of pipeline {self.pipeline!r} is missing its input {missing[0]!r}.",
                hint=f"pass it when calling {step.name}(...): a step's output, a parameter "
                "or a value",
            )
        for key, value in bound.arguments.items():
            self._check_exprs(f"The input {key!r} of step {name!r}", value)
        node = Node(
            name=name,
            kind="step",
            step=step,
            args=dict(bound.arguments),
            guards=tuple(self.guards),
            order=len(self.nodes),
        )
        self.owners[name] = step
        self.nodes[name] = node
        return Output(name, self)

    def add_fail(self, message: str, values: Mapping[str, Any], name: str) -> None:
        check_step_name(name)
        name = self._name_for(name, "fail")
        for key, value in values.items():
            self._check_exprs(f"The value {key!r} of fail step {name!r}", value)
        self.owners[name] = "fail"
        self.nodes[name] = Node(
            name=name,
            kind="fail",
            step=None,
            args=dict(values),
            guards=tuple(self.guards),
            message=message,
            order=len(self.nodes),
        )

    def add_approval(
        self, message: str, values: Mapping[str, Any], name: str, spec: ApprovalSpec
    ) -> Output:
        check_step_name(name)
        name = self._name_for(name, "approval")
        for key, value in values.items():
            self._check_exprs(f"The value {key!r} of approval step {name!r}", value)
        self.owners[name] = "approval"
        self.nodes[name] = Node(
            name=name,
            kind="approval",
            step=None,
            args=dict(values),
            guards=tuple(self.guards),
            message=message,
            order=len(self.nodes),
            approval=spec,
        )
        return Output(name, self)


def require_trace(what: str) -> _Trace:
    trace = _trace.get()
    if trace is None:
        raise PipelineDefinitionError(
            f"{what} is only meaningful inside a @pipeline function.",
            hint="call it in the function you decorate with @pipeline",
        )
    return trace


def when(
    condition: Expr,
    *,
    then: Callable[[], object],
    otherwise: Callable[[], object] | None = None,
) -> None:
    """Run the steps ``then`` calls if ``condition`` holds, else those ``otherwise`` calls.

    ``condition`` compares a step's output (or a value inside it, or a parameter) with
    a value: ``metrics["auc"] >= min_auc``; combine conditions with ``&``, ``|``, ``~``.
    It is evaluated when the steps it reads have finished. Steps of the branch not
    taken, and steps downstream of them, end ``skipped``. Branches nest.

    Example (inside a ``@pipeline`` function)::

        when(metrics["auc"] >= min_auc,
             then=lambda: register(model, metrics),
             otherwise=lambda: fail("AUC {auc} is below the bar", auc=metrics["auc"]))
    """
    trace = require_trace("when()")
    if not isinstance(condition, Expr):
        raise PipelineDefinitionError(
            f"when() needs a condition on a step's output or a parameter, not {condition!r}.",
            hint="e.g. when(metrics['auc'] >= 0.8, then=...); a plain Python bool is "
            "decided by an ordinary if",
        )
    trace._check_exprs("A when() condition", condition)
    for branch, outcome in ((then, True), (otherwise, False)):
        if branch is None:
            continue
        if not callable(branch):
            raise PipelineDefinitionError(
                "when()'s then= and otherwise= take functions that call steps.",
                hint="e.g. then=lambda: register(model)",
            )
        trace.guards.append((condition, outcome))
        try:
            branch()
        finally:
            trace.guards.pop()


def fail(message: str, /, *, name: str = "fail", **values: Any) -> None:
    """A step that fails the execution with ``message`` when it is reached.

    ``message`` may name ``values`` in braces; they may be step outputs or values
    inside them, filled in at run time: ``fail("AUC {auc} too low", auc=m["auc"])``.
    Usually placed in a :func:`when` branch.
    """
    trace = require_trace("fail()")
    if not isinstance(message, str) or not message:
        raise PipelineDefinitionError("fail() needs a message saying why the execution stops.")
    trace.add_fail(message, values, name)


def _check_pipeline_name(name: object) -> str:
    if not isinstance(name, str) or _PIPELINE_NAME.fullmatch(name) is None:
        raise PipelineDefinitionError(
            f"The pipeline name {name!r} is not valid.",
            hint="use 1 to 64 lower-case letters, digits, '.', '_' or '-'; pass "
            "@pipeline(name=...) to choose one",
        )
    return name


class Pipeline:
    """A pipeline: a function whose step calls make a DAG (see :func:`pipeline`)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        description: str,
        reads: Sequence[str] = (),
        writes: Sequence[str] = (),
    ) -> None:
        self.fn = fn
        self.name = _check_pipeline_name(name)
        self.description = description
        self.params = self._param_specs()
        self.reads = self._declarations("reads", reads)
        self.writes = self._declarations("writes", writes)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def _declarations(self, label: str, values: object) -> tuple[str, ...]:
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise PipelineDefinitionError(
                f"{label} of pipeline {self.name!r} takes a list of paths, not {values!r}.",
                hint=f'e.g. @pipeline({label}=["feature_groups/applicants"])',
            )
        for value in values:
            if not isinstance(value, str):
                raise PipelineDefinitionError(
                    f"{label} of pipeline {self.name!r} holds {value!r}, not a path.",
                    hint="give '<kind>/<name>' paths; '{param}' names a pipeline parameter",
                )
            try:
                expand(value, {k: "x" for k in self.params})
            except KeyError as exc:
                raise PipelineDefinitionError(
                    f"The pipeline {self.name!r} declares {value!r}, but has no parameter "
                    f"{exc.args[0]!r}.",
                    hint=did_you_mean(str(exc.args[0]), self.params)
                    or "name one of its parameters in braces",
                ) from None
        return tuple(values)

    def __repr__(self) -> str:
        return f"<pipeline {self.name!r} ({len(self.dag().nodes)} steps)>"

    def _param_specs(self) -> dict[str, ParamSpec]:
        try:
            hints = typing.get_type_hints(self.fn)
        except Exception:  # an unresolvable annotation: fall back to the raw ones
            hints = {}
        specs: dict[str, ParamSpec] = {}
        for p in inspect.signature(self.fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise PipelineDefinitionError(
                    f"The pipeline {self.name!r} takes *{p.name}; parameters must be named.",
                    hint="declare each parameter, with a type and a default",
                )
            default, help_text = p.default, ""
            if isinstance(default, Param):
                default, help_text = default.default, default.help
            kind, optional = _param_kind(p.name, hints.get(p.name, p.annotation))
            spec = ParamSpec(
                name=p.name,
                type=kind,
                optional=optional,
                default=None if default is _MISSING else default,
                required=default is _MISSING,
                help=help_text,
            )
            if not spec.required:  # a default must be of the declared type
                object.__setattr__(spec, "default", spec.convert(spec.default))
            specs[p.name] = spec
        return specs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise PipelineDefinitionError(
            f"A pipeline is run by an execution, not called: {self.name!r}.",
            hint="Pipelines(session).run(pipeline, params={...}), or "
            "`trivet pipelines run FILE.py`",
        )

    @functools.cache  # noqa: B019 - one DAG per pipeline object, kept as long as it lives
    def dag(self) -> Dag:
        """Trace the function into its DAG and validate it (cached).

        Raises:
            PipelineDefinitionError: a cycle, a missing input, a duplicate step name, a
                parameter of the wrong type; the message names the step and the fix.
        """
        trace = _Trace(self.name)
        token = _trace.set(trace)
        try:
            self.fn(**{name: ParamRef(name) for name in self.params})
        finally:
            _trace.reset(token)
        return validate(self.name, trace.nodes, self.params)

    def resolve_params(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return every parameter's value: ``given`` (converted) over the defaults.

        Raises:
            PipelineDefinitionError: an unknown parameter, a missing required one, or a
                value that does not convert to the parameter's type.
        """
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise PipelineDefinitionError(
                f"The pipeline {self.name!r} has no parameter {unknown[0]!r}.",
                hint=did_you_mean(unknown[0], self.params) or "it takes no parameters",
            )
        values: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name in given:
                values[name] = spec.convert(given[name])
            elif spec.required:
                raise PipelineDefinitionError(
                    f"The pipeline {self.name!r} needs the parameter {name!r} ({spec.type}).",
                    hint=f"pass params={{'{name}': ...}} or --param {name}=VALUE",
                )
            else:
                values[name] = spec.default
        return values

    def uses(self, params: Mapping[str, Any] | None = None) -> Uses:
        """Return what a run with these parameters may read and write beyond its folder.

        The union of every step's declarations (a built-in step derives its own from
        its arguments: ``ingest_features(group="applicants")`` writes
        ``feature_groups/applicants``) and the pipeline's own ``reads``/``writes``. An
        execution's run token covers exactly these (see ``docs/pipelines.md``).

        Args:
            params: parameter values, as for :meth:`resolve_params`.

        Returns:
            The paths, without the project (``models/credit``).

        Raises:
            PipelineDefinitionError: bad parameters, a declaration that depends on a
                step's output, or a path that names nothing in a project.
        """
        values = self.resolve_params(params)
        total = Uses()
        for node in self.dag().nodes.values():
            total = total | node.uses(values)
        where = f"The pipeline {self.name!r}"
        mine = Uses(
            reads=tuple(check_path(p, where=where) for d in self.reads for p in expand(d, values)),
            writes=tuple(
                check_path(p, where=where) for d in self.writes for p in expand(d, values)
            ),
        )
        return total | mine

    def definition(self) -> dict[str, Any]:
        """Return the pipeline's definition as JSON data (deterministic, for review and diff)."""
        dag = self.dag()
        out = {
            "format": DEFINITION_FORMAT,
            "name": self.name,
            "description": self.description,
            "function": function_id(self.fn),
            "params": {k: v.to_json() for k, v in sorted(self.params.items())},
            "steps": [node.to_json(dag.graph) for node in dag.nodes.values()],
        }
        for label, values in (("reads", self.reads), ("writes", self.writes)):
            if values:
                out[label] = list(values)
        return out

    def digest(self) -> str:
        """Return the sha256 of the canonical definition (equal definitions, equal digests)."""
        return self.recorded_definition()[1]

    @functools.cache  # noqa: B019 - like dag(): one per pipeline object
    def recorded_definition(self) -> tuple[Mapping[str, Any], str]:
        """Return the definition as executions record it (read-only) and its digest.

        Made once per pipeline object (a definition is fixed once the DAG is traced);
        :meth:`definition` returns a fresh copy to change at will.
        """
        definition = self.definition()
        return types.MappingProxyType(definition), definition_digest(definition)

    def graph(self, *, format: Literal["text", "mermaid", "svg"] = "text") -> str:
        """Render the DAG as text, a Mermaid flowchart or a self-contained SVG picture."""
        from trivet.pipelines._graph import render

        return render(self.definition(), format=format)

    def _repr_html_(self) -> str:
        """Show the pipeline in Jupyter: its parameters and its DAG as an SVG picture."""
        from trivet.pipelines._graph import pipeline_html

        return pipeline_html(self.definition())


def definition_digest(definition: Mapping[str, Any]) -> str:
    """Return the sha256 of a definition's canonical JSON."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def validate(pipeline: str, nodes: Mapping[str, Node], params: Mapping[str, ParamSpec]) -> Dag:
    """Check a pipeline's nodes with networkx and return its DAG in topological order.

    Raises:
        PipelineDefinitionError: an input from a step that is not in the pipeline, a
            cycle, an unknown parameter, or an empty pipeline.
    """
    import networkx as nx

    if not nodes:
        raise PipelineDefinitionError(
            f"The pipeline {pipeline!r} has no steps.",
            hint="call @step functions inside the @pipeline function",
        )
    graph = nx.DiGraph()
    for node in nodes.values():
        graph.add_node(node.name)
    for node in nodes.values():
        for dep in sorted(node.deps()):
            if dep not in nodes:
                raise PipelineDefinitionError(
                    f"Step {node.name!r} of pipeline {pipeline!r} reads the output of "
                    f"{dep!r}, which is not a step of the pipeline (a missing input).",
                    hint=did_you_mean(dep, nodes) or "call that step in the pipeline first",
                )
            if nodes[dep].kind == "fail":
                raise PipelineDefinitionError(
                    f"Step {node.name!r} reads the fail step {dep!r}, which has no output."
                )
            graph.add_edge(dep, node.name)
        unknown = sorted(node.params() - set(params))
        if unknown:
            raise PipelineDefinitionError(
                f"Step {node.name!r} of pipeline {pipeline!r} reads the parameter "
                f"{unknown[0]!r}, which the pipeline does not declare.",
                hint=did_you_mean(unknown[0], params) or "declare it as a pipeline parameter",
            )
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " → ".join([a for a, _ in cycle] + [cycle[0][0]])
        raise PipelineDefinitionError(
            f"The pipeline {pipeline!r} has a cycle: {path}.",
            hint=f"a step cannot depend on its own output; break the loop at {cycle[0][0]!r}",
        )
    order = list(nx.lexicographical_topological_sort(graph, key=lambda n: nodes[n].order))
    return Dag(pipeline=pipeline, nodes={n: nodes[n] for n in order}, graph=graph, params=params)


@typing.overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@typing.overload
def pipeline(
    *,
    name: str | None = None,
    description: str | None = None,
    reads: Sequence[str] = (),
    writes: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    reads: Sequence[str] = (),
    writes: Sequence[str] = (),
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function a pipeline: its parameters are the pipeline's, its step calls the DAG.

    Parameters take a type annotation (str, int, float, bool, Path, list, dict, or
    ``X | None``) and a default, or a :class:`Param`. A ``Path`` parameter is hashed by
    its content for the cache.

    Args:
        fn: the function (when used as ``@pipeline`` without parentheses).
        name: the pipeline's name (default: the function's).
        description: one line (default: the docstring's first paragraph).
        reads: paths in the project its steps read beyond what they declare
            themselves (``"feature_groups/applicants"``; ``"{param}"`` names a
            parameter). The run token covers the run's folder, these, and the steps'
            declarations — see :meth:`Pipeline.uses`.
        writes: paths its steps write, register or store, likewise.

    Example:
        >>> from trivet.pipelines import step
        >>> @step
        ... def load(n: int) -> list[int]:
        ...     return list(range(n))
        >>> @step
        ... def total(xs: list[int]) -> int:
        ...     return sum(xs)
        >>> @pipeline
        ... def demo(n: int = 10) -> None:
        ...     total(load(n))
        >>> [s["name"] for s in demo.definition()["steps"]]
        ['load', 'total']
    """

    def wrap(func: Callable[..., Any]) -> Pipeline:
        doc = inspect.getdoc(func) or ""
        return Pipeline(
            func,
            name=name if name is not None else getattr(func, "__name__", ""),
            description=description if description is not None else doc.split("\n\n")[0],
            reads=reads,
            writes=writes,
        )

    return wrap(fn) if fn is not None else wrap
