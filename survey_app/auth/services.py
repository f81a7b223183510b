"""Account operations shared by the web UI and the CLI."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..extensions import db
from ..models import Role, User
from ..types import utcnow

MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message says why."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def create_user(email: str, password: str, role: Role | str, name: str = "") -> User:
    """Create a staff account and flush it.

    Refuses (:class:`AccountError`) an e-mail that is taken or invalid, an
    unknown role, or a password shorter than ``MIN_PASSWORD_LENGTH``.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(_("Invalid e-mail address: %(reason)s", reason=str(exc))) from None
    try:
        role = Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise AccountError(
            _("Unknown role %(role)s; choose one of %(choices)s.", role=role, choices=choices)
        ) from None
    check_password_strength(password)
    if find_user(email) is not None:
        raise AccountError(_("A user with e-mail %(email)s already exists.", email=email))
    user = User(email=email, role=role, name=name.strip())
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def check_password_strength(password: str) -> None:
    """Refuse passwords shorter than ``MIN_PASSWORD_LENGTH`` characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            _("The password must have at least %(count)s characters.", count=MIN_PASSWORD_LENGTH)
        )


def authenticate(email: str, password: str) -> User | None:
    """Return the user if the credentials are right and the account may sign in.

    Counts failures; after ``LOGIN_MAX_FAILURES`` the account is paused for
    ``LOGIN_LOCKOUT_MINUTES`` (correct passwords are refused meanwhile). The
    caller shows one generic message whatever the reason, so nobody learns
    which e-mails have accounts.
    """
    user = find_user(email)
    if user is None:
        # Spend the same time as a real check so timing does not reveal accounts.
        User(password_hash=_dummy_hash()).check_password(password)
        return None
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        # Check anyway: a refusal without the hash's delay would tell that the account exists.
        user.check_password(password)
        return None
    if not user.check_password(password) or not user.active:
        user.failed_logins += 1
        if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
            user.locked_until = now + timedelta(
                minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"]
            )
            user.failed_logins = 0
        db.session.flush()
        return None
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.flush()
    return user


_DUMMY_HASHES: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash made with the configured method, so checking it costs what a real check costs."""
    from werkzeug.security import generate_password_hash

    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash("not-a-real-password", method=method)
    return _DUMMY_HASHES[method]
