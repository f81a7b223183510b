"""Turn a raw survey comment into plain text that the text rules can read.

Comments arrive from web forms, e-mail replies and imports: they may hold HTML,
links, full-width letters and pasted logs. Every text function in
:mod:`analysis.text` cleans its input here first, so each of them gives a
defined result for any string, including ``None``.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

#: Longer comments are cut to this many characters: a pasted log or e-mail
#: thread adds no theme that its first screenful lacks, and the cap bounds the
#: cost of segmentation and regular expressions.
MAX_CHARS = 2000

_URL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Elements whose content is code or markup, never something the customer wrote.
_SKIPPED_ELEMENTS = frozenset({"script", "style", "head", "template"})


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skipping += 1
        else:
            # A tag separates words: "<p>slow</p><p>rude</p>" is two words.
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skipping = max(0, self._skipping - 1)
        else:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """Return the text content of ``text`` with tags removed and entities decoded.

    Text without a ``<`` or ``&`` is returned unchanged; malformed markup never
    raises (the parser is lenient and "I <3 it" stays as it is).
    """
    if "<" not in text and "&" not in text:
        return text
    collector = _TextCollector()
    collector.feed(text)
    collector.close()
    return "".join(collector.parts)


def clean_text(text: str | None, *, max_chars: int = MAX_CHARS) -> str:
    """Return ``text`` as one line of plain text, at most ``max_chars`` long.

    HTML is stripped, links and e-mail addresses removed, full-width letters and
    digits folded to ASCII (NFKC), runs of whitespace collapsed. ``None``,
    empty and whitespace-only input give ``""``.
    """
    if not text:
        return ""
    # Cut before parsing too, so a 10 MB paste costs no more than a long comment.
    text = unicodedata.normalize("NFKC", strip_html(text[: max_chars * 4]))
    text = _URL.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()[:max_chars]


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds at least one Chinese character."""
    return _CJK.search(text) is not None
