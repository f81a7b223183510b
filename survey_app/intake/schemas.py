"""The ticket-event contract shared by the webhook and the file import.

One schema validates both, so a row of a CSV export and a webhook body obey
the same rules and produce the same errors (named by field path).
"""

from __future__ import annotations

import functools
import hashlib
import re
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Annotated, Any, Self, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.networks import validate_email
from sqlalchemy import String

from ..i18n import normalise_locale
from ..models import Channel, Customer, EventType, Priority, TicketStatus, Tier
from ..normalise import has_control_characters, identifier, whole_number

#: Timestamp layouts accepted besides ISO 8601 (common in helpdesk exports).
EXTRA_DATETIME_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
)


def _separators(text: str) -> tuple[int, int, int, int]:
    return text.count("/"), text.count("."), text.count("-"), text.count(":")


#: ``strptime`` matches these marks literally and no directive of the layouts reads one,
#: so a text with other counts cannot fit the layout: skipping it saves a failed parse
#: (most of a row's validation time when timestamps are ISO 8601).
_LAYOUT_SEPARATORS = {layout: _separators(layout) for layout in EXTRA_DATETIME_FORMATS}
#: The layouts above written with two-digit fields (ASCII digits): read by hand, what
#: ``strptime`` gives for them in a fraction of its time. Anything else (one-digit
#: fields, other digits, a value out of range) goes through ``strptime`` as before.
_PLAIN_LAYOUT = re.compile(
    r"([0-9]{4})([/.])([0-9]{2})\2([0-9]{2}) ([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?"
    r"|([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2})"
)

#: The start of an ISO 8601 time with seconds (pydantic reads it).
_ISO_WITH_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:")


def _plain_layout(text: str) -> datetime | None:
    """``text`` read with :data:`_PLAIN_LAYOUT`, or None (not that shape, or out of range)."""
    found = _PLAIN_LAYOUT.fullmatch(text)
    if found is None:
        return None
    year, _sep, month, day, hour, minute, second, *dashed = found.groups()
    if year is None:
        year, month, day, hour, minute = dashed
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None


TIER_ALIASES = {"normal": "standard", "regular": "standard", "普通": "standard", "vip": "vip"}
PRIORITY_ALIASES = {
    "1": "P1", "critical": "P1", "urgent": "P1", "紧急": "P1",
    "2": "P2", "high": "P2", "高": "P2",
    "3": "P3", "medium": "P3", "normal": "P3", "中": "P3",
    "4": "P4", "low": "P4", "低": "P4",
}  # fmt: skip

#: ``Customer.external_id`` holds :meth:`CustomerIn.identity`, so it must fit.
CUSTOMER_KEY_LENGTH: int = cast(String, Customer.__table__.c.external_id.type).length or 0


def _identifier(value: Any) -> Any:
    return identifier(value) if isinstance(value, str) else value


def _count(value: Any) -> Any:
    """Counts are whole numbers written with digits: ``1_0`` and ``10.5`` are refused."""
    return whole_number(value) if isinstance(value, str) else value


Text = Annotated[str, Field(min_length=1, max_length=200)]
#: An id from the helpdesk: NFKC, zero-width characters dropped (one ticket, one spelling).
Identifier = Annotated[str, BeforeValidator(_identifier), Field(min_length=1, max_length=200)]
Label = Annotated[str, Field(min_length=1, max_length=100)]


