"""SLA policy, and each ticket's SLA facts: elapsed times on its clock and breaches.

Facts are computed in Python (working hours cannot sensibly be counted in SQL)
whenever intake changes a ticket, stored in ``ticket_sla``, and aggregated in
SQL by ``analysis.metrics``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the admin page, the task, and the intake hooks."""
    from survey_app.background import register_job
    from survey_app.intake.signals import ticket_changed, tickets_changed

    from . import models, tasks  # noqa: F401  (tables for migrations; the Celery task)
    from .routes import bp
    from .services import recompute_if_stale

    app.register_blueprint(bp)
    ticket_changed.connect(_measure_changed_ticket)
    tickets_changed.connect(_measure_changed_tickets)
    register_job(app, "recompute-sla", tasks.recompute_if_stale_task.name, recompute_if_stale)


def _measure_changed_ticket(sender: Flask, *, ticket: Any, **_extra: Any) -> None:
    from .services import refresh_ticket_sla

    refresh_ticket_sla(ticket)


def _measure_changed_tickets(
    sender: Flask, *, ticket_ids: list[int], tickets: list[Any] | None = None, **_extra: Any
) -> None:
    from .services import measure_changed_tickets, measure_tickets

    if tickets is None:
        measure_tickets(ticket_ids)
    else:
        measure_changed_tickets(tickets)
