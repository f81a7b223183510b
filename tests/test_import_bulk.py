"""Bulk import (issue 15): batches give the outcomes and rows that applying rows one by one does.

The reference is :func:`survey_app.intake.services.apply_ticket_event` applied to each
validated row in file order (the import before batches). Both runs import the same
file under their own ``--source``, so they share one database and are compared by the
helpdesk's ids.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError

from analysis.sla.models import SlaClock, TicketSla
from analysis.sla.services import save_sla_policy
from survey_app import database
from survey_app.database import JSONText, insert_rows
from survey_app.extensions import db
from survey_app.intake import importer
from survey_app.intake.bulk import apply_ticket_events
from survey_app.intake.importer import (
    ImportReport,
    ImportRow,
    RowError,
    TicketFile,
    TicketRows,
    check_row,
    import_tickets,
)
from survey_app.intake.schemas import TicketEventIn
from survey_app.intake.services import Outcome, apply_ticket_event
from survey_app.models import Customer, Priority, Ticket, TicketEvent, Tier
from survey_app.surveys.models import Invitation, InvitationStatus, SkipReason
from tests.conftest import event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

HEADER = ["ticket_id", "subject", "channel", "priority", "team", "created_at",
          "first_response_at", "resolved_at", "closed_at", "reopen_count", "customer_id",
          "customer_name", "email", "phone", "language", "tier", "is_new"]  # fmt: skip
NOW = datetime.now(UTC).replace(microsecond=0)
#: Closed a few days ago (the invitation is pending) and long ago (skipped as too old).
RECENT = NOW - timedelta(days=3)
OLD = NOW - timedelta(days=60)


def at(moment: datetime, hours: float = 0) -> str:
    return (moment + timedelta(hours=hours)).isoformat()


def row(
    ticket_id: str,
    *,
    closed: datetime = RECENT,
    closed_after: float = 5,
    priority: str = "P3",
    team: str = "Frontline",
    customer: str = "K-1",
    tier: str = "",
    email: str = "",
    phone: str = "",
    language: str = "",
    is_new: str = "",
    subject: str = "Cannot log in",
) -> list[str]:
    """A closed ticket created at ``closed``, answered an hour and closed ``closed_after``
    hours later."""
    return [ticket_id, subject, "chat", priority, team, at(closed), at(closed, 1), "",
            at(closed, closed_after), "", customer, "", email, phone, language, tier,
            is_new]  # fmt: skip


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return path


def import_row_by_row(ticket_file: TicketFile, source: str) -> ImportReport:
    """The reference: every valid row applied on its own with apply_ticket_event."""
    report = ImportReport()
    for number, cells in ticket_file.rows:
        report.rows += 1
        checked = check_row(number, cells, ticket_file.columns, naive_timezone=UTC, source=source)
        if isinstance(checked, RowError):
            report.errors.append(checked)
            continue
        outcome = apply_ticket_event(
            checked.event,
            idempotency_key=checked.idempotency_key,
            origin="import",
            payload=checked.payload,
        ).outcome
        if outcome is Outcome.CREATED:
            report.created += 1
        elif outcome is Outcome.UPDATED:
            report.updated += 1
        elif outcome is Outcome.STALE:
            report.stale.append(number)
        else:
            report.unchanged += 1
    db.session.commit()
    return report


def seed(source: str) -> None:
    """What the database already holds: a ticket newer than the file, one older, a customer."""
    for external_id, occurred_at, customer in (
        ("T-8", NOW + timedelta(days=1), "K-8"),
        ("T-9", OLD - timedelta(days=1), "K-9"),
    ):
        payload = event_payload(
            ticket={"external_id": external_id, "source": source},
            customer={"external_id": customer},
            occurred_at=occurred_at.isoformat(),
        )
        event = TicketEventIn.model_validate(payload)
        apply_ticket_event(
            event,
            idempotency_key=f"seed:{source}:{external_id}",
            origin="webhook",
            payload=payload,
        )
    db.session.commit()


def tricky_rows() -> list[list[str]]:
    """Rows 2.. of a file that exercises every rule, with a blank line at row 9."""
    first = row("T-1")
    return [
        first,                                                                 # 2
        row("T-2", priority="P1", customer="K-2", email="Bo@Example.COM"),     # 3
        first,                                                                 # 4 same row
        row("T-3", priority="P9"),                                             # 5 bad
        row("T-1", closed_after=30, team="Escalations"),                       # 6 newer
        row("T-1", closed_after=10, team="Stale"),                             # 7 older
        row("T-4", tier="VIP"),                                                # 8 K-1 is VIP
        [],                                                                    # 9 blank
        row("T-5", closed=OLD, customer="", email="eve@example.com"),          # 10
        row("T-2", priority="P1", closed_after=8, customer="K-4", is_new="否"),  # 11
        row("T-6", customer="", phone="13800138000", language="en"),           # 12
        row("T-7", subject="bad\x00subject"),                                  # 13 bad
        row("T-8", team="Late export"),                                        # 14 older
        row("T-9", customer="K-9", tier="VIP"),                                # 15 newer
        row("T-10", customer="K-9"),                                           # 16
        row("T-2", priority="P1", customer="K-2", email="Bo@Example.COM"),     # 17 = row 3
        row("T-11", closed=OLD, customer="K-1", tier="standard"),              # 18
    ]  # fmt: skip


def snapshot(source: str) -> dict[str, Any]:
    """Everything an import wrote for ``source``, by the helpdesk's ids (not ours)."""
    db.session.expire_all()
    customers = db.session.scalars(
        db.select(Customer).where(Customer.source == source).order_by(Customer.id)
    ).all()
    tickets = db.session.scalars(
        db.select(Ticket).where(Ticket.source == source).order_by(Ticket.id)
    ).all()
    ticket_ids = {t.id for t in tickets}
    events = db.session.scalars(
        db.select(TicketEvent)
        .where(TicketEvent.ticket_id.in_(ticket_ids))
        .order_by(TicketEvent.id)
    ).all()
    event_index = {e.id: index for index, e in enumerate(events)}
    facts = db.session.scalars(
        db.select(TicketSla).where(TicketSla.ticket_id.in_(ticket_ids))
    ).all()
    invitations = db.session.scalars(
        db.select(Invitation).where(Invitation.ticket_id.in_(ticket_ids)).order_by(Invitation.id)
    ).all()

    def columns(obj: Any, leave_out: set[str]) -> dict[str, Any]:
        names = [c.key for c in obj.__table__.columns if c.key not in leave_out]
        return {name: getattr(obj, name) for name in names}

    def without_source(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "ticket": {k: v for k, v in payload["ticket"].items() if k != "source"}}

    ours = {"id", "source", "created_at", "updated_at", "recorded_at"}
    return {
        "customers": [columns(c, ours) for c in customers],
        "tickets": [
            {**columns(t, ours | {"customer_id"}), "customer": t.customer.external_id}
            for t in tickets
        ],
        "events": [
            {
                **columns(e, {"id", "ticket_id", "idempotency_key", "received_at", "payload"}),
                "ticket": e.ticket.external_id,
                "payload": without_source(e.payload),
            }
            for e in events
        ],
        "sla_by_ticket": {
            db.session.get(Ticket, f.ticket_id).external_id: columns(
                f, {"ticket_id", "computed_at"}
            )
            for f in facts
        },
        "invitations": [
            {
                **columns(
                    i, {"id", "ticket_id", "customer_id", "close_event_id", "nonce", "created_at"}
                ),
                "ticket": i.ticket.external_id,
                "customer": i.customer.external_id,
                "close_event": event_index[i.close_event_id],
            }
            for i in invitations
        ],
    }


