"""Background task: measure every ticket again after an SLA policy change."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="analysis.sla.recompute")
def recompute_sla() -> int:
    """Re-measure every ticket against the current policy; return how many. Safe to run twice."""
    from .services import recompute_all

    return recompute_all()


@shared_task(name="analysis.sla.recompute_if_stale")
def recompute_if_stale_task() -> int:
    """The periodic job: re-measure every ticket if the policy changed since; return how many."""
    from .services import recompute_if_stale

    return recompute_if_stale()
