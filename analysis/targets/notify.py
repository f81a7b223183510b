"""Alert notifications: e-mail (Flask-Mail, HTML and text, in each recipient's language)
and a JSON webhook (ClosedLoop's payload, or the body a Slack / WeCom / DingTalk bot takes).

The webhook body is signed like the ticket webhook when ``ALERT_WEBHOOK_SECRET``
is set: ``X-ClosedLoop-Signature: sha256=<hex>`` = HMAC-SHA256 over
``<X-ClosedLoop-Timestamp>.<raw body>``. The generic payload::

    {"event": "alert.opened" | "alert.escalated" | "alert.resolved",
     "alert_id": 7, "level": "red", "previous_level": "yellow" | null,
     "kpi": "nps", "kpi_label": "NPS", "direction": "higher",
     "value": 12.5, "n": 48, "target": 30.0, "gap": 17.5,
     "thresholds": {"yellow": 0.0, "orange": 10.0, "red": 15.0},
     "scope": {"team": ["Frontline"]},
     "window": {"from": "2026-11-24", "to": "2026-11-30", "days": 7},
     "opened_at": "...Z", "escalated_at": null, "cleared_at": null,
     "text": "one line for people", "url": "<PUBLIC_URL>/alerts",
     "definitions_version": "2026.2"}

``slack`` sends ``{"text": text}``; ``wecom`` and ``dingtalk`` send
``{"msgtype": "text", "text": {"content": text}}`` (use the bot's keyword
security: their own signature schemes are not ClosedLoop's).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Literal

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_mail import Message
from sqlalchemy import func, select

from analysis.metrics import DEFINITIONS_VERSION
from survey_app.extensions import db
from survey_app.models import User
from survey_app.outbound import failure_log_level, post_webhook, send_mail

from .labels import KPI_LABELS, LEVEL_LABELS, format_gap, format_value
from .models import Alert, KpiTarget, Level, WebhookFormat
from .services import describe_filters
from .status import direction_of

AlertEvent = Literal["opened", "escalated", "resolved"]


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def alerts_url() -> str:
    """The alert list's address for people reading a notification (``PUBLIC_URL``)."""
    return str(current_app.config["PUBLIC_URL"]).rstrip("/") + "/alerts"


def summary_text(alert: Alert, event: AlertEvent) -> str:
    """One line for people, in the current locale: what happened to which KPI."""
    target = alert.kpi_target
    values = {
        "kpi": str(KPI_LABELS[alert.kpi]),
        "scope": describe_filters(target.filters or {}),
        "level": str(LEVEL_LABELS[alert.level]),
        "value": format_value(alert.kpi, alert.value),
        "target": format_value(alert.kpi, alert.target_value),
        "gap": format_gap(alert.kpi, alert.gap),
        "n": alert.n,
        "days": target.window_days,
    }
    if event == "resolved":
        return _(
            "Resolved: %(kpi)s (%(scope)s) is back on target: %(value)s against %(target)s "
            "(n = %(n)s, last %(days)s days).",
            **values,
        )
    if event == "escalated":
        return _(
            "Escalated to %(level)s: %(kpi)s (%(scope)s) is %(value)s against a target of "
            "%(target)s, gap %(gap)s (n = %(n)s, last %(days)s days).",
            **values,
        )
    return _(
        "%(level)s alert: %(kpi)s (%(scope)s) is %(value)s against a target of %(target)s, "
        "gap %(gap)s (n = %(n)s, last %(days)s days).",
        **values,
    )


def webhook_payload(alert: Alert, event: AlertEvent, previous: Level | None) -> dict[str, Any]:
    """The generic JSON payload documented in this module's docstring."""
    target: KpiTarget = alert.kpi_target
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        text = summary_text(alert, event)
        label = str(KPI_LABELS[alert.kpi])
    return {
        "event": f"alert.{event}",
        "alert_id": alert.id,
        "level": Level.OK.value if event == "resolved" else alert.level.value,
        "previous_level": previous.value if previous else None,
        "kpi": alert.kpi,
        "kpi_label": label,
        "direction": direction_of(alert.kpi),
        "value": alert.value,
        "n": alert.n,
        "target": alert.target_value,
        "gap": alert.gap,
        "thresholds": {"yellow": target.yellow, "orange": target.orange, "red": target.red},
        "scope": dict(target.filters or {}),
        "window": {"from": alert.window_start, "to": alert.window_end,
                   "days": target.window_days},
        "opened_at": _iso(alert.opened_at),
        "escalated_at": _iso(alert.escalated_at),
        "cleared_at": _iso(alert.cleared_at),
        "text": text,
        "url": alerts_url(),
        "definitions_version": DEFINITIONS_VERSION,
    }  # fmt: skip


