"""The application factory: configuration layers, secret key, database set-up, CLI, errors."""

from __future__ import annotations

import runpy
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from flask import Flask, abort
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

import survey_app
from survey_app import InsecureConfigError, create_app
from survey_app.cli import main
from survey_app.config import DEFAULT_SECRET_KEY
from survey_app.extensions import db
from survey_app.models import Channel, Priority, Role, Ticket, TicketStatus, User
from survey_app.types import utcnow
from tests.conftest import is_postgres

PROJECT_ROOT = Path(survey_app.__file__).resolve().parent.parent
MIGRATIONS = Path(survey_app.__file__).resolve().parent / "migrations"


@pytest.fixture
def instance(make_app: Callable[..., Flask], tmp_path: Path) -> Path:
    """The instance folder that ``make_app`` points CLOSEDLOOP_INSTANCE_PATH at."""
    return tmp_path / "instance"


@pytest.fixture
def build(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Flask]]:
    """``create_app`` itself, without the defaults of ``make_app``; engines disposed after."""
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    built: list[Flask] = []

    def factory(test_config: dict[str, Any] | None = None) -> Flask:
        app = create_app(test_config)
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            db.engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


# --- configuration ---------------------------------------------------------------------------


def test_configuration_layers_in_order(make_app, instance, monkeypatch):
    (instance / "config.py").write_text(
        "PAGE_SIZE = 11\n"
        "LOGIN_MAX_FAILURES = 7\n"
        "LOGIN_LOCKOUT_MINUTES = 7\n"
        "BABEL_DEFAULT_TIMEZONE = 'UTC'\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CLOSEDLOOP_LOGIN_MAX_FAILURES", "8")
    monkeypatch.setenv("CLOSEDLOOP_LOGIN_LOCKOUT_MINUTES", "8")
    monkeypatch.setenv("CLOSEDLOOP_BABEL_DEFAULT_TIMEZONE", "Europe/Berlin")

    app = make_app(BABEL_DEFAULT_TIMEZONE="America/New_York")

    assert app.config["WEBHOOK_TOLERANCE_SECONDS"] == 300  # default
    assert app.config["PAGE_SIZE"] == 11  # instance/config.py over the default
    assert app.config["LOGIN_MAX_FAILURES"] == 8  # environment over instance/config.py
    assert app.config["LOGIN_LOCKOUT_MINUTES"] == 8
    assert app.config["BABEL_DEFAULT_TIMEZONE"] == "America/New_York"  # test mapping wins


def test_instance_config_is_optional(make_app, instance):
    assert not (instance / "config.py").exists()
    app = make_app()
    assert app.config["PAGE_SIZE"] == 50
    assert Path(app.instance_path) == instance.resolve()


def test_environment_supplies_the_secret_key_and_database(build, database_url, monkeypatch):
    monkeypatch.setenv("CLOSEDLOOP_SECRET_KEY", "a-long-random-key-from-the-environment")
    monkeypatch.setenv("CLOSEDLOOP_DATABASE_URL", database_url)
    app = build()
    assert not app.testing and not app.debug
    assert app.config["SECRET_KEY"] == "a-long-random-key-from-the-environment"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == database_url


@pytest.mark.real_db
def test_default_database_is_sqlite_in_the_instance_folder(make_app, instance):
    app = make_app(DATABASE_URL=None)
    expected = instance.resolve() / "closedloop.sqlite3"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{expected}"
    with app.app_context():
        assert db.engine.url.database == str(expected)


