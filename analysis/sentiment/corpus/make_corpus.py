"""Build ``service.csv`` and ``frozen_test.csv``: the labelled support-feedback corpus.

Run from the project folder (deterministic: same files every time)::

    .venv/bin/python analysis/sentiment/corpus/make_corpus.py

``service.csv`` (``text,label,lang,split,source``) holds

* comments generated from template *families*: each family is one way of
  saying something (praise of a fix, a broken call-back promise, a contrast
  whose second clause decides...), with slots filled from hand-written
  fragment lists. A whole family goes to ``train`` or to ``dev``, never both,
  so near-duplicates cannot leak from training into the frozen dev split.
  Every third fragment of each slot list is kept out of the training families
  (only dev families use it), so dev also holds wording training never saw;
* the hand-written comments of ``hand_zh.tsv`` / ``hand_en.tsv``: every
  fourth line goes to ``dev``, the rest to ``train``.

``frozen_test.csv`` is ``frozen_test_zh.tsv`` / ``frozen_test_en.tsv``:
comments written by hand, produced by no template, used only to report.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 13
PER_FAMILY = 40
PER_FAMILY_EN = 32

# ---------------------------------------------------------------- Chinese fragments
ZH = {
    "who": [
        "客服",
        "工程师",
        "售后",
        "客服小姐姐",
        "技术支持",
        "师傅",
        "专员",
        "人工客服",
        "在线客服",
        "热线",
        "维修师傅",
        "客户经理",
    ],
    "att_good": [
        "态度很好",
        "很耐心",
        "非常专业",
        "讲解得很清楚",
        "说话很客气",
        "很有礼貌",
        "热情周到",
        "服务很贴心",
        "很负责",
        "超有耐心",
        "态度特别好",
        "很细致",
    ],
    "speed_good": [
        "响应很快",
        "回复很及时",
        "几分钟就接通了",
        "秒回",
        "处理效率很高",
        "上门很准时",
        "很快就回电话了",
        "当天就有人联系我",
        "一点没耽误",
        "电话一打就通",
        "跟进很及时",
        "没怎么等",
    ],
    "fixed": [
        "问题当天就解决了",
        "一次就解决了",
        "问题解决了",
        "很快就搞定了",
        "彻底修好了",
        "退款已经到账",
        "一次就搞定",
        "没再出现过问题",
        "问题完美解决",
        "当场就修好了",
        "故障排除了",
        "问题处理好了",
    ],
    "happy": [
        "非常满意",
        "省心",
        "点赞",
        "好评",
        "值得表扬",
        "谢谢",
        "给五星",
        "很靠谱",
        "以后还找你们",
        "体验很好",
        "太感谢了",
        "很放心",
    ],
    "wait": [
        "等了一个多小时",
        "排队半天没人接",
        "电话一直打不通",
        "等了三天没人理",
        "回复太慢了",
        "处理太慢",
        "一直让我等",
        "在线等了四十分钟",
        "拖了一个星期",
        "等到下班也没人来",
        "上门迟到了两个小时",
        "催了好几次",
    ],
    "callback": [
        "说好回电话结果没人回",
        "没人回电话",
        "承诺24小时回复结果没消息",
        "留言了也没人联系我",
        "说好的回访一直没有",
        "答应回电却没下文",
        "一直等回电，等了个寂寞",
        "说会有专人联系，到现在也没有",
        "邮件发了好几封都没人回",
    ],
    "transfer": [
        "转了好几个部门",
        "被踢皮球",
        "被转来转去",
        "每个人都说不归他们管",
        "转了三次人工",
        "客服推给技术，技术又推回来",
        "换了四个人接待",
        "部门之间互相推诿",
        "转接了五六次",
    ],
    "repeat": [
        "每次都要重新说一遍问题",
        "同样的问题讲了五遍",
        "换一个客服就要从头解释",
        "反复描述同一个问题",
        "资料交了三次",
        "一遍遍重复我的订单号",
        "说了好几遍还是没人记录",
        "每次打来都像第一次",
    ],
    "unsolved": [
        "工单关了问题还在",
        "还是没解决",
        "问题根本没解决",
        "说修好了其实还是坏的",
        "到现在还没处理",
        "工单直接被关闭了",
        "问题一直没解决",
        "修了两次还是不行",
        "问题依旧",
        "没两天又坏了",
        "一点进展都没有",
        "什么都没解决",
    ],
    "att_bad": [
        "态度很差",
        "很不耐烦",
        "爱答不理",
        "说话很冲",
        "敷衍了事",
        "一问三不知",
        "不专业",
        "直接挂我电话",
        "冷冰冰的",
        "态度恶劣",
        "答非所问",
        "只会念模板",
    ],
    "angry": [
        "非常失望",
        "太差劲了",
        "再也不会用了",
        "要投诉",
        "气死了",
        "差评",
        "很不满意",
        "浪费时间",
        "无语",
        "太坑了",
        "心累",
        "体验极差",
    ],
    "slang_good": [
        "炒鸡好",
        "8错",
        "棒棒哒",
        "给力",
        "666",
        "杠杠的",
        "赞赞赞",
        "好评如潮",
        "yyds",
        "超赞",
        "很nice",
        "太可了",
    ],
    "slang_bad": [
        "木有人理",
        "坑爹",
        "醉了",
        "服了",
        "无语死了",
        "垃圾",
        "太水了",
        "辣鸡",
        "吐了",
        "呵呵",
        "太烂了",
        "一言难尽",
    ],
    "neg_good": [
        "没有让我等",
        "没有推脱",
        "没有敷衍",
        "没让我重复说明",
        "不用来回跑",
        "没有收额外的费用",
        "没有任何麻烦",
        "不用等",
        "没出现问题",
        "没让我失望",
        "一点都不麻烦",
        "没有拖延",
    ],
    "neg_bad": [
        "没有人联系我",
        "没有解决问题",
        "不负责任",
        "没有任何反馈",
        "不回消息",
        "没有给我解释",
        "未处理",
        "未解决",
        "不专业",
        "不满意",
        "没有跟进",
        "不太满意",
    ],
    "time": [
        "昨天",
        "上周",
        "今天上午",
        "周末",
        "前几天",
        "这次",
        "上个月",
        "刚才",
    ],
    "issue": [
        "宽带断网",
        "账号登录不了",
        "退款",
        "发票",
        "路由器故障",
        "系统报错",
        "订单丢失",
        "打印机卡纸",
        "会员扣费",
        "软件闪退",
        "快递丢件",
        "空调不制冷",
    ],
}

# ---------------------------------------------------------------- English fragments
EN = {
    "who": [
        "the agent",
        "support",
        "the technician",
        "the engineer",
        "your team",
        "the rep",
        "customer service",
        "the help desk",
        "the chat agent",
    ],
    "att_good": [
        "was really friendly",
        "was patient",
        "was very professional",
        "explained everything clearly",
        "was polite and helpful",
        "was super kind",
        "was knowledgeable",
        "really listened",
        "was so helpful",
    ],
    "fixed": [
        "fixed it the same day",
        "solved it on the first call",
        "sorted it out quickly",
        "got it working again",
        "resolved my issue",
        "fixed everything in minutes",
        "had it sorted in no time",
        "resolved it in one go",
        "got my refund through",
    ],
    "happy": [
        "very happy",
        "great service",
        "thank you",
        "much appreciated",
        "five stars",
        "no hassle at all",
        "really impressed",
        "highly recommend",
        "well done",
    ],
    "wait": [
        "waited over an hour",
        "was on hold forever",
        "couldn't get through",
        "waited three days for a reply",
        "had to wait all afternoon",
        "was kept waiting for days",
        "spent 45 minutes on hold",
        "had to chase them twice",
        "waited a week",
    ],
    "callback": [
        "nobody called me back",
        "the promised callback never came",
        "no one got back to me",
        "they never called back",
        "I'm still waiting for the call back",
        "nobody followed up",
        "no one returned my call",
        "my messages went unanswered",
        "never heard back",
    ],
    "transfer": [
        "I got transferred to three departments",
        "I was passed from team to team",
        "they kept transferring me",
        "I was bounced between billing and tech support",
        "every department said it wasn't theirs",
        "I was transferred four times",
        "they passed me around",
        "I got handed off again and again",
        "I was sent in circles",
    ],
    "repeat": [
        "I had to repeat myself every time",
        "I explained the same thing five times",
        "every agent asked the same questions again",
        "I had to start over with each person",
        "I gave my account number again and again",
        "nobody read my previous notes",
        "I told the story four times",
        "I had to explain it all over again",
        "I kept repeating the same details",
    ],
    "unsolved": [
        "it's still not fixed",
        "the ticket was closed but the problem is still there",
        "nothing was resolved",
        "it still doesn't work",
        "the issue came back the next day",
        "they marked it solved but it isn't",
        "the problem is still not solved",
        "it's still broken",
        "my issue remains unresolved",
    ],
    "att_bad": [
        "was rude",
        "was dismissive",
        "didn't care",
        "was impatient",
        "hung up on me",
        "gave me a scripted answer",
        "had no clue",
        "was condescending",
        "ignored what I said",
    ],
    "angry": [
        "very disappointed",
        "terrible service",
        "never again",
        "what a waste of time",
        "so frustrating",
        "unacceptable",
        "really annoyed",
        "awful experience",
        "fed up",
    ],
    "slang_good": [
        "thx",
        "gr8",
        "awesome",
        "tysm",
        "legends",
        "10/10",
        "brill",
        "sooo good",
        "ace",
    ],
    "slang_bad": [
        "smh",
        "ugh",
        "lol no",
        "meh",
        "wtf",
        "ridiculous",
        "pathetic",
        "jeez",
        "seriously?",
    ],
    "issue": [
        "my internet outage",
        "a billing error",
        "my login problem",
        "a broken router",
        "a missing order",
        "my refund",
        "the app crash",
        "a faulty charger",
        "my account lock",
    ],
}

# A family: (id, label, split, templates). Slots are {name}; a train family draws only the
# training part of each fragment list, a dev family draws from all of it.
ZH_FAMILIES = [
    ("zh-praise-full", 1, "train", ["{who}{att_good}，{speed_good}，{fixed}，{happy}！"]),
    ("zh-praise-fix", 1, "train", ["{fixed}，{happy}", "{issue}的问题{fixed}，{happy}"]),
    ("zh-praise-speed", 1, "train", ["{time}报的{issue}，{speed_good}，{happy}"]),
    ("zh-praise-who", 1, "dev", ["{who}{att_good}，{happy}", "感谢{who}，{fixed}"]),
    ("zh-praise-neg", 1, "train", ["{who}{neg_good}，{fixed}", "{neg_good}，{happy}"]),
    ("zh-praise-neg-dev", 1, "dev", ["这次{neg_good}，{who}{att_good}"]),
    ("zh-praise-slang", 1, "train", ["{who}{slang_good}，{fixed}", "{slang_good}！{speed_good}"]),
    ("zh-praise-slang-dev", 1, "dev", ["{fixed}，{slang_good}"]),
    ("zh-contrast-pos", 1, "train", ["虽然{wait}，但是{fixed}，{happy}"]),
    ("zh-contrast-pos-dev", 1, "dev", ["{wait}，不过最后{fixed}，还是{happy}"]),
    (
        "zh-praise-long",
        1,
        "train",
        [
            "{time}{issue}，打电话给{who}，{speed_good}，{who}{att_good}，一步步帮我排查，"
            "最后{fixed}。整个过程{neg_good}，{happy}。"
        ],
    ),
    (
        "zh-praise-long-dev",
        1,
        "dev",
        [
            "说实话本来没抱什么希望，{issue}这种事以前都要折腾很久。这次{who}{att_good}，"
            "{speed_good}，{fixed}，{happy}。"
        ],
    ),
    ("zh-wait", 0, "train", ["{wait}，{angry}", "{issue}的问题{wait}，{angry}"]),
    ("zh-wait-dev", 0, "dev", ["{time}{wait}，到现在{unsolved}"]),
    ("zh-callback", 0, "train", ["{callback}，{angry}", "{time}报的{issue}，{callback}"]),
    ("zh-callback-dev", 0, "dev", ["{callback}，{unsolved}"]),
    ("zh-transfer", 0, "train", ["{transfer}，{unsolved}", "{transfer}，{angry}"]),
    ("zh-transfer-dev", 0, "dev", ["{issue}{transfer}，最后{unsolved}"]),
    ("zh-repeat", 0, "train", ["{repeat}，{angry}", "{repeat}，{unsolved}"]),
    ("zh-repeat-dev", 0, "dev", ["{who}{att_bad}，{repeat}"]),
    ("zh-unsolved", 0, "train", ["{unsolved}，{angry}", "{time}修的{issue}，{unsolved}"]),
    ("zh-unsolved-dev", 0, "dev", ["{unsolved}，{slang_bad}"]),
    ("zh-att", 0, "train", ["{who}{att_bad}，{angry}", "{who}{att_bad}"]),
    ("zh-neg", 0, "train", ["{who}{neg_bad}，{angry}", "{neg_bad}，{unsolved}"]),
    ("zh-neg-dev", 0, "dev", ["{issue}{neg_bad}，{who}{att_bad}"]),
    ("zh-contrast-neg", 0, "train", ["虽然{who}{att_good}，但是{unsolved}"]),
    ("zh-contrast-neg-dev", 0, "dev", ["{who}{att_good}是挺{slang_good}的，可惜{unsolved}"]),
    ("zh-contrast-neg2", 0, "train", ["虽然{speed_good}，但是{unsolved}，{angry}"]),
    ("zh-slang-bad", 0, "train", ["{slang_bad}，{wait}", "{who}{att_bad}，{slang_bad}"]),
    (
        "zh-long-bad",
        0,
        "train",
        [
            "{time}{issue}，联系{who}，{wait}，好不容易接通了，{repeat}，然后{transfer}，"
            "{callback}。{unsolved}，{angry}。"
        ],
    ),
    (
        "zh-long-bad-dev",
        0,
        "dev",
        [
            "这已经是第三次反映{issue}了。{who}{att_bad}，{callback}，{unsolved}。"
            "希望你们认真对待，{angry}。"
        ],
    ),
    ("zh-mixed-good", 1, "train", ["{who} very nice，{fixed}，thanks", "service很好，{fixed}"]),
    ("zh-mixed-bad", 0, "dev", ["{callback}，very bad", "{unsolved}，太差了 not happy"]),
]

EN_FAMILIES = [
    (
        "en-praise",
        1,
        "train",
        ["{who} {att_good} and {fixed}, {happy}.", "{who} {fixed}. {happy}!"],
    ),
    ("en-praise-dev", 1, "dev", ["Contacted {who} about {issue}, they {fixed}. {happy}."]),
    (
        "en-praise-slang",
        1,
        "train",
        ["{who} {fixed} {slang_good}", "{slang_good}, {who} {att_good}"],
    ),
    ("en-contrast-pos", 1, "train", ["I {wait}, but {who} {fixed}. {happy}."]),
    ("en-contrast-pos-dev", 1, "dev", ["Even though I {wait}, {who} {att_good} and {fixed}."]),
    (
        "en-praise-long",
        1,
        "train",
        [
            "I reached out about {issue} and honestly expected the worst. {who} {att_good}, "
            "{fixed} and even checked in afterwards. {happy}."
        ],
    ),
    (
        "en-neg-good",
        1,
        "dev",
        [
            "No waiting, no transfers, {who} {fixed}.",
            "Didn't have to repeat anything, {who} {fixed}.",
        ],
    ),
    ("en-wait", 0, "train", ["I {wait}. {angry}.", "About {issue}: I {wait} and {unsolved}."]),
    ("en-callback", 0, "train", ["{callback}. {angry}.", "Reported {issue}, {callback}."]),
    ("en-callback-dev", 0, "dev", ["{callback} and {unsolved}."]),
    ("en-transfer", 0, "train", ["{transfer} and {unsolved}.", "{transfer}. {angry}."]),
    ("en-transfer-dev", 0, "dev", ["{transfer}, then {callback}."]),
    ("en-repeat", 0, "train", ["{repeat}. {angry}.", "{repeat} and {unsolved}."]),
    ("en-repeat-dev", 0, "dev", ["{who} {att_bad} and {repeat}."]),
    ("en-unsolved", 0, "train", ["{unsolved}. {angry}.", "Called about {issue} and {unsolved}."]),
    ("en-contrast-neg", 0, "train", ["{who} {att_good}, but {unsolved}."]),
    ("en-contrast-neg-dev", 0, "dev", ["Nice people, but {unsolved}. {slang_bad}"]),
    ("en-att", 0, "train", ["{who} {att_bad}. {angry}.", "{who} {att_bad}, {slang_bad}"]),
    (
        "en-long-bad",
        0,
        "train",
        [
            "I contacted you about {issue}. I {wait}, then {transfer}, {repeat}, and {callback}. "
            "{unsolved}. {angry}."
        ],
    ),
    ("en-mixed", 0, "dev", ["{unsolved}, 太失望了", "{callback}，差评"]),
]

_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, slots: dict[str, list[str]], rng: random.Random, dev: bool) -> str:
    def pick(match: re.Match[str]) -> str:
        options = slots[match.group(1)]
        if not dev:
            options = [o for i, o in enumerate(options) if i % 3 != 2]
        return rng.choice(options)

    text = _SLOT.sub(pick, template)
    # Capitalise the first letter of each English sentence.
    return re.sub(r"(^|[.!?] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def generate(families, slots, lang: str, per_family: int) -> list[dict]:
    rows: list[dict] = []
    for family, label, split, templates in families:
        # One generator per family: changing one family never changes another's rows.
        rng = random.Random(f"{SEED}/{family}")
        seen: set[str] = set()
        for attempt in range(per_family * 20):
            if len(seen) >= per_family:
                break
            text = _fill(templates[attempt % len(templates)], slots, rng, split == "dev")
            if text in seen:
                continue
            seen.add(text)
            rows.append(
                {"text": text, "label": label, "lang": lang, "split": split, "source": family}
            )
    return rows


def hand_written(
    path: Path, lang: str, split_every: int | None, split: str = "test"
) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for index, line in enumerate(x for x in handle if x.strip()):
            label, text = line.rstrip("\n").split("\t", 1)
            part = split
            if split_every is not None:
                part = "dev" if index % split_every == split_every - 1 else "train"
            rows.append(
                {"text": text, "label": int(label), "lang": lang, "split": part, "source": "hand"}
            )
    return rows


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["text", "label", "lang", "split", "source"])
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    rows = generate(ZH_FAMILIES, ZH, "zh", PER_FAMILY)
    rows += hand_written(HERE / "hand_zh.tsv", "zh", 4)
    rows += generate(EN_FAMILIES, EN, "en", PER_FAMILY_EN)
    rows += hand_written(HERE / "hand_en.tsv", "en", 4)
    # Written after the dev split was frozen: training only.
    rows += hand_written(HERE / "hand_en_train.tsv", "en", None, split="train")
    # A text that two families happen to produce is kept once, in the first family's split.
    unique: dict[str, dict] = {}
    for row in rows:
        unique.setdefault(row["text"], row)
    write(HERE / "service.csv", list(unique.values()))
    test = hand_written(HERE / "frozen_test_zh.tsv", "zh", None)
    test += hand_written(HERE / "frozen_test_en.tsv", "en", None)
    known = set(unique)
    write(HERE / "frozen_test.csv", [r for r in test if r["text"] not in known])
    for lang in ("zh", "en"):
        for split in ("train", "dev"):
            part = [r for r in unique.values() if r["lang"] == lang and r["split"] == split]
            positive = sum(r["label"] for r in part)
            print(f"{lang} {split}: {len(part)} ({positive} positive)")
        print(f"{lang} test: {sum(1 for r in test if r['lang'] == lang)}")


if __name__ == "__main__":
    main()
