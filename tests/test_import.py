"""``closedloop tickets import``: CSV and XLSX exports, row errors, re-imports and mappings."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from openpyxl import Workbook

from survey_app.extensions import db
from survey_app.intake.importer import (
    ImportFileError,
    TicketFile,
    import_tickets,
    resolve_columns,
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
from tests.conftest import Webhook, event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

HEADER = ["ticket_id", "subject", "channel", "priority", "team", "created_at", "closed_at",
          "customer_id", "customer_name", "email"]  # fmt: skip
GOOD_ROWS = [
    ["T-1", "Refund late", "phone", "P1", "Billing", "2026-11-01T09:00:00Z",
     "2026-11-01T10:30:00Z", "C-1", "Ann", "ann@example.com"],
    ["T-2", "App crashes", "app", "P3", "Mobile", "2026-11-02T08:00:00+08:00",
     "2026-11-03T08:00:00+08:00", "C-2", "Bo", "bo@example.com"],
]  # fmt: skip
SHANGHAI = ZoneInfo("Asia/Shanghai")


def summary(rows: int, created: int, updated: int, unchanged: int, stale: int, failed: int) -> str:
    """The last line `closedloop tickets import` prints."""
    return (
        f"{rows} rows: {created} created, {updated} updated, {unchanged} unchanged, "
        f"{stale} older than stored, {failed} failed."
    )


def count(model: type[db.Model]) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def row_counts() -> dict[str, int]:
    return {
        "customer": count(Customer),
        "ticket": count(Ticket),
        "ticket_event": count(TicketEvent),
    }


def ticket(external_id: str, source: str = "helpdesk") -> Ticket:
    found = db.session.scalars(
        db.select(Ticket).where(Ticket.source == source, Ticket.external_id == external_id)
    ).one_or_none()
    assert found is not None, f"no ticket {source}:{external_id}"
    return found


def write_csv(
    path: Path, rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8", bom: bool = False
) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


@pytest.fixture
def import_file(runner: FlaskCliRunner) -> Callable[..., Any]:
    """Run ``closedloop tickets import PATH *options``; return Click's result."""

    def invoke(path: Path, *options: str) -> Any:
        db.session.commit()
        result = runner.invoke(args=["tickets", "import", str(path), *options])
        db.session.expire_all()
        return result

    return invoke


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_rows_become_closed_tickets(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "export.csv", [HEADER, *GOOD_ROWS])

    result = import_file(path)

    assert result.exit_code == 0, result.output
    assert (
        "2 rows: 2 created, 0 updated, 0 unchanged, 0 older than stored, 0 failed."
        in result.stdout
    )
    assert row_counts() == {"customer": 2, "ticket": 2, "ticket_event": 2}
    first = ticket("T-1")
    assert first.subject == "Refund late"
    assert first.channel is Channel.PHONE
    assert first.priority is Priority.P1
    assert first.team == "Billing"
    assert first.status is TicketStatus.CLOSED
    assert first.created_at == datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    assert first.closed_at == datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    assert first.closed_at.tzinfo is UTC
    # The export's own timeline orders the import against later webhook events.
    assert first.last_event_at == first.closed_at
    assert (first.customer.external_id, first.customer.name) == ("C-1", "Ann")
    assert first.customer.email == "ann@example.com"
    second = ticket("T-2")
    assert second.created_at == datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    assert second.closed_at == datetime(2026, 11, 3, 0, 0, tzinfo=UTC)
    events = db.session.scalars(db.select(TicketEvent)).all()
    assert {e.origin for e in events} == {"import"}
    assert {e.event for e in events} == {EventType.CLOSED}
    assert all(e.idempotency_key.startswith("import:") and e.applied for e in events)
    assert {e.payload["ticket"]["external_id"] for e in events} == {"T-1", "T-2"}


