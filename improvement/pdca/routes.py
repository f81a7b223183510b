"""PDCA pages (thin views): the board, a cycle, its plan, actions, stages and Checks; my actions.

Every page is for staff; every POST carries a CSRF token. A refused operation
is rolled back and shown with its reason: 400 for bad input or a gate not
passed, 403 for a role that may not do it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from analysis.metrics import ALL_KPIS
from analysis.targets.labels import KPI_LABELS
from survey_app.auth.access import staff_required
from survey_app.database import commit_unless
from survey_app.extensions import db
from survey_app.models import User

from .actions import add_action, update_action
from .checks import LOWER_IS_BETTER, measure, other_clock_values
from .common import PdcaError, PdcaForbidden, can_own, can_run, is_manager, local_today
from .forms import (
    ActForm,
    ActionForm,
    ActionUpdateForm,
    ButtonForm,
    CycleForm,
    ScheduleCheckForm,
    StageForm,
    scope_text,
)
from .labels import ENUM_LABELS
from .lists import (
    board,
    cycle_overdue,
    my_actions,
    owners_for_choice,
    root_causes_for_choice,
    users_for_choice,
)
from .models import ActionItem, PdcaCycle, Stage
from .plan import PlanInput, create_cycle, update_plan
from .stages import (
    advance,
    approval_blockers,
    approve_plan,
    next_move,
    open_actions,
    record_act,
    schedule_check,
)

bp = Blueprint("pdca", __name__)


def _load(cycle_id: int) -> PdcaCycle:
    return db.get_or_404(PdcaCycle, cycle_id)


def _refused(exc: PdcaError) -> int:
    """Flash the reason of a refusal (already rolled back); return the status to answer with."""
    flash(str(exc), "error")
    return 403 if isinstance(exc, PdcaForbidden) else 400


def _fill_choices(form: CycleForm | ActionForm, cycle: PdcaCycle | None = None) -> None:
    """Owner choices: managers and admins for a cycle, any active staff for an action."""
    people = owners_for_choice() if isinstance(form, CycleForm) else users_for_choice()
    form.owner_id.choices = [SelectChoice(u.id, u.name or u.email) for u in people]
    if isinstance(form, CycleForm):
        extra = cycle.root_causes if cycle is not None else ()
        form.root_cause_ids.choices = [
            SelectChoice(rc.id, rc.title) for rc in root_causes_for_choice(extra)
        ]


def _plan_from(form: CycleForm) -> PlanInput:
    owner = db.session.get(User, form.owner_id.data)
    if owner is None:
        raise PdcaError(_("Unknown owner."))
    from improvement.root_causes.models import RootCause

    root_causes = tuple(
        rc for rc in (db.session.get(RootCause, i) for i in form.root_cause_ids.data or []) if rc
    )
    return PlanInput(
        title=form.title.data or "",
        owner=owner,
        kpi=form.kpi.data,
        baseline_start=form.baseline_start.data,
        baseline_end=form.baseline_end.data,
        target_value=form.target_value.data,
        target_date=form.target_date.data,
        scope=form.scope.filters,
        description=form.description.data or "",
        root_causes=root_causes,
        pilot_scope=form.pilot_scope.filters or None,
        control_scope=form.control_scope.filters or None,
    )


@bp.get("/pdca")
@staff_required
def cycles() -> str:
    return render_template(
        "pdca/board.html", columns=board(), today=local_today(), overdue=cycle_overdue
    )


@bp.route("/pdca/new", methods=["GET", "POST"])
@staff_required
def new_cycle() -> Response | tuple[str, int]:
    form = CycleForm()
    _fill_choices(form)
    if not form.is_submitted() and can_own(current_user):
        form.owner_id.data = current_user.id
    if form.validate_on_submit():
        with commit_unless(PdcaError) as attempt:
            cycle = create_cycle(_plan_from(form), current_user)
        if attempt.refusal is None:
            flash(_("Cycle #%(id)s opened at Plan.", id=cycle.id), "success")
            return redirect(url_for(".cycle_detail", cycle_id=cycle.id))
        form.title.errors = [*form.title.errors, str(attempt.refusal)]
    status = 400 if form.is_submitted() else 200
    return render_template("pdca/cycle_form.html", form=form, cycle=None), status


def _cycle_page(cycle: PdcaCycle, status: int = 200, **forms: Any) -> tuple[str, int]:
    action_form = forms.get("action") or ActionForm(
        formdata=None, prefix="action", data={"owner_id": current_user.id}
    )
    _fill_choices(action_form)
    plan_form = forms.get("plan")
    if plan_form is None and cycle.stage is Stage.PLAN:
        plan_form = CycleForm(
            formdata=None,
            data={
                "title": cycle.title,
                "description": cycle.description,
                "owner_id": cycle.owner_id,
                "kpi": cycle.kpi,
                "scope": scope_text(cycle.scope),
                "baseline_start": cycle.baseline_start,
                "baseline_end": cycle.baseline_end,
                "target_value": cycle.target_value,
                "target_date": cycle.target_date,
                "root_cause_ids": [rc.id for rc in cycle.root_causes],
                "pilot_scope": scope_text(cycle.pilot_scope),
                "control_scope": scope_text(cycle.control_scope),
            },
        )
    if plan_form is not None:
        _fill_choices(plan_form, cycle)
    move = next_move(cycle)
    move_reasons = list(move.blockers) if move is not None else []
    if move is not None and not can_run(cycle, current_user):
        move_reasons.append(_("Only a manager can move a cycle between stages."))
    suggested = cycle.check_scheduled_for
    if suggested is None and move is not None and move.sample is not None:
        suggested = move.sample.ready_by
    schedule_form = forms.get("schedule") or ScheduleCheckForm(
        formdata=None, data={"on": suggested}
    )
    page = render_template(
        "pdca/cycle.html",
        cycle=cycle,
        today=local_today(),
        plan_form=plan_form,
        action_form=action_form,
        stage_form=forms.get("stage") or StageForm(formdata=None),
        move=move,
        move_reasons=move_reasons,
        approval_reasons=approval_blockers(cycle),
        schedule_form=schedule_form,
        open_actions=open_actions(cycle),
        act_form=forms.get("act") or ActForm(formdata=None),
        button=ButtonForm(),
        update_form=ActionUpdateForm,
        can_run=can_run(cycle, current_user),
        is_manager=is_manager(current_user),
        lower_is_better=cycle.kpi in LOWER_IS_BETTER,
        overdue=cycle_overdue(cycle, local_today()),
        kpis=ALL_KPIS,
        kpi_labels=KPI_LABELS,
        other_clock=other_clock_values(cycle),
    )
    return page, status


@bp.get("/pdca/<int:cycle_id>")
@staff_required
def cycle_detail(cycle_id: int) -> tuple[str, int]:
    return _cycle_page(_load(cycle_id))


@bp.post("/pdca/<int:cycle_id>")
@staff_required
def cycle_edit(cycle_id: int) -> Response | tuple[str, int]:
    cycle = _load(cycle_id)
    form = CycleForm()
    _fill_choices(form, cycle)
    if form.validate_on_submit():
        with commit_unless(PdcaError) as attempt:
            update_plan(cycle, _plan_from(form), current_user)
        if attempt.refusal is not None:
            return _cycle_page(cycle, _refused(attempt.refusal), plan=form)
        flash(_("Plan saved."), "success")
        return redirect(url_for(".cycle_detail", cycle_id=cycle.id))
    return _cycle_page(cycle, 400, plan=form)


@bp.post("/pdca/<int:cycle_id>/actions")
@staff_required
def action_add(cycle_id: int) -> Response | tuple[str, int]:
    cycle = _load(cycle_id)
    form = ActionForm(prefix="action")
    _fill_choices(form)
    if form.validate_on_submit():
        with commit_unless(PdcaError) as attempt:
            add_action(
                cycle,
                title=form.title.data or "",
                owner=db.session.get(User, form.owner_id.data),
                deadline=form.deadline.data,
                user=current_user,
            )
        if attempt.refusal is not None:
            return _cycle_page(cycle, _refused(attempt.refusal), action=form)
        flash(_("Action added."), "success")
        return redirect(url_for(".cycle_detail", cycle_id=cycle.id))
    return _cycle_page(cycle, 400, action=form)


@bp.post("/pdca/actions/<int:action_id>")
@staff_required
def action_update(action_id: int) -> Response | tuple[str, int]:
    action = db.get_or_404(ActionItem, action_id)
    form = ActionUpdateForm(prefix=f"a{action.id}")
    if not form.validate_on_submit():
        flash(_("Choose a status; the evidence note is at most 5000 characters."), "error")
        return _cycle_page(action.cycle, 400)
    with commit_unless(PdcaError) as attempt:
        update_action(
            action, status=form.status.data, evidence=form.evidence.data or "", user=current_user
        )
    if attempt.refusal is not None:
        return _cycle_page(action.cycle, _refused(attempt.refusal))
    flash(_("Action updated."), "success")
    return redirect(url_for(".cycle_detail", cycle_id=action.cycle_id))


@bp.post("/pdca/<int:cycle_id>/approve")
@staff_required
def cycle_approve(cycle_id: int) -> Response | tuple[str, int]:
    cycle = _load(cycle_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    with commit_unless(PdcaError) as attempt:
        approve_plan(cycle, current_user)
    if attempt.refusal is not None:
        return _cycle_page(cycle, _refused(attempt.refusal))
    flash(_("Plan approved."), "success")
    return redirect(url_for(".cycle_detail", cycle_id=cycle.id))


@bp.post("/pdca/<int:cycle_id>/stage")
@staff_required
def cycle_stage(cycle_id: int) -> Response | tuple[str, int]:
    cycle = _load(cycle_id)
    form = StageForm()
    if not form.validate_on_submit():
        flash(_("Choose the stage to move to."), "error")
        return _cycle_page(cycle, 400)
    with commit_unless(PdcaError) as attempt:
        advance(cycle, form.to.data, current_user, form.note.data or "", anyway=form.anyway.data)
    if attempt.refusal is not None:
        return _cycle_page(cycle, _refused(attempt.refusal))
    flash(_("The cycle is now at %(stage)s.", stage=ENUM_LABELS[cycle.stage]), "success")
    return redirect(url_for(".cycle_detail", cycle_id=cycle.id))


@bp.post("/pdca/<int:cycle_id>/schedule-check")
@staff_required
def cycle_schedule_check(cycle_id: int) -> Response | tuple[str, int]:
    cycle = _load(cycle_id)
    form = ScheduleCheckForm()
    if not form.validate_on_submit():
        flash(_("Give the day of the Check as a date."), "error")
        return _cycle_page(cycle, 400, schedule=form)
    on = None if form.cancel.data else form.on.data
    if on is None and not form.cancel.data:
        flash(_("Give the day of the Check as a date."), "error")
        return _cycle_page(cycle, 400, schedule=form)
    with commit_unless(PdcaError) as attempt:
        schedule_check(cycle, current_user, on)
    if attempt.refusal is not None:
        return _cycle_page(cycle, _refused(attempt.refusal), schedule=form)
    if on is None:
        flash(_("The scheduled Check is cancelled."), "success")
    else:
        flash(_("The Check is scheduled for %(date)s.", date=on.isoformat()), "success")
    return redirect(url_for(".cycle_detail", cycle_id=cycle.id))


@bp.post("/pdca/<int:cycle_id>/measure")
@staff_required
def cycle_measure(cycle_id: int) -> Response | tuple[str, int]:
    cycle = _load(cycle_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    with commit_unless(PdcaError) as attempt:
        if not can_run(cycle, current_user):
            raise PdcaForbidden(_("Only a manager can measure a cycle again."))
        if cycle.stage is not Stage.CHECK:
            raise PdcaError(_("The KPI is measured again only at Check."))
        measure(cycle, 0)
    if attempt.refusal is not None:
        return _cycle_page(cycle, _refused(attempt.refusal))
    flash(_("Measured again."), "success")
    return redirect(url_for(".cycle_detail", cycle_id=cycle.id))


@bp.post("/pdca/<int:cycle_id>/act")
@staff_required
def cycle_act(cycle_id: int) -> Response | tuple[str, int]:
    cycle = _load(cycle_id)
    form = ActForm()
    if not form.validate_on_submit():
        flash(_("Choose standardise, adjust or abandon."), "error")
        return _cycle_page(cycle, 400)
    with commit_unless(PdcaError) as attempt:
        _cycle, following = record_act(
            cycle,
            form.decision.data,
            current_user,
            form.note.data or "",
            open_next=form.open_next.data,
            pending=form.open_actions.data or None,
        )
    if attempt.refusal is not None:
        return _cycle_page(cycle, _refused(attempt.refusal), act=form)
    flash(_("Decision recorded; the cycle is closed."), "success")
    if following is not None:
        return redirect(url_for(".cycle_detail", cycle_id=following.id))
    return redirect(url_for(".cycle_detail", cycle_id=cycle.id))


@bp.get("/my-actions")
@staff_required
def my_actions_page() -> str:
    return render_template(
        "pdca/my_actions.html", actions=my_actions(current_user), today=local_today()
    )
