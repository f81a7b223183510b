"""The scheduled alert check: grade every target over its window, open, escalate or clear alerts.

For each target with alerts enabled, the KPI is computed with
:func:`analysis.metrics.compute` over the last ``window_days`` local days
ending today (today so far included), in ``METRICS_TIMEZONE``, with the
target's filters, and graded (:func:`analysis.targets.status.evaluate`):

* yellow / orange / red with no open alert → an alert opens and is notified;
* a level above the open alert's highest level → it escalates and is notified;
* the same level, or a milder one that is still not ok → nothing is sent
  (the alert's current value is updated);
* ok → the open alert clears and "resolved" is notified;
* low confidence (n below ``METRICS_MIN_SAMPLE``, or no value) → never opens,
  escalates or clears an alert; the target records that it was not evaluated.

Every transition is claimed in the database before anything is sent: opening
inserts under a unique index on the target's open alert, escalating and
clearing are conditional UPDATEs; the process whose statement wins sends, the
other sends nothing. A delivery that failed is retried by a later check
(claimed the same way after ``ALERT_RETRY_MINUTES``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from analysis.metrics import Scope, compute, metrics_timezone, parse_metrics_args
from survey_app.database import changed_rows, write_transaction
from survey_app.extensions import db
from survey_app.types import utcnow

from .models import ALERT_LEVELS, Alert, KpiTarget, Level
from .notify import AlertEvent, notify_alert
from .status import Status, evaluate

log = logging.getLogger(__name__)


@dataclasses.dataclass
class CheckSummary:
    """What one round of :func:`check_alerts` did."""

    evaluated: int = 0
    low_confidence: int = 0
    opened: int = 0
    escalated: int = 0
    cleared: int = 0
    notified: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def window_scope(target: KpiTarget, today: date | None = None) -> Scope:
    """The scope a target is checked over: its filters, the ``window_days`` days ending today."""
    args: dict[str, Any] = {}
    for name, values in (target.filters or {}).items():
        if isinstance(values, bool):
            args[name] = "new" if values else "returning"
        else:
            args[name] = [str(v) for v in values]
    query = parse_metrics_args(args, timezone=metrics_timezone(current_app.config), today=today)
    end = query.scope.end
    return dataclasses.replace(
        query.scope, start=end - timedelta(days=target.window_days - 1), end=end
    )


def _rank(level: Level | str) -> int:
    return ALERT_LEVELS.index(Level(level)) + 1 if Level(level) in ALERT_LEVELS else 0


def check_alerts(now: datetime | None = None, today: date | None = None) -> CheckSummary:
    """Evaluate every target with alerts enabled and send what changed; commit as it goes.

    Safe to run twice and from two processes at once: each transition is sent
    once. Returns the counts.
    """
    now = now or utcnow()
    summary = CheckSummary()
    target_ids = list(
        db.session.scalars(
            select(KpiTarget.id).where(KpiTarget.alerts_enabled.is_(True)).order_by(KpiTarget.id)
        )
    )
    db.session.commit()
    for target_id in target_ids:
        try:
            _check_target(target_id, now, today, summary)
        except Exception:  # one bad target must not stop the others
            db.session.rollback()
            log.exception("alert check of target %s failed", target_id)
    _retry_failed(now, summary)
    return summary


def _check_target(
    target_id: int, now: datetime, today: date | None, summary: CheckSummary
) -> None:
    target = db.session.get(KpiTarget, target_id)
    if target is None:
        return
    scope = window_scope(target, today)
    kpi = compute(scope, metrics=[target.kpi]).overall[target.kpi]
    status = evaluate(target, kpi)
    summary.evaluated += 1
    write_transaction()
    target = db.session.get(KpiTarget, target_id)
    if target is None:
        db.session.rollback()
        return
    target.last_status = status.level
    target.last_value = kpi.value
    target.last_n = kpi.n
    target.last_checked_at = now
    open_alert = db.session.scalar(
        select(Alert).where(Alert.target_id == target_id, Alert.cleared_at.is_(None))
    )
    event: AlertEvent | None = None
    alert = open_alert
    if status.level == "low_confidence":
        summary.low_confidence += 1
        if open_alert is not None:
            open_alert.checked_at = now
    elif status.level == Level.OK:
        if open_alert is not None and _claim(
            update(Alert)
            .where(Alert.id == open_alert.id, Alert.cleared_at.is_(None))
            .values(cleared_at=now, current_level=Level.OK, value=kpi.value, n=kpi.n,
                    gap=status.gap, checked_at=now)
        ):  # fmt: skip
            summary.cleared += 1
            event = "resolved"
    elif open_alert is None:
        alert = _open(target, status, kpi.value, kpi.n, scope, now)
        if alert is not None:
            summary.opened += 1
            event = "opened"
    elif _rank(status.level) > _rank(open_alert.level):
        if _claim(
            update(Alert)
            .where(Alert.id == open_alert.id, Alert.cleared_at.is_(None),
                   Alert.level == open_alert.level)
            .values(level=Level(status.level), current_level=Level(status.level),
                    escalated_at=now, value=kpi.value, n=kpi.n, gap=status.gap,
                    checked_at=now, notify_claimed_at=now, notify_error=None)
        ):  # fmt: skip
            summary.escalated += 1
            event = "escalated"
    else:
        open_alert.current_level = Level(status.level)
        open_alert.value = kpi.value  # type: ignore[assignment]
        open_alert.n = kpi.n
        open_alert.gap = status.gap  # type: ignore[assignment]
        open_alert.checked_at = now
    db.session.commit()
    if event is not None and alert is not None:
        db.session.refresh(alert)
        _deliver(alert, event, now, summary)


def _claim(statement: Any) -> bool:
    """Run a conditional UPDATE; True when it changed the row (this process won)."""
    return changed_rows(db.session.execute(statement)) == 1


def _open(
    target: KpiTarget, status: Status, value: float | None, n: int, scope: Scope, now: datetime
) -> Alert | None:
    """Insert the target's open alert; None when another process opened it first."""
    alert = Alert(
        target_id=target.id,
        kpi=target.kpi,
        level=Level(status.level),
        current_level=Level(status.level),
        target_value=target.target,
        value=value,
        n=n,
        gap=status.gap,
        window_start=scope.start.isoformat(),
        window_end=scope.end.isoformat(),
        opened_at=now,
        checked_at=now,
        notify_claimed_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(alert)
    except IntegrityError:
        return None
    return alert


def _deliver(alert: Alert, event: AlertEvent, now: datetime, summary: CheckSummary) -> None:
    """Send the notification of a transition this process claimed; record the outcome."""
    error = notify_alert(alert, event)
    write_transaction()
    if error is None:
        summary.notified += 1
        if event != "resolved":
            db.session.execute(
                update(Alert)
                .where(Alert.id == alert.id)
                .values(notified_level=alert.level, notified_at=now, notify_error=None)
            )
    else:
        summary.failed += 1
        db.session.execute(
            update(Alert).where(Alert.id == alert.id).values(notify_error=error[:500])
        )
    db.session.commit()


def _retry_failed(now: datetime, summary: CheckSummary) -> None:
    """Send again the open alerts whose latest level was not delivered (claimed per alert)."""
    retry_after = timedelta(minutes=float(current_app.config["ALERT_RETRY_MINUTES"]))
    claimable = or_(Alert.notify_claimed_at.is_(None), Alert.notify_claimed_at < now - retry_after)
    pending = list(
        db.session.scalars(
            select(Alert.id).where(
                Alert.cleared_at.is_(None),
                or_(Alert.notified_level.is_(None), Alert.notified_level != Alert.level),
                claimable,
            )
        )
    )
    db.session.commit()
    for alert_id in pending:
        write_transaction()
        won = _claim(
            update(Alert)
            .where(
                Alert.id == alert_id,
                Alert.cleared_at.is_(None),
                claimable,
            )
            .values(notify_claimed_at=now)
        )
        db.session.commit()
        alert = db.session.get(Alert, alert_id)
        if won and alert is not None:
            _deliver(alert, "escalated" if alert.escalated_at else "opened", now, summary)


def recent_alerts(now: datetime | None = None, days: int = 30) -> tuple[list[Alert], list[Alert]]:
    """Open alerts (worst first) and those cleared in the last ``days`` days (newest first)."""
    now = now or utcnow()
    open_alerts = list(db.session.scalars(select(Alert).where(Alert.cleared_at.is_(None))))
    open_alerts.sort(key=lambda a: (-_rank(a.level), a.opened_at))
    cleared = list(
        db.session.scalars(
            select(Alert)
            .where(Alert.cleared_at >= now - timedelta(days=days))
            .order_by(Alert.cleared_at.desc())
            .limit(100)
        )
    )
    return open_alerts, cleared


def not_evaluated(targets: Iterable[KpiTarget] | None = None) -> list[KpiTarget]:
    """Targets whose latest check found too few answers (no alert could be raised)."""
    rows = targets if targets is not None else db.session.scalars(select(KpiTarget))
    return [t for t in rows if t.alerts_enabled and t.last_status == "low_confidence"]
