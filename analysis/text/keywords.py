"""Keywords of a survey comment, for pain-point themes.

Chinese text is segmented with jieba and ranked by TF-IDF (term frequency in the
comment times jieba's shipped inverse document frequency table); English text
is tokenised with a regular expression, reduced to a simple singular form and
ranked by frequency. Both drop the words in ``stopwords.txt`` beside this
module: a Chinese + English list that deliberately keeps service words
(响应, 态度, 解决, 等待, 客服, wait, refund ...), since those are the themes.
jieba's TextRank is not used: it ranks by co-occurrence and returns nothing for
most comments of one or two short sentences.

jieba is loaded lazily, once per process, the first time Chinese text comes in
(about a second and 70 MB): importing this module costs nothing. The tokenizer
is private to this module, so the words added from ``userdict.txt`` (客服,
工单, 人工客服, 响应速度 ...) do not change how other code segments text.
Nothing is downloaded: the dictionary and IDF table ship inside the jieba
package.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from analysis.text.cleaning import clean_text, has_cjk

_HERE = Path(__file__).resolve().parent
STOP_WORDS_FILE = _HERE / "stopwords.txt"
USER_DICT_FILE = _HERE / "userdict.txt"

#: Compounds that jieba's dictionary keeps whole but that we split, so that
#: "服务态度差" and "态度不好" meet under the theme 态度, and "等待时间太长"
#: under 等待.
_SPLIT_COMPOUNDS = (("服务", "态度"), ("等待", "时间"))

#: Ways of saying the same complaint, folded into one keyword so that a theme
#: counts them together ("排队太久" and "等了很久" both mention 等待).
CANONICAL_FORMS = {
    **dict.fromkeys(("很慢", "太慢", "好慢"), "慢"),
    **dict.fromkeys(("很久", "太久", "好久", "等了", "等很久", "等太久"), "等待"),
    **dict.fromkeys(("等好久", "等半天"), "等待"),
}

#: Longer "words" are pasted identifiers, hashes or keyboard mashing.
MAX_WORD_CHARS = 30

_ENGLISH_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_HAS_LETTER_OR_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[a-z]{2}")
# Irregular or useful forms the suffix rules below would miss or get wrong.
_ENGLISH_LEMMAS = {
    "waiting": "wait",
    "waited": "wait",
    "responded": "respond",
    "responding": "respond",
    "replied": "reply",
    "called": "call",
    "explained": "explain",
    "resolved": "resolve",
    "solved": "solve",
    "fixed": "fix",
    "crashed": "crash",
    "crashing": "crash",
    "refunded": "refund",
    "charged": "charge",
    "people": "person",
    "children": "child",
}


def _read_word_file(path: Path) -> list[str]:
    words: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            words.extend(line.split("#", 1)[0].split())
    return words


@cache
def stop_words() -> frozenset[str]:
    """The Chinese + English stop words shipped in ``stopwords.txt``, lower case."""
    return frozenset(word.lower() for word in _read_word_file(STOP_WORDS_FILE))


def english_lemma(word: str) -> str:
    """Return a simple base form of a lower-case English word.

    Only plurals, a possessive "'s" and a short table of service verbs
    ("waiting" -> "wait") are handled; a stemmer would turn "service" into
    "servic", which a manager should not have to read.
    """
    word = word.removesuffix("'s")
    if word in _ENGLISH_LEMMAS:
        return _ENGLISH_LEMMAS[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class _ChineseModel:
    tokenizer: Any
    idf: dict[str, float]
    median_idf: float


_model: _ChineseModel | None = None
_model_lock = threading.Lock()


def _load_chinese_model() -> _ChineseModel:
    # jieba <= 0.42 has invalid escape sequences and unclosed files that warn
    # (and fail the suite, which turns warnings into errors) on Python 3.11+.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import jieba

        # jieba logs "Building prefix dict ..." at DEBUG to stderr on first use.
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for word in _read_word_file(USER_DICT_FILE):
            tokenizer.add_word(word)
        for parts in _SPLIT_COMPOUNDS:
            tokenizer.suggest_freq(parts, tune=True)
    # jieba.analyse would give the same IDF table but imports the part-of-speech
    # tagger (another ~130 MB); reading the file directly keeps memory low.
    idf: dict[str, float] = {}
    idf_path = Path(jieba.__file__).resolve().parent / "analyse" / "idf.txt"
    with idf_path.open(encoding="utf-8") as handle:
        for line in handle:
            word, _, value = line.rstrip("\n").rpartition(" ")
            if word:
                idf[word] = float(value)
    values = sorted(idf.values())
    return _ChineseModel(tokenizer, idf, values[len(values) // 2])


def _chinese_model() -> _ChineseModel:
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                _model = _load_chinese_model()
    return _model


def _normalise_token(token: str) -> str | None:
    """The keyword form of a token, or None when it is no keyword."""
    token = token.strip().lower()
    if not 2 <= len(token) <= MAX_WORD_CHARS or not _HAS_LETTER_OR_HAN.search(token):
        return None
    if token.isascii():
        if token in stop_words():
            return None
        token = english_lemma(token)
    token = CANONICAL_FORMS.get(token, token)
    return None if token in stop_words() else token


def _chinese_keywords(text: str, top_n: int) -> list[str]:
    model = _chinese_model()
    counts: Counter[str] = Counter()
    for token in model.tokenizer.cut(text.lower()):
        word = _normalise_token(token)
        if word is not None:
            counts[word] += 1
    # Counter keeps first-seen order, and sorted() is stable: equal weights keep
    # the order of the comment, so the result is deterministic.
    weight = {word: n * model.idf.get(word, model.median_idf) for word, n in counts.items()}
    return sorted(weight, key=lambda word: -weight[word])[:top_n]


def _english_keywords(text: str, top_n: int) -> list[str]:
    counts: Counter[str] = Counter()
    for token in _ENGLISH_WORD.findall(text.lower()):
        word = _normalise_token(token)
        if word is not None:
            counts[word] += 1
    return [word for word, _ in counts.most_common(top_n)]


def keywords(text: str | None, top_n: int = 5) -> list[str]:
    """Return up to ``top_n`` keywords of a comment, most telling first.

    Text holding any Chinese character is segmented with jieba (English words in
    it are kept as tokens too); other text is read as English. HTML is stripped
    and the text cut to :data:`analysis.text.cleaning.MAX_CHARS` first. Empty,
    whitespace-only, emoji-only or ``None`` input gives ``[]``. Raises
    ``ValueError`` for a negative ``top_n``.
    """
    if top_n < 0:
        raise ValueError(f"top_n must not be negative, got {top_n}")
    text = clean_text(text)
    if not text or top_n == 0:
        return []
    if has_cjk(text):
        return _chinese_keywords(text, top_n)
    return _english_keywords(text, top_n)
