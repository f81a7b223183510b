"""The dashboards' SQL: every chart is an aggregate over the rows of a :class:`Scope`.

KPIs (cards, trends, breakdowns, the p-chart's counts) come from
:func:`analysis.metrics.compute`; this module adds what is not a KPI: score
and sentiment distributions, themes, the sums behind the driver correlations,
the first-response heatmap and the responses behind a number. Nothing here
loads all rows into Python: each function returns at most a few hundred
aggregate rows (or one page of responses).

Responses are filtered on the values copied onto them (team, agent, channel
... as they were when the customer answered) and counted in the period by
``submitted_at``, as the survey KPIs are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    and_,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from analysis.metrics import Scope
from analysis.metrics.distributions import (
    DRIVER_DIMENSIONS,
    PAIR_PARTS,
    SCALES,
    SENTIMENTS,
)
from analysis.metrics.engine import RESPONSE_SUM_NAMES, mention_sums, response_sums
from analysis.metrics.scope import Grain, time_buckets
from analysis.text.models import ResponseKeyword
from analysis.text.themes import EXAMPLES_PER_THEME, Theme, ThemeExample
from survey_app.extensions import db
from survey_app.memo import remembered
from survey_app.surveys.models import SentimentLabel, SurveyResponse

#: The scales of the score distributions.

#: Sentiment labels in display order; ``pending`` = not analysed yet.
#: The CSAT dimensions whose correlation with NPS the driver analysis reports.
#: Responses per page of the drill-down list.
RESPONSES_PER_PAGE = 50


# --- filters -------------------------------------------------------------------------------------


def response_conditions(scope: Scope) -> list[ColumnElement[bool]]:
    """WHERE conditions selecting the responses of ``scope``: submitted in its period,
    matching every filter on the values kept on the response."""
    begin, end = scope.bounds
    conditions: list[ColumnElement[bool]] = [
        SurveyResponse.submitted_at >= begin,
        SurveyResponse.submitted_at < end,
    ]
    for name, values in scope.filters().items():
        if name == "customer_is_new":
            conditions.append(SurveyResponse.customer_is_new.is_(values[0]))
        elif name == "template_version":
            conditions.append(SurveyResponse.template_version_id.in_(values))
        else:
            conditions.append(getattr(SurveyResponse, name).in_(values))
    return conditions


def response_count(scope: Scope) -> int:
    """How many responses the scope holds."""
    return _sums(scope).get("responses", 0)


def _sums(scope: Scope) -> dict[str, int]:
    """The scope's response sums (:func:`analysis.metrics.engine.response_sums`), all zero
    when it holds no response."""
    return _response_sums(scope, None).get(None) or dict.fromkeys(RESPONSE_SUM_NAMES, 0)


def _response_sums(scope: Scope, grain: Grain | None) -> dict[str | None, dict[str, int]]:
    """:func:`response_sums`, once per request and view: the count, the distributions, the
    sentiment, the drivers and the aspects of one page all read the same sums."""
    return remembered("response_sums", (scope, grain), lambda: response_sums(scope, grain))


# --- distributions -------------------------------------------------------------------------------


def score_distributions(scope: Scope) -> dict[str, dict[int, int]]:
    """Answers per score value for NPS (0–10), overall CSAT (1–5) and CES (1–7).

    Every value of the scale is present (0 when nobody gave it); skipped answers
    are not counted.
    """
    sums = _sums(scope)
    return {name: {v: sums[f"{name}_{v}"] for v in scale} for name, scale in SCALES.items()}


def _label_key(label: Any) -> str:
    value = getattr(label, "value", label)
    return "pending" if value is None else str(value)


def sentiment_distribution(scope: Scope, *, commented_only: bool = True) -> dict[str, int]:
    """Responses per sentiment label (``pending``: not analysed yet), in :data:`SENTIMENTS` order.

    With ``commented_only`` (the default) responses without a comment are left
    out: they have nothing to judge.
    """
    if commented_only:
        sums = _sums(scope)
        return {label: sums[f"sentiment_{label}"] for label in SENTIMENTS}
    counts = dict.fromkeys(SENTIMENTS, 0)
    rows = db.session.execute(
        select(SurveyResponse.sentiment_label, func.count())
        .where(*response_conditions(scope))
        .group_by(SurveyResponse.sentiment_label)
    )
    for label, count in rows:
        counts[_label_key(label)] += int(count)
    return counts


def sentiment_trend(scope: Scope, grain: Grain) -> list[tuple[str, dict[str, int]]]:
    """Commented responses per sentiment label per local day / week / month, every bucket
    listed (empty ones with zeros)."""
    sums = _response_sums(scope, grain)
    trend = []
    for label, _begin, _end in time_buckets(scope, grain):
        found = sums.get(label)
        trend.append((label, {s: found[f"sentiment_{s}"] if found else 0 for s in SENTIMENTS}))
    return trend


# --- themes --------------------------------------------------------------------------------------


def top_negative_themes(
    scope: Scope, limit: int = 10, *, examples: int = EXAMPLES_PER_THEME
) -> list[Theme]:
    """The keywords most often found in negative comments of ``scope``, with example comments.

    Per keyword (:func:`~analysis.metrics.engine.mention_sums`, from the roll-ups when they
    serve the scope): count = responses mentioning it, negative_count = of those, responses
    labelled negative; negative_share = negative_count ÷ count. Themes with at least one
    negative mention, ordered by negative count, then count (both descending), then keyword.
    Each carries up to ``examples`` comments: negative ones first, newest first
    (:func:`_theme_examples`).
    """
    sums = mention_sums("keywords", scope)
    ranked = sorted(
        ((keyword, tally) for keyword, tally in sums.items() if tally["negative"] > 0),
        key=lambda item: (-item[1]["negative"], -item[1]["count"], item[0]),
    )[:limit]
    if not ranked:
        return []
    by_keyword = _theme_examples(scope, dict(ranked), examples) if examples > 0 else {}
    return [
        Theme(
            keyword=keyword,
            count=tally["count"],
            negative_count=tally["negative"],
            negative_share=tally["negative"] / tally["count"],
            examples=tuple(by_keyword.get(keyword, ())),
        )
        for keyword, tally in ranked
    ]


#: Commented responses read by each step of :func:`_theme_examples`' walk back in time, and
#: its steps.
EXAMPLES_STEP = 250
EXAMPLES_STEPS = 2


def _theme_examples(
    scope: Scope, tallies: dict[str, dict[str, int]], examples: int
) -> dict[str, list[ThemeExample]]:
    """Up to ``examples`` commented responses per keyword of ``tallies``: the negative ones
    first, then the others, each newest first (ties: the higher id first).

    The scope's commented responses are walked from the newest, :data:`EXAMPLES_STEPS`
    steps of :data:`EXAMPLES_STEP`, until each keyword has its examples (how many exist is
    known from ``tallies``): most top themes are frequent, so the walk finds them, where
    numbering every mention of them read a year's worth (0.8 s at a million responses). A
    keyword still short of examples after the walk (rare in the scope: the walk would go
    on for months) is looked up by its own mentions, older than where the walk stopped.
    """
    found: dict[str, list[ThemeExample]] = {keyword: [] for keyword in tallies}
    # The label and the empty comment as literals, not parameters: the planner then proves
    # the condition of ``ix_survey_response_negative_comments`` and walks it (PostgreSQL's
    # generic plans and SQLite's never match a partial index on a parameter).
    negative = SurveyResponse.sentiment_label == _inline(
        SentimentLabel.NEGATIVE, SurveyResponse.sentiment_label
    )
    for is_negative in (True, False):
        wanted = {
            keyword: min(
                examples - len(found[keyword]),
                tally["negative"] if is_negative else tally["count"] - tally["negative"],
            )
            for keyword, tally in tallies.items()
        }
        label = (
            negative if is_negative else or_(SurveyResponse.sentiment_label.is_(None), ~negative)
        )
        conditions = [
            *response_conditions(scope),
            label,
            SurveyResponse.comment.is_not(None),
            SurveyResponse.comment != _inline("", SurveyResponse.comment),
        ]
        pending, after = _walk_examples(conditions, wanted, found, is_negative)
        for keyword in sorted(pending):
            short = wanted[keyword] - sum(e.negative == is_negative for e in found[keyword])
            for row in db.session.execute(
                _newest(conditions, after)
                .join(ResponseKeyword, ResponseKeyword.response_id == SurveyResponse.id)
                .where(ResponseKeyword.keyword == keyword)
                .limit(short)
            ):
                found[keyword].append(ThemeExample(row.id, row.comment, is_negative))
    return found


def _inline(value: Any, column: Any) -> ColumnElement[Any]:
    """``value`` written into the statement as a literal of ``column``'s type."""
    return literal(value, column.type, literal_execute=True)


