"""The admins' audit page (thin view): every event, filterable, newest first."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from survey_app.auth.access import admin_required
from survey_app.routing import paginate, whole_number, within_supported_days

from .services import ENTITY_TYPES, PAGE_SIZE, AuditFilter, event_query

bp = Blueprint("audit", __name__)


#: The filters' names as the form labels them (error messages name them so).
FILTER_LABELS = {
    "entity_id": _l("Id"),
    "actor_id": _l("User id"),
    "from": _l("From"),
    "to": _l("To"),
}


def _filters() -> tuple[AuditFilter, list[str]]:
    errors: list[str] = []
    args = request.args

    def number(name: str) -> int | None:
        raw = args.get(name, "").strip()
        if not raw:
            return None
        value = whole_number(raw)
        if value is None:
            errors.append(_("%(name)s must be a whole number.", name=FILTER_LABELS[name]))
        return value

    def day(name: str) -> date | None:
        raw = args.get(name, "").strip()
        if not raw:
            return None
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            value = None
        if value is None or not within_supported_days(value):
            errors.append(_("%(name)s must be a date (YYYY-MM-DD).", name=FILTER_LABELS[name]))
            return None
        return value

    entity_type = args.get("entity_type", "").strip() or None
    if entity_type is not None and entity_type not in ENTITY_TYPES:
        errors.append(_("Unknown entity type."))
        entity_type = None
    found = AuditFilter(
        entity_type=entity_type,
        entity_id=number("entity_id"),
        actor_id=number("actor_id"),
        start=day("from"),
        end=day("to"),
    )
    return found, errors


@bp.get("/admin/audit")
@admin_required
def audit_log() -> tuple[str, int]:
    filters, errors = _filters()
    page = paginate(event_query(filters), per_page=PAGE_SIZE)
    return (
        render_template(
            "audit/log.html",
            page=page,
            errors=errors,
            entity_types=ENTITY_TYPES,
            args=request.args,
        ),
        400 if errors else 200,
    )
