"""KPI engine: every KPI against hand-computed fixtures, a generated data set checked against a
straightforward Python computation for every group_by and grain, the API, the CLI, role access."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from analysis.metrics import (
    ALL_KPIS,
    DEFINITIONS_VERSION,
    DIMENSIONS,
    OVERVIEW_KPIS,
    Scope,
    ScopeError,
    compute,
    parse_metrics_args,
)
from analysis.metrics.definitions import (
    percentile_from_ranks,
    percentile_ranks,
    wilson_interval,
)
from analysis.metrics.scope import time_buckets
from analysis.sla.models import TicketSla
from survey_app.extensions import db
from survey_app.models import Channel, Priority, Role, Ticket, Tier
from survey_app.surveys.models import Invitation, SurveyResponse
from tests.kpi_data import MID_SEPTEMBER, KpiData, generate

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

SEPTEMBER = Scope(start=date(2025, 9, 1), end=date(2025, 9, 30), timezone="Asia/Shanghai")


@pytest.fixture
def data(app) -> KpiData:
    return KpiData()


def overall(scope: Scope = SEPTEMBER, **kwargs: Any) -> dict[str, Any]:
    return compute(scope, **kwargs).overall


# --- hand-computed fixtures --------------------------------------------------------------------


def test_no_data_gives_every_kpi_with_n_zero(app):
    kpis = overall()
    assert list(kpis) == list(ALL_KPIS)
    for kpi in kpis.values():
        assert kpi.value is None
        assert kpi.n == 0
        assert kpi.low_confidence is True
    assert kpis["nps"].ci is None
    assert kpis["nps"].counts == {"promoters": 0, "passives": 0, "detractors": 0}
    assert kpis["response_rate"].counts == {"sent": 0, "answered": 0, "skipped": {}}


def test_csat_nps_ces_by_hand(data):
    rows = [  # overall, speed, nps, ces
        (5, 5, 10, 7),
        (4, None, 9, 5),
        (3, 2, 8, 4),
        (None, None, 6, None),
        (1, 4, None, None),
    ]
    for csat, speed, nps, ces in rows:
        data.response(csat_overall=csat, csat_speed=speed, nps=nps, ces=ces)

    kpis = overall()

    assert kpis["csat_overall_average"].value == pytest.approx((5 + 4 + 3 + 1) / 4)
    assert kpis["csat_overall_average"].n == 4
    assert kpis["csat_overall_percent"].value == pytest.approx(50.0)
    assert kpis["csat_overall_percent"].ci == pytest.approx((15.0030, 84.9970), abs=1e-3)
    assert kpis["csat_speed_average"].value == pytest.approx(11 / 3)
    assert kpis["csat_speed_percent"].value == pytest.approx(200 / 3)
    assert kpis["csat_speed_percent"].n == 3
    assert kpis["csat_attitude_percent"].n == 0
    nps = kpis["nps"]
    assert nps.value == pytest.approx(25.0)
    assert nps.n == 4
    assert nps.counts == {"promoters": 2, "passives": 1, "detractors": 1}
    # var = p_P + p_D - (p_P - p_D)^2 = 0.5 + 0.25 - 0.0625; SE = 100 * sqrt(0.6875 / 4)
    half = 1.959963984540054 * 100 * (0.6875 / 4) ** 0.5
    assert nps.ci == pytest.approx((25 - half, 100.0))
    assert kpis["ces_average"].value == pytest.approx(16 / 3)
    assert kpis["ces_percent_easy"].value == pytest.approx(200 / 3)
    assert kpis["ces_percent_easy"].n == 3
    assert all(k.low_confidence for k in kpis.values())


def test_all_answers_skipped(data):
    for _ in range(3):
        data.response()  # every score NULL: submitted, nothing answered
    kpis = overall()
    for name in ("csat_overall_average", "csat_overall_percent", "nps", "ces_average"):
        assert kpis[name].n == 0
        assert kpis[name].value is None
    assert kpis["response_rate"].value == 100.0


def test_a_single_response(data):
    data.response(csat_overall=5, nps=10, ces=1)
    kpis = overall()
    assert kpis["csat_overall_percent"].value == 100.0
    assert kpis["csat_overall_percent"].ci == pytest.approx(wilson_interval(1, 1))
    assert kpis["csat_overall_percent"].ci[0] == pytest.approx(20.65, abs=0.01)
    assert kpis["nps"].value == 100.0
    assert kpis["nps"].ci == (100.0, 100.0)
    assert kpis["ces_percent_easy"].value == 0.0
    assert kpis["csat_overall_percent"].low_confidence


def test_low_confidence_follows_the_configured_minimum(data):
    for _ in range(3):
        data.response(csat_overall=5)
    assert compute(SEPTEMBER, min_sample=3).overall["csat_overall_percent"].low_confidence is False
    assert compute(SEPTEMBER, min_sample=4).overall["csat_overall_percent"].low_confidence is True
    assert overall()["csat_overall_percent"].low_confidence is True  # default 30


def test_min_sample_setting(make_app):
    app = make_app(METRICS_MIN_SAMPLE=1)
    with app.app_context():
        KpiData().response(csat_overall=4)
        assert overall()["csat_overall_percent"].low_confidence is False


def linear_percentile(values: list[float], numerator: int, denominator: int) -> float | None:
    """The engine's percentile of plain values: the ranks it reads from SQL, interpolated."""
    ordered = sorted(values)
    if not ordered:
        return None
    low_rank, _fraction = percentile_ranks(len(ordered), numerator, denominator)
    low = ordered[low_rank - 1]
    high = ordered[low_rank] if low_rank < len(ordered) else low
    return percentile_from_ranks(low, high, len(ordered), numerator, denominator)


