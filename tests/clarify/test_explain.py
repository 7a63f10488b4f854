"""Explanations: the driving feature ranks first, explainers agree, SHAP is additive."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trivet.clarify._explain import Explanation, explain
from trivet.errors import ValidationError


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    """300 rows; the label is driven by ``income`` (and a little by ``age``)."""
    rng = np.random.default_rng(0)
    n = 300
    x = pd.DataFrame(
        {
            "age": rng.normal(size=n),
            "income": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "flag": rng.integers(0, 2, size=n),
        }
    )
    y = pd.Series((2.0 * x["income"] + 0.4 * x["age"] + 0.3 * rng.normal(size=n)) > 0)
    return x, y


@pytest.fixture(scope="module")
def forest(data: tuple[pd.DataFrame, pd.Series]) -> object:
    from sklearn.ensemble import RandomForestClassifier

    x, y = data
    return RandomForestClassifier(n_estimators=25, max_depth=5, random_state=0).fit(x, y)


@pytest.fixture(scope="module")
def logistic(data: tuple[pd.DataFrame, pd.Series]) -> object:
    from sklearn.linear_model import LogisticRegression

    x, y = data
    return LogisticRegression().fit(x, y)


def test_tree_explainer_ranks_the_driving_feature_first_and_is_additive(
    data: tuple[pd.DataFrame, pd.Series], forest: object
) -> None:
    x, _ = data
    result = explain(forest, x, rows=[0, 7, 42], sample=80, top_k=2, grid_resolution=8)
    assert result.method == "tree"
    assert result.output == "probability of class True"
    assert result.ranking[0] == "income"
    assert result.ranking.index("age") < result.ranking.index("noise")
    top = result.importance[0]
    assert top.mean_abs > 3 * result.importance_of("noise").mean_abs
    assert top.mean_square >= top.mean_abs**2 - 1e-12  # E[X²] >= E[|X|]²
    # additivity: base value + sum of SHAP = the model's probability, row by row
    proba = forest.predict_proba(x.iloc[[0, 7, 42]])[:, 1]  # type: ignore[attr-defined]
    for local, p in zip(result.local, proba, strict=True):
        assert local.prediction == pytest.approx(p, abs=1e-9)
        assert local.base_value + sum(local.values.values()) == pytest.approx(p, abs=1e-6)
    assert [loc.row for loc in result.local] == [0, 7, 42]
    assert result.local[0].top(1)[0][0] in result.features
    # partial dependence: top-2 features, increasing in income
    assert [p.feature for p in result.partial_dependence] == list(result.ranking[:2])
    income = result.partial_dependence[0]
    assert income.data_type == "numerical" and len(income.grid) == 8
    assert income.predictions[-1] > income.predictions[0] + 0.3


def test_tree_and_kernel_agree_on_the_ranking(
    data: tuple[pd.DataFrame, pd.Series], forest: object
) -> None:
    x, _ = data
    tree = explain(forest, x, sample=40, top_k=0)
    kernel = explain(forest, x, explainer="kernel", sample=40, num_samples=120, top_k=0)
    assert kernel.method == "kernel" and kernel.baseline_size == 10
    assert tree.ranking[:2] == kernel.ranking[:2] == ("income", "age")
    # the same quantity (probability), so the magnitudes are close too
    assert kernel.importance_of("income").mean_abs == pytest.approx(
        tree.importance_of("income").mean_abs, rel=0.25
    )


def test_kernel_for_a_linear_model_and_a_callable(
    data: tuple[pd.DataFrame, pd.Series], logistic: object
) -> None:
    x, _ = data
    est = explain(logistic, x, sample=20, num_samples=100, rows=[3], top_k=1)
    assert est.method == "kernel" and est.ranking[0] == "income"
    local = est.local[0]
    # kernel SHAP is additive against its (k-means) baseline expectation too
    assert local.base_value + sum(local.values.values()) == pytest.approx(
        local.prediction, abs=1e-6
    )
    matrix = x.to_numpy()

    def score(a: np.ndarray) -> np.ndarray:
        return logistic.predict_proba(  # type: ignore[attr-defined, no-any-return]
            pd.DataFrame(a, columns=x.columns)
        )

    func = explain(score, matrix, features=list(x.columns), sample=20, num_samples=100, top_k=0)
    assert func.output == "model output" and func.ranking[0] == "income"
    assert func.features == tuple(x.columns)


def test_permutation_explainer_runs(data: tuple[pd.DataFrame, pd.Series], logistic: object) -> None:
    x, _ = data
    result = explain(logistic, x, explainer="permutation", sample=10, baseline_size=5, top_k=0)
    assert result.method == "permutation" and result.ranking[0] == "income"


def test_flag_gets_a_categorical_grid(data: tuple[pd.DataFrame, pd.Series], forest: object) -> None:
    x, _ = data
    result = explain(forest, x, sample=30, pdp_features=["flag"], grid_resolution=5)
    (flag,) = result.partial_dependence
    assert flag.data_type == "categorical" and flag.grid == (0.0, 1.0)


def test_to_dict_is_json_shaped_like_clarify(
    data: tuple[pd.DataFrame, pd.Series], forest: object
) -> None:
    x, _ = data
    result = explain(forest, x, sample=30, rows=[1], top_k=1, grid_resolution=4)
    data_ = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    label0 = data_["tree_shap"]["label0"]
    assert set(label0["global_shap_values"]) == set(x.columns)
    assert label0["expected_value"] == pytest.approx(result.base_value)
    assert label0["global_shap_statistics"]["income"]["median_abs"] >= 0
    assert label0["local_shap_values"][0]["row"] == 1
    (pdp,) = data_["pdp"]
    assert pdp["feature_name"] == "income" and len(pdp["model_predictions"][0]) == 4
    assert isinstance(result, Explanation)


def test_class_target_chooses_the_probability_column(
    data: tuple[pd.DataFrame, pd.Series], forest: object
) -> None:
    x, _ = data
    neg = explain(forest, x, target=False, sample=20, rows=[0], top_k=0)
    pos = explain(forest, x, target=True, sample=20, rows=[0], top_k=0)
    assert neg.output == "probability of class False"
    assert neg.local[0].prediction == pytest.approx(1 - pos.local[0].prediction)
    with pytest.raises(ValidationError, match="no class 'yes'"):
        explain(forest, x, target="yes", sample=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"explainer": "tree"}, "does not apply to a LogisticRegression"),
        ({"explainer": "deep"}, "explainer must be"),
        ({"rows": [300]}, "Row 300 is out of range"),
        ({"pdp_features": ["incme"]}, "did you mean 'income'"),
        ({"features": ["salary"]}, "No feature column 'salary'"),
        ({"grid_resolution": 1}, "grid_resolution must be an integer >= 2"),
        ({"sample": 0}, "sample must be at least 1"),
    ],
)
def test_bad_arguments(
    data: tuple[pd.DataFrame, pd.Series], logistic: object, kwargs: dict[str, object], message: str
) -> None:
    x, _ = data
    with pytest.raises(ValidationError, match=message):
        explain(logistic, x, **kwargs)  # type: ignore[arg-type]


def test_bad_data() -> None:
    with pytest.raises(ValidationError, match="not numeric: 'sex'"):
        explain(lambda a: a[:, 0], pd.DataFrame({"sex": ["f", "m"], "age": [1, 2]}))
    with pytest.raises(ValidationError, match="missing values"):
        explain(lambda a: a[:, 0], np.array([[1.0, np.nan]]))
    with pytest.raises(ValidationError, match="no predict_proba or predict"):
        explain(object(), np.ones((3, 2)))


def test_an_unfitted_model_is_a_clear_error() -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from trivet.clarify import explain
    from trivet.errors import ValidationError

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 0.0, 1.0]})
    with pytest.raises(ValidationError, match="never fitted"):
        explain(LogisticRegression(), frame)
