"""`trivet clarify`: the command-line face of trivet.clarify.

Thin over :class:`~trivet.clarify.Clarify`: data goes to stdout (``--json`` for
machines), messages to stderr; the root command turns a TrivetError into one red line
and its exit code. Flags carry the Python API's names (``--positive``, ``--threshold``,
``--bootstrap``, ``--check``, ``--mode``, ...). Two outcomes that are not errors have
exit codes of their own, above the error codes 1-9:

- 10: ``trivet clarify bias --check ...``: a check failed;
- 11: ``trivet clarify monitor``: a violation (a metric's live interval lies entirely
  outside its allowed range, or explanation drift below the NDCG threshold).

This module sits below the assembly layer, so it does not import ``trivet._cli``: it
opens its session from the root command's options (``--workspace``, ``--token``,
``--project``) through the platform layer. Heavy libraries (pandas, numpy, shap) load
inside the commands.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trivet.platform.console import emit_json, note, table

if TYPE_CHECKING:
    import pandas as pd

    from trivet.clarify import Clarify
    from trivet.clarify.checks import Check
    from trivet.clarify.config import Facet, Intersection, Label, Prediction
    from trivet.clarify.monitor import AllowedRange
    from trivet.platform.session import Session

__all__ = ["CHECKS_FAILED", "VIOLATIONS", "app"]

CHECKS_FAILED = 10
"""Exit code of ``trivet clarify bias`` when a ``--check`` fails."""
VIOLATIONS = 11
"""Exit code of ``trivet clarify monitor`` when the batch violates the baseline."""

app = typer.Typer(
    help="Bias metrics, SHAP explanations, fairness reports and bias drift monitoring "
    "(exit code 10: a check failed; 11: monitoring found a violation).",
    no_args_is_help=True,
)
report_app = typer.Typer(help="Stored fairness reports: list, show, open.", no_args_is_help=True)
app.add_typer(report_app, name="report")

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")
TRUST_PICKLE = typer.Option(
    "--trust-pickle", help="Allow loading a pickled model (it runs the code it holds)."
)


# -- session, data, values ---------------------------------------------------------------
def _session(ctx: typer.Context) -> Session:
    """Open a session with the root command's options (or TRIVET_* variables)."""
    from trivet.platform.session import Session
    from trivet.platform.settings import load_settings
    from trivet.platform.workspace import open_session

    params: Mapping[str, Any] = ctx.find_root().params
    settings = load_settings(params.get("workspace"))
    return open_session(settings, params.get("token"), Session, project=params.get("project"))


def _clarify(session: Session) -> Clarify:
    from trivet.clarify import Clarify

    return Clarify(session)


def _bad(message: str, hint: str | None = None) -> Exception:
    from trivet.errors import ValidationError

    return ValidationError(message, hint=hint)


def _read_data(path: Path) -> pd.DataFrame:
    """Read a .csv or .parquet file into a DataFrame."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise _bad(f"Cannot read {str(path)!r}: not a .csv or .parquet file.")
    if not path.is_file():
        raise _bad(f"There is no file {str(path)!r}.", hint="check the path")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise _bad(f"Cannot read {str(path)!r}: {exc}.") from exc


def _column(df: pd.DataFrame, column: str, flag: str) -> pd.Series[Any]:
    from trivet.errors import did_you_mean

    if column not in df.columns:
        columns = [str(c) for c in df.columns]
        raise _bad(
            f"{flag}: the data has no column {column!r}.",
            hint=did_you_mean(column, columns) or f"columns: {', '.join(columns)}",
        )
    return df[column]


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _coerce(raw: str, series: pd.Series[Any], flag: str) -> Any:
    """Turn a value given on the command line into one of the column's type."""
    import pandas as pd

    dtype = series.dtype
    text = raw.strip()
    if pd.api.types.is_bool_dtype(dtype):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _bad(f"{flag} {raw!r}: the column {series.name!r} is boolean.", hint="use true/false")
    if pd.api.types.is_integer_dtype(dtype):
        try:
            return int(text)
        except ValueError:
            raise _bad(
                f"{flag} {raw!r}: the column {series.name!r} holds integers.",
                hint="give an integer",
            ) from None
    if pd.api.types.is_float_dtype(dtype):
        return _number(text, flag)
    return raw