@pytest.mark.parametrize(
    ("values", "median", "p90"),
    [
        ([7], 7, 7),
        ([1, 2], 1.5, 1.9),
        ([10, 20, 30], 20, 28),
        ([1, 2, 3, 4], 2.5, 3.7),
        ([5, 1, 4, 2, 3], 3, 4.6),
        ([3, 3, 3, 100], 3, 70.9),
    ],
)
def test_linear_percentile_on_tiny_samples(values, median, p90):
    assert linear_percentile(values, 1, 2) == pytest.approx(median)
    assert linear_percentile(values, 9, 10) == pytest.approx(p90)
    if len(values) > 1:  # the same method as Python's "inclusive" quantiles
        assert p90 == pytest.approx(statistics.quantiles(values, n=10, method="inclusive")[8])


@pytest.mark.parametrize(
    ("minutes", "median", "p90"),
    [
        ([1], 60, 60),
        ([1, 2], 90, 114),
        ([1, 2, 3, 4], 150, 222),
        ([4, 1, 3, 2, 10], 180, 456),
    ],
)
def test_percentiles_in_sql_match_the_definition(data, minutes, median, p90):
    for minute in minutes:
        data.ticket(priority="P1", first_response_after=timedelta(minutes=minute))
    kpis = overall()
    assert kpis["first_response_time_median"].value == pytest.approx(median)
    assert kpis["first_response_time_p90"].value == pytest.approx(p90)
    assert kpis["first_response_time_mean"].value == pytest.approx(
        sum(minutes) * 60 / len(minutes)
    )
    assert kpis["first_response_time_p90"].n == len(minutes)


def test_ticket_kpis_by_hand(data):
    # P1: 15 min / 2 h, 24x7. Second ticket answers late; third resolves late.
    data.ticket(priority="P1", contact_count=1)
    data.ticket(priority="P1", first_response_after=timedelta(minutes=20), contact_count=2)
    data.ticket(
        priority="P1",
        resolved_after=timedelta(hours=3),
        closed_after=timedelta(hours=4),
        reopen_count=1,
        contact_count=3,
    )
    data.ticket(priority="P2", contact_count=1)
    data.ticket(priority="P2", closed_after=None, resolved_after=None)  # open: not counted

    kpis = overall()

    assert kpis["fcr"].value == pytest.approx(50.0)
    assert kpis["fcr"].n == 4
    assert kpis["reopen_rate"].value == pytest.approx(25.0)
    assert kpis["contacts_per_ticket"].value == pytest.approx(7 / 4)
    breach = kpis["sla_breach_rate"]
    assert breach.value == pytest.approx(50.0)
    assert breach.n == 4
    assert breach.by_priority["P1"].value == pytest.approx(200 / 3)
    assert breach.by_priority["P1"].n == 3
    assert breach.by_priority["P2"].value == 0.0
    assert "P3" not in breach.by_priority
    assert kpis["resolution_time_median"].value == 3600
    assert kpis["resolution_time_p90"].value == pytest.approx(3600 + 0.7 * 7200)


