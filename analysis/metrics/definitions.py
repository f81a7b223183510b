"""Every KPI ClosedLoop reports, defined once: its formula, its SQL aggregates, its n and CI.

``DEFINITIONS_VERSION`` changes whenever a formula below changes; every API
answer, CLI answer and export records it. The README's Metrics section lists
the same formulas.

Conventions shared by every KPI:

* A skipped or unanswered question (NULL) is excluded from numerator and
  denominator alike.
* ``n`` is the denominator the KPI rests on (answers, tickets, invitations);
  a KPI with ``n`` below ``METRICS_MIN_SAMPLE`` (default 30) is marked
  ``low_confidence``; with ``n == 0`` its value is None.
* Percentages are 0–100; NPS is −100..100.
* Proportions carry a 95 % Wilson score interval; NPS carries a 95 % interval
  from the variance of the trinomial promoter/passive/detractor score
  (:func:`nps_interval`).
* Percentiles use linear interpolation between closest ranks
  (:func:`percentile_from_ranks`: NumPy's default, PostgreSQL's
  ``percentile_cont``, Excel's ``PERCENTILE.INC``); the median is P50.
* Sums and counts are taken in SQL; the final division happens here in
  Python, so SQLite and PostgreSQL give identical numbers.

Populations: survey KPIs count responses *submitted* in the period; ticket
KPIs count tickets *closed* in the period; the response rate counts
invitations *sent* in the period (answered at any time since), and skip
reasons count invitations *created* in the period.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, case, func
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

#: Bump when any formula, population or method in this module changes.
#: 2026.2: FCR excludes reopened tickets; durations on both clocks (``*_elapsed_*`` added).
DEFINITIONS_VERSION = "2026.2"
#: The z value of a two-sided 95 % interval.
Z95 = 1.959963984540054

CSAT_DIMENSIONS = ("overall", "speed", "professionalism", "attitude", "effectiveness")
#: CSAT answers counted as satisfied, NPS promoters and detractors, CES "easy" answers.
CSAT_SATISFIED_MIN = 4
NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6
CES_EASY_MIN = 5
#: The percentiles reported for durations, as (name, numerator, denominator).
PERCENTILES = (("median", 1, 2), ("p90", 9, 10))
#: Durations: ``first_response_time`` and ``resolution_time`` on each ticket's SLA clock
#: (business hours for working-hours policies, P3/P4 by default; 24×7 otherwise), and the
#: same two on the calendar clock (``*_elapsed``: every second counts).
DURATIONS = (
    "first_response_time",
    "resolution_time",
    "first_response_time_elapsed",
    "resolution_time_elapsed",
)
#: The statistics reported for each duration.
DURATION_STATS = ("mean", "median", "p90")

#: Every KPI name, grouped by the query that computes it.
RESPONSE_KPIS = tuple(
    f"csat_{dim}_{kind}" for dim in CSAT_DIMENSIONS for kind in ("average", "percent")
) + ("nps", "ces_average", "ces_percent_easy")
INVITATION_KPIS = ("response_rate",)
TICKET_KPIS = ("fcr", "reopen_rate", "contacts_per_ticket")
SLA_KPIS = ("sla_breach_rate",)
DURATION_KPIS = tuple(f"{duration}_{name}" for duration in DURATIONS for name in DURATION_STATS)
ALL_KPIS = RESPONSE_KPIS + INVITATION_KPIS + TICKET_KPIS + SLA_KPIS + DURATION_KPIS
#: The overview dashboard's cards.
OVERVIEW_KPIS = (
    "csat_overall_percent",
    "nps",
    "ces_average",
    "first_response_time_p90",
    "first_response_time_elapsed_p90",
    "sla_breach_rate",
    "response_rate",
)


def other_clock(kpi_name: str) -> str | None:
    """The same duration statistic on the other clock (``first_response_time_median`` ↔
    ``first_response_time_elapsed_median``); None for a KPI that is not a duration."""
    if kpi_name not in DURATION_KPIS:
        return None
    duration, _sep, stat = kpi_name.rpartition("_")
    if duration.endswith("_elapsed"):
        return f"{duration.removesuffix('_elapsed')}_{stat}"
    return f"{duration}_elapsed_{stat}"


@dataclasses.dataclass(frozen=True)
class Kpi:
    """One number with what it rests on.

    ``value`` is None when ``n`` is 0. ``ci`` is a 95 % interval ``(low, high)``
    where defined. ``counts`` holds the counts behind the value (promoters,
    sent, answered ...); ``by_priority`` splits the SLA breach rate.
    """

    name: str
    value: float | None
    n: int
    low_confidence: bool
    unit: str
    ci: tuple[float, float] | None = None
    counts: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    by_priority: Mapping[str, Kpi] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"value", "n", "low_confidence", "unit", "ci"?, "counts"?, "by_priority"?}``.

        Values are rounded for display: percentages and NPS to one decimal,
        averages and ratios to two, seconds to whole seconds.
        """
        digits = {"%": 1, "nps": 1, "seconds": 0}.get(self.unit, 2)
        body: dict[str, Any] = {
            "value": _round(self.value, digits),
            "n": self.n,
            "low_confidence": self.low_confidence,
            "unit": self.unit,
        }
        if self.ci is not None:
            body["ci95"] = [_round(self.ci[0], digits), _round(self.ci[1], digits)]
        if self.counts:
            body["counts"] = dict(self.counts)
        if self.by_priority:
            body["by_priority"] = {k: v.to_json() for k, v in self.by_priority.items()}
        return body


