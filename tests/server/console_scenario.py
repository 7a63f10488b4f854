"""A small workspace for the console tests, built with the SDK as a user would.

- feature group ``customers``: 40 records with an int, a float and a string feature;
- pipeline ``tiny``: ``load`` → (``double``, ``square``) → ``total``, run once;
- model ``scorer`` v1, PendingManualApproval, gated on a stored fairness report;
- people: ``rita`` (approver), ``vic`` (viewer), ``fay`` (viewer of feature groups only),
  ``dana`` (data scientist).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import trivet
from tests.server.live import Live, serving
from trivet.pipelines import approval, pipeline, step

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
AGES = [20 + (i % 8) * 5 for i in range(40)]  # 20..55, five records each
SEGMENTS = ["retail"] * 25 + ["business"] * 10 + ["private"] * 5


@step
def load(n: int) -> list[int]:
    return list(range(n))


@step
def double(xs: list[int]) -> list[int]:
    return [2 * x for x in xs]


@step
def square(xs: list[int]) -> list[int]:
    print(f"squaring {len(xs)} numbers")
    return [x * x for x in xs]


@step
def total(a: list[int], b: list[int]) -> int:
    return sum(a) + sum(b)


@pipeline
def tiny(n: int = 5) -> None:
    xs = load(n)
    total(double(xs), square(xs))


@pipeline
def signed(n: int = 2) -> None:
    xs = load(n)
    approval("Double {n} numbers?", n=n, then=lambda: double(xs), timeout=120)


@dataclass
class Scenario:
    project: str
    execution_id: str
    report_digest: str
    tokens: dict[str, str]


def build(live: Live) -> Scenario:
    """Create the scenario's data as the admin and the people who look at it."""
    from trivet.clarify import Facet, Label, Prediction
    from trivet.featurestore import Feature, FeatureGroupSpec

    admin = live.admin
    project = admin.project
    admin.featurestore.create_group(
        FeatureGroupSpec(
            name="customers",
            record_id="customer_id",
            event_time="ts",
            features=[
                Feature(name="age", dtype="int", description="age in years"),
                Feature(name="income", dtype="float", parameters={"unit": "EUR"}),
                Feature(name="segment", dtype="string", description="market segment"),
            ],
            description="customer profile",
            tags=("pii", "credit"),
            ttl=dt.timedelta(days=30),
        )
    )
    admin.featurestore.ingest(
        "customers",
        pd.DataFrame(
            {
                "customer_id": [f"c{i:02d}" for i in range(40)],
                "ts": [T0 + dt.timedelta(hours=i) for i in range(40)],
                "age": AGES,
                "income": [1000.0 + 50.0 * i for i in range(40)],
                "segment": SEGMENTS,
            }
        ),
    )
    execution = admin.pipelines.run(tiny, params={"n": 4}).raise_for_status()

    frame = pd.DataFrame(
        [("m", 1, 1)] * 6 + [("m", 0, 0)] * 4 + [("f", 1, 1)] * 3 + [("f", 0, 0)] * 7,
        columns=["sex", "y", "yhat"],
    )
    bias = admin.clarify.bias(
        frame,
        label=Label("y", positive=1),
        facet=Facet("sex", values="f"),
        prediction=Prediction("yhat"),
        metrics=["DPL", "DI"],
        min_group_size=0,
    )
    report = admin.clarify.report("scorer", bias=bias, checks={"DI": (0.4, 2.5)})
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    admin.registry.register(
        "scorer",
        model,
        metrics={"auc": 0.81},
        fairness_report=report.digest,
        gate_status="passed",
        description="credit scorer",
    )
    tokens = {
        "rita": live.user("rita", ("approver", f"{project}/*")),
        "vic": live.user("vic", ("viewer", f"{project}/*")),
        "fay": live.user("fay", ("viewer", f"{project}/feature_groups/*")),
        "dana": live.user("dana", ("data_scientist", f"{project}/*")),
    }
    return Scenario(
        project=project,
        execution_id=execution.id,
        report_digest=report.digest,
        tokens=tokens,
    )


@contextlib.contextmanager
def running(folder: Path) -> Iterator[tuple[Live, Scenario]]:
    """A real server over a fresh workspace holding the scenario (for a module's tests)."""
    settings = trivet.init(folder / "ws")
    admin = trivet.connect(settings.workspace)
    try:
        with serving(settings, admin) as live:
            yield live, build(live)
    finally:
        admin.close()


def pending_version(live: Live) -> int:
    """Register one more version of ``scorer`` (PendingManualApproval); return its number."""
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    return live.admin.registry.register("scorer", model, metrics={"auc": 0.8}).version


def csrf_in(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


@contextlib.contextmanager
def sign_in(live: Live, token: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the console (through the sign-in form) with ``token``."""
    with httpx.Client(base_url=live.url, timeout=30) as http:
        form = http.get("/login")
        r = http.post("/login", data={"csrf": csrf_in(form.text), "token": token, "next": "/"})
        assert r.status_code == 303, r.text
        yield http
