"""`trivet auth`: principals, groups, grants, roles and tokens."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from trivet._cli.context import session
from trivet._cli.output import JSON_OPTION, emit_json, note, parse_duration, table, tagged, when

app = typer.Typer(
    help="Manage principals, groups, grants, roles and API tokens.", no_args_is_help=True
)
token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

RoleOpt = Annotated[
    str | None, typer.Option("--role", help="Grant this role (or action) right away.")
]
OnOpt = Annotated[
    str | None,
    typer.Option("--on", help="Pattern for --role (default: everything in the project, 'P/*')."),
]
DescOpt = Annotated[str, typer.Option("--description", help="A note shown in listings.")]


def _create(kind: str, name: str, role: str | None, on: str | None, description: str) -> None:
    s = session()
    create = {
        "user": s.identity.create_user,
        "group": s.identity.create_group,
        "service": s.identity.create_service,
    }[kind]
    principal = create(name, description=description)
    note(f"Created {kind} {principal.name!r} (id {principal.id}).")
    if role:
        pattern = on or f"{s.project}/*"
        grant = s.access.grant(name, role, pattern, reason=f"created with --role {role}")
        note(f"Granted {role!r} on {pattern!r} (grant {grant.id}).")


@app.command("add-user")
def add_user(name: str, role: RoleOpt = None, on: OnOpt = None, description: DescOpt = "") -> None:
    """Create a user principal, optionally granting a role."""
    _create("user", name, role, on, description)


@app.command("add-group")
def add_group(name: str, role: RoleOpt = None, on: OnOpt = None, description: DescOpt = "") -> None:
    """Create a group, optionally granting it a role."""
    _create("group", name, role, on, description)


@app.command("add-service")
def add_service(
    name: str, role: RoleOpt = None, on: OnOpt = None, description: DescOpt = ""
) -> None:
    """Create a service principal (an application or pipeline identity)."""
    _create("service", name, role, on, description)


@app.command("delete")
def delete(name: str) -> None:
    """Delete a principal with its grants, memberships and tokens."""
    session().identity.delete(name)
    note(f"Deleted principal {name!r}.")


@app.command("add-member")
def add_member(group: str, member: str) -> None:
    """Add MEMBER (user, service or group) to GROUP."""
    session().identity.add_member(group, member)
    note(f"{member!r} is now a member of {group!r}.")


@app.command("remove-member")
def remove_member(group: str, member: str) -> None:
    """Remove MEMBER from GROUP."""
    session().identity.remove_member(group, member)
    note(f"{member!r} is no longer a member of {group!r}.")


@app.command("principals")
def principals(
    kind: Annotated[str | None, typer.Option(help="user, group or service")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List principals."""
    found = session().identity.principals(kind=kind)
    if as_json:
        emit_json(found)
        return
    table(
        ((p.name, p.kind.value, p.id, p.description) for p in found),
        ["name", "kind", "id", "description"],
    )


@app.command("grant")
def grant(
    subject: Annotated[str, typer.Argument(help="Principal or group name.")],
    privilege: Annotated[str, typer.Argument(help="An action (model:approve) or a role.")],
    pattern: Annotated[str, typer.Argument(help="'project/kind/name', 'project/kind/*' or '*'.")],
    deny: Annotated[bool, typer.Option("--deny", help="Write an explicit deny.")] = False,
    expires: Annotated[
        str | None, typer.Option(help="Stop counting after this long, e.g. 7d.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why; kept with the grant.")] = "",
    as_json: bool = JSON_OPTION,
) -> None:
    """Allow (or --deny) PRIVILEGE on PATTERN to SUBJECT."""
    expires_at = dt.datetime.now(dt.UTC) + parse_duration(expires) if expires else None
    created = session().access.grant(
        subject, privilege, pattern, deny=deny, expires_at=expires_at, reason=reason
    )
    if as_json:
        emit_json(created)
    else:
        note(f"{created.effect} {privilege!r} on {pattern!r} for {subject!r} (grant {created.id}).")


@app.command("revoke")
def revoke(grant_id: str) -> None:
    """Delete a grant by its id."""
    session().access.revoke(grant_id)
    note(f"Revoked grant {grant_id}.")


