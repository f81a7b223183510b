"""Answers kept for one read-only request (:mod:`survey_app.memo`)."""

from __future__ import annotations

from flask import Flask

from survey_app.memo import remembered, request_memo


class Counter:
    """A computation that answers how many times it has run."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_outside_a_request_every_call_computes(app: Flask) -> None:
    compute = Counter()
    assert request_memo("test") is None
    assert remembered("test", "key", compute) == 1
    assert remembered("test", "key", compute) == 2
    assert compute.calls == 2


def test_a_get_request_computes_each_key_once(app: Flask) -> None:
    compute = Counter()
    with app.test_request_context("/dashboards", method="GET"):
        assert remembered("test", "a", compute) == 1
        assert remembered("test", "a", compute) == 1
        assert remembered("test", "b", compute) == 2
        assert remembered("other", "a", compute) == 3
        assert request_memo("test") == {"a": 1, "b": 2}
    assert compute.calls == 3


def test_a_request_that_may_write_computes_every_time(app: Flask) -> None:
    compute = Counter()
    with app.test_request_context("/pdca/1/measure", method="POST"):
        assert request_memo("test") is None
        remembered("test", "a", compute)
        remembered("test", "a", compute)
    assert compute.calls == 2


def test_requests_in_one_application_context_do_not_share(app: Flask) -> None:
    """A shell, a test or a benchmark holds one application context around many requests:
    each request still starts with nothing kept (``flask.g`` would keep it)."""
    compute = Counter()
    with app.app_context():
        for expected in (1, 2):
            with app.test_request_context("/dashboards"):
                assert remembered("test", "a", compute) == expected
                assert remembered("test", "a", compute) == expected
    assert compute.calls == 2
