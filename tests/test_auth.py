"""Staff accounts: sign-in, lock-out, CSRF, the role matrix, user admin, account, language, CLI."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

import survey_app.models
from analysis.sla.models import SlaClock, SlaPolicy
from survey_app.extensions import db
from survey_app.models import (
    Channel,
    Customer,
    Priority,
    Role,
    SignInThrottle,
    Ticket,
    TicketStatus,
    User,
)
from survey_app.surveys.defaults import DEFAULT_QUESTIONS
from survey_app.surveys.models import Question, SurveyTemplate, TemplateVersion, VersionStatus
from survey_app.surveys.policy import current_policy
from survey_app.surveys.versions import create_template
from survey_app.types import utcnow
from tests.conftest import PASSWORD, Auth, csrf_token, seeded_transaction
from tests.pdca_factories import matrix_form, pdca_matrix_ids
from tests.root_cause_factories import matrix_ids

NEW_PASSWORD = "a brand new passphrase"
GENERIC_FAILURE = "Sign-in failed: wrong e-mail or password."


def location(response: Any) -> str:
    """The redirect target as a site-relative path with its query (fails on other hosts)."""
    parts = urlsplit(response.headers["Location"])
    assert parts.netloc in ("", "localhost"), response.headers["Location"]
    return parts.path + (f"?{parts.query}" if parts.query else "")


def is_signed_in(client: FlaskClient) -> bool:
    return client.get("/account").status_code == 200


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email))


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def add_ticket(external_id: str = "T-1") -> Ticket:
    now = utcnow()
    customer = Customer(source="helpdesk", external_id=f"C-{external_id}", name="张三")
    ticket = Ticket(
        source="helpdesk",
        external_id=external_id,
        customer=customer,
        subject="Cannot sign in",
        channel=Channel.CHAT,
        priority=Priority.P2,
        status=TicketStatus.CLOSED,
        created_at=now - timedelta(hours=3),
        closed_at=now - timedelta(hours=1),
    )
    db.session.add(ticket)
    db.session.commit()
    return ticket


def add_survey_draft() -> dict[str, int]:
    """A template with a draft of the standard questions: its ids, and the last question's."""
    template = create_template("Matrix survey")
    draft = template.versions[0]
    db.session.commit()
    return {
        "template_id": template.id,
        "version_id": draft.id,
        "question_id": draft.questions[-1].id,
    }


# --- sign-in ---------------------------------------------------------------------------------


def throttle(user: User, address: str = "127.0.0.1") -> SignInThrottle | None:
    """The failed sign-ins of ``user`` from ``address`` (the test client's by default)."""
    return db.session.scalar(
        select(SignInThrottle).where(
            SignInThrottle.user_id == user.id, SignInThrottle.address == address
        )
    )


def add_throttle(user: User, **fields: Any) -> SignInThrottle:
    row = SignInThrottle(user_id=user.id, address="127.0.0.1", **{"failures": 0, **fields})
    db.session.add(row)
    db.session.commit()
    return row


def test_login_redirects_home_and_records_the_sign_in(auth, client, make_user):
    user = make_user(Role.ANALYST)
    add_throttle(user, failures=2)

    response = auth.login(user)

    assert response.status_code == 302
    assert location(response) == "/"
    assert client.get("/").status_code == 200
    db.session.refresh(user)
    assert throttle(user) is None
    assert user.last_login_at is not None


def test_login_page_redirects_when_already_signed_in(auth, client, make_user):
    auth.login(make_user())
    response = client.get("/login")
    assert response.status_code == 302
    assert location(response) == "/"


def test_email_is_matched_case_insensitively(auth, make_user):
    user = make_user(email="lin.wei@example.com")
    assert auth.login("  Lin.Wei@Example.COM ").status_code == 302
    db.session.refresh(user)
    assert user.last_login_at is not None


def test_anonymous_visit_keeps_the_page_to_return_to(client, make_user):
    response = client.get("/tickets?status=closed")
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/login"
    next_url = parse_qs(target.query)["next"][0]
    assert next_url == "/tickets?status=closed"

    user = make_user()
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)},
        query_string={"next": next_url},
    )
    assert response.status_code == 302
    assert location(response) == "/tickets?status=closed"


@pytest.mark.parametrize(
    "next_url",
    [
        "http://evil.example/steal",
        "https://evil.example",
        "//evil.example/steal",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_login_never_redirects_off_site(client, make_user, next_url):
    user = make_user()
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)},
        query_string={"next": next_url},
    )
    assert response.status_code == 302
    target = response.headers["Location"]
    parts = urlsplit(target)
    assert parts.scheme in ("", "http")
    assert parts.netloc in ("", "localhost")
    assert not target.startswith("//")
    assert "\\" not in target
    if "\\" not in next_url:
        assert location(response) == "/"


def _normalised_page(response: Any) -> str:
    # The CSRF token and the echoed e-mail differ between two attempts; nothing else may.
    return re.sub(r'value="[^"]*"', 'value=""', response.get_data(as_text=True))


def test_wrong_password_and_unknown_email_look_the_same(make_user, make_app):
    user = make_user(email="known@example.com")
    app = make_app()
    wrong, unknown = app.test_client(), app.test_client()

    by_password = Auth(wrong).login(user.email, "not the password")
    by_email = Auth(unknown).login("nobody@example.com", "not the password")

    assert by_password.status_code == by_email.status_code == 401
    assert GENERIC_FAILURE in by_password.get_data(as_text=True)
    assert _normalised_page(by_password) == _normalised_page(by_email)
    assert not is_signed_in(wrong)
    assert not is_signed_in(unknown)


