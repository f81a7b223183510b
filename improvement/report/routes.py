"""The report page and the Excel download, for managers (and admins).

Filters are the dashboards' URL arguments (``from``, ``to``, ``team`` ...),
parsed by :func:`analysis.metrics.parse_metrics_args`; ``lang`` picks the
workbook's language (default: the page's).
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, send_file
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from analysis.dashboards.queries import filter_options
from analysis.metrics import DIMENSIONS, MetricsQuery, metrics_timezone
from analysis.metrics.catalog import DIMENSION_LABELS, TEXT_FILTERS
from analysis.metrics.scope import ScopeError, parse_metrics_args
from survey_app.auth.access import manager_required
from survey_app.extensions import db
from survey_app.labels import label
from survey_app.models import Channel, Priority, Tier

from .languages import LANGUAGES

bp = Blueprint("reports", __name__, url_prefix="/reports")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _parse() -> tuple[MetricsQuery, str]:
    args = MultiDict(
        (key, value) for key, value in request.args.items(multi=True) if key != "lang"
    )
    language = request.args.get("lang") or str(get_locale() or "en")
    errors: list[dict[str, str]] = []
    if language not in LANGUAGES:
        errors.append({"field": "lang", "message": _("must be one of en, zh_Hans")})
    try:
        query = parse_metrics_args(args, timezone=metrics_timezone(current_app.config))
    except ScopeError as exc:
        raise ScopeError(exc.errors + errors) from None
    if errors:
        raise ScopeError(errors)
    return query, language


def _context(query: MetricsQuery | None, language: str | None) -> dict[str, Any]:
    options: dict[str, list[tuple[str, str]]] = {
        name: [(value, value) for value in values]
        for name, values in filter_options(TEXT_FILTERS).items()
    }
    for name, enum_cls in (("channel", Channel), ("priority", Priority), ("customer_tier", Tier)):
        options[name] = [(member.value, label(member)) for member in enum_cls]
    selected = {name: request.args.getlist(name) for name in DIMENSIONS}
    for name in TEXT_FILTERS:
        known = {value for value, _text in options[name]}
        options[name] += [(value, value) for value in selected[name] if value not in known]
    download_args = [
        (key, value) for key, value in request.args.items(multi=True) if key != "lang"
    ]
    return {
        "options": options,
        "selected": selected,
        "dimension_labels": DIMENSION_LABELS,
        "query": query,
        "language": language,
        "report_languages": current_app.config["LANGUAGES"],
        "download_args": download_args,
    }


def _error_page(exc: ScopeError) -> tuple[str, int]:
    return render_template("reports/report.html", errors=exc.errors, **_context(None, None)), 400


@bp.get("")
@manager_required
def report_page() -> tuple[str, int] | str:
    """Choose the period, filters and language of the Excel improvement report."""
    try:
        query, language = _parse()
    except ScopeError as exc:
        return _error_page(exc)
    page = render_template("reports/report.html", **_context(query, language))
    db.session.commit()
    return page


@bp.get("/excel")
@manager_required
def excel() -> Response | tuple[str, int]:
    """The Excel improvement report of the filters in the URL, as a download."""
    try:
        query, language = _parse()
    except ScopeError as exc:
        return _error_page(exc)
    # In memory: the package is compressed (about 10 MB for 100 000 responses), and a
    # BytesIO needs no closing if the client goes away before the download starts.
    body = io.BytesIO()
    try:
        from .workbook import write_report  # openpyxl loads on the first report

        write_report(query.scope, body, language=language)
    finally:
        db.session.rollback()
    body.seek(0)
    return send_file(body, mimetype=XLSX, as_attachment=True, download_name=_filename(query.scope))


def _filename(scope: Any) -> str:
    from .workbook import report_filename

    return report_filename(scope)
