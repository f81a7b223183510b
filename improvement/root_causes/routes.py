"""Triage queue, cases, root causes, 5 Why chains, fishbone and Pareto pages (thin views).

Every page is for staff (analysts, managers, admins); every POST carries a
CSRF token; a refused operation is shown with its reason and status 400, and
the transaction is rolled back, so nothing is half-written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from analysis.metrics import metrics_timezone
from analysis.metrics.scope import local_midnight
from analysis.text.problems import ProblemType
from survey_app.auth.access import staff_required
from survey_app.csvexport import csv_download
from survey_app.extensions import db
from survey_app.models import Channel, Ticket
from survey_app.routing import paginate
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from .cases import classify_case, log_call_back, open_case_for_response, open_case_for_ticket
from .causes import (
    create_root_cause,
    create_root_cause_for_case,
    link_case,
    suggestions_for_case,
    update_root_cause,
)
from .charts import fishbone_figure, pareto_figure
from .common import CaseError, fishbone_categories
from .export import case_export
from .five_whys import add_why, delete_why, move_why, update_why
from .forms import (
    ButtonForm,
    CallBackForm,
    CaseClassifyForm,
    CaseFilterForm,
    LinkForm,
    MoveForm,
    NewRootCauseForCaseForm,
    ParetoFilterForm,
    RootCauseEditForm,
    RootCauseForm,
    WhyForm,
)
from .labels import category_label, problem_label
from .models import FeedbackCase, RootCause, RootCauseStatus, WhyStep
from .pareto import root_cause_pareto
from .queue import case_queue

bp = Blueprint("root_causes", __name__)


def _check_button(form: ButtonForm | MoveForm) -> None:
    """Refuse (400) a button's post whose form does not validate."""
    if not form.validate_on_submit():
        abort(400)


def _display_zone() -> ZoneInfo:
    """The zone staff pages show times in; a time typed into a form is read in it."""
    return ZoneInfo(str(get_timezone()))


def _refused(exc: CaseError) -> None:
    db.session.rollback()
    flash(str(exc), "error")


# --- opening cases ---------------------------------------------------------------------------


@bp.post("/responses/<int:response_id>/case")
@staff_required
def open_from_response(response_id: int) -> Response:
    response = db.get_or_404(SurveyResponse, response_id)
    _check_button(ButtonForm())
    case, created = open_case_for_response(response, current_user)
    db.session.commit()
    if created:
        flash(_("Case #%(id)s opened.", id=case.id), "success")
    else:
        flash(_("This feedback already has case #%(id)s.", id=case.id), "info")
    return redirect(url_for(".case_detail", case_id=case.id))


@bp.post("/tickets/<int:ticket_id>/case")
@staff_required
def open_from_ticket(ticket_id: int) -> Response:
    ticket = db.get_or_404(Ticket, ticket_id)
    _check_button(ButtonForm())
    case, created = open_case_for_ticket(ticket, current_user)
    db.session.commit()
    if created:
        flash(_("Case #%(id)s opened.", id=case.id), "success")
    else:
        flash(_("This ticket already has case #%(id)s.", id=case.id), "info")
    return redirect(url_for(".case_detail", case_id=case.id))


# --- the triage queue and a case -------------------------------------------------------------


def _case_filters() -> tuple[CaseFilterForm, dict[str, Any]]:
    form = CaseFilterForm(request.args)
    form.validate()
    # An invalid filter is shown with its error and ignored; the others still apply.
    filters = {field.name: field.data for field in form if not field.errors}
    if "status" not in request.args:
        filters["status"] = form.status.default
    return form, filters


@bp.get("/cases")
@staff_required
def cases() -> str:
    form, filters = _case_filters()
    now = utcnow()
    query = case_queue(filters, now).options(
        selectinload(FeedbackCase.response),
        selectinload(FeedbackCase.root_cause),
        selectinload(FeedbackCase.ticket).selectinload(Ticket.customer),
    )
    page = paginate(query, per_page=current_app.config["PAGE_SIZE"])
    return render_template("root_causes/cases.html", form=form, page=page, now=now)


@bp.get("/cases/export.csv")
@staff_required
def cases_export() -> Response:
    """The case list as CSV: every page of the same search and filters."""
    _form, filters = _case_filters()
    zone = _display_zone()
    header, rows = case_export(filters, zone)
    return csv_download(f"closedloop-cases-{datetime.now(zone):%Y-%m-%d}.csv", header, rows)


def _load_case(case_id: int) -> FeedbackCase:
    return db.get_or_404(FeedbackCase, case_id)


