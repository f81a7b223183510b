"""Load test: customers answer surveys through gunicorn while tickets close and staff read.

What it does, in order:

1. builds a fresh database (SQLite in a temporary folder, or the PostgreSQL database
   given with ``--database-url``, whose public schema it resets) with the migrations,
   the default survey, one analyst, and ``--answers`` sent invitations, each with its
   own signed single-use link (``survey_app.surveys.links.make_token``);
2. starts gunicorn with ``survey_app/gunicorn_conf.py`` (``--workers``, preloaded);
3. runs an asyncio/aiohttp load generator with ``--concurrency`` customers at a time:
   each opens its link (GET, which also sets the session cookie and the form token)
   and submits (POST). Every 20th link is submitted a second time afterwards (must
   answer 409) and every 50th three times at once (exactly one may succeed). At the
   same time a helpdesk posts signed ``closed`` webhooks (``--webhook-rate`` a second)
   and an analyst reloads the quality dashboard (``--dashboard-rate`` a second);
4. reports, per route, the requests, requests/s over the run and p50/p95/p99
   latency, then checks in the database that every link has exactly one response,
   that the links answered are exactly those that got a success, and that no request
   got a 5xx. Exit status 1 when a check fails.

With ``--fault-command`` (say, restarting PostgreSQL) the command runs once, in the
middle of the load (after ``--fault-after`` links): customers then meet 503 "try again
shortly" answers and send again, as people do; the checks are the same, except that a
503 is allowed (never a 500) and a resent submit may find its first one stored (409).

Run (the figures in the README, "Production"):

    .venv/bin/python benchmarks/load_test.py --answers 10000
    .venv/bin/python benchmarks/load_test.py --answers 10000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/loadtest

The rate limits are raised for the run: every simulated customer comes from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SECRET_KEY = "load-test-" + "0" * 32
WEBHOOK_SECRET = "load-test-webhook-" + "1" * 32
PASSWORD = "load test analyst password"
ANALYST = "analyst@loadtest.example.com"
#: Every Nth link is submitted again after it was answered; every Mth three times at once.
DUPLICATE_EVERY = 20
CONCURRENT_EVERY = 50
CONCURRENT_SUBMITS = 3
#: High enough that one address (this generator) is never limited.
UNLIMITED = "10000000 per minute"
#: In a fault run, how often and after how long (growing) a 503 is tried again.
UNAVAILABLE_RETRIES = 40
UNAVAILABLE_PAUSE = 0.1


# --- preparing the database ---------------------------------------------------------------------


def server_environment(workdir: Path, database_url: str, workers: int, port: int) -> dict:
    """The environment of the gunicorn under test (and of the in-process set-up)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    env.update(
        CLOSEDLOOP_INSTANCE_PATH=str(workdir / "instance"),
        CLOSEDLOOP_DATABASE_URL=database_url,
        CLOSEDLOOP_SECRET_KEY=SECRET_KEY,
        CLOSEDLOOP_WEBHOOK_SECRET=WEBHOOK_SECRET,
        CLOSEDLOOP_PASSWORD_HASH_METHOD="pbkdf2:sha256:1000",
        CLOSEDLOOP_LOG_LEVEL="WARNING",
        CLOSEDLOOP_RATELIMIT_SURVEY=UNLIMITED,
        CLOSEDLOOP_RATELIMIT_WEBHOOK=UNLIMITED,
        CLOSEDLOOP_BIND=f"127.0.0.1:{port}",
        CLOSEDLOOP_WORKERS=str(workers),
        CLOSEDLOOP_THREADS=os.environ.get("CLOSEDLOOP_THREADS", "1"),
        CLOSEDLOOP_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    return env


def _app(env: dict) -> Any:
    os.environ.update({k: v for k, v in env.items() if k.startswith("CLOSEDLOOP_")})
    from survey_app import create_app

    return create_app()


def prepare(env: dict, answers: int, reset_postgres: bool) -> list[tuple[int, str]]:
    """Migrate, seed the survey, an analyst and ``answers`` sent invitations.

    Returns ``(invitation id, link token)`` pairs. Refuses a PostgreSQL database
    that already has tables unless ``reset_postgres``.
    """
    import flask_migrate
    from sqlalchemy import create_engine, inspect, text

    url = env["CLOSEDLOOP_DATABASE_URL"]
    Path(env["CLOSEDLOOP_INSTANCE_PATH"]).mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            if inspect(conn).get_table_names() and not reset_postgres:
                raise SystemExit(
                    "The PostgreSQL database has tables; pass --reset-postgres to empty its "
                    "public schema (use a database kept for load tests)."
                )
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = _app(env)
    with app.app_context():
        flask_migrate.upgrade()
        links = _seed(answers)
        from survey_app.extensions import db

        db.engine.dispose()
    return links


def _seed(answers: int) -> list[tuple[int, str]]:
    from survey_app.extensions import db
    from survey_app.models import (
        Channel,
        Customer,
        EventType,
        Priority,
        Role,
        Ticket,
        TicketEvent,
        TicketStatus,
        User,
    )
    from survey_app.surveys.links import make_token
    from survey_app.surveys.models import Invitation, InvitationStatus
    from survey_app.surveys.versions import ensure_default_template, published_version
    from survey_app.types import utcnow

    version = published_version(ensure_default_template())
    analyst = User(email=ANALYST, role=Role.ANALYST, name="Load test")
    analyst.set_password(PASSWORD)
    db.session.add(analyst)
    now = utcnow()
    rng = random.Random(8)
    invitations: list[Invitation] = []
    for first in range(0, answers, 1000):
        batch = []
        for number in range(first, min(first + 1000, answers)):
            closed = now - timedelta(hours=2, minutes=number % 600)
            customer = Customer(
                source="loadtest", external_id=f"LC{number}", email=f"c{number}@example.com"
            )
            ticket = Ticket(
                source="loadtest",
                external_id=f"LT{number}",
                customer=customer,
                channel=rng.choice(list(Channel)),
                priority=rng.choice(list(Priority)),
                team=rng.choice(("Frontline", "Backline", "Billing")),
                agent=f"agent-{number % 40}",
                status=TicketStatus.CLOSED,
                created_at=closed - timedelta(hours=3),
                first_response_at=closed - timedelta(hours=2, minutes=45),
                resolved_at=closed - timedelta(minutes=30),
                closed_at=closed,
            )
            event = TicketEvent(
                ticket=ticket,
                event=EventType.CLOSED,
                origin="loadtest",
                idempotency_key=f"loadtest-{number}",
                occurred_at=closed,
                payload={},
            )
            db.session.add_all([customer, ticket, event])
            batch.append((number, closed, customer, ticket, event))
        db.session.flush()
        for number, closed, customer, ticket, event in batch:
            invitation = Invitation(
                ticket=ticket,
                customer=customer,
                close_event_id=event.id,
                template_version=version,
                status=InvitationStatus.SENT,
                nonce=secrets.token_urlsafe(32),
                language="zh_Hans" if number % 2 else "en",
                created_at=closed,
                send_after=closed,
                sent_at=closed + timedelta(minutes=5),
                expires_at=now + timedelta(days=28),
                attempts=1,
            )
            db.session.add(invitation)
            invitations.append(invitation)
        db.session.flush()
    db.session.commit()
    return [(invitation.id, make_token(invitation)) for invitation in invitations]


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(env: dict, workdir: Path) -> subprocess.Popen:
    """Start gunicorn (own process group) and wait until /readyz answers 200."""
    import urllib.request

    log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115  (closed with the process)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:survey_app.gunicorn_conf",
            "survey_app:create_app()",
        ],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://{env['CLOSEDLOOP_BIND']}/readyz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited; see {workdir / 'gunicorn.log'}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(process)
    raise SystemExit("gunicorn did not become ready within 60 s")


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- the load -----------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Latencies (seconds) and statuses per route label."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)
    #: During a fault run: a 503 ("try again shortly") is retried, and counted here.
    retry_unavailable: bool = False
    retried: int = 0

    def add(self, route: str, status: int, seconds: float) -> None:
        self.latencies[route].append(seconds)
        self.statuses[route][status] += 1


