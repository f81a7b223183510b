"""The OpenAPI 3.1 description of the ClosedLoop HTTP API, built from the schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from .schemas import TicketEventIn
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string", "examples": ["ticket.priority"]},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document (computed once per process)."""
    schema = TicketEventIn.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.pop("$defs", {})
    components["TicketEventIn"] = schema
    components["Error"] = ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ClosedLoop API",
            "version": "1",
            "description": (
                "Ticket events from the helpdesk. Sign each request: HMAC-SHA256 over "
                "`<timestamp>.<raw body>` with the shared secret, hex-encoded, sent as "
                f"`{SIGNATURE_HEADER}: sha256=<hex>` with `{TIMESTAMP_HEADER}: <unix seconds>` "
                "(refused when more than 300 s off). Delivering the same event twice is safe: "
                "give `event_id`, or the exact body is the idempotency key."
            ),
        },
        "paths": {
            "/api/v1/ticket-events": {
                "post": {
                    "operationId": "postTicketEvent",
                    "summary": "Report that a ticket closed, reopened or changed",
                    "parameters": [
                        {
                            "name": SIGNATURE_HEADER,
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                        },
                        {
                            "name": TIMESTAMP_HEADER,
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9]+$"},
                        },
                    ],  # fmt: skip
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/TicketEventIn"}
                            }
                        },
                    },
                    "responses": {
                        "201": {"description": "A new ticket was recorded."},
                        "200": {
                            "description": (
                                "Applied to an existing ticket (`updated`), already seen "
                                "(`duplicate`), or older than the ticket's state (`stale`)."
                            )
                        },
                        "400": _error("The body is not a JSON object."),
                        "401": _error("Missing or wrong signature, or stale timestamp."),
                        "409": _error(
                            "The `event_id` was received before with a different body "
                            "(`event_id_conflict`); the first event is kept."
                        ),
                        "413": _error("The body is too large."),
                        "422": _error("A field is missing or invalid; `fields` names each."),
                        "503": _error("The webhook secret is not configured."),
                    },
                }
            }
        },
        "components": {"schemas": components},
    }
