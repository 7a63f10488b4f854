"""The DuckDB side of the point-in-time engine: one connection per call, SQL per group.

:mod:`trivet.featurestore._pit` states the semantics and validates the inputs; this module
reads a group's rows (parquet files or an Arrow table) through a private connection to
an in-memory DuckDB database (shared by the process's calls with the same settings: a
connection's views and registered tables are its own) and runs the join strategies
described there. Every identifier is quoted and every value inlined into SQL is an
integer computed here, never text from a user.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from trivet.errors import BackendError, ValidationError, did_you_mean

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from trivet.featurestore._pit import GroupSource

__all__ = [
    "ENCODE_MAX_KEY",
    "ENCODE_MAX_VERSIONS",
    "RESERVED_COLUMNS",
    "Bounds",
    "Connection",
    "GroupRows",
    "Strategy",
    "quote",
]

RESERVED_COLUMNS = ("__write_time", "__deleted", "__batch")
"""Columns the offline tables add to every row; a feature may not use these names."""

Strategy = Literal["asof", "range"]

ENCODE_MAX_VERSIONS = 1 << 20  # most distinct (write time, batch) pairs for the fast key
ENCODE_MAX_KEY = 2**62
_INT_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
    }
)
_TIMESTAMP_TYPES = frozenset(
    {
        "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP_S",
        "TIMESTAMP_MS",
        "TIMESTAMP_NS",
        "TIMESTAMPTZ_NS",
    }
)


@dataclass(frozen=True)
class Bounds:
    """Global row filters in whole microseconds: write time ≤ as_of, event time in range."""

    as_of: int | None
    start: int | None
    end: int | None


def quote(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


_MAX_DATABASES = 4  # cached DuckDB databases (one per threads / memory_limit pair)
_databases: dict[tuple[int, int, str], tuple[duckdb.DuckDBPyConnection, str]] = {}
_databases_lock = threading.Lock()
_cleanup_registered: list[bool] = []


def _open_database(threads: int, memory_limit: str) -> tuple[duckdb.DuckDBPyConnection, str]:
    """Open an in-memory DuckDB database with a private spill directory."""
    import duckdb

    tmp = tempfile.mkdtemp(prefix="trivet-pit-")
    try:
        con = duckdb.connect(
            ":memory:",
            config={
                "threads": threads,
                "memory_limit": memory_limit,
                "preserve_insertion_order": False,
                "temp_directory": tmp,
            },
        )
    except duckdb.Error as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValidationError(
            f"DuckDB refused the settings threads={threads}, memory_limit={memory_limit!r}: {exc}",
            hint="use e.g. memory_limit='4GB'",
        ) from exc
    with contextlib.suppress(duckdb.Error):  # footers are read 2-3 times per group
        con.execute("SET parquet_metadata_cache = true")
    return con, tmp


def _close_databases() -> None:
    """Close this process's cached databases and remove their spill directories."""
    pid = os.getpid()
    with _databases_lock:
        mine = [key for key in _databases if key[0] == pid]  # not a forked parent's
        closing = [_databases.pop(key) for key in mine]
    for con, tmp in closing:
        with contextlib.suppress(Exception):
            con.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _shared_cursor(threads: int, memory_limit: str) -> duckdb.DuckDBPyConnection | None:
    """A new connection to the process's cached database for these settings.

    Opening a DuckDB database costs tens of milliseconds (more on the first one in a
    process), so calls share one per ``(threads, memory_limit)``, opened on first use,
    each through a connection of its own (``cursor()``): views and registered tables are
    private to a connection, so concurrent calls do not see each other's. None when
    ``_MAX_DATABASES`` settings are cached already: the caller then opens a private
    database. Keyed by process id too: a forked child never uses its parent's database.
    """
    key = (os.getpid(), threads, memory_limit)
    with _databases_lock:  # a DuckDB connection object is not thread-safe: cursor() here
        found = _databases.get(key)
        if found is None:
            if sum(1 for k in _databases if k[0] == key[0]) >= _MAX_DATABASES:
                return None
            found = _databases[key] = _open_database(threads, memory_limit)
            if not _cleanup_registered:
                atexit.register(_close_databases)
                _cleanup_registered.append(True)
        return found[0].cursor()


