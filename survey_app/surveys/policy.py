"""The invitation policy: one row, created with the documented defaults."""

from __future__ import annotations

from flask_babel import gettext as _

from ..extensions import db
from .models import InvitationPolicy

#: Allowed values of each number in the policy, inclusive: (lowest, highest).
POLICY_RANGES: dict[str, tuple[int, int]] = {
    "delay_minutes": (0, 7 * 24 * 60),
    "link_valid_days": (1, 90),
    "reminder_after_days": (0, 30),
    "fatigue_days": (0, 365),
    "sampling_percent": (0, 100),
    "max_attempts": (1, 20),
}


class PolicyError(ValueError):
    """A policy value out of range; the message says which and why."""


def current_policy() -> InvitationPolicy:
    """Return the policy row, creating it with the defaults on first use."""
    policy = db.session.get(InvitationPolicy, 1)
    if policy is None:
        policy = InvitationPolicy(id=1)
        db.session.add(policy)
        db.session.flush()
    return policy


def check_reminder(reminder_after_days: int, link_valid_days: int) -> None:
    """Refuse (PolicyError) a reminder that would come when the link no longer works."""
    if reminder_after_days and reminder_after_days >= link_valid_days:
        raise PolicyError(_("The reminder must come before the link expires."))


def update_policy(
    *,
    delay_minutes: int,
    link_valid_days: int,
    reminder_after_days: int,
    fatigue_days: int,
    sampling_percent: int,
    exempt_detractors: bool,
    max_attempts: int,
) -> InvitationPolicy:
    """Save the invitation policy; it applies to invitations decided from now on. Flushes.

    Refuses (:class:`PolicyError`) a number outside :data:`POLICY_RANGES` and a
    reminder (other than 0 = none) not earlier than the link's expiry.
    """
    numbers = {
        "delay_minutes": delay_minutes,
        "link_valid_days": link_valid_days,
        "reminder_after_days": reminder_after_days,
        "fatigue_days": fatigue_days,
        "sampling_percent": sampling_percent,
        "max_attempts": max_attempts,
    }
    for name, value in numbers.items():
        low, high = POLICY_RANGES[name]
        if not low <= value <= high:
            raise PolicyError(
                _("%(name)s must be from %(low)s to %(high)s.", name=name, low=low, high=high)
            )
    check_reminder(reminder_after_days, link_valid_days)
    policy = current_policy()
    for name, value in numbers.items():
        setattr(policy, name, value)
    policy.exempt_detractors = exempt_detractors
    db.session.flush()
    return policy
