"""KPI benchmark: the overview dashboard's queries over a million survey responses.

Run from the project folder:

    .venv/bin/python benchmarks/metrics_bench.py   # SQLite, then PostgreSQL if reachable
    .venv/bin/python benchmarks/metrics_bench.py --rows 200000 --no-postgres

Builds the schema with the real migrations, then loads ``--rows`` closed tickets
(with customers, close events and SLA facts), as many answered invitations and
survey responses (one in three with a comment, its keywords and aspects, as the
analysis pipeline writes them), and a quarter as many unanswered or skipped invitations,
spread over ``--days`` days, straight through the driver (``executemany`` on SQLite,
``COPY`` on PostgreSQL) in batches, the plain indexes built after the rows are in.
A database left by an earlier run with the same row count is reused.

It then times "the overview dashboard": CSAT %, NPS, CES, FRT P90 (business hours
and elapsed), SLA breach rate and response rate for the last 30 days *and* the 30
days before (two ``compute(scope, metrics=OVERVIEW_KPIS)`` calls, 16 queries), best and median of
5 runs after one warm-up, plus a few heavier shapes for reference. Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SEED = 20261130
BATCH = 50_000
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/closedloop_bench"
TEAMS = ("Frontline", "Backline", "VIP desk", "Billing", "Night shift")
REGIONS = ("华东", "华南", "华北", "西部")
PRODUCTS = ("云存储", "邮件", "视频会议", "CRM")
CHANNELS = ("chat", "phone", "email", "app", "wechat")
#: The columns of the loader's row tuples, in their order.
TICKET_COLUMNS = (
    "id", "source", "external_id", "customer_id", "channel", "priority", "product_line",
    "region", "team", "agent", "status", "created_at", "first_response_at", "resolved_at",
    "closed_at", "reopen_count", "contact_count", "last_event_at", "recorded_at", "updated_at",
)  # fmt: skip
SLA_COLUMNS = (
    "ticket_id", "closed_at", "clock", "priority", "first_response_target_minutes",
    "resolution_target_minutes", "first_response_seconds", "resolution_seconds",
    "first_response_elapsed_seconds", "resolution_elapsed_seconds", "response_breached",
    "resolution_breached", "breached", "computed_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "ticket_id", "event", "origin", "idempotency_key", "occurred_at", "received_at",
    "applied", "payload",
)  # fmt: skip
INVITATION_COLUMNS = (
    "id", "ticket_id", "customer_id", "close_event_id", "template_version_id", "channel",
    "status", "skip_reason", "nonce", "language", "created_at", "send_after", "sent_at",
    "answered_at", "attempts",
)  # fmt: skip
RESPONSE_COLUMNS = (
    "id", "invitation_id", "ticket_id", "customer_id", "template_version_id", "submitted_at",
    "language", "nps", "ces", "team", "agent", "channel", "priority", "product_line", "region",
    "customer_tier", "customer_is_new",
    *(f"csat_{d}" for d in ("overall", "speed", "professionalism", "attitude", "effectiveness")),
    "comment", "sentiment_label",
)  # fmt: skip
#: Filter combinations over a year the dashboard page is timed with, beyond the main ones:
#: unselective filters deep in the roll-ups' index, an agent, a template version.
YEAR_COMBINATIONS = {
    "agent Frontline-3 and channel=phone": "&agent=Frontline-3&channel=phone",
    "agent Frontline-3, region and priority": "&agent=Frontline-3&region=华东&priority=P2",
    "template version 1, region and priority": "&template_version=1&region=华东&priority=P2",
    "two regions, two priorities, product line": (
        "&region=华东&region=华南&priority=P2&priority=P3&product_line=云存储"
    ),
    "region, priority and product line by agent": (
        "&region=华东&priority=P2&product_line=云存储&group_by=agent"
    ),
    "team=Frontline and region by agent": "&team=Frontline&region=华东&group_by=agent",
    "new customers and template version 1": "&customer_is_new=new&template_version=1",
}
KEYWORD_COLUMNS = ("response_id", "keyword")
ASPECT_COLUMNS = ("response_id", "aspect", "score", "label", "clauses")
#: One response in :data:`COMMENTED` has a comment, with 1-4 keywords: the common words of
#: support feedback, then a long tail of rarer ones (about 60 distinct a day in the head,
#: hundreds in the tail), and what it says of 0-2 survey dimensions.
COMMENTED = 3
HEAD_WORDS = (
    "解决", "等待", "退款", "转接", "没人回电话", "态度", "专业", "效率", "客服", "工单", "账号",
    "登录", "发票", "网络", "延迟", "still not fixed", "refund", "waiting", "回复慢", "重复",
    "升级", "费用", "密码", "备份", "同步", "会议", "卡顿", "邮件", "配置", "权限",
)  # fmt: skip
TAIL_WORDS = tuple(f"词{n:04d}" for n in range(2000))
ASPECTS = ("speed", "professionalism", "attitude", "effectiveness", "overall")
TARGETS = {"P1": (15, 120, "24x7"), "P2": (30, 240, "24x7"), "P3": (120, 480, "working_hours"),
           "P4": (240, 1440, "working_hours")}  # fmt: skip


def _app(url: str) -> Any:
    os.environ.setdefault("CLOSEDLOOP_INSTANCE_PATH", str(Path("/tmp/closedloop-bench-instance")))
    from survey_app import create_app

    return create_app({"TESTING": True, "SECRET_KEY": "bench", "DATABASE_URL": url})


def _row_count(app: Any) -> int:
    from sqlalchemy import func, inspect, select

    from survey_app.extensions import db
    from survey_app.surveys.models import SurveyResponse

    with app.app_context():
        if "survey_response" not in inspect(db.engine).get_table_names():
            return -1
        return db.session.scalar(select(func.count()).select_from(SurveyResponse)) or 0


def _reset(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


#: The tables the loader fills in bulk (their indexes are built after the rows are in).
BIG_TABLES = (
    "customer",
    "ticket",
    "ticket_event",
    "ticket_sla",
    "invitation",
    "survey_response",
    "response_keyword",
    "response_aspect",
)


class BulkWriter:
    """Rows straight through the driver: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

    SQLAlchemy's per-value type processing made loading a million tickets take 26
    minutes; the driver takes the values as the column types store them.
    """

    def __init__(self, engine: Any) -> None:
        self.raw = engine.raw_connection()
        self.sqlite = engine.dialect.name == "sqlite"
        self.cursor = self.raw.cursor()
        self.dropped: list[str] = []
        if not self.sqlite:
            # As pg_restore --disable-triggers: no per-row trigger (the roll-ups' dirty marks,
            # idle before a build anyway) or foreign-key check while generated rows go in.
            self.cursor.execute("SET session_replication_role = replica")
        if self.sqlite:
            # Likewise no foreign-key check (the generated rows refer to rows written before
            # them); switched on again before the connection goes back to the pool.
            self.cursor.execute("PRAGMA foreign_keys = OFF")
            self.cursor.execute("PRAGMA synchronous = OFF")
            # The unique indexes stay while loading (they are constraints): a 1 GB page cache
            # keeps their B-trees in memory instead of re-reading pages for every row.
            self.cursor.execute("PRAGMA cache_size = -1000000")

    def execute(self, sql: str) -> None:
        self.cursor.execute(sql)

    def drop_indexes(self, tables: tuple[str, ...]) -> None:
        """Drop the plain (non-constraint) indexes of ``tables``, to build them once at the end."""
        names = ", ".join(f"'{t}'" for t in tables)
        if self.sqlite:
            self.cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({names})"
            )
        else:
            self.cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = 'public' "
                f"AND tablename IN ({names}) AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
        for name, sql in self.cursor.fetchall():
            self.cursor.execute(f'DROP INDEX "{name}"')
            self.dropped.append(sql)

    def restore_indexes(self) -> None:
        if self.sqlite:
            # Sorted on every core, in pieces the size of a small page cache (with the
            # loading's gigabyte, each index is sorted whole on one thread): 40 s -> 28 s.
            self.cursor.execute("PRAGMA cache_size = -16384")
            self.cursor.execute(f"PRAGMA threads = {os.cpu_count() or 1}")
        for sql in self.dropped:
            self.cursor.execute(sql)
        self.raw.commit()

    def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        names = ", ".join(columns)
        if self.sqlite:
            marks = ", ".join("?" for _ in columns)
            self.cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",
                [tuple(_sqlite_value(row[c]) for c in columns) for row in rows],
            )
            return
        from psycopg.types.json import Json

        with self.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        Json(v) if isinstance(v, dict | list) else v
                        for v in (row[c] for c in columns)
                    ]
                )

    def write_tuples(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """Rows already in the form the driver stores (see :func:`_load`)."""
        names = ", ".join(columns)
        if self.sqlite:
            # Many rows per statement: SQLite journals each statement of a table with
            # triggers or foreign keys, so executemany's one statement per row costs more.
            row = "(" + ", ".join("?" for _ in columns) + ")"
            size = max(1, min(500, 30_000 // len(columns)))
            full = len(rows) - len(rows) % size
            many = f"INSERT INTO {table} ({names}) VALUES " + ", ".join([row] * size)
            self.cursor.executemany(
                many,
                (
                    [value for one in rows[start : start + size] for value in one]
                    for start in range(0, full, size)
                ),
            )
            if full < len(rows):
                self.cursor.executemany(f"INSERT INTO {table} ({names}) VALUES {row}", rows[full:])
            return
        with self.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self.raw.commit()
        if not self.sqlite:
            self.cursor.execute("SET session_replication_role = DEFAULT")
            self.raw.commit()
        if self.sqlite:
            self.cursor.execute("PRAGMA cache_size = -2000")
            self.cursor.execute("PRAGMA threads = 0")
            self.cursor.execute("PRAGMA foreign_keys = ON")
        self.raw.close()


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it in SQLite (naive UTC text, 0/1, JSON text)."""
    if isinstance(value, datetime):
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        return text if len(text) > 19 else text + ".000000"  # SQLAlchemy's format
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _load(url: str, rows: int, days: int) -> float:
    """Migrate and fill the database; return the seconds it took."""
    import flask_migrate

    from survey_app.extensions import db

    started = time.perf_counter()
    _reset(url)
    app = _app(url)
    with app.app_context():
        flask_migrate.upgrade()
        engine = db.engine
        rng = random.Random(SEED)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        begin = end - timedelta(days=days)
        span = int((end - begin).total_seconds())
        customers = max(1, rows // 5)
        extra_invitations = rows // 4
        bulk = BulkWriter(engine)
        bulk.drop_indexes(BIG_TABLES)
        bulk.write(
            "survey_template",
            [{"id": 1, "name": "Bench", "channels": [], "tiers": [], "priority": 0,
              "active": True, "created_at": begin}],
        )  # fmt: skip
        bulk.write(
            "template_version",
            [{"id": 1, "template_id": 1, "number": 1, "status": "published", "intro": {},
              "created_at": begin}],
        )  # fmt: skip
        for first in range(1, customers + 1, BATCH):
            bulk.write(
                "customer",
                [
                    {"id": i, "source": "bench", "external_id": f"C{i}", "language": "zh_Hans",
                     "tier": "vip" if i % 10 == 0 else "standard", "is_new": i % 3 == 0,
                     "created_at": begin, "updated_at": begin}
                    for i in range(first, min(first + BATCH, customers + 1))
                ],
            )  # fmt: skip
        total_invitations = rows + extra_invitations  # a multiple of 5 for rows % 4 == 0
        batches = _made_elsewhere(
            lambda: _batches(rng, begin, span, customers, total_invitations, sqlite=bulk.sqlite)
        )
        for last, (tickets, events, facts, invitations, responses, words, said) in batches:
            bulk.write_tuples("ticket", TICKET_COLUMNS, tickets)
            bulk.write_tuples("ticket_event", EVENT_COLUMNS, events)
            bulk.write_tuples("ticket_sla", SLA_COLUMNS, facts)
            bulk.write_tuples("invitation", INVITATION_COLUMNS, invitations)
            if responses:
                bulk.write_tuples("survey_response", RESPONSE_COLUMNS, responses)
            if words:
                bulk.write_tuples("response_keyword", KEYWORD_COLUMNS, words)
            if said:
                bulk.write_tuples("response_aspect", ASPECT_COLUMNS, said)
            print(f"  loaded {last:,} tickets", flush=True)
        if engine.dialect.name == "postgresql":
            for table in (
                "customer",
                "ticket",
                "ticket_event",
                "invitation",
                "survey_response",
                "survey_template",
                "template_version",
            ):
                bulk.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )  # fmt: skip
        written = time.perf_counter()
        print(f"  rows written in {written - started:.0f} s; indexes ...", flush=True)
        bulk.restore_indexes()
        bulk.close()
        indexed = time.perf_counter()
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        loaded = time.perf_counter()
        print(
            f"  indexes built in {indexed - written:.0f} s, analysed in {loaded - indexed:.0f} s;"
            f" rows loaded in {loaded - started:.0f} s; building the roll-ups ...",
            flush=True,
        )
        from analysis.metrics.rollup import rebuild

        days = rebuild()
        built = time.perf_counter() - loaded
        print(f"  roll-ups of {days} days built in {built:.0f} s", flush=True)
        engine.dispose()
    return time.perf_counter() - started


