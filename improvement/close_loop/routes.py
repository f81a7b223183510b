"""The managers' page for the close-the-loop message (thin view): edit per language, preview."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from survey_app.auth.access import manager_required
from survey_app.extensions import db

from .forms import TemplateForm
from .services import (
    LANGUAGES,
    CloseLoopError,
    check_template,
    get_template,
    render_message,
    save_template,
)

bp = Blueprint("close_loop", __name__)


def _language(value: str | None) -> str:
    return value if value in LANGUAGES else LANGUAGES[0]


@bp.route("/pdca/close-loop-template", methods=["GET", "POST"])
@manager_required
def template_page() -> Response | tuple[str, int]:
    form = TemplateForm()
    language = _language(
        form.language.data if form.is_submitted() else request.args.get("language")
    )
    preview = None
    status = 200
    if not form.is_submitted():
        form.language.data = language
        form.subject.data, form.body.data = get_template(language)
    elif form.validate_on_submit():
        try:
            if form.save.data:
                save_template(language, form.subject.data, form.body.data, current_user)
                db.session.commit()
                flash(_("Message saved."), "success")
                return redirect(url_for(".template_page", language=language))
            subject, body = check_template(form.subject.data, form.body.data)
        except CloseLoopError as exc:
            db.session.rollback()
            form.body.errors = [*form.body.errors, str(exc)]
            status = 400
        else:
            rendered = render_message(
                subject,
                body,
                name=_("Ms Example"),
                cycle=_("Faster first response on chat"),
                what_changed=_("Chat requests are now answered within 2 minutes."),
                unsubscribe="https://example.invalid/unsubscribe",
            )
            preview = {
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
            }
    else:
        status = 400
    return (
        render_template(
            "close_loop/template.html",
            form=form,
            language=language,
            loop_languages=LANGUAGES,
            preview=preview,
        ),
        status,
    )
