"""Geometry of the fishbone and Pareto charts: labels fit their room, whatever their length.

The browser test (tests/test_browser_layout.py) measures the drawn labels; these
check the placement rules themselves on the estimated widths, for counts of bars
and categories the demo does not have.
"""

from __future__ import annotations

import math

import pytest

from improvement.root_causes.charts import (
    FISHBONE_ITEM_PX,
    PARETO_LABEL_PX,
    PARETO_TICK_PX,
    fishbone_figure,
    fit,
    pareto_figure,
    text_width,
)
from improvement.root_causes.models import RootCauseStatus
from improvement.root_causes.pareto import ParetoRow

LONG = "客户反馈电话排队时间过长 Customerswaitedfarlongerthanpromised " * 4


@pytest.mark.parametrize(
    ("text", "room"), [("short", 200), (LONG, 120), ("排队" * 40, 100), ("x" * 300, 50)]
)
def test_fit_keeps_text_within_its_room(text: str, room: float) -> None:
    cut = fit(text, room, 12)
    assert text_width(cut, 12) <= room
    assert cut == text or cut.endswith("…")


def test_fit_leaves_text_that_fits_alone() -> None:
    assert fit("  Peak  hour ", 500, 12) == "Peak hour"


def rows(count: int) -> list[ParetoRow]:
    return [
        ParetoRow(
            root_cause_id=number,
            title=f"{number} {LONG}",
            status=RootCauseStatus.OPEN,
            feedback=1,
            weight=count - number + 1,
            share=100 / count,
            cumulative=100 * number / count,
            vital=False,
        )
        for number in range(1, count + 1)
    ]


@pytest.mark.parametrize("count", [1, 8, 30, 60, 120])
def test_pareto_labels_clear_each_other_and_stay_in_the_chart(count: int) -> None:
    chart = pareto_figure(rows(count))
    angle = math.radians(chart.label_angle)
    labelled = [bar for bar in chart.bars if bar.label]
    assert labelled and labelled[0] is chart.bars[0]
    for bar in labelled:
        length = text_width(bar.label, PARETO_TICK_PX)
        assert length <= PARETO_LABEL_PX
        # The label hangs down and to the left of its anchor below the bar.
        assert bar.centre - length * math.cos(angle) - PARETO_TICK_PX >= 0
        assert chart.bottom + 14 + length * math.sin(angle) + PARETO_TICK_PX <= chart.height
    for first, second in zip(labelled, labelled[1:], strict=False):
        # Parallel labels: the distance between their lines is the gap times sin(angle).
        assert (second.centre - first.centre) * math.sin(angle) >= PARETO_TICK_PX * 1.4


def test_pareto_labels_name_the_root_cause() -> None:
    (bar,) = pareto_figure(rows(1)).bars
    assert bar.label.startswith("#1 1 客户反馈") and bar.row.title.startswith("1 客户")


@pytest.mark.parametrize("categories", [1, 4, 6, 8])
def test_fishbone_items_end_before_the_next_bone_and_the_head(categories: int) -> None:
    groups = [(f"c{n}", f"Category {n} " + LONG, [LONG] * 7) for n in range(categories)]
    figure = fishbone_figure(LONG, groups)
    for bone in figure.bones:
        assert bone.more == 1 and len(bone.items) == 6
        for item in bone.items:
            end = item.x + text_width(item.text, FISHBONE_ITEM_PX)
            # Bones are parallel: the next one is as far to the right at every height.
            step = next(
                (b.x2 - bone.x2 for b in figure.bones if b.x2 > bone.x2), figure.head_x - bone.x2
            )
            assert end <= item.x - 6 + step
            assert end <= figure.head_x or abs(item.y - figure.spine_y) > 60 + FISHBONE_ITEM_PX
            assert item.full == LONG
