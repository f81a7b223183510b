"""KPI roll-ups: the fast path equals the raw rows, for random data, scopes, filters and groupings.

Every comparison computes the same view twice: once from the raw rows (the roll-ups switched off
by making :func:`analysis.metrics.rollup.plan` answer None) and once as the product does. The
KPIs are compared exactly (``Kpi`` equality: values, n, intervals, counts), not rounded.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import event, func, insert, select, text, update

from analysis.dashboards import queries
from analysis.dashboards.heatmap import frt_heatmap, raw_frt_heatmap
from analysis.dashboards.queries import (
    aspect_agreement,
    filter_options,
    response_conditions,
    responses_page,
    responses_query,
    top_negative_themes,
)
from analysis.metrics import DIMENSIONS, Scope, compute, rollup, rollup_plan, rollup_read
from analysis.metrics.definitions import OVERVIEW_KPIS
from analysis.metrics.engine import mention_sums, response_sums
from analysis.metrics.rollup_build import piece_runs
from analysis.metrics.rollup_tables import (
    AGGREGATES,
    COMBINED,
    MONTH_KEYED,
    MONTH_PAIRED,
    MONTH_PAIRS,
    MONTHLY,
    PIECE_DIMENSIONS,
    ROLLUP_TABLES,
    VERSIONED,
    WEEKLY,
    WITH_PIECES,
    DirtyInstant,
    RollupState,
    built_indexes,
    pair_slice,
    piece_end,
    piece_start,
)
from analysis.text.models import (
    ResponseKeyword,
    replace_response_aspects,
    replace_response_keywords,
)
from survey_app.extensions import db
from survey_app.models import Channel, Customer, Priority, Ticket, Tier
from survey_app.surveys.models import SentimentLabel, SurveyResponse
from tests.conftest import is_postgres
from tests.kpi_data import GENERATED_START, KpiData, generate

#: SQL semantics (triggers, dates, casts): runs on SQLite and PostgreSQL.
pytestmark = pytest.mark.db

ZONE = "Asia/Shanghai"
FIRST_DAY = date(2025, 8, 24)
LAST_DAY = date(2025, 10, 20)


@pytest.fixture
def data(app) -> KpiData:
    app.config["METRICS_TIMEZONE"] = ZONE
    return KpiData()


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``raw(view)`` computes ``view`` from the raw rows only."""
    original = rollup.plan

    def compute_raw(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(rollup, "plan", lambda scope, group_by: None)
        try:
            return compute(*args, **kwargs)
        finally:
            monkeypatch.setattr(rollup, "plan", original)

    yield compute_raw


def _values(dimension: str) -> list[Any]:
    """Filter values to pick from, including ones no row has."""
    return {
        "team": ["Frontline", "Backline", "Nobody"],
        "agent": ["王芳", "Li Lei"],
        "channel": list(Channel)[:3],
        "priority": list(Priority),
        "product_line": ["云存储", "Mail"],
        "region": ["华东", "华南"],
        "customer_tier": list(Tier),
        "customer_is_new": [True, False],
        "template_version": [1, 2, 99],
    }[dimension]


def random_view(rng: random.Random, versions: list[int]) -> dict[str, Any]:
    """A random scope (period, filters on none, one or several dimensions), group_by and grain."""
    start = FIRST_DAY + timedelta(days=rng.randrange(0, 50))
    end = min(LAST_DAY, start + timedelta(days=rng.choice((0, 1, 6, 13, 30, 56))))
    if rng.random() < 0.3:  # several of the dimensions the combined slices keep
        dimensions = rng.sample((*COMBINED, "template_version"), rng.randint(2, 3))
    else:
        dimensions = [d for d in (rng.choice((None, *DIMENSIONS)),) if d is not None]
    group_by = rng.choice(dimensions) if dimensions and rng.random() < 0.6 else None
    filters: dict[str, Any] = {}
    for dimension in dimensions:
        if dimension == group_by and rng.random() < 0.5:
            continue
        values = _values(dimension)
        if dimension == "template_version":
            values = [*versions, 99]
        if dimension == "customer_is_new":
            filters[dimension] = rng.choice(values)
        else:
            filters[dimension] = tuple(rng.sample(values, rng.randint(1, min(2, len(values)))))
    grain = rng.choice((None, None, "day", "week", "month"))
    scope = Scope(start=start, end=end, timezone=ZONE, **filters)
    return {"scope": scope, "group_by": group_by, "grain": grain}


def assert_same(fast: Any, slow: Any) -> None:
    assert fast.overall == slow.overall
    assert [g.key for g in fast.groups] == [g.key for g in slow.groups]
    for mine, theirs in zip(fast.groups, slow.groups, strict=True):
        assert mine.kpis == theirs.kpis, mine.key


def _versions(data: KpiData) -> list[int]:
    return [version.id for version in data.versions]


def _invited_twice(data: KpiData, days: int, team: str, channel: str) -> None:
    """A ticket closed, reopened and closed again, invited with two template versions."""
    ticket = data.ticket(
        created_at=GENERATED_START + timedelta(days=days),
        first_response_after=timedelta(minutes=20 + days),
        resolved_after=timedelta(hours=days),
        closed_after=timedelta(hours=days + 1),
        team=team,
        channel=channel,
        reopen_count=1,
    )
    data.response(ticket, submitted_at=ticket.closed_at + timedelta(hours=2), version=1, nps=9)
    data.invitation(ticket, sent_at=ticket.closed_at + timedelta(hours=5), version=2)


def _answered_on(data: KpiData, day: date) -> None:
    """A Frontline chat ticket created and answered (NPS 3) on ``day``, after the build."""
    created = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=3)
    ticket = data.ticket(team="Frontline", channel="chat", created_at=created)
    data.response(ticket, submitted_at=created + timedelta(hours=1), nps=3)
    db.session.commit()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_equals_raw_rows_for_random_views(data, raw, seed):
    generate(data, seed=seed, count=220)
    _invited_twice(data, 5 + seed, "Frontline", "chat")
    _invited_twice(data, 20 + seed, "Backline", "phone")
    db.session.commit()
    assert rollup.rebuild() > 40
    rng = random.Random(seed)
    served = 0
    for _ in range(40):
        view = random_view(rng, _versions(data))
        served += rollup.plan(view["scope"], view["group_by"]) is not None
        assert_same(compute(**view), raw(**view))
    assert served == 40  # every view above is one the roll-ups serve


@pytest.mark.parametrize("seed", [4])
def test_a_page_shares_and_narrows_its_reads_and_still_equals_raw_rows(
    app, data, raw, monkeypatch, seed
):
    """Within one read-only request an ungrouped read of the combinations sums a grouped
    read's rows, the grains share one read by day, and the reads seek to the entries their
    filters accept (``_seeks``): the KPIs stay those of the raw rows, with dirty days too."""
    generate(data, seed=seed, count=220)
    _invited_twice(data, 5 + seed, "Frontline", "chat")
    db.session.commit()
    rollup.rebuild()
    narrowed: list[int] = []
    seeks = rollup.seek_conditions

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = seeks(*args, **kwargs)
        narrowed.append(found is not None)
        return found

    monkeypatch.setattr(rollup, "seek_conditions", counted)
    shared: list[bool] = []
    share = rollup.shared_rows

    def recorded(*args: Any, **kwargs: Any) -> Any:
        rows, regrouped = share(*args, **kwargs)
        shared.append(regrouped)
        return rows, regrouped

    monkeypatch.setattr(rollup, "shared_rows", recorded)
    rng = random.Random(seed)
    for _round in range(2):
        with app.test_request_context("/dashboards"):  # a GET: reads are remembered
            for _ in range(20):
                view = random_view(rng, _versions(data))
                scope = view["scope"]
                if len(scope.filters()) < 3 and rng.random() < 0.7:  # a page's combinations
                    scope = dataclasses.replace(scope, priority=(Priority.P2,), region=("华东",))
                    view = {**view, "scope": scope, "group_by": view["group_by"] or "team"}
                assert_same(compute(**view), raw(**view))
                for grain in (None, "week", "month"):  # the page's other reads of its scope
                    assert_same(compute(scope, grain=grain), raw(scope, grain=grain))
        # Writes after the build: their days are read raw beside the shared reads.
        for response in db.session.scalars(select(SurveyResponse).limit(15)):
            response.nps = 0
        db.session.commit()
    assert any(narrowed)
    assert any(shared)


