"""Training on English comments: the English model learns them, is versioned, rolls back, and
falls back to the shipped one when damaged; Chinese and English parts train independently."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from analysis.sentiment.engine import SentimentEngine, SentimentModelWarning
from analysis.sentiment.evaluation import evaluate
from analysis.sentiment.model import ModelError
from analysis.sentiment.store import ModelStore
from analysis.sentiment.training import MIN_EXAMPLES_PER_LANGUAGE, rollback_model, train_model
from tests.test_sentiment import support_comments


def english_comments(count: int, seed: int = 7) -> list[tuple[int, str]]:
    """Generated labelled English comments in a helpdesk's own jargon (a fibre provider)."""
    who = ["The fibre tech", "Billing", "The NOC", "Tier 2", "The chat desk"]
    good = [
        "lit the ONT first go",
        "zeroed the overage",
        "cut the port over at noon",
        "swapped the SFP in five minutes",
        "routed our static IP same day",
        "cleaned up the VLAN tags",
    ]
    bad = [
        "left the ONT dark",
        "doubled the overage",
        "parked the port at NPAC for weeks",
        "left the SFP flapping",
        "blackholed our static IP",
        "mangled the VLAN tags",
    ]
    rng = random.Random(seed)
    comments = []
    for _ in range(count):
        label = rng.randint(0, 1)
        words = good if label else bad
        comments.append((label, f"{rng.choice(who)} {rng.choice(words)}, {rng.choice(words)}."))
    return comments


def accuracy(engine: SentimentEngine, examples: list[tuple[int, str]]) -> float:
    def score_all(texts):
        return [(r.score, r.label) for r in engine.score_many(texts)]

    return evaluate(score_all, examples).accuracy


def test_english_rows_train_the_english_model_which_rolls_back(tmp_path: Path) -> None:
    comments = english_comments(500, seed=1)
    training, held_out = comments[:400], comments[400:]
    engine = SentimentEngine(tmp_path)
    shipped_version = engine.english_model().version
    assert shipped_version.startswith("shipped-en-")
    before = accuracy(engine, held_out)
    text = held_out[0][1]
    score_before = engine.score(text).score

    trained = train_model(training, instance_path=tmp_path, source="fibre")
    assert trained.chinese is None  # no Chinese comment: Chinese stays as shipped
    assert trained.english is not None
    assert trained.english.meta["examples"] == 400
    assert trained.english.meta["languages"] == ["en"]
    engine.reload()
    assert engine.english_model().version == trained.version
    assert engine.score(text).engine.endswith(f"+{trained.version}")
    assert engine.score(text).score != score_before
    after = accuracy(engine, held_out)
    assert after >= before + 0.1, (before, after)
    assert after >= 0.95
    assert engine.chinese_model().version.startswith("shipped-")
    assert ModelStore.for_instance(tmp_path).path_of(trained.version, "en").exists()
    assert not ModelStore.for_instance(tmp_path).path_of(trained.version).exists()

    assert rollback_model(tmp_path, "shipped") is None
    engine.reload()
    assert engine.english_model().version == shipped_version
    assert engine.score(text).score == score_before
    assert rollback_model(tmp_path, trained.version) == trained.version
    engine.reload()
    assert engine.english_model().version == trained.version


def test_a_mixed_file_trains_both_languages_in_one_version(tmp_path: Path) -> None:
    mixed = support_comments(300, seed=3) + english_comments(300, seed=3)
    random.Random(3).shuffle(mixed)
    trained = train_model(mixed, instance_path=tmp_path, base_weight=0)
    assert trained.chinese is not None and trained.english is not None
    assert trained.chinese.version == trained.english.version == trained.version
    assert trained.chinese.meta["examples"] + trained.english.meta["examples"] == 600
    assert trained.chinese.meta["languages"] == ["zh", "en"]
    engine = SentimentEngine(tmp_path)
    assert engine.chinese_model() == trained.chinese
    assert engine.english_model() == trained.english
    assert accuracy(engine, support_comments(100, seed=30)) >= 0.95
    assert accuracy(engine, english_comments(100, seed=30)) >= 0.95
    [info] = ModelStore.for_instance(tmp_path).versions()
    assert set(info.parts) == {"zh", "en"}