def _case_page(case: FeedbackCase, status: int = 200, **forms: Any) -> tuple[str, int]:
    classify = forms.get("classify") or CaseClassifyForm(
        formdata=None,
        data={
            "problem_type": case.problem_type or "",
            "urgency": case.urgency,
            "reach": case.reach,
            "touchpoint": case.touchpoint.value if case.touchpoint else "",
            "process_step": case.process_step.value if case.process_step else "",
            "responsible_party": case.responsible_party.value if case.responsible_party else "",
            "status": case.status.value,
        },
    )
    call_back = forms.get("call_back") or CallBackForm(
        formdata=None,
        data={"called_at": utcnow().astimezone(_display_zone()).replace(tzinfo=None, second=0)},
    )
    link = forms.get("link") or LinkForm(formdata=None, data={"root_cause_id": case.root_cause_id})
    new_root_cause = forms.get("new_root_cause") or NewRootCauseForCaseForm(formdata=None)
    page = render_template(
        "root_causes/case.html",
        case=case,
        response=case.response,
        ticket=case.ticket,
        now=utcnow(),
        suggestions=suggestions_for_case(case) if case.root_cause_id is None else [],
        classify=classify,
        call_back=call_back,
        link=link,
        new_root_cause=new_root_cause,
        button=ButtonForm(),
    )
    return page, status


@bp.get("/cases/<int:case_id>")
@staff_required
def case_detail(case_id: int) -> tuple[str, int]:
    return _case_page(_load_case(case_id))


@bp.post("/cases/<int:case_id>")
@staff_required
def case_classify(case_id: int) -> Response | tuple[str, int]:
    case = _load_case(case_id)
    form = CaseClassifyForm()
    if form.validate_on_submit():
        try:
            classify_case(
                case,
                problem_type=form.problem_type.data,
                urgency=form.urgency.data,
                reach=form.reach.data,
                touchpoint=form.touchpoint.data,
                process_step=form.process_step.data,
                responsible_party=form.responsible_party.data,
                status=form.status.data or "",
                user=current_user,
            )
        except CaseError as exc:
            db.session.rollback()
            form.status.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Case #%(id)s saved.", id=case.id), "success")
            return redirect(url_for(".case_detail", case_id=case.id))
    return _case_page(_load_case(case_id), 400, classify=form)


@bp.post("/cases/<int:case_id>/call-backs")
@staff_required
def case_call_back(case_id: int) -> Response | tuple[str, int]:
    case = _load_case(case_id)
    form = CallBackForm()
    if form.validate_on_submit():
        assert form.called_at.data is not None
        called_at = form.called_at.data.replace(tzinfo=_display_zone())
        try:
            log_call_back(
                case,
                user=current_user,
                called_at=called_at,
                outcome=form.outcome.data or "",
                note=form.note.data or "",
            )
        except CaseError as exc:
            db.session.rollback()
            form.called_at.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Call-back logged."), "success")
            return redirect(url_for(".case_detail", case_id=case.id, _anchor="call-backs"))
    return _case_page(_load_case(case_id), 400, call_back=form)


@bp.post("/cases/<int:case_id>/root-cause")
@staff_required
def case_link(case_id: int) -> Response | tuple[str, int]:
    case = _load_case(case_id)
    form = LinkForm()
    if form.validate_on_submit():
        root_cause = (
            db.session.get(RootCause, form.root_cause_id.data)
            if form.root_cause_id.data is not None
            else None
        )
        try:
            link_case(case, root_cause, current_user)
        except CaseError as exc:
            db.session.rollback()
            form.root_cause_id.errors = [str(exc)]
        else:
            db.session.commit()
            if root_cause is None:
                flash(
                    _("Case #%(id)s is no longer linked to a root cause.", id=case.id), "success"
                )
            else:
                message = _(
                    "Case #%(id)s linked to root cause #%(rc)s.", id=case.id, rc=root_cause.id
                )
                flash(message, "success")
            return redirect(url_for(".case_detail", case_id=case.id))
    return _case_page(_load_case(case_id), 400, link=form)


@bp.post("/cases/<int:case_id>/root-cause/new")
@staff_required
def case_new_root_cause(case_id: int) -> Response | tuple[str, int]:
    case = _load_case(case_id)
    form = NewRootCauseForCaseForm()
    if form.validate_on_submit():
        try:
            root_cause = create_root_cause_for_case(
                case, form.title.data or "", description=form.description.data or "",
                user=current_user,
            )  # fmt: skip
        except CaseError as exc:
            db.session.rollback()
            form.title.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Root cause #%(rc)s created and linked.", rc=root_cause.id), "success")
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id))
    return _case_page(_load_case(case_id), 400, new_root_cause=form)