def test_a_ticket_closed_without_first_response_counts_its_resolution(data):
    data.ticket(priority="P1", first_response_after=None, resolved_after=timedelta(minutes=12))
    kpis = overall()
    assert kpis["first_response_time_mean"].value == 12 * 60
    assert kpis["sla_breach_rate"].value == 0.0


def test_response_rate_and_skip_reasons(data):
    ticket = data.ticket()
    sent = MID_SEPTEMBER
    data.invitation(ticket, sent_at=sent, answered=True)
    data.invitation(ticket, sent_at=sent, answered=True)
    data.invitation(ticket, sent_at=sent)
    # Sent in August, answered in September: August's cohort, not September's.
    data.invitation(ticket, sent_at=datetime(2025, 8, 30, tzinfo=UTC), answered=True)
    data.invitation(ticket, skip_reason="fatigue")
    data.invitation(ticket, skip_reason="fatigue")
    data.invitation(ticket, skip_reason="opted_out")
    data.invitation(ticket, skip_reason="fatigue", created_at=datetime(2025, 10, 2, tzinfo=UTC))

    rate = overall()["response_rate"]

    assert rate.value == pytest.approx(200 / 3)
    assert rate.n == 3
    assert rate.counts == {
        "sent": 3,
        "answered": 2,
        "skipped": {"fatigue": 2, "opted_out": 1},
    }
    assert rate.ci == pytest.approx(wilson_interval(2, 3))


def test_the_period_is_whole_local_days(data):
    # 2025-09-30 23:59:59 in Shanghai is inside September; one second later is October.
    data.response(csat_overall=5, submitted_at=datetime(2025, 9, 30, 15, 59, 59, tzinfo=UTC))
    data.response(csat_overall=1, submitted_at=datetime(2025, 9, 30, 16, 0, 0, tzinfo=UTC))
    data.response(csat_overall=1, submitted_at=datetime(2025, 8, 31, 15, 59, 59, tzinfo=UTC))
    assert overall()["csat_overall_percent"].n == 1
    utc = Scope(start=date(2025, 9, 1), end=date(2025, 9, 30), timezone="UTC")
    assert overall(utc)["csat_overall_percent"].n == 2


def test_filters(data):
    vip = data.ticket(tier="vip", team="VIP desk", channel="phone", priority="P2", is_new=True)
    data.response(vip, csat_overall=5, version=2)
    other = data.ticket()
    data.response(other, csat_overall=1)
    cases: dict[str, Any] = {
        "team": ("VIP desk",),
        "agent": ("王芳",),
        "channel": (Channel.PHONE,),
        "priority": (Priority.P2,),
        "customer_tier": (Tier.VIP,),
        "customer_is_new": True,
        "template_version": (data.versions[1].id,),
        "product_line": ("云存储",),
        "region": ("nowhere",),
    }
    expected = {"agent": 2, "product_line": 2, "region": 0}
    for name, value in cases.items():
        scope = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, **{name: value})
        kpis = overall(scope)
        assert kpis["csat_overall_percent"].n == expected.get(name, 1), name
        assert kpis["fcr"].n == expected.get(name, 1), name


def test_grain_lists_every_bucket_with_its_local_start(data):
    data.response(csat_overall=5, submitted_at=datetime(2025, 9, 1, 1, tzinfo=UTC))
    data.response(csat_overall=1, submitted_at=datetime(2025, 9, 14, 15, 59, tzinfo=UTC))
    result = compute(SEPTEMBER, grain="week")
    periods = [group.key["period"] for group in result.groups]
    assert periods == ["2025-09-01", "2025-09-08", "2025-09-15", "2025-09-22", "2025-09-29"]
    ns = [group.kpis["csat_overall_percent"].n for group in result.groups]
    assert ns == [1, 1, 0, 0, 0]
    months = compute(Scope(start=date(2025, 8, 20), end=date(2025, 10, 3)), grain="month")
    assert [g.key["period"] for g in months.groups] == ["2025-08-01", "2025-09-01", "2025-10-01"]


