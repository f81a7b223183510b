"""The bulk import's shortcuts (issue 15, part 3) give what the longer ways gave.

Ids drawn before the rows are written, ``IN`` lists bound as one value, JSON stored as
already serialised, a batch's shared timestamps bound once, the SQLite settings of an
import, SLA facts measured from the values written, export timestamps read without
``strptime``, and the idempotency key of earlier versions.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy.dialects import postgresql, sqlite

from analysis.sla.models import TicketSla
from survey_app import running_app
from survey_app.database import (
    JSONText,
    _in_values,
    _json_time,
    _update_from_json,
    in_values,
    insert_rows,
    reserve_ids,
    update_rows,
)
from survey_app.extensions import db
from survey_app.intake import bulk, importer, pipeline, schemas
from survey_app.intake.importer import (
    ImportRow,
    TicketFile,
    check_row,
    import_tickets,
    resolve_columns,
)
from survey_app.intake.schemas import EXTRA_DATETIME_FORMATS
from survey_app.intake.services import Outcome
from survey_app.intake.signals import tickets_changed
from survey_app.models import Customer, EventType, Ticket, TicketEvent, TicketStatus, Tier
from tests.conftest import is_postgres
from tests.test_import_bulk import row, write_csv

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def customer_row(external_id: str, **values: Any) -> dict[str, Any]:
    return {
        "source": "crm",
        "external_id": external_id,
        "created_at": NOW,
        "updated_at": NOW,
        **values,
    }


# --- ids drawn before the rows are written ---------------------------------------------------


def test_reserved_ids_are_new_and_the_next_insert_follows_them(app: Flask) -> None:
    table = Customer.__table__
    first = Customer(source="crm", external_id="K-0", created_at=NOW, updated_at=NOW)
    db.session.add(first)
    db.session.flush()

    ids = reserve_ids(table, 3)
    insert_rows(
        table, [customer_row(f"K-{n}", id=new_id) for n, new_id in enumerate(ids, start=1)]
    )
    later = Customer(source="crm", external_id="K-9", created_at=NOW, updated_at=NOW)
    db.session.add(later)
    db.session.flush()

    assert ids == sorted(ids) and len(set(ids)) == 3
    assert min(ids) > first.id
    assert later.id > max(ids)
    stored = db.session.execute(
        db.select(Customer.id, Customer.external_id).where(Customer.id.in_(ids))
    ).all()
    assert sorted(stored) == [(new_id, f"K-{n}") for n, new_id in enumerate(ids, start=1)]
    assert reserve_ids(table, 0) == []


def test_an_import_numbers_its_rows_in_file_order(app: Flask, tmp_path: Path) -> None:
    ticket_file = TicketFile.open(
        write_csv(tmp_path / "export.csv", [row("T-1"), row("T-2"), row("T-3")])
    )

    import_tickets(ticket_file, naive_timezone=UTC, batch_size=2)

    tickets = db.session.execute(db.select(Ticket.external_id).order_by(Ticket.id)).scalars()
    assert list(tickets) == ["T-1", "T-2", "T-3"]
    events = db.session.scalars(db.select(TicketEvent).order_by(TicketEvent.id)).all()
    assert [e.ticket.external_id for e in events] == ["T-1", "T-2", "T-3"]


def test_update_rows_sets_each_row_its_values(app: Flask) -> None:
    insert_rows(Customer.__table__, [customer_row(f"K-{n}", is_new=True) for n in range(3)])
    ids = db.session.scalars(db.select(Customer.id).order_by(Customer.id)).all()
    later = NOW + timedelta(days=1, microseconds=5)

    update_rows(
        Customer.__table__,
        [
            {"row_id": ids[0], "name": "张三", "tier": Tier.VIP, "is_new": False,
             "email": None, "updated_at": later},
            {"row_id": ids[2], "name": 'O"Brien', "tier": Tier.STANDARD, "is_new": True,
             "email": "k@example.com", "updated_at": NOW},
        ],
    )  # fmt: skip

    db.session.expire_all()
    stored = db.session.execute(
        db.select(
            Customer.name, Customer.tier, Customer.is_new, Customer.email, Customer.updated_at
        ).order_by(Customer.id)
    ).all()
    assert [tuple(r) for r in stored] == [
        ("张三", Tier.VIP, False, None, later),
        (None, Tier.STANDARD, True, None, NOW),
        ('O"Brien', Tier.STANDARD, True, "k@example.com", NOW),
    ]
    with pytest.raises(TypeError):
        _json_time(object())
    update_rows(Customer.__table__, [])


# --- IN lists as one bound value ----------------------------------------------------------------


def test_in_values_finds_what_an_in_list_finds(app: Flask) -> None:
    names = ["K-1", "客户-2", "K'3", 'K"4', "K-5"]
    insert_rows(Customer.__table__, [customer_row(name) for name in names])
    ids = db.session.scalars(db.select(Customer.id).order_by(Customer.id)).all()

    def found(condition: Any) -> list[str]:
        query = db.select(Customer.external_id).where(condition).order_by(Customer.id)
        return list(db.session.scalars(query))

    wanted = ["客户-2", "K'3", 'K"4', "missing"]
    assert found(in_values(Customer.external_id, wanted)) == ["客户-2", "K'3", 'K"4']
    assert found(in_values(Customer.id, [ids[0], ids[4], -1])) == ["K-1", "K-5"]
    assert found(in_values(Customer.external_id, [])) == []


# --- JSON stored as serialised, shared timestamps ---------------------------------------------


def test_json_text_is_stored_as_it_is_and_reads_back_as_the_value(app: Flask) -> None:
    ticket = Ticket(
        source="crm", external_id="T-1", channel="chat", priority="P2", created_at=NOW,
        status=TicketStatus.CLOSED,
    )  # fmt: skip
    ticket.customer = Customer(source="crm", external_id="K-1", created_at=NOW, updated_at=NOW)
    db.session.add(ticket)
    db.session.flush()
    payload = {"ticket": {"subject": "退款"}, "event": "closed", "n": [1, None]}
    event = {
        "ticket_id": ticket.id,
        "event": EventType.CLOSED,
        "origin": "import",
        "occurred_at": NOW,
        "received_at": NOW,
        "applied": True,
    }

    insert_rows(
        TicketEvent.__table__,
        [
            {**event, "idempotency_key": "a", "payload": JSONText(json.dumps(payload))},
            {**event, "idempotency_key": "b", "payload": payload},
        ],
    )

    dialect = db.session.connection().dialect
    with pytest.MonkeyPatch.context() as patch:  # another database: an executemany INSERT
        patch.setattr(dialect, "name", "other")
        insert_rows(
            TicketEvent.__table__,
            [{**event, "idempotency_key": "c", "payload": JSONText(json.dumps(payload))}],
        )

    stored = db.session.execute(
        db.select(TicketEvent.idempotency_key, TicketEvent.payload).order_by(TicketEvent.id)
    ).all()
    assert stored == [("a", payload), ("b", payload), ("c", payload)]


def test_rows_sharing_a_timestamp_and_rows_not_are_stored_alike(app: Flask) -> None:
    later = NOW + timedelta(hours=1)
    rows = [
        customer_row("K-1"),
        customer_row("K-2"),
        customer_row("K-3", updated_at=later),
        customer_row("K-4", updated_at=NOW + timedelta(0)),  # equal, another object
        customer_row("K-5"),
    ]

    insert_rows(Customer.__table__, rows)

    stored = db.session.execute(
        db.select(Customer.external_id, Customer.created_at, Customer.updated_at).order_by(
            Customer.id
        )
    ).all()
    assert stored == [(r["external_id"], r["created_at"], r["updated_at"]) for r in rows]


# --- the SQLite settings of an import -----------------------------------------------------------


@pytest.mark.skipif(is_postgres(), reason="SQLite settings")
def test_an_import_raises_sqlite_caches_while_it_writes_and_puts_them_back(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def settings() -> tuple[int, int]:
        connection = db.session.connection()
        cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        checkpoint = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        return int(cache or 0), int(checkpoint or 0)

    seen: list[tuple[int, int]] = []
    apply = importer.apply_ticket_events

    def watched(batch: Any, *, origin: str) -> list[Outcome]:
        seen.append(settings())
        return apply(batch, origin=origin)

    monkeypatch.setattr(importer, "apply_ticket_events", watched)
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", [row("T-1"), row("T-2")]))

    import_tickets(ticket_file, naive_timezone=UTC, batch_size=1)

    assert seen == [(-32_768, 10_000), (-32_768, 10_000)]
    assert settings() == (-2_000, 1_000)


# --- SLA facts from the values written ----------------------------------------------------------


def test_the_bulk_signal_without_values_has_the_tickets_read_back(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", [row("T-1"), row("T-2")]))
    import_tickets(ticket_file, naive_timezone=UTC)
    measured = {
        f.ticket_id: {c.key: getattr(f, c.key) for c in TicketSla.__table__.columns}
        for f in db.session.scalars(db.select(TicketSla))
    }
    db.session.execute(db.delete(TicketSla))

    tickets_changed.send(running_app(), ticket_ids=sorted(measured))

    again = {f.ticket_id: f for f in db.session.scalars(db.select(TicketSla))}
    assert again.keys() == measured.keys()
    for ticket_id, values in measured.items():
        for name, value in values.items():
            if name != "computed_at":
                assert getattr(again[ticket_id], name) == value, name


# --- validation ---------------------------------------------------------------------------------


def _strptime_layouts(text: str) -> datetime | None:
    """The export layouts as they were read before: ``strptime``, first fit."""
    for layout in EXTRA_DATETIME_FORMATS:
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    return None


@pytest.mark.parametrize(
    "text",
    [
        "2026/11/01 09:30", "2026/11/01 09:30:15", "2026-11-01 09:30", "2026.11.01 09:30",
        "2026.11.01 09:30:59", "2026/1/5 9:03", "2026/11/01  09:30", "2026/11/1 09:30:5",
        "2026/13/01 09:30", "2026/02/30 09:30", "2026/11/01 24:00", "2026/11/01 09:60",
        "2026/11/01 09:30:60", "2026/11/01 09:30:61", "0000/11/01 09:30", "２０２６/11/01 09:30",
        "2026/11.01 09:30", "2026-11-01 09:30:00", "2026-11-01T09:30:00", "2026-11-01T09:30",
        "2026-11-01 09:30:00+08:00", "2026/11/01T09:30", "2026/11/01 09:30:15.5", "2026/11/01",
        "20261101 0930", "",
    ],
)  # fmt: skip
def test_export_layouts_are_read_as_strptime_read_them(text: str) -> None:
    by_hand = schemas._plain_layout(text)

    assert (by_hand or schemas._export_layout(text)) == _strptime_layouts(text)
    if by_hand is not None:
        assert by_hand == _strptime_layouts(text)


def test_the_idempotency_key_is_the_one_earlier_versions_stored() -> None:
    header = ["工单号", "主题", "渠道", "优先级", "创建时间", "首次响应时间", "解决时间",
              "关闭时间", "重开次数", "客户编号", "邮箱", "客户等级"]  # fmt: skip
    cells = ["GD-0000042", "退款还没到账", "WeChat", "紧急", "2026/09/01 08:00",
             "2026-09-01 08:30:00", "2026.09.01 10:15:30", "2026/09/01 12:00:05", "0",
             "K000042", "User42@Example.com", "VIP"]  # fmt: skip

    checked = check_row(
        2, cells, resolve_columns(header), naive_timezone=ZoneInfo("Asia/Shanghai")
    )

    assert isinstance(checked, ImportRow)
    # The key of this row as the import before this change computed and stored it.
    assert checked.idempotency_key == (
        "import:38cbe41fa93b91428fd98ec900cd7a9a7152affebd485d68a65a95878efbb7ee"
    )
    dumped = json.dumps(checked.event.model_dump(mode="json"), sort_keys=True)
    assert checked.payload_json == dumped
    assert checked.idempotency_key == "import:" + hashlib.sha256(dumped.encode()).hexdigest()
    assert json.loads(checked.payload_json) == checked.payload


def test_a_checked_row_travels_without_its_payload_and_keeps_it() -> None:
    header = ["工单号", "渠道", "优先级", "创建时间", "关闭时间", "客户编号", "客户等级"]
    cells = ["GD-7", "phone", "高", "2026/09/01 08:00", "2026/09/01 12:00", "K7", "VIP"]
    checked = check_row(
        2, cells, resolve_columns(header), naive_timezone=ZoneInfo("Asia/Shanghai")
    )
    assert isinstance(checked, ImportRow)

    sent = pickle.dumps(checked, protocol=pickle.HIGHEST_PROTOCOL)
    received = pickle.loads(sent)

    assert b"payload_json" not in sent and "payload" not in received.__dict__
    assert received == checked
    assert type(received.payload_json) is JSONText
    assert received.event == checked.event
    assert received.payload == checked.event.model_dump(mode="json")
    assert received.payload["ticket"]["priority"] == "P2"


# --- the second process -------------------------------------------------------------------------


def _numbered(number: int, cells: list[Any]) -> tuple[int, list[Any]]:
    return number, cells


@pytest.mark.parametrize(
    ("count", "sizes"), [(0, [0]), (1, [1]), (5, [2, 3, 0]), (6, [2, 3, 1]), (8, [2, 3, 3, 0])]
)
def test_parts_from_the_second_process_make_the_same_rows_in_batches(
    count: int, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "_PART_ROWS", 2)
    rows = [(number, [f"cell {number}"]) for number in range(2, 2 + count)]

    elsewhere = list(pipeline.checked_elsewhere(rows, _numbered, 3))

    # The same rows in the same order; the first batch is one part (the writer starts at
    # once), then whole batches, then what is left (maybe nothing), as checked_here ends.
    here = list(pipeline.checked_here(rows, _numbered, 3))
    assert [row for batch in elsewhere for row in batch] == [
        row for batch in here for row in batch
    ]
    assert [len(batch) for batch in elsewhere] == sizes


@pytest.mark.skipif(not is_postgres(), reason="PostgreSQL plans")
def test_custom_plans_are_for_the_loads_only(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    decide = bulk._Batch.decide

    def watched(batch: bulk._Batch) -> list[Outcome]:
        seen.append(str(db.session.execute(db.text("SHOW plan_cache_mode")).scalar()))
        return decide(batch)

    monkeypatch.setattr(bulk._Batch, "decide", watched)
    before = db.session.execute(db.text("SHOW plan_cache_mode")).scalar()
    ticket_file = TicketFile.open(write_csv(tmp_path / "export.csv", [row("T-1"), row("T-2")]))

    import_tickets(ticket_file, naive_timezone=UTC, batch_size=1)

    assert seen == [before, before]


# --- the PostgreSQL and other statements, built without their database ------------------------


def test_the_postgresql_update_sets_each_row_from_one_json_parameter() -> None:
    dialect = postgresql.psycopg.dialect()
    later = NOW + timedelta(microseconds=5)

    statement, parameters = _update_from_json(
        Customer.__table__,
        [{"row_id": 7, "tier": Tier.VIP, "is_new": False, "updated_at": later}],
        dialect,
    )

    assert statement == (
        "UPDATE customer SET tier = v.tier, is_new = v.is_new, updated_at = v.updated_at "
        "FROM json_to_recordset(%(rows)s) AS v(row_id integer, tier VARCHAR(8), "
        "is_new BOOLEAN, updated_at TIMESTAMP WITH TIME ZONE) WHERE customer.id = v.row_id"
    )
    assert json.loads(parameters["rows"]) == [
        {"row_id": 7, "tier": "vip", "is_new": False, "updated_at": later.isoformat()}
    ]


@pytest.mark.parametrize(
    ("name", "dialect", "sql"),
    [
        ("postgresql", postgresql.psycopg.dialect(), "customer.external_id = ANY (%(param_1)s"),
        ("sqlite", sqlite.dialect(), "customer.external_id IN (SELECT value \nFROM json_each("),
        ("other", sqlite.dialect(), "customer.external_id IN (__[POSTCOMPILE_external_id_1])"),
    ],
)
def test_in_values_is_one_bound_value_where_the_database_allows(
    name: str, dialect: Any, sql: str
) -> None:
    condition = _in_values(Customer.external_id, ["K-1", "K-2"], name)

    assert sql in str(condition.compile(dialect=dialect))
