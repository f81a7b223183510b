"""Responses whose score and comment disagree, for the quality team to read.

An NPS of 10 next to an angry comment, or a CSAT of 1 next to a warm one,
usually means a misread scale, a reversed widget, or a comment about something
else than the score; either way someone should look. A response is flagged
when both sentiment signals agree the text is strongly on the other side
(label *and* score), so the review queue holds few false alarms:

* high score: NPS >= :data:`PROMOTER_NPS` (9) or CSAT >= :data:`HIGH_CSAT` (5),
  with label ``negative`` and sentiment score <= :data:`NEGATIVE_MAX_SCORE` (0.2);
* low score: NPS <= :data:`DETRACTOR_NPS` (4) or CSAT <= :data:`LOW_CSAT` (2),
  with label ``positive`` and sentiment score >= :data:`POSITIVE_MIN_SCORE` (0.8).

When the sentiment score is missing, the label alone decides. A response whose
scores disagree among themselves (NPS 10, CSAT 1) is not flagged: its comment
agrees with one of them. No comment (label ``none`` or missing) is never a
contradiction.
"""

from __future__ import annotations

PROMOTER_NPS = 9
DETRACTOR_NPS = 4
HIGH_CSAT = 5
LOW_CSAT = 2
NEGATIVE_MAX_SCORE = 0.2
POSITIVE_MIN_SCORE = 0.8

#: The reasons returned, stable strings (stored, grouped and translated by the UI).
HIGH_SCORE_NEGATIVE_COMMENT = "high score, negative comment"
LOW_SCORE_POSITIVE_COMMENT = "low score, positive comment"


def _check_range(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def is_contradiction(
    *,
    nps: int | None,
    csat_overall: int | None,
    sentiment_label: str | None,
    sentiment_score: float | None,
) -> str | None:
    """Return why the scores and the comment disagree, or None when they do not.

    The reason is :data:`HIGH_SCORE_NEGATIVE_COMMENT` or
    :data:`LOW_SCORE_POSITIVE_COMMENT` (thresholds in the module doc).
    ``sentiment_label`` is ``positive``, ``neutral``, ``negative`` or ``none``
    (a ``SentimentLabel`` works too). Raises ``ValueError`` for an NPS outside
    0-10, a CSAT outside 1-5 or a sentiment score outside 0-1.
    """
    _check_range("nps", nps, 0, 10)
    _check_range("csat_overall", csat_overall, 1, 5)
    if sentiment_score is not None and not 0.0 <= sentiment_score <= 1.0:
        raise ValueError(f"sentiment_score must be between 0 and 1, got {sentiment_score}")

    high = (nps is not None and nps >= PROMOTER_NPS) or (
        csat_overall is not None and csat_overall >= HIGH_CSAT
    )
    low = (nps is not None and nps <= DETRACTOR_NPS) or (
        csat_overall is not None and csat_overall <= LOW_CSAT
    )
    if high == low:  # no score, middling scores, or scores that disagree already
        return None

    if high and sentiment_label == "negative":
        strong = sentiment_score is None or sentiment_score <= NEGATIVE_MAX_SCORE
        return HIGH_SCORE_NEGATIVE_COMMENT if strong else None
    if low and sentiment_label == "positive":
        strong = sentiment_score is None or sentiment_score >= POSITIVE_MIN_SCORE
        return LOW_SCORE_POSITIVE_COMMENT if strong else None
    return None
