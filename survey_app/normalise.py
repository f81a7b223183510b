"""Strict normalisation of what machines send: ids, whole numbers, one-line text.

Helpdesks and spreadsheets deliver look-alikes: full-width digits (``１０``),
zero-width spaces pasted with an id, ``1_0`` (which Python's ``int`` reads as
10), control characters. Ids and numbers are normalised to one spelling
(Unicode NFKC, zero-width characters dropped) and anything still ambiguous
is refused, so one ticket never becomes two and a score is what it says.
"""

from __future__ import annotations

import re
import unicodedata

#: Characters that are invisible and carry no meaning in an id.
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
#: C0 controls and DEL: never part of a one-line value (CR/LF would split a mail header).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]+")


def identifier(value: str) -> str:
    """``value`` as an id: NFKC-normalised, zero-width characters removed, trimmed."""
    return unicodedata.normalize("NFKC", value).translate(ZERO_WIDTH).strip()


def whole_number(value: str) -> int:
    """A whole number written with digits 0-9 (after NFKC: ``１０`` is 10).

    Raises ``ValueError`` for anything else: ``1_0``, ``10.5``, ``²``, ``-1``, ``""``.
    """
    text = identifier(value)
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"{value!r} is not a whole number")
    return int(text)


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a control character (a tab, CR, LF, NUL ...)."""
    return CONTROL_CHARACTERS.search(value) is not None
