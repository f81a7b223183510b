"""Ticket import benchmark: a realistic helpdesk export imported into an empty database.

Run from the project folder:

    .venv/bin/python benchmarks/import_bench.py   # 100 000 rows, SQLite, then PostgreSQL
    .venv/bin/python benchmarks/import_bench.py --rows 20000 --no-postgres
    .venv/bin/python benchmarks/import_bench.py --rollups   # roll-ups built: triggers on

Writes a CSV of ``--rows`` rows the way a helpdesk exports them (Chinese
headers, naive Shanghai times in two layouts, a quarter as many customers as
tickets, 10 % VIP, about 2 % of the tickets closed again later in the file and
0.5 % bad rows), then imports it with ``closedloop tickets import``'s
function into a fresh SQLite file and, if reachable, a fresh PostgreSQL
database (created, and dropped afterwards). Each import runs in a child process
(``--child``), so its peak resident memory (``ru_maxrss``: interpreter, app and
import together) is the import's alone; a second child imports the same file
again (every row unchanged). Prints a markdown table; the goals are 5 000 rows/s
on SQLite, 3 000 on PostgreSQL, under 300 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/closedloop_import_bench"
SEED = 15
HEADER = [
    "工单号", "主题", "渠道", "优先级", "问题类别", "产品线", "区域", "团队", "处理人",
    "创建时间", "首次响应时间", "解决时间", "关闭时间", "重开次数", "联系次数",
    "客户编号", "客户姓名", "邮箱", "电话", "语言", "客户等级",
]  # fmt: skip
SUBJECTS = ("无法登录", "退款还没到账", "App 闪退", "发票开错了", "同步失败", "订单一直显示处理中",
            "Cannot reset password", "VPN disconnects every hour")  # fmt: skip
CHANNELS = ("Phone", "WeChat", "email", "chat", "app", "web")
PRIORITIES = ("紧急", "高", "中", "低", "P2", "P3")
CATEGORIES = ("账号登录", "支付退款", "物流", "发票", "产品故障", "咨询")
PRODUCTS = ("云存储", "企业邮箱", "视频会议", "CRM")
REGIONS = ("华东", "华北", "华南", "西南")
TEAMS = ("一线", "二线", "VIP 专席", "技术支持")
AGENTS = ("王芳", "李娜", "张伟", "刘洋", "陈静", "Alex Chen", "赵磊", "孙悦")
NAMES = ("张三", "李四", "王五", "赵六", "Ann Lee", "Bo Wang", "陈晨", "周杰")


def write_export(path: Path, rows: int, seed: int = SEED) -> None:
    """A helpdesk export of ``rows`` rows (see the module docstring)."""
    rng = random.Random(seed)
    customers = max(1, rows // 4)
    start = datetime(2026, 9, 1, 8, 0)
    span = 90 * 24 * 3600
    later: list[list[str]] = []
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        for n in range(rows):
            if later and rng.random() < 0.02:
                out.writerow(later.pop(rng.randrange(len(later))))
                continue
            created = start + timedelta(seconds=span * n // rows + rng.randrange(3600))
            responded = created + timedelta(minutes=int(rng.lognormvariate(3, 1)) + 1)
            resolved = responded + timedelta(minutes=int(rng.lognormvariate(6, 1.2)))
            closed = resolved + timedelta(minutes=rng.randrange(5, 600))
            layout = "%Y/%m/%d %H:%M" if n % 5 == 0 else "%Y-%m-%d %H:%M:%S"
            customer = rng.randrange(1, customers + 1)
            row = [
                f"GD-{n + 1:07d}",
                rng.choice(SUBJECTS),
                rng.choice(CHANNELS),
                rng.choice(PRIORITIES),
                rng.choice(CATEGORIES),
                rng.choice(PRODUCTS),
                rng.choice(REGIONS),
                rng.choice(TEAMS),
                rng.choice(AGENTS),
                created.strftime(layout),
                responded.strftime(layout),
                resolved.strftime(layout),
                closed.strftime(layout),
                "0",
                str(rng.choice((1, 1, 1, 2, 3))),
                f"K{customer:06d}",
                rng.choice(NAMES),
                f"user{customer}@example.com" if customer % 7 else "",
                f"138{customer:08d}",
                "zh-CN" if customer % 5 else "en",
                "VIP" if customer % 10 == 0 else "普通",
            ]
            if n % 200 == 199:
                row[3] = "P9"  # a bad row: reported, not imported
            elif rng.random() < 0.02:
                # Reopened and closed again a few days later: a later row of the same ticket.
                again = list(row)
                reclosed = closed + timedelta(days=rng.randrange(1, 5))
                again[12] = reclosed.strftime(layout)
                again[13] = "1"
                later.append(again)
            out.writerow(row)
        out.writerows(later)


def _app(url: str) -> Any:
    os.environ.setdefault("CLOSEDLOOP_INSTANCE_PATH", "/tmp/closedloop-bench-instance")
    from survey_app import create_app

    return create_app({"TESTING": True, "SECRET_KEY": "bench", "DATABASE_URL": url})


def _fresh_database(url: str, *, rollups: bool = False) -> None:
    """Create the database empty (SQLite: file removed; PostgreSQL: dropped, created), migrated.

    ``rollups``: build the metric roll-ups too (``closedloop metrics rebuild``), so the
    import runs with the triggers that mark the roll-ups' days dirty.
    """
    import flask_migrate
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from survey_app.extensions import db

    target = make_url(url)
    if target.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(str(target.database) + suffix).unlink(missing_ok=True)
    else:
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        admin.dispose()
    app = _app(url)
    with app.app_context():
        flask_migrate.upgrade()
        if rollups:
            from analysis.metrics.rollup import rebuild

            rebuild()
        db.engine.dispose()


def _drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def _reachable(url: str) -> bool:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    engine = create_engine(make_url(url).set(database="postgres"))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


class _PeakMemory:
    """The largest proportional set size (PSS) of this process and its children together,
    sampled every 0.25 s from ``/proc`` (Linux; a sample reads about 1 ms per process): a
    forked process's pages shared with this one count half in each, where ``ru_maxrss``
    counts them whole in both. None elsewhere."""

    def __init__(self) -> None:
        self.peak_kb: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            pids = [os.getpid(), *_children(os.getpid())]
            sizes = [_pss_kb(pid) for pid in pids]
            if sizes[0] is None:  # no /proc
                return
            total = sum(size or 0 for size in sizes)
            self.peak_kb = max(self.peak_kb or 0, total)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listed:
            return [int(child) for child in listed.read().split()]
    except OSError:
        return []


def _pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _child(url: str, path: str, parallel: str = "auto") -> None:
    """Import ``path`` like ``closedloop tickets import --timezone Asia/Shanghai``; print JSON."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import func, select

    from analysis.sla.models import TicketSla
    from survey_app.extensions import db
    from survey_app.intake.importer import TicketFile, import_tickets
    from survey_app.models import Ticket, TicketEvent
    from survey_app.surveys.models import Invitation

    app = _app(url)
    with app.app_context():
        started = time.perf_counter()
        ticket_file = TicketFile.open(Path(path))
        checked = time.perf_counter()
        with _PeakMemory() as memory:
            report = import_tickets(
                ticket_file,
                naive_timezone=ZoneInfo("Asia/Shanghai"),
                parallel={"auto": None, "yes": True, "no": False}[parallel],
            )
        finished = time.perf_counter()
        counts = {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Ticket, TicketEvent, TicketSla, Invitation)
        }
        db.engine.dispose()
    print(
        json.dumps(
            {
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "stale": len(report.stale),
                "failed": len(report.errors),
                "check_seconds": checked - started,
                "seconds": finished - started,
                "cpu_seconds": time.process_time(),
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                # The process that validates rows beside the import (large files).
                "peak_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                # Both processes together, shared pages counted once (None: not Linux).
                "peak_pss_mb": None if memory.peak_kb is None else memory.peak_kb / 1024,
                "load": os.getloadavg()[0],
                "counts": counts,
            }
        )
    )


