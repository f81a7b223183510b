"""Labels and language: every enum value has a name in both languages, stored English
(case reasons, the PDCA's own notes) is shown in the reader's language, and every staff
page read in Chinese shows no raw value, no untranslated label and one date format."""

from __future__ import annotations

import enum
import importlib
import pkgutil
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from babel.messages.pofile import read_po
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select

import analysis
import improvement
import survey_app
from improvement.audit.display import ACTION_LABELS, ENTITY_LABELS, audit_changes
from improvement.audit.models import AuditEvent
from improvement.pdca.labels import (
    ACTIONS_KEPT,
    CASES_CLOSED,
    CHECKED_EARLY,
    OPENED_FROM,
    note_label,
    system_note,
)
from improvement.root_causes.labels import trigger_label
from improvement.root_causes.rules import LowFeedbackRule
from survey_app.dates import format_date, format_datetime, local_datetime_text
from survey_app.extensions import db
from survey_app.intake.services import Outcome
from survey_app.labels import LABELS, EnumLabels, label
from survey_app.models import Priority, Role, TicketStatus, User
from survey_app.surveys.models import InvitationStatus
from tests.conftest import seeded_transaction
from tests.test_i18n import CATALOG

#: Enums that never reach a page (the intake's answer to the machine that sent an event).
NOT_SHOWN: set[type[enum.Enum]] = {Outcome}


def _enum_classes() -> Iterator[type[enum.Enum]]:
    """Every enum defined in the three packages (CLI-only modules included)."""
    seen: set[type[enum.Enum]] = set()
    for package in (survey_app, analysis, improvement):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" in module_info.name or module_info.name.endswith(
                ("gunicorn_conf", "worker", "make_corpus")
            ):
                continue
            module = importlib.import_module(module_info.name)
            for value in vars(module).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, enum.Enum)
                    and value.__module__ == module_info.name
                    and value not in seen
                ):
                    seen.add(value)
                    yield value


def _catalog() -> dict[str, str]:
    with (CATALOG / "messages.po").open("rb") as handle:
        return {m.id: m.string for m in read_po(handle, locale="zh_Hans") if m.id and m.string}


# --- the registry --------------------------------------------------------------------------------


def test_every_enum_member_has_a_label_in_english_and_chinese(app):
    catalog = _catalog()
    classes = [c for c in _enum_classes() if c not in NOT_SHOWN]
    assert len(classes) > 20
    unlabelled = [f"{c.__name__}.{m.name}" for c in classes for m in c if m not in LABELS]
    assert not unlabelled, "add these to a labels module (survey_app.labels.LABELS)"
    untranslated = [
        f"{c.__name__}.{m.name}"
        for c in classes
        for m in c
        if LABELS[m]._args[0] not in catalog  # type: ignore[attr-defined]
    ]
    assert not untranslated
    for enum_cls in classes:
        for member in enum_cls:
            with force_locale("zh_Hans"):
                chinese = label(member)
            assert chinese == catalog[LABELS[member]._args[0]]  # type: ignore[attr-defined]


def test_labels_of_equal_values_in_different_enums_stay_apart(app):
    # StrEnum members of different enums are equal: a flat dict gave the ticket status
    # "pending" the invitation's name "waiting to be sent".
    assert TicketStatus.PENDING == InvitationStatus.PENDING
    assert label(TicketStatus.PENDING) == "pending"
    assert label(InvitationStatus.PENDING) == "waiting to be sent"
    with force_locale("zh_Hans"):
        assert label(TicketStatus.PENDING) != label(InvitationStatus.PENDING)


