"""The load test, small: gunicorn, a few hundred customers answering over single-use links
with duplicate and concurrent submits, webhooks and dashboard reads at the same time; then
exactly one response per answered link, none lost, no 5xx (benchmarks/load_test.py)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE_URL, is_postgres

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from load_test import free_port  # noqa: E402  (the benchmark folder is not a package)

pytestmark = [pytest.mark.load, pytest.mark.slow, pytest.mark.db]

PROJECT = Path(__file__).resolve().parent.parent
ANSWERS = 300


def _load_test_database() -> str:
    """A database of its own next to the test database (the load test empties its schema)."""
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_load"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def test_small_load_run_loses_and_duplicates_nothing(tmp_path):
    report_file = tmp_path / "report.json"
    command = [
        sys.executable,
        str(PROJECT / "benchmarks" / "load_test.py"),
        f"--answers={ANSWERS}",
        "--concurrency=8",
        "--workers=2",
        "--webhook-rate=10",
        "--dashboard-rate=1",
        f"--workdir={tmp_path / 'run'}",
        f"--json={report_file}",
    ]
    if is_postgres():
        command += [f"--database-url={_load_test_database()}", "--reset-postgres"]
    result = subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["problems"] == []
    routes = report["routes"]
    # Every link opened once and answered once; the extra submits were refused with 409.
    assert routes["GET /s/<token>"]["statuses"] == {"200": ANSWERS}
    submits = routes["POST /s/<token>"]["statuses"]
    assert submits["302"] == ANSWERS
    extra = report["duplicate_checks"] + 2 * report["concurrent_checks"]
    assert submits["409"] == extra
    assert set(submits) == {"302", "409"}
    assert report["duplicate_checks"] == ANSWERS // 20
    assert report["concurrent_checks"] == ANSWERS // 50
    assert routes["GET /dashboards"]["statuses"].keys() == {"200"}
    assert set(routes["POST /api/v1/ticket-events"]["statuses"]) == {"201"}
    assert report["webhooks"] >= 1
    for row in routes.values():
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]


# --- PostgreSQL restarted mid-load --------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts[-3])
    return found[-1].parent if found else None


def _as_postgres() -> list[str]:
    """Run PostgreSQL's tools as ``postgres`` when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture
def private_postgres() -> Iterator[tuple[str, list[str]]]:
    """A PostgreSQL server of this test's own, on a free port, so that restarting it
    mid-load touches nobody else's connections. Yields its URL and the restart command."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin)")
    folder = Path(tempfile.mkdtemp(prefix="closedloop-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    # Output to files and nowhere else: a server started here must not hold our pipes.
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "timeout": 120}
    pg_ctl = [*_as_postgres(), str(bin_dir / "pg_ctl"), "-D", str(data), "-w"]
    pg_ctl += ["-l", str(folder / "server.log")]
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        initdb += ["-E", "UTF8", "--locale=C", "--no-sync"]
        subprocess.run([*_as_postgres(), *initdb], check=True, **quiet)
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*pg_ctl, "-o", options, "start"], check=True, **quiet)
        restart = [*pg_ctl, "-m", "fast", "restart"]
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", restart
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=False, **quiet)
        shutil.rmtree(folder, ignore_errors=True)


def _postmaster_pid(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        # The backend's parent is the postmaster: a new one after a real restart.
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
        parent = int(Path(f"/proc/{pid}/stat").read_text().split()[3])
    engine.dispose()
    return parent


@pytest.mark.skipif(not is_postgres(), reason="PostgreSQL half only")
def test_postgresql_restarted_mid_load_customers_resend_and_nothing_is_lost_or_doubled(
    tmp_path, private_postgres
):
    url, restart = private_postgres
    before = _postmaster_pid(url)
    report_file = tmp_path / "report.json"
    command = [
        sys.executable, str(PROJECT / "benchmarks" / "load_test.py"),
        f"--answers={ANSWERS}", "--concurrency=8", "--workers=2", "--webhook-rate=10",
        "--dashboard-rate=2", f"--database-url={url}", "--reset-postgres",
        f"--fault-after={ANSWERS // 3}", f"--fault-command={shlex.join(restart)}",
        f"--workdir={tmp_path / 'run'}", f"--json={report_file}",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fault after" in result.stdout
    assert _postmaster_pid(url) != before, "the server was not restarted"
    report = json.loads(report_file.read_text(encoding="utf-8"))
    # Every link has exactly one response, none lost; no request answered 500 (a 503
    # "try again shortly" during the restart, sent again, is what customers see).
    assert report["problems"] == []
    for row in report["routes"].values():
        assert set(row["statuses"]) <= {"200", "201", "302", "409", "503"}
    submits = report["routes"]["POST /s/<token>"]["statuses"]
    assert submits["302"] + submits.get("409", 0) >= ANSWERS
    log = (tmp_path / "run" / "gunicorn.log").read_text(encoding="utf-8")
    if report["retried_503"]:
        assert "database unavailable, answered 503" in log
    assert "Traceback" not in log
    print(f"503 answers retried during the restart: {report['retried_503']}")
