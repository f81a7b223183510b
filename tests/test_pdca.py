"""PDCA cycles: gates, stage log, baseline, the Check's statistics and verdicts, reminders,
roles, CSRF and bad input (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from scipy import stats as scipy_stats
from sqlalchemy import func, select

from analysis.metrics import Scope
from improvement.pdca import TIMELINE_MARKERS, timeline_markers
from improvement.pdca.actions import add_action, update_action
from improvement.pdca.checks import measure, run_due_rechecks
from improvement.pdca.common import PdcaError, PdcaForbidden, local_today
from improvement.pdca.lists import action_dates
from improvement.pdca.models import (
    ActDecision,
    ActionItem,
    ActionReminder,
    ActionStatus,
    CheckMeasurement,
    Comparison,
    PdcaCycle,
    Stage,
    StageChange,
    Verdict,
)
from improvement.pdca.plan import PlanInput, create_cycle, update_plan
from improvement.pdca.reminders import send_action_reminders
from improvement.pdca.stages import advance, approve_plan, record_act
from improvement.pdca.stats import mann_whitney_bootstrap, mean, nps_bootstrap, two_proportion_test
from improvement.root_causes.cases import open_case
from improvement.root_causes.causes import create_root_cause, link_case
from improvement.root_causes.models import CaseOrigin, CaseStatus, RootCauseStatus
from survey_app.extensions import db
from survey_app.models import Role, Ticket, User
from tests.conftest import csrf_token
from tests.kpi_data import KpiData

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

ZONE = ZoneInfo("Asia/Shanghai")


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), ZONE).astimezone(UTC)


def days_ago(n: int) -> date:
    return datetime.now(ZONE).date() - timedelta(days=n)


def add_responses(kd: KpiData, day: date, team: str = "Frontline", **columns: list[Any]) -> None:
    """One response per value at noon of ``day``; ``columns`` e.g. csat_overall=[5, 2]."""
    name, values = next(iter(columns.items()))
    for value in values:
        kd.response(kd.ticket(team=team), submitted_at=noon(day), **{name: value})


def plan(owner: Any, **overrides: Any) -> PlanInput:
    fields: dict[str, Any] = {
        "title": "Faster first replies",
        "owner": owner,
        "kpi": "csat_overall_percent",
        "baseline_start": days_ago(40),
        "baseline_end": days_ago(31),
        "target_value": 70.0,
        "target_date": days_ago(-30),
        "scope": {"team": ["Frontline"]},
    }
    fields.update(overrides)
    return PlanInput(**fields)


@pytest.fixture
def data(app):
    with app.app_context():
        yield KpiData()


@pytest.fixture
def people(make_user):
    return {
        "manager": make_user(Role.MANAGER, email="boss@example.com"),
        "analyst": make_user(Role.ANALYST, email="ana@example.com"),
        "other": make_user(Role.ANALYST, email="other@example.com"),
    }


def baseline_data(kd: KpiData) -> None:
    # Baseline: 10 satisfied of 20 (50 %); another team's answers are outside the scope.
    add_responses(kd, days_ago(35), csat_overall=[5] * 10 + [2] * 10)
    add_responses(kd, days_ago(35), team="Billing", csat_overall=[5] * 30)


def run_to_check(cycle: PdcaCycle, people: dict[str, Any]) -> None:
    add_action(cycle, title="Re-roster", owner=people["analyst"], deadline=days_ago(-5), user=None)
    approve_plan(cycle, people["manager"])
    advance(cycle, "do", people["manager"])
    cycle.do_started_at = noon(days_ago(20))
    advance(cycle, "check", people["manager"], "measured")


# --- statistics against hand-computed values -------------------------------------------------


def test_two_proportion_test_by_hand():
    # 40/100 → 60/100: pooled p = 0.5, SE = √(0.25·0.02) = 0.0707107, z = 2.828427,
    # p = erfc(2) = 0.0046777; unpooled SE = √(0.0024 + 0.0024) = 0.0692820.
    result = two_proportion_test(40, 100, 60, 100)
    assert result.difference == pytest.approx(20.0)
    assert result.p_value == pytest.approx(math.erfc(2.0), rel=1e-9)
    assert result.p_value == pytest.approx(0.0046777, abs=1e-7)
    half = 1.959963984540054 * 0.0692820323 * 100
    assert result.ci == pytest.approx((20 - half, 20 + half), rel=1e-6)
    assert result.ci[0] == pytest.approx(6.4209, abs=1e-3)
    # No variation at all: nothing to test.
    assert two_proportion_test(10, 10, 20, 20).p_value == 1.0
    with pytest.raises(ValueError):
        two_proportion_test(0, 0, 1, 2)


def test_nps_bootstrap_is_seeded_and_matches_the_normal_approximation():
    # NPS 30 (50/30/20) → 50 (60/30/10). Per-answer variances 0.61 and 0.45, so the normal
    # approximation of the difference's SE is 100·√(0.0061 + 0.0045) = 10.296.
    first = nps_bootstrap((50, 30, 20), (60, 30, 10))
    again = nps_bootstrap((50, 30, 20), (60, 30, 10))
    assert first == again
    assert first.difference == pytest.approx(20.0)
    se = 100 * math.sqrt(0.61 / 100 + 0.45 / 100)
    assert first.ci[0] == pytest.approx(20 - 1.96 * se, abs=2.0)
    assert first.ci[1] == pytest.approx(20 + 1.96 * se, abs=2.0)
    # Two-sided p of z = 20 / 10.296 = 1.94 is about 0.052.
    assert 0.02 < first.p_value < 0.1
    assert nps_bootstrap((50, 30, 20), (60, 30, 10), seed=1) != first


def test_mann_whitney_by_hand():
    # U = 9 of 9 pairs; mean 4.5, σ = √(3·3·7/12) = 2.2913; with continuity correction
    # z = (9 − 4.5 − 0.5) / 2.2913 = 1.7457, p = 2·(1 − Φ(1.7457)) = 0.0809.
    result = mann_whitney_bootstrap([1, 2, 3], [4, 5, 6], mean)
    assert result.difference == pytest.approx(3.0)
    assert result.p_value == pytest.approx(0.0809, abs=1e-4)
    reference = scipy_stats.mannwhitneyu([4, 5, 6], [1, 2, 3], method="asymptotic")
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.ci[0] <= 3.0 <= result.ci[1]
    assert mann_whitney_bootstrap([2, 2], [2, 2, 2], mean).p_value == 1.0


# --- plan, baseline, gates and the stage log -------------------------------------------------


def test_baseline_is_computed_from_the_scope(app, data, people):
    baseline_data(data)
    cycle = create_cycle(plan(people["manager"]), people["analyst"])
    db.session.commit()
    assert (cycle.baseline_value, cycle.baseline_n) == (50.0, 20)
    assert cycle.stage is Stage.PLAN
    assert [(c.from_stage, c.to_stage) for c in cycle.stage_log] == [(None, Stage.PLAN)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kpi": "happiness"}, "Unknown metric"),
        ({"scope": {"team": ["Nobody"]}}, "matches no data"),
        ({"scope": {"channel": ["pigeon"]}}, "Bad scope"),
        ({"scope": {"colour": ["red"]}}, "Bad scope"),
        ({"title": "  "}, "title"),
        ({"baseline_start": days_ago(20), "baseline_end": days_ago(30)}, "starts after"),
        ({"target_date": days_ago(35)}, "target date"),
        ({"pilot_scope": {"team": ["Frontline"]}}, "pilot scope and a control scope"),
    ],
)
def test_bad_plans_are_refused(app, data, people, overrides, message):
    baseline_data(data)
    db.session.commit()
    with pytest.raises(PdcaError, match=message):
        create_cycle(plan(people["manager"], **overrides), people["analyst"])
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PdcaCycle)) == 0


def test_gates(app, data, people):
    baseline_data(data)
    manager, analyst, other = people["manager"], people["analyst"], people["other"]
    # An analyst drafts the plan (owned by a manager) and adds its action.
    cycle = create_cycle(plan(manager), analyst)
    with pytest.raises(PdcaError, match="at least one action"):
        advance(cycle, "do", manager)
    with pytest.raises(PdcaError, match="at least one action"):
        approve_plan(cycle, manager)
    with pytest.raises(PdcaError, match="owner"):
        add_action(cycle, title="x", owner=None, deadline=days_ago(-3), user=analyst)
    with pytest.raises(PdcaError, match="deadline"):
        add_action(cycle, title="x", owner=analyst, deadline=None, user=analyst)
    add_action(cycle, title="Re-roster", owner=analyst, deadline=days_ago(-3), user=analyst)
    with pytest.raises(PdcaError, match="approval"):
        advance(cycle, "do", manager)
    with pytest.raises(PdcaForbidden):
        approve_plan(cycle, analyst)
    approve_plan(cycle, manager)
    assert cycle.approved_by_id == manager.id and cycle.approved_at is not None
    for not_a_manager in (analyst, other):  # the plan's author, an action owner: no
        with pytest.raises(PdcaForbidden, match="Only a manager"):
            advance(cycle, "do", not_a_manager)
    with pytest.raises(PdcaError, match="cannot move"):
        advance(cycle, "check", manager)  # skipping Do
    with pytest.raises(PdcaError, match="Unknown stage"):
        advance(cycle, "done", manager)
    advance(cycle, "do", manager, "go")
    with pytest.raises(PdcaError, match="cannot move"):
        advance(cycle, "act", manager)
    cycle.do_started_at = noon(days_ago(20))
    add_responses(data, days_ago(10), csat_overall=[5] * 15 + [2] * 5)
    with pytest.raises(PdcaForbidden):
        advance(cycle, "check", analyst)
    with pytest.raises(PdcaError, match="has 20 of the 30 observations"):
        advance(cycle, "check", manager)  # the Check window is short of data
    app.config["METRICS_MIN_SAMPLE"] = 20
    advance(cycle, "check", manager)
    assert [m.round for m in cycle.measurements] == [0]
    # No leaving Check without a measurement.
    db.session.delete(cycle.measurements[0])
    db.session.flush()
    db.session.expire(cycle, ["measurements"])
    with pytest.raises(PdcaError, match="measurement"):
        advance(cycle, "act", manager)
    measure(cycle, 0)
    advance(cycle, "act", manager)
    with pytest.raises(PdcaForbidden):
        record_act(cycle, "standardise", analyst)
    with pytest.raises(PdcaError, match="Unknown decision"):
        record_act(cycle, "shrug", manager)
    with pytest.raises(PdcaError, match="Actions still open: 1."):
        record_act(cycle, ActDecision.ADJUST, manager, "half of it worked")
    record_act(cycle, ActDecision.ADJUST, manager, "half of it worked", pending="keep")
    db.session.commit()
    log = db.session.scalars(
        select(StageChange).where(StageChange.cycle_id == cycle.id).order_by(StageChange.id)
    ).all()
    assert [(c.from_stage, c.to_stage) for c in log] == [
        (None, Stage.PLAN),
        (Stage.PLAN, Stage.DO),
        (Stage.DO, Stage.CHECK),
        (Stage.CHECK, Stage.ACT),
        (Stage.ACT, Stage.CLOSED),
    ]
    assert log[0].user_id == analyst.id
    assert log[1].user_id == manager.id and log[1].note == "go"
    assert log[-1].user_id == manager.id
    assert log[-1].note == "half of it worked\nOpen actions kept open, to be finished later: 1."
    with pytest.raises(PdcaError, match="closed"):
        add_action(cycle, title="late", owner=analyst, deadline=days_ago(-1), user=analyst)


def _cycle_count() -> int:
    return db.session.scalar(select(func.count()).select_from(PdcaCycle))


def test_cycle_owner_must_be_an_active_manager_or_admin(app, data, people, make_user):
    baseline_data(data)
    db.session.commit()
    admin = make_user(Role.ADMIN, email="root@example.com")
    retired = make_user(Role.MANAGER, email="retired@example.com", active=False)
    # An analyst owner is refused with the rule, whoever writes the plan; nothing written.
    for author in (people["analyst"], people["manager"], admin):
        with pytest.raises(PdcaError, match="owner must be a manager or an admin"):
            create_cycle(plan(people["analyst"]), author)
        db.session.rollback()
    with pytest.raises(PdcaError, match="deactivated"):
        create_cycle(plan(retired), people["manager"])
    db.session.rollback()
    assert _cycle_count() == 0
    # A manager or an admin owner is accepted.
    by_manager = create_cycle(plan(people["manager"]), people["manager"])
    by_admin = create_cycle(plan(admin, title="Admin-owned"), people["analyst"])
    db.session.commit()
    assert (by_manager.owner_id, by_admin.owner_id) == (people["manager"].id, admin.id)
    # Editing the plan cannot hand the cycle to an analyst either.
    with pytest.raises(PdcaError, match="owner must be a manager or an admin"):
        update_plan(by_manager, plan(people["other"], title="Handed over"), people["analyst"])
    db.session.rollback()
    db.session.expire_all()
    cycle = db.session.get(PdcaCycle, by_manager.id)
    assert (cycle.owner_id, cycle.title) == (people["manager"].id, "Faster first replies")


def test_analyst_drafts_a_plan_owned_by_a_manager(app, data, people):
    baseline_data(data)
    manager, analyst = people["manager"], people["analyst"]
    cycle = create_cycle(plan(manager), analyst)
    update_plan(cycle, plan(manager, title="Rosters follow the peak"), analyst)
    action = add_action(
        cycle, title="Re-roster", owner=analyst, deadline=days_ago(-5), user=analyst
    )
    update_action(action, status="in_progress", evidence="draft rota", user=analyst)
    db.session.commit()
    assert (cycle.owner_id, cycle.created_by_id, cycle.title) == (
        manager.id,
        analyst.id,
        "Rosters follow the peak",
    )
    assert action.status is ActionStatus.IN_PROGRESS
    # The manager approves and runs it; the analyst still updates the action they own.
    approve_plan(cycle, manager)
    advance(cycle, "do", manager)
    update_action(action, status="done", evidence="rota v2", user=analyst)
    db.session.commit()
    assert cycle.stage is Stage.DO and action.status is ActionStatus.DONE
    # Past Plan, the plan is no longer edited, by anyone.
    with pytest.raises(PdcaError, match="past Plan"):
        update_plan(cycle, plan(manager), manager)


def test_next_cycle_of_a_legacy_analyst_owned_cycle_goes_to_the_decider(app, data, people):
    # Cycles opened before the rule may still be owned by an analyst: the next cycle is not.
    baseline_data(data)
    add_responses(data, days_ago(3), csat_overall=[5, 2])
    cycle = create_cycle(plan(people["manager"]), people["manager"])
    cycle.owner_id, cycle.stage = people["analyst"].id, Stage.ACT
    db.session.commit()
    db.session.expire_all()
    cycle = db.session.get(PdcaCycle, cycle.id)
    with pytest.raises(PdcaForbidden):
        advance(cycle, "do", people["analyst"])
    _closed, following = record_act(cycle, "adjust", people["manager"], open_next=True)
    db.session.commit()
    assert following is not None and following.owner_id == people["manager"].id


def test_action_updates_by_owner_cycle_owner_or_manager(app, data, people):
    baseline_data(data)
    cycle = create_cycle(plan(people["manager"]), people["analyst"])
    action = add_action(
        cycle, title="Train", owner=people["analyst"], deadline=days_ago(-3), user=None
    )
    with pytest.raises(PdcaForbidden):
        update_action(action, status="done", evidence="", user=people["other"])
    with pytest.raises(PdcaError, match="Unknown status"):
        update_action(action, status="finished", evidence="", user=people["analyst"])
    update_action(action, status="done", evidence="slides attached", user=people["analyst"])
    assert action.status is ActionStatus.DONE and action.done_at is not None
    update_action(action, status="in_progress", evidence="", user=people["manager"])
    assert action.done_at is None


# --- the automatic Check -----------------------------------------------------------------------


def test_check_met_and_the_loop_closes(app, client, auth, data, people):
    baseline_data(data)
    # After: 17 of 20 satisfied (85 %), 40 → 85 pp vs 50 %: z-test p ≈ 0.02, target 70 reached.
    add_responses(data, days_ago(10), csat_overall=[5] * 17 + [1] * 3)
    case_response = data.response(data.ticket(), submitted_at=noon(days_ago(36)), csat_overall=1)
    root_cause = create_root_cause("Thin rosters")
    ticket = db.session.get(Ticket, case_response.ticket_id)
    case, _created = open_case(ticket=ticket, response=case_response, origin=CaseOrigin.AUTO)
    link_case(case, root_cause)
    cycle = create_cycle(plan(people["manager"], root_causes=(root_cause,)), people["analyst"])
    # The stray response is Frontline too: baseline 10 of 21.
    app.config["METRICS_MIN_SAMPLE"] = 20
    run_to_check(cycle, people)
    (check,) = cycle.measurements
    expected = two_proportion_test(10, 21, 17, 20)
    assert (check.a_value, check.a_n) == (pytest.approx(1000 / 21), 21)
    assert (check.b_value, check.b_n) == (85.0, 20)
    assert check.difference == pytest.approx(expected.difference)
    assert check.p_value == pytest.approx(expected.p_value)
    assert (check.ci_low, check.ci_high) == pytest.approx(expected.ci)
    assert check.test == "two-proportion z-test"
    assert check.verdict is Verdict.MET
    advance(cycle, "act", people["manager"])
    _cycle, following = record_act(
        cycle, "standardise", people["manager"], open_next=True, pending="carry"
    )
    db.session.commit()
    assert following is not None and [a.title for a in following.actions] == ["Re-roster"]
    assert case.status is CaseStatus.RESOLVED and case.closed_at is not None
    assert root_cause.status is RootCauseStatus.RESOLVED
    assert "1 linked feedback cases closed" in cycle.stage_log[-1].note
    assert following is not None and following.previous_id == cycle.id
    assert following.stage is Stage.PLAN and following.root_causes == [root_cause]
    auth.sign_in(people["manager"])
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    assert 'data-verdict="met"' in page and "two-proportion z-test" in page
    assert client.get("/pdca").status_code == 200


def test_check_not_met_and_not_enough_data(app, data, people):
    baseline_data(data)
    add_responses(data, days_ago(10), csat_overall=[5] * 11 + [1] * 9)  # 55 %: below 70
    app.config["METRICS_MIN_SAMPLE"] = 20
    cycle = create_cycle(plan(people["manager"]), people["analyst"])
    run_to_check(cycle, people)
    assert cycle.measurements[0].verdict is Verdict.NOT_MET
    app.config["METRICS_MIN_SAMPLE"] = 21  # 20 answers a side are now too few
    (again,) = measure(cycle, 0)
    assert again.verdict is Verdict.NOT_ENOUGH_DATA
    assert db.session.scalar(select(func.count()).select_from(CheckMeasurement)) == 1
    # A standardised cycle without a met Check closes no case.
    advance(cycle, "act", people["manager"])
    record_act(cycle, "standardise", people["manager"], pending="cancel")
    assert "closed" not in (cycle.stage_log[-1].note or "")


def test_nps_check_pilot_vs_control_and_rechecks(app, data, people):
    for team, scores in (
        ("Frontline", [10] * 12 + [8] * 4 + [3] * 4),
        ("Billing", [10] * 6 + [3] * 14),
    ):
        add_responses(data, days_ago(35), team=team, nps=scores)
        add_responses(data, days_ago(10), team=team, nps=scores)
    app.config["METRICS_MIN_SAMPLE"] = 5
    cycle = create_cycle(
        plan(
            people["manager"],
            kpi="nps",
            scope={},
            target_value=20.0,
            pilot_scope={"team": ["Frontline"]},
            control_scope={"team": ["Billing"]},
        ),
        people["manager"],
    )
    assert cycle.baseline_value == pytest.approx(0.0)  # (18 − 18) / 40
    run_to_check(cycle, people)
    by_kind = {m.comparison: m for m in cycle.measurements}
    pilot = by_kind[Comparison.PILOT_CONTROL]
    assert (pilot.a_value, pilot.b_value) == (pytest.approx(-40.0), pytest.approx(40.0))
    reference = nps_bootstrap((6, 0, 14), (12, 4, 4))
    assert pilot.difference == pytest.approx(80.0)
    assert (pilot.a_n, pilot.b_n) == (20, 20)
    assert (pilot.ci_low, pilot.ci_high) == pytest.approx(reference.ci)
    assert pilot.test == "bootstrap" and pilot.verdict is Verdict.MET
    assert by_kind[Comparison.BEFORE_AFTER].verdict is Verdict.NOT_MET  # 0 → 0
    db.session.commit()
    # Re-checks: none due yet; 31 days after the Check the 30-day one is, once.
    assert run_due_rechecks(local_today()) == 0
    assert run_due_rechecks(local_today() + timedelta(days=31)) == 1
    assert run_due_rechecks(local_today() + timedelta(days=31)) == 0
    rounds = sorted({m.round for m in db.session.scalars(select(CheckMeasurement))})
    assert rounds == [0, 30]


def test_duration_kpi_uses_mann_whitney(app, data, people):
    for minutes, day in ((30, 35), (40, 35), (50, 35), (5, 10), (6, 10), (7, 10)):
        created = noon(days_ago(day))
        data.ticket(created_at=created, first_response_after=timedelta(minutes=minutes))
    app.config["METRICS_MIN_SAMPLE"] = 3
    cycle = create_cycle(
        plan(people["manager"], kpi="first_response_time_mean", target_value=600.0),
        people["manager"],
    )
    assert cycle.baseline_value == pytest.approx(2400.0)
    run_to_check(cycle, people)
    (check,) = cycle.measurements
    assert check.test == "Mann-Whitney U"
    assert check.difference == pytest.approx(360.0 - 2400.0)
    assert check.p_value == pytest.approx(0.0809, abs=1e-4)  # U = 0 of 9: as by hand above
    assert check.verdict is Verdict.NOT_MET  # reached and lower, but p > 0.05


# --- reminders, markers ----------------------------------------------------------------------


def staff(email: str, role: Role = Role.ANALYST) -> User:
    """A user in the current app (the mail app: ``make_user`` would push another app)."""
    user = User(email=email, role=role, password_hash="x")
    db.session.add(user)
    db.session.commit()
    return user


def test_reminders_are_sent_once_per_kind(mail_app, mailbox):
    owner = staff("owner@example.com")
    manager = staff("m@example.com", Role.MANAGER)
    kd = KpiData()
    add_responses(kd, days_ago(35), csat_overall=[5, 1])
    cycle = create_cycle(plan(manager), manager)
    soon = add_action(cycle, title="Soon <b>", owner=owner, deadline=days_ago(-2), user=None)
    late = add_action(cycle, title="Late", owner=owner, deadline=days_ago(1), user=None)
    add_action(cycle, title="Far", owner=owner, deadline=days_ago(-20), user=None)
    done = add_action(cycle, title="Done", owner=owner, deadline=days_ago(3), user=None)
    done.status = ActionStatus.DONE
    db.session.commit()
    assert send_action_reminders().sent == 2
    assert send_action_reminders().sent == 0
    subjects = sorted(str(m["Subject"]) for m in mailbox.messages)
    assert subjects == ["Action due soon: Soon <b>", "Overdue action: Late"]
    assert all(m.envelope_recipients == ["owner@example.com"] for m in mailbox.messages)
    assert f"/pdca/{cycle.id}" in mailbox.messages[0].get_content()
    # The soon one, once overdue, gets its overdue reminder (and only that).
    assert send_action_reminders(days_ago(-3)).sent == 1
    kinds = db.session.scalars(
        select(ActionReminder.kind).where(ActionReminder.action_id == soon.id)
    ).all()
    assert sorted(k.value for k in kinds) == ["due_soon", "overdue"]
    assert late.id != soon.id


def test_reminder_job_and_cli(mail_app, mailbox):
    owner = staff("owner@example.com")
    manager = staff("m@example.com", Role.MANAGER)
    kd = KpiData()
    add_responses(kd, days_ago(35), csat_overall=[5, 1])
    cycle = create_cycle(plan(manager), owner)
    add_action(cycle, title="Late", owner=owner, deadline=days_ago(1), user=None)
    db.session.commit()
    from survey_app.background import registered_jobs

    assert {"action-reminders", "pdca-rechecks"} <= {j.name for j in registered_jobs(mail_app)}
    result = mail_app.test_cli_runner().invoke(args=["actions", "remind"])
    assert result.exit_code == 0, result.output
    assert "1 reminders sent" in result.output
    result = mail_app.test_cli_runner().invoke(args=["actions", "remind"])
    assert "0 reminders sent" in result.output
    assert len(mailbox.messages) == 1


def test_action_dates_for_the_trend_charts(app, data, people):
    baseline_data(data)
    cycle = create_cycle(plan(people["manager"]), people["manager"])
    action = add_action(
        cycle, title="Re-roster", owner=people["analyst"], deadline=days_ago(-1), user=None
    )
    approve_plan(cycle, people["manager"])
    advance(cycle, "do", people["manager"])
    update_action(action, status="done", evidence="", user=people["analyst"])
    db.session.commit()
    today = local_today()
    scope = Scope(start=today - timedelta(days=7), end=today, team=("Frontline",))
    markers = action_dates(scope)
    assert markers == sorted([(today, "Do: Faster first replies"), (today, "Done: Re-roster")])
    assert action_dates(Scope(start=today - timedelta(days=7), end=today, team=("Billing",))) == []
    assert (
        action_dates(Scope(start=today - timedelta(days=30), end=today - timedelta(days=8))) == []
    )
    assert action_dates in app.extensions[TIMELINE_MARKERS]
    assert timeline_markers(app, scope) == markers


# --- pages: roles, CSRF, bad input, escaping -----------------------------------------------------


def test_pages_create_and_refuse(app, client, auth, data, people):
    baseline_data(data)
    db.session.commit()
    auth.sign_in(people["analyst"])
    form = {
        "title": "<script>alert(1)</script> rosters",
        "owner_id": str(people["manager"].id),
        "kpi": "csat_overall_percent",
        "scope": "team=Frontline",
        "baseline_start": days_ago(40).isoformat(),
        "baseline_end": days_ago(31).isoformat(),
        "target_value": "70",
        "target_date": days_ago(-30).isoformat(),
    }
    # No CSRF token: refused, nothing written.
    assert client.post("/pdca/new", data=form).status_code == 400
    for bad in ({"kpi": "happiness"}, {"scope": "team=Nobody"}, {"scope": "colour=red"}):
        response = client.post("/pdca/new", data={**form, **bad, "csrf_token": csrf_token(client)})
        assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(PdcaCycle)) == 0
    response = client.post("/pdca/new", data={**form, "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    cycle = db.session.scalars(select(PdcaCycle)).one()
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    # An action without a deadline: refused.
    response = client.post(
        f"/pdca/{cycle.id}/actions",
        data={
            "action-title": "x",
            "action-owner_id": str(people["analyst"].id),
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(ActionItem)) == 0
    # The analyst who drafted it cannot approve it nor move it (403).
    token = csrf_token(client)
    assert client.post(f"/pdca/{cycle.id}/approve", data={"csrf_token": token}).status_code == 403
    response = client.post(f"/pdca/{cycle.id}/stage", data={"to": "do", "csrf_token": token})
    assert response.status_code == 403
    assert "Only a manager can move a cycle" in response.get_data(as_text=True)
    assert "PDCA" in client.get("/pdca").get_data(as_text=True)
    assert client.get("/my-actions").status_code == 200
    auth.logout()
    # The manager cannot skip the gate (400).
    auth.sign_in(people["manager"])
    response = client.post(
        f"/pdca/{cycle.id}/stage", data={"to": "do", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 400
    assert "at least one action" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(PdcaCycle, cycle.id).stage is Stage.PLAN


def _plan_form(owner: User, title: str = "Rosters") -> dict[str, str]:
    return {
        "title": title,
        "owner_id": str(owner.id),
        "kpi": "csat_overall_percent",
        "scope": "team=Frontline",
        "baseline_start": days_ago(40).isoformat(),
        "baseline_end": days_ago(31).isoformat(),
        "target_value": "70",
        "target_date": days_ago(-30).isoformat(),
    }


def test_cycle_form_offers_and_accepts_only_manager_owners(app, client, auth, data, people):
    baseline_data(data)
    db.session.commit()
    manager, analyst = people["manager"], people["analyst"]
    auth.sign_in(analyst)
    page = client.get("/pdca/new").get_data(as_text=True)
    owners = page[page.index('name="owner_id"') : page.index("</select>", page.index("owner_id"))]
    assert f'value="{manager.id}"' in owners
    assert f'value="{analyst.id}"' not in owners and f'value="{people["other"].id}"' not in owners
    # An analyst owner posted anyway: 400, the rule named, nothing written.
    response = client.post(
        "/pdca/new", data={**_plan_form(analyst), "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 400
    assert "owner must be a manager or an admin" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(PdcaCycle)) == 0
    # The analyst drafts a plan owned by the manager, and edits it while at Plan.
    response = client.post(
        "/pdca/new", data={**_plan_form(manager), "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302
    cycle = db.session.scalars(select(PdcaCycle)).one()
    assert (cycle.owner_id, cycle.created_by_id) == (manager.id, analyst.id)
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    assert "Move the cycle" not in page  # the stage form is the managers'
    edit = {**_plan_form(manager, "Rosters v2"), "csrf_token": csrf_token(client)}
    assert client.post(f"/pdca/{cycle.id}", data=edit).status_code == 302
    # ... but cannot hand it to an analyst: 400, the plan unchanged.
    edit = {**_plan_form(analyst, "Rosters v3"), "csrf_token": csrf_token(client)}
    response = client.post(f"/pdca/{cycle.id}", data=edit)
    assert response.status_code == 400
    assert "owner must be a manager or an admin" in response.get_data(as_text=True)
    db.session.expire_all()
    cycle = db.session.get(PdcaCycle, cycle.id)
    assert (cycle.owner_id, cycle.title) == (manager.id, "Rosters v2")
    # Action owners stay any active staff.
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    actions = page[page.index('name="action-owner_id"') :]
    actions = actions[: actions.index("</select>")]
    assert f'value="{analyst.id}"' in actions and f'value="{manager.id}"' in actions


def test_duration_check_shows_the_other_clock(app, client, auth, data, people):
    """A cycle on the business-hours FRT median: the Check also shows the elapsed median."""
    from improvement.pdca.checks import other_clock_values

    before, after = days_ago(35), days_ago(10)
    # The mornings after are working days whatever the calendar says.
    app.config["SLA_EXTRA_WORKDAYS"] = [
        (before + timedelta(days=1)).isoformat(),
        (after + timedelta(days=1)).isoformat(),
    ]
    for day, answer in ((before, time(9, 30)), (after, time(9, 10))):
        created = datetime.combine(day, time(22), ZONE).astimezone(UTC)
        answered = datetime.combine(day + timedelta(days=1), answer, ZONE).astimezone(UTC)
        for _ in range(3):
            data.ticket(
                priority="P3",
                created_at=created,
                first_response_after=answered - created,
                resolved_after=answered - created + timedelta(hours=1),
                closed_after=answered - created + timedelta(hours=2),
            )
    cycle = create_cycle(
        plan(people["manager"], kpi="first_response_time_median", target_value=900.0),
        people["analyst"],
    )
    app.config["METRICS_MIN_SAMPLE"] = 3
    run_to_check(cycle, people)

    (check,) = cycle.measurements
    # Business hours: 09:00-09:30 → 09:00-09:10; elapsed: 11.5 h → 11 h 10 min.
    assert (check.a_value, check.b_value) == (1800, 600)
    name, a, b = other_clock_values(cycle)[check.id]
    assert (name, a.value, b.value, a.n, b.n) == (
        "first_response_time_elapsed_median",
        41400,
        40200,
        3,
        3,
    )
    auth.login(people["manager"])
    page = client.get(f"/pdca/{cycle.id}").get_data(as_text=True)
    assert "First response, business hours, median (s)" in page
    assert "First response, elapsed, median (s): 41400" in page
    assert "First response, elapsed, median (s): 40200" in page


def test_the_board_names_kpis_by_their_label(app, auth, client, make_user):
    from tests.pdca_factories import pdca_matrix_ids

    pdca_matrix_ids()
    auth.sign_in(make_user("manager"))
    board = client.get("/pdca").get_data(as_text=True)
    assert "CSAT overall, % satisfied" in board
    assert "csat_overall_percent" not in board


def test_the_history_reads_as_people_write(app, auth, client, make_user):
    from tests.pdca_factories import pdca_matrix_ids

    ids = pdca_matrix_ids()
    auth.sign_in(make_user("manager"))
    page = client.get(f"/pdca/{ids['cycle_id']}").get_data(as_text=True)
    history = page[page.index("audit") :]
    assert "Owner: — → cycle-owner@example.com" in history
    assert "KPI: — → CSAT overall, % satisfied" in history
    assert "owner_id" not in history and "csat_overall_percent" not in history
