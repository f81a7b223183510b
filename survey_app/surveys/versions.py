"""Survey templates and their versions: create, edit as a new draft, publish, choose."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask_babel import gettext as _
from sqlalchemy import func, select

from ..extensions import db
from ..models import Channel, Ticket, Tier
from ..types import utcnow
from .defaults import DEFAULT_INTRO, DEFAULT_TEMPLATE_NAME, default_question_rows
from .models import (
    METRIC_COLUMNS,
    Question,
    QuestionKind,
    SurveyTemplate,
    TemplateVersion,
    VersionStatus,
)

#: A question key: lower-case letters, digits and underscores, starting with a letter.
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
#: The two languages every published question is written in.
TEXT_LANGUAGES = ("en", "zh_Hans")


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
    # Copy before the draft exists: loading the questions autoflushes the session.
    questions = [
        Question(position=q.position, key=q.key, kind=q.kind, required=q.required,
                 text=dict(q.text))
        for q in (latest.questions if latest is not None else [])
    ]  # fmt: skip
    draft = TemplateVersion(
        template=template,
        number=number,
        intro=dict(latest.intro) if latest else {},
        questions=questions,
    )
    db.session.add(draft)
    db.session.flush()
    return draft


def check_draft(version: TemplateVersion) -> None:
    """Refuse (TemplateError) to change a version that is not a draft."""
    if version.status is not VersionStatus.DRAFT:
        raise TemplateError(
            _("A published version cannot be changed; editing creates a new draft.")
        )


def publish(version: TemplateVersion) -> TemplateVersion:
    """Publish a draft; the previously published version of the template is retired.

    Refuses (:class:`TemplateError`) a version with no rating question, with
    duplicate keys, with a standard metric key on the wrong kind of question,
    or with a question that lacks its English or Chinese text.
    """
    check_draft(version)
    if not any(q.kind is not QuestionKind.TEXT for q in version.questions):
        raise TemplateError(_("A survey needs at least one rating question."))
    keys = [q.key for q in version.questions]
    if len(keys) != len(set(keys)):
        raise TemplateError(_("Two questions share a key."))
    for question in version.questions:
        check_metric_kind(question.key, question.kind)
        if not all((question.text.get(lang) or "").strip() for lang in TEXT_LANGUAGES):
            raise TemplateError(
                _("Question %(key)s needs English and Chinese text.", key=question.key)
            )
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


# --- editing templates and drafts -----------------------------------------------------------


def metric_kind(key: str) -> QuestionKind | None:
    """The kind a standard metric key requires (``csat_*``, ``nps``, ``ces``, ``comment``)."""
    if key not in METRIC_COLUMNS:
        return None
    if key.startswith("csat_"):
        return QuestionKind.CSAT
    return {"nps": QuestionKind.NPS, "ces": QuestionKind.CES}.get(key, QuestionKind.TEXT)


def check_metric_kind(key: str, kind: QuestionKind) -> None:
    """Refuse (TemplateError) a metric key on another kind: its KPI column would be wrong."""
    required = metric_kind(key)
    if required is not None and required is not kind:
        raise TemplateError(
            _(
                "The key %(key)s is the standard %(kind)s question; choose another key.",
                key=key,
                kind=required.value.upper(),
            )
        )


def _name_taken(name: str, template: SurveyTemplate | None = None) -> bool:
    query = select(SurveyTemplate.id).where(func.lower(SurveyTemplate.name) == name.lower())
    if template is not None:
        query = query.where(SurveyTemplate.id != template.id)
    return db.session.scalar(query.limit(1)) is not None


def _targeting_values(
    channels: Iterable[Channel | str], tiers: Iterable[Tier | str]
) -> tuple[list[str], list[str]]:
    # Stored in the enums' order so equal targeting always looks the same.
    chosen_channels = {Channel(c).value for c in channels}
    chosen_tiers = {Tier(t).value for t in tiers}
    return (
        [c.value for c in Channel if c.value in chosen_channels],
        [t.value for t in Tier if t.value in chosen_tiers],
    )


def create_template(
    name: str,
    channels: Iterable[Channel | str] = (),
    tiers: Iterable[Tier | str] = (),
    priority: int = 0,
    active: bool = True,
) -> SurveyTemplate:
    """Create a template whose draft version 1 holds the default questions; flush.

    Nothing is sent with it until that draft is published. Refuses
    (:class:`TemplateError`) an empty name or one another template has (any case).
    """
    name = name.strip()
    if not name:
        raise TemplateError(_("A template needs a name."))
    if _name_taken(name):
        raise TemplateError(_("A template named %(name)s already exists.", name=name))
    channel_values, tier_values = _targeting_values(channels, tiers)
    template = SurveyTemplate(
        name=name, channels=channel_values, tiers=tier_values, priority=priority, active=active
    )
    draft = TemplateVersion(template=template, number=1, intro=dict(DEFAULT_INTRO))
    draft.questions = [Question(**row) for row in default_question_rows()]
    db.session.add(template)
    db.session.flush()
    return template


def update_targeting(
    template: SurveyTemplate,
    name: str,
    channels: Iterable[Channel | str],
    tiers: Iterable[Tier | str],
    priority: int,
    active: bool,
) -> SurveyTemplate:
    """Rename and re-target a template (empty channels/tiers = any); flush.

    Targeting is not part of a version: it applies at once to the next
    invitations. Refuses (:class:`TemplateError`) a name another template has.
    """
    name = name.strip()
    if not name:
        raise TemplateError(_("A template needs a name."))
    if _name_taken(name, template):
        raise TemplateError(_("A template named %(name)s already exists.", name=name))
    template.name = name
    template.channels, template.tiers = _targeting_values(channels, tiers)
    template.priority = priority
    template.active = active
    db.session.flush()
    return template


def _texts(en: str | None, zh_hans: str | None) -> dict[str, str]:
    return {"en": (en or "").strip(), "zh_Hans": (zh_hans or "").strip()}


def _own_question(draft: TemplateVersion, question: Question) -> None:
    if question.version_id != draft.id:
        raise TemplateError(_("That question belongs to another version."))


def update_intro(draft: TemplateVersion, en: str | None, zh_hans: str | None) -> None:
    """Set the draft's introduction texts; refuses (TemplateError) a non-draft."""
    check_draft(draft)
    draft.intro = _texts(en, zh_hans)
    db.session.flush()


