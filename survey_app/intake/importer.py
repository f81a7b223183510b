"""Import closed tickets from a helpdesk's CSV or XLSX export.

Each row is validated with the webhook's schema and applied in its own
SAVEPOINT: a bad row is reported (row number and reason) and skipped, good
rows land. The idempotency key is the row's content, so importing the same
file again changes nothing, while a row whose data changed updates its ticket.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

from flask import current_app, has_app_context
from pydantic import ValidationError

from ..extensions import db
from .schemas import TicketEventIn, error_list
from .services import Outcome, apply_ticket_event

#: Field path -> accepted column headers (case-insensitive). The first is canonical.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "ticket.external_id": ("ticket_id", "external_id", "id", "工单号", "工单编号"),
    "ticket.source": ("source", "来源系统"),
    "ticket.subject": ("subject", "title", "主题", "标题"),
    "ticket.channel": ("channel", "渠道"),
    "ticket.priority": ("priority", "优先级"),
    "ticket.category": ("category", "类别", "问题类别"),
    "ticket.product_line": ("product_line", "product", "产品线"),
    "ticket.region": ("region", "区域", "地区"),
    "ticket.team": ("team", "团队", "小组"),
    "ticket.agent": ("agent", "assignee", "客服", "处理人"),
    "ticket.status": ("status", "状态"),
    "ticket.created_at": ("created_at", "created", "创建时间"),
    "ticket.first_response_at": ("first_response_at", "首次响应时间"),
    "ticket.resolved_at": ("resolved_at", "解决时间"),
    "ticket.closed_at": ("closed_at", "closed", "关闭时间"),
    "ticket.reopen_count": ("reopen_count", "重开次数"),
    "ticket.contact_count": ("contact_count", "contacts", "联系次数"),
    "customer.external_id": ("customer_id", "customer_external_id", "客户编号"),
    "customer.name": ("customer_name", "客户姓名", "客户名称"),
    "customer.email": ("customer_email", "email", "邮箱"),
    "customer.phone": ("customer_phone", "phone", "电话", "手机"),
    "customer.language": ("customer_language", "language", "语言"),
    "customer.tier": ("customer_tier", "tier", "客户等级"),
    "customer.is_new": ("customer_is_new", "is_new", "新客户"),
}
REQUIRED_FIELDS = (
    "ticket.external_id",
    "ticket.channel",
    "ticket.priority",
    "ticket.created_at",
    "ticket.closed_at",
)
TRUE_WORDS = {"1", "true", "yes", "y", "是", "新"}
FALSE_WORDS = {"0", "false", "no", "n", "否", "老"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, unknown type, no usable header)."""


@dataclasses.dataclass
class RowError:
    row: int
    message: str


@dataclasses.dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Rows older than what the ticket already reflects: recorded, not applied.
    stale: list[int] = dataclasses.field(default_factory=list)
    errors: list[RowError] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def resolve_columns(
    header: list[str], overrides: Mapping[str, str] | None = None
) -> dict[int, str]:
    """Map column positions to field paths.

    ``overrides`` maps a header (as written in the file) to a field path and
    wins over the defaults. Refuses a header missing a required field.
    """
    known = {
        alias.lower(): field for field, aliases in DEFAULT_COLUMNS.items() for alias in aliases
    }
    mapped = dict(overrides or {})
    for field in mapped.values():
        if field not in DEFAULT_COLUMNS:
            raise ImportFileError(
                f"Unknown field {field!r} in the column mapping; "
                f"fields are: {', '.join(DEFAULT_COLUMNS)}."
            )
    # A mapped field is read from its mapped column, not from a default header
    # that happens to come earlier in the file.
    known = {alias: field for alias, field in known.items() if field not in mapped.values()}
    known.update({column.strip().lower(): field for column, field in mapped.items()})
    positions: dict[int, str] = {}
    for index, name in enumerate(header):
        found = known.get(str(name or "").strip().lower())
        if found and found not in positions.values():
            positions[index] = found
    missing = [f for f in REQUIRED_FIELDS if f not in positions.values()]
    if missing:
        raise ImportFileError(
            "The header has no column for "
            + ", ".join(missing)
            + f" (accepted headers: {'; '.join(DEFAULT_COLUMNS[f][0] for f in missing)})."
        )
    return positions


@dataclasses.dataclass
class TicketFile:
    """A helpdesk export, read and with its columns resolved."""

    name: str
    columns: dict[int, str]
    #: ``(row number as a spreadsheet shows it, cells)`` for every non-empty data row.
    rows: list[tuple[int, list[Any]]]

    @classmethod
    def open(
        cls,
        path: Path,
        column_overrides: Mapping[str, str] | None = None,
        *,
        max_rows: int | None = None,
        max_columns: int | None = None,
    ) -> TicketFile:
        """Read a .csv (UTF-8) or .xlsx file; refuse an unreadable or header-less one.

        Rows are read one at a time and only non-empty ones kept, each cut to the
        header's width. Refuses (:class:`ImportFileError`) a file with more than
        ``max_rows`` rows or a header wider than ``max_columns`` (defaults:
        ``IMPORT_MAX_ROWS``, ``IMPORT_MAX_COLUMNS``), so a small file that
        declares a million rows of sixteen thousand columns (an "XLSX bomb")
        is refused in a moment instead of exhausting memory.
        """
        config = current_app.config if has_app_context() else {}
        limits = _Limits(
            rows=int(max_rows or config.get("IMPORT_MAX_ROWS") or DEFAULT_MAX_ROWS),
            columns=int(max_columns or config.get("IMPORT_MAX_COLUMNS") or DEFAULT_MAX_COLUMNS),
            name=path.name,
        )
        suffix = path.suffix.lower()
        try:
            if suffix == ".csv":
                with path.open(encoding="utf-8-sig", newline="") as handle:
                    header, rows = _read_table(csv.reader(handle), limits)
            elif suffix in (".xlsx", ".xlsm"):
                header, rows = _read_xlsx(path, limits)
            else:
                raise ImportFileError(f"Unsupported file type {suffix!r}: use .csv or .xlsx.")
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportFileError(f"Cannot read {path.name} as UTF-8 CSV: {exc}") from None
        return cls(path.name, resolve_columns(header, column_overrides), rows)


