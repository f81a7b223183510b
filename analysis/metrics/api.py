"""``GET /api/v1/metrics``: every KPI as JSON for signed-in analysts, managers and admins.

Session authentication only: ClosedLoop has no staff API tokens yet.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from survey_app.auth.access import api_role_required
from survey_app.errors import api_error
from survey_app.models import Role

from . import compute_for_args
from .scope import ScopeError

bp = Blueprint("metrics_api", __name__, url_prefix="/api/v1")


@bp.get("/metrics")
@api_role_required(Role.ANALYST, Role.MANAGER)
def metrics() -> Response:
    """Every KPI over ``from``..``to`` (local dates) with the filters, optionally grouped.

    400 ``invalid_parameters`` names each bad argument in ``fields``.
    """
    try:
        result = compute_for_args(request.args)
    except ScopeError as exc:
        return api_error(400, "invalid_parameters", str(exc), fields=exc.errors)
    return jsonify(result.to_json())
