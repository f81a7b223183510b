"""``closedloop demo``: accounts and 90 days of closed tickets, safe to run twice."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from analysis.targets.models import KpiTarget
from survey_app.demo import DEMO_PASSWORD, DEMO_USERS, ON_CALL, TEAMS, demo_events
from survey_app.demo_clock import DemoClock
from survey_app.extensions import db
from survey_app.models import (
    Customer,
    Role,
    Ticket,
    TicketEvent,
    TicketStatus,
    Tier,
    User,
)
from survey_app.surveys.models import Invitation, SurveyResponse
from survey_app.types import utcnow

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

TICKETS = 200
CUSTOMERS = 40
DEMO_ARGS = ["demo", "--tickets", str(TICKETS), "--customers", str(CUSTOMERS)]


def count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def counts() -> dict[str, int]:
    return {
        "tickets": count(Ticket),
        "customers": count(Customer),
        "users": count(User),
        "events": count(TicketEvent),
        "invitations": count(Invitation),
        "responses": count(SurveyResponse),
        "targets": count(KpiTarget),
    }


def distinct(column: object) -> set[object]:
    return set(db.session.scalars(select(column).distinct()))  # type: ignore[call-overload]


#: The instant the demo counts back from in these tests: its tickets' times (so their SLA
#: outcomes, so their scores and comments) depend on it, and 200 tickets give a few dozen
#: answers: counting back from now, some days had no complaint the engine reads as negative,
#: or too few late answers to score lower on average. This one's demo held
#: 被转来转去，体验很差, which read as neutral until n-grams ending in 很 were dropped.
DEMO_NOW = datetime(2026, 12, 5, 4, 30, tzinfo=UTC)


@pytest.fixture
def seeded(runner, monkeypatch) -> str:
    """Run the demo command once, counting back from :data:`DEMO_NOW`; return its output."""
    import survey_app.demo
    import survey_app.demo_surveys

    for module in (survey_app.demo, survey_app.demo_surveys):
        monkeypatch.setattr(module, "utcnow", lambda: DEMO_NOW)
    result = runner.invoke(args=DEMO_ARGS)
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_twice_creates_nothing_the_second_time(runner, seeded):
    assert f"{TICKETS} tickets created, 0 already there; 3 accounts created;" in seeded
    first = counts()
    # Every demo ticket has a survey decision; some customers answered.
    assert first["invitations"] == TICKETS
    assert 0 < first["responses"] < TICKETS
    assert first["tickets"] == first["events"] == TICKETS
    assert 0 < first["customers"] <= CUSTOMERS
    assert first["users"] == len(DEMO_USERS)

    again = runner.invoke(args=DEMO_ARGS)

    assert again.exit_code == 0, again.output
    assert (
        f"0 tickets created, {TICKETS} already there; 0 accounts created; "
        "0 survey answers added." in again.output
    )
    assert counts() == first


def test_demo_accounts_sign_in_with_the_demo_password(seeded, auth, client):
    assert f"with password {DEMO_PASSWORD}" in seeded
    roles = dict(db.session.execute(select(User.email, User.role)).all())
    assert roles == {email: role for email, role, _name in DEMO_USERS}
    assert roles["admin@example.com"] is Role.ADMIN

    response = auth.login("admin@example.com", DEMO_PASSWORD)
    assert response.status_code == 302
    listing = client.get("/tickets", headers={"Accept-Language": "zh-CN"})
    assert listing.status_code == 200
    assert "DEMO-T" in listing.get_data(as_text=True)
    assert client.get("/admin/users").status_code == 200


def test_demo_prints_the_accounts_and_survey_links_to_answer(app, seeded, client):
    assert "KPI targets: 4 demo targets set (CSAT %, NPS, FRT P90, FCR)." in seeded
    assert count(KpiTarget) == 4
    base = app.config["PUBLIC_URL"]
    assert f"Sign in at {base}/login with password closedloop-demo as:" in seeded
    for email, _role, _name in DEMO_USERS:
        assert f"  {email} " in seeded
    assert "  analyst@example.com    quality analyst" in seeded
    _accounts, links = seeded.split("Survey links waiting for the customer's answer")
    shown = re.findall(rf"^  (DEMO-T\d+)  {re.escape(base)}(/s/\S+)$", links, re.MULTILINE)
    assert 1 <= len(shown) <= 3
    for ticket, path in shown:
        page = client.get(path)
        assert page.status_code == 200, ticket
        assert 'class="survey-form' in page.get_data(as_text=True)
    assert links.rstrip().endswith("More: closedloop surveys link <ticket>.")
    # An answer the history would date after now is left for the visitor to give.
    assert db.session.scalar(select(func.max(SurveyResponse.submitted_at))) <= utcnow()


def test_demo_tickets_are_plausible(seeded):
    now = utcnow()
    tickets = db.session.scalars(select(Ticket)).all()
    assert len(tickets) == TICKETS
    for ticket in tickets:
        assert ticket.status is TicketStatus.CLOSED
        assert ticket.source == "demo"
        assert ticket.closed_at is not None
        assert now - timedelta(days=90) <= ticket.closed_at <= now
        assert ticket.first_response_at is not None
        assert ticket.resolved_at is not None
        assert ticket.created_at <= ticket.first_response_at <= ticket.resolved_at
        assert ticket.resolved_at <= ticket.closed_at
        assert ticket.contact_count >= 1
        assert ticket.agent in TEAMS[ticket.team or ""]


def test_demo_tickets_spread_over_teams_channels_and_priorities(seeded):
    assert distinct(Ticket.team) == set(TEAMS)
    assert len(distinct(Ticket.channel)) >= 4
    assert {p.value for p in distinct(Ticket.priority)} == {"P1", "P2", "P3", "P4"}
    assert len(distinct(Ticket.category)) >= 4
    assert len(distinct(Ticket.region)) >= 3
    # Spread over the period too, not bunched on one day.
    days = {ticket.closed_at.date() for ticket in db.session.scalars(select(Ticket))}
    assert len(days) >= 30


def test_vip_customers_go_to_the_vip_desk(seeded):
    query = select(Ticket.team).join(Ticket.customer).where(Customer.tier == Tier.VIP)
    assert set(db.session.scalars(query.distinct())) == {"VIP 专席 VIP desk"}


def test_demo_events_are_deterministic():
    first, second = demo_events(customers=10, tickets=20), demo_events(customers=10, tickets=20)
    assert len(first) == 20
    strip = ("occurred_at", "created_at", "first_response_at", "resolved_at", "closed_at")

    def without_times(events: list[dict]) -> list[dict]:
        return [
            {
                **event,
                "occurred_at": None,
                "ticket": {k: v for k, v in event["ticket"].items() if k not in strip},
            }
            for event in events
        ]

    assert without_times(first) == without_times(second)
    assert len({event["event_id"] for event in first}) == 20


def test_demo_scores_follow_the_service(seeded):
    """Customers whose first response broke the SLA score lower, as in real data."""
    from survey_app.surveys.models import InvitationStatus, SkipReason

    responses = db.session.scalars(select(SurveyResponse)).all()
    assert all(1 <= r.csat_overall <= 5 for r in responses)
    assert all(r.nps is None or 0 <= r.nps <= 10 for r in responses)
    statuses = set(db.session.scalars(select(Invitation.status).distinct()))
    assert {InvitationStatus.ANSWERED, InvitationStatus.SENT} <= statuses
    reasons = set(db.session.scalars(select(Invitation.skip_reason).distinct()))
    assert reasons <= {None, SkipReason.FATIGUE}

    from analysis.sla.models import TicketSla

    # Late on the SLA's clock (working hours for P3/P4), as the ticket's SLA facts say.
    late, on_time = [], []
    for response in responses:
        breached = db.session.get(TicketSla, response.ticket_id).response_breached
        (late if breached else on_time).append(response.csat_overall)
    assert late and on_time
    assert sum(late) / len(late) < sum(on_time) / len(on_time) - 0.5


# --- the demo's clock --------------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI).astimezone(UTC)


def test_demo_clock_waits_for_working_hours_over_nights_weekends_and_holidays():
    clock = DemoClock()
    # Night: 22:00 + 30 working minutes = 09:30 next morning.
    assert clock.add_working_minutes(local(2026, 9, 15, 22, 0), 30) == local(2026, 9, 16, 9, 30)
    # Weekend: Friday 17:30 + 60 = Monday 09:30.
    assert clock.add_working_minutes(local(2026, 9, 11, 17, 30), 60) == local(2026, 9, 14, 9, 30)
    # National Day (1-7 October 2026 off): 30 September 17:30 + 60 = 8 October 09:30.
    assert clock.add_working_minutes(local(2026, 9, 30, 17, 30), 60) == local(2026, 10, 8, 9, 30)
    # Sunday 20 September 2026 is an adjusted working day.
    assert clock.add_working_minutes(local(2026, 9, 19, 12, 0), 60) == local(2026, 9, 20, 10, 0)
    assert clock.working_minutes(local(2026, 9, 30, 17, 30), local(2026, 10, 8, 9, 30)) == 60
    assert clock.working_minutes(local(2026, 9, 16, 9, 30), local(2026, 9, 15, 22, 0)) == 0


def test_demo_clock_arrivals_peak_in_working_hours():
    clock = DemoClock()
    workday, night = local(2026, 9, 16, 10, 0), local(2026, 9, 16, 3, 0)
    weekend, holiday = local(2026, 9, 12, 10, 0), local(2026, 10, 2, 10, 0)
    weights = {
        name: clock.arrival_weight(moment.astimezone(SHANGHAI))
        for name, moment in [
            ("workday", workday),
            ("night", night),
            ("weekend", weekend),
            ("holiday", holiday),
        ]
    }
    assert weights["workday"] > 5 * weights["weekend"] > 0
    assert weights["weekend"] > weights["holiday"] > weights["night"] > 0


def test_demo_arrivals_follow_the_day_and_the_week():
    clock = DemoClock()
    events = demo_events(customers=50, tickets=3000, clock=clock)
    created = [datetime.fromisoformat(e["ticket"]["created_at"]) for e in events]
    in_hours = sum(clock.is_working_time(moment) for moment in created)
    at_night = sum(moment.astimezone(SHANGHAI).hour < 7 for moment in created)
    days_off = [m for m in created if not clock.is_working_day(m.astimezone(SHANGHAI).date())]
    assert in_hours / len(created) > 0.6
    assert at_night / len(created) < 0.05
    # About 85 days: some 25 days off carry far fewer tickets per day than working days.
    working_days = {m.astimezone(SHANGHAI).date() for m in created} - {
        m.astimezone(SHANGHAI).date() for m in days_off
    }
    off_days = {m.astimezone(SHANGHAI).date() for m in days_off}
    per_working_day = (len(created) - len(days_off)) / len(working_days)
    assert len(days_off) / len(off_days) < 0.4 * per_working_day


def test_demo_first_responses_wait_for_working_hours_except_on_call():
    clock = DemoClock()
    after_hours: dict[str, list[bool]] = {"P1": [], "P2": [], "P3": [], "P4": []}
    for event in demo_events(customers=50, tickets=3000, clock=clock):
        ticket = event["ticket"]
        created = datetime.fromisoformat(ticket["created_at"])
        answered = datetime.fromisoformat(ticket["first_response_at"])
        if not clock.is_working_time(created):
            after_hours[ticket["priority"]].append(clock.is_working_time(answered))
    # P3/P4 opened after hours are all answered in working hours.
    assert after_hours["P3"] and all(after_hours["P3"])
    assert after_hours["P4"] and all(after_hours["P4"])
    # P1/P2: mostly on call (answered out of hours) for P1, a smaller share for P2.
    for priority in ("P1", "P2"):
        answered_at_night = after_hours[priority].count(False) / len(after_hours[priority])
        assert 0 < answered_at_night < 1
    assert ON_CALL["P1"] > ON_CALL["P2"]


def test_demo_first_response_median_is_not_zero_on_either_clock(seeded):
    from analysis.metrics import Scope, compute

    today = datetime.now(SHANGHAI).date()
    scope = Scope(start=today - timedelta(days=91), end=today, timezone="Asia/Shanghai")
    kpis = compute(
        scope, metrics=["first_response_time_median", "first_response_time_elapsed_median"]
    ).overall
    business = kpis["first_response_time_median"]
    elapsed = kpis["first_response_time_elapsed_median"]
    assert business.n == elapsed.n == TICKETS
    # Minutes to a couple of hours of working time; more on the calendar clock.
    assert 10 * 60 < business.value < 3 * 3600
    assert elapsed.value > business.value


def test_demo_arrivals_quiet_down_over_national_day():
    import random

    clock = DemoClock()
    # 28 September to 11 October 2026: National Day 1-7 October, 10 October a working Saturday.
    pattern = clock.arrivals(local(2026, 9, 28, 0, 0), local(2026, 10, 12, 0, 0))
    rng = random.Random(7)
    days = [pattern.draw(rng).astimezone(SHANGHAI).date() for _ in range(5000)]
    holiday = sum(date(2026, 10, 1) <= day <= date(2026, 10, 7) for day in days) / 7
    working = sum(clock.is_working_day(day) for day in days) / 6  # 28-30 Sep, 8-10 Oct
    sunday = days.count(date(2026, 10, 11))
    assert working > 4 * holiday
    assert holiday < sunday  # a holiday is quieter than a plain weekend day


def test_demo_comments_are_many_distinct_and_fit_their_scores(app):
    """Hundreds of distinct comments, praise for good scores and complaints for bad ones
    (issue 13, part 5); the few contradictions are on purpose."""
    import random
    from collections import Counter

    from analysis.sentiment.engine import score
    from survey_app.demo_comments import CONTRADICTION_SHARE, TicketStory, demo_comment

    rng = random.Random(13)
    written = []
    for _n in range(1200):
        story = TicketStory(rng.random() < 0.3, rng.choice([1, 1, 1, 2, 3]), rng.random() < 0.1)
        overall = rng.choice([1, 2, 4, 5])
        language = rng.choice(["zh_Hans", "zh_Hans", "zh_Hans", "en"])
        written.append((overall, demo_comment(story, overall, language, rng)))
    assert len({text for _overall, text in written}) >= 300
    happy = Counter(score(text).label for overall, text in written if overall >= 4)
    unhappy = Counter(score(text).label for overall, text in written if overall <= 2)
    # Read by the shipped engine: praise is rarely read as a complaint and the other way round
    # (contradictions, CONTRADICTION_SHARE, and the engine's misreadings included).
    assert happy["negative"] / sum(happy.values()) < 0.10 + CONTRADICTION_SHARE
    assert unhappy["positive"] / sum(unhappy.values()) < 0.10 + CONTRADICTION_SHARE
    assert unhappy["negative"] > unhappy["positive"] * 4
    assert happy["positive"] > happy["negative"] * 4


@pytest.mark.slow
def test_demo_top_negative_themes_are_complaints(seeded):
    """The first dashboard is truthful (issue 13, part 5): the words most often found in
    negative demo comments are complaint words, not praise such as 解决 or 省心."""
    from analysis.dashboards import queries
    from analysis.metrics import Scope

    today = DEMO_NOW.date()
    themes = queries.top_negative_themes(Scope(start=today - timedelta(days=400), end=today))
    assert themes
    # Dimension nouns (态度, 专业 from 不够专业) may appear; words of praise may not.
    praise = {"解决", "省心", "满意", "及时", "耐心", "很好", "快", "solved", "fixed"}
    assert not {theme.keyword for theme in themes[:5]} & praise
