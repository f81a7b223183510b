"""The naive Bayes model: per-class feature counts, log-likelihood ratios, the immutable
:class:`SentimentModel` that scores prepared text, and its (de)serialisation.

Fitting a model from labelled examples is :mod:`.fitting`; nothing here touches Flask.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .features import FEATURE_VERSION, FEATURES, READABLE_FEATURE_VERSIONS, contrast_parts

FORMAT = 1
ALPHA = 1.0
"""Additive (Laplace) smoothing: tames features seen only a few times."""
MIN_COUNT = 2
"""A feature seen in fewer documents than this (both classes together) is dropped."""
CONTRAST_WEIGHT = 0.65
"""Share of the evidence given to the clause after a contrast (虽然…但是, but, however...).

Picked on a held-out part of the training split (families the model did not
learn from), never on the frozen dev split."""

NEGATIVE, POSITIVE = 0, 1


class ModelError(ValueError):
    """A model file that cannot be read, or training data that cannot make a model."""


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
            if (
                data["format"] != FORMAT
                or data["feature_version"] not in READABLE_FEATURE_VERSIONS
            ):
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
