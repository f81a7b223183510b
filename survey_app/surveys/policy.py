"""The invitation policy: one row, created with the documented defaults."""

from __future__ import annotations

from ..extensions import db
from .models import InvitationPolicy


def current_policy() -> InvitationPolicy:
    """Return the policy row, creating it with the defaults on first use."""
    policy = db.session.get(InvitationPolicy, 1)
    if policy is None:
        policy = InvitationPolicy(id=1)
        db.session.add(policy)
        db.session.flush()
    return policy
