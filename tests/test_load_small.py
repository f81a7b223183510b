"""The load test, small: gunicorn, a few hundred customers answering over single-use links
with duplicate and concurrent submits, webhooks and dashboard reads at the same time; then
exactly one response per answered link, none lost, no 5xx (benchmarks/load_test.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE_URL, is_postgres

pytestmark = pytest.mark.load

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
