"""Answers kept for the rest of one read-only request.

A dashboard page asks the same question several times: the overview cards, the breakdown,
the trend and the p-chart each need the scope's totals, and the trend and the p-chart the
same weekly sums. :func:`request_memo` gives such reads a dict that lives as long as the
current ``GET`` (or ``HEAD``) request, so each is asked of the database once per page.

Only those requests: a ``POST`` may write between two reads, which must then differ. Not
``flask.g`` either: ``g`` belongs to the application context, which a request shares with
an enclosing one (a shell, a test, a benchmark), so answers kept there would outlive the
request and its data.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import has_request_context, request

_T = TypeVar("_T")
_ENVIRON_KEY = "closedloop.memo"
_READ_ONLY = frozenset({"GET", "HEAD"})


def request_memo(name: str) -> dict[Hashable, Any] | None:
    """The dict ``name`` of the current read-only request (empty at first); None outside a
    request or in one that may write."""
    if not has_request_context() or request.method not in _READ_ONLY:
        return None
    memos: dict[str, dict[Hashable, Any]] = request.environ.setdefault(_ENVIRON_KEY, {})
    return memos.setdefault(name, {})


def remembered(name: str, key: Hashable, compute: Callable[[], _T]) -> _T:
    """``compute()``, once per read-only request and ``(name, key)``; every call outside
    such a request computes."""
    memo = request_memo(name)
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    result: _T = memo[key]
    return result
