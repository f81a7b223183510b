"""The first hour: ``closedloop surveys link``, the demo's KPI targets, and ``make run``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from analysis.targets.demo import DEMO_TARGETS, seed_demo_targets
from analysis.targets.models import KpiTarget
from analysis.targets.services import TargetSpec, save_target
from survey_app.extensions import db
from survey_app.surveys.invitations import dispatch_due
from survey_app.surveys.responses import submit_response
from tests.conftest import Webhook, event_payload
from tests.test_invitations import close_ticket, due, free_port, refreshed

PROJECT = Path(__file__).resolve().parent.parent
PUBLIC_URL = "https://feedback.example.com/cl"


@pytest.fixture
def outbox_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(
        MAIL_BACKEND="outbox",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=free_port(),
        PUBLIC_URL=PUBLIC_URL,
    )


def app_path(link: str) -> str:
    return urlsplit(link).path.removeprefix("/cl")


def link_lines(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.startswith("  ")]


# --- closedloop surveys link -------------------------------------------------------------------


def test_surveys_link_prints_each_invitation_with_its_status(outbox_app: Flask) -> None:
    runner = outbox_app.test_cli_runner()
    with outbox_app.app_context():
        client = outbox_app.test_client()
        invitation = close_ticket(client, "T-9")
        pending = runner.invoke(args=["surveys", "link", "T-9"])
        assert pending.exit_code == 0, pending.output
        assert pending.output.startswith("Ticket T-9 (source helpdesk, status closed)")
        ((status, link, *when),) = link_lines(pending.output)
        # Not sent yet: the link works once it is.
        assert status == "pending" and when[0] == "(due"
        assert client.get(app_path(link)).status_code == 404

        assert dispatch_due(now=due(invitation)).sent == 1
        sent = runner.invoke(args=["surveys", "link", "T-9"])
        ((status, same_link, *when),) = link_lines(sent.output)
        assert (status, same_link, when[0]) == ("sent", link, "(expires")
        assert link.startswith(f"{PUBLIC_URL}/s/")
        assert client.get(app_path(link)).status_code == 200

        submit_response(refreshed(invitation), {"csat_overall": 5}, "zh_Hans")
        answered = runner.invoke(args=["surveys", "link", " T-9 "])
        ((status, same_link, *when),) = link_lines(answered.output)
        assert (status, same_link, when[0]) == ("answered", link, "(answered")


def test_surveys_link_refuses_an_unknown_or_ambiguous_ticket(outbox_app: Flask) -> None:
    runner = outbox_app.test_cli_runner()
    with outbox_app.app_context():
        missing = runner.invoke(args=["surveys", "link", "T-404"])
        assert missing.exit_code == 2
        assert "No ticket 'T-404'." in missing.output

        client = outbox_app.test_client()
        close_ticket(client, "T-1")
        other = event_payload(ticket={"external_id": "T-1", "source": "zendesk"})
        assert Webhook(client).post(other).status_code == 201
        ambiguous = runner.invoke(args=["surveys", "link", "T-1"])
        assert ambiguous.exit_code == 2
        assert "exists in several sources (helpdesk, zendesk): add --source." in ambiguous.output

        chosen = runner.invoke(args=["surveys", "link", "T-1", "--source", "zendesk"])
        assert chosen.exit_code == 0, chosen.output
        assert "source zendesk" in chosen.output
        # Closed long ago: recorded as skipped, never sent, so no link.
        assert link_lines(chosen.output) == [["skipped", "(too_old)", "-"]]
        assert runner.invoke(args=["surveys", "link", "T-1", "--source", "x"]).exit_code == 2


# --- the demo's KPI targets --------------------------------------------------------------------


def target_count() -> int:
    return int(db.session.scalar(select(func.count()).select_from(KpiTarget)) or 0)


def test_demo_targets_are_set_once(app: Flask) -> None:
    first = seed_demo_targets(app)
    assert first == "KPI targets: 4 demo targets set (CSAT %, NPS, FRT P90, FCR)."
    kpis = set(db.session.scalars(select(KpiTarget.kpi)))
    assert kpis == {"csat_overall_percent", "nps", "first_response_time_p90", "fcr"}
    assert target_count() == len(DEMO_TARGETS)

    assert seed_demo_targets(app) == "KPI targets: 4 already set, left as they are."
    assert target_count() == len(DEMO_TARGETS)


def test_demo_targets_leave_an_organisations_own_targets_alone(app: Flask) -> None:
    save_target(TargetSpec(kpi="ces_average", target=5.5, yellow=0.0, orange=0.5, red=1.0))
    db.session.commit()
    assert seed_demo_targets(app) == "KPI targets: 1 already set, left as they are."
    assert list(db.session.scalars(select(KpiTarget.kpi))) == ["ces_average"]


# --- make run --------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_installs_once_and_keeps_mail_in_the_outbox(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "Makefile", tmp_path)
    shutil.copy(PROJECT / "pyproject.toml", tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOSEDLOOP_", "MAKE"))}

    def dry_run() -> str:
        done = subprocess.run(
            ["make", "-n", "run"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    assert "pip install" in dry_run()  # never installed

    stamp = tmp_path / ".venv" / ".installed"
    stamp.touch()
    later = (tmp_path / "pyproject.toml").stat().st_mtime + 1
    os.utime(stamp, (later, later))
    commands = dry_run()
    assert "pip install" not in commands
    lines = commands.splitlines()
    assert lines[0] == ".venv/bin/closedloop init"
    assert (
        "CLOSEDLOOP_MAIL_BACKEND=outbox CLOSEDLOOP_PUBLIC_URL=http://127.0.0.1:5000 "
        ".venv/bin/closedloop demo" in lines
    )
    assert lines[-1].endswith(".venv/bin/closedloop run --host 127.0.0.1 --port 5000")
    assert "CLOSEDLOOP_MAIL_BACKEND=outbox" in lines[-1]


def test_closedloop_run_says_where_the_outbox_is(
    outbox_app: Flask, app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    from survey_app.cli import announce_outbox

    announce_outbox(app)  # SMTP: nothing to say
    assert capsys.readouterr().out == ""
    announce_outbox(outbox_app)
    assert capsys.readouterr().out == (
        f"Mail is kept in the outbox, not sent: admins read it at {PUBLIC_URL}/admin/outbox\n"
    )
