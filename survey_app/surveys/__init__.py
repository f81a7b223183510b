"""Surveys: templates, invitation policy and delivery, the customer's survey pages."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ..extensions import mail
    from .admin import bp as admin_bp
    from .routes import bp

    mail.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(admin_bp)