def test_time_buckets_follow_daylight_saving(app):
    scope = Scope(start=date(2025, 3, 8), end=date(2025, 3, 10), timezone="America/New_York")
    buckets = time_buckets(scope, "day")
    assert [(end - begin).total_seconds() / 3600 for _label, begin, end in buckets] == [24, 23, 24]


def test_metrics_subset_runs_only_what_it_needs(data):
    data.response(csat_overall=4, nps=10)
    db.session.commit()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        result = compute(SEPTEMBER, metrics=OVERVIEW_KPIS)
        only_nps = compute(SEPTEMBER, metrics=["nps"])
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert set(result.overall) == set(OVERVIEW_KPIS)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # Overview: responses, invitations sent, invitations skipped, SLA facts, and first-response
    # n and sum, P90 (the median is not asked for) on each clock (business hours, elapsed);
    # then one query for NPS alone; and for each compute, one look at the roll-ups' state (not
    # built here: the raw rows are read).
    assert len(selects) == 8 + 1 + 2
    assert list(only_nps.overall) == ["nps"]
    with pytest.raises(ValueError, match="unknown KPI"):
        compute(SEPTEMBER, metrics=["nope"])


def test_previous_period(app):
    previous = SEPTEMBER.previous()
    assert (previous.start, previous.end) == (date(2025, 8, 2), date(2025, 8, 31))


# --- generated data: every KPI and group_by against plain Python -------------------------------


def _local_day(moment: datetime, scope: Scope) -> date:
    return moment.astimezone(scope.zone).date()


def _bucket(day: date, grain: str | None) -> str | None:
    if grain is None:
        return None
    if grain == "day":
        return day.isoformat()
    if grain == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    return day.replace(day=1).isoformat()


def _value(raw: Any) -> Any:
    return getattr(raw, "value", raw)


