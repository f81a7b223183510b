"""Closing the loop: customers linked to a standardised cycle are told what changed, and the
cycle page shows how many of them answered their next survey no longer low.

See :mod:`.services` for the queue, the sending job and the recovery rate.
Re-surveying them after N days is not built: survey_app's invitations are
created only from a ticket's close event (``invitation.close_event_id`` is
unique and required), so a survey without a new ticket has no clean place yet.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the models, the template page, the periodic sending job and the helpers."""
    from survey_app.background import register_job

    from . import labels, models, tasks  # noqa: F401  (models: so Alembic sees the tables)
    from .routes import bp
    from .services import message_counts, recovery_rate, send_close_loop_messages

    app.register_blueprint(bp)
    labels.init_app()
    app.add_template_global(recovery_rate, "close_loop_recovery")
    app.add_template_global(message_counts, "close_loop_counts")
    register_job(
        app,
        "close-loop-messages",
        tasks.send_close_loop_messages_task.name,
        send_close_loop_messages,
    )
