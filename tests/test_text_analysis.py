"""Text analytics: keywords, problem types, score/text contradictions, themes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from analysis.text import keywords as keywords_module
from analysis.text.cleaning import MAX_CHARS, clean_text
from analysis.text.contradictions import (
    HIGH_SCORE_NEGATIVE_COMMENT,
    LOW_SCORE_POSITIVE_COMMENT,
    is_contradiction,
)
from analysis.text.keywords import CANONICAL_FORMS, english_lemma, keywords, stop_words
from analysis.text.problems import (
    ProblemClassifier,
    ProblemType,
    RuleBasedClassifier,
    classify_problem,
)
from analysis.text.themes import ThemeRow, top_themes, top_themes_by

ROOT = Path(__file__).resolve().parents[1]

#: Words that name a part of the service: stop-word lists often drop them, ours must not.
SERVICE_WORDS = frozenset(
    {"响应", "态度", "解决", "等待", "客服", "速度", "专业", "退款", "排队", "回复", "处理"}
    | {"效率", "耐心", "售后", "工单", "投诉", "流程", "政策", "人工", "时间", "沟通"}
    | {"wait", "slow", "response", "reply", "agent", "support", "refund", "ticket"}
    | {"resolve", "attitude", "rude", "process", "policy"}
)

ZH_COMMENTS = {
    "slow": "客服响应太慢了，等了两天都没人回复",
    "attitude": "服务态度很差，说话很不耐烦",
    "unsolved": "问题一直没有解决，重复提交了三次工单",
    "refund": "退款等待了一周还没到账",
    "queue": "人工客服排队太久了",
    "praise": "客服很专业，耐心解答，很快就解决了",
}
EN_COMMENTS = {
    "slow": "I waited three days for a reply from support.",
    "attitude": "The agent was rude and dismissive.",
    "refund": "Still waiting for my refund, the refund policy is confusing.",
    "praise": "Great support, the agent solved my issue quickly. Thanks!",
}

BAD_INPUTS = [
    pytest.param("", id="empty"),
    pytest.param("   \n\t  ", id="whitespace"),
    pytest.param(None, id="none"),
    pytest.param("😀😂👍🙏", id="emoji-only"),
    pytest.param("!!!??? ... ——", id="punctuation-only"),
    pytest.param("12345 678", id="digits-only"),
    pytest.param("<p><br/></p>", id="empty-html"),
    pytest.param("<<<>>>&&&;", id="broken-markup"),
]


# --- keywords ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("comment", "word"),
    [
        (ZH_COMMENTS["slow"], "响应"),
        (ZH_COMMENTS["attitude"], "态度"),
        (ZH_COMMENTS["unsolved"], "解决"),
        (ZH_COMMENTS["refund"], "等待"),
        (ZH_COMMENTS["refund"], "退款"),
        (ZH_COMMENTS["queue"], "排队"),
        (ZH_COMMENTS["praise"], "专业"),
        ("处理速度太慢了", "处理速度"),
        ("速度太慢了", "速度"),
        ("等待时间太长", "等待"),
    ],
)
def test_chinese_keywords_keep_service_words(comment: str, word: str) -> None:
    assert word in keywords(comment)


@pytest.mark.parametrize(
    ("comment", "word"),
    [
        ("客服不理人", "客服"),
        ("人工客服排队太久了", "人工客服"),
        ("在线客服回复很慢", "在线客服"),
        ("工单一直没人处理", "工单"),
        ("响应速度慢", "响应速度"),
    ],
)
def test_user_dictionary_keeps_service_terms_whole(comment: str, word: str) -> None:
    found = keywords(comment)
    assert word in found
    assert not {word[:1], word[1:]} & set(found)


@pytest.mark.parametrize(
    ("comment", "word"),
    [
        ("等了很久才有人回复", "等待"),
        ("排队太久", "等待"),
        ("等了半天没人理", "等待"),
        ("在线客服回复很慢", "慢"),
        ("售后处理速度太慢", "慢"),
    ],
)
def test_ways_of_saying_slow_fold_into_one_keyword(comment: str, word: str) -> None:
    found = keywords(comment)
    assert word in found
    assert not {"很久", "太久", "等了", "很慢", "太慢"} & set(found)


def test_stop_word_file_keeps_service_words() -> None:
    assert not SERVICE_WORDS & stop_words()


@pytest.mark.parametrize("comment", [*ZH_COMMENTS.values(), *EN_COMMENTS.values()])
def test_keywords_drop_stop_words_and_are_short(comment: str) -> None:
    found = keywords(comment)
    assert 0 < len(found) <= 5
    assert not set(found) & stop_words()
    assert all(len(word) >= 2 or word in CANONICAL_FORMS.values() for word in found)


def test_english_keywords_rank_by_frequency_then_order() -> None:
    assert keywords(EN_COMMENTS["refund"], top_n=3) == ["refund", "wait", "policy"]
    assert keywords("The agent was rude and I waited 3 days for a refund") == [
        "agent",
        "rude",
        "wait",
        "day",
        "refund",
    ]


@pytest.mark.parametrize(
    ("word", "lemma"),
    [
        ("tickets", "ticket"),
        ("policies", "policy"),
        ("crashes", "crash"),
        ("waiting", "wait"),
        ("agent's", "agent"),
        ("process", "process"),
        ("status", "status"),
        ("service", "service"),
        ("bus", "bus"),
    ],
)
def test_english_lemma_is_simple(word: str, lemma: str) -> None:
    assert english_lemma(word) == lemma


def test_mixed_language_comment_keeps_both() -> None:
    found = keywords("客服说bug已经修复了, but the APP still crashes", top_n=10)
    assert {"客服", "bug", "app", "crash"} <= set(found)
    assert "the" not in found


def test_keywords_strip_html_first() -> None:
    found = keywords("<p>客服<b>态度</b>很差</p><script>alert('x')</script><a href='x'>退款</a>")
    assert {"客服", "态度", "退款"} <= set(found)
    assert not {"alert", "script", "href", "p", "b"} & set(found)


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_keywords_of_bad_input_are_empty(text: str | None) -> None:
    assert keywords(text) == []


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("客服态度差，等了很久。" * 1000, id="10000-zh"),
        pytest.param("x" * 10_000, id="one-10000-char-word"),
        pytest.param("slow refund " * 900, id="10000-en"),
        pytest.param("好" * 10_000, id="one-character-repeated"),
    ],
)
def test_long_text_is_capped(text: str) -> None:
    started = time.perf_counter()
    found = keywords(text)
    assert len(found) <= 5
    assert all(len(word) <= keywords_module.MAX_WORD_CHARS for word in found)
    assert time.perf_counter() - started < 5


def test_top_n() -> None:
    assert keywords(ZH_COMMENTS["slow"], top_n=0) == []
    assert len(keywords(ZH_COMMENTS["slow"], top_n=2)) == 2
    with pytest.raises(ValueError):
        keywords("slow", top_n=-1)


def test_keywords_are_deterministic() -> None:
    assert {tuple(keywords(ZH_COMMENTS["unsolved"])) for _ in range(5)} == {
        tuple(keywords(ZH_COMMENTS["unsolved"]))
    }


def test_jieba_loads_lazily_and_quietly() -> None:
    script = (
        "import sys\n"
        "from analysis.text.keywords import keywords\n"
        "import analysis.text.contradictions, analysis.text.problems, analysis.text.themes\n"
        "assert 'jieba' not in sys.modules, 'jieba imported at import time'\n"
        "assert 'survey_app' not in sys.modules, 'text analysis must not need the app'\n"
        "assert keywords('the agent was slow') == ['agent', 'slow']\n"
        "assert 'jieba' not in sys.modules, 'jieba loaded for English'\n"
        "print(keywords('客服响应慢'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "客服" in result.stdout
    assert result.stderr == ""


def test_jieba_is_loaded_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    keywords("客服")  # make sure the real model exists, then start from scratch
    loads: list[int] = []
    real_loader = keywords_module._load_chinese_model

    def counting_loader() -> object:
        loads.append(1)
        time.sleep(0.05)  # widen the window in which a second load could start
        return real_loader()

    monkeypatch.setattr(keywords_module, "_model", None)
    monkeypatch.setattr(keywords_module, "_load_chinese_model", counting_loader)
    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(keywords(ZH_COMMENTS["queue"])))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(results) == 8
    assert all(found == results[0] for found in results)


def test_clean_text() -> None:
    assert (
        clean_text("  <b>Slow</b>&nbsp;reply\n\n see https://x.example/a?b=1  ")
        == "Slow reply see"
    )
    assert clean_text("ＡＰＰ闪退") == "APP闪退"
    assert clean_text("I <3 it") == "I <3 it"
    assert len(clean_text("a" * 50_000)) == MAX_CHARS


# --- problem types ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("客服响应太慢了，等了两天都没人回复", ProblemType.SLOW_RESPONSE),
        ("人工客服排队排了一个小时", ProblemType.SLOW_RESPONSE),
        ("I waited three days and nobody replied.", ProblemType.SLOW_RESPONSE),
        ("Support is so slow, I was on hold for an hour", ProblemType.SLOW_RESPONSE),
        ("问题到现在还没解决，软件还是不能用", ProblemType.UNSUITABLE_SOLUTION),
        ("给的方案没用，答非所问", ProblemType.UNSUITABLE_SOLUTION),
        ("The fix didn't work, I had to call again.", ProblemType.UNSUITABLE_SOLUTION),
        ("Useless answer, my issue is still not resolved", ProblemType.UNSUITABLE_SOLUTION),
        ("客服态度很差，说话不耐烦", ProblemType.ATTITUDE),
        ("回答很敷衍，爱答不理的", ProblemType.ATTITUDE),
        ("The agent was rude and condescending.", ProblemType.ATTITUDE),
        ("Terrible attitude from the support person", ProblemType.ATTITUDE),
        ("流程太复杂，转来转去", ProblemType.PROCESS_POLICY),
        ("按规定不给退，政策不合理", ProblemType.PROCESS_POLICY),
        ("Your refund policy makes no sense", ProblemType.PROCESS_POLICY),
        ("I was transferred between departments, too much paperwork", ProblemType.PROCESS_POLICY),
        ("软件一直闪退，登录就报错", ProblemType.PRODUCT_DEFECT),
        ("设备故障，屏幕黑屏", ProblemType.PRODUCT_DEFECT),
        ("The app keeps crashing, it's full of bugs", ProblemType.PRODUCT_DEFECT),
        ("The device is defective and won't start", ProblemType.PRODUCT_DEFECT),
        ("问题反复出现，没有彻底解决", ProblemType.UNSUITABLE_SOLUTION),
        ("客服不够专业，答非所问", ProblemType.UNSUITABLE_SOLUTION),
        ("解决方案不适用", ProblemType.UNSUITABLE_SOLUTION),
        ("Had to explain the problem three times", ProblemType.UNSUITABLE_SOLUTION),
        ("The fix did not work, the issue came back", ProblemType.UNSUITABLE_SOLUTION),
        ("转了好几次人工，太麻烦", ProblemType.PROCESS_POLICY),
        ("电话一直排队，体验很差", ProblemType.SLOW_RESPONSE),
        ("Nobody called me back", ProblemType.SLOW_RESPONSE),
        ("工单提交三天了还没人处理", ProblemType.SLOW_RESPONSE),
        ("工程师说下周才能来", ProblemType.SLOW_RESPONSE),
        ("说好的回电一直没回", ProblemType.SLOW_RESPONSE),
        ("还没等到回复", ProblemType.SLOW_RESPONSE),
        ("I've been on hold for 45 minutes", ProblemType.SLOW_RESPONSE),
        ("They closed my ticket without fixing anything", ProblemType.UNSUITABLE_SOLUTION),
        ("客服直接挂我电话", ProblemType.ATTITUDE),
        ("说话很冲，一点都不客气", ProblemType.ATTITUDE),
        ("The support guy hung up on me", ProblemType.ATTITUDE),
        ("退款需要提供一堆材料，太繁琐", ProblemType.PROCESS_POLICY),
        ("必须找销售才能处理，推来推去", ProblemType.PROCESS_POLICY),
        ("The refund process is way too complicated", ProblemType.PROCESS_POLICY),
        ("系统升级后数据丢失", ProblemType.PRODUCT_DEFECT),
        ("Printer keeps jamming and shows error 0x45", ProblemType.PRODUCT_DEFECT),
        ("价格有点贵", ProblemType.OTHER),
        ("The price is a bit high", ProblemType.OTHER),
    ],
)
def test_problem_type_rules(text: str, expected: ProblemType) -> None:
    assert classify_problem(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        ZH_COMMENTS["praise"],
        EN_COMMENTS["praise"],
        "态度很好，一点也不慢",
        "Not slow at all, and the agent wasn't rude.",
        "There was no wait.",
        "Would buy again!",
        "非常满意，客服响应很快",
        "工程师上门很及时，问题当天就解决了",
        "服务周到，态度热情",
        "没有等待，直接接通人工",
        "流程很清晰，一次就办好了",
        "处理得很专业，没有任何问题",
        "没有任何故障了，谢谢",
        "不用排队，很方便",
        "用不了多久就修好了",
        "三天就解决了",
        "No waiting at all, great service",
        "Fast response and a clear process",
        "Thank you for your help, the process was easy",
        "I was worried it would take long but it didn't",
        "No errors since the update",
    ],
)
def test_praise_and_negated_complaints_are_other(text: str) -> None:
    assert classify_problem(text) is ProblemType.OTHER


@pytest.mark.parametrize("text", [*BAD_INPUTS, pytest.param("慢" * 10_000, id="10000-chars")])
def test_problem_type_of_bad_input_is_defined(text: str | None) -> None:
    assert classify_problem(text) in set(ProblemType)


def test_problem_type_reads_html_text_only() -> None:
    assert classify_problem("<p class='slow'>软件<b>闪退</b></p>") is ProblemType.PRODUCT_DEFECT


def test_sub_scores_break_ties_and_stand_in_for_text() -> None:
    both = "等了三天问题也没解决"  # slow response and unsolved: one rule each
    assert classify_problem(both) is ProblemType.UNSUITABLE_SOLUTION  # by PRIORITY
    assert (
        classify_problem(both, scores={"csat_speed": 1, "csat_effectiveness": 3})
        is ProblemType.SLOW_RESPONSE
    )
    assert classify_problem("", scores={"csat_attitude": 1, "csat_speed": 2}) is (
        ProblemType.ATTITUDE
    )
    assert classify_problem("ok", scores={"csat_speed": 3, "csat_attitude": None}) is (
        ProblemType.OTHER
    )
    assert classify_problem("", scores={"csat_professionalism": 2}) is (
        ProblemType.UNSUITABLE_SOLUTION
    )


def test_rules_explain_themselves() -> None:
    matched = RuleBasedClassifier().explain(ZH_COMMENTS["slow"])
    assert set(matched) == {ProblemType.SLOW_RESPONSE}
    assert "zh-no-reply" in matched[ProblemType.SLOW_RESPONSE]


def test_rule_classifier_is_a_problem_classifier() -> None:
    classifier: ProblemClassifier = RuleBasedClassifier()
    assert classifier.classify("rude") is ProblemType.ATTITUDE


def test_problem_type_values_fit_the_column() -> None:
    assert all(len(problem.value) <= 40 for problem in ProblemType)


# --- contradictions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("nps", "csat", "label", "score", "reason"),
    [
        (10, None, "negative", 0.05, HIGH_SCORE_NEGATIVE_COMMENT),
        (9, 5, "negative", 0.2, HIGH_SCORE_NEGATIVE_COMMENT),
        (None, 5, "negative", 0.1, HIGH_SCORE_NEGATIVE_COMMENT),
        (10, None, "negative", None, HIGH_SCORE_NEGATIVE_COMMENT),
        (0, None, "positive", 0.95, LOW_SCORE_POSITIVE_COMMENT),
        (4, 2, "positive", 0.8, LOW_SCORE_POSITIVE_COMMENT),
        (None, 1, "positive", 0.9, LOW_SCORE_POSITIVE_COMMENT),
    ],
)
def test_contradictions_are_flagged(
    nps: int | None, csat: int | None, label: str, score: float | None, reason: str
) -> None:
    result = is_contradiction(
        nps=nps, csat_overall=csat, sentiment_label=label, sentiment_score=score
    )
    assert result == reason
    assert len(result) <= 200


@pytest.mark.parametrize(
    ("nps", "csat", "label", "score"),
    [
        pytest.param(10, 5, "positive", 0.95, id="promoter-happy"),
        pytest.param(0, 1, "negative", 0.02, id="detractor-angry"),
        pytest.param(10, None, "negative", 0.35, id="mildly-negative"),
        pytest.param(2, None, "positive", 0.7, id="mildly-positive"),
        pytest.param(10, None, "neutral", 0.1, id="neutral-label"),
        pytest.param(10, None, "none", None, id="no-comment"),
        pytest.param(10, None, None, None, id="not-analysed"),
        pytest.param(7, 3, "negative", 0.01, id="passive-scores"),
        pytest.param(10, 1, "negative", 0.01, id="scores-disagree"),
        pytest.param(None, None, "negative", 0.01, id="no-scores"),
    ],
)
def test_consistent_or_unclear_responses_are_not_flagged(
    nps: int | None, csat: int | None, label: str | None, score: float | None
) -> None:
    assert (
        is_contradiction(nps=nps, csat_overall=csat, sentiment_label=label, sentiment_score=score)
        is None
    )


@pytest.mark.parametrize(
    ("nps", "csat", "score"), [(11, None, 0.5), (-1, None, 0.5), (None, 0, 0.5), (5, 3, 1.5)]
)
def test_contradiction_refuses_values_out_of_range(
    nps: int | None, csat: int | None, score: float
) -> None:
    with pytest.raises(ValueError):
        is_contradiction(
            nps=nps, csat_overall=csat, sentiment_label="neutral", sentiment_score=score
        )


# --- themes -----------------------------------------------------------------


def _row(response_id: int, words: str, label: str, comment: str | None = None) -> ThemeRow:
    return ThemeRow(response_id, comment or f"comment {response_id}", words.split(), label)


def test_themes_count_negative_share_and_order() -> None:
    rows = [
        _row(1, "客服 等待", "negative"),
        _row(2, "客服 退款", "positive"),
        _row(3, "等待 客服 客服", "negative"),  # a repeated keyword counts once
        _row(4, "退款", "neutral"),
        _row(5, "态度", "negative"),
        ThemeRow(6, "no keywords yet", None, "negative"),
    ]
    themes = top_themes(rows)
    assert [(t.keyword, t.count, t.negative_count) for t in themes] == [
        ("客服", 3, 2),
        ("等待", 2, 2),
        ("退款", 2, 0),
        ("态度", 1, 1),
    ]
    assert themes[0].negative_share == pytest.approx(2 / 3)
    assert themes[2].negative_share == 0
    assert [t.keyword for t in top_themes(rows, top_n=2)] == ["客服", "等待"]
    assert top_themes(rows, top_n=0) == []


def test_theme_ties_order_by_keyword() -> None:
    rows = [_row(1, "b a c", "neutral"), _row(2, "c b a", "neutral")]
    assert [t.keyword for t in top_themes(rows)] == ["a", "b", "c"]


def test_theme_examples_prefer_negative_and_are_distinct() -> None:
    rows = [
        _row(1, "客服", "positive", "客服很好"),
        _row(2, "客服", "negative", "客服太慢"),
        _row(3, "客服", "neutral", "客服还行"),
        _row(4, "客服", "negative", "客服太慢"),  # same text: shown once
        _row(5, "客服", "negative", "客服不理人"),
        _row(6, "客服", "positive", "   "),  # blank comment: never an example
    ]
    (theme,) = top_themes(rows)
    assert theme.count == 6
    assert [(e.response_id, e.comment, e.negative) for e in theme.examples] == [
        (2, "客服太慢", True),
        (5, "客服不理人", True),
        (1, "客服很好", False),
    ]
    assert len(top_themes(rows, examples=1)[0].examples) == 1


def test_themes_per_segment() -> None:
    pairs = [
        ("billing", _row(1, "退款 等待", "negative")),
        ("hardware", _row(2, "故障", "negative")),
        ("billing", _row(3, "退款", "positive")),
    ]
    by_team = top_themes_by(pairs, top_n=1)
    assert list(by_team) == ["billing", "hardware"]
    (refund,) = by_team["billing"]
    assert (refund.keyword, refund.count, refund.negative_share) == ("退款", 2, 0.5)
    assert asdict(refund)["negative_share"] == 0.5
    assert top_themes_by([]) == {}
    with pytest.raises(ValueError):
        top_themes_by([], examples=-1)


def test_themes_of_nothing() -> None:
    assert top_themes([]) == []
    with pytest.raises(ValueError):
        top_themes([], top_n=-1)


def test_themes_from_real_keywords() -> None:
    comments = [
        (ZH_COMMENTS["slow"], "negative"),
        (ZH_COMMENTS["queue"], "negative"),
        (ZH_COMMENTS["attitude"], "negative"),
        (ZH_COMMENTS["praise"], "positive"),
        ("客服回复太慢", "negative"),
    ]
    rows = [
        ThemeRow(i, text, keywords(text), label) for i, (text, label) in enumerate(comments, 1)
    ]
    top = top_themes(rows, top_n=3)
    assert top[0].keyword == "客服"
    assert top[0].count == 3
    assert top[0].negative_count == 2
    assert top[0].examples[0].negative