@app.command("grants")
def grants(
    subject: Annotated[str | None, typer.Option(help="Only this principal's grants.")] = None,
    pattern: Annotated[str | None, typer.Option(help="Only grants on this exact pattern.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List grants."""
    found = session().access.grants(subject=subject, pattern=pattern)
    if as_json:
        emit_json(found)
        return
    table(
        (
            (g.id[:8], g.subject, g.effect, g.privilege, g.pattern, when(g.expires_at), g.reason)
            for g in found
        ),
        ["id", "subject", "effect", "privilege", "pattern", "expires", "reason"],
    )


@app.command("check")
def check(
    action: str,
    resource: str,
    principal: Annotated[
        str | None, typer.Option(help="Whose decision (default: yours; others need grant:manage).")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Explain whether a principal may do ACTION on RESOURCE. Exit code 0 = allowed, 1 = denied."""
    decision = session().access.check(action, resource, principal=principal)
    if as_json:
        emit_json(decision)
    else:
        tagged(
            "ALLOW" if decision.allowed else "DENY",
            "green" if decision.allowed else "red",
            f"{decision.principal} {action} {resource}: {decision.reason}",
        )
    if not decision.allowed:
        raise typer.Exit(1)


@app.command("roles")
def roles(as_json: bool = JSON_OPTION) -> None:
    """List the roles and the actions each one holds."""
    found = session().access.roles()
    if as_json:
        emit_json(found)
        return
    table(((name, ", ".join(sorted(acts))) for name, acts in found.items()), ["role", "actions"])


@app.command("create-role")
def create_role(
    name: str,
    actions: Annotated[list[str], typer.Argument(help="Actions the role holds.")],
    description: DescOpt = "",
) -> None:
    """Define a custom role from catalogued actions."""
    session().access.create_role(name, actions, description=description)
    note(f"Created role {name!r}.")


@app.command("policy")
def policy_cmd(
    name: Annotated[str | None, typer.Argument(help="A policy, e.g. four_eyes.")] = None,
    value: Annotated[bool | None, typer.Argument(help="true or false, to change it.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the workspace policies, or set one (needs grant:manage on _workspace)."""
    access = session().access
    if name is not None and value is not None:
        access.set_policy(name, value)
        note(f"Policy {name} is now {str(value).lower()}.")
        return
    found = access.policies()
    if name is not None:
        found = {name: found[name]} if name in found else found
    if as_json:
        emit_json(found)
        return
    table(((k, str(v).lower()) for k, v in found.items()), ["policy", "value"])


@app.command("actions")
def actions(as_json: bool = JSON_OPTION) -> None:
    """List the closed catalogue of actions."""
    from trivet.platform.permissions import ACTIONS

    if as_json:
        emit_json(sorted(ACTIONS))
    else:
        for action in sorted(ACTIONS):
            typer.echo(action)


@token_app.command("create")
def token_create(
    principal: Annotated[
        str | None, typer.Option(help="Whose token (default: yours; others need principal:manage).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 7d (default 30d, at most 366d).")
    ] = None,
    action: Annotated[
        list[str] | None, typer.Option("--action", help="Limit the token to these actions.")
    ] = None,
    resource: Annotated[
        list[str] | None, typer.Option("--resource", help="Limit the token to these patterns.")
    ] = None,
    description: DescOpt = "",
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API token. The secret is printed once, to stdout; store it safely."""
    new = session().identity.create_token(
        principal,
        expires_in=parse_duration(expires) if expires else None,
        actions=action,
        resources=resource,
        description=description,
    )
    if as_json:
        emit_json({"token": new.secret, "info": new.info})
        return
    typer.echo(new.secret)
    note(
        f"Token {new.info.prefix}… expires {when(new.info.expires_at)} UTC. It is shown only "
        "now; use it as TRIVET_TOKEN or --token."
    )


@token_app.command("list")
def token_list(
    principal: Annotated[str | None, typer.Option(help="Whose tokens (default: yours).")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List tokens (prefixes only; secrets are never stored)."""
    found = session().identity.list_tokens(principal)
    if as_json:
        emit_json(found)
        return
    table(
        (
            (
                t.prefix,
                t.kind,
                "active" if t.is_active else ("revoked" if t.revoked_at else "expired"),
                when(t.expires_at),
                t.description,
            )
            for t in found
        ),
        ["prefix", "kind", "state", "expires", "description"],
    )


@token_app.command("revoke")
def token_revoke(prefix: str) -> None:
    """Revoke a token by its prefix (trv_usr_XXXXXXXX)."""
    session().identity.revoke_token(prefix)
    note(f"Revoked token {prefix}….")
