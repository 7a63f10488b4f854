"""``trivet quickstart``: the end-to-end credit example in a fresh workspace.

features → point-in-time training set → train → bias check → fairness gate →
register → a reviewer's approval → online features for a new applicant, scored and
explained — with three identities created in three lines and no other permission
wiring. The example's own code lives in :mod:`trivet.examples.credit`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from trivet.errors import PermissionDenied, ValidationError

if TYPE_CHECKING:
    import trivet

MARKER = ".trivet-quickstart"
PROJECT = "credit"
MODEL = "credit-model"
GROUP_NAMES = ("applicants", "credit_history", "transactions")

console = Console(stderr=True, highlight=False, soft_wrap=True)


def _step(text: str) -> None:
    console.print(Text.assemble(("▸ ", "bold cyan"), text))


def _ok(text: str) -> None:
    console.print(Text.assemble(("  ✓ ", "green"), text))


def _no(text: str) -> None:
    console.print(Text.assemble(("  ✗ ", "yellow"), text))


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


def run(directory: Path) -> None:
    """Run the quickstart in ``directory`` (created fresh) and print a summary."""
    import trivet
    from trivet.examples.credit.data import generate
    from trivet.examples.credit.features import GROUPS
    from trivet.examples.credit.pipeline import credit_model
    from trivet.platform import audit
    from trivet.platform.lineage import Node

    started = time.perf_counter()
    root = _fresh_dir(directory)
    ws = root / "workspace"

    _step(f"A fresh workspace in {ws}")
    trivet.init(ws, project=PROJECT)
    admin = trivet.connect(ws)
    _ok(f"you are {admin.principal.name!r}, its admin (the OS user who created it)")

    _step("Three identities, one line each — and no other permission wiring")
    dana, _ = _member(admin, ws, "dana", "user", "data_scientist", f"{PROJECT}/*")
    rita, _ = _member(admin, ws, "rita", "user", "approver", f"{PROJECT}/*")
    app, app_token = _member(admin, ws, "scoring-app", "service", "online_reader", f"{PROJECT}/*")
    _ok("dana: data_scientist · rita: approver (fairness reviewer) · scoring-app: online_reader")

    _step("dana defines three feature groups and ingests their history")
    data = generate()
    for spec in GROUPS:
        dana.featurestore.create_group(spec)
    for name in GROUP_NAMES:
        dana.featurestore.ingest(name, getattr(data, name))
    _ok(f"{data.rows:,} feature rows with event times; {len(data.applications):,} applications")

    _step("dana runs the pipeline: training set → train → evaluate → bias check → gate")
    pipes = dana.pipelines
    naive = pipes.run(credit_model)
    gate_error = naive.step("gate").error or ""
    _no(f"naive model (sees occupation, a proxy of sex): {naive.status} — {gate_error}")
    registered = [v.version for v in _versions(dana)]
    _ok(f"nothing registered (versions of {MODEL}: {registered or 'none'})")
    fair = pipes.run(credit_model, params={"drop": ["sex", "age", "occupation_code"]})
    fair.raise_for_status()
    out = pipes.output(fair.id, "register_model")
    bias = pipes.output(fair.id, "bias_check")
    metrics = pipes.output(fair.id, "evaluate")
    _ok(
        f"mitigated model (proxy removed): fairness checks passed; registered {MODEL} "
        f"v{out['version']} as {out['status']} (ROC AUC {metrics['roc_auc']:.3f})"
    )
    cached = [
        s.name
        for s in pipes.run(credit_model, params={"drop": ["sex", "age", "occupation_code"]}).steps
        if s.cache_hit
    ]
    _ok(f"a rerun reuses {len(cached)} cached steps")

    _step("Each identity can do its job and nothing more")
    attempts: list[tuple[str, Callable[[], Any]]] = [
        (
            "dana approves her own model",
            lambda: dana.registry.approve(MODEL, out["version"], justification="mine is fine"),
        ),
        ("scoring-app loads the model", lambda: app.registry.load(MODEL)),
        (
            "scoring-app reads the offline training data",
            lambda: app.featurestore.offline_table("applicants"),
        ),
        ("rita registers a model", lambda: rita.registry.register(MODEL, artifact="0" * 64)),
    ]
    denials = 0
    for label, attempt in attempts:
        try:
            attempt()
        except PermissionDenied as exc:
            denials += 1
            _no(f"denied: {label} — {exc.message}")
        else:  # pragma: no cover - would be a permission bug
            raise AssertionError(f"{label} should have been denied")

    _step("rita reads the fairness report and approves; the version becomes the champion")
    report = rita.clarify.get_report(bias["report"])
    approved = rita.registry.approve(
        MODEL,
        out["version"],
        justification="DPPL and DI within bounds on the holdout; occupation proxy removed; "
        "accuracy acceptable for the use",
    )
    rita.registry.set_alias(MODEL, "champion", out["version"])
    _ok(f"report {bias['report'][:12]}… ({len(report.to_json())} bytes JSON) reviewed")
    _ok(f"v{approved.version}: {approved.status} by {approved.decided_by}")

    _step("A new applicant arrives; scoring-app asks the server to score them")
    applicant = _new_applicant(dana, data)
    from trivet.server import running

    with running(ws) as url:
        answer = _post_json(
            f"{url}/v1/projects/{PROJECT}/models/{MODEL}/predict",
            app_token,
            {"records": [{"groups": list(GROUP_NAMES), "id": applicant}], "explain": True},
        )
    scored = answer["predictions"][0]
    why = scored["explanation"]
    top = ", ".join(f"{c['feature']} {c['shap']:+.2f}" for c in why["top"][:3])
    _ok(
        f"applicant {applicant}: P(repay) = {scored['probabilities'][-1]:.2f} from "
        f"v{answer['version']} (the champion) on their online features; logged as "
        f"{scored['inference_id'][:8]}…"
    )
    _ok(f"top reasons ({why['output']}): {top}")

    _step("Lineage and audit")
    upstream = admin.lineage.upstream(Node(kind="model_version", id=approved.resource))
    kinds = sorted({n.kind for n in upstream.nodes})
    _ok(f"{approved.resource} ← {', '.join(kinds)}")
    result = audit.verify(admin.catalog)
    if not result.ok:  # pragma: no cover - only on tampering
        raise AssertionError(result.problem)
    _ok(f"{result.rows} audit rows, hash chain intact; {denials} denials recorded")

    elapsed = time.perf_counter() - started
    console.print()
    console.print(Text(f"Done in {elapsed:.1f} s. Workspace: {ws}", style="bold"))
    console.print(
        f"  gate: naive model failed ({gate_error.split(': ', 1)[-1]}); mitigated passed\n"
        f"  model: {MODEL} v{approved.version} · {approved.status} · alias champion\n"
        f"  fairness report: {bias['report']} (HTML: {bias['html']})\n"
        f"  {denials} denials shown, all audited · audit log verified ({result.rows} rows)"
    )
    console.print("\nTry next:")
    for command in (
        f"trivet -w {ws} models versions {MODEL}",
        f"trivet -w {ws} lineage show model_version {approved.resource}",
        f"trivet -w {ws} pipelines executions",
        f"trivet -w {ws} audit log --denied",
        f"trivet -w {ws} artifacts get {bias['html']} report.html",
        f"trivet -w {ws} auth token create --principal rita   # a token to sign in with",
        f"trivet -w {ws} serve   # the API (/docs) and the web console (/)",
    ):
        console.print(Text(f"  {command}", style="cyan"))


def _member(
    admin: trivet.Session, ws: Path, name: str, kind: str, role: str, pattern: str
) -> tuple[trivet.Session, str]:
    import trivet

    create = admin.identity.create_user if kind == "user" else admin.identity.create_service
    create(name)
    admin.access.grant(name, role, pattern, reason="quickstart")
    token = admin.identity.create_token(name, description="quickstart")
    return trivet.connect(ws, token=token.secret), token.secret


def _versions(session: trivet.Session) -> list[Any]:
    from trivet.errors import NotFound

    try:
        return session.registry.versions(MODEL)
    except NotFound:
        return []


def _new_applicant(dana: trivet.Session, data: Any) -> str:
    """Write today's features of a new applicant (copied from a generated one)."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    applicant = "new-applicant"
    for group in ("applicants", "credit_history", "transactions"):
        frame = getattr(data, group)
        record = frame[frame["applicant_id"] == frame["applicant_id"].iloc[-1]].iloc[-1]
        values = {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}
        dana.featurestore.put_record(group, dict(values, applicant_id=applicant, ts=now))
    return applicant


def _post_json(url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` as JSON with a bearer token; return the JSON answer."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - a loopback URL we just started
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # pragma: no cover - would be a serving bug
        raise AssertionError(f"the server answered {exc.code}: {exc.read()!r}") from None
    return answer
