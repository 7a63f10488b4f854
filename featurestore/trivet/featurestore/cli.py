"""`trivet featurestore`: the command-line face of trivet.featurestore."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Feature groups, ingestion, online/offline stores, training sets (not yet available).",
    invoke_without_command=True,
)


@app.callback()
def _not_yet(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(
            "trivet featurestore is not available yet in this version: it is being built "
            "(issue #3). The platform commands (auth, models, audit, ...) work today.",
            err=True,
        )
