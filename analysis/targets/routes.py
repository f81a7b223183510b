"""Target pages (managers and admins) and the alert list (every staff role); thin views."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from survey_app.auth.access import manager_required, staff_required
from survey_app.extensions import db

from .alerts import not_evaluated, recent_alerts
from .forms import TEXT_DIMENSIONS, DeleteForm, TargetForm
from .labels import KPI_LABELS, LEVEL_LABELS, format_gap, format_value
from .models import KpiTarget, WebhookFormat
from .notify import has_audience
from .services import (
    TargetError,
    TargetSpec,
    delete_target,
    describe_filters,
    list_targets,
    save_target,
)
from .status import direction_of

bp = Blueprint("targets", __name__)


@bp.app_context_processor
def _helpers() -> dict[str, object]:
    return {
        "kpi_labels": KPI_LABELS,
        "level_labels": LEVEL_LABELS,
        "format_kpi_value": format_value,
        "format_kpi_gap": format_gap,
        "describe_filters": describe_filters,
        "kpi_direction": direction_of,
    }


@bp.get("/targets")
@manager_required
def targets() -> str:
    return render_template(
        "targets/targets.html", targets=list_targets(), delete_form=DeleteForm()
    )


def _form_page(form: TargetForm, target: KpiTarget | None, status: int = 200) -> tuple[str, int]:
    return render_template("targets/target_form.html", form=form, target=target), status


def _spec(form: TargetForm) -> TargetSpec:
    return TargetSpec(
        kpi=form.kpi.data,
        target=form.target.data,
        yellow=form.yellow.data,
        orange=form.orange.data,
        red=form.red.data,
        filters=form.scope_filters(),
        window_days=form.window_days.data,
        alerts_enabled=bool(form.alerts_enabled.data),
        recipients=form.recipient_list(),
        webhook_url=form.webhook_url.data,
        webhook_format=WebhookFormat(form.webhook_format.data),
        note=form.note.data or "",
    )


def _save(form: TargetForm, target: KpiTarget | None) -> Response | tuple[str, int]:
    if not form.validate_on_submit():
        return _form_page(form, target, 400)
    try:
        saved = save_target(_spec(form), target)
    except TargetError as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            field = form.team if name == "filters" else getattr(form, name)
            field.errors = [*field.errors, message]
        return _form_page(form, target, 400)
    db.session.commit()
    flash(_("Target saved."), "success")
    return redirect(url_for(".targets", _anchor=f"target-{saved.id}"))


@bp.route("/targets/new", methods=["GET", "POST"])
@manager_required
def new_target() -> Response | tuple[str, int]:
    form = TargetForm()
    if form.is_submitted():
        return _save(form, None)
    return _form_page(form, None)


@bp.route("/targets/<int:target_id>", methods=["GET", "POST"])
@manager_required
def edit_target(target_id: int) -> Response | tuple[str, int]:
    target = db.get_or_404(KpiTarget, target_id)
    form = TargetForm(obj=target)
    if form.is_submitted():
        return _save(form, target)
    filters = target.filters or {}
    for name in TEXT_DIMENSIONS:
        getattr(form, name).data = ", ".join(filters.get(name, []))
    for name in ("channel", "priority", "customer_tier"):
        getattr(form, name).data = list(filters.get(name, []))
    if "customer_is_new" in filters:
        form.customer_is_new.data = "new" if filters["customer_is_new"] else "returning"
    else:
        form.customer_is_new.data = ""
    form.recipients.data = "\n".join(target.recipients or [])
    form.webhook_format.data = target.webhook_format.value
    return _form_page(form, target)


@bp.post("/targets/<int:target_id>/delete")
@manager_required
def remove_target(target_id: int) -> Response:
    target = db.get_or_404(KpiTarget, target_id)
    if not DeleteForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(url_for(".targets"))
    delete_target(target)
    db.session.commit()
    flash(_("Target deleted."), "success")
    return redirect(url_for(".targets"))


@bp.get("/alerts")
@staff_required
def alerts() -> str:
    open_alerts, cleared = recent_alerts()
    return render_template(
        "targets/alerts.html",
        open_alerts=open_alerts,
        cleared=cleared,
        not_evaluated=not_evaluated(),
        has_audience=has_audience,
    )
