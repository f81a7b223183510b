"""Analysing responses: sentiment, keywords, problem type and contradictions, stored per response.

Every new response is analysed in the background, never inside the
customer's request:

* with a Celery broker, :func:`analysis.tasks.on_response_submitted` enqueues
  ``analysis.tasks.analyse_response`` for the worker as the response is saved;
* the periodic job :func:`analyse_pending` (Celery beat, the thread of
  ``closedloop run``, or ``closedloop jobs run`` from cron) picks up every
  response not analysed yet, so nothing is lost when the broker was down.

A response is analysed once (``analysed_at`` is set by a conditional UPDATE,
so two processes racing on one response store it once and signal once); its
keywords are also written as rows of ``response_keyword`` (replaced on every
analysis) for the dashboards' themes;
``closedloop sentiment rescore`` re-analyses everything with the current model.
After each analysis :data:`analysis.signals.response_analysed` is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import select, update

from survey_app import running_app
from survey_app.config import DefaultConfig, with_defaults
from survey_app.database import changed_rows
from survey_app.extensions import db
from survey_app.surveys.models import SentimentLabel, SurveyResponse
from survey_app.types import utcnow

from .sentiment.aspects import AspectScore, aspect_rows
from .sentiment.engine import SentimentResult, configured_band
from .signals import response_analysed
from .text.models import replace_response_aspects, replace_response_keywords

log = logging.getLogger(__name__)

#: A response counts as a complaint (and gets a problem type) when NPS or a CSAT is this low.
COMPLAINT_NPS = 6
COMPLAINT_CSAT = 2
#: Responses one round of :func:`analyse_pending` takes at most, and its time budget.
PENDING_BATCH = 200
PENDING_SECONDS = 30.0
#: Responses re-analysed per batch by :func:`rescore_all`.
RESCORE_BATCH = 5000

_SUB_SCORES = ("csat_speed", "csat_professionalism", "csat_attitude", "csat_effectiveness")
_CSAT_COLUMNS = ("csat_overall", *_SUB_SCORES)


@dataclass(frozen=True)
class ResponseScores:
    """What the analysis needs of a response besides its comment."""

    nps: int | None
    csat_overall: int | None
    csat_speed: int | None = None
    csat_professionalism: int | None = None
    csat_attitude: int | None = None
    csat_effectiveness: int | None = None

    @classmethod
    def of(cls, row: Any) -> ResponseScores:
        return cls(**{name: getattr(row, name) for name in ("nps", *_CSAT_COLUMNS)})

    def is_low(self) -> bool:
        """NPS <= 6 or any CSAT <= 2: the customer complained by the numbers."""
        low_nps = self.nps is not None and self.nps <= COMPLAINT_NPS
        csats = (getattr(self, name) for name in _CSAT_COLUMNS)
        return low_nps or any(value is not None and value <= COMPLAINT_CSAT for value in csats)


def analysis_values(
    comment: str | None,
    scores: ResponseScores,
    sentiment: SentimentResult,
    aspects: list[AspectScore] | None = None,
) -> dict[str, Any]:
    """Return the analysis columns of a response, given its comment's sentiment.

    ``problem_type`` is set only for a complaint (a low score or a negative
    comment): the survey dimension the comment is most negative about
    (``aspects``) when it names one, else the problem rules' verdict (which
    alone know product defects and policies); ``keywords`` is an empty list for
    a response without text.
    """
    from .sentiment.aspects import most_negative
    from .text.contradictions import is_contradiction
    from .text.keywords import keywords
    from .text.problems import ASPECT_PROBLEMS, ProblemType, classify_problem

    label = SentimentLabel(sentiment.label)
    problem: str | None = None
    if scores.is_low() or label is SentimentLabel.NEGATIVE:
        sub_scores = {name: getattr(scores, name) for name in _SUB_SCORES}
        found = classify_problem(comment, scores=sub_scores)
        worst = most_negative(aspects or [])
        if worst is not None and found not in (
            ProblemType.PRODUCT_DEFECT,
            ProblemType.PROCESS_POLICY,
        ):
            found = ASPECT_PROBLEMS[worst]
        problem = found.value
    elif comment:
        found = classify_problem(comment)
        problem = None if found is ProblemType.OTHER else found.value
    return {
        "sentiment_score": sentiment.score,
        "sentiment_label": label,
        "sentiment_language": sentiment.language,
        "sentiment_model": sentiment.engine[:80],
        "keywords": keywords(comment),
        "problem_type": problem,
        "contradiction": is_contradiction(
            nps=scores.nps,
            csat_overall=scores.csat_overall,
            sentiment_label=sentiment.label,
            sentiment_score=sentiment.score,
        ),
    }


def comment_aspects(comment: str | None) -> list[AspectScore]:
    """The comment's sentiment per survey dimension, with the app's engine and band."""
    from .sentiment.aspects import aspect_scores
    from .sentiment.engine import score

    return aspect_scores(comment, score, configured_band())


def analyse_response(response_id: int, *, force: bool = False) -> bool:
    """Analyse one response and commit; return whether this call stored the result.

    Does nothing (False) for an unknown id, or one already analysed unless
    ``force``. The scoring happens outside any transaction; the result is
    written by a conditional UPDATE, so of two concurrent callers one stores it
    and sends :data:`~analysis.signals.response_analysed`.
    """
    from .sentiment.engine import score

    row = db.session.execute(
        select(SurveyResponse.comment, SurveyResponse.analysed_at, *_score_columns()).where(
            SurveyResponse.id == response_id
        )
    ).first()
    db.session.commit()
    if row is None or (row.analysed_at is not None and not force):
        return False
    aspects = comment_aspects(row.comment)
    values = analysis_values(row.comment, ResponseScores.of(row), score(row.comment), aspects)
    statement = update(SurveyResponse).where(SurveyResponse.id == response_id)
    if not force:
        statement = statement.where(SurveyResponse.analysed_at.is_(None))
    stored = db.session.execute(
        statement.values(**values, analysed_at=utcnow()).execution_options(
            synchronize_session=False
        )
    )
    if changed_rows(stored) != 1:
        db.session.commit()
        return False
    replace_response_keywords({response_id: values["keywords"]})
    replace_response_aspects({response_id: aspect_rows(response_id, aspects)})
    db.session.commit()
    response_analysed.send(running_app(), response_id=response_id)
    return True


def pending_response_ids(limit: int = PENDING_BATCH) -> list[int]:
    """Ids of responses not analysed yet, oldest first."""
    ids = db.session.scalars(
        select(SurveyResponse.id)
        .where(SurveyResponse.analysed_at.is_(None))
        .order_by(SurveyResponse.id)
        .limit(limit)
    ).all()
    db.session.commit()
    return list(ids)


def analyse_pending(*, budget_seconds: float = PENDING_SECONDS) -> int:
    """Analyse responses not analysed yet, for up to ``budget_seconds``; return how many.

    The periodic job. A response that fails is logged and left for the next
    round; the others go on.
    """
    from .sentiment.engine import current_engine

    if not pending_response_ids(1):
        return 0
    # The budget is for analysing: loading the models (seconds, once per process) is not in it.
    current_engine().load()
    deadline = time.monotonic() + budget_seconds
    done = 0
    failed: set[int] = set()
    while time.monotonic() < deadline:
        ids = [i for i in pending_response_ids(PENDING_BATCH + len(failed)) if i not in failed]
        if not ids:
            break
        for response_id in ids:
            if time.monotonic() >= deadline:
                break
            try:
                done += analyse_response(response_id)
            except Exception:
                db.session.rollback()
                failed.add(response_id)
                log.exception("analysing response %s failed; the next round retries", response_id)
    return done


@dataclass
class RescoreReport:
    """What ``closedloop sentiment rescore`` did."""

    responses: int = 0
    changed_labels: int = 0
    errors: int = 0


def rescore_all(
    *,
    workers: int | None = None,
    batch_size: int = RESCORE_BATCH,
    progress: Callable[[int], None] | None = None,
) -> RescoreReport:
    """Re-analyse every response with the current model, on ``workers`` processes.

    Responses are read and written in batches by id (never all in memory),
    each batch committed on its own. :data:`~analysis.signals.response_analysed`
    is sent for every response whose label changed. A text the engine fails on
    keeps its previous analysis and counts in ``errors``.
    """
    from .sentiment.batch import ERROR, score_texts

    app = running_app()
    report = RescoreReport()
    band = configured_band()
    for rows in _batches(batch_size):
        results = score_texts(
            [row.comment or "" for row in rows],
            instance_path=app.instance_path,
            neutral_band=band,
            workers=workers,
        )
        updates: list[dict[str, Any]] = []
        aspect_by_response: dict[int, list[dict[str, Any]]] = {}
        changed: list[int] = []
        now = utcnow()
        for row, result in zip(rows, results, strict=True):
            if result.label == ERROR:
                report.errors += 1
                log.warning("response %s not rescored: %s", row.id, result.engine)
                continue
            aspects = comment_aspects(row.comment)
            values = analysis_values(row.comment, ResponseScores.of(row), result, aspects)
            if row.sentiment_label != values["sentiment_label"]:
                changed.append(row.id)
            updates.append({"id": row.id, **values, "analysed_at": now})
            aspect_by_response[row.id] = aspect_rows(row.id, aspects)
        if updates:
            db.session.execute(update(SurveyResponse), updates)
            replace_response_keywords({row["id"]: row["keywords"] for row in updates})
            replace_response_aspects(aspect_by_response)
        db.session.commit()
        report.responses += len(updates)
        report.changed_labels += len(changed)
        for response_id in changed:
            response_analysed.send(app, response_id=response_id)
        if progress:
            progress(len(rows))
    return report


def _score_columns() -> list[Any]:
    return [getattr(SurveyResponse, name) for name in ("nps", *_CSAT_COLUMNS)]


def _batches(size: int) -> Iterator[list[Any]]:
    last_id = 0
    while True:
        rows = db.session.execute(
            select(
                SurveyResponse.id,
                SurveyResponse.comment,
                SurveyResponse.sentiment_label,
                *_score_columns(),
            )
            .where(SurveyResponse.id > last_id)
            .order_by(SurveyResponse.id)
            .limit(size)
        ).all()
        db.session.commit()
        if not rows:
            return
        last_id = rows[-1].id
        yield list(rows)


def response_count() -> int:
    """How many responses there are (for a progress bar)."""
    count = db.session.scalar(select(db.func.count()).select_from(SurveyResponse)) or 0
    db.session.commit()
    return count


# --- training from the organisation's own responses ---------------------------------


#: The declared default of ``SENTIMENT_TRAINING_LABELS``.
_SHIPPED_LABELS = DefaultConfig.SENTIMENT_TRAINING_LABELS


@dataclass(frozen=True)
class TrainingLabels:
    """Thresholds that turn a response's scores into a sentiment label for training."""

    positive_nps: int = _SHIPPED_LABELS["positive_nps"]
    negative_nps: int = _SHIPPED_LABELS["negative_nps"]
    positive_csat: int = _SHIPPED_LABELS["positive_csat"]
    negative_csat: int = _SHIPPED_LABELS["negative_csat"]

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: int | None) -> TrainingLabels:
        """Read ``SENTIMENT_TRAINING_LABELS`` (``config`` lacking it: the declared default),
        then apply the non-None ``overrides``."""
        values = {**(with_defaults(config)["SENTIMENT_TRAINING_LABELS"] or {})}
        values.update({key: value for key, value in overrides.items() if value is not None})
        labels = cls(**values)
        if not 0 <= labels.negative_nps < labels.positive_nps <= 10:
            raise ValueError("need 0 <= negative NPS < positive NPS <= 10")
        if not 1 <= labels.negative_csat < labels.positive_csat <= 5:
            raise ValueError("need 1 <= negative CSAT < positive CSAT <= 5")
        return labels

    def label(self, nps: int | None, csat: int | None) -> int | None:
        """1 positive, 0 negative, None when the scores say neither (or both)."""
        positive = (nps is not None and nps >= self.positive_nps) or (
            csat is not None and csat >= self.positive_csat
        )
        negative = (nps is not None and nps <= self.negative_nps) or (
            csat is not None and csat <= self.negative_csat
        )
        if positive == negative:
            return None
        return 1 if positive else 0


