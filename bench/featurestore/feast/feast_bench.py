"""The Feast side of ``bench/featurestore/feast_compare.py``: run in Feast's own environment.

    uv run --isolated --no-project --python 3.11 --with 'feast[duckdb]==0.67.0' \\
        python bench/featurestore/feast/feast_bench.py COMMAND SPEC.json

It imports no trivet code (Feast pins its own pandas, pyarrow and DuckDB), so trivet's
mypy run does not check it (see ``[tool.mypy]`` in pyproject.toml). Each command reads
its parameters from a JSON file and prints one JSON object as its last line of output:

- ``setup {"repo", "source", "ttl_days", "created"}``: a Feast repo in ``repo`` —
  feature_store.yaml with the DuckDB offline store, the SQLite online store and a file
  registry — holding an entity ``user_id`` (int64) and a feature view ``activity``
  (f1, f2, f3 as float64; TTL ``ttl_days``) over a parquet FileSource ``source`` (a
  glob), event time ``ts``, created timestamp ``created`` (``__write_time``: Feast's
  tie-break between rows with one event time; null: none); then ``apply``.
- ``pit {"repo", "entity", "out"}``: ``get_historical_features(entity_df, ...).to_df()``
  for the entity parquet (read into pandas first; a ``row`` column, each row's
  position, is added to find rows again). Prints the call's wall time and the
  process's peak RSS, then writes ``row, f1, f2, f3`` sorted by ``row`` to ``out``.
- ``online {"repo", "start", "end", "requests", "warmup"}``: ``materialize(start, end)``,
  then ``get_online_features(...).to_dict()`` once per entry of the ``requests`` file's
  ``one`` (one id a call) and ``batch`` (lists of ids) sequences; prints the µs of every
  call, and the answer for the ``check`` ids.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

FEATURES = ["f1", "f2", "f3"]
VIEW = "activity"

YAML = """\
project: trivet_bench
provider: local
registry: {registry}
offline_store:
  type: duckdb
online_store:
  type: sqlite
  path: {online}
entity_key_serialization_version: 3
"""


def setup(spec: dict[str, Any]) -> dict[str, Any]:
    """Write the repo's feature_store.yaml and apply the entity and the feature view."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    repo = Path(spec["repo"])
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        YAML.format(registry=repo / "registry.db", online=repo / "online.db")
    )
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="activity_source",
        path=spec["source"],
        timestamp_field="ts",
        created_timestamp_column=spec["created"] or "",
    )
    ttl = spec["ttl_days"]
    view = FeatureView(
        name=VIEW,
        entities=[user],
        ttl=dt.timedelta(days=ttl) if ttl else None,
        schema=[Field(name=f, dtype=Float64) for f in FEATURES],
        source=source,
        online=True,
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([user, view])
    return _versions()


def pit(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the training set once; time it, then write it (sorted by ``row``) to ``out``."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from feast import FeatureStore

    store = FeatureStore(repo_path=spec["repo"])
    entity = pq.read_table(spec["entity"]).to_pandas()
    entity["row"] = range(len(entity))
    refs = [f"{VIEW}:{f}" for f in FEATURES]
    start = time.perf_counter()
    result = store.get_historical_features(entity_df=entity, features=refs).to_df()
    wall = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = result.sort_values("row", kind="stable")
    columns = ["row", *FEATURES]
    table = pa.Table.from_pandas(pd.DataFrame(result[columns]), preserve_index=False)
    pq.write_table(table, spec["out"])
    return {"wall": wall, "rss_mib": rss_mib, "rows": len(result), "feast": _version()}


def online(spec: dict[str, Any]) -> dict[str, Any]:
    """Materialize, then time ``get_online_features`` for the given id sequences."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=spec["repo"])
    start = dt.datetime.fromisoformat(spec["start"])
    end = dt.datetime.fromisoformat(spec["end"])
    t0 = time.perf_counter()
    store.materialize(start_date=start, end_date=end, feature_views=[VIEW])
    materialize_s = time.perf_counter() - t0
    refs = [f"{VIEW}:{f}" for f in FEATURES]

    def get(keys: list[int]) -> dict[str, list[Any]]:
        rows = [{"user_id": k} for k in keys]
        out: dict[str, list[Any]] = store.get_online_features(
            features=refs, entity_rows=rows
        ).to_dict()
        return out

    requests = json.loads(Path(spec["requests"]).read_text())
    one = _timed(get, [[k] for k in requests["one"]], spec["warmup"])
    many = _timed(get, requests["batch"], spec["warmup"] // 10)
    return {
        "materialize_s": materialize_s,
        "one_us": one,
        "batch_us": many,
        "check": get(requests["check"]),
        "feast": _version(),
    }


def _timed(call: Any, args: list[Any], warmup: int) -> list[float]:
    """Call ``call(arg)`` for each arg after ``warmup`` untimed calls; µs per call."""
    for arg in args[:warmup]:
        call(arg)
    out = []
    for arg in args:
        start = time.perf_counter_ns()
        call(arg)
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def _version() -> str:
    import feast

    return str(feast.__version__)


def _versions() -> dict[str, str]:
    """Feast's and the libraries' versions in this environment."""
    import platform
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for name in ("feast", "duckdb", "ibis-framework", "pandas", "pyarrow"):
        out[name] = version(name)
    return out


COMMANDS = {"setup": setup, "pit": pit, "online": online}


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in COMMANDS:
        raise SystemExit(f"usage: feast_bench.py {{{'|'.join(COMMANDS)}}} SPEC.json")
    warnings.simplefilter("ignore")  # Feast's deprecation chatter would bury the result
    result = COMMANDS[sys.argv[1]](json.loads(Path(sys.argv[2]).read_text()))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
