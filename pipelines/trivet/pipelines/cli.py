"""`trivet pipelines`: the command-line face of trivet.pipelines.

Thin over :class:`~trivet.pipelines.Pipelines`: data goes to stdout (``--json`` for
machines), messages to stderr; the root command turns a TrivetError into one red
line and its exit code.

This module sits below the assembly layer, so it does not import ``trivet._cli``: it
opens its session from the root command's options (``--workspace``, ``--token``,
``--project``) through the platform layer, and keeps its own output helpers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trivet.platform.console import emit_json, note, plain, table

if TYPE_CHECKING:
    from trivet.pipelines import Execution, Pipelines

app = typer.Typer(
    help="Pipelines of Python steps: run, inspect executions, retry, explain the cache.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")


# -- session and output ------------------------------------------------------------------
def _pipelines(ctx: typer.Context) -> Pipelines:
    """Open Pipelines with the root command's options (or TRIVET_* variables)."""
    from trivet.pipelines import Pipelines
    from trivet.platform.session import Session
    from trivet.platform.settings import load_settings
    from trivet.platform.workspace import open_session

    params: Mapping[str, Any] = ctx.find_root().params
    settings = load_settings(params.get("workspace"))
    session = open_session(settings, params.get("token"), Session, project=params.get("project"))
    return Pipelines(session)


def _seconds(delta: dt.timedelta | None) -> str:
    return "" if delta is None else f"{delta.total_seconds():.3f}s"


def _show_execution(execution: Execution) -> None:
    table(
        (
            (
                s.name,
                s.status,
                "hit" if s.cache_hit else "",
                s.attempts,
                _seconds(s.duration),
                (s.error or s.cache_note)[:100],
            )
            for s in execution.steps
        ),
        ["step", "status", "cache", "attempts", "duration", "note"],
    )


def _parse_params(items: list[str] | None) -> dict[str, str]:
    from trivet.errors import ValidationError

    params: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValidationError(
                f"--param takes NAME=VALUE, not {item!r}.", hint="e.g. --param alpha=0.5"
            )
        params[name.strip()] = value
    return params