REFUSALS = {
    "unknown-email": ({}, "nobody@example.com", PASSWORD),
    "wrong-password": ({}, None, "not the password"),
    "disabled": ({"active": False}, None, PASSWORD),
    "locked": ({"locked_until": timedelta(minutes=10)}, None, PASSWORD),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_every_refusal_checks_one_password_hash(auth, make_user, monkeypatch, case):
    """Each refusal costs one hash check, so response times do not reveal which e-mails exist."""
    fields, email, password = REFUSALS[case]
    locked = fields.get("locked_until")
    user = make_user(**{k: v for k, v in fields.items() if k != "locked_until"})
    if locked is not None:
        add_throttle(user, locked_until=utcnow() + locked)
    real_check = survey_app.models.check_password_hash
    calls: list[str] = []

    def counting_check(pwhash: str, candidate: str) -> bool:
        calls.append(candidate)
        return real_check(pwhash, candidate)

    monkeypatch.setattr(survey_app.models, "check_password_hash", counting_check)

    response = auth.login(email or user.email, password)

    assert response.status_code == 401
    assert GENERIC_FAILURE in response.get_data(as_text=True)
    assert calls == [password]


def test_lockout_after_too_many_failures(app, auth, client, make_user):
    limit = app.config["LOGIN_MAX_FAILURES"]
    user = make_user()

    for _attempt in range(limit - 1):
        assert auth.login(user, "not the password").status_code == 401
    pause = throttle(user)
    assert pause is not None
    assert pause.failures == limit - 1
    assert pause.locked_until is None

    before = utcnow()
    assert auth.login(user, "not the password").status_code == 401
    db.session.refresh(pause)
    assert pause.locked_until is not None
    minutes = app.config["LOGIN_LOCKOUT_MINUTES"]
    assert before + timedelta(minutes=minutes) <= pause.locked_until
    assert pause.locked_until <= utcnow() + timedelta(minutes=minutes)

    # The right password is refused while locked, with the same message.
    response = auth.login(user, PASSWORD)
    assert response.status_code == 401
    assert GENERIC_FAILURE in response.get_data(as_text=True)
    assert not is_signed_in(client)

    # Once the pause is over the account signs in again and the counters reset.
    pause.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert auth.login(user, PASSWORD).status_code == 302
    assert is_signed_in(client)
    assert throttle(user) is None


def test_lockout_honours_configuration(make_app, make_user):
    app = make_app(LOGIN_MAX_FAILURES=2, LOGIN_LOCKOUT_MINUTES=1)
    user = make_user()
    auth = Auth(app.test_client())
    auth.login(user, "wrong one")
    auth.login(user, "wrong two")
    pause = throttle(user)
    assert pause is not None and pause.locked_until is not None
    assert pause.locked_until <= utcnow() + timedelta(minutes=1)


def test_a_success_before_the_limit_resets_the_count(auth, make_user):
    user = make_user()
    auth.login(user, "not the password")
    auth.login(user, "not the password")
    assert auth.login(user).status_code == 302
    assert throttle(user) is None


def test_disabled_user_cannot_sign_in(auth, client, make_user):
    user = make_user(active=False)
    response = auth.login(user)
    assert response.status_code == 401
    assert GENERIC_FAILURE in response.get_data(as_text=True)
    assert not is_signed_in(client)


def test_disabling_a_signed_in_user_ends_their_access(auth, client, make_user):
    user = make_user(Role.MANAGER)
    auth.sign_in(user)
    assert client.get("/tickets").status_code == 200

    user.active = False
    db.session.commit()

    response = client.get("/tickets")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_login_with_missing_fields_is_a_bad_request(client):
    response = client.post("/login", data={"email": "", "csrf_token": csrf_token(client)})
    assert response.status_code == 400


# --- sign-out --------------------------------------------------------------------------------


def test_logout_is_post_only(auth, client, make_user):
    auth.sign_in(make_user())
    assert client.get("/logout").status_code == 405
    assert is_signed_in(client)

    response = auth.logout()
    assert response.status_code == 302
    assert location(response) == "/login"
    assert "You have signed out." in client.get("/login").get_data(as_text=True)
    assert not is_signed_in(client)
    assert client.get("/").status_code == 302


# --- CSRF ------------------------------------------------------------------------------------


def _foreign_token(app: Flask) -> str:
    """A valid token, but issued to another browser's session."""
    return csrf_token(app.test_client())


BAD_TOKENS = {
    "missing": lambda app: None,
    "wrong": lambda app: "not-a-real-token",
    "other-session": _foreign_token,
}


def _post_with(client: FlaskClient, path: str, data: dict[str, str], token: str | None):
    if token is not None:
        data = {**data, "csrf_token": token}
    return client.post(path, data=data)


@pytest.fixture(params=sorted(BAD_TOKENS))
def bad_token(request: pytest.FixtureRequest, app: Flask) -> str | None:
    return BAD_TOKENS[request.param](app)


def test_login_without_valid_csrf_is_refused(client, make_user, bad_token):
    user = make_user()
    csrf_token(client)  # the client has a session (and a token of its own) before posting
    response = _post_with(client, "/login", {"email": user.email, "password": PASSWORD}, bad_token)
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)
    assert not is_signed_in(client)
    db.session.refresh(user)
    assert user.last_login_at is None


def test_logout_without_valid_csrf_is_refused(auth, client, make_user, bad_token):
    auth.sign_in(make_user())
    assert _post_with(client, "/logout", {}, bad_token).status_code == 400
    assert is_signed_in(client)


def test_account_without_valid_csrf_is_refused(auth, client, make_user, bad_token):
    user = make_user(name="Old name")
    auth.sign_in(user)
    data = {"name": "New name", "language": "en"}
    assert _post_with(client, "/account", data, bad_token).status_code == 400
    db.session.refresh(user)
    assert user.name == "Old name"
    assert user.language is None


def test_language_switch_without_valid_csrf_is_refused(client, bad_token):
    response = _post_with(client, "/language", {"lang": "zh_Hans"}, bad_token)
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "lang" not in session


def test_user_create_without_valid_csrf_is_refused(auth, client, make_user, bad_token):
    auth.sign_in(make_user(Role.ADMIN))
    before = user_count()
    data = {"email": "new@example.com", "role": "analyst", "password": NEW_PASSWORD}
    assert _post_with(client, "/admin/users/new", data, bad_token).status_code == 400
    assert user_count() == before
    assert user_by_email("new@example.com") is None


def test_user_edit_without_valid_csrf_is_refused(auth, client, make_user, bad_token):
    auth.sign_in(make_user(Role.ADMIN))
    target = make_user(Role.ANALYST, name="Target")
    data = {"name": "Changed", "role": "admin", "active": "y"}
    assert _post_with(client, f"/admin/users/{target.id}", data, bad_token).status_code == 400
    db.session.refresh(target)
    assert (target.name, target.role) == ("Target", Role.ANALYST)


# --- the role matrix -------------------------------------------------------------------------

ROLES = ("anonymous", "analyst", "manager", "admin")
TO_LOGIN = "login"