def test_a_grouped_read_is_made_by_day_only_when_the_pages_other_reads_can_share_it(
    app, data, raw
):
    """A read of the combinations grouped by a dimension is made by day (and summed into each
    grain) only when the page's reads without the grouping read the same slice with the same
    use of the week pieces; otherwise by its own grain. The KPIs are the raw rows' either way."""
    generate(data, seed=3, count=160)
    db.session.commit()
    rollup.rebuild()
    start, end = GENERATED_START.date(), GENERATED_START.date() + timedelta(days=40)
    three = Scope(
        start=start, end=end, team=("Frontline",), region=("华东",), priority=(Priority.P2,)
    )
    two = Scope(start=start, end=end, team=("Frontline",), region=("华东",))

    def shareable(scope: Scope, group_by: str, kind: str) -> bool:
        plan = rollup.plan(scope, group_by)
        assert plan is not None
        return rollup_plan.shareable(plan, kind)

    assert shareable(three, "channel", "responses")  # the cards read the same combinations
    assert not shareable(three, "agent", "responses")  # they read the pieces, without agents
    assert shareable(dataclasses.replace(three, agent=("王芳",)), "channel", "responses")
    assert not shareable(two, "channel", "responses")  # the cards read the pair's slice
    assert shareable(two, "channel", "skipped")  # which the skipped invitations lack
    with app.test_request_context("/dashboards"):  # a GET: reads are remembered
        for scope, group_by in ((three, "agent"), (two, "agent"), (two, "channel")):
            assert_same(compute(scope, group_by=group_by), raw(scope, group_by=group_by))
            for grain in (None, "week", "month"):
                assert_same(compute(scope, grain=grain), raw(scope, grain=grain))


def test_a_grouped_read_no_other_read_takes_sums_only_what_its_kpis_use(
    app, data, raw, monkeypatch
):
    """A grouped read whose rows no other read of the page takes (by agent: the cards read
    the pieces; or by week, ``alone``, as the p-chart's on a page whose trend is by month)
    sums only the aggregates of the KPIs asked for, not the charts' 52 more; the page's read
    of every response sum still has them all. All equal the raw rows, with a dirty day."""
    generate(data, seed=5, count=160)
    db.session.commit()
    rollup.rebuild()
    start, end = GENERATED_START.date(), GENERATED_START.date() + timedelta(days=40)
    scope = Scope(
        start=start, end=end, region=("华东",), priority=(Priority.P2,), team=("Frontline",)
    )
    response = db.session.scalars(select(SurveyResponse).order_by(SurveyResponse.id)).first()
    response.nps = 0  # a dirty day, read raw beside the roll-ups
    db.session.commit()
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with app.test_request_context("/dashboards"):  # a GET: reads are remembered
            fast = compute(scope, group_by="agent", metrics=OVERVIEW_KPIS)
            sums = response_sums(scope)
            weeks = len(statements)
            weekly = compute(scope, grain="week", metrics=("nps",), alone=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    by_agent = [s for s in statements if "metric_rollup_responses.by_agent AS value" in s]
    assert by_agent
    assert all("csat_overall_n" in s and "nps_10" not in s for s in by_agent)
    assert_same(fast, raw(scope, group_by="agent", metrics=OVERVIEW_KPIS))
    by_week = [s for s in statements[weeks:] if "FROM metric_rollup_responses" in s]
    assert by_week and all("nps_detractors" in s and "nps_10" not in s for s in by_week)
    assert_same(weekly, raw(scope, grain="week", metrics=("nps",)))
    monkeypatch.setattr(rollup, "plan", lambda scope, group_by: None)
    assert sums == response_sums(scope)
    assert sum(sums[None][f"nps_{score}"] for score in range(11)) == sums[None]["nps_n"] > 0


def test_a_read_of_the_combinations_names_values_only_to_reach_a_filter(data, monkeypatch):
    """``seek_conditions``: a filtered leading column seeks as it is; an unfiltered one before
    a filter is named in full (its values of the period, from its own slice) within the
    budget; none is named when no filter follows, or when a row lacks a value."""
    from analysis.metrics import rollup_read
    from analysis.metrics.rollup_read import SEEKS_PER_DAY, seek_conditions

    for days, (team, channel) in enumerate(
        [("Frontline", "chat"), ("Backline", "phone"), ("Night shift", "chat")]
    ):
        ticket = data.ticket(
            team=team, channel=channel, created_at=GENERATED_START + timedelta(days=days)
        )
        data.response(ticket, submitted_at=ticket.closed_at + timedelta(hours=1), nps=9)
    db.session.commit()
    rollup.rebuild()
    period = (FIRST_DAY, LAST_DAY)
    assert seek_conditions("responses", {"by_team": ("Frontline",)}, period) == []
    named = seek_conditions("responses", {"by_channel": ("chat",)}, period)
    assert named is not None and len(named) == 1
    teams = set(named[0].right.value)  # type: ignore[attr-defined]
    assert teams == {"Frontline", "Backline", "Night shift"}
    # The agent is last: reached by naming every team, channel, priority ... within the budget.
    agent = seek_conditions("responses", {"by_agent": ("王芳",)}, period)
    assert agent is not None and len(agent) == 8
    assert math.prod(len(c.right.value) for c in agent) <= SEEKS_PER_DAY  # type: ignore[attr-defined]
    monkeypatch.setattr(rollup_read, "SEEKS_PER_DAY", 2)  # three teams to name: over it
    assert seek_conditions("responses", {"by_agent": ("王芳",)}, period) is None
    assert seek_conditions("responses", {"by_channel": ("chat",)}, period) is None
    monkeypatch.undo()
    assert seek_conditions("responses", {}, period) is None
    # The values named are kept between requests until a refresh changes the roll-ups.
    ticket = data.ticket(
        team="Night owls", channel="chat", created_at=GENERATED_START + timedelta(days=4)
    )
    data.response(ticket, submitted_at=ticket.closed_at + timedelta(hours=1), nps=7)
    db.session.commit()
    rollup.refresh()
    named = seek_conditions("responses", {"by_channel": ("chat",)}, period)
    assert named is not None and "Night owls" in named[0].right.value  # type: ignore[attr-defined]
    # A team lacking on some rows: it cannot be named (NULL matches no IN), so no seeks.
    ticket = data.ticket(team=None, created_at=GENERATED_START + timedelta(days=3))
    data.response(ticket, submitted_at=ticket.closed_at + timedelta(hours=1), nps=3)
    db.session.commit()
    rollup.rebuild()
    assert seek_conditions("responses", {"by_channel": ("chat",)}, period) is None
    assert len(teams) <= SEEKS_PER_DAY


def test_writes_after_a_build_are_read_raw_until_refreshed(data, raw):
    generate(data, seed=4, count=160)
    db.session.commit()
    rollup.rebuild()
    assert db.session.scalar(select(func.count()).select_from(DirtyInstant)) == 0
    rng = random.Random(4)
    views = [random_view(rng, _versions(data)) for _ in range(25)]

    # New rows through the ORM, a Core insert, an update of a ticket's team and of a
    # customer's tier: each leaves dirty instants behind, in the same transaction.
    extra = data
    ticket = extra.ticket(created_at=GENERATED_START + timedelta(days=9), team="Backline")
    extra.response(ticket, submitted_at=ticket.closed_at + timedelta(hours=3), nps=0, ces=1)
    template = db.session.scalar(select(SurveyResponse).limit(1))
    assert template is not None
    db.session.execute(
        insert(SurveyResponse.__table__),
        [
            {
                "invitation_id": extra.invitation(ticket, sent_at=ticket.closed_at).id,
                "ticket_id": ticket.id,
                "customer_id": ticket.customer_id,
                "template_version_id": template.template_version_id,
                "submitted_at": GENERATED_START + timedelta(days=20, hours=5),
                "language": "zh_Hans",
                "nps": 10,
                "csat_overall": 5,
                "team": "Frontline",
                "channel": "chat",
                "priority": "P2",
                "customer_tier": "vip",
                "customer_is_new": True,
            }
        ],
    )
    some = db.session.scalars(select(Ticket).where(Ticket.closed_at.is_not(None)).limit(3)).all()
    for moved in some:
        moved.team = "Nobody"
    customer = db.session.get(Customer, some[0].customer_id)
    assert customer is not None
    customer.tier = Tier.VIP if customer.tier is Tier.STANDARD else Tier.STANDARD
    db.session.execute(
        update(Ticket).where(Ticket.id == some[1].id).values(reopen_count=5, contact_count=4)
    )
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(DirtyInstant)) > 0
    for view in views:
        assert_same(compute(**view), raw(**view))

    assert rollup.refresh() > 0
    assert db.session.scalar(select(func.count()).select_from(DirtyInstant)) == 0
    for view in views:
        assert rollup.plan(view["scope"], view["group_by"]).dirty == frozenset()  # type: ignore[union-attr]
        assert_same(compute(**view), raw(**view))
    assert_pieces_sum_their_days()