def vip_override() -> None:
    """P3 VIP tickets on a 24x7 clock, so a fact shows the tier it was measured with."""
    save_sla_policy(
        Priority.P3, Tier.VIP, first_response_minutes=10, resolution_minutes=60,
        clock=SlaClock.ALWAYS,
    )  # fmt: skip
    db.session.commit()


# --- the same result as row by row -------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_size", "parallel"),
    [(1, False), (2, False), (3, False), (5, False), (1000, False), (1, True), (3, True)],
)
def test_batches_leave_what_row_by_row_leaves(
    app: Flask, tmp_path: Path, batch_size: int, parallel: bool
) -> None:
    vip_override()
    seed("rowwise")
    seed("bulk")
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", tricky_rows()))

    expected = import_row_by_row(ticket_file, "rowwise")
    report = import_tickets(
        ticket_file, naive_timezone=UTC, source="bulk", batch_size=batch_size, parallel=parallel
    )

    assert report == expected
    assert (report.rows, report.created, report.updated, report.unchanged) == (16, 7, 3, 2)
    assert report.stale == [7, 14]
    assert [(e.row, e.message.split(":")[0]) for e in report.errors] == [
        (5, "ticket.priority"),
        (13, "ticket.subject"),
    ]
    bulk, rowwise = snapshot("bulk"), snapshot("rowwise")
    for part in ("customers", "tickets", "events", "sla_by_ticket", "invitations"):
        assert bulk[part] == rowwise[part], part
    # What the rules say, beyond "the same":
    facts = bulk["sla_by_ticket"]
    assert facts["T-1"]["clock"] is SlaClock.WORKING_HOURS  # K-1 was standard then
    assert facts["T-4"]["clock"] is SlaClock.ALWAYS  # K-1 is VIP from row 8
    assert facts["T-11"]["clock"] is SlaClock.WORKING_HOURS  # and standard again
    tickets = {t["external_id"]: t for t in bulk["tickets"]}
    assert tickets["T-1"]["team"] == "Escalations"
    assert tickets["T-2"]["customer"] == "K-4"
    assert tickets["T-8"]["team"] == "Frontline"  # the seeded, newer state
    customers = {c["external_id"]: c for c in bulk["customers"]}
    assert customers["K-2"]["email"] == "bo@example.com"
    assert customers["K-4"]["is_new"] is False
    assert customers["K-9"]["is_new"] is False  # returning: a second ticket
    assert customers["email:eve@example.com"]["tier"] is Tier.STANDARD
    assert customers["phone:13800138000"]["language"] == "en"
    statuses = [(i["ticket"], i["status"], i["skip_reason"]) for i in bulk["invitations"]]
    assert ("T-5", InvitationStatus.SKIPPED, SkipReason.TOO_OLD) in statuses
    assert statuses.count(("T-1", InvitationStatus.PENDING, None)) == 2
    assert len(bulk["invitations"]) == report.created + report.updated + 2  # + the seeds'


