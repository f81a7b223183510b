"""Celery tasks of the PDCA cycles (periodic: reminders, scheduled Checks and re-checks)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="improvement.pdca.tasks.send_action_reminders")
def send_action_reminders_task() -> int:
    """Send the due-soon and overdue reminders not sent yet; return how many were sent."""
    from .reminders import send_action_reminders

    return send_action_reminders().sent


@shared_task(name="improvement.pdca.tasks.run_due_rechecks")
def run_due_rechecks_task() -> int:
    """Enter the scheduled Checks that are due (their window has the minimum sample), then
    measure the due 30 / 60 / 90-day re-checks; return how many of both."""
    from .stages import run_due_checks

    return run_due_checks()
