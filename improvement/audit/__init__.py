"""Audit trail: who changed what and when on cases, root causes, cycles and actions.

The operation functions of :mod:`improvement.root_causes` and
:mod:`improvement.pdca` call :func:`.services.record_event` (never the
views), so the web UI, the CLI and the jobs leave the same trail. Each entity's
page lists its events newest first; admins filter all of them on ``/admin/audit``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the model (so Alembic sees the table), the admin page and the template helper."""
    from . import models  # noqa: F401
    from .display import audit_action, audit_changes, audit_entity
    from .routes import bp
    from .services import events_for

    app.register_blueprint(bp)
    app.add_template_global(events_for, "audit_events")
    app.add_template_global(audit_changes, "audit_changes")
    app.add_template_global(audit_action, "audit_action")
    app.add_template_global(audit_entity, "audit_entity")
