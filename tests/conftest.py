"""Shared fixtures: one app per test session, one clean database per test.

Set ``CLOSEDLOOP_TEST_DATABASE_URL=postgresql+psycopg://...`` to run the suite on
PostgreSQL. The schema is built once per session (per xdist worker) with the
real migrations.

How a test gets its clean database (see docs/development.md):

* **Shared app, rolled back** (the default). One app per session serves every
  test; each test runs inside an outer transaction on one connection, the
  app's own commits become SAVEPOINTs (``join_transaction_mode=
  "create_savepoint"``), and the outer transaction is rolled back at the end.
  Per-app state a test may touch (config, rate-limit counters, the published
  survey cache, the instance folder) is reset around every test. Apps built
  with ``make_app(**config)`` for a test of their own join the same
  transaction.
* **Real commits** (``@pytest.mark.real_db``, and every test that uses
  ``live_server`` or ``database_url``): the test gets a database of its own
  (a copy of the migrated SQLite template, or emptied PostgreSQL tables) and
  apps of its own, for work that commits across threads or processes (the
  browser's server thread, a Celery worker, concurrent submits, locking).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient, FlaskCliRunner
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from survey_app import create_app
from survey_app.extensions import db
from survey_app.intake.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from survey_app.models import Role, User

TEST_DATABASE_URL = os.environ.get("CLOSEDLOOP_TEST_DATABASE_URL", "")
WEBHOOK_SECRET = "whsec-test-0123456789"
PASSWORD = "correct horse battery"
SeedT = TypeVar("SeedT")

#: Fixtures whose tests commit across threads or processes: they get a real database.
REAL_DB_FIXTURES = frozenset({"live_server", "database_url"})


def is_postgres() -> bool:
    return TEST_DATABASE_URL.startswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that need a database of their own (see the module docstring)."""
    for item in items:
        if REAL_DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_db)


