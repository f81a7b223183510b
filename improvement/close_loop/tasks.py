"""Celery task of closing the loop (periodic)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="improvement.close_loop.tasks.send_close_loop_messages")
def send_close_loop_messages_task() -> int:
    """Send the pending close-the-loop messages; return how many were sent."""
    from .services import send_close_loop_messages

    return send_close_loop_messages().sent
