"""Celery: a real worker process against Redis, and the in-process (eager) default."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from survey_app import PROJECT_ROOT
from survey_app.extensions import db
from survey_app.surveys.models import Invitation, InvitationStatus
from survey_app.tasks import dispatch_surveys, send_invitation
from survey_app.types import utcnow
from tests.conftest import Mailbox, Webhook, event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = [pytest.mark.db, pytest.mark.slow]

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: Bound on every wait for the worker.
WAIT_SECONDS = 30.0
CELERY = Path(sys.executable).with_name("celery")


def redis_reachable() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not redis_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Redis at {REDIS_HOST}:{REDIS_PORT} for the Celery worker test")
        pytest.skip(f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    """A queue of this test only, so parallel runs on one Redis never take each other's tasks."""
    name = f"closedloop-test-{uuid.uuid4().hex}"
    yield name
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(name, f"_kombu.binding.{name}")
    client.close()


def close_ticket(app: Flask, ticket: str, customer: str, closed_ago: timedelta) -> Invitation:
    closed = utcnow() - closed_ago
    opened = closed - timedelta(hours=1)
    payload = event_payload(
        ticket={"external_id": ticket, "created_at": opened.isoformat(),
                "first_response_at": opened.isoformat(), "resolved_at": closed.isoformat(),
                "closed_at": closed.isoformat()},
        customer={"external_id": customer, "email": f"{customer.lower()}@example.com",
                  "language": "en"},
    )  # fmt: skip
    assert Webhook(app.test_client()).post(payload).status_code == 201
    invitation = db.session.scalars(db.select(Invitation).order_by(Invitation.id.desc())).first()
    assert invitation is not None
    db.session.commit()
    return invitation


def wait_until(condition: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"gave up after {WAIT_SECONDS} s waiting for {what}; worker log:\n{log_text(log)}")