@dataclass
class Outcome:
    recorder: Recorder
    wall_seconds: float
    answered: set[int]
    duplicate_checks: int
    concurrent_checks: int
    webhooks: int
    problems: list[str]


async def _request(
    session: Any, recorder: Recorder, route: str, method: str, url: str, **kwargs: Any
) -> tuple[int, str, Any]:
    """One request; while ``recorder.retry_unavailable``, a 503 is retried as a person would."""
    for attempt in range(UNAVAILABLE_RETRIES + 1):
        started = time.perf_counter()
        async with session.request(method, url, allow_redirects=False, **kwargs) as answer:
            body = await answer.text()
            recorder.add(route, answer.status, time.perf_counter() - started)
        if answer.status != 503 or not recorder.retry_unavailable:
            break
        recorder.retried += 1
        await asyncio.sleep(UNAVAILABLE_PAUSE * (attempt + 1))
    return answer.status, body, answer


def _cookie_header(answer: Any) -> str:
    return "; ".join(f"{name}={morsel.value}" for name, morsel in answer.cookies.items())


async def answer_one(
    session: Any, base: str, recorder: Recorder, index: int, link: tuple[int, str], problems: list
) -> tuple[int, bool, str]:
    """One customer: open the link, submit; maybe again or several at once.

    Returns ``(invitation id, answered, kind)``.
    """
    invitation_id, token = link
    url = f"{base}/s/{token}"
    status, body, answer = await _request(session, recorder, "GET /s/<token>", "GET", url)
    match = CSRF_RE.search(body)
    if status != 200 or not match:
        problems.append(f"link {invitation_id}: GET answered {status}")
        return invitation_id, False, "failed"
    rng = random.Random(index)
    form = {
        "csrf_token": match.group(1),
        "csat_overall": str(rng.randint(1, 5)),
        "csat_speed": str(rng.randint(1, 5)),
        "nps": str(rng.randint(0, 10)),
        "ces": str(rng.randint(1, 7)),
        "comment": rng.choice(("", "回复很快，谢谢", "Waited two days for a reply", "还行")),
    }
    headers = {"Cookie": _cookie_header(answer)}

    async def submit() -> int:
        code, _body, _answer = await _request(
            session, recorder, "POST /s/<token>", "POST", url, data=form, headers=headers
        )
        return code

    if index % CONCURRENT_EVERY == 1:
        codes = sorted(await asyncio.gather(*(submit() for _ in range(CONCURRENT_SUBMITS))))
        if codes != [302] + [409] * (CONCURRENT_SUBMITS - 1):
            problems.append(f"link {invitation_id}: concurrent submits answered {codes}")
        return invitation_id, 302 in codes, "concurrent"
    retried_before = recorder.retried
    code = await submit()
    if code == 409 and recorder.retry_unavailable and recorder.retried > retried_before:
        # A 503 may hide a commit whose answer was lost with the connection; the
        # database check afterwards says whether this link has its one response.
        return invitation_id, True, "ambiguous"
    if code != 302:
        problems.append(f"link {invitation_id}: submit answered {code}")
        return invitation_id, False, "failed"
    if index % DUPLICATE_EVERY == 0:
        again = await submit()
        if again != 409:
            problems.append(f"link {invitation_id}: second submit answered {again}")
        return invitation_id, True, "duplicate"
    return invitation_id, True, "single"


