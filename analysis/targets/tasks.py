"""Background task: the scheduled alert check."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="analysis.targets.check_alerts")
def check_alerts_task() -> dict[str, int]:
    """Evaluate every target and notify what changed; safe to run twice and concurrently."""
    from .alerts import check_alerts

    return check_alerts().to_json()
