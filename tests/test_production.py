"""Production serving: security headers and cookies, static caching, health endpoints,
request ids and JSON logs, the SQLite backup, rate limits and ProxyFix."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from flask import url_for

from survey_app.backup import BackupError, backup_sqlite, sqlite_path
from survey_app.extensions import db
from survey_app.logs import loggable_path
from survey_app.models import Role
from survey_app.ratelimit import SweepingMemoryStorage, limiter, storage_uri
from survey_app.types import utcnow
from tests.conftest import PASSWORD, is_postgres
from tests.kpi_data import KpiData

# --- headers, cookies, static files -----------------------------------------------------------


def _csp(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def test_a_page_carries_the_security_headers(client):
    response = client.get("/login")
    assert response.status_code == 200
    csp = _csp(response)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no inline script, no CDN, no eval
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    # Plain http: no HSTS (a browser would ignore it, and it would lie).
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_only_over_https(client):
    response = client.get("/login", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_the_survey_pages_keep_their_stricter_referrer_policy(client):
    response = client.get("/s/not-a-token")
    assert response.status_code == 404
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_session_cookie_is_httponly_lax_and_not_secure_over_http(client):
    cookie = client.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_when_served_over_https(make_app):
    app = make_app(PUBLIC_URL="https://feedback.example.com")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    cookie = app.test_client().get("/login").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_static_urls_are_versioned_and_cached_for_a_year(app, client):
    with app.test_request_context():
        url = url_for("static", filename="closedloop.css")
    assert re.search(r"\?v=[0-9a-f]{12}$", url)
    with client.get(url) as response:
        assert response.status_code == 200
        assert response.cache_control.max_age == 365 * 24 * 3600
        assert response.cache_control.immutable
        assert response.cache_control.public
        assert "Expires" not in response.headers
    with client.get("/static/closedloop.css") as response:
        assert response.cache_control.max_age == 3600
        assert not response.cache_control.immutable


def _analyst_on_dashboard(client, auth, make_user):
    data = KpiData()
    yesterday = utcnow() - timedelta(days=1)
    ticket = data.ticket(team="Frontline", created_at=yesterday - timedelta(hours=2))
    data.response(ticket, submitted_at=yesterday, nps=9, csat_overall=4, comment="Quick")
    db.session.commit()
    user = make_user(Role.ANALYST)
    auth.sign_in(user)
    return user


def test_the_dashboard_and_plotly_js_carry_the_headers(client, auth, make_user):
    _analyst_on_dashboard(client, auth, make_user)
    page = client.get("/dashboards")
    assert page.status_code == 200
    csp = _csp(page)
    assert csp["script-src"] == "'self'"
    # The figures travel as JSON data blocks and plotly.js from this origin: nothing inline
    # that CSP would have to allow.
    html = page.get_data(as_text=True)
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'type="application/json"' in tag or "src=" in tag
    plotly = re.search(r'<script src="([^"]*plotly[^"]*)"', html).group(1)
    assert plotly.startswith("/dashboards/plotly.min.js")
    with client.get(plotly) as script:
        assert script.status_code == 200
        assert script.headers["X-Content-Type-Options"] == "nosniff"
        assert script.mimetype == "text/javascript"


@pytest.mark.browser
@pytest.mark.slow
def test_plotly_charts_draw_under_the_csp(app, live_server, page, make_user):
    data = KpiData()
    yesterday = utcnow() - timedelta(days=1)
    for nps, csat in ((10, 5), (3, 2)):
        ticket = data.ticket(team="Frontline", created_at=yesterday - timedelta(hours=2))
        data.response(ticket, submitted_at=yesterday, nps=nps, csat_overall=csat, comment="ok")
    db.session.commit()
    user = make_user(Role.ANALYST)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server}/dashboards")
    page.wait_for_selector('[data-figure="figure-nps_trend"] .main-svg')
    assert page.locator(".js-plotly-plot .main-svg").count() >= 6
    # Hovering and the mode bar work too (plotly adds styles at run time).
    page.locator(".js-plotly-plot").first.hover()
    assert violations == []


# --- health ------------------------------------------------------------------------------------


def test_healthz_answers_without_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.db
def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert response.json["checks"]["database"]["ok"] is True
    assert "broker" not in response.json["checks"]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-closedloop-dir/closedloop.sqlite3",
        "postgresql+psycopg://postgres@127.0.0.1:1/closedloop",
    ],
    ids=["sqlite", "postgresql"],
)
@pytest.mark.db
@pytest.mark.real_db
def test_readyz_is_503_when_the_database_is_down(make_app, url):
    app = make_app(DATABASE_URL=url)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "not_ready"
    assert response.json["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    # Where the database lives stays in the log, not in a public answer.
    assert "nonexistent" not in response.get_data(as_text=True)
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_readyz_is_degraded_not_503_when_the_broker_is_unreachable(make_app):
    # Every instance shares the broker and serves customers without it: a load
    # balancer must not take them all out.
    app = make_app(CELERY_BROKER_URL="redis://127.0.0.1:1/0", READINESS_TIMEOUT_SECONDS=1)
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert response.json["checks"]["database"]["ok"] is True
    assert response.json["checks"]["broker"]["ok"] is False


# --- request ids and logs ----------------------------------------------------------------------


def test_request_id_from_the_proxy_is_echoed_and_logged(client, capsys):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-4f2a.7"})
    assert response.headers["X-Request-ID"] == "lb-4f2a.7"
    assert "[lb-4f2a.7] survey_app.access: GET /healthz 200" in capsys.readouterr().err


def test_logs_never_carry_a_survey_links_token(client, capsys):
    token = "WzEsInNlY3JldC1ub25jZSJd.c2lnbmF0dXJl"
    client.get(f"/s/{token}")
    client.get(f"/s/{token}/unsubscribe")
    err = capsys.readouterr().err
    assert token not in err
    digest = hashlib.sha256(token.encode()).hexdigest()[:12]
    assert f"survey_app.access: GET /s/~{digest} 404" in err
    assert f"survey_app.access: GET /s/~{digest}/unsubscribe 404" in err
    assert loggable_path("/cases/7") == "/cases/7"


def test_an_unhandled_error_on_a_survey_page_logs_no_token(app, client, monkeypatch, caplog):
    from survey_app.surveys import routes

    def broken(_token: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(routes, "answerable_invitation", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    token = "WzIsImFub3RoZXItbm9uY2UiXQ.c2ln"
    assert client.get(f"/s/{token}").status_code == 500
    assert token not in caplog.text
    assert "Exception on /s/~" in caplog.text


@pytest.mark.parametrize("offered", [None, "", "bad id with spaces", "x" * 200, 'id"}{"x'])
def test_a_missing_or_implausible_request_id_is_replaced(client, offered):
    headers = {"X-Request-ID": offered} if offered is not None else {}
    response = client.get("/healthz", headers=headers)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_json_logs_carry_the_request_id_on_every_line(make_app, capsys):
    app = make_app(LOG_FORMAT="json")

    @app.get("/log-probe")
    def probe():
        app.logger.warning("probing", extra={"probe": 7})
        return "ok"

    capsys.readouterr()
    response = app.test_client().get("/log-probe", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    mine = [line for line in lines if line.get("request_id") == "req-42"]
    assert {line["logger"] for line in mine} == {"survey_app", "survey_app.access"}
    probe_line = next(line for line in mine if line["logger"] == "survey_app")
    assert probe_line["message"] == "probing" and probe_line["level"] == "WARNING"
    assert probe_line["probe"] == 7
    access = next(line for line in mine if line["logger"] == "survey_app.access")
    assert access["status"] == 200 and access["path"] == "/log-probe"
    assert access["duration_ms"] >= 0


def test_an_unknown_log_format_is_refused(make_app):
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        make_app(LOG_FORMAT="xml")


# --- backups -----------------------------------------------------------------------------------


@pytest.mark.skipif(is_postgres(), reason="SQLite backup; PostgreSQL uses pg_dump")
@pytest.mark.real_db
def test_backup_is_consistent_while_the_app_writes(app, runner, tmp_path):
    source = sqlite_path(app.config["SQLALCHEMY_DATABASE_URI"])
    assert source is not None
    with sqlite3.connect(source) as setup:
        setup.execute("CREATE TABLE probe_rows (n INTEGER)")
        setup.execute("CREATE TABLE probe_total (total INTEGER)")
        setup.execute("INSERT INTO probe_total VALUES (0)")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        # Each transaction adds a row and the count together: a torn copy would disagree.
        connection = sqlite3.connect(source, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        while not stop.is_set():
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO probe_rows VALUES (1)")
            connection.execute("UPDATE probe_total SET total = total + 1")
            connection.execute("COMMIT")
            written[0] += 1
        connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 50:
            threading.Event().wait(0.01)
        first = runner.invoke(args=["db", "backup", "--out", str(tmp_path / "a.sqlite3")])
        second = runner.invoke(args=["db", "backup", "--out", str(tmp_path / "b.sqlite3")])
    finally:
        stop.set()
        thread.join()
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "Backed up" in first.output
    totals = []
    for name in ("a.sqlite3", "b.sqlite3"):
        with sqlite3.connect(tmp_path / name) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            rows = copy.execute("SELECT count(*) FROM probe_rows").fetchone()[0]
            (total,) = copy.execute("SELECT total FROM probe_total").fetchone()
            assert rows == total
            assert copy.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
            totals.append(total)
    assert 50 <= totals[0] <= totals[1] <= written[0]
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.skipif(is_postgres(), reason="SQLite backup")
def test_backup_defaults_to_the_instance_folder_and_never_overwrites(app, runner, tmp_path):
    result = runner.invoke(args=["db", "backup"])
    assert result.exit_code == 0, result.output
    made = list((Path(app.instance_path) / "backups").glob("closedloop-*.sqlite3"))
    assert len(made) == 1
    again = runner.invoke(args=["db", "backup", "--out", str(made[0])])
    assert again.exit_code == 1
    assert "exists" in again.output
    with pytest.raises(BackupError, match="No SQLite database"):
        backup_sqlite(tmp_path / "missing.sqlite3", tmp_path / "copy.sqlite3")


@pytest.mark.skipif(not is_postgres(), reason="PostgreSQL")
@pytest.mark.db
def test_backup_on_postgresql_prints_the_pg_dump_recipe(runner):
    result = runner.invoke(args=["db", "backup"])
    assert result.exit_code == 1
    assert "pg_dump --format=custom" in result.output
    assert "use pg_dump" in result.output


# --- rate limits -------------------------------------------------------------------------------


def test_survey_pages_answer_429_past_the_limit_with_a_friendly_page(make_app):
    app = make_app(RATELIMIT_SURVEY="3 per minute")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/s/not-a-token").status_code == 404
    response = client.get("/s/not-a-token/thanks")  # one budget for all the survey pages
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Many people are answering right now" in page
    assert "Traceback" not in page
    assert int(response.headers["Retry-After"]) > 0
    # Another address is not affected, nor are staff pages.
    other = client.get("/s/not-a-token", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 404
    assert client.get("/login").status_code == 200


def test_the_webhook_answers_429_json_past_the_limit(make_app):
    app = make_app(RATELIMIT_WEBHOOK="2 per minute")
    client = app.test_client()
    for _ in range(2):
        assert client.post("/api/v1/ticket-events", data="{}").status_code == 401
    response = client.post("/api/v1/ticket-events", data="{}")
    assert response.status_code == 429
    assert response.json["error"]["code"] == "too_many_requests"
    # The limit is the webhook's: reading the API description is not counted.
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_default_limits_let_a_busy_office_through(client):
    for _ in range(100):
        assert client.get("/s/not-a-token").status_code == 404


def test_rate_limit_storage_follows_the_configuration(make_app):
    assert storage_uri(make_app()) == "memory://"
    broker = make_app(CELERY_BROKER_URL="redis://127.0.0.1:6379/3")
    assert storage_uri(broker) == "redis://127.0.0.1:6379/3"
    assert broker.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/3"
    explicit = make_app(
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3", RATELIMIT_STORAGE_URI="memory://"
    )
    assert storage_uri(explicit) == "memory://"


def test_memory_counters_start_no_thread_per_hit_and_still_expire(make_app, monkeypatch):
    app = make_app(RATELIMIT_SURVEY="3 per second")
    assert isinstance(limiter.storage, SweepingMemoryStorage)
    client = app.test_client()
    threads = threading.active_count()
    assert [client.get("/s/not-a-token").status_code for _ in range(4)] == [404] * 3 + [429]
    assert threading.active_count() == threads
    # The inline sweep drops expired counters (at most once a SWEEP_SECONDS).
    storage = limiter.storage
    storage.incr("closedloop/probe", expiry=0.001)
    monkeypatch.setattr(storage, "_next_sweep", 0.0)
    threading.Event().wait(0.01)
    storage.incr("closedloop/other", expiry=60)
    assert "closedloop/probe" not in storage.storage
    assert storage.get("closedloop/other") == 1


# --- reverse proxy -----------------------------------------------------------------------------


def test_without_trusted_proxies_forwarded_headers_are_ignored(make_app):
    app = make_app(RATELIMIT_SURVEY="2 per minute")
    client = app.test_client()
    for n in range(2):
        client.get("/s/x", headers={"X-Forwarded-For": f"203.0.113.{n}"})
    # A client cannot dodge the limit by inventing addresses.
    assert client.get("/s/x", headers={"X-Forwarded-For": "203.0.113.99"}).status_code == 429
    insecure = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in insecure.headers


def test_proxyfix_trusts_the_configured_proxy(make_app):
    app = make_app(TRUSTED_PROXIES=1, RATELIMIT_SURVEY="2 per minute")
    client = app.test_client()
    for _ in range(2):
        client.get("/s/x", headers={"X-Forwarded-For": "203.0.113.1"})
    assert client.get("/s/x", headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 429
    # The real client address behind the proxy is what counts.
    assert client.get("/s/x", headers={"X-Forwarded-For": "203.0.113.2"}).status_code == 404
    behind_tls = client.get(
        "/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "cl.example.com"}
    )
    assert behind_tls.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_proxyfix_gives_the_app_the_clients_address_scheme_and_host(make_app):
    app = make_app(TRUSTED_PROXIES=1)

    @app.get("/proxy-probe")
    def probe():
        from flask import request

        return {"addr": request.remote_addr, "url": request.url, "secure": request.is_secure}

    seen = app.test_client().get(
        "/proxy-probe",
        headers={
            "X-Forwarded-For": "198.51.100.7, 203.0.113.5",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "cl.example.com",
        },
    )
    # One trusted proxy: the last address it appended is the client's.
    assert seen.json == {
        "addr": "203.0.113.5",
        "url": "https://cl.example.com/proxy-probe",
        "secure": True,
    }


def test_limits_fall_back_to_memory_when_redis_is_down(make_app):
    app = make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", RATELIMIT_SURVEY="2 per minute")
    client = app.test_client()
    # Customers get through (no 500), and the limit still holds, counted in memory.
    assert [client.get("/s/not-a-token").status_code for _ in range(3)] == [404, 404, 429]


@pytest.mark.db
def test_a_staff_page_while_the_database_is_unavailable_gets_the_standalone_503(
    client, auth, make_user, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    from analysis.dashboards import services

    auth.sign_in(make_user(Role.ANALYST))

    def database_gone(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("the database system is shutting down"))

    monkeypatch.setattr(services, "overview_cards", database_gone)
    response = client.get("/dashboards")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    # Its own page in both languages: the usual layout would ask the database for the user.
    assert "服务暂时不可用" in html and "The service is briefly unavailable" in html
    assert "shutting down" not in html and "Traceback" not in html
