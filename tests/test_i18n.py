"""The Chinese catalog covers every user-facing string, and the compiled file is current."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "survey_app" / "translations" / "zh_Hans" / "LC_MESSAGES"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
METHODS = [
    ("survey_app/**.py", "python"),
    ("analysis/**.py", "python"),
    ("improvement/**.py", "python"),
    ("templates/**.html", "jinja2"),
]


def source_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_a_chinese_translation():
    with (CATALOG / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="zh_Hans")
    translated = {m.id for m in catalog if m.id and m.string and "fuzzy" not in m.flags}
    missing = sorted(source_messages() - translated)
    assert not missing, f"untranslated (run `make translations`, then translate): {missing}"


def test_compiled_catalog_matches_the_po_file():
    with (CATALOG / "messages.po").open("rb") as handle:
        po = {m.id: m.string for m in read_po(handle, locale="zh_Hans") if m.id}
    with (CATALOG / "messages.mo").open("rb") as handle:
        mo = {m.id: m.string for m in read_mo(handle) if m.id}
    assert po == mo, "messages.mo is stale: run `pybabel compile -d survey_app/translations`"


def test_chinese_pages_render_in_chinese(client):
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    html = page.get_data(as_text=True)
    assert '<html lang="zh-Hans">' in html
    assert "登录" in html
    english = client.get("/login", headers={"Accept-Language": "en-US"}).get_data(as_text=True)
    assert '<html lang="en">' in english
    assert "Sign in" in english
