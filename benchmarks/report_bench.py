"""Excel report benchmark: 100 000 responses in scope, exported in a fresh process.

Run from the project folder:

    .venv/bin/python benchmarks/report_bench.py   # SQLite, then PostgreSQL if reachable
    .venv/bin/python benchmarks/report_bench.py --rows 20000 --no-postgres

Loads ``--rows`` answered surveys spread over the last 30 days with the loader of
``benchmarks/metrics_bench.py`` (tickets, SLA facts, invitations, responses),
then gives every response a comment, a sentiment and keywords (one UPDATE), so
the Feedback sheet carries the text it has in real use. A database left by an
earlier run with the same row count is reused.

Each export runs in a child process (``--child``), so its peak resident memory
(``VmHWM``: interpreter, app, openpyxl and the export together) is the
export's alone; the wall time covers building every sheet and writing the file.
Prints a markdown table; the goal is under 15 s and under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics_bench import _app, bench_targets, ensure_rows  # noqa: E402

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/closedloop_report_bench"
COMMENTS = (
    "客服回复太慢了，等了两天才有人处理，问题到现在也没有彻底解决",
    "The engineer was patient and fixed the sync problem in one call.",
    "态度很好，但是方案不太合适，希望下次能一次解决",
    "=SUM(A1:A9) should never run",
)


def _decorate(url: str) -> None:
    """Comments, sentiment and keywords on every response (analysis output, as stored)."""
    from sqlalchemy import case, literal, update

    from survey_app.extensions import db
    from survey_app.surveys.models import SurveyResponse as R

    app = _app(url)
    with app.app_context():
        pick = R.id % len(COMMENTS)
        db.session.execute(
            update(R).values(
                comment=case(
                    *((pick == i, literal(text)) for i, text in enumerate(COMMENTS)),
                ),
                sentiment_label=case((R.nps <= 6, "negative"), (R.nps >= 9, "positive"),
                                     else_="neutral"),
                sentiment_score=(R.id % 100) / 100.0,
                keywords=["回复", "等待", "方案"],
                problem_type="slow_response",
            )
        )  # fmt: skip
        db.session.commit()
        db.engine.dispose()


def _child(url: str, start: str, end: str, out: str) -> None:
    from analysis.metrics import Scope
    from improvement.report.workbook import write_report

    app = _app(url)
    with app.app_context():
        scope = Scope(start=date.fromisoformat(start), end=date.fromisoformat(end))
        started, cpu_started = time.perf_counter(), time.process_time()
        with open(out, "wb") as handle:
            result = write_report(scope, handle, language="zh_Hans")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = _peak_rss_mb(usage)
    size = Path(out).stat().st_size / 1024 / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "rows": result.feedback_rows,
                      "size_mb": size, "cpu": cpu,
                      "load": os.getloadavg()[0]}))  # fmt: skip


def _peak_rss_mb(usage: resource.struct_rusage) -> float:
    """This process's peak resident memory, MB. Linux: ``VmHWM``, because ``ru_maxrss``
    survives ``exec`` and so would report the parent's peak (the loader's) as the child's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return usage.ru_maxrss / 1024


def _measure(url: str, out: str) -> dict[str, Any]:
    today = date.today()
    start = (today - timedelta(days=33)).isoformat()
    # The loader spreads answers up to a few hours past now: end the period after them.
    end = (today + timedelta(days=2)).isoformat()
    command = [sys.executable, __file__, "--child", url, start, end, out]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - began
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="survey responses in scope")
    parser.add_argument("--sqlite", default="/tmp/closedloop-report-bench.sqlite3")
    parser.add_argument("--postgres", default=PG_DEFAULT)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--reload", action="store_true", help="rebuild even if the data exists")
    parser.add_argument("--out", default="/tmp/closedloop-report-bench.xlsx")
    args = parser.parse_args()

    targets = bench_targets(args.sqlite, args.postgres, use_postgres=not args.no_postgres)
    table = [
        "| database | responses | export, wall | export, CPU | peak RSS | file | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, url in targets:
        if ensure_rows(name, url, args.rows, 30, reload=args.reload):
            _decorate(url)
        result = _measure(url, args.out)
        table.append(
            f"| {name} | {result['rows']:,} | {result['seconds']:.1f} s "
            f"| {result['cpu']:.1f} s | {result['peak_mb']:.0f} MB "
            f"| {result['size_mb']:.1f} MB | {result['load']:.1f} |"
        )
    print("\n".join(table))


if __name__ == "__main__":
    main()
