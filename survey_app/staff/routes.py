"""Staff home, ticket list and detail, user administration (thin views)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from ..auth.access import admin_required, staff_required
from ..auth.services import AccountError, clear_sign_in_pauses, create_user
from ..csvexport import csv_download
from ..extensions import db
from ..models import Role, Ticket, TicketStatus, User
from ..routing import paginate
from ..surveys.models import Invitation
from .forms import TicketFilterForm, UserCreateForm, UserEditForm
from .services import ticket_export, ticket_search

bp = Blueprint("staff", __name__)


@bp.get("/")
@staff_required
def home() -> str:
    counts = dict(
        db.session.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all()
    )
    totals = {status: counts.get(status, 0) for status in TicketStatus}
    return render_template("staff/home.html", totals=totals, total=sum(totals.values()))


def _ticket_filters() -> tuple[TicketFilterForm, dict[str, str | None]]:
    form = TicketFilterForm(request.args)
    form.validate()
    # An invalid filter is shown with its error and ignored; the others still apply.
    return form, {field.name: field.data for field in form if not field.errors}


@bp.get("/tickets")
@staff_required
def tickets() -> str:
    form, filters = _ticket_filters()
    page = paginate(ticket_search(filters), per_page=current_app.config["PAGE_SIZE"])
    return render_template("staff/tickets.html", form=form, page=page)


@bp.get("/tickets/export.csv")
@staff_required
def tickets_export() -> Response:
    """The ticket list as CSV: every page of the same search and filters."""
    _form, filters = _ticket_filters()
    zone = ZoneInfo(str(get_timezone()))
    header, rows = ticket_export(filters, zone)
    return csv_download(f"closedloop-tickets-{datetime.now(zone):%Y-%m-%d}.csv", header, rows)


@bp.get("/tickets/<int:ticket_id>")
@staff_required
def ticket_detail(ticket_id: int) -> str:
    ticket = db.get_or_404(Ticket, ticket_id)
    invitations = db.session.scalars(
        select(Invitation)
        .where(Invitation.ticket_id == ticket.id)
        .options(selectinload(Invitation.response))
        .order_by(Invitation.created_at, Invitation.id)
    ).all()
    return render_template("staff/ticket.html", ticket=ticket, invitations=invitations)


@bp.get("/admin/users")
@admin_required
def users() -> str:
    people = db.session.scalars(select(User).order_by(User.role, User.email)).all()
    return render_template("staff/users.html", users=people)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@admin_required
def user_create() -> Response | str | tuple[str, int]:
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user = create_user(
                form.email.data or "",
                form.password.data or "",
                form.role.data,
                form.name.data or "",
            )
        except AccountError as exc:
            db.session.rollback()
            form.email.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("User %(email)s created.", email=user.email), "success")
            return redirect(url_for("staff.users"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/user_form.html", form=form, user=None), status


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def user_edit(user_id: int) -> Response | str | tuple[str, int]:
    user = db.get_or_404(User, user_id)
    form = UserEditForm(obj=user)
    if request.method == "GET":
        form.role.data = user.role.value
    if form.validate_on_submit():
        if user.id == current_user.id and (form.role.data != Role.ADMIN or not form.active.data):
            form.role.errors = [_("You cannot remove your own admin rights.")]
            return render_template("staff/user_form.html", form=form, user=user), 400
        user.name = (form.name.data or "").strip()
        user.role = Role(form.role.data)
        user.active = bool(form.active.data)
        if form.unlock.data:
            clear_sign_in_pauses(user)
        if form.new_password.data:
            user.set_password(form.new_password.data)
        db.session.commit()
        flash(_("User %(email)s saved.", email=user.email), "success")
        return redirect(url_for("staff.users"))
    status = 400 if form.is_submitted() else 200
    return render_template("staff/user_form.html", form=form, user=user), status