def _number(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"{flag} takes a number, not {text!r}.") from None
    if not math.isfinite(value):
        raise _bad(f"{flag} takes a finite number, not {text!r}.")
    return value


def _compare(value: str, flag: str) -> Any:
    if value not in (">", ">="):
        raise _bad(f"{flag} is '>' or '>=', not {value!r}.", hint=f"e.g. {flag} '>='")
    return value


# -- the bias configuration --------------------------------------------------------------
_FACET = re.compile(r"^(?P<column>[^=<>]+?)\s*(?P<op>>=|>|=)\s*(?P<rest>.*)$")


def _label(
    df: pd.DataFrame, column: str, positive: list[str] | None, threshold: float | None, op: str
) -> Label:
    from trivet.clarify.config import Label

    series = _column(df, column, "--label")
    if positive and threshold is not None:
        raise _bad(
            "Give --positive or --threshold, not both.",
            hint="--positive for a categorical label, --threshold (and --compare) for a score",
        )
    if not positive and threshold is None:
        raise _bad(
            f"Which values of --label {column!r} are positive?",
            hint=f"add --positive VALUE (repeatable), or --threshold X for a numeric label "
            f"(e.g. --label {column} --positive 1)",
        )
    compare = _compare(op, "--compare")
    if positive:
        return Label(column, positive=[_coerce(v, series, "--positive") for v in positive])
    return Label(column, threshold=threshold, op=compare)


def _facet(df: pd.DataFrame, spec: str) -> Facet:
    from trivet.clarify.config import Facet

    spec = spec.strip()
    match = _FACET.match(spec)
    if match is None:
        _column(df, spec, "--facet")
        return Facet(spec)
    column, op, rest = match["column"].strip(), match["op"], match["rest"].strip()
    series = _column(df, column, "--facet")
    if not rest:
        raise _bad(
            f"--facet {spec!r} names no value.",
            hint=f"e.g. --facet {column}=VALUE[,VALUE] or --facet '{column}>=40'",
        )
    if op == "=":
        return Facet(column, values=[_coerce(v, series, "--facet") for v in rest.split(",")])
    return Facet(
        column, threshold=_number(rest, f"--facet {column}{op}"), op=_compare(op, "--facet")
    )


def _facets(
    df: pd.DataFrame, specs: list[str] | None, intersect: bool
) -> list[Facet | Intersection]:
    from trivet.clarify.config import Intersection

    if not specs:
        raise _bad(
            "Name a facet with --facet.",
            hint="e.g. --facet sex=female, --facet 'age>=40', or --facet region (every value)",
        )
    facets = [_facet(df, s) for s in specs]
    if intersect:
        if len(facets) < 2:
            raise _bad("--intersect crosses two or more --facet options; there is one.")
        return [Intersection(*facets)]
    return list(facets)


def _prediction(
    df: pd.DataFrame,
    predicted: str | None,
    probability: str | None,
    cutoff: float | None,
    cutoff_compare: str,
) -> Prediction | None:
    from trivet.clarify.config import Prediction

    if predicted is not None and probability is not None:
        raise _bad("Give --predicted or --probability, not both.")
    if cutoff is not None and probability is None:
        raise _bad("--cutoff applies to --probability COL.", hint="add --probability COL")
    if predicted is not None:
        _column(df, predicted, "--predicted")
        return Prediction(predicted)
    if probability is not None:
        _column(df, probability, "--probability")
        if cutoff is None:
            raise _bad(
                f"--probability {probability!r} needs --cutoff X: scores above it are positive.",
                hint="e.g. --cutoff 0.5",
            )
        return Prediction(
            probability, threshold=cutoff, op=_compare(cutoff_compare, "--cutoff-compare")
        )
    return None


