"""Build ``service.csv`` and ``frozen_test.csv``: the labelled support-feedback corpus.

Run from the project folder (deterministic: same files every time)::

    .venv/bin/python -m analysis.sentiment.corpus.make_corpus

``service.csv`` (``text,label,lang,split,source``) holds

* comments generated from template *families*: each family is one way of
  saying something (praise of a fix, a broken call-back promise, a contrast
  whose second clause decides...), with slots filled from hand-written
  fragment lists. A whole family goes to ``train`` or to ``dev``, never both,
  so near-duplicates cannot leak from training into the frozen dev split.
  Every third fragment of each slot list is kept out of the training families
  (only dev families use it), so dev also holds wording training never saw.
  The fragments and families are in ``zh_fragments.py`` and ``en_fragments.py``;
* the hand-written comments of ``hand_zh.tsv`` / ``hand_en.tsv``: every
  fourth line goes to ``dev``, the rest to ``train``; those of
  ``hand_zh_train.tsv`` / ``hand_en_train.tsv`` (written after the dev split
  was frozen) all go to ``train``.

``frozen_test.csv`` is ``frozen_test_zh.tsv`` / ``frozen_test_en.tsv``:
comments written by hand, produced by no template, used only to report.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

from .en_fragments import EN, EN_FAMILIES
from .zh_fragments import ZH, ZH_FAMILIES

HERE = Path(__file__).resolve().parent
SEED = 13
PER_FAMILY = 40
PER_FAMILY_EN = 32

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
    # Written after the dev split was frozen: training only.
    rows += hand_written(HERE / "hand_zh_train.tsv", "zh", None, split="train")
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
