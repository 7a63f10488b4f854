"""`trivet project`: create and list projects."""

from __future__ import annotations

import typer

from trivet._cli.context import session
from trivet._cli.output import JSON_OPTION, emit_json, note, table

app = typer.Typer(help="Create and list projects.", no_args_is_help=True)


@app.command("create")
def create(name: str, description: str = "") -> None:
    """Create a project with its default pipeline runner principal."""
    project = session().identity.create_project(name, description=description)
    note(f"Created project {project.name!r}; pipelines run as {project.runner!r} by default.")


@app.command("list")
def list_projects(as_json: bool = JSON_OPTION) -> None:
    """List projects."""
    found = session().identity.list_projects()
    if as_json:
        emit_json(found)
        return
    table(((p.name, p.runner, p.description) for p in found), ["name", "runner", "description"])
