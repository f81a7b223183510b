"""KPI targets, status colours and graded alerts.

Status colours — the API the dashboards and the Excel report call::

    from analysis.targets import status_for

    result = compute(scope)
    status = status_for("nps", result.overall["nps"], scope)
    status.level   # "ok" | "yellow" | "orange" | "red" | "no_target" | "low_confidence"
    status.target  # the target value (None: no target)
    status.gap     # distance on the bad side of the target, in the KPI's unit (None: not graded)

``status_for(kpi_name, kpi, scope)`` uses the most specific target for that
KPI whose filters cover the scope's filters (an organisation-wide target
covers every scope); a KPI marked low-confidence (n below
``METRICS_MIN_SAMPLE``) is never graded. The direction (higher or lower is
better) follows from the KPI; ``gap`` = target − value (higher is better) or
value − target (lower is better); the level is red if gap > red, orange if
gap > orange, yellow if gap > yellow, else ok (:mod:`.status`).

Alerts: :func:`.alerts.check_alerts` runs as the periodic job
``check-alerts`` (Celery beat, the thread of ``closedloop run``,
``closedloop jobs run``) and as ``closedloop alerts check`` for cron.

Settings: ``ALERT_WEBHOOK_URL`` (default webhook for targets without their
own), ``ALERT_WEBHOOK_SECRET`` (HMAC key of the webhook body),
``ALERT_RETRY_MINUTES`` (10: a failed delivery is retried after this long).
"""

from __future__ import annotations

from flask import Flask

from .status import Status, direction_of, status_for

__all__ = ["Status", "direction_of", "init_app", "status_for"]


def init_app(app: Flask) -> None:
    """Register the models, pages, ``closedloop alerts``, the job and the
    demo targets (:mod:`.demo`)."""
    from survey_app.background import register_job
    from survey_app.demo import demo_seeded

    from . import models, tasks  # noqa: F401  (models: so Alembic sees the tables)
    from .alerts import check_alerts
    from .cli import alerts_cli
    from .demo import seed_demo_targets
    from .routes import bp

    app.register_blueprint(bp)
    app.cli.add_command(alerts_cli)
    register_job(app, "check-alerts", tasks.check_alerts_task.name, check_alerts)
    demo_seeded.connect(seed_demo_targets, sender=app)
