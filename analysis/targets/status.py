"""Grading a KPI value against a target, and finding the target that applies to a scope.

Direction: every KPI is either *higher is better* (CSAT, NPS, CES, response
rate, FCR) or *lower is better* (SLA breach rate, reopen rate, contacts per
ticket, first-response and resolution times); :func:`direction_of` derives it
from the name, so nobody types it.

Gap: how far the value is on the bad side of the target, in the KPI's unit:
``gap = target − value`` when higher is better, ``gap = value − target`` when
lower is better (rounded to 9 decimals, so 85.0 computed as 84.99999999999999
is on target). A negative gap is better than the target.

Grade, with thresholds ``yellow < orange < red`` (gaps):
``red`` if gap > red, else ``orange`` if gap > orange, else ``yellow`` if
gap > yellow, else ``ok``. "Greater than" is strict: a value exactly at a
threshold stays at the milder level, as exactly on target is met. With
``yellow = -1`` a CSAT % target of 85 turns yellow below 86 (approaching);
with ``red = 0`` an SLA breach rate target of 5 turns red above 5 %.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from flask import g, has_app_context
from sqlalchemy import select

from analysis.metrics import DIMENSIONS, Kpi, Scope
from analysis.metrics.catalog import Direction, direction_of
from survey_app.extensions import db

from .models import KpiTarget, Level

StatusLevel = Literal["ok", "yellow", "orange", "red", "no_target", "low_confidence"]

_CACHE = "closedloop_kpi_targets"


def gap_of(kpi_name: str, value: float, target: float) -> float:
    """The distance of ``value`` on the bad side of ``target`` (negative: better than it)."""
    raw = target - value if direction_of(kpi_name) == "higher" else value - target
    return round(raw, 9) + 0.0  # + 0.0 turns -0.0 into 0.0


def grade(gap: float, yellow: float, orange: float, red: float) -> Level:
    """The level of a gap: red if gap > red, orange if > orange, yellow if > yellow, else ok."""
    if gap > red:
        return Level.RED
    if gap > orange:
        return Level.ORANGE
    if gap > yellow:
        return Level.YELLOW
    return Level.OK


@dataclasses.dataclass(frozen=True)
class Status:
    """A KPI's status colour against its target.

    ``level``: ok | yellow | orange | red, or ``no_target`` (no target applies;
    ``target`` and ``gap`` are None) or ``low_confidence`` (a target applies
    but n is below the minimum or there is no value: ``target`` is set, ``gap``
    is None — not graded, never alerted). ``target_id`` is the applied target's id.
    """

    level: StatusLevel
    target: float | None = None
    gap: float | None = None
    target_id: int | None = None
    direction: Direction | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def evaluate(target: KpiTarget, kpi: Kpi) -> Status:
    """Grade ``kpi`` against ``target``: ``low_confidence`` when the KPI is low-confidence
    or has no value, else the graded level with its gap."""
    direction = direction_of(target.kpi)
    if kpi.low_confidence or kpi.value is None:
        return Status("low_confidence", target.target, None, target.id, direction)
    gap = gap_of(target.kpi, kpi.value, target.target)
    level = grade(gap, target.yellow, target.orange, target.red)
    return Status(level.value, target.target, gap, target.id, direction)


def scope_filters_json(scope: Scope) -> dict[str, Any]:
    """The scope's active filters as stored on targets (enum members as their values)."""
    return dict(scope.to_json()["filters"])


def target_applies(filters: Mapping[str, Any], scope_filters: Mapping[str, Any]) -> bool:
    """Whether a target with ``filters`` covers a scope with ``scope_filters``: every
    dimension the target restricts is restricted by the scope to values the target
    accepts (``customer_is_new``: the same boolean). An organisation-wide target ({})
    covers every scope."""
    for name, accepted in filters.items():
        if name not in scope_filters:
            return False
        wanted = scope_filters[name]
        if name == "customer_is_new":
            if wanted != accepted:
                return False
        elif not set(wanted) <= set(accepted):
            return False
    return True


def most_specific(targets: Iterable[KpiTarget], scope: Scope) -> KpiTarget | None:
    """The applicable target restricting the most dimensions (ties: the oldest id)."""
    scope_filters = scope_filters_json(scope)
    applicable = [t for t in targets if target_applies(t.filters or {}, scope_filters)]
    if not applicable:
        return None
    return min(applicable, key=lambda t: (-len(t.filters or {}), t.id))


def _targets_for(kpi_name: str) -> Sequence[KpiTarget]:
    if not has_app_context():
        raise RuntimeError("status_for needs an application context")
    cache: dict[str, list[KpiTarget]] | None = g.get(_CACHE)
    if cache is None:
        cache = {}
        for target in db.session.scalars(select(KpiTarget).order_by(KpiTarget.id)):
            cache.setdefault(target.kpi, []).append(target)
        setattr(g, _CACHE, cache)
    return cache.get(kpi_name, [])


def forget_cached_targets() -> None:
    """Drop the targets :func:`status_for` loaded in this app context (after a change)."""
    if has_app_context():
        g.pop(_CACHE, None)


def status_for(kpi_name: str, kpi: Kpi, scope: Scope) -> Status:
    """The status colour of ``kpi`` (a KPI named ``kpi_name`` computed over ``scope``).

    Uses the most specific target for that KPI whose filters cover the scope's
    (:func:`target_applies`; the scope's period is irrelevant). Targets are
    loaded once per app context (one query per request, however many cards and
    table rows ask). Returns ``no_target``, ``low_confidence`` or the graded
    level (:func:`grade`). Refuses (ValueError) an unknown KPI name.
    """
    direction = direction_of(kpi_name)
    target = most_specific(_targets_for(kpi_name), scope)
    if target is None:
        return Status("no_target", direction=direction)
    return evaluate(target, kpi)


def check_filters(filters: Mapping[str, Any]) -> list[str]:
    """Problems with a target's filters (unknown dimensions, empty or bad values)."""
    problems: list[str] = []
    for name, values in filters.items():
        if name not in DIMENSIONS:
            problems.append(f"unknown dimension {name!r}")
        elif name == "customer_is_new":
            if not isinstance(values, bool):
                problems.append("customer_is_new must be true or false")
        elif not isinstance(values, list) or not values:
            problems.append(f"{name} must be a non-empty list")
    return problems