def test_csv_with_bom_and_chinese_headers(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    rows = [
        ["工单号", "渠道", "优先级", "创建时间", "关闭时间", "客户编号", "客户姓名", "团队",
         "区域"],
        ["GD-001", "WeChat", "紧急", "2026/11/01 09:30", "2026/11/01 18:00:00", "K1",
         "张三", "一线", "华东"],
        ["GD-002", "Phone", "高", "2026.11.02 10:00", "2026.11.02 11:15:30", "K2",
         "李四", "二线", "华北"],
    ]  # fmt: skip
    path = write_csv(tmp_path / "工单.csv", rows, bom=True)

    result = import_file(path, "--timezone", "Asia/Shanghai")

    assert result.exit_code == 0, result.output
    first, second = ticket("GD-001"), ticket("GD-002")
    assert (first.channel, first.priority) == (Channel.WECHAT, Priority.P1)
    assert (second.channel, second.priority) == (Channel.PHONE, Priority.P2)
    assert (first.team, first.region) == ("一线", "华东")
    assert first.customer.name == "张三"
    # Naive times are Shanghai time (UTC+8).
    assert first.created_at == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)
    assert first.closed_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert second.created_at == datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    assert second.closed_at == datetime(2026, 11, 2, 3, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created", "closed"),
    [
        ("2026-11-01T09:30:00", "2026-11-01T18:00:00"),
        ("2026-11-01 09:30:00", "2026-11-01 18:00:00"),
        ("2026-11-01 09:30", "2026-11-01 18:00"),
        ("2026/11/01 09:30:00", "2026/11/01 18:00"),
    ],
)
def test_naive_csv_times_are_read_in_the_given_zone(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path, created: str, closed: str
) -> None:
    path = write_csv(
        tmp_path / "naive.csv",
        [["id", "channel", "priority", "created", "closed", "phone"],
         ["N-1", "chat", "P2", created, closed, "13800138000"]],
    )  # fmt: skip

    result = import_file(path, "--timezone", "Asia/Shanghai")

    assert result.exit_code == 0, result.output
    imported = ticket("N-1")
    assert imported.created_at == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)
    assert imported.closed_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert imported.customer.external_id == "phone:13800138000"


def test_naive_times_default_to_utc(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "naive.csv",
        [["id", "channel", "priority", "created", "closed", "customer_id"],
         ["N-1", "chat", "P2", "2026-11-01 09:30:00", "2026-11-01T18:00:00", "C"]],
    )  # fmt: skip

    assert import_file(path).exit_code == 0
    imported = ticket("N-1")
    assert imported.created_at == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert imported.closed_at == datetime(2026, 11, 1, 18, 0, tzinfo=UTC)


def test_zone_in_the_value_wins_over_the_option(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "export.csv", [HEADER, GOOD_ROWS[0]])

    assert import_file(path, "--timezone", "Asia/Shanghai").exit_code == 0
    assert ticket("T-1").created_at == datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def test_unknown_time_zone_is_refused(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "export.csv", [HEADER, *GOOD_ROWS])

    result = import_file(path, "--timezone", "Mars/Olympus")

    assert result.exit_code == 2
    assert "unknown time zone 'Mars/Olympus'" in result.output
    assert row_counts()["ticket"] == 0


# --- XLSX ---------------------------------------------------------------------------------------


def test_xlsx_with_datetime_cells_in_a_local_zone(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_xlsx(
        tmp_path / "export.xlsx",
        [
            ["Ticket_ID", "Channel", "Priority", "Created_At", "Closed_At", "Resolved_At",
             "Customer_ID", "Customer_Tier", "新客户", "Contacts"],
            [1001, "chat", 1, datetime(2026, 11, 1, 9, 30), datetime(2026, 11, 1, 18, 0),
             datetime(2026, 11, 1, 17, 45), 501, "VIP", "是", 2],
            [1002, "email", 4.0, "2026-11-02T08:00:00+00:00", "2026/11/02 20:00", None,
             502, None, "否", None],
        ],
    )  # fmt: skip

    result = import_file(path, "--timezone", "Asia/Shanghai")

    assert result.exit_code == 0, result.output
    assert "2 rows: 2 created" in result.stdout
    first = ticket("1001")
    assert first.priority is Priority.P1
    assert first.channel is Channel.CHAT
    assert first.created_at == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)
    assert first.resolved_at == datetime(2026, 11, 1, 9, 45, tzinfo=UTC)
    assert first.closed_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert first.contact_count == 2
    assert first.customer.external_id == "501"
    assert first.customer.tier is Tier.VIP
    assert first.customer.is_new is True
    second = ticket("1002")
    assert second.priority is Priority.P4
    assert second.created_at == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert second.closed_at == datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert second.resolved_at is None
    assert second.contact_count == 1
    assert second.customer.tier is Tier.STANDARD
    assert second.customer.is_new is False


