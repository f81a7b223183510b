"""ClosedLoop application shell: the factory, configuration and core models.

``create_app`` is the only entry point; nothing heavy happens at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from .config import PLACEHOLDER_SECRET_KEYS, PLACEHOLDER_WEBHOOK_SECRETS, DefaultConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_FOLDER = PROJECT_ROOT / "templates"


class ClosedLoopFlask(Flask):
    """Flask, logging an unhandled exception without a survey link's token in the path."""

    def log_exception(self, exc_info: Any) -> None:
        from flask import request

        from .logs import loggable_path

        path = loggable_path(request.path)
        self.logger.error(f"Exception on {path} [{request.method}]", exc_info=exc_info)


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says which setting and what to do."""


class InsecureConfigError(ConfigError):
    """Raised when the app would serve real traffic with an empty or placeholder secret key."""


def running_app() -> Flask:
    """The application behind ``current_app`` (for signal senders and threads)."""
    from flask import current_app

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


def instance_path() -> Path:
    """Return the instance folder: ``CLOSEDLOOP_INSTANCE_PATH`` or ``<project>/instance``."""
    configured = os.environ.get("CLOSEDLOOP_INSTANCE_PATH")
    return Path(configured).resolve() if configured else PROJECT_ROOT / "instance"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the ClosedLoop application.

    Configuration is layered: defaults, then ``instance/config.py`` (optional),
    then ``CLOSEDLOOP_*`` environment variables, then ``test_config``.
    Refuses (:class:`InsecureConfigError`) to build a non-debug, non-testing
    app with an empty or placeholder ``SECRET_KEY``, and (:class:`ConfigError`) an
    unknown ``MAIL_BACKEND``.
    """
    app = ClosedLoopFlask(
        __name__,
        instance_path=str(instance_path()),
        instance_relative_config=True,
        template_folder=str(TEMPLATE_FOLDER),
    )
    from .routing import IdConverter

    # Before any route exists: every <int:...> in every blueprint is an id.
    app.url_map.converters["int"] = IdConverter
    app.config.from_object(DefaultConfig)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("CLOSEDLOOP")
    if test_config is not None:
        app.config.from_mapping(test_config)

    _check_secret_key(app)
    _configure_database(app)

    from . import (
        auth,
        database,
        errors,
        health,
        i18n,
        intake,
        labels,
        logs,
        outbox,
        ratelimit,
        security,
        staff,
        surveys,
    )
    from .background import register_job
    from .extensions import csrf, db, login_manager, migrate
    from .tasks import celery_init_app

    # First, so its request id and timer wrap every other hook (the rate limiter's too).
    logs.init_app(app)
    security.init_app(app)
    ratelimit.init_app(app)
    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    i18n.init_app(app)
    labels.init_app(app)
    errors.init_app(app)
    health.init_app(app)
    auth.init_app(app)
    intake.init_app(app)
    staff.init_app(app)
    outbox.init_app(app)
    celery_init_app(app)
    register_job(app, "analyse-database", "survey_app.tasks.analyse_database", _analyse_database)
    surveys.init_app(app)

    from analysis import init_app as init_analysis
    from improvement import init_app as init_improvement

    init_analysis(app)
    init_improvement(app)

    from . import cli

    cli.init_app(app)
    return app


def _analyse_database() -> str:
    """The ``analyse-database`` job: SQLite's planner statistics as the data grows."""
    from flask import current_app

    from .statistics import analyse_if_due

    return analyse_if_due(int(current_app.config["SQLITE_ANALYSE_MIN_ROWS"]))


def _check_secret_key(app: Flask) -> None:
    key = app.config["SECRET_KEY"]
    if key is not None and not isinstance(key, str | bytes):
        # CLOSEDLOOP_SECRET_KEY=123456 arrives JSON-parsed as an int.
        key = app.config["SECRET_KEY"] = str(key)
    if (not key or key in PLACEHOLDER_SECRET_KEYS) and not (app.debug or app.testing):
        raise InsecureConfigError(
            "ClosedLoop refuses to start with an empty or placeholder SECRET_KEY. "
            "Run `closedloop init` to write instance/config.py with a random key, "
            "or set the environment variable CLOSEDLOOP_SECRET_KEY to a long random "
            "string (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)."
        )
    webhook_secret = app.config["WEBHOOK_SECRET"]
    if webhook_secret is not None and not isinstance(webhook_secret, str):
        webhook_secret = app.config["WEBHOOK_SECRET"] = str(webhook_secret)
    if webhook_secret in PLACEHOLDER_WEBHOOK_SECRETS and not (app.debug or app.testing):
        raise InsecureConfigError(
            "ClosedLoop refuses to start with the example WEBHOOK_SECRET: anybody could sign "
            "ticket events. Set CLOSEDLOOP_WEBHOOK_SECRET (or WEBHOOK_SECRET in "
            "instance/config.py) to a long random string, or remove it to turn the webhook off."
        )


def _configure_database(app: Flask) -> None:
    url = app.config["DATABASE_URL"]
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        url = "sqlite:///" + str(Path(app.instance_path) / "closedloop.sqlite3")
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    if url.startswith("postgresql"):
        options.setdefault("pool_pre_ping", True)
        # An unreachable server fails /readyz and requests in seconds, not a TCP timeout.
        # No JIT: the KPI queries are short aggregates over many columns, which PostgreSQL
        # would compile for 50–200 ms each, longer than they run (benchmarks/metrics_bench.py).
        options["connect_args"] = {
            "connect_timeout": 5,
            "options": "-c jit=off",
            **options.get("connect_args", {}),
        }
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
