"""Accuracy of a sentiment scorer on labelled comments, and reading labelled files."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .batch import read_csv
from .language import CHINESE, ENGLISH, clean_text, detect_language

LABELS = {
    "1": 1,
    "0": 0,
    "1.0": 1,
    "0.0": 0,
    "positive": 1,
    "negative": 0,
    "pos": 1,
    "neg": 0,
}


@dataclass(frozen=True)
class ClassReport:
    """Precision, recall and F1 of one class (positive or negative)."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """How a scorer did on labelled texts: a text counts as positive when its score is >= 0.5.

    Texts the scorer left unscored (label ``none``) count as wrong and are
    reported in ``unscored``; ``neutral`` is how many fell in the neutral band.
    """

    total: int
    accuracy: float
    positive: ClassReport
    negative: ClassReport
    texts_per_second: float
    unscored: int
    neutral: int

    def lines(self) -> list[str]:
        """Return the evaluation as the lines ``closedloop sentiment evaluate`` prints."""
        lines = [
            f"texts: {self.total}",
            f"accuracy: {self.accuracy:.4f}",
            "class     precision  recall  f1      support",
        ]
        for name, report in (("positive", self.positive), ("negative", self.negative)):
            lines.append(
                f"{name:<9} {report.precision:<10.4f} {report.recall:<7.4f} "
                f"{report.f1:<7.4f} {report.support}"
            )
        lines.append(f"in the neutral band: {self.neutral}; unscored (no text): {self.unscored}")
        lines.append(f"texts per second: {self.texts_per_second:,.0f}")
        return lines

    def summary(self) -> str:
        """Return the evaluation on one line (``evaluate`` prints one per language)."""
        return (
            f"{self.total} texts, accuracy {self.accuracy:.4f}, "
            f"F1 positive {self.positive.f1:.4f} / negative {self.negative.f1:.4f}, "
            f"{self.neutral} in the neutral band"
        )


def _report(predicted: Sequence[int | None], actual: Sequence[int], cls: int) -> ClassReport:
    pairs = list(zip(predicted, actual, strict=True))
    true_positive = sum(1 for p, a in pairs if p == cls and a == cls)
    predicted_count = sum(1 for p, _ in pairs if p == cls)
    support = sum(1 for _, a in pairs if a == cls)
    precision = true_positive / predicted_count if predicted_count else 0.0
    recall = true_positive / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ClassReport(precision, recall, f1, support)


def evaluate(
    score_all: Callable[[Sequence[str]], Sequence[tuple[float | None, str]]],
    examples: Sequence[tuple[int, str]],
) -> Evaluation:
    """Evaluate ``score_all`` (texts → ``(score, label)`` pairs) on ``(label, text)`` examples.

    Refuses (ValueError) an empty list of examples.
    """
    return evaluate_by_language(score_all, examples)[0]


def evaluate_by_language(
    score_all: Callable[[Sequence[str]], Sequence[tuple[float | None, str]]],
    examples: Sequence[tuple[int, str]],
) -> tuple[Evaluation, dict[str, Evaluation]]:
    """Evaluate as :func:`evaluate` does, and separately on each language's texts.

    Returns ``(all texts, {language: its texts})`` with the languages in which
    some text is written (``zh``, ``en``; texts with no words are in the first
    only); the texts are scored once (each language's texts/s is the overall rate).
    Refuses (ValueError) an empty list of examples.
    """
    if not examples:
        raise ValueError("there are no labelled examples to evaluate on")
    texts = [text for _, text in examples]
    started = time.perf_counter()
    results = list(score_all(texts))
    elapsed = time.perf_counter() - started
    rate = len(examples) / elapsed if elapsed > 0 else float("inf")
    overall = _evaluation(results, [label for label, _ in examples], rate)
    languages = [detect_language(clean_text(text)) for text in texts]
    per_language: dict[str, Evaluation] = {}
    for language in (CHINESE, ENGLISH):
        mine = [i for i, found in enumerate(languages) if found == language]
        if mine:
            per_language[language] = _evaluation(
                [results[i] for i in mine], [examples[i][0] for i in mine], rate
            )
    return overall, per_language


def _evaluation(
    results: Sequence[tuple[float | None, str]], actual: Sequence[int], rate: float
) -> Evaluation:
    predicted = [None if s is None else int(s >= 0.5) for s, _ in results]
    hits = sum(1 for p, a in zip(predicted, actual, strict=True) if p == a)
    return Evaluation(
        total=len(actual),
        accuracy=hits / len(actual),
        positive=_report(predicted, actual, 1),
        negative=_report(predicted, actual, 0),
        texts_per_second=rate,
        unscored=sum(1 for p in predicted if p is None),
        neutral=sum(1 for _, label in results if label == "neutral"),
    )


BAND_GRID = (0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1)
MAX_CONFIDENT_ERROR = 0.03


def confident_error(
    scores: Sequence[float | None], labels: Sequence[int], band: tuple[float, float]
) -> tuple[float, float]:
    """Return ``(coverage, error)``: the share of texts scored outside ``band``, and how many
    of those are on the wrong side of 0.5 (unscored texts count as not covered)."""
    low, high = band
    confident = [
        (s, y)
        for s, y in zip(scores, labels, strict=True)
        if s is not None and not low <= s <= high
    ]
    wrong = sum(1 for s, y in confident if (s >= 0.5) != (y == 1))
    coverage = len(confident) / len(labels) if labels else 0.0
    return coverage, wrong / len(confident) if confident else 0.0


def choose_band(
    scores: Sequence[float | None],
    labels: Sequence[int],
    max_error: float = MAX_CONFIDENT_ERROR,
) -> tuple[float, float]:
    """Return the narrowest symmetric neutral band of ``BAND_GRID`` whose confident verdicts
    (scores outside it) are wrong at most ``max_error`` of the time; the widest one otherwise.

    This is how ``DEFAULT_NEUTRAL_BAND`` was chosen, on the corpus's frozen dev split.
    """
    for low in BAND_GRID:
        band = (low, round(1 - low, 2))
        if confident_error(scores, labels, band)[1] <= max_error:
            return band
    return (BAND_GRID[-1], round(1 - BAND_GRID[-1], 2))


def read_labelled_csv(
    path: Path, text_column: str = "text"
) -> tuple[list[tuple[int, str]], list[str]]:
    """Read ``label,text`` rows (1/positive, 0/negative); return ``(examples, problems)``.

    Rows with another label, or with undecodable bytes, are skipped and
    described in ``problems``. Refuses (:class:`~.batch.CsvFileError`) a file
    without the columns.
    """
    table = read_csv(path, ("label", text_column))
    examples: list[tuple[int, str]] = []
    problems: list[str] = []
    for index, row in enumerate(table.rows):
        if index in table.problems:
            problems.append(table.problems[index] + "; skipped")
            continue
        label = LABELS.get(row["label"].strip().lower())
        if label is None:
            line = table.lines[index]
            problems.append(f"line {line}: label {row['label'][:20]!r} is not 1 or 0; skipped")
            continue
        examples.append((label, row[text_column]))
    return examples, problems
