"""Admin pages for survey templates and the invitation policy; the invitation log (thin views).

Every change to questions happens on a draft (``versions.editable_draft``);
published versions are only ever shown, previewed and retired.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, get_timezone
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from ..auth.access import admin_required, manager_required
from ..csvexport import csv_download
from ..extensions import db
from ..labels import label
from ..models import Channel, Tier
from ..routing import paginate
from .admin_forms import (
    ActionForm,
    IntroForm,
    InvitationFilterForm,
    MoveForm,
    NewQuestionForm,
    PolicyForm,
    QuestionForm,
    TemplateForm,
)
from .forms import survey_form_class
from .invitation_report import (
    counts_by_skip_reason,
    counts_by_status,
    invitation_export,
    invitation_search,
    response_rate,
)
from .models import Question, SurveyTemplate, TemplateVersion, VersionStatus
from .policy import current_policy, update_policy
from .versions import (
    TemplateError,
    add_question,
    create_template,
    editable_draft,
    latest_version,
    move_question,
    publish,
    published_version,
    remove_question,
    update_intro,
    update_question,
    update_targeting,
)

bp = Blueprint("survey_admin", __name__, url_prefix="/admin/surveys")

#: Stands in for the invitation on a preview: the intro's {ticket} needs a ticket number.
PREVIEW_INVITATION = SimpleNamespace(ticket=SimpleNamespace(external_id="T-12345"))


@bp.context_processor
def targeting_names() -> dict[str, Any]:
    """``channel_names(values)`` / ``tier_names(values)``: stored targeting as labels."""

    def names(enum_cls: type[Channel] | type[Tier], values: list[str]) -> str:
        return ", ".join(label(enum_cls(value)) for value in values)

    return {
        "channel_names": lambda values: names(Channel, values),
        "tier_names": lambda values: names(Tier, values),
    }


def _version_or_404(version_id: int) -> TemplateVersion:
    return db.get_or_404(TemplateVersion, version_id)


def _question_or_404(version: TemplateVersion, question_id: int) -> Question:
    """The question ``question_id`` of ``version``; 404 if it belongs to another one."""
    question = db.get_or_404(Question, question_id)
    if question.version_id != version.id:
        abort(404)
    return question


def _check_button(form: FlaskForm) -> None:
    """Refuse (400) a button's post whose form does not validate (e.g. an unknown choice)."""
    if not form.validate_on_submit():
        abort(400)


def _template_values(form: TemplateForm) -> dict[str, Any]:
    return {
        "name": form.name.data or "",
        "channels": form.channels.data or [],
        "tiers": form.tiers.data or [],
        "priority": form.priority.data or 0,
        "active": bool(form.active.data),
    }


def _draft_of(template: SurveyTemplate) -> TemplateVersion | None:
    latest = latest_version(template)
    return latest if latest is not None and latest.status is VersionStatus.DRAFT else None


# --- templates -------------------------------------------------------------------------------


@bp.get("/templates")
@admin_required
def templates() -> str:
    rows = db.session.scalars(
        select(SurveyTemplate)
        .options(selectinload(SurveyTemplate.versions))
        .order_by(SurveyTemplate.priority.desc(), SurveyTemplate.name)
    ).all()
    summaries = [(t, published_version(t), _draft_of(t)) for t in rows]
    return render_template("surveys/admin/templates.html", summaries=summaries)


@bp.route("/templates/new", methods=["GET", "POST"])
@admin_required
def template_create() -> Response | str | tuple[str, int]:
    form = TemplateForm()
    if form.validate_on_submit():
        try:
            template = create_template(**_template_values(form))
        except TemplateError as exc:
            db.session.rollback()
            form.name.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Template %(name)s created with a draft of the standard questions.",
                    name=template.name), "success")  # fmt: skip
            return redirect(url_for(".template_detail", template_id=template.id))
    status = 400 if form.is_submitted() else 200
    return render_template("surveys/admin/template_form.html", form=form, template=None), status


@bp.get("/templates/<int:template_id>")
@admin_required
def template_detail(template_id: int) -> str:
    template = db.get_or_404(SurveyTemplate, template_id)
    return render_template(
        "surveys/admin/template.html",
        template=template,
        versions=list(reversed(template.versions)),
        action_form=ActionForm(),
    )


@bp.route("/templates/<int:template_id>/settings", methods=["GET", "POST"])
@admin_required
def template_settings(template_id: int) -> Response | str | tuple[str, int]:
    template = db.get_or_404(SurveyTemplate, template_id)
    form = TemplateForm(obj=template)
    if form.validate_on_submit():
        try:
            update_targeting(template, **_template_values(form))
        except TemplateError as exc:
            db.session.rollback()
            form.name.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Template %(name)s saved.", name=template.name), "success")
            return redirect(url_for(".template_detail", template_id=template.id))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "surveys/admin/template_form.html", form=form, template=template
    ), status