def _share(hits: int, n: int) -> float | None:
    return hits / n * 100 if n else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _expected(
    scope: Scope, group_by: str | None, grain: str | None
) -> dict[tuple[Any, Any], dict[str, Any]]:
    """Every KPI per group, computed row by row in Python from the ORM objects."""
    begin, end = scope.bounds
    versions_of: dict[int, set[int]] = defaultdict(set)
    for inv in db.session.scalars(select(Invitation)):
        if inv.template_version_id is not None:
            versions_of[inv.ticket_id].add(inv.template_version_id)

    def ticket_dims(ticket: Ticket) -> dict[str, Any]:
        return {
            "team": ticket.team,
            "agent": ticket.agent,
            "channel": ticket.channel.value,
            "priority": ticket.priority.value,
            "product_line": ticket.product_line,
            "region": ticket.region,
            "customer_tier": ticket.customer.tier.value,
            "customer_is_new": ticket.customer.is_new,
        }

    def passes(dims: dict[str, Any]) -> bool:
        for name, accepted in scope.filters().items():
            wanted = {_value(v) for v in accepted}
            value = dims[name]
            if isinstance(value, set) and not value & wanted:
                return False
            if not isinstance(value, set) and value not in wanted:
                return False
        return True

    def keys_for(dims: dict[str, Any], moment: datetime) -> list[tuple[Any, Any]]:
        if not passes(dims):
            return []
        period = _bucket(_local_day(moment, scope), grain)
        if group_by is None:
            return [(None, period)]
        value = dims[group_by]
        if isinstance(value, set):  # a ticket's template versions
            accepted = set(scope.template_version) or value
            return [(v, period) for v in sorted(value & accepted)]
        return [(value, period)]

    groups: dict[tuple[Any, Any], dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for response in db.session.scalars(select(SurveyResponse)):
        if not begin <= response.submitted_at < end:
            continue
        dims = {
            name: _value(getattr(response, name))
            for name in DIMENSIONS
            if name != "template_version"
        }
        dims["template_version"] = response.template_version_id
        for key in keys_for(dims, response.submitted_at):
            groups[key]["responses"].append(response)
    for inv in db.session.scalars(select(Invitation)):
        dims = ticket_dims(inv.ticket)
        dims["template_version"] = inv.template_version_id
        if inv.sent_at is not None and begin <= inv.sent_at < end:
            for key in keys_for(dims, inv.sent_at):
                groups[key]["sent"].append(inv)
        if inv.skip_reason is not None and begin <= inv.created_at < end:
            for key in keys_for(dims, inv.created_at):
                groups[key]["skipped"].append(inv)
    for ticket in db.session.scalars(select(Ticket)):
        if ticket.closed_at is None or not begin <= ticket.closed_at < end:
            continue
        dims = ticket_dims(ticket)
        dims["template_version"] = versions_of.get(ticket.id, set())
        for key in keys_for(dims, ticket.closed_at):
            groups[key]["tickets"].append(ticket)

    expected = {}
    for key, rows in groups.items():
        kpis: dict[str, Any] = {}
        responses = rows["responses"]
        for dim in ("overall", "speed", "professionalism", "attitude", "effectiveness"):
            answers = [getattr(r, f"csat_{dim}") for r in responses]
            answers = [a for a in answers if a is not None]
            kpis[f"csat_{dim}_average"] = _mean(answers)
            kpis[f"csat_{dim}_percent"] = _share(sum(a >= 4 for a in answers), len(answers))
        nps = [r.nps for r in responses if r.nps is not None]
        kpis["nps"] = (
            (sum(a >= 9 for a in nps) - sum(a <= 6 for a in nps)) / len(nps) * 100 if nps else None
        )
        ces = [r.ces for r in responses if r.ces is not None]
        kpis["ces_average"] = _mean(ces)
        kpis["ces_percent_easy"] = _share(sum(a >= 5 for a in ces), len(ces))
        sent = rows["sent"]
        kpis["response_rate"] = _share(sum(i.answered_at is not None for i in sent), len(sent))
        kpis["skipped"] = {}
        for inv in rows["skipped"]:
            kpis["skipped"][inv.skip_reason.value] = (
                kpis["skipped"].get(inv.skip_reason.value, 0) + 1
            )
        tickets = rows["tickets"]
        kpis["fcr"] = _share(
            sum(t.contact_count == 1 and t.reopen_count == 0 for t in tickets), len(tickets)
        )
        kpis["reopen_rate"] = _share(sum(t.reopen_count > 0 for t in tickets), len(tickets))
        kpis["contacts_per_ticket"] = _mean([t.contact_count for t in tickets])
        facts = [db.session.get(TicketSla, t.id) for t in tickets]
        kpis["sla_breach_rate"] = _share(sum(bool(f.breached) for f in facts), len(facts))
        # Elapsed seconds straight from the ticket's timestamps (not from the stored facts).
        elapsed = {
            "first_response_time_elapsed": [
                int(
                    (
                        (t.first_response_at or t.resolved_at or t.closed_at) - t.created_at
                    ).total_seconds()
                )
                for t in tickets
            ],
            "resolution_time_elapsed": [
                int(((t.resolved_at or t.closed_at) - t.created_at).total_seconds())
                for t in tickets
            ],
        }
        for duration, attr in (
            ("first_response_time", "first_response_seconds"),
            ("resolution_time", "resolution_seconds"),
            ("first_response_time_elapsed", None),
            ("resolution_time_elapsed", None),
        ):
            if attr is None:
                values = elapsed[duration]
            else:
                values = [getattr(f, attr) for f in facts if getattr(f, attr) is not None]
            kpis[f"{duration}_mean"] = _mean(values)
            kpis[f"{duration}_median"] = (
                statistics.quantiles(values, n=2, method="inclusive")[0]
                if len(values) > 1
                else (values[0] if values else None)
            )
            kpis[f"{duration}_p90"] = (
                statistics.quantiles(values, n=10, method="inclusive")[8]
                if len(values) > 1
                else (values[0] if values else None)
            )
        expected[key] = kpis
    return expected


def _compare(result_groups: Iterable[tuple[tuple[Any, Any], dict[str, Any]]], expected) -> int:
    compared = 0
    seen = set()
    for key, kpis in result_groups:
        seen.add(key)
        want = expected.get(key)
        for name in ALL_KPIS:
            got = kpis[name].value
            if want is None:
                assert got is None, (key, name)
                continue
            if want[name] is None:
                assert got is None, (key, name, got)
            else:
                assert got == pytest.approx(want[name], rel=1e-9, abs=1e-9), (key, name)
            compared += 1
        skipped = kpis["response_rate"].counts["skipped"]
        assert skipped == (want or {}).get("skipped", {}), key
    assert set(expected) <= seen
    return compared


@pytest.mark.parametrize("grain", [None, "day", "week", "month"])
def test_generated_data_every_group_by_matches_python(data, grain):
    generate(data)
    db.session.flush()
    scope = Scope(start=date(2025, 9, 1), end=date(2025, 9, 30))
    compared = 0
    for group_by in (None, *DIMENSIONS):
        if grain is not None and group_by not in (None, "team", "template_version"):
            continue  # every dimension is covered without a grain
        expected = _expected(scope, group_by, grain)
        result = compute(scope, group_by, grain)
        if group_by is None and grain is None:
            pairs = [((None, None), result.overall)]
        else:
            pairs = [
                (
                    (
                        g.key.get(group_by) if group_by else None,
                        g.key.get("period"),
                    ),
                    g.kpis,
                )
                for g in result.groups
            ]
        compared += _compare(pairs, expected)
    assert compared > 100


def test_generated_data_with_filters_matches_python(data):
    generate(data, seed=11)
    db.session.flush()
    scope = Scope(
        start=date(2025, 9, 1),
        end=date(2025, 9, 30),
        customer_tier=(Tier.STANDARD,),
        channel=(Channel.CHAT, Channel.PHONE),
        customer_is_new=False,
        template_version=(data.versions[0].id,),
    )
    for group_by, grain in ((None, None), ("team", None), ("region", "week")):
        expected = _expected(scope, group_by, grain)
        result = compute(scope, group_by, grain)
        if group_by is None:
            pairs = [((None, None), result.overall)]
        else:
            pairs = [((g.key[group_by], g.key.get("period")), g.kpis) for g in result.groups]
        assert _compare(pairs, expected) > 20


# --- parsing ----------------------------------------------------------------------------------


def test_parse_defaults_to_the_last_30_days(app):
    query = parse_metrics_args({}, timezone="Asia/Shanghai", today=date(2025, 9, 30))
    assert (query.scope.start, query.scope.end) == (date(2025, 9, 1), date(2025, 9, 30))
    assert query.group_by is None and query.grain is None


def test_parse_filters_and_repeated_values(app):
    from werkzeug.datastructures import MultiDict

    args = MultiDict(
        [
            ("from", "2025-09-01"),
            ("to", "2025-09-30"),
            ("team", "A"),
            ("team", "B"),
            ("channel", "chat"),
            ("customer_is_new", "returning"),
            ("template_version", "3"),
            ("group_by", "priority"),
            ("grain", "week"),
        ]
    )
    query = parse_metrics_args(args, timezone="UTC")
    assert query.scope.team == ("A", "B")
    assert query.scope.channel == (Channel.CHAT,)
    assert query.scope.customer_is_new is False
    assert query.scope.template_version == (3,)
    assert (query.group_by, query.grain) == ("priority", "week")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"from": "2025-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2025-9-1"}, "from"),
        ({"from": "2025-09-30", "to": "2025-09-01"}, "from"),
        ({"from": "2000-01-01", "to": "2025-01-01"}, "from"),
        ({"group_by": "colour"}, "group_by"),
        ({"grain": "hour"}, "grain"),
        ({"from": "2020-01-01", "to": "2025-01-01", "grain": "day"}, "grain"),
        ({"channel": "pigeon"}, "channel"),
        ({"priority": "P9"}, "priority"),
        ({"customer_tier": "gold"}, "customer_tier"),
        ({"customer_is_new": "maybe"}, "customer_is_new"),
        ({"template_version": "v2"}, "template_version"),
        ({"teams": "A"}, "teams"),
        ({"team": "x" * 201}, "team"),
    ],
)
def test_parse_refuses_bad_arguments(app, args, field):
    with pytest.raises(ScopeError) as caught:
        parse_metrics_args(args, timezone="UTC", today=date(2025, 9, 30))
    assert field in [error["field"] for error in caught.value.errors]


