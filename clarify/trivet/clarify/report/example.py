"""Write an example fairness report: ``python -m trivet.clarify.report.example out.html``.

It trains a small gradient-boosting model on :func:`trivet.clarify.data.synthetic_credit`
(seeded, no download), computes pre- and post-training bias by sex with bootstrap
intervals, runs checks, explains the model with tree SHAP, proposes a fairness
definition and writes the self-contained HTML page (and, with ``--json PATH``, the
JSON document). Nothing is stored: no workspace is needed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from trivet.clarify.report._document import Report

__all__ = ["example_report", "main"]

FEATURES = ["age", "income", "debt_ratio", "years_employed"]


def example_report(*, rows: int = 4000, seed: int = 0) -> Report:
    """Return the example report (a few seconds on a laptop)."""
    from sklearn.ensemble import GradientBoostingClassifier

    from trivet.clarify._explain import explain
    from trivet.clarify.bias import analyze
    from trivet.clarify.checks import run_checks
    from trivet.clarify.config import Bootstrap, Facet, Label, Prediction
    from trivet.clarify.data import synthetic_credit
    from trivet.clarify.report import build_report

    credit = synthetic_credit(rows, seed=seed, label_bias=0.2)
    model = GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=seed)
    model.fit(credit[FEATURES], credit["approved"])
    credit["model_approves"] = model.predict(credit[FEATURES]).astype(bool)
    bias = analyze(
        credit,
        label=Label("approved", positive=True),
        facet=Facet("sex", values="female"),
        prediction=Prediction("model_approves"),
        stages=("pre_training", "post_training"),
        metrics=["CI", "DPL", "KL", "DPPL", "DI", "RD", "SD", "DAR", "DRR", "AD"],
        bootstrap=Bootstrap(300, seed=seed),
    )
    checks = run_checks(bias, {"DI": (0.8, 1.25), "DPPL": (-0.1, 0.1), "RD": (-0.1, 0.1)})
    explanation = explain(model, credit[FEATURES], rows=[0, 1, 2], sample=200, seed=seed)
    return build_report(
        "credit-example",
        bias=bias,
        checks=checks,
        explanations=explanation,
        definition="equal_opportunity",
        rationale="A wrongly refused applicant who would have repaid is the harm that "
        "matters here, so qualified applicants of every sex should be approved at the "
        "same rate.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write the example report's HTML (and optionally its JSON)."""
    parser = argparse.ArgumentParser(
        prog="python -m trivet.clarify.report.example", description=__doc__.splitlines()[0]
    )
    parser.add_argument("html", type=Path, help="where to write the HTML page")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = example_report(rows=args.rows, seed=args.seed)
    args.html.write_text(report.to_html(), encoding="utf-8")
    if args.json is not None:
        args.json.write_bytes(report.to_json())
    print(f"wrote {args.html}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
