"""`trivet models`: the model registry — versions, approvals and aliases."""

from __future__ import annotations

from typing import Annotated

import typer

from trivet._cli.context import session
from trivet._cli.output import JSON_OPTION, emit_json, note, table, when

app = typer.Typer(
    help="Browse the model registry; approve or reject versions.", no_args_is_help=True
)

Justification = Annotated[
    str, typer.Option("--justification", "-j", help="Why (required; kept in the audit log).")
]


@app.command("list")
def list_groups(as_json: bool = JSON_OPTION) -> None:
    """List the model groups you may see."""
    groups = session().registry.groups()
    if as_json:
        emit_json(groups)
        return
    table(
        ((g.name, g.description, when(g.created_at)) for g in groups),
        ["name", "description", "created"],
    )


@app.command("versions")
def versions(name: str, as_json: bool = JSON_OPTION) -> None:
    """List the versions of model NAME."""
    found = session().registry.versions(name)
    if as_json:
        emit_json(found)
        return
    table(
        (
            (
                v.version,
                v.status,
                v.gate_status,
                ", ".join(v.aliases),
                v.created_by,
                when(v.created_at),
                v.decided_by or "",
            )
            for v in found
        ),
        ["version", "status", "gate", "aliases", "registered by", "registered", "decided by"],
    )


@app.command("describe")
def describe(
    name: str,
    version: Annotated[str, typer.Argument(help="A number, an alias or 'latest'.")] = "latest",
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one version: status, metrics, params, digests and the approval decision."""
    v = session().registry.get(name, int(version) if version.isdigit() else version)
    if as_json:
        emit_json(v)
        return
    for key in (
        "resource",
        "status",
        "gate_status",
        "artifact_digest",
        "fairness_report_digest",
        "flavor",
        "metrics",
        "params",
        "created_by",
        "decided_by",
        "decision_reason",
    ):
        typer.echo(f"{key:24} {getattr(v, key, '')}")


def _decide(name: str, version: int, justification: str, *, approve: bool) -> None:
    reg = session().registry
    decided = (reg.approve if approve else reg.reject)(name, version, justification=justification)
    note(f"{name} version {decided.version} is now {decided.status}.")


@app.command("approve")
def approve(name: str, version: int, justification: Justification) -> None:
    """Approve a PendingManualApproval version (needs model:approve)."""
    _decide(name, version, justification, approve=True)


@app.command("reject")
def reject(name: str, version: int, justification: Justification) -> None:
    """Reject a PendingManualApproval version (needs model:approve)."""
    _decide(name, version, justification, approve=False)


@app.command("alias")
def alias(name: str, alias_name: str, version: int) -> None:
    """Point ALIAS_NAME (e.g. champion) at an Approved VERSION of NAME."""
    session().registry.set_alias(name, alias_name, version)
    note(f"{name}@{alias_name} -> version {version}.")