def _bootstrap(resamples: int | None, seed: int | None, level: float | None) -> Any:
    from trivet.clarify.config import Bootstrap

    if resamples is None:
        if seed is not None or level is not None:
            raise _bad("--seed and --level set bootstrap intervals.", hint="add --bootstrap N")
        return None
    return Bootstrap(
        resamples, seed=0 if seed is None else seed, level=0.95 if level is None else level
    )


_RANGE = re.compile(r"^(?P<metric>[A-Za-z]+)\s*=\s*(?P<low>[^:]*):(?P<high>[^:]*)$")


def _bounds(item: str, flag: str) -> tuple[str, float | None, float | None]:
    match = _RANGE.match(item.strip())
    if match is None:
        raise _bad(
            f"{flag} takes METRIC=LOW:HIGH, not {item!r}.",
            hint=f"e.g. {flag} DI=0.8:1.25 (leave a side empty for no bound: {flag} DPPL=:0.1)",
        )
    low, high = match["low"].strip(), match["high"].strip()
    return (
        match["metric"],
        None if not low else _number(low, f"{flag} {item}"),
        None if not high else _number(high, f"{flag} {item}"),
    )


def _checks(items: list[str] | None, on: str) -> list[Check]:
    from trivet.clarify.checks import Check

    checked = _choice(on, "--check-on", ("value", "interval"))
    out = []
    for item in items or []:
        metric, low, high = _bounds(item, "--check")
        out.append(Check(metric, low=low, high=high, on=checked))
    return out


def _ranges(items: list[str] | None) -> list[AllowedRange]:
    from trivet.clarify.monitor import AllowedRange

    out = []
    for item in items or []:
        metric, low, high = _bounds(item, "--range")
        out.append(AllowedRange(metric, low=low, high=high))
    return out


def _choice(value: str, flag: str, allowed: Sequence[str]) -> Any:
    if value not in allowed:
        raise _bad(
            f"{flag} is {' or '.join(repr(a) for a in allowed)}, not {value!r}.",
            hint=f"e.g. {flag} {allowed[0]}",
        )
    return value


# -- models ------------------------------------------------------------------------------
_DIGEST = re.compile(r"^[0-9a-f]{8,64}$")
_MODEL_REF = re.compile(r"^(?P<name>[^:@]+)(?:(?::(?P<version>[^:@]+))|(?:@(?P<alias>[^:@]+)))?$")


def _load_model(session: Session, ref: str, *, trust_pickle: bool) -> Any:
    """Load ``name[:version|@alias]`` from the registry, or an artifact digest."""
    if _DIGEST.match(ref):
        return session.artifacts.load_model(ref, trust_pickle=trust_pickle)
    match = _MODEL_REF.match(ref)
    if match is None:
        raise _bad(
            f"{ref!r} does not name a model.",
            hint="use NAME, NAME:VERSION or NAME@ALIAS from the registry, or an artifact digest",
        )
    version = match["version"] or match["alias"]
    return session.registry.load(match["name"], version, trust_pickle=trust_pickle)


def _model_features(model: Any, df: pd.DataFrame, features: list[str] | None) -> list[str]:
    if features:
        for f in features:
            _column(df, f, "--feature")
        return list(features)
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise _bad(
            "Which columns does the model take? It does not record their names.",
            hint="name them in order with --feature COL (repeatable)",
        )
    wanted = [str(n) for n in names]
    for f in wanted:
        _column(df, f, "the model's feature")
    return wanted