def update_question(
    draft: TemplateVersion,
    question: Question,
    *,
    en: str | None,
    zh_hans: str | None,
    required: bool,
) -> Question:
    """Change a draft question's texts and required flag (its key and kind stay).

    Refuses (:class:`TemplateError`) a question of a published or retired version.
    """
    check_draft(draft)
    _own_question(draft, question)
    question.text = _texts(en, zh_hans)
    question.required = required
    db.session.flush()
    return question


def add_question(
    draft: TemplateVersion,
    key: str,
    kind: QuestionKind | str,
    *,
    en: str | None,
    zh_hans: str | None,
    required: bool = False,
) -> Question:
    """Append a question to the draft; flush and return it.

    Refuses (:class:`TemplateError`) a non-draft, a malformed key, a key the
    draft already has, and a standard metric key on the wrong kind.
    """
    check_draft(draft)
    kind = QuestionKind(kind)
    key = key.strip()
    if not KEY_PATTERN.match(key):
        raise TemplateError(
            _("A key is lower-case letters, digits and underscores, starting with a letter.")
        )
    if any(q.key == key for q in draft.questions):
        raise TemplateError(_("This version already has a question with the key %(key)s.",
                              key=key))  # fmt: skip
    check_metric_kind(key, kind)
    position = max((q.position for q in draft.questions), default=0) + 1
    question = Question(
        position=position, key=key, kind=kind, required=required, text=_texts(en, zh_hans)
    )
    draft.questions.append(question)
    db.session.flush()
    return question


def _renumber(draft: TemplateVersion, ordered: list[Question]) -> None:
    for position, question in enumerate(ordered, start=1):
        question.position = position
    # Keep the loaded collection in the new order too (it is sorted only on load).
    draft.questions.sort(key=lambda q: q.position)
    db.session.flush()


def remove_question(draft: TemplateVersion, question: Question) -> None:
    """Delete a draft question and close the gap in the positions.

    Refuses (:class:`TemplateError`) a question of a published or retired version.
    """
    check_draft(draft)
    _own_question(draft, question)
    draft.questions.remove(question)
    _renumber(draft, list(draft.questions))


def move_question(draft: TemplateVersion, question: Question, offset: int) -> None:
    """Move a draft question ``offset`` places (-1 up, +1 down); the ends stay put.

    Refuses (:class:`TemplateError`) a question of a published or retired version.
    """
    check_draft(draft)
    _own_question(draft, question)
    ordered = sorted(draft.questions, key=lambda q: q.position)
    index = ordered.index(question)
    target = min(max(index + offset, 0), len(ordered) - 1)
    ordered.insert(target, ordered.pop(index))
    _renumber(draft, ordered)
