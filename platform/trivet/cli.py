"""The ``trivet`` command: one typer app that mounts each part's sub-app.

Errors a user can cause (:class:`trivet.errors.TrivetError`) are printed as one red
line with their hint, and the process exits with the error's exit code — never a
traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from trivet._cli import artifacts as artifacts_cli
from trivet._cli import audit as audit_cli
from trivet._cli import auth as auth_cli
from trivet._cli import lineage as lineage_cli
from trivet._cli import models as models_cli
from trivet._cli import project as project_cli
from trivet._cli.context import configure, session
from trivet._cli.output import JSON_OPTION, emit_json, note, tagged
from trivet.errors import TrivetError

__all__ = ["app", "main"]


class _Group(TyperGroup):
    """Turns TrivetError into one clear line and its exit code, in every sub-command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TrivetError as exc:
            from trivet.platform.identity import redact

            tagged("error:", "red", redact(exc.message))
            if exc.hint:
                tagged("hint:", "dim", redact(exc.hint))
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="trivet",
    cls=_Group,
    help="trivet: feature store, pipelines and fairness checks on one identity layer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar="TRIVET_WORKSPACE",
            help="Workspace folder.",
            show_envvar=True,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="TRIVET_TOKEN",
            help="API token (default: OS-user admin).",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", envvar="TRIVET_PROJECT", help="Project.")
    ] = None,
) -> None:
    configure(workspace=workspace, token=token, project=project)


@app.command("init")
def init(
    path: Annotated[
        Path | None, typer.Argument(help="Folder to create (default ./.trivet).")
    ] = None,
    project: Annotated[str, typer.Option(help="Name of the first project.")] = "default",
    catalog_url: Annotated[
        str | None,
        typer.Option(help="Keep the catalog in PostgreSQL: postgresql://user@host/db."),
    ] = None,
    four_eyes: Annotated[
        bool, typer.Option("--four-eyes", help="Nobody approves a model version they registered.")
    ] = False,
) -> None:
    """Create a workspace; you (this OS user) become its admin."""
    import trivet

    settings = trivet.init(path, project=project, catalog_url=catalog_url, four_eyes=four_eyes)
    note(f"Created workspace {settings.workspace} with project {settings.project!r}.")
    note("You are its admin. Next: `trivet whoami`, `trivet auth add-user NAME --role ...`.")


@app.command("whoami")
def whoami(as_json: bool = JSON_OPTION) -> None:
    """Show who you are in the workspace, and how you signed in."""
    s = session()
    p = s.principal
    info = {
        "name": p.name,
        "id": p.id,
        "kind": p.kind.value,
        "project": s.project,
        "workspace": str(s.settings.workspace),
        "auth": f"token {s.token.prefix}…" if s.token else f"OS user {p.os_user}",
    }
    if as_json:
        emit_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key:10} {value}")


@app.command("quickstart")
def quickstart(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to create the example workspace.")
    ] = Path("trivet-quickstart"),
) -> None:
    """Run the end-to-end example in a fresh workspace and say what it did."""
    from trivet._quickstart import run

    run(directory)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8420,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    pipeline: Annotated[
        list[str] | None,
        typer.Option(
            "--pipeline",
            metavar="TARGET",
            help="A pipeline the API may start: module:NAME or FILE.py:NAME (repeatable).",
        ),
    ] = None,
) -> None:
    """Serve the workspace: REST API (/docs), web console (/) — Ctrl-C stops it gracefully."""
    from trivet._cli.context import workspace_path
    from trivet.server import serve as run_server

    if log_level not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("choose debug, info, warning or error", param_hint="--log-level")
    note(f"trivet serving on http://{host}:{port}/ (API docs at /docs); Ctrl-C stops it.")
    run_server(
        workspace_path(), host=host, port=port, log_level=log_level, pipelines=pipeline or ()
    )


app.add_typer(auth_cli.app, name="auth")
app.add_typer(project_cli.app, name="project")
app.add_typer(models_cli.app, name="models")
app.add_typer(artifacts_cli.app, name="artifacts")
app.add_typer(lineage_cli.app, name="lineage")
app.add_typer(audit_cli.app, name="audit")


def _mount_parts() -> None:
    from trivet.clarify.cli import app as clarify_app
    from trivet.featurestore.cli import app as featurestore_app
    from trivet.pipelines.cli import app as pipelines_app

    app.add_typer(featurestore_app, name="featurestore")
    app.add_typer(clarify_app, name="clarify")
    app.add_typer(pipelines_app, name="pipelines")


_mount_parts()


def main() -> None:
    """Entry point of the ``trivet`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        tagged("interrupted", "red", "")
        sys.exit(130)


if __name__ == "__main__":
    main()
