"""Quality dashboards: the figures' numbers against hand-computed fixtures (themes, driver
correlation, p-chart limits, heatmap), the keyword rows the pipeline writes, role access,
URL filters, drill-down, CSV escaping and the empty period."""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import math
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from analysis.dashboards import figures, heatmap, queries, routes, services
from analysis.dashboards.stats import p_chart, pearson
from analysis.metrics import Kpi, Scope
from analysis.pipeline import analyse_response
from analysis.text.models import ResponseKeyword, replace_response_keywords
from survey_app.csvexport import csv_lines, neutralise
from survey_app.extensions import db
from survey_app.models import Role
from survey_app.surveys.models import SentimentLabel
from tests.kpi_data import MID_SEPTEMBER, KpiData

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

SEPTEMBER = Scope(start=date(2025, 9, 1), end=date(2025, 9, 30), timezone="Asia/Shanghai")
PERIOD = "from=2025-09-01&to=2025-09-30"


@pytest.fixture
def data(app) -> KpiData:
    return KpiData()


def _commented(data: KpiData, comment: str, label: str, keywords: list[str], **kwargs):
    response = data.response(comment=comment, **kwargs)
    response.sentiment_label = SentimentLabel(label)
    replace_response_keywords({response.id: keywords})
    return response


# --- themes --------------------------------------------------------------------------------------


def test_top_negative_themes_by_hand(data):
    day = MID_SEPTEMBER
    first = _commented(data, "等了很久，态度差", "negative", ["等待", "态度"], submitted_at=day)
    second = _commented(
        data, "还在等待回复", "negative", ["等待"], submitted_at=day + timedelta(hours=1)
    )
    _commented(data, "等待不久", "positive", ["等待"], submitted_at=day + timedelta(hours=2))
    _commented(data, "态度一般", "neutral", ["态度"], submitted_at=day)
    _commented(data, "退款太慢", "negative", ["退款"], submitted_at=day)
    _commented(data, "很好", "positive", ["好评"], submitted_at=day)
    # Outside the period, and in another team: not counted.
    _commented(data, "等待", "negative", ["等待"], submitted_at=datetime(2025, 10, 5, tzinfo=UTC))
    other_team = data.ticket(team="Backline")
    _commented(data, "等待太久", "negative", ["等待"], ticket=other_team, submitted_at=day)
    db.session.commit()

    scope = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, team=("Frontline",))
    themes = queries.top_negative_themes(scope)

    assert [(t.keyword, t.count, t.negative_count) for t in themes] == [
        ("等待", 3, 2),
        ("态度", 2, 1),
        ("退款", 1, 1),
    ]
    assert themes[0].negative_share == pytest.approx(2 / 3)
    # Negative examples first, newest first, then the others; at most three.
    assert [e.response_id for e in themes[0].examples][:2] == [second.id, first.id]
    assert [e.negative for e in themes[0].examples] == [True, True, False]
    assert len(queries.top_negative_themes(scope, limit=1)) == 1
    assert all(not t.examples for t in queries.top_negative_themes(scope, examples=0))


def test_replace_response_keywords_replaces_and_dedups(data):
    response = data.response(comment="x")
    replace_response_keywords({response.id: ["等待", "等待", " 态度 ", ""]})
    replace_response_keywords({response.id: ["退款", "等待"]})
    rows = db.session.scalars(
        select(ResponseKeyword.keyword).where(ResponseKeyword.response_id == response.id)
    ).all()
    assert sorted(rows) == ["等待", "退款"]
    replace_response_keywords({response.id: None})
    assert db.session.scalars(select(ResponseKeyword)).all() == []


def test_the_pipeline_writes_the_keyword_rows(data):
    response = data.response(comment="The refund took weeks and the refund form is broken", nps=2)
    db.session.commit()
    assert analyse_response(response.id)
    db.session.refresh(response)
    stored = set(
        db.session.scalars(
            select(ResponseKeyword.keyword).where(ResponseKeyword.response_id == response.id)
        )
    )
    assert response.keywords and stored == set(response.keywords)
    assert "refund" in stored