def webhook_body(payload: dict[str, Any], fmt: WebhookFormat) -> dict[str, Any]:
    """The body sent for ``fmt``: the payload itself, or the chat bot's text message."""
    text = f"[ClosedLoop] {payload['text']} {payload['url']}"
    if fmt is WebhookFormat.SLACK:
        return {"text": text}
    if fmt in (WebhookFormat.WECOM, WebhookFormat.DINGTALK):
        return {"msgtype": "text", "text": {"content": text}}
    return payload


def send_webhook(url: str, body: dict[str, Any]) -> None:
    """POST ``body`` as JSON, signed when ``ALERT_WEBHOOK_SECRET`` is set, through the one
    webhook sender; raise :class:`RuntimeError` (``OutboundError``) on any failure."""
    post_webhook(url, body, secret=current_app.config["ALERT_WEBHOOK_SECRET"])


def has_audience(target: KpiTarget) -> bool:
    """Whether an alert of ``target`` goes anywhere: e-mail recipients or a webhook."""
    return bool(target.recipients or target.webhook_url or current_app.config["ALERT_WEBHOOK_URL"])


def recipient_languages(addresses: list[str]) -> dict[str, list[str]]:
    """Group addresses by language: a staff user's language setting where the address is a
    user's, else ``BABEL_DEFAULT_LOCALE``."""
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    lowered = [a.lower() for a in addresses]
    known: dict[str, str | None] = {}
    if lowered:
        rows = db.session.execute(
            select(func.lower(User.email), User.language).where(
                func.lower(User.email).in_(lowered)
            )
        )
        known = {row[0]: row[1] for row in rows}
    groups: dict[str, list[str]] = defaultdict(list)
    for address in addresses:
        groups[known.get(address.lower()) or default].append(address)
    return dict(groups)


def send_emails(alert: Alert, event: AlertEvent) -> None:
    """One message per language to the target's recipients; raise RuntimeError on SMTP failure."""
    recipients = list(alert.kpi_target.recipients or [])
    if not recipients:
        return
    messages = []
    for language, grouped in recipient_languages(recipients).items():
        addresses: list[str | tuple[str, str]] = list(grouped)
        with force_locale(language):
            context = {
                "alert": alert,
                "target": alert.kpi_target,
                "event": event,
                "text": summary_text(alert, event),
                "kpi_label": str(KPI_LABELS[alert.kpi]),
                "scope": describe_filters(alert.kpi_target.filters or {}),
                "level_label": str(LEVEL_LABELS[Level.OK if event == "resolved" else alert.level]),
                "value": format_value(alert.kpi, alert.value),
                "target_value": format_value(alert.kpi, alert.target_value),
                "gap": format_gap(alert.kpi, alert.gap),
                "url": alerts_url(),
                "organisation": current_app.config["ORGANISATION_NAME"],
                "html_lang": language.replace("_", "-"),
                "definitions_version": DEFINITIONS_VERSION,
            }
            subject = f"[ClosedLoop] {context['text']}"[:200]
            messages.append(
                Message(
                    subject=subject,
                    recipients=addresses,
                    body=render_template("targets/email/alert.txt", **context),
                    html=render_template("targets/email/alert.html", **context),
                    extra_headers={
                        "Auto-Submitted": "auto-generated",
                        "X-ClosedLoop-Alert": str(alert.id),
                    },
                )
            )
    for message in messages:
        send_mail(message)


def notify_alert(alert: Alert, event: AlertEvent) -> str | None:
    """Send the e-mails and the webhook of one transition; return None, or what failed.

    Both channels are tried even when one fails. The webhook goes to the target's
    URL, else ``ALERT_WEBHOOK_URL``; none configured means no webhook.
    """
    previous = None
    errors: list[str] = []
    level = logging.DEBUG
    if event == "escalated" and alert.notified_level is not None:
        previous = alert.notified_level
    elif event == "resolved":
        previous = alert.level
    try:
        send_emails(alert, event)
    except RuntimeError as exc:
        errors.append(str(exc))
        level = max(level, failure_log_level(exc))
    url = alert.kpi_target.webhook_url or current_app.config["ALERT_WEBHOOK_URL"]
    if url:
        try:
            payload = webhook_payload(alert, event, previous)
            send_webhook(str(url), webhook_body(payload, alert.kpi_target.webhook_format))
        except RuntimeError as exc:
            errors.append(str(exc))
            level = logging.WARNING
    if errors:
        current_app.logger.log(level, "alert %s: notification failed: %s", alert.id, errors)
        return "; ".join(errors)
    return None