def _round(value: float | None, digits: int) -> float | int | None:
    if value is None:
        return None
    return int(round(value)) if digits == 0 else round(value, digits)


# --- intervals and percentiles -----------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion, in percent; None when ``n`` is 0.

    centre = (p̂ + z²/2n) / (1 + z²/n), half-width = z/(1 + z²/n) · √(p̂(1−p̂)/n + z²/4n²).
    Unlike the normal approximation it stays inside 0–100 and is not empty
    at p̂ = 0 or 1.
    """
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - half) * 100), min(100.0, (centre + half) * 100)


def nps_interval(
    promoters: int, detractors: int, n: int, z: float = Z95
) -> tuple[float, float] | None:
    """95 % interval of NPS; None when ``n`` is 0.

    Each answer scores +1 (promoter), 0 (passive) or −1 (detractor); NPS is
    100 × their mean. The variance of one score is p_P + p_D − (p_P − p_D)²,
    so SE = 100 · √((p_P + p_D − (p_P − p_D)²) / n) and the interval is
    NPS ± z · SE, clipped to −100..100 (a Wald interval: with few answers it
    is too narrow, which the low-confidence flag says).
    """
    if n <= 0:
        return None
    p_p, p_d = promoters / n, detractors / n
    score = (p_p - p_d) * 100
    se = 100 * math.sqrt(max(0.0, p_p + p_d - (p_p - p_d) ** 2) / n)
    return max(-100.0, score - z * se), min(100.0, score + z * se)


def percentile_ranks(count: int, numerator: int, denominator: int) -> tuple[int, int]:
    """For ``count`` sorted values: the 1-based rank ⌊h⌋ and the numerator of h − ⌊h⌋ (over
    ``denominator``). Integer arithmetic, identical in Python and in SQL."""
    scaled = (count - 1) * numerator
    return scaled // denominator + 1, scaled % denominator


def percentile_from_ranks(
    low: float | None, high: float | None, count: int, numerator: int, denominator: int
) -> float | None:
    """The p = numerator/denominator percentile of ``count`` values by linear interpolation,
    from the values at ranks ⌊h⌋ (``low``) and ⌊h⌋ + 1 (``high``), read from SQL; None
    when there are none.

    With the values sorted ascending as x₁..xₙ: h = (n − 1)·p + 1,
    P = x_⌊h⌋ + (h − ⌊h⌋)·(x_⌊h⌋₊₁ − x_⌊h⌋).
    """
    if count <= 0 or low is None:
        return None
    _rank, fraction = percentile_ranks(count, numerator, denominator)
    if fraction == 0 or high is None:
        return float(low)
    return low + (high - low) * fraction / denominator


def rank_sql(count: ColumnElement[Any], numerator: int, denominator: int) -> ColumnElement[int]:
    """⌊h⌋ of :func:`percentile_ranks` as SQL, on an integer ``count`` (integer division)."""
    return ((count - 1) * numerator) // denominator + 1


# --- survey KPIs -------------------------------------------------------------------------------


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """The number of rows where ``condition`` holds (0 over no rows), as an SQL aggregate."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def response_aggregates(
    columns: Mapping[str, ColumnElement[Any]], names: Iterable[str] = RESPONSE_KPIS
) -> list[ColumnElement[Any]]:
    """SQL aggregates over survey responses for the KPIs ``names``; ``columns`` maps
    csat_<dimension>, nps and ces to their columns. Only the columns those KPIs read
    appear, so a covering index can answer the overview without reading the table."""
    wanted = set(names)
    aggregates: list[ColumnElement[Any]] = [func.count().label("responses")]
    for dim in CSAT_DIMENSIONS:
        if not wanted & {f"csat_{dim}_average", f"csat_{dim}_percent"}:
            continue
        col = columns[f"csat_{dim}"]
        aggregates += [
            func.count(col).label(f"csat_{dim}_n"),
            func.coalesce(func.sum(col), 0).label(f"csat_{dim}_sum"),
            count_if(col >= CSAT_SATISFIED_MIN).label(f"csat_{dim}_satisfied"),
        ]
    if "nps" in wanted:
        nps = columns["nps"]
        aggregates += [
            func.count(nps).label("nps_n"),
            count_if(nps >= NPS_PROMOTER_MIN).label("nps_promoters"),
            count_if(nps <= NPS_DETRACTOR_MAX).label("nps_detractors"),
        ]
    if wanted & {"ces_average", "ces_percent_easy"}:
        ces = columns["ces"]
        aggregates += [
            func.count(ces).label("ces_n"),
            func.coalesce(func.sum(ces), 0).label("ces_sum"),
            count_if(ces >= CES_EASY_MIN).label("ces_easy"),
        ]
    return aggregates