def assert_pieces_sum_their_days() -> None:
    """Every week piece row (``"*w"``) and month piece row (``"*m"``) holds the sums of its
    days' combinations without the agent (the durations: their sorted values), and every
    such sum has its piece row; only the populations of ``WITH_PIECES`` have them."""
    for kind, table in ROLLUP_TABLES.items():
        for piece, start_of in ((WEEKLY, piece_start), (MONTHLY, lambda d: d.replace(day=1))):
            _assert_pieces_sum(kind, table, piece, start_of)
        if kind in MONTH_PAIRED:
            for pair in MONTH_PAIRS[kind]:
                _assert_month_pair_sums(kind, table, pair)


def _assert_month_pair_sums(kind: str, table: Any, pair: tuple[str, str]) -> None:
    """A pair's rows by month hold the sums of the month's combinations (with the template
    version, the ticket populations': the "*" rows with one and the "*v" rows)."""
    versioned = "template_version" in pair and kind == "created"
    aggregates = list(AGGREGATES[kind])
    expected: dict[tuple[Any, ...], list[int]] = {}
    stored: dict[tuple[Any, ...], list[int]] = {}
    chosen = [table.c.dimension == "*"]
    if versioned:
        chosen = [
            table.c.dimension.in_(("*", VERSIONED)),
            table.c.by_template_version.is_not(None),
        ]
    for target, where in ((expected, chosen), (stored, [table.c.dimension == pair_slice(*pair)])):
        for row in db.session.execute(select(table).where(*where)):
            values = row._mapping
            day = date.fromisoformat(str(values["day"]))
            key = (day.replace(day=1), values["extra"], *(values[f"by_{d}"] for d in pair))
            sums = target.setdefault(key, [0] * len(aggregates))
            for place, name in enumerate(aggregates):
                sums[place] += values[name]
            if target is stored:
                assert day.day == 1
    assert stored == expected, (kind, pair)


def _assert_pieces_sum(kind: str, table: Any, piece: str, start_of: Any) -> None:
    pieces = db.session.scalar(select(func.count()).where(table.c.dimension == piece))
    assert bool(pieces) == (kind in WITH_PIECES), (kind, piece)
    if not pieces:
        return
    measures = [c.name for c in table.columns if c.name not in {"id", "day", "dimension", "value"}]
    measures = [m for m in measures if not m.startswith("by_") and m != "extra"]
    keys = ["extra", *(f"by_{d}" for d in PIECE_DIMENSIONS)]
    expected: dict[tuple[Any, ...], list[Any]] = {}
    stored: dict[tuple[Any, ...], list[Any]] = {}
    for row in db.session.execute(select(table).where(table.c.dimension.in_(("*", piece)))):
        values = row._mapping
        day = date.fromisoformat(str(values["day"]))
        target = expected if values["dimension"] == "*" else stored
        key = (start_of(day), *(values[k] for k in keys))
        if values["dimension"] == piece:
            assert day == start_of(day) and key not in stored
        sums = target.setdefault(key, [0 if not m.endswith("_values") else [] for m in measures])
        for place, name in enumerate(measures):
            if name.endswith("_values"):
                sums[place] += list(np.frombuffer(values[name], dtype="<i4"))
            else:
                sums[place] += values[name]
    for sums in (*expected.values(), *stored.values()):
        for place, name in enumerate(measures):
            if name.endswith("_values"):
                sums[place] = sorted(sums[place])
    assert stored == expected, (kind, piece)


def test_views_the_roll_ups_do_not_serve_read_raw_rows_and_agents_and_versions_combine(data, raw):
    generate(data, seed=5, count=60)
    db.session.commit()
    rollup.rebuild()
    two_filters = Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE, team=("Frontline",))
    # The template version with another dimension: their pair's slice ("*v" for tickets).
    pair = rollup.plan(two_filters, "template_version")
    assert pair.dimension == "team|template_version"  # type: ignore[union-attr]
    assert_same(compute(two_filters, "template_version"), raw(two_filters, "template_version"))
    # With two others: the "*v" combinations.
    three = Scope(
        start=FIRST_DAY, end=LAST_DAY, timezone=ZONE, team=("Frontline",), channel=(Channel.CHAT,)
    )
    assert rollup.plan(three, "template_version").dimension == "*v"  # type: ignore[union-attr]
    assert_same(compute(three, "template_version", "week"), raw(three, "template_version", "week"))
    # A team's agents: their pair's slice; the agent with another dimension: the combinations.
    assert rollup.plan(two_filters, "agent").dimension == "team|agent"  # type: ignore[union-attr]
    assert_same(compute(two_filters, "agent"), raw(two_filters, "agent"))
    assert_same(compute(two_filters, "agent", "week"), raw(two_filters, "agent", "week"))
    agent_alone = Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE, agent=("王芳",))
    assert rollup.plan(agent_alone, "team").dimension == "team|agent"  # type: ignore[union-attr]
    assert_same(compute(agent_alone, "team"), raw(agent_alone, "team"))
    one_agent = Scope(
        start=FIRST_DAY, end=LAST_DAY, timezone=ZONE, team=("Frontline",), agent=("王芳",)
    )
    assert rollup.plan(one_agent, "channel").dimension == "*"  # type: ignore[union-attr]
    assert_same(compute(one_agent, "channel", "week"), raw(one_agent, "channel", "week"))
    assert rollup.plan(two_filters, "channel").dimension == "team|channel"  # type: ignore[union-attr]
    assert_same(compute(two_filters, "channel", "day"), raw(two_filters, "channel", "day"))
    elsewhere = Scope(start=FIRST_DAY, end=LAST_DAY, timezone="Europe/Berlin")
    assert rollup.plan(elsewhere, None) is None