# --- API and CLI -------------------------------------------------------------------------------


def test_api_returns_every_kpi_with_n_ci_and_version(auth, client, make_user, data):
    data.response(csat_overall=5, nps=10)
    auth.sign_in(make_user(Role.ANALYST))
    response = client.get("/api/v1/metrics?from=2025-09-01&to=2025-09-30&group_by=team")
    assert response.status_code == 200
    body = response.get_json()
    assert body["definitions_version"] == DEFINITIONS_VERSION
    assert body["scope"] == {
        "from": "2025-09-01",
        "to": "2025-09-30",
        "timezone": "Asia/Shanghai",
        "filters": {},
    }
    assert body["group_by"] == "team"
    assert set(body["overall"]) == set(ALL_KPIS)
    nps = body["overall"]["nps"]
    assert nps == {
        "value": 100.0,
        "n": 1,
        "low_confidence": True,
        "unit": "nps",
        "ci95": [100.0, 100.0],
        "counts": {"promoters": 1, "passives": 0, "detractors": 0},
    }
    assert [g["key"] for g in body["groups"]] == [{"team": "Frontline"}]


def test_api_filters(auth, client, make_user, data):
    data.response(data.ticket(team="A"), csat_overall=5)
    data.response(data.ticket(team="B"), csat_overall=1)
    auth.sign_in(make_user(Role.MANAGER))
    body = client.get("/api/v1/metrics?from=2025-09-01&to=2025-09-30&team=B").get_json()
    assert body["overall"]["csat_overall_percent"]["value"] == 0.0
    assert body["scope"]["filters"] == {"team": ["B"]}