@dataclasses.dataclass(frozen=True)
class Route:
    """One (method, URL rule) and what each role gets: a status or ``TO_LOGIN``."""

    method: str
    rule: str
    expected: dict[str, int | str]
    data: Callable[[dict[str, int]], dict[str, str]] | None = None
    #: For POSTs: did the request change anything? Checked against the expected status.
    changed: Callable[[dict[str, int]], bool] | None = None


def _expect(anonymous: int | str, analyst: int, manager: int, admin: int) -> dict[str, int | str]:
    return dict(zip(ROLES, (anonymous, analyst, manager, admin), strict=True))


STAFF = _expect(TO_LOGIN, 200, 200, 200)
ADMIN_ONLY = _expect(TO_LOGIN, 403, 403, 200)
ADMIN_WRITE = _expect(TO_LOGIN, 403, 403, 302)
MANAGERS = _expect(TO_LOGIN, 403, 200, 200)


def _created(ids: dict[str, int]) -> bool:
    return user_by_email("created-by-matrix@example.com") is not None


def _edited(ids: dict[str, int]) -> bool:
    target = db.session.get(User, ids["user_id"])
    assert target is not None
    return target.name == "Edited by matrix"


def _renamed_self(ids: dict[str, int]) -> bool:
    return db.session.scalar(select(func.count()).where(User.name == "Renamed by matrix")) == 1


def _template_named(name: str) -> bool:
    return db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.name == name)) is not None


def _question(ids: dict[str, int]) -> Question | None:
    return db.session.get(Question, ids["question_id"])


def _version_status(ids: dict[str, int]) -> VersionStatus:
    version = db.session.get(TemplateVersion, ids["version_id"])
    assert version is not None
    return version.status


SURVEY_ROUTES = [
    Route("GET", "/admin/surveys/templates", ADMIN_ONLY),
    Route("GET", "/admin/surveys/templates/new", ADMIN_ONLY),
    Route(
        "POST",
        "/admin/surveys/templates/new",
        ADMIN_WRITE,
        data=lambda ids: {"name": "Created by matrix", "priority": "0", "active": "y"},
        changed=lambda ids: _template_named("Created by matrix"),
    ),
    Route("GET", "/admin/surveys/templates/<int:template_id>", ADMIN_ONLY),
    Route("GET", "/admin/surveys/templates/<int:template_id>/settings", ADMIN_ONLY),
    Route(
        "POST",
        "/admin/surveys/templates/<int:template_id>/settings",
        ADMIN_WRITE,
        data=lambda ids: {"name": "Renamed by matrix", "channels": "chat", "priority": "3"},
        changed=lambda ids: _template_named("Renamed by matrix"),
    ),
    Route(
        "POST",
        "/admin/surveys/templates/<int:template_id>/draft",
        ADMIN_WRITE,
        data=lambda ids: {},
    ),
    Route("GET", "/admin/surveys/versions/<int:version_id>/edit", ADMIN_ONLY),
    Route("GET", "/admin/surveys/versions/<int:version_id>/preview", ADMIN_ONLY),
    Route(
        "POST",
        "/admin/surveys/versions/<int:version_id>/intro",
        ADMIN_WRITE,
        data=lambda ids: {"en": "Intro by matrix", "zh_Hans": "矩阵"},
        changed=lambda ids: (
            db.session.get(TemplateVersion, ids["version_id"]).intro["en"] == "Intro by matrix"
        ),
    ),
    Route(
        "POST",
        "/admin/surveys/versions/<int:version_id>/questions",
        ADMIN_WRITE,
        data=lambda ids: {
            "new-key": "matrix_q",
            "new-kind": "csat",
            "new-en": "Added by matrix",
            "new-zh_Hans": "矩阵",
        },
        changed=lambda ids: (
            db.session.scalar(select(Question).where(Question.key == "matrix_q")) is not None
        ),
    ),
    Route(
        "POST",
        "/admin/surveys/versions/<int:version_id>/questions/<int:question_id>",
        ADMIN_WRITE,
        data=lambda ids: {
            f"q{ids['question_id']}-en": "Edited by matrix",
            f"q{ids['question_id']}-zh_Hans": "矩阵",
        },
        changed=lambda ids: _question(ids).text["en"] == "Edited by matrix",
    ),
    Route(
        "POST",
        "/admin/surveys/versions/<int:version_id>/questions/<int:question_id>/move",
        ADMIN_WRITE,
        data=lambda ids: {"direction": "up"},
        changed=lambda ids: _question(ids).position == len(DEFAULT_QUESTIONS) - 1,
    ),
    Route(
        "POST",
        "/admin/surveys/versions/<int:version_id>/questions/<int:question_id>/delete",
        ADMIN_WRITE,
        data=lambda ids: {},
        changed=lambda ids: _question(ids) is None,
    ),
    Route(
        "POST",
        "/admin/surveys/versions/<int:version_id>/publish",
        ADMIN_WRITE,
        data=lambda ids: {},
        changed=lambda ids: _version_status(ids) is VersionStatus.PUBLISHED,
    ),
    Route("GET", "/admin/surveys/policy", ADMIN_ONLY),
    Route(
        "POST",
        "/admin/surveys/policy",
        ADMIN_WRITE,
        data=lambda ids: {
            "delay_minutes": "15",
            "link_valid_days": "14",
            "reminder_after_days": "3",
            "fatigue_days": "30",
            "sampling_percent": "100",
            "max_attempts": "5",
        },
        changed=lambda ids: current_policy().delay_minutes == 15,
    ),
    Route("GET", "/admin/surveys/invitations", MANAGERS),
    Route("GET", "/admin/surveys/invitations/export.csv", MANAGERS),
]

STAFF_WRITE = _expect(TO_LOGIN, 302, 302, 302)


def _case(ids: dict[str, int]) -> Any:
    from improvement.root_causes.models import FeedbackCase

    return db.session.get(FeedbackCase, ids["case_id"])


def _root_cause_titled(title: str) -> bool:
    from improvement.root_causes.models import RootCause

    return db.session.scalar(select(RootCause).where(RootCause.title == title)) is not None


def _why(ids: dict[str, int]) -> Any:
    from improvement.root_causes.models import WhyStep

    return db.session.get(WhyStep, ids["why_id"])


