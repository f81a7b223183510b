"""The customer's survey pages: links, single use, validation, languages, unsubscribe.

Invitations are made the real way: a signed close arrives, the dispatcher
mails the invitation to the in-process SMTP server, and the links are taken
from the message.
"""

from __future__ import annotations

import dataclasses
import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from sqlalchemy.exc import IntegrityError, OperationalError

from survey_app.extensions import db
from survey_app.intake import api
from survey_app.models import Channel, Customer, Priority
from survey_app.surveys import links, responses
from survey_app.surveys.invitations import dispatch_due
from survey_app.surveys.links import SURVEY_SALT, UNSUBSCRIBE_SALT, make_token
from survey_app.surveys.models import (
    Answer,
    Invitation,
    InvitationStatus,
    Question,
    SurveyResponse,
)
from survey_app.surveys.responses import AlreadyAnswered, submit_response
from survey_app.types import utcnow
from tests.conftest import Webhook, event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
FIRST_CUSTOMER = {"external_id": "C-1", "email": "c1@example.com"}
LINK_RE = re.compile(r"https?://[^/\s]+(/s/[A-Za-z0-9_.\-]+(?:/unsubscribe)?)(?=\s)")


@dataclasses.dataclass
class Sent:
    """One mailed invitation: its id and the links of its message."""

    invitation_id: int
    link: str
    unsubscribe: str
    message: Any

    @property
    def token(self) -> str:
        return self.link.rsplit("/", 1)[1]

    def invitation(self) -> Invitation:
        invitation = db.session.get(Invitation, self.invitation_id, populate_existing=True)
        assert invitation is not None
        return invitation


def closed_ticket(
    ticket_id: str = "T-1001", customer: dict[str, Any] | None = None
) -> dict[str, Any]:
    closed = (utcnow() - timedelta(hours=2)).isoformat()
    created = (utcnow() - timedelta(hours=5)).isoformat()
    return event_payload(
        ticket={"external_id": ticket_id, "created_at": created, "first_response_at": created,
                "resolved_at": closed, "closed_at": closed},
        customer=customer or {},
    )  # fmt: skip


TOO_LONG = "Please shorten your text to %(max)d characters or fewer (it has %(length)d)."
NOT_SENT = (
    "Your answers were not sent: the page had been open too long or was sent from another "
    "window. They are still filled in below — please check them and send them again."
)


def zh(message: str, **values: Any) -> str:
    """``message`` as a Chinese customer reads it (the surveys here go to zh-CN customers)."""
    with force_locale("zh_Hans"):
        return gettext(message, **values)


@pytest.fixture
def client(mail_app: Flask) -> FlaskClient:
    return mail_app.test_client()


@pytest.fixture
def send_survey(mail_app: Flask, mailbox: Any, client: FlaskClient) -> Callable[..., Sent]:
    """Factory: close a ticket, dispatch, return the mailed invitation's links."""
    counter = iter(range(1, 1000))

    def factory(language: str = "zh-CN", **customer: Any) -> Sent:
        n = next(counter)
        customer = {"external_id": f"C-{n}", "email": f"c{n}@example.com",
                    "language": language, **customer}  # fmt: skip
        payload = closed_ticket(f"T-{1000 + n}", customer)
        assert Webhook(client).post(payload).status_code == 201
        before = len(mailbox.messages)
        assert dispatch_due().sent == 1
        message = mailbox.messages[before]
        text = message.get_body(preferencelist=("plain",)).get_content()
        links = LINK_RE.findall(text)
        link = next(path for path in links if not path.endswith("/unsubscribe"))
        unsubscribe = next(path for path in links if path.endswith("/unsubscribe"))
        invitation_id = int(message["X-ClosedLoop-Invitation"])
        return Sent(invitation_id, link, unsubscribe, message)

    return factory


@pytest.fixture
def sent(send_survey: Callable[..., Sent]) -> Sent:
    return send_survey()


