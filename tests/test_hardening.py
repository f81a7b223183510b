"""Findings of the security and fault review (issue 14), each held by a test."""

from __future__ import annotations

import importlib
import re

import pytest

from survey_app.extensions import db
from survey_app.models import Role
from survey_app.routing import MAX_ID, whole_number
from tests.conftest import csrf_token

#: Beyond every id column: these paths name nothing and must say so, never fail.
TOO_BIG = str(2**63)

#: SQL semantics (integer overflow differs between SQLite and PostgreSQL).
pytestmark = pytest.mark.db


def _id_rules(app, method: str, number: str) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if method in rule.methods and "<int:" in rule.rule:
            urls.append(re.sub(r"<int:\w+>", number, rule.rule))
    return sorted(urls)


@pytest.mark.parametrize("too_big", [str(MAX_ID + 1), str(2**63), str(10**30)])
def test_every_path_id_beyond_the_id_columns_is_404_not_500(app, client, auth, make_user, too_big):
    auth.sign_in(make_user(Role.ADMIN))
    gets = _id_rules(app, "GET", too_big)
    posts = _id_rules(app, "POST", too_big)
    assert len(gets) >= 10 and len(posts) >= 10, "the id routes went missing"
    token = csrf_token(client)
    answers = {url: client.get(url).status_code for url in gets}
    answers |= {
        f"POST {url}": client.post(url, data={"csrf_token": token}).status_code for url in posts
    }
    # 405: a path that only a GET rule could have matched, had the id been one.
    assert {url: status for url, status in answers.items() if status not in (404, 405)} == {}


def test_the_largest_id_still_reaches_the_view(client, auth, make_user):
    auth.sign_in(make_user(Role.ADMIN))
    assert client.get(f"/tickets/{MAX_ID}").status_code == 404  # looked up, not found
    assert client.get("/tickets/١٢").status_code == 404  # non-ASCII digits are no id


@pytest.mark.parametrize(
    "url, status",
    [
        (f"/tickets?page={TOO_BIG}", 404),
        (f"/cases?page={TOO_BIG}", 404),
        (f"/admin/surveys/invitations?page={TOO_BIG}", 404),
        (f"/admin/audit?page={TOO_BIG}", 404),
        ("/tickets?page=abc", 404),  # names no page
        ("/cases?page=0", 404),
        ("/tickets?page=2", 404),  # past the last page (none listed)
        (f"/admin/audit?entity_id={TOO_BIG}", 400),
        ("/admin/audit?entity_id=²", 400),
        ("/admin/audit?actor_id=1_0", 400),
        ("/admin/audit?from=0001-01-01&to=9999-12-31", 400),
        ("/root-causes/pareto?since=0001-01-01&until=9999-12-31", 400),
        ("/dashboards/responses?page=²", 400),
        ("/dashboards?start=0001-01-01&end=9999-12-31", 400),
    ],
)
def test_numbers_and_days_out_of_range_are_refused_not_500(client, auth, make_user, url, status):
    auth.sign_in(make_user(Role.ADMIN))
    assert client.get(url).status_code == status


@pytest.mark.parametrize(
    "raw, expected",
    [("10", 10), ("0", 0), ("1_0", None), ("²", None), ("١٢", None), (" 1", None), ("", None),
     (None, None), (str(MAX_ID), MAX_ID), (TOO_BIG, None), ("-1", None)],
)  # fmt: skip
def test_whole_number_takes_ascii_digits_in_range_only(raw, expected):
    assert whole_number(raw) == expected


# --- finding 10: ids and numbers in one spelling -------------------------------------------------


def test_ticket_ids_are_normalised_and_counts_are_digits_only(webhook, app):
    from survey_app.models import Ticket
    from tests.conftest import event_payload

    first = webhook.post(event_payload(ticket={"external_id": "T-１００１\u200b"}))
    assert first.status_code == 201, first.get_json()
    again = webhook.post(event_payload(ticket={"external_id": "T-1001", "subject": "Later"}))
    assert again.status_code == 200
    assert [t.external_id for t in db.session.scalars(db.select(Ticket))] == ["T-1001"]

    for count in ("1_0", "10.5", "-1", "1 0"):
        response = webhook.post(event_payload(ticket={"contact_count": count}))
        assert response.status_code == 422, count
    assert webhook.post(event_payload(ticket={"contact_count": "２"})).status_code == 200


