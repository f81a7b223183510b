"""Signals the analysis layer sends; ``improvement`` subscribes, ``analysis`` never imports it."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent after a response's sentiment, keywords, problem type and contradiction flag are
#: committed, once per analysis (a rescore sends it again). ``sender`` is the Flask app;
#: keyword ``response_id`` (int). Receivers run in the analysing process (worker, CLI or
#: the in-process scheduler), never inside a customer's request, with an app context.
response_analysed = _signals.signal("response-analysed")
