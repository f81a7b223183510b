"""The PDCA flow that guides: only the legal next moves, each refusal with its reasons; Do →
Check gated on the Check window's sample (with the date it should have enough), a scheduled
Check the periodic job enters, checking anyway with a note; Act asks what happens to the
open actions; the new-cycle form proposes its author as owner (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import current_app
from sqlalchemy import select

from improvement.audit.models import AuditEvent
from improvement.pdca.actions import add_action, update_action
from improvement.pdca.checks import window_sample
from improvement.pdca.common import PdcaError, PdcaForbidden, local_today
from improvement.pdca.models import ActionStatus, PdcaCycle, Stage, Verdict
from improvement.pdca.plan import PlanInput, create_cycle
from improvement.pdca.stages import (
    advance,
    approval_blockers,
    approve_plan,
    move_blockers,
    next_move,
    record_act,
    run_scheduled_checks,
    schedule_check,
)
from survey_app.extensions import db
from survey_app.labels import label
from survey_app.models import Role
from tests.conftest import csrf_token
from tests.kpi_data import KpiData

#: SQL semantics (the window's KPI count, the job's query): SQLite and PostgreSQL.
pytestmark = pytest.mark.db

ZONE = ZoneInfo("Asia/Shanghai")


def days_ago(n: int) -> date:
    return datetime.now(ZONE).date() - timedelta(days=n)


def answers(kd: KpiData, day: date, count: int, team: str = "Frontline", score: int = 5) -> None:
    for _ in range(count):
        submitted = datetime.combine(day, time(12), ZONE).astimezone(UTC)
        kd.response(kd.ticket(team=team), submitted_at=submitted, csat_overall=score)


@pytest.fixture
def kd(app):
    data = KpiData()
    answers(data, days_ago(35), 10, score=5)
    answers(data, days_ago(35), 10, score=2)
    return data


@pytest.fixture
def people(make_user):
    return {
        "manager": make_user(Role.MANAGER, email="boss@example.com", name="Boss"),
        "analyst": make_user(Role.ANALYST, email="ana@example.com", name="Ana"),
    }


def new_cycle(people: dict[str, Any], title: str = "Rosters") -> PdcaCycle:
    return create_cycle(
        PlanInput(
            title=title,
            owner=people["manager"],
            kpi="csat_overall_percent",
            baseline_start=days_ago(40),
            baseline_end=days_ago(31),
            target_value=70.0,
            target_date=days_ago(-30),
            scope={"team": ["Frontline"]},
        ),
        people["analyst"],
    )


def at_do(people: dict[str, Any], do_days_ago: int = 10) -> PdcaCycle:
    """A cycle at Do since ``do_days_ago`` days, with one open action."""
    cycle = new_cycle(people)
    add_action(cycle, title="Re-roster", owner=people["analyst"], deadline=days_ago(-5), user=None)
    approve_plan(cycle, people["manager"])
    advance(cycle, "do", people["manager"])
    cycle.do_started_at = datetime.combine(days_ago(do_days_ago), time(9), ZONE).astimezone(UTC)
    db.session.flush()
    return cycle


def events(entity_type: str, entity_id: int) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.id)
        )
    )


# --- the gates, in one place ----------------------------------------------------------------


def test_blockers_name_every_reason_and_only_the_next_stage_is_legal(app, kd, people):
    manager = people["manager"]
    cycle = new_cycle(people)
    move = next_move(cycle)
    assert move is not None and move.to is Stage.DO and not move.allowed
    assert move.blockers == (
        "Do needs at least one action with an owner and a deadline.",
        "Do needs a manager's approval of the plan.",
    )
    assert approval_blockers(cycle) == [
        "A plan needs at least one action with an owner and a deadline."
    ]
    for skipped in (Stage.CHECK, Stage.ACT, Stage.CLOSED):
        assert move_blockers(cycle, skipped).blockers == (
            f"A cycle at Plan cannot move to {label(skipped)}.",
        )
    add_action(cycle, title="Re-roster", owner=people["analyst"], deadline=days_ago(-5), user=None)
    assert approval_blockers(cycle) == []
    assert next_move(cycle).blockers == ("Do needs a manager's approval of the plan.",)  # type: ignore[union-attr]
    with pytest.raises(PdcaError, match="approval"):  # advance refuses with the same reasons
        advance(cycle, "do", manager)
    approve_plan(cycle, manager)
    assert next_move(cycle).allowed  # type: ignore[union-attr]
    advance(cycle, "do", manager)
    app.config["METRICS_MIN_SAMPLE"] = 1
    answers(kd, local_today(), 1)
    advance(cycle, "check", manager)
    assert next_move(cycle).allowed and next_move(cycle).to is Stage.ACT  # type: ignore[union-attr]
    advance(cycle, "act", manager)
    assert next_move(cycle) is None  # Act is the decision, not a move
    record_act(cycle, "adjust", manager, pending="keep")
    assert next_move(cycle) is None


def test_the_window_sample_and_the_date_it_should_have_enough(app, kd, people):
    cycle = at_do(people, do_days_ago=10)
    # Nothing in the window yet: the count and "unknown".
    sample = window_sample(cycle)
    assert (sample.start, sample.end, sample.n, sample.needed) == (
        days_ago(10),
        local_today(),
        0,
        30,
    )
    assert sample.ready_by is None and not sample.enough
    message = move_blockers(cycle, Stage.CHECK).blockers[0]
    assert "has 0 of the 30 observations" in message and "unknown" in message
    # 11 in the window over 11 days (another team's are outside the scope): one a day,
    # 19 more needed, so 19 days from today.
    answers(kd, days_ago(5), 11)
    answers(kd, days_ago(5), 40, team="Billing")
    sample = window_sample(cycle)
    assert (sample.n, sample.ready_by) == (11, local_today() + timedelta(days=19))
    with pytest.raises(PdcaError) as refused:
        advance(cycle, "check", people["manager"])
    text = str(refused.value)
    assert f"({days_ago(10).isoformat()} – {local_today().isoformat()})" in text
    assert "has 11 of the 30 observations the Check needs" in text
    assert f"should have enough by {(local_today() + timedelta(days=19)).isoformat()}" in text
    assert cycle.stage is Stage.DO and cycle.check_started_at is None
    # 10 over 3 days, 20 more needed: 20 · 3 / 10 = 6 days.
    cycle.do_started_at = datetime.combine(days_ago(2), time(9), ZONE).astimezone(UTC)
    answers(kd, days_ago(1), 10)
    sample = window_sample(cycle)
    assert (sample.n, sample.ready_by) == (10, local_today() + timedelta(days=6))
    # Enough: today, and the move is allowed.
    answers(kd, local_today(), 20)
    sample = window_sample(cycle)
    assert sample.enough and sample.ready_by == local_today()
    advance(cycle, "check", people["manager"])
    assert cycle.stage is Stage.CHECK and cycle.measurements[0].b_n == 30


def test_check_anyway_needs_a_manager_and_a_note_and_is_recorded(app, kd, people):
    manager = people["manager"]
    cycle = at_do(people)
    answers(kd, days_ago(3), 4)
    with pytest.raises(PdcaForbidden):
        advance(cycle, "check", people["analyst"], "please", anyway=True)
    with pytest.raises(PdcaError, match="needs a note"):
        advance(cycle, "check", manager, "  ", anyway=True)
    advance(cycle, "check", manager, "The director reviews it on Friday.", anyway=True)
    db.session.commit()
    assert cycle.stage is Stage.CHECK
    assert cycle.measurements[0].verdict is Verdict.NOT_ENOUGH_DATA
    assert cycle.stage_log[-1].note == (
        "Checked before the window had the minimum sample (4 of 30): "
        "The director reviews it on Friday."
    )
    assert events("cycle", cycle.id)[-1].action == "check_anyway"
    # "Anyway" lifts the sample gate only: Check → Act still needs its measurement.
    db.session.delete(cycle.measurements[0])
    db.session.flush()
    db.session.expire(cycle, ["measurements"])
    with pytest.raises(PdcaError, match="measurement"):
        advance(cycle, "act", manager, "now", anyway=True)


# --- the scheduled Check --------------------------------------------------------------------


def test_schedule_check_roles_stage_and_dates(app, kd, people):
    manager, analyst = people["manager"], people["analyst"]
    at_plan = new_cycle(people, "At Plan")
    with pytest.raises(PdcaError, match="Only a cycle at Do"):
        schedule_check(at_plan, manager, days_ago(-5))
    cycle = at_do(people)
    with pytest.raises(PdcaForbidden):
        schedule_check(cycle, analyst, days_ago(-5))
    with pytest.raises(PdcaError, match="in the past"):
        schedule_check(cycle, manager, days_ago(1))
    schedule_check(cycle, manager, days_ago(-5))
    assert cycle.check_scheduled_for == days_ago(-5)
    last = events("cycle", cycle.id)[-1]
    assert last.action == "schedule_check"
    assert last.changes["check_scheduled_for"] == [None, days_ago(-5).isoformat()]
    schedule_check(cycle, manager, None)
    assert cycle.check_scheduled_for is None
    assert events("cycle", cycle.id)[-1].action == "unschedule_check"


def test_the_job_enters_a_scheduled_check_once_the_window_has_enough(app, kd, people):
    cycle = at_do(people)
    answers(kd, days_ago(5), 20)
    tomorrow = local_today() + timedelta(days=1)
    schedule_check(cycle, people["manager"], tomorrow)
    db.session.commit()
    # Not yet the day; then the day, but 20 of 30.
    assert run_scheduled_checks(local_today()) == 0
    assert run_scheduled_checks(tomorrow) == 0
    assert cycle.stage is Stage.DO
    answers(kd, days_ago(1), 10)
    db.session.commit()
    assert run_scheduled_checks(local_today()) == 0  # enough, but not the day yet
    assert run_scheduled_checks(tomorrow) == 1
    assert run_scheduled_checks(tomorrow) == 0  # safe to run twice
    db.session.expire_all()
    cycle = db.session.get(PdcaCycle, cycle.id)
    assert cycle.stage is Stage.CHECK and cycle.check_scheduled_for is None
    assert [m.b_n for m in cycle.measurements] == [30]
    change = cycle.stage_log[-1]
    assert (change.from_stage, change.to_stage, change.user_id) == (Stage.DO, Stage.CHECK, None)
    assert (
        change.note == f"Scheduled Check ({tomorrow.isoformat()}): the window has 30 observations."
    )
    last = events("cycle", cycle.id)[-1]
    assert (last.action, last.actor_id) == ("scheduled_check", None)
    assert last.changes["stage"] == ["do", "check"]


def test_the_periodic_job_and_the_command_run_the_scheduled_checks(app, kd, people, runner):
    from survey_app.background import registered_jobs

    cycle = at_do(people)
    answers(kd, days_ago(5), 30)
    schedule_check(cycle, people["manager"], local_today())
    db.session.commit()
    (job,) = [j for j in registered_jobs(app) if j.name == "pdca-rechecks"]
    assert job.run() == 1
    db.session.expire_all()
    assert db.session.get(PdcaCycle, cycle.id).stage is Stage.CHECK
    other = at_do(people)
    schedule_check(other, people["manager"], local_today())
    db.session.commit()
    result = runner.invoke(args=["pdca", "recheck"])
    assert result.exit_code == 0, result.output
    assert "1 scheduled Checks started, 0 re-checks measured." in result.output


# --- Act and the open actions ---------------------------------------------------------------


def at_act(people: dict[str, Any], kd: KpiData) -> PdcaCycle:
    """A cycle at Act with three actions, by deadline: Train (open), Re-roster (done),
    Rewrite FAQ (in progress)."""
    current_app.config["METRICS_MIN_SAMPLE"] = 5
    cycle = at_do(people)
    cycle.actions[0].status = ActionStatus.DONE
    add_action(cycle, title="Train", owner=people["analyst"], deadline=days_ago(-3), user=None)
    late = add_action(
        cycle, title="Rewrite FAQ", owner=people["analyst"], deadline=days_ago(-9), user=None
    )
    late.status = ActionStatus.IN_PROGRESS
    answers(kd, days_ago(2), 5)
    advance(cycle, "check", people["manager"])
    advance(cycle, "act", people["manager"])
    db.session.flush()
    return cycle


def test_act_refuses_without_saying_what_happens_to_open_actions(app, kd, people):
    manager = people["manager"]
    cycle = at_act(people, kd)
    with pytest.raises(PdcaError, match="Actions still open: 2. Say what happens to them"):
        record_act(cycle, "adjust", manager)
    with pytest.raises(PdcaError, match="only be carried into a next cycle"):
        record_act(cycle, "adjust", manager, pending="carry")
    with pytest.raises(PdcaError, match="Unknown choice"):
        record_act(cycle, "adjust", manager, pending="forget")
    assert cycle.stage is Stage.ACT and cycle.closed_at is None


def test_act_cancels_the_open_actions(app, kd, people):
    cycle = at_act(people, kd)
    record_act(cycle, "abandon", people["manager"], "Did not help", pending="cancel")
    db.session.commit()
    assert {a.title: a.status for a in cycle.actions} == {
        "Re-roster": ActionStatus.DONE,
        "Train": ActionStatus.CANCELLED,
        "Rewrite FAQ": ActionStatus.CANCELLED,
    }
    assert cycle.stage_log[-1].note == "Did not help\nOpen actions cancelled: 2."
    for action in (a for a in cycle.actions if a.title != "Re-roster"):
        last = events("action", action.id)[-1]
        assert last.action == "cancel" and last.actor_id == people["manager"].id
        assert last.changes["status"][1] == "cancelled"


def test_act_keeps_open_actions_to_be_finished_later(app, kd, people):
    cycle = at_act(people, kd)
    record_act(cycle, "standardise", people["manager"], pending="keep")
    db.session.commit()
    assert cycle.stage is Stage.CLOSED
    train, done, faq = cycle.actions  # by deadline
    assert (train.status, faq.status) == (ActionStatus.OPEN, ActionStatus.IN_PROGRESS)
    assert "Open actions kept open, to be finished later: 2." in cycle.stage_log[-1].note
    # Its owner finishes a kept action later; a finished one, or a new one, is refused.
    update_action(train, status="done", evidence="trained", user=people["analyst"])
    with pytest.raises(PdcaError, match="closed"):
        update_action(train, status="open", evidence="", user=people["analyst"])
    with pytest.raises(PdcaError, match="closed"):
        update_action(done, status="open", evidence="", user=people["manager"])
    with pytest.raises(PdcaError, match="closed"):
        add_action(cycle, title="x", owner=people["analyst"], deadline=days_ago(-1), user=None)


def test_act_carries_open_actions_into_the_next_cycle(app, kd, people):
    answers(kd, days_ago(10), 5)  # the next cycle's baseline: the 30 days up to yesterday
    cycle = at_act(people, kd)
    _closed, following = record_act(
        cycle, "adjust", people["manager"], open_next=True, pending="carry"
    )
    db.session.commit()
    assert following is not None and following.stage is Stage.PLAN
    assert [a.title for a in cycle.actions] == ["Re-roster"]
    assert [(a.title, a.status) for a in following.actions] == [
        ("Train", ActionStatus.OPEN),
        ("Rewrite FAQ", ActionStatus.IN_PROGRESS),
    ]
    assert cycle.stage_log[-1].note == f"Open actions carried into cycle #{following.id}: 2."
    for action in following.actions:
        last = events("action", action.id)[-1]
        assert last.action == "carry"
        assert last.changes == {"cycle_id": [cycle.id, following.id]}
    # The carried actions are the next plan's: it can be approved.
    assert approval_blockers(following) == []


# --- the pages ------------------------------------------------------------------------------


def stage_section(page: str) -> str:
    return page[page.index('id="stage"') : page.index("Stage log")]


def test_the_cycle_page_offers_only_the_legal_moves_with_reasons(app, client, auth, kd, people):
    cycle = new_cycle(people)
    db.session.commit()
    auth.sign_in(people["analyst"])
    section = stage_section(client.get(f"/pdca/{cycle.id}").get_data(as_text=True))
    assert "Approve the plan" not in section  # a manager's
    assert re.search(r'<button type="submit" class="primary" disabled[^>]*>Move to Do', section)
    assert "Only a manager can move a cycle between stages." in section
    auth.logout()

    auth.sign_in(people["manager"])
    section = stage_section(client.get(f"/pdca/{cycle.id}").get_data(as_text=True))
    assert re.search(r"disabled[^>]*>Approve the plan", section)
    assert "A plan needs at least one action with an owner and a deadline." in section
    assert "Do needs a manager&#39;s approval of the plan." in section
    for absent in ("Move to Check", "Move to Act", "Record the decision", "Schedule the Check"):
        assert absent not in section

    add_action(cycle, title="Re-roster", owner=people["analyst"], deadline=days_ago(-5), user=None)
    approve_plan(cycle, people["manager"])
    db.session.commit()
    section = stage_section(client.get(f"/pdca/{cycle.id}").get_data(as_text=True))
    assert "Approve the plan" not in section
    assert re.search(r'class="primary">Move to Do', section)  # enabled

    response = client.post(
        f"/pdca/{cycle.id}/stage", data={"to": "do", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302
    section = stage_section(client.get(f"/pdca/{cycle.id}").get_data(as_text=True))
    assert re.search(r"disabled[^>]*>Move to Check", section)
    assert "has 0 of the 30 observations the Check needs" in section
    assert "Schedule the Check" in section and "Check now anyway" in section
    # A move the page does not offer is refused by the same gate.
    token = csrf_token(client)
    response = client.post(f"/pdca/{cycle.id}/stage", data={"to": "check", "csrf_token": token})
    assert response.status_code == 400
    assert "has 0 of the 30 observations" in response.get_data(as_text=True)
    response = client.post(f"/pdca/{cycle.id}/stage", data={"to": "act", "csrf_token": token})
    assert response.status_code == 400
    # Checking anyway from the page needs the note.
    anyway = {"to": "check", "anyway": "y", "note": "", "csrf_token": token}
    assert client.post(f"/pdca/{cycle.id}/stage", data=anyway).status_code == 400
    db.session.expire_all()
    assert db.session.get(PdcaCycle, cycle.id).stage is Stage.DO


def test_scheduling_the_check_from_the_page_shows_on_the_page_and_the_board(
    app, client, auth, kd, people
):
    cycle = at_do(people)
    answers(kd, days_ago(5), 10)  # 10 over 11 days: 20 more need 22 days
    db.session.commit()
    auth.sign_in(people["manager"])
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    estimate = (local_today() + timedelta(days=22)).isoformat()
    assert re.search(rf'<input[^>]*name="on"[^>]*value="{estimate}"', page)  # the estimate
    token = csrf_token(client)
    url = f"/pdca/{cycle.id}/schedule-check"
    assert client.post(url, data={"on": "", "csrf_token": token}).status_code == 400
    past = days_ago(1).isoformat()
    response = client.post(url, data={"on": past, "csrf_token": token})
    assert response.status_code == 400 and "in the past" in response.get_data(as_text=True)
    assert client.post(url, data={"on": estimate, "csrf_token": token}).status_code == 302
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    assert f'data-check-scheduled="{estimate}"' in page
    shown = f'Check scheduled for <time datetime="{estimate}">{estimate}</time>'
    assert shown in page
    board = client.get("/pdca").get_data(as_text=True)
    assert shown in board
    response = client.post(url, data={"cancel": "Cancel", "csrf_token": token})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(PdcaCycle, cycle.id).check_scheduled_for is None
    assert "Check scheduled for" not in client.get("/pdca").get_data(as_text=True)


def test_the_act_form_asks_about_open_actions_and_refuses_without_an_answer(
    app, client, auth, kd, people
):
    cycle = at_act(people, kd)
    db.session.commit()
    auth.sign_in(people["manager"])
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    assert "Actions still open: 2. What happens to them?" in page
    for choice in ("carry", "cancel", "keep"):
        assert f'value="{choice}"' in page
    url = f"/pdca/{cycle.id}/act"
    response = client.post(url, data={"decision": "adjust", "csrf_token": csrf_token(client)})
    assert response.status_code == 400
    assert "Actions still open: 2. Say what happens to them" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(PdcaCycle, cycle.id).stage is Stage.ACT
    data = {"decision": "adjust", "open_actions": "cancel", "csrf_token": csrf_token(client)}
    assert client.post(url, data=data).status_code == 302
    db.session.expire_all()
    cycle = db.session.get(PdcaCycle, cycle.id)
    assert cycle.stage is Stage.CLOSED
    assert [a.status.value for a in cycle.actions] == ["cancelled", "done", "cancelled"]


def test_a_closed_cycle_without_open_actions_does_not_ask(app, client, auth, kd, people):
    cycle = at_act(people, kd)
    for action in cycle.actions:
        action.status = ActionStatus.DONE
    db.session.commit()
    auth.sign_in(people["manager"])
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    assert "still open" not in page
    data = {"decision": "standardise", "csrf_token": csrf_token(client)}
    assert client.post(f"/pdca/{cycle.id}/act", data=data).status_code == 302


def test_the_new_cycle_form_proposes_its_manager_author_as_owner(app, client, auth, people):
    manager, analyst = people["manager"], people["analyst"]
    auth.sign_in(manager)
    page = client.get("/pdca/new").get_data(as_text=True)
    assert f'<option selected value="{manager.id}">' in page
    auth.logout()
    auth.sign_in(analyst)  # an analyst cannot own a cycle: nothing proposed for them
    page = client.get("/pdca/new").get_data(as_text=True)
    assert "selected" not in page[page.index('name="owner_id"') :].split("</select>")[0]