def _target(model: Any, value: str | None) -> Any:
    if value is None:
        return None
    for cls in getattr(model, "classes_", []):
        item = cls.item() if hasattr(cls, "item") else cls
        if str(item) == value or (isinstance(item, bool) and value.lower() == str(item).lower()):
            return item
    classes = [str(c) for c in getattr(model, "classes_", [])]
    raise _bad(
        f"--target {value!r} is not a class of the model.",
        hint=f"classes: {', '.join(classes)}" if classes else "the model has no classes_",
    )


# -- output ------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return {"Infinity": "inf", "-Infinity": "-inf"}.get(value, value)
    number = float(value)
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return f"{number:.{digits}g}"


def _interval(interval: Sequence[Any] | None) -> str:
    return "" if not interval else f"[{_fmt(interval[0], 3)}, {_fmt(interval[1], 3)}]"


def _allowed(low: float | None, high: float | None) -> str:
    left = "(-inf" if low is None else f"[{_fmt(low, 3)}"
    right = "inf)" if high is None else f"{_fmt(high, 3)}]"
    return f"{left}, {right}"


def _show_bias_sections(document: Mapping[str, Any]) -> None:
    for key, title in (
        ("pre_training_bias_metrics", "pre-training"),
        ("post_training_bias_metrics", "post-training"),
    ):
        section = document.get(key)
        if not section:
            continue
        for facet, groups in section["facets"].items():
            table(
                (
                    (
                        g["value_or_threshold"],
                        m["name"],
                        _fmt(m.get("value")),
                        _interval(m.get("interval")),
                        m.get("error", ""),
                    )
                    for g in groups
                    for m in g["metrics"]
                ),
                ["group", "metric", "value", "interval", "note"],
                title=f"{title} bias, facet {facet}, label {section['label']}",
            )


def _show_checks(checks: Mapping[str, Any] | None) -> None:
    if not checks:
        return
    table(
        (
            ("pass" if r["passed"] else "FAIL", r["metric"], r["group"], r["reason"])
            for r in checks["results"]
        ),
        ["", "metric", "group", "reason"],
        title="checks",
    )


def _show_monitoring(section: Mapping[str, Any]) -> None:
    table(
        (
            (
                r["status"].upper() if r["status"] == "violation" else r["status"],
                r["metric"],
                f"{r['facet']} = {r['group']}",
                _allowed(r["low"], r["high"]),
                _fmt(r["value"]),
                _interval(r["interval"]),
                _fmt(r["baseline_value"]),
            )
            for r in section["results"]
        ),
        ["status", "metric", "group", "allowed", "live", "live interval", "baseline"],
        title=f"monitoring against baseline {section['baseline_name']} "
        f"({str(section['baseline'])[:12]})",
    )
    drift = section.get("explanation_drift")
    if drift:
        note(("VIOLATION " if drift["flagged"] else "ok ") + drift["reason"])
    for text in section.get("notes", []):
        note(f"note: {text}")


def _show_baseline(section: Mapping[str, Any]) -> None:
    table(
        (
            (
                r["metric"],
                f"{r['facet']} = {r['group']}",
                _allowed(r["low"], r["high"]),
                r["source"],
                _fmt(r["baseline_value"]),
                _interval(r["baseline_interval"]),
            )
            for r in section["ranges"]
        ),
        ["metric", "group", "allowed", "source", "baseline", "baseline interval"],
        title="baseline: allowed ranges",
    )
    for text in section.get("unmonitored", []):
        note(f"not monitored: {text}")


def _kind(document: Mapping[str, Any]) -> str:
    if document.get("baseline"):
        return "baseline"
    if document.get("monitoring"):
        return "monitoring"
    return "report"


