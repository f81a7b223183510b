"""Import closed tickets from a helpdesk's CSV or XLSX export.

Each row is validated with the webhook's schema: a bad row is reported (row
number and reason) and skipped, good rows land, written 4,000 at a time
with the result applying them one by one would have (:mod:`.bulk`). The
idempotency key is the row's content, so importing the same file again changes
nothing, while a row whose data changed updates its ticket. The file is read a
row at a time (twice: checked whole before the first row is written, then
imported), so memory does not grow with its size.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol
from zipfile import BadZipFile

from flask import current_app, has_app_context
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from ..config import with_defaults
from ..database import JSONText, bulk_writes, write_transaction
from ..extensions import db
from .bulk import apply_ticket_events
from .pipeline import checked_elsewhere, checked_here, few_collections, spare_core
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


class NumberedRows(Protocol):
    """Rows as ``(row number, cells)`` that can be counted and iterated (again)."""

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]: ...

    def __len__(self) -> int: ...


class TicketRows:
    """The non-empty data rows of a file, read again from the file on every iteration.

    Iterating yields ``(row number as a spreadsheet shows it, cells)``, each row cut
    to the header's width; ``len()`` is their number, counted when the file was
    opened. Only one row is held at a time, so memory does not grow with the file.
    """

    def __init__(self, path: Path, limits: _Limits, width: int, count: int) -> None:
        self.path = path
        self.limits = limits
        self.width = width
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        with _raw_rows(self.path, self.limits) as lines:
            next(lines, None)  # the header
            yield from _data_rows(lines, self.width, self.limits)


@dataclasses.dataclass
class TicketFile:
    """A helpdesk export, checked and with its columns resolved."""

    name: str
    columns: dict[int, str]
    #: ``(row number as a spreadsheet shows it, cells)`` for every non-empty data row.
    rows: NumberedRows

    @classmethod
    def open(
        cls,
        path: Path,
        column_overrides: Mapping[str, str] | None = None,
        *,
        max_rows: int | None = None,
        max_columns: int | None = None,
    ) -> TicketFile:
        """Check a .csv (UTF-8) or .xlsx file; refuse an unreadable or header-less one.

        The whole file is read once, a row at a time, before anything is imported,
        so a file refused is refused before its first row is written: one with more
        than ``max_rows`` rows or a header wider than ``max_columns`` (defaults:
        ``IMPORT_MAX_ROWS``, ``IMPORT_MAX_COLUMNS``), so a small file that
        declares a million rows of sixteen thousand columns (an "XLSX bomb")
        is refused in a moment instead of exhausting memory. The rows are read
        again, one at a time, when :attr:`rows` is iterated (:class:`TicketRows`).
        """
        config = with_defaults(current_app.config if has_app_context() else {})
        limits = _Limits(
            rows=int(max_rows or config["IMPORT_MAX_ROWS"]),
            columns=int(max_columns or config["IMPORT_MAX_COLUMNS"]),
            name=path.name,
        )
        with _raw_rows(path, limits) as lines:
            header = _read_header(lines, limits)
            count = sum(1 for _row in _data_rows(lines, len(header), limits))
        rows = TicketRows(path, limits, len(header), count)
        return cls(path.name, resolve_columns(header, column_overrides), rows)


@dataclasses.dataclass(frozen=True)
class _Limits:
    rows: int
    columns: int
    name: str


@contextlib.contextmanager
def _raw_rows(path: Path, limits: _Limits) -> Iterator[Iterator[Sequence[Any]]]:
    """The file's rows as cell sequences, header first; refuses an unreadable file."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm"):
        raise ImportFileError(f"Unsupported file type {suffix!r}: use .csv or .xlsx.")
    if suffix != ".csv":
        with _xlsx_rows(path, limits) as rows:
            yield rows
        return
    # The CSV is decoded as it is read, so a bad byte surfaces in the caller's loop:
    # it comes back here (at the yield) and is reported like any unreadable file.
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield csv.reader(handle)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"Cannot read {path.name} as UTF-8 CSV: {exc}") from None


