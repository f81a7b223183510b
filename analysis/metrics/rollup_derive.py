"""Summing roll-up rows into coarser slices, with numpy: one read of the combinations, every slice.

A chunk's combination rows (``"*"`` or ``"*v"``, :mod:`analysis.metrics.rollup_tables`) hold
each raw row in exactly one combination, so every coarser slice (the day's totals, one
dimension, a pair of dimensions) is a sum of them. Summing them in SQL costs one grouped scan
per slice (37 of them per population); here the rows are read once, each key column is
coded as integers once, and each slice is a ``numpy.unique`` of the combined codes plus one
``bincount`` per aggregate: integer sums, exact (:func:`_sums`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .rollup_tables import BY

#: Float64 holds every integer below 2**53 exactly; sums that could reach it are added as int64.
_EXACT_FLOAT = 2**53
#: Combined codes are re-numbered before they could overflow int64.
_CODE_LIMIT = 2**31

Codes = np.ndarray[Any, np.dtype[np.int64]]


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
    rows: Sequence[Sequence[Any]], aggregates: int, slices: Sequence[tuple[str, tuple[str, ...]]]
) -> list[tuple[Any, ...]]:
    """The roll-up rows of ``slices`` summed from combination ``rows``.

    ``rows``: ``(day, extra, by_<BY> …, aggregate …)`` with ``aggregates`` integer aggregates;
    ``slices``: ``(dimension, its dimensions)``: ``("", ())`` the day's totals, ``("team",
    ("team",))`` one dimension (its value in ``value``), ``("team|channel", ("team",
    "channel"))`` a pair (their values in ``by_team`` and ``by_channel``). Returns rows in the
    roll-up tables' key order ``(day, dimension, value, extra, by_<BY> …, aggregate …)``.
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
        inverse, firsts = group_ids([(coded[p][0], len(coded[p][1])) for p in places])
        sums = _sums(inverse, len(firsts), matrix)
        for first, summed in zip(firsts.tolist(), sums, strict=True):
            row = rows[first]
            by = [None] * len(BY)
            value = None
            if len(dimensions) == 1:
                value = row[places[2]]
            else:
                for place in places[2:]:
                    by[place - 2] = row[place]
            derived.append((row[0], dimension, value, row[1], *by, *summed))
    return derived