# --- driver analysis -----------------------------------------------------------------------------


def test_driver_correlation_by_hand(data):
    for speed, nps in [(1, 0), (2, 3), (3, 5), (4, 9), (5, 10)]:
        data.response(csat_speed=speed, csat_attitude=4, nps=nps)
    data.response(csat_speed=None, csat_attitude=4, nps=10)  # speed skipped: not in the pairs
    data.response(csat_speed=5, nps=None)  # NPS skipped: not in the pairs
    db.session.commit()

    sums = queries.driver_sums(SEPTEMBER)
    assert sums["speed"] == queries.PairSums(
        n=5, sum_x=15, sum_y=27, sum_xy=107, sum_x2=55, sum_y2=215
    )
    drivers = services.drivers(SEPTEMBER)
    # x̄ = 3, ȳ = 5.4: Σdxdy = 26, Σdx² = 10, Σdy² = 69.2 → r = 26 / √692.
    assert drivers["speed"].r == pytest.approx(26 / math.sqrt(692))
    assert drivers["speed"].n == 5
    assert drivers["speed"].low_confidence
    assert drivers["attitude"].r is None  # a constant column has no correlation
    assert drivers["attitude"].n == 6
    assert drivers["professionalism"].n == 0


def test_pearson_edge_cases():
    assert pearson(0, 0, 0, 0, 0, 0).r is None
    assert pearson(1, 3, 5, 15, 9, 25).r is None
    perfect = pearson(3, 6, 6, 14, 14, 14)  # x = y = 1, 2, 3
    assert perfect.r == pytest.approx(1.0)
    assert perfect.ci is None  # Fisher's z is undefined at |r| = 1
    ci = pearson(5, 15, 27, 107, 55, 215).ci
    assert ci is not None
    z, se = math.atanh(26 / math.sqrt(692)), 1 / math.sqrt(2)
    assert ci == pytest.approx(
        (math.tanh(z - 1.959963984540054 * se), math.tanh(z + 1.96 * se)), abs=1e-3
    )


# --- p-chart -------------------------------------------------------------------------------------


def test_p_chart_limits_by_hand():
    points = p_chart([("w1", 100, 10), ("w2", 100, 40), ("w3", 50, 10), ("w4", 0, 0)])
    # p̄ = 60 / 250 = 24 %; limits 24 ± 3·√(0.24·0.76/n).
    assert [p.centre for p in points[:3]] == pytest.approx([24.0] * 3)
    assert points[0].lower == pytest.approx(11.187506, abs=1e-5)
    assert points[0].upper == pytest.approx(36.812494, abs=1e-5)
    assert points[2].lower == pytest.approx(5.880397, abs=1e-5)
    assert points[2].upper == pytest.approx(42.119603, abs=1e-5)
    assert [p.out_of_control for p in points] == [True, True, False, False]
    assert points[3].percent is None and points[3].upper is None


def test_detractor_p_chart_per_week(data):
    weeks = [datetime(2025, 9, 2, 4, tzinfo=UTC), datetime(2025, 9, 9, 4, tzinfo=UTC)]
    for score in (0, 3, 9, 10):
        data.response(nps=score, submitted_at=weeks[0])
    for score in (9, 10, 10, 6):
        data.response(nps=score, submitted_at=weeks[1])
    db.session.commit()
    points = services.detractor_pchart(SEPTEMBER)
    assert [(p.period, p.n, p.defects) for p in points] == [
        ("2025-09-01", 4, 2),
        ("2025-09-08", 4, 1),
        ("2025-09-15", 0, 0),
        ("2025-09-22", 0, 0),
        ("2025-09-29", 0, 0),
    ]
    assert points[0].centre == pytest.approx(3 / 8 * 100)
    assert points[0].percent == pytest.approx(50.0)


# --- heatmap -------------------------------------------------------------------------------------


def _cells(grid):
    return {(c.weekday, c.hour): (c.n, c.mean_seconds) for row in grid for c in row if c.n}


