"""gunicorn settings for production::

    gunicorn -c python:survey_app.gunicorn_conf "survey_app:create_app()"

Environment (all optional):

``CLOSEDLOOP_BIND``     address to listen on (default ``127.0.0.1:8000``; the reverse
                        proxy talks to it)
``CLOSEDLOOP_WORKERS``  worker processes (default ``2 × cores + 1``)
``CLOSEDLOOP_THREADS``  threads per worker (default 1: sync workers; more: gthread)
``CLOSEDLOOP_TIMEOUT``  seconds before a silent worker is restarted (default 60)

``preload_app``: the app (and whatever it imports) is built once in the master and
shared copy-on-write by the workers; each worker then drops the database
connections inherited from the master, so no two processes share a socket. The
access log is the app's own (one line per request with its request id, see
:mod:`survey_app.logs`), so gunicorn's is off. Periodic jobs do not run here: use
Celery beat or cron ``closedloop jobs run`` (see the README, "Production").
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

bind = os.environ.get("CLOSEDLOOP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CLOSEDLOOP_WORKERS") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("CLOSEDLOOP_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("CLOSEDLOOP_TIMEOUT") or 60)
graceful_timeout = 30
keepalive = 5
preload_app = True
accesslog = None
errorlog = "-"
# Only the app's ProxyFix reads X-Forwarded-*, trusting exactly TRUSTED_PROXIES hops.
# gunicorn trusts no address and no scheme header itself: before, any local client
# could send X-Forwarded-Proto: https and be taken for https when no proxy was set.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}


def post_fork(_server: Any, worker: Any) -> None:
    """Drop the pooled database connections the worker inherited from the master."""
    from survey_app.extensions import db

    app = worker.app.wsgi()  # the preloaded Flask app
    with app.app_context():
        db.engine.dispose(close=False)
