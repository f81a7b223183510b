"""Root causes: creating and editing them, linking cases to them, suggesting them.

Flush only; the caller commits (see :mod:`.common`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from analysis.text.problems import ProblemType
from improvement.audit.services import record_event, snapshot
from survey_app.extensions import db
from survey_app.models import User
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from .cases import start_work
from .common import (
    CASE_AUDIT_FIELDS,
    LINKABLE_ROOT_CAUSE_STATUSES,
    MAX_DESCRIPTION,
    MAX_THEME_LENGTH,
    MAX_THEMES,
    MAX_TITLE,
    ROOT_CAUSE_AUDIT_FIELDS,
    CaseError,
    enum_or_none,
)
from .models import FeedbackCase, RootCause, RootCauseStatus

_THEME_SEPARATORS = re.compile(r"[,，、;；\n]+")


def parse_themes(text: str | Iterable[str] | None) -> list[str]:
    """Themes from a comma-separated string (or a list): trimmed, lower-case, de-duplicated.

    Refuses more than 20 themes or one longer than 40 characters.
    """
    parts = _THEME_SEPARATORS.split(text) if isinstance(text, str) else list(text or ())
    themes = list(dict.fromkeys(p.strip().lower() for p in parts if p and p.strip()))
    if len(themes) > MAX_THEMES:
        raise CaseError(_("At most %(n)s themes.", n=MAX_THEMES))
    if any(len(theme) > MAX_THEME_LENGTH for theme in themes):
        raise CaseError(_("A theme is longer than %(n)s characters.", n=MAX_THEME_LENGTH))
    return themes


def _check_root_cause_text(title: str, description: str) -> tuple[str, str]:
    title, description = (title or "").strip(), (description or "").strip()
    if not title:
        raise CaseError(_("A root cause needs a title."))
    if len(title) > MAX_TITLE:
        raise CaseError(_("The title is longer than %(n)s characters.", n=MAX_TITLE))
    if len(description) > MAX_DESCRIPTION:
        raise CaseError(_("The description is longer than %(n)s characters.", n=MAX_DESCRIPTION))
    return title, description


def create_root_cause(
    title: str,
    *,
    description: str = "",
    problem_type: str | None = None,
    themes: str | Iterable[str] | None = None,
    user: User | None = None,
) -> RootCause:
    """Create an open root cause; flush and return it. Refuses an empty or too long title."""
    title, description = _check_root_cause_text(title, description)
    problem = enum_or_none(ProblemType, problem_type, _("Unknown problem type."))
    root_cause = RootCause(
        title=title,
        description=description,
        problem_type=problem.value if problem is not None else None,
        themes=parse_themes(themes),
        status=RootCauseStatus.OPEN,
        created_by_id=user.id if user is not None else None,
    )
    db.session.add(root_cause)
    db.session.flush()
    record_event(
        user,
        "root_cause",
        root_cause.id,
        "create",
        None,
        snapshot(root_cause, ROOT_CAUSE_AUDIT_FIELDS),
    )
    return root_cause


def update_root_cause(
    root_cause: RootCause,
    *,
    title: str,
    description: str,
    problem_type: str | None,
    themes: str | Iterable[str] | None,
    status: RootCauseStatus | str,
    user: User | None = None,
) -> RootCause:
    """Edit a root cause; flush; audit what ``user`` changed. Refuses the same bad input as
    :func:`create_root_cause`."""
    title, description = _check_root_cause_text(title, description)
    problem = enum_or_none(ProblemType, problem_type, _("Unknown problem type."))
    new_status = enum_or_none(RootCauseStatus, status, _("Unknown root-cause status."))
    if new_status is None:
        raise CaseError(_("Unknown root-cause status."))
    new_themes = parse_themes(themes)
    before = snapshot(root_cause, ROOT_CAUSE_AUDIT_FIELDS)
    root_cause.title, root_cause.description = title, description
    root_cause.problem_type = problem.value if problem is not None else None
    root_cause.themes = new_themes
    root_cause.status = new_status
    db.session.flush()
    record_event(
        user,
        "root_cause",
        root_cause.id,
        "update",
        before,
        snapshot(root_cause, ROOT_CAUSE_AUDIT_FIELDS),
    )
    return root_cause


def linkable_root_causes() -> list[RootCause]:
    """Root causes new feedback may be linked to (open or confirmed), newest first."""
    return list(
        db.session.scalars(
            select(RootCause)
            .where(RootCause.status.in_(LINKABLE_ROOT_CAUSE_STATUSES))
            .order_by(RootCause.id.desc())
        )
    )


def link_case(
    case: FeedbackCase, root_cause: RootCause | None, user: User | None = None
) -> FeedbackCase:
    """Point ``case`` at ``root_cause`` (None unlinks); flush; audit it as ``user``'s change.

    Refuses a root cause that is resolved or rejected: new feedback on a fixed
    cause is a new root cause (or the old one reopened first).
    """
    if root_cause is not None and root_cause.status not in LINKABLE_ROOT_CAUSE_STATUSES:
        raise CaseError(
            _(
                "Root cause #%(id)s is %(status)s; reopen it before linking feedback to it.",
                id=root_cause.id,
                status=root_cause.status.value,
            )  # fmt: skip
        )
    before = snapshot(case, CASE_AUDIT_FIELDS)
    case.root_cause = root_cause
    case.linked_at = utcnow() if root_cause is not None else None
    if root_cause is not None:
        start_work(case)
    db.session.flush()
    record_event(user, "case", case.id, "link", before, snapshot(case, CASE_AUDIT_FIELDS))
    return case


def create_root_cause_for_case(
    case: FeedbackCase, title: str, *, description: str = "", user: User | None = None
) -> RootCause:
    """Create a root cause from a case (its problem type and keywords) and link the case."""
    keywords = case.response.keywords if case.response is not None else None
    root_cause = create_root_cause(
        title,
        description=description,
        problem_type=case.problem_type,
        themes=(keywords or [])[:MAX_THEMES],
        user=user,
    )
    link_case(case, root_cause, user)
    return root_cause


@dataclass(frozen=True)
class Suggestion:
    """An existing root cause that shares themes with a feedback item."""

    root_cause: RootCause
    #: The item's keywords the root cause shares, most mentioned first.
    shared: tuple[str, ...]
    #: How often the shared themes occur among the root cause's linked feedback.
    mentions: int
    same_problem_type: bool
    linked: int


def root_cause_themes(root_cause_ids: Sequence[int]) -> dict[int, Counter[str]]:
    """Per root cause: how many linked feedback items carry each keyword, plus its own themes."""
    tallies: dict[int, Counter[str]] = {rc_id: Counter() for rc_id in root_cause_ids}
    if not root_cause_ids:
        return tallies
    rows = db.session.execute(
        select(FeedbackCase.root_cause_id, SurveyResponse.keywords)
        .join(SurveyResponse, SurveyResponse.id == FeedbackCase.response_id)
        .where(FeedbackCase.root_cause_id.in_(root_cause_ids))
    )
    for rc_id, keywords in rows:
        if rc_id is None:  # excluded by the query; narrows the type
            continue
        tallies[rc_id].update(dict.fromkeys(keywords or (), 1))
    return tallies


def suggest_root_causes(
    keywords: Iterable[str] | None,
    *,
    problem_type: str | None = None,
    exclude_id: int | None = None,
    limit: int = 5,
) -> list[Suggestion]:
    """Open or confirmed root causes sharing themes with ``keywords``, best first.

    A root cause's themes are the analyst's tags plus the keywords of its
    linked feedback. Ranked by the number of shared themes, then how often
    those themes occur in its feedback, then a matching problem type, then
    the number of linked items; root causes sharing nothing are left out.
    """
    wanted = {k.strip().lower() for k in keywords or () if k and k.strip()}
    if not wanted or limit <= 0:
        return []
    candidates = db.session.scalars(
        select(RootCause).where(RootCause.status.in_(LINKABLE_ROOT_CAUSE_STATUSES))
    ).all()
    candidates = [rc for rc in candidates if rc.id != exclude_id]
    tallies = root_cause_themes([rc.id for rc in candidates])
    linked_counts: dict[int | None, int] = dict(
        db.session.execute(
            select(FeedbackCase.root_cause_id, db.func.count())
            .where(FeedbackCase.root_cause_id.in_([rc.id for rc in candidates]))
            .group_by(FeedbackCase.root_cause_id)
        ).all()
    )
    suggestions = []
    for rc in candidates:
        tally = tallies[rc.id]
        themes = set(tally) | {t.lower() for t in rc.themes or ()}
        shared = wanted & themes
        if not shared:
            continue
        suggestions.append(
            Suggestion(
                root_cause=rc,
                shared=tuple(sorted(shared, key=lambda k: (-tally[k], k))),
                mentions=sum(tally[k] for k in shared),
                same_problem_type=problem_type is not None and rc.problem_type == problem_type,
                linked=linked_counts.get(rc.id, 0),
            )
        )
    suggestions.sort(
        key=lambda s: (
            -len(s.shared),
            -s.mentions,
            not s.same_problem_type,
            -s.linked,
            s.root_cause.id,
        )
    )
    return suggestions[:limit]


def suggestions_for_case(case: FeedbackCase, limit: int = 5) -> list[Suggestion]:
    """:func:`suggest_root_causes` for a case's feedback keywords (none for a ticket-only case)."""
    keywords = case.response.keywords if case.response is not None else None
    return suggest_root_causes(
        keywords, problem_type=case.problem_type, exclude_id=case.root_cause_id, limit=limit
    )
