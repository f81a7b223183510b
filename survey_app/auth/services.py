"""Account operations shared by the web UI and the CLI."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, select

from ..extensions import db
from ..models import Role, SignInThrottle, User
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


class NotACommonPassword:
    """WTForms validator: refuse a password :func:`password_problem` finds fault with."""

    def __call__(self, form: object, field: object) -> None:
        from wtforms.validators import ValidationError

        value = getattr(field, "data", None)
        problem = password_problem(value) if value else None
        if problem is not None:
            raise ValidationError(problem)


def password_validators() -> list[Any]:
    """The WTForms validators of every field that sets a password."""
    from wtforms.validators import Length

    return [Length(min=MIN_PASSWORD_LENGTH, max=200), NotACommonPassword()]


def check_password_strength(password: str) -> None:
    """Refuse (:class:`AccountError`) a password :func:`password_problem` finds fault with."""
    problem = password_problem(password)
    if problem is not None:
        raise AccountError(problem)


def authenticate(email: str, password: str, address: str = "-") -> User | None:
    """Return the user if the credentials are right and the account may sign in.

    Counts failures per account and client ``address``; after
    ``LOGIN_MAX_FAILURES`` that pair is paused for ``LOGIN_LOCKOUT_MINUTES``
    (correct passwords from that address are refused meanwhile; other addresses
    are not affected, so nobody can lock someone else out). The caller shows
    one generic message whatever the reason, so nobody learns which e-mails
    have accounts.
    """
    user = find_user(email)
    if user is None:
        # Spend the same time as a real check so timing does not reveal accounts.
        User(password_hash=_dummy_hash()).check_password(password)
        return None
    now = utcnow()
    throttle = db.session.scalar(
        select(SignInThrottle).where(
            SignInThrottle.user_id == user.id, SignInThrottle.address == address
        )
    )
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        # Check anyway: a refusal without the hash's delay would tell that the account exists.
        user.check_password(password)
        return None
    if not user.check_password(password) or not user.active:
        if throttle is None:
            throttle = SignInThrottle(user_id=user.id, address=address, failures=0)
            db.session.add(throttle)
        throttle.failures += 1
        throttle.locked_until = None
        if throttle.failures >= current_app.config["LOGIN_MAX_FAILURES"]:
            throttle.locked_until = now + timedelta(
                minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"]
            )
            throttle.failures = 0
        db.session.flush()
        return None
    if throttle is not None:
        db.session.delete(throttle)
    user.last_login_at = now
    db.session.flush()
    return user


def clear_sign_in_pauses(user: User) -> None:
    """Forget every failed sign-in and pause of ``user`` (an admin's "unlock")."""
    db.session.execute(delete(SignInThrottle).where(SignInThrottle.user_id == user.id))


@cache
def _common_passwords() -> frozenset[str]:
    text = (Path(__file__).parent / "common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be used (translated), or None.

    Too short (``MIN_PASSWORD_LENGTH``), or one of the few thousand passwords
    that attackers try first (``common_passwords.txt``, compared case-insensitively).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return _(
            "The password must have at least %(count)s characters.", count=MIN_PASSWORD_LENGTH
        )
    if password.strip().lower() in _common_passwords():
        return _("This password is among the most common ones; choose another.")
    return None


_DUMMY_HASHES: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash made with the configured method, so checking it costs what a real check costs."""
    from werkzeug.security import generate_password_hash

    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash("not-a-real-password", method=method)
    return _DUMMY_HASHES[method]
