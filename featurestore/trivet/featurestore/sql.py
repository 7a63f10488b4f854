"""SQL over the offline tables: ``FeatureStore.sql``.

Each call opens a private in-memory DuckDB database holding one relation per feature
group the caller may ``feature:read_offline`` (and that keeps an offline table), named
after the group (quote names with ``.`` or ``-``: ``"credit.applicants"``). A relation
is the group's offline table as it is, every version of every record: the record id,
the event time, the features, and trivet's ``__write_time``, ``__deleted`` (soft-delete
tombstones are rows like the others) and ``__batch``. ``as_of`` gives each table as it
was then, as in :mod:`trivet.featurestore.datasets`.

Nothing else is reachable. The relations are Arrow datasets over the Delta table's
files, scanned by Arrow, so DuckDB itself needs no file access: the database is opened
with ``enable_external_access = false`` (no ``read_parquet``/``read_csv`` of a path, no
``COPY``, ``ATTACH``, ``INSTALL`` or ``LOAD``, no Python variables by name), extension
auto-loading off, and its configuration locked before the query runs. Only one
``SELECT`` (or ``EXPLAIN``) statement is accepted.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from trivet.errors import BackendError, PermissionDenied, ValidationError
from trivet.featurestore._groups import read_groups
from trivet.featurestore.datasets import Output, check_as_of, to_pandas

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    from trivet.featurestore.definitions import FeatureGroup
    from trivet.featurestore.store import FeatureStore

__all__ = ["run_sql"]


def run_sql(
    store: FeatureStore, query: str, *, as_of: dt.datetime | None, to: Output
) -> pd.DataFrame | pa.Table:
    """See :meth:`trivet.featurestore.FeatureStore.sql`."""
    import duckdb

    if not isinstance(query, str) or not query.strip():
        raise ValidationError("The SQL query is empty.", hint='e.g. fs.sql("select 1")')
    if to not in ("pandas", "arrow"):
        raise ValidationError(f"to must be 'pandas' or 'arrow', not {to!r}.")
    as_of = check_as_of(as_of)
    groups = _readable_groups(store)
    con = _locked_connection(store, groups, as_of)
    try:
        _check_statement(con, query)
        try:
            table = con.sql(query).to_arrow_table()
        except duckdb.PermissionException as exc:
            raise PermissionDenied(
                f"The query reached outside the feature groups: {_first_line(exc)}",
                hint="SQL may read only the feature groups' relations; files, the network "
                "and extensions are out of reach",
            ) from exc
        except (duckdb.ParserException, duckdb.CatalogException, duckdb.BinderException) as exc:
            raise ValidationError(
                f"The query failed: {_first_line(exc)}",
                hint=_tables_hint(groups),
            ) from exc
        except duckdb.Error as exc:
            raise BackendError(f"DuckDB failed to run the query: {_first_line(exc)}") from exc
    finally:
        con.close()
    return to_pandas(table) if to == "pandas" else table


def _readable_groups(store: FeatureStore) -> list[FeatureGroup]:
    """The project's groups with an offline table that the caller may read offline."""
    session = store._s
    with session.catalog.read() as conn:
        groups = read_groups(conn, store._s.project)
    return [g for g in groups if g.offline and session.can("feature:read_offline", g.resource)]


def _locked_connection(
    store: FeatureStore, groups: list[FeatureGroup], as_of: dt.datetime | None
) -> duckdb.DuckDBPyConnection:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        con = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
            },
        )
    except duckdb.Error as exc:  # pragma: no cover - fixed settings
        raise BackendError(f"DuckDB could not start: {_first_line(exc)}") from exc
    try:
        con.execute("SET TimeZone = 'UTC'")  # timestamps come back in UTC
        for group in groups:
            store._settle(group)  # buffered single-record writes first (see buffer.py)
            files = store.offline.offline_files(group, as_of=as_of)
            dataset = ds.dataset(files, schema=group.arrow_schema(), format="parquet")
            if as_of is not None:
                cut = pa.scalar(as_of, type=pa.timestamp("us", tz="UTC"))
                dataset = dataset.filter(ds.field("__write_time") <= cut)
            con.register(group.name, dataset)
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise BackendError(f"Could not set up the SQL relations: {_first_line(exc)}") from exc
    except (OSError, pa.ArrowException) as exc:
        con.close()
        raise BackendError(
            f"The offline files for the SQL relations cannot be read: {_first_line(exc)}",
            hint="as_of may reach back before a hard delete, whose vacuum removed the files "
            "of earlier versions; use a later as_of",
        ) from exc
    except BaseException:
        con.close()
        raise
    return con


def _check_statement(con: duckdb.DuckDBPyConnection, query: str) -> None:
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise ValidationError(f"The query does not parse: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise ValidationError(
            f"Give one SQL statement, not {len(statements)}.", hint="run them one by one"
        )
    kind = statements[0].type
    if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
        raise ValidationError(
            f"Only SELECT queries run here, not {kind.name}.",
            hint="fs.sql runs one read-only query; records change through ingest and delete_record",
        )


def _tables_hint(groups: list[FeatureGroup]) -> str:
    if not groups:
        return "you may read no feature group offline (feature:read_offline)"
    names = ", ".join(f'"{g.name}"' for g in groups)
    return f"the relations are: {names}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