def _cases_of(column: str, value: int) -> int:
    from improvement.root_causes.models import FeedbackCase

    query = select(func.count()).where(getattr(FeedbackCase, column) == value)
    return db.session.scalar(query) or 0


def _now_in_shanghai() -> str:
    return (utcnow() + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M")


ROOT_CAUSE_ROUTES = [
    Route("GET", "/cases", STAFF),
    Route("GET", "/cases/export.csv", STAFF),
    Route("GET", "/cases/<int:case_id>", STAFF),
    Route(
        "POST",
        "/cases/<int:case_id>",
        STAFF_WRITE,
        data=lambda ids: {
            "problem_type": "attitude",
            "urgency": "3",
            "reach": "2",
            "touchpoint": "chat",
            "process_step": "",
            "responsible_party": "",
            "status": "in_progress",
        },
        changed=lambda ids: _case(ids).severity == 6,
    ),
    Route(
        "POST",
        "/cases/<int:case_id>/call-backs",
        STAFF_WRITE,
        data=lambda ids: {"called_at": _now_in_shanghai(), "outcome": "reached_satisfied"},
        changed=lambda ids: _case(ids).called_back_at is not None,
    ),
    Route(
        "POST",
        "/cases/<int:case_id>/root-cause",
        STAFF_WRITE,
        data=lambda ids: {"root_cause_id": str(ids["root_cause_id"])},
        changed=lambda ids: _case(ids).root_cause_id == ids["root_cause_id"],
    ),
    Route(
        "POST",
        "/cases/<int:case_id>/root-cause/new",
        STAFF_WRITE,
        data=lambda ids: {"title": "Made by matrix"},
        changed=lambda ids: _root_cause_titled("Made by matrix"),
    ),
    Route(
        "POST",
        "/responses/<int:response_id>/case",
        STAFF_WRITE,
        data=lambda ids: {},
        changed=lambda ids: _cases_of("response_id", ids["response_id"]) == 1,
    ),
    Route(
        "POST",
        "/tickets/<int:ticket_id>/case",
        STAFF_WRITE,
        data=lambda ids: {},
        changed=lambda ids: _cases_of("ticket_id", ids["ticket_id"]) == 1,
    ),
    Route("GET", "/root-causes", STAFF),
    Route(
        "POST",
        "/root-causes",
        STAFF_WRITE,
        data=lambda ids: {"title": "Created by matrix"},
        changed=lambda ids: _root_cause_titled("Created by matrix"),
    ),
    Route("GET", "/root-causes/pareto", STAFF),
    Route("GET", "/root-causes/fishbone", STAFF),
    Route("GET", "/root-causes/<int:root_cause_id>", STAFF),
    Route(
        "POST",
        "/root-causes/<int:root_cause_id>",
        STAFF_WRITE,
        data=lambda ids: {"title": "Renamed by matrix", "status": "confirmed"},
        changed=lambda ids: _root_cause_titled("Renamed by matrix"),
    ),
    Route(
        "POST",
        "/root-causes/<int:root_cause_id>/whys",
        STAFF_WRITE,
        data=lambda ids: {"statement": "Why by matrix", "category": "process"},
        changed=lambda ids: len(_why(ids).root_cause.whys) == 3,
    ),
    Route(
        "POST",
        "/root-causes/<int:root_cause_id>/whys/<int:why_id>",
        STAFF_WRITE,
        data=lambda ids: {
            f"why{ids['why_id']}-statement": "Edited by matrix",
            f"why{ids['why_id']}-category": "people",
        },
        changed=lambda ids: _why(ids).statement == "Edited by matrix",
    ),
    Route(
        "POST",
        "/root-causes/<int:root_cause_id>/whys/<int:why_id>/move",
        STAFF_WRITE,
        data=lambda ids: {"direction": "down"},
        changed=lambda ids: _why(ids).position == 2,
    ),
    Route(
        "POST",
        "/root-causes/<int:root_cause_id>/whys/<int:why_id>/delete",
        STAFF_WRITE,
        data=lambda ids: {},
        changed=lambda ids: _why(ids) is None,
    ),
]


def _cycle(ids: dict[str, int]) -> Any:
    from improvement.pdca.models import PdcaCycle

    return db.session.get(PdcaCycle, ids["cycle_id"])


def _cycle_titled(title: str) -> bool:
    from improvement.pdca.models import PdcaCycle

    return db.session.scalar(select(PdcaCycle).where(PdcaCycle.title == title)) is not None


def _action(ids: dict[str, int]) -> Any:
    from improvement.pdca.models import ActionItem

    return db.session.get(ActionItem, ids["action_id"])


#: Managers (and admins) only; analysts get 403 from the operation. The matrix cycle is at
#: Plan and owned by someone else, so a manager's stage move, measure or Act is refused by
#: its gate (400), not by the role.
MANAGER_WRITE = _expect(TO_LOGIN, 403, 302, 302)
MANAGER_GATED = _expect(TO_LOGIN, 403, 400, 400)

PDCA_ROUTES = [
    Route("GET", "/pdca", STAFF),
    Route("GET", "/pdca/new", STAFF),
    Route(
        "POST",
        "/pdca/new",
        STAFF_WRITE,
        data=lambda ids: matrix_form(ids["cycle_owner_id"], "Made by matrix"),
        changed=lambda ids: _cycle_titled("Made by matrix"),
    ),
    Route("GET", "/pdca/<int:cycle_id>", STAFF),
    Route(
        "POST",
        "/pdca/<int:cycle_id>",
        STAFF_WRITE,
        data=lambda ids: matrix_form(ids["cycle_owner_id"], "Renamed by matrix"),
        changed=lambda ids: _cycle_titled("Renamed by matrix"),
    ),
    Route(
        "POST",
        "/pdca/<int:cycle_id>/actions",
        STAFF_WRITE,
        data=lambda ids: {
            "action-title": "Action by matrix",
            "action-owner_id": str(ids["cycle_owner_id"]),
            "action-deadline": "2099-01-01",
        },
        changed=lambda ids: len(_cycle(ids).actions) == 2,
    ),
    Route(
        "POST",
        "/pdca/actions/<int:action_id>",
        MANAGER_WRITE,
        data=lambda ids: {
            f"a{ids['action_id']}-status": "done",
            f"a{ids['action_id']}-evidence": "",
        },
        changed=lambda ids: _action(ids).status.value == "done",
    ),
    Route(
        "POST",
        "/pdca/<int:cycle_id>/approve",
        MANAGER_WRITE,
        data=lambda ids: {},
        changed=lambda ids: _cycle(ids).approved_at is not None,
    ),
    Route("POST", "/pdca/<int:cycle_id>/stage", MANAGER_GATED, data=lambda ids: {"to": "do"}),
    Route("POST", "/pdca/<int:cycle_id>/measure", MANAGER_GATED, data=lambda ids: {}),
    Route(
        "POST",
        "/pdca/<int:cycle_id>/schedule-check",
        MANAGER_GATED,
        data=lambda ids: {"on": "2099-01-01"},
    ),
    Route(
        "POST",
        "/pdca/<int:cycle_id>/act",
        MANAGER_GATED,
        data=lambda ids: {"decision": "standardise"},
    ),
    Route("GET", "/my-actions", STAFF),
    Route("GET", "/pdca/close-loop-template", MANAGERS),
    Route(
        "POST",
        "/pdca/close-loop-template",
        MANAGER_WRITE,
        data=lambda ids: {
            "language": "en",
            "subject": "Matrix subject",
            "body": "Hello {name}",
            "save": "Save",
        },
        changed=lambda ids: _loop_template_saved(),
    ),
    Route("GET", "/admin/audit", ADMIN_ONLY),
]


def _loop_template_saved() -> bool:
    from improvement.close_loop.models import CloseLoopTemplate

    return db.session.scalar(select(CloseLoopTemplate.subject)) == "Matrix subject"


def add_sla_override() -> dict[str, int]:
    """A VIP override of the P1 SLA rule: its id."""
    rule = SlaPolicy(
        priority="P1",
        customer_tier="vip",
        first_response_minutes=5,
        resolution_minutes=60,
        clock=SlaClock.ALWAYS,
    )
    db.session.add(rule)
    db.session.commit()
    return {"policy_id": rule.id}


def _sla_rule(priority: str, tier: str) -> SlaPolicy | None:
    return db.session.scalar(
        select(SlaPolicy).where(SlaPolicy.priority == priority, SlaPolicy.customer_tier == tier)
    )


SLA_ROUTES = [
    Route("GET", "/admin/sla", ADMIN_ONLY),
    Route(
        "POST",
        "/admin/sla",
        ADMIN_WRITE,
        data=lambda ids: {
            "priority": "P3",
            "customer_tier": "vip",
            "first_response_minutes": "60",
            "resolution_minutes": "240",
            "clock": "working_hours",
        },
        changed=lambda ids: _sla_rule("P3", "vip") is not None,
    ),
    Route(
        "POST",
        "/admin/sla/<int:policy_id>/delete",
        ADMIN_WRITE,
        data=lambda ids: {},
        changed=lambda ids: _sla_rule("P1", "vip") is None,
    ),
]


def add_kpi_target() -> dict[str, int]:
    """An organisation-wide NPS target: its id."""
    from analysis.targets.models import KpiTarget

    target = KpiTarget(kpi="nps", filters={}, target=30, yellow=0, orange=10, red=20)
    db.session.add(target)
    db.session.commit()
    return {"target_id": target.id}


def _target_value(ids: dict[str, int]) -> float | None:
    from analysis.targets.models import KpiTarget

    target = db.session.get(KpiTarget, ids["target_id"])
    return None if target is None else target.target


def _target_form(value: str) -> dict[str, str]:
    return {"kpi": "nps", "target": value, "yellow": "0", "orange": "5", "red": "10",
            "window_days": "7", "webhook_format": "generic", "team": "Matrix"}  # fmt: skip


def _nps_targets() -> int:
    from analysis.targets.models import KpiTarget

    return db.session.scalar(select(func.count()).where(KpiTarget.kpi == "nps")) or 0


TARGET_ROUTES = [
    Route("GET", "/alerts", STAFF),
    Route("GET", "/targets", MANAGERS),
    Route("GET", "/targets/new", MANAGERS),
    Route(
        "POST",
        "/targets/new",
        _expect(TO_LOGIN, 403, 302, 302),
        data=lambda ids: _target_form("45"),
        changed=lambda ids: _nps_targets() == 2,
    ),
    Route("GET", "/targets/<int:target_id>", MANAGERS),
    Route(
        "POST",
        "/targets/<int:target_id>",
        _expect(TO_LOGIN, 403, 302, 302),
        data=lambda ids: _target_form("55"),
        changed=lambda ids: _target_value(ids) == 55,
    ),
    Route(
        "POST",
        "/targets/<int:target_id>/delete",
        _expect(TO_LOGIN, 403, 302, 302),
        data=lambda ids: {},
        changed=lambda ids: _target_value(ids) is None,
    ),
]

DASHBOARD_ROUTES = [
    Route("GET", "/dashboards", STAFF),
    Route("GET", "/dashboards/responses", STAFF),
    # Without ?table= the CSV download is a bad request, after the role check.
    Route("GET", "/dashboards/export", _expect(TO_LOGIN, 400, 400, 400)),
    Route("GET", "/dashboards/plotly.min.js", STAFF),
]

#: The Excel improvement report: managers and admins only (the download defaults to 30 days).
REPORT_ROUTES = [
    Route("GET", "/reports", MANAGERS),
    Route("GET", "/reports/excel", MANAGERS),
]

#: JSON endpoints for staff: anonymous callers get 401, not the sign-in page.
STAFF_API_ROUTES = [
    Route("GET", "/api/v1/metrics", _expect(401, 200, 200, 200)),
]

ROUTES = [
    Route("GET", "/", STAFF),
    Route("GET", "/tickets", STAFF),
    Route("GET", "/tickets/export.csv", STAFF),
    Route("GET", "/tickets/<int:ticket_id>", STAFF),
    Route("GET", "/admin/users", ADMIN_ONLY),
    Route("GET", "/admin/users/new", ADMIN_ONLY),
    Route(
        "POST",
        "/admin/users/new",
        ADMIN_WRITE,
        data=lambda ids: {
            "email": "created-by-matrix@example.com",
            "name": "Created",
            "role": "analyst",
            "password": NEW_PASSWORD,
        },
        changed=_created,
    ),
    Route("GET", "/admin/users/<int:user_id>", ADMIN_ONLY),
    Route(
        "POST",
        "/admin/users/<int:user_id>",
        ADMIN_WRITE,
        data=lambda ids: {"name": "Edited by matrix", "role": "analyst", "active": "y"},
        changed=_edited,
    ),
    Route("GET", "/account", _expect(TO_LOGIN, 200, 200, 200)),
    Route(
        "POST",
        "/account",
        _expect(TO_LOGIN, 302, 302, 302),
        data=lambda ids: {"name": "Renamed by matrix", "language": ""},
        changed=_renamed_self,
    ),
    Route("POST", "/logout", _expect(TO_LOGIN, 302, 302, 302), data=lambda ids: {}),
    *SURVEY_ROUTES,
    *SLA_ROUTES,
    *DASHBOARD_ROUTES,
    *TARGET_ROUTES,
    *STAFF_API_ROUTES,
    *ROOT_CAUSE_ROUTES,
    *PDCA_ROUTES,
    *REPORT_ROUTES,
]

#: Public on purpose; /api/ rules answer machines and are tested with the intake;
#: /s/ rules are the customer's survey pages, guarded by signed links (tests/test_survey_*);
#: /healthz and /readyz answer load balancers and reveal no data (tests/test_production.py).
PUBLIC_RULES = {"/login", "/language", "/healthz", "/readyz"}
PUBLIC_PREFIXES = ("/api/", "/s/")
#: ... except the JSON endpoints for staff, which are in the matrix.
STAFF_API_RULES = {route.rule for route in STAFF_API_ROUTES}


def _url(rule: str, ids: dict[str, int]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: str(ids[match.group(1)]), rule)


def _seed_matrix() -> dict[str, int]:
    """One of every object the matrix's URLs name; seeded once for the whole matrix."""
    target = User(email="target@example.com", name="Target", role=Role.ANALYST)
    target.set_password(PASSWORD)
    db.session.add(target)
    db.session.flush()
    return {
        "ticket_id": add_ticket().id,
        "user_id": target.id,
        **add_survey_draft(),
        **add_sla_override(),
        **add_kpi_target(),
        **matrix_ids(),
        **pdca_matrix_ids(),
    }


@pytest.fixture(scope="class")
def ids(_shared_app, tmp_path_factory) -> Iterator[dict[str, int]]:
    """The matrix's objects, seeded once for the class that uses it."""
    instance = tmp_path_factory.mktemp("role-matrix")
    with seeded_transaction(_shared_app, instance, _seed_matrix) as seeded:
        yield seeded


class TestRoleMatrix:
    """Every staff route for every role; each case rolls back to the seed."""

    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.rule}")
    def test_role_matrix(self, client, auth, make_user, ids, route: Route, role: str):
        if role != "anonymous":
            auth.sign_in(make_user(Role(role)))
        url = _url(route.rule, ids)

        if route.method == "GET":
            response = client.get(url)
        else:
            assert route.data is not None
            data = {**route.data(ids), "csrf_token": csrf_token(client)}
            response = client.post(url, data=data)

        expected = route.expected[role]
        if expected == TO_LOGIN:
            assert response.status_code == 302
            assert urlsplit(response.headers["Location"]).path == "/login"
        else:
            assert response.status_code == expected, response.get_data(as_text=True)[:500]
        if route.changed is not None:
            succeeded = role != "anonymous" and response.status_code == 302
            assert route.changed(ids) is succeeded


