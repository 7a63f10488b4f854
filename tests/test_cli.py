"""The `trivet` command: platform sub-commands, JSON output, errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trivet.cli import app

runner = CliRunner()


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env or {})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def ws(tmp_path: Path) -> str:
    path = tmp_path / "ws"
    code, _, err = cli("init", str(path))
    assert code == 0, err
    return str(path)


def test_init_then_whoami_as_os_user(ws: str) -> None:
    code, out, _ = cli("-w", ws, "whoami", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["kind"] == "user" and info["auth"].startswith("OS user")
    assert info["project"] == "default"


def test_init_twice_is_one_clear_error(ws: str) -> None:
    code, out, err = cli("init", ws)
    assert code == 6
    assert "is a trivet workspace already" in err
    assert "Traceback" not in err + out


def test_users_roles_tokens_and_checks(ws: str) -> None:
    assert cli("-w", ws, "auth", "add-user", "dana", "--role", "data_scientist")[0] == 0
    code, out, _ = cli(
        "-w",
        ws,
        "auth",
        "check",
        "model:register",
        "default/models/m",
        "--principal",
        "dana",
        "--json",
    )
    assert code == 0 and json.loads(out)["allowed"] is True
    code, out, _ = cli(
        "-w",
        ws,
        "auth",
        "check",
        "model:approve",
        "default/models/m",
        "--principal",
        "dana",
        "--json",
    )
    assert code == 1 and json.loads(out)["allowed"] is False
    assert "default deny" in json.loads(out)["reason"]

    code, token, _ = cli("-w", ws, "auth", "token", "create", "--principal", "dana")
    token = token.strip()
    assert code == 0 and token.startswith("trv_usr_")
    code, out, _ = cli("-w", ws, "whoami", "--json", env={"TRIVET_TOKEN": token})
    assert code == 0 and json.loads(out)["name"] == "dana"

    # dana cannot grant what she does not hold, and the CLI says why in one line
    code, out, err = cli(
        "-w", ws, "--token", token, "auth", "grant", "dana", "model:approve", "default/models/*"
    )
    assert code == 5
    assert "grant:manage" in err and "Traceback" not in err + out
    assert token not in err + out

    code, out, _ = cli("-w", ws, "auth", "token", "list", "--principal", "dana", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed) == 1 and token not in out
    assert cli("-w", ws, "auth", "token", "revoke", listed[0]["prefix"])[0] == 0
    code, out, err = cli("-w", ws, "whoami", env={"TRIVET_TOKEN": token})
    assert code == 4 and "revoked" in err and token not in err + out


def test_bad_token_refused_without_echoing_it(ws: str) -> None:
    bad = "trv_usr_" + "A" * 40 + "_zzzzzz"
    code, out, err = cli("-w", ws, "whoami", env={"TRIVET_TOKEN": bad})
    assert code == 4 and "checksum" in err
    assert bad not in out + err


def test_grants_listing_and_revocation(ws: str) -> None:
    cli("-w", ws, "auth", "add-group", "reviewers")
    cli("-w", ws, "auth", "add-user", "rita")
    assert cli("-w", ws, "auth", "add-member", "reviewers", "rita")[0] == 0
    code, out, _ = cli(
        "-w", ws, "auth", "grant", "reviewers", "approver", "default/models/*", "--json"
    )
    grant_id = json.loads(out)["id"]
    code, out, _ = cli(
        "-w", ws, "auth", "check", "model:approve", "default/models/m/1", "--principal", "rita"
    )
    assert code == 0
    code, out, _ = cli("-w", ws, "auth", "grants", "--subject", "reviewers", "--json")
    assert [g["privilege"] for g in json.loads(out)] == ["approver"]
    assert cli("-w", ws, "auth", "revoke", grant_id)[0] == 0
    code, _, _ = cli(
        "-w", ws, "auth", "check", "model:approve", "default/models/m/1", "--principal", "rita"
    )
    assert code == 1


def test_unknown_action_and_bad_pattern_are_validation_errors(ws: str) -> None:
    cli("-w", ws, "auth", "add-user", "dana")
    code, _, err = cli("-w", ws, "auth", "grant", "dana", "model:aprove", "default/*")
    assert code == 2 and "model:approve" in err  # the hint proposes the fix
    code, _, err = cli("-w", ws, "auth", "grant", "dana", "viewer", "default/*/models")
    assert code == 2 and "'*'" in err


def test_audit_log_and_verify(ws: str) -> None:
    cli("-w", ws, "auth", "add-user", "dana")
    code, token, _ = cli("-w", ws, "auth", "token", "create", "--principal", "dana")
    cli(
        "-w",
        ws,
        "auth",
        "check",
        "model:read",
        "default/models/m",
        env={"TRIVET_TOKEN": token.strip()},
    )
    cli("-w", ws, "--token", token.strip(), "audit", "log")  # denied: dana lacks audit:read
    code, out, _ = cli("-w", ws, "audit", "log", "--denied", "--json")
    rows = json.loads(out)
    assert code == 0 and rows and rows[0]["action"] == "audit:read"
    assert rows[0]["actor"] == "dana"
    code, _, err = cli("-w", ws, "audit", "verify")
    assert code == 0 and "intact" in err

    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{ws}/catalog.db")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))
    engine.dispose()
    code, _, err = cli("-w", ws, "audit", "verify")
    assert code == 7 and "row 3" in err


def test_missing_workspace_is_not_found(tmp_path: Path) -> None:
    code, _, err = cli("-w", str(tmp_path / "nowhere"), "whoami")
    assert code == 3 and "trivet init" in err


def test_every_part_is_mounted() -> None:
    for part in ("featurestore", "clarify", "pipelines"):
        code, out, _ = cli(part, "--help")
        assert code == 0 and "Usage" in out


def test_real_process_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVET_")}
    proc = subprocess.run(
        [sys.executable, "-m", "trivet.cli", "-w", str(tmp_path / "none"), "whoami"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[0].startswith("error:")
