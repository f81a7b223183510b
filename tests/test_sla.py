"""SLA: the seeded policy, tier overrides, working-hours clocks on the official Chinese calendar,
the intake hook, recomputing after a policy change, and the admin page."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from analysis.sla.calendar import WorkingCalendar
from analysis.sla.models import SlaClock, SlaPolicy, TicketSla
from analysis.sla.services import (
    DEFAULT_POLICY,
    SlaPolicyError,
    choose_policy,
    delete_sla_override,
    measure,
    recompute_if_stale,
    save_sla_policy,
    sla_policies,
)
from survey_app.extensions import db
from survey_app.models import Priority, Role, Ticket, Tier
from tests.conftest import csrf_token, event_payload
from tests.kpi_data import KpiData

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = WorkingCalendar()
WEEKDAYS = WorkingCalendar(country="weekdays")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def p3() -> SlaPolicy:
    """PRODUCT.md's P3 rule: 2 h first response, 8 h resolution, working hours."""
    return SlaPolicy(
        priority=Priority.P3,
        first_response_minutes=120,
        resolution_minutes=480,
        clock=SlaClock.WORKING_HOURS,
    )


# --- the calendar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 9, 26), True),  # Friday
        (date(2025, 9, 27), False),  # Saturday
        (date(2025, 9, 28), True),  # Sunday, worked for National Day
        (date(2025, 10, 1), False),  # National Day
        (date(2025, 10, 8), False),  # still the holiday (a Wednesday)
        (date(2025, 10, 9), True),
        (date(2025, 10, 11), True),  # Saturday, worked for National Day
        (date(2026, 10, 1), False),
        (date(2026, 10, 10), True),  # Saturday, worked (PRODUCT.md)
    ],
)
def test_official_chinese_calendar(day, working):
    assert CN.is_working_day(day) is working


def test_configured_days_override_the_calendar():
    calendar = WorkingCalendar(
        holidays=frozenset({date(2025, 9, 26)}), extra_workdays=frozenset({date(2025, 9, 27)})
    )
    assert calendar.is_working_day(date(2025, 9, 26)) is False
    assert calendar.is_working_day(date(2025, 9, 27)) is True


def test_a_year_without_official_data_falls_back_to_weekdays_with_a_warning(caplog):
    calendar = WorkingCalendar()
    with caplog.at_level(logging.WARNING, logger="analysis.sla.calendar"):
        assert calendar.is_working_day(date(2099, 1, 5)) is True  # Monday
        assert calendar.is_working_day(date(2099, 1, 3)) is False  # Saturday
        calendar.is_working_day(date(2099, 1, 6))
    warnings = [r for r in caplog.records if "2099" in r.getMessage()]
    assert len(warnings) == 1


def test_working_seconds_within_one_day_and_across_a_weekend():
    assert CN.working_seconds(local(2025, 9, 3, 8), local(2025, 9, 3, 10)) == 3600
    assert CN.working_seconds(local(2025, 9, 3, 17), local(2025, 9, 3, 20)) == 3600
    # Friday 17:00 → Monday 10:00: 1 h + 1 h.
    assert CN.working_seconds(local(2025, 9, 5, 17), local(2025, 9, 8, 10)) == 7200
    assert CN.working_seconds(local(2025, 9, 8, 10), local(2025, 9, 8, 9)) == 0


def test_working_hours_and_zone_come_from_the_config():
    calendar = WorkingCalendar.from_config(
        {
            "SLA_WORKING_HOURS": "08:30-17:30",
            "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
            "SLA_CALENDAR": "weekdays",
            "SLA_HOLIDAYS": ["2025-09-03"],
        }
    )
    assert (calendar.start, calendar.end) == (time(8, 30), time(17, 30))
    assert calendar.timezone == "Asia/Shanghai"
    assert calendar.is_working_day(date(2025, 9, 3)) is False
    with pytest.raises(ValueError):
        WorkingCalendar.from_config({"SLA_CALENDAR": "mars"})
    with pytest.raises(ValueError):
        WorkingCalendar.from_config({"SLA_WORKING_HOURS": "18:00-09:00"})


# --- measuring a ticket ------------------------------------------------------------------------


