"""Admin pages for survey templates and the invitation policy."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("survey_admin", __name__, url_prefix="/admin/surveys")