# -- bias --------------------------------------------------------------------------------
@app.command("bias")
def bias(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="A .csv or .parquet file, one row per example.")],
    label: Annotated[str, typer.Option("--label", help="The label column.")],
    positive: Annotated[
        list[str] | None,
        typer.Option("--positive", help="A label value that is positive (repeatable)."),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Numeric label: positive when above X.")
    ] = None,
    compare: Annotated[str, typer.Option("--compare", help="With --threshold: '>' or '>='.")] = ">",
    facet: Annotated[
        list[str] | None,
        typer.Option(
            "--facet",
            help="COL (every value against the rest), COL=VALUE[,VALUE] or 'COL>=X' "
            "(repeatable: one analysis each).",
        ),
    ] = None,
    intersect: Annotated[
        bool, typer.Option("--intersect", help="Cross the --facet options into one intersection.")
    ] = False,
    predicted: Annotated[
        str | None,
        typer.Option("--predicted", help="Predicted label column (the label's rule applies)."),
    ] = None,
    probability: Annotated[
        str | None, typer.Option("--probability", help="Predicted score column (with --cutoff).")
    ] = None,
    cutoff: Annotated[
        float | None, typer.Option("--cutoff", help="Score above which a prediction is positive.")
    ] = None,
    cutoff_compare: Annotated[
        str, typer.Option("--cutoff-compare", help="With --cutoff: '>' or '>='.")
    ] = ">",
    group_variable: Annotated[
        str | None,
        typer.Option("--group", "--group-variable", help="Group column for CDDL/CDDPL."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="A metric to compute (repeatable; default: all)."),
    ] = None,
    mode: Annotated[str, typer.Option(help="default or clarify_compatible.")] = "default",
    missing: Annotated[str, typer.Option(help="Missing values: error, drop or group.")] = "error",
    bootstrap: Annotated[
        int | None, typer.Option("--bootstrap", help="Bootstrap resamples for intervals.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Bootstrap seed (default 0).")] = None,
    level: Annotated[
        float | None, typer.Option(help="Bootstrap confidence level (default 0.95).")
    ] = None,
    min_group_size: Annotated[
        int, typer.Option("--min-group-size", help="Warn below this many rows.")
    ] = 30,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check", help="An allowed range, METRIC=LOW:HIGH (repeatable); exit 10 if one fails."
        ),
    ] = None,
    check_on: Annotated[
        str, typer.Option("--check-on", help="Check the 'value' or the whole 'interval'.")
    ] = "value",
    allow_undefined: Annotated[
        bool, typer.Option("--allow-undefined", help="An undefined value passes its check.")
    ] = False,
    report: Annotated[
        str | None, typer.Option("--report", help="Store a fairness report under this name.")
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline", help="Store a baseline for `trivet clarify monitor` under this name."
        ),
    ] = None,
    range_: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            help="With --baseline: an allowed range METRIC=LOW:HIGH "
            "(default: derived from the intervals).",
        ),
    ] = None,
    margin: Annotated[
        float,
        typer.Option(
            help="With --baseline: interval widths added to each side of a derived range."
        ),
    ] = 0.5,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="With --report/--baseline: also explain this model "
            "(NAME[:VERSION|@ALIAS] or digest).",
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", help="With --model: a model input column (repeatable)."),
    ] = None,
    trust_pickle: Annotated[bool, TRUST_PICKLE] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Compute bias metrics on a data file; optionally check, store a report or a baseline."""
    df = _read_data(data)
    the_label = _label(df, label, positive, threshold, compare)
    facets = _facets(df, facet, intersect)
    prediction = _prediction(df, predicted, probability, cutoff, cutoff_compare)
    if group_variable is not None:
        _column(df, group_variable, "--group")
    settings = _bootstrap(bootstrap, seed, level)
    checks = _checks(check, check_on)
    ranges = _ranges(range_)
    if ranges and baseline is None:
        raise _bad("--range applies to a baseline.", hint="add --baseline NAME")
    if model is not None and report is None and baseline is None:
        raise _bad(
            "--model adds explanations to a stored report or baseline.",
            hint="add --report NAME or --baseline NAME, or use `trivet clarify explain`",
        )
    if baseline is not None and settings is None and not ranges:
        raise _bad(
            "A baseline derives its allowed ranges from bootstrap intervals.",
            hint="add --bootstrap 1000, or give every range with --range METRIC=LOW:HIGH",
        )
    session = _session(ctx)
    clarify = _clarify(session)
    results = [
        clarify.bias(
            df,
            label=the_label,
            facet=f,
            prediction=prediction,
            group_variable=group_variable,
            metrics=metric,
            mode=_choice(mode, "--mode", ("default", "clarify_compatible")),
            missing=_choice(missing, "--missing", ("error", "drop", "group")),
            bootstrap=settings,
            min_group_size=min_group_size,
        )
        for f in facets
    ]
    outcome = None
    if checks:
        from trivet.clarify.checks import CheckOutcome, run_checks

        found = [
            r
            for b in results
            for r in run_checks(b, checks, allow_undefined=allow_undefined).results
        ]
        outcome = CheckOutcome(results=tuple(found), allow_undefined=allow_undefined)
    explanation = None
    if model is not None:
        loaded = _load_model(session, model, trust_pickle=trust_pickle)
        columns = _model_features(loaded, df, feature)
        explanation = clarify.explain(loaded, df[columns], top_k=0)
    stored = None
    if report is not None:
        stored = clarify.report(report, bias=results, checks=outcome, explanations=explanation)
    kept = None
    if baseline is not None:
        kept = clarify.baseline(
            baseline, bias=results, explanations=explanation, ranges=ranges or None, margin=margin
        )
    if as_json:
        emit_json(
            {
                "bias": [b.to_dict() for b in results],
                "checks": None if outcome is None else outcome.to_dict(),
                "report": None if stored is None else stored.digest,
                "baseline": None if kept is None else kept.digest,
            }
        )
    else:
        from trivet.clarify.report import build_report

        _show_bias_sections(build_report("bias", bias=results).document)
        for b in results:
            for warning in b.warnings:
                note(f"warning: {warning}")
        _show_checks(None if outcome is None else outcome.to_dict())
        if stored is not None:
            note(f"Stored report {report!r}: {stored.digest}")
        if kept is not None:
            note(f"Stored baseline {baseline!r} ({len(kept.ranges)} ranges): {kept.digest}")
            note(
                f"Monitor new data with: trivet clarify monitor DATA --baseline {kept.digest[:12]}"
            )
    if outcome is not None and not outcome.passed:
        note(f"{len(outcome.failures)} of {len(outcome.results)} checks failed.")
        raise typer.Exit(CHECKS_FAILED)


# -- explain -----------------------------------------------------------------------------
@app.command("explain")
def explain(
    ctx: typer.Context,
    model_ref: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_REF",
            help="A registered model NAME[:VERSION|@ALIAS], or a model artifact's digest.",
        ),
    ],
    data: Annotated[Path, typer.Argument(help="A .csv or .parquet file of rows to explain.")],
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature",
            help="A model input column, in order (repeatable; default: "
            "the names the model was fitted with).",
        ),
    ] = None,
    explainer: Annotated[str, typer.Option(help="auto, tree, kernel or permutation.")] = "auto",
    target: Annotated[
        str | None, typer.Option(help="The class whose probability is explained (default: last).")
    ] = None,
    row: Annotated[
        list[int] | None, typer.Option("--row", help="A row to explain locally (repeatable).")
    ] = None,
    sample: Annotated[
        int, typer.Option(help="Rows global importance averages over (0: every row).")
    ] = 100,
    num_samples: Annotated[
        int | None, typer.Option("--num-samples", help="Kernel: coalitions per row.")
    ] = None,
    baseline_size: Annotated[
        int | None, typer.Option("--baseline-size", help="k-means centres (kernel) or rows (tree).")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Features with partial dependence.")] = 0,
    grid_resolution: Annotated[
        int, typer.Option("--grid-resolution", help="Grid points per partial dependence.")
    ] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    trust_pickle: Annotated[bool, TRUST_PICKLE] = False,
    report: Annotated[
        str | None, typer.Option("--report", help="Store the explanations as a report.")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Explain a model with SHAP on a data file; print its global feature importance."""
    df = _read_data(data)
    if sample < 0:
        raise _bad(f"--sample must be >= 0, not {sample}.", hint="0 averages over every row")
    session = _session(ctx)
    loaded = _load_model(session, model_ref, trust_pickle=trust_pickle)
    columns = _model_features(loaded, df, feature)
    clarify = _clarify(session)
    explanation = clarify.explain(
        loaded,
        df[columns],
        explainer=_choice(explainer, "--explainer", ("auto", "tree", "kernel", "permutation")),
        target=_target(loaded, target),
        rows=row or (),
        sample=None if sample == 0 else sample,
        num_samples=num_samples,
        baseline_size=baseline_size,
        top_k=top_k,
        grid_resolution=grid_resolution,
        seed=seed,
    )
    stored = None
    if report is not None:
        stored = clarify.report(report, explanations=explanation)
    if as_json:
        emit_json({**explanation.to_dict(), "report": None if stored is None else stored.digest})
        return
    table(
        (
            (f.feature, f"{f.mean_abs:.4g}", f"{f.median_abs:.4g}", f"{f.mean_square:.4g}")
            for f in explanation.importance
        ),
        ["feature", "mean |SHAP|", "median |SHAP|", "mean SHAP²"],
        title=f"{explanation.method} SHAP of the {explanation.output}, {explanation.rows} rows",
    )
    for local in explanation.local:
        top = ", ".join(f"{name} {value:+.3g}" for name, value in local.top(3))
        typer.echo(
            f"row {local.row}: prediction {local.prediction:.4g} = base "
            f"{local.base_value:.4g} + ...; largest: {top}"
        )
    if stored is not None:
        note(f"Stored report {report!r}: {stored.digest}")


