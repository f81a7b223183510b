"""Background task: keep the KPI roll-ups current."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="analysis.metrics.refresh")
def refresh_rollups_task() -> int:
    """Rebuild the roll-ups of the days that writes changed; return how many days."""
    from .rollup import refresh

    return refresh()