def _read_header(lines: Iterator[Sequence[Any]], limits: _Limits) -> list[str]:
    first = next(lines, None)
    if first is None:
        raise ImportFileError(f"{limits.name} is empty.")
    header = [str(c or "").strip() for c in list(first)[: limits.columns + 1]]
    while header and not header[-1]:
        header.pop()
    if len(header) > limits.columns:
        raise ImportFileError(
            f"{limits.name} has more than {limits.columns} columns (IMPORT_MAX_COLUMNS)."
        )
    return header


def _data_rows(
    lines: Iterator[Sequence[Any]], width: int, limits: _Limits
) -> Iterator[tuple[int, list[Any]]]:
    """The non-empty rows after the header, numbered as a spreadsheet shows them."""
    for number, cells in enumerate(lines, start=2):
        if number > limits.rows:
            raise ImportFileError(
                f"{limits.name} has more than {limits.rows} rows (IMPORT_MAX_ROWS): "
                "split it into smaller files."
            )
        kept = list(cells[:width])
        if _has_data(kept):
            yield number, kept


@contextlib.contextmanager
def _xlsx_rows(path: Path, limits: _Limits) -> Iterator[Iterator[Sequence[Any]]]:
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
            yield iter(sheet.iter_rows(values_only=True, max_col=limits.columns + 1))
        finally:
            workbook.close()


def _has_data(cells: list[Any]) -> bool:
    return any(c is not None and str(c).strip() != "" for c in cells)


def row_to_event(cells: list[Any], columns: dict[int, str]) -> dict[str, Any]:
    """Build the webhook-shaped payload for one row (empty cells are left out)."""
    payload: dict[str, Any] = {"event": "closed", "ticket": {}, "customer": {}}
    width = len(cells)
    for index, field in columns.items():
        if index >= width:
            continue
        value = cells[index]
        if isinstance(value, str):
            if not value.strip():
                continue
            group, name = _FIELD_PARTS[field]
            if name == "is_new":
                word = value.strip().lower()
                value = True if word in TRUE_WORDS else False if word in FALSE_WORDS else value
        elif value is None:
            continue
        else:
            group, name = _FIELD_PARTS[field]
            if isinstance(value, datetime | date):
                value = value.isoformat()
        payload[group][name] = value
    return payload


#: ``"ticket.subject"`` -> ``("ticket", "subject")``, split once.
_FIELD_PARTS: dict[str, tuple[str, str]] = {
    field: (field.split(".")[0], field.split(".")[1]) for field in DEFAULT_COLUMNS
}


@dataclasses.dataclass(frozen=True)
class ImportRow:
    """A row that passed validation: its event, idempotency key and stored payload.

    Pickled as a tuple of its fields (a large file's rows come from the validating
    process, :func:`.pipeline.checked_elsewhere`), and without :attr:`payload`, which is
    read back from :attr:`payload_json` only where a row is compared with a stored one."""

    number: int
    event: TicketEventIn
    idempotency_key: str
    #: The validated event as JSON (the text its key is the hash of), stored as it is.
    payload_json: JSONText

    @functools.cached_property
    def payload(self) -> dict[str, Any]:
        """The stored payload: the validated event in JSON form."""
        loaded: dict[str, Any] = json.loads(self.payload_json)
        return loaded

    def __reduce__(self) -> tuple[Any, ...]:
        payload_json = str(self.payload_json)  # a plain str pickles in a few bytes
        return _import_row, (self.number, self.event, self.idempotency_key, payload_json)


def _import_row(
    number: int, event: TicketEventIn, idempotency_key: str, payload_json: str
) -> ImportRow:
    return ImportRow(number, event, idempotency_key, JSONText(payload_json))


def check_row(
    number: int,
    cells: list[Any],
    columns: dict[int, str],
    *,
    naive_timezone: tzinfo,
    source: str | None = None,
) -> ImportRow | RowError:
    """Validate one row like a webhook ``closed`` event; the error names field and reason.

    The idempotency key is a hash of the validated content, so the same row
    imported twice is recognised, and a row whose data changed is not.
    """
    payload = row_to_event(cells, columns)
    if source:
        payload["ticket"]["source"] = source
    try:
        event = TicketEventIn.model_validate(payload, context={"naive_timezone": naive_timezone})
    except ValidationError as exc:
        message = "; ".join(f"{e['field']}: {e['message']}" for e in error_list(exc))
        return RowError(number, message)
    data = event.model_dump(mode="json")
    text = JSONText(json.dumps(data, sort_keys=True))
    key = "import:" + hashlib.sha256(text.encode()).hexdigest()
    return ImportRow(number, event, key, text)


