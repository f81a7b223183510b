"""KPIs: exact, in SQL, with their n, low-confidence flag and confidence intervals.

The public API other code builds on (dashboards, alerts, reports, PDCA checks)::

    from analysis.metrics import Scope, compute, parse_metrics_args

    scope = Scope(start=date(2025, 9, 1), end=date(2025, 9, 30), team=("Frontline",))
    result = compute(scope, group_by="channel", grain="week")
    result.overall["nps"].value, result.overall["nps"].ci, result.to_json()

Formulas: :mod:`analysis.metrics.definitions` (and the README's Metrics section).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from .definitions import ALL_KPIS, DEFINITIONS_VERSION, OVERVIEW_KPIS, Kpi, other_clock
from .engine import GroupResult, MetricsResult, compute
from .scope import DIMENSIONS, GRAINS, MetricsQuery, Scope, ScopeError, parse_metrics_args

__all__ = [
    "ALL_KPIS",
    "DEFINITIONS_VERSION",
    "DIMENSIONS",
    "GRAINS",
    "OVERVIEW_KPIS",
    "GroupResult",
    "Kpi",
    "MetricsQuery",
    "MetricsResult",
    "Scope",
    "ScopeError",
    "compute",
    "compute_for_args",
    "metrics_timezone",
    "other_clock",
    "parse_metrics_args",
]


def metrics_timezone(config: Any) -> str:
    """The time zone periods are read in: ``METRICS_TIMEZONE``, else ``BABEL_DEFAULT_TIMEZONE``."""
    return str(config["METRICS_TIMEZONE"] or config["BABEL_DEFAULT_TIMEZONE"])


def compute_for_args(args: Any) -> MetricsResult:
    """Parse request arguments / CLI options and compute: the one operation behind the API
    and ``closedloop metrics``. Refuses bad arguments with :class:`ScopeError`."""
    from flask import current_app

    query = parse_metrics_args(args, timezone=metrics_timezone(current_app.config))
    return compute(query.scope, query.group_by, query.grain)


def init_app(app: Flask) -> None:
    """Register ``GET /api/v1/metrics``, ``closedloop metrics`` and
    the job that keeps the roll-ups current (:mod:`analysis.metrics.rollup`)."""
    from survey_app.background import register_job
    from survey_app.demo import demo_seeded

    from . import rollup_tables, tasks  # noqa: F401  (rollup_tables: so Alembic sees them)
    from .api import bp
    from .cli import metrics_command

    app.register_blueprint(bp)
    app.cli.add_command(metrics_command)
    app.add_template_filter(kpi_label, "kpi_label")
    app.add_template_filter(_describe_scope, "scope_label")
    app.add_template_filter(_dimension_value_label, "dimension_value")
    register_job(app, "refresh-metrics", tasks.refresh_rollups_task.name, _refresh_rollups)
    demo_seeded.connect(_build_demo_rollups, sender=app)


def _describe_scope(filters: Any) -> str:
    from .catalog import describe_scope

    return describe_scope(filters)


def _dimension_value_label(value: Any, name: str) -> str:
    from .catalog import dimension_value_label

    return dimension_value_label(value, name)


def kpi_label(name: str) -> str:
    """A KPI's label from the catalogue (the name itself when unknown); the ``kpi_label``
    template filter."""
    from .catalog import KPI_LABELS

    label = KPI_LABELS.get(name)
    return str(label) if label is not None else name


def _refresh_rollups() -> int:
    """The ``refresh-metrics`` job (numpy loads with the roll-ups, on first use)."""
    from .rollup import refresh

    return refresh()


def _build_demo_rollups(sender: Flask, **_: Any) -> str:
    """The metrics part of ``closedloop demo``: build the roll-ups of the demo data at once."""
    from .rollup import rebuild

    return f"KPI roll-ups: {rebuild()} days built."
