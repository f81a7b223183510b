"""Training the organisation's own models from labelled comments, and rolling back.

Each comment trains the model of its language (the dominant script, as when
scoring): Chinese comments the Chinese naive Bayes model, English comments
the English model that is added to VADER. Each is mixed with what ships at a
weight picked on a held-out fifth of that language's comments. A language
with too few comments keeps its shipped model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from .engine import Vader, engine_for
from .language import CHINESE, ENGLISH, clean_text, detect_language
from .model import ModelError, SentimentModel, prepare, train, train_english
from .store import (
    ModelStore,
    normalise_for_model,
    prepare_english,
    shipped_counts,
    shipped_english_counts,
    shipped_english_model,
)

MIN_EXAMPLES_PER_LANGUAGE = 20
"""A language with fewer comments (or without both classes) keeps its shipped model."""
LANGUAGE_NAMES = {CHINESE: "Chinese", ENGLISH: "English"}


@dataclass(frozen=True)
class TrainedVersion:
    """A trained version: its model per language learned, and why others were not.

    ``not_trained`` maps a language that had comments but too few (or one
    class only) to the reason; ``skipped`` counts texts with no words.
    """

    version: str
    models: dict[str, SentimentModel]
    not_trained: dict[str, str] = field(default_factory=dict)
    skipped: int = 0

    @property
    def chinese(self) -> SentimentModel | None:
        return self.models.get(CHINESE)

    @property
    def english(self) -> SentimentModel | None:
        return self.models.get(ENGLISH)

    def lines(self, *, active: bool = True) -> list[str]:
        """Return what ``closedloop sentiment train`` prints about the new version."""
        state = "now in use" if active else "saved, not in use"
        lines = [f"Trained version {self.version} ({state})."]
        for language, name in LANGUAGE_NAMES.items():
            model = self.models.get(language)
            if model is None:
                why = self.not_trained.get(language, "no comments in this language")
                lines.append(f"{name}: the shipped model stays ({why}).")
                continue
            meta = model.meta
            detail = f"shipped corpus weight {meta['base_weight']}"
            if language == ENGLISH:
                detail += f", VADER weight {meta['vader_weight']}"
            lines.append(
                f"{name}: trained on {meta['examples']} comments ({meta['positive']} positive, "
                f"{meta['negative']} negative), {detail}."
            )
            if meta.get("held_out_accuracy"):
                held_out = ", ".join(f"{w}: {a:.4f}" for w, a in meta["held_out_accuracy"].items())
                lines.append(f"  held-out accuracy by shipped-corpus weight: {held_out}")
        if self.skipped:
            lines.append(f"{self.skipped} texts without words were left out.")
        return lines


def train_model(
    examples: Iterable[tuple[int, str]],
    *,
    instance_path: Path | str,
    source: str = "",
    base_weight: float | None = None,
    activate: bool = True,
) -> TrainedVersion:
    """Train a new version from ``(label, text)`` pairs (1 positive, 0 negative) and save it.

    Each text trains the model of its language (Chinese or English, by
    dominant script); a language needs ``MIN_EXAMPLES_PER_LANGUAGE`` comments
    of both classes, else it keeps the shipped model. What ships is mixed in
    at ``base_weight`` (``None``: the weight that does best on a held-out
    fifth of that language's comments; ``0``: the organisation's comments
    only). The new version becomes current unless ``activate`` is false; this
    process's engine switches to it at once, others within seconds. Texts
    without a Chinese or Latin letter teach nothing and are skipped. Refuses
    (:class:`~.model.ModelError`) labels other than 0 and 1, and data where no
    language has comments of both classes.
    """
    store = ModelStore.for_instance(instance_path)
    by_language: dict[str, list[tuple[int, str]]] = {CHINESE: [], ENGLISH: []}
    skipped = 0
    for label, text in examples:
        if label not in (0, 1):
            raise ModelError(f"label must be 0 or 1, not {label!r}")
        cleaned = clean_text(text)
        language = detect_language(cleaned)
        if language is None:
            skipped += 1
        else:
            by_language[language].append((label, cleaned))
    trainable, not_trained = _trainable(by_language)
    version = store.new_version()
    models: dict[str, SentimentModel] = {}
    if CHINESE in trainable:
        prepared = [
            (label, found)
            for label, found in prepare(by_language[CHINESE], normalise_for_model)
            if found
        ]
        base = None if base_weight == 0 else shipped_counts(store.root)
        models[CHINESE] = train(prepared, version=version, base=base, base_weight=base_weight)
    if ENGLISH in trainable:
        vader = Vader.get()
        shipped = shipped_english_model(vader.compound)
        models[ENGLISH] = train_english(
            by_language[ENGLISH],
            vader.compound,
            version=version,
            base=None if base_weight == 0 else shipped_english_counts(),
            base_weight=base_weight,
            fallback=(shipped.slope, float(shipped.meta["vader_weight"])),
            normalise=prepare_english,
        )
    trained_at = datetime.now(UTC).isoformat(timespec="seconds")
    languages = sorted(models, key=[CHINESE, ENGLISH].index)
    parts = [
        replace(
            model,
            meta={
                **model.meta,
                "trained_at": trained_at,
                "source": source,
                "languages": languages,
            },
        )
        for model in (models[language] for language in languages)
    ]
    store.save(*parts, activate=activate)
    engine_for(instance_path).reload()
    return TrainedVersion(version, {m.language: m for m in parts}, not_trained, skipped)


def _trainable(
    by_language: dict[str, list[tuple[int, str]]],
) -> tuple[list[str], dict[str, str]]:
    """Return the languages with enough comments of both classes, and why the others lack them."""
    trainable: list[str] = []
    reasons: dict[str, str] = {}
    for language, rows in by_language.items():
        if not rows:
            continue
        labels = [label for label, _ in rows]
        if min(labels.count(0), labels.count(1)) == 0:
            reasons[language] = "needs both positive (1) and negative (0) examples"
        elif len(rows) < MIN_EXAMPLES_PER_LANGUAGE:
            reasons[language] = f"{len(rows)} comments, fewer than {MIN_EXAMPLES_PER_LANGUAGE}"
        else:
            trainable.append(language)
    if not trainable:
        if any("both" in reason for reason in reasons.values()) or not reasons:
            raise ModelError("training needs both positive (1) and negative (0) examples")
        found = ", ".join(
            f"{LANGUAGE_NAMES[language]}: {reason}" for language, reason in reasons.items()
        )
        raise ModelError(f"too few comments to learn from ({found})")
    return trainable, reasons


def rollback_model(instance_path: Path | str, version: str | None = None) -> str | None:
    """Switch to ``version`` (default: the one before the current); return the version in use.

    ``None`` means the shipped models. See :meth:`ModelStore.rollback` for what it refuses.
    """
    current = ModelStore.for_instance(instance_path).rollback(version)
    engine_for(instance_path).reload()
    return current
