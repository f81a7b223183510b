"""Summing roll-up combination rows into coarser slices (analysis.metrics.rollup_derive)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from analysis.metrics.rollup_derive import derive, factorize, group_ids
from analysis.metrics.rollup_tables import BY, PAIRS, pair_slice

DAY_1, DAY_2 = date(2026, 3, 1), date(2026, 3, 2)


def _combination(day, extra, aggregates, **values):
    return (day, extra, *(values.get(name) for name in BY), *aggregates)


def _by(**values):
    return tuple(values.get(name) for name in BY)


def test_factorize_codes_values_in_order_of_first_sight_none_included():
    codes, distinct = factorize(["b", None, "a", "b", None])
    assert codes.tolist() == [0, 1, 2, 0, 1]
    assert distinct == ["b", None, "a"]


def test_totals_one_dimension_and_a_pair_by_hand():
    rows = [
        _combination(DAY_1, None, (2, 10), team="A", channel="phone"),
        _combination(DAY_1, None, (1, 4), team="A", channel="chat"),
        _combination(DAY_1, None, (3, 9), team="B", channel="phone"),
        _combination(DAY_2, None, (5, 5), team="A", channel="phone"),
        _combination(DAY_1, None, (7, 0), team="A", channel="phone", region="north"),
    ]
    slices = [("", ()), ("team", ("team",)), ("team|channel", ("team", "channel"))]
    derived = sorted(derive(rows, 2, slices), key=repr)
    none = _by()
    assert derived == sorted(
        [
            (DAY_1, "", None, None, *none, 13, 23),
            (DAY_2, "", None, None, *none, 5, 5),
            (DAY_1, "team", "A", None, *none, 10, 14),
            (DAY_1, "team", "B", None, *none, 3, 9),
            (DAY_2, "team", "A", None, *none, 5, 5),
            (DAY_1, "team|channel", None, None, *_by(team="A", channel="phone"), 9, 10),
            (DAY_1, "team|channel", None, None, *_by(team="A", channel="chat"), 1, 4),
            (DAY_1, "team|channel", None, None, *_by(team="B", channel="phone"), 3, 9),
            (DAY_2, "team|channel", None, None, *_by(team="A", channel="phone"), 5, 5),
        ],
        key=repr,
    )


def test_the_extra_key_is_kept_apart_and_no_rows_derive_nothing():
    rows = [
        _combination(DAY_1, "P1", (1,), team="A"),
        _combination(DAY_1, "P2", (2,), team="A"),
        _combination(DAY_1, "P1", (4,), team="A"),
    ]
    derived = derive(rows, 1, [("team", ("team",))])
    assert sorted((row[3], row[-1]) for row in derived) == [("P1", 5), ("P2", 2)]
    assert derive([], 1, [("team", ("team",))]) == []


def test_sums_beyond_float_precision_stay_exact():
    big = 2**53 + 1
    rows = [
        _combination(DAY_1, None, (big,), team="A"),
        _combination(DAY_1, None, (1,), team="A"),
    ]
    assert derive(rows, 1, [("", ())])[0][-1] == big + 1


def test_group_ids_renumber_before_overflow():
    rng = np.random.default_rng(7)
    size = 5000  # five columns of 5,000 values: 5000**5 would overflow int64
    columns = [rng.integers(0, size, 2000) for _ in range(5)]
    inverse, firsts = group_ids([(codes, size) for codes in columns])
    keys = list(zip(*(codes.tolist() for codes in columns), strict=True))
    assert len(firsts) == len(set(keys))
    for row, group in enumerate(inverse.tolist()):
        assert keys[firsts[group]] == keys[row]


def test_every_pair_has_a_slice_name_that_fits_the_column():
    assert len(PAIRS) == 29  # every pair of the eight dimensions but the agent, and team|agent
    assert all(len(pair_slice(*pair)) <= 32 for pair in PAIRS)
    assert pair_slice("template_version", "team") == "team|template_version"


def test_sorted_values_per_group_with_unmeasured_and_negative_seconds():
    from analysis.metrics.rollup_derive import VALUES_DTYPE, _sorted_values

    keys = np.array([1, 0, 1, 0, 2, 1])
    values = np.array([30.0, np.nan, -5.0, 2**31 - 1, np.nan, 7.0])
    counts, totals, blobs = _sorted_values(keys, values, 3)
    assert counts == [1, 3, 0]
    assert totals == [2**31 - 1, 32, 0]
    decoded = [np.frombuffer(blob, dtype=VALUES_DTYPE).tolist() for blob in blobs]
    assert decoded == [[2**31 - 1], [-5, 7, 30], []]


def _naive(rows, aggregates, dimension, dimensions, start_of):
    """One slice summed row by row, the way the roll-ups define it."""
    sums: dict[tuple, list[int]] = {}
    for row in rows:
        by = dict(zip(BY, row[2 : 2 + len(BY)], strict=True))
        day = start_of(row[0]) if start_of else row[0]
        if len(dimensions) == 1:
            key = (day, dimension, by[dimensions[0]], row[1], *_by())
        else:
            key = (day, dimension, None, row[1], *_by(**{d: by[d] for d in dimensions}))
        totals = sums.setdefault(key, [0] * aggregates)
        for place, value in enumerate(row[-aggregates:]):
            totals[place] += value
    return [(*key, *totals) for key, totals in sums.items()]


def test_coarser_slices_summed_from_finer_ones_equal_sums_of_the_rows():
    """Slices are summed finest first, a dimension from a pair's groups and the months from
    the week pieces': the same rows as each slice summed alone from the combinations."""
    from analysis.metrics.rollup_tables import (
        MONTHLY,
        PIECE_DIMENSIONS,
        WEEKLY,
        first_of_month,
        piece_start,
    )

    rng = np.random.default_rng(11)
    days = [date(2026, 1, 26) + timedelta(days=int(i)) for i in range(12)]  # Jan into Feb
    rows = [
        _combination(
            days[int(rng.integers(len(days)))],
            ("P1", "P2", None)[int(rng.integers(3))],
            (1, int(rng.integers(0, 5)), int(rng.integers(0, 2**40)) * (2**14 if i == 0 else 1)),
            team=("A", "B", None)[int(rng.integers(3))],
            channel=("phone", "chat")[int(rng.integers(2))],
            agent=f"a{int(rng.integers(4))}",
            region=("north", "south", None)[int(rng.integers(3))],
        )
        for i in range(400)
    ]
    slices = [
        ("", ()),
        ("team", ("team",)),
        ("agent", ("agent",)),
        ("region", ("region",)),
        (pair_slice("team", "channel"), ("team", "channel")),
        (pair_slice("team", "agent"), ("team", "agent")),
        (pair_slice("channel", "region"), ("channel", "region")),
        (WEEKLY, PIECE_DIMENSIONS),
        (MONTHLY, PIECE_DIMENSIONS),
    ]
    starts = {WEEKLY: piece_start, MONTHLY: first_of_month}
    expected = [row for s in slices for row in _naive(rows, 3, *s, starts.get(s[0]))]
    assert sorted(derive(rows, 3, slices), key=repr) == sorted(expected, key=repr)
    assert any(row[-1] >= 2**53 for row in expected)  # past float precision: summed as ints
    by_month = [(s, d, first_of_month) for s, d in slices[:7]]
    expected = [row for s in by_month for row in _naive(rows, 3, *s)]
    derived = derive(rows, 3, slices[:7], by_month=True)
    assert sorted(derived, key=repr) == sorted(expected, key=repr)
