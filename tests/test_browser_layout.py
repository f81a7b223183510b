"""Layout of every staff page in headless Chromium, with long content, at 1366 and 390 px.

One database for the module: the demo data (root causes with 5 Why chains, PDCA
cycles, one with its Check verdict, targets, audit entries) plus the longest
things staff type or customers write: titles and comments without spaces in
Chinese and English, long URLs, long names. Every staff GET page of the url map
is visited (downloads and JSON excepted, listed in ``NOT_PAGES``) as an admin
and as a manager, on a laptop and on a phone, and must

* not be wider than the window (a wide table scrolls inside its ``.table-wrap``),
* have unique ids and no attribute whose value is the text ``None``,
* show its badges, pills and status words whole (not clipped by a container), and
  squeeze no text into a column a few characters wide.

The fishbone and the Pareto charts are checked for labels that overlap each other or
leave the drawing.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_mail import Message
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.routing import Rule

from improvement.pdca.actions import add_action
from improvement.pdca.models import PdcaCycle, Stage
from improvement.root_causes.causes import create_root_cause, link_case, update_root_cause
from improvement.root_causes.five_whys import add_why
from improvement.root_causes.models import FeedbackCase
from survey_app.demo import DEMO_PASSWORD
from survey_app.extensions import db
from survey_app.models import Role, User
from survey_app.outbound import send_mail
from survey_app.outbox.store import message_names
from survey_app.surveys.versions import ensure_default_template, published_version
from survey_app.types import utcnow
from tests.conftest import (
    PASSWORD,
    _build_app,
    _isolated_env,
    _settings,
    _truncate_all,
    is_postgres,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.real_db]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

#: GET endpoints that are no staff page: downloads, JSON, health probes, the customer's
#: survey pages, static files, and the sign-in page (checked signed out, below).
NOT_PAGES = {
    "static",
    "health.healthz",
    "health.readyz",
    "api.openapi",
    "metrics_api.metrics",
    "dashboards.export",
    "dashboards.plotly_js",
    "reports.excel",
    "root_causes.cases_export",
    "staff.tickets_export",
    "survey_admin.invitations_export",
    "survey.answer",
    "survey.mangled_link",
    "survey.thanks",
    "survey.unsubscribe",
}

#: Words without a break opportunity: what overflows a page when nothing breaks them.
LONG_ZH = "客户反馈电话排队时间过长并且多次转接之后问题仍然没有得到解决希望尽快改进服务流程" * 2
LONG_EN = "Customerswaitedfarlongerthanpromisedbeforeanyonepickedupthephone" * 2
LONG_URL = (
    "https://support.example.com/knowledge-base/articles/2026/11/"
    "how-to-reset-your-cloud-storage-password-when-the-verification-code-never-arrives"
    "?utm_source=survey&utm_medium=email&utm_campaign=closed-loop-follow-up-november"
)


@dataclass
class Site:
    app: Flask
    url: str
    ids: dict[str, Any]


def _seed_long_content() -> dict[str, Any]:
    """The demo's data plus the longest content; return the ids to fill URLs with."""
    admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
    manager = db.session.scalar(select(User).where(User.email == "manager@example.com"))
    assert admin is not None and manager is not None
    long_user = User(
        email="zhang.san.the.longest.name.in.the.quality.team@customer-service.example.com",
        role=Role.ANALYST,
        name="张三丰" * 8 + "Zhangsanfengthequalityanalyst",
    )
    long_user.set_password(PASSWORD)
    db.session.add(long_user)

    case = db.session.scalars(select(FeedbackCase).order_by(FeedbackCase.id)).first()
    assert case is not None and case.response is not None
    case.trigger = (LONG_ZH + LONG_EN)[:200]
    case.response.comment = f"{LONG_ZH} {LONG_URL} {LONG_EN}"
    ticket = case.ticket
    ticket.subject = (LONG_EN + LONG_ZH)[:200]
    ticket.customer.name = "欧阳" + "诸葛" * 20
    ticket.customer.email = "ouyang.zhuge.the.customer.with.a.long.address@customer.example.com"

    title = ("根本原因" + LONG_ZH + LONG_EN)[:200]
    root_cause = create_root_cause(
        title,
        description=f"{LONG_ZH}\n{LONG_URL}\n{LONG_EN}",
        problem_type="slow_response",
        themes=["排队", LONG_EN[:40]],
        user=admin,
    )
    for category in ("process", "people", "technology", "management", "measurement"):
        add_why(root_cause, f"{LONG_ZH} {LONG_EN} {LONG_URL}", category, admin)
    link_case(case, root_cause, admin)
    for round_ in range(12):  # many audit entries, with long before/after values
        update_root_cause(
            root_cause,
            title=f"{title[:190]} v{round_}",
            description=f"{LONG_EN} {round_} {LONG_URL}",
            problem_type="slow_response",
            themes=[LONG_ZH[:20]],
            status="open",
            user=admin,
        )

    # More root causes with long titles, each with a case: a crowded Pareto.
    spare = db.session.scalars(
        select(FeedbackCase).where(FeedbackCase.root_cause_id.is_(None)).order_by(FeedbackCase.id)
    ).all()
    for number, other in enumerate(spare[:10]):
        crowded = create_root_cause(f"{number}{LONG_ZH[number:]}", user=admin)
        add_why(crowded, f"{LONG_EN[number:]}", "environment", admin)
        link_case(other, crowded, admin)

    cycle = db.session.scalar(select(PdcaCycle).where(PdcaCycle.stage == Stage.CHECK))
    assert cycle is not None, "the demo has a cycle at Check, with its verdict"
    cycle.title = (LONG_ZH + LONG_EN)[:200]
    add_action(
        cycle,
        title=(LONG_EN + LONG_ZH)[:200],
        owner=manager,
        deadline=utcnow().date() + timedelta(days=3),
        user=admin,
    )

    send_mail(
        Message(
            subject=f"{LONG_ZH} {LONG_EN}"[:180],
            recipients=[long_user.email],
            body=f"{LONG_ZH}\n{LONG_URL}\n{LONG_EN}",
            html=f"<p>{LONG_ZH}</p><p><a href='{LONG_URL}'>{LONG_URL}</a></p>",
        )
    )
    db.session.commit()

    template = ensure_default_template()
    version = published_version(template)
    assert version is not None
    from analysis.targets.models import KpiTarget

    target = db.session.scalars(select(KpiTarget).order_by(KpiTarget.id)).first()
    assert target is not None
    return {
        "ticket_id": ticket.id,
        "case_id": case.id,
        "root_cause_id": root_cause.id,
        "cycle_id": cycle.id,
        "target_id": target.id,
        "user_id": long_user.id,
        "template_id": template.id,
        "version_id": version.id,
        "name": message_names()[0],
    }