class _Builder:
    def __init__(self, min_sample: int) -> None:
        self.min_sample = min_sample

    def make(self, name: str, value: float | None, n: int, unit: str, **extra: Any) -> Kpi:
        return Kpi(
            name=name,
            value=value if n > 0 else None,
            n=n,
            low_confidence=n < self.min_sample,
            unit=unit,
            **extra,
        )

    def share(self, name: str, successes: int, n: int, **extra: Any) -> Kpi:
        value = successes / n * 100 if n else None
        return self.make(name, value, n, "%", ci=wilson_interval(successes, n), **extra)

    def mean(self, name: str, total: float, n: int, unit: str) -> Kpi:
        return self.make(name, total / n if n else None, n, unit)


def csat_average(builder: _Builder, dim: str, total: int, answered: int) -> Kpi:
    """CSAT average (1–5) = Σ scores ÷ answered, per dimension; skipped answers excluded."""
    return builder.mean(f"csat_{dim}_average", total, answered, "score")


def csat_percent(builder: _Builder, dim: str, satisfied: int, answered: int) -> Kpi:
    """CSAT % = answers of 4 or 5 ÷ answered × 100, per dimension; skipped answers excluded.
    A neutral 3 counts in the denominator, not as satisfied. CI: Wilson."""
    return builder.share(f"csat_{dim}_percent", satisfied, answered)


