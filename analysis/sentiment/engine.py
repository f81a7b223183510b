"""One sentiment interface for every comment: :func:`score` gives score, label, language, engine.

Chinese goes to ClosedLoop's own naive Bayes model, English to VADER plus a
naive Bayes model of service comments: the shipped ones, or the parts of the
organisation's trained version. Nothing is loaded at
import: each model is loaded on first use, once per process, and replaced only
by building a new immutable model and switching one reference, so threads
that are scoring keep a consistent model.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from survey_app.config import DefaultConfig

from .language import CHINESE, ENGLISH, clean_text, detect_language
from .model import ModelError, SentimentModel, english_probability
from .store import (
    ModelStore,
    normalise_for_model,
    prepare_english,
    shipped_english_model,
    shipped_model,
)

POSITIVE = "positive"
NEUTRAL = "neutral"
NEGATIVE = "negative"
NONE = "none"
"""No text to judge (empty, emoji only, digits...): not a guess of neutral."""

DEFAULT_NEUTRAL_BAND: tuple[float, float] = DefaultConfig.SENTIMENT_NEUTRAL_BAND
"""Chosen on the service corpus's frozen dev split: the narrowest band whose confident
verdicts are wrong at most 3 % of the time (`benchmarks/sentiment_bench.py`)."""
CHINESE_ENGINE = "closedloop-nb"
RELOAD_CHECK_SECONDS = 5.0


class SentimentModelWarning(UserWarning):
    """A trained model could not be used; the shipped one scores instead."""


class SentimentResult(NamedTuple):
    """The verdict on one text.

    ``score`` is the probability that the text is positive (0..1), ``None``
    when label is ``none``; ``language`` is ``"zh"``, ``"en"`` or ``None``;
    ``engine`` names the scorer and model version that produced it.
    """

    score: float | None
    label: str
    language: str | None
    engine: str


def validate_band(band: Any) -> tuple[float, float]:
    """Return ``band`` as ``(low, high)``; refuses (ValueError) unless 0 <= low <= high <= 1."""
    try:
        low, high = (float(x) for x in band)
    except (TypeError, ValueError):
        raise ValueError(f"neutral band must be two numbers, not {band!r}") from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"neutral band must satisfy 0 <= low <= high <= 1, not {band!r}")
    return low, high


def label_for(score: float, band: tuple[float, float]) -> str:
    """Return ``negative`` below the band, ``positive`` above, ``neutral`` inside (inclusive)."""
    low, high = band
    if score < low:
        return NEGATIVE
    if score > high:
        return POSITIVE
    return NEUTRAL


class Vader:
    """VADER's analyser, loaded once per process (its lexicon takes a moment)."""

    _instance: Vader | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        from importlib.metadata import version

        with warnings.catch_warnings():
            # The 2020 release has invalid escape sequences in its source.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()
        self.name = f"vader-{version('vaderSentiment')}"

    @classmethod
    def get(cls) -> Vader:
        if cls._instance is None:
            with cls._lock:
                if cls._instance is None:
                    cls._instance = cls()
        return cls._instance

    def compound(self, text: str) -> float:
        """Return VADER's compound score of ``text``, -1 (negative) to 1 (positive)."""
        return self.analyzer.polarity_scores(text)["compound"]


class _EnglishScorer:
    """VADER's lexicon plus a model of service comments, added up in log-odds.

    VADER knows general English ("terrible", "thanks"); the model knows what
    VADER cannot ("nobody called me back", "still not fixed"). The model is
    the shipped one (the corpus's English comments) unless ``model`` is the
    English part of a trained version. Text neither knows scores 0.5.
    """

    def __init__(self, model: SentimentModel | None = None) -> None:
        self.vader = Vader.get()
        self.model = model or shipped_english_model(self.vader.compound)
        self.vader_weight = float(self.model.meta["vader_weight"])
        self.engine = f"{self.vader.name}+{self.model.version}"

    def compound(self, text: str) -> float:
        """Return VADER's compound score of ``text``, -1 (negative) to 1 (positive)."""
        return self.vader.compound(text)

    def probability(self, text: str) -> float:
        evidence = self.model.text_evidence(prepare_english(text))
        return english_probability(
            evidence, self.compound(text), self.model.slope, self.vader_weight
        )


