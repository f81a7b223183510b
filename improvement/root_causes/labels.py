"""Translated names of the root-cause values people see; registered as template filters."""

from __future__ import annotations

import re

from flask import Flask
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from analysis.metrics.catalog import csat_dimension_label
from analysis.text.problems import ProblemType
from survey_app.labels import LABELS, EnumLabels

from .models import (
    SEVERITY_LEVELS,
    CallBackOutcome,
    CaseOrigin,
    CaseStatus,
    ProcessStep,
    ResponsibleParty,
    RootCauseStatus,
)
from .rules import CSAT_DIMENSIONS, NEGATIVE_COMMENT, OPENED_BY_HAND, REASON_SEPARATOR

#: The names of each enum's members (looked up by enum first: see :class:`EnumLabels`).
ENUM_LABELS = EnumLabels.of(
    {
        CaseStatus: {
            CaseStatus.NEW: _l("new"),
            CaseStatus.IN_PROGRESS: _l("in progress"),
            CaseStatus.RESOLVED: _l("resolved"),
            CaseStatus.DISMISSED: _l("dismissed"),
        },
        CaseOrigin: {CaseOrigin.AUTO: _l("low-feedback rule"), CaseOrigin.MANUAL: _l("by hand")},
        ProcessStep: {
            ProcessStep.RECEIVING_REQUEST: _l("receiving the request"),
            ProcessStep.VERIFYING_INFORMATION: _l("verifying information"),
            ProcessStep.DESIGNING_SOLUTION: _l("designing the solution"),
            ProcessStep.IMPLEMENTING_SOLUTION: _l("carrying out the solution"),
            ProcessStep.GIVING_FEEDBACK: _l("giving feedback"),
            ProcessStep.FOLLOW_UP: _l("follow-up"),
        },
        ResponsibleParty: {
            ResponsibleParty.SYSTEM_DESIGN: _l("system design"),
            ResponsibleParty.PROCESS_RULE: _l("process rule"),
            ResponsibleParty.STAFF_EXECUTION: _l("staff execution"),
            ResponsibleParty.RESOURCES: _l("resources"),
        },
        CallBackOutcome: {
            CallBackOutcome.REACHED_SATISFIED: _l("reached, now satisfied"),
            CallBackOutcome.REACHED_UNSATISFIED: _l("reached, still unsatisfied"),
            CallBackOutcome.NO_ANSWER: _l("no answer"),
            CallBackOutcome.LEFT_MESSAGE: _l("left a message"),
            CallBackOutcome.DECLINED: _l("customer declined to talk"),
        },
        RootCauseStatus: {
            RootCauseStatus.OPEN: _l("open"),
            RootCauseStatus.CONFIRMED: _l("confirmed"),
            RootCauseStatus.RESOLVED: _l("resolved"),
            RootCauseStatus.REJECTED: _l("rejected"),
        },
        ProblemType: {
            ProblemType.SLOW_RESPONSE: _l("slow response"),
            ProblemType.UNSUITABLE_SOLUTION: _l("unsuitable solution"),
            ProblemType.ATTITUDE: _l("attitude"),
            ProblemType.PROCESS_POLICY: _l("process or policy"),
            ProblemType.PRODUCT_DEFECT: _l("product defect"),
            ProblemType.OTHER: _l("other"),
        },
    }
)
CATEGORY_LABELS: dict[str, LazyString] = {
    "people": _l("people"),
    "process": _l("process"),
    "technology": _l("technology"),
    "management": _l("management"),
    "environment": _l("environment"),
    "measurement": _l("measurement"),
    "machine": _l("machine"),
    "material": _l("material"),
    "method": _l("method"),
}
LEVEL_LABELS: dict[str, LazyString] = {
    "low": _l("low"),
    "medium": _l("medium"),
    "high": _l("high"),
    "critical": _l("critical"),
}
URGENCY_LABELS = {1: _l("1 · low"), 2: _l("2 · medium"), 3: _l("3 · high")}
REACH_LABELS = {
    1: _l("1 · one customer"),
    2: _l("2 · a group (team, product line, region)"),
    3: _l("3 · many or all customers"),
}


def problem_label(value: str | None) -> str:
    """The name of a stored problem type ('' for None, the value itself if unknown)."""
    if not value:
        return ""
    try:
        return str(ENUM_LABELS[ProblemType(value)])
    except ValueError:
        return value


def category_label(value: str) -> str:
    """The name of a fishbone category; a configured category without a translation as is."""
    return str(CATEGORY_LABELS.get(value, value))


def severity_label(severity: int | None) -> str:
    """E.g. "6 · high"; '' when not assessed."""
    if not severity:
        return ""
    level = SEVERITY_LEVELS.get(severity)
    return f"{severity} · {LEVEL_LABELS[level]}" if level else str(severity)


def init_app(app: Flask) -> None:
    """Teach the shell's ``label`` filter our enums; add the filters for stored strings."""
    LABELS.include(ENUM_LABELS)
    app.add_template_filter(problem_label, "problem_label")
    app.add_template_filter(category_label, "category_label")
    app.add_template_filter(severity_label, "severity_label")
    app.add_template_filter(trigger_label, "trigger_label")


#: The CSAT dimensions as the rule's reasons name them ("CSAT speed"), by their KPI name.
_REASON_DIMENSIONS = {
    reason_name.removeprefix("CSAT "): column.removeprefix("csat_")
    for column, reason_name in CSAT_DIMENSIONS.items()
}
_NPS_REASON = re.compile(r"NPS (?P<score>\d+) ≤ (?P<threshold>\d+)")
_CSAT_REASON = re.compile(r"CSAT (?P<dimension>\w+) (?P<score>\d+) ≤ (?P<threshold>\d+)")


def reason_label(reason: str) -> str:
    """One reason of the low-feedback rule (as :meth:`LowFeedbackRule.reasons` writes it,
    in English) in the reader's language; a reason of another form as it is."""
    text = reason.strip()
    if text == OPENED_BY_HAND:
        return _("opened by hand")
    if text == NEGATIVE_COMMENT:
        return _("negative comment")
    if match := _NPS_REASON.fullmatch(text):
        return _("NPS %(score)s ≤ %(threshold)s", **match.groupdict())
    match = _CSAT_REASON.fullmatch(text)
    if match and match["dimension"] in _REASON_DIMENSIONS:
        return _(
            "CSAT %(dimension)s %(score)s ≤ %(threshold)s",
            dimension=csat_dimension_label(_REASON_DIMENSIONS[match["dimension"]]),
            score=match["score"],
            threshold=match["threshold"],
        )
    return text


def trigger_label(trigger: str | None) -> str:
    """Why a case opened (its stored ``trigger``, reasons joined by "; ") in the reader's
    language, so cases opened before a language change read the same; '' for none."""
    if not trigger:
        return ""
    return _("; ").join(reason_label(reason) for reason in trigger.split(REASON_SEPARATOR))
