"""Bad configurations raise ValidationError naming the problem and proposing the fix."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

import trivet
from trivet.clarify import (
    Bootstrap,
    Clarify,
    Facet,
    Intersection,
    Label,
    Prediction,
    posttraining_bias,
    pretraining_bias,
)
from trivet.errors import PermissionDenied, ValidationError

LABEL = Label("approved", positive=1)
SEX = Facet("sex", values="f")


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": ["f", "m", "f", "m", "m", "f"],
            "age": [25.0, 35.0, 45.0, 55.0, 65.0, 30.0],
            "approved": [1, 0, 1, 1, 0, 0],
            "predicted": [1, 0, 0, 1, 1, 0],
            "city": ["x", "y", "x", "y", "x", "y"],
        }
    )


def raises(match: str) -> Any:
    return pytest.raises(ValidationError, match=match)


def test_unknown_column_suggests_the_close_one(df: pd.DataFrame) -> None:
    with raises("label column 'aproved' is not in the data.*did you mean 'approved'"):
        pretraining_bias(df, label=Label("aproved", positive=1), facet=SEX)
    with raises("facet column 'sx'.*did you mean 'sex'"):
        pretraining_bias(df, label=LABEL, facet=Facet("sx", values="f"))
    with raises("group variable column 'cty'"):
        pretraining_bias(df, label=LABEL, facet=SEX, group_variable="cty")
    with raises("prediction column 'predictd'"):
        posttraining_bias(df, label=LABEL, facet=SEX, prediction=Prediction("predictd"))


def test_facet_value_absent(df: pd.DataFrame) -> None:
    with raises(r"facet value 'F' does not occur in column 'sex'.*did you mean 'f'"):
        pretraining_bias(df, label=LABEL, facet=Facet("sex", values="F"))
    with raises("positive label value 'yes' does not occur"):
        pretraining_bias(df, label=Label("approved", positive="yes"), facet=SEX)


def test_empty_groups(df: pd.DataFrame) -> None:
    with raises("facet group 'age > 90' is empty.*threshold inside"):
        pretraining_bias(df, label=LABEL, facet=Facet("age", threshold=90))
    with raises("holds every row.*group a"):
        pretraining_bias(df, label=LABEL, facet=Facet("sex", values=("f", "m")))
    with raises("numeric"):
        pretraining_bias(df, label=LABEL, facet=Facet("sex", threshold=1))


def test_one_class_label_and_no_positive_predictions(df: pd.DataFrame) -> None:
    with raises("one class only: every row is positive"):
        pretraining_bias(df.assign(approved=1), label=LABEL, facet=SEX)
    with raises("one class only: every row is negative"):
        pretraining_bias(df, label=Label("age", threshold=80), facet=SEX)
    with raises("positive label value 1 does not occur"):
        pretraining_bias(df.assign(approved=0), label=LABEL, facet=SEX)
    with raises("no positive predictions"):
        posttraining_bias(
            df.assign(predicted=0), label=LABEL, facet=SEX, prediction=Prediction("predicted")
        )
    with raises("no positive predictions"):
        posttraining_bias(df, label=LABEL, facet=SEX, prediction=Prediction("age", threshold=100))


def test_missing_values_policies(df: pd.DataFrame) -> None:
    holes = df.astype({"sex": object}).copy()
    holes.loc[0, "sex"] = None
    holes.loc[1, "approved"] = np.nan
    with raises(r"Missing values in 'approved' \(1\), 'sex' \(1\).*missing='drop'"):
        pretraining_bias(holes, label=LABEL, facet=SEX)
    dropped = pretraining_bias(holes, label=LABEL, facet=SEX, missing="drop", min_group_size=0)
    assert dropped.rows == 4 and dropped.dropped_rows == 2
    assert dict(dropped.missing) == {"approved": 1, "sex": 1}
    grouped = pretraining_bias(holes, label=LABEL, facet=Facet("sex"), missing="group")
    assert [g.name for g in grouped.groups] == ["f", "m", "<missing>"]
    assert grouped.rows == 5 and grouped.dropped_rows == 1  # the row without a label
    with raises("missing must be"):
        pretraining_bias(df, label=LABEL, facet=SEX, missing="ignore")  # type: ignore[arg-type]


def test_bad_rules_and_options(df: pd.DataFrame) -> None:
    with raises("positive values or a threshold, not both"):
        Label("approved", positive=1, threshold=0.5)
    with raises("needs positive values or a threshold"):
        Label("approved")
    with raises("op must be"):
        Facet("age", threshold=3, op="<")  # type: ignore[arg-type]
    with raises("at least two facets"):
        Intersection(Facet("sex"))
    with raises("names a column twice"):
        Intersection(Facet("sex"), Facet("sex", values="f"))
    with raises("Unknown bias metric 'DPLL'.*did you mean 'DPL'"):
        pretraining_bias(df, label=LABEL, facet=SEX, metrics=["DPLL"])
    with raises("DI is a post-training metric"):
        pretraining_bias(df, label=LABEL, facet=SEX, metrics=["DI"])
    with raises("mode must be"):
        pretraining_bias(df, label=LABEL, facet=SEX, mode="strict")  # type: ignore[arg-type]
    with raises("at least 2 resamples"):
        Bootstrap(1)
    with raises("bootstrap must be"):
        pretraining_bias(df, label=LABEL, facet=SEX, bootstrap=True)
    with raises("divergence_smoothing applies to mode='default' only"):
        pretraining_bias(
            df, label=LABEL, facet=SEX, mode="clarify_compatible", divergence_smoothing=0.5
        )
    with raises("not numeric: 'city'"):
        posttraining_bias(
            df, label=LABEL, facet=SEX, prediction=Prediction("predicted"), features=["city"]
        )


def test_ft_without_numeric_features_is_none_with_a_reason(df: pd.DataFrame) -> None:
    report = posttraining_bias(
        df, label=LABEL, facet=SEX, prediction=Prediction("predicted"), metrics=["FT", "DI"]
    )
    ft = report.get("FT")
    assert ft.value is None and "not numeric: 'city'" in str(ft.reason)
    assert report.value("DI") is not None


def test_errors_pickle_and_carry_hints(df: pd.DataFrame) -> None:
    with pytest.raises(ValidationError) as info:
        pretraining_bias(df, label=LABEL, facet=Facet("sex", values="F"))
    again = pickle.loads(pickle.dumps(info.value))
    assert again.hint == info.value.hint and again.hint


def test_results_are_frozen_and_json_able(df: pd.DataFrame) -> None:
    import dataclasses
    import json

    report = posttraining_bias(
        df,
        label=LABEL,
        facet=Facet("sex"),
        prediction=Prediction("predicted"),
        mode="clarify_compatible",
        min_group_size=0,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.rows = 3  # type: ignore[misc]
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert '"value_or_threshold": "f"' in text
    frame = report.to_frame()
    assert list(frame.columns) == ["group", "metric", "stage", "value", "lower", "upper", "reason"]
    assert len(frame) == 2 * 13


def test_session_checks_clarify_run(tmp_path: object, df: pd.DataFrame) -> None:
    from pathlib import Path

    settings = trivet.init(Path(str(tmp_path)) / "ws")
    admin = trivet.connect(settings.workspace)
    try:
        report = Clarify(admin).bias(df, label=LABEL, facet=SEX, prediction=Prediction("predicted"))
        assert report.stages == ("pre_training", "post_training")
        assert "DPL" in report.metrics and "DI" in report.metrics
        admin.identity.create_user("bob")
        bob = trivet.connect(settings.workspace, admin.identity.create_token("bob").secret)
        with pytest.raises(PermissionDenied, match="clarify:run"):
            Clarify(bob).bias(df, label=LABEL, facet=SEX)
        bob.close()
    finally:
        admin.close()


def test_loose_strings_get_a_clear_error_and_a_prediction_column_name_works() -> None:
    import pandas as pd

    from trivet.clarify import Facet, Label, posttraining_bias, pretraining_bias
    from trivet.errors import ValidationError

    df = pd.DataFrame(
        {
            "y": [1, 0, 1, 0, 1, 0] * 10,
            "s": ["a", "a", "b", "b", "a", "b"] * 10,
            "p": [1, 0, 0, 0, 1, 1] * 10,
        }
    )
    with pytest.raises(ValidationError, match="which values count as positive"):
        pretraining_bias(df, label="y", facet=Facet("s", values=["a"]))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="facet must be a Facet"):
        pretraining_bias(df, label=Label("y", positive=[1]), facet="s")  # type: ignore[arg-type]
    report = posttraining_bias(
        df, label=Label("y", positive=[1]), facet=Facet("s", values=["a"]), prediction="p"
    )
    assert report.value("DPPL", "a") is not None
