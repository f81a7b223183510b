"""The customer's survey pages (public, no account): answer, thanks, unsubscribe.

Every page speaks the customer's language (unless they switch it), and every
problem with a link gets its own page here rather than the staff error page:
404 for a link that is not ours, 410 for one that has closed.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import get_locale, refresh
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from ..database import deferred_writes
from ..errors import RETRY_AFTER_SECONDS, note_database_unavailable
from ..extensions import csrf, db
from ..ratelimit import limiter, survey_limit
from ..types import utcnow
from .forms import cached_survey_form_class, preselected_answers
from .links import (
    UNSUBSCRIBE_SALT,
    LinkClosed,
    LinkNotFound,
    SurveyLink,
    answerable_invitation,
    closed_reason,
    invitation_from_token,
)
from .models import Invitation, InvitationStatus
from .published import VersionData, version_data
from .responses import AlreadyAnswered, SurveyClosed, submit_response

bp = Blueprint("survey", __name__, url_prefix="/s")
# One budget per client address for all the survey pages (see survey_app.ratelimit).
limiter.shared_limit(survey_limit, scope="survey-pages")(bp)

Page = Response | str | tuple[str, int] | tuple[str, int, dict[str, str]]


def _speak_customer_language(invitation: Invitation | SurveyLink) -> None:
    # The customer's language unless they switched it on the page (session choice).
    g.locale_hint = invitation.language
    refresh()


@bp.after_request
def _private(response: Response) -> Response:
    # The pages carry the customer's link and a form token: no shared caches, and
    # the Back button after a submit asks the server (which says "already answered").
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.errorhandler(LinkNotFound)
def _link_not_found(_error: LinkNotFound) -> tuple[str, int]:
    return render_template("surveys/link_error.html", reason="not_found"), 404


@bp.errorhandler(LinkClosed)
def _link_closed(error: LinkClosed) -> tuple[str, int]:
    _speak_customer_language(error.invitation)
    return render_template("surveys/link_error.html", reason=error.reason), 410


@bp.errorhandler(HTTPException)
def _other_problem(error: HTTPException) -> tuple[str, int]:
    """Too large a form, a wrong method ...: a customer page, not the staff one."""
    code = error.code or 500
    return render_template("surveys/link_error.html", reason="other", code=code), code


@bp.errorhandler(InternalServerError)
def _server_error(_error: InternalServerError) -> tuple[str, int]:
    db.session.rollback()
    return render_template("surveys/link_error.html", reason="other", code=500), 500


@bp.route("/<token>", methods=["GET", "POST"])
@csrf.exempt  # checked below, after the link: a stale form keeps the customer's answers
@deferred_writes  # submit_response takes the write lock for its three statements only
def answer(token: str) -> Page:
    """The survey. A GET may pre-select rating answers (the e-mail's one-click
    links) but never stores anything: mail scanners follow links. Only a valid
    POST stores the one response; a second one gets the already-answered page (409).
    """
    invitation = answerable_invitation(token)
    _speak_customer_language(invitation)
    if invitation.status is InvitationStatus.ANSWERED:
        status = 409 if request.method == "POST" else 200
        return render_template("surveys/already_answered.html"), status
    locale = str(get_locale())
    assert invitation.template_version_id is not None, "a sent invitation has a version"
    # Plain data, cached for a published version: no query, no form class built.
    version = version_data(invitation.template_version_id)
    form_class = cached_survey_form_class(version, locale)
    if request.method == "GET":
        form = form_class(formdata=preselected_answers(version, request.args))
        return _answer_page(form, version, invitation, token)
    form = form_class()
    if current_app.config["WTF_CSRF_ENABLED"]:
        try:
            csrf.protect()
        except CSRFError:
            return _answer_page(form, version, invitation, token, form_expired=True), 400
    if not form.validate():
        return _answer_page(form, version, invitation, token), 400
    answers = {question.key: form[question.key].data for question in version.questions}
    try:
        submit_response(invitation, answers, language=locale, version=version)
    except AlreadyAnswered:
        return render_template("surveys/already_answered.html"), 409
    except SurveyClosed:
        # Cancelled or expired while the page was open: read it again to say which.
        invitation = answerable_invitation(token)  # raises LinkClosed with the reason
        raise LinkClosed(closed_reason(invitation) or "expired", invitation) from None
    except OperationalError as error:
        # The database went away (a restart): nothing was written, and the answers
        # stay on the page to send again; rendering it needs no database.
        note_database_unavailable(error)
        page = _answer_page(form, version, invitation, token, unavailable=True)
        return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return redirect(url_for(".thanks", token=token))


def _answer_page(
    form,
    version: VersionData,
    invitation: SurveyLink,
    token: str,
    form_expired: bool = False,
    unavailable: bool = False,
) -> str:
    return render_template(
        "surveys/answer.html",
        form=form,
        version=version,
        invitation=invitation,
        token=token,
        form_expired=form_expired,
        unavailable=unavailable,
    )


@bp.get("/<token>/thanks")
def thanks(token: str) -> Page:
    invitation = invitation_from_token(token)
    _speak_customer_language(invitation)
    if invitation.status is not InvitationStatus.ANSWERED:
        return redirect(url_for(".answer", token=token))
    return render_template("surveys/thanks.html", invitation=invitation)


@bp.route("/<token>/unsubscribe", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str) -> Page:
    """GET asks for confirmation (mail scanners prefetch links); POST opts out.

    The POST is exempt from CSRF: the signed token is the proof, and mail
    providers send the RFC 8058 one-click POST (``List-Unsubscribe=One-Click``)
    without a form token. A survey link is not an unsubscribe link (404).
    """
    invitation = invitation_from_token(token, salt=UNSUBSCRIBE_SALT)
    _speak_customer_language(invitation)
    customer = invitation.customer
    if request.method == "POST":
        if customer.opted_out_at is None:
            customer.opted_out_at = utcnow()
            db.session.commit()
        return render_template("surveys/unsubscribed.html", token=token)
    return render_template(
        "surveys/unsubscribe.html", token=token, already=customer.opted_out_at is not None
    )


@bp.route("/<token>/<path:rest>", methods=["GET", "POST"])
@csrf.exempt
def mangled_link(token: str, rest: str) -> Page:
    """A link with something stuck to its end (mail clients do that): not ours."""
    raise LinkNotFound
