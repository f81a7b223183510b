"""``POST /api/v1/ticket-events``: signing, validation, idempotency and the rows it writes."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from survey_app.extensions import db
from survey_app.intake.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    verify,
)
from survey_app.models import (
    Channel,
    Customer,
    EventType,
    Priority,
    Ticket,
    TicketEvent,
    TicketStatus,
    Tier,
)
from tests.conftest import WEBHOOK_SECRET, Webhook, event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

URL = "/api/v1/ticket-events"
#: event_payload()'s times, in UTC (they are sent as +08:00).
CREATED = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
FIRST_RESPONSE = datetime(2026, 11, 1, 1, 10, tzinfo=UTC)
RESOLVED = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
CLOSED = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)


def count(model: type[db.Model]) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def row_counts() -> dict[str, int]:
    return {
        "customer": count(Customer),
        "ticket": count(Ticket),
        "ticket_event": count(TicketEvent),
    }


def assert_nothing_written() -> None:
    assert row_counts() == {"customer": 0, "ticket": 0, "ticket_event": 0}


def only(model: type[db.Model]) -> Any:
    rows = db.session.scalars(db.select(model)).all()
    assert len(rows) == 1, rows
    return rows[0]


def events() -> list[TicketEvent]:
    return list(db.session.scalars(db.select(TicketEvent).order_by(TicketEvent.id)))


def without(payload: dict[str, Any], *paths: str) -> dict[str, Any]:
    """A copy of ``payload`` without the dotted ``paths`` (``ticket.closed_at``)."""
    result = copy.deepcopy(payload)
    for path in paths:
        *parents, name = path.split(".")
        target = result
        for parent in parents:
            target = target[parent]
        del target[name]
    return result


def reopened_payload(**overrides: Any) -> dict[str, Any]:
    """A ``reopened`` event that, like a real one, carries no resolved/closed time."""
    return without(
        event_payload(event="reopened", **overrides), "ticket.resolved_at", "ticket.closed_at"
    )


def signed_headers(body: bytes, *, secret: str = WEBHOOK_SECRET, stamp: int | None = None):
    stamp = int(time.time()) if stamp is None else stamp
    return {
        SIGNATURE_HEADER: sign(secret, stamp, body),
        TIMESTAMP_HEADER: str(stamp),
        "Content-Type": "application/json",
    }


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


# --- accepted events ---------------------------------------------------------------------------


def test_closed_event_creates_customer_ticket_and_event(webhook: Webhook, app: Flask) -> None:
    payload = event_payload()
    body = json.dumps(payload).encode()
    response = webhook.post(body)

    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["result"] == "created"
    ticket = only(Ticket)
    customer = only(Customer)
    event = only(TicketEvent)
    assert answer == {"result": "created", "ticket_id": ticket.id, "event_id": event.id}

    assert (ticket.source, ticket.external_id) == ("helpdesk", "T-1001")
    assert ticket.customer_id == customer.id
    assert ticket.subject == "Cannot log in"
    assert ticket.channel is Channel.CHAT
    assert ticket.priority is Priority.P2
    assert (ticket.category, ticket.product_line, ticket.region) == ("账号登录", "云存储", "华东")
    assert (ticket.team, ticket.agent) == ("Frontline", "王芳")
    assert ticket.status is TicketStatus.CLOSED
    assert (ticket.reopen_count, ticket.contact_count) == (0, 1)
    # Stored as aware UTC, whatever offset the sender used.
    assert ticket.created_at == CREATED
    assert ticket.first_response_at == FIRST_RESPONSE
    assert ticket.resolved_at == RESOLVED
    assert ticket.closed_at == CLOSED
    for moment in (ticket.created_at, ticket.closed_at, ticket.last_event_at, ticket.recorded_at):
        assert moment.tzinfo is UTC
    # Without occurred_at a close happened at the ticket's closed_at.
    assert ticket.last_event_at == CLOSED

    assert (customer.source, customer.external_id) == ("helpdesk", "C-1")
    assert customer.name == "张三"
    assert customer.email == "zhang.san@example.com"
    assert customer.language == "zh_Hans"
    assert customer.tier is Tier.VIP
    assert customer.is_new is True

    assert event.ticket_id == ticket.id
    assert event.event is EventType.CLOSED
    assert event.origin == "webhook"
    assert event.idempotency_key == "body:" + hashlib.sha256(body).hexdigest()
    assert event.applied is True
    assert event.payload == payload
    assert event.occurred_at == ticket.last_event_at
    assert event.received_at.tzinfo is UTC


def test_occurred_at_and_event_id_are_stored(webhook: Webhook, app: Flask) -> None:
    response = webhook.post(
        event_payload(event_id="hd-77", occurred_at="2026-11-01T13:00:00+01:00")
    )

    assert response.status_code == 201
    event = only(TicketEvent)
    assert event.idempotency_key == "event:helpdesk:hd-77"
    assert event.occurred_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert only(Ticket).last_event_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_updated_event_changes_only_what_it_sends(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(event_id="e1", occurred_at="2026-11-01T12:00:00Z"))
    first_updated_at = only(Ticket).updated_at

    response = webhook.post(
        without(
            event_payload(
                event="updated",
                event_id="e2",
                occurred_at="2026-11-02T08:00:00Z",
                ticket={"team": "Escalations", "priority": "urgent", "contact_count": 3},
                customer={"tier": "normal"},
            ),
            "ticket.subject",
            "customer.name",
        )
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"] == "updated"
    assert row_counts() == {"customer": 1, "ticket": 1, "ticket_event": 2}
    ticket = only(Ticket)
    assert response.get_json()["ticket_id"] == ticket.id
    assert ticket.team == "Escalations"
    assert ticket.priority is Priority.P1
    assert ticket.contact_count == 3
    assert ticket.subject == "Cannot log in"  # left out, so kept
    assert ticket.status is TicketStatus.CLOSED  # an update without status keeps it
    assert ticket.last_event_at == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert ticket.updated_at > first_updated_at
    customer = only(Customer)
    assert customer.tier is Tier.STANDARD
    assert customer.name == "张三"
    assert customer.is_new is True  # the same ticket again is not a returning customer
    assert [e.event for e in events()] == [EventType.CLOSED, EventType.UPDATED]
    assert all(e.applied for e in events())


def test_updated_event_may_set_status(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(occurred_at="2026-11-01T12:00:00Z"))
    response = webhook.post(
        event_payload(
            event="updated", occurred_at="2026-11-01T13:00:00Z", ticket={"status": "Pending"}
        )
    )

    assert response.status_code == 200
    assert only(Ticket).status is TicketStatus.PENDING


def test_updated_event_for_unknown_ticket_creates_an_open_one(
    webhook: Webhook, app: Flask
) -> None:
    payload = without(event_payload(event="updated"), "ticket.resolved_at", "ticket.closed_at")

    response = webhook.post(payload)

    assert response.status_code == 201
    ticket = only(Ticket)
    assert ticket.status is TicketStatus.OPEN
    assert ticket.closed_at is None


def test_reopened_event_reopens_and_counts(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(occurred_at="2026-11-01T12:00:00Z"))

    response = webhook.post(reopened_payload(occurred_at="2026-11-02T09:00:00Z"))

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"] == "updated"
    ticket = only(Ticket)
    assert ticket.status is TicketStatus.REOPENED
    assert ticket.reopen_count == 1
    assert ticket.resolved_at is None
    assert ticket.closed_at is None
    assert ticket.first_response_at == FIRST_RESPONSE  # history before the reopen stays
    assert events()[-1].event is EventType.REOPENED

    webhook.post(reopened_payload(occurred_at="2026-11-03T09:00:00Z"))
    assert only(Ticket).reopen_count == 2

    closed_again = event_payload(
        occurred_at="2026-11-04T09:00:00Z", ticket={"closed_at": "2026-11-04T09:00:00Z"}
    )
    assert webhook.post(closed_again).status_code == 200
    ticket = only(Ticket)
    assert ticket.status is TicketStatus.CLOSED
    assert ticket.closed_at == datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
    assert ticket.reopen_count == 2
    assert row_counts() == {"customer": 1, "ticket": 1, "ticket_event": 4}


def test_reopened_event_repeating_the_old_times_still_reopens(
    webhook: Webhook, app: Flask
) -> None:
    webhook.post(event_payload(occurred_at="2026-11-01T12:00:00Z"))

    # Some helpdesks send the whole ticket, old resolved/closed times included.
    webhook.post(event_payload(event="reopened", occurred_at="2026-11-02T09:00:00Z"))

    ticket = only(Ticket)
    assert ticket.status is TicketStatus.REOPENED
    assert (ticket.resolved_at, ticket.closed_at) == (None, None)


def test_event_ids_are_scoped_by_source(webhook: Webhook, app: Flask) -> None:
    first = event_payload(event_id="42", ticket={"source": "zendesk"})
    second = event_payload(event_id="42", ticket={"source": "freshdesk"})

    assert webhook.post(first).status_code == 201
    assert webhook.post(second).status_code == 201
    assert count(Ticket) == 2
    assert {e.idempotency_key for e in events()} == {"event:zendesk:42", "event:freshdesk:42"}


def test_reopened_event_with_reopen_count_sets_it(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(occurred_at="2026-11-01T12:00:00Z"))

    webhook.post(reopened_payload(occurred_at="2026-11-02T09:00:00Z", ticket={"reopen_count": 5}))

    assert only(Ticket).reopen_count == 5


def test_reopened_event_delivered_twice_counts_once(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(occurred_at="2026-11-01T12:00:00Z"))
    reopen = reopened_payload(occurred_at="2026-11-02T09:00:00Z")

    assert webhook.post(reopen).get_json()["result"] == "updated"
    assert webhook.post(reopen).get_json()["result"] == "duplicate"

    assert only(Ticket).reopen_count == 1


def test_same_body_twice_is_a_duplicate_and_changes_nothing(webhook: Webhook, app: Flask) -> None:
    body = json.dumps(event_payload()).encode()
    first = webhook.post(body)
    ticket = only(Ticket)
    snapshot = (ticket.updated_at, ticket.last_event_at, only(Customer).updated_at)

    second = webhook.post(body)

    assert second.status_code == 200
    assert second.get_json() == {**first.get_json(), "result": "duplicate"}
    assert row_counts() == {"customer": 1, "ticket": 1, "ticket_event": 1}
    ticket = only(Ticket)
    assert (ticket.updated_at, ticket.last_event_at, only(Customer).updated_at) == snapshot


@pytest.mark.parametrize(
    "change",
    [
        {"ticket": {"team": "Other team", "priority": "P4"}},
        {"ticket": {"external_id": "T-OTHER"}},  # even another ticket
    ],
)
def test_same_event_id_with_another_body_is_a_409_and_changes_nothing(
    webhook: Webhook, app: Flask, change: dict
) -> None:
    webhook.post(event_payload(event_id="hd-1"))
    updated_at = only(Ticket).updated_at

    response = webhook.post(event_payload(event_id="hd-1", **change))

    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "event_id_conflict"
    assert "hd-1" in error["message"] and "different body" in error["message"]
    assert row_counts() == {"customer": 1, "ticket": 1, "ticket_event": 1}
    ticket = only(Ticket)
    assert (ticket.external_id, ticket.team, ticket.priority) == (
        "T-1001",
        "Frontline",
        Priority.P2,
    )
    assert ticket.updated_at == updated_at
    # The same event sent again as it first was is still the harmless duplicate.
    again = webhook.post(event_payload(event_id="hd-1"))
    assert (again.status_code, again.get_json()["result"]) == (200, "duplicate")


def test_updates_never_duplicate_ticket_or_customer(webhook: Webhook, app: Flask) -> None:
    for hour, team in enumerate(["A", "B", "C", "D"], start=10):
        response = webhook.post(
            event_payload(
                event="updated" if hour > 10 else "closed",
                occurred_at=f"2026-11-01T{hour}:00:00Z",
                ticket={"team": team},
            )
        )
        assert response.status_code == (201 if hour == 10 else 200)

    assert row_counts() == {"customer": 1, "ticket": 1, "ticket_event": 4}
    assert only(Ticket).team == "D"


def test_same_external_id_from_another_source_is_another_ticket(
    webhook: Webhook, app: Flask
) -> None:
    webhook.post(event_payload())
    response = webhook.post(event_payload(ticket={"source": "crm"}))

    assert response.status_code == 201
    tickets = db.session.scalars(db.select(Ticket).order_by(Ticket.source)).all()
    assert [(t.source, t.external_id) for t in tickets] == [
        ("crm", "T-1001"),
        ("helpdesk", "T-1001"),
    ]
    assert count(Customer) == 2  # customers are per source too


def test_older_event_is_recorded_but_not_applied(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(occurred_at="2026-11-02T10:00:00Z"))
    ticket = only(Ticket)
    updated_at = ticket.updated_at

    response = webhook.post(
        event_payload(
            event="updated",
            occurred_at="2026-11-02T09:59:59Z",
            ticket={"team": "Late news", "priority": "P4"},
            customer={"name": "Late name"},
        )
    )

    assert response.status_code == 200
    assert response.get_json()["result"] == "stale"
    assert row_counts() == {"customer": 1, "ticket": 1, "ticket_event": 2}
    ticket = only(Ticket)
    assert (ticket.team, ticket.priority) == ("Frontline", Priority.P2)
    assert ticket.last_event_at == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert ticket.updated_at == updated_at
    assert only(Customer).name == "张三"
    stale = events()[-1]
    assert stale.applied is False
    assert stale.ticket_id == ticket.id
    assert stale.occurred_at == datetime(2026, 11, 2, 9, 59, 59, tzinfo=UTC)
    assert response.get_json()["event_id"] == stale.id


def test_customer_is_matched_on_email_without_external_id(webhook: Webhook, app: Flask) -> None:
    customer = {"external_id": None, "email": "Li.Si@Example.COM", "name": "李四"}
    first = webhook.post(event_payload(customer=customer))
    second = webhook.post(
        event_payload(
            ticket={"external_id": "T-2"}, customer={**customer, "email": "li.si@example.com"}
        )
    )

    assert (first.status_code, second.status_code) == (201, 201)
    assert count(Ticket) == 2
    stored = only(Customer)
    assert stored.external_id == "email:li.si@example.com"
    assert stored.email == "li.si@example.com"
    assert stored.name == "李四"
    # A second ticket from someone we know makes them a returning customer.
    assert stored.is_new is False


def test_customer_is_matched_on_phone_as_last_resort(webhook: Webhook, app: Flask) -> None:
    customer = {"external_id": None, "email": None, "phone": "+86 138 0000 0000"}

    response = webhook.post(event_payload(customer=customer))

    assert response.status_code == 201
    stored = only(Customer)
    assert stored.external_id == "phone:+86 138 0000 0000"
    assert stored.phone == "+86 138 0000 0000"
    assert stored.email is None


def test_is_new_from_the_sender_wins(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(customer={"is_new": False}))

    assert only(Customer).is_new is False


def test_unknown_fields_are_ignored(webhook: Webhook, app: Flask) -> None:
    response = webhook.post(event_payload(extra={"x": 1}, ticket={"colour": "blue"}))

    assert response.status_code == 201
    assert only(Ticket).external_id == "T-1001"


# --- signature ----------------------------------------------------------------------------------


def _drop(name: str) -> Callable[[dict[str, str], bytes], None]:
    def change(headers: dict[str, str], body: bytes) -> None:
        del headers[name]

    return change


def _set(name: str, value: Callable[[bytes], str]) -> Callable[[dict[str, str], bytes], None]:
    def change(headers: dict[str, str], body: bytes) -> None:
        headers[name] = value(body)

    return change


def _resign(stamp: Callable[[], int]) -> Callable[[dict[str, str], bytes], None]:
    def change(headers: dict[str, str], body: bytes) -> None:
        headers.update(signed_headers(body, stamp=stamp()))

    return change


SIGNATURE_CASES = [
    pytest.param(_drop(SIGNATURE_HEADER), SIGNATURE_HEADER, id="missing-signature"),
    pytest.param(_drop(TIMESTAMP_HEADER), TIMESTAMP_HEADER, id="missing-timestamp"),
    pytest.param(_set(SIGNATURE_HEADER, lambda b: ""), SIGNATURE_HEADER, id="empty-signature"),
    pytest.param(
        _set(SIGNATURE_HEADER, lambda b: "sha256=" + "0" * 64),
        "does not match",
        id="bad-signature",
    ),
    pytest.param(
        _set(
            SIGNATURE_HEADER,
            lambda b: sign("another-secret", int(time.time()), b),
        ),
        "does not match",
        id="wrong-secret",
    ),
    pytest.param(
        _set(
            SIGNATURE_HEADER,
            lambda b: sign(WEBHOOK_SECRET, int(time.time()), b).removeprefix("sha256="),
        ),
        "sha256=",
        id="no-sha256-prefix",
    ),
    pytest.param(
        _set(SIGNATURE_HEADER, lambda b: "sha256=é" + "0" * 63), "does not match", id="non-ascii"
    ),
    pytest.param(
        _set(SIGNATURE_HEADER, lambda b: sign(WEBHOOK_SECRET, int(time.time()), b + b" ")),
        "does not match",
        id="signed-another-body",
    ),
    pytest.param(_resign(lambda: int(time.time()) - 301), "300 s", id="timestamp-past"),
    pytest.param(_resign(lambda: int(time.time()) + 301), "300 s", id="timestamp-future"),
    pytest.param(_resign(lambda: 0), "300 s", id="timestamp-epoch"),
    pytest.param(_set(TIMESTAMP_HEADER, lambda b: "soon"), "Unix seconds", id="timestamp-word"),
    pytest.param(
        _set(TIMESTAMP_HEADER, lambda b: f"{time.time():.3f}"),
        "Unix seconds",
        id="timestamp-float",
    ),
    pytest.param(_set(TIMESTAMP_HEADER, lambda b: "-5"), "Unix seconds", id="timestamp-negative"),
    pytest.param(
        _set(TIMESTAMP_HEADER, lambda b: "²"), "Unix seconds", id="timestamp-superscript"
    ),
    pytest.param(_set(TIMESTAMP_HEADER, lambda b: "9" * 400), "Unix seconds", id="timestamp-huge"),
]


@pytest.mark.parametrize(("change", "mentions"), SIGNATURE_CASES)
def test_unsigned_or_badly_signed_requests_are_refused(
    client: FlaskClient, app: Flask, change, mentions: str
) -> None:
    body = json.dumps(event_payload()).encode()
    headers = signed_headers(body)
    change(headers, body)

    response = client.post(URL, data=body, headers=headers)

    error = assert_error(response, 401, "bad_signature")
    assert mentions in error["message"]
    assert_nothing_written()


def test_timestamp_within_tolerance_is_accepted(webhook: Webhook, app: Flask) -> None:
    assert webhook.post(event_payload(), timestamp=int(time.time()) - 290).status_code == 201
    assert (
        webhook.post(event_payload(event_id="x"), timestamp=int(time.time()) + 290).status_code
        == 200
    )


def test_tolerance_follows_configuration(make_app: Callable[..., Flask]) -> None:
    app = make_app(WEBHOOK_TOLERANCE_SECONDS=10)
    response = Webhook(app.test_client()).post(event_payload(), timestamp=int(time.time()) - 60)

    error = assert_error(response, 401, "bad_signature")
    assert "10 s" in error["message"]
    with app.app_context():
        assert_nothing_written()


@pytest.mark.parametrize("secret", [None, ""])
def test_webhook_without_configured_secret_is_unavailable(
    make_app: Callable[..., Flask], secret: str | None
) -> None:
    app = make_app(WEBHOOK_SECRET=secret)

    response = Webhook(app.test_client()).post(event_payload())

    assert_error(response, 503, "not_configured")
    with app.app_context():
        assert_nothing_written()


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="syntax"),
        pytest.param(b"\xc3\x28\xa0\xa1", id="not-utf8"),
        pytest.param(b"[1, 2]", id="list"),
        pytest.param(b'"closed"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(json.dumps([event_payload()]).encode(), id="list-of-events"),
        pytest.param(json.dumps(event_payload(extra=float("nan"))).encode(), id="nan"),
        pytest.param(json.dumps(event_payload(extra=float("inf"))).encode(), id="infinity"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="absurd-nesting"),
    ],
)
def test_malformed_json_is_refused(webhook: Webhook, app: Flask, body: bytes) -> None:
    response = webhook.post(body)

    assert_error(response, 400, "malformed_json")
    assert_nothing_written()


def test_body_over_the_limit_is_refused(webhook: Webhook, app: Flask) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = json.dumps(event_payload(padding="x" * limit)).encode()
    assert len(body) > limit

    response = webhook.post(body)

    assert_error(response, 413, "request_entity_too_large")
    assert_nothing_written()


def test_body_limit_follows_configuration(make_app: Callable[..., Flask]) -> None:
    app = make_app(MAX_CONTENT_LENGTH=512)
    webhook = Webhook(app.test_client())
    small = {
        "event": "updated",
        "ticket": {
            "external_id": "T-1",
            "channel": "chat",
            "priority": "P3",
            "created_at": "2026-11-01T09:00:00Z",
        },
        "customer": {"external_id": "C-1"},
    }

    assert webhook.post(event_payload(padding="x" * 600)).status_code == 413
    assert len(json.dumps(small)) < 512
    assert webhook.post(small).status_code == 201


# --- validation ---------------------------------------------------------------------------------

NAIVE = "2026-11-01T09:00:00"
#: A valid address too long to be a customer key (``email:`` + 254 > 200 characters).
LONG_EMAIL = "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".com"

VALIDATION_CASES = [
    pytest.param(event_payload(event="deleted"), "event", id="unknown-event"),
    pytest.param(without(event_payload(), "event"), "event", id="missing-event"),
    pytest.param(
        event_payload(ticket={"priority": "P9"}), "ticket.priority", id="unknown-priority"
    ),
    pytest.param(event_payload(ticket={"priority": True}), "ticket.priority", id="bool-priority"),
    pytest.param(event_payload(ticket={"channel": "fax"}), "ticket.channel", id="unknown-channel"),
    pytest.param(
        without(event_payload(), "ticket.external_id"), "ticket.external_id", id="no-external-id"
    ),
    pytest.param(
        event_payload(ticket={"external_id": "  "}), "ticket.external_id", id="blank-external-id"
    ),
    pytest.param(
        event_payload(ticket={"external_id": "T" * 201}), "ticket.external_id", id="long-id"
    ),
    pytest.param(
        without(event_payload(), "ticket.created_at"), "ticket.created_at", id="no-created-at"
    ),
    pytest.param(without(event_payload(), "ticket.channel"), "ticket.channel", id="no-channel"),
    pytest.param(without(event_payload(), "ticket.priority"), "ticket.priority", id="no-priority"),
    pytest.param(without(event_payload(), "ticket.closed_at"), "ticket", id="closed-no-closed-at"),
    pytest.param(without(event_payload(), "ticket"), "ticket", id="no-ticket"),
    pytest.param(without(event_payload(), "customer"), "customer", id="no-customer"),
    pytest.param(event_payload(ticket="T-1"), "ticket", id="ticket-not-object"),
    pytest.param(
        event_payload(customer={"email": "not-an-email"}), "customer.email", id="bad-email"
    ),
    pytest.param(event_payload(customer={"phone": "call me"}), "customer.phone", id="bad-phone"),
    pytest.param(
        event_payload(customer={"external_id": None, "email": None, "phone": None}),
        "customer",
        id="customer-unidentified",
    ),
    pytest.param(
        event_payload(customer={"external_id": None, "email": LONG_EMAIL}),
        "customer",
        id="email-too-long-as-key",
    ),
    pytest.param(event_payload(customer={"language": "fr"}), "customer.language", id="language"),
    pytest.param(event_payload(customer={"tier": "gold"}), "customer.tier", id="tier"),
    pytest.param(event_payload(customer={"is_new": "maybe"}), "customer.is_new", id="is-new"),
    pytest.param(event_payload(ticket={"created_at": NAIVE}), "ticket.created_at", id="naive-iso"),
    pytest.param(
        event_payload(ticket={"closed_at": "2026-11-01 12:00:00"}),
        "ticket.closed_at",
        id="naive-space-separated",
    ),
    pytest.param(
        event_payload(ticket={"created_at": "2026/11/01 09:00"}),
        "ticket.created_at",
        id="naive-export-layout",
    ),
    pytest.param(event_payload(occurred_at=NAIVE), "occurred_at", id="naive-occurred-at"),
    pytest.param(
        event_payload(ticket={"created_at": "yesterday"}), "ticket.created_at", id="not-a-time"
    ),
    pytest.param(
        event_payload(ticket={"closed_at": "2026-11-01T08:00:00+08:00"}),
        "ticket",
        id="closed-before-created",
    ),
    pytest.param(
        event_payload(ticket={"first_response_at": "2026-10-31T23:59:00Z"}),
        "ticket",
        id="response-before-created",
    ),
    pytest.param(
        event_payload(ticket={"closed_at": "2026-11-01T10:00:00+08:00"}),
        "ticket",
        id="closed-before-resolved",
    ),
    pytest.param(
        event_payload(ticket={"reopen_count": -1}), "ticket.reopen_count", id="reopen-count"
    ),
    pytest.param(
        event_payload(ticket={"contact_count": 0}), "ticket.contact_count", id="contact-count"
    ),
    pytest.param(event_payload(ticket={"source": "my desk"}), "ticket.source", id="source"),
    pytest.param(event_payload(ticket={"status": "lost"}), "ticket.status", id="status"),
    pytest.param(event_payload(ticket={"subject": "a\x00b"}), "ticket.subject", id="nul-char"),
    pytest.param(event_payload(event_id="e" * 151), "event_id", id="long-event-id"),
]


@pytest.mark.parametrize(("payload", "field"), VALIDATION_CASES)
def test_invalid_event_is_refused_naming_the_field(
    webhook: Webhook, app: Flask, payload: dict[str, Any], field: str
) -> None:
    response = webhook.post(payload)

    error = assert_error(response, 422, "validation_failed")
    named = [item["field"] for item in error["fields"]]
    assert field in named, error
    assert all(item["message"] for item in error["fields"])
    assert f"{field}: " in error["message"]
    assert_nothing_written()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (without(event_payload(), "ticket.closed_at"), "closed_at is required for a closed event"),
        (
            event_payload(ticket={"closed_at": "2026-11-01T08:00:00+08:00"}),
            "closed_at is before created_at",
        ),
        (
            event_payload(ticket={"closed_at": "2026-11-01T10:00:00+08:00"}),
            "closed_at is before resolved_at",
        ),
        (event_payload(ticket={"created_at": NAIVE}), "time zone"),
        (event_payload(customer={"external_id": None, "email": None}), "at least one of"),
        (event_payload(customer={"language": "fr"}), "unsupported language"),
    ],
)
def test_validation_messages_say_why(
    webhook: Webhook, app: Flask, payload: dict[str, Any], reason: str
) -> None:
    error = assert_error(webhook.post(payload), 422, "validation_failed")

    assert reason in error["message"]
    assert not error["message"].startswith("Value error")


def test_every_invalid_field_is_named(webhook: Webhook, app: Flask) -> None:
    payload = event_payload(
        ticket={"priority": "P9", "channel": "fax"}, customer={"email": "nope", "tier": "gold"}
    )

    error = assert_error(webhook.post(payload), 422, "validation_failed")

    assert {item["field"] for item in error["fields"]} >= {
        "ticket.priority",
        "ticket.channel",
        "customer.email",
        "customer.tier",
    }


def test_refused_event_leaves_existing_ticket_alone(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(occurred_at="2026-11-01T12:00:00Z"))
    updated_at = only(Ticket).updated_at

    response = webhook.post(
        event_payload(
            event="updated", occurred_at="2026-11-02T12:00:00Z", ticket={"priority": "P9"}
        )
    )

    assert response.status_code == 422
    assert row_counts() == {"customer": 1, "ticket": 1, "ticket_event": 1}
    ticket = only(Ticket)
    assert (ticket.priority, ticket.updated_at) == (Priority.P2, updated_at)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ({"priority": "1"}, {"priority": Priority.P1}),
        ({"priority": 4}, {"priority": Priority.P4}),
        ({"priority": "紧急"}, {"priority": Priority.P1}),
        ({"priority": " high "}, {"priority": Priority.P2}),
        ({"priority": "p3"}, {"priority": Priority.P3}),
        ({"channel": "In Person"}, {"channel": Channel.IN_PERSON}),
        ({"channel": "E-Mail"}, {"channel": Channel.EMAIL}),
        ({"channel": "WeChat"}, {"channel": Channel.WECHAT}),
    ],
)
def test_lenient_spellings_are_normalised(
    webhook: Webhook, app: Flask, sent: dict[str, Any], stored: dict[str, Any]
) -> None:
    response = webhook.post(event_payload(ticket=sent))

    assert response.status_code == 201, response.get_json()
    ticket = only(Ticket)
    assert {name: getattr(ticket, name) for name in stored} == stored


def test_language_is_normalised(webhook: Webhook, app: Flask) -> None:
    webhook.post(event_payload(customer={"language": "en-US"}))

    assert only(Customer).language == "en"


# --- OpenAPI ------------------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_openapi_document_describes_the_webhook(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    event = schemas["TicketEventIn"]
    assert {"event", "ticket", "customer"} <= set(event["properties"])
    assert {"event", "ticket", "customer"} <= set(event["required"])
    assert {"TicketIn", "CustomerIn", "Error"} <= set(schemas)
    assert {"external_id", "channel", "priority", "created_at"} <= set(
        schemas["TicketIn"]["required"]
    )
    operation = document["paths"]["/api/v1/ticket-events"]["post"]
    assert {p["name"] for p in operation["parameters"]} == {SIGNATURE_HEADER, TIMESTAMP_HEADER}
    assert {"200", "201", "400", "401", "413", "422", "503"} <= set(operation["responses"])
    prefix = "#/components/schemas/"
    for ref in _refs(document):
        assert ref.startswith(prefix) and ref.removeprefix(prefix) in schemas, ref


# --- signing.verify -----------------------------------------------------------------------------

NOW = 1_793_581_200
BODY = b'{"event": "closed"}'


def test_sign_is_hmac_sha256_over_timestamp_and_body() -> None:
    expected = hmac.new(b"s3cret", b"1793581200." + BODY, hashlib.sha256).hexdigest()

    assert sign("s3cret", NOW, BODY) == "sha256=" + expected
    assert sign("s3cret", str(NOW), BODY) == "sha256=" + expected


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_verify_accepts_timestamps_within_tolerance(offset: int) -> None:
    stamp = str(NOW + offset)

    verify("s3cret", sign("s3cret", stamp, BODY), stamp, BODY, tolerance=300, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_verify_refuses_timestamps_beyond_tolerance(offset: int) -> None:
    stamp = str(NOW + offset)

    with pytest.raises(SignatureError, match="more than 300 s"):
        verify("s3cret", sign("s3cret", stamp, BODY), stamp, BODY, tolerance=300, now=NOW)


def test_verify_tolerance_counts_fractions_of_a_second() -> None:
    stamp = str(NOW)
    signature = sign("s3cret", stamp, BODY)

    verify("s3cret", signature, stamp, BODY, tolerance=300, now=NOW + 300.0)
    with pytest.raises(SignatureError):
        verify("s3cret", signature, stamp, BODY, tolerance=300, now=NOW + 300.5)


def test_verify_uses_a_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    stamp = str(NOW)
    good = sign("s3cret", stamp, BODY)

    verify("s3cret", good, stamp, BODY, tolerance=300, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify("s3cret", sign("other", stamp, BODY), stamp, BODY, tolerance=300, now=NOW)

    assert len(compared) == 2
    assert compared[0] == (good.encode(), good.encode())


@pytest.mark.parametrize(
    ("signature", "timestamp", "body", "message"),
    [
        (None, str(NOW), BODY, "missing X-ClosedLoop-Signature"),
        ("", str(NOW), BODY, "missing X-ClosedLoop-Signature"),
        ("sha256=x", None, BODY, "missing X-ClosedLoop-Timestamp"),
        ("sha256=x", "", BODY, "missing X-ClosedLoop-Timestamp"),
        ("sha256=x", " 1793581200", BODY, "Unix seconds"),
        ("sha256=x", "1793581200.0", BODY, "Unix seconds"),
        ("sha256=x", "١٧٩٣٥٨١٢٠٠", BODY, "Unix seconds"),
        ("sha256=x", "²", BODY, "Unix seconds"),
        ("sha256=x", "9" * 5000, BODY, "Unix seconds"),
        (sign("s3cret", NOW, BODY).removeprefix("sha256="), str(NOW), BODY, "sha256=<hex>"),
        (sign("s3cret", NOW, BODY).replace("sha256", "sha1"), str(NOW), BODY, "sha256=<hex>"),
        (sign("other", NOW, BODY), str(NOW), BODY, "does not match"),
        (sign("s3cret", NOW, BODY), str(NOW), BODY + b" ", "does not match"),
        (sign("s3cret", NOW + 1, BODY), str(NOW), BODY, "does not match"),
        (sign("s3cret", NOW, BODY).upper(), str(NOW), BODY, "sha256=<hex>"),
        ("sha256=短", str(NOW), BODY, "does not match"),
        ("sha256=", str(NOW), BODY, "does not match"),
    ],
)
def test_verify_refuses(signature, timestamp, body: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify("s3cret", signature, timestamp, body, tolerance=300, now=NOW)
