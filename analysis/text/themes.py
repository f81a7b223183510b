"""Pain-point themes: the keywords many comments share, with how negative they are.

:func:`top_themes` is pure: the caller selects the responses of one segment
and period (team, channel, product line ... and a date range) and passes one
:class:`ThemeRow` per response; the same function serves the dashboard, the
API and the Excel report.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

#: How many example comments a theme carries.
EXAMPLES_PER_THEME = 3


@dataclass(frozen=True)
class ThemeRow:
    """One analysed response: its id, comment, keywords and sentiment label."""

    response_id: int
    comment: str | None
    keywords: Iterable[str] | None
    sentiment_label: str | None


@dataclass(frozen=True)
class ThemeExample:
    response_id: int
    comment: str
    negative: bool


@dataclass(frozen=True)
class Theme:
    """A keyword and the responses that mention it."""

    keyword: str
    #: Responses whose keywords include this one (each response counts once).
    count: int
    #: Of those, responses whose comment is labelled negative.
    negative_count: int
    #: ``negative_count / count``, 0..1 (a field, so ``dataclasses.asdict`` has it).
    negative_share: float
    examples: tuple[ThemeExample, ...] = field(default=())


@dataclass
class _Tally:
    count: int = 0
    negative_count: int = 0
    negative_examples: list[ThemeExample] = field(default_factory=list)
    other_examples: list[ThemeExample] = field(default_factory=list)
    seen_comments: set[str] = field(default_factory=set)


def top_themes(
    rows: Iterable[ThemeRow], top_n: int = 10, *, examples: int = EXAMPLES_PER_THEME
) -> list[Theme]:
    """Return the ``top_n`` most mentioned keywords as :class:`Theme` objects.

    Themes are ordered by count, then negative count (both descending), then
    keyword, so equal inputs give equal output. Each theme carries up to
    ``examples`` distinct comments, negative ones first, each group in the order
    of ``rows`` (pass the newest first to show recent examples). Rows without
    keywords are skipped; a keyword repeated in one row counts once. Raises
    ``ValueError`` for a negative ``top_n`` or ``examples``.
    """
    if top_n < 0 or examples < 0:
        raise ValueError("top_n and examples must not be negative")
    tallies: dict[str, _Tally] = {}
    for row in rows:
        negative = row.sentiment_label == "negative"
        comment = (row.comment or "").strip()
        for keyword in dict.fromkeys(row.keywords or ()):
            tally = tallies.setdefault(keyword, _Tally())
            tally.count += 1
            tally.negative_count += negative
            if comment and comment not in tally.seen_comments:
                # Keep only as many as could be shown: memory stays bounded.
                bucket = tally.negative_examples if negative else tally.other_examples
                if len(bucket) < examples:
                    bucket.append(ThemeExample(row.response_id, comment, negative))
                    tally.seen_comments.add(comment)

    ranked = sorted(
        tallies.items(), key=lambda item: (-item[1].count, -item[1].negative_count, item[0])
    )
    return [
        Theme(
            keyword=keyword,
            count=tally.count,
            negative_count=tally.negative_count,
            negative_share=tally.negative_count / tally.count,
            examples=tuple((tally.negative_examples + tally.other_examples)[:examples]),
        )
        for keyword, tally in ranked[:top_n]
    ]


def top_themes_by(
    rows: Iterable[tuple[K, ThemeRow]], top_n: int = 10, *, examples: int = EXAMPLES_PER_THEME
) -> dict[K, list[Theme]]:
    """Return :func:`top_themes` per segment or period, from ``(key, row)`` pairs.

    The key is whatever the caller groups by (a team, a product line, the first
    day of a week ...); keys appear in the order first seen. Raises
    ``ValueError`` for a negative ``top_n`` or ``examples``.
    """
    if top_n < 0 or examples < 0:
        raise ValueError("top_n and examples must not be negative")
    groups: dict[K, list[ThemeRow]] = {}
    for key, row in rows:
        groups.setdefault(key, []).append(row)
    return {key: top_themes(group, top_n, examples=examples) for key, group in groups.items()}
