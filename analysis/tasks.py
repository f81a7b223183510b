"""Celery tasks of the analysis layer (run by the worker; in-process without a broker), and
the hook that enqueues a new response's analysis. Depends on :mod:`analysis.pipeline`,
never the other way round."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from flask import Flask

log = logging.getLogger(__name__)


@shared_task(name="analysis.tasks.analyse_response")
def analyse_response_task(response_id: int) -> bool:
    """Analyse one new response; a no-op when it was analysed already (safe to run twice)."""
    from .pipeline import analyse_response

    return analyse_response(response_id)


@shared_task(name="analysis.tasks.analyse_pending")
def analyse_pending_task() -> int:
    """Analyse every response not analysed yet (the periodic sweep); return how many."""
    from .pipeline import analyse_pending

    return analyse_pending()


def on_response_submitted(sender: Flask, response_id: int, **_: Any) -> None:
    """Enqueue the analysis of a new response for the worker (with a broker only).

    Without a broker the periodic job analyses it within
    ``DISPATCH_INTERVAL_SECONDS``: scoring never runs in the customer's request.
    When the broker cannot be reached, the customer's submit still succeeds and
    the periodic sweep picks the response up.
    """
    if not sender.config["CELERY_BROKER_URL"]:
        return
    try:
        analyse_response_task.delay(response_id)
    except Exception as exc:
        log.warning(
            "could not enqueue the analysis of response %s (%s); the periodic job will do it",
            response_id,
            exc,
        )
