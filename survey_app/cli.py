"""The ``closedloop`` command: Flask's CLI built on ``create_app``, usable from any directory."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo, routes_command, run_command, shell_command
from flask.helpers import get_debug_flag

from . import ConfigError, create_app, instance_path, running_app
from .background import run_jobs_once, start_background_thread
from .logs import hide_dev_server_request_lines


@click.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing instance/config.py.")
def init_command(force: bool) -> None:
    """Write instance/config.py with a random SECRET_KEY and WEBHOOK_SECRET.

    Leaves an existing file alone unless --force is given.
    """
    folder = instance_path()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "config.py"
    if target.exists() and not force:
        click.echo(f"{target} exists; left unchanged.")
        return
    text = (
        "# Written by `closedloop init`. Keep this file private.\n"
        f"SECRET_KEY = {secrets.token_hex(32)!r}\n"
        f"WEBHOOK_SECRET = {secrets.token_hex(32)!r}\n"
    )
    # Created private from the start: never readable by others, not even briefly.
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"Wrote {target}.")


def init_app(app: Flask) -> None:
    """Register every command group on ``app.cli``."""
    from .auth.cli import users_cli
    from .demo import demo_command
    from .intake.cli import tickets_cli
    from .surveys.cli import surveys_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(tickets_cli)
    app.cli.add_command(demo_command)
    app.cli.add_command(surveys_cli)
    app.cli.add_command(jobs_cli)
    # Flask-Migrate's `db` group is shared by every app; adding the same command again is a no-op.
    from flask_migrate.cli import db as db_cli

    db_cli.add_command(db_backup_command)
    db_cli.add_command(db_analyse_command)


@click.command("backup")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: instance/backups/closedloop-<UTC time>.sqlite3).",
)
def db_backup_command(out: Path | None) -> None:
    """Back up the SQLite database while the app runs (SQLite's online backup API).

    The copy is consistent (one committed state) and checked before it is kept.
    Refuses to overwrite a file. On PostgreSQL it backs up nothing and prints the
    pg_dump recipe instead (exit status 1).
    """
    from .backup import (
        PG_DUMP_RECIPE,
        BackupError,
        backup_sqlite,
        default_backup_path,
        sqlite_path,
    )

    app = running_app()
    source = sqlite_path(app.config["SQLALCHEMY_DATABASE_URI"])
    if source is None:
        click.echo(PG_DUMP_RECIPE, err=True)
        raise click.ClickException("closedloop db backup copies SQLite only; use pg_dump.")
    target = out or default_backup_path(Path(app.instance_path) / "backups")
    try:
        backup_sqlite(source, target)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backed up {source} to {target}.")


@click.command("analyse")
def db_analyse_command() -> None:
    """Refresh the query planner's statistics of every table now (ANALYZE).

    The ``analyse-database`` job does it by itself on SQLite as the data grows;
    run this after loading or deleting much data at once.
    """
    from .statistics import analyse

    click.echo(f"Statistics refreshed: {len(analyse())} tables.")


@click.group("jobs")
def jobs_cli() -> None:
    """Periodic background work (sending invitations, analysing responses ...)."""


@jobs_cli.command("run")
def jobs_run_command() -> None:
    """Run every periodic job once, for cron when no Celery worker runs.

    Safe next to a worker or a second cron: every job claims its work.
    Exits with status 1 when a job failed (the others still ran).
    """
    failed = False
    for name, result in run_jobs_once(running_app()).items():
        if isinstance(result, Exception):
            failed = True
            click.echo(f"{name}: failed: {result}", err=True)
        else:
            click.echo(f"{name}: {result}")
    if failed:
        raise SystemExit(1)


DISPATCH_HELP = (
    "\n\nWithout a Celery broker, a background thread also sends due survey "
    "invitations and analyses new responses every DISPATCH_INTERVAL_SECONDS."
)


@click.command("run", params=run_command.params, help=(run_command.help or "") + DISPATCH_HELP)
@click.pass_context
def run_with_dispatcher(ctx: click.Context, **options: object) -> None:
    info = ctx.ensure_object(ScriptInfo)
    # With the reloader, only the serving child process dispatches.
    reloading = options.get("reload")
    if reloading is None:
        reloading = get_debug_flag()
    if not reloading or os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        app = info.load_app()
        start_dispatch_thread(app)
        announce_outbox(app)
    hide_dev_server_request_lines()
    ctx.forward(run_command)


def announce_outbox(app: Flask) -> None:
    """With ``MAIL_BACKEND = "outbox"``, say where the mail that is not sent can be read."""
    from .outbox import outbox_enabled
    from .surveys.links import public_url

    if outbox_enabled(app.config):
        with app.app_context():
            where = public_url("outbox.messages")
        click.echo(f"Mail is kept in the outbox, not sent: admins read it at {where}")


def start_dispatch_thread(
    app: Flask, stop: threading.Event | None = None
) -> threading.Thread | None:
    """Run the periodic jobs in a thread (see :func:`.background.start_background_thread`)."""
    return start_background_thread(app, stop)


def create_app_for_cli() -> Flask:
    """``create_app`` with configuration errors shown as a message, not a traceback."""
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


class ClosedLoopGroup(FlaskGroup):
    """Flask's command group that lists every command even before ``closedloop init``.

    The app refuses to start without a real ``SECRET_KEY``, which only running a
    command needs: ``closedloop --help`` on a fresh checkout lists the commands
    of an app built just to read them (in-memory database, nothing written),
    while running any of them still stops with the message saying what to do.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except click.ClickException:
            app = create_app({"SECRET_KEY": "listing-only", "DATABASE_URL": "sqlite://"})
            ctx.meta[_LISTING_APP] = app
            own = click.Group.list_commands(self, ctx)
            return sorted(set(own) | set(app.cli.list_commands(ctx)))
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        listing: Flask | None = ctx.meta.get(_LISTING_APP)
        if listing is not None:
            return click.Group.get_command(self, ctx, name) or listing.cli.get_command(ctx, name)
        return super().get_command(ctx, name)


_LISTING_APP = "closedloop.listing_app"


@click.group(
    cls=ClosedLoopGroup,
    create_app=lambda: create_app_for_cli(),
    add_version_option=False,
    add_default_commands=False,
)
def main() -> None:
    """ClosedLoop: satisfaction surveys and PDCA improvement for support teams."""


main.add_command(init_command)
main.add_command(run_with_dispatcher)
main.add_command(shell_command)
main.add_command(routes_command)