#: Rows validated, then written together in one transaction. Larger batches rewrite
#: fewer index pages per row (SQLite's commits): 4,000 rows, not 1,000, took a 100,000-row
#: import's commits from about 23 to 13 us a row, for some 30 MB more memory.
IMPORT_BATCH = 4000
#: A file with at least this many rows is validated in a second process while this one
#: writes (where ``fork`` exists and a core is idle): starting it costs a few
#: milliseconds, validating is about a third of a row's time.
PARALLEL_MIN_ROWS = 5000
#: Validates one row: ``check_row`` with the file's columns, zone and source.
RowCheck = Callable[[int, list[Any]], "ImportRow | RowError"]
#: The second process's entry points, looked up here at call time (tests replace them).
_spare_core = spare_core
_checked_elsewhere = checked_elsewhere


def import_tickets(
    ticket_file: TicketFile,
    *,
    naive_timezone: tzinfo,
    source: str | None = None,
    on_row: Callable[[], None] | None = None,
    batch_size: int = IMPORT_BATCH,
    parallel: bool | None = None,
) -> ImportReport:
    """Import every row of ``ticket_file``; commit good rows, report bad ones.

    ``naive_timezone`` is the zone of timestamps written without one;
    ``source`` overrides the ticket source for every row. Rows are validated one
    by one and written ``batch_size`` at a time, one transaction per batch, with
    the outcome applying them one by one would have (:mod:`.bulk`); ``on_row`` is
    called for each row once its batch is committed. Holds a few batches in memory.

    ``parallel``: validate the rows in a second (forked) process while this one
    writes the batches before them; ``None`` (default) does so for a file of at
    least :data:`PARALLEL_MIN_ROWS` rows when a core is idle for it
    (:func:`.pipeline.spare_core`). The outcome is the same either way.
    """
    columns = ticket_file.columns

    def check(number: int, cells: list[Any]) -> ImportRow | RowError:
        return check_row(number, cells, columns, naive_timezone=naive_timezone, source=source)

    if parallel is None:
        parallel = len(ticket_file.rows) >= PARALLEL_MIN_ROWS and _spare_core()
    batches = (
        _checked_elsewhere(ticket_file.rows, check, batch_size, keep=ImportFileError)
        if parallel
        else checked_here(ticket_file.rows, check, batch_size)
    )
    report = ImportReport()
    with few_collections(), contextlib.closing(batches), _usual_settings_after():
        for checked in batches:
            batch: list[ImportRow] = []
            for item in checked:
                report.rows += 1
                if isinstance(item, RowError):
                    report.errors.append(item)
                else:
                    batch.append(item)
            _write_batch(batch, report)
            _progress(on_row, len(checked))
    return report


def _write_batch(batch: list[ImportRow], report: ImportReport) -> None:
    """Apply ``batch`` in one transaction and count the outcomes; commit.

    If a concurrent writer (the webhook) added one of its tickets, customers or
    events meanwhile, the batch is rolled back and applied row by row, which
    settles such races row by row.
    """
    if not batch:
        db.session.commit()
        return
    write_transaction()
    bulk_writes()
    try:
        outcomes = apply_ticket_events(batch, origin="import")
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        outcomes = [
            apply_ticket_event(
                row.event,
                idempotency_key=row.idempotency_key,
                origin="import",
                payload=row.payload,
            ).outcome
            for row in batch
        ]
        db.session.commit()
    for row, outcome in zip(batch, outcomes, strict=True):
        if outcome is Outcome.CREATED:
            report.created += 1
        elif outcome is Outcome.UPDATED:
            report.updated += 1
        elif outcome is Outcome.STALE:
            report.stale.append(row.number)
        else:
            report.unchanged += 1


@contextlib.contextmanager
def _usual_settings_after() -> Iterator[None]:
    """Put the connection's settings back once the batches are written (:func:`bulk_writes`;
    after a failure the connection keeps them: they only make it use more memory)."""
    yield
    bulk_writes(on=False)
    db.session.commit()


def _progress(on_row: Callable[[], None] | None, rows: int) -> None:
    if on_row is not None:
        for _row in range(rows):
            on_row()
