"""The search box of the staff lists: a substring of any of some text columns, any case."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, false, or_


def escape_like(text: str) -> str:
    """Make ``%``, ``_`` and ``\\`` match themselves in a LIKE pattern (escape char ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(text: str, columns: Iterable[Any]) -> ColumnElement[bool]:
    """True where one of ``columns`` contains ``text`` (``%`` and ``_`` taken literally).

    Case-insensitive through ``ILIKE``: PostgreSQL folds every script's case,
    SQLite (``lower() LIKE lower()``) only ASCII's; Chinese has none to fold.
    NULL columns never match. No columns: nothing matches.
    """
    like = f"%{escape_like(text)}%"
    return or_(false(), *(column.ilike(like, escape="\\") for column in columns))
