"""How long a permission check takes, and whether it depends on the number of grants.

Measures, for a principal holding 10, 1 000 and 100 000 grants:

- ``session.authorize`` cold: the first check after a policy change (the evaluator
  re-reads the epoch, recompiles the principal's grants and decides);
- ``session.authorize`` and ``session.can`` warm (compiled and decision cached), for a
  session signed in by the OS user and one signed in with an API token;
- ``Compiled.decide``: one evaluation against the compiled grants, no decision cache.

Run: ``uv run python bench/authorize.py [--sizes 10,1000,100000] [--catalog-url URL]``.
Prints a Markdown table (medians of timeit repeats) and writes it to
``bench/results/authorize.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import tempfile
import timeit
import uuid
from pathlib import Path

import sqlalchemy as sa

import trivet
from trivet.platform.catalog.schema import grants
from trivet.platform.permissions import bump_epoch

ACTIONS = ["feature:describe", "feature:read_online", "feature:read_offline", "model:read"]
ROLES = ["viewer", "online_reader", "data_scientist"]
RESULTS = Path(__file__).parent / "results" / "authorize.md"


def fill(session: trivet.Session, principal_id: str, n: int) -> None:
    """Give the principal ``n`` grants: exact and subtree allows, a few denies."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(n):
        kind = i % 10
        if kind < 6:
            pattern = f"p{i % 97}/feature_groups/fg{i}"
        elif kind < 9:
            pattern = f"p{i % 97}/models/m{i}/*"
        else:
            pattern = f"p{i % 97}/feature_groups/fg{i - 1}/secret"
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "subject_id": principal_id,
                "effect": "deny" if kind == 9 else "allow",
                "privilege": (ACTIONS + ROLES)[i % 7],
                "pattern": pattern,
                "expires_at": None,
                "created_at": now,
                "created_by": None,
                "reason": "bench",
            }
        )
    # the grant the benchmark checks, always present
    rows.append(
        {
            "id": str(uuid.uuid4()),
            "subject_id": principal_id,
            "effect": "allow",
            "privilege": "online_reader",
            "pattern": "default/feature_groups/*",
            "expires_at": None,
            "created_at": now,
            "created_by": None,
            "reason": "bench",
        }
    )
    with session.catalog.write() as conn:
        for start in range(0, len(rows), 10_000):
            conn.execute(sa.insert(grants), rows[start : start + 10_000])
        bump_epoch(conn, session.catalog)


def median_per_call(stmt: object, *, number: int, repeat: int, setup: object = "pass") -> float:
    """Median seconds per call over ``repeat`` runs of ``number`` calls."""
    times = timeit.repeat(stmt, setup=setup, number=number, repeat=repeat)  # type: ignore[arg-type]
    return statistics.median(t / number for t in times)


def measure(n: int, catalog_url: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = trivet.init(Path(tmp) / "ws", catalog_url=catalog_url)
        admin = trivet.connect(settings.workspace)
        user = admin.identity.create_user("bench")
        fill(admin, user.id, n)
        token = admin.identity.create_token("bench")
        with_token = trivet.connect(settings.workspace, token.secret)
        # the same principal without a token (what a local process or the server's
        # per-request session sees once authenticated)
        local = with_token.derive(token=None)
        action, resource = "feature:read_online", "default/feature_groups/credit"
        evaluator = local._evaluator
        assert local.authorize(action, resource).allowed

        def policy_change() -> None:
            with admin.catalog.write() as conn:
                bump_epoch(conn, admin.catalog)

        cold_repeat = 5 if n >= 100_000 else 30
        cold = median_per_call(
            lambda: local.authorize(action, resource),
            setup=policy_change,
            number=1,
            repeat=cold_repeat,
        )
        compile_only = median_per_call(
            lambda: evaluator._compile(user.id, 0), number=1, repeat=cold_repeat
        )
        warm_kwargs = {"number": 50_000, "repeat": 7}
        local.authorize(action, resource)
        result = {
            "cold": cold,
            "compile": compile_only,
            "authorize": median_per_call(lambda: local.authorize(action, resource), **warm_kwargs),
            "can": median_per_call(lambda: local.can(action, resource), **warm_kwargs),
            "authorize_token": median_per_call(
                lambda: with_token.authorize(action, resource), **warm_kwargs
            ),
            "can_token": median_per_call(lambda: with_token.can(action, resource), **warm_kwargs),
        }
        compiled = evaluator.compiled(user.id)
        name = user.name
        result["decide"] = median_per_call(
            lambda: compiled.decide(name, action, resource), **warm_kwargs
        )
        result["decide_deep"] = median_per_call(
            lambda: compiled.decide(name, action, "default/feature_groups/credit/v/1/2/3"),
            **warm_kwargs,
        )
        admin.close()
        return result


def us(seconds: float) -> str:
    value = seconds * 1e6
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--catalog-url", default=None, help="PostgreSQL URL (default SQLite)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backend = "PostgreSQL" if args.catalog_url else "SQLite"
    rows = []
    for n in sizes:
        print(f"measuring with {n:,} grants...", file=sys.stderr)
        r = measure(n, args.catalog_url)
        rows.append(
            f"| {n:>7,} | {us(r['authorize'])} | {us(r['can'])} | {us(r['authorize_token'])} "
            f"| {us(r['can_token'])} | {us(r['decide'])} | {us(r['decide_deep'])} "
            f"| {us(r['cold'])} | {us(r['compile'])} |"
        )
    table = "\n".join(
        [
            f"# `session.authorize` — {backend} catalog, Python {platform.python_version()}, "
            f"{platform.machine()}",
            "",
            "Medians of timeit repeats, microseconds per call. Warm: compiled grants and "
            "decision cached. Cold: the first check after a policy change (epoch re-read, "
            "recompile, decide). `decide`: one uncached evaluation of a 3-segment resource, "
            "`decide (7 seg.)` of a 7-segment one. `compile`: reading and compiling the "
            "principal's grants alone.",
            "",
            "| grants | authorize warm | can warm | authorize warm (token) | can warm (token) "
            "| decide | decide (7 seg.) | authorize cold | compile |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Reproduce: `uv run python bench/authorize.py --sizes {args.sizes}`"
            + (" --catalog-url URL" if args.catalog_url else ""),
            "",
        ]
    )
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)


if __name__ == "__main__":
    main()
