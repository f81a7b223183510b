"""CSV downloads: cells safe for spreadsheets, written line by line, answered as a stream.

Every CSV the app offers (the staff lists, the dashboards' tables) goes through
:func:`csv_lines`, and every spreadsheet cell of text people typed (the Excel
report) through :func:`neutralise`, so there is one rule against formula
injection.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, tzinfo
from typing import Any

from flask import Response, stream_with_context

#: Cells beginning with one of these are read as formulas by spreadsheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Rows read from the database at a time while a list's CSV download is written.
EXPORT_BATCH = 500


def neutralise(value: Any) -> Any:
    """A cell made safe for spreadsheets: text starting with = + - @ tab or CR gets a leading
    apostrophe, so it is shown as text and never run as a formula. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_lines(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """CSV text, line by line (a UTF-8 BOM first so Excel reads Chinese), every cell
    passed through :func:`neutralise`; None becomes an empty cell. A row with a ``;``
    in a cell has its text cells quoted: Excel in locales that separate by ``;``
    would otherwise split that cell. Header cells may be lazy translations."""
    buffer = io.StringIO()
    plain = csv.writer(buffer)
    quoted = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)

    def line(cells: Sequence[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        safe = ["" if cell is None else neutralise(cell) for cell in cells]
        splits = any(isinstance(cell, str) and ";" in cell for cell in safe)
        (quoted if splits else plain).writerow(safe)
        return buffer.getvalue()

    yield "\ufeff" + line([str(cell) for cell in header])
    for row in rows:
        yield line(row)


def local_time(moment: datetime | None, zone: tzinfo) -> str | None:
    """``moment`` as ``YYYY-MM-DD HH:MM`` in ``zone`` (a form spreadsheets read as a date);
    None stays None (an empty cell)."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else None


def csv_download(filename: str, header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Response:
    """A streamed ``text/csv`` attachment named ``filename`` (ASCII, no quotes): the rows
    are read while the response is sent, inside the request (so the database session
    and the reader's language stay available), never held in memory all at once."""
    return Response(
        stream_with_context(csv_lines(header, rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