def test_line_breaks_in_header_bound_text_are_refused(webhook):
    from tests.conftest import event_payload

    response = webhook.post(event_payload(ticket={"external_id": "T-1\r\nBcc: x@evil.example"}))
    assert response.status_code == 422
    assert "control characters" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("raw", ["1_0", "10.0", "1e1", " 5 "])
def test_a_survey_score_is_a_plain_digit(raw):
    from survey_app.normalise import whole_number

    if raw == " 5 ":
        assert whole_number(raw) == 5
    else:
        with pytest.raises(ValueError):
            whole_number(raw)
    assert whole_number("５") == 5  # NFKC: full-width digits are digits


def test_a_backup_is_private_to_its_owner(tmp_path):
    import sqlite3
    import stat

    from survey_app.backup import backup_sqlite

    source = tmp_path / "live.sqlite3"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (x)")
    target = backup_sqlite(source, tmp_path / "backups" / "copy.sqlite3")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


def test_gunicorn_trusts_no_forwarded_header_itself():
    """Only the app's ProxyFix (TRUSTED_PROXIES hops) reads X-Forwarded-*."""
    from gunicorn.config import Config

    config = Config()
    for name, value in vars(importlib.import_module("survey_app.gunicorn_conf")).items():
        if name in config.settings:
            config.set(name, value)
    assert config.forwarded_allow_ips == []
    assert config.secure_scheme_headers == {}


# --- findings 1, 3, 4, 5: one sender for every message ------------------------------------------


