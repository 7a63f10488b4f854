"""`trivet pipelines`: the command-line face of trivet.pipelines."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Python-defined ML pipelines with caching, gates and lineage (not yet available).",
    invoke_without_command=True,
)


@app.callback()
def _not_yet(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(
            "trivet pipelines is not available yet in this version: it is being built "
            "(issue #5). The platform commands (auth, models, audit, ...) work today.",
            err=True,
        )
