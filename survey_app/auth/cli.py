"""``closedloop users``: staff accounts from the command line."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from ..extensions import db
from ..models import Role, User
from .services import AccountError, create_user


@click.group("users")
def users_cli() -> None:
    """Manage staff accounts."""


@users_cli.command("create")
@click.option("--email", required=True, help="Sign-in e-mail address.")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in Role]), help="Staff role."
)
@click.option("--name", default="", help="Display name.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
def create_user_command(email: str, role: str, name: str, password_stdin: bool) -> None:
    """Create a staff account; the password is prompted for unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, password, role, name=name)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Created {user.role.value} {user.email}.")


@users_cli.command("list")
def list_users_command() -> None:
    """List staff accounts."""
    for user in db.session.scalars(select(User).order_by(User.email)):
        state = "active" if user.active else "disabled"
        click.echo(f"{user.email}\t{user.role.value}\t{state}")