def test_the_registry_refuses_a_partial_or_conflicting_enum():
    class Colour(enum.StrEnum):
        RED = "red"
        BLUE = "blue"

    registry = EnumLabels()
    with pytest.raises(ValueError, match="no label"):
        registry.register(Colour, {Colour.RED: "red"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="not members"):
        registry.register(Colour, {TicketStatus.OPEN: "open"})  # type: ignore[dict-item]
    registry.register(Colour, {Colour.RED: "red", Colour.BLUE: "blue"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="differently"):
        registry.register(Colour, {Colour.RED: "rouge", Colour.BLUE: "bleu"})  # type: ignore[dict-item]
    assert registry[Colour.BLUE] == "blue"
    with pytest.raises(KeyError):
        registry[TicketStatus.OPEN]  # noqa: B018


# --- stored English shown in the reader's language -----------------------------------------------


class _Feedback:
    nps = 3
    csat_overall = None
    csat_speed = 1
    csat_professionalism = None
    csat_attitude = None
    csat_effectiveness = None
    sentiment_label = "negative"


def test_case_reasons_are_stored_in_english_and_shown_in_the_readers_language(app):
    reasons = LowFeedbackRule().reasons(_Feedback())
    stored = "; ".join(["opened by hand", *reasons])
    assert stored == "opened by hand; NPS 3 ≤ 6; CSAT speed 1 ≤ 2; negative comment"
    assert trigger_label(stored) == (
        "opened by hand; NPS 3 ≤ 6; CSAT response speed 1 ≤ 2; negative comment"
    )
    with force_locale("zh_Hans"):
        shown = trigger_label(stored)
    assert shown == "手动创建；NPS 3 ≤ 6；CSAT 响应速度 1 ≤ 2；负面评论"
    # Something the rule never wrote is shown as it is.
    with force_locale("zh_Hans"):
        assert trigger_label("imported from the old tool") == "imported from the old tool"
    assert trigger_label(None) == ""


def test_pdca_notes_of_the_system_follow_the_reader_old_chinese_rows_too(app):
    stored = "Rosters changed.\n" + system_note(CASES_CLOSED, count=3)
    assert stored == "Rosters changed.\n3 linked feedback cases closed."
    with force_locale("zh_Hans"):
        assert note_label(stored) == "Rosters changed.\n已关闭 3 个关联的反馈案例。"
        assert note_label(system_note(OPENED_FROM, id=7)) == "由循环 #7 开启。"
    # A note written before the sentence was stored in English, by a Chinese reader.
    with force_locale("en"):
        assert note_label("已关闭 2 个关联的反馈案例。") == "2 linked feedback cases closed."
    early = system_note(CHECKED_EARLY, n=12, needed=30, note="Peak season: 看一下")
    with force_locale("zh_Hans"):
        shown = note_label(early + "\n" + system_note(ACTIONS_KEPT, num=2))
    assert "Checked before" not in shown and "Open actions" not in shown
    assert "12" in shown and "30" in shown and "Peak season: 看一下" in shown
    with pytest.raises(KeyError):
        system_note("Something else %(n)s.", n=1)


def test_audit_changes_name_values_actions_and_entities(app):
    event = AuditEvent(
        entity_type="case",
        entity_id=1,
        action="classify",
        changes={
            "status": ["new", "in_progress"],
            "touchpoint": [None, "email"],
            "called_back_at": [None, "2026-12-04T07:30:00+00:00"],
            "urgency": [None, 3],
        },
    )
    with force_locale("zh_Hans"):
        rows = audit_changes(event)
    shown = " ".join(" ".join(row) for row in rows)
    assert "in_progress" not in shown and "email" not in shown
    assert "进行中" in shown and "2026-12-04 15:30" in shown  # Asia/Shanghai
    assert set(ACTION_LABELS) >= {"classify", "advance", "why_delete", "call_back"}
    assert set(ENTITY_LABELS) == {"case", "root_cause", "cycle", "action"}


# --- one date format, one time zone --------------------------------------------------------------


def test_times_are_shown_in_the_display_zone_in_one_format(app):
    moment = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
    with app.test_request_context():
        assert local_datetime_text(moment) == "2026-12-05 07:30"
        assert local_datetime_text(moment.replace(tzinfo=None)) == "2026-12-05 07:30"
        assert str(format_datetime(moment)) == (
            '<time datetime="2026-12-04T23:30:00Z" title="Asia/Shanghai">2026-12-05 07:30</time>'
        )
        assert str(format_date(moment.date())) == '<time datetime="2026-12-04">2026-12-04</time>'
        assert format_datetime(None) == "—"
        with force_locale("zh_Hans"):
            assert local_datetime_text(moment) == "2026-12-05 07:30"


# --- every staff page in Chinese -----------------------------------------------------------------

#: Rules not rendered as pages: public ones, machine-facing ones and downloads.
SKIPPED_RULES = {"/login", "/language", "/healthz", "/readyz", "/reports/excel"}
SKIPPED_PREFIXES = ("/api/", "/s/", "/static/")
SKIPPED_SUFFIXES = (".csv", ".js", ".json", "/export")
BREAKDOWNS = ("channel", "priority", "customer_tier", "customer_is_new")
DATETIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?")
#: Date and time formats other than the one: Babel's short and medium forms in either
#: language, ISO instants, times with seconds, a zone written out.
OTHER_DATE_FORMATS = re.compile(
    r"\d{1,2}/\d{1,2}/\d{2,4}|\d{4}/\d{1,2}/\d{1,2}|\d{4}年\d{1,2}月|\d{4}-\d{2}-\d{2}T\d"
    r"|\d{1,2}:\d{2}:\d{2}|\d{1,2}:\d{2}\s?(?:AM|PM|上午|下午)|\bUTC\b"
    r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\w* \d{1,2}, \d{4}"
)


HIDDEN_TAGS = ("script", "style", "template", "code")
#: What separates the parts of a text node ("two-proportion z-test, p = 0.8").
PARTS = re.compile(r"\s*[,·;:—|()（）]\s*")


class _VisibleText(HTMLParser):
    """The text people read (not scripts, styles, templates or ``<code>``, which shows a
    machine's name on purpose) as separate nodes, the aria-labels and placeholders, and
    each ``<time>`` with its text."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self.times: list[tuple[str, str]] = []
        self._hidden = 0
        self._time: list[str] | None = None
        self._time_attr = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden += 1
        for name, value in attrs:
            if name in ("aria-label", "placeholder") and value:
                self.nodes.append(value)
        if tag == "time":
            self._time = []
            self._time_attr = dict(attrs).get("datetime") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden -= 1
        if tag == "time" and self._time is not None:
            self.times.append((self._time_attr, "".join(self._time)))
            self._time = None

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._time is not None:
            self._time.append(data)
            return
        text = " ".join(data.split())
        if text:
            self.nodes.append(text)


def _seed_pages(app: Flask) -> dict[str, Any]:
    """The demo's data (cases, root causes, cycles, targets, answers), a closed cycle and
    its successor, a draft survey and an SLA override: one of everything a page shows."""
    from improvement.pdca.models import PdcaCycle, Stage, StageChange
    from improvement.pdca.stages import record_act
    from improvement.root_causes.models import FeedbackCase, RootCause
    from survey_app.demo import demo_seeded, seed_demo
    from survey_app.surveys.versions import create_template
    from survey_app.types import utcnow
    from tests.test_auth import add_kpi_target, add_sla_override

    started = utcnow()
    seed_demo(customers=20, tickets=80)
    for _receiver, _line in demo_seeded.send(app, started_at=started):
        pass
    manager = db.session.scalar(select(User).where(User.email == "manager@example.com"))
    admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
    assert manager is not None and admin is not None
    at_check = db.session.scalar(select(PdcaCycle).where(PdcaCycle.stage == Stage.CHECK))
    assert at_check is not None, "the demo has a cycle at Check"
    from improvement.pdca.stages import advance

    advance(at_check, "act", manager, "Checked.")
    closed, following = record_act(at_check, "standardise", manager, "Keep it.", open_next=True)
    assert following is not None
    # A note written in Chinese before the system's sentences were stored in English.
    db.session.add(
        StageChange(
            cycle=closed,
            from_stage=Stage.ACT,
            to_stage=Stage.CLOSED,
            user_id=manager.id,
            changed_at=utcnow() - timedelta(minutes=1),
            note="已关闭 2 个关联的反馈案例。",
        )
    )
    template = create_template("问卷 Survey")
    case = db.session.scalar(select(FeedbackCase).order_by(FeedbackCase.id))
    root_cause = db.session.scalar(select(RootCause).order_by(RootCause.id))
    assert case is not None and root_cause is not None
    db.session.commit()
    ids = {
        "ticket_id": case.ticket_id,
        "user_id": manager.id,
        "case_id": case.id,
        "root_cause_id": root_cause.id,
        "cycle_id": closed.id,
        "template_id": template.id,
        "version_id": template.versions[0].id,
        **add_sla_override(),
        **add_kpi_target(),
    }
    return {"ids": ids, "admin_id": admin.id, "next_cycle_id": following.id}


@pytest.fixture(scope="class")
def pages(_shared_app, tmp_path_factory) -> Iterator[dict[str, Any]]:
    instance = tmp_path_factory.mktemp("labels-pages")
    with seeded_transaction(_shared_app, instance, lambda: _seed_pages(_shared_app.app)) as seed:
        yield seed


def _page_urls(app: Flask, seed: dict[str, Any]) -> list[str]:
    ids = seed["ids"]
    urls = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if "GET" not in (rule.methods or ()) or path in SKIPPED_RULES:
            continue
        if path.startswith(SKIPPED_PREFIXES) or path.endswith(SKIPPED_SUFFIXES):
            continue
        missing = [name for name in rule.arguments if name not in ids]
        assert not missing, f"{path}: give the seed an id for {missing}"
        urls.append(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), path))
    urls.append(f"/pdca/{seed['next_cycle_id']}")
    # The breakdowns by the dimensions whose values are enums or yes/no.
    urls += [f"/dashboards?group_by={name}" for name in BREAKDOWNS]
    return sorted(urls)


def _english_labels(app: Flask) -> dict[str, str]:
    """English text with another Chinese translation (one word at least three letters long),
    as a whole text node would show it untranslated; not the language switcher's names of
    the languages, each written in its own."""
    endonyms = set(app.config["LANGUAGES"].values())
    return {
        english: chinese
        for english, chinese in _catalog().items()
        if chinese != english
        and english not in endonyms
        and re.search(r"[A-Za-z]{3}", english)
        and "%(" not in english
    }


def _raw_values(app: Flask) -> re.Pattern[str]:
    """Raw enum values, KPI keys and locale codes (those with an underscore: no word has
    one) and Python reprs."""
    from analysis.metrics.definitions import ALL_KPIS

    names = {str(m.value) for c in _enum_classes() for m in c} | set(ALL_KPIS)
    names |= set(app.config["LANGUAGES"])
    raw = sorted((name for name in names if "_" in name), key=len)
    words = "|".join(re.escape(value) for value in reversed(raw))
    return re.compile(rf"\b(?:{words})\b|\b(?:None|True|False)\b|\b[A-Z]\w+\.[A-Z_]{{2,}}\b")


def _page_problems(
    client: Any, urls: list[str], html_lang: str, raw: re.Pattern[str], english: dict[str, str]
) -> list[str]:
    """What is wrong on each page: an English label (of ``english``), a raw value, a date
    in another format, a ``<time>`` without its machine form."""
    problems: list[str] = []
    sentences = set(_catalog())  # "None." is a word in an English sentence, not a repr
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert f'<html lang="{html_lang}">' in html, url
        parser = _VisibleText()
        parser.feed(html)
        for node in parser.nodes:
            for part in {node, *PARTS.split(node)}:
                if part in english:
                    problems.append(f"{url}: English {part!r} (zh: {english[part]!r})")
            if node not in sentences and (found := raw.search(node)):
                problems.append(f"{url}: raw value {found.group()!r} in {node!r}")
            if found := OTHER_DATE_FORMATS.search(node):
                problems.append(f"{url}: date {found.group()!r} in {node!r}")
        for machine, shown in parser.times:
            if not DATETIME_TEXT.fullmatch(shown) or not machine:
                problems.append(f"{url}: <time datetime={machine!r}>{shown}</time>")
    return problems


class TestStaffPages:
    """Each staff page, read by an admin who chose Chinese (and one who chose English)."""

    def _sign_in(self, client: Any, auth: Any, pages: dict[str, Any], language: str) -> Any:
        admin = db.session.get(User, pages["admin_id"])
        assert admin is not None and admin.role is Role.ADMIN
        admin.language = language
        db.session.commit()
        auth.sign_in(admin)
        return client

    @pytest.fixture
    def chinese_admin(self, client, auth, pages):
        return self._sign_in(client, auth, pages, "zh_Hans")

    def test_chinese_pages_no_raw_values_no_english_labels_one_date_format(
        self, app, chinese_admin, pages
    ):
        urls = _page_urls(app, pages)
        assert len(urls) > 25
        problems = _page_problems(
            chinese_admin, urls, "zh-Hans", _raw_values(app), _english_labels(app)
        )
        assert not problems, "\n".join(problems)

    def test_english_pages_no_raw_values_one_date_format(self, app, client, auth, pages):
        english_admin = self._sign_in(client, auth, pages, "en")
        problems = _page_problems(
            english_admin, _page_urls(app, pages), "en", _raw_values(app), {}
        )
        assert not problems, "\n".join(problems)

    def test_the_cycle_page_shows_the_systems_notes_and_scopes_in_chinese(
        self, chinese_admin, pages
    ):
        closed = chinese_admin.get(f"/pdca/{pages['ids']['cycle_id']}").get_data(as_text=True)
        assert "个关联的反馈案例" in closed and "linked feedback cases closed" not in closed
        following = chinese_admin.get(f"/pdca/{pages['next_cycle_id']}").get_data(as_text=True)
        assert f"由循环 #{pages['ids']['cycle_id']} 开启。" in following


def test_scopes_name_their_dimensions_and_values(app):
    from analysis.metrics.catalog import describe_scope, dimension_value_label

    scope = {"channel": ["email", "wechat"], "customer_is_new": True, "team": ["VIP desk"]}
    assert describe_scope(scope) == (
        "Channel: e-mail, WeChat; New or returning: new customers; Team: VIP desk"
    )
    with force_locale("zh_Hans"):
        shown = describe_scope(scope)
        assert "email" not in shown and "True" not in shown and "VIP desk" in shown
        assert dimension_value_label("P1", "priority") == label(Priority.P1) == "P1 紧急"
        assert describe_scope({}) == "整个组织"
    assert dimension_value_label("nonsense", "channel") == "nonsense"
