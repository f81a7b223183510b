"""The ``closedloop`` command: Flask's CLI built on ``create_app``, usable from any directory."""

from __future__ import annotations

import os
import secrets

import click
from flask import Flask
from flask.cli import FlaskGroup

from . import create_app, instance_path


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

    app.cli.add_command(users_cli)
    app.cli.add_command(tickets_cli)
    app.cli.add_command(demo_command)


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False)
def main() -> None:
    """ClosedLoop: satisfaction surveys and PDCA improvement for support teams."""


main.add_command(init_command)
