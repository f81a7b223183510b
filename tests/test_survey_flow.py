"""The loop end to end: a close arrives, the invitation is mailed, the customer answers."""

from __future__ import annotations

import re
from datetime import timedelta

from survey_app.extensions import db
from survey_app.surveys.invitations import dispatch_due
from survey_app.surveys.models import Invitation, InvitationStatus, SurveyResponse
from survey_app.types import utcnow
from tests.conftest import Webhook, event_payload


def test_close_mail_answer(mail_app, mailbox):
    client = mail_app.test_client()
    closed = (utcnow() - timedelta(hours=2)).isoformat()
    created = (utcnow() - timedelta(hours=5)).isoformat()
    payload = event_payload(
        ticket={"created_at": created, "first_response_at": created, "resolved_at": closed,
                "closed_at": closed},
    )  # fmt: skip
    assert Webhook(client).post(payload).status_code == 201
    invitation = db.session.scalar(db.select(Invitation))
    assert invitation.status is InvitationStatus.PENDING

    report = dispatch_due()
    assert report.sent == 1
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["To"] == "zhang.san@example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "总体而言" in text and 'lang="zh-Hans"' in html
    link = re.search(r"http://127\.0\.0\.1:5000(/s/[^\s?\"]+)\s", text).group(1)

    page = client.get(link)
    assert page.status_code == 200
    assert "总体而言" in page.get_data(as_text=True)
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    answers = {
        "csrf_token": token.group(1),
        "csat_overall": "4",
        "nps": "9",
        "comment": "<b>快</b>",
    }
    response = client.post(link, data=answers)
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = db.session.scalar(db.select(SurveyResponse))
    assert (stored.csat_overall, stored.nps, stored.csat_speed, stored.comment) == (
        4,
        9,
        None,
        "<b>快</b>",
    )
    again = client.post(link, data=answers)
    assert again.status_code == 409
    assert db.session.scalar(db.select(db.func.count()).select_from(SurveyResponse)) == 1


def test_staff_see_the_survey_on_the_ticket_page_with_the_comment_escaped(
    mail_app, mailbox, make_user
):
    from survey_app.models import Role, Ticket
    from survey_app.surveys.responses import submit_response
    from tests.conftest import Auth

    client = mail_app.test_client()
    closed = (utcnow() - timedelta(hours=2)).isoformat()
    created = (utcnow() - timedelta(hours=5)).isoformat()
    payload = event_payload(
        ticket={"created_at": created, "first_response_at": created, "resolved_at": closed,
                "closed_at": closed},
    )  # fmt: skip
    Webhook(client).post(payload)
    # make_user pushed the plain ``app``'s context over mail_app's: send from mail_app.
    with mail_app.app_context():
        assert dispatch_due().sent == 1
    invitation = db.session.scalar(db.select(Invitation))
    submit_response(
        invitation,
        {"csat_overall": 2, "nps": 3, "comment": "<script>alert(1)</script>"},
        "zh_Hans",
    )
    ticket = db.session.scalar(db.select(Ticket))

    Auth(client).login(make_user(Role.ANALYST))
    html = client.get(f"/tickets/{ticket.id}").get_data(as_text=True)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert "answered" in html