class SentimentEngine:
    """Scores texts with lazily loaded models; safe to share between threads.

    ``instance_path`` is where trained versions and the shipped model's cache
    live (``None``: build the shipped models in memory, use no trained one).
    The current version is re-read when its pointer file changes, checked at
    most every ``RELOAD_CHECK_SECONDS``, so a model trained by the CLI is
    picked up by running web and worker processes. Each language's model is
    loaded on its first comment: English comments alone never load the Chinese model.
    """

    def __init__(
        self,
        instance_path: Path | str | None = None,
        neutral_band: tuple[float, float] = DEFAULT_NEUTRAL_BAND,
    ) -> None:
        self.store = ModelStore.for_instance(instance_path) if instance_path else None
        self.neutral_band = validate_band(neutral_band)
        self._lock = threading.Lock()
        self._chinese: SentimentModel | None = None
        self._english: _EnglishScorer | None = None
        self._stamp: int | None = None
        self._checked = 0.0

    def _check_pointer(self) -> None:
        """Forget the loaded models when the version pointer changed (call with the lock)."""
        now = time.monotonic()
        if now - self._checked < RELOAD_CHECK_SECONDS:
            return
        stamp = self.store.pointer_stamp() if self.store else None
        if stamp != self._stamp:
            self._chinese = self._english = None
            self._stamp = stamp
        self._checked = now

    def _is_fresh(self) -> bool:
        return self.store is None or time.monotonic() - self._checked < RELOAD_CHECK_SECONDS

    def chinese_model(self) -> SentimentModel:
        """Return the Chinese model in use, loading (or reloading) it if needed."""
        model = self._chinese
        if model is not None and self._is_fresh():
            return model
        with self._lock:
            self._check_pointer()
            if self._chinese is None:
                self._chinese = self._load_part(CHINESE) or shipped_model(self._cache())
            return self._chinese

    def english_scorer(self) -> _EnglishScorer:
        """Return the English scorer in use (VADER + the shipped or trained English model)."""
        scorer = self._english
        if scorer is not None and self._is_fresh():
            return scorer
        with self._lock:
            self._check_pointer()
            if self._english is None:
                self._english = _EnglishScorer(self._load_part(ENGLISH))
            return self._english

    def english_model(self) -> SentimentModel:
        """Return the English model in use (added to VADER's score)."""
        return self.english_scorer().model

    def reload(self) -> None:
        """Forget the loaded models now (after a train or rollback in this process): each
        language's current model is loaded again on its next comment."""
        with self._lock:
            self._chinese = self._english = None
            self._stamp = self.store.pointer_stamp() if self.store else None
            self._checked = time.monotonic()

    def _cache(self) -> Path | None:
        return self.store.root if self.store else None

    def _load_part(self, language: str) -> SentimentModel | None:
        """Return the current version's model in ``language``; ``None``: use the shipped one."""
        if self.store is None:
            return None
        version = None
        try:
            version = self.store.current_version()
            if version is not None:
                return self.store.load_part(version, language)
        except ModelError as error:
            name = "English" if language == ENGLISH else "Chinese"
            warnings.warn(
                f"{name} sentiment model {version or '(current)'} cannot be used ({error}); "
                "scoring with the shipped model instead.",
                SentimentModelWarning,
                stacklevel=5,
            )
        return None

    def load(self) -> None:
        """Load every model now (before forking workers, or to fail early)."""
        self.chinese_model()
        self.english_scorer()

    def score(self, text: Any, neutral_band: tuple[float, float] | None = None) -> SentimentResult:
        """Score one text. Never raises for bad text: it gets label ``none`` instead.

        HTML is stripped, text past ``MAX_CHARS`` ignored, traditional
        characters read as simplified; mixed text is scored by its dominant
        script (see :func:`~analysis.sentiment.language.detect_language`).
        """
        band = self.neutral_band if neutral_band is None else neutral_band
        cleaned = clean_text(text)
        language = detect_language(cleaned)
        if language == CHINESE:
            model = self.chinese_model()
            probability = model.probability(normalise_for_model(cleaned))
            engine = f"{CHINESE_ENGINE}:{model.version}"
        elif language == ENGLISH:
            scorer = self.english_scorer()
            probability = scorer.probability(cleaned)
            engine = scorer.engine
        else:
            return SentimentResult(None, NONE, None, NONE)
        probability = round(probability, 4)
        return SentimentResult(probability, label_for(probability, band), language, engine)

    def score_many(
        self, texts: Sequence[Any], neutral_band: tuple[float, float] | None = None
    ) -> list[SentimentResult]:
        """Score several texts in this process (see :mod:`.batch` for all cores)."""
        return [self.score(text, neutral_band) for text in texts]


_engines: dict[str, SentimentEngine] = {}
_engines_lock = threading.Lock()


def engine_for(instance_path: Path | str | None) -> SentimentEngine:
    """Return this process's engine for an instance folder (one per folder, made on first use)."""
    key = str(Path(instance_path).resolve()) if instance_path else ""
    engine = _engines.get(key)
    if engine is None:
        with _engines_lock:
            engine = _engines.setdefault(key, SentimentEngine(key or None))
    return engine


def current_engine() -> SentimentEngine:
    """Return the engine of the current Flask app's instance folder (or a bare one outside)."""
    from flask import current_app, has_app_context

    return engine_for(current_app.instance_path if has_app_context() else None)


def configured_band() -> tuple[float, float]:
    """Return ``SENTIMENT_NEUTRAL_BAND`` from the current app's config (default (0.25, 0.75))."""
    from flask import current_app, has_app_context

    if not has_app_context():
        return DEFAULT_NEUTRAL_BAND
    return validate_band(current_app.config["SENTIMENT_NEUTRAL_BAND"])


def score(text: Any) -> SentimentResult:
    """Return the :class:`SentimentResult` of ``text`` under the current app's model and band."""
    return current_engine().score(text, configured_band())
