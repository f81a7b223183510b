"""Survey admin: templates and drafts (published versions never change), preview, targeting,
the invitation policy, and the invitation log with its counts and filters."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from survey_app.extensions import db
from survey_app.models import Channel, Role, Ticket, Tier, User
from survey_app.surveys.defaults import DEFAULT_QUESTIONS, DEFAULT_TEMPLATE_NAME
from survey_app.surveys.models import (
    Invitation,
    InvitationPolicy,
    InvitationStatus,
    Question,
    SkipReason,
    SurveyTemplate,
    TemplateVersion,
    VersionStatus,
)
from survey_app.surveys.policy import current_policy
from survey_app.surveys.versions import (
    TemplateError,
    create_template,
    editable_draft,
    ensure_default_template,
    update_question,
    version_for_ticket,
)
from survey_app.types import utcnow
from tests.conftest import Auth, Webhook, csrf_token, event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

PREFIX = "/admin/surveys"


@pytest.fixture
def admin_client(client: FlaskClient, auth: Auth, make_user: Callable[..., User]) -> FlaskClient:
    auth.sign_in(make_user(Role.ADMIN))
    return client


@pytest.fixture
def published() -> SurveyTemplate:
    """The default template, version 1 published."""
    template = ensure_default_template()
    db.session.commit()
    return template


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None):
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client)})


def texts(version: TemplateVersion) -> list[tuple[int, str, str, bool, dict[str, str]]]:
    """Everything about a version's questions, as read from the database now."""
    rows = db.session.scalars(
        select(Question).where(Question.version_id == version.id).order_by(Question.position)
    )
    return [(q.position, q.key, q.kind.value, q.required, dict(q.text)) for q in rows]


def version(template: SurveyTemplate, number: int) -> TemplateVersion:
    found = db.session.scalar(
        select(TemplateVersion).where(
            TemplateVersion.template_id == template.id, TemplateVersion.number == number
        )
    )
    assert found is not None
    return found


def open_draft(client: FlaskClient, template: SurveyTemplate) -> TemplateVersion:
    response = post(client, f"{PREFIX}/templates/{template.id}/draft")
    assert response.status_code == 302
    match = re.search(r"/versions/(\d+)/edit$", response.headers["Location"])
    assert match, response.headers["Location"]
    draft = db.session.get(TemplateVersion, int(match.group(1)))
    assert draft is not None
    return draft


def question(draft: TemplateVersion, key: str) -> Question:
    found = db.session.scalar(
        select(Question).where(Question.version_id == draft.id, Question.key == key)
    )
    assert found is not None
    return found


def page_text(response: Any) -> str:
    return response.get_data(as_text=True)


# --- templates and drafts --------------------------------------------------------------------


def test_edits_happen_on_a_draft_and_never_change_the_published_version(admin_client, published):
    v1 = version(published, 1)
    before = texts(v1)
    intro_before = dict(v1.intro)

    draft = open_draft(admin_client, published)
    assert (draft.number, draft.status) == (2, VersionStatus.DRAFT)
    assert texts(draft) == before, "the draft starts as a copy of the newest version"
    assert open_draft(admin_client, published).id == draft.id, "one draft at a time"

    base = f"{PREFIX}/versions/{draft.id}"
    overall = question(draft, "csat_overall")
    response = post(
        admin_client,
        f"{base}/questions/{overall.id}",
        {f"q{overall.id}-en": "How did we do?", f"q{overall.id}-zh_Hans": "我们做得怎么样？"},
    )
    assert response.status_code == 302
    assert (
        post(admin_client, f"{base}/intro", {"en": "Hi {ticket}", "zh_Hans": "您好"}).status_code
        == 302
    )
    response = post(
        admin_client,
        f"{base}/questions",
        {"new-key": "csat_billing", "new-kind": "csat", "new-en": "Billing?",
         "new-zh_Hans": "账单？", "new-required": "y"},
    )  # fmt: skip
    assert response.status_code == 302
    speed = question(draft, "csat_speed")
    assert post(admin_client, f"{base}/questions/{speed.id}/delete").status_code == 302
    comment = question(draft, "comment")
    assert (
        post(
            admin_client, f"{base}/questions/{comment.id}/move", {"direction": "down"}
        ).status_code
        == 302
    )

    db.session.expire_all()
    edited = texts(draft)
    keys = [key for _pos, key, *_rest in edited]
    assert keys[0] == "csat_overall" and "csat_speed" not in keys
    assert keys[-2:] == ["csat_billing", "comment"], "comment moved below the new question"
    assert [pos for pos, *_rest in edited] == list(range(1, len(edited) + 1))
    assert edited[0][4] == {"en": "How did we do?", "zh_Hans": "我们做得怎么样？"}
    assert edited[0][3] is False, "the unticked box saved required=False"
    assert texts(v1) == before
    assert v1.intro == intro_before and v1.status is VersionStatus.PUBLISHED

    response = post(admin_client, f"{base}/publish")
    assert response.status_code == 302
    db.session.expire_all()
    assert (draft.status, v1.status) == (VersionStatus.PUBLISHED, VersionStatus.RETIRED)
    assert texts(v1) == before, "publishing the draft leaves the old version as it was"
    assert v1.intro == intro_before

    draft3 = open_draft(admin_client, published)
    assert draft3.number == 3
    assert texts(draft3) == texts(draft)
    page = page_text(admin_client.get(f"{PREFIX}/templates/{published.id}"))
    for label in ("draft", "published", "retired"):
        assert f"<td>{label}</td>" in page