def test_a_ticket_invited_with_two_versions_counts_under_each_as_raw_rows_do(data, raw):
    """A ticket closed, reopened and closed again may be invited with two template versions:
    its ticket KPIs count once under each version, in every slice that has the version."""
    generate(data, seed=8, count=60)
    twice = data.ticket(
        created_at=GENERATED_START + timedelta(days=3),
        first_response_after=timedelta(minutes=30),
        resolved_after=timedelta(hours=30),
        closed_after=timedelta(hours=31),
        team="Frontline",
        channel="chat",
        reopen_count=1,
    )
    data.response(twice, submitted_at=twice.closed_at + timedelta(hours=2), version=1, nps=3)
    data.invitation(twice, sent_at=twice.closed_at + timedelta(hours=5), version=2)
    data.invitation(twice, sent_at=twice.closed_at + timedelta(hours=6), version=2)  # again
    db.session.commit()
    rollup.rebuild()
    versions = _versions(data)
    # Only that ticket has combinations of its own ("*v"), once per version; every other
    # ticket's one version is in its "*" combination.
    table = ROLLUP_TABLES["tickets"]
    stored = db.session.execute(
        select(table.c.by_template_version, func.sum(table.c.closed))
        .where(table.c.dimension == "*v")
        .group_by(table.c.by_template_version)
        .order_by(table.c.by_template_version)
    ).all()
    assert stored == [(str(versions[0]), 1), (str(versions[1]), 1)]
    views = [
        Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE, team=("Frontline",)),
        Scope(
            start=FIRST_DAY,
            end=LAST_DAY,
            timezone=ZONE,
            team=("Frontline",),
            channel=("chat",),
            template_version=tuple(versions),
        ),
        Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE, template_version=(versions[1],)),
    ]
    for scope in views:
        for group_by in ("template_version", "channel", None):
            for grain in (None, "week"):
                assert rollup.plan(scope, group_by) is not None
                assert_same(
                    compute(scope, group_by, grain), raw(scope, group_by, grain)
                )  # fmt: skip
    # Those with two more dimensions read the week pieces where whole, and the "*v" rows.
    plan = rollup.plan(views[1], "channel")
    assert plan is not None and plan.dimension == VERSIONED
    assert rollup_plan.piece_slices(plan, "tickets", "week") == (WEEKLY,)
    assert rollup_plan.days_and_pieces(plan, "durations", (WEEKLY,))[1]
    # The version slice is summed from the combinations: the ticket is under both versions.
    both = compute(views[1], "template_version")
    assert len(both.groups) == len(versions)
    assert all(group.kpis["fcr"].n >= 1 for group in both.groups)
    # So does the first-response heatmap, from its roll-ups too.
    for scope in views:
        assert frt_heatmap(scope) == raw_frt_heatmap(scope)

    # Once under each version it was invited with, as the ticket KPIs count it: a view of
    # both versions is the sum of the views of each.
    def tickets(scope: Scope) -> int:
        return sum(cell.n for row in frt_heatmap(scope) for cell in row)

    each = [dataclasses.replace(views[1], template_version=(v,)) for v in versions]
    assert tickets(views[1]) == sum(map(tickets, each)) > 0
    assert all(frt_heatmap(scope) == raw_frt_heatmap(scope) for scope in each)


