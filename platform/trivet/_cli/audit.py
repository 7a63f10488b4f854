"""`trivet audit`: read and verify the hash-chained audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from trivet._cli.context import session
from trivet._cli.output import JSON_OPTION, emit_json, table, tagged, when

app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)


@app.command("log")
def log(
    limit: Annotated[int, typer.Option(help="How many rows, newest first.")] = 50,
    actor: Annotated[str | None, typer.Option(help="Only this principal's rows.")] = None,
    denied: Annotated[bool, typer.Option("--denied", help="Only denials.")] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show audit rows (needs audit:read on _audit)."""
    from trivet.platform import audit

    s = session()
    s.require("audit:read", "_audit")
    rows = audit.entries(
        s.catalog,
        limit=limit,
        actor=actor,
        outcome="denied" if denied else None,
        newest_first=True,
    )
    if as_json:
        emit_json(rows)
        return
    table(
        (
            (
                r.seq,
                when(r.ts),
                r.actor + (f" (for {r.on_behalf_of})" if r.on_behalf_of else ""),
                r.action,
                r.resource,
                r.outcome,
                r.detail.get("reason", ""),
            )
            for r in rows
        ),
        ["seq", "time (UTC)", "actor", "action", "resource", "outcome", "reason"],
    )


@app.command("verify")
def verify(as_json: bool = JSON_OPTION) -> None:
    """Recompute the hash chain. Exit code 7 names the first tampered row."""
    from trivet.platform import audit

    s = session()
    s.require("audit:read", "_audit")
    result = audit.verify(s.catalog)
    if as_json:
        emit_json(result)
    elif result.ok:
        tagged("audit log intact:", "green", f"{result.rows} rows, chain verified.")
    else:
        tagged("audit log TAMPERED", "red", f"at row {result.first_bad_seq}: {result.problem}")
    if not result.ok:
        raise typer.Exit(7)