def _run_child(url: str, path: Path, parallel: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", url, str(path), parallel],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the export")
    parser.add_argument("--csv", default="/tmp/closedloop-import-bench.csv")
    parser.add_argument("--sqlite", default="/tmp/closedloop-import-bench.sqlite3")
    parser.add_argument("--postgres", default=PG_DEFAULT)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--rollups",
        action="store_true",
        help="import into a database whose metric roll-ups are built (dirty-marking triggers on)",
    )
    parser.add_argument(
        "--parallel",
        choices=("auto", "yes", "no"),
        default="auto",
        help="validate in a second process: when a core is idle (auto), always, never",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("URL", "CSV", "PARALLEL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return

    path = Path(args.csv)
    write_export(path, args.rows)
    print(f"{args.rows} rows, {path.stat().st_size / 1e6:.1f} MB: {path}\n")
    targets = [("SQLite", f"sqlite:///{args.sqlite}", 5000)]
    if not args.no_postgres:
        if _reachable(args.postgres):
            targets.append(("PostgreSQL", args.postgres, 3000))
        else:
            print(f"PostgreSQL not reachable at {args.postgres}: skipped\n")
    # Peak MB: the importing process + the one validating rows beside it (large files), each
    # its own peak resident size; then both together, their shared pages counted once (PSS).
    print("| database | import | rows | seconds | rows/s | goal | peak MB | together | result |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    try:
        for name, url, goal in targets:
            _fresh_database(url, rollups=args.rollups)
            for label in ("first", "again"):
                label += " (roll-ups built)" if args.rollups else ""
                result = _run_child(url, path, args.parallel)
                rate = result["rows"] / result["seconds"]
                mode = "second process" if result["peak_child_mb"] else "one process"
                outcome = (
                    f"{result['created']} created, {result['updated']} updated, "
                    f"{result['unchanged']} unchanged, {result['stale']} older, "
                    f"{result['failed']} failed; {mode}, load {result['load']:.1f}"
                )
                print(
                    f"| {name} | {label} | {result['rows']} | {result['seconds']:.1f} "
                    f"| {rate:,.0f} | {goal:,} "
                    f"| {result['peak_mb']:.0f} + {result['peak_child_mb']:.0f} "
                    f"| {_megabytes(result['peak_pss_mb'])} | {outcome} |",
                    flush=True,
                )
    finally:
        if len(targets) > 1:
            _drop_database(args.postgres)


def _megabytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
