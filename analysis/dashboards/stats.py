"""The statistics of the dashboards that are not KPIs: correlation and p-chart limits.

Pure functions over sums and counts the database returned, so SQLite and
PostgreSQL give the same numbers (integer sums, the division done here).
KPI formulas live in :mod:`analysis.metrics.definitions`, not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analysis.metrics.definitions import Z95

#: Control limits of a Shewhart chart sit this many standard errors from the centre line.
SIGMA_LIMITS = 3


@dataclass(frozen=True)
class Correlation:
    """Pearson's r of two columns over the rows answering both, with its n and 95 % CI."""

    r: float | None
    n: int
    ci: tuple[float, float] | None
    low_confidence: bool


def pearson(
    n: int,
    sum_x: int,
    sum_y: int,
    sum_xy: int,
    sum_x2: int,
    sum_y2: int,
    *,
    min_sample: int = 30,
) -> Correlation:
    """Pearson's correlation from the six sums over the n rows where x and y are both known.

    r = (nΣxy − ΣxΣy) / √((nΣx² − (Σx)²)(nΣy² − (Σy)²)); None when n < 2 or
    either column is constant (a zero denominator). The 95 % interval uses
    Fisher's z: z = atanh(r), SE = 1/√(n − 3), r ∈ tanh(z ± 1.96·SE);
    defined for n > 3 and |r| < 1. Integer sums make the numerator and the
    denominator exact.
    """
    low_confidence = n < min_sample
    if n < 2:
        return Correlation(None, n, None, low_confidence)
    covariance = n * sum_xy - sum_x * sum_y
    spread_x = n * sum_x2 - sum_x * sum_x
    spread_y = n * sum_y2 - sum_y * sum_y
    if spread_x <= 0 or spread_y <= 0:
        return Correlation(None, n, None, low_confidence)
    r = max(-1.0, min(1.0, covariance / math.sqrt(spread_x * spread_y)))
    ci = None
    if n > 3 and abs(r) < 1:
        z, se = math.atanh(r), 1 / math.sqrt(n - 3)
        ci = (math.tanh(z - Z95 * se), math.tanh(z + Z95 * se))
    return Correlation(r, n, ci, low_confidence)


@dataclass(frozen=True)
class PChartPoint:
    """One subgroup (a week) of a p-chart, percentages 0–100; limits None when n is 0."""

    period: str
    n: int
    defects: int
    percent: float | None
    centre: float | None
    lower: float | None
    upper: float | None
    #: Outside the control limits: special-cause variation worth a look.
    out_of_control: bool


def p_chart(subgroups: list[tuple[str, int, int]]) -> list[PChartPoint]:
    """p-chart points from ``(period, n, defects)`` subgroups (e.g. NPS answers, detractors).

    Centre line p̄ = Σ defects ÷ Σ n over every subgroup; each subgroup's
    limits p̄ ± 3·√(p̄(1 − p̄)/nᵢ), clipped to 0..1, so a week with fewer
    answers has wider limits. A point is out of control when pᵢ > UCLᵢ or
    pᵢ < LCLᵢ. A subgroup with n = 0 has no point and no limits.
    """
    total_n = sum(n for _period, n, _defects in subgroups)
    total_defects = sum(defects for _period, _n, defects in subgroups)
    p_bar = total_defects / total_n if total_n else None
    points: list[PChartPoint] = []
    for period, n, defects in subgroups:
        if not n or p_bar is None:
            points.append(PChartPoint(period, n, defects, None, None, None, None, False))
            continue
        p = defects / n
        half = SIGMA_LIMITS * math.sqrt(p_bar * (1 - p_bar) / n)
        lower, upper = max(0.0, p_bar - half), min(1.0, p_bar + half)
        points.append(
            PChartPoint(
                period,
                n,
                defects,
                p * 100,
                p_bar * 100,
                lower * 100,
                upper * 100,
                p > upper or p < lower,
            )
        )
    return points
