"""Definitions: tracing into a DAG, parameters, conditions, validation errors that name
the step and the fix, and a deterministic exported definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trivet.pipelines import (
    Param,
    PipelineDefinitionError,
    fail,
    pipeline,
    step,
    when,
)
from trivet.pipelines.dag import Node, validate


@step
def load(n: int) -> dict[str, Any]:
    return {"n": n}


@step
def train(data: dict[str, Any], alpha: float = 0.1) -> dict[str, Any]:
    return {"auc": 0.9}


def test_steps_are_plain_functions_outside_a_pipeline() -> None:
    assert load(3) == {"n": 3}
    assert train.name == "train" and train.options.retries == 0


def test_tracing_builds_the_dag_and_a_deterministic_definition() -> None:
    @pipeline
    def flow(
        n: int = 3,
        alpha: float = Param(default=0.5, help="regularisation"),
        out: Path | None = None,
    ) -> None:
        """Train a model.

        More words."""
        data = load(n)
        metrics = train(data, alpha=alpha)
        when(metrics["auc"] > 0.8, then=lambda: train(data), otherwise=lambda: fail("low"))

    definition = flow.definition()
    assert definition == flow.definition()  # deterministic
    assert flow.digest() == flow.digest()
    assert definition["description"] == "Train a model."
    assert definition["params"]["alpha"] == {
        "type": "float",
        "required": False,
        "default": 0.5,
        "help": "regularisation",
    }
    assert definition["params"]["out"]["type"] == "path | None"
    steps = {s["name"]: s for s in definition["steps"]}
    assert list(steps) == ["load", "train", "train_2", "fail"]
    assert steps["train"]["inputs"] == {"alpha": {"param": "alpha"}, "data": {"step": "load"}}
    assert steps["train_2"]["depends_on"] == ["load", "train"]
    assert steps["train_2"]["when"] == [
        {
            "condition": {"op": ">", "left": {"get": [{"step": "train"}, "auc"]}, "right": 0.8},
            "is": True,
        }
    ]
    assert steps["fail"]["when"][0]["is"] is False
    assert steps["load"]["function"].endswith("test_definition:load")
    text = flow.graph()
    assert "train_2  ← load, train  [when train['auc'] > 0.8]" in text


def test_parameters_convert_from_strings_with_clear_errors() -> None:
    @pipeline
    def typed(
        n: int = 1,
        x: float = 0.5,
        flag: bool = False,
        cols: list[str] | None = None,
        path: Path = Path("data.csv"),
        name: str = "a",
    ) -> None:
        load(n)

    values = typed.resolve_params(
        {"n": "3", "x": "2", "flag": "yes", "cols": '["a", "b"]', "path": "x.csv"}
    )
    assert values == {
        "n": 3,
        "x": 2.0,
        "flag": True,
        "cols": ["a", "b"],
        "path": Path("x.csv"),
        "name": "a",
    }
    with pytest.raises(PipelineDefinitionError, match=r"'n' expects int, not '3.5'"):
        typed.resolve_params({"n": "3.5"})
    with pytest.raises(PipelineDefinitionError, match=r"'flag' expects bool"):
        typed.resolve_params({"flag": "maybe"})
    with pytest.raises(PipelineDefinitionError, match=r"no parameter 'nn'.*did you mean 'n'"):
        typed.resolve_params({"nn": 1})
    with pytest.raises(PipelineDefinitionError, match=r"'n' expects int"):
        typed.resolve_params({"n": True})


def test_required_parameter_and_unsupported_type() -> None:
    @pipeline
    def needs(n: int) -> None:
        load(n)

    with pytest.raises(PipelineDefinitionError, match="needs the parameter 'n'"):
        needs.resolve_params({})
    with pytest.raises(PipelineDefinitionError, match="cannot be given on the command line"):

        @pipeline
        def bad(x: complex = 1j) -> None:
            load(1)


def test_missing_input_names_the_step_and_the_fix() -> None:
    @pipeline
    def missing() -> None:
        train()

    with pytest.raises(PipelineDefinitionError, match=r"Step 'train' .* missing its input 'data'"):
        missing.dag()


def test_duplicate_names_of_different_steps() -> None:
    other = step(name="load")(lambda n: n)

    @pipeline
    def dup() -> None:
        load(1)
        other(2)

    with pytest.raises(PipelineDefinitionError, match=r"Two different steps .* named 'load'"):
        dup.dag()


def test_outputs_of_another_pipeline_and_cycles_are_refused() -> None:
    leaked: list[Any] = []

    @pipeline
    def first() -> None:
        leaked.append(load(1))

    first.dag()

    @pipeline
    def second() -> None:
        train(leaked[0])

    with pytest.raises(PipelineDefinitionError, match="belongs to another pipeline"):
        second.dag()
    # hand-made nodes reading each other: what tracing cannot build, validation still catches
    from trivet.pipelines._expr import Output

    a = Node(name="a", kind="step", step=train, args={"data": Output("b", None)})
    b = Node(name="b", kind="step", step=train, args={"data": Output("a", None)}, order=1)
    with pytest.raises(PipelineDefinitionError, match=r"has a cycle: a → b → a"):
        validate("p", {"a": a, "b": b}, {})
    c = Node(name="c", kind="step", step=train, args={"data": Output("zz", None)})
    with pytest.raises(PipelineDefinitionError, match=r"reads the output of 'zz'"):
        validate("p", {"c": c}, {})


def test_conditions_have_no_truth_value_while_defining() -> None:
    @pipeline
    def branchy() -> None:
        m = train(load(1))
        if m["auc"] > 0.5:
            train(load(2))

    with pytest.raises(PipelineDefinitionError, match="when\\(condition"):
        branchy.dag()

    @pipeline
    def math(n: int = 1) -> None:
        load(n + 1)

    with pytest.raises(PipelineDefinitionError, match="Arithmetic"):
        math.dag()


def test_step_options_are_validated_and_when_needs_a_pipeline() -> None:
    with pytest.raises(PipelineDefinitionError, match="retries"):
        step(retries=-1, name="x")(lambda: None)
    with pytest.raises(PipelineDefinitionError, match="not valid"):

        @step
        def CamelCase() -> None:
            return None

    with pytest.raises(PipelineDefinitionError, match="only meaningful inside"):
        fail("nope")
    with pytest.raises(PipelineDefinitionError, match="is run by an execution"):
        pipeline(name="x")(lambda: None)()
