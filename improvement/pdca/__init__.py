"""PDCA cycles: a KPI target with a computed baseline, action items, gated stages and an
automatic Check (after vs before, pilot vs control, with a significance test).

Settings: ``ACTION_DUE_SOON_DAYS`` (3): days before an action's deadline its
owner gets the due-soon reminder.

Hooks for other parts of the app (which may not import this package):
``app.extensions["closedloop.timeline_markers"]`` is a list of callables
``(scope: analysis.metrics.Scope) -> list[tuple[date, str]]``; this package
appends :func:`.lists.action_dates`, and a trend chart draws every marker
the callables return.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

#: The extension key of the timeline marker providers (see the module docstring).
TIMELINE_MARKERS = "closedloop.timeline_markers"


def init_app(app: Flask) -> None:
    """Register the models, pages, commands, periodic jobs, marker hook and demo part."""
    from survey_app.background import register_job

    from . import labels, models, tasks  # noqa: F401  (models: so Alembic sees the tables)
    from .cli import actions_cli, pdca_cli
    from .lists import action_dates
    from .reminders import send_action_reminders
    from .routes import bp
    from .stages import run_due_checks

    labels.init_app(app)
    app.register_blueprint(bp)
    app.cli.add_command(actions_cli)
    app.cli.add_command(pdca_cli)
    app.extensions.setdefault(TIMELINE_MARKERS, []).append(action_dates)
    register_job(
        app, "action-reminders", tasks.send_action_reminders_task.name, send_action_reminders
    )
    # One job for the Check work that falls due: scheduled Checks, then re-checks.
    register_job(app, "pdca-rechecks", tasks.run_due_rechecks_task.name, run_due_checks)


def timeline_markers(app: Flask, scope: Any) -> list[tuple[Any, str]]:
    """Every marker the registered providers give for ``scope``, by date."""
    found: list[tuple[Any, str]] = []
    for provider in app.extensions.get(TIMELINE_MARKERS, []):
        found += provider(scope)
    return sorted(found)