def test_role_matrix_covers_every_staff_route(app):
    """A new staff page must be added to ROUTES (and so get an access test)."""
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule in PUBLIC_RULES:
            continue
        if rule.rule.startswith(PUBLIC_PREFIXES) and rule.rule not in STAFF_API_RULES:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((method, rule.rule))
    tested = {(route.method, route.rule) for route in ROUTES}
    assert served - tested == set(), "add these to ROUTES in tests/test_auth.py"
    assert tested - served == set(), "ROUTES lists rules the app no longer has"


def test_missing_ticket_and_user_are_404(auth, client, make_user):
    auth.sign_in(make_user(Role.ADMIN))
    assert client.get("/tickets/999999").status_code == 404
    assert client.get("/admin/users/999999").status_code == 404


def test_only_admins_see_the_users_link(auth, client, make_user):
    auth.sign_in(make_user(Role.MANAGER))
    assert 'href="/admin/users"' not in client.get("/").get_data(as_text=True)
    auth.logout()
    auth.sign_in(make_user(Role.ADMIN))
    assert 'href="/admin/users"' in client.get("/").get_data(as_text=True)


# --- user administration ---------------------------------------------------------------------


@pytest.fixture
def admin_client(client: FlaskClient, auth: Auth, make_user: Callable[..., User]) -> FlaskClient:
    admin = make_user(Role.ADMIN, email="boss@example.com")
    auth.sign_in(admin)
    return client


