"""Logs: one line per event on stderr, JSON or text, each carrying the request id.

``LOG_FORMAT`` is ``text`` (default) or ``json`` (one object per line, for a log
shipper); ``LOG_LEVEL`` defaults to ``INFO``. Every request gets an id: the
proxy's ``X-Request-ID`` when it is a plausible one, otherwise a new random one.
It is echoed in the ``X-Request-ID`` response header and added to every log line
written while the request runs, including the one access line per request
(method, path, status, duration in milliseconds).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, g, has_request_context, request
from werkzeug.wrappers import Response

REQUEST_ID_HEADER = "X-Request-ID"
#: What a proxy's request id may look like; anything else is replaced (no log injection).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Marks the handler this module installs, so a second app replaces it instead of adding one.
_HANDLER_MARK = "_closedloop_handler"

access_log = logging.getLogger("survey_app.access")


class RequestIdFilter(logging.Filter):
    """Give every record a ``request_id`` attribute: the current request's, or ``-``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class _StderrHandler(logging.StreamHandler):
    """Write to whatever ``sys.stderr`` is at the time (a test may have swapped it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def make_formatter(log_format: str) -> logging.Formatter:
    """A JSON formatter (python-json-logger: timestamp, level, logger, message, request_id
    and any ``extra=`` fields) or a one-line text formatter with the request id."""
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    if log_format == "text":
        return logging.Formatter(
            "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
        )
    raise ValueError(f"LOG_FORMAT must be 'json' or 'text', not {log_format!r}")


def init_app(app: Flask) -> None:
    """Install the stderr handler on the root logger and the request-id hooks.

    Refuses (``ValueError``) a ``LOG_FORMAT`` other than ``json`` or ``text``.
    """
    formatter = make_formatter(str(app.config["LOG_FORMAT"]).lower())
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(str(app.config["LOG_LEVEL"]).upper())
    # Flask's own handler would print every app.logger line a second time.
    from flask.logging import default_handler

    app.logger.removeHandler(default_handler)
    app.before_request(_start_request)
    app.after_request(_finish_request)


#: The customer pages: ``/s/<token>...``. A token is a live single-use link (whoever
#: holds it can answer as the customer), so logs carry a digest of it instead.
_LINK_PATH = re.compile(r"^/s/([^/]+)")


def loggable_path(path: str) -> str:
    """``path`` with a survey link's token replaced by ``~`` and 12 hex digits of its SHA-256.

    The lines of one link still share the same digest, so they can be followed
    and matched to a link someone reports; the log itself opens no survey.
    """
    match = _LINK_PATH.match(path)
    if match is None:
        return path
    digest = hashlib.sha256(match.group(1).encode()).hexdigest()[:12]
    return f"/s/~{digest}{path[match.end() :]}"


def request_id() -> str:
    """The current request's id (``-`` outside a request)."""
    return g.get("request_id", "-") if has_request_context() else "-"


class DevServerRequestLines(logging.Filter):
    """Drops the development server's own request line (``"GET /s/<token> ..." 200 -``).

    It would print a survey link's token in full, with terminal colours, and
    repeat the one access line per request that ClosedLoop writes already (the
    token shown as a digest). Werkzeug's other messages (the address it serves
    on, errors) pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            isinstance(record.args, tuple)
            and len(record.args) == 3
            and str(record.msg).rstrip().endswith('"%s" %s %s')
        )


def hide_dev_server_request_lines() -> None:
    """Install :class:`DevServerRequestLines` on Werkzeug's logger (``closedloop run``)."""
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, DevServerRequestLines) for f in werkzeug_log.filters):
        werkzeug_log.addFilter(DevServerRequestLines())


def _start_request() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    rid = g.get("request_id")
    if rid is None:  # a before_request hook ended the request before ours ran
        _start_request()
        rid = g.request_id
    response.headers[REQUEST_ID_HEADER] = rid
    elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
    path = loggable_path(request.path)
    access_log.info(
        "%s %s %s",
        request.method,
        path,
        response.status_code,
        extra={
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": round(elapsed, 2),
            "remote_addr": request.remote_addr,
        },
    )
    return response
