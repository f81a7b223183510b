"""The quality dashboards: KPI cards, trends, distributions, sentiment, themes, breakdowns,
the first-response heatmap, driver analysis and the detractor p-chart.

Figures are built server-side with plotly's Python API and sent as JSON; the
browser draws them with the cartesian plotly.js bundle vendored in
``static/vendor/`` (same version as the Python package's), served gzipped by this
blueprint (never a CDN).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the dashboard pages; the cards' status colours come from ``analysis.targets``."""
    from analysis.targets import status_for

    from .routes import bp
    from .services import KPI_STATUS_HOOK

    app.register_blueprint(bp)
    app.extensions.setdefault(KPI_STATUS_HOOK, status_for)