def test_reimport_changes_nothing(app: Flask, tmp_path: Path) -> None:
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", tricky_rows()))
    import_tickets(ticket_file, naive_timezone=UTC, batch_size=4)
    before = snapshot("helpdesk")
    stamps = {
        t.external_id: (t.updated_at, t.customer.updated_at)
        for t in db.session.scalars(db.select(Ticket))
    }

    again = import_tickets(ticket_file, naive_timezone=UTC, batch_size=4)

    assert (again.created, again.updated, again.unchanged, again.stale) == (0, 0, 14, [])
    assert len(again.errors) == 2
    assert snapshot("helpdesk") == before
    assert {
        t.external_id: (t.updated_at, t.customer.updated_at)
        for t in db.session.scalars(db.select(Ticket))
    } == stamps


# --- batch boundaries ---------------------------------------------------------------------------


def test_a_ticket_split_across_batches_is_created_then_updated(app: Flask, tmp_path: Path) -> None:
    rows = [row("T-1"), row("T-2"), row("T-1", closed_after=30, team="Escalations")]
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", rows))

    report = import_tickets(ticket_file, naive_timezone=UTC, batch_size=2)

    assert (report.created, report.updated) == (2, 1)
    ticket = db.session.scalars(db.select(Ticket).where(Ticket.external_id == "T-1")).one()
    assert ticket.team == "Escalations"
    assert ticket.closed_at == RECENT + timedelta(hours=30)
    assert [e.applied for e in ticket.events] == [True, True]


def test_a_duplicate_row_in_one_batch_is_unchanged(app: Flask, tmp_path: Path) -> None:
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", [row("T-1")] * 3))

    report = import_tickets(ticket_file, naive_timezone=UTC)

    assert (report.rows, report.created, report.unchanged) == (3, 1, 2)
    assert db.session.scalar(db.select(db.func.count()).select_from(TicketEvent)) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(Invitation)) == 1


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_a_stale_row_after_a_newer_one_is_recorded_not_applied(
    app: Flask, tmp_path: Path, batch_size: int
) -> None:
    rows = [row("T-1", closed_after=30, team="Newer"), row("T-1", closed_after=10, team="Older")]
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", rows))

    report = import_tickets(ticket_file, naive_timezone=UTC, batch_size=batch_size)

    assert (report.created, report.updated, report.stale) == (1, 0, [3])
    ticket = db.session.scalars(db.select(Ticket)).one()
    assert ticket.team == "Newer"
    assert [e.applied for e in ticket.events] == [True, False]
    assert db.session.scalar(db.select(db.func.count()).select_from(Invitation)) == 1


