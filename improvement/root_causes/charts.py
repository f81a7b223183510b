"""Geometry of the fishbone and Pareto charts, drawn as inline SVG by templates.

The functions here only place things; the templates (``root_causes/_fishbone.svg.html``
and ``_pareto.svg.html``) draw them, so every label goes through Jinja's
escaping. No JavaScript and nothing from a CDN.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .pareto import VITAL_FEW_SHARE, ParetoRow

FISHBONE_ITEMS_PER_BONE = 6
#: Font sizes of the charts' texts in SVG units (closedloop.css draws them at these sizes).
FISHBONE_ITEM_PX, FISHBONE_LABEL_PX, PARETO_TICK_PX = 12, 14, 11
#: Longest Pareto axis label, in SVG units; the full title is in the label's <title>.
PARETO_LABEL_PX = 150
PARETO_LABEL_ANGLE = 35
#: The fishbone's head: at most this many lines of this many narrow-character widths.
HEAD_WIDTH = 20
HEAD_LINES = 5
_TOKENS = re.compile(
    r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+|\s+"
)


def _width(text: str) -> int:
    """Display width: a CJK character is two narrow ones."""
    return sum(2 if "\u2e80" <= ch <= "\uffef" else 1 for ch in text)


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` narrow characters: Latin text breaks between words (a
    word longer than a line is cut), Chinese between any two characters."""
    lines: list[str] = []
    line = ""
    for token in _TOKENS.findall(" ".join(text.split())):
        if token.isspace():
            if line:
                line += " "
            continue
        while _width(token) > width:  # a word longer than a line
            room = width - _width(line)
            if room <= 0:
                lines.append(line.rstrip())
                line, room = "", width
            lines.append(line + token[:room])
            token, line = token[room:], ""
        if _width(line + token) > width:
            lines.append(line.rstrip())
            line = ""
        line += token
    if line.strip():
        lines.append(line.rstrip())
    return lines


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Width of a character in ems, on the safe side: a CJK character is one em, any other
#: character (Latin, digits, punctuation) at most 0.62 em in the staff pages' fonts.
_WIDE_EM, _NARROW_EM = 1.0, 0.62


def text_width(text: str, font_px: float) -> float:
    """The drawn width of ``text`` at ``font_px``, estimated from above (SVG units)."""
    wide = sum(1 for ch in text if "\u2e80" <= ch <= "\uffef")
    return font_px * (wide * _WIDE_EM + (len(text) - wide) * _NARROW_EM)


def fit(text: str, room: float, font_px: float) -> str:
    """``text`` on one line, cut with an ellipsis so that it is drawn at most ``room`` wide."""
    text = " ".join(text.split())
    if text_width(text, font_px) <= room:
        return text
    cut = text
    while cut and text_width(cut + "…", font_px) > room:
        cut = cut[:-1]
    return cut.rstrip() + "…" if cut else ""


@dataclass(frozen=True)
class BoneItem:
    x: float
    y: float
    text: str
    full: str


@dataclass(frozen=True)
class Bone:
    category: str
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    label_y: float
    items: tuple[BoneItem, ...]
    more: int


@dataclass(frozen=True)
class Fishbone:
    width: int
    height: int
    spine_y: float
    spine_x1: float
    spine_x2: float
    head_x: float
    head_lines: tuple[str, ...]
    bones: tuple[Bone, ...] = field(default=())


def fishbone_figure(
    effect: str, groups: Sequence[tuple[str, str, Sequence[str]]], width: int = 960
) -> Fishbone:
    """Place a fishbone: the ``effect`` at the head, one bone per ``(category, label, items)``.

    Categories alternate above and below the spine in the given order; each
    bone lists up to ``FISHBONE_ITEMS_PER_BONE`` items (the rest are counted in
    ``more``). An item is cut (the full text stays in ``full``) so that it ends before
    the next bone to its right, or before the head: the bones are parallel, so that
    room is the same at any height.
    """
    height = 480
    spine_y = height / 2
    head_x = width - 190
    x_start = 30.0
    columns = max(1, math.ceil(len(groups) / 2))
    rise, slant = 190.0, 110.0
    # The last bone meets the spine a whole step before the head, so its items have as
    # much room as the others'.
    step = (head_x - x_start - slant) / columns
    bones = []
    for index, (category, label, items) in enumerate(groups):
        column, below = divmod(index, 2)
        end_x = x_start + column * step
        joint_x = end_x + slant
        end_y = spine_y + rise if below else spine_y - rise
        shown = list(items)[:FISHBONE_ITEMS_PER_BONE]
        placed = []
        for number, item in enumerate(shown, start=1):
            t = number / (len(shown) + 1)
            placed.append(
                BoneItem(
                    x=end_x + t * (joint_x - end_x) + 6,
                    y=end_y + t * (spine_y - end_y) + 4,
                    # Up to the next bone at this height (a step to the right), with a gap.
                    text=fit(item, step - 16, FISHBONE_ITEM_PX),
                    full=item,
                )
            )
        bones.append(
            Bone(
                category=category,
                label=fit(label, step - 10, FISHBONE_LABEL_PX),
                x1=end_x,
                y1=end_y,
                x2=joint_x,
                y2=spine_y,
                label_y=end_y + 18 if below else end_y - 8,
                items=tuple(placed),
                more=max(0, len(items) - len(shown)),
            )
        )
    head_lines = tuple(wrap(shorten(effect, 120), HEAD_WIDTH))[:HEAD_LINES]
    return Fishbone(
        width=width,
        height=height,
        spine_y=spine_y,
        spine_x1=x_start,
        spine_x2=head_x,
        head_x=head_x,
        head_lines=head_lines,
        bones=tuple(bones),
    )


