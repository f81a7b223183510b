"""The keywords of each response as rows, so themes are one SQL ``GROUP BY keyword``.

``survey_response.keywords`` keeps the ordered list for display; this table
repeats it normalised: one row per (response, keyword), indexed by keyword.
:mod:`analysis.pipeline` replaces a response's rows whenever it analyses or
rescores the response; the migration that created the table filled it from
the responses already analysed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Float, ForeignKey, Index, String, delete, insert
from sqlalchemy.orm import Mapped, mapped_column

from survey_app.extensions import Model, db

#: Longest keyword stored (keywords are at most 30 characters; longer are cut).
KEYWORD_CHARS = 60


class ResponseKeyword(Model):
    """One keyword of one response's comment (each keyword once per response)."""

    __tablename__ = "response_keyword"
    __table_args__ = (Index("ix_response_keyword_keyword", "keyword", "response_id"),)

    response_id: Mapped[int] = mapped_column(
        ForeignKey("survey_response.id", ondelete="CASCADE"), primary_key=True
    )
    keyword: Mapped[str] = mapped_column(String(KEYWORD_CHARS), primary_key=True)


def keyword_rows(response_id: int, keywords: Iterable[str] | None) -> list[dict[str, object]]:
    """The rows of one response: each distinct, non-blank keyword once, cut to
    :data:`KEYWORD_CHARS`, in the order given."""
    kept = dict.fromkeys(
        word.strip()[:KEYWORD_CHARS] for word in (keywords or ()) if word and word.strip()
    )
    return [{"response_id": response_id, "keyword": word} for word in kept]


def replace_response_keywords(keywords_by_response: Mapping[int, Iterable[str] | None]) -> None:
    """Replace the keyword rows of the given responses (in the caller's transaction).

    Deletes every row of those responses, then inserts their current keywords;
    a response mapped to None or an empty list ends with no rows.
    """
    _replace_rows(
        ResponseKeyword,
        list(keywords_by_response),
        [
            row
            for response_id, words in keywords_by_response.items()
            for row in keyword_rows(response_id, words)
        ],
    )


def _replace_rows(
    model: type[ResponseKeyword] | type[ResponseAspect],
    response_ids: list[int],
    rows: list[dict[str, object]],
) -> None:
    """Delete ``model``'s rows of ``response_ids`` (in chunks of 500), then insert ``rows``."""
    for start in range(0, len(response_ids), 500):
        chunk = response_ids[start : start + 500]
        db.session.execute(delete(model).where(model.response_id.in_(chunk)))
    if rows:
        db.session.execute(insert(model), rows)


class ResponseAspect(Model):
    """A comment's sentiment on one survey dimension (:mod:`analysis.sentiment.aspects`)."""

    __tablename__ = "response_aspect"
    __table_args__ = (Index("ix_response_aspect_aspect", "aspect", "label"),)

    response_id: Mapped[int] = mapped_column(
        ForeignKey("survey_response.id", ondelete="CASCADE"), primary_key=True
    )
    aspect: Mapped[str] = mapped_column(String(20), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(10))
    clauses: Mapped[int]


def replace_response_aspects(rows_by_response: Mapping[int, Iterable[dict[str, object]]]) -> None:
    """Replace the aspect rows of the given responses (in the caller's transaction)."""
    rows = [row for rows in rows_by_response.values() for row in rows]
    _replace_rows(ResponseAspect, list(rows_by_response), rows)