@pytest.mark.real_db
def test_postgres_gets_pool_pre_ping(make_app):
    # Building the engine does not connect, so no server is needed.
    app = make_app(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:9/none")
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["options"] == "-c jit=off"


@pytest.mark.db
def test_postgres_sessions_run_without_jit(app):
    """PostgreSQL's JIT compiled each wide KPI aggregate for longer than it ran."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    assert db.session.execute(text("SHOW jit")).scalar() == "off"


@pytest.mark.real_db
def test_sqlite_connections_enforce_foreign_keys_and_use_wal(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    with app.app_context():
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 10000
        db.session.remove()


def test_foreign_keys_are_enforced(app):
    now = utcnow()
    db.session.add(
        Ticket(
            source="helpdesk", external_id="T-orphan", customer_id=424242,
            channel=Channel.CHAT, priority=Priority.P3, status=TicketStatus.CLOSED, created_at=now,
        )
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


# --- the secret key --------------------------------------------------------------------------


def _example_secret_key() -> str:
    return runpy.run_path(str(PROJECT_ROOT / "instance" / "config.example.py"))["SECRET_KEY"]


@pytest.mark.parametrize(
    "secret_key",
    [None, DEFAULT_SECRET_KEY, "", "example"],
    ids=["default", "explicit-default", "empty", "config-example"],
)
def test_refuses_production_with_a_placeholder_secret_key(build, database_url, secret_key):
    config: dict[str, Any] = {"DATABASE_URL": database_url}
    if secret_key is not None:
        config["SECRET_KEY"] = _example_secret_key() if secret_key == "example" else secret_key
    with pytest.raises(InsecureConfigError, match="CLOSEDLOOP_SECRET_KEY"):
        build(config)


def test_refuses_production_with_the_example_webhook_secret(build, database_url):
    example = runpy.run_path(str(PROJECT_ROOT / "instance" / "config.example.py"))
    config = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "a-real-random-key-" + "x" * 20,
        "WEBHOOK_SECRET": example["WEBHOOK_SECRET"],
    }
    with pytest.raises(InsecureConfigError, match="CLOSEDLOOP_WEBHOOK_SECRET"):
        build(config)
    del config["WEBHOOK_SECRET"]
    assert build(config).config["WEBHOOK_SECRET"] is None


def test_a_numeric_secret_key_from_the_environment_is_a_string(build, database_url, monkeypatch):
    monkeypatch.setenv("CLOSEDLOOP_SECRET_KEY", "12345678901234567890123")
    app = build({"DATABASE_URL": database_url})
    assert app.config["SECRET_KEY"] == "12345678901234567890123"


def test_refuses_a_placeholder_from_the_environment(build, database_url, monkeypatch):
    monkeypatch.setenv("CLOSEDLOOP_SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(InsecureConfigError):
        build({"DATABASE_URL": database_url})


@pytest.mark.parametrize(
    ("config", "env"),
    [
        ({"DEBUG": True}, {}),
        ({"TESTING": True}, {}),
        ({}, {"CLOSEDLOOP_DEBUG": "true"}),
    ],
    ids=["debug", "testing", "debug-from-env"],
)
def test_debug_and_testing_may_use_the_placeholder(build, database_url, monkeypatch, config, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = build({"DATABASE_URL": database_url, **config})
    assert app.config["SECRET_KEY"] == DEFAULT_SECRET_KEY


# --- closedloop init -------------------------------------------------------------------------


@pytest.fixture
def cli(instance: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run the ``closedloop`` command in-process on the test's instance folder."""
    # FlaskGroup sets this for `app.run`; let monkeypatch put the environment back.
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def _settings(path: Path) -> dict[str, Any]:
    return runpy.run_path(str(path))


def test_init_writes_a_private_config_with_random_secrets(cli, instance, build):
    result = cli("init")
    assert result.exit_code == 0, result.output
    target = instance / "config.py"
    assert f"Wrote {target}." in result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    settings = _settings(target)
    assert len(settings["SECRET_KEY"]) == 64
    assert len(settings["WEBHOOK_SECRET"]) == 64
    assert settings["SECRET_KEY"] != settings["WEBHOOK_SECRET"]

    app = build({"DATABASE_URL": "sqlite://"})  # a production app: no DEBUG, no TESTING
    assert app.config["SECRET_KEY"] == settings["SECRET_KEY"]
    assert app.config["WEBHOOK_SECRET"] == settings["WEBHOOK_SECRET"]


def test_help_before_init_lists_every_command_and_running_one_says_what_to_do(cli, instance):
    assert not (instance / "config.py").exists()
    result = cli("--help")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for command in ("init", "run", "db", "demo", "users", "tickets", "surveys", "jobs"):
        assert f"  {command} " in result.output, command
    assert not (instance / "config.py").exists()

    refused = CliRunner().invoke(main, ["users", "list"])
    assert refused.exit_code != 0
    assert "closedloop init" in refused.output


def test_init_leaves_an_existing_config_alone(cli, instance):
    target = instance / "config.py"
    target.write_text("SECRET_KEY = 'mine, keep it'\n", encoding="utf-8")
    result = cli("init")
    assert result.exit_code == 0
    assert "left unchanged" in result.output
    assert target.read_text(encoding="utf-8") == "SECRET_KEY = 'mine, keep it'\n"


def test_init_force_writes_new_secrets(cli, instance):
    cli("init")
    first = _settings(instance / "config.py")
    result = cli("init", "--force")
    assert result.exit_code == 0
    second = _settings(instance / "config.py")
    assert second["SECRET_KEY"] != first["SECRET_KEY"]
    assert second["WEBHOOK_SECRET"] != first["WEBHOOK_SECRET"]


def test_init_creates_the_instance_folder(tmp_path, monkeypatch, cli):
    folder = tmp_path / "new" / "instance"
    monkeypatch.setenv("CLOSEDLOOP_INSTANCE_PATH", str(folder))
    assert cli("init").exit_code == 0
    assert (folder / "config.py").is_file()


def test_cli_groups_are_registered(app):
    assert {"db", "users", "tickets", "demo"} <= set(app.cli.commands)
    assert "init" in main.commands


# --- migrations ------------------------------------------------------------------------------


def _schema(app: Flask) -> tuple[set[str], str | None]:
    with app.app_context():
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            version = None
            if "alembic_version" in tables:
                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.remove()
    return tables, version


@pytest.mark.db
@pytest.mark.real_db
def test_db_upgrade_builds_every_table_on_an_empty_sqlite_file(make_app, tmp_path):
    """`closedloop db upgrade` on a brand-new database creates the whole schema at head."""
    fresh = tmp_path / "empty.sqlite3"
    app = make_app(DATABASE_URL=f"sqlite:///{fresh}")
    assert _schema(app) == (set(), None)

    result = app.test_cli_runner().invoke(args=["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert _schema(app) == (set(db.metadata.tables) | {"alembic_version"}, head_revision())


@pytest.mark.db
@pytest.mark.real_db
def test_every_migration_goes_down_and_up_again_on_a_sqlite_file(make_app, tmp_path):
    """Each migration's downgrade runs on SQLite (batch mode) and leaves what the upgrade
    builds again: the schema at head, as the models describe it."""
    fresh = tmp_path / "down-and-up.sqlite3"
    app = make_app(DATABASE_URL=f"sqlite:///{fresh}")
    with app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        db.session.remove()
        assert _schema(app)[0] <= {"alembic_version"}
        flask_migrate.upgrade()
        db.session.remove()
    assert _schema(app) == (set(db.metadata.tables) | {"alembic_version"}, head_revision())


@pytest.mark.skipif(not is_postgres(), reason="needs CLOSEDLOOP_TEST_DATABASE_URL=postgresql...")
@pytest.mark.db
@pytest.mark.real_db
def test_db_upgrade_builds_every_table_on_an_empty_postgres_database(make_app):
    app = make_app()
    with app.app_context():
        try:
            flask_migrate.downgrade(revision="base")
            db.session.remove()
            assert _schema(app)[0] <= {"alembic_version"}
        finally:
            # The other tests of the session share this database: always rebuild it.
            flask_migrate.upgrade()
            db.session.remove()
    assert _schema(app) == (set(db.metadata.tables) | {"alembic_version"}, head_revision())


def test_db_upgrade_again_changes_nothing(app, runner):
    before = _schema(app)
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert _schema(app) == before
    assert before[1] == head_revision()


# SQLite's reflection cannot read an expression index (the roll-ups' month index,
# analysis.metrics.rollup_tables.month_start): there alembic skips it, with these warnings;
# PostgreSQL's compares it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
@pytest.mark.db
def test_migrations_match_the_models(app):
    """No model change is missing a migration (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": True}
        )
        diff = compare_metadata(context, db.metadata)
    assert diff == []


# --- error pages -----------------------------------------------------------------------------

SECRET_DETAIL = "secret internal detail 7f3a"


@pytest.fixture
def failing_app(make_app: Callable[..., Flask]) -> Flask:
    """An app like production (exceptions are handled, not propagated) with routes that fail."""
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    def write_then_fail() -> str:
        user = User(email="ghost@example.com", role=Role.ANALYST, password_hash="x")
        db.session.add(user)
        db.session.flush()
        raise RuntimeError(SECRET_DETAIL)

    app.add_url_rule("/boom", view_func=write_then_fail)
    app.add_url_rule("/api/v1/boom", endpoint="api_boom", view_func=write_then_fail)
    app.add_url_rule("/gone", view_func=lambda: abort(410))

    # Anything that commits later in the request (a careless extension, say) must
    # find nothing left to commit: the error handler has rolled back.
    @app.teardown_request
    def commit_whatever_is_left(_error: BaseException | None) -> None:
        db.session.commit()

    return app


def _ghost_exists(app: Flask) -> bool:
    with app.app_context():
        found = db.session.scalar(select(User).where(User.email == "ghost@example.com"))
        db.session.remove()
    return found is not None


def test_unhandled_error_shows_a_plain_page_and_rolls_back(failing_app):
    response = failing_app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert "Something went wrong on our side" in body
    assert "Traceback" not in body
    assert SECRET_DETAIL not in body
    assert "RuntimeError" not in body
    assert not _ghost_exists(failing_app)


def test_unhandled_api_error_is_json_without_details(failing_app):
    response = failing_app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "An unexpected error occurred."}
    }
    assert SECRET_DETAIL not in response.get_data(as_text=True)
    assert not _ghost_exists(failing_app)


def test_error_page_is_translated(failing_app):
    response = failing_app.test_client().get("/boom", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 500
    assert '<html lang="zh-Hans">' in response.get_data(as_text=True)


def test_not_found_is_html_for_people(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Page not found" in response.get_data(as_text=True)


def test_other_http_errors_use_the_error_page(failing_app):
    response = failing_app.test_client().get("/gone")
    assert response.status_code == 410
    assert "This link is no longer valid" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/no-such-endpoint", 404, "not_found"),
        ("GET", "/api/v1/ticket-events", 405, "method_not_allowed"),
    ],
)
def test_api_errors_are_json(client, method, path, status, code):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == code
