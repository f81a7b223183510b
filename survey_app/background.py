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

Jobs must be safe to run twice and from two processes at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
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
    return float(app.config.get("DISPATCH_INTERVAL_SECONDS") or 0)


def run_jobs_once(app: Flask) -> dict[str, Any]:
    """Run every job once, each in its own app context; return what each returned.

    A job that fails is logged and reported as its exception; the others still run.
    """
    results: dict[str, Any] = {}
    for job in registered_jobs(app):
        with app.app_context():
            try:
                results[job.name] = job.run()
            except Exception as exc:  # the next round retries
                log.exception("background job %s failed", job.name)
                results[job.name] = exc
    return results


def start_background_thread(
    app: Flask, stop: threading.Event | None = None
) -> threading.Thread | None:
    """Run the periodic jobs in-process, for the embedded default with no broker.

    Returns the started daemon thread, or None when a Celery broker is
    configured (beat does the work) or ``DISPATCH_INTERVAL_SECONDS`` is 0.
    Setting ``stop`` ends the thread after its current round.
    """
    interval = background_interval(app)
    if app.config.get("CELERY_BROKER_URL") or interval <= 0:
        return None
    stopped = stop or threading.Event()

    def loop() -> None:
        while not stopped.wait(interval):
            run_jobs_once(app)

    thread = threading.Thread(target=loop, name="closedloop-background", daemon=True)
    thread.start()
    return thread