class Connection:
    """A private DuckDB connection for one call, to a database shared by calls with the
    same settings (see :func:`_shared_cursor`), or to one of its own."""

    def __init__(self, *, threads: int | None, memory_limit: str) -> None:
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
            threads = threads or os.cpu_count() or 1
        if threads < 1:
            raise ValidationError(f"threads must be at least 1, not {threads}.", hint="use 1")
        self.threads = threads
        self.memory_limit = memory_limit
        self.con: duckdb.DuckDBPyConnection | None = None
        self.tmp: str | None = None  # the spill directory of a private database

    def __enter__(self) -> Connection:
        self.con = _shared_cursor(self.threads, self.memory_limit)
        if self.con is None:
            self.con, self.tmp = _open_database(self.threads, self.memory_limit)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def sql(self, query: str, what: str) -> pa.Table:
        import duckdb

        assert self.con is not None
        try:
            return self.con.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise BackendError(f"DuckDB failed while {what}: {exc}") from exc

    def view(self, source: GroupSource, index: int) -> GroupRows:
        import duckdb

        assert self.con is not None
        name = f"__src{index}"
        try:
            if source.files:
                relation = self.con.read_parquet(list(source.files), union_by_name=True)
                relation.create_view(name)
            elif source.table is not None:
                self.con.register(name, source.table)
            else:
                return GroupRows(self, source, None, {})
            described = self.con.sql(f"DESCRIBE {name}").fetchall()
        except duckdb.Error as exc:
            raise BackendError(
                f"Could not read the offline rows of group {source.name!r}: {exc}",
                hint="check that the table's files exist and are parquet",
            ) from exc
        return GroupRows(self, source, name, {str(r[0]): str(r[1]) for r in described})


