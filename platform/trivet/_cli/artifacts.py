"""`trivet artifacts`: the content-addressed artifact store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trivet._cli.context import session
from trivet._cli.output import JSON_OPTION, emit_json, note, parse_duration, table, tagged, when

app = typer.Typer(help="Store, fetch, list and garbage-collect artifacts.", no_args_is_help=True)

FolderOpt = Annotated[
    str | None, typer.Option(help="Resource folder (default: <project>/artifacts).")
]


@app.command("put")
def put(path: Path, folder: FolderOpt = None, label: str = "", as_json: bool = JSON_OPTION) -> None:
    """Store a file or a directory; print its sha256 digest."""
    store = session().artifacts
    if path.is_dir():
        ref = store.put_dir(path, folder=folder, label=label)
    else:
        ref = store.put_file(path, folder=folder, label=label)
    if as_json:
        emit_json(ref)
    else:
        typer.echo(ref.digest)
        note(f"stored {ref.kind} of {ref.size:,} bytes in {ref.folder}")


@app.command("get")
def get(
    digest: str, dest: Annotated[Path, typer.Argument(help="File or folder to write.")]
) -> None:
    """Fetch an artifact (hash verified) into DEST."""
    store = session().artifacts
    ref = store.describe(digest)
    written = store.get_dir(digest, dest) if ref.kind == "dir" else store.get_file(digest, dest)
    note(f"wrote {written} (sha256 verified)")


@app.command("list")
def list_artifacts(folder: FolderOpt = None, as_json: bool = JSON_OPTION) -> None:
    """List artifacts in the folders you may read."""
    found = session().artifacts.list(folder)
    if as_json:
        emit_json(found)
        return
    table(
        ((r.digest[:16], r.kind, f"{r.size:,}", r.folder, when(r.created_at)) for r in found),
        ["digest", "kind", "bytes", "folder", "created"],
    )


@app.command("gc")
def gc(
    grace: Annotated[str, typer.Option(help="Keep anything younger than this.")] = "1h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete blobs and rows nothing refers to (needs grant:manage on _workspace)."""
    report = session().artifacts.gc(grace=parse_duration(grace), dry_run=dry_run)
    if as_json:
        emit_json(report)
    else:
        verb = "would delete" if report.dry_run else "deleted"
        note(
            f"{verb} {report.rows_deleted} catalog rows and {report.blobs_deleted} blobs "
            f"({report.bytes_freed:,} bytes), {report.temp_files_deleted} staging files"
        )
        for digest in report.lost:
            tagged("lost:", "red", f"{digest} has a catalog row but no blob")
