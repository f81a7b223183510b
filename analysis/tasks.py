"""Celery tasks of the analysis layer (run by the worker; in-process without a broker)."""

from __future__ import annotations

from celery import shared_task


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