def assert_indexes_built() -> None:
    """Every roll-up table has its indexes (read from the catalogue: SQLAlchemy cannot reflect
    SQLite's expression indexes)."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        catalogue = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    else:
        catalogue = "SELECT indexname FROM pg_indexes WHERE tablename = :t"
    for table in ROLLUP_TABLES.values():
        stored = set(connection.execute(text(catalogue), {"t": table.name}).scalars())
        stored -= {f"pk_{table.name}"}  # PostgreSQL's primary key (SQLite's: the row id)
        assert stored == {index.name for index in built_indexes(table, connection.dialect.name)}


def test_no_roll_ups_until_built_and_a_new_time_zone_rebuilds(app, data):
    generate(data, seed=6, count=40)
    db.session.commit()
    scope = Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE)
    assert rollup.plan(scope, None) is None
    assert rollup.refresh() > 0  # the job's first round builds everything
    assert db.session.get(RollupState, 1).timezone == ZONE  # type: ignore[union-attr]
    # A first build drops the tables' indexes while it writes: they are all back.
    assert_indexes_built()
    assert rollup.plan(scope, None) is not None
    app.config["METRICS_TIMEZONE"] = "America/New_York"
    assert rollup.plan(scope, None) is not None  # the scope says Shanghai: built for it
    rollup.refresh()
    assert db.session.get(RollupState, 1).timezone == "America/New_York"  # type: ignore[union-attr]
    assert rollup.plan(scope, None) is None


def test_a_first_build_stopped_midway_is_never_read_and_the_next_one_completes(
    data, raw, monkeypatch
):
    """A first build commits each chunk of days: stopped after one, nothing says the roll-ups
    are built (views read raw rows), and the next build starts again and ends complete."""
    from analysis.metrics import rollup_build

    generate(data, seed=8, count=60)
    db.session.commit()
    original = rollup_build._insert_combinations
    chunks: list[date] = []

    def stopping(kind: str, table: Any, first: date, *args: Any) -> Any:
        if first not in chunks:
            chunks.append(first)
        if len(chunks) > 1:
            raise RuntimeError("the machine went down")
        return original(kind, table, first, *args)

    monkeypatch.setattr(rollup_build, "_insert_combinations", stopping)
    with pytest.raises(RuntimeError):
        rollup.rebuild()
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ROLLUP_TABLES["responses"])) > 0
    scope = Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE)
    assert db.session.get(RollupState, 1) is None
    assert rollup.plan(scope, None) is None
    monkeypatch.setattr(rollup_build, "_insert_combinations", original)
    rollup.rebuild()
    assert_indexes_built()
    assert rollup.plan(scope, "team") is not None
    assert_same(compute(scope, group_by="team"), raw(scope, group_by="team"))


def test_daylight_saving_days_equal_raw_rows(app, raw):
    app.config["METRICS_TIMEZONE"] = "America/New_York"
    data = KpiData()
    generate(data, seed=8, start=datetime(2025, 10, 20, tzinfo=UTC), count=120)
    db.session.commit()
    rollup.rebuild()
    for grain in (None, "day", "week"):
        for group_by in (None, "priority"):
            scope = Scope(
                start=date(2025, 10, 28), end=date(2025, 11, 30), timezone="America/New_York"
            )
            assert rollup.plan(scope, group_by) is not None
            assert_same(compute(scope, group_by, grain), raw(scope, group_by, grain))


def test_offset_spans_cut_at_the_daylight_saving_change():
    zone = ZoneInfo("America/New_York")
    begin = datetime(2025, 11, 1, 4, tzinfo=UTC)
    end = datetime(2025, 11, 4, 5, tzinfo=UTC)
    spans = rollup.offset_spans(begin, end, zone)
    change = datetime(2025, 11, 2, 6, tzinfo=UTC)  # 02:00 EDT becomes 01:00 EST
    assert spans == [(begin, change, -240), (change, end, -300)]
    assert rollup.offset_spans(begin, end, ZoneInfo(ZONE)) == [(begin, end, 480)]


def test_rollup_rows_hold_sorted_durations(data):
    generate(data, seed=9, count=50)
    db.session.commit()
    rollup.rebuild()
    table = ROLLUP_TABLES["durations"]
    rows = db.session.execute(
        select(table).where(table.c.dimension == "", table.c.first_response_time_n > 0)
    ).mappings()
    import numpy as np

    for row in rows:
        values = np.frombuffer(row["first_response_time_values"], dtype="<i4")
        assert len(values) == row["first_response_time_n"]
        assert int(values.sum()) == row["first_response_time_total"]
        assert list(values) == sorted(values)


def test_rebuild_and_refresh_commands(app, data):
    generate(data, seed=10, count=20)
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["metrics", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "Roll-ups rebuilt:" in result.output
    result = runner.invoke(args=["metrics", "refresh"])
    assert result.exit_code == 0 and "Roll-ups refreshed: 0 days." in result.output


def test_dashboard_sums_equal_raw_rows(data, monkeypatch):
    generate(data, seed=11, count=160)
    rng = random.Random(11)
    labels = [None, *SentimentLabel]
    for response in db.session.scalars(select(SurveyResponse)):
        if rng.random() < 0.7:
            response.comment = rng.choice(("", "等了很久", "解决了，谢谢"))
            response.sentiment_label = rng.choice(labels)
    db.session.commit()
    rollup.rebuild()
    original = rollup.plan
    commented = 0
    for _ in range(30):
        view = random_view(rng, _versions(data))
        fast = response_sums(view["scope"], view["grain"])
        monkeypatch.setattr(rollup, "plan", lambda scope, group_by: None)
        slow = response_sums(view["scope"], view["grain"])
        monkeypatch.setattr(rollup, "plan", original)
        assert fast == slow
        commented += sum(sums["sentiment_negative"] + sums["nps_10"] for sums in fast.values())
        assert frt_heatmap(view["scope"]) == raw_frt_heatmap(view["scope"])
    assert commented > 0
    names = ["team", "agent", "region", "product_line"]
    with_rollups = filter_options(names)
    monkeypatch.setattr(rollup, "response_values", lambda names: None)
    assert with_rollups == filter_options(names)
    monkeypatch.undo()
    # Tickets written after the build: their days are read raw until the refresh.
    moved = db.session.scalars(select(Ticket).limit(5)).all()
    for ticket in moved:
        ticket.team = "Backline"
        ticket.created_at = ticket.created_at + timedelta(hours=5)
    db.session.commit()
    scope = Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE, team=("Backline",))
    assert rollup.plan(scope, None).dirty  # type: ignore[union-attr]
    assert frt_heatmap(scope) == raw_frt_heatmap(scope)
    late = data.ticket(team="Night shift", created_at=GENERATED_START + timedelta(days=3))
    data.response(late, submitted_at=late.closed_at + timedelta(hours=2), nps=9)
    db.session.commit()
    assert "Night shift" in filter_options(["team"])["team"]  # written since the refresh
    rollup.refresh()
    assert "Night shift" in filter_options(["team"])["team"]  # and in the roll-ups since
    assert frt_heatmap(scope) == raw_frt_heatmap(scope)
    assert sum(cell.n for row in frt_heatmap(scope) for cell in row) > 0
    # Several filters: the heatmap's combined slice, equal to the raw rows.
    both = Scope(
        start=FIRST_DAY, end=LAST_DAY, timezone=ZONE, team=("Backline",), channel=tuple(Channel)
    )
    assert rollup.plan(both, None) is not None
    assert frt_heatmap(both) == raw_frt_heatmap(both)
    assert sum(cell.n for row in frt_heatmap(both) for cell in row) > 0


WORDS = ("等待", "退款", "转接", "没人回电话", "still not fixed", "解决了")


def _comment_everything(rng: random.Random) -> None:
    """Comments, sentiment labels, keywords and aspects on most generated responses, written
    as the analysis pipeline writes them."""
    labels = [None, *SentimentLabel]
    keywords: dict[int, list[str]] = {}
    aspects: dict[int, list[dict[str, Any]]] = {}
    for response in db.session.scalars(select(SurveyResponse)):
        if rng.random() < 0.2:
            continue
        response.comment = rng.choice(("", "等了很久", "解决了，谢谢", "still not fixed"))
        response.sentiment_label = rng.choice(labels)
        keywords[response.id] = rng.sample(WORDS, rng.randint(0, 3))
        aspects[response.id] = [
            {"response_id": response.id, "aspect": aspect, "score": 0.5, "clauses": 1,
             "label": rng.choice(("positive", "negative", "neutral"))}
            for aspect in rng.sample(("speed", "attitude", "effectiveness"), rng.randint(0, 2))
        ]  # fmt: skip
    replace_response_keywords(keywords)
    replace_response_aspects(aspects)


def _examples_by_hand(scope: Scope, keyword: str, count: int) -> list[tuple[int, bool]]:
    """A theme's examples from every row in Python: negative first, newest first."""
    rows = db.session.execute(
        select(SurveyResponse.id, SurveyResponse.submitted_at, SurveyResponse.sentiment_label)
        .join(ResponseKeyword, ResponseKeyword.response_id == SurveyResponse.id)
        .where(
            *response_conditions(scope),
            ResponseKeyword.keyword == keyword,
            SurveyResponse.comment.is_not(None),
            SurveyResponse.comment != "",
        )
    ).all()
    ordered = sorted(
        rows, key=lambda r: (r[2] != SentimentLabel.NEGATIVE, -r[1].timestamp(), -r[0])
    )
    return [(r[0], r[2] == SentimentLabel.NEGATIVE) for r in ordered[:count]]