def csrf_from(page: Any) -> str:
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def answers(client: FlaskClient, link: str, **values: str) -> dict[str, str]:
    """A valid submission for the default survey, with ``values`` on top."""
    data = {"csrf_token": csrf_from(client.get(link)), "csat_overall": "4"}
    data.update(values)
    return {key: value for key, value in data.items() if value is not None}


def response_count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(SurveyResponse))


def question_text(key: str, locale: str = "zh_Hans") -> str:
    question = db.session.scalar(db.select(Question).where(Question.key == key).limit(1))
    return question.text_for(locale)


def checked_value(html: str, key: str) -> list[str]:
    return re.findall(rf'<input checked[^>]*name="{key}"[^>]*value="(\d+)"', html) + re.findall(
        rf'<input[^>]*name="{key}"[^>]*value="(\d+)"[^>]*checked', html
    )


# --- links that cannot be used ----------------------------------------------------------------


def test_a_sent_link_opens_the_survey_in_the_customers_language(client, sent):
    page = client.get(sent.link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="zh-Hans">' in html
    assert question_text("csat_overall") in html
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def tampered(token: str) -> str:
    payload, signature = token.rsplit(".", 1)
    flipped = "A" if signature[0] != "A" else "B"
    return f"{payload}.{flipped}{signature[1:]}"


@pytest.mark.parametrize(
    "make_path",
    [
        pytest.param(lambda s: f"/s/{tampered(s.token)}", id="tampered signature"),
        pytest.param(lambda s: "/s/" + s.token[:-6], id="truncated"),
        pytest.param(lambda s: "/s/not-a-token", id="garbage"),
        pytest.param(lambda s: "/s/" + s.token.split(".")[0], id="payload only"),
        pytest.param(lambda s: s.link + "/extra/bits", id="something stuck on the end"),
        pytest.param(lambda s: s.unsubscribe.rsplit("/", 1)[0], id="unsubscribe token as survey"),
    ],
)
def test_bad_links_get_the_customer_not_found_page(client, sent, make_path):
    page = client.get(make_path(sent))
    html = page.get_data(as_text=True)
    assert page.status_code == 404
    assert 'class="public"' in html  # the survey pages' layout, not the staff one
    assert "We cannot find this survey" in html
    assert "Traceback" not in html
    post = client.post(make_path(sent), data={"csat_overall": "5"})
    assert post.status_code == 404
    assert response_count() == 0


def test_a_link_for_an_unknown_invitation_or_another_key_is_not_found(mail_app, client, sent):
    invitation = sent.invitation()
    ghost = Invitation(id=invitation.id + 100, nonce=invitation.nonce)
    assert client.get(f"/s/{make_token(ghost)}").status_code == 404
    wrong_nonce = Invitation(id=invitation.id, nonce="x" * 43)
    assert client.get(f"/s/{make_token(wrong_nonce)}").status_code == 404
    with mail_app.test_request_context():
        mail_app.config["SECRET_KEY"], real = "another-secret", mail_app.config["SECRET_KEY"]
        forged = make_token(invitation)
        mail_app.config["SECRET_KEY"] = real
    assert client.get(f"/s/{forged}").status_code == 404


def test_a_never_sent_invitation_is_not_found(client):
    assert Webhook(client).post(closed_ticket()).status_code == 201  # pending, not dispatched
    invitation = db.session.scalar(db.select(Invitation))
    assert invitation.status is InvitationStatus.PENDING
    page = client.get(f"/s/{make_token(invitation)}")
    assert page.status_code == 404
    unsubscribe = f"/s/{make_token(invitation, UNSUBSCRIBE_SALT)}/unsubscribe"
    assert client.get(unsubscribe).status_code == 404


def test_a_reopened_ticket_withdraws_the_survey_410(client, sent):
    reopened = closed_ticket("T-1001", FIRST_CUSTOMER)
    reopened["event"] = "reopened"
    reopened["ticket"] = {**reopened["ticket"], "closed_at": None, "resolved_at": None}
    assert Webhook(client).post(reopened).status_code in (200, 201)
    assert sent.invitation().status is InvitationStatus.CANCELLED

    page = client.get(sent.link)
    html = page.get_data(as_text=True)
    assert page.status_code == 410
    assert '<html lang="zh-Hans">' in html  # the customer's language, from the invitation
    assert zh("This survey is no longer needed") in html
    assert client.post(sent.link, data={"csat_overall": "5"}).status_code == 410
    assert response_count() == 0


def test_an_expired_link_is_gone_410(client, sent):
    html_before = client.get(sent.link)
    token = csrf_from(html_before)
    sent.invitation().expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    page = client.get(sent.link)
    assert page.status_code == 410
    assert zh("This survey has closed") in page.get_data(as_text=True)
    # The page was open before the link expired: the submit is refused all the same.
    late = client.post(sent.link, data={"csrf_token": token, "csat_overall": "5"})
    assert late.status_code == 410
    assert response_count() == 0
    assert sent.invitation().status is InvitationStatus.SENT


def test_an_opted_out_customer_gets_a_clear_page_not_the_form(client, sent):
    token = csrf_from(client.get(sent.link))
    customer = db.session.get(Customer, sent.invitation().customer_id)
    customer.opted_out_at = utcnow()
    db.session.commit()

    page = client.get(sent.link)
    assert page.status_code == 410
    assert zh("You have unsubscribed from our surveys") in page.get_data(as_text=True)
    refused = client.post(sent.link, data={"csrf_token": token, "csat_overall": "5"})
    assert refused.status_code == 410
    assert response_count() == 0


# --- single use ---------------------------------------------------------------------------------


def test_an_answered_link_says_so_and_never_writes_twice(client, sent):
    first_tab = answers(client, sent.link, nps="9")
    second_tab = answers(client, sent.link, nps="2")
    done = client.post(sent.link, data=first_tab)
    assert done.status_code == 302
    assert done.headers["Location"].endswith(f"{sent.link}/thanks")
    thanks = client.get(done.headers["Location"])
    assert thanks.status_code == 200
    assert zh("Thank you!") in thanks.get_data(as_text=True)

    again = client.get(sent.link)
    assert again.status_code == 200
    assert zh("This survey has already been answered") in again.get_data(as_text=True)
    second = client.post(sent.link, data=second_tab)
    assert second.status_code == 409
    assert zh("This survey has already been answered") in second.get_data(as_text=True)
    assert response_count() == 1
    assert db.session.scalar(db.select(SurveyResponse.nps)) == 9


def test_thanks_before_answering_goes_to_the_survey(client, sent):
    early = client.get(f"{sent.link}/thanks")
    assert early.status_code == 302
    assert early.headers["Location"].endswith(sent.link)


def test_the_unique_constraint_refuses_a_second_response(client, sent):
    client.post(sent.link, data=answers(client, sent.link))
    invitation = sent.invitation()
    # Past the status check (as if two submits both saw "sent"): the constraint still holds.
    invitation.status = InvitationStatus.SENT
    db.session.commit()
    with pytest.raises(AlreadyAnswered):
        submit_response(invitation, {"csat_overall": 1}, "en")
    assert response_count() == 1
    assert sent.invitation().status is InvitationStatus.SENT  # the claim was rolled back

    stored = db.session.scalar(db.select(SurveyResponse))
    duplicate = SurveyResponse(
        invitation_id=stored.invitation_id, ticket_id=stored.ticket_id,
        customer_id=stored.customer_id, template_version_id=stored.template_version_id,
        language="en", channel=stored.channel, priority=stored.priority,
        customer_tier=stored.customer_tier,
    )  # fmt: skip
    db.session.add(duplicate)
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], str]]:
    """Serve an app on a free loopback port in a thread; return its base URL."""
    from werkzeug.serving import make_server

    servers: list[Any] = []

    def start(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """A cookie-keeping HTTP client, like one browser tab."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
        )

    def request(self, url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(url, data=body, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def race(url: str, submits: list[tuple[Browser, dict[str, str]]]) -> list[int]:
    """POST each form from its tab at the same moment; return the status codes."""
    barrier = threading.Barrier(len(submits))
    statuses: list[int] = []

    def submit(tab: Browser, form: dict[str, str]) -> None:
        barrier.wait()
        statuses.append(tab.request(url, form)[0])

    threads = [threading.Thread(target=submit, args=pair) for pair in submits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


@pytest.mark.real_db
def test_two_simultaneous_submits_store_exactly_one_response(mail_app, send_survey, serve):
    base = serve(mail_app)
    for round_ in range(3):
        sent = send_survey()
        tabs = [Browser(), Browser()]
        forms = []
        for n, tab in enumerate(tabs):
            status, html = tab.request(base + sent.link)
            assert status == 200
            forms.append({"csrf_token": CSRF_RE.search(html).group(1), "csat_overall": "5",
                          "nps": str(n), "comment": f"tab {n}"})  # fmt: skip
        statuses = race(base + sent.link, list(zip(tabs, forms, strict=True)))
        assert sorted(statuses) == [302, 409], f"round {round_}: {statuses}"
        db.session.commit()  # a fresh snapshot: the server wrote meanwhile
        rows = db.session.scalars(
            db.select(SurveyResponse).where(SurveyResponse.invitation_id == sent.invitation_id)
        ).all()
        assert len(rows) == 1
        assert len(rows[0].answers) == 8
        assert sent.invitation().status is InvitationStatus.ANSWERED


# --- one-click answers from the e-mail ----------------------------------------------------------


def test_the_email_offers_one_click_answers_and_list_unsubscribe(sent):
    message = sent.message
    html = message.get_body(preferencelist=("html",)).get_content()
    for value in range(1, 6):
        assert f"{sent.link}?csat_overall={value}" in html
    assert message["List-Unsubscribe"] == f"<http://127.0.0.1:5000{sent.unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_one_click_link_preselects_but_stores_nothing(client, sent):
    page = client.get(f"{sent.link}?csat_overall=2")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert checked_value(html, "csat_overall") == ["2"]
    # Mail scanners fetch every link: nothing was answered.
    for value in range(1, 6):
        client.get(f"{sent.link}?csat_overall={value}")
    assert response_count() == 0
    assert sent.invitation().status is InvitationStatus.SENT


@pytest.mark.parametrize("query", ["csat_overall=9", "csat_overall=abc", "nps=-1", "comment=hi"])
def test_a_link_cannot_preselect_anything_off_the_scale(client, sent, query):
    page = client.get(f"{sent.link}?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "checked" not in html
    assert "hi</textarea>" not in html
    assert "Please check these answers" not in html


# --- validation ---------------------------------------------------------------------------------

SCALES = {
    "csat_overall": (1, 5),
    "csat_speed": (1, 5),
    "csat_effectiveness": (1, 5),
    "nps": (0, 10),
    "ces": (1, 7),
}


@pytest.mark.parametrize(
    ("key", "value"),
    [(key, low) for key, (low, high) in SCALES.items()]
    + [(key, high) for key, (low, high) in SCALES.items()],
)
def test_each_scale_accepts_its_ends(client, sent, key, value):
    response = client.post(sent.link, data=answers(client, sent.link, **{key: str(value)}))
    assert response.status_code == 302
    stored = db.session.scalar(db.select(SurveyResponse))
    assert getattr(stored, key) == value


@pytest.mark.parametrize(
    ("key", "value"),
    [(key, str(low - 1)) for key, (low, high) in SCALES.items()]
    + [(key, str(high + 1)) for key, (low, high) in SCALES.items()]
    + [("csat_overall", "abc"), ("nps", "4.5"), ("ces", "1e3"), ("csat_speed", "9" * 20)],
)
def test_each_scale_refuses_what_is_off_it(client, sent, key, value):
    data = answers(client, sent.link, comment="kept", **{key: value})
    response = client.post(sent.link, data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    low, high = SCALES[key]
    assert zh("Choose a number from %(low)s to %(high)s.", low=low, high=high) in html
    summary = html.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
    assert question_text(key) in summary  # the message names the question
    assert "kept</textarea>" in html  # nothing the customer wrote is lost
    assert response_count() == 0
    assert sent.invitation().status is InvitationStatus.SENT


def test_a_missing_required_answer_is_refused(client, sent):
    response = client.post(sent.link, data=answers(client, sent.link, csat_overall=None, nps="7"))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert zh("Please choose an answer.") in html
    assert checked_value(html, "nps") == ["7"]
    assert response_count() == 0


def test_skipped_questions_are_stored_as_skips_not_zeros(client, sent):
    response = client.post(sent.link, data=answers(client, sent.link, nps="0", ces=""))
    assert response.status_code == 302
    stored = db.session.scalar(db.select(SurveyResponse))
    assert stored.nps == 0  # a real zero
    assert (stored.csat_speed, stored.ces, stored.comment) == (None, None, None)
    by_key = {answer.question_key: answer for answer in stored.answers}
    assert len(by_key) == 8  # every question of the version, answered or skipped
    assert by_key["nps"].skipped is False and by_key["nps"].value == 0
    for key in ("csat_speed", "csat_professionalism", "csat_attitude", "csat_effectiveness",
                "ces", "comment"):  # fmt: skip
        assert by_key[key].skipped is True
        assert by_key[key].value is None and by_key[key].text is None
    assert by_key["csat_overall"].question.text_for("en").startswith("Overall")
    assert stored.template_version_id == sent.invitation().template_version_id
    assert stored.submitted_at is not None and stored.language == "zh_Hans"


@pytest.mark.parametrize(
    ("comment", "stored"),
    [
        pytest.param("好" * 2000, "好" * 2000, id="2000 Chinese characters"),
        pytest.param("x" * 2000, "x" * 2000, id="2000 characters"),
        # Browsers send a line break as CR LF; the customer typed one character.
        pytest.param("a\r\n" * 666 + "ab", "a\n" * 666 + "ab", id="line breaks count once"),
        pytest.param("  spaced  \n", "  spaced  \n", id="as written"),
        pytest.param("nul\x00byte", "nulbyte", id="NUL dropped"),
        pytest.param("   ", None, id="blank is a skip"),
    ],
)
def test_free_text_is_stored_as_written(client, sent, comment, stored):
    response = client.post(sent.link, data=answers(client, sent.link, comment=comment))
    assert response.status_code == 302
    assert db.session.scalar(db.select(SurveyResponse.comment)) == stored


def test_free_text_over_2000_characters_is_refused(client, sent):
    response = client.post(sent.link, data=answers(client, sent.link, comment="x" * 2001))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert zh(TOO_LONG, max=2000, length=2001) in html
    assert 'maxlength="2000"' in html
    assert response_count() == 0


def test_script_in_a_comment_is_escaped_on_the_page_and_stored_verbatim(client, sent):
    script = '<script>alert("x")</script>'
    refused = client.post(sent.link, data=answers(client, sent.link, csat_overall="0",
                                                  comment=script))  # fmt: skip
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert script not in html
    accepted = client.post(sent.link, data=answers(client, sent.link, comment=script))
    assert accepted.status_code == 302
    assert db.session.scalar(db.select(SurveyResponse.comment)) == script


@pytest.mark.parametrize("token", [None, "wrong", "IjAxMjM0NTY3ODki.ZZZ.ZZZ"])
def test_a_missing_or_wrong_csrf_token_is_refused_and_keeps_the_answers(client, sent, token):
    data = answers(client, sent.link, nps="8", comment="please keep me", csrf_token=token)
    response = client.post(sent.link, data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert zh(NOT_SENT) in html
    assert checked_value(html, "nps") == ["8"]
    assert "please keep me</textarea>" in html
    assert response_count() == 0
    # The page carries a fresh token: sending again works.
    retry = client.post(sent.link, data={**data, "csrf_token": csrf_from(response)})
    assert retry.status_code == 302


def test_files_posted_for_answers_are_refused_not_crashed_on(client, sent):
    import io

    data = answers(client, sent.link)
    data["csat_overall"] = (io.BytesIO(b"5"), "five.txt")
    data["comment"] = (io.BytesIO(b"hello"), "comment.txt")
    response = client.post(sent.link, data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert zh("Choose a number from %(low)s to %(high)s.", low=1, high=5) in response.get_data(
        as_text=True
    )
    assert response_count() == 0


def test_a_form_too_large_gets_a_customer_page(client, sent):
    data = answers(client, sent.link, comment="x" * (3 * 1024 * 1024))
    response = client.post(sent.link, data=data)
    assert response.status_code == 413
    assert 'class="public"' in response.get_data(as_text=True)
    assert response_count() == 0


# --- what a response keeps ----------------------------------------------------------------------


def test_the_response_keeps_the_ticket_as_it_was(client, sent):
    assert client.post(sent.link, data=answers(client, sent.link)).status_code == 302
    updated = closed_ticket("T-1001", FIRST_CUSTOMER)
    updated["event"] = "updated"
    updated["ticket"] = {**updated["ticket"], "team": "Escalations", "agent": "李雷",
                         "priority": "P1", "channel": "phone"}  # fmt: skip
    assert Webhook(client).post(updated).status_code in (200, 201)
    ticket = sent.invitation().ticket
    assert (ticket.team, ticket.priority) == ("Escalations", Priority.P1)

    stored = db.session.scalar(db.select(SurveyResponse))
    assert (stored.team, stored.agent, stored.channel, stored.priority) == (
        "Frontline",
        "王芳",
        Channel.CHAT,
        Priority.P2,
    )
    assert stored.ticket_id == ticket.id


# --- unsubscribe --------------------------------------------------------------------------------


def test_unsubscribe_asks_first_and_a_get_changes_nothing(client, sent):
    page = client.get(sent.unsubscribe)
    assert page.status_code == 200
    assert zh("Stop receiving surveys?") in page.get_data(as_text=True)
    assert db.session.scalar(db.select(Customer.opted_out_at)) is None

    done = client.post(sent.unsubscribe)
    assert done.status_code == 200
    assert zh("You are unsubscribed") in done.get_data(as_text=True)
    assert db.session.scalar(db.select(Customer.opted_out_at)) is not None
    assert zh("You are unsubscribed") in client.get(sent.unsubscribe).get_data(as_text=True)


def test_one_click_unsubscribe_rfc_8058(mail_app, sent):
    # A mail provider posts without cookies, form token or a page visit first.
    provider = mail_app.test_client()
    response = provider.post(
        sent.unsubscribe,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert db.session.scalar(db.select(Customer.opted_out_at)) is not None
    assert provider.post(sent.unsubscribe, data="List-Unsubscribe=One-Click").status_code == 200


def test_a_survey_token_does_not_unsubscribe(client, sent):
    response = client.post(f"{sent.link}/unsubscribe", data="List-Unsubscribe=One-Click")
    assert response.status_code == 404
    assert db.session.scalar(db.select(Customer.opted_out_at)) is None
    invitation = sent.invitation()
    assert client.get(f"/s/{make_token(invitation, SURVEY_SALT)}/unsubscribe").status_code == 404


# --- languages and accessibility ----------------------------------------------------------------


def test_the_switcher_turns_a_chinese_page_into_english(client, sent):
    page = client.get(sent.link)
    html = page.get_data(as_text=True)
    assert question_text("nps", "zh_Hans") in html
    switched = client.post(
        "/language",
        data={"lang": "en", "next": sent.link, "csrf_token": csrf_from(page)},
    )
    assert switched.status_code == 302
    english = client.get(switched.headers["Location"]).get_data(as_text=True)
    assert '<html lang="en">' in english
    assert question_text("nps", "en") in english
    assert client.post(sent.link, data=answers(client, sent.link)).status_code == 302
    assert db.session.scalar(db.select(SurveyResponse.language)) == "en"


def test_an_english_customer_gets_english(client, send_survey):
    sent = send_survey(language="en")
    html = client.get(sent.link).get_data(as_text=True)
    assert '<html lang="en">' in html
    assert question_text("csat_overall", "en") in html
    assert "Not at all likely" in html


def test_the_form_is_labelled_for_screen_readers(client, sent):
    html = client.get(sent.link).get_data(as_text=True)
    # One fieldset and legend per rating question, one label per option.
    assert html.count("<fieldset") == 7
    assert html.count("<legend") == 7
    assert html.count('type="radio"') == 4 * 5 + 5 + 11 + 7
    for input_id in re.findall(r'<input[^>]*type="radio"[^>]*id="([^"]+)"', html) + re.findall(
        r'<input[^>]*id="([^"]+)"[^>]*type="radio"', html
    ):
        assert f'<label for="{input_id}">' in html
    # The ends of each scale are spelt out in the option labels.
    assert '1<span class="visually-hidden">, 非常不满意</span>' in html or (
        '1<span class="visually-hidden">, Very dissatisfied</span>' in html
    )
    assert '<label for="comment" class="question__text">' in html
    assert 'aria-describedby="comment-help"' in html


def test_answered_state_is_not_leaked_to_other_customers(client, send_survey):
    first, second = send_survey(), send_survey()
    assert client.post(first.link, data=answers(client, first.link)).status_code == 302
    assert client.get(second.link).status_code == 200
    assert db.session.scalar(db.select(db.func.count()).select_from(Answer)) == 8


def test_unsubscribe_still_works_once_the_survey_link_expired(client, sent):
    sent.invitation().expires_at = utcnow() - timedelta(days=1)
    db.session.commit()
    assert client.get(sent.link).status_code == 410
    assert client.post(sent.unsubscribe).status_code == 200
    assert db.session.scalar(db.select(Customer.opted_out_at)) is not None


# --- the database briefly unavailable ---------------------------------------------------------


def _database_gone(*_args: Any, **_kwargs: Any) -> None:
    raise OperationalError("BEGIN", {}, Exception("server closed the connection unexpectedly"))


def test_a_submit_while_the_database_is_unavailable_gets_503_and_counts_once_when_resent(
    client, sent, monkeypatch, caplog
):
    data = answers(client, sent.link, csat_overall="2", comment="慢")
    with monkeypatch.context() as patch:
        patch.setattr(responses, "write_transaction", _database_gone)
        page = client.post(sent.link, data=data)
    html = page.get_data(as_text=True)
    assert page.status_code == 503
    # At least ours (5 s); Flask-Limiter raises it to its window's reset on limited pages.
    assert int(page.headers["Retry-After"]) >= 5
    # The survey again, the customer's answers still filled in, to send once more.
    assert (
        zh(
            "Your answers were not saved: our service was briefly unavailable. They are still "
            "filled in below — please send them again in a moment."
        )
        in html
    )
    assert checked_value(html, "csat_overall") == ["2"]
    assert "慢</textarea>" in html
    assert "Traceback" not in html and "server closed" not in html
    assert response_count() == 0
    assert sent.invitation().status is InvitationStatus.SENT
    assert "database unavailable, answered 503: POST /s/" in caplog.text
    # The customer sends the same form again once the database is back: one response.
    assert client.post(sent.link, data=data).status_code == 302
    assert client.post(sent.link, data=data).status_code == 409
    assert response_count() == 1


def test_a_link_opened_while_the_database_is_unavailable_gets_the_503_page(
    client, sent, monkeypatch
):
    monkeypatch.setattr(links, "_survey_link", _database_gone)
    # Which customer it is cannot be read: the browser's language speaks.
    page = client.get(sent.link, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 503
    assert zh("Please open the link again in a moment.") in page.get_data(as_text=True)


def test_the_webhook_answers_503_json_while_the_database_is_unavailable(client, monkeypatch):
    monkeypatch.setattr(api, "apply_ticket_event", _database_gone)
    response = Webhook(client).post(closed_ticket("T-503", FIRST_CUSTOMER))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 5
    assert response.json["error"]["code"] == "database_unavailable"
