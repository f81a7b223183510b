"""Sentiment benchmark: snownlp against ClosedLoop's engine, on the same machine and texts.

Run from the project folder:

    .venv/bin/python benchmarks/sentiment_bench.py --data ../shared/data/ChnSentiCorp_htl_all.csv

Also on the service corpus in the repository (``analysis/sentiment/corpus``:
its frozen dev split and the hand-written frozen test set, Chinese and
English): snownlp (Chinese) or VADER alone (English), the former shipped model
(snownlp's corpus only), and the engine; then the neutral band chosen on the
dev split (see :func:`~analysis.sentiment.evaluation.choose_band`) with the
coverage and error of the confident verdicts (after the product reviews, or
alone with ``--service-only`` or without ``--data``).

The labelled file (``label,review`` or ``label,text``; 1 positive, 0
negative) is split 80/20 with a fixed seed. On the held-out 20 % it measures
snownlp one text at a time (``SnowNLP(text).sentiments``), the engine with the
shipped model in one process and through the batch path on every core, then
the engine after training on the 80 % (with the shipped corpus mixed in, and on
the organisation's comments alone). Prints a markdown table.

Last, English self-training: generated comments of a telecom and SaaS helpdesk
(``benchmarks/helpdesk_en.py``, other products and idioms than the corpus),
4 in 5 trained on with 5 % of labels flipped, the rest held out, plus comments
in wording the training part never contains: VADER alone, the shipped English
scorer, the trained one (shipped model mixed in, or own comments only), and
the other learner tried (logistic regression over the same features).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis.sentiment import model as sentiment_model  # noqa: E402
from analysis.sentiment.batch import score_texts  # noqa: E402
from analysis.sentiment.engine import DEFAULT_NEUTRAL_BAND, engine_for  # noqa: E402
from analysis.sentiment.evaluation import choose_band, confident_error  # noqa: E402
from analysis.sentiment.language import clean_text  # noqa: E402
from analysis.sentiment.store import SERVICE_CORPUS, normalise_for_model  # noqa: E402
from analysis.sentiment.training import train_model  # noqa: E402

FROZEN_TEST = SERVICE_CORPUS.with_name("frozen_test.csv")

SEED = 20261122
LOAD_IN_NEW_PROCESS = (
    "import sys; from analysis.sentiment.engine import SentimentEngine; "
    "SentimentEngine(sys.argv[1]).load()"
)


def load(path: Path) -> list[tuple[int, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        column = "text" if "text" in (reader.fieldnames or []) else "review"
        rows = [(int(row["label"]), row[column] or "") for row in reader]
    return [(label, text) for label, text in rows if text.strip()]


def accuracy(scores: Sequence[float | None], examples: list[tuple[int, str]]) -> float:
    hits = sum(
        1
        for s, (label, _) in zip(scores, examples, strict=True)
        if s is not None and (s >= 0.5) == (label == 1)
    )
    return hits / len(examples)


def service_sets() -> dict[str, list[tuple[int, str]]]:
    """The frozen dev split and the frozen test set of the service corpus, per language."""
    sets: dict[str, list[tuple[int, str]]] = {}
    for path, split, name in (
        (SERVICE_CORPUS, "dev", "dev"),
        (FROZEN_TEST, "test", "frozen test"),
    ):
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        for lang in ("zh", "en"):
            sets[f"{lang} {name}"] = [
                (int(r["label"]), r["text"])
                for r in rows
                if r["lang"] == lang and r["split"] == split
            ]
    return sets


def former_shipped_model() -> sentiment_model.SentimentModel:
    """The model shipped before the service corpus: snownlp's corpus only."""
    corpus = sentiment_model.read_corpus(*sentiment_model.shipped_corpus())
    prepared = sentiment_model.prepare(corpus, normalise_for_model)
    return sentiment_model.train(prepared, version="former", base=None)


