"""Dashboard pages (thin views over :mod:`.services`), the CSV download and plotly.js.

Every page reads its filters from the URL with the names of ``GET
/api/v1/metrics`` (``from``, ``to``, ``team``, ``channel`` ..., ``group_by``,
``grain``), parsed by :func:`analysis.metrics.parse_metrics_args`, so a link
is the view it shows. Bad filters give the page with the errors and a 400.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from analysis.labels import ASPECT_LABELS
from analysis.metrics import DIMENSIONS, OVERVIEW_KPIS, MetricsQuery, metrics_timezone
from analysis.metrics.catalog import CARD_LABELS, DIMENSION_LABELS, TEXT_FILTERS, format_duration
from analysis.metrics.scope import ScopeError, parse_metrics_args
from analysis.targets.labels import LEVEL_LABELS
from survey_app.auth.access import staff_required
from survey_app.csvexport import csv_download
from survey_app.extensions import db
from survey_app.labels import label
from survey_app.models import Channel, Priority, Tier
from survey_app.routing import whole_number

from . import figures, heatmap, queries, services

bp = Blueprint("dashboards", __name__, url_prefix="/dashboards")

#: Arguments of the dashboard pages that are not metrics filters.
PAGE_ARGS = ("page", "keyword", "sentiment", "table")
KPI_LABELS = CARD_LABELS
DRIVER_LABELS = {
    "speed": _l("Response speed"),
    "professionalism": _l("Professionalism"),
    "attitude": _l("Attitude"),
    "effectiveness": _l("Effectiveness"),
}
#: The breakdown choices: every dimension but new/returning and the template version.
BREAKDOWN_DIMENSIONS = tuple(
    d for d in DIMENSIONS if d not in ("customer_is_new", "template_version")
)
#: The vendored plotly.js (``static/vendor/README.md``): the cartesian bundle, a third of
#: the full one; it draws these trace types and no others.
PLOTLY_JS = "plotly-cartesian.min.js"
PLOTLY_TRACE_TYPES = frozenset(
    {
        "bar",
        "box",
        "contour",
        "heatmap",
        "histogram",
        "histogram2d",
        "histogram2dcontour",
        "image",
        "pie",
        "scatter",
        "scatterternary",
        "violin",
    }
)


def _metrics_args() -> MultiDict[str, str]:
    return MultiDict(
        (key, value) for key, value in request.args.items(multi=True) if key not in PAGE_ARGS
    )


def _parse() -> MetricsQuery:
    return parse_metrics_args(_metrics_args(), timezone=metrics_timezone(current_app.config))


def dashboard_url(endpoint: str, **changes: Any) -> str:
    """The current page's filters with ``changes`` applied (None removes an argument)."""
    args = MultiDict(request.args.items(multi=True))
    for key, value in changes.items():
        args.poplist(key)
        if value is not None:
            args[key] = value
    values: dict[str, Any] = args.to_dict(flat=False)
    return url_for(endpoint, **values)


def drill_value(dimension: str, value: Any) -> Any:
    """A group's value as the URL filter that selects it (None: cannot be selected)."""
    if value is None:
        return None
    if dimension == "customer_is_new":
        return "new" if value else "returning"
    return getattr(value, "value", value)


def _filter_context(query: MetricsQuery | None) -> dict[str, Any]:
    options: dict[str, list[tuple[str, str]]] = {
        name: [(value, value) for value in values]
        for name, values in queries.filter_options(TEXT_FILTERS).items()
    }
    for name, enum_cls in (("channel", Channel), ("priority", Priority), ("customer_tier", Tier)):
        options[name] = [(member.value, label(member)) for member in enum_cls]
    selected = {name: request.args.getlist(name) for name in DIMENSIONS}
    for name in TEXT_FILTERS:  # a filter from a shared link, with no responses here yet
        known = {value for value, _text in options[name]}
        options[name] += [(value, value) for value in selected[name] if value not in known]
    return {
        "options": options,
        "selected": selected,
        "dimension_labels": DIMENSION_LABELS,
        "breakdown_dimensions": BREAKDOWN_DIMENSIONS,
        "query": query,
        "dashboard_url": dashboard_url,
    }