# -- monitor -----------------------------------------------------------------------------
@app.command("monitor")
def monitor(
    ctx: typer.Context,
    data: Annotated[
        Path,
        typer.Argument(
            help="A .csv or .parquet batch with the baseline's columns (e.g. "
            "logged predictions joined with ground truth)."
        ),
    ],
    baseline: Annotated[
        str, typer.Option("--baseline", help="The baseline's digest (or a unique prefix).")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Explain this model on the batch for explanation drift "
            "(NAME[:VERSION|@ALIAS] or digest).",
        ),
    ] = None,
    trust_pickle: Annotated[bool, TRUST_PICKLE] = False,
    bootstrap: Annotated[
        int | None,
        typer.Option("--bootstrap", help="Bootstrap resamples (default: the baseline's)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Bootstrap seed (default 0).")] = None,
    level: Annotated[
        float | None, typer.Option(help="Bootstrap confidence level (default 0.95).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Store the run under this report name (default: the baseline's)."),
    ] = None,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Store the run as a report.")
    ] = True,
    as_json: bool = JSON_OPTION,
) -> None:
    """Compute a baseline's bias metrics on a new batch; exit 11 on a violation.

    A violation is a metric whose whole bootstrap interval on the batch lies outside
    its allowed range, or, with --model, a SHAP importance ranking whose NDCG against
    the baseline's falls below the baseline's threshold.
    """
    df = _read_data(data)
    settings = _bootstrap(bootstrap, seed, level)
    session = _session(ctx)
    loaded = None if model is None else _load_model(session, model, trust_pickle=trust_pickle)
    result = _clarify(session).monitor(
        df, baseline, model=loaded, bootstrap=settings, name=name, store=store
    )
    if as_json:
        emit_json({**result.to_dict(), "report": result.digest})
    else:
        _show_monitoring(result.to_dict())
        if result.digest is not None:
            note(f"Stored monitoring run {result.document['name']!r}: {result.digest}")
    if not result.passed:
        count = result.to_dict()["violations"]
        note(f"{count} violation{'s' * (count != 1)} of the baseline's allowed ranges.")
        raise typer.Exit(VIOLATIONS)


