"""Turns responses into numbers: sentiment, keywords, KPI queries, charts, dashboards.

May import ``survey_app`` models; never imported by ``survey_app`` except inside
``create_app``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the analysis commands (``closedloop sentiment``, ``closedloop metrics``), the
    metrics API, the SLA policy page and the SLA hook on ticket intake.

    Importing the commands loads no model: those load on first use.
    """
    from . import metrics, sla
    from .sentiment.cli import sentiment_cli

    app.cli.add_command(sentiment_cli)
    metrics.init_app(app)
    sla.init_app(app)
