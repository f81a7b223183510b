"""Ticket intake: the signed webhook, file import and the shared apply operation."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from .api import bp

    app.register_blueprint(bp)