def _error_page(template: str, exc: ScopeError) -> tuple[str, int]:
    context = _filter_context(None)
    return render_template(template, errors=exc.errors, **context), 400


@bp.get("")
@staff_required
def overview() -> tuple[str, int] | str:
    """The quality dashboard of one scope: cards, trends, distributions, sentiment, themes,
    breakdown, heatmap, drivers and the p-chart."""
    try:
        query = _parse()
    except ScopeError as exc:
        return _error_page("dashboards/overview.html", exc)
    scope = query.scope
    grain = query.grain or services.default_grain(scope)
    group_by = query.group_by or "team"
    # The breakdown first: the cards' and the count's reads may then sum its rows.
    breakdown = services.breakdown(scope, group_by)
    total = queries.response_count(scope)
    cards = services.overview_cards(scope)
    grid = heatmap.frt_heatmap(scope)
    context: dict[str, Any] = {
        "scope": scope,
        "grain": grain,
        "group_by": group_by,
        "total": total,
        "cards": cards,
        "kpi_labels": KPI_LABELS,
        "level_labels": LEVEL_LABELS,
        "breakdown": breakdown,
        "breakdown_kpis": OVERVIEW_KPIS,
        "drill_value": drill_value,
        "heatmap_n": sum(cell.n for row in grid for cell in row),
        "figures": {},
        "themes": [],
    }
    figs: dict[str, Any] = context["figures"]
    figs["heatmap"] = figures.heatmap_figure(grid) if context["heatmap_n"] else None
    if total:
        trend = services.kpi_trend(scope, grain)
        markers = services.timeline_markers(scope, grain)
        figs["nps_trend"] = figures.kpi_trend_figure(
            _("NPS trend"),
            [(g.key["period"], g.kpis["nps"]) for g in trend.groups],
            axis=(-100, 100),
            markers=markers,
        )
        figs["csat_trend"] = figures.kpi_trend_figure(
            _("CSAT % trend"),
            [(g.key["period"], g.kpis["csat_overall_percent"]) for g in trend.groups],
            axis=(0, 100),
            markers=markers,
        )
        distributions = queries.score_distributions(scope)
        figs["nps_distribution"] = figures.distribution_figure(
            _("NPS answers (0–10)"), distributions["nps"], "nps"
        )
        figs["csat_distribution"] = figures.distribution_figure(
            _("CSAT answers (1–5)"), distributions["csat_overall"], "csat"
        )
        figs["ces_distribution"] = figures.distribution_figure(
            _("CES answers (1–7)"), distributions["ces"], "ces"
        )
        sentiment = queries.sentiment_distribution(scope)
        context["sentiment_total"] = sum(sentiment.values())
        if context["sentiment_total"]:
            figs["sentiment"] = figures.sentiment_distribution_figure(sentiment)
            figs["sentiment_trend"] = figures.sentiment_trend_figure(
                queries.sentiment_trend(scope, grain)
            )
        context["aspects"] = queries.aspect_agreement(scope)
        context["aspect_labels"] = ASPECT_LABELS
        context["themes"] = queries.top_negative_themes(scope)
        if context["themes"]:
            figs["themes"] = figures.themes_figure(context["themes"])
        context["drivers"] = services.drivers(scope)
        context["driver_labels"] = DRIVER_LABELS
        if any(c.r is not None for c in context["drivers"].values()):
            figs["drivers"] = figures.driver_figure(context["drivers"], DRIVER_LABELS)
        context["pchart"] = services.detractor_pchart(scope, grain)
        if any(p.percent is not None for p in context["pchart"]):
            figs["pchart"] = figures.pchart_figure(context["pchart"])
    db.session.commit()
    return render_template("dashboards/overview.html", **context, **_filter_context(query))