class GroupRows:
    """One group's rows inside the connection, and the SQL that reads them."""

    def __init__(
        self, conn: Connection, source: GroupSource, view: str | None, types: dict[str, str]
    ) -> None:
        self.conn = conn
        self.source = source
        self.view = view
        self.types = types
        self.target = self._target_schema()
        if view is not None:
            self._check_columns()

    # -- schema

    def _target_schema(self) -> pa.Schema | None:
        import pyarrow as pa

        if self.source.schema is not None:
            return self.source.schema
        if self.source.table is not None:
            schema = self.source.table.schema
            assert isinstance(schema, pa.Schema)
            return schema
        return None

    def _check_columns(self) -> None:
        s = self.source
        known = [c for c in self.types if c not in RESERVED_COLUMNS]
        for role, column in (("record identifier", s.record_id), ("event time", s.event_time)):
            if column not in self.types:
                raise ValidationError(
                    f"Group {s.name!r} has no {role} column {column!r}.",
                    hint=did_you_mean(column, known),
                )
        for column in ("__write_time", "__deleted"):
            if column not in self.types:
                raise ValidationError(
                    f"The rows of group {s.name!r} lack the reserved column {column!r}.",
                    hint="pass an offline table written by the feature store",
                )
        for column in (s.event_time, "__write_time"):
            if self.types[column] not in _TIMESTAMP_TYPES:
                raise ValidationError(
                    f"Column {column!r} of group {s.name!r} holds {self.types[column]}, "
                    "not timestamps.",
                    hint="store it as timestamp[us, tz=UTC]",
                )
        if self.key_family(self.types[s.record_id]) is None:
            raise ValidationError(
                f"The record identifier {s.record_id!r} of group {s.name!r} holds "
                f"{self.types[s.record_id]}; record identifiers are integers or strings.",
                hint="store the ids as int64 or string",
            )
        for feature in s.features:
            if feature not in self.types:
                raise ValidationError(
                    f"Group {s.name!r} has no feature {feature!r}.",
                    hint=did_you_mean(feature, known),
                )

    @staticmethod
    def key_family(duck_type: str) -> str | None:
        if duck_type in _INT_TYPES:
            return "int"
        if duck_type == "VARCHAR":
            return "str"
        return None

    def check_key(self, column: pa.ChunkedArray, name: str) -> pa.DataType:
        """Check the entity key column against the record id; return the type to cast to."""
        import pyarrow as pa

        kind = column.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_integer(kind):
            family, target = "int", pa.int64()
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            family, target = "str", kind
        elif hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind):
            family, target = "str", pa.string()
        else:
            family, target = "other", kind
        s = self.source
        if self.view is None:
            wanted = self._schema_key_family()
        else:
            wanted = self.key_family(self.types[s.record_id])
        if wanted is not None and family != wanted:
            example = "astype('int64')" if wanted == "int" else "astype(str)"
            raise ValidationError(
                f"Entity column {name!r} holds {column.type} values, but group {s.name!r} "
                f"identifies records by {s.record_id!r}, which holds "
                f"{'integers' if wanted == 'int' else 'strings'}.",
                hint=f"convert the entity column, e.g. df[{name!r}] = df[{name!r}].{example}",
            )
        if family == "other":
            raise ValidationError(
                f"Entity column {name!r} holds {column.type}; record ids are ints or strings.",
                hint="convert it to int64 or string",
            )
        return target

    def _schema_key_family(self) -> str | None:
        import pyarrow as pa

        schema = self.target
        if schema is None or self.source.record_id not in schema.names:
            return None
        kind = schema.field(self.source.record_id).type
        if pa.types.is_integer(kind):
            return "int"
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return "str"
        return None

    # -- SQL

    def _epoch_us(self, column: str) -> str:
        if self.types[column] in ("TIMESTAMP_NS", "TIMESTAMPTZ_NS"):  # truncated to µs
            return f"(epoch_ns({quote(column)}) // 1000)"
        return f"epoch_us({quote(column)})"

    def rows_sql(self, bounds: Bounds, *, include_deleted: bool, raw: bool = False) -> str:
        """The candidate rows, normalized: __key, __ev, __wt (µs), __del, __b, __f<i>.

        With ``raw``, also the record id and event time as stored (__rid, __evt).
        """
        s = self.source
        assert self.view is not None
        key_type = "BIGINT" if self.key_family(self.types[s.record_id]) == "int" else "VARCHAR"
        ev, wt = self._epoch_us(s.event_time), self._epoch_us("__write_time")
        batch = "coalesce(CAST(__batch AS VARCHAR), '')" if "__batch" in self.types else "''"
        features = "".join(f", {quote(f)} AS __f{j}" for j, f in enumerate(s.features))
        if raw:
            features += f", {quote(s.record_id)} AS __rid, {quote(s.event_time)} AS __evt"
        where = [f"{quote(s.record_id)} IS NOT NULL", f"{ev} IS NOT NULL", f"{wt} IS NOT NULL"]
        if bounds.as_of is not None:
            where.append(f"{wt} <= {bounds.as_of}")
        if bounds.start is not None:
            where.append(f"{ev} >= {bounds.start}")
        if bounds.end is not None:
            where.append(f"{ev} <= {bounds.end}")
        if include_deleted:
            where.append("__deleted IS NOT TRUE")
        return (
            f"SELECT CAST({quote(s.record_id)} AS {key_type}) AS __key, {ev} AS __ev, "
            f"{wt} AS __wt, coalesce(__deleted, false) AS __del, {batch} AS __b{features} "
            f"FROM {self.view} WHERE {' AND '.join(where)}"
        )

    def _versions(self, rows: str) -> tuple[pa.Table, int, int, int] | None:
        """Rank the distinct (write time, batch) pairs, if the fast ordering key fits.

        Returns the ranks, the smallest and greatest event times and the multiplier ``n``,
        such that ``(__ev - lo) * n + rank`` orders rows by ``(event_ts, __write_time,
        __batch)`` in 64 bits. ``None`` when there are no rows or the key would not fit.
        The ranks are keyed by ``(__wt, __b)``, or by ``__wt`` alone when no two batches
        share a write time (the usual case: then the join need not read ``__batch``).
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        versions = self.conn.sql(
            f"SELECT __wt, __b, min(__ev) AS lo, max(__ev) AS hi FROM ({rows}) "
            f"GROUP BY __wt, __b ORDER BY __wt, __b LIMIT {ENCODE_MAX_VERSIONS + 1}",
            f"reading the write history of group {self.source.name!r}",
        )
        n = versions.num_rows
        if n == 0 or n > ENCODE_MAX_VERSIONS:
            return None
        lo, hi = pc.min(versions["lo"]).as_py(), pc.max(versions["hi"]).as_py()
        if (hi - lo + 1) * n > ENCODE_MAX_KEY:
            return None
        columns = {"__wt": versions["__wt"], "__b": versions["__b"], "__r": pa.array(range(n))}
        if pc.count_distinct(versions["__wt"]).as_py() == n:
            del columns["__b"]  # one batch per write time: rank by it alone, read no __batch
        return pa.table(columns), lo, hi, n

    def join(
        self,
        ent: pa.Table,
        bounds: Bounds,
        *,
        created_cutoff: bool,
        include_deleted: bool,
        strategy: Strategy,
        match_times: bool,
    ) -> pa.Table:
        """Return ``__row, __f<i>`` (and ``__ev, __wt``) for the rows that have a winner."""
        if self.view is None:
            return self._empty()
        con = self.conn.con
        assert con is not None
        rows = self.rows_sql(bounds, include_deleted=include_deleted)
        registered: list[str] = []
        has_ttl = "__lb" in ent.column_names
        feats = "".join(
            f", CASE WHEN g.__del THEN NULL ELSE g.__f{j} END AS __f{j}"
            for j in range(len(self.source.features))
        )
        times = ", g.__ev, g.__wt" if match_times else ""
        select = f"SELECT e.__row{times}{feats}"
        ttl = " WHERE g.__ev >= e.__lb" if has_ttl else ""
        if strategy == "range":
            conds = ["e.__key = g.__key", "g.__ev <= e.__ub"]
            if has_ttl:
                conds.append("g.__ev >= e.__lb")
            if created_cutoff:
                conds.append("g.__wt <= e.__ub")
            query = (
                f"WITH g AS ({rows}) {select} FROM __ent e JOIN g ON {' AND '.join(conds)} "
                "QUALIFY row_number() OVER (PARTITION BY e.__row "
                "ORDER BY g.__ev DESC, g.__wt DESC, g.__b DESC) = 1"
            )
        elif strategy == "asof":
            encoded = self._versions(rows)
            if encoded is not None:
                ranks, lo, _, n = encoded
                con.register("__ranks", ranks)
                registered.append("__ranks")
                order = f"(s.__ev - {lo}) * {n} + r.__r"
                using = "__wt, __b" if "__b" in ranks.column_names else "__wt"
                source = (
                    f"(SELECT s.*, {order} AS __t FROM ({rows}) s JOIN __ranks r USING ({using}))"
                )
            else:
                source = (
                    f"(SELECT s.*, {{'e': s.__ev, 'w': s.__wt, 'b': s.__b}} AS __t FROM ({rows}) s)"
                )
            if created_cutoff:
                # A row is available from max(event, write); keep the running maxima of the
                # ordering key along availability time: the last one available wins.
                query = (
                    f"WITH g AS (SELECT *, greatest(__ev, __wt) AS __av FROM {source} "
                    "QUALIFY __t = max(__t) OVER (PARTITION BY __key ORDER BY __av)) "
                    f"{select} FROM __ent e ASOF JOIN g "
                    f"ON e.__key = g.__key AND e.__ub >= g.__av{ttl}"
                )
            elif encoded is not None:
                query = self._encoded_asof(rows, encoded, has_ttl=has_ttl, times=times)
            else:
                query = (
                    f"WITH g AS (SELECT * FROM ({rows}) QUALIFY row_number() OVER "
                    "(PARTITION BY __key, __ev ORDER BY __wt DESC, __b DESC) = 1) "
                    f"{select} FROM __ent e ASOF JOIN g "
                    f"ON e.__key = g.__key AND e.__ub >= g.__ev{ttl}"
                )
        else:
            raise ValidationError(f"Unknown strategy {strategy!r}.", hint="use 'asof' or 'range'")
        con.register("__ent", ent)
        registered.append("__ent")
        try:
            return self.conn.sql(query, f"joining group {self.source.name!r}")
        finally:
            for name in registered:
                con.unregister(name)

    def _encoded_asof(
        self,
        rows: str,
        encoded: tuple[pa.Table, int, int, int],
        *,
        has_ttl: bool,
        times: str,
    ) -> str:
        """The ASOF join on the packed ordering key ``__t = (__ev - lo) * n + rank``.

        The join sorts both sides, so they carry as little as possible: tombstones are
        nulled before the join (no ``__del``), and the entity's bounds are turned into
        ordering keys first, so the TTL is checked on ``__t`` (no ``__ev``). ``__ev >=
        lb`` is ``__t >= (lb - lo) * n`` because ``0 <= rank < n``; the entity's upper
        key is the greatest with event time ``<= ub``, ``(ub - lo) * n + (n - 1)``. Both
        bounds are clamped to ``[lo - 1, hi + 1]`` first, which changes no comparison and
        keeps the products within 64 bits (``(hi - lo + 1) * n <= ENCODE_MAX_KEY``).
        """
        ranks, lo, hi, n = encoded
        using = "__wt, __b" if "__b" in ranks.column_names else "__wt"
        feats = "".join(
            f", CASE WHEN s.__del THEN NULL ELSE s.__f{j} END AS __f{j}"
            for j in range(len(self.source.features))
        )
        kept = ", s.__ev, s.__wt" if times else ""
        g = (
            f"SELECT s.__key, (s.__ev - {lo}) * {n} + r.__r AS __t{kept}{feats} "
            f"FROM ({rows}) s JOIN __ranks r USING ({using})"
        )
        upper = f"(least(greatest(__ub, {lo - 1}), {hi + 1}) - {lo}) * {n} + {n - 1}"
        lower = f", (least(greatest(__lb, {lo - 1}), {hi + 1}) - {lo}) * {n} AS __tl"
        e = f"SELECT __row, __key, {upper} AS __tq{lower if has_ttl else ''} FROM __ent"
        out = "".join(f", g.__f{j}" for j in range(len(self.source.features)))
        return (
            f"WITH g AS ({g}), e AS ({e}) SELECT e.__row{times}{out} FROM e ASOF JOIN g "
            f"ON e.__key = g.__key AND e.__tq >= g.__t{' WHERE g.__t >= e.__tl' if has_ttl else ''}"
        )

    def _empty(self) -> pa.Table:
        import pyarrow as pa

        schema = self.target
        assert schema is not None
        data: dict[str, pa.Array] = {
            "__row": pa.array([], pa.int64()),
            "__ev": pa.array([], pa.int64()),
            "__wt": pa.array([], pa.int64()),
        }
        for j, feature in enumerate(self.source.features):
            if feature not in schema.names:
                raise ValidationError(
                    f"Group {self.source.name!r} has no feature {feature!r}.",
                    hint=did_you_mean(feature, schema.names),
                )
            data[f"__f{j}"] = pa.array([], schema.field(feature).type)
        return pa.table(data)

    def finish(self, column: pa.ChunkedArray, feature: str) -> pa.ChunkedArray:
        """Give an output feature column its group's exact type."""
        import pyarrow as pa

        if self.target is not None and feature in self.target.names:
            kind = self.target.field(feature).type
            if column.type != kind:
                column = column.cast(kind)
            return column
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.tz is not None and kind.tz != "UTC":
            column = column.cast(pa.timestamp(kind.unit, tz="UTC"))
        return column

    def latest(self, n: int, bounds: Bounds, *, include_deleted: bool) -> pa.Table:
        import pyarrow as pa

        s = self.source
        out = [s.record_id, s.event_time, *s.features]
        if self.view is None:
            schema = self.target
            assert schema is not None
            missing = [c for c in out if c not in schema.names]
            if missing:
                raise ValidationError(
                    f"Group {s.name!r} has no column {missing[0]!r}.",
                    hint=did_you_mean(missing[0], schema.names),
                )
            return pa.table({c: pa.array([], schema.field(c).type) for c in out})
        rows = self.rows_sql(bounds, include_deleted=include_deleted, raw=True)
        alive = (
            ""
            if include_deleted
            else "QUALIFY __ev > coalesce(max(CASE WHEN __del THEN __ev END) "
            "OVER (PARTITION BY __key), -9223372036854775808)"
        )
        feats = "".join(f", __f{j}" for j in range(len(s.features)))
        query = (
            "WITH d AS (SELECT * FROM ("
            + rows
            + ") QUALIFY row_number() OVER (PARTITION BY __key, __ev "
            "ORDER BY __wt DESC, __b DESC) = 1), "
            f"a AS (SELECT * FROM d {alive}), "
            "t AS (SELECT * FROM a WHERE NOT __del QUALIFY row_number() OVER "
            f"(PARTITION BY __key ORDER BY __ev DESC) <= {n}) "
            f"SELECT __rid, __evt{feats} FROM t ORDER BY __key, __ev DESC"
        )
        result = self.conn.sql(query, f"reading the latest rows of group {s.name!r}")
        columns = [self.finish(result.column(i), name) for i, name in enumerate(out)]
        return pa.Table.from_arrays(columns, names=out)
