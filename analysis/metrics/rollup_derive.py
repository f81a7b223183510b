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

import dataclasses
import functools
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


@dataclasses.dataclass(frozen=True)
class Coded:
    """Rows read once for every slice grouped from them: each key column's integer codes
    (:func:`factorize`) and the values they stand for, and the measures as one (measures ×
    rows) array. A chunk's combinations are grouped into some forty slices, and a ticket
    population's into its plain, versioned and monthly ones: the rows are transposed and
    coded once, not per call. A slice's groups are rows of this kind too (:func:`_group`),
    from which a coarser slice is summed.

    ``extra``: the rows have an extra key after the day (else ``BY`` follows the day)."""

    codes: tuple[Codes, ...]
    values: tuple[np.ndarray[Any, Any], ...]
    measures: np.ndarray[Any, Any]
    extra: bool

    @property
    def size(self) -> int:
        return len(self.codes[0])

    @functools.cached_property
    def weights(self) -> list[np.ndarray[Any, Any] | None]:
        """Each measure as float64 for ``bincount`` if every sum of it is exact so (its
        largest magnitude times the rows below 2**53, a bound of every sum), else None."""
        rows = self.measures.shape[1]
        return [
            measure.astype(np.float64)
            if not rows or int(np.abs(measure).max()) * rows < _EXACT_FLOAT
            else None
            for measure in self.measures
        ]

    def subset(self, mask: np.ndarray[Any, Any]) -> Coded:
        """The rows where ``mask`` holds, coded alike."""
        return Coded(
            tuple(codes[mask] for codes in self.codes),
            self.values,
            self.measures[:, mask],
            self.extra,
        )

    def first(self, count: int) -> Coded:
        """The first ``count`` rows."""
        return self.subset(np.arange(self.size) < count)

    def with_versions(self, plain: int) -> Coded:
        """The rows that count under a template version, of rows whose first ``plain`` are
        ``"*"`` combinations and the rest ``"*v"``'s: those of ``"*"`` with one (a ticket
        invited with exactly one) and every row of ``"*v"``."""
        place = (2 if self.extra else 1) + _VERSION_PLACE
        values = self.values[place].tolist()
        none = next((code for code, value in enumerate(values) if value is None), -1)
        versioned = np.arange(self.size) >= plain
        return self.subset(versioned | (self.codes[place] != none))


def code_rows(
    rows: Sequence[Sequence[Any]], keys: int, *, extra: bool = True, dtype: Any = np.int64
) -> Coded:
    """``rows`` coded (:class:`Coded`): their first ``keys`` columns as keys, the rest as
    measures of ``dtype`` (``float64``: None becomes NaN)."""
    if not rows:
        return Coded(
            tuple(np.zeros(0, dtype=np.int64) for _ in range(keys)),
            tuple(_objects([]) for _ in range(keys)),
            np.zeros((0, 0), dtype=dtype),
            extra,
        )
    columns = list(zip(*rows, strict=True))
    coded = [factorize(column) for column in columns[:keys]]
    measures = np.array(columns[keys:], dtype=dtype).reshape(len(columns) - keys, len(rows))
    return Coded(
        tuple(codes for codes, _values in coded),
        tuple(_objects(values) for _codes, values in coded),
        measures,
        extra,
    )


