"""Error pages: JSON for the API, plain HTML pages for people, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from .database import first_line
from .extensions import db
from .logs import loggable_path

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait when the database is unreachable (``Retry-After``).
RETRY_AFTER_SECONDS = 5


def wants_json() -> bool:
    return request.path.startswith("/api/")


def api_error(status: int, code: str, message: str, **extra: object):
    """Return the JSON error body every API endpoint uses: ``{"error": {...}}``."""
    body = {"code": code, "message": message, **extra}
    response = jsonify(error=body)
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        if wants_json():
            return api_error(400, "csrf_failed", error.description)
        message = _("The form expired or was sent from another page. Please try again.")
        return render_template("errors/error.html", code=400, message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if isinstance(error, InternalServerError):
            return server_error(error)
        code = error.code or 500
        if wants_json():
            return api_error(code, error.name.lower().replace(" ", "_"), error.description or "")
        message = None
        if code == 429:
            message = _("Too many attempts from your address. Please wait a minute and try again.")
        return render_template("errors/error.html", code=code, message=message), code

    @app.errorhandler(InternalServerError)
    def server_error(error: InternalServerError):
        db.session.rollback()
        if wants_json():
            return api_error(500, "internal_error", "An unexpected error occurred.")
        return render_template("errors/error.html", code=500, message=None), 500

    @app.errorhandler(OperationalError)
    def database_unavailable(error: OperationalError):
        """The database is restarting, unreachable or too busy: 503, try again shortly.

        The request's transaction is rolled back whole, so nothing is half-written:
        a customer's answers or a helpdesk's webhook are simply sent again. One
        log line, no traceback: the cause is the database's, not a bug here.
        """
        note_database_unavailable(error)
        if wants_json():
            response = api_error(
                503, "database_unavailable", "The database is unavailable; retry shortly."
            )
        elif request.blueprint == "survey":
            response = app.make_response(
                (render_template("surveys/link_error.html", reason="other", code=503), 503)
            )
        else:
            # Not errors/error.html, and no context processors: they ask the database
            # for the signed-in user (and so the language).
            page = app.jinja_env.get_template("errors/unavailable.html").render()
            response = app.make_response((page, 503))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def note_database_unavailable(error: OperationalError) -> None:
    """Roll the request's work back and log one line (no traceback) before a 503."""
    _rollback_quietly()
    log.warning(
        "database unavailable, answered 503: %s %s: %s",
        request.method, loggable_path(request.path), first_line(error),
    )  # fmt: skip


def _rollback_quietly() -> None:
    """Roll the session back; if even that fails (connection gone), drop the connection."""
    try:
        db.session.rollback()
    except OperationalError:
        db.session.close()
