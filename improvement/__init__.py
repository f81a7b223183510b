"""Acts on the numbers: root causes, PDCA cycles, action items, KPI targets, reports.

May import ``analysis`` and ``survey_app``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the improvement features: root-cause cases, PDCA cycles, the Excel report."""
    from survey_app.demo import demo_seeded

    from . import audit, close_loop, pdca, report, root_causes

    audit.init_app(app)
    root_causes.init_app(app)
    pdca.init_app(app)
    close_loop.init_app(app)
    report.init_app(app)
    demo_seeded.connect(seed_demo, sender=app)


def seed_demo(sender: Flask, **extra: Any) -> str:
    """The improvement part of ``closedloop demo``, in order: root causes, then the PDCA
    cycles that work on them (signal receivers run in no fixed order, so one receiver)."""
    from .pdca.demo import seed_demo_cycles
    from .root_causes.demo import seed_demo_root_causes

    lines = [seed_demo_root_causes(sender, **extra), seed_demo_cycles(sender, **extra)]
    return "\n".join(line for line in lines if line)
