"""Plotly figures of the dashboards, built server-side and returned as JSON-ready dicts.

Each builder takes the numbers the queries returned (never rows) and returns ``{"data": [...],
"layout": {...}}`` for ``Plotly.newPlot``. Text that came from users (team names, keywords) is
HTML-escaped: plotly.js reads a few HTML tags in labels. plotly is imported on first use.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, cast
from unicodedata import east_asian_width

from flask_babel import gettext as _

from analysis.metrics import Kpi
from analysis.text.themes import Theme

from .heatmap import HeatmapCell
from .stats import Correlation, PChartPoint

#: Colours: promoters / satisfied, passives / neutral, detractors / negative, no text, pending.
GREEN, GREY, RED, LIGHT, BLUE = "#1a7f37", "#8c959f", "#cf222e", "#d0d7de", "#0969da"
SENTIMENT_COLOURS = {
    "positive": GREEN,
    "neutral": GREY,
    "negative": RED,
    "none": LIGHT,
    "pending": "#eaeef2",
}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": escape(title), "x": 0, "font": {"size": 15}},
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "height": 320,
        "hovermode": "closest",
        "showlegend": False,
    }
    layout.update(extra)
    return layout


def _figure(data: list[Any], layout: dict[str, Any]) -> dict[str, Any]:
    """Validate with plotly's Python API and return the figure's JSON as plain data: that of
    ``go.Figure(data, layout)`` without its second copy of the traces (22 -> 6 ms a page)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    layout = {**go.Layout(layout).to_plotly_json(), "template": _default_template()}
    figure = {"data": [trace.to_plotly_json() for trace in data], "layout": layout}
    return cast(dict[str, Any], json.loads(pio.to_json(figure, validate=False)))


@functools.cache
def _default_template() -> dict[str, Any]:  # plotly.py's look (not plotly.js's)
    import plotly.io as pio

    return cast(dict[str, Any], pio.templates[pio.templates.default].to_plotly_json())


#: Trend markers (see :func:`marker_layout`): a label longer than :data:`MARKER_LABEL_CHARS`
#: is cut; label widths are estimated for a plot :data:`MARKER_PLOT_PX` wide (a phone), at
#: most :data:`MARKER_ROWS` rows of :data:`MARKER_ROW_PX` pixels.
MARKER_LABEL_CHARS = 16
MARKER_PLOT_PX = 320
MARKER_ROWS = 3
MARKER_ROW_PX = 15
CI_FILL = "rgba(9, 105, 218, 0.15)"