async def helpdesk(
    session: Any, base: str, recorder: Recorder, rate: float, done: asyncio.Event
) -> int:
    """Post signed ``closed`` events at ``rate`` a second until ``done``; return how many."""
    from survey_app.intake.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    sent = 0
    while not done.is_set() and rate > 0:
        sent += 1
        payload = {
            "event": "closed",
            "ticket": {
                "external_id": f"WH-{sent}",
                "channel": "chat",
                "priority": "P3",
                "team": "Frontline",
                "agent": "王芳",
                "created_at": "2026-11-01T09:00:00+08:00",
                "first_response_at": "2026-11-01T09:10:00+08:00",
                "resolved_at": "2026-11-01T11:00:00+08:00",
                "closed_at": "2026-11-01T12:00:00+08:00",
            },
            "customer": {"external_id": f"WHC-{sent}", "email": f"wh{sent}@example.com"},
        }
        body = json.dumps(payload).encode()
        stamp = int(time.time())
        headers = {
            SIGNATURE_HEADER: sign(WEBHOOK_SECRET, stamp, body),
            TIMESTAMP_HEADER: str(stamp),
            "Content-Type": "application/json",
        }
        await _request(
            session, recorder, "POST /api/v1/ticket-events", "POST",
            f"{base}/api/v1/ticket-events", data=body, headers=headers,
        )  # fmt: skip
        await _sleep_or_done(done, 1 / rate)
    return sent


