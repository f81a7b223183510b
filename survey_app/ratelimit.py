"""Rate limits on what the internet can reach without an account: survey pages, webhook.

Flask-Limiter, per client address (the real one behind ``TRUSTED_PROXIES``),
fixed windows. The limits are generous on purpose: a corporate network puts many
customers behind one address, and one customer's survey takes two or three
requests, so ``RATELIMIT_SURVEY`` (default 600 a minute) lets some 200 people in
one office answer in the same minute. ``RATELIMIT_WEBHOOK`` (default 1200 a
minute) leaves room for a helpdesk replaying a backlog. Staff pages are not
limited here (sign-in has its own lockout).

Counters live in ``RATELIMIT_STORAGE_URI`` (``CLOSEDLOOP_RATELIMIT_STORAGE_URI``);
left unset, in Redis when the Celery broker is Redis, else in process memory (per
instance and per worker: fine for one machine, use Redis behind a load balancer).
When Redis fails, each instance counts in its own memory until Redis is back
(``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``), and any other storage error lets the
request through (``RATELIMIT_SWALLOW_ERRORS``): an outage of Redis must not stop
customers from answering.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, key_prefix="closedloop")


def survey_limit() -> str:
    """The limit on the customer's survey pages (``RATELIMIT_SURVEY``)."""
    return str(current_app.config["RATELIMIT_SURVEY"])


def webhook_limit() -> str:
    """The limit on ``POST /api/v1/ticket-events`` (``RATELIMIT_WEBHOOK``)."""
    return str(current_app.config["RATELIMIT_WEBHOOK"])


def storage_uri(app: Flask) -> str:
    """Where counters live: the configured URI, else a Redis broker, else ``memory://``."""
    configured = app.config.get("RATELIMIT_STORAGE_URI")
    if configured:
        return str(configured)
    broker = str(app.config.get("CELERY_BROKER_URL") or "")
    if broker.startswith(("redis://", "rediss://", "redis+socket://")):
        return broker
    return "memory://"


def init_app(app: Flask) -> None:
    """Bind the limiter and put the survey and webhook limits on their views."""
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri(app)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)


def limit_survey_pages(blueprint: object) -> None:
    """Apply the survey limit to every route of ``blueprint`` (shared by all its pages)."""
    limiter.limit(survey_limit, scope="survey")(blueprint)