def test_xlsx_bad_rows_are_reported_with_spreadsheet_row_numbers(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_xlsx(
        tmp_path / "export.xlsx",
        [
            ["id", "channel", "priority", "created", "closed", "customer_id"],
            ["X-1", "chat", "P2", datetime(2026, 11, 1, 9), datetime(2026, 11, 1, 10), "C"],
            [],
            ["X-2", "pigeon", "P2", datetime(2026, 11, 1, 9), datetime(2026, 11, 1, 10), "C"],
            ["X-3", "chat", "P2", datetime(2026, 11, 1, 9), datetime(2026, 11, 1, 8), "C"],
        ],
    )

    result = import_file(path)

    assert result.exit_code == 1
    assert "row 4: ticket.channel:" in result.stderr
    assert "row 5: ticket: closed_at is before created_at" in result.stderr
    assert (
        "3 rows: 1 created, 0 updated, 0 unchanged, 0 older than stored, 2 failed."
        in result.stdout
    )
    assert [t.external_id for t in db.session.scalars(db.select(Ticket))] == ["X-1"]


def test_corrupt_xlsx_is_refused(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = tmp_path / "export.xlsx"
    path.write_text("ticket_id,channel\n", encoding="utf-8")

    result = import_file(path)

    assert result.exit_code == 1
    assert "Cannot read export.xlsx as an Excel workbook" in result.output
    assert "Traceback" not in result.output
    assert row_counts()["ticket"] == 0


def test_empty_xlsx_is_refused(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = tmp_path / "empty.xlsx"
    Workbook().save(path)

    result = import_file(path)

    assert result.exit_code == 1
    assert "empty.xlsx is empty." in result.output


# --- bad rows -----------------------------------------------------------------------------------


def test_bad_rows_are_reported_and_good_rows_imported(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    rows = [
        HEADER,
        GOOD_ROWS[0],                                                               # row 2
        ["T-3", "x", "chat", "P7", "", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z",
         "C-3", "", ""],                                                            # row 3
        [],                                                                         # row 4
        ["T-4", "x", "chat", "P2", "", "", "2026-11-01T10:00:00Z", "C-4", "", ""],  # row 5
        ["T-5", "x", "chat", "P2", "", "2026-11-01T09:00:00Z", "", "C-5", "", ""],  # row 6
        ["T-6", "x", "chat", "P2", "", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z",
         "", "", "not-an-email"],                                                   # row 7
        ["T-7", "x", "chat", "P2", "", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z",
         "", "", ""],                                                               # row 8
        GOOD_ROWS[1],                                                               # row 9
    ]  # fmt: skip
    path = write_csv(tmp_path / "export.csv", rows)

    result = import_file(path)

    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("row ")]
    assert errors == [
        "row 3: ticket.priority: Input should be 'P1', 'P2', 'P3' or 'P4'",
        "row 5: ticket.created_at: Field required",
        "row 6: ticket: closed_at is required for a closed event",
        errors[3],
        "row 8: customer: customer needs at least one of external_id, email or phone",
    ]
    assert errors[3].startswith("row 7: customer.email: ")
    assert (
        "7 rows: 2 created, 0 updated, 0 unchanged, 0 older than stored, 5 failed."
        in result.stdout
    )
    assert {t.external_id for t in db.session.scalars(db.select(Ticket))} == {"T-1", "T-2"}
    assert row_counts() == {"customer": 2, "ticket": 2, "ticket_event": 2}


def test_blank_lines_are_skipped(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    lines = [",".join(HEADER), "", ",".join(GOOD_ROWS[0]), ",,,,,,,,,", "   ", "",
             ",".join(GOOD_ROWS[1]), ""]  # fmt: skip
    path.write_text("\n".join(lines), encoding="utf-8")

    result = import_file(path)

    assert result.exit_code == 0, result.output
    assert "2 rows: 2 created" in result.stdout
    assert count(Ticket) == 2


def test_row_numbers_count_blank_lines(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    lines = [",".join(HEADER), "", ",".join(GOOD_ROWS[0]), ",,", ",".join(GOOD_ROWS[1])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    ticket_file = TicketFile.open(path)

    assert [number for number, _cells in ticket_file.rows] == [3, 5]
    assert ticket_file.name == "export.csv"


# --- re-imports ---------------------------------------------------------------------------------


def test_importing_the_same_file_again_changes_nothing(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "export.csv", [HEADER, *GOOD_ROWS])
    assert import_file(path).exit_code == 0
    before = row_counts()
    stamps = {t.external_id: t.updated_at for t in db.session.scalars(db.select(Ticket))}

    result = import_file(path)

    assert result.exit_code == 0, result.output
    assert (
        "2 rows: 0 created, 0 updated, 2 unchanged, 0 older than stored, 0 failed."
        in result.stdout
    )
    assert row_counts() == before == {"customer": 2, "ticket": 2, "ticket_event": 2}
    assert {t.external_id: t.updated_at for t in db.session.scalars(db.select(Ticket))} == stamps


def test_a_changed_row_updates_its_ticket(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "export.csv", [HEADER, *GOOD_ROWS])
    import_file(path)
    changed = [*GOOD_ROWS[0][:3], "low", "Refunds", *GOOD_ROWS[0][5:]]
    write_csv(path, [HEADER, changed, GOOD_ROWS[1]])

    result = import_file(path)

    assert result.exit_code == 0, result.output
    assert (
        "2 rows: 0 created, 1 updated, 1 unchanged, 0 older than stored, 0 failed."
        in result.stdout
    )
    assert row_counts() == {"customer": 2, "ticket": 2, "ticket_event": 3}
    updated = ticket("T-1")
    assert (updated.priority, updated.team) == (Priority.P4, "Refunds")
    assert ticket("T-2").team == "Mobile"


def test_same_ticket_twice_in_one_file(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    later = [*GOOD_ROWS[0][:4], "Escalations", GOOD_ROWS[0][5], "2026-11-05T10:00:00Z",
             *GOOD_ROWS[0][7:]]  # fmt: skip
    path = write_csv(tmp_path / "export.csv", [HEADER, GOOD_ROWS[0], later])

    result = import_file(path)

    assert (
        "2 rows: 1 created, 1 updated, 0 unchanged, 0 older than stored, 0 failed."
        in result.stdout
    )
    assert count(Ticket) == 1
    assert ticket("T-1").team == "Escalations"
    assert ticket("T-1").closed_at == datetime(2026, 11, 5, 10, 0, tzinfo=UTC)


def test_import_older_than_a_webhook_event_is_not_applied(
    import_file: Callable[..., Any], webhook: Webhook, app: Flask, tmp_path: Path
) -> None:
    webhook.post(event_payload(ticket={"external_id": "T-1"}, occurred_at="2026-12-01T00:00:00Z"))
    path = write_csv(tmp_path / "export.csv", [HEADER, GOOD_ROWS[0]])

    result = import_file(path)

    assert result.exit_code == 0, result.output
    assert (
        "1 rows: 0 created, 0 updated, 0 unchanged, 1 older than stored, 0 failed."
        in result.stdout
    )
    assert "row 2: older than the ticket's stored state" in result.stderr
    assert ticket("T-1").team == "Frontline"
    assert [e.applied for e in ticket("T-1").events] == [True, False]


# --- column mapping -----------------------------------------------------------------------------


def test_map_option_reads_a_custom_header(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "export.csv",
        [["Ticket No", "Kanal", "priority", "created", "closed", "Kunde"],
         ["K-9", "web", "P2", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z", "KD-1"]],
    )  # fmt: skip

    result = import_file(
        path,
        "--map", "Ticket No=ticket.external_id",
        "--map", "Kanal=ticket.channel",
        "--map", "Kunde = customer.external_id",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    imported = ticket("K-9")
    assert imported.channel is Channel.WEB
    assert imported.customer.external_id == "KD-1"


def test_mapped_column_wins_over_a_default_header(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "export.csv",
        [["ID", "Ticket No", "channel", "priority", "created", "closed", "customer_id"],
         ["17", "K-9", "web", "P2", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z", "C"]],
    )  # fmt: skip

    result = import_file(path, "--map", "Ticket No=ticket.external_id")

    assert result.exit_code == 0, result.output
    assert [t.external_id for t in db.session.scalars(db.select(Ticket))] == ["K-9"]


def test_mapping_file_and_map_option(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "export.csv",
        [["Ref", "Kanal", "Prio", "Opened", "Done", "Kunde"],
         ["R-1", "sms", "critical", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z", "Z-1"]],
    )  # fmt: skip
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "Ref": "ticket.subject",
                "Kanal": "ticket.channel",
                "Prio": "ticket.priority",
                "Opened": "ticket.created_at",
                "Done": "ticket.closed_at",
                "Kunde": "customer.external_id",
            }
        ),
        encoding="utf-8",
    )

    result = import_file(path, "--mapping-file", str(mapping), "--map", "Ref=ticket.external_id")

    assert result.exit_code == 0, result.output
    imported = ticket("R-1")
    assert imported.subject is None  # --map won over the file for "Ref"
    assert (imported.channel, imported.priority) == (Channel.SMS, Priority.P1)
    assert imported.closed_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert imported.customer.external_id == "Z-1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--map", "Ticket No=ticket.colour"], "Unknown field 'ticket.colour'"),
        (["--map", "Ticket No"], "'Ticket No' is not HEADER=FIELD"),
        (["--mapping-file", "{mapping}"], "The mapping file must hold a JSON object."),
        (["--mapping-file", "{broken}"], "Cannot read"),
    ],
)
def test_bad_mappings_are_refused(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path, options: list[str], message: str
) -> None:
    path = write_csv(tmp_path / "export.csv", [HEADER, *GOOD_ROWS])
    (tmp_path / "list.json").write_text('["ticket.external_id"]', encoding="utf-8")
    (tmp_path / "broken.json").write_text("{oops", encoding="utf-8")
    paths = {"mapping": str(tmp_path / "list.json"), "broken": str(tmp_path / "broken.json")}

    result = import_file(path, *(option.format(**paths) for option in options))

    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert row_counts()["ticket"] == 0


def test_unknown_field_in_mapping_lists_the_fields() -> None:
    with pytest.raises(ImportFileError, match="Unknown field 'customer.age'") as info:
        resolve_columns(["ticket_id"], {"Age": "customer.age"})

    assert "ticket.external_id" in str(info.value)


# --- whole-file errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ("ticket_id", "ticket.external_id"),
        ("channel", "ticket.channel"),
        ("priority", "ticket.priority"),
        ("created_at", "ticket.created_at"),
        ("closed_at", "ticket.closed_at"),
    ],
)
def test_missing_required_column_is_refused(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path, missing: str, field: str
) -> None:
    keep = [i for i, name in enumerate(HEADER) if name != missing]
    rows = [[row[i] for i in keep] for row in [HEADER, *GOOD_ROWS]]
    path = write_csv(tmp_path / "export.csv", rows)

    result = import_file(path)

    assert result.exit_code == 1
    assert f"The header has no column for {field}" in result.output
    assert missing in result.output  # the accepted header is suggested
    assert row_counts() == {"customer": 0, "ticket": 0, "ticket_event": 0}


@pytest.mark.parametrize("name", ["export.txt", "export.json", "export.xls", "export"])
def test_unsupported_file_type_is_refused(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path, name: str
) -> None:
    path = write_csv(tmp_path / name, [HEADER, *GOOD_ROWS])

    result = import_file(path)

    assert result.exit_code == 1
    assert "Unsupported file type" in result.output
    assert "use .csv or .xlsx" in result.output
    assert count(Ticket) == 0


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf"], ids=["empty", "bom-only"])
def test_empty_csv_is_refused(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)

    result = import_file(path)

    assert result.exit_code == 1
    assert "export.csv is empty." in result.output


def test_header_only_csv_imports_nothing(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    result = import_file(write_csv(tmp_path / "export.csv", [HEADER]))

    assert result.exit_code == 0
    assert "0 rows: 0 created" in result.stdout


def test_non_utf8_csv_is_refused(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    rows = [["工单号", "渠道", "优先级", "创建时间", "关闭时间", "客户编号"],
            ["GD-1", "chat", "高", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z",
             "K1"]]  # fmt: skip
    path = write_csv(tmp_path / "export.csv", rows, encoding="gbk")

    result = import_file(path)

    assert result.exit_code == 1
    assert "Cannot read export.csv as UTF-8 CSV" in result.output
    assert "Traceback" not in result.output
    assert row_counts() == {"customer": 0, "ticket": 0, "ticket_event": 0}


def test_missing_file_is_a_usage_error(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    result = import_file(tmp_path / "nope.csv")

    assert result.exit_code == 2
    assert "does not exist" in result.output


# --- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "priority"),
    [
        ("high", Priority.P2),
        ("High", Priority.P2),
        ("紧急", Priority.P1),
        ("critical", Priority.P1),
        ("urgent", Priority.P1),
        ("1", Priority.P1),
        ("高", Priority.P2),
        ("medium", Priority.P3),
        ("normal", Priority.P3),
        ("中", Priority.P3),
        ("低", Priority.P4),
        ("low", Priority.P4),
        ("4", Priority.P4),
        ("p2", Priority.P2),
        (" P3 ", Priority.P3),
    ],
)
def test_priority_aliases(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path, written: str, priority: Priority
) -> None:
    row = [*GOOD_ROWS[0][:3], written, *GOOD_ROWS[0][4:]]
    path = write_csv(tmp_path / "export.csv", [HEADER, row])

    result = import_file(path)

    assert result.exit_code == 0, result.output
    assert ticket("T-1").priority is priority


def test_source_option_sets_every_ticket_source(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "export.csv", [HEADER, *GOOD_ROWS])

    result = import_file(path, "--source", "legacy-crm")

    assert result.exit_code == 0, result.output
    assert {t.source for t in db.session.scalars(db.select(Ticket))} == {"legacy-crm"}
    assert {c.source for c in db.session.scalars(db.select(Customer))} == {"legacy-crm"}


def test_nul_character_is_a_row_error(
    import_file: Callable[..., Any], app: Flask, tmp_path: Path
) -> None:
    bad = [GOOD_ROWS[1][0], "bad\x00subject", *GOOD_ROWS[1][2:]]
    path = write_csv(tmp_path / "export.csv", [HEADER, GOOD_ROWS[0], bad])

    result = import_file(path)

    assert result.exit_code == 1
    assert "row 3: ticket.subject: text must not contain NUL characters" in result.stderr
    assert [t.external_id for t in db.session.scalars(db.select(Ticket))] == ["T-1"]


# --- import_tickets / TicketFile ----------------------------------------------------------------


def test_import_tickets_reports_and_commits_in_batches(app: Flask, tmp_path: Path) -> None:
    rows = [
        [f"B-{n}", "", "chat", "P3", "", "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z",
         f"C-{n % 3}", "", ""]
        for n in range(7)
    ]  # fmt: skip
    rows.insert(3, ["B-bad", "", "chat", "P3", "", "", "", "C-0", "", ""])
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", [HEADER, *rows]))
    seen: list[int] = []

    report = import_tickets(
        ticket_file, naive_timezone=SHANGHAI, on_row=lambda: seen.append(1), batch_size=3
    )

    assert (report.rows, report.created, report.updated, report.unchanged) == (8, 7, 0, 0)
    assert [(e.row, e.message.split(":")[0]) for e in report.errors] == [(5, "ticket.created_at")]
    assert not report.ok
    assert len(seen) == 8
    db.session.rollback()  # everything was committed, nothing is lost
    assert count(Ticket) == 7
    assert count(Customer) == 3
    returning = db.session.scalars(db.select(Customer).where(Customer.external_id == "C-0")).one()
    assert returning.is_new is False  # a second ticket makes a returning customer


def test_import_tickets_with_no_errors_is_ok(app: Flask, tmp_path: Path) -> None:
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", [HEADER, *GOOD_ROWS]))

    report = import_tickets(ticket_file, naive_timezone=UTC, source="crm")

    assert report.ok
    assert (report.rows, report.created) == (2, 2)
    assert ticket("T-1", source="crm").team == "Billing"


def test_ticket_file_resolves_columns_case_insensitively(tmp_path: Path) -> None:
    header = [
        "  TICKET_ID ",
        "Channel",
        "PRIORITY",
        "Created",
        "unknown",
        "Email",
        "email",
        "CLOSED",
    ]
    path = write_csv(
        tmp_path / "export.csv", [header, ["T", "chat", "P1", "x", "y", "a", "b", "z"]]
    )

    ticket_file = TicketFile.open(path)

    assert ticket_file.columns == {
        0: "ticket.external_id",
        1: "ticket.channel",
        2: "ticket.priority",
        3: "ticket.created_at",
        5: "customer.email",  # the first of two columns for a field wins
        7: "ticket.closed_at",
    }


# --- bounded reading (issue 14, finding 2) ------------------------------------------------------


def xlsx_bomb(path: Path, dimension: str = "A1:XFD1048576", last_row: int = 1_048_576) -> Path:
    """A ~1.5 KB workbook that declares ``dimension`` and has cells in row 1 and ``last_row``."""
    import zipfile

    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>external_id</t></is></c>'
        '<c r="XFD1" t="inlineStr"><is><t>far</t></is></c></row>'
        f'<row r="{last_row}"><c r="A{last_row}" t="inlineStr"><is><t>T-9</t></is></c></row>'
        "</sheetData></worksheet>"
    )
    ooxml = "http://schemas.openxmlformats.org"
    relationship = f"{ooxml}/officeDocument/2006/relationships"
    content = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": (
            f'<Types xmlns="{ooxml}/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{content}.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{content}.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{ooxml}/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{relationship}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{ooxml}/spreadsheetml/2006/main" xmlns:r="{relationship}">'
            '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{ooxml}/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{relationship}/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": sheet,
    }  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


@pytest.mark.parametrize(
    "dimension, last_row, message",
    [
        ("A1:XFD1048576", 1_048_576, "declares 1048576 rows"),
        ("A1:B2", 1_048_576, "more than 500 rows"),  # the dimension lies: rows are counted
    ],
)
def test_an_xlsx_bomb_is_refused_quickly_in_bounded_memory(
    import_file, app, tmp_path, dimension, last_row, message
):
    import time
    import tracemalloc

    path = xlsx_bomb(tmp_path / "bomb.xlsx", dimension, last_row)
    assert path.stat().st_size < 3000
    app.config["IMPORT_MAX_ROWS"] = 500
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = import_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 1
    assert message in result.stderr and "IMPORT_MAX_ROWS" in result.stderr
    assert peak < 100 * 1024 * 1024
    assert time.perf_counter() - started < 30
    assert db.session.scalars(db.select(Ticket)).all() == []


def test_a_header_wider_than_the_limit_is_refused(import_file, app, tmp_path):
    path = write_csv(tmp_path / "wide.csv", [[f"c{n}" for n in range(300)], ["x"] * 300])
    result = import_file(path)
    assert result.exit_code == 1
    assert "more than 200 columns" in result.stderr
