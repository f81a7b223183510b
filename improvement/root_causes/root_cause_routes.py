"""Root causes, their 5 Why chains, and the fishbone and Pareto pages (thin views on
:data:`.blueprint.bp`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from analysis.metrics import metrics_timezone
from analysis.metrics.scope import local_midnight
from analysis.text.problems import ProblemType
from survey_app.auth.access import staff_required
from survey_app.database import commit_unless
from survey_app.extensions import db
from survey_app.models import Channel

from .blueprint import bp, check_button
from .causes import (
    create_root_cause,
    update_root_cause,
)
from .charts import fishbone_figure, pareto_figure
from .common import CaseError, fishbone_categories
from .five_whys import add_why, delete_why, move_why, update_why
from .forms import (
    ButtonForm,
    MoveForm,
    ParetoFilterForm,
    RootCauseEditForm,
    RootCauseForm,
    WhyForm,
)
from .labels import category_label, problem_label
from .models import FeedbackCase, RootCause, RootCauseStatus, WhyStep
from .pareto import root_cause_pareto

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
        with commit_unless(CaseError) as attempt:
            root_cause = create_root_cause(
                form.title.data or "",
                description=form.description.data or "",
                problem_type=form.problem_type.data,
                themes=form.themes.data,
                user=current_user,
            )
        if attempt.refusal is None:
            flash(_("Root cause #%(rc)s created.", rc=root_cause.id), "success")
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id))
        form.title.errors = [str(attempt.refusal)]
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
        with commit_unless(CaseError) as attempt:
            update_root_cause(
                root_cause,
                title=form.title.data or "",
                description=form.description.data or "",
                problem_type=form.problem_type.data,
                themes=form.themes.data,
                status=form.status.data or "",
                user=current_user,
            )
        if attempt.refusal is None:
            flash(_("Root cause #%(rc)s saved.", rc=root_cause.id), "success")
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id))
        form.title.errors = [str(attempt.refusal)]
    return _root_cause_page(_load_root_cause(root_cause_id), 400, edit=form)


@bp.post("/root-causes/<int:root_cause_id>/whys")
@staff_required
def why_add(root_cause_id: int) -> Response | tuple[str, int]:
    root_cause = _load_root_cause(root_cause_id)
    form = WhyForm()
    if form.validate_on_submit():
        with commit_unless(CaseError) as attempt:
            add_why(root_cause, form.statement.data or "", form.category.data or "", current_user)
        if attempt.refusal is None:
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id,
                                    _anchor="whys"))  # fmt: skip
        form.statement.errors = [str(attempt.refusal)]
    return _root_cause_page(_load_root_cause(root_cause_id), 400, why=form)


@bp.post("/root-causes/<int:root_cause_id>/whys/<int:why_id>")
@staff_required
def why_edit(root_cause_id: int, why_id: int) -> Response | tuple[str, int]:
    root_cause = _load_root_cause(root_cause_id)
    why = _load_why(root_cause, why_id)
    form = WhyForm(prefix=f"why{why.id}")
    if form.validate_on_submit():
        with commit_unless(CaseError) as attempt:
            update_why(why, form.statement.data or "", form.category.data or "", current_user)
        if attempt.refusal is None:
            return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id,
                                    _anchor="whys"))  # fmt: skip
        form.statement.errors = [str(attempt.refusal)]
    db.session.rollback()
    return _root_cause_page(_load_root_cause(root_cause_id), 400, failed_why=(why_id, form))


@bp.post("/root-causes/<int:root_cause_id>/whys/<int:why_id>/move")
@staff_required
def why_move(root_cause_id: int, why_id: int) -> Response | tuple[str, int]:
    root_cause = _load_root_cause(root_cause_id)
    why = _load_why(root_cause, why_id)
    form = MoveForm()
    check_button(form)
    with commit_unless(CaseError) as attempt:
        move_why(why, form.direction.data or "", current_user)
    if attempt.refusal is not None:
        flash(str(attempt.refusal), "error")
        return _root_cause_page(_load_root_cause(root_cause_id), 400)
    return redirect(url_for(".root_cause_detail", root_cause_id=root_cause.id, _anchor="whys"))


@bp.post("/root-causes/<int:root_cause_id>/whys/<int:why_id>/delete")
@staff_required
def why_delete(root_cause_id: int, why_id: int) -> Response:
    root_cause = _load_root_cause(root_cause_id)
    why = _load_why(root_cause, why_id)
    check_button(ButtonForm())
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