def test_a_breach_spanning_the_working_sunday_before_national_day():
    # Friday 26 Sep 17:00 → Sunday 28 Sep (a working day) 10:30: 1 h + 1.5 h = 2.5 h > 2 h.
    facts = measure(
        created_at=local(2025, 9, 26, 17),
        first_response_at=local(2025, 9, 28, 10, 30),
        resolved_at=local(2025, 9, 28, 12),
        closed_at=local(2025, 9, 28, 12),
        policy=p3(),
        calendar=CN,
    )
    assert facts.first_response_seconds == int(2.5 * 3600)
    assert facts.response_breached is True
    assert facts.resolution_breached is False  # 4 h of 8
    assert facts.breached is True
    # With Monday–Friday only, the Sunday does not count: 1 h + 0, no breach.
    relaxed = measure(
        created_at=local(2025, 9, 26, 17),
        first_response_at=local(2025, 9, 28, 10, 30),
        resolved_at=local(2025, 9, 28, 12),
        closed_at=local(2025, 9, 28, 12),
        policy=p3(),
        calendar=WEEKDAYS,
    )
    assert relaxed.first_response_seconds == 3600
    assert relaxed.breached is False


def test_the_national_day_holiday_does_not_count():
    # Tuesday 30 Sep 17:00 → Thursday 9 Oct 12:00: 1 h + (1–8 Oct off) + 3 h = 4 h.
    facts = measure(
        created_at=local(2025, 9, 30, 17),
        first_response_at=local(2025, 9, 30, 17, 30),
        resolved_at=local(2025, 10, 9, 12),
        closed_at=local(2025, 10, 9, 13),
        policy=p3(),
        calendar=CN,
    )
    assert facts.resolution_seconds == 4 * 3600
    assert facts.resolution_breached is False
    assert facts.breached is False
    # The same ticket on a 24×7 clock: over 8 days, breached.
    always = p3()
    always.clock = SlaClock.ALWAYS
    facts = measure(
        created_at=local(2025, 9, 30, 17),
        first_response_at=local(2025, 9, 30, 17, 30),
        resolved_at=local(2025, 10, 9, 12),
        closed_at=local(2025, 10, 9, 13),
        policy=always,
        calendar=CN,
    )
    assert facts.resolution_seconds == (8 * 24 + 19) * 3600
    assert facts.breached is True


def test_a_breach_on_the_working_saturday_after_national_day():
    # Saturday 11 Oct 2025 is a working day: 09:00 → 12:00 is 3 h > 2 h.
    facts = measure(
        created_at=local(2025, 10, 11, 9),
        first_response_at=local(2025, 10, 11, 12),
        resolved_at=local(2025, 10, 11, 13),
        closed_at=local(2025, 10, 11, 13),
        policy=p3(),
        calendar=CN,
    )
    assert facts.response_breached is True
    # A plain Saturday (18 Oct): nothing counts until Monday.
    facts = measure(
        created_at=local(2025, 10, 18, 9),
        first_response_at=local(2025, 10, 18, 12),
        resolved_at=local(2025, 10, 18, 13),
        closed_at=local(2025, 10, 18, 13),
        policy=p3(),
        calendar=CN,
    )
    assert facts.first_response_seconds == 0
    assert facts.breached is False


def test_exactly_on_target_is_met_and_unknown_stays_unknown():
    policy = SlaPolicy(
        priority=Priority.P1,
        first_response_minutes=15,
        resolution_minutes=120,
        clock=SlaClock.ALWAYS,
    )
    start = datetime(2025, 9, 1, tzinfo=UTC)
    facts = measure(
        created_at=start,
        first_response_at=start + timedelta(minutes=15),
        resolved_at=None,
        closed_at=None,
        policy=policy,
        calendar=CN,
    )
    assert facts.response_breached is False
    assert facts.resolution_breached is None
    assert facts.breached is None
    late = measure(
        created_at=start,
        first_response_at=start + timedelta(minutes=16),
        resolved_at=None,
        closed_at=None,
        policy=policy,
        calendar=CN,
    )
    assert late.breached is True  # already missed, whatever happens next


# --- the policy --------------------------------------------------------------------------------


def test_defaults_are_seeded_from_the_product_brief(app):
    rules = sla_policies()
    assert [(r.priority, r.customer_tier) for r in rules] == [(p, None) for p in Priority]
    for rule in rules:
        response, resolution, clock = DEFAULT_POLICY[rule.priority]
        assert (rule.first_response_minutes, rule.resolution_minutes, rule.clock) == (
            response,
            resolution,
            clock,
        )
    assert DEFAULT_POLICY[Priority.P1] == (15, 120, SlaClock.ALWAYS)
    assert DEFAULT_POLICY[Priority.P4] == (240, 1440, SlaClock.WORKING_HOURS)