def test_chinese_comments_only_leave_english_as_shipped(tmp_path: Path) -> None:
    engine = SentimentEngine(tmp_path)
    text = "Nobody called me back"
    before = engine.score(text)
    trained = train_model(support_comments(300), instance_path=tmp_path, base_weight=0)
    assert trained.english is None and "en" not in trained.not_trained
    engine.reload()
    assert engine.chinese_model().version == trained.version
    assert engine.english_model().version.startswith("shipped-en-")
    assert engine.score(text) == before


def test_a_language_with_too_few_comments_keeps_its_shipped_model(tmp_path: Path) -> None:
    few = english_comments(MIN_EXAMPLES_PER_LANGUAGE - 1)
    trained = train_model(support_comments(300) + few, instance_path=tmp_path, base_weight=0)
    assert trained.english is None
    assert "fewer than" in trained.not_trained["en"]
    assert any("English: the shipped model stays" in line for line in trained.lines())
    with pytest.raises(ModelError, match="too few comments"):
        train_model(few, instance_path=tmp_path)


def test_a_corrupt_english_model_falls_back_to_the_shipped_one(tmp_path: Path) -> None:
    mixed = support_comments(300, seed=4) + english_comments(300, seed=4)
    trained = train_model(mixed, instance_path=tmp_path, base_weight=0)
    store = ModelStore.for_instance(tmp_path)
    store.path_of(trained.version, "en").write_bytes(b"\x1f\x8b not really gzip")
    engine = SentimentEngine(tmp_path)
    with pytest.warns(SentimentModelWarning, match="English sentiment model .* shipped model"):
        result = engine.score("Nobody called me back, still not fixed.")
    assert "+shipped-en-" in result.engine
    assert result.label == "negative"
    # The Chinese part of the same version is intact and stays in use.
    assert engine.score("售后推来推去，乱收费").engine == f"closedloop-nb:{trained.version}"


def test_a_missing_english_part_is_reported_not_taken_for_chinese_only(tmp_path: Path) -> None:
    mixed = support_comments(300, seed=5) + english_comments(300, seed=5)
    trained = train_model(mixed, instance_path=tmp_path, base_weight=0)
    store = ModelStore.for_instance(tmp_path)
    store.path_of(trained.version, "en").unlink()
    with pytest.raises(ModelError, match="missing"):
        store.load_part(trained.version, "en")
    with pytest.warns(SentimentModelWarning, match="missing"):
        assert SentimentEngine(tmp_path).english_model().version.startswith("shipped-en-")


def write_csv(path: Path, rows: list[tuple[object, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "text"])
        writer.writerows(rows)
    return path


def test_cli_trains_both_languages_reports_bad_rows_and_evaluates_per_language(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    rows: list[tuple[object, str]] = [*support_comments(300, seed=6)]
    rows += [*english_comments(300, seed=6)]
    rows += [("maybe", "Tier 2 swapped the SFP."), (1, "👍👍")]
    training = write_csv(tmp_path / "train.csv", rows)
    with training.open("ab") as handle:
        handle.write(b"0,\xff\xfe broken\n")
    held_out = write_csv(
        tmp_path / "held_out.csv",
        [*support_comments(60, seed=60), *english_comments(40, seed=60)],
    )

    result = runner.invoke(args=["sentiment", "train", "--csv", str(training)])
    assert result.exit_code == 0, result.output
    assert "line 602: label 'maybe' is not 1 or 0; skipped" in result.output
    assert "line 604: not valid UTF-8" in result.output
    assert "Chinese: trained on 300 comments" in result.output
    assert "English: trained on 300 comments" in result.output
    assert "1 texts without words were left out." in result.output
    version = ModelStore.for_instance(app.instance_path).current_version()
    assert version is not None

    result = runner.invoke(args=["sentiment", "models"])
    assert result.exit_code == 0
    assert f"* {version}" in result.output
    assert "zh 300 comments" in result.output and "en 300 comments" in result.output

    result = runner.invoke(args=["sentiment", "evaluate", "--csv", str(held_out)])
    assert result.exit_code == 0, result.output
    assert f"model: {version} (Chinese), {version} (English)" in result.output
    assert "texts: 100" in result.output
    assert "Chinese (zh): 60 texts, accuracy 1.0000" in result.output
    assert "English (en): 40 texts, accuracy 1.0000" in result.output
