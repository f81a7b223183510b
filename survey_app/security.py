"""Serving behind a reverse proxy: security headers, secure cookies, static caching, ProxyFix.

A small ``after_request`` hook rather than Flask-Talisman (last released in 2023):
the policy is a few lines, and owning it keeps the CSP in step with what the
dashboards need. Every page is served from this origin: no inline script
(figures travel as ``<script type="application/json">`` data, which CSP does not
execute), plotly.js from the installed package, nothing from a CDN.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

#: The policy every response carries. ``style-src 'unsafe-inline'`` is for plotly.js,
#: which positions its SVG through ``style`` attributes and adds one ``<style>`` element
#: of its own; scripts stay strictly same-origin.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

#: Seconds a versioned static file (``?v=<content hash>``) may be cached: a year.
STATIC_IMMUTABLE_MAX_AGE = 365 * 24 * 3600


def init_app(app: Flask) -> None:
    """Install ProxyFix, secure cookie defaults, versioned static URLs and the headers hook.

    ``TRUSTED_PROXIES`` (default 0) is the number of reverse proxies in front of the
    app: ProxyFix then trusts that many ``X-Forwarded-For``/``-Proto``/``-Host`` values.
    ``SESSION_COOKIE_SECURE`` left at ``None`` becomes true when the app is served
    over https (``PREFERRED_URL_SCHEME`` or ``PUBLIC_URL``).
    """
    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    _secure_cookies(app)
    app.url_defaults(_version_static_urls)
    app.after_request(_security_headers)


def served_over_https(app: Flask) -> bool:
    """Whether the configuration says the app is reached over https."""
    return app.config["PREFERRED_URL_SCHEME"] == "https" or str(
        app.config["PUBLIC_URL"]
    ).startswith("https://")


def _secure_cookies(app: Flask) -> None:
    secure = app.config["SESSION_COOKIE_SECURE"]
    if secure is None:
        secure = app.config["SESSION_COOKIE_SECURE"] = served_over_https(app)
    if app.config["REMEMBER_COOKIE_SECURE"] is None:
        app.config["REMEMBER_COOKIE_SECURE"] = secure


def content_security_policy(app: Flask) -> str:
    """The ``Content-Security-Policy`` header value: defaults overlaid with ``CSP`` config."""
    directives = {**CONTENT_SECURITY_POLICY, **app.config["CSP"]}
    return "; ".join(f"{name} {value}" for name, value in directives.items() if value)


def _security_headers(response: Response) -> Response:
    from flask import current_app

    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(current_app))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    hsts = int(current_app.config["HSTS_SECONDS"])
    if hsts and request.is_secure:
        headers.setdefault("Strict-Transport-Security", f"max-age={hsts}")
    if request.endpoint == "static" and response.status_code in (200, 304):
        versioned = bool(request.args.get("v"))
        response.cache_control.no_cache = None
        response.cache_control.public = True
        response.cache_control.max_age = (
            STATIC_IMMUTABLE_MAX_AGE if versioned else int(current_app.config["STATIC_MAX_AGE"])
        )
        response.cache_control.immutable = versioned
        response.headers.pop("Expires", None)
    return response


def _version_static_urls(endpoint: str, values: dict) -> None:
    """Add ``v=<content hash>`` to every static URL, so the file may be cached for a year."""
    if endpoint != "static" or "filename" not in values or "v" in values:
        return
    from flask import current_app

    folder = current_app.static_folder
    if folder is None:
        return
    path = os.path.join(folder, values["filename"])
    try:
        stat = os.stat(path)
    except OSError:
        return
    values["v"] = _content_hash(path, stat.st_mtime_ns, stat.st_size)


@cache
def _content_hash(path: str, _mtime_ns: int, _size: int) -> str:
    # Keyed on mtime and size as well, so an edited file gets a new URL without a restart.
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:12]
