"""``closedloop tickets``: import helpdesk exports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from .importer import IMPORT_BATCH, ImportFileError, TicketFile, import_tickets


@click.group("tickets")
def tickets_cli() -> None:
    """Ticket intake from files."""


@tickets_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="HEADER=FIELD",
    help="Read column HEADER as FIELD (e.g. 'Ticket No=ticket.external_id'). Repeatable.",
)
@click.option(
    "--mapping-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON object {"HEADER": "FIELD", ...}; --map wins over it.',
)
@click.option(
    "--timezone",
    "timezone",
    default="UTC",
    show_default=True,
    help="Zone of timestamps written without one (e.g. Asia/Shanghai).",
)
@click.option("--source", default=None, help="Ticket source for every row (default: the file's).")
def import_command(
    file: Path,
    mappings: tuple[str, ...],
    mapping_file: Path | None,
    timezone: str,
    source: str | None,
) -> None:
    """Import closed tickets from a .csv or .xlsx export.

    Good rows are imported, 4,000 per transaction; every bad row is
    reported with its row number and reason, and the exit status is 1 if any
    row failed. Importing the same file again creates no duplicates.
    """
    overrides: dict[str, str] = {}
    if mapping_file is not None:
        try:
            loaded = json.loads(mapping_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise click.ClickException(f"Cannot read {mapping_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise click.ClickException("The mapping file must hold a JSON object.")
        overrides.update({str(k): str(v) for k, v in loaded.items()})
    for item in mappings:
        header, sep, field = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not HEADER=FIELD", param_hint="--map")
        overrides[header] = field.strip()
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"unknown time zone {timezone!r}", param_hint="--timezone"
        ) from None

    try:
        ticket_file = TicketFile.open(file, overrides)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    # sys.stderr: click.get_text_stream is deprecated since Click 8.5. Rows are counted
    # a batch at a time, once it is committed: the bar is drawn once per batch.
    with click.progressbar(
        length=len(ticket_file.rows),
        label="Importing",
        file=sys.stderr,
        update_min_steps=IMPORT_BATCH,
    ) as bar:
        try:
            report = import_tickets(
                ticket_file, naive_timezone=zone, source=source, on_row=lambda: bar.update(1)
            )
        except ImportFileError as exc:  # the file changed since it was checked
            raise click.ClickException(str(exc)) from None

    for error in report.errors:
        click.echo(f"row {error.row}: {error.message}", err=True)
    for row in report.stale:
        click.echo(
            f"row {row}: older than the ticket's stored state (a newer event was applied); "
            "recorded, not applied",
            err=True,
        )
    click.echo(
        f"{report.rows} rows: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.stale)} older than stored, "
        f"{len(report.errors)} failed."
    )
    if not report.ok:
        raise SystemExit(1)
