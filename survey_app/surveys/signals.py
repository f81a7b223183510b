"""Signals of the survey layer: ``analysis`` acts on them, ``survey_app`` never imports it."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent after a customer's response is committed. ``sender`` is the Flask app;
#: keyword ``response_id`` (int). Receivers run inside the customer's request:
#: they must only enqueue work (sentiment scoring never runs here).
response_submitted = _signals.signal("response-submitted")
