"""``closedloop metrics``: the KPIs as JSON or a table; ``closedloop metrics recompute-sla``."""

from __future__ import annotations

import json
from typing import Any

import click

from .scope import DIMENSIONS, GRAINS, ScopeError

_FILTER_HELP = "Repeat to accept several values."


def _filter_options(command: Any) -> Any:
    for name in reversed(DIMENSIONS):
        flag = "--" + name.replace("_", "-")
        if name == "customer_is_new":
            command = click.option(flag, name, help="new or returning.")(command)
        else:
            command = click.option(flag, name, multiple=True, help=_FILTER_HELP)(command)
    return command


@click.group("metrics", invoke_without_command=True)
@click.option("--from", "from_", metavar="YYYY-MM-DD", help="First day (default: 30 days ago).")
@click.option("--to", metavar="YYYY-MM-DD", help="Last day, inclusive (default: today).")
@click.option("--group-by", type=click.Choice(DIMENSIONS), help="Split by this dimension.")
@click.option("--grain", type=click.Choice(GRAINS), help="Split by day, week or month.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@_filter_options
@click.pass_context
def metrics_command(
    ctx: click.Context,
    from_: str | None,
    to: str | None,
    group_by: str | None,
    grain: str | None,
    as_json: bool,
    **filters: Any,
) -> None:
    """Print every KPI for a period (local dates of METRICS_TIMEZONE), as JSON or a table.

    The JSON is the answer of GET /api/v1/metrics with the same arguments.
    Exit status 2 on bad arguments.
    """
    if ctx.invoked_subcommand is not None:
        return
    from . import compute_for_args

    args: dict[str, Any] = {"from": from_, "to": to, "group_by": group_by, "grain": grain}
    args.update({k: v for k, v in filters.items() if v})
    try:
        result = compute_for_args({k: v for k, v in args.items() if v is not None})
    except ScopeError as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    body = result.to_json()
    scope = body["scope"]
    click.echo(
        f"KPIs {scope['from']} .. {scope['to']} ({scope['timezone']}), "
        f"definitions {body['definitions_version']}; * = n below {body['min_sample']}"
    )
    click.echo(_table(body["overall"]))
    for group in body["groups"]:
        label = ", ".join(f"{k}={v}" for k, v in group["key"].items())
        click.echo(f"\n== {label}")
        click.echo(_table(group["kpis"]))


def _table(kpis: dict[str, dict[str, Any]]) -> str:
    rows = [("KPI", "value", "n", "95% CI")]
    for name, kpi in kpis.items():
        value = "—" if kpi["value"] is None else f"{kpi['value']}"
        if kpi["value"] is not None and kpi["unit"] == "%":
            value += " %"
        elif kpi["value"] is not None and kpi["unit"] == "seconds":
            value += " s"
        ci = kpi.get("ci95")
        rows.append(
            (
                name,
                value,
                f"{kpi['n']}{'*' if kpi['low_confidence'] else ''}",
                f"{ci[0]} .. {ci[1]}" if ci else "",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@metrics_command.command("recompute-sla")
def recompute_sla_command() -> None:
    """Measure every ticket again against the current SLA policy (after a policy change).

    Safe to run twice and while tickets arrive.
    """
    from ..sla.services import recompute_all

    count = recompute_all()
    click.echo(f"{count} tickets measured.")


@metrics_command.command("rebuild")
def rebuild_command() -> None:
    """Build the daily KPI roll-ups again from every response, invitation and ticket.

    The ``refresh-metrics`` job keeps them current by itself; run this after
    restoring a backup or changing METRICS_TIMEZONE, or to build them at once.
    """
    from .rollup import rebuild

    days = rebuild()
    click.echo(f"Roll-ups rebuilt: {days} days.")


@metrics_command.command("refresh")
def refresh_command() -> None:
    """Rebuild the roll-ups of the days changed since the last refresh (the periodic job)."""
    from .rollup import refresh

    days = refresh()
    click.echo(f"Roll-ups refreshed: {days} days.")