# --- root causes -----------------------------------------------------------------------------


def _root_cause_list(form: RootCauseForm, status: int = 200) -> tuple[str, int]:
    counts = dict(
        db.session.execute(
            select(FeedbackCase.root_cause_id, func.count())
            .where(FeedbackCase.root_cause_id.is_not(None))
            .group_by(FeedbackCase.root_cause_id)
        ).all()
    )
    rows = db.session.scalars(
        select(RootCause).options(selectinload(RootCause.whys)).order_by(RootCause.id.desc())
    ).all()
    return render_template(
        "root_causes/root_causes.html", root_causes=rows, counts=counts, form=form
    ), status


@bp.get("/root-causes")
@staff_required
def root_causes() -> tuple[str, int]:
    return _root_cause_list(RootCauseForm(formdata=None))


@bp.post("/root-causes")
@staff_required
def root_cause_create() -> Response | tuple[str, int]:
    form = RootCauseForm()
    if form.validate_on_submit():
        try:
            root_cause = create_root_cause(
                form.title.data or "",
                description=form.description.data or "",
                problem_type=form.problem_type.data,
                themes=form.themes.data,
                user=current_user,
            )
        except CaseError as exc:
            db.session.rollback()
            form.title.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Root cause #%(rc)s created.", rc=root_cause.id), "success")
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id))
    return _root_cause_list(form, 400)


def _fishbone_of(root_cause: RootCause) -> Any:
    groups: dict[str, list[str]] = {category: [] for category in fishbone_categories()}
    for why in root_cause.whys:
        groups.setdefault(why.category, []).append(f"{why.position}. {why.statement}")
    return fishbone_figure(
        root_cause.title,
        [(category, category_label(category), items) for category, items in groups.items()],
    )


def _root_cause_page(root_cause: RootCause, status: int = 200, **forms: Any) -> tuple[str, int]:
    edit = forms.get("edit") or RootCauseEditForm(
        formdata=None,
        data={
            "title": root_cause.title,
            "description": root_cause.description,
            "problem_type": root_cause.problem_type or "",
            "themes": ", ".join(root_cause.themes or []),
            "status": root_cause.status.value,
        },
    )
    linked = db.session.scalars(
        select(FeedbackCase)
        .where(FeedbackCase.root_cause_id == root_cause.id)
        .options(selectinload(FeedbackCase.response), selectinload(FeedbackCase.ticket))
        .order_by(FeedbackCase.opened_at.desc(), FeedbackCase.id.desc())
    ).all()
    page = render_template(
        "root_causes/root_cause.html",
        root_cause=root_cause,
        linked=linked,
        edit=edit,
        why_form=forms.get("why") or WhyForm(formdata=None),
        failed_why=forms.get("failed_why"),
        button=ButtonForm(),
        fishbone=_fishbone_of(root_cause),
        categories=fishbone_categories(),
    )
    return page, status


def _load_root_cause(root_cause_id: int) -> RootCause:
    return db.get_or_404(RootCause, root_cause_id)


def _load_why(root_cause: RootCause, why_id: int) -> WhyStep:
    """The why ``why_id`` of ``root_cause``; 404 if it belongs to another one."""
    why = db.get_or_404(WhyStep, why_id)
    if why.root_cause_id != root_cause.id:
        abort(404)
    return why


@bp.get("/root-causes/<int:root_cause_id>")
@staff_required
def root_cause_detail(root_cause_id: int) -> tuple[str, int]:
    return _root_cause_page(_load_root_cause(root_cause_id))


@bp.post("/root-causes/<int:root_cause_id>")
@staff_required
def root_cause_edit(root_cause_id: int) -> Response | tuple[str, int]:
    root_cause = _load_root_cause(root_cause_id)
    form = RootCauseEditForm()
    if form.validate_on_submit():
        try:
            update_root_cause(
                root_cause,
                title=form.title.data or "",
                description=form.description.data or "",
                problem_type=form.problem_type.data,
                themes=form.themes.data,
                status=form.status.data or "",
                user=current_user,
            )
        except CaseError as exc:
            db.session.rollback()
            form.title.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Root cause #%(rc)s saved.", rc=root_cause.id), "success")
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id))
    return _root_cause_page(_load_root_cause(root_cause_id), 400, edit=form)