# -- commands ------------------------------------------------------------------------------
@app.command("run")
def run(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(help="FILE.py[:NAME] or module[:NAME] defining the pipeline.")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A parameter, NAME=VALUE (repeatable)."),
    ] = None,
    run_as: Annotated[
        str | None,
        typer.Option(help="Run as 'runner' (the project's) or a service principal."),
    ] = None,
    refresh: Annotated[bool, typer.Option(help="Run every step, ignoring the cache.")] = False,
    from_step: Annotated[
        str | None, typer.Option("--from", help="Run this step and what is downstream of it.")
    ] = None,
    only: Annotated[
        str | None, typer.Option(help="Run only this step (its inputs must be cached).")
    ] = None,
    max_parallel: Annotated[
        int | None, typer.Option(help="The most steps running at once.")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a pipeline; exit 1 if the execution fails."""
    from trivet.pipelines import load_pipeline

    pipes = _pipelines(ctx)
    execution = pipes.run(
        load_pipeline(target),
        params=_parse_params(param),
        run_as=run_as,
        refresh=refresh,
        from_step=from_step,
        only=only,
        max_parallel=max_parallel,
    )
    if as_json:
        emit_json(execution)
    else:
        _show_execution(execution)
        note(f"execution {execution.id}: {execution.status.value}")
    if not execution.succeeded:
        if execution.error:
            note(f"error: {execution.error}")
        raise typer.Exit(1)


@app.command("retry")
def retry(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The failed execution (or an id prefix).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Resume a failed or interrupted execution, reusing the steps that succeeded."""
    execution = _pipelines(ctx).retry(execution_id)
    if as_json:
        emit_json(execution)
    else:
        _show_execution(execution)
        note(f"execution {execution.id}: {execution.status.value}")
    if not execution.succeeded:
        raise typer.Exit(1)


@app.command("list")
def list_pipelines(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the project's pipelines."""
    infos = _pipelines(ctx).list()
    if as_json:
        emit_json([{k: v for k, v in plain(i).items() if k != "definition"} for i in infos])
        return
    table(
        ((i.name, i.version, len(i.definition["steps"]), i.description) for i in infos),
        ["pipeline", "version", "steps", "description"],
    )


@app.command("describe")
def describe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The pipeline.")],
    version: Annotated[int | None, typer.Option(help="A version (default: the latest).")] = None,
) -> None:
    """Print a pipeline's definition as JSON (for review and diff)."""
    emit_json(_pipelines(ctx).describe(name, version=version).definition)


@app.command("executions")
def executions(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this pipeline's.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: bool = JSON_OPTION,
) -> None:
    """List executions, newest first (those whose runner died show as interrupted, those
    waiting for an approval as waiting)."""
    pipes = _pipelines(ctx)
    found = pipes.executions(name, limit=limit, with_steps=as_json)
    if as_json:
        emit_json(found)
        return
    waiting = {a.execution_id for a in pipes.approvals()}
    table(
        (
            (
                e.id,
                e.pipeline,
                e.version,
                "waiting" if e.id in waiting else e.status,
                e.invoked_by,
                e.run_as,
                e.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for e in found
        ),
        ["execution", "pipeline", "version", "status", "invoked by", "run as", "started"],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The execution (or an id prefix).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Show an execution and its steps."""
    execution = _pipelines(ctx).get_execution(execution_id)
    if as_json:
        emit_json(execution)
        return
    _show_execution(execution)
    note(f"execution {execution.id}: {execution.status.value}")


@app.command("logs")
def logs(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The execution (or an id prefix).")],
    step_name: Annotated[str | None, typer.Argument(metavar="STEP", help="One step.")] = None,
) -> None:
    """Print what the steps printed and logged, with errors and tracebacks."""
    pipes = _pipelines(ctx)
    execution = pipes.get_execution(execution_id)
    steps = [execution.step(step_name)] if step_name else execution.steps
    for s in steps:
        typer.echo(f"== {s.name} ({s.status.value}) ==")
        if s.logs:
            typer.echo(s.logs.rstrip("\n"))
        if s.traceback:
            typer.echo(s.traceback.rstrip("\n"))
        elif s.error:
            typer.echo(s.error)


@app.command("graph")
def graph(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A registered pipeline, or FILE.py[:NAME].")],
    fmt: Annotated[str, typer.Option("--format", help="text, mermaid or svg.")] = "text",
    execution: Annotated[
        str | None, typer.Option(help="Show the step statuses of this execution.")
    ] = None,
) -> None:
    """Draw a pipeline's DAG."""
    from trivet.errors import ValidationError
    from trivet.pipelines import load_pipeline

    if fmt not in ("text", "mermaid", "svg"):
        raise ValidationError(f"Unknown graph format {fmt!r}.", hint="use text, mermaid or svg")
    chosen: Any = fmt
    if name.endswith(".py") or ".py:" in name:
        typer.echo(load_pipeline(name).graph(format=chosen))
        return
    typer.echo(_pipelines(ctx).graph(name, format=chosen, execution=execution))


@app.command("why")
def why(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The execution (or an id prefix).")],
    step_name: Annotated[str, typer.Argument(metavar="STEP", help="The step.")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Explain why a step ran instead of being taken from the cache."""
    explanation = _pipelines(ctx).explain_miss(execution_id, step_name)
    if as_json:
        emit_json(explanation)
    else:
        typer.echo(str(explanation))


@app.command("approvals")
def approvals(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None, typer.Argument(help="Only this execution's (or an id prefix).")
    ] = None,
    decided: Annotated[
        bool, typer.Option("--all", help="Decided ones too, not only those waiting.")
    ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """List approval steps waiting for a decision (decide with approve or reject)."""
    found = _pipelines(ctx).approvals(execution_id, waiting=not decided)
    if as_json:
        emit_json(found)
        return
    table(
        (
            (
                a.execution_id,
                a.pipeline,
                a.step,
                a.decision or "waiting",
                a.decided_by or "",
                a.message[:80],
            )
            for a in found
        ),
        ["execution", "pipeline", "step", "decision", "by", "message"],
    )


def _decide(ctx: typer.Context, execution_id: str, step: str, comment: str, approve: bool) -> None:
    pipes = _pipelines(ctx)
    decide = pipes.approve if approve else pipes.reject
    decision = decide(execution_id, step, comment=comment)
    note(f"step {decision.step} of execution {decision.execution_id}: {decision.decision}")


EXECUTION_ARGUMENT = typer.Argument(help="The execution (or an id prefix).")
APPROVAL_STEP = typer.Argument(metavar="STEP", help="The approval step.")
COMMENT_OPTION = typer.Option("--comment", "-m", help="Why, for the record.")


@app.command("approve")
def approve(
    ctx: typer.Context,
    execution_id: Annotated[str, EXECUTION_ARGUMENT],
    step_name: Annotated[str, APPROVAL_STEP],
    comment: Annotated[str, COMMENT_OPTION] = "",
) -> None:
    """Approve a waiting approval step: the steps behind it run (needs pipeline:approve)."""
    _decide(ctx, execution_id, step_name, comment, approve=True)


@app.command("reject")
def reject(
    ctx: typer.Context,
    execution_id: Annotated[str, EXECUTION_ARGUMENT],
    step_name: Annotated[str, APPROVAL_STEP],
    comment: Annotated[str, COMMENT_OPTION] = "",
) -> None:
    """Reject a waiting approval step: it fails (or takes its otherwise branch)."""
    _decide(ctx, execution_id, step_name, comment, approve=False)