@dataclass(frozen=True)
class ParetoBar:
    x: float
    y: float
    width: float
    height: float
    centre: float
    line_y: float
    label: str
    row: ParetoRow


@dataclass(frozen=True)
class ParetoChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    #: Degrees the axis labels are turned anticlockwise (35, steeper for narrow bars).
    label_angle: float
    bars: tuple[ParetoBar, ...]
    #: (y, weight) ticks of the left axis and (y, percent) of the right one.
    weight_ticks: tuple[tuple[float, int], ...]
    share_ticks: tuple[tuple[float, int], ...]
    vital_y: float
    points: str


def pareto_figure(rows: Sequence[ParetoRow], width: int = 960) -> ParetoChart:
    """Place the Pareto chart: a bar per root cause (weight) and the cumulative-percent line.

    Each bar's label ("#id title", cut to ``PARETO_LABEL_PX``) hangs below it, slanted;
    the slant steepens when the bars are too narrow for neighbouring labels to clear each
    other, and only every n-th bar is labelled when even upright labels would touch (the
    full title is in every bar's tooltip). The margins grow to hold the longest label.
    """
    plot_h, top = 250.0, 20.0
    right = width - 56.0
    count = max(1, len(rows))
    line_gap = PARETO_TICK_PX * 1.4  # a label's height, and a little air
    left = 56.0
    for _ in range(3):  # the left margin holds the first label, which depends on the slot
        slot = (right - left) / count
        angle = next((a for a in (PARETO_LABEL_ANGLE, 60, 90) if _clears(slot, a, line_gap)), 90)
        reach = PARETO_LABEL_PX * math.cos(math.radians(angle)) + line_gap
        left = max(56.0, reach - slot / 2 + 4)
    slot = (right - left) / count
    every = max(1, math.ceil(line_gap / (slot * math.sin(math.radians(angle)))))
    bottom = top + plot_h
    height = math.ceil(bottom + 14 + PARETO_LABEL_PX * math.sin(math.radians(angle)) + line_gap)
    top_weight = max((row.weight for row in rows), default=1)
    tick = max(1, math.ceil(top_weight / 5))
    scale_max = tick * math.ceil(top_weight / tick)
    bars = []
    for index, row in enumerate(rows):
        bar_h = plot_h * row.weight / scale_max
        x = left + index * slot + slot * 0.15
        label = f"#{row.root_cause_id} {row.title}" if index % every == 0 else ""
        bars.append(
            ParetoBar(
                x=x,
                y=bottom - bar_h,
                width=slot * 0.7,
                height=bar_h,
                centre=x + slot * 0.35,
                line_y=bottom - plot_h * row.cumulative / 100,
                label=fit(label, PARETO_LABEL_PX, PARETO_TICK_PX),
                row=row,
            )
        )
    return ParetoChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        label_angle=angle,
        bars=tuple(bars),
        weight_ticks=tuple(
            (bottom - plot_h * value / scale_max, value) for value in range(0, scale_max + 1, tick)
        ),
        share_ticks=tuple((bottom - plot_h * p / 100, p) for p in range(0, 101, 20)),
        vital_y=bottom - plot_h * VITAL_FEW_SHARE / 100,
        points=" ".join(f"{bar.centre:.1f},{bar.line_y:.1f}" for bar in bars),
    )


def _clears(slot: float, angle: float, line_gap: float) -> bool:
    """Whether parallel labels ``slot`` apart, slanted by ``angle`` degrees, do not touch."""
    return slot * math.sin(math.radians(angle)) >= line_gap
