"""Opening cases, the triage queue and a case's page (thin views on :data:`.blueprint.bp`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from survey_app.auth.access import staff_required
from survey_app.csvexport import csv_download
from survey_app.database import commit_unless
from survey_app.extensions import db
from survey_app.models import Ticket
from survey_app.routing import paginate
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from .blueprint import bp, check_button, display_zone
from .cases import classify_case, log_call_back, open_case_for_response, open_case_for_ticket
from .causes import (
    create_root_cause_for_case,
    link_case,
    suggestions_for_case,
)
from .common import CaseError
from .export import case_export
from .forms import (
    ButtonForm,
    CallBackForm,
    CaseClassifyForm,
    CaseFilterForm,
    LinkForm,
    NewRootCauseForCaseForm,
)
from .models import FeedbackCase, RootCause
from .queue import case_queue

# --- opening cases ---------------------------------------------------------------------------


@bp.post("/responses/<int:response_id>/case")
@staff_required
def open_from_response(response_id: int) -> Response:
    response = db.get_or_404(SurveyResponse, response_id)
    check_button(ButtonForm())
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
    check_button(ButtonForm())
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
    zone = display_zone()
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
        data={"called_at": utcnow().astimezone(display_zone()).replace(tzinfo=None, second=0)},
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
        with commit_unless(CaseError) as attempt:
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
        if attempt.refusal is None:
            flash(_("Case #%(id)s saved.", id=case.id), "success")
            return redirect(url_for(".case_detail", case_id=case.id))
        form.status.errors = [str(attempt.refusal)]
    return _case_page(_load_case(case_id), 400, classify=form)


@bp.post("/cases/<int:case_id>/call-backs")
@staff_required
def case_call_back(case_id: int) -> Response | tuple[str, int]:
    case = _load_case(case_id)
    form = CallBackForm()
    if form.validate_on_submit():
        assert form.called_at.data is not None
        called_at = form.called_at.data.replace(tzinfo=display_zone())
        with commit_unless(CaseError) as attempt:
            log_call_back(
                case,
                user=current_user,
                called_at=called_at,
                outcome=form.outcome.data or "",
                note=form.note.data or "",
            )
        if attempt.refusal is None:
            flash(_("Call-back logged."), "success")
            return redirect(url_for(".case_detail", case_id=case.id, _anchor="call-backs"))
        form.called_at.errors = [str(attempt.refusal)]
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
        with commit_unless(CaseError) as attempt:
            link_case(case, root_cause, current_user)
        if attempt.refusal is None:
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
        form.root_cause_id.errors = [str(attempt.refusal)]
    return _case_page(_load_case(case_id), 400, link=form)


@bp.post("/cases/<int:case_id>/root-cause/new")
@staff_required
def case_new_root_cause(case_id: int) -> Response | tuple[str, int]:
    case = _load_case(case_id)
    form = NewRootCauseForCaseForm()
    if form.validate_on_submit():
        with commit_unless(CaseError) as attempt:
            root_cause = create_root_cause_for_case(
                case, form.title.data or "", description=form.description.data or "",
                user=current_user,
            )  # fmt: skip
        if attempt.refusal is None:
            flash(_("Root cause #%(rc)s created and linked.", rc=root_cause.id), "success")
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id))
        form.title.errors = [str(attempt.refusal)]
    return _case_page(_load_case(case_id), 400, new_root_cause=form)