def _create(client: FlaskClient, **fields: str):
    data = {"email": "new.person@example.com", "name": "New Person", "role": "manager"}
    data.update(password=NEW_PASSWORD, csrf_token=csrf_token(client))
    data.update(fields)
    return client.post("/admin/users/new", data=data)


def _edit(client: FlaskClient, user: User, **fields: str):
    data = {"name": user.name, "role": user.role.value, "active": "y"}
    data.update(csrf_token=csrf_token(client))
    data.update(fields)
    return client.post(f"/admin/users/{user.id}", data=data)


def test_admin_creates_a_user_who_can_sign_in(admin_client, make_app):
    response = _create(admin_client, email="New.Person@Example.com")
    assert response.status_code == 302
    assert location(response) == "/admin/users"
    listing = admin_client.get("/admin/users").get_data(as_text=True)
    assert "new.person@example.com" in listing
    assert "User new.person@example.com created." in listing

    user = user_by_email("new.person@example.com")
    assert user is not None
    assert (user.name, user.role, user.active) == ("New Person", Role.MANAGER, True)
    assert Auth(make_app().test_client()).login(user.email, NEW_PASSWORD).status_code == 302


def test_admin_create_refuses_a_taken_email(admin_client, make_user):
    make_user(email="taken@example.com")
    before = user_count()
    response = _create(admin_client, email="Taken@Example.com")
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    assert user_count() == before