@dataclass(frozen=True)
class TrainingSet:
    examples: list[tuple[int, str]]
    #: Responses with a comment whose scores gave no label, or contradicted the text.
    skipped: int


def training_examples(labels: TrainingLabels) -> TrainingSet:
    """Label every commented response by its scores; skip contradictions and ambiguous ones.

    A response flagged as a contradiction (score and comment disagree) teaches
    nothing reliable, so it is left out.
    """
    rows = db.session.execute(
        select(
            SurveyResponse.comment,
            SurveyResponse.nps,
            SurveyResponse.csat_overall,
            SurveyResponse.contradiction,
        )
        .where(SurveyResponse.comment.is_not(None), SurveyResponse.comment != "")
        .order_by(SurveyResponse.id)
    )
    examples: list[tuple[int, str]] = []
    skipped = 0
    for comment, nps, csat, contradiction in rows:
        label = None if contradiction else labels.label(nps, csat)
        if label is None or comment is None:
            skipped += 1
        else:
            examples.append((label, comment))
    db.session.commit()
    return TrainingSet(examples, skipped)


def analyse_demo_responses(sender: Flask, **_: Any) -> str:
    """The analysis part of ``closedloop demo``: analyse every demo response now.

    Returns the line the demo prints. Other parts of the demo that need the
    analysis (root causes) call it first themselves; a second call finds nothing.
    """
    started = time.perf_counter()
    done = analyse_pending(budget_seconds=float("inf"))
    if not done:
        return ""
    return f"Analysis: {done} responses scored and mined in {time.perf_counter() - started:.0f} s."