def parse_timestamp(
    value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> Any:
    """Accept ISO 8601 and a few export layouts; give naive times the import's zone.

    The webhook passes no zone, so a naive time there is refused. The zone is
    checked after parsing, so a naive ISO 8601 string is caught as well.
    """
    if isinstance(value, str):
        text = value.strip()
        value = _plain_layout(text) or _export_layout(text) or value
    value = handler(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        zone: tzinfo | None = (info.context or {}).get("naive_timezone")
        if zone is None:
            raise ValueError(
                "timestamp must include a time zone offset, e.g. 2026-11-01T09:30:00Z"
            )
        value = value.replace(tzinfo=zone)
    return value


def _export_layout(text: str) -> datetime | None:
    """``text`` read with the first of :data:`EXTRA_DATETIME_FORMATS` that fits, or None."""
    if _ISO_WITH_SECONDS.match(text):
        return None  # two dashes and two colons at least: the shape of none of them
    shape = _separators(text)
    for layout in EXTRA_DATETIME_FORMATS:
        if _LAYOUT_SEPARATORS[layout] != shape:
            continue
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    return None


@functools.lru_cache(maxsize=32_768)
def _normalised_email(value: str) -> str:
    return validate_email(value)[1]


if TYPE_CHECKING:
    KnownEmailStr = EmailStr
else:

    class KnownEmailStr(EmailStr):
        """``EmailStr`` that validates an address once: an import repeats a customer's
        address on each of their tickets, and checking one is a third of a row's
        validation. A refused address is checked again each time (same error)."""

        @classmethod
        def _validate(cls, input_value: str, /) -> str:
            return _normalised_email(input_value)


class _Model(BaseModel):
    model_config = ConfigDict(
        str_strip_whitespace=True,
        extra="ignore",
        coerce_numbers_to_str=True,
        use_enum_values=False,
    )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the class and its state, put back as they are: what pydantic's
        ``__getstate__`` and ``__setstate__`` do, in less time and fewer bytes (a large
        import's rows come from the validating process pickled: 21 -> 17 us a row to send,
        12.5 -> 11.8 to receive)."""
        return _unpickled, (
            type(self),
            self.__dict__,
            self.__pydantic_fields_set__,
            self.__pydantic_extra__,
            self.__pydantic_private__,
        )

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # One-line values only: CR/LF would split a mail header (a ticket id is in the
        # invitation's subject) and PostgreSQL text cannot hold NUL.
        if isinstance(value, str) and has_control_characters(value):
            if "\x00" in value:
                raise ValueError("text must not contain NUL characters")
            raise ValueError("text must not contain line breaks or other control characters")
        return value


def _unpickled(
    model: type[_Model],
    values: dict[str, Any],
    fields_set: set[str],
    extra: dict[str, Any] | None,
    private: dict[str, Any] | None,
) -> _Model:
    made = model.__new__(model)
    for name, value in (
        ("__dict__", values),
        ("__pydantic_fields_set__", fields_set),
        ("__pydantic_extra__", extra),
        ("__pydantic_private__", private),
    ):
        object.__setattr__(made, name, value)
    return made


class CustomerIn(_Model):
    """The customer who raised the ticket. At least one of external_id, email, phone."""

    external_id: Identifier | None = None
    name: Annotated[str, Field(max_length=200)] | None = None
    email: KnownEmailStr | None = None
    phone: Annotated[str, Field(max_length=40, pattern=r"^\+?[0-9][0-9 ()\-]{4,38}$")] | None = (
        None
    )
    language: str | None = None
    tier: Tier = Tier.STANDARD
    is_new: bool | None = None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None:
            return None
        locale = normalise_locale(value)
        if locale is None:
            raise ValueError("unsupported language; use zh (zh-CN, zh-Hans) or en")
        return locale

    @field_validator("tier", mode="before")
    @classmethod
    def _tier(cls, value: Any) -> Any:
        if isinstance(value, str):
            return TIER_ALIASES.get(value.strip().lower(), value.strip().lower())
        return value

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if not (self.external_id or self.email or self.phone):
            raise ValueError("customer needs at least one of external_id, email or phone")
        if len(self.identity()) > CUSTOMER_KEY_LENGTH:
            raise ValueError("e-mail is too long to identify the customer; send external_id")
        return self

    def identity(self) -> str:
        """The key a customer is matched on: external id, else e-mail, else phone."""
        if self.external_id:
            return self.external_id
        if self.email:
            return f"email:{self.email.lower()}"
        return f"phone:{self.phone}"


class TicketIn(_Model):
    """A ticket as the helpdesk knows it."""

    external_id: Identifier
    source: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")] = (
        "helpdesk"
    )
    subject: Annotated[str, Field(max_length=500)] | None = None
    channel: Channel
    priority: Priority
    category: Label | None = None
    product_line: Label | None = None
    region: Label | None = None
    team: Label | None = None
    agent: Text | None = None
    status: TicketStatus | None = None
    created_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: Annotated[int, BeforeValidator(_count), Field(ge=0, le=1000)] | None = None
    contact_count: Annotated[int, BeforeValidator(_count), Field(ge=1, le=1000)] | None = None

    _timestamps = field_validator(
        "created_at", "first_response_at", "resolved_at", "closed_at", mode="wrap"
    )(parse_timestamp)

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: Any) -> Any:
        return (
            value.strip().lower().replace("-", "").replace(" ", "_")
            if isinstance(value, str)
            else value
        )

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(int(value))
        if isinstance(value, str):
            text = value.strip()
            return PRIORITY_ALIASES.get(text.lower(), text.upper())
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _chronology(self) -> Self:
        for name in ("first_response_at", "resolved_at", "closed_at"):
            moment = getattr(self, name)
            if moment is not None and moment < self.created_at:
                raise ValueError(f"{name} is before created_at")
        if self.resolved_at and self.closed_at and self.closed_at < self.resolved_at:
            raise ValueError("closed_at is before resolved_at")
        return self


class TicketEventIn(_Model):
    """``POST /api/v1/ticket-events`` body, and one row of an import."""

    event: EventType
    event_id: (
        Annotated[str, BeforeValidator(_identifier), Field(min_length=1, max_length=150)] | None
    ) = None
    occurred_at: datetime | None = None
    ticket: TicketIn
    customer: CustomerIn

    _occurred = field_validator("occurred_at", mode="wrap")(parse_timestamp)

    @field_validator("event", mode="before")
    @classmethod
    def _event(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def happened_at(self, now: datetime) -> datetime:
        """When the change happened at the helpdesk, which orders events per ticket.

        ``occurred_at`` if sent; for ``closed``, the ticket's ``closed_at`` (so a
        later import of the same export lines up with webhook events); else ``now``.
        """
        if self.occurred_at is not None:
            return self.occurred_at
        if self.event == EventType.CLOSED and self.ticket.closed_at is not None:
            return self.ticket.closed_at
        return now

    def idempotency_key(self, body: bytes) -> str:
        """``event:<source>:<event_id>`` when an id is sent, else a hash of the exact body."""
        if self.event_id:
            return f"event:{self.ticket.source}:{self.event_id}"
        return "body:" + hashlib.sha256(body).hexdigest()

    @field_validator("ticket")
    @classmethod
    def _closed_needs_time(cls, ticket: TicketIn, info: ValidationInfo) -> TicketIn:
        if info.data.get("event") == EventType.CLOSED and ticket.closed_at is None:
            raise ValueError("closed_at is required for a closed event")
        return ticket


def error_list(exc: Any) -> list[dict[str, str]]:
    """Flatten a ValidationError into ``[{"field": "ticket.priority", "message": ...}]``."""
    errors = []
    for item in exc.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        errors.append({"field": path or "body", "message": message})
    return errors
