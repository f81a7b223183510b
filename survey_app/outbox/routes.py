"""The outbox pages: the list of stored messages and one message (admins only).

Admins only: the messages hold live survey links (whoever opens one can answer
as the customer) and mail addressed to other staff.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, render_template

from ..auth.access import admin_required
from .store import list_messages, read_message

bp = Blueprint("outbox", __name__, url_prefix="/admin/outbox")

#: http(s) addresses in a text body, offered as links beside it.
_LINK = re.compile(r"https?://[^\s<>\"']+")


@bp.get("")
@admin_required
def messages() -> str:
    entries, total = list_messages(limit=current_app.config["PAGE_SIZE"])
    return render_template("outbox/messages.html", entries=entries, total=total)


@bp.get("/<name>")
@admin_required
def message(name: str) -> str:
    found = read_message(name)
    if found is None:
        abort(404)
    links = list(dict.fromkeys(_LINK.findall(found.text or "")))
    return render_template("outbox/message.html", message=found, links=links)
