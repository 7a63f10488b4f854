"""Feature and group definitions, their checks, JSON form and inference from data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle

import pandas as pd
import pyarrow as pa
import pytest

from trivet.errors import ValidationError
from trivet.featurestore import (
    Dtype,
    Feature,
    FeatureGroupNotFound,
    FeatureGroupSpec,
    IngestValidationError,
    RowProblem,
    infer_spec,
)

from .conftest import customers_spec


def test_dtypes_parse_and_map_to_arrow() -> None:
    assert Dtype.parse("list[int]") is Dtype.LIST_INT
    assert Dtype.parse("LIST<Float>") is Dtype.LIST_FLOAT
    assert Dtype.parse("double") is Dtype.FLOAT
    assert Dtype.LIST_TIMESTAMP.element is Dtype.TIMESTAMP
    assert Dtype.TIMESTAMP.arrow() == pa.timestamp("us", tz="UTC")
    assert Dtype.LIST_STRING.arrow() == pa.list_(pa.string())
    with pytest.raises(ValidationError, match="not a feature type") as err:
        Dtype.parse("flaot")
    assert "float" in str(err.value.hint)


@pytest.mark.parametrize("bad", ["Age", "1st", "with space", "a-b", "", "x" * 65])
def test_bad_feature_names(bad: str) -> None:
    with pytest.raises(ValidationError, match="not valid"):
        Feature(name=bad, dtype="int")


def test_reserved_names_and_parameters() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Feature(name="__batch", dtype="string")
    with pytest.raises(ValidationError, match="string pair"):
        Feature(name="x", dtype="int", parameters={"unit": 3})  # type: ignore[dict-item]
    feat = Feature(name="x", dtype="int", parameters={"unit": "cm"})
    with pytest.raises(TypeError):
        feat.parameters["unit"] = "m"  # type: ignore[index]


def test_spec_checks() -> None:
    with pytest.raises(ValidationError, match="appears twice"):
        customers_spec(features=[Feature(name="ts", dtype="float")])
    with pytest.raises(ValidationError, match="string or an int"):
        customers_spec(record_id_dtype="float")
    with pytest.raises(ValidationError, match="ttl"):
        customers_spec(ttl=dt.timedelta(0))
    with pytest.raises(ValidationError, match="neither online nor offline"):
        customers_spec(online=False, offline=False)
    with pytest.raises(ValidationError, match="feature group name"):
        customers_spec(name="Customers")


def test_spec_round_trips_through_json() -> None:
    spec = customers_spec(ttl=dt.timedelta(days=2), record_id_dtype="int")
    again = FeatureGroupSpec.from_dict(spec.to_dict())
    assert again == spec
    with pytest.raises(ValidationError, match="unknown keys") as err:
        FeatureGroupSpec.from_dict({**spec.to_dict(), "ttl": 3})
    assert "ttl_seconds" in str(err.value.hint)


def test_infer_spec_types_every_column() -> None:
    df = pd.DataFrame(
        {
            "id": pd.Series([1, 2], dtype="int64"),
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
            "n": pd.Series([1, None], dtype="Int64"),
            "x": [1.5, None],
            "s": ["a", None],
            "b": [True, False],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
            "l": [[1.0, 2.0], []],
        }
    )
    spec = infer_spec(df, name="g", record_id="id", event_time="ts", tags=["t"])
    assert spec.record_id_dtype is Dtype.INT
    assert [(f.name, f.dtype.value) for f in spec.features] == [
        ("n", "int"),
        ("x", "float"),
        ("s", "string"),
        ("b", "bool"),
        ("when", "timestamp"),
        ("l", "list<float>"),
    ]
    assert spec.tags == ("t",)
    from_arrow = infer_spec(pa.Table.from_pandas(df), name="g", record_id="id", event_time="ts")
    assert from_arrow == dataclasses.replace(spec, tags=())


def test_infer_spec_refuses_what_it_cannot_type() -> None:
    ts = pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True)
    mixed = pd.DataFrame({"id": ["a", "b"], "ts": ts, "m": [1, "x"]})
    with pytest.raises(ValidationError, match="'m' cannot be typed") as err:
        infer_spec(mixed, name="g", record_id="id", event_time="ts")
    assert "astype" in str(err.value.hint)
    with pytest.raises(ValidationError, match="not in the data") as err:
        infer_spec(mixed, name="g", record_id="idd", event_time="ts")
    assert "'id'" in str(err.value.hint)
    with pytest.raises(ValidationError, match="not timestamps"):
        infer_spec(
            pd.DataFrame({"id": ["a"], "ts": [1.0]}), name="g", record_id="id", event_time="ts"
        )
    with pytest.raises(ValidationError, match="'Bad Name' is not valid"):
        infer_spec(
            pd.DataFrame({"id": ["a"], "ts": ts[:1], "Bad Name": [1]}),
            name="g",
            record_id="id",
            event_time="ts",
        )


def test_errors_pickle_with_their_problems() -> None:
    problems = [RowProblem(row=i, column="x", reason="bad") for i in range(25)]
    err = IngestValidationError("g", problems)
    assert "25 problems in 25 rows" in str(err) and "and 5 more" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is IngestValidationError and again.problems == problems
    nf = pickle.loads(pickle.dumps(FeatureGroupNotFound("custs", known=["customers"])))
    assert "did you mean 'customers'" in str(nf)
