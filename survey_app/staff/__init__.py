"""Staff pages of the application shell: home, tickets, user administration."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from .routes import bp

    app.register_blueprint(bp)