def test_a_published_or_retired_version_refuses_edits(admin_client, published):
    v1 = version(published, 1)
    before = texts(v1)
    overall = question(v1, "csat_overall")

    response = post(
        admin_client,
        f"{PREFIX}/versions/{v1.id}/questions/{overall.id}",
        {f"q{overall.id}-en": "Changed", f"q{overall.id}-zh_Hans": "改"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/templates/{published.id}")
    follow = page_text(admin_client.get(response.headers["Location"]))
    assert "A published version cannot be changed" in follow
    for action in ("delete", "move"):
        post(admin_client, f"{PREFIX}/versions/{v1.id}/questions/{overall.id}/{action}",
             {"direction": "down"})  # fmt: skip
    post(admin_client, f"{PREFIX}/versions/{v1.id}/questions",
         {"new-key": "extra", "new-kind": "csat", "new-en": "x", "new-zh_Hans": "x"})  # fmt: skip
    post(admin_client, f"{PREFIX}/versions/{v1.id}/intro", {"en": "Changed"})
    assert post(admin_client, f"{PREFIX}/versions/{v1.id}/publish").status_code == 302
    assert admin_client.get(f"{PREFIX}/versions/{v1.id}/edit").status_code == 302
    db.session.expire_all()
    assert texts(v1) == before
    assert v1.status is VersionStatus.PUBLISHED

    with pytest.raises(TemplateError):
        update_question(v1, overall, en="Changed", zh_hans="改", required=False)


def test_a_question_of_another_version_is_not_found(admin_client, published):
    draft = editable_draft(published)
    db.session.commit()
    foreign = question(version(published, 1), "nps")
    response = post(admin_client, f"{PREFIX}/versions/{draft.id}/questions/{foreign.id}/delete")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing-chinese", "Question csat_overall needs English and Chinese text."),
        ("no-rating", "A survey needs at least one rating question."),
    ],
)
def test_publish_errors_are_shown_and_nothing_is_published(
    admin_client, published, change, message
):
    draft = open_draft(admin_client, published)
    if change == "missing-chinese":
        overall = question(draft, "csat_overall")
        post(admin_client, f"{PREFIX}/versions/{draft.id}/questions/{overall.id}",
             {f"q{overall.id}-en": "Overall?", f"q{overall.id}-zh_Hans": "  "})  # fmt: skip
    else:
        for q in list(draft.questions):
            if q.kind.value != "text":
                post(admin_client, f"{PREFIX}/versions/{draft.id}/questions/{q.id}/delete")

    response = post(admin_client, f"{PREFIX}/versions/{draft.id}/publish")

    assert response.status_code == 400
    assert message in page_text(response)
    db.session.expire_all()
    assert draft.status is VersionStatus.DRAFT
    assert version(published, 1).status is VersionStatus.PUBLISHED


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"new-key": "Bad Key"}, "Use lower-case letters"),
        ({"new-key": ""}, "This field is required."),
        ({"new-key": "nps"}, "This version already has a question with the key nps."),
        ({"new-kind": "stars"}, "Not a valid choice"),
        ({"new-en": "x" * 501}, "Field cannot be longer than 500 characters."),
    ],
)
def test_adding_a_question_is_validated(admin_client, published, fields, message):
    draft = open_draft(admin_client, published)
    before = texts(draft)
    data = {"new-key": "csat_extra", "new-kind": "csat", "new-en": "E", "new-zh_Hans": "中"}
    response = post(admin_client, f"{PREFIX}/versions/{draft.id}/questions", {**data, **fields})
    assert response.status_code == 400
    assert message in page_text(response)
    db.session.expire_all()
    assert texts(draft) == before


