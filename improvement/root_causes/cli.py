"""``closedloop cases``: the triage queue, opening cases and the Pareto from the command line."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from survey_app.extensions import db
from survey_app.models import Ticket
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from .cases import open_case_for_response, open_case_for_ticket, scan_responses
from .models import CaseStatus
from .pareto import root_cause_pareto
from .queue import OPEN_FILTER, case_queue


@click.group("cases")
def cases_cli() -> None:
    """Root-cause cases opened from low feedback."""


@cases_cli.command("list")
@click.option(
    "--status",
    type=click.Choice([OPEN_FILTER, "any", *CaseStatus]),
    default=OPEN_FILTER,
    show_default=True,
    help="Case status; open = new or in progress.",
)
@click.option("--overdue", is_flag=True, help="Only cases past their call-back deadline.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def list_command(status: str, overdue: bool, limit: int) -> None:
    """List cases, the most urgent call-back first, one per line (tab-separated).

    Columns: case, status, ticket, call-back due (UTC), overdue, problem type,
    severity, root cause, why it opened.
    """
    now = utcnow()
    filters = {"status": "" if status == "any" else status, "overdue": overdue}
    for case in db.session.scalars(case_queue(filters, now).limit(limit)):
        click.echo(
            "\t".join(
                [
                    f"#{case.id}",
                    case.status.value,
                    case.ticket.external_id,
                    case.callback_due_at.strftime("%Y-%m-%d %H:%M"),
                    "OVERDUE" if case.callback_overdue(now) else "-",
                    case.problem_type or "-",
                    str(case.severity or "-"),
                    f"#{case.root_cause_id}" if case.root_cause_id else "-",
                    case.trigger,
                ]
            )
        )


@cases_cli.command("open")
@click.option("--response", "response_id", type=int, help="Survey response id.")
@click.option(
    "--ticket", "ticket_id", type=int, help="Ticket id (ClosedLoop's, not the helpdesk's)."
)
def open_command(response_id: int | None, ticket_id: int | None) -> None:
    """Open a case by hand for a survey response or a ticket (or show the one it has)."""
    if (response_id is None) == (ticket_id is None):
        raise click.UsageError("give exactly one of --response and --ticket")
    if response_id is not None:
        response = db.session.get(SurveyResponse, response_id)
        if response is None:
            raise click.ClickException(f"no survey response {response_id}")
        case, created = open_case_for_response(response, None)
    else:
        ticket = db.session.get(Ticket, ticket_id)
        if ticket is None:
            raise click.ClickException(f"no ticket {ticket_id}")
        case, created = open_case_for_ticket(ticket, None)
    db.session.commit()
    if created:
        click.echo(f"Opened case #{case.id}.")
    else:
        click.echo(f"Already open: case #{case.id} ({case.status.value}).")


@cases_cli.command("scan")
def scan_command() -> None:
    """Apply the low-feedback rule to every response without a case (safe to repeat).

    Cases normally open when a response's analysis finishes; this catches up on
    responses from before, or after a change of ROOT_CAUSE_RULE.
    """
    report = scan_responses()
    db.session.commit()
    click.echo(f"{report.opened} cases opened from {report.checked} responses without a case.")


def _utc_date(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


@cases_cli.command("pareto")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Cases opened on or after (UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Cases opened before (UTC).")
def pareto_command(since: datetime | None, until: datetime | None) -> None:
    """Root causes by severity-weighted feedback, with cumulative percent (tab-separated)."""
    rows = root_cause_pareto(_utc_date(since), _utc_date(until))
    if not rows:
        click.echo("No feedback is linked to a root cause yet.")
        return
    click.echo("root cause\tfeedback\tweight\tshare %\tcumulative %\tvital few\ttitle")
    for row in rows:
        click.echo(
            f"#{row.root_cause_id}\t{row.feedback}\t{row.weight}\t{row.share:.1f}\t"
            f"{row.cumulative:.1f}\t{'yes' if row.vital else 'no'}\t{row.title}"
        )
