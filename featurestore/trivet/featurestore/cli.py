"""`trivet featurestore`: the command-line face of trivet.featurestore.

Thin over :class:`~trivet.featurestore.FeatureStore`: data goes to stdout (``--json``
for machines), messages to stderr; the root command turns a TrivetError into one red
line and its exit code.

This module sits below the assembly layer, so it does not import ``trivet._cli``: it
opens its session from the root command's options (``--workspace``, ``--token``,
``--project``, read from the click context) through the platform layer, and keeps
its own two output helpers (JSON and a table).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trivet.platform.console import emit_json, note, plain, table

if TYPE_CHECKING:
    from trivet.featurestore.store import FeatureStore

app = typer.Typer(
    help="Feature groups: define, ingest, read and delete records.", no_args_is_help=True
)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")


# -- session and output ------------------------------------------------------------------
def _store(ctx: typer.Context) -> FeatureStore:
    """Open a FeatureStore with the root command's options (or TRIVET_* variables)."""
    from trivet.featurestore.store import FeatureStore
    from trivet.platform.session import Session
    from trivet.platform.settings import load_settings
    from trivet.platform.workspace import open_session

    params: Mapping[str, Any] = ctx.find_root().params
    settings = load_settings(params.get("workspace"))
    session = open_session(settings, params.get("token"), Session, project=params.get("project"))
    return FeatureStore(session)


def _read_spec_file(path: Path) -> Any:
    from trivet.errors import ValidationError
    from trivet.featurestore.definitions import FeatureGroupSpec

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"Cannot read the spec file {str(path)!r}: {exc.strerror}.") from exc
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # json's and tomllib's errors are ValueErrors
        raise ValidationError(
            f"The spec file {str(path)!r} is not valid {path.suffix[1:] or 'JSON'}: {exc}."
        ) from exc
    return FeatureGroupSpec.from_dict(data)


