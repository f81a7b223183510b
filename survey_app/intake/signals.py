"""Signals intake sends, so other layers can react without ``survey_app`` importing them."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from blinker import Namespace

from ..models import Priority, Tier

_signals = Namespace()

#: Sent after an applied ticket event changed a ticket, inside the same transaction
#: (before the caller commits). ``sender`` is the Flask app; keyword ``ticket``
#: (the :class:`~survey_app.models.Ticket`, flushed). ``analysis.sla`` stores the
#: ticket's SLA facts here; a receiver that raises fails the event.
ticket_changed = _signals.signal("ticket-changed")

#: The bulk form of ``ticket_changed``, sent by the file import (:mod:`.bulk`) once per
#: batch instead of once per ticket, inside the same transaction. ``sender`` is the
#: Flask app; keyword ``ticket_ids`` (list of int: tickets inserted or updated, flushed,
#: in the order the batch first changed them) and ``tickets`` (list of
#: :class:`ChangedTicket`, the same tickets in the same order, with the values they
#: were written with, so a receiver need not read them back). A receiver of
#: ``ticket_changed`` must listen to this one too; ``analysis.sla`` stores the tickets'
#: SLA facts here.
tickets_changed = _signals.signal("tickets-changed")


@dataclasses.dataclass(frozen=True, slots=True)
class ChangedTicket:
    """A ticket as a batch of :data:`tickets_changed` wrote it: what its SLA depends on."""

    id: int
    priority: Priority
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    #: Its customer's tier.
    tier: Tier
    #: Inserted by this batch (so nothing was stored about it before).
    new: bool
