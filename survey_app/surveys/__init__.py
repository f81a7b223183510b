"""Surveys: templates, invitation policy and delivery, the customer's survey pages."""

from __future__ import annotations

from flask import Flask


def _dispatch() -> object:
    from .invitations import dispatch_due

    return dispatch_due()


def init_app(app: Flask) -> None:
    from ..background import register_job
    from ..extensions import mail
    from .admin import bp as admin_bp
    from .published import question_html
    from .routes import bp

    mail.init_app(app)
    register_job(app, "dispatch-surveys", "survey_app.tasks.dispatch_surveys", _dispatch)
    app.register_blueprint(bp)
    app.register_blueprint(admin_bp)
    app.add_template_global(question_html, "survey_question")
