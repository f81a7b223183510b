"""Survey templates and their versions: create, edit as a new draft, publish, choose."""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Ticket
from ..types import utcnow
from .defaults import DEFAULT_INTRO, DEFAULT_TEMPLATE_NAME, default_question_rows
from .models import Question, QuestionKind, SurveyTemplate, TemplateVersion, VersionStatus


class TemplateError(ValueError):
    """A template operation that is not allowed; the message says why."""


def ensure_default_template() -> SurveyTemplate:
    """Return the default template, creating and publishing it (version 1) if missing."""
    template = db.session.scalar(
        select(SurveyTemplate).where(SurveyTemplate.name == DEFAULT_TEMPLATE_NAME)
    )
    if template is not None:
        return template
    template = SurveyTemplate(name=DEFAULT_TEMPLATE_NAME, channels=[], tiers=[])
    version = TemplateVersion(template=template, number=1, intro=dict(DEFAULT_INTRO))
    version.questions = [Question(**row) for row in default_question_rows()]
    db.session.add(template)
    db.session.flush()
    publish(version)
    return template


def latest_version(template: SurveyTemplate) -> TemplateVersion | None:
    return template.versions[-1] if template.versions else None


def published_version(template: SurveyTemplate) -> TemplateVersion | None:
    """The version customers get now, or None."""
    for version in reversed(template.versions):
        if version.status is VersionStatus.PUBLISHED:
            return version
    return None


def editable_draft(template: SurveyTemplate) -> TemplateVersion:
    """Return the template's draft, copying the newest version into a new one if needed.

    Published versions are never changed: every edit happens on a draft.
    """
    latest = latest_version(template)
    if latest is not None and latest.status is VersionStatus.DRAFT:
        return latest
    number = (latest.number + 1) if latest else 1
    draft = TemplateVersion(
        template=template, number=number, intro=dict(latest.intro) if latest else {}
    )
    if latest is not None:
        draft.questions = [
            Question(position=q.position, key=q.key, kind=q.kind, required=q.required,
                     text=dict(q.text))
            for q in latest.questions
        ]  # fmt: skip
    db.session.add(draft)
    db.session.flush()
    return draft


def check_draft(version: TemplateVersion) -> None:
    """Refuse (TemplateError) to change a version that is not a draft."""
    if version.status is not VersionStatus.DRAFT:
        raise TemplateError("A published version cannot be changed; edit creates a new draft.")


def publish(version: TemplateVersion) -> TemplateVersion:
    """Publish a draft; the previously published version of the template is retired.

    Refuses a version with no rating question, with duplicate keys, or with a
    question that lacks its English or Chinese text.
    """
    check_draft(version)
    if not any(q.kind is not QuestionKind.TEXT for q in version.questions):
        raise TemplateError("A survey needs at least one rating question.")
    keys = [q.key for q in version.questions]
    if len(keys) != len(set(keys)):
        raise TemplateError("Two questions share a key.")
    for question in version.questions:
        if not question.text.get("en") or not question.text.get("zh_Hans"):
            raise TemplateError(f"Question {question.key!r} needs English and Chinese text.")
    current = published_version(version.template)
    if current is not None:
        current.status = VersionStatus.RETIRED
    version.status = VersionStatus.PUBLISHED
    version.published_at = utcnow()
    db.session.flush()
    return version


def version_for_ticket(ticket: Ticket) -> TemplateVersion | None:
    """The published version of the best-matching active template for ``ticket``.

    Templates targeted at the ticket's channel or the customer's tier win over
    catch-all ones (higher ``priority`` first, then the most specific).
    """
    candidates = db.session.scalars(
        select(SurveyTemplate).where(SurveyTemplate.active.is_(True))
    ).all()
    matching = [
        t for t in candidates
        if t.matches(ticket.channel, ticket.customer.tier) and published_version(t) is not None
    ]  # fmt: skip
    if not matching:
        return None
    best = max(matching, key=lambda t: (t.priority, bool(t.channels) + bool(t.tiers), -t.id))
    return published_version(best)
