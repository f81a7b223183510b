"""Target operations shared by the pages and the CLI: validate, save, delete, list.

Each operation changes the session and flushes; the caller commits (one place
commits per request or command).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from analysis.metrics import ALL_KPIS, ScopeError, metrics_timezone, parse_metrics_args
from analysis.metrics.catalog import describe_scope
from survey_app.extensions import db
from survey_app.outbound import UnsafeDestination, check_destination

from .labels import format_value, kpi_range
from .models import KpiTarget, WebhookFormat
from .status import forget_cached_targets, scope_filters_json

#: Longest alert window, days.
MAX_WINDOW_DAYS = 366
MAX_RECIPIENTS = 20


class TargetError(ValueError):
    """A target that cannot be saved; ``errors`` maps a field name to its message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclasses.dataclass
class TargetSpec:
    """Everything a target is made of, as typed by a person (filters: dimension → values)."""

    kpi: str
    target: float
    yellow: float
    orange: float
    red: float
    filters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    window_days: int = 7
    alerts_enabled: bool = True
    recipients: Iterable[str] = ()
    webhook_url: str | None = None
    webhook_format: WebhookFormat = WebhookFormat.GENERIC
    note: str = ""


def normalise_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Check filters like the metrics API does (:func:`analysis.metrics.parse_metrics_args`)
    and return them as stored: dimension → sorted list of values (``customer_is_new``: a
    boolean). Refuses (:class:`TargetError`, field ``filters``) unknown dimensions and
    values outside their enumerations."""
    args: dict[str, list[str]] = {}
    for name, value in filters.items():
        if name in ("from", "to", "group_by", "grain"):
            raise TargetError({"filters": _("unknown dimension %(name)s", name=name)})
        if isinstance(value, bool):
            args[name] = ["new" if value else "returning"]
        elif isinstance(value, str | int):
            args[name] = [str(value)]
        else:
            args[name] = [str(v) for v in value]
        args[name] = [v.strip() for v in args[name] if v.strip()]
        if not args[name]:
            del args[name]
    try:
        query = parse_metrics_args(args, timezone=metrics_timezone(current_app.config))
    except ScopeError as exc:
        raise TargetError({"filters": str(exc)}) from None
    stored = scope_filters_json(query.scope)
    return {k: v if isinstance(v, bool) else sorted(v) for k, v in sorted(stored.items())}


def _number(errors: dict[str, str], name: str, value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        errors[name] = _("Enter a number.")
        return None
    return float(value)


def validate_spec(spec: TargetSpec, existing: KpiTarget | None = None) -> dict[str, Any]:
    """Check ``spec`` and return the column values of the target it describes.

    Refuses (:class:`TargetError`): an unknown KPI; a target outside the KPI's range
    (0–100 for percentages, −100..100 for NPS, 1–5 / 1–7 for averages, ≥ 0 else);
    thresholds that do not strictly increase (yellow < orange < red); a window
    outside 1–366 days; bad filters; bad e-mail addresses; a webhook URL that is
    not http(s); a second target for the same KPI and filters.
    """
    errors: dict[str, str] = {}
    if spec.kpi not in ALL_KPIS:
        raise TargetError({"kpi": _("Choose a KPI from the list.")})
    target = _number(errors, "target", spec.target)
    yellow = _number(errors, "yellow", spec.yellow)
    orange = _number(errors, "orange", spec.orange)
    red = _number(errors, "red", spec.red)
    low, high = kpi_range(spec.kpi)
    if target is not None and (target < low or (high is not None and target > high)):
        errors["target"] = (
            _("Between %(low)s and %(high)s.", low=low, high=high)
            if high is not None
            else _("At least %(low)s.", low=low)
        )
    if yellow is not None and orange is not None and red is not None and not yellow < orange < red:
        errors["orange"] = _(
            "Thresholds must increase: yellow < orange < red (gaps on the bad side of the target)."
        )
    if not 1 <= spec.window_days <= MAX_WINDOW_DAYS:
        errors["window_days"] = _("1 to %(days)s days.", days=MAX_WINDOW_DAYS)
    try:
        filters = normalise_filters(spec.filters)
    except TargetError as exc:
        errors.update(exc.errors)
        filters = {}
    recipients: list[str] = []
    for address in spec.recipients:
        address = address.strip()
        if not address:
            continue
        try:
            normalised = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError:
            errors["recipients"] = _("%(address)s is not an e-mail address.", address=address)
            break
        if normalised.lower() not in (r.lower() for r in recipients):
            recipients.append(normalised)
    if len(recipients) > MAX_RECIPIENTS:
        errors["recipients"] = _("At most %(count)s addresses.", count=MAX_RECIPIENTS)
    url = (spec.webhook_url or "").strip() or None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 500:
            errors["webhook_url"] = _("Enter an http:// or https:// address.")
        else:
            try:
                # The address a name resolves to is checked again when sending.
                check_destination(url, resolve=False)
            except UnsafeDestination:
                errors["webhook_url"] = _(
                    "This address is inside the network (loopback, private or link-local): "
                    "alerts are not sent there."
                )
    if not errors:
        for other in db.session.scalars(select(KpiTarget).where(KpiTarget.kpi == spec.kpi)):
            if other is not existing and (other.filters or {}) == filters:
                errors["kpi"] = _("This KPI already has a target for this scope.")
    if errors:
        raise TargetError(errors)
    return {
        "kpi": spec.kpi,
        "filters": filters,
        "target": target,
        "yellow": yellow,
        "orange": orange,
        "red": red,
        "window_days": spec.window_days,
        "alerts_enabled": spec.alerts_enabled,
        "recipients": recipients,
        "webhook_url": url,
        "webhook_format": WebhookFormat(spec.webhook_format),
        "note": spec.note.strip()[:500],
    }


def save_target(spec: TargetSpec, existing: KpiTarget | None = None) -> KpiTarget:
    """Create a target (``existing`` None) or change ``existing``; flush and return it.

    Changing the KPI, scope, target or thresholds of a target with an open alert
    leaves the alert open: the next check re-grades it (escalates or clears).
    Refuses what :func:`validate_spec` refuses.
    """
    values = validate_spec(spec, existing)
    target = existing or KpiTarget()
    for name, value in values.items():
        setattr(target, name, value)
    if existing is None:
        db.session.add(target)
    db.session.flush()
    forget_cached_targets()
    return target


def delete_target(target: KpiTarget) -> None:
    """Delete a target with its alerts (open ones close silently); flush."""
    db.session.delete(target)
    db.session.flush()
    forget_cached_targets()


def list_targets() -> list[KpiTarget]:
    """Every target, by KPI then scope."""
    targets = db.session.scalars(select(KpiTarget)).all()
    return sorted(targets, key=lambda t: (ALL_KPIS.index(t.kpi), len(t.filters or {}), t.id))


def describe_filters(filters: Mapping[str, Any]) -> str:
    """``Team: A, B; Channel: chat`` — or ``whole organisation``, in the reader's language
    (see :func:`analysis.metrics.catalog.describe_scope`)."""
    return describe_scope(filters)


def describe_target(target: KpiTarget) -> str:
    """``nps ≥ 30.0`` style summary (≤ for lower-is-better KPIs)."""
    from .status import direction_of

    sign = "≥" if direction_of(target.kpi) == "higher" else "≤"
    return f"{target.kpi} {sign} {format_value(target.kpi, target.target)}"