def test_heatmap_by_local_weekday_and_hour(data):
    monday_noon = datetime(2025, 9, 15, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    data.ticket(created_at=monday_noon, first_response_after=timedelta(minutes=10))
    data.ticket(
        created_at=monday_noon + timedelta(minutes=59), first_response_after=timedelta(minutes=30)
    )
    data.ticket(created_at=datetime(2025, 9, 14, 17, 30, tzinfo=UTC))  # Mon 01:30 local
    data.ticket(created_at=datetime(2025, 9, 14, 15, 59, tzinfo=UTC))  # Sun 23:59 local
    data.ticket(created_at=datetime(2025, 8, 31, 15, 59, tzinfo=UTC))  # 31 Aug: outside
    data.ticket(created_at=monday_noon, first_response_after=None, resolved_after=None)
    data.ticket(created_at=monday_noon, team="Backline")
    db.session.commit()

    scope = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, team=("Frontline",))
    grid = heatmap.frt_heatmap(scope)
    assert len(grid) == 7 and all(len(row) == 24 for row in grid)
    cells = _cells(grid)
    # The ticket without first response or resolution counts its close (on its clock).
    assert cells.pop((0, 12)) == (3, (600 + 1800 + 7200) / 3)
    assert cells == {(0, 1): (1, 600.0), (6, 23): (1, 600.0)}


def test_heatmap_across_a_daylight_saving_change(app, data):
    # Berlin leaves summer time on 26 October 2025 at 01:00 UTC.
    data.ticket(created_at=datetime(2025, 10, 20, 10, 0, tzinfo=UTC))  # Mon 12:00 CEST
    data.ticket(created_at=datetime(2025, 10, 27, 11, 0, tzinfo=UTC))  # Mon 12:00 CET
    data.ticket(created_at=datetime(2025, 10, 26, 0, 30, tzinfo=UTC))  # Sun 02:30 CEST
    data.ticket(created_at=datetime(2025, 10, 26, 1, 30, tzinfo=UTC))  # Sun 02:30 CET
    db.session.commit()
    scope = Scope(start=date(2025, 10, 1), end=date(2025, 10, 31), timezone="Europe/Berlin")
    assert [offset for _start, offset in heatmap.utc_offset_segments(scope)] == [7200, 3600]
    assert _cells(heatmap.frt_heatmap(scope)) == {(0, 12): (2, 600.0), (6, 2): (2, 600.0)}


# --- distributions and sentiment -----------------------------------------------------------------


def test_score_and_sentiment_distributions(data):
    data.response(nps=10, csat_overall=5, ces=7, comment="great")
    data.response(nps=10, csat_overall=4, ces=None, comment="")
    data.response(nps=0, csat_overall=None, ces=1, comment="bad")
    db.session.commit()
    found = queries.score_distributions(SEPTEMBER)
    assert found["nps"] == {**dict.fromkeys(range(11), 0), 10: 2, 0: 1}
    assert found["csat_overall"] == {1: 0, 2: 0, 3: 0, 4: 1, 5: 1}
    assert found["ces"][7] == 1 and found["ces"][1] == 1 and sum(found["ces"].values()) == 2
    # Comments not analysed yet are "pending"; an empty comment is not counted.
    assert queries.sentiment_distribution(SEPTEMBER)["pending"] == 2


def test_sentiment_trend_lists_every_bucket(data):
    _commented(data, "bad", "negative", [], submitted_at=MID_SEPTEMBER)
    _commented(data, "ok", "positive", [], submitted_at=MID_SEPTEMBER + timedelta(days=1))
    db.session.commit()
    trend = dict(queries.sentiment_trend(SEPTEMBER, "week"))
    assert list(trend) == ["2025-09-01", "2025-09-08", "2025-09-15", "2025-09-22", "2025-09-29"]
    assert trend["2025-09-15"]["negative"] == 1 and trend["2025-09-15"]["positive"] == 1
    assert sum(trend["2025-09-01"].values()) == 0