def kpi_trend_figure(
    title: str,
    points: Sequence[tuple[str, Kpi]],
    *,
    axis: tuple[float, float],
    markers: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """One KPI per time bucket: a line over its 95 % CI drawn as a shaded band (the bounds
    in the hover, not in the legend; one closed area per run of buckets with a CI, so an
    empty bucket cuts it, and an error bar for a bucket with no neighbour); a bucket below
    the minimum sample is drawn hollow, an empty bucket leaves a gap in the line.

    ``markers`` are ``(period, label)`` pairs (e.g. the start of a PDCA cycle's Do); see
    :func:`marker_layout` for how they are drawn.
    """
    import plotly.graph_objects as go

    periods = [period for period, _kpi in points]
    runs = _ci_runs(points)
    lone = {run[0][0] for run in runs if len(run) == 1}
    traces = []
    band_x: list[str | None] = []
    band_y: list[float | None] = []
    band_text: list[str | None] = []
    for run in (run for run in runs if len(run) > 1):
        if band_x:
            band_x.append(None)
            band_y.append(None)
            band_text.append(None)
        band_x += [periods[i] for i, _ci in run] + [periods[i] for i, _ci in reversed(run)]
        band_y += [ci[1] for _i, ci in run] + [ci[0] for _i, ci in reversed(run)]
        band_text += [_("95% CI high")] * len(run) + [_("95% CI low")] * len(run)
    if band_x:
        traces.append(
            go.Scatter(
                name=_("95% CI"),
                x=band_x,
                y=band_y,
                text=band_text,
                mode="lines",
                line={"width": 0, "color": BLUE},
                fill="toself",
                fillcolor=CI_FILL,
                hoveron="points",
                hovertemplate="%{x}: %{text} %{y:.1f}<extra></extra>",
                showlegend=False,
            )
        )
    traces.append(
        go.Scatter(
            name=escape(title),
            x=periods,
            y=[kpi.value for _period, kpi in points],
            mode="lines+markers",
            line={"color": BLUE},
            marker={
                "size": 8,
                "symbol": [
                    "circle-open" if kpi.low_confidence else "circle" for _period, kpi in points
                ],
            },
            error_y=_lone_error_bars(points, lone) if lone else None,
            customdata=[kpi.n for _period, kpi in points],
            hovertemplate="%{x}: %{y:.1f}<br>n = %{customdata}<extra></extra>",
            connectgaps=False,
        )
    )
    layout = _layout(
        title,
        yaxis={"range": list(axis)},
        # Every bucket in time order, whichever trace names it first (the band skips some).
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": periods},
    )
    layout.update(marker_layout(periods, markers))
    return _figure(traces, layout)


def _ci_runs(points: Sequence[tuple[str, Kpi]]) -> list[list[tuple[int, tuple[float, float]]]]:
    """``(index, CI)`` of consecutive buckets with a value and a CI, run by run."""
    runs: list[list[tuple[int, tuple[float, float]]]] = []
    for index, (_period, kpi) in enumerate(points):
        if kpi.ci is None or kpi.value is None:
            continue
        if runs and runs[-1][-1][0] == index - 1:
            runs[-1].append((index, kpi.ci))
        else:
            runs.append([(index, kpi.ci)])
    return runs


def _lone_error_bars(points: Sequence[tuple[str, Kpi]], lone: set[int]) -> dict[str, Any]:
    """Error bars for the buckets in ``lone`` (a CI with no neighbour to make a band with)."""
    above: list[float | None] = [None] * len(points)
    below: list[float | None] = [None] * len(points)
    for index in lone:
        kpi = points[index][1]
        if kpi.ci is not None and kpi.value is not None:
            above[index] = kpi.ci[1] - kpi.value
            below[index] = kpi.value - kpi.ci[0]
    return {"type": "data", "array": above, "arrayminus": below, "visible": True, "width": 3}


@dataclass
class _MarkerLabel:
    """One label over the trend: where it sits and the markers it stands for."""

    period: str
    row: int
    span: tuple[float, float]
    labels: list[str] = field(default_factory=list)


def marker_layout(periods: Sequence[str], markers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The shapes and annotations that mark ``markers`` (``(period, label)`` pairs) on a
    category axis of ``periods``; markers off the axis are left out. Text is escaped.

    Every marked bucket gets a dashed vertical line. Labels must not overlap: markers of
    one bucket share one label (the first, cut to :data:`MARKER_LABEL_CHARS`, then "+N"
    for the others, all of them in its hover); a label goes on the first of
    :data:`MARKER_ROWS` rows (from the top of the plot down) where it overlaps no other
    label; a bucket with no free row joins the label before it (its "+N" and hover).
    """
    position = {period: index for index, period in enumerate(periods)}
    by_period: dict[str, list[str]] = {}
    for period, label in markers:
        if period in position:
            by_period.setdefault(period, []).append(label)
    if not by_period:
        return {}
    ordered = sorted(by_period, key=position.__getitem__)
    placed: list[_MarkerLabel] = []
    for period in ordered:
        labels = by_period[period]
        span = _label_span(position[period], len(periods), _marker_text(labels[0], 99))
        rows = [
            row
            for row in range(MARKER_ROWS)
            if not any(
                other.row == row and span[0] < other.span[1] and other.span[0] < span[1]
                for other in placed
            )
        ]
        if rows or not placed:
            placed.append(_MarkerLabel(period, rows[0] if rows else 0, span, list(labels)))
        else:
            placed[-1].labels += [f"{period}: {label}" for label in labels]
    shapes = [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": period,
            "x1": period,
            "y0": 0,
            "y1": 1,
            "line": {"color": GREY, "dash": "dash", "width": 1},
        }
        for period in ordered
    ]
    annotations = [
        {
            "x": note.period,
            "xref": "x",
            "xanchor": "left" if position[note.period] < len(periods) / 2 else "right",
            "y": 1,
            "yref": "paper",
            "yanchor": "top",
            "yshift": -MARKER_ROW_PX * note.row,
            "text": escape(_marker_text(note.labels[0], len(note.labels) - 1)),
            "hovertext": "<br>".join(escape(label) for label in note.labels),
            "showarrow": False,
            "bgcolor": "rgba(255, 255, 255, 0.85)",
            "font": {"size": 10, "color": "#57606a"},
        }
        for note in placed
    ]
    return {"shapes": shapes, "annotations": annotations}


def _marker_text(label: str, others: int) -> str:
    """``label`` cut to :data:`MARKER_LABEL_CHARS` (an ellipsis marks the cut), then "+N"."""
    if len(label) > MARKER_LABEL_CHARS:
        label = label[: MARKER_LABEL_CHARS - 1].rstrip() + "…"
    return f"{label} +{others}" if others else label


def _label_span(index: int, buckets: int, text: str) -> tuple[float, float]:
    """Where a marker label sits along the axis (0–1): from its bucket's centre rightwards
    in the left half, leftwards in the right half; wide (CJK) characters count double."""
    centre = (index + 0.5) / buckets
    pixels = sum(10 if east_asian_width(char) in "WF" else 6 for char in text) + 8
    width = pixels / MARKER_PLOT_PX
    return (centre, centre + width) if index < buckets / 2 else (centre - width, centre)


def distribution_figure(title: str, counts: Mapping[int, int], kind: str) -> dict[str, Any]:
    """Answers per score value; NPS bars coloured as detractors / passives / promoters,
    CSAT and CES bars by their dissatisfied / neutral / satisfied bands."""
    import plotly.graph_objects as go

    def colour(value: int) -> str:
        if kind == "nps":
            return RED if value <= 6 else GREY if value <= 8 else GREEN
        if kind == "ces":
            return RED if value <= 3 else GREY if value == 4 else GREEN
        return RED if value <= 2 else GREY if value == 3 else GREEN

    values = list(counts)
    trace = go.Bar(
        x=[str(v) for v in values],
        y=[counts[v] for v in values],
        marker={"color": [colour(v) for v in values]},
        hovertemplate="%{x}: %{y}<extra></extra>",
    )
    return _figure([trace], _layout(title, xaxis={"type": "category"}, height=260))


def sentiment_labels() -> dict[str, str]:
    return {
        "positive": _("Positive"),
        "neutral": _("Neutral"),
        "negative": _("Negative"),
        "none": _("No text to judge"),
        "pending": _("Not analysed yet"),
    }


def sentiment_distribution_figure(counts: Mapping[str, int]) -> dict[str, Any]:
    """Commented responses per sentiment label."""
    import plotly.graph_objects as go

    names = sentiment_labels()
    shown = [label for label, count in counts.items() if count]
    trace = go.Bar(
        x=[names[label] for label in shown],
        y=[counts[label] for label in shown],
        marker={"color": [SENTIMENT_COLOURS[label] for label in shown]},
        hovertemplate="%{x}: %{y}<extra></extra>",
    )
    return _figure([trace], _layout(_("Sentiment of comments"), height=260))


def sentiment_trend_figure(trend: Sequence[tuple[str, Mapping[str, int]]]) -> dict[str, Any]:
    """Share of each sentiment label among commented responses per bucket (stacked, %)."""
    import plotly.graph_objects as go

    names = sentiment_labels()
    periods = [period for period, _counts in trend]
    totals = [sum(counts.values()) for _period, counts in trend]
    traces = []
    for label in ("negative", "neutral", "positive", "none", "pending"):
        counts = [counts[label] for _period, counts in trend]
        if not any(counts):
            continue
        traces.append(
            go.Bar(
                name=names[label],
                x=periods,
                y=[c / t * 100 if t else None for c, t in zip(counts, totals, strict=True)],
                customdata=counts,
                marker={"color": SENTIMENT_COLOURS[label]},
                hovertemplate="%{x}: %{y:.1f}% (%{customdata})<extra>" + names[label] + "</extra>",
            )
        )
    layout = _layout(
        _("Sentiment trend (share of commented responses, %)"),
        barmode="stack",
        showlegend=True,
        yaxis={"range": [0, 100]},
        xaxis={"type": "category"},
    )
    return _figure(traces, layout)


def themes_figure(themes: Sequence[Theme]) -> dict[str, Any]:
    """Top negative themes: negative and other mentions per keyword, most negative on top."""
    import plotly.graph_objects as go

    ordered = list(reversed(themes))
    keywords = [escape(theme.keyword) for theme in ordered]
    traces = [
        go.Bar(
            name=_("Negative"),
            y=keywords,
            x=[theme.negative_count for theme in ordered],
            orientation="h",
            marker={"color": RED},
            hovertemplate="%{y}: %{x}<extra>" + _("Negative") + "</extra>",
        ),
        go.Bar(
            name=_("Other"),
            y=keywords,
            x=[theme.count - theme.negative_count for theme in ordered],
            orientation="h",
            marker={"color": LIGHT},
            hovertemplate="%{y}: %{x}<extra>" + _("Other") + "</extra>",
        ),
    ]
    layout = _layout(
        _("Top negative themes (responses mentioning each)"),
        barmode="stack",
        showlegend=True,
        yaxis={"type": "category", "automargin": True},
        height=max(260, 40 + 26 * len(themes)),
    )
    return _figure(traces, layout)


def weekday_names() -> list[str]:
    return [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]


def heatmap_figure(grid: Sequence[Sequence[HeatmapCell]]) -> dict[str, Any]:
    """Mean first-response time in minutes, business hours (the colour), weekday (rows, Monday
    on top) × hour of creation; the hover adds the elapsed minutes and n."""
    import plotly.graph_objects as go

    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 60, 1)

    trace = go.Heatmap(
        z=[[minutes(cell.mean_seconds) for cell in row] for row in grid],
        x=[f"{hour:02d}" for hour in range(24)],
        y=weekday_names(),
        customdata=[
            [[cell.n, minutes(cell.mean_elapsed_seconds)] for cell in row] for row in grid
        ],
        colorscale="YlOrRd",
        hoverongaps=False,
        colorbar={"title": {"text": _("min")}},
        hovertemplate="%{y} %{x}:00 · "
        + _("business hours")
        + " %{z} min · "
        + _("elapsed")
        + " %{customdata[1]} min · n = %{customdata[0]}<extra></extra>",
    )
    layout = _layout(
        _("Mean first-response time by weekday and hour of ticket creation"),
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"type": "category"},
    )
    return _figure([trace], layout)


def driver_figure(drivers: Mapping[str, Correlation], labels: Mapping[str, str]) -> dict[str, Any]:
    """Pearson's r of each CSAT dimension with NPS, strongest on top, CI as error bars."""
    import plotly.graph_objects as go

    known = [(dim, c) for dim, c in drivers.items() if c.r is not None]
    ordered = sorted(known, key=lambda item: item[1].r or 0)
    trace = go.Bar(
        y=[str(labels[dim]) for dim, _c in ordered],
        x=[c.r for _d, c in ordered],
        orientation="h",
        marker={"color": [GREY if c.low_confidence else BLUE for _d, c in ordered]},
        error_x={
            "type": "data",
            "array": [(c.ci[1] - (c.r or 0)) if c.ci else None for _d, c in ordered],
            "arrayminus": [((c.r or 0) - c.ci[0]) if c.ci else None for _d, c in ordered],
            "visible": True,
        },
        customdata=[c.n for _d, c in ordered],
        hovertemplate="%{y}: r = %{x:.2f}, n = %{customdata}<extra></extra>",
    )
    layout = _layout(
        _("Which CSAT dimension moves NPS most (correlation with NPS)"),
        xaxis={"range": [-1, 1]},
        yaxis={"automargin": True},
        height=260,
    )
    return _figure([trace], layout)


def pchart_figure(points: Sequence[PChartPoint]) -> dict[str, Any]:
    """% detractors per week with the centre line and each week's 3-sigma limits (steps);
    points outside the limits in red."""
    import plotly.graph_objects as go

    shown = [p for p in points if p.percent is not None]
    weeks = [p.period for p in shown]
    line = {"shape": "hvh", "dash": "dot", "color": GREY}
    traces = [
        go.Scatter(
            name=_("Upper control limit"),
            x=weeks,
            y=[p.upper for p in shown],
            mode="lines",
            line=line,
        ),
        go.Scatter(
            name=_("Lower control limit"),
            x=weeks,
            y=[p.lower for p in shown],
            mode="lines",
            line=line,
        ),
        go.Scatter(
            name=_("Centre line"),
            x=weeks,
            y=[p.centre for p in shown],
            mode="lines",
            line={"color": GREEN},
        ),
        go.Scatter(
            name=_("Detractors (%)"),
            x=weeks,
            y=[p.percent for p in shown],
            mode="lines+markers",
            line={"color": BLUE},
            marker={
                "size": [11 if p.out_of_control else 7 for p in shown],
                "color": [RED if p.out_of_control else BLUE for p in shown],
            },
            customdata=[[p.defects, p.n] for p in shown],
            hovertemplate="%{x}: %{y:.1f}% (%{customdata[0]} / %{customdata[1]})<extra></extra>",
        ),
    ]
    layout = _layout(
        _("p-chart: detractors per week (%), 3-sigma limits"),
        showlegend=True,
        xaxis={"type": "category"},
        yaxis={"rangemode": "tozero"},
    )
    return _figure(traces, layout)
