"""Root-cause cases: low feedback becomes a case, cases link to root causes, analysed as data.

Settings (``instance/config.py`` or ``CLOSEDLOOP_*`` variables, JSON-parsed):

- ``ROOT_CAUSE_RULE``: the low-feedback rule (see :mod:`.rules`), default
  ``{"nps_max": 6, "csat_max": 2, "negative_sentiment": true}``;
- ``CALLBACK_DAYS``: days after the ticket's resolution to call the customer back (7);
- ``FISHBONE_CATEGORIES``: the categories a why can be tagged with, in display order
  (people, process, technology, management, environment, measurement).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from .rules import LowFeedbackRule, RuleConfigError


def init_app(app: Flask) -> None:
    """Check the settings, register the models, pages, commands, receivers and demo part.

    Raises :class:`RuleConfigError` for a bad ``ROOT_CAUSE_RULE``,
    ``CALLBACK_DAYS`` or ``FISHBONE_CATEGORIES``.
    """
    from analysis.signals import response_analysed

    # models: so Alembic sees the tables; the two route modules: their views join bp.
    from . import case_routes, labels, models, root_cause_routes  # noqa: F401
    from .blueprint import bp
    from .cli import cases_cli
    from .queue import cases_for_ticket

    app.extensions["closedloop.root_cause_rule"] = LowFeedbackRule.from_config(
        app.config["ROOT_CAUSE_RULE"]
    )
    _check_settings(app.config)

    labels.init_app(app)
    app.register_blueprint(bp)
    app.add_template_global(cases_for_ticket, "cases_for_ticket")
    app.cli.add_command(cases_cli)
    response_analysed.connect(on_response_analysed, sender=app)


def _check_settings(config: Any) -> None:
    days = config["CALLBACK_DAYS"]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
        raise RuleConfigError("CALLBACK_DAYS must be a whole number of days, 1-90")
    categories = config["FISHBONE_CATEGORIES"]
    if (
        not isinstance(categories, list | tuple)
        or not categories
        or any(not isinstance(c, str) or not c.strip() or len(c) > 40 for c in categories)
        or len(set(categories)) != len(categories)
    ):
        raise RuleConfigError(
            "FISHBONE_CATEGORIES must be a non-empty list of distinct names of 1-40 characters"
        )


def on_response_analysed(sender: Flask, response_id: int, **_extra: Any) -> None:
    """Open a case if the analysed response is low feedback; commit.

    Runs where the analysis runs (worker, CLI, scheduler thread). A failure is
    logged and rolled back, never raised into the analysis: ``closedloop cases
    scan`` opens whatever was missed.
    """
    from survey_app.extensions import db

    from .cases import auto_open_case

    try:
        auto_open_case(response_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        sender.logger.exception(
            "could not apply the low-feedback rule to response %s", response_id
        )