# --- pages ---------------------------------------------------------------------------------------


@pytest.fixture
def analyst(auth, make_user):
    auth.sign_in(make_user(Role.ANALYST))


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 302), (Role.ANALYST, 200), (Role.MANAGER, 200), (Role.ADMIN, 200)],
)
def test_roles_that_see_dashboards(client, auth, make_user, role, status):
    if role is not None:
        auth.sign_in(make_user(role))
    for url in ("/dashboards", "/dashboards/responses", "/dashboards/export?table=cards"):
        assert client.get(url).status_code == status


def test_dashboard_page_with_url_filters_and_drill_down(client, analyst, data):
    data.response(nps=10, csat_overall=5, csat_speed=5, comment="fast")
    data.response(nps=2, csat_overall=1, csat_speed=1, comment="slow")
    other = data.ticket(team="Backline", agent="李雷")
    data.response(other, nps=0, csat_overall=1, comment="<b>bad</b>")
    db.session.commit()

    page = client.get(f"/dashboards?{PERIOD}&team=Frontline&group_by=agent&grain=week")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-figure="figure-nps_trend"' in html
    assert 'data-figure="figure-pchart"' in html
    assert 'data-kpi="nps"' in html
    # NPS over Frontline only: one promoter, one detractor of two → 0.0.
    assert "2 responses in this period" in html
    # The breakdown by agent drills down to that agent's responses with the same filters.
    assert "/dashboards/responses?" in html and "agent=%E7%8E%8B%E8%8A%B3" in html
    assert "plotly.min.js?v=" in html and "cdn" not in html.lower()

    listing = client.get(f"/dashboards/responses?{PERIOD}&team=Backline")
    body = listing.get_data(as_text=True)
    assert listing.status_code == 200
    assert "&lt;b&gt;bad&lt;/b&gt;" in body and "<b>bad</b>" not in body
    assert "fast" not in body