def nps(builder: _Builder, promoters: int, detractors: int, answered: int) -> Kpi:
    """NPS = % promoters (9–10) − % detractors (0–6) among NPS answers (−100..100).

    Passives (7–8) count in the denominator only. CI: :func:`nps_interval`.
    """
    value = (promoters - detractors) / answered * 100 if answered else None
    counts = {
        "promoters": promoters,
        "passives": answered - promoters - detractors,
        "detractors": detractors,
    }
    return builder.make(
        "nps",
        value,
        answered,
        "nps",
        ci=nps_interval(promoters, detractors, answered),
        counts=counts,
    )


def ces_average(builder: _Builder, total: int, answered: int) -> Kpi:
    """CES average (1–7, 7 = very easy) = Σ scores ÷ answered."""
    return builder.mean("ces_average", total, answered, "score")


def ces_percent_easy(builder: _Builder, easy: int, answered: int) -> Kpi:
    """CES % easy = answers of 5–7 ÷ answered × 100. CI: Wilson."""
    return builder.share("ces_percent_easy", easy, answered)


def response_kpis(row: Mapping[str, Any], min_sample: int) -> dict[str, Kpi]:
    """Every survey KPI from one row of :func:`response_aggregates` (an aggregate it lacks
    reads as 0)."""
    builder = _Builder(min_sample)

    def count(key: str) -> int:
        return int(row.get(key) or 0)

    kpis: dict[str, Kpi] = {}
    for dim in CSAT_DIMENSIONS:
        answered = count(f"csat_{dim}_n")
        kpis[f"csat_{dim}_average"] = csat_average(
            builder, dim, count(f"csat_{dim}_sum"), answered
        )
        kpis[f"csat_{dim}_percent"] = csat_percent(
            builder, dim, count(f"csat_{dim}_satisfied"), answered
        )
    kpis["nps"] = nps(builder, count("nps_promoters"), count("nps_detractors"), count("nps_n"))
    kpis["ces_average"] = ces_average(builder, count("ces_sum"), count("ces_n"))
    kpis["ces_percent_easy"] = ces_percent_easy(builder, count("ces_easy"), count("ces_n"))
    return kpis


# --- invitations -------------------------------------------------------------------------------


def response_rate(
    answered: int, sent: int, skipped: Mapping[str, int], min_sample: int
) -> dict[str, Kpi]:
    """Response rate = invitations sent in the period that were answered ÷ invitations sent
    in the period × 100 (a cohort rate: an answer after the period still counts for the
    period it was sent in). CI: Wilson. ``counts.skipped`` lists invitations created in the
    period and not sent, by skip reason."""
    builder = _Builder(min_sample)
    counts = {"sent": sent, "answered": answered, "skipped": dict(sorted(skipped.items()))}
    return {"response_rate": builder.share("response_rate", answered, sent, counts=counts)}


# --- tickets -----------------------------------------------------------------------------------


def ticket_aggregates(
    contact_count: SQLColumnExpression[int], reopen_count: SQLColumnExpression[int]
) -> list[ColumnElement[Any]]:
    """SQL aggregates over closed tickets."""
    return [
        func.count().label("closed"),
        count_if(and_(contact_count == 1, reopen_count == 0)).label("first_contact_resolved"),
        count_if(reopen_count > 0).label("reopened"),
        func.coalesce(func.sum(contact_count), 0).label("contacts"),
    ]


def sla_aggregates(breached: SQLColumnExpression[bool | None]) -> list[ColumnElement[Any]]:
    """SQL aggregates over the SLA facts of closed tickets (grouped by priority as well)."""
    return [
        func.count(breached).label("sla_measured"),
        count_if(breached.is_(True)).label("sla_breached"),
    ]


