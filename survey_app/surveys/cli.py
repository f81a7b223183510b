"""``closedloop surveys``: run due survey work once (for cron)."""

from __future__ import annotations

import click

from .invitations import dispatch_due


@click.group("surveys")
def surveys_cli() -> None:
    """Survey invitations."""


@surveys_cli.command("dispatch")
def dispatch_command() -> None:
    """Send or skip every due invitation and reminder, once.

    Safe to run from cron every minute, and next to a worker: an invitation is
    claimed before it is sent, so no customer is mailed twice.
    """
    report = dispatch_due()
    click.echo(
        f"{report.sent} sent, {report.skipped} skipped, {report.retried} to retry, "
        f"{report.failed} failed, {report.reminded} reminders."
    )
