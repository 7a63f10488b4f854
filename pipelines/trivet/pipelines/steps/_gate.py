"""``gate``: stop the execution unless a condition on step outputs holds.

A gate is :func:`~trivet.pipelines.when` and :func:`~trivet.pipelines.fail` together,
not a mechanism of its own: the steps ``then`` calls run when the condition holds;
otherwise a fail step (named after the gate) fails the execution with the message,
and ``then``'s steps end ``skipped``. To *branch* instead of failing — register the
model as failed for the record, say — use ``when`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trivet.pipelines._expr import Expr, Output
from trivet.pipelines.dag import fail, when
from trivet.pipelines.errors import PipelineDefinitionError

__all__ = ["gate"]


def _nothing() -> None:
    return None


def gate(
    condition: Expr,
    /,
    *,
    then: Callable[[], object] | None = None,
    message: str | None = None,
    name: str = "gate",
    **values: Any,
) -> None:
    """Fail the execution unless ``condition`` holds; run ``then``'s steps when it does.

    Call it inside a ``@pipeline`` function. ``condition`` is a condition on step
    outputs or parameters (``metrics["roc_auc"] >= min_auc``, combined with ``&``,
    ``|``, ``~``), a value inside an output (``bias["passed"]``), or the output of a
    step that returns ``{"passed": ..., "summary": ...}`` — as :func:`bias_check` does
    — which stands for its ``passed``, with its ``summary`` in the default message.

    Steps called in ``then`` run only when the gate passes; steps called after the gate
    do not wait for it. When it fails, the execution fails with ``message`` (it may
    name ``values`` in braces, filled in when the gate is reached) in the record of a
    step called ``name``.

    Args:
        condition: what must hold.
        then: a function calling the steps that run only past the gate.
        message: why the execution stops (default: the condition, or the checks'
            summary).
        name: the gate's step name in the execution's records.
        values: values the message names, e.g. ``auc=metrics["roc_auc"]``.

    Raises:
        PipelineDefinitionError: outside a ``@pipeline`` function, or ``condition`` is
            not a condition on run-time values.

    Example (inside a ``@pipeline`` function)::

        bias = bias_check(model, holdout, label="approved", facet="sex",
                          checks={"DI": (0.8, 1.25)}, report_name="credit")
        gate(bias, then=lambda: register_model(model, name="credit", bias=bias))
    """
    if isinstance(condition, Output):
        values.setdefault("summary", condition["summary"])
        if message is None:
            message = f"gate {name!r} failed: {{summary}}"
        condition = condition["passed"]
    if not isinstance(condition, Expr):
        raise PipelineDefinitionError(
            f"gate() needs a condition on a step's output or a parameter, not {condition!r}.",
            hint="e.g. gate(bias['passed'], ...) or gate(metrics['auc'] >= 0.8, ...)",
        )
    if message is None:
        message = f"gate {name!r} failed: {condition.describe()} does not hold"
    text = message

    def stop() -> None:
        fail(text, name=name, **values)

    when(condition, then=then if then is not None else _nothing, otherwise=stop)
