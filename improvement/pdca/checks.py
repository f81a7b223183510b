"""The automatic Check: the KPI after vs before (and pilot vs control), tested, with a verdict.

Periods (local days in the metrics time zone):

* before: the plan's baseline period;
* the Check (round 0): from the day Do started to the day Check started;
* re-check round N (30, 60, 90): the N days after the day Check started, so
  a re-check shows whether the effect held;
* pilot vs control: the pilot scope against the control scope over the
  round's "after" period.

Before entering Check, :func:`window_sample` counts the KPI's observations in
the Check window so far (the Do → Check gate of :mod:`.stages`) and estimates
the day it will have the minimum sample.

KPI values come from :func:`analysis.metrics.compute`; the test from
:mod:`.stats` suits the KPI (see :func:`compare`). Verdict: *not enough data*
when either side has fewer than ``METRICS_MIN_SAMPLE`` observations; *met*
when the "after" (or pilot) value reaches the target and the difference is
significant (p < 0.05) in the direction of the target; else *not met*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select

from analysis.metrics import DEFINITIONS_VERSION, Kpi, Scope, compute, other_clock
from analysis.metrics.catalog import direction_of
from analysis.metrics.samples import SAMPLED_KPIS, kpi_sample
from survey_app.extensions import db
from survey_app.types import utcnow

from . import stats
from .common import RECHECK_DAYS, local_date, local_today, scope_for
from .models import CheckMeasurement, Comparison, PdcaCycle, Stage, Verdict

#: Significance level of the verdict.
ALPHA = 0.05
#: KPIs for which less is better (a target below the baseline is the usual goal): the
#: catalogue's direction (:func:`analysis.metrics.catalog.direction_of`).
LOWER_IS_BETTER = frozenset(name for name in SAMPLED_KPIS if direction_of(name) == "lower")


def is_proportion(kpi: str) -> bool:
    """True for the KPIs that are a share of successes in n (unit %)."""
    return kpi.endswith(("_percent", "_percent_easy")) or kpi in {
        "response_rate",
        "fcr",
        "reopen_rate",
        "sla_breach_rate",
    }


def compare(kpi: str, a_scope: Scope, b_scope: Scope) -> tuple[Kpi, Kpi, stats.Comparison | None]:
    """The KPI over both scopes and the test of b − a (None when a side has no data).

    Proportions: two-proportion z-test on (value × n / 100, n). NPS: bootstrap
    from the promoter / passive / detractor counts. Averages, medians, P90s:
    Mann–Whitney U on the per-row values (:func:`analysis.metrics.samples.kpi_sample`,
    one column of the two periods) with a bootstrap interval.
    """
    a = compute(a_scope, metrics=[kpi]).overall[kpi]
    b = compute(b_scope, metrics=[kpi]).overall[kpi]
    if not a.n or not b.n or a.value is None or b.value is None:
        return a, b, None
    if kpi == "nps":
        counts = [
            (k.counts["promoters"], k.counts["passives"], k.counts["detractors"]) for k in (a, b)
        ]
        return a, b, stats.nps_bootstrap(counts[0], counts[1])
    if is_proportion(kpi):
        return (
            a,
            b,
            stats.two_proportion_test(
                round(a.value * a.n / 100), a.n, round(b.value * b.n / 100), b.n
            ),
        )
    statistic = stats.mean
    if kpi.endswith("_median"):
        statistic = stats.median
    elif kpi.endswith("_p90"):
        statistic = stats.p90
    return (
        a,
        b,
        stats.mann_whitney_bootstrap(
            kpi_sample(a_scope, kpi), kpi_sample(b_scope, kpi), statistic
        ),
    )


def min_sample() -> int:
    """The fewest observations a side of a Check needs (``METRICS_MIN_SAMPLE``)."""
    return int(current_app.config["METRICS_MIN_SAMPLE"])


def verdict(kpi: str, target: float, a: Kpi, b: Kpi, result: stats.Comparison | None) -> Verdict:
    """Met / not met / not enough data, as the module docstring says."""
    needed = min_sample()
    if result is None or a.n < needed or b.n < needed or b.value is None:
        return Verdict.NOT_ENOUGH_DATA
    lower = kpi in LOWER_IS_BETTER
    reached = b.value <= target if lower else b.value >= target
    improved = result.difference < 0 if lower else result.difference > 0
    return Verdict.MET if reached and improved and result.p_value < ALPHA else Verdict.NOT_MET


@dataclass(frozen=True)
class WindowSample:
    """The KPI's observations in a cycle's Check window so far (the day Do started to
    ``end``, in the cycle's scope), against the minimum the Check needs."""

    start: date
    end: date
    n: int
    needed: int
    #: The day the window should have enough at the daily rate observed so far (``end``
    #: when it has enough already); None when nothing was observed yet (unknown).
    ready_by: date | None

    @property
    def enough(self) -> bool:
        return self.n >= self.needed


def window_sample(cycle: PdcaCycle, today: date | None = None) -> WindowSample:
    """Count the KPI's sample (its ``n``, from :func:`analysis.metrics.compute`) in the Check
    window as it would be if the cycle entered Check on ``today`` (default: today), and
    estimate when it will reach ``METRICS_MIN_SAMPLE`` from the observed daily rate."""
    end = today or local_today()
    start = local_date(cycle.do_started_at) if cycle.do_started_at else end
    start = min(start, end)
    n = compute(scope_for(cycle.scope, start, end), metrics=[cycle.kpi]).overall[cycle.kpi].n
    needed = min_sample()
    ready_by: date | None = end
    if n == 0 and needed > 0:
        ready_by = None
    elif n < needed:
        # The missing observations at the window's daily rate, n / days, rounded up.
        days = (end - start).days + 1
        ready_by = end + timedelta(days=-(-(needed - n) * days // n))
    return WindowSample(start=start, end=end, n=n, needed=needed, ready_by=ready_by)


def _periods(cycle: PdcaCycle, round_: int) -> tuple[date, date]:
    assert cycle.check_started_at is not None
    check_day = local_date(cycle.check_started_at)
    if round_ == 0:
        start = local_date(cycle.do_started_at) if cycle.do_started_at else check_day
        return min(start, check_day), check_day
    return check_day + timedelta(days=1), check_day + timedelta(days=round_)


def _store(
    cycle: PdcaCycle,
    round_: int,
    comparison: Comparison,
    periods: tuple[date, date, date, date],
    a_scope: Scope,
    b_scope: Scope,
) -> CheckMeasurement:
    a, b, result = compare(cycle.kpi, a_scope, b_scope)
    row = db.session.scalar(
        select(CheckMeasurement).where(
            CheckMeasurement.cycle_id == cycle.id,
            CheckMeasurement.round == round_,
            CheckMeasurement.comparison == comparison,
        )
    )
    if row is None:
        row = CheckMeasurement(cycle=cycle, round=round_, comparison=comparison)
        db.session.add(row)
    row.kpi = cycle.kpi
    row.a_start, row.a_end, row.b_start, row.b_end = periods
    row.a_value, row.a_n, row.b_value, row.b_n = a.value, a.n, b.value, b.n
    row.difference = result.difference if result else None
    row.ci_low, row.ci_high = result.ci if result else (None, None)
    row.p_value = result.p_value if result else None
    row.test = result.test if result else ""
    row.verdict = verdict(cycle.kpi, cycle.target_value, a, b, result)
    row.definitions_version = DEFINITIONS_VERSION
    row.measured_at = utcnow()
    return row


def measure(cycle: PdcaCycle, round_: int = 0) -> list[CheckMeasurement]:
    """Measure the cycle's KPI for ``round_`` (0 = the Check, else days after it) and store it
    (replacing an earlier measurement of the same round); flushes. Refuses (ValueError) a
    cycle that has not reached Check."""
    if cycle.check_started_at is None:
        raise ValueError("the cycle has not reached Check")
    start, end = _periods(cycle, round_)
    rows = [
        _store(
            cycle,
            round_,
            Comparison.BEFORE_AFTER,
            (cycle.baseline_start, cycle.baseline_end, start, end),
            scope_for(cycle.scope, cycle.baseline_start, cycle.baseline_end),
            scope_for(cycle.scope, start, end),
        )
    ]
    if cycle.pilot_scope is not None and cycle.control_scope is not None:
        rows.append(
            _store(
                cycle,
                round_,
                Comparison.PILOT_CONTROL,
                (start, end, start, end),
                scope_for(cycle.control_scope, start, end),
                scope_for(cycle.pilot_scope, start, end),
            )
        )
    db.session.flush()
    return rows


def other_clock_values(cycle: PdcaCycle) -> dict[int, tuple[str, Kpi, Kpi]]:
    """For a cycle whose KPI is a duration: each measurement's two sides on the other clock
    (business hours ↔ elapsed), over the same scopes and periods, keyed by measurement id,
    as (KPI name, before / control, after / pilot). Empty for any other KPI. Shown beside
    the Check; the verdict stays on the cycle's own KPI."""
    name = other_clock(cycle.kpi)
    if name is None:
        return {}
    values: dict[int, tuple[str, Kpi, Kpi]] = {}
    for m in cycle.measurements:
        if m.comparison is Comparison.PILOT_CONTROL:
            a_filters, b_filters = cycle.control_scope, cycle.pilot_scope
        else:
            a_filters, b_filters = cycle.scope, cycle.scope
        a = compute(scope_for(a_filters, m.a_start, m.a_end), metrics=[name]).overall[name]
        b = compute(scope_for(b_filters, m.b_start, m.b_end), metrics=[name]).overall[name]
        values[m.id] = (name, a, b)
    return values


def run_due_rechecks(today: date | None = None) -> int:
    """Measure every re-check that is due (30 / 60 / 90 days after a cycle's Check, the
    period over) and not yet stored; commit each cycle; return how many were measured.
    Safe to run twice: a stored round is not measured again."""
    today = today or local_today()
    cycles = db.session.scalars(
        select(PdcaCycle).where(
            PdcaCycle.check_started_at.is_not(None), PdcaCycle.stage != Stage.PLAN
        )
    ).all()
    done = 0
    for cycle in cycles:
        stored = {m.round for m in cycle.measurements}
        assert cycle.check_started_at is not None
        check_day = local_date(cycle.check_started_at)
        for days in RECHECK_DAYS:
            if days in stored or today <= check_day + timedelta(days=days):
                continue
            try:
                measure(cycle, days)
                db.session.commit()
                done += 1
            except Exception:
                db.session.rollback()
                current_app.logger.exception("re-check %s of cycle %s failed", days, cycle.id)
    return done
