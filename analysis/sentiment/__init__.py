"""Comment sentiment: one interface, :func:`score`, for Chinese and English.

``score(text)`` returns a :class:`SentimentResult` ``(score, label, language,
engine)``. Models load lazily on first use, never at import.
"""

from __future__ import annotations

from .engine import SentimentEngine, SentimentResult, score

__all__ = ["SentimentEngine", "SentimentResult", "score"]
