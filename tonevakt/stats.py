"""Small statistics shared by the stages (numpy only: scipy is not a dependency).

- `ranks`: ranks with ties averaged (1-based), as Spearman needs them;
- `spearman`: Spearman's rank correlation with a 95 % interval from Fisher's z transform;
- `percentile_interval`: the 95 % percentile interval of bootstrap replicates;
- `mean_interval`: a week's mean tone and its 95 % interval, the reference for the SQL views (migrations 0002,
  0003, 0008: `avg ± 1.96 · stddev_samp / √n`) and the dashboard's script, which tests hold to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the 97.5 % quantile of the standard normal: 95 % two-sided intervals


@dataclass(frozen=True)
class Correlation:
    """A rank correlation with its 95 % interval (None when n is too small for one)."""

    rho: float | None
    n: int
    ci_low: float | None
    ci_high: float | None


def ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    out = np.empty(len(x), dtype=np.float64)
    # Runs of equal values: each run gets the mean of its positions (1-based).
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends, strict=True):
        out[order[s:e]] = (s + 1 + e) / 2.0
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Spearman's rho (Pearson's correlation of the ranks, ties averaged) with a 95 % interval by Fisher's z
    (standard error 1.06 / sqrt(n - 3), Fieller et al. 1957). rho is None when fewer than 3 pairs or either
    side is constant; the interval is None when n < 4."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    n = len(x)
    if n < 3:
        return Correlation(None, n, None, None)
    rx, ry = ranks(x), ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0.0:
        return Correlation(None, n, None, None)
    rho = float(np.clip(float(rx @ ry) / denom, -1.0, 1.0))
    if n < 4 or abs(rho) >= 1.0:
        return Correlation(rho, n, None if n < 4 else rho, None if n < 4 else rho)
    z = math.atanh(rho)
    half = Z95 * 1.06 / math.sqrt(n - 3)
    return Correlation(rho, n, math.tanh(z - half), math.tanh(z + half))


def percentile_interval(replicates: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 2.5 % and 97.5 % percentiles of bootstrap replicates along `axis`."""
    low, high = np.percentile(replicates, [2.5, 97.5], axis=axis)
    return low, high


MEAN_Z = (
    1.96  # the z the weekly views and the dashboard use for a mean's 95 % interval (rounded, as in the SQL)
)


def mean_interval(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high): the mean ± 1.96 × sample standard deviation / √n; no interval below two values."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = float(np.mean(values))
    if n < 2:
        return mean, None, None
    half = MEAN_Z * float(np.std(values, ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half