def _isolated_env(monkeypatch: pytest.MonkeyPatch, instance: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CLOSEDLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLOSEDLOOP_INSTANCE_PATH", str(instance))


def _settings(database_url: str, **config: Any) -> dict[str, Any]:
    settings = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SERVER_NAME": "localhost",
        # The tests' webhook receivers listen on loopback; tests/test_hardening.py checks
        # that internal destinations are refused with the default (False).
        "OUTBOUND_ALLOW_PRIVATE_NETWORKS": True,
        # Hashing strength is not under test; scrypt would make the suite minutes slower.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }
    settings.update(config)
    return settings


def _migrate(url: str, instance: Path) -> None:
    import flask_migrate

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CLOSEDLOOP_INSTANCE_PATH", str(instance))
        app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": url})
        with app.app_context():
            flask_migrate.upgrade()
            db.engine.dispose()


def reset_postgres_schema(url: str) -> None:
    """Drop every object in the test database's public schema."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def _postgres_worker_database(base_tmp: Path, instance: Path) -> str:
    """This worker's PostgreSQL database, migrated.

    Without xdist that is ``CLOSEDLOOP_TEST_DATABASE_URL`` itself. Under xdist the
    first worker migrates ``<name>_template`` (under a file lock) and every
    worker gets ``<name>_<worker>`` copied from it with ``CREATE DATABASE ... TEMPLATE``.
    """
    worker = _worker_id()
    if not worker:
        reset_postgres_schema(TEST_DATABASE_URL)
        _migrate(TEST_DATABASE_URL, instance)
        return TEST_DATABASE_URL
    url = make_url(TEST_DATABASE_URL)
    template = f"{url.database}_template"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with (base_tmp / "pg-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = base_tmp / "pg-template.done"
        if not marker.exists():
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{template}"'))
            _migrate(url.set(database=template).render_as_string(False), instance)
            marker.touch()
        name = f"{url.database}_{worker}"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(False)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the schema once with ``db upgrade``; return the URL (PostgreSQL) or template path."""
    instance = tmp_path_factory.mktemp("template-instance")
    if is_postgres():
        return _postgres_worker_database(tmp_path_factory.getbasetemp().parent, instance)
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
    """A clean, migrated database that this test may commit to from anywhere."""
    if is_postgres():
        _truncate_all(migrated_database)
        yield migrated_database
        _truncate_all(migrated_database)
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


def _build_app(**settings: Any) -> Flask:
    app = create_app(settings)
    app.test_client_class = IsolatedClient
    return app


@pytest.fixture(scope="session")
def shared_database_url(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database the shared app works on (tests never commit to it for real)."""
    if is_postgres():
        return migrated_database
    target = tmp_path_factory.mktemp("shared") / "shared.sqlite3"
    shutil.copyfile(migrated_database, target)
    return f"sqlite:///{target}"


class SharedApp:
    """The session's app and what a test may change on it, restored after each test."""

    def __init__(self, app: Flask) -> None:
        from survey_app.ratelimit import limiter

        self.app = app
        self.config = dict(app.config)
        self.extensions = dict(app.extensions)
        self.limiter_state = dict(vars(limiter))

    @staticmethod
    def _fresh(values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with plain containers copied, so a test's in-place change stays its own."""
        return {
            key: value.copy() if type(value) in (list, dict, set) else value
            for key, value in values.items()
        }

    def reset(self, instance: Path) -> None:
        from survey_app.ratelimit import limiter

        app = self.app
        app.config.clear()
        app.config.update(self._fresh(self.config))
        app.extensions.clear()
        app.extensions.update(self._fresh(self.extensions))
        app.instance_path = str(instance)
        # Flask-Limiter keeps its storage on the (global) limiter: the last app built wins.
        vars(limiter).update(self.limiter_state)
        limiter.reset()


@pytest.fixture(scope="session")
def _shared_app(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedApp]:
    instance = tmp_path_factory.mktemp("shared-instance")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolated_env(monkeypatch, instance)
        app = _build_app(**_settings(shared_database_url))
    yield SharedApp(app)
    with app.app_context():
        db.engine.dispose()


def _bound_session(connection: Connection) -> scoped_session[Session]:
    """A ``db.session`` whose commits are SAVEPOINTs inside ``connection``'s transaction."""
    return scoped_session(
        sessionmaker(bind=connection, join_transaction_mode="create_savepoint", class_=Session),
        scopefunc=_app_ctx_id,
    )


class _Seeded:
    """The transaction of :func:`seeded_transaction` that tests nest in, while one is open."""

    connection: Connection | None = None


@contextmanager
def seeded_transaction(
    shared: SharedApp, instance: Path, seed: Callable[[], SeedT]
) -> Iterator[SeedT]:
    """Run ``seed()`` once for a group of tests (a class-scoped fixture) and yield its result.

    The seed stays in an open transaction; each test of the group runs in a
    SAVEPOINT inside it that is rolled back when the test ends, and the whole
    transaction is rolled back after the group.
    """
    app = shared.app
    with app.app_context():
        engine = db.engine
    connection = engine.connect()
    outer = connection.begin()
    original = db.session
    try:
        db.session = _bound_session(connection)
        shared.reset(instance)
        with app.app_context():
            value = seed()
            db.session.commit()
        db.session = original
        _Seeded.connection = connection
        yield value
    finally:
        _Seeded.connection = None
        db.session = original
        outer.rollback()
        if is_postgres():
            _restart_sequences(connection)
        connection.close()
        shared.reset(instance)


@pytest.fixture
def _rolled_back(
    _shared_app: SharedApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """The shared app, reset; ``db.session`` joins a transaction rolled back at the end."""
    instance = tmp_path / "instance"
    instance.mkdir()
    _isolated_env(monkeypatch, instance)
    _shared_app.reset(instance)
    app = _shared_app.app
    connection = _Seeded.connection
    if connection is None:
        with app.app_context():
            connection = db.engine.connect()
        transaction = connection.begin()
    else:
        transaction = connection.begin_nested()
    original = db.session
    db.session = _bound_session(connection)
    try:
        yield app
    finally:
        # Each app context removed its own session when it was popped.
        db.session = original
        transaction.rollback()
        if _Seeded.connection is None:
            if is_postgres():
                _restart_sequences(connection)
            connection.close()
        _shared_app.reset(instance)


def _restart_sequences(connection: Any) -> None:
    """Sequences ignore rollbacks: start every one at 1 again, as on a fresh database."""
    connection.exec_driver_sql(
        "SELECT setval(c.oid::regclass, 1, false) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'S' AND n.nspname = 'public'"
    )
    connection.commit()


@pytest.fixture
def make_app(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Flask]]:
    """Factory: an app of this test's own with extra config, on this test's database.

    In a rolled-back test the app joins the test's transaction; in a ``real_db``
    test it works on the test's own database.
    """
    real_db = request.node.get_closest_marker("real_db") is not None
    if real_db:
        url = request.getfixturevalue("database_url")
        instance = tmp_path / "instance"
        instance.mkdir(exist_ok=True)
        _isolated_env(monkeypatch, instance)
    else:
        request.getfixturevalue("_rolled_back")
        url = request.getfixturevalue("shared_database_url")
    built: list[Flask] = []

    def factory(**config: Any) -> Flask:
        if not real_db and "DATABASE_URL" in config:
            pytest.fail("an app on another database needs a test marked @pytest.mark.real_db")
        app = _build_app(**_settings(url, **config))
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            if real_db:
                db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app with its context pushed: shared and rolled back, or own (``real_db``)."""
    if request.node.get_closest_marker("real_db") is not None:
        application = request.getfixturevalue("make_app")()
    else:
        application = request.getfixturevalue("_rolled_back")
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

    def sign_in(self, user: User) -> None:
        """Sign ``user`` in without the form: the session Flask-Login writes, put in the cookie.

        For tests about something else than signing in; the tests of the sign-in
        form itself use :meth:`login`.
        """
        from flask import session
        from flask_login import login_user

        with self.client.application.test_request_context():
            assert login_user(user), f"{user.email} may not sign in"
            values = dict(session)
        with self.client.session_transaction() as cookie:
            cookie.update(values)

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
        #: The bytes each message arrived as (headers exactly as on the wire).
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import email
        from email import policy

        self.raw.append(envelope.content)

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