def test_a_standard_metric_key_keeps_its_kind(admin_client, published):
    draft = open_draft(admin_client, published)
    ces = question(draft, "ces")
    post(admin_client, f"{PREFIX}/versions/{draft.id}/questions/{ces.id}/delete")
    data = {"new-key": "ces", "new-kind": "csat", "new-en": "E", "new-zh_Hans": "中"}
    response = post(admin_client, f"{PREFIX}/versions/{draft.id}/questions", data)
    assert response.status_code == 400
    assert "The key ces is the standard CES question; choose another key." in page_text(response)
    response = post(
        admin_client, f"{PREFIX}/versions/{draft.id}/questions", {**data, "new-kind": "ces"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert question(draft, "ces").position == len(DEFAULT_QUESTIONS)


def test_the_ends_of_the_list_stay_put(admin_client, published):
    draft = open_draft(admin_client, published)
    first = question(draft, "csat_overall")
    url = f"{PREFIX}/versions/{draft.id}/questions/{first.id}/move"
    assert post(admin_client, url, {"direction": "up"}).status_code == 302
    assert post(admin_client, url, {"direction": "sideways"}).status_code == 400
    db.session.expire_all()
    assert first.position == 1


def test_user_text_is_escaped(admin_client, published):
    draft = open_draft(admin_client, published)
    overall = question(draft, "csat_overall")
    post(admin_client, f"{PREFIX}/versions/{draft.id}/questions/{overall.id}",
         {f"q{overall.id}-en": "<script>alert(1)</script>",
          f"q{overall.id}-zh_Hans": "中"})  # fmt: skip
    post(admin_client, f"{PREFIX}/templates/{published.id}/settings",
         {"name": "<b>Bold</b>", "priority": "0", "active": "y"})  # fmt: skip
    for url in (
        f"{PREFIX}/versions/{draft.id}/edit",
        f"{PREFIX}/versions/{draft.id}/preview",
        f"{PREFIX}/templates",
    ):
        page = page_text(admin_client.get(url))
        assert "<script>alert(1)</script>" not in page and "<b>Bold</b>" not in page
    assert "&lt;script&gt;" in page_text(admin_client.get(f"{PREFIX}/versions/{draft.id}/preview"))


# --- preview ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "lang"), [("en", "en"), ("zh-CN", "zh_Hans")])
def test_preview_renders_every_question_and_cannot_be_sent(admin_client, published, accept, lang):
    v1 = version(published, 1)
    response = admin_client.get(
        f"{PREFIX}/versions/{v1.id}/preview", headers={"Accept-Language": accept}
    )
    assert response.status_code == 200
    page = page_text(response)
    for q in v1.questions:
        assert q.text[lang] in page
    assert '<button type="button" class="primary big" disabled>' in page
    assert '<button type="submit" class="primary big">' not in page
    assert "T-12345" in page, "the intro's {ticket} shows a sample number"


def test_preview_of_a_draft_shows_its_new_question(admin_client, published):
    draft = open_draft(admin_client, published)
    post(admin_client, f"{PREFIX}/versions/{draft.id}/questions",
         {"new-key": "ces_setup", "new-kind": "ces", "new-en": "Was setup easy?",
          "new-zh_Hans": "设置容易吗？"})  # fmt: skip
    page = page_text(admin_client.get(f"{PREFIX}/versions/{draft.id}/preview"))
    assert "Was setup easy?" in page
    assert 'name="ces_setup"' in page
    v1_page = page_text(admin_client.get(f"{PREFIX}/versions/{version(published, 1).id}/preview"))
    assert "Was setup easy?" not in v1_page


# --- templates: create, targeting ------------------------------------------------------------


def test_create_a_targeted_template_and_edit_its_targeting(admin_client, published):
    response = admin_client.post(
        f"{PREFIX}/templates/new",
        data={"name": " VIP chat ", "channels": ["email", "chat"], "tiers": ["vip"],
              "priority": "5", "active": "y", "csrf_token": csrf_token(admin_client)},
    )  # fmt: skip
    assert response.status_code == 302
    template = db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.name == "VIP chat"))
    assert template is not None
    assert (template.channels, template.tiers, template.priority, template.active) == (
        ["chat", "email"], ["vip"], 5, True,
    )  # fmt: skip
    [draft] = template.versions
    assert draft.status is VersionStatus.DRAFT
    assert [q.key for q in draft.questions] == [row[0] for row in DEFAULT_QUESTIONS]

    listing = page_text(admin_client.get(f"{PREFIX}/templates"))
    assert "VIP chat" in listing and "chat, e-mail" in listing and "VIP" in listing

    response = admin_client.post(
        f"{PREFIX}/templates/{template.id}/settings",
        data={"name": "VIP", "channels": [], "tiers": ["vip", "standard"], "priority": "-2",
              "csrf_token": csrf_token(admin_client)},
    )  # fmt: skip
    assert response.status_code == 302
    db.session.refresh(template)
    assert (template.name, template.channels, template.tiers, template.priority) == (
        "VIP", [], ["vip", "standard"], -2,
    )  # fmt: skip
    assert template.active is False


