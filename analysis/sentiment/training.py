"""Training the organisation's own Chinese model from labelled comments, and rolling back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from .engine import engine_for
from .language import clean_text
from .model import SentimentModel, prepare, train
from .store import ModelStore, normalise_for_model, shipped_counts


def train_model(
    examples: Iterable[tuple[int, str]],
    *,
    instance_path: Path | str,
    source: str = "",
    base_weight: float | None = None,
    activate: bool = True,
) -> SentimentModel:
    """Train a new version from ``(label, text)`` pairs (1 positive, 0 negative) and save it.

    The shipped corpus is mixed in at ``base_weight`` (``None``: the weight
    that does best on a held-out fifth of the examples; ``0``: the
    organisation's comments only). The new version becomes current unless
    ``activate`` is false; this process's engine switches to it at once,
    others within seconds. Texts without a Chinese or Latin character teach
    nothing and are skipped. Refuses (:class:`~.model.ModelError`) data
    without both classes or with labels other than 0 and 1.
    """
    store = ModelStore.for_instance(instance_path)
    prepared = [(label, found) for label, found in prepare(examples, _as_scored) if found]
    base = None if base_weight == 0 else shipped_counts(store.root)
    model = train(prepared, version=store.new_version(), base=base, base_weight=base_weight)
    trained_at = datetime.now(UTC).isoformat(timespec="seconds")
    model = replace(model, meta={**model.meta, "trained_at": trained_at, "source": source})
    store.save(model, activate=activate)
    engine_for(instance_path).reload()
    return model


def _as_scored(text: object) -> str:
    """Prepare a training text exactly as :meth:`SentimentEngine.score` prepares one."""
    return normalise_for_model(clean_text(text))


def rollback_model(instance_path: Path | str, version: str | None = None) -> str | None:
    """Switch to ``version`` (default: the one before the current); return the version in use.

    ``None`` means the shipped model. See :meth:`ModelStore.rollback` for what it refuses.
    """
    current = ModelStore.for_instance(instance_path).rollback(version)
    engine_for(instance_path).reload()
    return current
