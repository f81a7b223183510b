"""Staff accounts: sign-in, sign-out, roles, the account page."""

from __future__ import annotations

from flask import Flask

from ..extensions import db, login_manager
from ..models import User


def init_app(app: Flask) -> None:
    from .routes import bp

    app.register_blueprint(bp)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"

    from flask_babel import lazy_gettext

    login_manager.login_message = lazy_gettext("Please sign in to see this page.")

    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        user_id, _sep, _stamp = session_id.partition(":")
        if not user_id.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        # A password change invalidates every other session of that user.
        if user is None or user.get_id() != session_id:
            return None
        return user
