"""Root-cause cases: auto-open rule, triage, call-backs, root causes, 5 Why, fishbone, Pareto."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from analysis.signals import response_analysed
from improvement.audit.models import AuditEvent
from improvement.root_causes.cases import auto_open_case, classify_case, log_call_back
from improvement.root_causes.causes import create_root_cause, link_case, suggest_root_causes
from improvement.root_causes.common import CaseError
from improvement.root_causes.five_whys import add_why, delete_why, move_why, update_why
from improvement.root_causes.models import (
    CallBack,
    CallBackOutcome,
    CaseOrigin,
    CaseStatus,
    FeedbackCase,
    ResponsibleParty,
    RootCause,
    RootCauseStatus,
    WhyStep,
)
from improvement.root_causes.pareto import root_cause_pareto
from improvement.root_causes.rules import LowFeedbackRule, RuleConfigError
from survey_app.extensions import db
from survey_app.models import Channel, Role
from survey_app.surveys.models import SentimentLabel
from survey_app.types import utcnow
from tests.conftest import csrf_token
from tests.root_cause_factories import analyse, make_response, make_ticket

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db


def case_count() -> int:
    return db.session.scalar(select(func.count()).select_from(FeedbackCase)) or 0


def case_of(response_id: int) -> FeedbackCase | None:
    return db.session.scalar(select(FeedbackCase).where(FeedbackCase.response_id == response_id))


def new_case(**answers: object) -> FeedbackCase:
    """A low response, analysed: its auto-opened case."""
    keywords = answers.pop("keywords", ["等待"])
    response = make_response(**({"nps": 2} | answers))
    analyse(response, keywords=keywords)  # type: ignore[arg-type]
    case = case_of(response.id)
    assert case is not None
    return case


@pytest.fixture
def analyst_client(client, auth, make_user):
    auth.sign_in(make_user(Role.ANALYST, name="Lin"))
    return client


def post(client, url: str, **data: object):
    return client.post(url, data={**data, "csrf_token": csrf_token(client)})


# --- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "label", "reasons"),
    [
        ({"nps": 6}, None, ["NPS 6 ≤ 6"]),
        ({"nps": 7}, None, []),
        ({"nps": 0, "csat_overall": 5}, None, ["NPS 0 ≤ 6"]),
        ({"csat_attitude": 2, "nps": 9}, None, ["CSAT attitude 2 ≤ 2"]),
        (
            {"csat_speed": 1, "csat_effectiveness": 2},
            None,
            ["CSAT speed 1 ≤ 2", "CSAT effectiveness 2 ≤ 2"],
        ),
        ({"csat_overall": 3, "nps": 8}, None, []),
        ({"nps": 10}, SentimentLabel.NEGATIVE, ["negative comment"]),
        ({"nps": 10}, SentimentLabel.NEUTRAL, []),
        ({}, None, []),  # every question skipped: nothing is low
    ],
)
def test_default_rule(answers, label, reasons):
    feedback = type(
        "F",
        (),
        dict.fromkeys(
            [
                "nps",
                "csat_overall",
                "csat_speed",
                "csat_professionalism",
                "csat_attitude",
                "csat_effectiveness",
            ]
        )
        | answers
        | {"sentiment_label": label},
    )
    assert LowFeedbackRule.from_config(None).reasons(feedback) == reasons


def test_rule_is_configurable_and_checked(make_app):
    rule = LowFeedbackRule.from_config({"nps_max": 4, "negative_sentiment": False})
    assert (rule.nps_max, rule.csat_max, rule.negative_sentiment) == (4, 2, False)
    assert LowFeedbackRule.from_config({"csat_max": None}).csat_max is None
    for bad in (
        {"nps": 6},
        {"nps_max": 11},
        {"csat_max": 0},
        {"nps_max": "6"},
        {"negative_sentiment": "yes"},
        ["nps_max"],
    ):
        with pytest.raises(RuleConfigError):
            LowFeedbackRule.from_config(bad)  # type: ignore[arg-type]
    with pytest.raises(RuleConfigError, match="unknown key"):
        make_app(ROOT_CAUSE_RULE={"nps_maximum": 5})
    with pytest.raises(RuleConfigError, match="CALLBACK_DAYS"):
        make_app(CALLBACK_DAYS=0)
    with pytest.raises(RuleConfigError, match="FISHBONE_CATEGORIES"):
        make_app(FISHBONE_CATEGORIES=[])


def test_a_configured_rule_applies(make_app):
    app = make_app(ROOT_CAUSE_RULE={"nps_max": 4})
    with app.app_context():
        passive_detractor = make_response(nps=5)
        analyse(passive_detractor)
        strong_detractor = make_response(nps=4)
        analyse(strong_detractor)
        assert case_of(passive_detractor.id) is None
        assert case_of(strong_detractor.id) is not None


# --- opening automatically -------------------------------------------------------------------


def test_low_feedback_opens_one_case_when_analysed(app):
    ticket = make_ticket(resolved_days_ago=2, channel=Channel.CHAT)
    response = make_response(ticket, nps=3, csat_speed=1, comment="等了很久才有人回复")
    assert case_count() == 0  # nothing before the analysis

    analyse(
        response,
        label=SentimentLabel.NEGATIVE,
        score=0.1,
        keywords=["等待", "回复"],
        problem_type="slow_response",
    )

    case = case_of(response.id)
    assert case is not None
    assert case.origin is CaseOrigin.AUTO
    assert case.status is CaseStatus.NEW
    assert case.trigger == "NPS 3 ≤ 6; CSAT speed 1 ≤ 2; negative comment"
    assert case.problem_type == "slow_response"
    assert case.touchpoint is Channel.CHAT
    assert case.ticket_id == ticket.id
    assert case.callback_due_at == ticket.resolved_at + timedelta(days=7)


def test_reanalysis_never_duplicates_or_reopens(app):
    response = make_response(nps=1)
    analyse(response)
    analyse(response, label=SentimentLabel.NEGATIVE)
    response_analysed.send(app, response_id=response.id)
    assert case_count() == 1

    case = case_of(response.id)
    classify_case(
        case,
        problem_type=None,
        urgency=None,
        reach=None,
        touchpoint=None,
        process_step=None,
        responsible_party=None,
        status="dismissed",
    )
    db.session.commit()
    analyse(response)
    assert case_count() == 1
    assert case_of(response.id).status is CaseStatus.DISMISSED


def test_good_feedback_and_unknown_responses_open_nothing(app):
    analyse(make_response(nps=9, csat_overall=5, comment="很好"), label=SentimentLabel.POSITIVE)
    response_analysed.send(app, response_id=999_999)
    assert case_count() == 0
    assert auto_open_case(999_999) is None


def test_a_failing_rule_does_not_break_the_analysis(app, monkeypatch, caplog):
    import improvement.root_causes.cases as cases

    def broken(response_id: int) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(cases, "auto_open_case", broken)
    response = make_response(nps=0)
    analyse(response)  # the receiver logs, the sender goes on
    assert "could not apply the low-feedback rule" in caplog.text
    assert case_count() == 0


def test_the_deadline_counts_from_resolution_or_the_answer(app):
    ticket = make_ticket()
    ticket.resolved_at = None
    ticket.closed_at = None
    db.session.commit()
    answered = utcnow() - timedelta(days=1)
    response = make_response(ticket, nps=2, submitted_at=answered)
    analyse(response)
    assert case_of(response.id).callback_due_at == answered + timedelta(days=7)


def test_callback_days_is_configurable(make_app):
    app = make_app(CALLBACK_DAYS=3)
    with app.app_context():
        ticket = make_ticket(resolved_days_ago=1)
        response = make_response(ticket, nps=2)
        analyse(response)
        assert case_of(response.id).callback_due_at == ticket.resolved_at + timedelta(days=3)


# --- opening by hand -------------------------------------------------------------------------


def test_open_a_case_by_hand_from_a_response(analyst_client):
    response = make_response(nps=8, comment="还行")  # not low: the rule opened nothing
    analyse(response)
    assert case_count() == 0

    first = post(analyst_client, f"/responses/{response.id}/case")
    again = post(analyst_client, f"/responses/{response.id}/case")

    case = case_of(response.id)
    assert case is not None and case_count() == 1
    assert first.status_code == again.status_code == 302
    assert first.headers["Location"].endswith(f"/cases/{case.id}")
    assert again.headers["Location"].endswith(f"/cases/{case.id}")
    assert case.origin is CaseOrigin.MANUAL
    assert case.opened_by is not None and case.opened_by.name == "Lin"
    page = analyst_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "already has case" in page


def test_open_a_case_by_hand_from_the_ticket_page(analyst_client):
    ticket = make_ticket()
    page = analyst_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Open a case for this ticket" in page

    response = post(analyst_client, f"/tickets/{ticket.id}/case")
    assert response.status_code == 302
    assert post(analyst_client, f"/tickets/{ticket.id}/case").status_code == 302
    cases = db.session.scalars(select(FeedbackCase)).all()
    assert len(cases) == 1
    assert cases[0].ticket_id == ticket.id and cases[0].response_id is None
    page = analyst_client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert f"Case #{cases[0].id}" in page

    # A survey answer that arrives later gets a case of its own.
    answer = make_response(ticket, nps=7)
    analyse(answer)
    assert post(analyst_client, f"/tickets/{ticket.id}/case").status_code == 302
    assert case_of(answer.id) is not None
    assert case_count() == 2


def test_missing_things_are_404(analyst_client):
    assert post(analyst_client, "/responses/999/case").status_code == 404
    assert post(analyst_client, "/tickets/999/case").status_code == 404
    assert analyst_client.get("/cases/999").status_code == 404
    assert analyst_client.get("/root-causes/999").status_code == 404


# --- the triage queue ------------------------------------------------------------------------


def test_queue_shows_feedback_ticket_customer_sentiment_keywords_escaped(analyst_client):
    ticket = make_ticket(customer_name="<b>李四</b>")
    response = make_response(ticket, nps=1, comment="<script>alert(1)</script>太慢")
    analyse(
        response,
        label=SentimentLabel.NEGATIVE,
        score=0.12,
        keywords=["慢", "等待"],
        problem_type="slow_response",
    )

    page = analyst_client.get("/cases").get_data(as_text=True)

    assert ticket.external_id in page
    assert "&lt;b&gt;李四&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;太慢" in page
    assert "<script>alert(1)" not in page
    assert "negative (0.12)" in page
    assert "慢, 等待" in page
    assert "slow response" in page
    case_page = analyst_client.get(f"/cases/{case_of(response.id).id}").get_data(as_text=True)
    assert "<script>alert(1)" not in case_page
    assert "&lt;script&gt;" in case_page


def test_queue_filters_and_pages(make_app, make_user):
    app = make_app(PAGE_SIZE=2)
    with app.app_context():
        from tests.conftest import Auth

        client = app.test_client()
        slow = [new_case(keywords=["等待"]) for _ in range(3)]
        for case in slow:
            case.problem_type = "slow_response"
        rude = new_case()
        rude.problem_type = "attitude"
        done = new_case()
        done.status = CaseStatus.RESOLVED
        db.session.commit()
        user = make_user(Role.MANAGER)
        Auth(client).sign_in(user)

        def ids(query: str) -> set[str]:
            text = client.get(f"/cases?{query}").get_data(as_text=True)
            import re

            return set(re.findall(r'href="/cases/(\d+)"', text))

        assert len(ids("")) == 2  # page 1 of the 4 open cases
        assert len(ids("page=2")) == 2
        assert ids("page=3") == set()
        assert ids("problem_type=slow_response&page=1") | ids(
            "problem_type=slow_response&page=2"
        ) == {str(c.id) for c in slow}
        assert ids("problem_type=attitude") == {str(rude.id)}
        assert ids("status=resolved") == {str(done.id)}
        assert str(done.id) not in ids("status=open") | ids("status=open&page=2")
        # An invalid filter is reported and ignored.
        bad = client.get("/cases?status=bogus")
        assert bad.status_code == 200
        assert "Not a valid choice" in bad.get_data(as_text=True)


# --- call-backs ------------------------------------------------------------------------------


def test_callback_deadline_and_overdue(analyst_client):
    late = new_case()
    late.ticket.resolved_at = utcnow() - timedelta(days=10)
    late.callback_due_at = late.ticket.resolved_at + timedelta(days=7)
    fresh = new_case()
    db.session.commit()
    now = utcnow()
    assert late.callback_overdue(now) and not fresh.callback_overdue(now)

    page = analyst_client.get("/cases?overdue=y").get_data(as_text=True)
    assert f'href="/cases/{late.id}"' in page and f'href="/cases/{fresh.id}"' not in page
    assert 'class="overdue"' in page

    log_call_back(
        late, user=None, called_at=now - timedelta(hours=1), outcome=CallBackOutcome.NO_ANSWER
    )
    db.session.commit()
    assert late.callback_overdue(utcnow()), "an unanswered call does not count"
    assert late.status is CaseStatus.IN_PROGRESS

    when = (now + timedelta(hours=8) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    response = post(
        analyst_client,
        f"/cases/{late.id}/call-backs",
        called_at=when,
        outcome="reached_unsatisfied",
        note="<i>wants a refund</i>",
    )
    assert response.status_code == 302
    db.session.refresh(late)
    assert not late.callback_overdue(utcnow())
    calls = db.session.scalars(select(CallBack).order_by(CallBack.called_at)).all()
    assert [c.outcome for c in calls] == [
        CallBackOutcome.NO_ANSWER,
        CallBackOutcome.REACHED_UNSATISFIED,
    ]
    # Typed in Asia/Shanghai (UTC+8), stored in UTC.
    assert abs((calls[1].called_at - (now - timedelta(minutes=30))).total_seconds()) < 120
    assert calls[1].user.name == "Lin"
    page = analyst_client.get(f"/cases/{late.id}").get_data(as_text=True)
    assert "&lt;i&gt;wants a refund&lt;/i&gt;" in page
    assert "called back" in page
    assert f'href="/cases/{late.id}"' not in analyst_client.get("/cases?overdue=y").get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("when", "outcome", "message"),
    [
        (timedelta(days=2), "reached_satisfied", "in the future"),
        (-timedelta(days=30), "reached_satisfied", "before the ticket was created"),
        (timedelta(0), "shouted", "Not a valid choice"),
        (None, "reached_satisfied", "This field is required"),
    ],
)
def test_bad_callbacks_are_refused(analyst_client, when, outcome, message):
    case = new_case()
    called_at = (
        (utcnow() + timedelta(hours=8) + when).strftime("%Y-%m-%dT%H:%M")
        if when is not None
        else ""
    )
    response = post(
        analyst_client, f"/cases/{case.id}/call-backs", called_at=called_at, outcome=outcome
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(CallBack)) == 0
    db.session.refresh(case)
    assert case.status is CaseStatus.NEW and case.called_back_at is None


# --- classification --------------------------------------------------------------------------


def classification(**overrides: str) -> dict[str, str]:
    return {
        "problem_type": "slow_response",
        "urgency": "3",
        "reach": "2",
        "touchpoint": "phone",
        "process_step": "receiving_request",
        "responsible_party": "resources",
        "status": "in_progress",
    } | overrides


def test_classify_a_case(analyst_client):
    case = new_case()
    response = post(analyst_client, f"/cases/{case.id}", **classification(status="resolved"))
    assert response.status_code == 302
    db.session.refresh(case)
    assert (case.urgency, case.reach, case.severity) == (3, 2, 6)
    assert case.severity_level == "high"
    assert case.responsible_party is ResponsibleParty.RESOURCES
    assert case.status is CaseStatus.RESOLVED and case.closed_at is not None
    assert "6 · high" in analyst_client.get(f"/cases/{case.id}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"urgency": "3", "reach": ""}, "Give both urgency and reach"),
        ({"urgency": "4"}, "Not a valid choice"),
        ({"status": "resolved", "responsible_party": ""}, "To resolve a case"),
        ({"status": "resolved", "reach": "", "urgency": ""}, "To resolve a case"),
        ({"problem_type": "weather"}, "Not a valid choice"),
        ({"status": "closed"}, "Not a valid choice"),
    ],
)
def test_bad_classification_changes_nothing(analyst_client, fields, message):
    case = new_case()
    response = post(analyst_client, f"/cases/{case.id}", **classification(**fields))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.refresh(case)
    assert (case.urgency, case.severity, case.status) == (None, None, CaseStatus.NEW)


def test_a_worked_case_cannot_go_back_to_new(app):
    case = new_case()
    log_call_back(case, user=None, called_at=utcnow(), outcome="no_answer")
    with pytest.raises(CaseError, match="back to new"):
        classify_case(
            case,
            problem_type=None,
            urgency=None,
            reach=None,
            touchpoint=None,
            process_step=None,
            responsible_party=None,
            status="new",
        )


def test_the_database_keeps_severity_equal_to_urgency_times_reach(app):
    from sqlalchemy.exc import IntegrityError

    case = new_case()
    case.urgency, case.reach, case.severity = 2, 2, 9
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


# --- root causes, linking, suggestions -------------------------------------------------------


def test_create_a_root_cause_from_a_case_and_link_more(analyst_client):
    case = new_case(keywords=["等待", "排队"])
    response = post(
        analyst_client,
        f"/cases/{case.id}/root-cause/new",
        title="Peak-hour rosters too thin",
        description="Queues over 3 minutes",
    )
    assert response.status_code == 302
    root_cause = db.session.scalar(select(RootCause))
    assert response.headers["Location"].endswith(f"/root-causes/{root_cause.id}")
    assert root_cause.themes == ["等待", "排队"]
    db.session.refresh(case)
    assert case.root_cause_id == root_cause.id and case.status is CaseStatus.IN_PROGRESS

    other = new_case(keywords=["排队", "电话"])
    page = analyst_client.get(f"/cases/{other.id}").get_data(as_text=True)
    assert "Suggested root causes" in page and "Peak-hour rosters too thin" in page
    assert (
        post(
            analyst_client, f"/cases/{other.id}/root-cause", root_cause_id=root_cause.id
        ).status_code
        == 302
    )
    db.session.refresh(other)
    assert other.root_cause_id == root_cause.id
    detail = analyst_client.get(f"/root-causes/{root_cause.id}").get_data(as_text=True)
    assert "Linked feedback (2)" in detail

    # An empty choice unlinks.
    assert (
        post(analyst_client, f"/cases/{other.id}/root-cause", root_cause_id="").status_code == 302
    )
    db.session.refresh(other)
    assert other.root_cause_id is None


def test_linking_to_a_closed_or_unknown_root_cause_is_refused(analyst_client):
    case = new_case()
    fixed = create_root_cause("Fixed last quarter")
    fixed.status = RootCauseStatus.RESOLVED
    db.session.commit()
    for value in (str(fixed.id), "999", "abc"):
        response = post(analyst_client, f"/cases/{case.id}/root-cause", root_cause_id=value)
        assert response.status_code == 400
    db.session.refresh(case)
    assert case.root_cause_id is None
    with pytest.raises(CaseError, match="reopen it"):
        link_case(case, fixed)


def test_suggestions_rank_by_shared_themes(app):
    waits = create_root_cause("Queues", themes="等待, 排队")
    replies = create_root_cause("No reply", themes=["回复"])
    both = create_root_cause("Peak hours", themes="等待，回复、排队")
    rejected = create_root_cause("Rejected", themes="等待, 回复, 排队")
    rejected.status = RootCauseStatus.REJECTED
    unrelated = create_root_cause("Billing", themes="退款")
    # One linked feedback item mentioning 回复 makes "No reply" stronger than its tag alone.
    linked = new_case(keywords=["回复", "客服"])
    link_case(linked, replies)
    db.session.commit()

    ranked = suggest_root_causes(["等待", "回复", "排队"])
    assert [s.root_cause.id for s in ranked] == [both.id, waits.id, replies.id]
    assert ranked[0].shared == ("回复", "排队", "等待") or set(ranked[0].shared) == {
        "等待",
        "回复",
        "排队",
    }
    # Equal overlap: more mentions among linked feedback first.
    two = suggest_root_causes(["回复"])
    assert [s.root_cause.id for s in two] == [replies.id, both.id]
    assert two[0].mentions == 1 and two[0].linked == 1
    assert suggest_root_causes(["客服"])[0].root_cause.id == replies.id  # via linked keywords
    assert suggest_root_causes([]) == []
    assert all(s.root_cause.id not in (rejected.id, unrelated.id) for s in ranked)


def test_root_cause_pages_and_bad_input(analyst_client):
    assert analyst_client.get("/root-causes").status_code == 200
    created = post(
        analyst_client,
        "/root-causes",
        title="<img src=x onerror=alert(1)>",
        problem_type="attitude",
        themes="态度, 不耐烦",
    )
    assert created.status_code == 302
    root_cause = db.session.scalar(select(RootCause))
    assert root_cause.themes == ["态度", "不耐烦"]
    page = analyst_client.get(f"/root-causes/{root_cause.id}").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page

    before = db.session.scalar(select(func.count()).select_from(RootCause))
    for data in (
        {"title": ""},
        {"title": "x" * 201},
        {"title": "ok", "problem_type": "weather"},
        {"title": "ok", "themes": ", ".join(f"t{i}" for i in range(21))},
    ):
        response = post(analyst_client, "/root-causes", **data)
        assert response.status_code == 400, data
    assert db.session.scalar(select(func.count()).select_from(RootCause)) == before

    edited = post(
        analyst_client,
        f"/root-causes/{root_cause.id}",
        title="Rushed agents",
        status="confirmed",
        themes="",
        problem_type="",
    )
    assert edited.status_code == 302
    db.session.refresh(root_cause)
    assert (root_cause.title, root_cause.status) == ("Rushed agents", RootCauseStatus.CONFIRMED)
    refused = post(analyst_client, f"/root-causes/{root_cause.id}", title="", status="open")
    assert refused.status_code == 400
    db.session.refresh(root_cause)
    assert root_cause.title == "Rushed agents"


# --- 5 Why -----------------------------------------------------------------------------------


def whys(root_cause: RootCause) -> list[tuple[int, str, str]]:
    rows = db.session.scalars(
        select(WhyStep).where(WhyStep.root_cause_id == root_cause.id).order_by(WhyStep.position)
    )
    return [(w.position, w.statement, w.category) for w in rows]


def test_five_why_chain_keeps_its_order(app):
    root_cause = create_root_cause("Long queues")
    first = add_why(root_cause, "Customers wait 3 minutes", "process", None)
    second = add_why(root_cause, "Rosters follow the average", "management", None)
    third = add_why(root_cause, "Volume is not measured per hour", "measurement", None)
    db.session.commit()
    assert [p for p, _s, _c in whys(root_cause)] == [1, 2, 3]

    move_why(third, "up")
    db.session.commit()
    assert [s for _p, s, _c in whys(root_cause)] == [
        "Customers wait 3 minutes",
        "Volume is not measured per hour",
        "Rosters follow the average",
    ]
    move_why(first, "up")  # already first: nothing moves
    delete_why(first)
    db.session.commit()
    assert whys(root_cause) == [
        (1, "Volume is not measured per hour", "measurement"),
        (2, "Rosters follow the average", "management"),
    ]
    assert second.position == 2
    with pytest.raises(CaseError):
        move_why(second, "sideways")
    with pytest.raises(CaseError, match="category"):
        add_why(root_cause, "The moon", "astrology", None)


def test_opening_a_case_and_every_why_edit_are_in_the_audit_trail(app, make_user):
    analyst = make_user(Role.ANALYST)
    response = make_response(nps=1)
    analyse(response)  # the rule opens the case: the trail's actor is the system
    case = case_of(response.id)
    root_cause = create_root_cause("Long queues", user=analyst)
    first = add_why(root_cause, "Customers wait", "process", analyst)
    second = add_why(root_cause, "Rosters follow the average", "management", analyst)
    update_why(first, "Customers wait 3 minutes", "process", analyst)
    move_why(second, "up", analyst)
    delete_why(first, analyst)
    db.session.commit()

    opened = db.session.scalars(
        select(AuditEvent).where(AuditEvent.entity_type == "case", AuditEvent.action == "open")
    ).one()
    assert (opened.entity_id, opened.actor_id) == (case.id, None)
    assert opened.changes["origin"] == [None, "auto"]
    assert opened.changes["status"] == [None, "new"]
    chain = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity_type == "root_cause", AuditEvent.action.like("why_%"))
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.actor_id) for e in chain] == [
        ("why_add", analyst.id),
        ("why_add", analyst.id),
        ("why_edit", analyst.id),
        ("why_move", analyst.id),
        ("why_delete", analyst.id),
    ]
    assert chain[2].changes["whys"] == [
        ["1. [process] Customers wait", "2. [management] Rosters follow the average"],
        ["1. [process] Customers wait 3 minutes", "2. [management] Rosters follow the average"],
    ]
    assert chain[-1].changes["whys"][1] == ["1. [management] Rosters follow the average"]
    # Moving the first why up moves nothing and records nothing.
    remaining = db.session.scalars(select(WhyStep)).one()
    move_why(remaining, "up", analyst)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "why_move")) == 1  # fmt: skip


def test_five_why_pages_and_fishbone(analyst_client):
    root_cause = create_root_cause("Long <queues>")
    db.session.commit()
    url = f"/root-causes/{root_cause.id}"
    for statement, category in (
        ("Peak-hour wait", "process"),
        ("Thin <rosters>", "management"),
        ("No hourly data", "measurement"),
    ):
        assert (
            post(analyst_client, f"{url}/whys", statement=statement, category=category).status_code
            == 302
        )
    steps = db.session.scalars(select(WhyStep).order_by(WhyStep.position)).all()

    assert (
        post(analyst_client, f"{url}/whys/{steps[2].id}/move", direction="up").status_code == 302
    )
    assert (
        post(
            analyst_client,
            f"{url}/whys/{steps[0].id}",
            **{
                f"why{steps[0].id}-statement": "Peak-hour wait > 3 min",
                f"why{steps[0].id}-category": "environment",
            },
        ).status_code
        == 302
    )
    assert post(analyst_client, f"{url}/whys/{steps[1].id}/delete").status_code == 302
    assert whys(root_cause) == [
        (1, "Peak-hour wait > 3 min", "environment"),
        (2, "No hourly data", "measurement"),
    ]

    page = analyst_client.get(url).get_data(as_text=True)
    assert "<svg" in page and 'data-category="environment"' in page
    assert "Long &lt;queues&gt;" in page and "<queues>" not in page
    assert "1. Peak-hour wait &gt; 3 min" in page
    # The history shows each change of the chain, by whom, escaped and readable.
    assert "why deleted" in page and "why_delete" not in page and "Lin" in page
    assert "2. [management] Thin &lt;rosters&gt; · 3." in page and "[&#39;" not in page
    overview = analyst_client.get("/root-causes/fishbone").get_data(as_text=True)
    assert "No hourly data (Long &lt;queues&gt;)" in overview

    # Bad input: empty, too long, unknown category, a why of another root cause.
    other = create_root_cause("Other")
    db.session.commit()
    for data in (
        {"statement": "", "category": "process"},
        {"statement": "x" * 1001, "category": "process"},
        {"statement": "ok", "category": "astrology"},
    ):
        assert post(analyst_client, f"{url}/whys", **data).status_code == 400
    keep = whys(root_cause)[0]
    step = db.session.scalar(
        select(WhyStep).where(WhyStep.position == 1, WhyStep.root_cause_id == root_cause.id)
    )
    assert (
        post(analyst_client, f"/root-causes/{other.id}/whys/{step.id}/delete").status_code == 404
    )
    bad_edit = post(
        analyst_client,
        f"{url}/whys/{step.id}",
        **{f"why{step.id}-statement": "", f"why{step.id}-category": "people"},
    )
    assert bad_edit.status_code == 400
    assert post(analyst_client, f"{url}/whys/{step.id}/move", direction="").status_code == 400
    assert whys(root_cause)[0] == keep
    assert len(whys(root_cause)) == 2


def test_fishbone_categories_are_configurable(make_app, make_user):
    app = make_app(FISHBONE_CATEGORIES=["man", "machine", "material", "method"])
    with app.app_context():
        root_cause = create_root_cause("Drift")
        add_why(root_cause, "Worn part", "machine", None)
        with pytest.raises(CaseError):
            add_why(root_cause, "Rude", "people", None)
        db.session.commit()
        from tests.conftest import Auth

        client = app.test_client()
        Auth(client).sign_in(make_user(Role.ANALYST))
        page = client.get(f"/root-causes/{root_cause.id}").get_data(as_text=True)
        assert 'data-category="man"' in page and 'data-category="people"' not in page


# --- Pareto ----------------------------------------------------------------------------------


def severity_case(
    root_cause: RootCause | None, severity: tuple[int, int] | None, status: str = "in_progress"
) -> FeedbackCase:
    case = new_case()
    urgency, reach = severity if severity else (None, None)
    classify_case(
        case,
        problem_type="other",
        urgency=urgency,
        reach=reach,
        touchpoint=None,
        process_step=None,
        responsible_party="resources",
        status=status,
    )
    if root_cause is not None:
        case.root_cause = root_cause
    db.session.commit()
    return case


@pytest.fixture
def pareto_fixture(app):
    """Four root causes, computed by hand:

    A: severities 9 (3×3), 2 (1×2) and one unassessed (1)  -> 3 items, weight 12
    C: severities 6 (3×2) and 2 (2×1), plus one dismissed   -> 2 items, weight 8
    B: five unassessed                                      -> 5 items, weight 5
    D: rejected, 2 items of severity 9                      -> left out
    Total 25: A 48%, C 32% (cumulative 80%), B 20% (100%). The vital few (to 80%): A, C.
    """
    a, b, c, d = (create_root_cause(title) for title in ("A", "B", "C", "D"))
    severity_case(a, (3, 3))
    severity_case(a, (1, 2))
    severity_case(a, None)
    severity_case(c, (3, 2))
    severity_case(c, (2, 1))
    severity_case(c, (3, 3), status="dismissed")
    for _ in range(5):
        severity_case(b, None)
    severity_case(d, (3, 3))
    severity_case(d, (3, 3))
    d.status = RootCauseStatus.REJECTED
    severity_case(None, (3, 3))  # not linked: not counted
    db.session.commit()
    return a, b, c


def test_pareto_against_a_hand_computed_fixture(pareto_fixture):
    a, b, c = pareto_fixture
    rows = root_cause_pareto()
    assert [(r.root_cause_id, r.feedback, r.weight) for r in rows] == [
        (a.id, 3, 12),
        (c.id, 2, 8),
        (b.id, 5, 5),
    ]
    assert [round(r.share, 6) for r in rows] == [48.0, 32.0, 20.0]
    assert [round(r.cumulative, 6) for r in rows] == [48.0, 80.0, 100.0]
    assert [r.vital for r in rows] == [True, True, False]


def test_pareto_period_and_empty(pareto_fixture):
    future = utcnow() + timedelta(days=1)
    assert root_cause_pareto(since=future) == []
    assert len(root_cause_pareto(until=future)) == 3


def _cases_of(root_cause: RootCause) -> list[FeedbackCase]:
    return list(
        db.session.scalars(
            select(FeedbackCase)
            .where(FeedbackCase.root_cause_id == root_cause.id)
            .order_by(FeedbackCase.id)
        )
    )


def test_pareto_filters_by_team_channel_and_problem_type(pareto_fixture):
    a, b, c = pareto_fixture
    for case in _cases_of(a) + _cases_of(b)[:1]:
        case.ticket.team = "Billing"
    for case in _cases_of(c):
        case.ticket.channel = Channel.CHAT
    _cases_of(a)[0].problem_type = "slow_response"  # severity 9
    _cases_of(b)[1].problem_type = "slow_response"  # unassessed: 1
    db.session.commit()

    # Team Billing: A (12) and one of B (1); total 13.
    billing = root_cause_pareto(teams=["Billing"])
    assert [(r.root_cause_id, r.feedback, r.weight) for r in billing] == [
        (a.id, 3, 12),
        (b.id, 1, 1),
    ]
    assert [round(r.share, 4) for r in billing] == [92.3077, 7.6923]
    assert [r.vital for r in billing] == [True, False]
    # Chat: C alone (its dismissed case still left out).
    chat = root_cause_pareto(channels=[Channel.CHAT])
    assert [(r.root_cause_id, r.feedback, r.weight, r.cumulative) for r in chat] == [
        (c.id, 2, 8, 100.0)
    ]
    # Slow response: 9 + 1 = 10, A 90 %, B 10 %; filters combine.
    slow = root_cause_pareto(problem_types=["slow_response"])
    assert [(r.root_cause_id, r.weight, round(r.share, 6)) for r in slow] == [
        (a.id, 9, 90.0),
        (b.id, 1, 10.0),
    ]
    assert root_cause_pareto(teams=["Billing"], channels=[Channel.CHAT]) == []


def test_pareto_page_filters_and_bad_filters(pareto_fixture, analyst_client):
    a, _b, c = pareto_fixture
    for case in _cases_of(c):
        case.ticket.channel = Channel.CHAT
    db.session.commit()
    page = analyst_client.get("/root-causes/pareto?channel=chat")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert (
        "100.0%" in html and f"/root-causes/{c.id}" in html and f'/root-causes/{a.id}"' not in html
    )
    today = utcnow().date()
    future = analyst_client.get(f"/root-causes/pareto?since={today + timedelta(days=2)}")
    assert future.status_code == 200
    assert "No linked feedback matches these filters." in future.get_data(as_text=True)
    for query in ("since=yesterday", f"since={today}&until={today - timedelta(days=1)}",
                  "channel=pigeon", "problem_type=nonsense"):  # fmt: skip
        bad = analyst_client.get(f"/root-causes/pareto?{query}")
        assert bad.status_code == 400, query
        assert "Please correct the filter above." in bad.get_data(as_text=True)


def test_pareto_page_and_cli(pareto_fixture, analyst_client, runner):
    page = analyst_client.get("/root-causes/pareto").get_data(as_text=True)
    assert "<svg" in page and "<polyline" in page
    assert "48.0%" in page and "80.0%" in page and "100.0%" in page
    result = runner.invoke(args=["cases", "pareto"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split("\t")[1:6] == ["3", "12", "48.0", "48.0", "yes"]
    assert lines[3].split("\t")[1:6] == ["5", "5", "20.0", "100.0", "no"]


# --- CLI -------------------------------------------------------------------------------------


def test_cli_scan_open_and_list(app, runner):
    low = make_response(nps=1)
    ok = make_response(nps=9)
    ticket = make_ticket()

    result = runner.invoke(args=["cases", "scan"])
    assert result.exit_code == 0, result.output
    assert "1 cases opened from 2 responses without a case." in result.output
    assert runner.invoke(args=["cases", "scan"]).output.startswith("0 cases opened from 1")

    assert "Opened case" in runner.invoke(args=["cases", "open", "--response", str(ok.id)]).output
    assert "Already open" in runner.invoke(args=["cases", "open", "--response", str(ok.id)]).output
    assert (
        "Opened case" in runner.invoke(args=["cases", "open", "--ticket", str(ticket.id)]).output
    )
    assert case_count() == 3

    missing = runner.invoke(args=["cases", "open", "--response", "999"])
    assert missing.exit_code == 1 and "no survey response 999" in missing.output
    both = runner.invoke(args=["cases", "open"])
    assert both.exit_code == 2 and "exactly one of" in both.output

    listing = runner.invoke(args=["cases", "list"])
    assert listing.exit_code == 0
    assert len(listing.output.splitlines()) == 3
    assert f"#{case_of(low.id).id}\tnew" in listing.output
    assert runner.invoke(args=["cases", "list", "--overdue"]).output == ""


# --- roles and CSRF --------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client):
    for url in ("/cases", "/root-causes", "/root-causes/pareto", "/root-causes/fishbone"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.MANAGER, Role.ADMIN])
def test_every_staff_role_works_cases(client, auth, make_user, role):
    auth.sign_in(make_user(role))
    case = new_case()
    for url in (
        "/cases",
        f"/cases/{case.id}",
        "/root-causes",
        "/root-causes/pareto",
        "/root-causes/fishbone",
    ):
        assert client.get(url).status_code == 200, url
    assert post(client, f"/cases/{case.id}", **classification()).status_code == 302


def test_posts_without_a_csrf_token_change_nothing(analyst_client):
    case = new_case()
    root_cause = create_root_cause("Queues")
    db.session.commit()
    posts = [
        (f"/cases/{case.id}", classification()),
        (
            f"/cases/{case.id}/call-backs",
            {"called_at": "2026-01-01T10:00", "outcome": "no_answer"},
        ),
        (f"/cases/{case.id}/root-cause", {"root_cause_id": str(root_cause.id)}),
        (f"/cases/{case.id}/root-cause/new", {"title": "New"}),
        ("/root-causes", {"title": "New"}),
        (f"/root-causes/{root_cause.id}/whys", {"statement": "Why", "category": "process"}),
        (f"/tickets/{case.ticket_id}/case", {}),
    ]
    for url, data in posts:
        response = analyst_client.post(url, data=data)
        assert response.status_code == 400, url
        assert "The form expired" in response.get_data(as_text=True)
    db.session.refresh(case)
    assert (case.status, case.root_cause_id, case.severity) == (CaseStatus.NEW, None, None)
    assert db.session.scalar(select(func.count()).select_from(RootCause)) == 1
    assert db.session.scalar(select(func.count()).select_from(WhyStep)) == 0
    assert case_count() == 1


# --- demo ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_adds_cases_root_causes_whys_and_callbacks(runner):
    args = ["demo", "--tickets", "300", "--customers", "60"]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "Root causes:" in first.output
    counts = {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (FeedbackCase, RootCause, WhyStep, CallBack)
    }
    assert counts["FeedbackCase"] > 10
    # Also those the analysis opened before the root-cause part of the demo ran.
    assert f"Root causes: {counts['FeedbackCase']} cases opened by the low-feedback rule" in (
        first.output
    )
    assert counts["RootCause"] == 5
    assert counts["WhyStep"] == 17
    assert counts["CallBack"] > 0
    assert db.session.scalar(select(func.count()).where(FeedbackCase.root_cause_id.is_not(None)))
    assert root_cause_pareto()

    again = runner.invoke(args=args)
    assert again.exit_code == 0, again.output
    assert (
        "0 cases opened by the low-feedback rule, 0 root causes created, "
        "0 feedback items linked, 0 call-backs logged." in again.output
    )
    assert counts == {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (FeedbackCase, RootCause, WhyStep, CallBack)
    }
