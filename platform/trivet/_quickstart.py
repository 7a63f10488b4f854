"""``trivet quickstart``: the largest honest slice of the end-to-end example that exists.

Today it exercises the platform layer end to end — a fresh workspace, three
principals created from one admin, grants and denials, a dataset and a model stored as
artifacts, a model version registered, approved by a reviewer and aliased, lineage, and
an audit log verified. The feature store, clarify and pipelines steps join as they land.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from trivet.errors import PermissionDenied, ValidationError

if TYPE_CHECKING:
    import pandas as pd

    import trivet

MARKER = ".trivet-quickstart"
PROJECT = "credit"

console = Console(stderr=True, highlight=False, soft_wrap=True)


def _step(text: str) -> None:
    console.print(f"[bold cyan]▸[/bold cyan] {text}")


def _ok(text: str) -> None:
    console.print(f"  [green]✓[/green] {text}")


def _denied(text: str, exc: PermissionDenied) -> None:
    console.print(f"  [yellow]✗ denied[/yellow] {text} — {exc.message}")


def _fresh_dir(directory: Path) -> Path:
    directory = directory.resolve()
    if directory.exists():
        if not (directory / MARKER).exists():
            raise ValidationError(
                f"{str(directory)!r} exists and was not made by `trivet quickstart`.",
                hint="pass --dir with a new folder, or remove that one",
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by `trivet quickstart`; safe to delete\n")
    return directory


def make_applicants(n: int = 4000, *, seed: int = 7) -> pd.DataFrame:
    """Generate synthetic credit applicants: income, debt ratio, age, a label."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=10.6, sigma=0.45, size=n)
    debt_ratio = rng.beta(2.0, 5.0, size=n)
    age = rng.integers(19, 80, size=n)
    history_years = np.clip(age - 18 - rng.integers(0, 10, size=n), 0, None)
    score = 0.9 * np.log(income / 30000) - 3.2 * debt_ratio + 0.04 * history_years
    repaid = (score + rng.normal(0, 0.6, size=n) > 0.0).astype("int64")
    return pd.DataFrame(
        {
            "income": income.round(2),
            "debt_ratio": debt_ratio.round(4),
            "age": age,
            "history_years": history_years,
            "repaid": repaid,
        }
    )


def run(directory: Path) -> None:
    """Run the quickstart in ``directory`` (created fresh) and print a summary."""
    import trivet
    from trivet.platform import audit
    from trivet.platform.lineage import Node

    started = time.perf_counter()
    root = _fresh_dir(directory)
    ws = root / "workspace"

    _step(f"Creating a workspace in {ws}")
    trivet.init(ws, project=PROJECT)
    admin = trivet.connect(ws)
    _ok(f"you are {admin.principal.name!r}, its admin (the OS user who created it)")

    _step("Creating three identities — one line each, no other wiring")
    dana = _member(admin, ws, "dana", "user", "data_scientist", f"{PROJECT}/*")
    rita = _member(admin, ws, "rita", "user", "approver", f"{PROJECT}/*")
    app = _member(
        admin, ws, "scoring-app", "service", "online_reader", f"{PROJECT}/feature_groups/*"
    )
    _ok("dana: data_scientist · rita: approver (fairness reviewer) · scoring-app: online_reader")

    _step("dana stores a training set and trains a model")
    data = make_applicants()
    dataset = dana.artifacts.put_dataframe(data, label="applicants training set")
    _ok(f"training set: {len(data):,} rows, artifact sha256:{dataset.digest[:12]}…")
    model, accuracy = _train(data)
    _ok(f"logistic regression, hold-out accuracy {accuracy:.3f}")

    _step("dana registers it; it waits for a reviewer")
    version = dana.registry.register(
        "credit-risk",
        model,
        params={"C": 1.0, "features": ["income", "debt_ratio", "history_years"]},
        metrics={"accuracy": round(accuracy, 4)},
        description="quickstart: logistic regression on synthetic applicants",
    )
    dana.lineage.add(
        Node(kind="artifact", id=dataset.digest),
        Node(kind="model_version", id=version.resource),
        "trained",
    )
    _ok(f"credit-risk version {version.version}: {version.status}")

    _step("Each identity can do its job and nothing more")
    denials = 0
    for who, label, attempt in (
        (
            dana,
            "dana approves her own model",
            lambda: dana.registry.approve(
                "credit-risk", version.version, justification="looks fine to me"
            ),
        ),
        (app, "scoring-app loads the model", lambda: app.registry.load("credit-risk")),
        (
            rita,
            "rita registers a model",
            lambda: rita.registry.register("credit-risk", artifact=version.artifact_digest),
        ),
    ):
        try:
            attempt()
        except PermissionDenied as exc:
            denials += 1
            _denied(label, exc)
        else:  # pragma: no cover - would be a permission bug
            raise AssertionError(f"{label} should have been denied ({who.principal.name})")

    _step("rita reviews and approves; the version becomes the champion")
    approved = rita.registry.approve(
        "credit-risk",
        version.version,
        justification="accuracy above the 0.75 bar on the hold-out set; reviewed the features",
    )
    rita.registry.set_alias("credit-risk", "champion", version.version)
    _ok(f"version {approved.version}: {approved.status} by {approved.decided_by}")
    loaded = dana.registry.load("credit-risk", "champion")
    prediction = int(loaded.predict(data.drop(columns=["repaid", "age"]).head(1))[0])
    _ok(f"loaded credit-risk@champion from its verified artifact; first prediction: {prediction}")

    _step("Verifying the audit log")
    result = audit.verify(admin.catalog)
    if not result.ok:  # pragma: no cover - only on tampering
        raise AssertionError(result.problem)
    denied_rows = audit.entries(admin.catalog, outcome="denied")
    _ok(f"{result.rows} rows, hash chain intact; {len(denied_rows)} denials recorded")

    elapsed = time.perf_counter() - started
    console.print()
    console.print(f"[bold]Done in {elapsed:.1f} s.[/bold] Workspace: {ws}")
    console.print(
        f"  model credit-risk v{approved.version} · {approved.status} · alias champion\n"
        f"  {denials} denials shown, all audited · audit log verified ({result.rows} rows)\n"
        "  Not in this quickstart yet: feature store, bias checks, pipelines (in progress)."
    )
    console.print("\nTry next:")
    for command in (
        f"trivet -w {ws} models versions credit-risk",
        f"trivet -w {ws} auth grants",
        f"trivet -w {ws} audit log --denied",
        f"trivet -w {ws} audit verify",
        f"trivet -w {ws} lineage show model_version {version.resource}",
    ):
        console.print(f"  [cyan]{command}[/cyan]")


def _member(
    admin: trivet.Session, ws: Path, name: str, kind: str, role: str, pattern: str
) -> trivet.Session:
    import trivet

    create = admin.identity.create_user if kind == "user" else admin.identity.create_service
    create(name)
    admin.access.grant(name, role, pattern, reason="quickstart")
    token = admin.identity.create_token(name, description="quickstart")
    return trivet.connect(ws, token=token.secret)


def _train(data: pd.DataFrame) -> tuple[object, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = data[["income", "debt_ratio", "history_years"]]
    x_train, x_test, y_train, y_test = train_test_split(
        features, data["repaid"], test_size=0.25, random_state=0
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
    model.fit(x_train, y_train)
    return model, float(model.score(x_test, y_test))