@pytest.fixture(scope="module")
def site(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The demo data and the long content, served on a free port, for the whole module."""
    from werkzeug.serving import make_server

    folder = tmp_path_factory.mktemp("layout")
    instance = folder / "instance"
    instance.mkdir()
    if is_postgres():
        url = migrated_database
        _truncate_all(url)
    else:
        target = Path(folder) / "layout.sqlite3"
        shutil.copyfile(migrated_database, target)
        url = f"sqlite:///{target}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolated_env(monkeypatch, instance)
        app = _build_app(**_settings(url, MAIL_BACKEND="outbox", METRICS_MIN_SAMPLE=5))
        with app.app_context():
            result = app.test_cli_runner().invoke(
                args=["demo", "--tickets", "200", "--customers", "40"]
            )
            assert result.exit_code == 0, result.output
            ids = _seed_long_content()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Site(app, f"http://127.0.0.1:{server.server_port}", ids)
        finally:
            server.shutdown()
            thread.join(timeout=5)
            server.server_close()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
            if is_postgres():
                _truncate_all(url)


def staff_pages(site: Site) -> list[str]:
    """A path for every staff GET page, its URL parameters filled with the seeded ids."""
    paths = []
    rules: list[Rule] = sorted(site.app.url_map.iter_rules(), key=lambda r: r.rule)
    with site.app.test_request_context():
        from flask import url_for

        for rule in rules:
            if "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
                continue
            if rule.endpoint == "auth.login":
                continue
            missing = set(rule.arguments) - set(site.ids)
            assert not missing, f"no seeded id for {rule.rule} ({missing})"
            values = {name: site.ids[name] for name in rule.arguments}
            paths.append(url_for(rule.endpoint, **values))
    return paths


#: Collects, in the page, what breaks the layout rules (see the module docstring). On a
#: laptop (``laptop`` true) a status word must be in view without scrolling its table.
PROBLEMS_JS = """
(laptop) => {
  const problems = [];
  const width = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className ? '.' + el.className.split(' ')[0] : '');
  if (document.documentElement.scrollWidth > width) {
    // The outermost elements that stick out: their parent still fits the window.
    const wide = [...document.querySelectorAll('body *')].filter((el) =>
      el.getBoundingClientRect().right > width + 0.5 &&
      el.parentElement.getBoundingClientRect().right <= width + 0.5);
    problems.push(`page ${document.documentElement.scrollWidth}px wide in a ${width}px ` +
      `window: ${wide.slice(0, 4).map(name).join(', ')}`);
  }
  const seen = new Map();
  for (const el of document.querySelectorAll('[id]')) seen.set(el.id, (seen.get(el.id) || 0) + 1);
  for (const [id, count] of seen) if (count > 1) problems.push(`id "${id}" used ${count} times`);
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.value === 'None') problems.push(`${name(el)} ${attr.name}="None"`);
    }
  }
  // Text squeezed into a column a few characters wide (a label taking all the room).
  for (const el of document.querySelectorAll('dd, dt, td, th, p, li, h1, h2, h3')) {
    const em = parseFloat(getComputedStyle(el).fontSize);
    const box = el.getBoundingClientRect();
    if (box.width && el.textContent.trim().length > 12 && box.width < 4 * em) {
      problems.push(`${name(el)} "${el.textContent.trim().slice(0, 30)}" squeezed to ` +
        `${Math.round(box.width)}px`);
    }
  }
  for (const el of document.querySelectorAll('.badge, .pill, .level, [data-verdict]')) {
    if (!el.getClientRects().length) continue;
    const box = el.getBoundingClientRect();
    const word = el.textContent.trim();
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== 'inline') {
      problems.push(`"${word}" does not fit its own box`);
    }
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
      // On a phone a wide table may scroll to its status column; on a laptop it is in view.
      const scrolls = style.overflowX === 'auto' || style.overflowX === 'scroll';
      if (scrolls && !laptop) continue;
      const clip = up.getBoundingClientRect();
      if (box.left < clip.left - 1 || box.right > clip.right + 1 ||
          box.top < clip.top - 1 || box.bottom > clip.bottom + 1) {
        problems.push(`"${word}" cut off by ${name(up)}`);
      }
    }
  }
  return problems;
}
"""


def sign_in(page: Any, site: Site, email: str) -> None:
    page.goto(f"{site.url}/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.wait_for_url(f"{site.url}/")


def layout_problems(page: Any, site: Site, paths: list[str]) -> list[str]:
    laptop = page.viewport_size["width"] >= LAPTOP["width"]
    found = []
    for path in paths:
        response = page.goto(f"{site.url}{path}")
        assert response is not None and response.status == 200, f"{path}: {response}"
        page.wait_for_load_state("load")
        found += [f"{path}: {problem}" for problem in page.evaluate(PROBLEMS_JS, laptop)]
    return found


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366px", "390px"])
@pytest.mark.parametrize(
    ("email", "locale"), [("admin@example.com", "en-US"), ("manager@example.com", "zh-CN")]
)
def test_no_staff_page_overflows_or_repeats_ids(
    site: Site, browser: Any, viewport: dict[str, int], email: str, locale: str
) -> None:
    context = browser.new_context(locale=locale, viewport=viewport)
    try:
        page = context.new_page()
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        sign_in(page, site, email)
        paths = staff_pages(site)
        if email != "admin@example.com":  # a manager's pages: those a manager may open
            paths = [p for p in paths if not p.startswith(("/admin/", "/account"))]
            paths.append("/account")
        problems = layout_problems(page, site, paths)
        problems += [f"404 while loading: {url}" for url in missing]
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def test_sign_in_and_a_refused_form_fit_a_phone_without_none_attributes(
    site: Site, browser: Any
) -> None:
    """The pages with field errors too: their ``aria-describedby`` names the error."""
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    try:
        page = context.new_page()
        assert not layout_problems(page, site, ["/login"])
        page.locator("input[name=email]").fill("nobody@example.com")
        page.locator("form:has(input[name=password]) [type=submit]").click()
        expect(page.get_by_role("alert").first).to_be_visible()
        assert not page.evaluate(PROBLEMS_JS, False)

        sign_in(page, site, "admin@example.com")
        page.goto(f"{site.url}/targets/new")
        page.locator("form:has(select[name=kpi]) [type=submit]").click()
        invalid = page.locator("[aria-invalid=true]").first
        expect(invalid).to_be_visible()
        described = invalid.get_attribute("aria-describedby")
        assert described and page.locator(f"[id='{described}']").count() == 1
        assert not page.evaluate(PROBLEMS_JS, False)
    finally:
        context.close()


#: Each text's box in page coordinates, rotated ones as the four corners of their box.
LABEL_BOXES_JS = """
(selector) => {
  const svg = document.querySelector(selector);
  const frame = svg.getBoundingClientRect();
  const texts = [...svg.querySelectorAll('text')].filter((t) => t.textContent.trim());
  return {
    frame: [frame.left, frame.top, frame.right, frame.bottom],
    texts: texts.map((t) => {
      const b = t.getBBox();
      const m = t.getScreenCTM();
      const corner = (x, y) => {
        const p = new DOMPoint(x, y).matrixTransform(m);
        return [p.x, p.y];
      };
      return {
        text: t.textContent.trim().slice(0, 40),
        quad: [corner(b.x, b.y), corner(b.x + b.width, b.y),
               corner(b.x + b.width, b.y + b.height), corner(b.x, b.y + b.height)],
      };
    }),
  };
}
"""


def _overlap(a: list[list[float]], b: list[list[float]]) -> bool:
    """Whether two convex quadrilaterals overlap by more than a pixel (separating axes)."""
    for quad in (a, b):
        for i in range(4):
            (x1, y1), (x2, y2) = quad[i], quad[(i + 1) % 4]
            nx, ny = y2 - y1, x1 - x2
            length = (nx * nx + ny * ny) ** 0.5 or 1.0
            nx, ny = nx / length, ny / length
            pa = [x * nx + y * ny for x, y in a]
            pb = [x * nx + y * ny for x, y in b]
            if max(pa) <= min(pb) + 1 or max(pb) <= min(pa) + 1:
                return False  # separated on this axis
    return True


def label_problems(page: Any, selector: str) -> list[str]:
    found = page.evaluate(LABEL_BOXES_JS, selector)
    left, top, right, bottom = found["frame"]
    texts = found["texts"]
    problems = []
    for item in texts:
        xs = [x for x, _ in item["quad"]]
        ys = [y for _, y in item["quad"]]
        if min(xs) < left - 1 or max(xs) > right + 1 or min(ys) < top - 1 or max(ys) > bottom + 1:
            problems.append(f"{item['text']!r} leaves the chart")
    for i, first in enumerate(texts):
        for second in texts[i + 1 :]:
            if _overlap(first["quad"], second["quad"]):
                problems.append(f"{first['text']!r} overlaps {second['text']!r}")
    return problems


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366px", "390px"])
def test_fishbone_and_pareto_labels_neither_overlap_nor_leave_the_chart(
    site: Site, browser: Any, viewport: dict[str, int]
) -> None:
    context = browser.new_context(locale="en-US", viewport=viewport)
    try:
        page = context.new_page()
        sign_in(page, site, "admin@example.com")
        problems = []
        for path, selector in (
            ("/root-causes/fishbone", "svg.fishbone"),
            (f"/root-causes/{site.ids['root_cause_id']}", "svg.fishbone"),
            ("/root-causes/pareto", "svg.pareto"),
        ):
            page.goto(f"{site.url}{path}")
            problems += [f"{path}: {p}" for p in label_problems(page, selector)]
        assert not problems, "\n".join(problems)
    finally:
        context.close()