def test_errors_keep_their_row_numbers_across_batches(app: Flask, tmp_path: Path) -> None:
    rows = [row("T-1"), [], row("T-2", priority="P9"), row("T-3"), [], [],
            row("T-4", subject="x\x00"), row("T-5")]  # fmt: skip
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", rows))
    seen: list[int] = []

    report = import_tickets(
        ticket_file, naive_timezone=UTC, batch_size=2, on_row=lambda: seen.append(1)
    )

    assert [(e.row, e.message) for e in report.errors] == [
        (4, "ticket.priority: Input should be 'P1', 'P2', 'P3' or 'P4'"),
        (8, "ticket.subject: text must not contain NUL characters"),
    ]
    assert (report.rows, report.created, len(seen)) == (5, 3, 5)


# --- validating in a second process ----------------------------------------------------------


def test_a_large_file_is_validated_in_a_second_process(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    real_checked_elsewhere = importer._checked_elsewhere

    def spy(*args: Any, **kwargs: Any) -> Any:
        started.append(1)
        return real_checked_elsewhere(*args, **kwargs)

    monkeypatch.setattr(importer, "_checked_elsewhere", spy)
    monkeypatch.setattr(importer, "PARALLEL_MIN_ROWS", 4)
    monkeypatch.setattr(importer, "_spare_core", lambda: True)
    rows = [row(f"T-{n}") for n in range(6)]
    rows[2] = row("T-2", priority="P9")

    small = import_tickets(
        TicketFile.open(write_csv(tmp_path / "small.csv", rows[:3])), naive_timezone=UTC
    )
    assert started == []
    report = import_tickets(
        TicketFile.open(write_csv(tmp_path / "large.csv", rows)), naive_timezone=UTC, batch_size=2
    )

    assert started == [1]
    assert (small.rows, small.created, [e.row for e in small.errors]) == (3, 2, [4])
    assert (report.rows, report.created, report.unchanged) == (6, 3, 2)
    assert [(e.row, e.message.split(":")[0]) for e in report.errors] == [(4, "ticket.priority")]
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 5


@pytest.mark.parametrize(
    ("idle", "load", "spare"),
    [(1.9, 1.5, True), (1.2, 0.1, False), (None, 0.2, True), (None, 0.6, False)],
)
def test_a_second_process_validates_only_when_a_core_is_idle_for_it(
    monkeypatch: pytest.MonkeyPatch, idle: float | None, load: float, spare: bool
) -> None:
    """Idle now, measured (the load average trails by a minute); the load average where
    nothing can be measured."""
    from survey_app.intake import pipeline

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(pipeline, "idle_cores", lambda: idle)

    assert importer._spare_core() is spare


def test_idle_cores_are_measured_where_the_kernel_counts_them() -> None:
    from survey_app.intake.pipeline import idle_cores

    idle = idle_cores(0.05)
    if not os.path.exists("/proc/stat"):
        assert idle is None
        return
    assert idle is not None
    assert 0 <= idle <= (os.cpu_count() or 1)


@pytest.mark.parametrize("parallel", [False, True])
def test_a_file_that_changes_after_its_check_is_refused_wherever_it_is_validated(
    app: Flask, tmp_path: Path, parallel: bool
) -> None:
    path = write_csv(tmp_path / "export.csv", [row("T-1"), row("T-2"), row("T-3")])
    ticket_file = TicketFile.open(path)
    path.write_bytes(path.read_bytes() + b"\xff\xfe not UTF-8\n")

    with pytest.raises(importer.ImportFileError, match="as UTF-8 CSV"):
        import_tickets(ticket_file, naive_timezone=UTC, batch_size=1, parallel=parallel)

    # The decoder reads ahead: the bad bytes surface before the first row is written.
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0


def test_a_failure_in_the_second_process_is_raised_here(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", [row("T-1"), row("T-2")]))

    def broken(number: int, *_args: Any, **_kwargs: Any) -> Any:
        raise LookupError(f"no row {number}")

    monkeypatch.setattr(importer, "check_row", broken)
    with pytest.raises(RuntimeError, match="LookupError: no row 2"):
        import_tickets(ticket_file, naive_timezone=UTC, parallel=True)

    def killed(*_args: Any, **_kwargs: Any) -> Any:
        os._exit(3)

    monkeypatch.setattr(importer, "check_row", killed)
    with pytest.raises(RuntimeError, match="ended early \\(exit code 3\\)"):
        import_tickets(ticket_file, naive_timezone=UTC, parallel=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0


# --- the batch writer ---------------------------------------------------------------------------


def test_a_batch_that_loses_a_race_is_applied_row_by_row(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lose_the_race(batch: Sequence[ImportRow], *, origin: str) -> list[Outcome]:
        # A webhook delivered one of these tickets between the batch's reads and writes.
        first = batch[0]
        apply_ticket_event(first.event, idempotency_key="race", origin="webhook", payload={})
        db.session.flush()
        raise IntegrityError("INSERT INTO ticket ...", {}, Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(importer, "apply_ticket_events", lose_the_race)
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", [row("T-1"), row("T-2")]))

    report = import_tickets(ticket_file, naive_timezone=UTC)

    assert (report.created, report.updated) == (2, 0)
    keys = db.session.scalars(db.select(TicketEvent.idempotency_key)).all()
    assert len(keys) == 2 and "race" not in keys  # the batch was rolled back first


def test_bulk_rows_take_their_defaults_and_a_duplicate_raises_integrity_error(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # COPY on PostgreSQL, multi-row INSERTs on SQLite: the same rows, the same error.
    monkeypatch.setattr(database, "SQLITE_ROWS_PER_INSERT", 2)  # 5 rows: 3 statements
    table = Customer.__table__
    row = {"source": "crm", "external_id": "K-1", "created_at": NOW, "updated_at": NOW}

    insert_rows(table, [row])
    insert_rows(
        table,
        [
            {**row, "external_id": f"K-{n}", "tier": Tier.VIP, "is_new": n % 2 == 0}
            for n in range(2, 7)
        ],
    )
    customers = db.session.scalars(db.select(Customer).order_by(Customer.id)).all()
    assert [(c.external_id, c.tier, c.is_new, c.language) for c in customers] == [
        ("K-1", Tier.STANDARD, False, "zh_Hans"),
        *((f"K-{n}", Tier.VIP, n % 2 == 0, "zh_Hans") for n in range(2, 7)),
    ]
    assert customers[0].created_at == NOW
    db.session.commit()

    with pytest.raises(IntegrityError):
        insert_rows(table, [{**row, "external_id": "K-9"}, row])
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(Customer)) == 6


def test_reopened_events_are_left_to_the_one_by_one_path(app: Flask) -> None:
    payload = event_payload(event="reopened")
    event = TicketEventIn.model_validate(payload)
    item = ImportRow(2, event, "k", JSONText(json.dumps(payload)))

    with pytest.raises(ValueError, match="one by one"):
        apply_ticket_events([item], origin="import")


# --- reading ------------------------------------------------------------------------------------


def test_rows_are_read_from_the_file_not_held(app: Flask, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "export.csv", [row("T-1"), [], row("T-2")])

    ticket_file = TicketFile.open(path)

    assert isinstance(ticket_file.rows, TicketRows)
    assert len(ticket_file.rows) == 2
    assert [number for number, _cells in ticket_file.rows] == [2, 4]
    assert list(ticket_file.rows) == list(ticket_file.rows)  # read again, the same


def test_idle_cores_are_none_where_the_counters_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from survey_app.intake import pipeline

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise OSError("no /proc here")

    monkeypatch.setattr(pipeline, "open", unreadable, raising=False)
    assert pipeline._cpu_times() is None
    assert pipeline.idle_cores(0.0) is None
    monkeypatch.undo()
    frozen = (100, 400)
    monkeypatch.setattr(pipeline, "_cpu_times", lambda: frozen)
    assert pipeline.idle_cores(0.0) is None  # no time counted between the two readings