def fcr(builder: _Builder, first_contact_resolved: int, closed: int) -> Kpi:
    """FCR = closed tickets with contact_count = 1 and reopen_count = 0 ÷ closed tickets × 100.

    A reopened ticket was not resolved at first contact, whatever its contact count
    (since definitions 2026.2). CI: Wilson.
    """
    return builder.share("fcr", first_contact_resolved, closed)


def sla_breach_rate(
    builder: _Builder, breached: int, measured: int, by_priority: Mapping[str, Kpi]
) -> Kpi:
    """SLA breach rate = closed tickets that missed their first-response or resolution
    target ÷ closed tickets measured × 100, overall and per priority, on each ticket's
    clock (``analysis.sla``). CI: Wilson."""
    return builder.share("sla_breach_rate", breached, measured, by_priority=by_priority)


def reopen_rate(builder: _Builder, reopened: int, closed: int) -> Kpi:
    """Reopen rate = closed tickets with reopen_count ≥ 1 ÷ closed tickets × 100. CI: Wilson."""
    return builder.share("reopen_rate", reopened, closed)


def contacts_per_ticket(builder: _Builder, contacts: int, closed: int) -> Kpi:
    """Contacts per ticket = Σ contact_count ÷ closed tickets."""
    return builder.mean("contacts_per_ticket", contacts, closed, "contacts")


def ticket_kpis(tickets: Mapping[str, Any], min_sample: int) -> dict[str, Kpi]:
    """FCR, reopen rate and contacts per ticket from one :func:`ticket_aggregates` row."""
    builder = _Builder(min_sample)
    closed = int(tickets.get("closed") or 0)

    def total(key: str) -> int:
        return int(tickets.get(key) or 0)

    return {
        "fcr": fcr(builder, total("first_contact_resolved"), closed),
        "reopen_rate": reopen_rate(builder, total("reopened"), closed),
        "contacts_per_ticket": contacts_per_ticket(builder, total("contacts"), closed),
    }


def sla_kpis(rows_by_priority: Mapping[str, Mapping[str, Any]], min_sample: int) -> dict[str, Kpi]:
    """The SLA breach rate, overall and per priority, from :func:`sla_aggregates` rows."""
    builder = _Builder(min_sample)
    measured = breached = 0
    by_priority: dict[str, Kpi] = {}
    for priority, row in sorted(rows_by_priority.items()):
        measured += int(row["sla_measured"])
        breached += int(row["sla_breached"])
        by_priority[priority] = builder.share(
            f"sla_breach_rate_{priority}", int(row["sla_breached"]), int(row["sla_measured"])
        )
    return {"sla_breach_rate": sla_breach_rate(builder, breached, measured, by_priority)}


def duration_kpis(
    duration: str, count: int, total: int, ranks: Mapping[str, tuple[Any, Any]], min_sample: int
) -> dict[str, Kpi]:
    """Mean, median and P90 of a duration over closed tickets, in seconds, on one of two clocks.

    * first_response_time: created → first response (or resolution, or close);
    * resolution_time: created → resolved (or closed);

    both on each ticket's SLA clock ("business hours": only working hours on working
    days count for a working-hours policy, P3/P4 by default; every second for a 24×7
    policy), and as ``first_response_time_elapsed`` / ``resolution_time_elapsed`` on the
    calendar clock ("elapsed": every second counts, nights, weekends and holidays too).

    mean = Σ seconds ÷ n; median and P90 by :func:`percentile_from_ranks`.
    ``ranks`` maps each percentile name to the values at ranks ⌊h⌋ and ⌊h⌋ + 1.
    """
    builder = _Builder(min_sample)
    kpis = {f"{duration}_mean": builder.mean(f"{duration}_mean", total, count, "seconds")}
    for name, numerator, denominator in PERCENTILES:
        low, high = ranks.get(name, (None, None))
        value = percentile_from_ranks(low, high, count, numerator, denominator)
        kpis[f"{duration}_{name}"] = builder.make(f"{duration}_{name}", value, count, "seconds")
    return kpis
