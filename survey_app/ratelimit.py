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

import threading
import time

from flask import Blueprint, Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import MemoryStorage

limiter = Limiter(key_func=get_remote_address, key_prefix="closedloop")


class SweepingMemoryStorage(MemoryStorage):
    """``memory://`` counters without a thread per hit (replaces limits' class for ``memory``).

    limits' ``MemoryStorage`` drops expired counters from a ``threading.Timer``
    of 10 ms that it starts again after almost every hit: under load, a new
    thread every 10 ms in every worker, some 6 % of a survey request's CPU
    (py-spy on ``benchmarks/load_test.py``). Reads already ignore an expired
    counter, so the sweep here runs inline, at most once every
    ``SWEEP_SECONDS``. Registered for the ``memory`` scheme, so Flask-Limiter's
    in-memory fallback (Redis down) uses it too.
    """

    STORAGE_SCHEME = ["memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.timer.cancel()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802  (the parent's private hook)
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + self.SWEEP_SECONDS
            # The parent's private sweep; limits ships no annotation for it.
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweep_lock.release()


def survey_limit() -> str:
    """The limit on the customer's survey pages (``RATELIMIT_SURVEY``)."""
    return str(current_app.config["RATELIMIT_SURVEY"])


def login_limit() -> str:
    """The limit on sign-in attempts per client address (``RATELIMIT_LOGIN``)."""
    return str(current_app.config["RATELIMIT_LOGIN"])


def webhook_limit() -> str:
    """The limit on ``POST /api/v1/ticket-events`` (``RATELIMIT_WEBHOOK``)."""
    return str(current_app.config["RATELIMIT_WEBHOOK"])


def storage_uri(app: Flask) -> str:
    """Where counters live: the configured URI, else a Redis broker, else ``memory://``."""
    configured = app.config["RATELIMIT_STORAGE_URI"]
    if configured:
        return str(configured)
    broker = str(app.config["CELERY_BROKER_URL"] or "")
    if broker.startswith(("redis://", "rediss://", "redis+socket://")):
        return broker
    return "memory://"


def init_app(app: Flask) -> None:
    """Bind the limiter and put the survey and webhook limits on their views."""
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri(app)
    limiter.init_app(app)


def limit_survey_pages(blueprint: Blueprint) -> None:
    """Apply the survey limit to every route of ``blueprint`` (shared by all its pages)."""
    limiter.limit(survey_limit, scope="survey")(blueprint)
