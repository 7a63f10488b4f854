"""Time the peers on the benchmark data; run in each peer's own environment.

    /tmp/fairlearn-env/bin/python bench/clarify/peers.py fairlearn DATA.npz
    /tmp/smclarify-env/bin/python bench/clarify/peers.py smclarify DATA.npz

DATA.npz is written by bench/clarify/metrics.py. Prints one JSON object: task -> seconds
(wall clock, one run each: the peers are slow enough that one run is representative).
This file imports no trivet code, so it runs beside any numpy/pandas version.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def load(path: str) -> pd.DataFrame:
    data = np.load(path)
    return pd.DataFrame({name: data[name] for name in data.files})


def fairlearn(df: pd.DataFrame) -> dict[str, float]:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        selection_rate,
        true_negative_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score

    y, yhat = df["approved"].to_numpy(), df["predicted"].to_numpy()
    out = {}
    for name, sensitive in (
        ("categorical", np.where(df["female"].to_numpy(), "female", "male")),
        ("threshold", df["age"].to_numpy() > 40),
    ):

        def run(sensitive: Any = sensitive) -> None:
            # DPPL, DI, RD, SD, AD, DAR: the Clarify metrics fairlearn has.
            demographic_parity_difference(y, yhat, sensitive_features=sensitive)
            demographic_parity_ratio(y, yhat, sensitive_features=sensitive)
            MetricFrame(
                metrics={
                    "selection_rate": selection_rate,
                    "recall": true_positive_rate,
                    "specificity": true_negative_rate,
                    "accuracy": accuracy_score,
                    "precision": precision_score,
                },
                y_true=y,
                y_pred=yhat,
                sensitive_features=sensitive,
            ).difference()

        out[f"fairlearn 6 metrics, {name} facet"] = timed(run)
    return out


def smclarify(df: pd.DataFrame) -> dict[str, float]:
    from smclarify.bias import report as sm

    logging.disable(logging.CRITICAL)
    frame = pd.DataFrame(
        {
            "sex": pd.Categorical(np.where(df["female"], "female", "male")),
            "age": df["age"].astype(float),
            "approved": pd.Categorical(np.where(df["approved"], "yes", "no")),
            "predicted": pd.Categorical(np.where(df["predicted"], "yes", "no")),
        }
    )
    features = ["age", "income", "debt_ratio", "years_employed"]
    group = pd.Series(df["region"])
    label = sm.LabelColumn("approved", frame["approved"], ["yes"])
    predicted = sm.LabelColumn("predicted", frame["predicted"], ["yes"])
    out = {}
    everything_but_ft = [
        "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "AD", "RD", "SD", "TE", "GE",
    ]  # fmt: skip
    for name, facet, columns in (
        ("categorical", sm.FacetColumn("sex", ["female"]), ["sex", "approved", "predicted"]),
        ("threshold", sm.FacetColumn("age", [40]), ["age", "approved", "predicted"]),
    ):
        data = frame[columns]

        def run(data: pd.DataFrame = data, facet: Any = facet) -> None:
            sm.bias_report(data, facet, label, sm.StageType.PRE_TRAINING, group_variable=group)
            sm.bias_report(
                data,
                facet,
                label,
                sm.StageType.POST_TRAINING,
                predicted,
                metrics=everything_but_ft,
                group_variable=group,
            )

        out[f"smclarify all but FT, {name} facet"] = timed(run)
    ft_data = pd.concat([frame[["sex", "approved", "predicted"]], df[features]], axis=1)
    out["smclarify FT"] = timed(
        lambda: sm.bias_report(
            ft_data,
            sm.FacetColumn("sex", ["female"]),
            label,
            sm.StageType.POST_TRAINING,
            predicted,
            metrics=["FT"],
        )
    )
    return out


if __name__ == "__main__":
    peer, path = sys.argv[1], sys.argv[2]
    results = {"fairlearn": fairlearn, "smclarify": smclarify}[peer](load(path))
    print(json.dumps(results))
