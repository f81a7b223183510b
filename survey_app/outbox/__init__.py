"""The development outbox: outgoing mail kept as files, read by admins in the app.

With ``MAIL_BACKEND = "outbox"`` (what ``make run`` uses), :func:`survey_app.outbound.send_mail`
writes each message to ``<instance>/outbox/`` instead of connecting to an SMTP server
(:mod:`.store`), and admins read them at ``/admin/outbox`` (:mod:`.routes`). With the
default ``"smtp"`` nothing of this is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

#: The values ``MAIL_BACKEND`` may take.
MAIL_BACKENDS = ("smtp", "outbox")


def mail_backend(config: Mapping[str, Any]) -> str:
    """The configured mail backend, normalised: ``"smtp"`` or ``"outbox"`` when valid."""
    return str(config["MAIL_BACKEND"]).strip().lower()


def outbox_enabled(config: Mapping[str, Any]) -> bool:
    """Whether outgoing mail goes to the outbox instead of an SMTP server."""
    return mail_backend(config) == "outbox"


def init_app(app: Flask) -> None:
    """Check ``MAIL_BACKEND``; with the outbox, register its pages.

    Refuses (:class:`survey_app.ConfigError`) a value other than ``smtp`` or ``outbox``:
    a typo must not silently send real mail, nor silently keep it.
    """
    from .. import ConfigError

    backend = mail_backend(app.config)
    if backend not in MAIL_BACKENDS:
        raise ConfigError(
            f"MAIL_BACKEND must be one of {', '.join(MAIL_BACKENDS)}, not {backend!r}."
        )
    app.config["MAIL_BACKEND"] = backend
    if backend == "outbox":
        from .routes import bp

        app.register_blueprint(bp)
