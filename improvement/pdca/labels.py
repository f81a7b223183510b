"""Translated names of the PDCA values people see (stages, statuses, decisions, verdicts)."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from functools import cache

from babel.support import Translations
from flask import Flask, current_app
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

from survey_app.i18n import TRANSLATIONS
from survey_app.labels import LABELS, EnumLabels

from .models import (
    ActDecision,
    ActionStatus,
    Comparison,
    OpenActions,
    ReminderKind,
    Stage,
    Verdict,
)

#: The names of each enum's members (looked up by enum first: see :class:`EnumLabels`).
ENUM_LABELS = EnumLabels.of(
    {
        Stage: {
            Stage.PLAN: _l("Plan"),
            Stage.DO: _l("Do"),
            Stage.CHECK: _l("Check"),
            Stage.ACT: _l("Act"),
            Stage.CLOSED: _l("closed"),
        },
        ActDecision: {
            ActDecision.STANDARDISE: _l("standardise"),
            ActDecision.ADJUST: _l("adjust"),
            ActDecision.ABANDON: _l("abandon"),
        },
        ActionStatus: {
            ActionStatus.OPEN: _l("open"),
            ActionStatus.IN_PROGRESS: _l("in progress"),
            ActionStatus.BLOCKED: _l("blocked"),
            ActionStatus.DONE: _l("done"),
            ActionStatus.CANCELLED: _l("cancelled"),
        },
        OpenActions: {
            OpenActions.CARRY: _l("carry into the next cycle"),
            OpenActions.CANCEL: _l("cancel"),
            OpenActions.KEEP: _l("keep open, to be finished later"),
        },
        Verdict: {
            Verdict.MET: _l("target met"),
            Verdict.NOT_MET: _l("target not met"),
            Verdict.NOT_ENOUGH_DATA: _l("not enough data"),
        },
        Comparison: {
            Comparison.BEFORE_AFTER: _l("after vs before"),
            Comparison.PILOT_CONTROL: _l("pilot vs control"),
        },
        ReminderKind: {ReminderKind.DUE_SOON: _l("due soon"), ReminderKind.OVERDUE: _l("overdue")},
    }
)


def choices(enum_cls: type[enum.Enum]) -> list[SelectChoice]:
    return [SelectChoice(m.value, ENUM_LABELS[m]) for m in enum_cls]


def init_app(app: Flask) -> None:
    """Teach the shell's ``label`` filter these enums; add the ``note_label`` filter."""
    LABELS.include(ENUM_LABELS)
    app.add_template_filter(note_label, "note_label")
    app.add_template_filter(test_label, "test_label")


#: The statistical tests of a Check, as :mod:`.stats` names them (stored in
#: ``CheckMeasurement.test``).
TEST_LABELS: dict[str, LazyString] = {
    "two-proportion z-test": _l("two-proportion z-test"),
    "bootstrap": _l("bootstrap"),
    "Mann-Whitney U": _l("Mann–Whitney U test"),
}


def test_label(test: str | None) -> str:
    """The name of a Check's statistical test in the reader's language ('' for none)."""
    if not test:
        return ""
    return str(TEST_LABELS.get(test, test))


#: Sentences the system adds to a stage change's note, stored in English (the source text,
#: filled in) and translated when shown, so every reader sees them in their own language.
CASES_CLOSED = "%(count)s linked feedback cases closed."
OPENED_FROM = "Opened from cycle #%(id)s."
CHECKED_EARLY = "Checked before the window had the minimum sample (%(n)s of %(needed)s): %(note)s"
SCHEDULED_CHECK = "Scheduled Check (%(day)s): the window has %(n)s observations."
ACTIONS_CARRIED = "Open actions carried into cycle #%(id)s: %(num)s."
ACTIONS_CANCELLED = "Open actions cancelled: %(num)s."
ACTIONS_KEPT = "Open actions kept open, to be finished later: %(num)s."
_SYSTEM_NOTES: dict[str, Callable[..., str]] = {
    CASES_CLOSED: lambda count: _("%(count)s linked feedback cases closed.", count=count),
    OPENED_FROM: lambda id: _("Opened from cycle #%(id)s.", id=id),
    CHECKED_EARLY: lambda n, needed, note: _(
        "Checked before the window had the minimum sample (%(n)s of %(needed)s): %(note)s",
        n=n,
        needed=needed,
        note=note,
    ),
    SCHEDULED_CHECK: lambda day, n: _(
        "Scheduled Check (%(day)s): the window has %(n)s observations.", day=day, n=n
    ),
    ACTIONS_CARRIED: lambda id, num: _(
        "Open actions carried into cycle #%(id)s: %(num)s.", id=id, num=num
    ),
    ACTIONS_CANCELLED: lambda num: _("Open actions cancelled: %(num)s.", num=num),
    ACTIONS_KEPT: lambda num: _("Open actions kept open, to be finished later: %(num)s.", num=num),
}


def system_note(sentence: str, **params: object) -> str:
    """One of the system's sentences filled in, as stored (English); refuses (KeyError) a
    sentence :func:`note_label` would not know."""
    _SYSTEM_NOTES[sentence]  # noqa: B018  (refuse what could not be translated back)
    return sentence % params


@cache
def _sentence_patterns(locale: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each system sentence as a pattern, in English and as ``locale``'s catalogue words it
    (notes written before the sentences were stored in English are in their writer's
    language)."""
    translations = Translations.load(str(TRANSLATIONS), [locale])
    patterns = []
    for sentence in _SYSTEM_NOTES:
        for form in {sentence, translations.gettext(sentence)}:
            text = re.sub(r"%\\\((\w+)\\\)s", r"(?P<\1>.+?)", re.escape(form))
            patterns.append((re.compile(text), sentence))
    return tuple(patterns)


def _line_label(line: str, locales: Iterable[str]) -> str:
    for locale in locales:
        for pattern, sentence in _sentence_patterns(locale):
            if match := pattern.fullmatch(line.strip()):
                return _SYSTEM_NOTES[sentence](**match.groupdict())
    return line


def note_label(note: str | None) -> str:
    """A stage change's note with the system's sentences in the reader's language (what
    people typed is left as typed); '' for none."""
    if not note:
        return ""
    locales = [locale for locale in current_app.config["LANGUAGES"] if locale != "en"]
    return "\n".join(_line_label(line, locales) for line in note.split("\n"))