@pytest.mark.parametrize(
    "query",
    [
        "from=2025-02-30",
        "from=2025-09-30&to=2025-09-01",
        "group_by=colour",
        "channel=pigeon",
        "grain=year",
        "unknown=1",
    ],
)
def test_api_bad_arguments_are_400_json(auth, client, make_user, query):
    auth.sign_in(make_user(Role.ANALYST))
    response = client.get(f"/api/v1/metrics?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_parameters"
    assert error["fields"] and all({"field", "message"} <= set(f) for f in error["fields"])


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 401), (Role.ANALYST, 200), (Role.MANAGER, 200), (Role.ADMIN, 200)],
)
def test_api_access(auth, client, make_user, role, status):
    if role is not None:
        auth.sign_in(make_user(role))
    response = client.get("/api/v1/metrics")
    assert response.status_code == status
    assert response.is_json
    if status == 401:
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_api_refuses_a_deactivated_session(auth, client, make_user):
    user = make_user(Role.ANALYST)
    auth.sign_in(user)
    user.active = False
    db.session.commit()
    assert client.get("/api/v1/metrics").status_code == 401


def test_cli_json_is_the_api_json(auth, client, make_user, runner, data):
    data.response(csat_overall=4, nps=7, ces=6)
    data.ticket(priority="P3")
    db.session.commit()
    auth.sign_in(make_user(Role.ANALYST))
    api = client.get("/api/v1/metrics?from=2025-09-01&to=2025-09-30&group_by=priority").get_json()
    result = runner.invoke(
        args=[
            "metrics",
            "--from",
            "2025-09-01",
            "--to",
            "2025-09-30",
            "--group-by",
            "priority",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == api


def test_cli_table_and_filters(runner, data):
    data.response(data.ticket(team="A", channel="phone"), csat_overall=4, nps=10)
    db.session.commit()
    result = runner.invoke(
        args=[
            "metrics",
            "--from",
            "2025-09-01",
            "--to",
            "2025-09-30",
            "--team",
            "A",
            "--channel",
            "phone",
            "--grain",
            "month",
        ]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "definitions " + DEFINITIONS_VERSION in lines[0]
    assert any(line.startswith("nps") and "100.0" in line and "1*" in line for line in lines)
    assert "== period=2025-09-01" in result.output


@pytest.mark.parametrize(
    "args",
    [["--from", "2025-9-1"], ["--channel", "pigeon"], ["--customer-is-new", "perhaps"]],
)
def test_cli_bad_arguments_exit_2(runner, args):
    result = runner.invoke(args=["metrics", *args])
    assert result.exit_code == 2
    assert "Error" in result.output
