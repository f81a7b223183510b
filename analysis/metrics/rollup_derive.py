"""The roll-ups' arithmetic, with numpy and no database: slices summed from combinations,
durations sorted per slice. :mod:`analysis.metrics.rollup_build` reads the rows and writes the
results; these functions run on a second thread meanwhile.

A chunk's combination rows (``"*"`` and ``"*v"``, :mod:`analysis.metrics.rollup_tables`) hold
each raw row in exactly one combination, so every coarser slice (the day's totals, one
dimension, a pair of dimensions) is a sum of them. Summing them in SQL costs one grouped scan
per slice (37 of them per population); here the rows are read once, each key column is
coded as integers once, and each slice is a ``numpy.unique`` of the combined codes plus one
``bincount`` per aggregate: integer sums, exact (:func:`_sums`). The durations of each
slice's values are sorted with one ``numpy.sort`` per slice (:func:`_sorted_values`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from itertools import pairwise
from typing import Any

import numpy as np

from .definitions import DURATIONS
from .rollup_tables import (
    BY,
    MONTH_PAIRED,
    MONTH_PAIRS,
    MONTHLY,
    PAIRS,
    PIECE_DIMENSIONS,
    VERSIONED,
    WEEKLY,
    WITH_PAIRS,
    WITH_PIECES,
    first_of_month,
    pair_slice,
    piece_start,
)

#: Float64 holds every integer below 2**53 exactly; sums that could reach it are added as int64.
_EXACT_FLOAT = 2**53
#: Combined codes are re-numbered before they could overflow int64.
_CODE_LIMIT = 2**31

Codes = np.ndarray[Any, np.dtype[np.int64]]
#: Duration arrays are stored as little-endian 32-bit integers.
VALUES_DTYPE = np.dtype("<i4")


def factorize(values: Sequence[Any]) -> tuple[Codes, list[Any]]:
    """Integer codes of ``values`` (any hashable, None included) and the distinct values."""
    distinct = list(dict.fromkeys(values))
    index = {value: code for code, value in enumerate(distinct)}
    codes = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))
    return codes, distinct


def group_ids(columns: Sequence[tuple[Codes, int]]) -> tuple[Codes, Codes]:
    """Group the rows by several coded columns ((codes, number of distinct values) each).

    Returns ``(inverse, firsts)``: each row's group number, 0 … groups − 1, in the order of
    the combined key, and one row index per group (a row of that group), from which the
    group's key values are read back.
    """
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    size = 1
    for codes, count in columns:
        if size * max(count, 1) >= _CODE_LIMIT:
            _unique, key = np.unique(key, return_inverse=True)
            size = int(key.max()) + 1 if len(key) else 1
        key = key * max(count, 1) + codes
        size *= max(count, 1)
    _unique, firsts, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), firsts.astype(np.int64)


def _sums(inverse: Codes, groups: int, matrix: np.ndarray[Any, Any]) -> list[list[int]]:
    """Per group, the sum of each column of ``matrix`` (rows × aggregates), as Python ints."""
    columns = []
    for column in matrix.T:
        if int(np.abs(column).sum()) < _EXACT_FLOAT:
            summed = np.bincount(inverse, weights=column, minlength=groups)
            columns.append(np.rint(summed).astype(np.int64))
        else:  # sums that could pass 2**53
            exact = np.zeros(groups, dtype=np.int64)
            np.add.at(exact, inverse, column)
            columns.append(exact)
    if not columns:
        return [[] for _ in range(groups)]
    return np.column_stack(columns).tolist()


def derive(
    rows: Sequence[Sequence[Any]],
    aggregates: int,
    slices: Sequence[tuple[str, tuple[str, ...]]],
    *,
    by_month: bool = False,
) -> list[tuple[Any, ...]]:
    """The roll-up rows of ``slices`` summed from combination ``rows``.

    ``rows``: ``(day, extra, by_<BY> …, aggregate …)`` with ``aggregates`` integer aggregates;
    ``slices``: ``(dimension, its dimensions)``: ``("", ())`` the day's totals, ``("team",
    ("team",))`` one dimension (its value in ``value``), ``("team|channel", ("team",
    "channel"))`` a pair (their values in ``by_team`` and ``by_channel``); the pieces
    (:data:`PIECE_STARTS`) per piece, every slice per month with ``by_month``. Returns rows
    in the roll-up tables' key order ``(day, dimension, value, extra, by_<BY> …, aggregate …)``.
    """
    if not rows:
        return []
    keys = 2 + len(BY)
    transposed = list(zip(*rows, strict=True))
    coded = [factorize(column) for column in transposed[:keys]]
    matrix = np.array(transposed[keys:], dtype=np.int64).T.reshape(len(rows), aggregates)
    position = {name: 2 + i for i, name in enumerate(BY)}
    derived: list[tuple[Any, ...]] = []
    for dimension, dimensions in slices:
        places = [0, 1, *(position[name] for name in dimensions)]
        columns = [(coded[p][0], len(coded[p][1])) for p in places]
        start_of = first_of_month if by_month else PIECE_STARTS.get(dimension)
        if start_of is not None:
            columns[0] = _piece_codes(*coded[0], start_of)
        inverse, firsts = group_ids(columns)
        sums = _sums(inverse, len(firsts), matrix)
        heads = _heads(rows, firsts, dimension, places[2:], first_by=2, extra_at=1)
        if start_of is not None:
            heads = _piece_heads(heads, start_of)
        derived += [(*head, *summed) for head, summed in zip(heads, sums, strict=True)]
    return derived


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


#: The slices of pieces (:data:`~.rollup_tables.WEEKLY`, :data:`~.rollup_tables.MONTHLY`)
#: → the first day of a day's piece.
PIECE_STARTS: dict[str, Callable[[date], date]] = {WEEKLY: piece_start, MONTHLY: first_of_month}


def _piece_codes(
    day_codes: Codes, days: list[Any], start_of: Callable[[date], date]
) -> tuple[Codes, int]:
    """Each row's piece as a code (``start_of``: a day → its piece's first day), from its
    day's code and the distinct days (a date, or its ISO text from SQLite); and how many
    pieces."""
    piece_of, starts = factorize([start_of(_as_date(day)) for day in days])
    return piece_of[day_codes], len(starts)


def _piece_heads(
    heads: list[tuple[Any, ...]], start_of: Callable[[date], date]
) -> list[tuple[Any, ...]]:
    """Group keys read from one row of each piece's group, with the piece's first day as the
    rows had theirs (a date, or its ISO text from SQLite)."""
    starts: list[tuple[Any, ...]] = []
    for head in heads:
        start = start_of(_as_date(head[0]))
        starts.append((start.isoformat() if isinstance(head[0], str) else start, *head[1:]))
    return starts


def _heads(
    rows: Sequence[Sequence[Any]],
    firsts: Codes,
    dimension: str,
    places: Sequence[int],
    *,
    first_by: int,
    extra_at: int | None,
) -> list[tuple[Any, ...]]:
    """The key columns ``(day, dimension, value, extra, by_<BY> …)`` of each group, read from
    one row of it (``firsts``; the day first in every row). ``places``: where the slice's
    dimensions are in a row (one: its value goes to ``value``; else to the ``by_`` columns),
    ``first_by``: where ``BY[0]`` is, ``extra_at``: where the extra key is (None: none)."""
    heads = []
    for row in map(rows.__getitem__, firsts.tolist()):
        extra = None if extra_at is None else row[extra_at]
        if len(places) == 1:
            heads.append((row[0], dimension, row[places[0]], extra, *NO_COMBINATION))
            continue
        by = list(NO_COMBINATION)
        for place in places:
            by[place - first_by] = row[place]
        heads.append((row[0], dimension, None, extra, *by))
    return heads


#: The ticket populations with a template version: a ticket may have several (``"*v"``).
TICKET_KINDS = frozenset({"tickets", "sla", "durations", "created"})
_VERSION_PLACE = BY.index("template_version")


def derived_slices(kind: str) -> list[tuple[str, tuple[str, ...]]]:
    """The slices of ``kind`` summed from its combinations, as (dimension, its dimensions)."""
    pairs = PAIRS if kind in WITH_PAIRS else ()
    return [("", ()), *((d, (d,)) for d in BY), *((pair_slice(*p), p) for p in pairs)]


def with_versions(rows: list[Any], versioned: list[Any], place: int) -> list[Any]:
    """The combination rows that count under a template version: those of ``"*"`` with one
    (at ``place``) and every row of ``"*v"``."""
    return [row for row in rows if row[place] is not None] + versioned


def piece_slices(kind: str, *, months: bool) -> list[tuple[str, tuple[str, ...]]]:
    """The pieces of ``kind`` a chunk's combinations sum to: its week pieces, and with
    ``months`` (a chunk of every day of its month) its month piece."""
    if kind not in WITH_PIECES:
        return []
    return [(WEEKLY, PIECE_DIMENSIONS), *([(MONTHLY, PIECE_DIMENSIONS)] if months else [])]


def derived_rows(
    kind: str, aggregates: int, combinations: list[Any], versioned: list[Any], *, months: bool
) -> list[tuple[Any, ...]]:
    """The derived slices of ``kind`` summed from its combination rows, and its pieces
    (:func:`piece_slices`, summed like ``"*"``) from the chunk's whole pieces; for
    the ticket populations the slices with the template version from :func:`with_versions`,
    the others from ``"*"`` (a ticket once). No database: runs beside the next queries."""
    slices = derived_slices(kind)
    pieces = piece_slices(kind, months=months)
    paired = month_pair_rows(kind, aggregates, combinations, versioned) if months else []
    if kind not in TICKET_KINDS:
        return derive(combinations, aggregates, [*slices, *pieces]) + paired
    by_version = [s for s in slices if "template_version" in s[1]]
    slices = [s for s in slices if "template_version" not in s[1]]
    rows = derive(combinations, aggregates, [*slices, *pieces])
    place = 2 + _VERSION_PLACE
    versions = with_versions(combinations, versioned, place)
    return rows + derive(versions, aggregates, by_version) + paired


def month_pair_rows(
    kind: str, aggregates: int, combinations: list[Any], versioned: list[Any]
) -> list[tuple[Any, ...]]:
    """The pairs by month of ``kind`` (:data:`~.rollup_tables.MONTH_PAIRED`; none for the
    others) summed from every combination row of a month (the ticket populations' pairs with
    the template version from :func:`with_versions`)."""
    if kind not in MONTH_PAIRED:
        return []
    pairs = [(pair_slice(*pair), pair) for pair in MONTH_PAIRS[kind]]
    if kind not in TICKET_KINDS:
        return derive(combinations, aggregates, pairs, by_month=True)
    by_version = [s for s in pairs if "template_version" in s[1]]
    plain = [s for s in pairs if s not in by_version]
    versions = with_versions(combinations, versioned, 2 + _VERSION_PLACE)
    return derive(combinations, aggregates, plain, by_month=True) + derive(
        versions, aggregates, by_version, by_month=True
    )


def duration_table_rows(fetched: dict[str, list[Any]], *, months: bool) -> list[tuple[Any, ...]]:
    """The duration roll-up rows (in the columns' order) of :func:`_read_durations`' facts: per
    slice and value, each duration's count, sum and sorted values (``months``: as
    :func:`piece_slices`). No database."""
    slices = derived_slices("durations")
    by_version = [s for s in slices if "template_version" in s[1]]
    pieces = piece_slices("durations", months=months)
    return [
        *_duration_rows(
            fetched["*"], [*(s for s in slices if s not in by_version), ("*", BY), *pieces]
        ),
        *_duration_rows(
            with_versions(fetched["*"], fetched[VERSIONED], 1 + _VERSION_PLACE), by_version
        ),
        *_duration_rows(fetched[VERSIONED], [(VERSIONED, BY)]),
    ]


def month_rows(kind: str, weekly: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """The month piece rows (:data:`~.rollup_tables.MONTHLY`) of ``kind`` summed from the
    stored week pieces of one month: ``(day, extra, by_<BY> …, aggregate …)``, for the
    durations ``(day, by_<BY> …, <duration>_n, <duration>_total …, <duration>_values …)``,
    whose sorted values are merged. A refresh rebuilds a few days of a month, not all."""
    if kind != "durations":
        aggregates = len(weekly[0]) - 2 - len(BY) if weekly else 0
        return derive(weekly, aggregates, [(MONTHLY, PIECE_DIMENSIONS)])
    groups: dict[tuple[Any, ...], list[Sequence[Any]]] = {}
    for row in weekly:
        groups.setdefault(tuple(row[1 : 1 + len(BY)]), []).append(row)
    sums_at = 1 + len(BY)
    values_at = sums_at + 2 * len(DURATIONS)
    rows: list[tuple[Any, ...]] = []
    for by, members in groups.items():
        (start,) = _piece_heads([(members[0][0],)], first_of_month)[0]
        sums = [sum(int(row[place]) for row in members) for place in range(sums_at, values_at)]
        merged = [
            np.sort(
                np.concatenate([np.frombuffer(row[place], dtype=VALUES_DTYPE) for row in members])
            ).tobytes()
            for place in range(values_at, values_at + len(DURATIONS))
        ]
        rows.append((start, MONTHLY, None, None, *by, *sums, *merged))
    return rows


def _duration_rows(
    fetched: list[Any], slices: Sequence[tuple[str, tuple[str, ...]]]
) -> list[tuple[Any, ...]]:
    """The duration rows of ``slices`` from SLA facts ``(day, <BY values> …, <durations> …)``."""
    if not fetched:
        return []
    columns = list(zip(*fetched, strict=True))
    keys_read = ("day", *BY)
    coded = dict(zip(keys_read, map(factorize, columns[: len(keys_read)]), strict=True))
    seconds = [
        np.array(columns[len(keys_read) + i], dtype=np.float64) for i in range(len(DURATIONS))
    ]
    rows: list[tuple[Any, ...]] = []
    for dimension, parts in slices:
        columns = [(coded[name][0], len(coded[name][1])) for name in ("day", *parts)]
        if dimension in PIECE_STARTS:
            columns[0] = _piece_codes(*coded["day"], PIECE_STARTS[dimension])
        keys, firsts = group_ids(columns)
        places = [1 + BY.index(name) for name in parts]
        heads = _heads(fetched, firsts, dimension, places, first_by=1, extra_at=None)
        if dimension in PIECE_STARTS:
            heads = _piece_heads(heads, PIECE_STARTS[dimension])
        stats = [_sorted_values(keys, measured, len(heads)) for measured in seconds]
        rows += [
            (*head, *rest)
            for head, *rest in zip(
                heads,
                *(column for n, total, _blobs in stats for column in (n, total)),
                *(blobs for _n, _total, blobs in stats),
                strict=True,
            )
        ]
    return rows


#: Seconds are stored as 32-bit signed integers: this offset makes them sort as unsigned ones.
_OFFSET = 2**31
#: The ``by_<dimension>`` values of rows outside the combined and pair slices.
NO_COMBINATION = (None,) * len(BY)


def _sorted_values(
    keys: np.ndarray[Any, Any], values: np.ndarray[Any, Any], groups: int
) -> tuple[list[int], list[int], list[bytes]]:
    """Per group of ``keys`` (0 … groups − 1): the count, sum and sorted bytes of its
    measured ``values`` (NaN: not measured)."""
    measured = ~np.isnan(values)
    # One sort of (group, seconds) packed in an int64: the group in the high 32 bits, the
    # seconds (a 32-bit signed integer, as stored) offset to unsigned in the low 32.
    packed_keys = (keys[measured].astype(np.int64) << 32) | (
        values[measured].astype(np.int64) + _OFFSET
    )
    packed_keys.sort()
    group, seconds = packed_keys >> 32, (packed_keys & 0xFFFFFFFF) - _OFFSET
    bounds = np.searchsorted(group, np.arange(groups + 1))
    running = np.concatenate(([0], np.cumsum(seconds)))
    counts = np.diff(bounds).tolist()
    totals = (running[bounds[1:]] - running[bounds[:-1]]).tolist()
    packed = seconds.astype(VALUES_DTYPE).tobytes()
    width = VALUES_DTYPE.itemsize
    edges = (bounds * width).tolist()
    return counts, totals, [packed[a:b] for a, b in pairwise(edges)]