def _objects(values: list[Any]) -> np.ndarray[Any, Any]:
    """``values`` as a numpy array of Python objects, to be taken by codes."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _sums(inverse: Codes, groups: int, data: Coded) -> np.ndarray[Any, Any]:
    """Per measure of ``data`` (a row of the result), its sum in each group, exact: one
    ``bincount`` each in float64 where that is exact (:attr:`Coded.weights`), else int64."""
    sums = np.zeros((len(data.measures), groups), dtype=np.int64)
    for place, (measure, weights) in enumerate(zip(data.measures, data.weights, strict=True)):
        if weights is not None:
            sums[place] = np.rint(np.bincount(inverse, weights=weights, minlength=groups))
        else:
            np.add.at(sums[place], inverse, measure)
    return sums


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
    return derive_coded(code_rows(rows, len(rows[0]) - aggregates), slices, by_month=by_month)


def derive_coded(
    data: Coded, slices: Sequence[tuple[str, tuple[str, ...]]], *, by_month: bool = False
) -> list[tuple[Any, ...]]:
    """:func:`derive` of rows coded once (:func:`code_rows`).

    The slices are summed finest first, each from the smallest one summed before that holds
    its dimensions by the same or a shorter span (:data:`PIECE_RANK`), else from ``data``:
    one dimension from a pair's groups (a few hundred a day, not thousands of combinations),
    the totals from one dimension's, the month pieces from the week pieces'. Integer sums of
    integer sums: as exact."""
    if not data.size:
        return []
    made: list[tuple[frozenset[str], int, Coded]] = []
    derived: dict[str, list[tuple[Any, ...]]] = {}
    for dimension, dimensions in sorted(slices, key=lambda s: (_rank(s[0], by_month), -len(s[1]))):
        rank = _rank(dimension, by_month)
        sources = [g for dims, r, g in made if r <= rank and dims >= set(dimensions)]
        source = min(sources, key=lambda g: g.size, default=data)
        inverse, groups = _group(source, dimensions, _START_OF_RANK[rank])
        summed = dataclasses.replace(groups, measures=_sums(inverse, groups.size, source))
        made.append((frozenset(dimensions), rank, summed))
        derived[dimension] = list(
            zip(
                *_head_columns(summed, dimension, dimensions),
                *summed.measures.tolist(),
                strict=True,
            )
        )
    return [row for dimension, _dimensions in slices for row in derived[dimension]]


def _group(
    data: Coded, dimensions: tuple[str, ...], start_of: Callable[[date], date] | None
) -> tuple[Codes, Coded]:
    """Group ``data`` by day (or piece: ``start_of``), extra key and ``dimensions``: each row's
    group, and the groups as coded rows (the codes of a row of each, the day's its piece's;
    no measures: the caller sums what it needs). Only the grouped columns mean anything."""
    first_by = 2 if data.extra else 1
    places = [*([1] if data.extra else []), *(first_by + BY.index(d) for d in dimensions)]
    day_codes, days = data.codes[0], data.values[0]
    if start_of is not None:
        day_codes, days = _piece_codes(day_codes, days, start_of)
    keys = [(day_codes, len(days)), *((data.codes[p], len(data.values[p])) for p in places)]
    inverse, firsts = group_ids(keys)
    codes = [day_codes[firsts], *(codes[firsts] for codes in data.codes[1:])]
    empty = np.zeros((0, len(firsts)), dtype=np.int64)
    return inverse, Coded(tuple(codes), (days, *data.values[1:]), empty, data.extra)


def _head_columns(
    groups: Coded, dimension: str, dimensions: tuple[str, ...]
) -> list[Sequence[Any]]:
    """The key columns ``(day, dimension, value, extra, by_<BY> …)`` of grouped rows:
    ``value`` holds one dimension's value, the ``by_`` columns a pair's or more."""
    first_by = 2 if groups.extra else 1

    def column(place: int) -> list[Any]:
        return groups.values[place][groups.codes[place]].tolist()

    nones = [None] * groups.size
    by: list[Sequence[Any]] = [nones] * len(BY)
    value: Sequence[Any] = nones
    places = [first_by + BY.index(d) for d in dimensions]
    if len(places) == 1:
        value = column(places[0])
    else:
        for place in places:
            by[place - first_by] = column(place)
    extra = column(1) if groups.extra else nones
    return [column(0), [dimension] * groups.size, value, extra, *by]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


#: The slices of pieces (:data:`~.rollup_tables.WEEKLY`, :data:`~.rollup_tables.MONTHLY`)
#: → the first day of a day's piece.
PIECE_STARTS: dict[str, Callable[[date], date]] = {WEEKLY: piece_start, MONTHLY: first_of_month}
#: The spans a slice is summed over, shortest first: a day, a week piece, a month. A week
#: piece lies in one month (:func:`piece_start`), so a slice by month sums the groups of one
#: by day or by week piece; one by day sums no other.
_START_OF_RANK: tuple[Callable[[date], date] | None, ...] = (None, piece_start, first_of_month)


def _rank(dimension: str, by_month: bool) -> int:
    """The span of ``dimension``'s rows (:data:`_START_OF_RANK`): by month with ``by_month``."""
    if by_month:
        return 2
    return _START_OF_RANK.index(PIECE_STARTS.get(dimension))


def _piece_start(day: Any, start_of: Callable[[date], date]) -> Any:
    """The first day of ``day``'s piece, as ``day`` is given (a date, or its ISO text from
    SQLite)."""
    start = start_of(_as_date(day))
    return start.isoformat() if isinstance(day, str) else start


def _piece_codes(
    day_codes: Codes, days: np.ndarray[Any, Any], start_of: Callable[[date], date]
) -> tuple[Codes, np.ndarray[Any, Any]]:
    """Each row's piece as a code (``start_of``: a day → its piece's first day), from its
    day's code and the distinct days, and the pieces' first days (as the days are given)."""
    piece_of, starts = factorize([_piece_start(day, start_of) for day in days.tolist()])
    return piece_of[day_codes], _objects(starts)


#: The ticket populations with a template version: a ticket may have several (``"*v"``).
TICKET_KINDS = frozenset({"tickets", "sla", "durations", "created"})
_VERSION_PLACE = BY.index("template_version")


