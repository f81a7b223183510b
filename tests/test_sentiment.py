"""The sentiment engine: languages, bad input, training, versions, fallbacks, lazy loading."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from analysis.sentiment import engine as sentiment_engine
from analysis.sentiment.engine import (
    DEFAULT_NEUTRAL_BAND,
    SentimentEngine,
    SentimentModelWarning,
    label_for,
    validate_band,
)
from analysis.sentiment.evaluation import evaluate
from analysis.sentiment.language import MAX_CHARS, clean_text, detect_language
from analysis.sentiment.model import BASE_WEIGHTS, ModelError, features
from analysis.sentiment.store import ModelStore
from analysis.sentiment.training import rollback_model, train_model

PROJECT = Path(__file__).resolve().parent.parent

POSITIVE_ZH = [
    "服务态度很好，非常满意",
    "工程师很专业，问题很快就解决了",
    "非常感谢，速度很快",
]
NEGATIVE_ZH = [
    "服务很差",
    "太失望了，等了三天都没人回复",
    "态度恶劣，再也不会用了",
    "客服一直敷衍，问题到现在也没解决",
]
NEUTRAL_ZH = ["已收到", "你好", "知道了"]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> SentimentEngine:
    """An engine on the shipped model (built once per test process, then shared)."""
    engine = SentimentEngine(tmp_path_factory.mktemp("sentiment-instance"))
    engine.load()
    return engine


def support_comments(count: int, seed: int = 7) -> list[tuple[int, str]]:
    """Generated labelled support comments in a vocabulary of their own."""
    who = ["客服", "工程师", "售后", "技术支持", "热线"]
    good = ["很耐心", "回复及时", "一次就修好了", "讲解清楚", "上门准时", "非常靠谱"]
    bad = ["推来推去", "一直占线", "修了三次还坏", "答非所问", "迟迟不上门", "乱收费"]
    rng = random.Random(seed)
    comments = []
    for _ in range(count):
        label = rng.randint(0, 1)
        words = good if label else bad
        comments.append((label, f"{rng.choice(who)}{rng.choice(words)}，{rng.choice(words)}"))
    return comments


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("服务很好", "zh"),
        ("Great service", "en"),
        ("服务很好 but the app crashed again", "en"),
        ("服务很好，就是 app 有点卡", "zh"),
        ("😀😀😀", None),
        ("12345 !!!", None),
        ("", None),
    ],
)
def test_language_is_the_dominant_script(text: str, language: str | None) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("<p>服务<b>很差</b></p>", "服务 很差"),
        ("  good\n\t service  ", "good service"),
        ("a &amp; b", "a & b"),
        (None, ""),
        (42, ""),
        ("bad \ud800 surrogate", "bad \ufffd surrogate"),
    ],
)
def test_clean_text(raw: object, cleaned: str) -> None:
    assert clean_text(raw) == cleaned


def test_long_text_is_cut() -> None:
    assert len(clean_text("好" * 10_000)) == MAX_CHARS


def test_negation_is_a_feature() -> None:
    found = features("没有问题")
    assert "没有" in found
    assert "¬问题" in found
    assert "¬满意" in features("不太满意")


def test_an_ngram_ending_in_a_degree_adverb_is_not_a_feature() -> None:
    """体验很 stands for 体验很好 in training: it must not make 体验很差 praise."""
    found = features("体验很差")
    assert {"体验", "很差", "验很差"} <= found
    assert not {"体验很", "验很"} & found


@pytest.mark.parametrize("text", POSITIVE_ZH)
def test_chinese_positive(shipped: SentimentEngine, text: str) -> None:
    result = shipped.score(text)
    assert result.label == "positive"
    assert result.language == "zh"
    assert result.engine.startswith("closedloop-nb:shipped-")


@pytest.mark.parametrize("text", NEGATIVE_ZH)
def test_chinese_negative(shipped: SentimentEngine, text: str) -> None:
    assert shipped.score(text).label == "negative"


@pytest.mark.parametrize("text", NEUTRAL_ZH)
def test_chinese_neutral(shipped: SentimentEngine, text: str) -> None:
    result = shipped.score(text)
    assert result.label == "neutral"
    low, high = DEFAULT_NEUTRAL_BAND
    assert low <= result.score <= high


def test_negation_changes_the_score(shipped: SentimentEngine) -> None:
    assert shipped.score("不满意").score < shipped.score("满意").score
    assert shipped.score("没有问题").score > shipped.score("有问题").score


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [("服務態度很好，非常滿意", "服务态度很好，非常满意"), ("服務很差", "服务很差")],
)
def test_traditional_scores_as_simplified(
    shipped: SentimentEngine, traditional: str, simplified: str
) -> None:
    assert shipped.score(traditional) == shipped.score(simplified)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("The delivery was fast and the staff were great", "positive"),
        ("Terrible support, I am very disappointed", "negative"),
        ("I called on Tuesday", "neutral"),
    ],
)
def test_english(shipped: SentimentEngine, text: str, label: str) -> None:
    result = shipped.score(text)
    assert (result.label, result.language) == (label, "en")
    assert result.engine.startswith("vader-")


def test_mixed_text_follows_the_dominant_script(shipped: SentimentEngine) -> None:
    assert shipped.score("客服很好，谢谢 thanks").language == "zh"
    english = shipped.score("The engineer was great and very patient 很好")
    assert (english.language, english.label) == ("en", "positive")


@pytest.mark.parametrize("text", ["", "   \n\t", "😀😀😀", "👍", None, "12345", "<br><br>"])
def test_no_words_means_label_none(shipped: SentimentEngine, text: object) -> None:
    assert tuple(shipped.score(text)) == (None, "none", None, "none")


@pytest.mark.parametrize(
    "text",
    [
        "服务很差" * 2_500,
        "<div onclick='x'>客服<b>态度恶劣</b>&nbsp;再也不会用了</div>",
        "Great 服务 " * 1_000,
        "x" * 10_000,
    ],
)
def test_odd_input_gets_a_defined_result(shipped: SentimentEngine, text: str) -> None:
    result = shipped.score(text)
    assert result.label in {"positive", "neutral", "negative"}
    assert 0.0 <= result.score <= 1.0


def test_html_is_read_as_text(shipped: SentimentEngine) -> None:
    assert shipped.score("<p>服务<b>很差</b></p>").label == "negative"


def test_neutral_band_is_configurable(shipped: SentimentEngine) -> None:
    text = POSITIVE_ZH[0]
    assert shipped.score(text).label == "positive"
    assert shipped.score(text, (0.0, 1.0)).label == "neutral"
    assert label_for(0.5, (0.5, 0.5)) == "neutral"
    assert label_for(0.49, (0.5, 0.5)) == "negative"


@pytest.mark.parametrize("band", [(0.7, 0.3), (-0.1, 0.5), (0.4,), "ab", None])
def test_bad_neutral_band_is_refused(band: object) -> None:
    with pytest.raises(ValueError, match="neutral band"):
        validate_band(band)


def test_app_config_sets_the_band(make_app, tmp_path: Path) -> None:
    app = make_app(SENTIMENT_NEUTRAL_BAND=[0.0, 1.0])
    with app.app_context():
        result = sentiment_engine.score(POSITIVE_ZH[0])
    assert result.label == "neutral"
    assert result.language == "zh"


def test_train_save_load_evaluate_round_trip(tmp_path: Path) -> None:
    comments = support_comments(400)
    training, held_out = comments[:300], comments[300:]
    trained = train_model(training, instance_path=tmp_path, source="generated", base_weight=0)
    model = trained.chinese
    assert model is not None and trained.english is None  # no English comment: English as shipped
    store = ModelStore.for_instance(tmp_path)
    assert store.current_version() == model.version
    assert store.load(model.version) == model
    assert [info.version for info in store.versions()] == [model.version]
    assert model.meta["examples"] == 300
    assert model.meta["source"] == "generated"

    fresh = SentimentEngine(tmp_path)
    assert fresh.chinese_model() == model
    result = evaluate(
        lambda texts: [(r.score, r.label) for r in fresh.score_many(texts)], held_out
    )
    assert result.accuracy >= 0.95
    assert result.positive.f1 >= 0.95 and result.negative.f1 >= 0.95
    assert result.unscored == 0
    assert fresh.score("售后推来推去，乱收费").engine == f"closedloop-nb:{model.version}"


@pytest.mark.slow
def test_training_beats_the_shipped_model_on_its_own_vocabulary(
    shipped: SentimentEngine, tmp_path: Path
) -> None:
    comments = support_comments(600, seed=11)
    training, held_out = comments[:400], comments[400:]

    def accuracy_of(engine: SentimentEngine) -> float:
        return evaluate(
            lambda texts: [(r.score, r.label) for r in engine.score_many(texts)], held_out
        ).accuracy

    before = accuracy_of(shipped)
    assert shipped.store is not None
    # The shipped corpus's counts, cached by the fixture, spare a rebuild (the fixture
    # writes no cache when an earlier test of this process built the shipped model).
    if shipped.store.root.exists():
        shutil.copytree(shipped.store.root, tmp_path / "sentiment")
    model = train_model(training, instance_path=tmp_path).chinese
    assert model is not None
    assert model.meta["base_weight"] in BASE_WEIGHTS
    after = accuracy_of(SentimentEngine(tmp_path))
    assert after > before
    assert after >= 0.95


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ([(1, "很好"), (1, "不错")], "both positive"),
        ([(1, "很好"), (2, "不错")], "0 or 1"),
    ],
)
def test_training_refuses_bad_data(tmp_path: Path, examples, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        train_model(examples, instance_path=tmp_path, base_weight=0)


@pytest.mark.parametrize(("version", "readable"), [(1, True), (2, True), (0, False), (3, False)])
def test_models_of_older_features_still_load(version: int, readable: bool) -> None:
    """A model trained before n-grams ending in a degree adverb were dropped (version 1)
    reads as before: its weights for them are simply never used."""
    from analysis.sentiment.naive_bayes import SentimentModel

    data = SentimentModel(version="v", weights={"体验很": 3.0, "很差": -3.0}).to_json()
    data["feature_version"] = version
    if not readable:
        with pytest.raises(ModelError, match="another version"):
            SentimentModel.from_json(data)
        return
    model = SentimentModel.from_json(data)
    assert model.probability("体验很差") < 0.5


def test_rollback(tmp_path: Path) -> None:
    first = train_model(support_comments(300, seed=1), instance_path=tmp_path, base_weight=0)
    second = train_model(support_comments(300, seed=2), instance_path=tmp_path, base_weight=0)
    engine = sentiment_engine.engine_for(tmp_path)
    assert engine.chinese_model().version == second.version
    assert rollback_model(tmp_path) == first.version
    assert engine.chinese_model().version == first.version
    assert rollback_model(tmp_path, second.version) == second.version
    assert rollback_model(tmp_path, "shipped") is None
    assert engine.chinese_model().version.startswith("shipped-")
    with pytest.raises(ModelError, match="nothing to roll back"):
        rollback_model(tmp_path)
    with pytest.raises(ModelError, match="no such version"):
        rollback_model(tmp_path, "20990101-000000")


def test_corrupt_model_falls_back_to_the_shipped_one(tmp_path: Path) -> None:
    model = train_model(support_comments(300), instance_path=tmp_path, base_weight=0)
    store = ModelStore.for_instance(tmp_path)
    store.path_of(model.version).write_bytes(b"\x1f\x8b not really gzip")
    with pytest.warns(SentimentModelWarning, match="shipped model"):
        result = SentimentEngine(tmp_path).score("服务很差")
    assert result.engine.startswith("closedloop-nb:shipped-")
    assert result.label == "negative"


def test_missing_model_falls_back_to_the_shipped_one(tmp_path: Path) -> None:
    model = train_model(support_comments(300), instance_path=tmp_path, base_weight=0)
    ModelStore.for_instance(tmp_path).path_of(model.version).unlink()
    with pytest.warns(SentimentModelWarning, match="missing"):
        assert SentimentEngine(tmp_path).chinese_model().version.startswith("shipped-")


def test_garbled_pointer_falls_back_to_the_shipped_one(tmp_path: Path) -> None:
    store = ModelStore.for_instance(tmp_path)
    store.root.mkdir(parents=True)
    store.pointer.write_text("../../etc/passwd\n", encoding="utf-8")
    with pytest.warns(SentimentModelWarning):
        assert SentimentEngine(tmp_path).chinese_model().version.startswith("shipped-")


def test_scoring_threads_see_one_whole_model_while_it_switches(tmp_path: Path) -> None:
    train_model(support_comments(300, seed=1), instance_path=tmp_path, base_weight=0)
    engine = SentimentEngine(tmp_path)
    versions: set[str] = set()
    errors: list[BaseException] = []

    def score_many() -> None:
        try:
            for _ in range(200):
                versions.add(engine.score("售后推来推去，乱收费").engine)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=score_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    second = train_model(support_comments(300, seed=2), instance_path=tmp_path, base_weight=0)
    engine.reload()
    for thread in threads:
        thread.join()
    assert not errors
    assert engine.chinese_model().version == second.version
    assert all(v.startswith("closedloop-nb:") for v in versions)


def test_importing_the_app_loads_no_model() -> None:
    # Nor the statistics, chart and spreadsheet libraries: each loads on first use.
    code = (
        "import sys\n"
        "from survey_app import create_app\n"
        "app = create_app({'TESTING': True, 'SECRET_KEY': 't', 'DATABASE_URL': 'sqlite://'})\n"
        "assert 'sentiment' in app.cli.commands\n"
        "import analysis.sentiment\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('snownlp', 'opencc', 'vaderSentiment', 'jieba', 'numpy', 'scipy', 'plotly', "
        "'openpyxl')]\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_training_reads_text_as_scoring_does(tmp_path: Path) -> None:
    comments = support_comments(300)
    odd = [(1, None), (0, "<p>😀</p>"), (1, "<b>工程师</b>很耐心&nbsp;回复及时")]
    trained = train_model(comments + odd, instance_path=tmp_path, base_weight=0)  # type: ignore[arg-type]
    model = trained.chinese
    assert model is not None
    assert trained.skipped == 2
    assert model.meta["examples"] == 301
    assert "工程" in model.weights
    assert not any(feature.startswith("w:nbsp") for feature in model.weights)
