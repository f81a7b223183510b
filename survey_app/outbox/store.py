"""Writing, listing and reading the outbox's messages (one ``.eml`` file each).

A message is stored exactly as it would have gone to the SMTP server, after the
same checks (:func:`survey_app.outbound.send_mail`), as
``<instance>/outbox/<UTC time>-<random>.eml``: any mail client opens it. The files
are private (0600 in a 0700 folder): a survey link in one lets its reader answer
as the customer. Nothing is stored in the database, so no migration is involved.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import current_app

from ..types import utcnow

FOLDER = "outbox"
#: ``20261204T053300123456Z-1a2b3c4d.eml``: the time it was written, then 8 random hex digits.
NAME = re.compile(r"^(\d{8}T\d{12})Z-[0-9a-f]{8}\.eml$")


@dataclass(frozen=True)
class OutboxEntry:
    """One stored message as the list shows it."""

    name: str
    written_at: datetime
    to: str
    subject: str


def outbox_folder() -> Path:
    """The folder of the current app's outbox: ``<instance>/outbox``."""
    return Path(current_app.instance_path) / FOLDER


def store_message(data: bytes) -> str:
    """Write one message (its bytes as they would go on the wire); return its file name.

    Written under a temporary name and renamed, so a listing never sees half a message.
    Raises :class:`OSError` when the folder cannot be written.
    """
    folder = outbox_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}.eml"
    partial = folder / f".{name}.part"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(partial, folder / name)
    return name


def _written_at(name: str) -> datetime:
    match = NAME.match(name)
    assert match is not None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)


def message_names() -> list[str]:
    """Names of the stored messages, newest first."""
    folder = outbox_folder()
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if NAME.match(p.name)), reverse=True)


def list_messages(limit: int) -> tuple[list[OutboxEntry], int]:
    """The newest ``limit`` messages (time, recipients, subject) and how many there are."""
    names = message_names()
    parser = BytesParser(policy=policy.default)
    entries = []
    for name in names[:limit]:
        try:
            with (outbox_folder() / name).open("rb") as handle:
                headers = parser.parse(handle, headersonly=True)
        except FileNotFoundError:  # removed since the listing
            continue
        entries.append(
            OutboxEntry(
                name=name,
                written_at=_written_at(name),
                to=str(headers.get("To", "")),
                subject=str(headers.get("Subject", "")),
            )
        )
    return entries, len(names)


@dataclass(frozen=True)
class OutboxMessage:
    """One stored message, decoded for display."""

    name: str
    written_at: datetime
    subject: str
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None


def read_message(name: str) -> OutboxMessage | None:
    """The message stored as ``name``, or None (no such message, or not a message name:
    only names the outbox writes are opened, so a name cannot reach outside the folder)."""
    if not NAME.match(name):
        return None
    try:
        data = (outbox_folder() / name).read_bytes()
    except FileNotFoundError:
        return None
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return OutboxMessage(
        name=name,
        written_at=_written_at(name),
        subject=str(message.get("Subject", "")),
        headers=[(key, str(value)) for key, value in message.items()],
        text=_part(message, "plain"),
        html=_part(message, "html"),
    )


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return None
    content = body.get_content()
    # Stored with the wire's CRLF line ends; shown with plain ones.
    return content.replace("\r\n", "\n") if isinstance(content, str) else None
