"""Backups of the embedded SQLite database (PostgreSQL: ``pg_dump``, see the README).

SQLite's online backup API copies the database page by page in one step under a
read transaction: in WAL mode the app and the worker keep writing meanwhile, and
the copy is the database as of one committed transaction, never a half-written
one (a plain file copy of a live database can be). The copy is written next to
its target, checked with ``PRAGMA integrity_check``, switched to a rollback
journal (one self-contained file) and only then renamed into place.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

#: Printed by ``closedloop db backup`` on PostgreSQL, which it does not back up itself.
PG_DUMP_RECIPE = """\
On PostgreSQL, back up with pg_dump (consistent while the app writes: one snapshot):

    pg_dump --format=custom --no-owner --file=closedloop-$(date -u +%Y%m%dT%H%M%SZ).dump "$URL"

where URL is CLOSEDLOOP_DATABASE_URL without "+psycopg" (postgresql://user@host/db).
Restore into an empty database with:

    pg_restore --no-owner --dbname="$URL" closedloop-....dump
"""


class BackupError(RuntimeError):
    """The backup could not be made (nothing was written at the target)."""


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL; ``None`` for another database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def default_backup_path(folder: Path, now: datetime | None = None) -> Path:
    """``<folder>/closedloop-YYYYmmddTHHMMSSZ.sqlite3`` for the current UTC time."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return folder / f"closedloop-{stamp}.sqlite3"


def backup_sqlite(source: Path, target: Path) -> Path:
    """Copy the live SQLite database ``source`` to ``target`` and return ``target``.

    Refuses (:class:`BackupError`) a missing source, an existing target, or a copy
    that fails its integrity check.
    """
    if not source.is_file():
        raise BackupError(f"No SQLite database at {source}.")
    if target.exists():
        raise BackupError(f"{target} exists; choose another file.")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    # Private from the first byte: the copy holds every customer's answers and e-mail.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: the whole database in one consistent step
            dst.execute("PRAGMA journal_mode=DELETE")
            (verdict,) = dst.execute("PRAGMA integrity_check").fetchone()
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"The backup failed: {exc}") from exc
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"The copy failed its integrity check: {verdict}")
    os.replace(partial, target)
    return target
