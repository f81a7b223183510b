"""``POST /api/v1/ticket-events`` and the OpenAPI document."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import ValidationError

from ..errors import api_error
from ..extensions import csrf, db
from ..ratelimit import limiter, webhook_limit
from .openapi import openapi_document
from .schemas import TicketEventIn, error_list
from .services import Outcome, apply_ticket_event
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@bp.post("/ticket-events")
@limiter.limit(webhook_limit)
def ticket_event() -> tuple[Response, int] | Response:
    secret = current_app.config["WEBHOOK_SECRET"]
    if not secret:
        return api_error(
            503, "not_configured", "The webhook secret is not configured on this server."
        )
    body = request.get_data(cache=False)
    try:
        verify(
            secret,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            body,
            tolerance=current_app.config["WEBHOOK_TOLERANCE_SECONDS"],
        )
    except SignatureError as exc:
        return api_error(401, "bad_signature", str(exc))
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        # ValueError covers undecodable bytes and bad syntax; RecursionError, absurd nesting.
        return api_error(400, "malformed_json", f"The body is not valid JSON: {exc}")
    if not isinstance(payload, dict):
        return api_error(400, "malformed_json", "The body must be a JSON object.")
    try:
        event = TicketEventIn.model_validate(payload)
    except ValidationError as exc:
        errors = error_list(exc)
        return api_error(
            422,
            "validation_failed",
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            fields=errors,
        )
    key = event.idempotency_key(body)
    result = apply_ticket_event(event, idempotency_key=key, origin="webhook", payload=payload)
    if result.outcome is Outcome.CONFLICT:
        db.session.rollback()
        return api_error(
            409,
            "event_id_conflict",
            f"event_id {event.event_id!r} was already received with a different body; "
            "send each change with an event_id of its own (the first event is kept).",
            event_id=result.event_id,
        )
    db.session.commit()
    status = 201 if result.outcome is Outcome.CREATED else 200
    return jsonify(
        result=result.outcome.value, ticket_id=result.ticket_id, event_id=result.event_id
    ), status


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are not JSON, and PostgreSQL refuses them in the stored payload.
    raise ValueError(f"{name} is not a JSON value")


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