@bp.get("/responses")
@staff_required
def responses() -> tuple[str, int] | str:
    """The responses behind a number: the same filters, plus ``keyword`` and ``sentiment``;
    50 a page, newest first."""
    try:
        query = _parse()
        keyword, sentiment, page = _list_args()
    except ScopeError as exc:
        return _error_page("dashboards/responses.html", exc)
    result = queries.responses_page(query.scope, page, keyword=keyword, sentiment=sentiment)
    db.session.commit()
    return render_template(
        "dashboards/responses.html",
        result=result,
        keyword=keyword,
        sentiment=sentiment,
        scope=query.scope,
        sentiment_labels=figures.sentiment_labels(),
        **_filter_context(query),
    )


def _list_args() -> tuple[str | None, str | None, int]:
    errors: list[dict[str, str]] = []
    keyword = (request.args.get("keyword") or "").strip() or None
    if keyword is not None and len(keyword) > 60:
        errors.append({"field": "keyword", "message": _("longer than 60 characters")})
    sentiment = request.args.get("sentiment") or None
    if sentiment is not None and sentiment not in queries.SENTIMENTS:
        errors.append({"field": "sentiment", "message": _("unknown sentiment")})
    raw_page = request.args.get("page", "1")
    page = whole_number(raw_page, 100_000) or 0
    if not page:
        errors.append({"field": "page", "message": _("must be a page number")})
    if errors:
        raise ScopeError(errors)
    return keyword, sentiment, page


@bp.get("/export")
@staff_required
def export() -> Response | tuple[str, int]:
    """One dashboard table as CSV (``table=`` one of :data:`.services.TABLES`), same filters."""
    table = request.args.get("table", "")
    try:
        query = _parse()
        keyword, sentiment, _page = _list_args()
        if table not in services.TABLES:
            raise ScopeError(
                [
                    {
                        "field": "table",
                        "message": _(
                            "must be one of %(tables)s", tables=", ".join(services.TABLES)
                        ),
                    }
                ]
            )
    except ScopeError as exc:
        return _error_page("dashboards/overview.html", exc)
    header, rows = services.table_rows(
        table,
        query.scope,
        group_by=query.group_by or "team",
        grain=query.grain or services.default_grain(query.scope),
        keyword=keyword,
        sentiment=sentiment,
    )
    name = f"closedloop-{table}-{query.scope.start}-{query.scope.end}.csv"
    return csv_download(name, header, rows)


@bp.get("/plotly.min.js")
@staff_required
def plotly_js() -> Response:
    """The vendored cartesian plotly.js bundle (never a CDN), cacheable for a year: pages
    link it with its hash in the query string. Read and gzipped once per process and
    answered from memory: gzipped (``Content-Encoding: gzip``) to a client that accepts
    it, plain otherwise, each with its own ETag for revalidation."""
    bundle = _plotly_bundle()
    gzipped = request.accept_encodings["gzip"] > 0
    response = Response(bundle.gzipped if gzipped else bundle.body, mimetype="text/javascript")
    if gzipped:
        response.content_encoding = "gzip"
    response.vary.add("Accept-Encoding")
    response.set_etag(f"{bundle.tag}-gz" if gzipped else bundle.tag)
    response.cache_control.max_age = 365 * 24 * 3600
    response.cache_control.private = True
    response.make_conditional(request)
    return response


@dataclass(frozen=True)
class PlotlyBundle:
    """plotly.js as served: the file, the same gzipped, and the hash naming both."""

    body: bytes
    gzipped: bytes
    tag: str


@cache
def _plotly_bundle() -> PlotlyBundle:
    body = (Path(__file__).parent / "static" / "vendor" / PLOTLY_JS).read_bytes()
    return PlotlyBundle(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        tag=hashlib.sha256(body).hexdigest()[:32],
    )


bp.add_app_template_global(format_duration)


@bp.app_template_global()
def plotly_js_url() -> str:
    """The URL of plotly.js, versioned by its content so a new bundle is fetched anew."""
    return url_for("dashboards.plotly_js", v=_plotly_bundle().tag[:12])
