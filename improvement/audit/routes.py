"""The admins' audit page (thin view): every event, filterable, newest first."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from survey_app.auth.access import admin_required
from survey_app.routing import paginate, whole_number, within_supported_days

from .services import ENTITY_TYPES, PAGE_SIZE, AuditFilter, event_query

bp = Blueprint("audit", __name__)


def _filters() -> tuple[AuditFilter, list[str]]:
    errors: list[str] = []
    args = request.args

    def number(name: str) -> int | None:
        raw = args.get(name, "").strip()
        if not raw:
            return None
        value = whole_number(raw)
        if value is None:
            errors.append(_("%(name)s must be a whole number.", name=name))
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
            errors.append(_("%(name)s must be a date (YYYY-MM-DD).", name=name))
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