def test_targeting_decides_which_published_version_a_ticket_gets(admin_client, published):
    template = create_template("VIP phone", channels=[Channel.PHONE], tiers=[Tier.VIP])
    db.session.commit()
    Webhook(admin_client).post(event_payload(ticket={"channel": "phone"}))
    ticket = db.session.scalar(select(Ticket))
    assert ticket is not None and ticket.customer.tier is Tier.VIP

    assert version_for_ticket(ticket) == version(published, 1), "an unpublished draft is unused"
    assert (
        post(admin_client, f"{PREFIX}/versions/{template.versions[0].id}/publish").status_code
        == 302
    )
    db.session.expire_all()
    assert version_for_ticket(ticket) == version(template, 1)

    post(admin_client, f"{PREFIX}/templates/{template.id}/settings",
         {"name": "VIP phone", "channels": "chat", "tiers": "vip", "priority": "0",
          "active": "y"})  # fmt: skip
    db.session.expire_all()
    assert version_for_ticket(ticket) == version(published, 1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": DEFAULT_TEMPLATE_NAME.upper()}, "already exists"),
        ({"name": ""}, "This field is required."),
        ({"channels": "fax"}, "not a valid choice"),
        ({"priority": "high"}, "Not a valid integer value."),
    ],
)
def test_create_template_is_validated(admin_client, published, fields, message):
    data = {"name": "New one", "priority": "0", **fields}
    response = post(admin_client, f"{PREFIX}/templates/new", data)
    assert response.status_code == 400
    assert message in page_text(response)
    assert db.session.scalar(select(func.count()).select_from(SurveyTemplate)) == 1


def test_rename_to_a_taken_name_is_refused(admin_client, published):
    other = create_template("Other")
    db.session.commit()
    response = post(admin_client, f"{PREFIX}/templates/{other.id}/settings",
                    {"name": DEFAULT_TEMPLATE_NAME, "priority": "0"})  # fmt: skip
    assert response.status_code == 400
    assert "already exists" in page_text(response)
    db.session.refresh(other)
    assert other.name == "Other"


# --- the invitation policy -------------------------------------------------------------------

VALID_POLICY = {
    "delay_minutes": "120",
    "link_valid_days": "7",
    "reminder_after_days": "2",
    "fatigue_days": "60",
    "sampling_percent": "25",
    "exempt_detractors": "y",
    "max_attempts": "3",
}
DEFAULTS = {"delay_minutes": 60, "link_valid_days": 14, "reminder_after_days": 3,
            "fatigue_days": 30, "sampling_percent": 100, "exempt_detractors": False,
            "max_attempts": 5}  # fmt: skip


def policy_values() -> dict[str, Any]:
    db.session.expire_all()
    policy = current_policy()
    return {name: getattr(policy, name) for name in DEFAULTS}


