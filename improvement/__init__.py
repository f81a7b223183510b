"""Acts on the numbers: root causes, PDCA cycles, action items, KPI targets, reports.

May import ``analysis`` and ``survey_app``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the improvement features: root-cause cases, PDCA cycles, the Excel report."""
    from . import audit, close_loop, pdca, report, root_causes

    audit.init_app(app)
    root_causes.init_app(app)
    pdca.init_app(app)
    close_loop.init_app(app)
    report.init_app(app)