Batch = tuple[list[tuple[Any, ...]], ...]


def _made_elsewhere(make: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """The items of ``make()``, generated in a forked process a few items ahead while this
    one writes them (the same items, in order: one generator, one random sequence). The
    child touches no database connection and ends with the process's ``os._exit``."""
    context = multiprocessing.get_context("fork")
    ready: Any = context.Queue(maxsize=3)

    def produce() -> None:
        for item in make():
            ready.put(item)
        ready.put(None)
        ready.close()
        ready.join_thread()

    child = context.Process(target=produce, daemon=True)
    child.start()
    try:
        while (item := ready.get()) is not None:
            yield item
    finally:
        if child.is_alive():
            child.terminate()
        child.join()


def _batches(
    rng: random.Random,
    begin: datetime,
    span: int,
    customers: int,
    total_invitations: int,
    *,
    sqlite: bool,
) -> Iterator[tuple[int, Batch]]:
    """The generated rows, :data:`BATCH` tickets at a time: (last ticket id, (tickets, close
    events, SLA facts, invitations, responses, their keywords, their aspects)) as tuples in
    the driver's form."""
    # SQLite: what SQLAlchemy stores (naive UTC text with microseconds, 0/1); PostgreSQL:
    # COPY's text form.
    stamp = "{}.000000".format if sqlite else "{}+00".format
    flag: Any = int if sqlite else bool
    naive_begin = begin.replace(tzinfo=None)
    tier_of = ["vip" if i % 10 == 0 else "standard" for i in range(customers + 1)]
    csat = (None, 2, 3, 4, 4, 5, 5, 5)
    nps_choices = (None, *range(11), 9, 10, 10)
    ces_choices = (None, *range(1, 8), 6, 7)
    reasons = ("fatigue", "sampled_out", "opted_out")
    priorities, weights = ("P1", "P2", "P3", "P4"), (1, 3, 4, 2)
    hour, three_hours = timedelta(hours=1), timedelta(hours=3)
    for first in range(1, total_invitations + 1, BATCH):
        tickets, events, facts, invitations, responses = [], [], [], [], []
        words: list[tuple[Any, ...]] = []
        said: list[tuple[Any, ...]] = []
        for i in range(first, min(first + BATCH, total_invitations + 1)):
            # Ids grow with time, as in a real helpdesk (and indexes fill in order).
            created = naive_begin + timedelta(
                seconds=span * (i - 1) // total_invitations + rng.randrange(3600)
            )
            priority = rng.choices(priorities, weights)[0]
            frt = int(rng.lognormvariate(7, 1))
            resolution = frt + int(rng.lognormvariate(9, 1))
            closed = created + timedelta(seconds=resolution + 600)
            team = rng.choice(TEAMS)
            channel = rng.choice(CHANNELS)
            customer_id = rng.randrange(1, customers + 1)
            product, region = rng.choice(PRODUCTS), rng.choice(REGIONS)
            agent = f"{team}-{rng.randrange(12)}"
            reopened = int(rng.random() < 0.05)
            contacts = 1 if rng.random() < 0.76 else rng.randint(2, 4)
            closed_text = stamp(closed)
            tickets.append(
                (i, "bench", f"T{i}", customer_id, channel, priority, product, region, team,
                 agent, "closed", stamp(created), stamp(created + timedelta(seconds=frt)),
                 stamp(created + timedelta(seconds=resolution)), closed_text, reopened,
                 contacts, closed_text, closed_text, closed_text)
            )  # fmt: skip
            response_target, resolution_target, clock = TARGETS[priority]
            response_breached = frt > response_target * 60
            resolution_breached = resolution > resolution_target * 60
            facts.append(
                (i, closed_text, clock, priority, response_target, resolution_target, frt,
                 resolution, frt, resolution, flag(response_breached),
                 flag(resolution_breached), flag(response_breached or resolution_breached),
                 closed_text)
            )  # fmt: skip
            events.append(
                (i, i, "closed", "bench", f"bench-{i}", closed_text, closed_text, flag(True),
                 "{}")
            )  # fmt: skip
            sent_at = closed + hour
            sent_text = stamp(sent_at)
            answered = i % 5 != 0  # four in five: --rows responses in all
            skipped = not answered and rng.random() < 0.5
            answered_text = stamp(sent_at + three_hours) if answered else None
            invitations.append(
                (i, i, customer_id, i, None if skipped else 1, "email",
                 "answered" if answered else "skipped" if skipped else "sent",
                 rng.choice(reasons) if skipped else None, f"n{i}", "zh_Hans", closed_text,
                 sent_text, None if skipped else sent_text, answered_text,
                 0 if skipped else 1)
            )  # fmt: skip
            if answered:
                scores = [rng.choice(csat) for _ in range(5)]
                comment = label = None
                if rng.randrange(COMMENTED) == 0:
                    label = _comment_rows(rng, i, scores[0], words, said)
                    comment = f"评论 {i}"
                responses.append(
                    (i, i, i, customer_id, 1, answered_text, "zh_Hans",
                     rng.choice(nps_choices), rng.choice(ces_choices), team, agent, channel,
                     priority, product, region, tier_of[customer_id],
                     flag(customer_id % 3 == 0), *scores, comment, label)
                )  # fmt: skip
        yield (
            min(first + BATCH - 1, total_invitations),
            (tickets, events, facts, invitations, responses, words, said),
        )


def _comment_rows(
    rng: random.Random,
    response_id: int,
    csat: int | None,
    words: list[tuple[Any, ...]],
    said: list[tuple[Any, ...]],
) -> str:
    """Add a commented response's keyword and aspect rows; return its sentiment label (of
    its CSAT mostly, as comments follow ratings)."""
    labels = ("negative", "neutral", "positive")
    guess = None if csat is None else 0 if csat <= 2 else 1 if csat == 3 else 2
    label = labels[guess] if guess is not None and rng.random() < 0.8 else rng.choice(labels)
    chosen: set[str] = set()
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.7:  # the head: a few words most of the time
            chosen.add(HEAD_WORDS[min(int(rng.paretovariate(1.0)) - 1, len(HEAD_WORDS) - 1)])
        else:
            chosen.add(rng.choice(TAIL_WORDS))
    words += [(response_id, word) for word in sorted(chosen)]
    for aspect in rng.sample(ASPECTS, rng.choice((0, 1, 1, 2))):
        said.append((response_id, aspect, 0.5, rng.choice((label, label, "neutral")), 1))
    return label


def _time(label: str, call: Any, repeats: int = 5) -> dict[str, Any]:
    call()  # warm-up: page cache and statement cache, as on a dashboard in use
    runs, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {
        "label": label,
        "best": min(runs),
        "median": statistics.median(runs),
        "cpu": statistics.median(cpu),
    }


def _measure(url: str) -> list[dict[str, Any]]:
    from analysis.metrics import OVERVIEW_KPIS, Scope, compute
    from survey_app.extensions import db
    from survey_app.models import Channel

    app = _app(url)
    results = []
    with app.app_context():
        today = date.today()
        last30 = Scope(start=today - timedelta(days=29), end=today)
        last90 = Scope(start=today - timedelta(days=89), end=today)
        year = Scope(start=today - timedelta(days=364), end=today)

        def overview(scope: Scope) -> Any:
            def run() -> None:
                compute(scope, metrics=OVERVIEW_KPIS, min_sample=30)
                compute(scope.previous(), metrics=OVERVIEW_KPIS, min_sample=30)
                db.session.rollback()

            return run

        results.append(_time("overview, last 30 days + previous 30", overview(last30)))
        results.append(_time("overview, last 90 days + previous 90", overview(last90)))
        results.append(_time("overview, last 365 days + previous 365", overview(year)))
        team = Scope(start=last30.start, end=last30.end, team=("Frontline",))
        results.append(_time("overview, last 30 days, team=Frontline", overview(team)))
        for days, scope in ((90, last90), (365, year)):
            phone = dataclasses.replace(scope, channel=(Channel.PHONE,))
            results.append(_time(f"overview, last {days} days, channel=phone", overview(phone)))
        results.append(
            _time(
                "every KPI, last 30 days, by team and by week",
                lambda: compute(last30, group_by="team", grain="week"),
                repeats=3,
            )
        )
        results.append(
            _time(
                "every KPI, last 365 days, by channel and by month",
                lambda: compute(year, group_by="channel", grain="month"),
                repeats=3,
            )
        )
        two = dataclasses.replace(team, channel=(Channel.PHONE,))
        results.append(
            _time(
                "overview, last 30 days, team=Frontline and channel=phone",
                overview(two),
            )
        )
        agent = dataclasses.replace(team, agent=("Frontline-3",))
        results.append(_time("overview, last 30 days, team and agent", overview(agent)))
        version = dataclasses.replace(last90, channel=(Channel.PHONE,), template_version=(1,))
        results.append(
            _time("overview, last 90 days, channel=phone and template version", overview(version))
        )
        n = compute(last30, metrics=["nps"]).overall["nps"].n
        client = _signed_in_client(app)
        pages = {
            "last 30 days": "",
            "last 365 days": f"&from={year.start}",
            "last 90 days, team=Frontline": f"&from={last90.start}&team=Frontline",
            "last 30 days, team=Frontline, channel=phone": "&team=Frontline&channel=phone",
            "last 30 days, team=Frontline, template version 1": (
                "&team=Frontline&template_version=1"
            ),
            "last 30 days, region, priority and product line": (
                "&region=华东&priority=P2&product_line=云存储"
            ),
            "last 365 days, team=Frontline, region and priority": (
                f"&from={year.start}&team=Frontline&region=华东&priority=P2"
            ),
            "last 365 days, region, priority and product line": (
                f"&from={year.start}&region=华东&priority=P2&product_line=云存储"
            ),
            "last 365 days, team=Frontline by agent": (
                f"&from={year.start}&team=Frontline&group_by=agent"
            ),
            # Other combinations over a year: filters deep in the index, agents, versions.
            **{
                f"last 365 days, {label}": f"&from={year.start}{query}"
                for label, query in YEAR_COMBINATIONS.items()
            },
        }
        lists = {  # the responses behind a number: a theme's, over a year
            "responses list (server), last 365 days, keyword 等待": (
                f"/dashboards/responses?to={today}&from={year.start}&keyword=等待"
            ),
        }
        urls = {
            f"dashboard page (server), {k}": f"/dashboards?to={today}{v}" for k, v in pages.items()
        }
        for label, url in {**urls, **lists}.items():

            def page(url: str = url) -> None:
                response = client.get(url)
                assert response.status_code == 200, response.status_code

            results.append(_time(label, page, repeats=3))
        db.engine.dispose()
    for result in results:
        result["n30"] = n
    return results


def _signed_in_client(app: Any) -> Any:
    """A test client signed in as an analyst (created in the benchmark database if missing)."""
    from flask import session
    from flask_login import login_user
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import Role, User

    user = db.session.scalar(select(User).where(User.email == "bench@example.com"))
    if user is None:
        user = User(email="bench@example.com", name="Bench", role=Role.ANALYST)
        user.set_password("bench-password-1234")
        db.session.add(user)
        db.session.commit()
    client = app.test_client()
    with app.test_request_context():
        login_user(user)
        values = dict(session)
    with client.session_transaction() as cookie:
        cookie.update(values)
    return client


def _postgres_reachable(url: str) -> bool:
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        target = make_url(url).set(database="postgres", drivername="postgresql")
        psycopg.connect(target.render_as_string(hide_password=False), connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    return True


def bench_targets(
    sqlite: str, postgres: str, *, use_postgres: bool, use_sqlite: bool = True
) -> list[tuple[str, str]]:
    """(name, URL) of the databases to measure: the SQLite file, and PostgreSQL if reachable."""
    targets = [("SQLite", f"sqlite:///{sqlite}")] if use_sqlite else []
    if use_postgres:
        if _postgres_reachable(postgres):
            targets.append(("PostgreSQL", postgres))
        else:
            print(f"PostgreSQL not reachable at {postgres}: skipped")
    return targets


def ensure_rows(name: str, url: str, rows: int, days: int, *, reload: bool = False) -> bool:
    """Load ``rows`` responses unless the database already holds that many; True if loaded."""
    existing = -1 if reload else _row_count(_app(url)) if _exists(url) else -1
    if existing == rows:
        _ensure_rollups(name, url)
        _ensure_statistics(name, url, loaded=False)
        return False
    print(f"{name}: loading {rows:,} responses ...", flush=True)
    print(f"{name}: loaded in {_load(url, rows, days):.0f} s", flush=True)
    _ensure_statistics(name, url, loaded=True)
    return True


def _ensure_rollups(name: str, url: str) -> None:
    """Build the roll-ups of a database loaded earlier, if they are not built."""
    from analysis.metrics.rollup import rebuild
    from analysis.metrics.rollup_tables import RollupState
    from survey_app.extensions import db

    app = _app(url)
    with app.app_context():
        if db.session.get(RollupState, 1) is None:
            started = time.perf_counter()
            days = rebuild()
            took = time.perf_counter() - started
            print(f"{name}: roll-ups of {days} days built in {took:.0f} s")
        db.engine.dispose()


def _ensure_statistics(name: str, url: str, *, loaded: bool) -> None:
    """The planner statistics and visibility map a deployment has: on SQLite what the
    ``analyse-database`` job leaves, on PostgreSQL a ``VACUUM (ANALYZE)`` after the bulk load
    (what autovacuum does within minutes of so many inserts: it is off on this project's
    machine; without it the roll-ups' covering indexes cannot be read index-only)."""
    from sqlalchemy import inspect, text

    from survey_app.extensions import db
    from survey_app.statistics import analyse_if_due

    app = _app(url)
    with app.app_context():
        started = time.perf_counter()
        if db.engine.dialect.name == "sqlite":
            done = analyse_if_due(int(app.config["SQLITE_ANALYSE_MIN_ROWS"]))
        elif loaded:
            tables = sorted(inspect(db.engine).get_table_names())
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as plain:
                for table in tables:
                    plain.execute(text(f'VACUUM (ANALYZE) "{table}"'))
            done = f"vacuumed and analysed {len(tables)} tables"
        else:
            done = "left to autovacuum"
        print(f"{name}: statistics {done} ({time.perf_counter() - started:.0f} s)", flush=True)
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="survey responses (tickets)")
    parser.add_argument("--days", type=int, default=365, help="days the data is spread over")
    parser.add_argument("--sqlite", default="/tmp/closedloop-bench.sqlite3")
    parser.add_argument("--postgres", default=PG_DEFAULT)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--reload", action="store_true", help="rebuild even if the data exists")
    args = parser.parse_args()

    targets = bench_targets(
        args.sqlite,
        args.postgres,
        use_postgres=not args.no_postgres,
        use_sqlite=not args.no_sqlite,
    )
    # CPU: this process's CPU time (for SQLite all of the work; for PostgreSQL the client's
    # share only), which a busy machine inflates far less than the wall clock.
    table = [
        "| database | query set | best | median | median CPU |",
        "|---|---|---:|---:|---:|",
    ]
    for name, url in targets:
        ensure_rows(name, url, args.rows, args.days, reload=args.reload)
        for result in _measure(url):
            table.append(
                f"| {name} | {result['label']} | {result['best'] * 1000:.0f} ms "
                f"| {result['median'] * 1000:.0f} ms | {result['cpu'] * 1000:.0f} ms |"
            )
        print(f"{name}: {result['n30']:,} NPS answers in the last 30 days")
    print("\n".join(table))


def _exists(url: str) -> bool:
    if url.startswith("sqlite"):
        return Path(url.removeprefix("sqlite:///")).exists()
    try:
        _row_count(_app(url))
    except Exception:  # noqa: BLE001 - no database yet
        return False
    return True


if __name__ == "__main__":
    main()
