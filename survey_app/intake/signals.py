"""Signals intake sends, so other layers can react without ``survey_app`` importing them."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent after an applied ticket event changed a ticket, inside the same transaction
#: (before the caller commits). ``sender`` is the Flask app; keyword ``ticket``
#: (the :class:`~survey_app.models.Ticket`, flushed). ``analysis.sla`` stores the
#: ticket's SLA facts here; a receiver that raises fails the event.
ticket_changed = _signals.signal("ticket-changed")
