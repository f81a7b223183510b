"""Sign-in, sign-out, language switch and the account page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from ..extensions import db
from ..ratelimit import limiter, login_limit
from .forms import AccountForm, LanguageForm, LoginForm
from .services import authenticate

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only follow ``next`` to a path on this site."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
            and "\\" not in target
        ):
            return target
    return url_for("staff.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"], scope="login")
def login() -> Response | str | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(url_for("staff.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(
            form.email.data or "", form.password.data or "", request.remote_addr or "-"
        )
        db.session.commit()
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash(
            _(
                "Sign-in failed: wrong e-mail or password. After several failures "
                "sign-in is paused for a few minutes."
            ),
            "error",
        )
        return render_template("auth/login.html", form=form), 401
    status = 400 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    # Server-side: the session cookie, even if copied before, no longer signs anyone in.
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def set_language() -> Response:
    form = LanguageForm()
    if form.validate_on_submit():
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            current_user.language = form.lang.data
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Response | str | tuple[str, int]:
    form = AccountForm(obj=current_user)
    if request.method == "GET":
        form.language.data = current_user.language or ""
    if form.validate_on_submit():
        if form.new_password.data and not current_user.check_password(
            form.current_password.data or ""
        ):
            form.current_password.errors = [_("The current password is not right.")]
            return render_template("auth/account.html", form=form), 400
        current_user.name = (form.name.data or "").strip()
        current_user.language = form.language.data or None
        if form.new_password.data:
            current_user.set_password(form.new_password.data)
        db.session.commit()
        if form.new_password.data:
            # Other sessions end with the old password; this one continues.
            login_user(current_user._get_current_object())
        flash(_("Your account has been saved."), "success")
        return redirect(url_for("auth.account"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/account.html", form=form), status
