"""``closedloop demo``: accounts and 90 days of closed tickets, safe to run twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from survey_app.demo import DEMO_PASSWORD, DEMO_USERS, TEAMS, demo_events
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

#: SQL semantics: this module runs on SQLite and PostgreSQL (see README, Development).
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
    }


def distinct(column: object) -> set[object]:
    return set(db.session.scalars(select(column).distinct()))  # type: ignore[call-overload]


@pytest.fixture
def seeded(runner) -> str:
    """Run the demo command once; return its output."""
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

    from survey_app.demo_surveys import FIRST_RESPONSE_SLA

    late, on_time = [], []
    for response in responses:
        ticket = db.session.get(Ticket, response.ticket_id)
        waited = (ticket.first_response_at - ticket.created_at).total_seconds() / 60
        breached = waited > FIRST_RESPONSE_SLA[ticket.priority.value]
        (late if breached else on_time).append(response.csat_overall)
    assert late and on_time
    assert sum(late) / len(late) < sum(on_time) / len(on_time) - 0.5
