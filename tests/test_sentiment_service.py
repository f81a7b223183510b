"""Service feedback read right: the issue's examples, negation, contrast, confidence, the corpus,
bad input, a corrupt model, and self-training that beats the shipped model."""

from __future__ import annotations

import csv
import gzip
import json
import random
import re
import shutil
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from analysis.pipeline import analyse_pending
from analysis.sentiment.engine import (
    DEFAULT_NEUTRAL_BAND,
    SentimentEngine,
    SentimentModelWarning,
)
from analysis.sentiment.evaluation import choose_band, confident_error
from analysis.sentiment.model import contrast_parts, english_features
from analysis.sentiment.store import SERVICE_CORPUS, ModelStore
from analysis.sentiment.training import train_model
from tests.test_analysis_pipeline import respond
from tests.test_sentiment import support_comments


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SentimentEngine:
    """An engine on the shipped models (built once per test process, then shared)."""
    engine = SentimentEngine(tmp_path_factory.mktemp("service-instance"))
    engine.load()
    return engine


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("客服态度很好，响应很快，问题当天就解决了，非常满意！", "positive"),
        ("一次就解决了，省心", "positive"),
        ("Nobody called me back", "negative"),
        ("转了好几个部门，还是没解决", "negative"),
        ("still not fixed", "negative"),
        ("工单关了问题还在", "negative"),
        ("等了一个多小时都没人接，太差了", "negative"),
        ("I had to repeat myself to every agent.", "negative"),
        ("Solved on the first call, thank you!", "positive"),
        ("炒鸡好，一次就搞定", "positive"),
        ("木有人回电话", "negative"),
        ("被转来转去，体验很差。", "negative"),
        ("体验很差", "negative"),
        ("体验很好", "positive"),
    ],
)
def test_service_comments_are_read_right(engine: SentimentEngine, text: str, label: str) -> None:
    assert engine.score(text).label == label


@pytest.mark.parametrize(
    ("negated", "plain"),
    [
        ("问题没有解决", "问题解决了"),
        ("问题未解决", "问题解决了"),
        ("客服没有耐心", "客服很有耐心"),
        ("不满意", "满意"),
        ("It is not fixed.", "It is fixed."),
        ("The agent was not helpful.", "The agent was helpful."),
    ],
)
def test_negation_turns_the_verdict(engine: SentimentEngine, negated: str, plain: str) -> None:
    assert engine.score(negated).score < 0.5 < engine.score(plain).score


def test_a_negation_marks_only_the_words_in_its_scope() -> None:
    found = english_features("nobody called me back. great agent")
    assert {"w:¬called", "w:¬me", "w:¬back"} <= found
    assert "w:called" not in found  # "they called me back" learns nothing from complaints
    assert "w:great" in found and "w:¬great" not in found  # the clause ended


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("虽然客服态度很好，但是问题还是没解决", "negative"),
        ("虽然等了很久，但是问题解决了", "positive"),
        ("The agent was friendly but the problem is still not solved.", "negative"),
        ("It took a while, but they fixed it.", "positive"),
    ],
)
def test_the_clause_after_a_contrast_decides(
    engine: SentimentEngine, text: str, label: str
) -> None:
    assert engine.score(text).label == label


def test_contrast_parts() -> None:
    assert contrast_parts("虽然等了很久，但是问题解决了") == ("虽然等了很久，", "问题解决了")
    assert contrast_parts("although it was slow, they fixed it") == (
        "it was slow",
        "they fixed it",
    )
    assert contrast_parts("不但快而且好") is None  # 不但…而且 is no contrast
    assert contrast_parts("服务很好") is None
    assert contrast_parts("服务很好，但是") is None  # nothing after it
    assert contrast_parts("房间不错，" * 20 + "但是早餐一般") is None  # a long review


def test_choose_band_takes_the_narrowest_band_that_is_rarely_wrong() -> None:
    labels = [1] * 10 + [0] * 10
    # Two confident mistakes at 0.32 and 0.7: only a band past both keeps errors at zero.
    scores = [0.9] * 9 + [0.32] + [0.1] * 9 + [0.7]
    assert choose_band(scores, labels, max_error=0.0) == (0.3, 0.7)
    assert confident_error(scores, labels, (0.3, 0.7)) == (0.9, 0.0)
    assert choose_band(scores, labels, max_error=0.2) == (0.4, 0.6)
    always_wrong = [0.0 if y else 1.0 for y in labels]
    assert choose_band(always_wrong, labels) == (0.1, 0.9)


def test_uncertain_comments_are_neutral_not_a_guess(engine: SentimentEngine) -> None:
    assert DEFAULT_NEUTRAL_BAND == (0.25, 0.75)
    for text in ("已收到", "你好", "知道了", "qwzx plorb"):
        result = engine.score(text)
        assert result.label == "neutral", (text, result)


@pytest.mark.parametrize(
    ("text", "label", "language"),
    [
        ("<p>客服态度<b>很好</b>，问题解决了</p>", "positive", "zh"),
        ("客服 never called me back, very bad", "negative", "en"),
        ("服务很好 but nobody called me back", "negative", "en"),
        ("客服态度很好，问题一次就解决了 thanks", "positive", "zh"),
        ("😀😀😀", "none", None),
        ("", "none", None),
    ],
)
def test_html_mixed_language_and_empty(
    engine: SentimentEngine, text: str, label: str, language: str | None
) -> None:
    result = engine.score(text)
    assert (result.label, result.language) == (label, language)


def test_ten_thousand_characters_get_a_verdict(engine: SentimentEngine) -> None:
    result = engine.score("等了很久也没人回电话。" * 1000)
    assert result.label == "negative"


