"""Every new response is analysed in the background: sentiment, keywords, problem type, flags."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from analysis.pipeline import (
    TrainingLabels,
    analyse_pending,
    analyse_response,
    rescore_all,
    training_examples,
)
from analysis.signals import response_analysed
from survey_app.background import registered_jobs, run_jobs_once
from survey_app.extensions import db
from survey_app.surveys.invitations import ensure_survey_defaults, version_for_ticket
from survey_app.surveys.models import (
    Invitation,
    InvitationStatus,
    SentimentLabel,
    SurveyResponse,
)
from survey_app.surveys.responses import submit_response
from survey_app.types import utcnow
from tests.conftest import Webhook, event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

NEGATIVE_ZH = "等了三天都没有人回复，客服态度也很差，问题到现在还没解决，非常失望"
POSITIVE_ZH = "工程师很专业，响应很快，问题当天就解决了，非常满意，谢谢"
POSITIVE_EN = "The agent was friendly and fixed my problem quickly, great service, thank you!"


def respond(client: FlaskClient, answers: dict[str, Any], language: str = "zh_Hans") -> int:
    """A customer answers a survey: close a ticket, send its invitation, submit; return the id."""
    n = db.session.scalar(select(db.func.count()).select_from(Invitation)) + 1
    closed = utcnow() - timedelta(hours=2)
    opened = closed - timedelta(hours=3)
    payload = event_payload(
        ticket={"external_id": f"T-{n}", "created_at": opened.isoformat(),
                "first_response_at": opened.isoformat(), "resolved_at": closed.isoformat(),
                "closed_at": closed.isoformat()},
        customer={"external_id": f"C-{n}", "email": f"c{n}@example.com"},
    )  # fmt: skip
    assert Webhook(client).post(payload).status_code == 201
    invitation = db.session.scalars(select(Invitation).order_by(Invitation.id.desc())).first()
    # Delivery is not under test here: mark it sent as the dispatcher would.
    ensure_survey_defaults()
    invitation.template_version = version_for_ticket(invitation.ticket)
    invitation.status = InvitationStatus.SENT
    invitation.sent_at = utcnow()
    invitation.expires_at = utcnow() + timedelta(days=1)
    db.session.commit()
    return submit_response(invitation, answers, language)


def stored(response_id: int) -> SurveyResponse:
    """The response as stored now (a new transaction: an older one keeps an old snapshot)."""
    db.session.commit()
    db.session.expire_all()
    response = db.session.get(SurveyResponse, response_id)
    assert response is not None
    return response


@pytest.fixture
def analysed() -> Iterator[list[int]]:
    """Ids of the responses ``response_analysed`` was sent for, in order."""
    seen: list[int] = []

    def receiver(sender: Flask, response_id: int, **_: Any) -> None:
        seen.append(response_id)

    response_analysed.connect(receiver)
    yield seen
    response_analysed.disconnect(receiver)


@pytest.mark.slow
def test_a_response_is_not_analysed_in_the_request_but_by_the_periodic_job(
    app: Flask, client: FlaskClient, analysed: list[int]
) -> None:
    with app.app_context():
        response_id = respond(
            client, {"nps": 2, "csat_overall": 1, "csat_speed": 1, "comment": NEGATIVE_ZH}
        )
        assert stored(response_id).analysed_at is None
        names = [job.name for job in registered_jobs(app)]
        assert names.index("dispatch-surveys") < names.index("analyse-responses")

        results = run_jobs_once(app)

        assert results["analyse-responses"] == 1
        response = stored(response_id)
        assert response.analysed_at is not None
        assert response.sentiment_label is SentimentLabel.NEGATIVE
        assert response.sentiment_score is not None and response.sentiment_score < 0.4
        assert response.sentiment_language == "zh"
        assert response.sentiment_model.startswith("closedloop-nb")
        assert {"回复", "态度", "解决"} & set(response.keywords)
        assert response.problem_type in {"slow_response", "attitude", "unsuitable_solution"}
        assert response.contradiction is None
        assert analysed == [response_id]
        # Analysed once: the next round finds nothing and signals nothing.
        assert run_jobs_once(app)["analyse-responses"] == 0
        assert analyse_response(response_id) is False
        assert analysed == [response_id]


def test_each_kind_of_comment_gets_its_label_language_and_flags(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        promoter_angry = respond(client, {"nps": 10, "csat_overall": 5, "comment": NEGATIVE_ZH})
        detractor_warm = respond(client, {"nps": 0, "csat_overall": 1, "comment": POSITIVE_ZH})
        english = respond(client, {"nps": 9, "comment": POSITIVE_EN}, language="en")
        silent_low = respond(client, {"nps": 3, "csat_overall": 2, "csat_attitude": 1})
        emoji = respond(client, {"nps": 8, "comment": "👍👍"})
        happy = respond(client, {"nps": 10, "csat_overall": 5, "comment": POSITIVE_ZH})

        assert analyse_pending() == 6

        assert stored(promoter_angry).contradiction == "high score, negative comment"
        assert stored(detractor_warm).contradiction == "low score, positive comment"
        response = stored(english)
        assert (response.sentiment_label, response.sentiment_language) == (
            SentimentLabel.POSITIVE,
            "en",
        )
        assert response.problem_type is None
        response = stored(silent_low)
        assert response.sentiment_label is SentimentLabel.NONE
        assert response.sentiment_score is None
        assert response.keywords == []
        # No text, but the numbers complain: the lowest sub-score names the problem.
        assert response.problem_type == "attitude"
        assert stored(emoji).sentiment_label is SentimentLabel.NONE
        response = stored(happy)
        assert response.sentiment_label is SentimentLabel.POSITIVE
        assert (response.problem_type, response.contradiction) == (None, None)


def test_one_failing_response_does_not_stop_the_round(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    import analysis.pipeline as pipeline

    with app.app_context():
        first = respond(client, {"nps": 9, "comment": "broken"})
        second = respond(client, {"nps": 9, "comment": POSITIVE_ZH})
        real = pipeline.analysis_values

        def flaky(comment, scores, sentiment, *aspects):
            if comment == "broken":
                raise RuntimeError("disk on fire")
            return real(comment, scores, sentiment, *aspects)

        monkeypatch.setattr(pipeline, "analysis_values", flaky)
        with caplog.at_level(logging.ERROR, logger="analysis.pipeline"):
            assert analyse_pending(budget_seconds=10) == 1

        assert stored(first).analysed_at is None
        assert stored(second).analysed_at is not None
        assert f"analysing response {first} failed" in caplog.text
        monkeypatch.setattr(pipeline, "analysis_values", real)
        assert analyse_pending() == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_broker_never_fails_the_customer_and_the_sweep_catches_up(
    make_app: Callable[..., Flask], caplog
) -> None:
    app = make_app(
        CELERY_BROKER_URL=f"redis://127.0.0.1:{_closed_port()}/0",
        CELERY={"broker_connection_timeout": 1, "broker_connection_max_retries": 0},
    )
    with app.app_context(), caplog.at_level(logging.WARNING, logger="analysis.tasks"):
        response_id = respond(app.test_client(), {"nps": 3, "comment": NEGATIVE_ZH})

        assert "could not enqueue the analysis" in caplog.text
        assert stored(response_id).analysed_at is None
        assert analyse_pending() == 1
        assert stored(response_id).sentiment_label is SentimentLabel.NEGATIVE


def test_rescore_reanalyses_everything_and_signals_changed_labels(
    app: Flask, client: FlaskClient, analysed: list[int]
) -> None:
    with app.app_context():
        ids = [
            respond(client, {"nps": 2, "comment": NEGATIVE_ZH}),
            respond(client, {"nps": 10, "comment": POSITIVE_ZH}),
            respond(client, {"nps": 7}),
        ]
        analyse_pending()
        analysed.clear()
        # Pretend an older model called the negative comment positive.
        db.session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.id == ids[0])
            .values(sentiment_label=SentimentLabel.POSITIVE, sentiment_model="old")
        )
        db.session.commit()

        report = rescore_all(workers=1, batch_size=2)

        assert (report.responses, report.changed_labels, report.errors) == (3, 1, 0)
        assert analysed == [ids[0]]
        assert stored(ids[0]).sentiment_label is SentimentLabel.NEGATIVE
        assert stored(ids[0]).sentiment_model != "old"


def test_training_labels_come_from_the_scores() -> None:
    labels = TrainingLabels()
    assert labels.label(10, None) == 1
    assert labels.label(None, 5) == 1
    assert labels.label(4, None) == 0
    assert labels.label(None, 2) == 0
    assert labels.label(7, 3) is None
    assert labels.label(10, 1) is None  # the scores disagree: no label
    strict = TrainingLabels.from_config(
        {"SENTIMENT_TRAINING_LABELS": {"positive_nps": 10}}, negative_nps=2
    )
    assert (strict.label(9, None), strict.label(3, None), strict.label(2, None)) == (None, None, 0)
    with pytest.raises(ValueError, match="NPS"):
        TrainingLabels.from_config({}, negative_nps=9)


def test_training_examples_leave_out_contradictions(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        respond(client, {"nps": 10, "comment": POSITIVE_ZH})
        respond(client, {"nps": 1, "comment": NEGATIVE_ZH})
        respond(client, {"nps": 10, "comment": NEGATIVE_ZH})  # contradiction
        respond(client, {"nps": 7, "comment": "还行"})  # passive: no label
        respond(client, {"nps": 2})  # no comment: not a training text
        analyse_pending()

        found = training_examples(TrainingLabels())

        assert sorted(found.examples) == [(0, NEGATIVE_ZH), (1, POSITIVE_ZH)]
        assert found.skipped == 2


@pytest.mark.slow
def test_cli_train_from_responses_then_rescore(app: Flask, client: FlaskClient, runner) -> None:
    with app.app_context():
        for n in range(12):
            respond(client, {"nps": 10, "comment": f"{POSITIVE_ZH}{n}"})
            respond(client, {"nps": 1, "comment": f"{NEGATIVE_ZH}{n}"})
        analyse_pending()

    result = runner.invoke(args=["sentiment", "train", "--from-responses"])
    assert result.exit_code == 0, result.output
    assert "24 commented responses labelled by their scores (0 left out" in result.output
    assert "Trained version" in result.output

    result = runner.invoke(args=["sentiment", "rescore", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "Rescored 24 responses" in result.output
    with app.app_context():
        models = set(db.session.scalars(select(SurveyResponse.sentiment_model)))
        assert len(models) == 1 and "shipped" not in next(iter(models))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sentiment", "train"], "Give either --csv FILE or --from-responses"),
        (["sentiment", "train", "--from-responses", "--negative-nps", "9"], "NPS"),
        (["sentiment", "train", "--from-responses"], "both"),
    ],
)
def test_cli_train_refuses_bad_requests(runner, args: list[str], message: str) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output


def test_cli_jobs_run_runs_every_job_once(app: Flask, client: FlaskClient, runner) -> None:
    with app.app_context():
        response_id = respond(client, {"nps": 9, "comment": POSITIVE_ZH})

    result = runner.invoke(args=["jobs", "run"])

    assert result.exit_code == 0, result.output
    assert "analyse-responses: 1" in result.output
    assert "dispatch-surveys:" in result.output
    with app.app_context():
        assert stored(response_id).sentiment_label is SentimentLabel.POSITIVE
