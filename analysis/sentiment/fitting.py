"""Fitting sentiment models: examples to features, naive Bayes counts with the shipped
blend mixed in at a weight picked on held-out data, and the calibration of probabilities.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from .features import FEATURES
from .naive_bayes import (
    MIN_COUNT,
    NEGATIVE,
    POSITIVE,
    FeatureCounts,
    ModelError,
    SentimentModel,
    log_likelihood_ratios,
    sigmoid,
)

BASE_WEIGHTS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 2.0)
"""How much of the shipped blend to mix into a domain model; picked on held-out data (the
organisation's own: a fifth of its comments). 0.7 and 2.0 came with the service blend, whose
product reviews weigh half (``SERVICE_BASE_WEIGHT``)."""
DEFAULT_BASE_WEIGHT = 0.35
"""Used when there are too few examples to pick a weight from held-out data."""
MIN_EXAMPLES_TO_TUNE = 200


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


def train_english(
    examples: Sequence[tuple[int, str]],
    compound: Callable[[str], float],
    *,
    version: str,
    base: FeatureCounts | None,
    base_weight: float | None = None,
    fallback: tuple[float, float] = (1.0, 1.0),
    normalise: Callable[[str], str] = str.lower,
) -> SentimentModel:
    """Train an English model from ``(label, text)`` pairs, to be added to VADER's compound
    score in log-odds.

    The model reads ``normalise(text)`` (as the scorer prepares it), VADER the
    text as written (capitals count for VADER).

    ``base`` (the shipped English counts) is mixed in at ``base_weight``; when
    that is ``None`` the weight is picked from ``BASE_WEIGHTS`` on a held-out
    fifth of the examples (given at least ``MIN_EXAMPLES_TO_TUNE``), where the
    model's slope and VADER's weight (``meta["vader_weight"]``) are fitted
    together for each candidate. With fewer examples the weight is
    ``DEFAULT_BASE_WEIGHT`` and slope and VADER weight are ``fallback`` (the
    shipped model's). Refuses (:class:`ModelError`) data without both classes.
    """
    labels = [label for label, _ in examples]
    if min(labels.count(NEGATIVE), labels.count(POSITIVE)) == 0:
        raise ModelError("training needs both positive (1) and negative (0) examples")
    prepared = prepare(examples, normalise, language="en")
    base = base or FeatureCounts()
    base_vocabulary = base.negative.keys() | base.positive.keys()
    weights = list(BASE_WEIGHTS) if base_weight is None else [base_weight]
    if not any(base.documents):
        weights = [0.0]
    chosen = weights[0] if len(weights) == 1 else DEFAULT_BASE_WEIGHT
    slope, vader_weight = fallback
    scores: dict[float, float] = {}
    if len(examples) >= MIN_EXAMPLES_TO_TUNE:
        order = list(range(len(examples)))
        fit_rows, held_rows = split(order)
        own = counts_of(prepared[i] for i in fit_rows)
        vocabulary = own.frequent(MIN_COUNT) | base_vocabulary
        held_labels = [labels[i] for i in held_rows]
        compounds = [compound(examples[i][1]) for i in held_rows]
        best: tuple[float, float] | None = None
        for weight in weights:
            candidate = SentimentModel(
                version,
                log_likelihood_ratios(own, base, weight, vocabulary),
                language="en",
            )
            evidence = [candidate.text_evidence(normalise(examples[i][1])) for i in held_rows]
            rows = [[e or 0.0, c] for e, c in zip(evidence, compounds, strict=True)]
            fitted = fit_logistic(rows, held_labels)
            probabilities = [
                english_probability(e, c, fitted[0], fitted[1])
                for e, c in zip(evidence, compounds, strict=True)
            ]
            hits = sum(
                (p >= 0.5) == (y == POSITIVE)
                for p, y in zip(probabilities, held_labels, strict=True)
            )
            scores[weight] = hits / len(held_rows)
            # Accuracy first; among equals, the better probabilities (lower log loss).
            rank = (scores[weight], -log_loss(probabilities, held_labels))
            if best is None or rank > best:
                best, chosen = rank, weight
                slope, vader_weight = fitted
    own_all = counts_of(prepared)
    vocabulary = own_all.frequent(MIN_COUNT) | base_vocabulary
    if not vocabulary:
        raise ModelError("no feature was seen often enough to learn from")
    meta = {
        "examples": len(examples),
        "positive": labels.count(POSITIVE),
        "negative": labels.count(NEGATIVE),
        "base_weight": chosen,
        "vader_weight": round(vader_weight, 4),
        "held_out_accuracy": {str(w): round(a, 4) for w, a in scores.items()},
    }
    weights_by_feature = log_likelihood_ratios(own_all, base, chosen, vocabulary)
    return SentimentModel(version, weights_by_feature, round(slope, 4), meta, "en")


def log_loss(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """Return the mean negative log-likelihood of ``labels`` under ``probabilities``."""
    total = 0.0
    for p, y in zip(probabilities, labels, strict=True):
        p = min(max(p, 1e-6), 1 - 1e-6)
        total -= math.log(p if y == POSITIVE else 1 - p)
    return total / len(labels) if labels else 0.0


def english_probability(
    evidence: float | None, compound: float, slope: float, vader_weight: float
) -> float:
    """P(positive) of English text: the model's evidence and VADER's compound score
    (-1..1) added in log-odds; VADER alone when the model knows no feature of the text."""
    if evidence is None:
        return (compound + 1.0) / 2.0
    return sigmoid(slope * evidence + vader_weight * compound)