@bp.post("/templates/<int:template_id>/draft")
@admin_required
def template_draft(template_id: int) -> Response:
    """Open the template's draft, copying the newest version into a new one if needed."""
    template = db.get_or_404(SurveyTemplate, template_id)
    _check_button(ActionForm())
    try:
        draft = editable_draft(template)
        db.session.commit()
    except IntegrityError:
        # Another admin opened the draft at the same moment: use theirs.
        db.session.rollback()
        draft = editable_draft(template)
        db.session.commit()
    return redirect(url_for(".draft_edit", version_id=draft.id))


# --- the draft -------------------------------------------------------------------------------


def _editor(
    draft: TemplateVersion,
    status: int = 200,
    *,
    intro_form: IntroForm | None = None,
    question_form: tuple[int, QuestionForm] | None = None,
    new_form: NewQuestionForm | None = None,
) -> tuple[str, int]:
    """The draft page; a form that failed validation replaces its fresh copy."""
    forms = []
    for question in draft.questions:
        if question_form is not None and question_form[0] == question.id:
            forms.append((question, question_form[1]))
            continue
        form = QuestionForm(
            prefix=f"q{question.id}",
            formdata=None,
            data={
                "en": question.text.get("en", ""),
                "zh_Hans": question.text.get("zh_Hans", ""),
                "required": question.required,
            },
        )
        forms.append((question, form))
    intro = intro_form or IntroForm(formdata=None, data=dict(draft.intro))
    page = render_template(
        "surveys/admin/draft.html",
        draft=draft,
        template=draft.template,
        intro_form=intro,
        question_forms=forms,
        new_form=new_form or NewQuestionForm(prefix="new", formdata=None),
        action_form=ActionForm(),
    )
    return page, status


def _draft_or_redirect(version_id: int) -> TemplateVersion | Response:
    version = _version_or_404(version_id)
    if version.status is not VersionStatus.DRAFT:
        flash(_("A published version cannot be changed; editing creates a new draft."), "error")
        return redirect(url_for(".template_detail", template_id=version.template_id))
    return version


@bp.get("/versions/<int:version_id>/edit")
@admin_required
def draft_edit(version_id: int) -> Response | tuple[str, int]:
    draft = _draft_or_redirect(version_id)
    if isinstance(draft, Response):
        return draft
    return _editor(draft)


@bp.post("/versions/<int:version_id>/intro")
@admin_required
def draft_intro(version_id: int) -> Response | tuple[str, int]:
    draft = _draft_or_redirect(version_id)
    if isinstance(draft, Response):
        return draft
    form = IntroForm()
    if not form.validate_on_submit():
        return _editor(draft, 400, intro_form=form)
    update_intro(draft, form.en.data, form.zh_Hans.data)
    db.session.commit()
    flash(_("Introduction saved."), "success")
    return redirect(url_for(".draft_edit", version_id=draft.id))


@bp.post("/versions/<int:version_id>/questions/<int:question_id>")
@admin_required
def draft_question(version_id: int, question_id: int) -> Response | tuple[str, int]:
    draft = _draft_or_redirect(version_id)
    if isinstance(draft, Response):
        return draft
    question = _question_or_404(draft, question_id)
    form = QuestionForm(prefix=f"q{question.id}")
    if not form.validate_on_submit():
        return _editor(draft, 400, question_form=(question.id, form))
    update_question(draft, question, en=form.en.data, zh_hans=form.zh_Hans.data,
                    required=bool(form.required.data))  # fmt: skip
    db.session.commit()
    flash(_("Question %(key)s saved.", key=question.key), "success")
    return redirect(url_for(".draft_edit", version_id=draft.id, _anchor=f"q{question.id}"))


@bp.post("/versions/<int:version_id>/questions")
@admin_required
def draft_add_question(version_id: int) -> Response | tuple[str, int]:
    draft = _draft_or_redirect(version_id)
    if isinstance(draft, Response):
        return draft
    form = NewQuestionForm(prefix="new")
    if form.validate_on_submit():
        try:
            question = add_question(draft, form.key.data or "", form.kind.data,
                                    en=form.en.data, zh_hans=form.zh_Hans.data,
                                    required=bool(form.required.data))  # fmt: skip
        except TemplateError as exc:
            db.session.rollback()
            form.key.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Question %(key)s added.", key=question.key), "success")
            return redirect(url_for(".draft_edit", version_id=draft.id,
                                    _anchor=f"q{question.id}"))  # fmt: skip
    return _editor(draft, 400, new_form=form)