def test_admin_create_errors_are_in_the_page_language(admin_client, make_user):
    make_user(email="taken@example.com")
    admin_client.post(
        "/language", data={"lang": "zh_Hans", "csrf_token": csrf_token(admin_client)}
    )
    response = _create(admin_client, email="taken@example.com")
    assert response.status_code == 400
    assert "邮箱为 taken@example.com 的用户已存在。" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "short"}, "between 10 and 200 characters"),
        ({"password": ""}, "This field is required."),
        ({"email": "not-an-email"}, "Invalid email address."),
        ({"role": "owner"}, "Not a valid choice"),
    ],
)
def test_admin_create_validates_the_form(admin_client, fields, message):
    before = user_count()
    response = _create(admin_client, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert user_count() == before


def test_admin_edits_role_name_password_and_state(admin_client, make_user, make_app):
    target = make_user(Role.ANALYST, name="Before")
    response = _edit(
        admin_client, target, name=" After ", role="manager", new_password=NEW_PASSWORD
    )
    assert response.status_code == 302
    db.session.refresh(target)
    assert (target.name, target.role, target.active) == ("After", Role.MANAGER, True)
    assert target.check_password(NEW_PASSWORD)

    data = {"name": "After", "role": "manager", "csrf_token": csrf_token(admin_client)}
    assert admin_client.post(f"/admin/users/{target.id}", data=data).status_code == 302
    db.session.refresh(target)
    assert target.active is False
    assert Auth(make_app().test_client()).login(target.email, NEW_PASSWORD).status_code == 401


def test_admin_edit_refuses_a_short_new_password(admin_client, make_user):
    target = make_user()
    response = _edit(admin_client, target, new_password="short")
    assert response.status_code == 400
    db.session.refresh(target)
    assert target.check_password(PASSWORD)


@pytest.mark.parametrize(
    "fields",
    [
        {"role": "manager", "active": "y"},
        {"role": "analyst", "active": "y"},
        {"role": "admin"},  # the "active" box left unticked
    ],
    ids=["to-manager", "to-analyst", "deactivate"],
)
def test_admin_cannot_demote_or_disable_themselves(admin_client, fields):
    me = user_by_email("boss@example.com")
    assert me is not None
    data = {"name": "Boss", "csrf_token": csrf_token(admin_client), **fields}
    response = admin_client.post(f"/admin/users/{me.id}", data=data)
    assert response.status_code == 400
    assert "You cannot remove your own admin rights." in response.get_data(as_text=True)
    db.session.refresh(me)
    assert (me.role, me.active, me.name) == (Role.ADMIN, True, "")
    assert admin_client.get("/admin/users").status_code == 200


def test_admin_may_rename_themselves(admin_client):
    me = user_by_email("boss@example.com")
    assert me is not None
    assert _edit(admin_client, me, name="Boss").status_code == 302
    db.session.refresh(me)
    assert (me.name, me.role) == ("Boss", Role.ADMIN)


def test_unlock_clears_the_lockout(admin_client, make_user, make_app):
    target = make_user()
    add_throttle(target, failures=3, locked_until=utcnow() + timedelta(minutes=10))
    other = Auth(make_app().test_client())
    assert other.login(target).status_code == 401

    assert _edit(admin_client, target).status_code == 302
    assert throttle(target) is not None, "saving without 'unlock' keeps the lock"

    assert _edit(admin_client, target, unlock="y").status_code == 302
    assert throttle(target) is None
    assert other.login(target).status_code == 302


# --- the account page ------------------------------------------------------------------------


def _account(client: FlaskClient, **fields: str):
    data = {"name": "", "language": ""}
    data.update(csrf_token=csrf_token(client))
    data.update(fields)
    return client.post("/account", data=data)


def test_account_changes_name_and_language(auth, client, make_user):
    user = make_user(Role.ANALYST)
    auth.sign_in(user)
    page = client.get("/account").get_data(as_text=True)
    assert user.email in page

    response = _account(client, name="  Li Na ", language="zh_Hans")
    assert response.status_code == 302
    assert location(response) == "/account"
    db.session.refresh(user)
    assert (user.name, user.language) == ("Li Na", "zh_Hans")
    page = client.get("/account", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page

    assert _account(client, name="Li Na", language="").status_code == 302
    db.session.refresh(user)
    assert user.language is None


def test_account_refuses_an_unknown_language(auth, client, make_user):
    user = make_user()
    auth.sign_in(user)
    assert _account(client, language="fr").status_code == 400
    db.session.refresh(user)
    assert user.language is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
            "Enter your current password to set a new one.",
        ),
        (
            {
                "current_password": "not my password",
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            },
            "The current password is not right.",
        ),
        (
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm_password": "something else",
            },
            "The passwords do not match.",
        ),
        (
            {"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"},
            "between 10 and 200 characters",
        ),
    ],
    ids=["no-current", "wrong-current", "mismatch", "too-short"],
)
def test_account_password_change_is_refused(auth, client, make_user, fields, message):
    user = make_user(name="Kept")
    auth.sign_in(user)
    response = _account(client, name="Changed", **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.refresh(user)
    assert user.check_password(PASSWORD)
    assert user.name == "Kept"


def test_account_password_change_with_the_current_password(auth, client, make_user, make_app):
    user = make_user()
    auth.sign_in(user)
    response = _account(
        client,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        confirm_password=NEW_PASSWORD,
    )
    assert response.status_code == 302
    fresh = make_app()
    assert Auth(fresh.test_client()).login(user.email, PASSWORD).status_code == 401
    assert Auth(fresh.test_client()).login(user.email, NEW_PASSWORD).status_code == 302


def test_a_password_change_ends_the_other_sessions(auth, client, make_user, app):
    user = make_user()
    other = app.test_client()
    Auth(other).login(user)
    assert is_signed_in(other)
    auth.sign_in(user)
    response = _account(
        client,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        confirm_password=NEW_PASSWORD,
    )
    assert response.status_code == 302
    assert is_signed_in(client), "the session that changed the password continues"
    assert not is_signed_in(other), "a session opened with the old password ends"


# --- language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "html_lang", "text"),
    [
        ("zh-CN,zh;q=0.9", "zh-Hans", "登录"),
        ("zh-Hans-CN", "zh-Hans", "登录"),
        ("zh", "zh-Hans", "登录"),
        ("fr-FR, zh;q=0.8, en;q=0.5", "zh-Hans", "登录"),
        ("en", "en", "Sign in"),
        ("en-GB,zh;q=0.5", "en", "Sign in"),
        ("de", "en", "Sign in"),
        (None, "en", "Sign in"),
    ],
)
def test_accept_language_picks_the_page_language(client, accept, html_lang, text):
    headers = {"Accept-Language": accept} if accept else {}
    page = client.get("/login", headers=headers).get_data(as_text=True)
    assert f'<html lang="{html_lang}">' in page
    assert f"<h1>{text}</h1>" in page


