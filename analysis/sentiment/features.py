"""The features a sentiment model reads: character n-grams and negations of Chinese text,
words, word pairs and negated words of English text, and the clause after a contrast.

Nothing here knows of models; :mod:`.naive_bayes` weighs what these functions return.
"""

from __future__ import annotations

import re
from collections.abc import Callable

FEATURE_VERSION = 2
"""Bumped when the features change: a model written under another version is refused,
unless that version is in :data:`READABLE_FEATURE_VERSIONS`."""
READABLE_FEATURE_VERSIONS = frozenset({1, 2})
"""Versions whose models still read right: version 2 only stopped emitting the n-grams
that end in a degree adverb, so a version 1 model's weights for them are never used and
the rest mean what they meant (an organisation's trained model survives the upgrade)."""

_RUN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z][a-z']+")
_NEGATOR = re.compile("没有|不是|并不|从不|毫无|绝不|从没|[没不无未别]")
_CONTRAST = re.compile(
    "但是|可是|不过|然而|可惜|只可惜|(?<![不非])但(?!愿)"
    r"|\b(?:but|however|yet|although|though|unfortunately)\b"
)
_ENGLISH_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ENGLISH_NEGATOR = re.compile(
    r"^(?:not|no|never|nobody|nothing|none|neither|nor|cannot|without|\w+n't)$"
)
CONTRAST_MAX_CHARS = 60
"""Only comments up to this long are read by their last contrast: in a long review
many clauses weigh, and the one after its last 但是 does not decide it (on held-out
product reviews, weighting it made long reviews worse)."""
ENGLISH_NEGATION_SCOPE = 3
DEGREE_ADVERBS = frozenset("很太挺蛮")
"""An n-gram ending in one of these says nothing of its own: it stands for the word that
usually follows in training (体验很 learned from 体验很好 made 体验很差 read as praise),
so it is not a feature; the adverb with what it qualifies (很差, 太慢) is."""


def features(text: str) -> set[str]:
    """Return the features of ``text`` (simplified Chinese, lower-cased).

    Character bigrams and trigrams of each run of Han characters, except those ending in
    a degree adverb (:data:`DEGREE_ADVERBS`; a lone character stands for itself), Latin
    words as ``w:word``, and for each negator the next two characters, and the two after
    a skipped one, marked
    ``¬`` (不太满意 gives ``¬太满`` and ``¬满意``).
    """
    found: set[str] = set()
    add = found.add
    for run in _RUN.findall(text):
        if run.isascii():
            add("w:" + run)
            continue
        size = len(run)
        if size == 1:
            add(run)
            continue
        for i in range(size - 1):
            if run[i + 1] not in DEGREE_ADVERBS:
                add(run[i : i + 2])
        for i in range(size - 2):
            if run[i + 2] not in DEGREE_ADVERBS:
                add(run[i : i + 3])
        for match in _NEGATOR.finditer(run):
            end = match.end()
            if end + 2 <= size:
                add("¬" + run[end : end + 2])
            if end + 3 <= size:
                add("¬" + run[end + 1 : end + 3])
    return found


def english_features(text: str) -> set[str]:
    """Return the features of English ``text`` (lower-cased): words, word pairs, negated words.

    Each word after a negator (not, no, never, nobody, ...n't) up to
    ``ENGLISH_NEGATION_SCOPE`` words or the end of the clause is also marked
    ``¬`` ("nobody called me back" gives ``¬called`` and ``¬back``).
    """
    found: set[str] = set()
    add = found.add
    for clause in re.split(r"[.,;:!?()\n]+", text):
        words = _ENGLISH_WORD.findall(clause.replace("\u2019", "'"))
        negated = 0
        previous = "^"
        for raw in words:
            word = raw
            if negated:
                # Only the negated form: "called" of "nobody called me back" must not
                # teach that "they called me back" is a complaint.
                word = "¬" + word
                negated -= 1
            add("w:" + word)
            add(f"b:{previous} {word}")
            if _ENGLISH_NEGATOR.match(raw):
                negated = ENGLISH_NEGATION_SCOPE
            previous = word
    return found


FEATURES: dict[str, Callable[[str], set[str]]] = {"zh": features, "en": english_features}
"""The feature function of each model language."""


def contrast_parts(text: str) -> tuple[str, str] | None:
    """Return ``(before, after)`` around the last contrast word of ``text``, or ``None``.

    "虽然等了很久，但是问题解决了" gives the two clauses; for "although X, Y"
    (no "but"), the clause after the first comma is the one that counts.
    """
    if len(text) > CONTRAST_MAX_CHARS:
        return None
    last = None
    for match in _CONTRAST.finditer(text):
        last = match
    if last is None:
        return None
    before, after = text[: last.start()], text[last.end() :]
    if last.group() in ("although", "though") and "," in after:
        clause, _, rest = after.partition(",")
        before, after = before + " " + clause, rest
    if not after.strip(" ,，。.!！"):
        return None
    return before.strip(), after.strip()