def test_policy_page_shows_the_defaults_and_saves(admin_client):
    page = page_text(admin_client.get(f"{PREFIX}/policy"))
    assert re.search(r'name="delay_minutes"[^>]*value="60"', page)
    assert re.search(r'name="link_valid_days"[^>]*value="14"', page)
    assert policy_values() == DEFAULTS

    response = post(admin_client, f"{PREFIX}/policy", VALID_POLICY)
    assert response.status_code == 302
    assert policy_values() == {
        "delay_minutes": 120, "link_valid_days": 7, "reminder_after_days": 2,
        "fatigue_days": 60, "sampling_percent": 25, "exempt_detractors": True,
        "max_attempts": 3,
    }  # fmt: skip
    assert db.session.scalar(select(func.count()).select_from(InvitationPolicy)) == 1

    edge = {**VALID_POLICY, "delay_minutes": "10080", "link_valid_days": "1",
            "reminder_after_days": "0", "fatigue_days": "0", "sampling_percent": "0",
            "max_attempts": "20"}  # fmt: skip
    del edge["exempt_detractors"]
    assert post(admin_client, f"{PREFIX}/policy", edge).status_code == 302
    saved = policy_values()
    assert (saved["delay_minutes"], saved["reminder_after_days"], saved["exempt_detractors"]) == (
        10080, 0, False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"delay_minutes": "-1"}, "Number must be between 0 and 10080."),
        ({"delay_minutes": "10081"}, "Number must be between 0 and 10080."),
        ({"delay_minutes": "soon"}, "Not a valid integer value."),
        ({"delay_minutes": ""}, "This field is required."),
        ({"link_valid_days": "0"}, "Number must be between 1 and 90."),
        ({"link_valid_days": "91"}, "Number must be between 1 and 90."),
        ({"reminder_after_days": "31", "link_valid_days": "60"}, "between 0 and 30"),
        ({"reminder_after_days": "7", "link_valid_days": "7"}, "before the link expires"),
        ({"fatigue_days": "366"}, "Number must be between 0 and 365."),
        ({"sampling_percent": "101"}, "Number must be between 0 and 100."),
        ({"sampling_percent": "-5"}, "Number must be between 0 and 100."),
        ({"max_attempts": "0"}, "Number must be between 1 and 20."),
        ({"max_attempts": "21"}, "Number must be between 1 and 20."),
    ],
)
def test_policy_form_refuses_out_of_range_values(admin_client, fields, message):
    response = post(admin_client, f"{PREFIX}/policy", {**VALID_POLICY, **fields})
    assert response.status_code == 400
    assert message in page_text(response)
    assert policy_values() == DEFAULTS


# --- the invitation log ----------------------------------------------------------------------

#: (status, skip reason, last error) of the invitations the log test creates.
DECISIONS = [
    (InvitationStatus.SENT, None, None),
    (InvitationStatus.SENT, None, None),
    (InvitationStatus.ANSWERED, None, None),
    (InvitationStatus.SKIPPED, SkipReason.FATIGUE, None),
    (InvitationStatus.SKIPPED, SkipReason.FATIGUE, None),
    (InvitationStatus.SKIPPED, SkipReason.OPTED_OUT, None),
    (InvitationStatus.CANCELLED, SkipReason.TICKET_REOPENED, None),
    (InvitationStatus.FAILED, None, "550 <mailbox@unavailable>"),
    (InvitationStatus.PENDING, None, None),
]


@pytest.fixture
def decisions(client: FlaskClient) -> list[Invitation]:
    """One invitation per row of DECISIONS, made by real closes, then given its outcome."""
    closed = (utcnow() - timedelta(hours=2)).isoformat()
    webhook = Webhook(client)
    for n in range(len(DECISIONS)):
        payload = event_payload(
            ticket={"external_id": f"T-{n}", "closed_at": closed, "resolved_at": closed},
            customer={"external_id": f"C-{n}", "email": f"c{n}@example.com"},
        )
        assert webhook.post(payload).status_code == 201
    invitations = list(db.session.scalars(select(Invitation).order_by(Invitation.id)))
    assert len(invitations) == len(DECISIONS)
    for invitation, (status, reason, error) in zip(invitations, DECISIONS, strict=True):
        invitation.status, invitation.skip_reason, invitation.last_error = status, reason, error
        if status in (InvitationStatus.SENT, InvitationStatus.ANSWERED):
            invitation.sent_at = utcnow()
        if status is InvitationStatus.ANSWERED:
            invitation.answered_at = utcnow()
    invitations[0].reminded_at = utcnow()
    db.session.commit()
    return invitations


