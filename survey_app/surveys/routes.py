"""The customer's survey pages (public, no account): answer, thanks, unsubscribe."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from werkzeug.wrappers import Response

from ..extensions import csrf, db
from ..types import utcnow
from .forms import survey_form_class
from .links import UNSUBSCRIBE_SALT, invitation_from_token
from .models import Invitation, InvitationStatus
from .responses import AlreadyAnswered, submit_response

bp = Blueprint("survey", __name__, url_prefix="/s")


def _use_invitation_language(invitation: Invitation) -> None:
    # The customer's language unless they switched it on the page (session choice).
    g.locale_hint = invitation.language


@bp.route("/<token>", methods=["GET", "POST"])
def answer(token: str) -> Response | str | tuple[str, int]:
    invitation = invitation_from_token(token)
    _use_invitation_language(invitation)
    if invitation.status is InvitationStatus.ANSWERED:
        status = 409 if request.method == "POST" else 200
        return render_template("surveys/already_answered.html"), status
    locale = str(get_locale())
    version = invitation.template_version
    assert version is not None
    form_class = survey_form_class(version, locale)
    # A GET may pre-select answers (the one-click links of the e-mail); only a submit saves.
    form = form_class(request.args) if request.method == "GET" else form_class()
    if request.method == "POST" and form.validate_on_submit():
        answers = {q.key: form[q.key].data for q in version.questions}
        try:
            submit_response(invitation, answers, language=locale)
        except AlreadyAnswered:
            return render_template("surveys/already_answered.html"), 409
        return redirect(url_for("survey.thanks", token=token))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "surveys/answer.html", form=form, version=version, invitation=invitation, token=token
    ), status


@bp.get("/<token>/thanks")
def thanks(token: str) -> str:
    invitation = invitation_from_token(token)
    _use_invitation_language(invitation)
    return render_template("surveys/thanks.html", invitation=invitation)


@bp.route("/<token>/unsubscribe", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str) -> str | tuple[str, int]:
    """GET asks for confirmation (mail scanners prefetch links); POST opts out.

    The POST is exempt from CSRF: the signed token is the proof, and mail
    providers send the RFC 8058 one-click POST without a form token.
    """
    invitation = invitation_from_token(token, salt=UNSUBSCRIBE_SALT)
    _use_invitation_language(invitation)
    customer = invitation.customer
    if request.method == "POST":
        if customer.opted_out_at is None:
            customer.opted_out_at = utcnow()
            db.session.commit()
        return render_template("surveys/unsubscribed.html", token=token)
    return render_template(
        "surveys/unsubscribe.html", token=token, already=customer.opted_out_at is not None
    )
