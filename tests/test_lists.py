"""The staff lists of tickets, cases and invitations: search, pages and CSV downloads."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from improvement.root_causes.causes import create_root_cause, link_case
from improvement.root_causes.models import FeedbackCase
from survey_app.csvexport import csv_lines, neutralise
from survey_app.extensions import db
from survey_app.models import Role, Ticket
from survey_app.surveys.models import Invitation, InvitationStatus
from tests.root_cause_factories import analyse, make_response, make_ticket

#: SQL semantics (LIKE escapes, case folding, COUNT): runs on SQLite and PostgreSQL.
pytestmark = pytest.mark.db

BOM = b"\xef\xbb\xbf"

#: (external id, subject, customer name, customer e-mail, agent, team)
TICKETS = [
    ("T-A1", '=HYPERLINK("http://x","y")', "李雷", "li_lei@example.com", "王芳", "Frontline"),
    ("T-A2", "100% refund please", "Han Meimei", "han@example.com", "@admin", "Billing"),
    ("T-A3", "退款; 发票", "-Zhang", "zhang@example.com", "Lin", "Technical"),
]  # fmt: skip


def seed_tickets(rows=TICKETS) -> list[Ticket]:
    tickets = []
    for number, (external_id, subject, name, email, agent, team) in enumerate(rows):
        ticket = make_ticket(team=team, customer_name=name)
        ticket.external_id, ticket.subject, ticket.agent = external_id, subject, agent
        ticket.customer.email = email
        ticket.created_at = datetime(2026, 10, 1 + number, 1, 0, tzinfo=UTC)
        tickets.append(ticket)
    db.session.commit()
    return tickets


def text_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def listed(html: str, prefix: str = "T-") -> list[str]:
    """The ticket numbers linked in a list page, in page order."""
    return re.findall(rf'href="/tickets/\d+">({prefix}[\w-]+)</a>', html)


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    body = response.get_data()
    assert body.startswith(BOM), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(body.decode("utf-8").removeprefix("\ufeff"))))


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements run while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def analyst(auth, make_user):
    auth.sign_in(make_user(Role.ANALYST))


@pytest.fixture
def manager(auth, make_user):
    auth.sign_in(make_user(Role.MANAGER))


# --- tickets: search -------------------------------------------------------------------------


@pytest.mark.usefixtures("analyst")
@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("", ["T-A3", "T-A2", "T-A1"]),
        ("%", ["T-A2"]),  # a literal percent sign, not "anything"
        ("_lei", ["T-A1"]),  # a literal underscore, not "any one character"
        ("li%lei", []),
        ("李雷", ["T-A1"]),  # a customer's name in Chinese
        ("王芳", ["T-A1"]),  # the agent
        ("退款", ["T-A3"]),  # the subject, in Chinese
        ("hyperlink", ["T-A1"]),  # any case
        ("HAN@EXAMPLE", ["T-A2"]),  # the e-mail, any case
        ("billing", ["T-A2"]),  # the team
        ("t-a", ["T-A3", "T-A2", "T-A1"]),  # the ticket number
        ("  T-A2  ", ["T-A2"]),  # spaces around are ignored
        ("nobody", []),
    ],
)
def test_ticket_search(client, q, expected):
    seed_tickets()
    html = text_of(client.get("/tickets", query_string={"q": q}))
    assert listed(html, "T-A") == expected
    if q.strip():
        # The box keeps what was typed (escaped, as every user text).
        assert re.search(r'<input[^>]+name="q"[^>]+value="([^"]*)"', html)
    if not expected:
        assert "No tickets match." in html
        assert "Download CSV" not in html


@pytest.mark.usefixtures("analyst")
def test_ticket_search_with_filters_and_escaped_text(client):
    seed_tickets()
    html = text_of(client.get("/tickets", query_string={"q": "example", "team": "Billing"}))
    assert listed(html, "T-A") == ["T-A2"]
    html = text_of(client.get("/tickets", query_string={"q": '<b>"x"</b>'}))
    assert 'value="&lt;b&gt;&#34;x&#34;&lt;/b&gt;"' in html
    assert "<b>" not in html


# --- pages -----------------------------------------------------------------------------------


def many_tickets(count: int) -> None:
    seed_tickets(
        [(f"P-{n:02d}", f"Subject {n}", f"Customer {n}", f"p{n}@example.com", "Lin", "Frontline")
         for n in range(1, count + 1)]
    )  # fmt: skip


@pytest.mark.usefixtures("analyst")
def test_pages_show_the_range_and_link_each_other(client, app):
    app.config["PAGE_SIZE"] = 2
    many_tickets(5)
    first = text_of(client.get("/tickets"))
    assert listed(first, "P-") == ["P-05", "P-04"]
    assert "Showing 1–2 of 5" in first
    assert 'rel="next"' in first and 'rel="prev"' not in first
    assert 'aria-current="page">1<' in first
    assert 'href="/tickets?page=3"' in first

    last = text_of(client.get("/tickets?page=3"))
    assert listed(last, "P-") == ["P-01"]
    assert "Showing 5–5 of 5" in last
    assert 'rel="prev"' in last and 'rel="next"' not in last
    assert 'href="/tickets/export.csv"' in last  # every page, whichever is open

    searched = text_of(client.get("/tickets", query_string={"q": "Subject", "team": "Frontline"}))
    assert re.search(r'href="/tickets\?[^"]*q=Subject[^"]*page=2"', searched.replace("&amp;", "&"))


@pytest.mark.usefixtures("analyst")
@pytest.mark.parametrize(
    ("page", "status"),
    [
        ("1", 200),
        ("3", 200),
        ("", 200),  # an empty value: the first page
        ("4", 404),  # past the last page
        ("0", 404),
        ("-1", 404),
        ("abc", 404),
        ("1.5", 404),
        ("²", 404),
        ("99999999999999999999", 404),
    ],
)
def test_a_page_that_names_nothing_is_404(client, app, page, status):
    app.config["PAGE_SIZE"] = 2
    many_tickets(5)
    assert client.get("/tickets", query_string={"page": page}).status_code == status


@pytest.mark.usefixtures("analyst")
@pytest.mark.parametrize(
    "crafted", ["endpoint=x", "_method=POST", "_external=1&_scheme=javascript", "_anchor=x"]
)
def test_url_for_parameters_in_the_query_are_not_carried_into_links(client, app, crafted):
    app.config["PAGE_SIZE"] = 2
    many_tickets(3)
    html = text_of(client.get(f"/tickets?q=Subject&{crafted}"))
    assert 'href="/tickets?q=Subject&amp;page=2"' in html
    assert 'href="/tickets/export.csv?q=Subject"' in html


@pytest.mark.usefixtures("analyst")
def test_an_empty_list_still_has_its_first_page(client):
    html = text_of(client.get("/tickets"))
    assert "No tickets match." in html
    assert "Showing" not in html
    assert client.get("/tickets?page=2").status_code == 404


@pytest.mark.usefixtures("analyst")
def test_a_page_is_one_count_and_one_select(client, app):
    app.config["PAGE_SIZE"] = 2
    many_tickets(5)
    with statements() as seen:
        text_of(client.get("/tickets", query_string={"q": "subject", "page": 2}))
    ticket_queries = [s for s in seen if "FROM ticket" in s]
    counts = [s for s in ticket_queries if "count(" in s.lower()]
    assert len(counts) == 1
    assert len(ticket_queries) == 2  # the page's rows, and the COUNT


# --- tickets: CSV ----------------------------------------------------------------------------


@pytest.mark.usefixtures("analyst")
def test_ticket_csv_has_every_page_neutralised_cells_and_a_bom(client, app):
    app.config["PAGE_SIZE"] = 1
    seed_tickets()
    response = client.get("/tickets/export.csv?page=2")  # a page number does not limit it
    assert response.mimetype == "text/csv"
    assert response.mimetype_params["charset"] == "utf-8"
    assert re.fullmatch(
        r'attachment; filename="closedloop-tickets-\d{4}-\d{2}-\d{2}\.csv"',
        response.headers["Content-Disposition"],
    )
    rows = csv_rows(response)
    assert rows[0] == [
        "Ticket", "Subject", "Customer", "Customer e-mail", "Priority", "Channel", "Team",
        "Agent", "Status", "Created (Asia/Shanghai)", "Closed (Asia/Shanghai)",
    ]  # fmt: skip
    by_ticket = {row[0]: row for row in rows[1:]}
    assert [row[0] for row in rows[1:]] == ["T-A3", "T-A2", "T-A1"]  # the page's order
    assert by_ticket["T-A1"][1] == '\'=HYPERLINK("http://x","y")'
    assert by_ticket["T-A1"][2] == "李雷"
    assert by_ticket["T-A2"][7] == "'@admin"
    assert by_ticket["T-A3"][1] == "退款; 发票"
    assert by_ticket["T-A3"][2] == "'-Zhang"
    assert by_ticket["T-A1"][4:6] == ["P2 high", "phone"]  # labels, as on the page
    assert by_ticket["T-A1"][9] == "2026-10-01 09:00"  # in the display time zone


@pytest.mark.usefixtures("analyst")
def test_ticket_csv_follows_the_search_and_filters(client):
    seed_tickets()
    rows = csv_rows(client.get("/tickets/export.csv", query_string={"q": "%"}))
    assert [row[0] for row in rows[1:]] == ["T-A2"]
    rows = csv_rows(client.get("/tickets/export.csv", query_string={"q": "nobody"}))
    assert len(rows) == 1  # the header only
    rows = csv_rows(client.get("/tickets/export.csv", query_string={"team": "Technical"}))
    assert [row[0] for row in rows[1:]] == ["T-A3"]


def test_ticket_csv_headers_follow_the_readers_language(client, auth, make_user):
    auth.sign_in(make_user(Role.ANALYST, language="zh_Hans"))
    seed_tickets()
    rows = csv_rows(client.get("/tickets/export.csv"))
    assert rows[0][:4] == ["工单", "标题", "客户", "客户电子邮箱"]
    assert rows[0][9] == "创建时间（Asia/Shanghai）"
    assert rows[1][4] == "P2 高"  # labels in the same language


@pytest.mark.usefixtures("analyst")
def test_ticket_csv_is_streamed_in_batches(client, monkeypatch):
    import survey_app.staff.services as staff_services

    monkeypatch.setattr(staff_services, "EXPORT_BATCH", 2)
    many_tickets(5)
    response = client.get("/tickets/export.csv")
    assert response.is_streamed
    rows = csv_rows(response)
    assert [row[0] for row in rows[1:]] == ["P-05", "P-04", "P-03", "P-02", "P-01"]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"], ids=repr)
def test_every_formula_prefix_is_neutralised(prefix):
    assert neutralise(f"{prefix}1+1") == f"'{prefix}1+1"
    assert neutralise(-1) == -1
    lines = list(csv_lines(["a"], [[f"{prefix}cmd"]]))
    assert lines[0] == "\ufeffa\r\n"
    assert next(csv.reader(io.StringIO(lines[1]))) == [f"'{prefix}cmd"]


# --- cases -----------------------------------------------------------------------------------


def seed_cases() -> dict[str, FeedbackCase]:
    first = make_response(nps=2, comment="=1+1 太慢了", ticket=make_ticket(customer_name="李雷"))
    second = make_response(nps=1, comment="100% wrong_answer", ticket=make_ticket(team="Billing"))
    third = make_response(nps=3, comment="Rude agent", ticket=make_ticket())
    cases = {}
    for name, response in (("slow", first), ("wrong", second), ("rude", third)):
        analyse(response, keywords=["等待"])
        cases[name] = db.session.scalars(
            db.select(FeedbackCase).where(FeedbackCase.response_id == response.id)
        ).one()
    cause = create_root_cause("Queue understaffed", description="Night shift has 1 agent")
    link_case(cases["rude"], cause, None)
    db.session.commit()
    return cases


def case_numbers(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/cases/(\d+)">#', html)}


@pytest.mark.usefixtures("analyst")
def test_case_search(client):
    cases = seed_cases()
    ids = {name: case.id for name, case in cases.items()}

    def found(q: str) -> set[int]:
        return case_numbers(text_of(client.get("/cases", query_string={"q": q})))

    assert found("") == set(ids.values())
    assert found("%") == {ids["wrong"]}
    assert found("_answer") == {ids["wrong"]}
    assert found("太慢") == {ids["slow"]}
    assert found("李雷") == {ids["slow"]}
    assert found("UNDERSTAFFED") == {ids["rude"]}  # the root cause's title
    assert found("night shift") == {ids["rude"]}  # and its description
    assert found(f"#{ids['wrong']}") == {ids["wrong"]}
    assert found("nothing like this") == set()
    assert "No cases match." in text_of(client.get("/cases?q=nothing+like+this"))


@pytest.mark.usefixtures("analyst")
def test_case_csv(client):
    cases = seed_cases()
    response = client.get("/cases/export.csv")
    assert "closedloop-cases-" in response.headers["Content-Disposition"]
    rows = csv_rows(response)
    assert rows[0][:3] == ["Case", "Ticket", "Team"]
    by_case = {int(row[0]): row for row in rows[1:]}
    assert set(by_case) == {case.id for case in cases.values()}
    header = rows[0]
    slow = dict(zip(header, by_case[cases["slow"].id], strict=True))
    assert slow["Feedback"] == "'=1+1 太慢了"
    assert slow["Customer"] == "李雷"
    assert slow["NPS"] == "2"
    assert slow["Keywords"] == "等待"
    rude = dict(zip(header, by_case[cases["rude"].id], strict=True))
    assert rude["Root cause"] == f"#{cases['rude'].root_cause_id} Queue understaffed"

    rows = csv_rows(client.get("/cases/export.csv", query_string={"q": "%", "status": ""}))
    assert [int(row[0]) for row in rows[1:]] == [cases["wrong"].id]


# --- invitations -----------------------------------------------------------------------------


def seed_invitations() -> list[Invitation]:
    responses = [
        make_response(ticket=make_ticket(customer_name="王五")),
        make_response(ticket=make_ticket(customer_name="Ann")),
    ]
    invitations = [db.session.get(Invitation, r.invitation_id) for r in responses]
    invitations[0].customer.email = "wang_wu@example.com"
    invitations[1].status = InvitationStatus.FAILED
    invitations[1].last_error = "=550 mailbox unavailable"
    db.session.commit()
    return invitations


@pytest.mark.usefixtures("manager")
def test_invitation_search(client):
    first, second = seed_invitations()

    def found(**params: str) -> list[str]:
        return listed(text_of(client.get("/admin/surveys/invitations", query_string=params)))

    assert sorted(found()) == sorted([first.ticket.external_id, second.ticket.external_id])
    assert found(q="wang_wu") == [first.ticket.external_id]
    assert found(q="_") == [first.ticket.external_id]  # only one e-mail has an underscore
    assert found(q="王五") == [first.ticket.external_id]
    assert found(q=second.ticket.external_id.lower()) == [second.ticket.external_id]
    assert found(q="FAILED") == [second.ticket.external_id]  # a status name
    assert found(q="answered", status="failed") == []
    html = text_of(client.get("/admin/surveys/invitations?q=zzz"))
    assert "No invitations match." in html and 'value="zzz"' in html


def test_invitation_search_knows_status_names_in_chinese(client, auth, make_user):
    auth.sign_in(make_user(Role.MANAGER, language="zh_Hans"))
    _first, second = seed_invitations()
    html = text_of(client.get("/admin/surveys/invitations", query_string={"q": "发送失败"}))
    assert listed(html) == [second.ticket.external_id]


@pytest.mark.usefixtures("manager")
def test_invitation_csv(client):
    first, second = seed_invitations()
    response = client.get("/admin/surveys/invitations/export.csv")
    assert "closedloop-invitations-" in response.headers["Content-Disposition"]
    rows = csv_rows(response)
    header = rows[0]
    assert header[:5] == [
        "Created (Asia/Shanghai)",
        "Ticket",
        "Customer",
        "Customer e-mail",
        "Status",
    ]
    by_ticket = {row[1]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    failed = by_ticket[second.ticket.external_id]
    assert failed["Status"] == "delivery failed"
    assert failed["Last error"] == "'=550 mailbox unavailable"
    answered = by_ticket[first.ticket.external_id]
    assert answered["Customer"] == "王五" and answered["Status"] == "answered"
    assert re.fullmatch(r".+ v\d+", answered["Survey"])

    rows = csv_rows(
        client.get("/admin/surveys/invitations/export.csv", query_string={"q": "王五"})
    )
    assert [row[1] for row in rows[1:]] == [first.ticket.external_id]


# --- who may see and download ----------------------------------------------------------------

LISTS = {
    "/tickets": {Role.ANALYST, Role.MANAGER, Role.ADMIN},
    "/tickets/export.csv": {Role.ANALYST, Role.MANAGER, Role.ADMIN},
    "/cases": {Role.ANALYST, Role.MANAGER, Role.ADMIN},
    "/cases/export.csv": {Role.ANALYST, Role.MANAGER, Role.ADMIN},
    "/admin/surveys/invitations": {Role.MANAGER, Role.ADMIN},
    "/admin/surveys/invitations/export.csv": {Role.MANAGER, Role.ADMIN},
}


@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(client, auth, make_user, role):
    auth.sign_in(make_user(role))
    answers = {url: client.get(url).status_code for url in LISTS}
    assert answers == {url: 200 if role in allowed else 403 for url, allowed in LISTS.items()}


def test_signed_out_readers_are_sent_to_sign_in(client):
    for url in LISTS:
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"]
