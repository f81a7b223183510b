"""Error pages: JSON for the API, plain HTML pages for people, never a stack trace."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db


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
        return render_template("errors/error.html", code=code, message=None), code

    @app.errorhandler(InternalServerError)
    def server_error(error: InternalServerError):
        db.session.rollback()
        if wants_json():
            return api_error(500, "internal_error", "An unexpected error occurred.")
        return render_template("errors/error.html", code=500, message=None), 500
