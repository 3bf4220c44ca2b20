"""Small statistics shared by the metrics (pure)."""

from __future__ import annotations

import numpy as np

# scipy.stats is imported in the two functions that use it: at the top it would cost every
# process that imports the metrics (each web worker does, through the admin) about 65 MiB and
# half a second at start; only the processes that compute metrics need it.

# Relative slack when comparing a rate with a threshold: 13/20 - 0.5 is 0.15000000000000002.
EPS = 1e-9


def wilson_interval(successes: int, n: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion; None without data."""
    if n <= 0:
        return None
    from scipy import stats

    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(ci.low), float(ci.high))


def binom_p(k: int, n: int) -> float | None:
    if n <= 0:
        return None
    from scipy import stats

    return float(stats.binomtest(k, n, 0.5).pvalue)


def ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def value_counts(unit: np.ndarray, values: np.ndarray, n_units: int, n_values: int) -> np.ndarray:
    """Units x values matrix: how many judgments of each unit took each value."""
    flat = np.bincount(unit * n_values + values, minlength=n_units * n_values)
    return flat.reshape(n_units, n_values)
