"""``closedloop demo``: a realistic, repeatable demo data set.

Tickets go through :func:`apply_ticket_event`, the operation behind the
webhook, with fixed idempotency keys: running the command twice changes
nothing the second time.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import click
from blinker import Namespace
from flask import current_app

from . import running_app
from .auth.services import create_user, find_user
from .demo_clock import DemoClock
from .demo_surveys import seed_demo_surveys
from .extensions import db
from .intake.schemas import TicketEventIn
from .intake.services import Outcome, apply_ticket_event
from .models import Role
from .surveys.links import open_invitations, public_url, survey_links
from .types import utcnow

_signals = Namespace()
#: Sent by ``closedloop demo`` once the shell's demo data is committed; ``sender`` is the
#: app, ``started_at`` when the command started. ``analysis`` and ``improvement`` add their
#: part of the demo by subscribing (the shell imports neither); a receiver returns one line
#: for the summary, or None.
demo_seeded = _signals.signal("demo-seeded")

DEMO_PASSWORD = "closedloop-demo"
#: How many unanswered survey links ``closedloop demo`` prints.
DEMO_LINKS = 3
DEMO_USERS = (
    ("admin@example.com", Role.ADMIN, "演示管理员 Demo Admin"),
    ("manager@example.com", Role.MANAGER, "王经理 Wang (manager)"),
    ("analyst@example.com", Role.ANALYST, "李分析 Li (quality analyst)"),
)
ROLE_NAMES = {Role.ADMIN: "admin", Role.MANAGER: "manager", Role.ANALYST: "quality analyst"}
TEAMS = {
    "一线支持 Frontline": ["王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊"],
    "技术支持 Technical": ["赵强", "黄敏", "周杰", "吴婷"],
    "账务 Billing": ["徐丽", "孙浩", "马超"],
    "VIP 专席 VIP desk": ["朱琳", "胡军"],
}
CHANNELS = {"phone": 30, "chat": 30, "email": 20, "app": 12, "wechat": 8}
PRIORITIES = {"P1": 4, "P2": 14, "P3": 46, "P4": 36}
PRODUCT_LINES = ["云存储", "支付网关", "移动应用", "企业邮箱"]
REGIONS = ["华东", "华北", "华南", "西南"]
CATEGORIES = ["账号登录", "计费账单", "性能故障", "配置咨询", "功能建议"]
#: Typical first-response and resolution minutes per priority (medians, before the tail),
#: working minutes for P3/P4 (and for P1/P2 waiting for the morning).
TIMINGS = {"P1": (6, 45), "P2": (12, 90), "P3": (40, 180), "P4": (80, 480)}
#: Share of P1/P2 tickets opened after hours that the on-call engineer answers at once;
#: the rest wait for the morning like P3/P4.
ON_CALL = {"P1": 0.8, "P2": 0.35}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华"


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def demo_events(
    customers: int = 600,
    tickets: int = 3000,
    seed: int = 20261122,
    clock: DemoClock | None = None,
) -> list[dict]:
    """Return webhook-shaped ``closed`` events for a plausible 90 days of support work.

    Tickets arrive on the demo team's clock (:mod:`survey_app.demo_clock`: busy working
    hours, quiet nights, weekends and public holidays); first responses and P3/P4
    resolutions take working minutes, so a ticket opened after hours waits for the next
    opening, except a P1/P2 that the on-call engineer picks up (:data:`ON_CALL`).
    Deterministic for a given seed (except that times count back from now: the times
    come from their own random stream, so the rest does not depend on them).
    """
    clock = clock or DemoClock()
    rng = random.Random(seed)
    times = random.Random(f"{seed}:clock")
    now = utcnow().replace(second=0, microsecond=0)
    arrivals = clock.arrivals(now - timedelta(days=90), now - timedelta(days=5))
    people = []
    for number in range(1, customers + 1):
        name = (
            rng.choice(SURNAMES)
            + rng.choice(GIVEN)
            + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
        )
        people.append(
            {
                "external_id": f"DEMO-C{number:04d}",
                "name": name,
                "email": f"customer{number:04d}@example.com",
                "phone": f"+86 138{rng.randrange(10**8):08d}",
                "language": "en" if rng.random() < 0.2 else "zh-CN",
                "tier": "vip" if rng.random() < 0.1 else "standard",
            }
        )
    events = []
    for number in range(1, tickets + 1):
        customer = rng.choice(people)
        team = rng.choice(list(TEAMS)) if customer["tier"] != "vip" else "VIP 专席 VIP desk"
        priority = _weighted(rng, PRIORITIES)
        # A ticket that would close after now (a long holiday wait) arrives at another time.
        while True:
            created, first_response_at, resolved_at, closed_at = _ticket_times(
                clock, arrivals.draw(times), priority, times
            )
            if closed_at <= now:
                break
        contacts = 1 if rng.random() < 0.76 else rng.randint(2, 4)
        events.append(
            {
                "event": "closed",
                "event_id": f"demo-{number:05d}",
                "occurred_at": closed_at.isoformat(),
                "ticket": {
                    "source": "demo",
                    "external_id": f"DEMO-T{number:05d}",
                    "subject": f"{rng.choice(CATEGORIES)} #{number}",
                    "channel": _weighted(rng, CHANNELS),
                    "priority": priority,
                    "category": rng.choice(CATEGORIES),
                    "product_line": rng.choice(PRODUCT_LINES),
                    "region": rng.choice(REGIONS),
                    "team": team,
                    "agent": rng.choice(TEAMS[team]),
                    "created_at": created.isoformat(),
                    "first_response_at": first_response_at.isoformat(),
                    "resolved_at": resolved_at.isoformat(),
                    "closed_at": closed_at.isoformat(),
                    "reopen_count": 1 if rng.random() < 0.05 else 0,
                    "contact_count": contacts,
                },
                "customer": customer,
            }
        )
    return events


def _ticket_times(
    clock: DemoClock, created: datetime, priority: str, rng: random.Random
) -> tuple[datetime, datetime, datetime, datetime]:
    """Created, first response, resolution and close of one ticket on the team's clock."""
    frt_median, tat_median = TIMINGS[priority]
    # Log-normal times: most tickets inside the SLA, a realistic tail over it.
    first_response = max(1.0, rng.lognormvariate(math.log(frt_median), 0.7))
    resolution = max(5.0, rng.lognormvariate(math.log(tat_median), 0.7))
    urgent = priority in ON_CALL
    if urgent and clock.is_working_time(created):
        first_response_at = created + timedelta(minutes=first_response)
    elif urgent and rng.random() < ON_CALL[priority]:
        # Paged at night: slower than by day, but every minute counts.
        first_response_at = created + timedelta(minutes=first_response * 2)
    else:
        first_response_at = clock.add_working_minutes(created, first_response)
    if urgent:
        resolved_at = first_response_at + timedelta(minutes=resolution)
    else:
        resolved_at = clock.add_working_minutes(first_response_at, resolution)
    # Closed when the customer confirms or the ticket closes itself, any time of day.
    closed_at = resolved_at + timedelta(minutes=rng.randrange(5, 48 * 60))
    return created, first_response_at, resolved_at, closed_at