# -- reports -----------------------------------------------------------------------------
@report_app.command("list")
def list_reports(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Only this report's versions.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the stored report versions you may read, newest first."""
    clarify = _clarify(_session(ctx))
    rows = []
    for entry in clarify.reports(name):
        document = clarify.get_report(entry.digest).document
        checks = document.get("checks")
        monitoring = document.get("monitoring")
        rows.append(
            {
                "digest": entry.digest,
                "name": entry.name,
                "kind": _kind(document),
                "created_at": entry.created_at,
                "created_by": entry.created_by,
                "checks_passed": None if checks is None else checks["passed"],
                "violations": None if monitoring is None else monitoring["violations"],
                "review": document.get("review", {}).get("status"),
            }
        )
    if as_json:
        emit_json(rows)
        return

    def outcome(row: Mapping[str, Any]) -> str:
        if row["violations"] is not None:
            return f"{row['violations']} violations" if row["violations"] else "no violation"
        if row["checks_passed"] is not None:
            return "checks passed" if row["checks_passed"] else "checks FAILED"
        return ""

    table(
        (
            (
                r["digest"][:12],
                r["name"],
                r["kind"],
                r["created_at"].isoformat(timespec="seconds"),
                r["created_by"],
                outcome(r),
                r["review"],
            )
            for r in rows
        ),
        ["digest", "name", "kind", "created", "by", "outcome", "review"],
    )


@report_app.command("show")
def show_report(
    ctx: typer.Context,
    digest: Annotated[str, typer.Argument(help="The report's digest (or a unique prefix).")],
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a stored report: its metrics, checks, ranges or monitoring results."""
    found = _clarify(_session(ctx)).get_report(digest)
    document = found.document
    if as_json:
        emit_json(document)
        return
    review = document.get("review", {})
    info = {
        "name": document["name"],
        "digest": found.digest,
        "kind": _kind(document),
        "created": f"{document.get('created_at')} by {document.get('created_by')}",
        "data": document.get("data_digest"),
        "model": document.get("model_version"),
        "checks": {None: "none", True: "passed", False: "FAILED"}[found.checks_passed],
        "review": review.get("status"),
    }
    for key, value in info.items():
        if value is not None:
            typer.echo(f"{key:8} {value}")
    _show_bias_sections(document)
    _show_checks(document.get("checks"))
    explanations = document.get("explanations")
    if explanations:
        body = next(v for k, v in explanations.items() if k.endswith("_shap"))
        values = body["label0"]["global_shap_values"]
        table(
            ((f, f"{v:.4g}") for f, v in sorted(values.items(), key=lambda kv: -kv[1])),
            ["feature", "mean |SHAP|"],
            title="global importance",
        )
    if document.get("baseline"):
        _show_baseline(document["baseline"])
    if document.get("monitoring"):
        _show_monitoring(document["monitoring"])


@report_app.command("open")
def open_report(
    ctx: typer.Context,
    digest: Annotated[str, typer.Argument(help="The report's digest (or a unique prefix).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the page (default: a file in the temporary folder).",
        ),
    ] = None,
    browser: Annotated[
        bool, typer.Option("--browser", help="Open the page in the web browser too.")
    ] = False,
) -> None:
    """Write a stored report's self-contained HTML page to a file and print its path."""
    import tempfile

    page = _clarify(_session(ctx)).report_html(digest)
    path = output or Path(tempfile.gettempdir()) / f"trivet-report-{digest[:12]}.html"
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise _bad(
            f"Cannot write {str(path)!r}: {exc.strerror}.", hint="choose another --output"
        ) from exc
    typer.echo(str(path.resolve()))
    if browser:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            note("No web browser could be started; open the file above yourself.")
