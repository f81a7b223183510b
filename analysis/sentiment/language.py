"""Cleaning comments and telling which script (and so which scorer) they are written in."""

from __future__ import annotations

import html
import re

MAX_CHARS = 5_000
"""Longer comments are cut: the rest rarely changes the verdict and would only cost time."""

_TAG = re.compile(r"<[^<>]{0,1000}>")
_SPACE = re.compile(r"\s+")
_HAN = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef]"
)
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:'[A-Za-z]+)?")
_UNPAIRED_SURROGATE = re.compile("[\ud800-\udfff]")

CHINESE = "zh"
ENGLISH = "en"


def clean_text(text: object) -> str:
    """Return ``text`` as plain, single-spaced text of at most ``MAX_CHARS`` characters.

    HTML tags are dropped and entities decoded (comments pasted from e-mails);
    ``None`` and non-strings become ``""``. Never raises.
    """
    if not isinstance(text, str):
        return ""
    text = _UNPAIRED_SURROGATE.sub("\ufffd", text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()[:MAX_CHARS]


def detect_language(text: str) -> str | None:
    """Return ``"zh"`` or ``"en"`` by the dominant script, or ``None`` when neither is there.

    Each Han character weighs as much as one Latin word (a Chinese character
    carries about a word's meaning); a tie goes to Chinese. Text with neither
    (empty, emoji, digits, punctuation, other scripts) has no language we score.
    """
    han = len(_HAN.findall(text))
    words = len(_LATIN_WORD.findall(text))
    if han == 0 and words == 0:
        return None
    return CHINESE if han >= words else ENGLISH
