"""The sums behind the dashboard's charts: answers per score, comments per sentiment, and
the pair sums of each CSAT dimension against NPS (the drivers' correlations).

Like the KPI aggregates they are plain SQL counts and sums over responses, so the
daily roll-ups keep them too (:mod:`analysis.metrics.rollup`) and a chart over a
year reads a few hundred rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from survey_app.surveys.models import SurveyResponse

from .definitions import CSAT_DIMENSIONS, count_if

#: The answer scales whose distributions the dashboard draws.
SCALES = {"nps": range(0, 11), "csat_overall": range(1, 6), "ces": range(1, 8)}
#: Sentiment labels of commented responses; ``pending``: not analysed yet.
SENTIMENTS = ("positive", "neutral", "negative", "none", "pending")
#: The CSAT dimensions correlated with NPS, and the sums of each pair.
DRIVER_DIMENSIONS = tuple(d for d in CSAT_DIMENSIONS if d != "overall")
PAIR_PARTS = ("n", "x", "y", "xy", "x2", "y2")

#: Every column :func:`distribution_aggregates` returns.
DISTRIBUTION_NAMES = (
    *(f"{name}_{value}" for name, scale in SCALES.items() for value in scale),
    *(f"sentiment_{label}" for label in SENTIMENTS),
    *(f"driver_{dim}_{part}" for dim in DRIVER_DIMENSIONS for part in PAIR_PARTS),
)


def distribution_aggregates() -> list[ColumnElement[Any]]:
    """SQL aggregates over survey responses, labelled as in :data:`DISTRIBUTION_NAMES`.

    * ``<question>_<value>``: answers of that value (skipped answers in none);
    * ``sentiment_<label>``: responses with a non-empty comment and that label;
    * ``driver_<dimension>_<n|x|y|xy|x2|y2>``: over the responses answering both the
      dimension (x) and NPS (y): their number, Σx, Σy, Σxy, Σx², Σy².
    """
    columns: list[ColumnElement[Any]] = []
    for name, scale in SCALES.items():
        column = getattr(SurveyResponse, name)
        columns += [count_if(column == value).label(f"{name}_{value}") for value in scale]
    comment, label = SurveyResponse.comment, SurveyResponse.sentiment_label
    commented = and_(comment.is_not(None), comment != "")
    for sentiment in SENTIMENTS:
        which = label.is_(None) if sentiment == "pending" else label == sentiment
        columns.append(count_if(and_(commented, which)).label(f"sentiment_{sentiment}"))
    nps = SurveyResponse.nps
    for dim in DRIVER_DIMENSIONS:
        x = getattr(SurveyResponse, f"csat_{dim}")
        both = and_(x.is_not(None), nps.is_not(None))

        def total(expression: SQLColumnExpression[Any], name: str) -> ColumnElement[Any]:
            return func.coalesce(func.sum(case((both, expression), else_=0)), 0).label(name)  # noqa: B023

        columns += [
            count_if(both).label(f"driver_{dim}_n"),
            total(x, f"driver_{dim}_x"),
            total(nps, f"driver_{dim}_y"),
            total(x * nps, f"driver_{dim}_xy"),
            total(x * x, f"driver_{dim}_x2"),
            total(nps * nps, f"driver_{dim}_y2"),
        ]
    return columns