def service_benchmark(instance: str) -> None:
    """Print accuracy on the service sets, then the neutral band chosen on the dev split."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from snownlp import SnowNLP
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    vader = SentimentIntensityAnalyzer()
    former = former_shipped_model()
    engine = engine_for(instance)
    engine.load()
    sets = service_sets()
    scored: dict[str, list[float | None]] = {}
    print()
    print("| service set | texts | snownlp / VADER alone | former shipped model | ClosedLoop |")
    print("|---|---|---|---|---|")
    for name, examples in sets.items():
        texts = [text for _, text in examples]
        if name.startswith("zh"):
            baseline = [SnowNLP(t).sentiments for t in texts]
            previous = [
                former.calibrated(
                    former.evidence(sentiment_model.features(normalise_for_model(clean_text(t))))
                )
                for t in texts
            ]
        else:
            baseline = [(vader.polarity_scores(t)["compound"] + 1) / 2 for t in texts]
            previous = baseline
        scored[name] = [engine.score(t).score for t in texts]
        print(
            f"| {name} | {len(examples)} | {accuracy(baseline, examples):.1%} | "
            f"{accuracy(previous, examples):.1%} | {accuracy(scored[name], examples):.1%} |"
        )
    dev = [name for name in sets if name.endswith(" dev")]
    band = choose_band(
        [s for name in dev for s in scored[name]],
        [label for name in dev for label, _ in sets[name]],
    )
    print()
    print(
        f"Neutral band chosen on the dev splits (both languages, confident verdicts wrong "
        f"<= 3 %): {band}; the engine's default is {DEFAULT_NEUTRAL_BAND}."
    )
    print()
    print("| service set | confident (outside the band) | of those wrong |")
    print("|---|---|---|")
    for name, examples in sets.items():
        coverage, error = confident_error(scored[name], [y for y, _ in examples], band)
        print(f"| {name} | {coverage:.1%} | {error:.1%} |")


HELPDESK_COMMENTS = 3000
HELPDESK_TRAIN_SHARE = 0.8
HELPDESK_NOISE = 0.05


def english_training_benchmark() -> None:
    """Print what ``train`` does for English: an organisation's own comments (a telecom and
    SaaS helpdesk, ``benchmarks/helpdesk_en.py``) before and after training."""
    from helpdesk_en import flip_labels, helpdesk_comments

    comments = helpdesk_comments(HELPDESK_COMMENTS, seed=SEED, wording="seen")
    cut = int(len(comments) * HELPDESK_TRAIN_SHARE)
    training = flip_labels(comments[:cut], HELPDESK_NOISE, seed=SEED)
    known = {text for _, text in training}
    # The held-out part: the rest, without a text that also appears in training.
    same_wording = [(y, t) for y, t in comments[cut:] if t not in known]
    new_wording = [
        (y, t)
        for y, t in helpdesk_comments(len(comments) - cut, seed=SEED, wording="unseen")
        if t not in known
    ]
    sets = {"same wording": same_wording, "new wording": new_wording}
    rows: list[tuple[str, dict[str, float], str]] = []
    with tempfile.TemporaryDirectory() as instance:
        engine = engine_for(instance)
        scorer = engine.english_scorer()

        def measured(score) -> dict[str, float]:
            return {
                name: accuracy([score(t) for _, t in examples], examples)
                for name, examples in sets.items()
            }

        rows.append(("VADER alone", measured(lambda t: (scorer.compound(t) + 1) / 2), ""))
        rows.append(("ClosedLoop, shipped", measured(lambda t: engine.score(t).score), ""))
        for label, weight in (("ClosedLoop, trained", None), ("trained on own only", 0.0)):
            started = time.perf_counter()
            trained = train_model(training, instance_path=instance, base_weight=weight)
            took = time.perf_counter() - started
            model = trained.english
            assert model is not None and trained.chinese is None
            note = (
                f"{took:.1f} s; shipped weight {model.meta['base_weight']}, "
                f"VADER weight {model.meta['vader_weight']}"
            )
            rows.append((label, measured(lambda t: engine.score(t).score), note))
        regression = logistic_regression(training, scorer.compound)
        rows.append(
            (
                "logistic regression, same features + VADER",
                measured(regression),
                "pure-Python SGD, own comments only (the other learner tried)",
            )
        )
    print()
    print(
        f"English self-training: {len(training)} generated helpdesk comments to train on "
        f"({HELPDESK_NOISE:.0%} of labels flipped, as scores mislabel some comments); "
        f"held out: {len(same_wording)} more in the same wording, {len(new_wording)} "
        "that each use wording the training part never contains."
    )
    print()
    print("| English scorer | same wording | new wording | note |")
    print("|---|---|---|---|")
    for name, scores, note in rows:
        print(f"| {name} | {scores['same wording']:.1%} | {scores['new wording']:.1%} | {note} |")


def logistic_regression(examples: list[tuple[int, str]], compound, epochs: int = 10):
    """Train an L2 logistic regression over the English model's features and VADER's score
    (plain SGD); return a scorer text -> P(positive)."""
    import math

    from analysis.sentiment.model import english_features

    def featurise(text: str) -> set[str]:
        return english_features(clean_text(text).lower())

    data = [(y, featurise(t), compound(t)) for y, t in examples]
    weights: dict[str, float] = {}
    vader_weight, rate, ridge = 0.0, 0.1, 1e-2
    rng = random.Random(SEED)
    for _ in range(epochs):
        rng.shuffle(data)
        for y, found, c in data:
            z = sum(weights.get(f, 0.0) for f in found) + vader_weight * c
            gradient = sentiment_model.sigmoid(z) - y
            for f in found:
                weights[f] = weights.get(f, 0.0) * (1 - rate * ridge) - rate * gradient
            vader_weight -= rate * gradient * c

    def score(text: str) -> float:
        z = sum(weights.get(f, 0.0) for f in featurise(text)) + vader_weight * compound(text)
        return 1 / (1 + math.exp(-max(min(z, 30.0), -30.0)))

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="labelled product reviews (label,review)")
    parser.add_argument("--service-only", action="store_true", help="only the service sets")
    parser.add_argument("--held-out", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=10, help="engine speed: texts × N")
    parser.add_argument("--snownlp-limit", type=int, default=0, help="score only N with snownlp")
    args = parser.parse_args()
    if args.service_only or args.data is None:
        with tempfile.TemporaryDirectory() as instance:
            service_benchmark(instance)
        english_training_benchmark()
        return

    examples = load(args.data)
    random.Random(SEED).shuffle(examples)
    cut = len(examples) - int(len(examples) * args.held_out)
    training, held_out = examples[:cut], examples[cut:]
    texts = [text for _, text in held_out]
    # The engine is timed on the held-out texts several times over: one pass is too short
    # to time a process pool fairly. Accuracy is always that of one pass.
    speed_texts = texts * args.repeat
    rows: list[tuple[str, float, float, str]] = []
    print(f"{len(examples)} texts: {len(training)} to train on, {len(held_out)} held out")
    print(f"engine speed measured on the held-out texts {args.repeat} times over")

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from snownlp import SnowNLP
    snownlp_import = time.perf_counter() - started
    sample = held_out[: args.snownlp_limit] if args.snownlp_limit else held_out
    started = time.perf_counter()
    snow_scores = [SnowNLP(text).sentiments for _, text in sample]
    snow_rate = len(sample) / (time.perf_counter() - started)
    rows.append(
        (
            "snownlp `SnowNLP(t).sentiments`, one at a time",
            accuracy(snow_scores, sample),
            snow_rate,
            "",
        )
    )
    print(f"snownlp done ({snownlp_import:.1f} s to import)", flush=True)

    with tempfile.TemporaryDirectory() as instance:
        started = time.perf_counter()
        engine_for(instance).load()
        first_load = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", LOAD_IN_NEW_PROCESS, instance],
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        cached_load = time.perf_counter() - started

        def measure(label: str, note: str) -> None:
            engine = engine_for(instance)
            single = [r.score for r in engine.score_many(texts)]
            started = time.perf_counter()
            engine.score_many(speed_texts)
            single_rate = len(speed_texts) / (time.perf_counter() - started)
            rows.append((f"{label}, one process", accuracy(single, held_out), single_rate, note))
            started = time.perf_counter()
            batch = score_texts(
                speed_texts, instance_path=instance, neutral_band=DEFAULT_NEUTRAL_BAND
            )
            batch_rate = len(speed_texts) / (time.perf_counter() - started)
            scores = [r.score for r in batch[: len(texts)]]
            cores = f"batch on {os.cpu_count()} cores"
            rows.append((f"{label}, {cores}", accuracy(scores, held_out), batch_rate, note))
            print(f"{label} done", flush=True)

        measure("ClosedLoop, shipped model", "before training")
        started = time.perf_counter()
        model = train_model(training, instance_path=instance, source=args.data.name).chinese
        assert model is not None
        train_time = time.perf_counter() - started
        measure(
            "ClosedLoop, trained",
            f"trained on {len(training)} in {train_time:.0f} s, "
            f"shipped weight {model.meta['base_weight']}",
        )
        train_model(training, instance_path=instance, source=args.data.name, base_weight=0)
        measure("ClosedLoop, trained on own comments only", "shipped weight 0")

    print()
    print(
        f"Held-out texts: {len(held_out)} ({args.held_out:.0%} of {args.data.name}, seed {SEED}); "
        f"machine: {os.cpu_count()} cores."
    )
    print()
    print("| scorer | accuracy | texts/s | × snownlp | note |")
    print("|---|---|---|---|---|")
    for name, acc, rate, note in rows:
        print(f"| {name} | {acc:.1%} | {rate:,.0f} | {rate / snow_rate:.1f}× | {note} |")
    print()
    print(
        f"Load: snownlp import {snownlp_import:.1f} s; engine first use {first_load:.1f} s "
        "(builds and caches the shipped model); a new process, from the cache and with "
        f"Python's start-up, {cached_load:.1f} s."
    )
    with tempfile.TemporaryDirectory() as instance:
        service_benchmark(instance)
    english_training_benchmark()


if __name__ == "__main__":
    main()
