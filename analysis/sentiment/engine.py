"""One sentiment interface for every comment: :func:`score` gives score, label, language, engine.

Chinese goes to ClosedLoop's own naive Bayes model (the shipped one, or the
organisation's trained version); English to VADER. Nothing is loaded at
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
from .model import ModelError, SentimentModel, sigmoid
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


class _EnglishScorer:
    """VADER's lexicon plus a model of service comments, added up in log-odds.

    VADER knows general English ("terrible", "thanks"); the model knows what
    VADER cannot ("nobody called me back", "still not fixed"). Text neither
    knows scores 0.5.
    """

    def __init__(self) -> None:
        from importlib.metadata import version

        with warnings.catch_warnings():
            # The 2020 release has invalid escape sequences in its source.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()
        self.model = shipped_english_model(self.compound)
        self.vader_weight = float(self.model.meta["vader_weight"])
        self.engine = f"vader-{version('vaderSentiment')}+{self.model.version}"

    def compound(self, text: str) -> float:
        """Return VADER's compound score of ``text``, -1 (negative) to 1 (positive)."""
        return self.analyzer.polarity_scores(text)["compound"]

    def probability(self, text: str) -> float:
        compound = self.compound(text)
        evidence = self.model.text_evidence(prepare_english(text))
        if evidence is None:
            return (compound + 1.0) / 2.0
        return sigmoid(self.model.slope * evidence + self.vader_weight * compound)


class SentimentEngine:
    """Scores texts with lazily loaded models; safe to share between threads.

    ``instance_path`` is where trained versions and the shipped model's cache
    live (``None``: build the shipped model in memory, use no trained one).
    The current version is re-read when its pointer file changes, checked at
    most every ``RELOAD_CHECK_SECONDS``, so a model trained by the CLI is
    picked up by running web and worker processes.
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

    def chinese_model(self) -> SentimentModel:
        """Return the Chinese model in use, loading (or reloading) it if needed."""
        model = self._chinese
        now = time.monotonic()
        fresh = self.store is None or now - self._checked < RELOAD_CHECK_SECONDS
        if model is not None and fresh:
            return model
        with self._lock:
            if self._chinese is not None and now - self._checked < RELOAD_CHECK_SECONDS:
                return self._chinese
            stamp = self.store.pointer_stamp() if self.store else None
            if self._chinese is None or stamp != self._stamp:
                self._chinese = self._load_chinese()
                self._stamp = stamp
            self._checked = now
            return self._chinese

    def reload(self) -> SentimentModel:
        """Load the current model again now (after a train or rollback in this process)."""
        with self._lock:
            self._chinese = self._load_chinese()
            self._stamp = self.store.pointer_stamp() if self.store else None
            self._checked = time.monotonic()
            return self._chinese

    def _load_chinese(self) -> SentimentModel:
        cache = self.store.root if self.store else None
        if self.store is not None:
            version = None
            try:
                version = self.store.current_version()
                if version is not None:
                    return self.store.load(version)
            except ModelError as error:
                warnings.warn(
                    f"Sentiment model {version or '(current)'} cannot be used ({error}); "
                    "scoring with the shipped model instead.",
                    SentimentModelWarning,
                    stacklevel=4,
                )
        return shipped_model(cache)

    def english_scorer(self) -> _EnglishScorer:
        scorer = self._english
        if scorer is None:
            with self._lock:
                if self._english is None:
                    self._english = _EnglishScorer()
                scorer = self._english
        return scorer

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
    """Return ``SENTIMENT_NEUTRAL_BAND`` from the current app's config (default (0.2, 0.8))."""
    from flask import current_app, has_app_context

    if not has_app_context():
        return DEFAULT_NEUTRAL_BAND
    return validate_band(current_app.config["SENTIMENT_NEUTRAL_BAND"])


def score(text: Any) -> SentimentResult:
    """Return the :class:`SentimentResult` of ``text`` under the current app's model and band."""
    return current_engine().score(text, configured_band())