# -- commands ------------------------------------------------------------------------------
@app.command("create")
def create(
    ctx: typer.Context,
    spec_file: Annotated[
        Path | None, typer.Argument(help="A JSON or TOML spec (see `--from-data` to draft one).")
    ] = None,
    from_data: Annotated[
        Path | None,
        typer.Option("--from-data", help="Infer the spec from a .parquet or .csv file."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Group name (with --from-data).")] = None,
    record_id: Annotated[
        str | None, typer.Option("--record-id", help="Record id column (with --from-data).")
    ] = None,
    event_time: Annotated[
        str | None, typer.Option("--event-time", help="Event time column (with --from-data).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Create the inferred spec.")] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a feature group from a spec file, or infer one from data to review."""
    from trivet.errors import ValidationError

    if (spec_file is None) == (from_data is None):
        raise ValidationError(
            "Give either a spec file or --from-data FILE.",
            hint="e.g. trivet featurestore create --from-data rows.parquet --name g "
            "--record-id id --event-time ts",
        )
    if spec_file is not None:
        spec = _read_spec_file(spec_file)
    else:
        assert from_data is not None
        if not (name and record_id and event_time):
            raise ValidationError(
                "--from-data needs --name, --record-id and --event-time.",
                hint="name the group and its record id and event time columns",
            )
        spec = _infer_from_file(from_data, name=name, record_id=record_id, event_time=event_time)
        if not yes:
            typer.echo(json.dumps(spec.to_dict(), indent=2))
            note(
                "This is the inferred spec; nothing was created. Save it, edit it and run "
                "`trivet featurestore create SPEC.json`, or rerun with --yes."
            )
            return
    group = _store(ctx).create_group(spec)
    if as_json:
        emit_json(group)
        return
    note(f"Created feature group {group.name!r} ({len(group.features)} features).")


def _infer_from_file(path: Path, *, name: str, record_id: str, event_time: str) -> Any:
    from trivet.errors import ValidationError
    from trivet.featurestore.definitions import infer_spec

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            data: Any = pq.read_table(path)
        elif suffix == ".csv":
            import pandas as pd

            data = pd.read_csv(path)
            if event_time in data.columns:
                data[event_time] = pd.to_datetime(data[event_time], utc=True)
        else:
            raise ValidationError(f"Cannot infer a spec from {str(path)!r}: use .parquet or .csv.")
    except (OSError, ValueError) as exc:
        raise ValidationError(f"Cannot read {str(path)!r}: {exc}.") from exc
    return infer_spec(data, name=name, record_id=record_id, event_time=event_time)


@app.command("list")
def list_groups(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the feature groups you may see."""
    groups = _store(ctx).list_groups()
    if as_json:
        emit_json(groups)
        return
    table(
        ((g.name, len(g.features), ", ".join(g.tags), g.description, g.created_by) for g in groups),
        ["name", "features", "tags", "description", "created by"],
    )


@app.command("describe")
def describe(ctx: typer.Context, name: str, as_json: bool = JSON_OPTION) -> None:
    """Show a feature group's definition."""
    group = _store(ctx).describe(name)
    if as_json:
        emit_json(group)
        return
    for key in ("resource", "record_id", "event_time", "description", "tags", "ttl"):
        typer.echo(f"{key:12} {plain(getattr(group, key))}")
    typer.echo(f"{'stores':12} " + "+".join(s for s in ("online", "offline") if getattr(group, s)))
    table(
        ((f.name, f.dtype.value, f.description, dict(f.parameters) or "") for f in group.features),
        ["feature", "type", "description", "parameters"],
    )


@app.command("stats")
def stats(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The feature group.")],
    bins: Annotated[int, typer.Option(help="Histogram bins (JSON output).")] = 20,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show per-feature statistics of a group's latest records (needs read_offline)."""
    result = _store(ctx).statistics(name, bins=bins)
    if as_json:
        emit_json(result)
        return
    note(f"{result.group}: {result.records} records (soft-deleted left out)")

    def cell(value: object) -> str:
        if value is None:
            return ""
        return f"{value:.6g}" if isinstance(value, float) else str(plain(value))

    table(
        (
            (
                f.name,
                f.dtype,
                f.count,
                f.nulls,
                cell(f.distinct),
                cell(f.min),
                cell(f.max),
                cell(f.mean),
                cell(f.stddev),
            )
            for f in (result.event_time, *result.features)
        ),
        ["feature", "type", "count", "nulls", "distinct", "min", "max", "mean", "stddev"],
    )


@app.command("search")
def search(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="Words to look for.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only groups with this tag.")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Search feature groups by name, description, tag and features."""
    hits = _store(ctx).search(text, tag=tag)
    if as_json:
        emit_json([{"name": h.group.name, "matches": list(h.matches)} for h in hits])
        return
    table(((h.group.name, ", ".join(h.matches)) for h in hits), ["name", "matched"])


@app.command("ingest")
def ingest(
    ctx: typer.Context,
    name: str,
    file: Annotated[Path, typer.Argument(help="A .parquet or .csv file.")],
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", help="Threads for validation.")
    ] = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Draw no progress bars.")
    ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate FILE against group NAME and write it (offline and online).

    A large file (16 MiB or more) gets progress bars on stderr, a line per step, when
    stderr is a terminal (not with --json or --no-progress).
    """
    quiet = as_json or no_progress
    report = _store(ctx).ingest(
        name, file, max_workers=max_workers, progress=False if quiet else "auto"
    )
    if as_json:
        emit_json(report)
        return
    if report.duplicate:
        note(f"This batch was ingested before ({report.batch_id[:12]}); nothing was written.")
    else:
        note(
            f"Ingested {report.rows} rows ({report.records} records) into {name!r}, "
            f"batch {report.batch_id[:12]}."
        )


@app.command("get")
def get(
    ctx: typer.Context,
    name: str,
    record_id: str,
    features: Annotated[
        str | None, typer.Option(help="Comma-separated features (default: all).")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Print a record's latest values from the online store (exit code 3 if none)."""
    wanted = [f.strip() for f in features.split(",")] if features else None
    record = _store(ctx).get_record(name, record_id, features=wanted)
    if record is None:
        note(f"No record {record_id!r} in {name!r} (never written, deleted, or expired).")
        raise typer.Exit(3)
    if as_json:
        emit_json(record)
        return
    for key, value in record.items():
        typer.echo(f"{key:20} {plain(value)}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str,
    record_id: str,
    hard: Annotated[
        bool,
        typer.Option("--hard", help="Erase every version of the record (GDPR); not undoable."),
    ] = False,
) -> None:
    """Delete a record: a tombstone (default), or erase it everywhere with --hard."""
    _store(ctx).delete_record(name, record_id, hard=hard)
    what = "Erased every version of" if hard else "Deleted (tombstoned)"
    note(f"{what} record {record_id!r} in {name!r}.")


@app.command("put")
def put(
    ctx: typer.Context,
    name: str,
    record: Annotated[
        str,
        typer.Argument(
            help='The record as JSON, e.g. \'{"id": "a1", "ts": "2024-06-01T00:00:00Z", '
            '"income": 52000}\' (times in ISO 8601 with a zone).'
        ),
    ],
    as_json: bool = JSON_OPTION,
) -> None:
    """Write one record: durably buffered, online at once, offline at the next flush."""
    from trivet.errors import ValidationError

    try:
        values = json.loads(record)
    except ValueError as exc:
        raise ValidationError(f"The record is not valid JSON: {exc}.") from exc
    if not isinstance(values, dict):
        raise ValidationError(
            "The record must be a JSON object.", hint='e.g. \'{"id": "a1", "ts": "…Z"}\''
        )
    store = _store(ctx)
    try:
        report = store.put_record(name, values)
    finally:
        store.close()  # flushes the write to the offline table
    if as_json:
        emit_json(report)
        return
    note(f"Wrote a record to {name!r} (write {report.batch_id[:12]}).")


@app.command("maintain")
def maintain(
    ctx: typer.Context,
    groups: Annotated[
        list[str] | None,
        typer.Argument(help="Groups to maintain (default: every one you may).", show_default=False),
    ] = None,
    vacuum_hours: Annotated[
        int,
        typer.Option(
            "--vacuum-hours",
            help="Keep files any version of the last H hours needs (at least 1; below 168 "
            "needs feature:delete).",
            metavar="H",
        ),
    ] = 168,
    as_json: bool = JSON_OPTION,
) -> None:
    """Compact small files, write a checkpoint, and vacuum old files of offline tables."""
    from trivet.featurestore.maintenance import check_vacuum_hours, maintainable

    check_vacuum_hours(vacuum_hours)
    store = _store(ctx)
    names = list(groups) if groups else maintainable(store, vacuum_hours=vacuum_hours)
    reports = []
    for name in names:
        if not as_json:
            note(f"Maintaining {name!r}…")
        reports.append(store.maintain(name, vacuum_hours=vacuum_hours))
    store.close()
    if as_json:
        emit_json(reports)
        return
    table(
        (
            (
                r.group,
                f"{r.files_before} → {r.files_after}",
                f"{_size(r.bytes_before)} → {_size(r.bytes_after)}",
                r.files_vacuumed,
                _size(r.bytes_freed),
                r.checkpoint_version,
            )
            for r in reports
        ),
        ["group", "files", "size", "vacuumed files", "freed", "checkpoint"],
    )


def _size(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


# -- training sets and SQL -----------------------------------------------------------------
_SHOWN_ROWS = 100
_ZONED = r"(?:[zZ]|[+-]\d\d:?\d\d)\s*$"


def _parse_time(value: str | None, option: str) -> dt.datetime | None:
    from trivet.errors import ValidationError

    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(
            f"{option} {value!r} is not an ISO 8601 time.", hint="e.g. 2024-06-01T00:00:00Z"
        ) from exc
    if parsed.tzinfo is None:
        raise ValidationError(
            f"{option} {value!r} has no time zone; it would be ambiguous.",
            hint=f"add one, e.g. {value}Z",
        )
    return parsed


def _key_columns(
    store: FeatureStore, features: Sequence[str], entity_key: str | None
) -> dict[str, str]:
    """Map each entity key column to the type of the record ids it holds (for CSV)."""
    groups = dict.fromkeys(f.split(":", 1)[0].strip() for f in features if ":" in f)
    columns: dict[str, str] = {}
    for name in groups:
        group = store.describe(name)
        column = entity_key or group.record_id
        columns[column] = "int" if group.record_id_dtype.value == "int" else "str"
    return columns


def _read_entity(path: Path, *, timestamp: str, keys: Mapping[str, str] | None = None) -> Any:
    """Read the entity rows from .parquet, or from .csv (ids as text, zoned times)."""
    import pandas as pd

    from trivet.errors import ValidationError

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix != ".csv":
            raise ValidationError(
                f"Cannot read entity rows from {str(path)!r}.", hint="use a .parquet or .csv file"
            )
        text = {c: str for c, kind in (keys or {}).items() if kind == "str"}
        frame = pd.read_csv(path, dtype={**text, timestamp: str}, keep_default_na=True)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"Cannot read {str(path)!r}: {exc}.") from exc
    for column, kind in (keys or {}).items():
        if kind == "int" and column in frame.columns:
            frame[column] = frame[column].astype("Int64")
    if timestamp in frame.columns:
        raw = frame[timestamp]
        naive = raw.notna() & ~raw.astype(str).str.contains(_ZONED, regex=True)
        if naive.any():
            first = int(naive.to_numpy().nonzero()[0][0])
            raise ValidationError(
                f"The entity time {raw.iloc[first]!r} (row {first} of {str(path)!r}) has no "
                "time zone; it would be ambiguous.",
                hint="write times with Z or +hh:mm, e.g. 2024-06-01T00:00:00Z",
            )
        try:
            frame[timestamp] = pd.to_datetime(raw, utc=True, format="ISO8601")
        except ValueError as exc:
            raise ValidationError(
                f"The entity column {timestamp!r} of {str(path)!r} holds a value that is not "
                f"an ISO 8601 time: {exc}."
            ) from exc
    return frame


def _emit_frame(frame: Any, *, output: Path | None, as_json: bool) -> None:
    """Write a DataFrame to a file (.parquet or .csv), as JSON, or as a table."""
    from trivet.errors import ValidationError

    if output is not None:
        suffix = output.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise ValidationError(
                f"Cannot write {str(output)!r}.", hint="name a .parquet or .csv file"
            )
        try:
            if suffix == ".parquet":
                frame.to_parquet(output, index=False)
            else:
                frame.to_csv(output, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        except OSError as exc:
            raise ValidationError(f"Cannot write {str(output)!r}: {exc.strerror}.") from exc
        note(f"Wrote {len(frame)} rows to {str(output)!r}.")
        return
    if as_json:
        typer.echo(frame.to_json(orient="records", date_format="iso", date_unit="us"))
        return
    shown = frame.head(_SHOWN_ROWS)
    table(
        ([None if _is_missing(v) else v for v in row] for row in shown.itertuples(index=False)),
        [str(c) for c in frame.columns],
    )
    if len(frame) > _SHOWN_ROWS:
        note(f"… and {len(frame) - _SHOWN_ROWS} more rows; use --output FILE or --json.")


def _is_missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays
        return False


@app.command("dataset")
def dataset(
    ctx: typer.Context,
    entity_file: Annotated[
        Path, typer.Argument(help="Entity rows: .parquet, or .csv with zoned times.")
    ],
    feature: Annotated[
        list[str],
        typer.Option("--feature", "-f", help="group:feature or group:* (repeat it)."),
    ],
    timestamp: Annotated[
        str, typer.Option("--timestamp", "-t", help="The entity column holding each row's time.")
    ],
    entity_key: Annotated[
        str | None,
        typer.Option(
            "--entity-key", help="The entity column holding record ids (default: each group's)."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Time travel: what had been written by then (ISO 8601)."),
    ] = None,
    created_cutoff: Annotated[
        bool, typer.Option("--created-cutoff", help="Only rows written by each entity time.")
    ] = False,
    include_deleted: Annotated[
        bool,
        typer.Option("--include-deleted", help="Ignore soft deletes (values before a delete)."),
    ] = False,
    save: Annotated[
        str | None,
        typer.Option("--save", help="Store the result as dataset NAME (artifact + lineage) too."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a .parquet or .csv file.")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Build a point-in-time training set: each entity row with the features as of its time."""
    store = _store(ctx)
    keys = (
        _key_columns(store, feature, entity_key) if entity_file.suffix.lower() == ".csv" else None
    )
    entity = _read_entity(entity_file, timestamp=timestamp, keys=keys)
    frame = store.build_dataset(
        entity,
        feature,
        timestamp=timestamp,
        entity_key=entity_key,
        as_of=_parse_time(as_of, "--as-of"),
        created_cutoff=created_cutoff,
        include_deleted=include_deleted,
        dataset_name=save,
    )
    if save is not None:
        note(f"Saved dataset {save!r}: {frame.attrs['trivet.dataset']}")
    _emit_frame(frame, output=output, as_json=as_json)


@app.command("sql")
def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="One SELECT; each feature group is a table.")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Time travel: the tables as they were then (ISO 8601)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a .parquet or .csv file.")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Query the offline tables you may read with SQL (DuckDB), read-only."""
    frame = _store(ctx).sql(query, as_of=_parse_time(as_of, "--as-of"))
    _emit_frame(frame, output=output, as_json=as_json)
