"""``closedloop report excel``: the improvement report as an .xlsx file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from flask import current_app

from analysis.metrics import metrics_timezone
from analysis.metrics.cli import _filter_options
from analysis.metrics.scope import ScopeError, parse_metrics_args
from survey_app.extensions import db

from .languages import LANGUAGES


@click.group("report")
def report_cli() -> None:
    """Reports for managers."""


@report_cli.command("excel")
@click.option("--from", "from_", metavar="YYYY-MM-DD", help="First day (default: 30 days ago).")
@click.option("--to", metavar="YYYY-MM-DD", help="Last day, inclusive (default: today).")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default=None,
    help="Language of headers and labels (default: BABEL_DEFAULT_LOCALE).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="The .xlsx file to write.",
)
@_filter_options
def excel_command(
    from_: str | None, to: str | None, lang: str | None, out: Path, **filters: Any
) -> None:
    """Write the Excel improvement report of a period (local dates of METRICS_TIMEZONE).

    Sheets: Summary, Trends, Root causes, PDCA, Actions, Feedback, Definitions.
    The filters are the dashboards' (--team, --channel ... repeat to accept several
    values). Exit status 2 on bad arguments; the file is written whole or not at all.
    """
    args: dict[str, Any] = {"from": from_, "to": to}
    args.update({k: v for k, v in filters.items() if v})
    try:
        query = parse_metrics_args(
            {k: v for k, v in args.items() if v is not None},
            timezone=metrics_timezone(current_app.config),
        )
    except ScopeError as exc:
        raise click.UsageError(str(exc)) from exc
    language = lang or str(current_app.config["BABEL_DEFAULT_LOCALE"])
    if language not in LANGUAGES:
        language = "en"
    partial = out.with_name(out.name + ".part")
    started = time.perf_counter()
    try:
        with partial.open("wb") as handle:
            from .workbook import write_report

            result = write_report(query.scope, handle, language=language)
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        db.session.rollback()
    click.echo(
        f"{out}: {query.scope.start} .. {query.scope.end}, {result.feedback_rows} responses, "
        f"{len(result.sheets)} sheets, {time.perf_counter() - started:.1f} s"
    )