def test_a_tier_override_wins_for_that_tier(app):
    save_sla_policy(
        Priority.P2,
        Tier.VIP,
        first_response_minutes=10,
        resolution_minutes=60,
        clock=SlaClock.ALWAYS,
    )
    rules = sla_policies()
    assert choose_policy(rules, Priority.P2, Tier.VIP).first_response_minutes == 10
    assert choose_policy(rules, Priority.P2, Tier.STANDARD).first_response_minutes == 30
    # Saving again updates the same row.
    save_sla_policy(
        Priority.P2,
        Tier.VIP,
        first_response_minutes=12,
        resolution_minutes=60,
        clock=SlaClock.ALWAYS,
    )
    assert len(sla_policies()) == 5


@pytest.mark.parametrize(("response", "resolution"), [(0, 60), (60, 0), (60, 90 * 24 * 60 + 1)])
def test_targets_out_of_range_are_refused(app, response, resolution):
    with pytest.raises(SlaPolicyError):
        save_sla_policy(
            Priority.P1,
            None,
            first_response_minutes=response,
            resolution_minutes=resolution,
            clock=SlaClock.ALWAYS,
        )


def test_a_base_rule_cannot_be_deleted(app):
    base = sla_policies()[0]
    with pytest.raises(SlaPolicyError):
        delete_sla_override(base.id)
    with pytest.raises(SlaPolicyError):
        delete_sla_override(999_999)


# --- intake and recomputing --------------------------------------------------------------------


def test_intake_stores_the_facts_of_every_changed_ticket(app, webhook):
    payload = event_payload(
        ticket={"priority": "P1", "first_response_at": "2026-11-01T09:20:00+08:00"}
    )
    assert webhook.post(payload).status_code == 201
    ticket = db.session.scalar(select(Ticket))
    facts = db.session.get(TicketSla, ticket.id)
    assert facts.first_response_seconds == 20 * 60
    assert facts.response_breached is True  # P1: 15 min
    assert facts.closed_at == ticket.closed_at

    reopened = event_payload(event="reopened", event_id="reopen-1")
    reopened["occurred_at"] = "2026-11-01T13:00:00+08:00"
    assert webhook.post(reopened).status_code == 200
    db.session.expire_all()
    facts = db.session.get(TicketSla, ticket.id)
    assert facts.closed_at is None
    assert facts.resolution_seconds is None


def test_recompute_after_a_policy_change(app, runner):
    data = KpiData()
    ticket = data.ticket(priority="P1", first_response_after=timedelta(minutes=20))
    db.session.commit()
    assert db.session.get(TicketSla, ticket.id).response_breached is True
    save_sla_policy(
        Priority.P1, None, first_response_minutes=30, resolution_minutes=240, clock=SlaClock.ALWAYS
    )
    db.session.commit()

    result = runner.invoke(args=["metrics", "recompute-sla"])

    assert result.exit_code == 0, result.output
    assert "1 tickets measured." in result.output
    db.session.expire_all()
    facts = db.session.get(TicketSla, ticket.id)
    assert facts.response_breached is False
    assert facts.first_response_target_minutes == 30


def test_the_customer_tier_picks_the_override(app):
    save_sla_policy(
        Priority.P1,
        Tier.VIP,
        first_response_minutes=5,
        resolution_minutes=60,
        clock=SlaClock.ALWAYS,
    )
    data = KpiData()
    vip = data.ticket(priority="P1", tier="vip", first_response_after=timedelta(minutes=10))
    standard = data.ticket(priority="P1", first_response_after=timedelta(minutes=10))
    assert db.session.get(TicketSla, vip.id).response_breached is True
    assert db.session.get(TicketSla, standard.id).response_breached is False


# --- the admin page ----------------------------------------------------------------------------


def test_admin_page_lists_the_rules_and_the_calendar(auth, client, make_user):
    auth.sign_in(make_user(Role.ADMIN))
    page = client.get("/admin/sla").get_data(as_text=True)
    for priority in ("P1", "P2", "P3", "P4"):
        assert f'data-priority="{priority}" data-tier=""' in page
    assert "official Chinese calendar" in page
    assert "09:00–18:00" in page