def derived_slices(kind: str) -> list[tuple[str, tuple[str, ...]]]:
    """The slices of ``kind`` summed from its combinations, as (dimension, its dimensions)."""
    pairs = PAIRS if kind in WITH_PAIRS else ()
    return [("", ()), *((d, (d,)) for d in BY), *((pair_slice(*p), p) for p in pairs)]


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
    the ticket populations the slices with the template version from
    :meth:`Coded.with_versions`, the others from ``"*"`` (a ticket once). No database: runs
    beside the next queries. ``aggregates``: how many aggregate columns end each row."""
    if not combinations and not versioned:
        return []
    data, plain = _coded_sources(aggregates, combinations, versioned)
    slices = derived_slices(kind)
    pieces = piece_slices(kind, months=months)
    paired = _month_pairs(kind, data, plain, len(combinations)) if months else []
    if kind not in TICKET_KINDS:
        return derive_coded(plain, [*slices, *pieces]) + paired
    by_version = [s for s in slices if "template_version" in s[1]]
    slices = [s for s in slices if "template_version" not in s[1]]
    derived = derive_coded(plain, [*slices, *pieces])
    return derived + derive_coded(data.with_versions(len(combinations)), by_version) + paired


def month_pair_rows(
    kind: str, aggregates: int, combinations: list[Any], versioned: list[Any]
) -> list[tuple[Any, ...]]:
    """The pairs by month of ``kind`` (:data:`~.rollup_tables.MONTH_PAIRED`; none for the
    others) summed from every combination row of a month (the ticket populations' pairs with
    the template version from :meth:`Coded.with_versions`)."""
    if kind not in MONTH_PAIRED or (not combinations and not versioned):
        return []
    data, plain = _coded_sources(aggregates, combinations, versioned)
    return _month_pairs(kind, data, plain, len(combinations))


def _coded_sources(
    aggregates: int, combinations: list[Any], versioned: list[Any]
) -> tuple[Coded, Coded]:
    """The ``"*"`` then the ``"*v"`` combination rows coded together, and the ``"*"`` ones."""
    rows = [*combinations, *versioned] if versioned else combinations
    data = code_rows(rows, len(rows[0]) - aggregates)
    return data, data.first(len(combinations)) if versioned else data


def _month_pairs(kind: str, data: Coded, plain: Coded, combinations: int) -> list[tuple[Any, ...]]:
    """:func:`month_pair_rows` of coded rows: ``data`` the ``"*"`` then the ``"*v"`` rows,
    ``plain`` its first ``combinations`` (the ``"*"`` rows)."""
    if kind not in MONTH_PAIRED:
        return []
    pairs = [(pair_slice(*pair), pair) for pair in MONTH_PAIRS[kind]]
    if kind not in TICKET_KINDS:
        return derive_coded(plain, pairs, by_month=True)
    by_version = [s for s in pairs if "template_version" in s[1]]
    unversioned = [s for s in pairs if s not in by_version]
    return derive_coded(plain, unversioned, by_month=True) + derive_coded(
        data.with_versions(combinations), by_version, by_month=True
    )


def duration_table_rows(fetched: dict[str, list[Any]], *, months: bool) -> list[tuple[Any, ...]]:
    """The duration roll-up rows (in the columns' order) of :func:`_read_durations`' facts: per
    slice and value, each duration's count, sum and sorted values (``months``: as
    :func:`piece_slices`). No database."""
    plain, versioned = fetched["*"], fetched[VERSIONED]
    if not plain and not versioned:
        return []
    data = code_rows([*plain, *versioned], 1 + len(BY), extra=False, dtype=np.float64)
    slices = derived_slices("durations")
    by_version = [s for s in slices if "template_version" in s[1]]
    pieces = piece_slices("durations", months=months)
    unversioned = [*(s for s in slices if s not in by_version), ("*", BY), *pieces]
    return [
        *_duration_rows(data.first(len(plain)), unversioned),
        *_duration_rows(data.with_versions(len(plain)), by_version),
        *_duration_rows(data.subset(np.arange(data.size) >= len(plain)), [(VERSIONED, BY)]),
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
        start = _piece_start(members[0][0], first_of_month)
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
    data: Coded, slices: Sequence[tuple[str, tuple[str, ...]]]
) -> list[tuple[Any, ...]]:
    """The duration rows of ``slices`` from coded SLA facts ``(day, <BY values> …,
    <durations> …)``: each duration's count and sum, then each one's sorted values."""
    if not data.size:
        return []
    rows: list[tuple[Any, ...]] = []
    for dimension, parts in slices:
        keys, groups = _group(data, parts, PIECE_STARTS.get(dimension))
        stats = [_sorted_values(keys, seconds, groups.size) for seconds in data.measures]
        rows += zip(
            *_head_columns(groups, dimension, parts),
            *(column for n, total, _blobs in stats for column in (n, total)),
            *(blobs for _n, _total, blobs in stats),
            strict=True,
        )
    return rows


#: Seconds are stored as 32-bit signed integers: this offset makes them sort as unsigned ones.
_OFFSET = 2**31


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
