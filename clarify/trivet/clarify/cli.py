"""`trivet clarify`: the command-line face of trivet.clarify."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Bias metrics, explanations and fairness reports (not yet available).",
    invoke_without_command=True,
)


@app.callback()
def _not_yet(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(
            "trivet clarify is not available yet in this version: it is being built "
            "(issue #4). The platform commands (auth, models, audit, ...) work today.",
            err=True,
        )
