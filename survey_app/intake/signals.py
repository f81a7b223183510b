"""Signals intake sends, so other layers can react without ``survey_app`` importing them."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent after an applied ticket event changed a ticket, inside the same transaction
#: (before the caller commits). ``sender`` is the Flask app; keyword ``ticket``
#: (the :class:`~survey_app.models.Ticket`, flushed). ``analysis.sla`` stores the
#: ticket's SLA facts here; a receiver that raises fails the event.
ticket_changed = _signals.signal("ticket-changed")

#: The bulk form of ``ticket_changed``, sent by the file import (:mod:`.bulk`) once per
#: batch instead of once per ticket, inside the same transaction. ``sender`` is the
#: Flask app; keyword ``ticket_ids`` (list of int: tickets inserted or updated, flushed,
#: in the order the batch first changed them). A receiver of ``ticket_changed`` must
#: listen to this one too; ``analysis.sla`` stores the tickets' SLA facts with a few
#: queries here.
tickets_changed = _signals.signal("tickets-changed")
