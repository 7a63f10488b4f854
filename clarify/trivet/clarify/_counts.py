"""The count table: one vectorised pass from which every metric but FT follows.

``CountTable.build`` counts rows over facet cell × label value × predicted outcome (0/1)
× group-variable value with a single ``numpy.bincount`` on a combined integer code.
``CountTable.tables`` then folds it, for every comparison (group d against the rest a)
at once, into :class:`Tables`: a binary table ``side × label × predicted × group`` and
the label-value distribution ``side × label value``, with any leading batch axes (the
comparisons, and the bootstrap resamples). A row-level bootstrap is exactly a
multinomial draw over the cells of the count table, so ``resample`` costs the number of
cells, not the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from trivet.clarify._encode import Encoded

FloatArray = npt.NDArray[np.float64]

A, D = 0, 1  # the side axis: facet a (the rest) and facet d (the group)


@dataclass(frozen=True, kw_only=True, eq=False)
class Tables:
    """Counts per comparison, as floats, with any leading batch axes.

    Attributes:
        binary: shape ``(..., 2 side [a, d], 2 label [0, 1], 2 predicted [0, 1], V)``.
        values: shape ``(..., 2 side, K)``: the label distribution the divergences
            compare: the two classes (K = 2) or every label value.
        has_group: whether a group variable was given (V is 1 otherwise).
        smoothing: the pseudo-count the default-mode divergences add to every value.
    """

    binary: FloatArray
    values: FloatArray
    has_group: bool
    smoothing: float = 0.0

    def pick(self, index: int) -> Tables:
        """Return the tables of one comparison (the first batch axis)."""
        return Tables(
            binary=self.binary[index],
            values=self.values[index],
            has_group=self.has_group,
            smoothing=self.smoothing,
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class CountTable:
    """Counts over (facet cell G, label value K, predicted P=2, group variable V)."""

    counts: npt.NDArray[np.int64]
    positive: npt.NDArray[np.bool_]
    membership: FloatArray  # (C, G): 1 where the cell belongs to comparison c's group d
    has_group: bool

    @classmethod
    def build(cls, enc: Encoded) -> CountTable:
        """Count the encoded rows in one pass."""
        g = enc.facet.codes
        n_g = len(enc.facet.names)
        n_k = len(enc.label_names)
        n_v = max(len(enc.group_names), 1)
        code = g * n_k + enc.label_codes
        code = code * 2 + (enc.predicted if enc.predicted is not None else 0)
        if enc.group_codes is not None:
            code = code * n_v + enc.group_codes
        flat = np.bincount(code, minlength=n_g * n_k * 2 * n_v)
        membership = np.zeros((len(enc.facet.comparisons), n_g))
        for c, (_, cells) in enumerate(enc.facet.comparisons):
            membership[c, list(cells)] = 1.0
        return cls(
            counts=flat.reshape(n_g, n_k, 2, n_v).astype(np.int64),
            positive=enc.label_positive,
            membership=membership,
            has_group=enc.group_codes is not None,
        )

    @property
    def total(self) -> int:
        """The number of rows counted."""
        return int(self.counts.sum())

    def tables(
        self,
        counts: npt.NDArray[np.int64] | None = None,
        *,
        distribution: Literal["binary", "values"] = "binary",
        smoothing: float = 0.0,
    ) -> Tables:
        """Fold ``counts`` (default: the table's own; may carry leading batch axes).

        ``distribution`` picks the label distribution of the divergences: the two
        classes (smclarify's report) or every label value (Clarify's multicategory).
        """
        full = (self.counts if counts is None else counts).astype(np.float64)
        # d per comparison: (..., C, K, P, V); a = all rows minus d.
        d = np.einsum("cg,...gkpv->...ckpv", self.membership, full)
        a = full.sum(axis=-4)[..., None, :, :, :] - d
        sides = np.stack([a, d], axis=-4)  # (..., C, 2, K, P, V)
        pos = self.positive
        binary = np.stack(
            [sides[..., ~pos, :, :].sum(axis=-3), sides[..., pos, :, :].sum(axis=-3)], axis=-3
        )
        # the divergences' distribution: the two classes, or every label value
        values = (binary if distribution == "binary" else sides).sum(axis=(-2, -1))
        return Tables(binary=binary, values=values, has_group=self.has_group, smoothing=smoothing)

    def resample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.int64]:
        """Draw ``size`` row-level bootstrap resamples of the table, exactly, as counts."""
        flat = self.counts.reshape(-1)
        n = int(flat.sum())
        draws = rng.multinomial(n, flat / n, size=size)
        return np.asarray(draws, dtype=np.int64).reshape((size, *self.counts.shape))
