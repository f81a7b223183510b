"""Turns responses into numbers: sentiment, keywords, KPI queries, charts, dashboards.

May import ``survey_app`` models; never imported by ``survey_app`` except inside
``create_app``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the analysis commands (``closedloop sentiment``, ``closedloop metrics``),
    tasks, the background analysis of new responses, the metrics API, the SLA
    policy page, the SLA hook on ticket intake and the quality dashboards.

    Importing these loads no model: models load on first use, in the process
    that analyses (a worker, the background thread or a CLI command).
    """
    from survey_app.background import register_job
    from survey_app.demo import demo_seeded
    from survey_app.surveys.signals import response_submitted

    from . import dashboards, labels, metrics, sla, tasks
    from .pipeline import analyse_demo_responses, analyse_pending
    from .sentiment.cli import sentiment_cli
    from .tasks import on_response_submitted
    from .text import models  # noqa: F401  (response_keyword, so Alembic sees it)

    app.cli.add_command(sentiment_cli)
    metrics.init_app(app)
    sla.init_app(app)
    dashboards.init_app(app)
    response_submitted.connect(on_response_submitted)
    register_job(app, "analyse-responses", tasks.analyse_pending_task.name, analyse_pending)
    demo_seeded.connect(analyse_demo_responses, sender=app)

    from . import targets

    targets.init_app(app)
    labels.init_app()
