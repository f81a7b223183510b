"""The case list as CSV: the same search and filters as the page, every page, streamed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from survey_app.csvexport import EXPORT_BATCH, local_time
from survey_app.extensions import db
from survey_app.labels import label
from survey_app.models import Customer, Ticket
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from .labels import problem_label, severity_label, trigger_label
from .models import FeedbackCase, RootCause
from .queue import case_queue


def case_export(
    filters: Mapping[str, object], zone: tzinfo, now: datetime | None = None
) -> tuple[Sequence[str | LazyString], Iterator[list[Any]]]:
    """The header and rows of the case list's CSV: every case :func:`case_queue` finds
    (all pages, same order), read :data:`EXPORT_BATCH` rows at a time, times in
    ``zone``. The rows are only read when iterated."""
    now = now or utcnow()
    header = [
        _l("Case"),
        _l("Ticket"),
        _l("Team"),
        _l("Customer"),
        _l("Customer e-mail"),
        "NPS",
        "CSAT",
        _l("Feedback"),
        _l("Sentiment"),
        _l("Keywords"),
        _l("Problem type"),
        _l("Severity"),
        _l("Call-back due (%(zone)s)", zone=str(zone)),
        _l("Called back (%(zone)s)", zone=str(zone)),
        _l("Status"),
        _l("Root cause"),
    ]
    query = case_queue(filters, now).with_only_columns(
        FeedbackCase.id,
        Ticket.external_id,
        Ticket.team,
        Customer.name,
        Customer.external_id,
        Customer.email,
        SurveyResponse.nps,
        SurveyResponse.csat_overall,
        SurveyResponse.comment,
        FeedbackCase.trigger,
        SurveyResponse.sentiment_label,
        SurveyResponse.keywords,
        FeedbackCase.problem_type,
        FeedbackCase.severity,
        FeedbackCase.callback_due_at,
        FeedbackCase.called_back_at,
        FeedbackCase.status,
        RootCause.id,
        RootCause.title,
    )

    def rows() -> Iterator[list[Any]]:
        for row in db.session.execute(query.execution_options(yield_per=EXPORT_BATCH)):
            (case_id, ticket, team, name, customer_id, email, nps, csat, comment, trigger,
             sentiment, keywords, problem, severity, due, called, status, cause_id,
             cause_title) = row  # fmt: skip
            yield [
                case_id,
                ticket,
                team,
                name or customer_id,
                email,
                nps,
                csat,
                comment or trigger_label(trigger),
                label(sentiment),
                ", ".join(keywords or ()),
                problem_label(problem),
                severity_label(severity),
                local_time(due, zone),
                local_time(called, zone),
                label(status),
                f"#{cause_id} {cause_title}" if cause_id else None,
            ]

    return header, rows()