class Receiver:
    """A local HTTP endpoint: answers ``status`` (with ``location`` for a redirect)."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.hits: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.hits.append(self.path)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(status: int = 200, location: str | None = None) -> Receiver:
        made.append(Receiver(status, location))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
    ],
)
def test_outbound_urls_to_internal_destinations_are_refused(app, url):
    from survey_app.outbound import UnsafeDestination, check_destination, post_webhook

    app.config["OUTBOUND_ALLOW_PRIVATE_NETWORKS"] = False
    with pytest.raises(UnsafeDestination):
        check_destination(url)
    with pytest.raises(UnsafeDestination):
        post_webhook(url, {"x": 1})


def test_a_name_that_resolves_inside_is_refused_at_send_time(app, receiver):
    from survey_app.outbound import UnsafeDestination, check_destination, post_webhook

    app.config["OUTBOUND_ALLOW_PRIVATE_NETWORKS"] = False
    hook = receiver()
    # "localhost.": a name, resolved only when sending; and 0x7f.1, inet_aton's loopback.
    name_url = hook.url.replace("127.0.0.1", "0x7f.1")
    check_destination(name_url, resolve=False)  # a form cannot tell
    with pytest.raises(UnsafeDestination):
        post_webhook(name_url, {"x": 1})
    assert hook.hits == []


def test_redirects_are_never_followed(app, receiver):
    from survey_app.outbound import OutboundError, post_webhook

    target = receiver()
    hook = receiver(302, location=f"{target.url}/internal")
    with pytest.raises(OutboundError, match="redirect"):
        post_webhook(f"{hook.url}/hook", {"x": 1})
    assert hook.hits == ["/hook"] and target.hits == []


def test_a_target_webhook_inside_the_network_is_refused_by_the_form(app):
    from analysis.targets.services import TargetError, TargetSpec, validate_spec

    app.config["OUTBOUND_ALLOW_PRIVATE_NETWORKS"] = False
    spec = TargetSpec(
        kpi="nps", target=30, yellow=10, orange=20, red=30,
        webhook_url="http://169.254.169.254/latest",
    )  # fmt: skip
    with pytest.raises(TargetError) as refused:
        validate_spec(spec)
    assert "inside the network" in str(refused.value.errors["webhook_url"])


def test_list_unsubscribe_arrives_unencoded_on_the_wire(mail_app, mailbox):
    from flask_mail import Message

    from survey_app.outbound import send_mail

    link = "https://feedback.example.com/s/unsubscribe/" + "A" * 120
    send_mail(
        Message(
            subject="您好，您的工单 T-1001 已关闭",
            recipients=["zhang.san@example.com"],
            body="x",
            extra_headers={
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
    )
    (raw,) = mailbox.raw
    assert f"List-Unsubscribe: <{link}>\r\n".encode() in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert b"=?utf-8?q?=3C" not in raw
    assert mailbox.messages[0]["Subject"] == "您好，您的工单 T-1001 已关闭"


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(mail_app, mailbox):
    from flask_mail import Message

    from survey_app.outbound import OutboundError, send_mail

    with pytest.raises(OutboundError, match="line break"):
        send_mail(Message("Survey\r\nBcc: all@example.com", ["a@example.com"], body="x"))
    assert mailbox.raw == []


@pytest.mark.parametrize("server_offers_smtputf8", [True, False])
def test_a_non_ascii_address_needs_a_server_that_takes_it(app, server_offers_smtputf8):
    import socket

    from aiosmtpd.controller import Controller
    from flask_mail import Message

    from survey_app.outbound import OutboundError, send_mail
    from tests.conftest import Mailbox

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox()
    server = Controller(
        box, hostname="127.0.0.1", port=port, enable_SMTPUTF8=server_offers_smtputf8
    )
    server.start()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
        message = Message("Survey", ["张三@example.com"], body="x", sender="f@example.com")
        if server_offers_smtputf8:
            send_mail(message)
            assert "张三@example.com".encode() in box.raw[0]
        else:
            with pytest.raises(OutboundError, match="SMTPUTF8"):
                send_mail(message)
            assert box.raw == []
    finally:
        server.stop()


# --- finding 6: the development server logs no token ---------------------------------------------


def test_the_development_server_logs_each_request_once_without_the_token(app, caplog):
    import threading
    import urllib.request

    from werkzeug.serving import make_server

    from survey_app.logs import hide_dev_server_request_lines

    hide_dev_server_request_lines()  # what `closedloop run` does before serving
    token = "tok3n-" + "x" * 40
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level("INFO"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/s/{token}")
            except urllib.error.HTTPError as answered:
                assert answered.code == 404
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if "tok3n" in line], lines
    assert len([r for r in caplog.records if r.name == "survey_app.access"]) == 1
    assert not [r for r in caplog.records if r.name == "werkzeug" and "GET" in r.getMessage()]


# --- finding 10: one runner per job --------------------------------------------------------------


def test_a_job_another_runner_holds_is_skipped_until_its_lease_ends(app):
    from datetime import timedelta

    from survey_app.background import (
        SKIPPED,
        claim_lease,
        registered_jobs,
        release_lease,
        run_jobs_once,
    )
    from survey_app.types import utcnow

    first = registered_jobs(app)[0].name
    assert claim_lease(first, "cron@host:1")
    results = run_jobs_once(app)
    assert results[first] == SKIPPED
    assert [name for name, result in results.items() if result == SKIPPED] == [first]
    release_lease(first, "cron@host:1")
    assert run_jobs_once(app)[first] != SKIPPED
    # A runner that died: its lease runs out and the job is taken over.
    assert claim_lease(first, "dead@host:2")
    later = utcnow() + timedelta(seconds=app.config["JOB_LEASE_SECONDS"] + 1)
    assert claim_lease(first, "alive@host:3", now=later)


@pytest.mark.real_db
def test_two_runners_claiming_at_once_get_one_lease_and_no_lock_error(app):
    import threading

    from survey_app.background import claim_lease

    barrier = threading.Barrier(4, timeout=20)
    won: list[str] = []
    errors: list[BaseException] = []

    def runner(holder: str) -> None:
        with app.app_context():
            try:
                barrier.wait()
                if claim_lease("dispatch-invitations", holder):
                    won.append(holder)
            except BaseException as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)

    threads = [threading.Thread(target=runner, args=(f"runner-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(won) == 1