def test_themes_and_aspects_equal_raw_rows_before_and_after_writes(data, monkeypatch):
    """The keywords' and aspects' roll-ups give the raw rows' sums for random views, also for
    days written since the build; each theme's examples are those a full sort picks."""
    generate(data, seed=5, count=200)
    rng = random.Random(5)
    _comment_everything(rng)
    db.session.commit()
    rollup.rebuild()
    monkeypatch.setattr(queries, "EXAMPLES_STEP", 2)  # a short walk, then the lookups
    original = rollup.plan

    def both(call: Any, *args: Any) -> tuple[Any, Any]:
        fast = call(*args)
        monkeypatch.setattr(rollup, "plan", lambda scope, group_by: None)
        try:
            return fast, call(*args)
        finally:
            monkeypatch.setattr(rollup, "plan", original)

    def check(scope: Scope) -> int:
        for kind in ("keywords", "aspects"):
            fast, slow = both(mention_sums, kind, scope)
            assert fast == slow, (kind, scope)
        fast_themes, slow_themes = both(top_negative_themes, scope)
        assert fast_themes == slow_themes
        monkeypatch.setattr(queries, "EXAMPLES_STEP", 200)  # the walk finds them all
        assert top_negative_themes(scope) == fast_themes
        monkeypatch.setattr(queries, "EXAMPLES_STEP", 2)  # a short walk, then the lookups
        for theme in fast_themes:
            shown = [(e.response_id, e.negative) for e in theme.examples]
            assert shown == _examples_by_hand(scope, theme.keyword, 3)
        assert both(aspect_agreement, scope)[0] == both(aspect_agreement, scope)[1]
        for keyword in [None, *(theme.keyword for theme in fast_themes[:2]), "无此词"]:
            counted = select(func.count()).select_from(
                responses_query(scope, keyword=keyword).subquery()
            )
            assert responses_page(scope, keyword=keyword).total == db.session.scalar(counted)
        return sum(theme.negative_count for theme in fast_themes)

    served = negatives = 0
    for _ in range(30):
        scope = random_view(rng, _versions(data))["scope"]
        served += rollup.plan(scope, None) is not None
        negatives += check(scope)
    assert served > 20 and negatives > 0
    # Written after the build: keywords replaced, a label changed, aspects deleted.
    changed = db.session.scalars(select(SurveyResponse).limit(40)).all()
    replace_response_keywords({r.id: ["退款", "新词"] for r in changed[:20]})
    replace_response_aspects({r.id: [] for r in changed[20:]})
    for response in changed[::3]:
        response.sentiment_label = SentimentLabel.NEGATIVE
    db.session.commit()
    whole = Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE)
    assert rollup.plan(whole, None).dirty  # type: ignore[union-attr]
    assert mention_sums("keywords", whole)["新词"]["count"] == 20
    assert check(whole) > 0
    assert check(dataclasses.replace(whole, team=("Frontline",), channel=(Channel.CHAT,))) >= 0
    rollup.refresh()
    assert not rollup.plan(whole, None).dirty  # type: ignore[union-attr]
    assert check(whole) > 0


def test_the_examples_walk_can_read_the_negative_comments_index(data):
    """The walk names the label and the empty comment as literals, so the partial index of
    the commented negative responses serves it: SQLite refuses ``INDEXED BY`` an index
    whose condition the query does not imply; PostgreSQL, told to avoid other plans, picks
    it."""
    generate(data, seed=9, count=60)
    _comment_everything(random.Random(9))
    db.session.commit()
    walks: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if statement.startswith("SELECT survey_response.id, survey_response.submitted_at"):
            walks.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        themes = top_negative_themes(Scope(start=FIRST_DAY, end=LAST_DAY, timezone=ZONE))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert themes and walks
    statement, params = walks[0]
    assert "sentiment_label = 'negative'" in statement and "comment != ''" in statement
    raw = db.session.connection().connection.dbapi_connection
    cursor = raw.cursor()
    if is_postgres():
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + statement, params)
    else:
        forced = statement.replace(
            "FROM survey_response",
            "FROM survey_response INDEXED BY ix_survey_response_negative_comments",
            1,
        )
        cursor.execute("EXPLAIN QUERY PLAN " + forced, params)
    plan = " ".join(str(row) for row in cursor.fetchall())
    assert "ix_survey_response_negative_comments" in plan
    db.session.rollback()