def stat(page: str, status: str) -> int:
    match = re.search(rf'data-status="{status}"><span class="stat__value">(\d+)<', page)
    assert match, status
    return int(match.group(1))


def reason_count(page: str, reason: str) -> int:
    match = re.search(rf'data-reason="{reason}">.*?</td><td>(\d+)</td>', page)
    assert match, reason
    return int(match.group(1))


def rows(page: str) -> list[str]:
    return re.findall(r'href="/tickets/\d+">(T-\d+)</a>', page)


def test_invitation_log_counts_by_status_and_reason(client, auth, make_user, decisions):
    auth.sign_in(make_user(Role.MANAGER))
    response = client.get(f"{PREFIX}/invitations")
    assert response.status_code == 200
    page = page_text(response)
    expected = {"sent": 2, "answered": 1, "skipped": 3, "cancelled": 1, "failed": 1,
                "pending": 1, "sending": 0}  # fmt: skip
    assert {status: stat(page, status) for status in expected} == expected
    assert reason_count(page, "fatigue") == 2
    assert reason_count(page, "opted_out") == 1
    assert reason_count(page, "ticket_reopened") == 1
    assert 'data-reason="no_contact"' not in page
    assert re.search(r'id="response-rate"><span class="stat__value">33 %<', page)
    assert "550 &lt;mailbox@unavailable&gt;" in page
    assert page.count("reminded ") == 1
    assert rows(page) == [f"T-{n}" for n in reversed(range(len(DECISIONS)))], "newest first"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=skipped", ["T-5", "T-4", "T-3"]),
        ("skip_reason=fatigue", ["T-4", "T-3"]),
        ("status=cancelled&skip_reason=ticket_reopened", ["T-6"]),
        ("status=failed", ["T-7"]),
        ("status=answered&skip_reason=fatigue", []),
        ("status=bogus&skip_reason=opted_out", ["T-5"]),
    ],
)
def test_invitation_log_filters(admin_client, decisions, query, expected):
    response = admin_client.get(f"{PREFIX}/invitations?{query}")
    assert response.status_code == 200
    page = page_text(response)
    assert rows(page) == expected
    if "bogus" in query:
        assert "Not a valid choice" in page
    assert stat(page, "skipped") == 3, "the counts describe every invitation"


def test_invitation_log_pages(make_app, auth, make_user, decisions):
    app = make_app(PAGE_SIZE=4)
    client = app.test_client()
    Auth(client).login(make_user(Role.ADMIN))
    first = page_text(client.get(f"{PREFIX}/invitations"))
    assert len(rows(first)) == 4 and 'rel="next"' in first
    last = page_text(client.get(f"{PREFIX}/invitations?page=3"))
    assert rows(last) == ["T-0"]


# --- CSRF and navigation ---------------------------------------------------------------------


def test_a_post_without_a_csrf_token_is_refused(admin_client, published):
    response = admin_client.post(f"{PREFIX}/policy", data=VALID_POLICY)
    assert response.status_code == 400
    assert "The form expired" in page_text(response)
    assert policy_values() == DEFAULTS
    response = admin_client.post(f"{PREFIX}/templates/{published.id}/draft")
    assert response.status_code == 400
    assert len(published.versions) == 1


@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        (Role.ADMIN, ["/admin/surveys/templates", "/admin/surveys/policy",
                      "/admin/surveys/invitations"], []),
        (Role.MANAGER, ["/admin/surveys/invitations"],
         ["/admin/surveys/templates", "/admin/surveys/policy"]),
        (Role.ANALYST, [], ["/admin/surveys/templates", "/admin/surveys/policy",
                            "/admin/surveys/invitations"]),
    ],
)  # fmt: skip
def test_nav_links_only_for_roles_that_may_open_them(client, auth, make_user, role, visible,
                                                      hidden):  # fmt: skip
    auth.sign_in(make_user(role))
    page = page_text(client.get("/"))
    for url in visible:
        assert f'href="{url}"' in page
    for url in hidden:
        assert f'href="{url}"' not in page
