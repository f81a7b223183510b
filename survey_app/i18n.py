"""Language selection: the user's setting, then the session's choice, then Accept-Language."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user

from .extensions import babel

TRANSLATIONS = Path(__file__).parent / "translations"


def normalise_locale(value: str | None) -> str | None:
    """Map a language tag (``zh-CN``, ``zh_Hans``, ``en-US``...) to a supported locale or None."""
    if not value:
        return None
    tag = value.strip().replace("-", "_").lower()
    if tag.startswith("zh"):
        return "zh_Hans"
    if tag.startswith("en"):
        return "en"
    return None


def select_locale() -> str:
    """Return the locale for the current request (the default outside one, e.g. the CLI)."""
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated and current_user.language:
        return current_user.language
    chosen = normalise_locale(session.get("lang"))
    if chosen:
        return chosen
    # A page may know the reader's language (a survey knows its customer's).
    hinted = normalise_locale(g.get("locale_hint"))
    if hinted:
        return hinted
    for tag, _quality in request.accept_languages:
        locale = normalise_locale(tag)
        if locale:
            return locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def init_app(app: Flask) -> None:
    from . import dates

    if app.config["BABEL_TRANSLATION_DIRECTORIES"] is None:
        app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    babel.init_app(app, locale_selector=select_locale)
    dates.init_app(app)

    @app.context_processor
    def inject_languages() -> dict[str, object]:
        locale = str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"])
        return {
            "languages": app.config["LANGUAGES"],
            "current_locale": locale,
            "html_lang": html_lang(locale),
        }


def html_lang(locale: str) -> str:
    """The BCP 47 tag for a locale, for ``<html lang>``: ``zh_Hans`` -> ``zh-Hans``."""
    return locale.replace("_", "-")