def seed_demo(customers: int = 600, tickets: int = 3000) -> dict[str, int]:
    """Create the demo accounts and tickets that are missing; return counts by outcome."""
    created_users = 0
    for email, role, name in DEMO_USERS:
        if find_user(email) is None:
            create_user(email, DEMO_PASSWORD, role, name=name)
            created_users += 1
    counts = {outcome.value: 0 for outcome in Outcome}
    clock = DemoClock.from_config(current_app.config)
    for number, payload in enumerate(demo_events(customers, tickets, clock=clock), start=1):
        event = TicketEventIn.model_validate(payload)
        result = apply_ticket_event(
            event,
            idempotency_key=event.idempotency_key(b""),
            origin="demo",
            payload=payload,
            invite=False,
        )
        counts[result.outcome.value] += 1
        if number % 500 == 0:
            db.session.commit()
    db.session.commit()
    counts["users"] = created_users
    counts["responses"] = seed_demo_surveys(clock=clock)
    return counts


@click.command("demo")
@click.option("--tickets", default=3000, show_default=True, help="How many closed tickets.")
@click.option("--customers", default=600, show_default=True, help="How many customers.")
def demo_command(tickets: int, customers: int) -> None:
    """Seed demo accounts and 90 days of closed tickets (safe to run again).

    Ends with the accounts to sign in with and a few survey links still waiting
    for the customer's answer, to open and answer.
    """
    started_at = utcnow()
    counts = seed_demo(customers=customers, tickets=tickets)
    click.echo(
        f"Demo data: {counts['created']} tickets created, {counts['duplicate']} already there; "
        f"{counts['users']} accounts created; {counts['responses']} survey answers added."
    )
    for _receiver, line in demo_seeded.send(running_app(), started_at=started_at):
        if line:
            click.echo(line)
    click.echo("")
    click.echo(f"Sign in at {public_url('auth.login')} with password {DEMO_PASSWORD} as:")
    for email, role, _name in DEMO_USERS:
        click.echo(f"  {email:<22} {ROLE_NAMES[role]}")
    links = survey_links(open_invitations("demo", DEMO_LINKS))
    if links:
        click.echo("Survey links waiting for the customer's answer (open one to answer it):")
        for invitation, link in links:
            click.echo(f"  {invitation.ticket.external_id}  {link}")
        click.echo("More: closedloop surveys link <ticket>.")
