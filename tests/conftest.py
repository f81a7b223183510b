"""Shared fixtures: one clean database per test, on SQLite (default) or PostgreSQL.

Set ``CLOSEDLOOP_TEST_DATABASE_URL=postgresql+psycopg://...`` to run the suite on
PostgreSQL. The schema is built once per session with the real migrations;
each test then gets a fresh copy (SQLite) or emptied tables (PostgreSQL).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, inspect, text

from survey_app import create_app
from survey_app.extensions import db
from survey_app.intake.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from survey_app.models import Role, User

TEST_DATABASE_URL = os.environ.get("CLOSEDLOOP_TEST_DATABASE_URL", "")
WEBHOOK_SECRET = "whsec-test-0123456789"
PASSWORD = "correct horse battery"


def is_postgres() -> bool:
    return TEST_DATABASE_URL.startswith("postgresql")


def _isolated_env(monkeypatch: pytest.MonkeyPatch, instance: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CLOSEDLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLOSEDLOOP_INSTANCE_PATH", str(instance))


def _migrate(url: str, instance: Path) -> None:
    import flask_migrate

    previous = os.environ.get("CLOSEDLOOP_INSTANCE_PATH")
    os.environ["CLOSEDLOOP_INSTANCE_PATH"] = str(instance)
    try:
        app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": url})
        with app.app_context():
            flask_migrate.upgrade()
            db.engine.dispose()
    finally:
        if previous is None:
            del os.environ["CLOSEDLOOP_INSTANCE_PATH"]
        else:
            os.environ["CLOSEDLOOP_INSTANCE_PATH"] = previous


def reset_postgres_schema(url: str) -> None:
    """Drop every object in the test database's public schema."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the schema once with ``db upgrade``; return the template's URL or path."""
    instance = tmp_path_factory.mktemp("template-instance")
    if is_postgres():
        reset_postgres_schema(TEST_DATABASE_URL)
        _migrate(TEST_DATABASE_URL, instance)
        return TEST_DATABASE_URL
    template = instance / "template.sqlite3"
    _migrate(f"sqlite:///{template}", instance)
    return str(template)


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        if tables:
            quoted = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(migrated_database: str, tmp_path: Path) -> Iterator[str]:
    """A clean, migrated database for this test only."""
    if is_postgres():
        _truncate_all(migrated_database)
        yield migrated_database
        return
    target = tmp_path / "test.sqlite3"
    shutil.copyfile(migrated_database, target)
    yield f"sqlite:///{target}"


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    Without this, requests made while a test holds an app context share its
    ``g`` (Flask-Login's user, Flask-Babel's locale) and its database session.
    The test's session is committed before the request, so the request sees
    what the test set up, and the test sees what the request wrote afterwards.
    """

    def open(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        if has_app_context():
            db.session.commit()
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response


@pytest.fixture
def make_app(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Flask]]:
    """Factory: build an app on this test's database with extra config."""
    instance = tmp_path / "instance"
    instance.mkdir()
    _isolated_env(monkeypatch, instance)
    built: list[Flask] = []

    def factory(**config: Any) -> Flask:
        settings = {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": database_url,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SERVER_NAME": "localhost",
            # Hashing strength is not under test; scrypt would make the suite minutes slower.
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        }
        settings.update(config)
        app = create_app(settings)
        app.test_client_class = IsolatedClient
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    application = make_app()
    with application.app_context():
        yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    """Factory: a staff user with ``PASSWORD``, committed."""
    counter = iter(range(1, 10_000))

    def factory(role: Role | str = Role.ANALYST, email: str | None = None, **fields: Any) -> User:
        role = Role(role)
        user = User(email=email or f"{role.value}{next(counter)}@example.com", role=role, **fields)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
        return user

    return factory


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client: FlaskClient) -> str:
    """Fetch a CSRF token bound to ``client``'s session from any page with a form."""
    page = client.get("/login").get_data(as_text=True)
    match = CSRF_RE.search(page)
    if match is None:  # signed in: /login redirects; the account page has a form
        page = client.get("/account").get_data(as_text=True)
        match = CSRF_RE.search(page)
    assert match, "no CSRF token found"
    return match.group(1)


class Auth:
    """Sign a test client in and out through the real forms."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, user_or_email: User | str, password: str = PASSWORD):
        email = user_or_email if isinstance(user_or_email, str) else user_or_email.email
        return self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_token(self.client)},
        )

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": csrf_token(self.client)})


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)


def event_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ``closed`` ticket event; nested keys via ``ticket=``/``customer=`` dicts."""
    payload: dict[str, Any] = {
        "event": "closed",
        "ticket": {
            "external_id": "T-1001",
            "subject": "Cannot log in",
            "channel": "chat",
            "priority": "P2",
            "category": "账号登录",
            "product_line": "云存储",
            "region": "华东",
            "team": "Frontline",
            "agent": "王芳",
            "created_at": "2026-11-01T09:00:00+08:00",
            "first_response_at": "2026-11-01T09:10:00+08:00",
            "resolved_at": "2026-11-01T11:00:00+08:00",
            "closed_at": "2026-11-01T12:00:00+08:00",
            "contact_count": 1,
        },
        "customer": {
            "external_id": "C-1",
            "name": "张三",
            "email": "zhang.san@example.com",
            "language": "zh-CN",
            "tier": "vip",
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(payload.get(key), dict):
            payload[key] = {**payload[key], **value}
        else:
            payload[key] = value
    return payload


class Webhook:
    """Send signed ticket events like a helpdesk would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secret: str = WEBHOOK_SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        stamp = int(time.time()) if timestamp is None else timestamp
        sent = {
            SIGNATURE_HEADER: sign(secret, stamp, body),
            TIMESTAMP_HEADER: str(stamp),
            "Content-Type": "application/json",
        }
        sent.update(headers or {})
        return self.client.post("/api/v1/ticket-events", data=body, headers=sent)


@pytest.fixture
def webhook(client: FlaskClient) -> Webhook:
    return Webhook(client)


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yield its base URL."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI needs /usr/bin/chromium for the browser tests (make browser)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-US")
    yield context.new_page()
    context.close()


class Mailbox:
    """Messages received by the in-process SMTP server, parsed."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        message.envelope_recipients = list(envelope.rcpt_tos)  # type: ignore[attr-defined]
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on a free loopback port: ``(host, port, mailbox)``."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def mail_app(
    make_app: Callable[..., Flask], smtp_server: tuple[str, int, Mailbox]
) -> Iterator[Flask]:
    """An app whose mail goes to ``smtp_server``, with its app context pushed."""
    host, port, _mailbox = smtp_server
    application = make_app(
        MAIL_SERVER=host, MAIL_PORT=port, MAIL_DEFAULT_SENDER="feedback@example.com"
    )
    with application.app_context():
        yield application


@pytest.fixture
def mailbox(smtp_server: tuple[str, int, Mailbox]) -> Mailbox:
    return smtp_server[2]
