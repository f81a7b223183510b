"""Published template versions as plain data, cached in process memory.

A published (or retired) :class:`.models.TemplateVersion` never changes: only a
draft is edited (``versions.check_draft``). So everything derived from one — its
questions as plain data, the WTForms form class per language, the HTML of each
unanswered or valid question per language and chosen value — is computed once per
app and kept in a bounded LRU. This is safe across instances (another instance
computes the same thing from the same rows) and is what keeps the customer's survey
page cheap: no query for the version or its questions, no form class built, no
widget rendered per request. Drafts are read from the database every time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, get_template_attribute
from flask_babel import get_locale
from markupsafe import Markup
from sqlalchemy.orm import selectinload

from ..extensions import db
from .models import QuestionKind, TemplateVersion, VersionStatus

#: Versions kept per app; an organisation has a handful of live versions at a time.
MAX_CACHED_VERSIONS = 64
_EXTENSION = "closedloop.published_versions"


@dataclass(frozen=True)
class QuestionData:
    """A question of a version, detached from the session (same attributes as the model)."""

    id: int
    key: str
    kind: QuestionKind
    required: bool
    text: dict[str, str]

    def text_for(self, locale: str) -> str:
        return self.text.get(locale) or self.text.get("en") or next(iter(self.text.values()), "")


@dataclass(eq=False)
class VersionData:
    """A template version's id, intro and ordered questions, plus what is derived from them.

    ``form_classes`` (per locale) and ``fragments`` (per locale, question key and
    value) fill as pages are shown; they live as long as this object.
    """

    id: int
    intro: dict[str, str]
    questions: tuple[QuestionData, ...]
    form_classes: dict[str, type] = field(default_factory=dict)
    fragments: dict[tuple[str, str, Any], Markup] = field(default_factory=dict)


class VersionCache:
    """A thread-safe LRU of :class:`VersionData` by version id (one per app)."""

    def __init__(self, size: int = MAX_CACHED_VERSIONS) -> None:
        self.size = size
        self._items: OrderedDict[int, VersionData] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version_id: int) -> VersionData | None:
        with self._lock:
            data = self._items.get(version_id)
            if data is not None:
                self._items.move_to_end(version_id)
            return data

    def put(self, data: VersionData) -> None:
        with self._lock:
            self._items[data.id] = data
            self._items.move_to_end(data.id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _cache() -> VersionCache:
    cache = current_app.extensions.get(_EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(_EXTENSION, VersionCache())
    return cache


def version_data(version_id: int) -> VersionData:
    """The version ``version_id`` as plain data: from the cache, or two queries.

    Only a published or retired version is cached; a draft (still editable) is
    read afresh each time. Raises ``LookupError`` for an unknown id.
    """
    cache = _cache()
    data = cache.get(version_id)
    if data is not None:
        return data
    version = db.session.get(
        TemplateVersion, version_id, options=[selectinload(TemplateVersion.questions)]
    )
    if version is None:
        raise LookupError(f"no template version {version_id}")
    data = VersionData(
        id=version.id,
        intro=dict(version.intro or {}),
        questions=tuple(
            QuestionData(
                id=question.id,
                key=question.key,
                kind=question.kind,
                required=question.required,
                text=dict(question.text),
            )
            for question in version.questions
        ),
    )
    if version.status is not VersionStatus.DRAFT:
        cache.put(data)
    return data


def question_html(version: Any, question: Any, field: Any) -> Markup:
    """The HTML of one question of the survey form (``templates/surveys/_question.html``).

    For a cached version, a question without errors whose answer is empty or
    valid renders the same for everyone who sees it in that language, so it is
    rendered once and reused; anything else (errors, typed text, a draft in the
    admin preview) is rendered each time.
    """
    render = get_template_attribute("surveys/_question.html", "question")
    fragments = version.fragments if isinstance(version, VersionData) else None
    if fragments is None or field.errors or not _shared_value(question, field.data):
        return render(question, field)
    key = (str(get_locale()), question.key, field.data)
    html = fragments.get(key)
    if html is None:
        html = fragments[key] = render(question, field)
    return html


def _shared_value(question: Any, value: Any) -> bool:
    """True for an answer many customers share: none, or a number on the scale.

    Typed text and numbers off the scale (a page re-shown without validation) are
    not cached, so nobody can fill the cache with values of their own.
    """
    if value is None or value == "":
        return True
    scale = question.kind.scale
    return scale is not None and type(value) is int and scale[0] <= value <= scale[1]