def test_bad_filters_are_a_clear_400(client, analyst):
    for url in (
        "/dashboards?from=2025-13-01",
        "/dashboards?colour=red",
        "/dashboards?channel=pigeon",
        "/dashboards/responses?page=0",
        "/dashboards/responses?sentiment=angry",
        "/dashboards/export?table=secrets",
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "These filters cannot be used" in response.get_data(as_text=True)


def test_empty_period(client, analyst):
    html = client.get("/dashboards?from=2020-01-01&to=2020-01-31").get_data(as_text=True)
    assert "No responses in this period" in html
    assert "figure-nps_trend" not in html
    listing = client.get("/dashboards/responses?from=2020-01-01&to=2020-01-31")
    assert "No responses in this period" in listing.get_data(as_text=True)


def test_csv_cells_are_neutralised(client, analyst, data):
    ticket = data.ticket(team="=cmd|' /C calc'!A0", agent="@SUM(1+1)")
    data.response(ticket, nps=3, comment="-2+3")
    data.response(ticket, nps=9, comment="\tTabbed")
    db.session.commit()
    assert neutralise("+1") == "'+1"
    assert neutralise("\rx") == "'\rx"
    assert neutralise(-5) == -5
    assert neutralise("safe") == "safe"

    response = client.get(f"/dashboards/export?table=responses&{PERIOD}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert {row["comment"] for row in rows} == {"'-2+3", "'\tTabbed"}
    assert {row["team"] for row in rows} == {"'=cmd|' /C calc'!A0"}
    assert {row["agent"] for row in rows} == {"'@SUM(1+1)"}

    breakdown = client.get(f"/dashboards/export?table=breakdown&group_by=team&{PERIOD}")
    lines = breakdown.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("team,csat_overall_percent,")
    assert lines[1].startswith("'=cmd")


@pytest.mark.parametrize("table", services.TABLES)
def test_every_table_downloads(client, analyst, data, table):
    data.response(nps=9, csat_overall=4, csat_speed=4, comment="ok")
    db.session.commit()
    response = client.get(f"/dashboards/export?table={table}&{PERIOD}")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.get_data(as_text=True).startswith("\ufeff")


#: plotly.min.js of the Python plotly package, which the dashboards served before (bytes).
FULL_PLOTLY_BYTES = 4_815_814


def test_plotly_js_is_the_vendored_cartesian_bundle(client, analyst):
    response = client.get("/dashboards/plotly.min.js?v=1")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert "Accept-Encoding" in response.vary
    assert response.content_encoding is None  # the client did not ask for gzip
    body = response.get_data()
    assert body.startswith(b"/**\n* plotly.js (cartesian - minified) v4.")
    assert 1_000_000 < len(body) < FULL_PLOTLY_BYTES / 3
    etag = response.get_etag()[0]
    again = client.get("/dashboards/plotly.min.js?v=1", headers={"If-None-Match": f'"{etag}"'})
    assert again.status_code == 304


def test_plotly_js_is_gzipped_for_a_client_that_accepts_it(client, analyst):
    plain = client.get("/dashboards/plotly.min.js").get_data()
    headers = {"Accept-Encoding": "gzip, deflate, br"}
    response = client.get("/dashboards/plotly.min.js", headers=headers)
    assert response.status_code == 200
    assert response.content_encoding == "gzip"
    assert "Accept-Encoding" in response.vary
    assert response.mimetype == "text/javascript"
    body = response.get_data()
    assert gzip.decompress(body) == plain
    assert len(body) < 600_000 and int(response.headers["Content-Length"]) == len(body)
    etag = response.get_etag()[0]
    assert etag != client.get("/dashboards/plotly.min.js").get_etag()[0]
    again = client.get(
        "/dashboards/plotly.min.js", headers={**headers, "If-None-Match": f'"{etag}"'}
    )
    assert again.status_code == 304
    refused = client.get("/dashboards/plotly.min.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert refused.content_encoding is None and refused.get_data() == plain


def test_pages_link_the_bundle_by_its_content(client, analyst, data):
    data.response(nps=9, csat_overall=4, comment="ok")
    db.session.commit()
    html = client.get(f"/dashboards?{PERIOD}").get_data(as_text=True)
    match = re.search(r'src="(/dashboards/plotly\.min\.js\?v=[0-9a-f]{12})"', html)
    assert match
    assert client.get(match.group(1)).status_code == 200


def test_the_vendored_bundle_draws_every_trace_type(client, analyst, data):
    """Every figure of the dashboard uses a trace type the cartesian bundle holds."""
    _commented(data, "slow reply", "negative", ["slow"], nps=3, csat_overall=2, csat_speed=2)
    _commented(data, "fine", "positive", ["fine"], nps=9, csat_overall=5, csat_speed=5)
    db.session.commit()
    html = client.get(f"/dashboards?{PERIOD}").get_data(as_text=True)
    types = set()
    for source in re.findall(r'id="figure-\w+">(.*?)</script>', html, re.S):
        types |= {trace.get("type", "scatter") for trace in json.loads(source)["data"]}
    assert {"bar", "scatter", "heatmap"} <= types
    assert types <= routes.PLOTLY_TRACE_TYPES


def test_card_status_hook(app, data):
    app.extensions[services.KPI_STATUS_HOOK] = lambda name, kpi, scope: f"{name}:{kpi.n}"
    data.response(nps=10)
    db.session.commit()
    cards = {card.name: card for card in services.overview_cards(SEPTEMBER)}
    assert cards["nps"].status == "nps:1"
    assert cards["nps"].change is None  # nothing in August


def test_csv_cells_with_a_semicolon_are_quoted_for_semicolon_locales():
    lines = list(csv_lines(["team", "n"], [["A; B", 3], ["plain", 4]]))
    assert lines[1] == '"A; B",3\r\n'  # Excel with ";" as separator keeps it one cell
    assert lines[2] == "plain,4\r\n"
    parsed = list(csv.reader(io.StringIO("".join(lines).lstrip("\ufeff"))))
    assert parsed[1] == ["A; B", "3"]


@pytest.mark.parametrize(
    ("days", "grain"), [(1, "day"), (29, "day"), (30, "week"), (90, "week"), (91, "month")]
)
def test_the_trend_grain_follows_the_window(days, grain):
    end = date(2025, 9, 30)
    scope = Scope(start=end - timedelta(days=days - 1), end=end)
    assert services.default_grain(scope) == grain


def test_a_figure_is_plotlys_own_json_of_it_and_an_invalid_layout_is_refused():
    """``_figure`` skips ``go.Figure``'s second copy of the traces, not its output or checks."""
    import plotly.graph_objects as go

    traces = [
        go.Bar(x=["<b>团队</b>", "B"], y=[1, 2], marker={"color": figures.RED}),
        go.Scatter(x=["2026-01-05", "2026-01-12"], y=[None, 3.5], mode="lines+markers"),
    ]
    layout = figures._layout("NPS <i>trend</i>", xaxis={"type": "category"}, height=260)
    expected = json.loads(go.Figure(data=traces, layout=layout).to_json())
    assert figures._figure(traces, layout) == expected
    assert expected["layout"]["template"]["layout"]["plot_bgcolor"]  # plotly.py's look
    with pytest.raises(ValueError, match="hieght"):
        figures._figure(traces, {**layout, "hieght": 1})


# --- trend figures: CI band and PDCA markers --------------------------------------------------


def _kpi(value: float | None, n: int = 40, ci: tuple[float, float] | None = None) -> Kpi:
    return Kpi("csat_overall_percent", value, n, n < 30, "%", ci)


def test_the_trend_draws_its_ci_as_a_band():
    figure = figures.kpi_trend_figure(
        "CSAT % trend",
        [
            ("2025-09-01", _kpi(80.0, ci=(70.0, 88.0))),
            ("2025-09-02", _kpi(75.0, ci=(65.0, 84.0))),
            ("2025-09-03", _kpi(70.0, ci=(60.0, 79.0))),
            ("2025-09-04", _kpi(None, n=0)),
            ("2025-09-05", _kpi(60.0, n=5, ci=(23.1, 88.2))),
            ("2025-09-06", _kpi(None, n=0)),
            ("2025-09-07", _kpi(50.0, ci=(40.0, 60.0))),
            ("2025-09-08", _kpi(55.0, ci=(45.0, 65.0))),
        ],
        axis=(0, 100),
    )
    band, line = figure["data"]
    assert figure["layout"]["xaxis"]["categoryarray"] == [f"2025-09-0{day}" for day in range(1, 9)]
    # One closed area per run of buckets with a CI: along the upper bounds, back along the
    # lower ones; an empty bucket cuts the band.
    assert band["fill"] == "toself" and band["showlegend"] is False
    assert band["mode"] == "lines" and band["line"]["width"] == 0
    assert band["x"] == [
        "2025-09-01", "2025-09-02", "2025-09-03", "2025-09-03", "2025-09-02", "2025-09-01",
        None,
        "2025-09-07", "2025-09-08", "2025-09-08", "2025-09-07",
    ]  # fmt: skip
    assert band["y"] == [88.0, 84.0, 79.0, 60.0, 65.0, 70.0, None, 60.0, 65.0, 45.0, 40.0]
    assert band["text"][:6] == ["95% CI high"] * 3 + ["95% CI low"] * 3
    assert band["hoveron"] == "points" and "%{text} %{y:.1f}" in band["hovertemplate"]
    # The line over it; only the lone bucket between two empty ones keeps an error bar.
    assert line["y"] == [80.0, 75.0, 70.0, None, 60.0, None, 50.0, 55.0]
    above, below = line["error_y"]["array"], line["error_y"]["arrayminus"]
    assert [i for i, bar in enumerate(above) if bar is not None] == [4]
    assert (above[4], below[4]) == (pytest.approx(28.2), pytest.approx(36.9))
    assert line["marker"]["symbol"][3:5] == ["circle-open", "circle-open"]


def test_a_trend_without_any_ci_has_no_band():
    figure = figures.kpi_trend_figure(
        "NPS", [("2025-09-01", _kpi(None, n=0)), ("2025-09-02", _kpi(10.0))], axis=(-100, 100)
    )
    (line,) = figure["data"]
    assert "error_y" not in line


def _marked(periods: list[str], markers: list[tuple[str, str]]) -> dict:
    points = [(period, _kpi(50.0)) for period in periods]
    return figures.kpi_trend_figure("NPS", points, axis=(-100, 100), markers=markers)["layout"]


def _boxes(layout: dict, periods: list[str]) -> list[tuple[int, float, float]]:
    """(row, from, to) of each label along the axis, as figures estimates them."""
    boxes = []
    for note in layout["annotations"]:
        index = periods.index(note["x"])
        text = html.unescape(note["text"])
        start, end = figures._label_span(index, len(periods), text)
        boxes.append((-note["yshift"] // figures.MARKER_ROW_PX, start, end))
    return boxes


def test_markers_on_one_day_merge_into_one_label_with_every_label_in_its_hover():
    periods = [f"2025-09-{day:02d}" for day in range(1, 31)]
    layout = _marked(
        periods,
        [
            ("2025-09-17", "Do: <b>rota</b>"),
            ("2025-09-17", "Check: first-reply template for P1 tickets"),
            ("2025-09-17", "Done: train the night shift"),
        ],
    )
    (line,) = layout["shapes"]
    assert line["x0"] == "2025-09-17"
    (note,) = layout["annotations"]
    assert note["text"] == "Do: &lt;b&gt;rota&lt;/b&gt; +2"
    assert note["hovertext"] == (
        "Do: &lt;b&gt;rota&lt;/b&gt;<br>Check: first-reply template for P1 tickets"
        "<br>Done: train the night shift"
    )
    assert note["yanchor"] == "top" and note["y"] == 1 and note["yshift"] == 0


def test_markers_on_near_days_are_staggered_and_never_overlap():
    periods = [f"2025-09-{day:02d}" for day in range(1, 31)]
    markers = [
        ("2025-09-02", "Do: 夜班排班调整"),
        ("2025-09-03", "Done: new macros for refunds"),
        ("2025-09-03", "Done: a second action"),
        ("2025-09-04", "Check: refunds"),
        ("2025-09-20", "Act: rota"),
        ("2025-09-21", "Do: callbacks"),
        ("2025-09-29", "Done: FAQ page"),
    ]
    layout = _marked(periods, markers)
    assert [s["x0"] for s in layout["shapes"]] == [
        "2025-09-02",
        "2025-09-03",
        "2025-09-04",
        "2025-09-20",
        "2025-09-21",
        "2025-09-29",
    ]
    boxes = _boxes(layout, periods)
    assert {row for row, _start, _end in boxes} == {0, 1, 2}
    for i, (row, start, end) in enumerate(boxes):
        for other_row, other_start, other_end in boxes[i + 1 :]:
            assert row != other_row or end <= other_start or other_end <= start
    # Every marker is somewhere in a hover.
    hovers = "<br>".join(note["hovertext"] for note in layout["annotations"])
    for _period, label in markers:
        assert html.escape(label) in hovers
    # Labels in the right half grow leftwards, so none leaves the plot.
    last = layout["annotations"][-1]
    assert (last["x"], last["xanchor"]) == ("2025-09-29", "right")
    assert layout["annotations"][0]["xanchor"] == "left"


def test_markers_that_fit_no_row_join_the_label_before_them():
    periods = [f"2025-09-{day:02d}" for day in range(1, 31)]
    markers = [(period, f"Done: action {i}") for i, period in enumerate(periods[:4])]
    layout = _marked(periods, markers)
    assert len(layout["shapes"]) == 4
    notes = layout["annotations"]
    assert len(notes) == figures.MARKER_ROWS
    assert notes[-1]["text"] == "Done: action 2 +1"
    assert notes[-1]["hovertext"] == "Done: action 2<br>2025-09-04: Done: action 3"
