"""``closedloop alerts``: the alert check for cron, and the alert list."""

from __future__ import annotations

import json

import click

from survey_app.extensions import db

from .alerts import check_alerts, not_evaluated, recent_alerts
from .labels import format_value
from .services import describe_filters, describe_target, list_targets


@click.group("alerts")
def alerts_cli() -> None:
    """KPI targets and their graded alerts."""


@alerts_cli.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def check_command(as_json: bool) -> None:
    """Grade every target over its window and send what opened, escalated or cleared.

    For cron (e.g. every 15 minutes); safe to run while Celery beat or
    `closedloop run` checks too: each alert is sent once.
    """
    summary = check_alerts()
    if as_json:
        click.echo(json.dumps(summary.to_json()))
        return
    click.echo(
        "evaluated {evaluated}, low confidence {low_confidence}, opened {opened}, "
        "escalated {escalated}, cleared {cleared}, notified {notified}, "
        "failed {failed}".format(**summary.to_json())
    )


@alerts_cli.command("list")
def list_command() -> None:
    """Open alerts, then targets not evaluated for lack of answers (tab-separated)."""
    open_alerts, _cleared = recent_alerts()
    for alert in open_alerts:
        click.echo(
            "\t".join(
                [
                    f"#{alert.id}",
                    alert.level.value,
                    alert.kpi,
                    describe_filters(alert.kpi_target.filters or {}),
                    format_value(alert.kpi, alert.value),
                    f"n={alert.n}",
                    alert.opened_at.strftime("%Y-%m-%d %H:%M"),
                ]
            )
        )
    for target in not_evaluated():
        click.echo(f"target #{target.id}\tlow confidence (n={target.last_n}): no alert raised")
    db.session.commit()


@alerts_cli.command("targets")
def targets_command() -> None:
    """Every target: id, KPI and value, scope, thresholds, window, latest status."""
    for target in list_targets():
        click.echo(
            "\t".join(
                [
                    f"#{target.id}",
                    describe_target(target),
                    describe_filters(target.filters or {}),
                    f"yellow>{target.yellow:g} orange>{target.orange:g} red>{target.red:g}",
                    f"{target.window_days}d",
                    target.last_status or "-",
                ]
            )
        )