async def analyst(
    session: Any, base: str, recorder: Recorder, rate: float, done: asyncio.Event
) -> None:
    """Sign in, then reload the quality dashboard at ``rate`` a second until ``done``."""
    if rate <= 0:
        return
    status, body, answer = await _request(session, recorder, "GET /login", "GET", f"{base}/login")
    cookie = _cookie_header(answer)
    form = {"csrf_token": CSRF_RE.search(body).group(1), "email": ANALYST, "password": PASSWORD}
    status, _body, answer = await _request(
        session, recorder, "POST /login", "POST", f"{base}/login",
        data=form, headers={"Cookie": cookie},
    )  # fmt: skip
    cookie = _cookie_header(answer) or cookie
    while not done.is_set():
        await _request(
            session, recorder, "GET /dashboards", "GET", f"{base}/dashboards",
            headers={"Cookie": cookie},
        )  # fmt: skip
        await _sleep_or_done(done, 1 / rate)


async def _sleep_or_done(done: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=seconds)


async def baseline(base: str, requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` GET /healthz through the same server and client: what this machine
    does per second with no database, no template and no form (the ceiling to compare)."""
    import aiohttp

    recorder = Recorder()
    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        remaining = iter(range(requests))

        async def stream() -> None:
            for _ in remaining:
                await _request(session, recorder, "GET /healthz", "GET", f"{base}/healthz")

        cpu, started = _cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
        await asyncio.gather(*(stream() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies = recorder.latencies["GET /healthz"]
    return {
        "requests": requests,
        "rps": round(requests / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "generator_cpu_seconds": round(_cpu_seconds(resource.RUSAGE_SELF) - cpu, 1),
        "statuses": dict(recorder.statuses["GET /healthz"]),
    }


async def run_load(
    base: str,
    links: list[tuple[int, str]],
    concurrency: int,
    webhook_rate: float,
    dashboard_rate: float,
    fault: Callable[[], None] | None = None,
    fault_after: int = 0,
) -> Outcome:
    """Answer every link; with ``fault``, call it (in a thread, load going on) once
    ``fault_after`` links are done, and retry 503 answers from then on."""
    import aiohttp

    recorder = Recorder(retry_unavailable=fault is not None)
    fault_task: asyncio.Task | None = None
    problems: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    jar = aiohttp.DummyCookieJar()  # every customer carries their own cookie
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=jar, timeout=timeout
    ) as session:
        done = asyncio.Event()
        background = [
            asyncio.create_task(helpdesk(session, base, recorder, webhook_rate, done)),
            asyncio.create_task(analyst(session, base, recorder, dashboard_rate, done)),
        ]
        queue = iter(enumerate(links))
        results: list[tuple[int, bool, str]] = []

        async def customer_stream() -> None:
            nonlocal fault_task
            for index, link in queue:
                results.append(await answer_one(session, base, recorder, index, link, problems))
                if fault and fault_task is None and len(results) >= fault_after:
                    fault_task = asyncio.create_task(asyncio.to_thread(fault))

        started = time.perf_counter()
        await asyncio.gather(*(customer_stream() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        if fault_task is not None:
            await fault_task
        elif fault is not None:
            problems.append(f"the fault never ran: fewer than {fault_after} links")
        done.set()
        webhooks, _ = await asyncio.gather(*background)
    kinds = Counter(kind for _id, _ok, kind in results)
    if kinds["ambiguous"]:
        print(f"{kinds['ambiguous']} submits retried after a 503 found their first one stored")
    return Outcome(
        recorder=recorder,
        wall_seconds=wall,
        answered={invitation_id for invitation_id, ok, _kind in results if ok},
        duplicate_checks=kinds["duplicate"],
        concurrent_checks=kinds["concurrent"],
        webhooks=webhooks,
        problems=problems,
    )


# --- checking and reporting ---------------------------------------------------------------------


def verify(env: dict, links: list[tuple[int, str]], outcome: Outcome) -> list[str]:
    """Database checks: one response per answered link, none lost, none extra, no 5xx."""
    from sqlalchemy import func, select

    from survey_app.extensions import db
    from survey_app.models import Ticket
    from survey_app.surveys.models import Invitation, InvitationStatus, SurveyResponse

    problems = list(outcome.problems)
    app = _app(env)
    with app.app_context():
        per_invitation = dict(
            db.session.execute(
                select(SurveyResponse.invitation_id, func.count()).group_by(
                    SurveyResponse.invitation_id
                )
            ).all()
        )
        answered_status = set(
            db.session.scalars(
                select(Invitation.id).where(Invitation.status == InvitationStatus.ANSWERED)
            )
        )
        webhook_tickets = db.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.external_id.like("WH-%"))
        )
        db.engine.dispose()
    doubled = [i for i, n in per_invitation.items() if n != 1]
    if doubled:
        problems.append(f"{len(doubled)} links have more than one response: {doubled[:5]}")
    stored = set(per_invitation)
    if stored != outcome.answered:
        problems.append(
            f"responses for {len(stored - outcome.answered)} links that got no success, "
            f"none for {len(outcome.answered - stored)} that did"
        )
    lost = {invitation_id for invitation_id, _token in links} - stored
    if lost:
        problems.append(f"{len(lost)} links lost (no response stored)")
    if answered_status != stored:
        problems.append("invitation status 'answered' disagrees with the stored responses")
    webhook_ok = outcome.recorder.statuses["POST /api/v1/ticket-events"]
    accepted = sum(n for code, n in webhook_ok.items() if 200 <= code < 300)
    if webhook_tickets != accepted:
        problems.append(f"{accepted} webhooks accepted but {webhook_tickets} tickets stored")
    for route, statuses in outcome.recorder.statuses.items():
        # In a fault run a 503 ("try again shortly", retried) is the expected answer.
        allowed = {503} if outcome.recorder.retry_unavailable else set()
        server_errors = sum(
            n for code, n in statuses.items() if code >= 500 and code not in allowed
        )
        if server_errors:
            problems.append(f"{route}: {server_errors} answers 5xx")
    return problems


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (the smallest value with ``share`` of the values at or below)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def summary(outcome: Outcome) -> dict[str, dict[str, float]]:
    """Per route: requests, requests/s over the whole run, p50/p95/p99/max in ms, statuses."""
    rows = {}
    for route, values in sorted(outcome.recorder.latencies.items()):
        rows[route] = {
            "requests": len(values),
            "rps": round(len(values) / outcome.wall_seconds, 1),
            "p50_ms": round(percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1),
            "statuses": dict(sorted(outcome.recorder.statuses[route].items())),
        }
    return rows


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _server_cpu_seconds(server: subprocess.Popen) -> float:
    """CPU so far of gunicorn's process group (master, workers, and workers it reaped)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == server.pid:  # process group: start_gunicorn's new session
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def print_report(report: dict) -> None:
    print(
        f"\n{report['answers']} answers, {report['database']}, {report['workers']} gunicorn "
        f"workers, concurrency {report['concurrency']}, {report['wall_seconds']:.1f} s; "
        f"{report['submits_per_second']:.1f} successful submits/s"
    )
    print(f"{'route':<28}{'requests':>9}{'req/s':>8}{'p50':>8}{'p95':>8}{'p99':>8}  statuses")
    for route, row in report["routes"].items():
        print(
            f"{route:<28}{row['requests']:>9}{row['rps']:>8}{row['p50_ms']:>8}"
            f"{row['p95_ms']:>8}{row['p99_ms']:>8}  {row['statuses']}"
        )
    answers = report["answers"]
    print(
        f"CPU: server {report['server_cpu_seconds']} s ("
        f"{report['server_cpu_seconds'] * 1000 / answers:.1f} ms per answer, webhooks and "
        f"dashboard included), load generator {report['generator_cpu_seconds']} s"
    )
    if report["baseline_healthz"]:
        line = report["baseline_healthz"]
        print(
            f"baseline, same server and client: {line['requests']} GET /healthz at "
            f"{line['rps']} req/s (p50 {line['p50_ms']} ms, p95 {line['p95_ms']} ms), "
            f"CPU server {line['server_cpu_seconds']} s, generator "
            f"{line['generator_cpu_seconds']} s, statuses {line['statuses']}"
        )
    if report["retried_503"]:
        print(f"503 answers retried (fault run): {report['retried_503']}")
    checks = report["problems"] or ["all passed"]
    print(
        f"checks ({report['duplicate_checks']} duplicate, {report['concurrent_checks']} "
        f"concurrent, {report['webhooks']} webhooks): " + "; ".join(checks[:10])
    )


def run(options: argparse.Namespace) -> dict:
    """Prepare, serve, load, verify; return the report (also written to ``--json``)."""
    if options.workdir:
        workdir = Path(options.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="closedloop-load-"))
    database_url = options.database_url or f"sqlite:///{workdir / 'closedloop.sqlite3'}"
    port = free_port()
    env = server_environment(workdir, database_url, options.workers, port)
    started = time.perf_counter()
    links = prepare(env, options.answers, options.reset_postgres)
    print(f"prepared {len(links)} links in {time.perf_counter() - started:.1f} s ({workdir})")
    server = start_gunicorn(env, workdir)
    fault = None
    if options.fault_command:

        def fault() -> None:
            print(f"fault after {options.fault_after} links: {options.fault_command}")
            # Output to a file, not a pipe: a restarted server would hold a pipe open.
            with open(workdir / "fault.log", "ab") as output:
                subprocess.run(
                    options.fault_command, shell=True, check=True,  # noqa: S602
                    stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                )  # fmt: skip

    base_line = None
    try:
        if options.baseline:
            server_before = _server_cpu_seconds(server)
            base_line = asyncio.run(
                baseline(f"http://127.0.0.1:{port}", options.baseline, options.concurrency)
            )
            base_line["server_cpu_seconds"] = round(_server_cpu_seconds(server) - server_before, 1)
        server_before = _server_cpu_seconds(server)
        generator_before = _cpu_seconds(resource.RUSAGE_SELF)
        outcome = asyncio.run(
            run_load(
                f"http://127.0.0.1:{port}",
                links,
                options.concurrency,
                options.webhook_rate,
                options.dashboard_rate,
                fault=fault,
                fault_after=options.fault_after,
            )
        )
        generator_cpu = _cpu_seconds(resource.RUSAGE_SELF) - generator_before
        server_cpu = _server_cpu_seconds(server) - server_before
    finally:
        stop_gunicorn(server)
    problems = verify(env, links, outcome)
    report = {
        "answers": options.answers,
        "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
        "workers": options.workers,
        "concurrency": options.concurrency,
        "wall_seconds": round(outcome.wall_seconds, 2),
        "submits_per_second": round(len(outcome.answered) / outcome.wall_seconds, 1),
        "duplicate_checks": outcome.duplicate_checks,
        "concurrent_checks": outcome.concurrent_checks,
        "webhooks": outcome.webhooks,
        "retried_503": outcome.recorder.retried,
        "baseline_healthz": base_line,
        "routes": summary(outcome),
        # The survey load only; the server's is gunicorn's master and workers.
        "server_cpu_seconds": round(server_cpu, 1),
        "generator_cpu_seconds": round(generator_cpu, 1),
        "problems": problems,
        "workdir": str(workdir),
    }
    if options.json:
        Path(options.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=10_000, help="links to answer")
    parser.add_argument("--concurrency", type=int, default=16, help="customers at a time")
    parser.add_argument(
        "--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1, help="gunicorn workers"
    )
    parser.add_argument("--webhook-rate", type=float, default=20.0, help="webhooks a second")
    parser.add_argument("--dashboard-rate", type=float, default=1.0, help="dashboard reads/s")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL (default: a new SQLite file)"
    )
    parser.add_argument(
        "--reset-postgres", action="store_true", help="empty that database's public schema"
    )
    parser.add_argument(
        "--fault-command",
        default=None,
        help="shell command run once mid-load (e.g. restart PostgreSQL); 503s are then retried",
    )
    parser.add_argument(
        "--fault-after", type=int, default=0, help="links answered before the fault command"
    )
    parser.add_argument(
        "--baseline",
        type=int,
        default=0,
        help="first send this many GET /healthz (no database, no page): the ceiling",
    )
    parser.add_argument("--json", default=None, help="also write the report to this file")
    parser.add_argument("--workdir", default=None, help="folder for the database and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    report = run(parse_args(argv))
    print_report(report)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT))
    raise SystemExit(main())