#: Rows a file may have (header included), and columns its header may have.
DEFAULT_MAX_ROWS = 500_000
DEFAULT_MAX_COLUMNS = 200


@dataclasses.dataclass(frozen=True)
class _Limits:
    rows: int
    columns: int
    name: str


def _read_table(
    lines: Iterable[Sequence[Any]], limits: _Limits
) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """The header and the non-empty data rows (numbered as a spreadsheet shows them)."""
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        raise ImportFileError(f"{limits.name} is empty.")
    header = [str(c or "").strip() for c in list(first)[: limits.columns + 1]]
    while header and not header[-1]:
        header.pop()
    if len(header) > limits.columns:
        raise ImportFileError(
            f"{limits.name} has more than {limits.columns} columns (IMPORT_MAX_COLUMNS)."
        )
    width = len(header)
    rows: list[tuple[int, list[Any]]] = []
    for number, cells in enumerate(iterator, start=2):
        if number > limits.rows:
            raise ImportFileError(
                f"{limits.name} has more than {limits.rows} rows (IMPORT_MAX_ROWS): "
                "split it into smaller files."
            )
        kept = list(cells[:width])
        if _has_data(kept):
            rows.append((number, kept))
    return header, rows


def _read_xlsx(path: Path, limits: _Limits) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # The file is ours to close: a refused file stops reading mid-sheet, and openpyxl's
    # row reader would leave its handle open until garbage collection.
    with path.open("rb") as handle:
        try:
            workbook = load_workbook(handle, read_only=True, data_only=True)
        except (InvalidFileException, BadZipFile, OSError, KeyError, ValueError) as exc:
            raise ImportFileError(f"Cannot read {path.name} as an Excel workbook: {exc}") from None
        try:
            sheet = workbook.worksheets[0]
            declared = sheet.max_row or 0  # the sheet's <dimension>; checked as rows come too
            if declared > limits.rows:
                raise ImportFileError(
                    f"{path.name} declares {declared} rows, more than {limits.rows} "
                    "(IMPORT_MAX_ROWS): split it into smaller files."
                )
            # Read the rows that are there, not the (possibly lying) dimension; never wider
            # than the limit (+1 to notice a header that is too wide).
            sheet.reset_dimensions()
            rows = sheet.iter_rows(values_only=True, max_col=limits.columns + 1)
            return _read_table(rows, limits)
        finally:
            workbook.close()


def _has_data(cells: list[Any]) -> bool:
    return any(c is not None and str(c).strip() != "" for c in cells)


def row_to_event(cells: list[Any], columns: dict[int, str]) -> dict[str, Any]:
    """Build the webhook-shaped payload for one row (empty cells are left out)."""
    payload: dict[str, Any] = {"event": "closed", "ticket": {}, "customer": {}}
    for index, field in columns.items():
        value = cells[index] if index < len(cells) else None
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        group, name = field.split(".")
        if name == "is_new" and isinstance(value, str):
            word = value.strip().lower()
            value = True if word in TRUE_WORDS else False if word in FALSE_WORDS else value
        if isinstance(value, datetime | date):
            value = value.isoformat()
        payload[group][name] = value
    return payload


def import_tickets(
    ticket_file: TicketFile,
    *,
    naive_timezone: tzinfo,
    source: str | None = None,
    on_row: Callable[[], None] | None = None,
    batch_size: int = 200,
) -> ImportReport:
    """Import every row of ``ticket_file``; commit good rows, report bad ones.

    ``naive_timezone`` is the zone of timestamps written without one;
    ``source`` overrides the ticket source for every row.
    """
    report = ImportReport()
    for number, cells in ticket_file.rows:
        report.rows += 1
        payload = row_to_event(cells, ticket_file.columns)
        if source:
            payload["ticket"]["source"] = source
        try:
            event = TicketEventIn.model_validate(
                payload, context={"naive_timezone": naive_timezone}
            )
        except ValidationError as exc:
            message = "; ".join(f"{e['field']}: {e['message']}" for e in error_list(exc))
            report.errors.append(RowError(number, message))
        else:
            data = event.model_dump(mode="json")
            key = "import:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
            result = apply_ticket_event(event, idempotency_key=key, origin="import", payload=data)
            if result.outcome is Outcome.CREATED:
                report.created += 1
            elif result.outcome is Outcome.UPDATED:
                report.updated += 1
            elif result.outcome is Outcome.STALE:
                report.stale.append(number)
            else:
                report.unchanged += 1
        if report.rows % batch_size == 0:
            db.session.commit()
        if on_row is not None:
            on_row()
    db.session.commit()
    return report
