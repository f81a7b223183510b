"""The root-cause pages' blueprint and what its two view modules share.

The views are thin and live by area: :mod:`.case_routes` (opening cases, the triage queue,
a case) and :mod:`.root_cause_routes` (root causes, 5 Why chains, fishbone and Pareto).
Every page is for staff (analysts, managers, admins); every POST carries a CSRF token; a
refused operation is shown with its reason and status 400, and the transaction is rolled
back, so nothing is half-written.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort
from flask_babel import get_timezone

from .forms import ButtonForm, MoveForm

bp = Blueprint("root_causes", __name__)


def check_button(form: ButtonForm | MoveForm) -> None:
    """Refuse (400) a button's post whose form does not validate."""
    if not form.validate_on_submit():
        abort(400)


def display_zone() -> ZoneInfo:
    """The zone staff pages show times in; a time typed into a form is read in it."""
    return ZoneInfo(str(get_timezone()))