def test_a_dashboard_page_reads_each_roll_up_once(app, data, client, auth, make_user):
    """The cards, the breakdown, the trend and the p-chart share the scope's totals and weekly
    sums: one read of each per page (:mod:`survey_app.memo`), and the page is the same."""
    from sqlalchemy import event

    from survey_app.models import Role

    generate(data, seed=5, count=80)
    rollup.rebuild()
    auth.sign_in(make_user(Role.ANALYST))
    url = f"/dashboards?from={FIRST_DAY}&to={LAST_DAY}&region=华东&priority=P2&channel=phone"
    statements: list[tuple[str, str]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if "metric_rollup_" in statement and "GROUP BY" in statement:
            statements.append((statement, repr(parameters)))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        first = client.get(url)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert first.status_code == 200
    assert len(statements) > 5
    assert len(set(statements)) == len(statements)
    # Nothing is kept beyond the request: a response written since shows on the next page.
    count = re.compile(r"([\d,]+) responses in this period")

    def shown(page: str) -> int:
        found = count.search(page)
        assert found is not None
        return int(found.group(1).replace(",", ""))

    before = shown(first.get_data(as_text=True))
    created = GENERATED_START + timedelta(days=2)
    ticket = data.ticket(region="华东", priority="P2", channel="phone", created_at=created)
    data.response(ticket, submitted_at=ticket.closed_at + timedelta(hours=1), nps=10)
    db.session.commit()
    assert shown(client.get(url).get_data(as_text=True)) == before + 1


def test_more_memory_for_a_bulk_build_then_the_setting_before(app):
    from survey_app.bulk_io import bulk_memory

    connection = db.session.connection()
    read = "PRAGMA cache_size" if not is_postgres() else "SELECT current_setting('work_mem')"
    before = connection.exec_driver_sql(read).scalar()
    with bulk_memory(sqlite_cache_mib=64, postgres_work_mem_mib=32):
        inside = connection.exec_driver_sql(read).scalar()
        assert inside == ("32MB" if is_postgres() else -64 * 1024)
    assert connection.exec_driver_sql(read).scalar() == before


def test_indexes_are_sorted_on_every_core_then_the_setting_before(app, monkeypatch):
    from survey_app import bulk_io

    connection = db.session.connection()
    if is_postgres():  # PostgreSQL's own parallel index builds: nothing is set
        with bulk_io.sorting_threads():
            assert connection.in_transaction()
        return
    monkeypatch.setattr(bulk_io.os, "cpu_count", lambda: 3)
    connection.exec_driver_sql("PRAGMA threads = 1")
    with bulk_io.sorting_threads():
        assert connection.exec_driver_sql("PRAGMA threads").scalar() == 3
    assert connection.exec_driver_sql("PRAGMA threads").scalar() == 1
    monkeypatch.setattr(bulk_io.os, "cpu_count", lambda: None)  # unknown: one thread
    connection.exec_driver_sql("PRAGMA threads = 0")
    with pytest.raises(RuntimeError), bulk_io.sorting_threads():
        assert connection.exec_driver_sql("PRAGMA threads").scalar() == 1
        raise RuntimeError("a failed build")
    assert connection.exec_driver_sql("PRAGMA threads").scalar() == 0


def test_week_pieces_are_weeks_cut_at_the_end_of_a_month():
    # 2025-09-29 is a Monday; October begins on the Wednesday.
    assert piece_start(date(2025, 9, 30)) == date(2025, 9, 29)
    assert piece_end(date(2025, 9, 29)) == date(2025, 9, 30)
    assert piece_start(date(2025, 10, 5)) == date(2025, 10, 1)
    assert piece_end(date(2025, 10, 1)) == date(2025, 10, 5)
    assert piece_end(date(2025, 12, 29)) == date(2025, 12, 31)
    assert piece_end(date(2024, 2, 26)) == date(2024, 2, 29)
    # A rebuild of one day rebuilds its whole piece; runs never cross a month.
    assert piece_runs([date(2025, 10, 2)]) == [(date(2025, 10, 1), date(2025, 10, 5))]
    assert piece_runs([date(2025, 9, 30), date(2025, 10, 1)]) == [
        (date(2025, 9, 29), date(2025, 9, 30)),
        (date(2025, 10, 1), date(2025, 10, 5)),
    ]


def test_a_view_over_months_reads_whole_pieces_and_the_other_days_apart(data, raw):
    generate(data, seed=8, count=120)
    _invited_twice(data, 30, "Frontline", "chat")  # in the whole piece of 22-28 September
    db.session.commit()
    rollup.rebuild()
    scope = Scope(
        start=date(2025, 9, 3),
        end=date(2025, 10, 14),
        timezone=ZONE,
        channel=(Channel.CHAT, Channel.EMAIL),
        priority=tuple(Priority),
        team=("Frontline", "Backline"),
    )
    plan = rollup.plan(scope, None)
    assert plan is not None and plan.dimension == "*"
    single, whole = rollup_plan.days_and_pieces(plan, "responses", (WEEKLY,))
    starts = whole[WEEKLY]
    # 3-7 Sep and 13-14 Oct are parts of pieces, 8 Sep-12 Oct whole ones (30 Sep ends one);
    # only the days the roll-ups hold are named.
    last_stored = rollup_read.stored_days("responses")[1]  # type: ignore[index]
    assert single == [
        *(date(2025, 9, d) for d in range(3, 8)),
        *(d for d in (date(2025, 10, 13), date(2025, 10, 14)) if d <= last_stored),
    ]
    assert starts[0] == date(2025, 9, 8) and date(2025, 9, 29) in starts
    assert date(2025, 10, 1) in starts and starts[-1] == date(2025, 10, 6)
    assert not rollup_plan.piece_slices(plan, "responses", "day")
    for grain in (None, "week", "month", "day"):
        assert_same(compute(scope, grain=grain), raw(scope, grain=grain))
    # A dirty day leaves its piece to the days read one by one.
    data.response(
        data.ticket(team="Frontline", channel="chat", created_at=GENERATED_START),
        submitted_at=datetime(2025, 9, 17, 4, tzinfo=UTC),
        nps=3,
    )
    db.session.commit()
    plan = rollup.plan(scope, None)
    assert plan is not None and plan.dirty == {date(2025, 9, 17)}
    single, whole = rollup_plan.days_and_pieces(plan, "responses", (WEEKLY,))
    assert date(2025, 9, 15) not in whole[WEEKLY] and date(2025, 9, 16) in single
    assert date(2025, 9, 17) not in single
    for grain in (None, "week", "month"):
        assert_same(compute(scope, grain=grain), raw(scope, grain=grain))
    # A period reaching back a year before the data names only the days the roll-ups hold.
    longer = dataclasses.replace(scope, start=date(2024, 9, 1))
    plan = rollup.plan(longer, None)
    assert plan is not None
    first_stored = min(rollup_plan.days_and_pieces(plan, "responses", (WEEKLY,))[0])
    assert first_stored >= date(2025, 8, 20)
    for grain in (None, "month"):
        assert_same(compute(longer, grain=grain), raw(longer, grain=grain))
    assert frt_heatmap(longer) == raw_frt_heatmap(longer)
    # With a template version the ticket populations read the pieces' "*" rows with one
    # and the "*v" rows of their days (the ticket invited twice).
    versioned = dataclasses.replace(scope, template_version=tuple(_versions(data)[1:2]))
    plan = rollup.plan(versioned, "team")
    assert plan is not None and plan.dimension == VERSIONED
    assert rollup_plan.piece_slices(plan, "sla", "month") == (MONTHLY, WEEKLY)
    assert rollup_plan.piece_slices(plan, "durations", None) == (MONTHLY, WEEKLY)
    for grain in (None, "week", "month"):
        assert_same(compute(versioned, "team", grain), raw(versioned, "team", grain))


def test_a_view_by_month_or_none_reads_whole_months_then_week_pieces_then_days(data, raw):
    """By month or none a view of the combinations reads each whole clean month from its
    month piece (``"*m"``), then the whole week pieces, then the other days; by week, the
    week pieces only. A refresh of a day sums its month piece again from the week pieces."""
    generate(data, seed=12, count=150)
    _invited_twice(data, 20, "Frontline", "chat")  # in September
    db.session.commit()
    rollup.rebuild()
    assert_pieces_sum_their_days()
    scope = Scope(
        start=date(2025, 8, 25),
        end=date(2025, 10, 12),
        timezone=ZONE,
        channel=(Channel.CHAT, Channel.EMAIL),
        priority=tuple(Priority),
        team=("Frontline", "Backline"),
    )
    plan = rollup.plan(scope, "team")
    assert plan is not None and plan.dimension == "*"
    assert rollup_plan.piece_slices(plan, "responses", None) == (MONTHLY, WEEKLY)
    assert rollup_plan.piece_slices(plan, "responses", "week") == (WEEKLY,)
    single, whole = rollup_plan.days_and_pieces(plan, "responses", (MONTHLY, WEEKLY))
    assert whole[MONTHLY] == [date(2025, 9, 1)]
    # (25-31 August is whole in the scope, the data beginning within it)
    assert whole[WEEKLY] == [date(2025, 8, 25), date(2025, 10, 1), date(2025, 10, 6)]
    assert not any(date(2025, 9, 1) <= day <= date(2025, 9, 30) for day in single)
    versioned = dataclasses.replace(scope, template_version=tuple(_versions(data)[1:2]))
    for view in (scope, versioned):
        for group_by in ("team", "channel", None):
            for grain in (None, "week", "month"):
                assert_same(compute(view, group_by, grain), raw(view, group_by, grain))
    # A write in September: its month is read by week pieces and days until the refresh,
    # which sums the month piece again from the stored week pieces.
    data.response(
        data.ticket(team="Frontline", channel="chat", created_at=GENERATED_START),
        submitted_at=datetime(2025, 9, 17, 4, tzinfo=UTC),
        nps=2,
    )
    db.session.commit()
    plan = rollup.plan(scope, "team")
    assert plan is not None
    assert MONTHLY not in rollup_plan.days_and_pieces(plan, "responses", (MONTHLY, WEEKLY))[1]
    assert_same(compute(scope, "team"), raw(scope, "team"))
    assert rollup.refresh() >= 1
    assert_pieces_sum_their_days()
    plan = rollup.plan(scope, "team")
    assert plan is not None
    assert rollup_plan.days_and_pieces(plan, "responses", (MONTHLY,))[1][MONTHLY]
    for view in (scope, versioned):
        for grain in (None, "month"):
            assert_same(compute(view, "team", grain), raw(view, "team", grain))


def test_a_view_of_two_dimensions_reads_the_heatmap_skipped_and_aspects_by_month(
    data, raw, monkeypatch
):
    """The heatmap's, the skipped invitations', the aspects' and (some of) the keywords' pairs
    are kept by month: a view of two dimensions by month or none reads its whole clean months
    from them and its other days from the combinations, and equals the raw rows, with a
    ticket invited with two template versions, after a write and after the refresh that sums
    its month again."""
    generate(data, seed=14, count=160)
    _invited_twice(data, 20, "Frontline", "chat")  # in September
    _comment_everything(random.Random(14))
    db.session.commit()
    rollup.rebuild()
    assert_pieces_sum_their_days()
    for kind in MONTH_PAIRED:
        table = ROLLUP_TABLES[kind]
        paired = table.c.dimension == "customer_tier|customer_is_new"
        assert db.session.scalar(select(func.count()).where(paired))
        assert not db.session.scalar(
            select(func.count()).where(table.c.dimension == "team|channel")
        )
    versions = tuple(_versions(data)[1:2])
    views = [
        Scope(
            start=date(2025, 8, 27),
            end=date(2025, 10, 9),
            timezone=ZONE,
            customer_tier=(Tier.STANDARD,),
            customer_is_new=False,
        ),
        Scope(
            start=date(2025, 8, 27),
            end=date(2025, 10, 9),
            timezone=ZONE,
            template_version=versions,
            priority=(Priority.P2, Priority.P3),
        ),
    ]
    for scope in views:
        plan = rollup.plan(scope, None)
        assert plan is not None and "|" in plan.dimension
        # The keywords keep only the pairs of tier, new/returning and template version.
        paired = ["created", "skipped", "aspects", *(["keywords"] if scope is views[0] else [])]
        for kind in paired:
            assert rollup_plan.piece_slices(plan, kind, None) == (plan.dimension,)
            assert rollup_plan.days_and_pieces(plan, kind, (plan.dimension,))[1] == {
                plan.dimension: [date(2025, 9, 1)]
            }
        assert bool(rollup_plan.piece_slices(plan, "keywords", None)) == (scope is views[0])
        assert not rollup_plan.piece_slices(plan, "created", "week")

    def unplanned(scope: Scope, group_by: str | None, **kwargs: Any) -> None:
        return None

    def check() -> None:
        for scope in views:
            assert frt_heatmap(scope) == raw_frt_heatmap(scope)
            for grain in (None, "week", "month"):
                assert_same(compute(scope, grain=grain), raw(scope, grain=grain))
            assert_same(compute(scope, "team"), raw(scope, "team"))
            fast = {kind: mention_sums(kind, scope) for kind in ("keywords", "aspects")}
            monkeypatch.setattr(rollup, "plan", unplanned)
            slow = {kind: mention_sums(kind, scope) for kind in ("keywords", "aspects")}
            monkeypatch.undo()
            assert fast == slow and all(fast.values())

    check()
    _answered_on(data, date(2025, 9, 12))
    check()
    assert rollup.refresh() >= 1
    assert_pieces_sum_their_days()
    check()


def test_populations_without_pieces_read_their_combinations_by_month(data, raw, monkeypatch):
    """The heatmap's, the skipped invitations', the keywords' and the aspects' combinations
    are searched by month, the days a condition on the index entries: a view from late
    August to early October with three filters equals the raw rows, with a dirty day too,
    and the database searches the month index (its expression written as the reads write
    it)."""
    generate(data, seed=9, count=160)
    _comment_everything(random.Random(9))
    db.session.commit()
    rollup.rebuild()
    scope = Scope(
        start=date(2025, 8, 27),
        end=date(2025, 10, 9),
        timezone=ZONE,
        channel=(Channel.CHAT, Channel.EMAIL, Channel.PHONE),
        priority=tuple(Priority),
        team=("Frontline", "Backline"),
    )
    plan = rollup.plan(scope, None)
    assert plan is not None and plan.dimension == "*"
    assert {"created", "skipped", "keywords", "aspects"} == MONTH_KEYED
    assert sum(cell.n for row in frt_heatmap(scope) for cell in row) > 0

    def unplanned(scope: Scope, group_by: str | None, **kwargs: Any) -> None:
        return None

    def check() -> None:
        assert frt_heatmap(scope) == raw_frt_heatmap(scope)
        for grain in (None, "week", "day"):
            assert_same(compute(scope, grain=grain), raw(scope, grain=grain))
        fast = {kind: mention_sums(kind, scope) for kind in ("keywords", "aspects")}
        monkeypatch.setattr(rollup, "plan", unplanned)
        slow = {kind: mention_sums(kind, scope) for kind in ("keywords", "aspects")}
        monkeypatch.undo()
        assert fast == slow and fast["keywords"]

    check()
    # The heatmap's read: the months of the period, then its days.
    statements, _keys = rollup._rollup_selects(plan, "created", [], None, None)
    sql = str(statements[0].compile(db.engine, compile_kwargs={"literal_binds": True}))
    assert "2025-08-01" in sql and "2025-10-01" in sql
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
    else:  # (the tables are small: a sequential scan would be cheaper than any index)
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        explained = connection.exec_driver_sql(f"EXPLAIN {sql}").all()
    assert "ix_metric_rollup_created_dimension_month_values" in str(explained)
    # A day written since the build is read raw, the rest of its month from the roll-ups.
    _answered_on(data, date(2025, 9, 30))
    plan = rollup.plan(scope, None)
    assert plan is not None and plan.dirty
    check()


def test_reads_of_many_days_and_searches_use_the_month_index_and_equal_raw_rows(
    data, raw, monkeypatch
):
    """On PostgreSQL the populations with week pieces read an agent's combinations month by
    month (their second index, led by the month) when the days fill at least half of their
    months and each day would take :data:`~.rollup_read.MONTH_SEEKS` searches; day by day
    otherwise, and always on SQLite (which has no such index). Either way, grouped or not,
    with a ticket invited with two versions and a dirty day, the KPIs are the raw rows'."""
    generate(data, seed=12, count=200)
    _invited_twice(data, 9, "Frontline", "chat")
    db.session.commit()
    rollup.rebuild()
    postgres = is_postgres()
    assert_indexes_built()
    indexes = built_indexes(ROLLUP_TABLES["responses"], db.session.connection().dialect.name)
    assert ("ix_metric_rollup_responses_dimension_month_values" in {i.name for i in indexes}) is (
        postgres
    )
    days = [date(2025, 9, 1) + timedelta(days=n) for n in range(30)]
    assert not rollup_read.month_listed("responses", days, rollup_read.MONTH_SEEKS - 1)
    assert rollup_read.month_listed("responses", days, rollup_read.MONTH_SEEKS) is postgres
    assert not rollup_read.month_listed("responses", days[:14], rollup_read.MONTH_SEEKS)
    assert rollup_read.month_listed("skipped", days[:1], 0)  # its only index
    monkeypatch.setattr(rollup_read, "MONTH_SEEKS", 0)  # (the test data has few values)
    listed: list[tuple[str, bool]] = []
    original = rollup.listed_days

    def recorded(kind: str, days: Any, *, by_month: bool) -> Any:
        listed.append((kind, by_month))
        return original(kind, days, by_month=by_month)

    monkeypatch.setattr(rollup, "listed_days", recorded)
    views = [
        ({"agent": ("王芳",), "region": ("华东", "华南")}, None),
        ({"team": ("Frontline",), "region": ("华东",)}, "agent"),
        ({"agent": ("王芳", "Li Lei"), "template_version": (1, 2)}, "channel"),
        (
            {"priority": tuple(Priority), "product_line": ("云存储",), "team": ("Frontline",)},
            "agent",
        ),
    ]

    def check() -> None:
        for filters, group_by in views:
            scope = Scope(start=date(2025, 9, 5), end=date(2025, 10, 20), timezone=ZONE, **filters)
            for grain in (None, "week", "month"):
                view = {"scope": scope, "group_by": group_by, "grain": grain}
                assert_same(compute(**view), raw(**view))

    check()
    by_month = {kind for kind, month in listed if month}
    pieces = {"responses", "sent", "tickets", "sla", "durations"}
    assert by_month & pieces == (pieces if postgres else set())
    # A day written since the build is read raw, the rest of its month from the roll-ups.
    _answered_on(data, date(2025, 9, 30))
    check()