def _newest(conditions: Sequence[ColumnElement[bool]], after: tuple[Any, int] | None) -> Any:
    """The responses of ``conditions``, newest first, older than ``after`` (time, id)."""
    statement = select(SurveyResponse.id, SurveyResponse.submitted_at, SurveyResponse.comment)
    statement = statement.where(*conditions)
    if after is not None:
        at, last_id = after
        statement = statement.where(
            or_(
                SurveyResponse.submitted_at < at,
                and_(SurveyResponse.submitted_at == at, SurveyResponse.id < last_id),
            )
        )
    return statement.order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc())


def _walk_examples(
    conditions: Sequence[ColumnElement[bool]],
    wanted: dict[str, int],
    found: dict[str, list[ThemeExample]],
    is_negative: bool,
) -> tuple[set[str], tuple[Any, int] | None]:
    """Add to ``found`` the newest responses of ``conditions`` mentioning each keyword, until
    it has ``wanted`` more or the walk's steps (of responses, whatever they mention) are
    made (see :func:`_theme_examples`).
    Returns the keywords still short and where the walk stopped (None: at the end)."""
    pending = {keyword for keyword, count in wanted.items() if count > 0}
    taken = dict.fromkeys(wanted, 0)
    after: tuple[Any, int] | None = None
    for _step in range(EXAMPLES_STEPS):
        if not pending:
            break
        # The newest commented responses, their keywords apart: a plain "newest first" that
        # both databases read backwards through an index of the period and stop early (with
        # the keywords in the same query, PostgreSQL gathered a year of negative responses
        # and sorted them: 100 ms).
        step = db.session.execute(_newest(conditions, after).limit(EXAMPLES_STEP)).all()
        said: dict[int, list[str]] = {}
        for response_id, keyword in db.session.execute(
            select(ResponseKeyword.response_id, ResponseKeyword.keyword).where(
                ResponseKeyword.response_id.in_([row.id for row in step]),
                ResponseKeyword.keyword.in_(sorted(pending)),
            )
        ):
            said.setdefault(response_id, []).append(keyword)
        for row in step:
            for keyword in said.get(row.id, ()):
                if keyword in pending:
                    found[keyword].append(ThemeExample(row.id, row.comment, is_negative))
                    taken[keyword] += 1
                    if taken[keyword] >= wanted[keyword]:
                        pending.discard(keyword)
        if len(step) < EXAMPLES_STEP:
            return set(), None
        after = (step[-1].submitted_at, step[-1].id)
    return pending, after


