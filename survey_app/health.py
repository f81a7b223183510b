"""Health endpoints for load balancers and orchestrators.

``GET /healthz`` answers 200 while the process serves requests (liveness: it
touches nothing else). ``GET /readyz`` answers 200 when the database runs a
``SELECT 1`` within ``READINESS_TIMEOUT_SECONDS``, else 503. When
``CELERY_BROKER_URL`` is set the broker is checked too, but an unreachable
broker only makes the status ``degraded`` (still 200): every instance shares the
one broker and serves customers without it (enqueues fall back to the periodic
jobs), so a load balancer must not take them all out; alert on the body. The
body names a failed check's exception class only; the details go to the log,
so no host name or path reaches the public.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text
from werkzeug.wrappers import Response

from .extensions import db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process is up. Never touches the database or the broker."""
    response = jsonify(status="ok")
    response.cache_control.no_store = True
    return response


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: 200 ``ready`` or ``degraded`` (broker down), 503 ``not_ready`` (database)."""
    checks = {"database": _timed(check_database)}
    if current_app.config["CELERY_BROKER_URL"]:
        checks["broker"] = _timed(check_broker)
    ready = checks["database"]["ok"]
    status = "not_ready" if not ready else "ready"
    if ready and not all(check["ok"] for check in checks.values()):
        status = "degraded"
    response = jsonify(status=status, checks=checks)
    response.cache_control.no_store = True
    return response, 200 if ready else 503


def check_database() -> None:
    """Run ``SELECT 1`` on a fresh pool connection; raise what the driver raises."""
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def check_broker() -> None:
    """Open (and close) a connection to the Celery broker; raise when it is unreachable.

    One attempt, bounded by ``READINESS_TIMEOUT_SECONDS`` (no retry loop).
    """
    from kombu import Connection

    timeout = float(current_app.config["READINESS_TIMEOUT_SECONDS"])
    with Connection(current_app.config["CELERY_BROKER_URL"], connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means "not ready", whatever raised it
        log.warning("readiness check %s failed: %s", check.__name__, exc)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