def _switch(client: FlaskClient, lang: str, next_url: str = "/login"):
    return client.post(
        "/language", data={"lang": lang, "next": next_url, "csrf_token": csrf_token(client)}
    )


def test_language_switcher_sets_the_session_language(client):
    response = _switch(client, "zh_Hans")
    assert response.status_code == 302
    assert location(response) == "/login"
    with client.session_transaction() as session:
        assert session["lang"] == "zh_Hans"
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page

    _switch(client, "en")
    page = client.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="en">' in page


def test_language_switcher_ignores_unknown_languages_and_foreign_next(client):
    response = _switch(client, "fr", next_url="https://evil.example/")
    assert response.status_code == 302
    assert location(response) == "/"
    with client.session_transaction() as session:
        assert "lang" not in session


def test_language_switch_is_saved_for_a_signed_in_user(auth, client, make_user):
    user = make_user()
    auth.sign_in(user)
    assert _switch(client, "zh_Hans", next_url="/tickets").status_code == 302
    db.session.refresh(user)
    assert user.language == "zh_Hans"


def test_saved_language_wins_over_session_and_browser(auth, client, make_user):
    user = make_user(language="en")
    _switch(client, "zh_Hans")
    auth.sign_in(user)
    page = client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="en">' in page

    user.language = "zh_Hans"
    db.session.commit()
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page


# --- closedloop users ------------------------------------------------------------------------


def test_cli_creates_a_user_from_stdin(runner):
    result = runner.invoke(
        args=[
            "users", "create", "--email", "Ops@Example.com", "--role", "manager",
            "--name", " Ops ", "--password-stdin",
        ],
        input=f"{NEW_PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created manager ops@example.com." in result.output
    user = user_by_email("ops@example.com")
    assert user is not None
    assert (user.role, user.name) == (Role.MANAGER, "Ops")
    assert user.check_password(NEW_PASSWORD)


def test_cli_prompts_for_the_password(runner):
    result = runner.invoke(
        args=["users", "create", "--email", "p@example.com", "--role", "admin"],
        input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    user = user_by_email("p@example.com")
    assert user is not None
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    ("args", "password", "exit_code", "message"),
    [
        (["--role", "owner"], NEW_PASSWORD, 2, "Invalid value for '--role'"),
        ([], "short", 1, "at least 10 characters"),
        ([], "", 1, "at least 10 characters"),
        (["--email", "taken@example.com"], NEW_PASSWORD, 1, "already exists"),
        (["--email", "TAKEN@example.com"], NEW_PASSWORD, 1, "already exists"),
        (["--email", "not-an-email"], NEW_PASSWORD, 1, "Invalid e-mail address"),
    ],
    ids=["bad-role", "short", "empty", "duplicate", "duplicate-case", "bad-email"],
)
def test_cli_create_refuses(runner, make_user, args, password, exit_code, message):
    make_user(email="taken@example.com")
    before = user_count()
    options = {"--email": "fresh@example.com", "--role": "analyst"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        options[flag] = value
    cli_args = ["users", "create", "--password-stdin"]
    for flag, value in options.items():
        cli_args += [flag, value]
    result = runner.invoke(args=cli_args, input=f"{password}\n")
    assert result.exit_code == exit_code
    assert message in result.output
    assert user_count() == before


def test_cli_lists_users(runner, make_user):
    make_user(Role.MANAGER, email="b@example.com")
    make_user(Role.ADMIN, email="a@example.com")
    make_user(Role.ANALYST, email="c@example.com", active=False)
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "a@example.com\tadmin\tactive",
        "b@example.com\tmanager\tactive",
        "c@example.com\tanalyst\tdisabled",
    ]


# --- issue 14, finding 8: sessions, pauses per address, common passwords ----------------------


def test_a_cookie_copied_before_sign_out_no_longer_signs_in(client, auth, make_user, app):
    user = make_user()
    assert auth.login(user).status_code == 302
    stolen = client.get_cookie("session", domain="localhost")
    assert stolen is not None
    assert auth.logout().status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen.value, domain="localhost")
    response = replay.get("/")
    assert response.status_code == 302
    assert location(response).startswith("/login")


def test_failures_from_one_address_do_not_pause_the_account_elsewhere(app, make_user):
    victim = make_user(Role.ADMIN)
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    for _attempt in range(app.config["LOGIN_MAX_FAILURES"] + 2):
        assert Auth(attacker).login(victim, "guessing").status_code == 401
    assert Auth(attacker).login(victim).status_code == 401  # paused for the attacker
    pause = throttle(victim, "203.0.113.7")
    assert pause is not None and pause.locked_until is not None
    # The admin, from their own address, signs in as usual.
    assert Auth(app.test_client()).login(victim).status_code == 302


def test_sign_in_attempts_are_rate_limited_per_address(make_app, make_user):
    app = make_app(RATELIMIT_LOGIN="3 per minute")
    user = make_user()
    client = app.test_client()
    for _attempt in range(3):
        assert Auth(client).login(user, "wrong").status_code == 401
    response = Auth(client).login(user)
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.4"
    assert Auth(elsewhere).login(user).status_code == 302


@pytest.mark.parametrize("password", ["password123", "Qwertyuiop", "1234567890", "woaini1314520"])
def test_common_passwords_are_refused_everywhere(admin_client, runner, make_user, password):
    from survey_app.auth.services import AccountError, check_password_strength

    with pytest.raises(AccountError, match="most common"):
        check_password_strength(password)
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "x@example.com",
            "--role",
            "analyst",
            "--password-stdin",
        ],  # fmt: skip
        input=f"{password}\n",
    )
    assert result.exit_code != 0 and "most common" in result.output
    target = make_user()
    response = _edit(admin_client, target, new_password=password)
    assert response.status_code == 400
    assert "most common" in response.get_data(as_text=True)
    check_password_strength("correct horse battery staple")  # long and uncommon: fine