# --- driver analysis -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PairSums:
    """n, Σx, Σy, Σxy, Σx², Σy² over the responses answering both x (a CSAT dimension)
    and y (NPS)."""

    n: int
    sum_x: int
    sum_y: int
    sum_xy: int
    sum_x2: int
    sum_y2: int


def driver_sums(scope: Scope) -> dict[str, PairSums]:
    """For each CSAT dimension of :data:`DRIVER_DIMENSIONS`, the sums of it against NPS over
    the scope's responses answering both (:mod:`analysis.metrics.distributions`)."""
    sums = _sums(scope)
    return {
        dim: PairSums(*(sums[f"driver_{dim}_{part}"] for part in PAIR_PARTS))
        for dim in DRIVER_DIMENSIONS
    }


# --- the responses behind a number ---------------------------------------------------------------


@dataclass(frozen=True)
class ResponsePage:
    rows: list[SurveyResponse]
    page: int
    pages: int
    total: int


def responses_query(
    scope: Scope, *, keyword: str | None = None, sentiment: str | None = None
) -> Any:
    """SELECT of the scope's responses (newest first), optionally only those mentioning
    ``keyword`` or with sentiment label ``sentiment`` (``pending``: not analysed)."""
    statement = select(SurveyResponse).where(*response_conditions(scope))
    if keyword:
        statement = statement.where(
            exists().where(
                ResponseKeyword.response_id == SurveyResponse.id,
                ResponseKeyword.keyword == keyword,
            )
        )
    if sentiment == "pending":
        statement = statement.where(SurveyResponse.sentiment_label.is_(None))
    elif sentiment:
        statement = statement.where(SurveyResponse.sentiment_label == SentimentLabel(sentiment))
    return statement.order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc())