def test_admin_saves_a_vip_rule_and_tickets_are_measured_again(auth, client, make_user):
    data = KpiData()
    ticket = data.ticket(priority="P3", tier="vip", first_response_after=timedelta(minutes=90))
    db.session.commit()
    auth.sign_in(make_user(Role.ADMIN))
    response = client.post(
        "/admin/sla",
        data={
            "priority": "P3",
            "customer_tier": "vip",
            "first_response_minutes": "60",
            "resolution_minutes": "240",
            "clock": "24x7",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 302

    def facts() -> TicketSla:
        db.session.commit()
        db.session.expire_all()
        return db.session.get(TicketSla, ticket.id)

    # Not in the admin's request: the periodic job measures the tickets again.
    assert facts().first_response_target_minutes != 60
    assert recompute_if_stale() >= 1
    assert (facts().clock, facts().first_response_target_minutes) == (SlaClock.ALWAYS, 60)
    assert facts().response_breached is True
    assert recompute_if_stale() == 0
    page = client.get("/admin/sla").get_data(as_text=True)
    assert 'data-priority="P3" data-tier="vip"' in page


@pytest.mark.parametrize(
    "fields",
    [
        {"first_response_minutes": "0"},
        {"resolution_minutes": "abc"},
        {"priority": "P9"},
        {"clock": "sometimes"},
        {"customer_tier": "gold"},
    ],
)
def test_admin_form_refuses_bad_values(auth, client, make_user, fields):
    auth.sign_in(make_user(Role.ADMIN))
    data = {
        "priority": "P1",
        "customer_tier": "",
        "first_response_minutes": "15",
        "resolution_minutes": "120",
        "clock": "24x7",
        **fields,
        "csrf_token": csrf_token(client),
    }
    assert client.post("/admin/sla", data=data).status_code == 400
    assert (
        db.session.scalar(select(SlaPolicy).where(SlaPolicy.first_response_minutes == 0)) is None
    )


def test_admin_deletes_an_override_not_a_base_rule(auth, client, make_user):
    override = save_sla_policy(
        Priority.P1,
        Tier.VIP,
        first_response_minutes=5,
        resolution_minutes=60,
        clock=SlaClock.ALWAYS,
    )
    base = sla_policies()[0]
    db.session.commit()
    auth.sign_in(make_user(Role.ADMIN))
    token = csrf_token(client)
    assert (
        client.post(f"/admin/sla/{base.id}/delete", data={"csrf_token": token}).status_code == 302
    )
    page = client.get("/admin/sla").get_data(as_text=True)
    assert "cannot be deleted" in page
    response = client.post(f"/admin/sla/{override.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert db.session.scalar(select(SlaPolicy).where(SlaPolicy.customer_tier == Tier.VIP)) is None


def test_deleting_an_override_makes_the_job_measure_again(app):
    data = KpiData()
    ticket = data.ticket(priority="P1", tier="vip", first_response_after=timedelta(minutes=20))
    override = save_sla_policy(
        Priority.P1, Tier.VIP, first_response_minutes=5, resolution_minutes=60,
        clock=SlaClock.ALWAYS,
    )  # fmt: skip
    db.session.commit()
    assert recompute_if_stale() >= 1
    assert db.session.get(TicketSla, ticket.id).first_response_target_minutes == 5

    delete_sla_override(override.id)
    db.session.commit()
    assert recompute_if_stale() >= 1
    db.session.expire_all()
    assert db.session.get(TicketSla, ticket.id).first_response_target_minutes != 5
    assert recompute_if_stale() == 0


def test_the_bulk_path_chooses_the_terms_choose_policy_would(app):
    from analysis.sla.services import _terms_chooser

    save_sla_policy(
        Priority.P2, Tier.VIP, first_response_minutes=10, resolution_minutes=60,
        clock=SlaClock.ALWAYS,
    )  # fmt: skip
    save_sla_policy(
        Priority.P4, Tier.VIP, first_response_minutes=20, resolution_minutes=90,
        clock=SlaClock.WORKING_HOURS,
    )  # fmt: skip
    rules = sla_policies()
    choose = _terms_chooser(rules)

    for priority in Priority:
        for tier in (*Tier, None):
            row = choose_policy(rules, priority, tier)
            terms = choose(priority, tier)
            assert row is not None and terms is not None
            assert (terms.clock, terms.first_response_minutes, terms.resolution_minutes) == (
                row.clock,
                row.first_response_minutes,
                row.resolution_minutes,
            ), (priority, tier)
    assert choose(Priority.P2, Tier.VIP).first_response_minutes == 10
    assert choose(Priority.P2, Tier.STANDARD).first_response_minutes == 30
    assert choose(Priority.P2.value, Tier.VIP.value).first_response_minutes == 10  # as read
