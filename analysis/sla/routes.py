"""The SLA policy admin page (thin views over ``analysis.sla.services``)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from survey_app.auth.access import admin_required
from survey_app.extensions import db
from survey_app.models import Priority, Tier

from .calendar import WorkingCalendar
from .forms import CLOCK_LABELS, DeleteRuleForm, SlaRuleForm
from .models import SlaClock
from .services import SlaPolicyError, delete_sla_override, save_sla_policy, sla_policies
from .tasks import recompute_sla

bp = Blueprint("sla_admin", __name__, url_prefix="/admin/sla")


def _page(form: SlaRuleForm, status: int = 200) -> tuple[str, int]:
    rules = sla_policies()
    db.session.commit()  # a first visit may have created the default rows
    return render_template(
        "sla/policy.html",
        form=form,
        rules=rules,
        delete_form=DeleteRuleForm(),
        clock_labels=CLOCK_LABELS,
        calendar=WorkingCalendar.from_config(current_app.config),
    ), status


@bp.get("")
@admin_required
def policy() -> tuple[str, int]:
    return _page(SlaRuleForm())


@bp.post("")
@admin_required
def save_rule() -> Response | tuple[str, int]:
    form = SlaRuleForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        save_sla_policy(
            Priority(form.priority.data),
            Tier(form.customer_tier.data) if form.customer_tier.data else None,
            first_response_minutes=form.first_response_minutes.data or 0,
            resolution_minutes=form.resolution_minutes.data or 0,
            clock=SlaClock(form.clock.data),
        )
    except SlaPolicyError as exc:
        db.session.rollback()
        form.first_response_minutes.errors = [str(exc)]
        return _page(form, 400)
    db.session.commit()
    _measure_again()
    flash(_("SLA rule saved; tickets are being measured again."), "success")
    return redirect(url_for(".policy"))


@bp.post("/<int:policy_id>/delete")
@admin_required
def delete_rule(policy_id: int) -> Response:
    if DeleteRuleForm().validate_on_submit():
        try:
            delete_sla_override(policy_id)
        except SlaPolicyError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".policy"))
        db.session.commit()
        _measure_again()
        flash(_("SLA rule deleted; tickets are being measured again."), "success")
    return redirect(url_for(".policy"))


def _measure_again() -> None:
    """Have every ticket measured against the new policy, in the background.

    With a broker the worker starts at once; without one the periodic job
    ``recompute-sla`` notices the changed policy within ``DISPATCH_INTERVAL_SECONDS``
    (measuring every ticket never runs in the admin's request).
    """
    if current_app.config["CELERY_BROKER_URL"]:
        try:
            recompute_sla.delay()
        except Exception as exc:  # the periodic job catches up
            current_app.logger.warning("could not enqueue the SLA recompute: %s", exc)