@bp.post("/versions/<int:version_id>/questions/<int:question_id>/delete")
@admin_required
def draft_remove_question(version_id: int, question_id: int) -> Response:
    draft = _draft_or_redirect(version_id)
    if isinstance(draft, Response):
        return draft
    question = _question_or_404(draft, question_id)
    _check_button(ActionForm())
    remove_question(draft, question)
    db.session.commit()
    flash(_("Question %(key)s removed.", key=question.key), "success")
    return redirect(url_for(".draft_edit", version_id=draft.id))


@bp.post("/versions/<int:version_id>/questions/<int:question_id>/move")
@admin_required
def draft_move_question(version_id: int, question_id: int) -> Response:
    draft = _draft_or_redirect(version_id)
    if isinstance(draft, Response):
        return draft
    question = _question_or_404(draft, question_id)
    form = MoveForm()
    _check_button(form)
    move_question(draft, question, -1 if form.direction.data == "up" else 1)
    db.session.commit()
    return redirect(url_for(".draft_edit", version_id=draft.id, _anchor=f"q{question.id}"))


@bp.post("/versions/<int:version_id>/publish")
@admin_required
def draft_publish(version_id: int) -> Response | tuple[str, int]:
    draft = _draft_or_redirect(version_id)
    if isinstance(draft, Response):
        return draft
    _check_button(ActionForm())
    try:
        publish(draft)
    except TemplateError as exc:
        db.session.rollback()
        flash(_("Not published: %(reason)s", reason=str(exc)), "error")
        return _editor(draft, 400)
    db.session.commit()
    flash(_("Version %(number)s published; new invitations use it.", number=draft.number),
          "success")  # fmt: skip
    return redirect(url_for(".template_detail", template_id=draft.template_id))


@bp.get("/versions/<int:version_id>/preview")
@admin_required
def version_preview(version_id: int) -> str:
    """Any version as the customer sees it, in the page language; nothing can be sent."""
    version = _version_or_404(version_id)
    form = survey_form_class(version, str(get_locale()))(formdata=None)
    return render_template(
        "surveys/admin/preview.html",
        form=form,
        version=version,
        invitation=PREVIEW_INVITATION,
        token=None,
        preview=True,
    )


# --- policy and the invitation log -----------------------------------------------------------


@bp.route("/policy", methods=["GET", "POST"])
@admin_required
def policy() -> Response | str | tuple[str, int]:
    current = current_policy()
    form = PolicyForm(obj=current)
    if form.validate_on_submit():
        update_policy(
            delay_minutes=form.delay_minutes.data,
            link_valid_days=form.link_valid_days.data,
            reminder_after_days=form.reminder_after_days.data,
            fatigue_days=form.fatigue_days.data,
            sampling_percent=form.sampling_percent.data,
            exempt_detractors=bool(form.exempt_detractors.data),
            max_attempts=form.max_attempts.data,
        )
        db.session.commit()
        flash(_("Invitation policy saved; it applies to invitations decided from now on."),
              "success")  # fmt: skip
        return redirect(url_for(".policy"))
    # A GET may have created the row with the defaults.
    db.session.commit()
    status = 400 if form.is_submitted() else 200
    return render_template("surveys/admin/policy.html", form=form, policy=current), status


def _invitation_filters() -> tuple[InvitationFilterForm, dict[str, str | None]]:
    form = InvitationFilterForm(request.args)
    form.validate()
    # An invalid filter is shown with its error and ignored; the others still apply.
    return form, {field.name: field.data for field in form if not field.errors}


@bp.get("/invitations")
@manager_required
def invitations() -> str:
    form, filters = _invitation_filters()
    page = paginate(invitation_search(filters), per_page=current_app.config["PAGE_SIZE"])
    by_status = counts_by_status()
    return render_template(
        "surveys/admin/invitations.html",
        form=form,
        page=page,
        by_status=by_status,
        by_reason=counts_by_skip_reason(),
        total=sum(by_status.values()),
        rate=response_rate(by_status),
    )


@bp.get("/invitations/export.csv")
@manager_required
def invitations_export() -> Response:
    """The invitation log as CSV: every page of the same search and filters."""
    _form, filters = _invitation_filters()
    zone = ZoneInfo(str(get_timezone()))
    header, rows = invitation_export(filters, zone)
    return csv_download(f"closedloop-invitations-{datetime.now(zone):%Y-%m-%d}.csv", header, rows)
