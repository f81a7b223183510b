"""The tests behind an automatic Check: is period (or group) ``b`` different from ``a``?

Every function returns a :class:`Comparison` of ``b − a`` (in the KPI's unit:
percentage points for proportions, NPS points, scores, seconds ...), its 95 %
confidence interval and a two-sided p-value.

* Proportions (CSAT %, CES % easy, FCR, SLA breach rate, reopen rate, response
  rate): :func:`two_proportion_test`, the two-proportion z-test.
* NPS: :func:`nps_bootstrap`, a parametric bootstrap from the two multinomials
  of promoter / passive / detractor counts (the counts come from SQL).
* Averages, medians, P90s (CSAT and CES averages, contacts per ticket, response
  and resolution times): :func:`mann_whitney_bootstrap`, Mann–Whitney U for the
  p-value and a bootstrap of the statistic's difference for the interval.

Bootstraps are seeded (``seed``), so the same data always gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from analysis.metrics.definitions import Z95

if TYPE_CHECKING:  # numpy and scipy load on first use, not when the app starts
    import numpy as np

#: Resamples drawn by the bootstraps.
BOOTSTRAP_RESAMPLES = 2000
DEFAULT_SEED = 20261130


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``difference`` = b − a, ``ci`` its 95 % interval, ``p_value`` two-sided, ``test`` a name."""

    difference: float
    ci: tuple[float, float]
    p_value: float
    test: str


def two_proportion_test(x_a: int, n_a: int, x_b: int, n_b: int) -> Comparison:
    """Two-proportion z-test of p_b − p_a, in percentage points.

    p̂ = x / n; pooled p = (x_a + x_b) / (n_a + n_b);
    z = (p̂_b − p̂_a) / √(p(1−p)(1/n_a + 1/n_b)); p-value = 2·(1 − Φ(|z|)) = erfc(|z|/√2).
    The interval is the unpooled (Wald) one:
    (p̂_b − p̂_a) ± 1.96·√(p̂_a(1−p̂_a)/n_a + p̂_b(1−p̂_b)/n_b).
    When the pooled p is 0 or 1 (all answers equal in both groups) the
    difference is 0 and the p-value 1. Refuses (ValueError) an empty group.
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both groups need at least one observation")
    p_a, p_b = x_a / n_a, x_b / n_b
    pooled = (x_a + x_b) / (n_a + n_b)
    difference = p_b - p_a
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    p_value = 1.0 if se_pooled == 0 else math.erfc(abs(difference / se_pooled) / math.sqrt(2))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    ci = ((difference - Z95 * se) * 100, (difference + Z95 * se) * 100)
    return Comparison(difference * 100, ci, p_value, "two-proportion z-test")


def _bootstrap_p(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value: 2 · min(P*(d ≤ 0), P*(d ≥ 0)), at most 1."""
    import numpy as np

    below = float(np.mean(differences <= 0))
    above = float(np.mean(differences >= 0))
    return min(1.0, 2 * min(below, above))


def nps_bootstrap(
    a: tuple[int, int, int],
    b: tuple[int, int, int],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """NPS_b − NPS_a from (promoters, passives, detractors) counts, by parametric bootstrap.

    Each resample draws n_a answers from Multinomial(n_a; the observed shares of
    a) and n_b from those of b, and takes 100·(P − D)/n of each. The interval
    is the 2.5th–97.5th percentile of the resampled differences; the p-value is
    2·min(share of differences ≤ 0, share ≥ 0). Seeded: reproducible.
    """
    import numpy as np

    n_a, n_b = sum(a), sum(b)
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both groups need at least one NPS answer")
    rng = np.random.default_rng(seed)

    def scores(counts: tuple[int, int, int], n: int) -> np.ndarray:
        drawn = rng.multinomial(n, np.array(counts, dtype=float) / n, size=resamples)
        return (drawn[:, 0] - drawn[:, 2]) / n * 100

    differences = scores(b, n_b) - scores(a, n_a)
    observed = (b[0] - b[2]) / n_b * 100 - (a[0] - a[2]) / n_a * 100
    low, high = np.percentile(differences, [2.5, 97.5])
    return Comparison(observed, (float(low), float(high)), _bootstrap_p(differences), "bootstrap")


def mann_whitney_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    statistic: Callable[[np.ndarray], float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """statistic(b) − statistic(a) for per-row values (scores, contacts, seconds).

    p-value: two-sided Mann–Whitney U (normal approximation with tie correction
    and continuity correction, ``scipy.stats.mannwhitneyu(method="asymptotic")``).
    Interval: percentile bootstrap of the difference, resampling each group
    with replacement, seeded.
    """
    import numpy as np
    from scipy import stats

    if not len(a) or not len(b):
        raise ValueError("both groups need at least one observation")
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for i in range(resamples):
        differences[i] = statistic(rng.choice(xb, xb.size)) - statistic(rng.choice(xa, xa.size))
    low, high = np.percentile(differences, [2.5, 97.5])
    if np.all(xa == xa[0]) and np.all(xb == xa[0]):
        p_value = 1.0
    else:
        p_value = float(
            stats.mannwhitneyu(xb, xa, alternative="two-sided", method="asymptotic").pvalue
        )
    return Comparison(
        statistic(xb) - statistic(xa), (float(low), float(high)), p_value, "Mann-Whitney U"
    )


def mean(values: np.ndarray) -> float:
    """Arithmetic mean (the KPI engine's Σ ÷ n)."""
    import numpy as np

    return float(np.mean(values))


def median(values: np.ndarray) -> float:
    """Median by linear interpolation (the engine's P50, NumPy's default)."""
    import numpy as np

    return float(np.percentile(values, 50))


def p90(values: np.ndarray) -> float:
    """P90 by linear interpolation (the engine's ``percentile_from_ranks``, NumPy's default)."""
    import numpy as np

    return float(np.percentile(values, 90))