def test_a_model_file_of_an_unknown_language_falls_back_to_the_shipped_one(
    tmp_path: Path,
) -> None:
    model = train_model(support_comments(300), instance_path=tmp_path, base_weight=0)
    path = ModelStore.for_instance(tmp_path).path_of(model.version)
    data = json.loads(gzip.decompress(path.read_bytes()))
    data["language"] = "xx"
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    with pytest.warns(SentimentModelWarning, match="not known"):
        result = SentimentEngine(tmp_path).score("一次就解决了，省心")
    assert result.engine.startswith("closedloop-nb:shipped-")
    assert result.label == "positive"


def test_the_corpus_is_large_and_split_by_template_family() -> None:
    with SERVICE_CORPUS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with SERVICE_CORPUS.with_name("frozen_test.csv").open(encoding="utf-8") as handle:
        frozen = list(csv.DictReader(handle))
    for lang, least in (("zh", 1000), ("en", 500)):
        mine = [r for r in rows if r["lang"] == lang]
        assert len(mine) >= least
        assert {r["split"] for r in mine} == {"train", "dev"}
        assert {r["label"] for r in mine} == {"0", "1"}
        assert len([r for r in frozen if r["lang"] == lang]) >= 130
    texts = [r["text"] for r in rows]
    assert len(texts) == len(set(texts))
    assert not set(texts) & {r["text"] for r in frozen}
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        if row["source"] != "hand":
            splits_of.setdefault(row["source"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in splits_of.values())
    assert {"train", "dev"} == set().union(*splits_of.values())


def organisation_comments(count: int, seed: int) -> list[tuple[int, str]]:
    """An organisation's comments in its own jargon (a point-of-sale printer maker)."""
    device = ["小票机", "扫码枪", "收银机", "标签机", "钱箱"]
    good = ["出纸顺滑", "秒连蓝牙", "固件升级后稳了", "扫码秒响应", "走纸不跑偏", "热敏头清晰"]
    bad = ["又双叒叕卡纸", "蓝牙老掉线", "固件升级后变砖", "扫码没反应", "走纸跑偏", "打印发白"]
    rng = random.Random(seed)
    comments = []
    for _ in range(count):
        label = rng.randint(0, 1)
        words = good if label else bad
        comments.append((label, f"{rng.choice(device)}{rng.choice(words)}，{rng.choice(words)}"))
    return comments


def test_train_csv_beats_the_shipped_model_on_the_organisations_comments(
    runner: FlaskCliRunner, app: Flask, engine: SentimentEngine, tmp_path: Path
) -> None:
    # The shipped blend's counts, cached by the fixture's engine, spare a rebuild.
    assert engine.store is not None
    if engine.store.root.exists():
        shutil.copytree(engine.store.root, Path(app.instance_path) / "sentiment")
    comments = organisation_comments(700, seed=5)
    training, held_out = tmp_path / "train.csv", tmp_path / "held_out.csv"
    for path, part in ((training, comments[:500]), (held_out, comments[500:])):
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows([("label", "text"), *part])

    def accuracy() -> float:
        result = runner.invoke(args=["sentiment", "evaluate", "--csv", str(held_out)])
        assert result.exit_code == 0, result.output
        found = re.search(r"accuracy: ([0-9.]+)", result.output)
        assert found is not None
        return float(found.group(1))

    before = accuracy()
    result = runner.invoke(args=["sentiment", "train", "--csv", str(training)])
    assert result.exit_code == 0, result.output
    after = accuracy()
    assert after >= before + 0.1, (before, after)
    assert after >= 0.95


def test_train_from_responses_beats_the_shipped_model_on_the_organisations_comments(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    engine: SentimentEngine,
    tmp_path: Path,
) -> None:
    assert engine.store is not None
    if engine.store.root.exists():
        shutil.copytree(engine.store.root, Path(app.instance_path) / "sentiment")
    comments = organisation_comments(360, seed=9)
    held_out = tmp_path / "held_out.csv"
    with held_out.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("label", "text"), *comments[240:]])
    for label, text in comments[:240]:
        respond(client, {"nps": 10 if label else 1, "comment": text})
    analyse_pending()

    def accuracy() -> float:
        result = runner.invoke(args=["sentiment", "evaluate", "--csv", str(held_out)])
        assert result.exit_code == 0, result.output
        found = re.search(r"accuracy: ([0-9.]+)", result.output)
        assert found is not None
        return float(found.group(1))

    before = accuracy()
    result = runner.invoke(args=["sentiment", "train", "--from-responses"])
    assert result.exit_code == 0, result.output
    after = accuracy()
    assert after >= before + 0.1, (before, after)
    assert after >= 0.9


def test_train_from_responses_learns_the_organisations_english_comments(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    from tests.test_sentiment_english_training import english_comments

    comments = english_comments(300, seed=12)
    held_out = tmp_path / "held_out.csv"
    with held_out.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("label", "text"), *comments[200:]])
    for label, text in comments[:200]:
        respond(client, {"nps": 10 if label else 1, "comment": text})
    analyse_pending()

    def english_accuracy() -> float:
        result = runner.invoke(args=["sentiment", "evaluate", "--csv", str(held_out)])
        assert result.exit_code == 0, result.output
        found = re.search(r"English \(en\): 100 texts, accuracy ([0-9.]+)", result.output)
        assert found is not None, result.output
        return float(found.group(1))

    before = english_accuracy()
    result = runner.invoke(args=["sentiment", "train", "--from-responses"])
    assert result.exit_code == 0, result.output
    assert "English: trained on" in result.output
    assert "Chinese: the shipped model stays" in result.output
    after = english_accuracy()
    assert after >= before + 0.1, (before, after)
    assert after >= 0.9