def responses_page(
    scope: Scope,
    page: int = 1,
    *,
    keyword: str | None = None,
    sentiment: str | None = None,
    per_page: int = RESPONSES_PER_PAGE,
) -> ResponsePage:
    """One page of :func:`responses_query` (a page past the end is empty, not an error).

    The total comes from the sums the dashboard shows (the scope's responses, a keyword's
    mentions: from the roll-ups when they serve the scope), else from counting the rows:
    a year's count was 0.3-0.5 s on SQLite at a million responses, the page itself 1 ms."""
    statement = responses_query(scope, keyword=keyword, sentiment=sentiment)
    if sentiment:
        total = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    elif keyword:
        total = mention_sums("keywords", scope).get(keyword, {}).get("count", 0)
    else:
        total = response_count(scope)
    rows = list(db.session.scalars(statement.limit(per_page).offset((page - 1) * per_page)))
    pages = max(1, -(-total // per_page))
    return ResponsePage(rows, page, pages, int(total))


def filter_options(names: Sequence[str]) -> dict[str, list[str]]:
    """The values seen on responses for each free-text filter (team, agent, region ...),
    sorted, for the filter form's choices (one ``SELECT DISTINCT`` per name, on its index)."""
    from analysis.metrics import rollup

    from_rollups = rollup.response_values(names)
    if from_rollups is not None:
        return from_rollups
    options: dict[str, list[str]] = {}
    for name in names:
        column = getattr(SurveyResponse, name)
        options[name] = sorted(
            value
            for value in db.session.scalars(select(column).where(column.is_not(None)).distinct())
            if value
        )
    return options


# --- what customers rate vs what they write ------------------------------------------------------


@dataclass(frozen=True)
class AspectAgreement:
    """One survey dimension: the CSAT customers gave it and what their comments said of it."""

    aspect: str
    csat_n: int
    csat_satisfied: int
    mentions: int
    positive: int
    negative: int

    @property
    def csat_percent(self) -> float | None:
        return 100 * self.csat_satisfied / self.csat_n if self.csat_n else None

    @property
    def negative_percent(self) -> float | None:
        return 100 * self.negative / self.mentions if self.mentions else None

    @property
    def positive_percent(self) -> float | None:
        return 100 * self.positive / self.mentions if self.mentions else None

    @property
    def disagrees(self) -> bool:
        """Ratings and words point different ways (enough of both to say so)."""
        if self.csat_percent is None or self.mentions < 5:
            return False
        words = (self.positive - self.negative) / self.mentions
        return (self.csat_percent >= 80 and words < -0.2) or (
            self.csat_percent < 60 and words > 0.2
        )


def aspect_agreement(scope: Scope) -> list[AspectAgreement]:
    """Per survey dimension: CSAT % of the scope's answers beside its comments' sentiment
    on that dimension (:mod:`analysis.sentiment.aspects`), both from the roll-ups when they
    serve the scope."""
    from analysis.sentiment.aspects import CSAT_COLUMN

    sums = _sums(scope)
    said = mention_sums("aspects", scope)
    result = []
    for aspect in CSAT_COLUMN:
        row = said.get(aspect.value)
        result.append(
            AspectAgreement(
                aspect=aspect.value,
                csat_n=sums[f"{CSAT_COLUMN[aspect]}_n"],
                csat_satisfied=sums[f"{CSAT_COLUMN[aspect]}_satisfied"],
                mentions=row["mentions"] if row else 0,
                positive=row["positive"] if row else 0,
                negative=row["negative"] if row else 0,
            )
        )
    return result
