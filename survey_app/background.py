"""Periodic background jobs, one registry for every way ClosedLoop can run them.

A job is a function that does a bounded round of due work (send due
invitations, analyse new responses ...) and a Celery task that calls it.
Each part of the app registers its jobs in its ``init_app``; then

* with a broker, Celery beat enqueues each job's task every
  ``DISPATCH_INTERVAL_SECONDS`` for the worker;
* without one, ``closedloop run`` runs every job in a background thread at the
  same interval (:func:`start_background_thread`), so the embedded default
  needs no extra server;
* ``closedloop jobs run`` runs every job once, for cron.

Jobs must be safe to run twice and from two processes at once; on top of that,
:func:`run_jobs_once` takes a lease on each job in the database (``job_lease``)
so the thread of ``closedloop run`` and a ``closedloop jobs run`` from cron never
run the same job at the same time: the second one skips it for that round.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)

_EXTENSION = "closedloop.jobs"


@dataclass(frozen=True)
class Job:
    """A periodic job: ``run()`` needs an app context; ``task`` is its Celery task's name."""

    name: str
    task: str
    run: Callable[[], Any]


def register_job(app: Flask, name: str, task: str, run: Callable[[], Any]) -> None:
    """Register a periodic job on ``app`` and put its task on beat's schedule."""
    app.extensions.setdefault(_EXTENSION, {})[name] = Job(name, task, run)
    interval = background_interval(app)
    if interval > 0:
        app.extensions["celery"].conf.beat_schedule[name] = {"task": task, "schedule": interval}


def registered_jobs(app: Flask) -> list[Job]:
    """Return ``app``'s jobs in the order they were registered."""
    return list(app.extensions.get(_EXTENSION, {}).values())


def background_interval(app: Flask) -> float:
    """Seconds between two rounds of the periodic jobs (0: never)."""
    return float(app.config["DISPATCH_INTERVAL_SECONDS"])


#: What :func:`run_jobs_once` reports for a job another process is running.
SKIPPED = "skipped: running in another process"


def run_jobs_once(app: Flask) -> dict[str, Any]:
    """Run every job once, each in its own app context; return what each returned.

    A job that fails is logged and reported as its exception; the others still run.
    A job whose lease another process holds is reported as :data:`SKIPPED`.
    """
    results: dict[str, Any] = {}
    holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    for job in registered_jobs(app):
        with app.app_context():
            if not claim_lease(job.name, holder):
                results[job.name] = SKIPPED
                continue
            try:
                results[job.name] = job.run()
            except Exception as exc:  # the next round retries
                log.exception("background job %s failed", job.name)
                results[job.name] = exc
            finally:
                release_lease(job.name, holder)
    return results


def claim_lease(name: str, holder: str, now: datetime | None = None) -> bool:
    """Take the lease on job ``name`` for ``holder`` (``JOB_LEASE_SECONDS``); False if
    another holder has an unexpired one. One short transaction of its own, on both
    databases: a conditional UPDATE, or an INSERT that the primary key lets only one win."""
    from flask import current_app
    from sqlalchemy import or_, update
    from sqlalchemy.exc import IntegrityError

    from .database import changed_rows, write_transaction
    from .extensions import db
    from .models import JobLease
    from .types import utcnow

    now = now or utcnow()
    until = now + timedelta(seconds=float(current_app.config["JOB_LEASE_SECONDS"]))
    write_transaction()
    taken = db.session.execute(
        update(JobLease)
        .where(JobLease.name == name, or_(JobLease.expires_at <= now, JobLease.holder == holder))
        .values(holder=holder, expires_at=until)
        .execution_options(synchronize_session=False)
    )
    if changed_rows(taken) == 1:
        db.session.commit()
        return True
    if db.session.get(JobLease, name) is not None:
        db.session.commit()
        return False
    try:
        db.session.add(JobLease(name=name, holder=holder, expires_at=until))
        db.session.commit()
    except IntegrityError:  # another runner inserted it first
        db.session.rollback()
        return False
    return True


def release_lease(name: str, holder: str) -> None:
    """Give the lease on ``name`` back (if ``holder`` still has it)."""
    from sqlalchemy import delete

    from .database import write_transaction
    from .extensions import db
    from .models import JobLease

    db.session.rollback()
    write_transaction()
    db.session.execute(delete(JobLease).where(JobLease.name == name, JobLease.holder == holder))
    db.session.commit()


def start_background_thread(
    app: Flask, stop: threading.Event | None = None
) -> threading.Thread | None:
    """Run the periodic jobs in-process, for the embedded default with no broker.

    Returns the started daemon thread, or None when a Celery broker is
    configured (beat does the work) or ``DISPATCH_INTERVAL_SECONDS`` is 0.
    Setting ``stop`` ends the thread after its current round.
    """
    interval = background_interval(app)
    if app.config["CELERY_BROKER_URL"] or interval <= 0:
        return None
    stopped = stop or threading.Event()

    def loop() -> None:
        while not stopped.wait(interval):
            run_jobs_once(app)

    thread = threading.Thread(target=loop, name="closedloop-background", daemon=True)
    thread.start()
    return thread
