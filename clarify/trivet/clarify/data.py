"""Data for tests and docs that needs no download.

- :func:`berkeley_admissions`: the UC Berkeley 1973 graduate admissions, six departments
  × sex × admitted (Bickel, Hammel and O'Connell, Science 187:398, 1975; the R dataset
  ``datasets::UCBAdmissions``), expanded to one row per applicant. Aggregated, men were
  admitted far more often (44.5% against 30.4%); within departments the gap vanishes or
  reverses, because women applied more to the departments that rejected most: the
  classic Simpson's paradox, which CDDL conditioned on department shows.
- :func:`synthetic_credit`: a seeded credit-approval dataset with a known, injected bias
  in the labels and, separately, in the model's scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from trivet.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BERKELEY_1973", "berkeley_admissions", "berkeley_counts", "synthetic_credit"]

#: (department, admitted men, rejected men, admitted women, rejected women): 24 numbers.
BERKELEY_1973: tuple[tuple[str, int, int, int, int], ...] = (
    ("A", 512, 313, 89, 19),
    ("B", 353, 207, 17, 8),
    ("C", 120, 205, 202, 391),
    ("D", 138, 279, 131, 244),
    ("E", 53, 138, 94, 299),
    ("F", 22, 351, 24, 317),
)


def berkeley_counts() -> pd.DataFrame:
    """Return the 24 counts: columns department, sex, admitted (bool), applicants."""
    import pandas as pd

    rows = []
    for dept, men_yes, men_no, women_yes, women_no in BERKELEY_1973:
        rows += [
            (dept, "male", True, men_yes),
            (dept, "male", False, men_no),
            (dept, "female", True, women_yes),
            (dept, "female", False, women_no),
        ]
    return pd.DataFrame(rows, columns=["department", "sex", "admitted", "applicants"])


def berkeley_admissions() -> pd.DataFrame:
    """Return the 4,526 applicants, one row each: department, sex, admitted (bool).

    Rows are ordered by department, then sex (male first), then admitted first.
    """
    import pandas as pd

    counts = berkeley_counts()
    repeat = counts["applicants"].to_numpy()
    return pd.DataFrame(
        {
            "department": np.repeat(counts["department"].to_numpy(), repeat),
            "sex": np.repeat(counts["sex"].to_numpy(), repeat),
            "admitted": np.repeat(counts["admitted"].to_numpy(), repeat),
        }
    )


def synthetic_credit(
    n: int = 10_000,
    *,
    seed: int = 0,
    label_bias: float = 0.2,
    prediction_bias: float = 0.0,
    female_share: float = 0.4,
) -> pd.DataFrame:
    """Return a seeded credit-approval dataset with a known injected bias.

    The features (age, income, debt_ratio, years_employed, region) are drawn
    independently of sex, and an applicant's "fair" approval probability ``p`` depends
    on the features only. Then:

    - ``approved`` (the label) ~ Bernoulli(p), times ``1 - label_bias`` for women. So
      in expectation the label's disparate impact is ``1 - label_bias`` exactly (women's
      approval rate / men's), and DPL ≈ ``label_bias`` × men's approval rate.
    - ``score`` (the model's probability) is ``p`` plus noise, times
      ``1 - prediction_bias`` for women; ``predicted`` is ``score > 0.5``.

    Args:
        n: rows.
        seed: the random seed (same seed, same data).
        label_bias: the relative cut in women's approval probability, in [0, 1).
        prediction_bias: the relative cut in women's model score, in [0, 1).
        female_share: the share of women.

    Returns:
        A DataFrame with columns sex, age, income, debt_ratio, years_employed, region,
        approved (bool), score (float), predicted (bool), p_fair (float).
    """
    import pandas as pd

    for name, value in (("label_bias", label_bias), ("prediction_bias", prediction_bias)):
        if not 0.0 <= value < 1.0:
            raise ValidationError(f"{name} must lie in [0, 1), not {value!r}.")
    if not 0.0 < female_share < 1.0:
        raise ValidationError(f"female_share must lie in (0, 1), not {female_share!r}.")
    if n < 2:
        raise ValidationError(f"n must be at least 2, not {n!r}.")
    rng = np.random.default_rng(seed)
    female = rng.random(n) < female_share
    age = rng.uniform(18, 75, n)
    income = rng.lognormal(mean=10.5, sigma=0.5, size=n)
    debt_ratio = rng.beta(2, 5, n)
    years_employed = np.minimum(rng.exponential(6.0, n), age - 16)
    region = rng.choice(np.array(["north", "south", "east", "west"]), size=n)
    logit = (
        -0.5
        + 1.2 * (np.log(income) - 10.5)
        - 3.0 * (debt_ratio - 2 / 7)
        + 0.05 * (years_employed - 6.0)
        + 0.01 * (age - 46.5)
    )
    p_fair = 1.0 / (1.0 + np.exp(-logit))
    approved = rng.random(n) < p_fair * np.where(female, 1.0 - label_bias, 1.0)
    noisy = 1.0 / (1.0 + np.exp(-(logit + rng.normal(0.0, 0.5, n))))
    score = noisy * np.where(female, 1.0 - prediction_bias, 1.0)
    return pd.DataFrame(
        {
            "sex": np.where(female, "female", "male"),
            "age": age.round(1),
            "income": income.round(0),
            "debt_ratio": debt_ratio.round(3),
            "years_employed": years_employed.round(1),
            "region": region,
            "approved": approved,
            "score": score,
            "predicted": score > 0.5,
            "p_fair": p_fair,
        }
    )