@bp.post("/root-causes/<int:root_cause_id>/whys")
@staff_required
def why_add(root_cause_id: int) -> Response | tuple[str, int]:
    root_cause = _load_root_cause(root_cause_id)
    form = WhyForm()
    if form.validate_on_submit():
        try:
            add_why(root_cause, form.statement.data or "", form.category.data or "", current_user)
        except CaseError as exc:
            db.session.rollback()
            form.statement.errors = [str(exc)]
        else:
            db.session.commit()
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id,
                                    _anchor="whys"))  # fmt: skip
    return _root_cause_page(_load_root_cause(root_cause_id), 400, why=form)


@bp.post("/root-causes/<int:root_cause_id>/whys/<int:why_id>")
@staff_required
def why_edit(root_cause_id: int, why_id: int) -> Response | tuple[str, int]:
    root_cause = _load_root_cause(root_cause_id)
    why = _load_why(root_cause, why_id)
    form = WhyForm(prefix=f"why{why.id}")
    if form.validate_on_submit():
        try:
            update_why(why, form.statement.data or "", form.category.data or "", current_user)
        except CaseError as exc:
            db.session.rollback()
            form.statement.errors = [str(exc)]
        else:
            db.session.commit()
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id,
                                    _anchor="whys"))  # fmt: skip
    db.session.rollback()
    return _root_cause_page(_load_root_cause(root_cause_id), 400, failed_why=(why_id, form))


@bp.post("/root-causes/<int:root_cause_id>/whys/<int:why_id>/move")
@staff_required
def why_move(root_cause_id: int, why_id: int) -> Response | tuple[str, int]:
    root_cause = _load_root_cause(root_cause_id)
    why = _load_why(root_cause, why_id)
    form = MoveForm()
    _check_button(form)
    try:
        move_why(why, form.direction.data or "", current_user)
    except CaseError as exc:
        _refused(exc)
        return _root_cause_page(_load_root_cause(root_cause_id), 400)
    db.session.commit()
    return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id, _anchor="whys"))


@bp.post("/root-causes/<int:root_cause_id>/whys/<int:why_id>/delete")
@staff_required
def why_delete(root_cause_id: int, why_id: int) -> Response:
    root_cause = _load_root_cause(root_cause_id)
    why = _load_why(root_cause, why_id)
    _check_button(ButtonForm())
    delete_why(why, current_user)
    db.session.commit()
    return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id, _anchor="whys"))


# --- analysis pages --------------------------------------------------------------------------


@bp.get("/root-causes/pareto")
@staff_required
def pareto() -> tuple[str, int]:
    """The Pareto, filtered by when the cases opened, team, channel and problem type.

    A filter that does not parse is shown with its error (400) and nothing is drawn.
    """
    form = ParetoFilterForm(request.args)
    if request.args and not form.validate():
        return render_template("root_causes/pareto.html", form=form, rows=None, chart=None), 400
    zone = metrics_timezone(current_app.config)
    since, until = form.since.data, form.until.data
    rows = root_cause_pareto(
        local_midnight(since, zone) if since else None,
        local_midnight(until + timedelta(days=1), zone) if until else None,
        teams=[form.team.data.strip()] if (form.team.data or "").strip() else [],
        channels=[Channel(form.channel.data)] if form.channel.data else [],
        problem_types=[form.problem_type.data] if form.problem_type.data else [],
    )
    page = render_template(
        "root_causes/pareto.html", form=form, rows=rows, chart=pareto_figure(rows)
    )
    return page, 200


@bp.get("/root-causes/fishbone")
@staff_required
def fishbone() -> str:
    """Every open or confirmed root cause's whys on one fishbone (optionally one problem type)."""
    problem = request.args.get("problem_type", "")
    if problem and problem not in set(ProblemType):
        problem = ""
    query = (
        select(WhyStep, RootCause.title)
        .join(WhyStep.root_cause)
        .where(RootCause.status.in_((RootCauseStatus.OPEN, RootCauseStatus.CONFIRMED)))
        .order_by(RootCause.id, WhyStep.position)
    )
    if problem:
        query = query.where(RootCause.problem_type == problem)
    groups: dict[str, list[str]] = {category: [] for category in fishbone_categories()}
    for why, title in db.session.execute(query):
        groups.setdefault(why.category, []).append(f"{why.statement} ({title})")
    effect = problem_label(problem) if problem else _("Low satisfaction")
    figure = fishbone_figure(
        effect, [(c, category_label(c), items) for c, items in groups.items()]
    )
    return render_template(
        "root_causes/fishbone.html",
        fishbone=figure,
        problem=problem,
        problem_types=list(ProblemType),
        groups=groups,
    )
