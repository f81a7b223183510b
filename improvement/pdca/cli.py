"""``closedloop actions`` and ``closedloop pdca``: reminders, re-checks and the board from cron."""

from __future__ import annotations

from datetime import date

import click

from survey_app.extensions import db

from .checks import run_due_rechecks
from .common import local_today
from .lists import board, cycle_overdue
from .reminders import send_action_reminders
from .stages import run_scheduled_checks


@click.group("actions")
def actions_cli() -> None:
    """Action items of PDCA cycles."""


@actions_cli.command("remind")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Act as if today were this local date (default: today).",
)
def remind_command(today: object | None) -> None:
    """E-mail due-soon and overdue reminders to action owners; each is sent once per action
    and kind. Exits 1 if a message could not be sent (it is retried next time)."""
    day = today.date() if today is not None else None  # type: ignore[attr-defined]
    report = send_action_reminders(day)
    click.echo(f"{report.sent} reminders sent, {report.failed} failed.")
    if report.failed:
        raise SystemExit(1)


@click.group("pdca")
def pdca_cli() -> None:
    """PDCA improvement cycles."""


@pdca_cli.command("recheck")
def recheck_command() -> None:
    """Enter the scheduled Checks that are due (when their window has the minimum sample),
    then measure the 30 / 60 / 90-day re-checks that are due."""
    started = run_scheduled_checks()
    click.echo(f"{started} scheduled Checks started, {run_due_rechecks()} re-checks measured.")


@pdca_cli.command("list")
def list_command() -> None:
    """List the cycles by stage, tab-separated: id, stage, owner, KPI, target, overdue, title."""
    today: date = local_today()
    for stage, cycles in board().items():
        for cycle in cycles:
            click.echo(
                "\t".join(
                    [
                        f"#{cycle.id}",
                        stage.value,
                        cycle.owner.email,
                        cycle.kpi,
                        f"{cycle.target_value:g}",
                        "OVERDUE" if cycle_overdue(cycle, today) else "-",
                        cycle.title,
                    ]
                )
            )
    db.session.rollback()
