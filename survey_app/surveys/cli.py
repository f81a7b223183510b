"""``closedloop surveys``: run due survey work once (for cron); show a ticket's survey links."""

from __future__ import annotations

import click
from sqlalchemy import select

from ..extensions import db
from ..models import Ticket
from ..types import utcnow
from .invitations import dispatch_due
from .links import survey_links
from .models import Invitation, InvitationStatus


class TicketNotFound(click.ClickException):
    """No such ticket, or one external id in several sources (exit status 2)."""

    exit_code = 2


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


@surveys_cli.command("link")
@click.argument("ticket")
@click.option("--source", help="The ticket's source (helpdesk), when the id is in several.")
def link_command(ticket: str, source: str | None) -> None:
    """Print the survey link of each invitation of TICKET (its external id), with status.

    Status is pending (not sent yet: the link works once it is), sent, answered
    (the link says so), or skipped / failed (never sent) / cancelled (the ticket
    reopened), which have no link.
    Exits with status 2 when no ticket has that id, or when it is in several
    sources and --source is not given.
    """
    found = _ticket(ticket, source)
    invitations = db.session.scalars(
        select(Invitation)
        .where(Invitation.ticket_id == found.id)
        .order_by(Invitation.created_at, Invitation.id)
    ).all()
    click.echo(f"Ticket {found.external_id} (source {found.source}, status {found.status.value})")
    if not invitations:
        click.echo("  no survey invitation: one is made when the ticket closes.")
    for invitation, link in survey_links(list(invitations)):
        status = invitation.status.value
        if invitation.skip_reason is not None:
            status += f" ({invitation.skip_reason.value})"
        click.echo(f"  {status:<10} {link or '-'}{_when(invitation)}")


def _ticket(external_id: str, source: str | None) -> Ticket:
    query = select(Ticket).where(Ticket.external_id == external_id.strip())
    if source:
        query = query.where(Ticket.source == source)
    tickets = db.session.scalars(query.order_by(Ticket.source)).all()
    where = f" in source {source!r}" if source else ""
    if not tickets:
        raise TicketNotFound(f"No ticket {external_id!r}{where}.")
    if len(tickets) > 1:
        sources = ", ".join(t.source for t in tickets)
        raise TicketNotFound(
            f"Ticket {external_id!r} exists in several sources ({sources}): add --source."
        )
    return tickets[0]


def _when(invitation: Invitation) -> str:
    if invitation.answered_at is not None:
        return f"  (answered {invitation.answered_at:%Y-%m-%d %H:%M} UTC)"
    if invitation.status is InvitationStatus.SENT and invitation.expires_at is not None:
        verb = "expired" if invitation.expires_at <= utcnow() else "expires"
        return f"  ({verb} {invitation.expires_at:%Y-%m-%d %H:%M} UTC)"
    if invitation.status in (InvitationStatus.PENDING, InvitationStatus.SENDING):
        return f"  (due {invitation.send_after:%Y-%m-%d %H:%M} UTC)"
    return ""
