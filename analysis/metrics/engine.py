"""Runs the KPI queries: one aggregate query per population, grouped in SQL, finished in Python.

The rows come from the raw populations (:mod:`analysis.metrics.populations`) or,
for the views they serve, from the daily roll-ups (:mod:`analysis.metrics.rollup`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy.sql.elements import ColumnElement

from . import indexes  # noqa: F401  (the covering indexes these queries rely on)
from .definitions import (
    ALL_KPIS,
    DEFINITIONS_VERSION,
    DURATION_STATS,
    DURATIONS,
    INVITATION_KPIS,
    PERCENTILES,
    RESPONSE_KPIS,
    SLA_KPIS,
    TICKET_KPIS,
    Kpi,
    duration_kpis,
    response_kpis,
    response_rate,
    sla_kpis,
    ticket_kpis,
)
from .populations import (
    duration_values,
    grouped,
    percentile_rows,
    population_aggregates,
)
from .scope import DIMENSIONS, Grain, Scope, time_buckets

#: A group's key: (value of the group_by dimension or None, period label or None).
GroupKey = tuple[Any, str | None]


@dataclasses.dataclass(frozen=True)
class GroupResult:
    """The KPIs of one group: ``key`` names its dimension value and/or its period."""

    key: dict[str, Any]
    kpis: dict[str, Kpi]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "kpis": {name: kpi.to_json() for name, kpi in self.kpis.items()}}


@dataclasses.dataclass(frozen=True)
class MetricsResult:
    """What :func:`compute` returns: the KPIs over the whole scope, and per group if asked."""

    scope: Scope
    group_by: str | None
    grain: Grain | None
    min_sample: int
    overall: dict[str, Kpi]
    groups: list[GroupResult]
    definitions_version: str = DEFINITIONS_VERSION

    def to_json(self) -> dict[str, Any]:
        """The documented JSON answer of the API and ``closedloop metrics --json``."""
        return {
            "definitions_version": self.definitions_version,
            "scope": self.scope.to_json(),
            "group_by": self.group_by,
            "grain": self.grain,
            "min_sample": self.min_sample,
            "overall": {name: kpi.to_json() for name, kpi in self.overall.items()},
            "groups": [group.to_json() for group in self.groups],
        }


def compute(
    scope: Scope,
    group_by: str | None = None,
    grain: Grain | None = None,
    *,
    metrics: Iterable[str] | None = None,
    min_sample: int | None = None,
    alone: bool = False,
) -> MetricsResult:
    """Compute KPIs over ``scope``: overall, and per ``group_by`` value and/or ``grain`` bucket.

    ``metrics`` restricts the answer (and the queries run) to those KPI names
    (default: every KPI of :data:`~analysis.metrics.definitions.ALL_KPIS`);
    ``min_sample`` defaults to the ``METRICS_MIN_SAMPLE`` setting. With a
    ``grain`` every bucket of the period is listed, empty ones with n = 0.
    ``alone``: no other read of the request groups the scope so (the p-chart's weeks on
    a page whose trend is by month), so the roll-up reads of the groups sum only these
    KPIs' columns instead of every column for other reads to share.
    Refuses (ValueError) an unknown dimension, grain or KPI name.
    """
    names = _requested(metrics)
    if group_by is not None and group_by not in DIMENSIONS:
        raise ValueError(f"unknown group_by {group_by!r}")
    if grain is not None and grain not in ("day", "week", "month"):
        raise ValueError(f"unknown grain {grain!r}")
    if min_sample is None:
        min_sample = int(current_app.config["METRICS_MIN_SAMPLE"])
    groups: list[GroupResult] = []
    if group_by is not None or grain is not None:
        # The groups first: on the roll-ups the overall read may then sum their rows.
        found = _kpis_by_group(scope, group_by, grain, names, min_sample, alone=alone)
        keys = set(found)
        if grain is not None:
            values = {value for value, _period in keys} or ({None} if group_by is None else set())
            keys = {(v, label) for v in values for label, _b, _e in time_buckets(scope, grain)}
        for key in sorted(keys, key=_sort_key):
            kpis = found.get(key) or _empty(names, min_sample)
            groups.append(GroupResult(_key_json(key, group_by, grain), kpis))
    overall = _kpis_by_group(scope, None, None, names, min_sample)[(None, None)]
    return MetricsResult(scope, group_by, grain, min_sample, overall, groups)


def _requested(metrics: Iterable[str] | None) -> list[str]:
    if metrics is None:
        return list(ALL_KPIS)
    wanted = set(metrics)
    unknown = wanted - set(ALL_KPIS)
    if unknown:
        raise ValueError(f"unknown KPI {sorted(unknown)[0]!r}")
    return [name for name in ALL_KPIS if name in wanted]


def _sort_key(key: GroupKey) -> tuple[bool, str, str]:
    value, period = key
    return (value is None, str(getattr(value, "value", value)), period or "")


def _key_json(key: GroupKey, group_by: str | None, grain: Grain | None) -> dict[str, Any]:
    value, period = key
    body: dict[str, Any] = {}
    if group_by is not None:
        body[group_by] = getattr(value, "value", value)
    if grain is not None:
        body["period"] = period
    return body


def _empty(names: Sequence[str], min_sample: int) -> dict[str, Kpi]:
    return _finish(names, {}, min_sample)


# --- putting it together -----------------------------------------------------------------------


def _key(row: Mapping[str, Any]) -> GroupKey:
    value = row["_group"]
    return (getattr(value, "value", value), row["_period"])


#: The populations behind each group of KPIs.
_POPULATIONS = (
    ("responses", RESPONSE_KPIS),
    ("sent", INVITATION_KPIS),
    ("skipped", INVITATION_KPIS),
    ("tickets", TICKET_KPIS),
    ("sla", SLA_KPIS),
)


def _kpis_by_group(
    scope: Scope,
    group_by: str | None,
    grain: Grain | None,
    names: Sequence[str],
    min_sample: int,
    *,
    alone: bool = False,
) -> dict[GroupKey, dict[str, Kpi]]:
    from . import rollup

    wanted = set(names)
    found: dict[str, dict[GroupKey, Any]] = defaultdict(dict)
    plan = rollup.plan(scope, group_by)
    for kind, kpis in _POPULATIONS:
        if not wanted & set(kpis):
            continue
        aggregates, extra_keys, where = population_aggregates(kind, names)

        def raw(
            more: Sequence[ColumnElement[bool]] = (),
            kind: str = kind,
            aggregates: Any = aggregates,
            extra_keys: Any = extra_keys,
            where: Any = where,
        ) -> list[dict[str, Any]]:
            return grouped(
                kind,
                scope,
                group_by,
                grain,
                lambda p: aggregates,
                extra_keys=extra_keys,
                where=[*where, *more],
            )

        rows = (
            raw()
            if plan is None
            else rollup.grouped_rows(
                plan, kind, group_by, grain, raw, needed=[a.name for a in aggregates], alone=alone
            )
        )
        for row in rows:
            if kind == "skipped":
                reasons = found["skipped"].setdefault(_key(row), {})
                reasons[getattr(row["reason"], "value", row["reason"])] = int(row["count"])
            elif kind == "sla":
                priority = getattr(row["priority"], "value", row["priority"])
                found["sla"].setdefault(_key(row), {})[priority] = row
            else:
                found[kind][_key(row)] = row
    durations = [d for d in DURATIONS if any(f"{d}_{stat}" in wanted for stat in DURATION_STATS)]
    if plan is None:
        by_duration = {d: percentile_rows(d, scope, group_by, grain, names) for d in durations}
    elif durations:

        def values(
            duration: str, more: Sequence[ColumnElement[bool]]
        ) -> list[tuple[Any, datetime, int]]:
            return duration_values(duration, scope, group_by, more)

        by_duration = rollup.percentile_rows(plan, durations, group_by, grain, values)
    else:
        by_duration = {}
    for duration, rows in by_duration.items():
        for row in rows:
            found[duration][_key(row)] = row

    if group_by is None and grain is None:
        keys: set[GroupKey] = {(None, None)}
    else:
        keys = set().union(*(rows.keys() for rows in found.values()))
    return {
        key: _finish(names, {kind: rows.get(key) for kind, rows in found.items()}, min_sample)
        for key in keys
    }


def response_sums(scope: Scope, grain: Grain | None = None) -> dict[str | None, dict[str, int]]:
    """Every response aggregate (the KPIs' counts and sums and the dashboard's distribution
    sums of :mod:`analysis.metrics.distributions`) over ``scope``, per ``grain`` bucket
    (key: the bucket's label; None without a grain); buckets without responses are absent.
    From the roll-ups when they serve the scope, else from the raw rows."""
    from . import rollup

    aggregates, _keys, _where = population_aggregates("responses", distributions=True)
    names = [column.name for column in aggregates]

    def raw(more: Sequence[ColumnElement[bool]] = ()) -> list[dict[str, Any]]:
        return grouped("responses", scope, None, grain, lambda p: aggregates, where=more)

    plan = rollup.plan(scope, None)
    rows = raw() if plan is None else rollup.grouped_rows(plan, "responses", None, grain, raw)
    return {row["_period"]: {name: int(row.get(name) or 0) for name in names} for row in rows}


def mention_sums(kind: str, scope: Scope) -> dict[str, dict[str, int]]:
    """The sums of ``kind`` (``"keywords"`` or ``"aspects"``, :data:`~.populations.MENTIONS`)
    over ``scope`` per keyword or aspect: for a keyword the responses mentioning it
    (``count``) and the negative ones among them (``negative``); for an aspect its
    ``mentions``, ``positive`` and ``negative``. From the roll-ups when they serve the scope,
    else from the raw rows; keywords or aspects without a mention are absent."""
    from . import rollup
    from .rollup_tables import EXTRA_KEYS

    aggregates, extra_keys, where = population_aggregates(kind)
    names = [column.name for column in aggregates]
    key = EXTRA_KEYS[kind]

    def raw(more: Sequence[ColumnElement[bool]] = ()) -> list[dict[str, Any]]:
        return grouped(
            kind,
            scope,
            None,
            None,
            lambda p: aggregates,
            extra_keys=extra_keys,
            where=[*where, *more],
        )

    plan = rollup.plan(scope, None)
    rows = raw() if plan is None else rollup.grouped_rows(plan, kind, None, None, raw)
    return {str(row[key]): {name: int(row.get(name) or 0) for name in names} for row in rows}


RESPONSE_SUM_NAMES = tuple(
    column.name for column in population_aggregates("responses", distributions=True)[0]
)


def _finish(names: Sequence[str], rows: Mapping[str, Any], min_sample: int) -> dict[str, Kpi]:
    """The KPIs ``names`` of one group from its aggregate rows (missing rows: no data)."""
    wanted = set(names)
    kpis: dict[str, Kpi] = {}
    if wanted & set(RESPONSE_KPIS):
        kpis.update(response_kpis(rows.get("responses") or {}, min_sample))
    if wanted & set(INVITATION_KPIS):
        sent = rows.get("sent") or {}
        kpis.update(
            response_rate(
                int(sent.get("answered") or 0),
                int(sent.get("sent") or 0),
                rows.get("skipped") or {},
                min_sample,
            )
        )
    if wanted & set(TICKET_KPIS):
        kpis.update(ticket_kpis(rows.get("tickets") or {}, min_sample))
    if wanted & set(SLA_KPIS):
        kpis.update(sla_kpis(rows.get("sla") or {}, min_sample))
    for duration in DURATIONS:
        row = rows.get(duration)
        if row is None:
            kpis.update(duration_kpis(duration, 0, 0, {}, min_sample))
            continue
        ranks = {
            name: (row[f"{name}_low"], row[f"{name}_high"]) for name, _num, _den in PERCENTILES
        }
        kpis.update(duration_kpis(duration, int(row["n"]), int(row["total"]), ranks, min_sample))
    return {name: kpis[name] for name in names}