def log_text(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace") if log.exists() else "(no log)"


def status_of(invitation_id: int) -> InvitationStatus:
    """The stored status, read in a new transaction (an older one keeps an old snapshot)."""
    db.session.commit()
    db.session.expire_all()
    invitation = db.session.get(Invitation, invitation_id)
    assert invitation is not None
    status = invitation.status
    db.session.commit()
    return status


@pytest.fixture
def broker_app(
    make_app: Callable[..., Flask],
    smtp_server: tuple[str, int, Mailbox],
    redis_url: str,
    queue: str,
) -> Iterator[Flask]:
    """An app that enqueues to ``queue`` on Redis instead of running tasks itself."""
    host, port, _mailbox = smtp_server
    app = make_app(
        CELERY_BROKER_URL=redis_url,
        CELERY={"task_default_queue": queue},
        MAIL_SERVER=host,
        MAIL_PORT=port,
    )
    celery_app = app.extensions["celery"]
    with app.app_context():
        yield app
    celery_app.close()


@pytest.fixture
def start_worker(
    database_url: str,
    smtp_server: tuple[str, int, Mailbox],
    redis_url: str,
    queue: str,
    tmp_path: Path,
) -> Iterator[Callable[..., Path]]:
    """Start ``celery -A survey_app.worker worker`` configured only by the environment.

    Returns the path of its log; the worker is stopped with SIGTERM (warm shutdown).
    """
    host, port, _mailbox = smtp_server
    processes: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(*extra: str, **env_extra: str) -> Path:
        instance = tmp_path / "worker-instance"
        instance.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
        env.update(
            CLOSEDLOOP_CELERY_BROKER_URL=redis_url,
            CLOSEDLOOP_CELERY__task_default_queue=queue,
            CLOSEDLOOP_DATABASE_URL=database_url,
            CLOSEDLOOP_SECRET_KEY="test-secret",
            CLOSEDLOOP_INSTANCE_PATH=str(instance),
            CLOSEDLOOP_MAIL_SERVER=host,
            CLOSEDLOOP_MAIL_PORT=str(port),
            CLOSEDLOOP_MAIL_DEFAULT_SENDER="feedback@example.com",
            CLOSEDLOOP_PUBLIC_URL="https://feedback.example.com",
            **env_extra,
        )
        log = tmp_path / f"worker-{len(processes)}.log"
        handle = log.open("wb")
        command = [
            str(CELERY), "-A", "survey_app.worker", "worker", "--pool", "solo",
            "--concurrency", "1", "-Q", queue, "-n", f"{queue}@%h", "--without-mingle",
            "--without-gossip", "--without-heartbeat", "--loglevel", "INFO", *extra,
        ]  # fmt: skip
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        processes.append((process, handle))
        return log

    yield start
    for process, handle in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        handle.close()


def test_a_real_worker_sends_each_invitation_once(broker_app: Flask, mailbox, start_worker):
    celery_app = broker_app.extensions["celery"]
    assert not celery_app.conf.task_always_eager
    assert dispatch_surveys.app is celery_app
    first = close_ticket(broker_app, "T-1", "C-1", timedelta(hours=2))
    log = start_worker()

    dispatch_surveys.delay()
    wait_until(lambda: len(mailbox.messages) >= 1, "the invitation e-mail", log)
    wait_until(lambda: status_of(first.id) is InvitationStatus.SENT, "status sent", log)
    assert mailbox.messages[0]["To"] == "c-1@example.com"
    assert (
        "https://feedback.example.com/s/"
        in mailbox.messages[0].get_body(preferencelist=("plain",)).get_content()
    )

    # The same work again, then a marker: tasks run in order, one at a time.
    send_invitation.delay(first.id)
    dispatch_surveys.delay()
    second = close_ticket(broker_app, "T-2", "C-2", timedelta(hours=2))
    send_invitation.delay(second.id)
    wait_until(lambda: status_of(second.id) is InvitationStatus.SENT, "the marker", log)
    wait_until(lambda: len(mailbox.messages) >= 2, "the marker e-mail", log)

    assert sorted(m["To"] for m in mailbox.messages) == ["c-1@example.com", "c-2@example.com"]
    text = log_text(log)
    assert "Traceback" not in text, text


def test_beat_dispatches_without_being_asked(broker_app: Flask, mailbox, start_worker, tmp_path):
    invitation = close_ticket(broker_app, "T-1", "C-1", timedelta(hours=2))

    log = start_worker("--beat", CLOSEDLOOP_DISPATCH_INTERVAL_SECONDS="1")

    wait_until(lambda: status_of(invitation.id) is InvitationStatus.SENT, "beat's dispatch", log)
    assert [m["To"] for m in mailbox.messages] == ["c-1@example.com"]
    # Beat keeps its schedule in the instance folder, not in the working directory.
    assert list((tmp_path / "worker-instance").glob("celerybeat-schedule*"))


def test_without_a_broker_tasks_run_in_process_and_respect_the_delay(
    make_app: Callable[..., Flask], smtp_server: tuple[str, int, Mailbox]
) -> None:
    host, port, mailbox = smtp_server
    app = make_app(MAIL_SERVER=host, MAIL_PORT=port)
    assert app.extensions["celery"].conf.task_always_eager
    with app.app_context():
        invitation_id = close_ticket(app, "T-1", "C-1", timedelta(minutes=10)).id

        send_invitation.delay(invitation_id)
        assert status_of(invitation_id) is InvitationStatus.PENDING
        assert mailbox.messages == []

        db.session.get(Invitation, invitation_id).send_after = utcnow() - timedelta(seconds=1)
        db.session.commit()
        send_invitation.delay(invitation_id)
        assert status_of(invitation_id) is InvitationStatus.SENT
        send_invitation.delay(invitation_id)
        dispatch_surveys.delay()
        assert len(mailbox.messages) == 1


def test_beat_schedules_the_dispatch_unless_the_interval_is_0(
    make_app: Callable[..., Flask],
) -> None:
    every_minute = make_app().extensions["celery"].conf
    assert every_minute.beat_schedule["dispatch-surveys"] == {
        "task": "survey_app.tasks.dispatch_surveys",
        "schedule": 60.0,
    }
    assert every_minute.beat_schedule_filename.endswith("celerybeat-schedule")
    assert make_app(DISPATCH_INTERVAL_SECONDS=0).extensions["celery"].conf.beat_schedule == {}


def test_a_real_worker_analyses_a_new_response(broker_app: Flask, start_worker) -> None:
    from survey_app.surveys.models import SentimentLabel, SurveyResponse
    from tests.test_analysis_pipeline import NEGATIVE_ZH, respond

    log = start_worker()
    response_id = respond(broker_app.test_client(), {"nps": 1, "comment": NEGATIVE_ZH})

    def analysed() -> bool:
        db.session.commit()
        db.session.expire_all()
        return db.session.get(SurveyResponse, response_id).analysed_at is not None

    # The worker loads the sentiment model on its first task: allow for building it.
    deadline = time.monotonic() + 120
    while not analysed() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert analysed(), log_text(log)
    response = db.session.get(SurveyResponse, response_id)
    assert response.sentiment_label is SentimentLabel.NEGATIVE
    assert "Traceback" not in log_text(log)
