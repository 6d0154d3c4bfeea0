"""Where everything of a convolution Story goes on the frame: sizes computed from the frame and the Story.

NumPy-free arithmetic on the Story's grid shapes and line lengths, no Manim: the registry can ask
`refusal(story)` before anything renders, and the tests can check a plan without drawing it.

A part of the story (all steps with the same `Step.part`) shows a set of panels in up to three groups,
left to right or top to bottom: the operand the window slides over, the kernel, the result
(`PART_PANELS`). A 1-D grid of shape (C, L) is one panel of C rows; a 2-D grid (C, H, W) is C panels.
Every arrangement of

    groups in a row | groups in a column     x     text block below | text block to the right,
    and groups in a row with the text block under the groups after the first

is sized with one cell pitch p (every cell of the frame the same size, so numbers compare), the
largest p for which everything fits (bisection); the plan keeps the arrangement with the largest
cells. A plan is legible when every number in a cell and every line of text keeps a digit height of
at least `style.MIN_GLYPH_PX` pixels at 1080p; otherwise `refusal` says which limit was passed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from viz.text import fmt_index

from . import style

FRAME_W, FRAME_H = 14.22, 8.0
PX_1080 = 1080 / FRAME_H                    # pixels per unit at 1080p
MIN_FONT = style.MIN_GLYPH_PX / PX_1080 / style.MONO_DIGIT_HEIGHT   # font size with that digit height

# (operand, kernel, result) grids shown while the steps of a part play
PART_PANELS = {
    "grad_w": (("x",), ("grad_y",), ("grad_w",)),
    "grad_x": (("grad_y_padded",), ("w_flipped",), ("grad_x",)),
    "grad_b": (("grad_y",), (), ("grad_b",)),
    "never_read": (("x",), (), ("grad_x", "y")),       # beside the backward's ∂ℓ/∂x, or the forward's y
    "forward": (("x",), ("w", "b"), ("y",)),
}

PART_NAMES = {"grad_w": "∂ℓ/∂w", "grad_x": "∂ℓ/∂x", "grad_b": "∂ℓ/∂b", "never_read": "never-read",
              "forward": "forward"}
HEADER_H = 1.15          # title line and one formula line
FOOTER_H = 0.45          # the legend
LABEL_H = 0.34           # a panel's label above it
LABEL_FONT = 16.0
COL_LABEL_H = 0.26       # a row of column labels above a panel
INDEX_FONT = 16.0        # row and column labels (1-based positions, channel names), at most
GROUP_SEP = 0.45         # between groups
PANEL_SEP = 0.22         # between panels of a group
TEXT_FONT = 20.0         # preferred size of the step's lines
LINE_PITCH = 1.45        # line spacing, in digit heights... of the font size's em
CELL_TEXT_W, CELL_TEXT_H = 0.84, 0.6     # a number may use this share of its cell


@dataclass
class PanelPlan:
    grid: str
    channel: int | None        # which channel of a (C, H, W) grid; None: the whole grid
    rows: int
    cols: int
    x: float                   # left edge of the cell area
    y: float                   # top edge of the cell area
    label: str                 # drawn above the panel
    row_labels: tuple = ()     # drawn left of the rows ("" = none)
    col_labels: tuple = ()     # drawn above the columns ("" = none)
    title: str = ""            # the grid's name above its first panel, when the panels are named by channel


@dataclass
class PartPlan:
    part: str
    pitch: float               # cell + gap
    cell: float
    number_size: float         # font size of the numbers in cells
    index_size: float          # font size of the row and column labels
    panels: list = field(default_factory=list)
    text_x: float = 0.0
    text_y: float = 0.0        # top of the text block
    text_w: float = 0.0
    text_size: float = TEXT_FONT
    n_lines: int = 0
    arrangement: str = ""

    @property
    def label_size(self) -> float:
        """Panel labels grow with the numbers, from LABEL_FONT up to what LABEL_H holds."""
        return min(LABEL_FONT * 1.3, max(LABEL_FONT, 0.8 * self.number_size))

    @property
    def line_pitch(self) -> float:
        return self.text_size * style.MONO_DIGIT_HEIGHT * 2.0

    def min_glyph_px(self) -> float:
        return min(self.number_size, self.text_size, self.index_size) * style.MONO_DIGIT_HEIGHT * PX_1080


@dataclass
class _Panel:
    grid: str
    channel: int | None
    rows: int
    cols: int
    label: str
    row_labels: tuple
    col_labels: tuple
    widest: int                # characters of the widest number
    title: str = ""            # the grid's name, above the group (first panel of a per-channel grid)

    def width(self, pitch: float) -> float:
        """The cells, or the label above them if it is wider (at the largest label size)."""
        return max(self.cols * pitch, label_width(self.label))

    def left(self, index_size):
        n = max((len(t) for t in self.row_labels), default=0)
        return n * style.MONO_ADVANCE * index_size + 0.12 if n else 0.0

    def top(self):
        return LABEL_H + (COL_LABEL_H if any(self.col_labels) else 0.0)


def label_width(label: str) -> float:
    """Width of a panel label or title at the largest size PartPlan.label_size draws it."""
    return len(label) * style.MONO_ADVANCE * LABEL_FONT * 1.3


def _panels(story, names):
    """The panels of the grids of one group: a (C, H, W) grid gives C panels, anything else one."""
    out = []
    for name in names:
        try:
            g = story.grid(name)
        except KeyError:
            continue
        widest = max((len(t) for t in g.texts), default=1)
        ax = list(g.axis_labels) or [("",) * n for n in g.shape]
        # column labels are positions ("3"); a name on the last axis (∂ℓ/∂b's) is the panel's label
        if not all(t.isdigit() or not t for t in ax[-1]):
            ax[-1] = ("",) * len(ax[-1])
        if len(g.shape) == 3:
            # panels named by channel ("x1", "∂ℓ/∂w1"); a channel named after another array (flip(w)'s
            # are "w1[x1]", ...) is labelled so, and the grid's own name is the group's title
            chans = [ax[0][c] if g.shape[0] > 1 else "" for c in range(g.shape[0])]
            titled = any(ch and not ch.startswith(g.label) for ch in chans)
            for c, chan in enumerate(chans):
                out.append(_Panel(name, c, g.shape[1], g.shape[2], chan or g.label, tuple(ax[1]), tuple(ax[2]),
                                  widest, g.label if titled and c == 0 else ""))
        elif len(g.shape) == 2:
            out.append(_Panel(name, None, g.shape[0], g.shape[1], g.label, tuple(ax[0]), tuple(ax[1]), widest))
        else:
            out.append(_Panel(name, None, 1, g.shape[0], g.label, (), tuple(ax[0]), widest))
    return out


def _index_size(groups, pitch):
    """Row/column labels: INDEX_FONT, or smaller so a column label fits its column."""
    n = max((len(t) for g in groups for p in g for t in p.col_labels), default=1)
    return min(INDEX_FONT, 0.92 * pitch / (max(n, 1) * style.MONO_ADVANCE))


def _group_box(panels, pitch, ncol, index_size):
    """(width, height, step between panel columns, step between rows, row-label room, top room) of
    a group's panels in `ncol` columns; a title (the grid's name over per-channel panels) adds a row."""
    rows = max(p.rows for p in panels)
    width = max(p.width(pitch) for p in panels)
    left = max(p.left(index_size) for p in panels)
    title = LABEL_H if any(p.title for p in panels) else 0.0
    top = max(p.top() for p in panels) + title
    nrow = math.ceil(len(panels) / ncol)
    w = max(ncol * (width + left) + (ncol - 1) * PANEL_SEP,
            max((label_width(p.title) + left for p in panels if p.title), default=0.0))
    h = nrow * (rows * pitch + top - title) + (nrow - 1) * PANEL_SEP + title
    return w, h, width + left + PANEL_SEP, rows * pitch + top - title + PANEL_SEP, left, top


def _fits(groups, pitch, w, h, direction):
    """Whether the groups fit w x h with cell pitch `pitch`; returns the panel columns per group."""
    idx = _index_size(groups, pitch)
    boxes = []
    for g in groups:
        if not g:
            continue
        for ncol in (range(1, len(g) + 1) if direction == "row" else range(len(g), 0, -1)):
            bw, bh = _group_box(g, pitch, ncol, idx)[:2]
            if (direction == "row" and bh <= h + 1e-9) or (direction == "column" and bw <= w + 1e-9):
                boxes.append((ncol, bw, bh))
                break
        else:
            return None
    if direction == "row":
        ok = sum(b[1] for b in boxes) + GROUP_SEP * (len(boxes) - 1) <= w + 1e-9
    else:
        ok = sum(b[2] for b in boxes) + GROUP_SEP * (len(boxes) - 1) <= h + 1e-9
    return [b[0] for b in boxes] if ok else None


def _best_pitch(groups, w, h, direction):
    lo, hi = 0.0, style.CELL_SIZE + style.CELL_GAP
    if _fits(groups, hi, w, h, direction):
        return hi
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _fits(groups, mid, w, h, direction) else (lo, mid)
    return lo


def _text_need(story, part):
    steps = [s for s in story.steps if s.part == part]
    n = max((len(s.lines) for s in steps), default=0)
    chars = max((len(line.text) for s in steps for line in s.lines), default=0)
    return n, chars


def plan_part(story, part: str, frame_w: float = FRAME_W, frame_h: float = FRAME_H) -> PartPlan:
    """The arrangement of `part`'s panels and lines in the body of the frame whose smallest glyph is
    largest (every arrangement, every text size from TEXT_FONT down)."""
    groups = [_panels(story, names) for names in PART_PANELS[part]]
    m = style.FRAME_MARGIN
    x0, top = -frame_w / 2 + m, frame_h / 2 - m - HEADER_H
    bw, bh = frame_w - 2 * m, frame_h - 2 * m - HEADER_H - FOOTER_H
    n_lines, chars = _text_need(story, part)
    widest = max((p.widest for g in groups for p in g), default=1)
    best = None
    sizes = [TEXT_FONT - 2 * i for i in range(int((TEXT_FONT - MIN_FONT) // 2) + 2)]

    def consider(text_where, direction, pitch, size, pw, ph, text_at):
        nonlocal best
        cell = pitch - min(style.CELL_GAP, pitch / 10)
        number = min(style.CELL_FONT_SIZE * 1.3 * cell / style.CELL_SIZE,
                     CELL_TEXT_W * cell / (widest * style.MONO_ADVANCE),
                     CELL_TEXT_H * cell / style.MONO_DIGIT_HEIGHT)
        idx = _index_size(groups, pitch)
        score = (round(min(number, size, idx), 6), round(number + size, 6))
        if best is None or score > best[0]:
            best = (score, text_where, direction, pitch, cell, number, size, idx, pw, ph, text_at)

    line_h = style.MONO_DIGIT_HEIGHT * 2.0
    per_char = max(1e-9, chars * style.MONO_ADVANCE)
    for direction in ("row", "column"):
        for want in sizes:
            # the lines below every panel, across the frame
            size = min(want, bw / per_char)
            ph = bh - n_lines * size * line_h - 0.3
            if ph > 0:
                consider("below", direction, _best_pitch(groups, bw, ph, direction), size, bw, ph, None)
            # the lines in a column to the right of the panels
            tw = min(bw * 0.6, per_char * want + 0.1)
            size = min(want, (tw - 0.1) / per_char, bh / max(1e-9, n_lines * line_h))
            pw = bw - tw - GROUP_SEP
            consider("right", direction, _best_pitch(groups, pw, bh, direction), size, pw, bh,
                     (x0 + pw + GROUP_SEP, top - 0.1, tw))
    # groups in a row, the lines under the groups after the first (beside the tallest operand)
    nonempty = [g for g in groups if g]
    full = _best_pitch(groups, bw, bh, "row") if len(nonempty) > 1 else 0.0
    for f in (1.0, 0.92, 0.84, 0.76, 0.68, 0.6):
        ncols = _fits(groups, full * f, bw, bh, "row") if full else None
        if not ncols:
            continue
        idx = _index_size(groups, full * f)
        boxes = [_group_box(g, full * f, n, idx) for g, n in zip(nonempty, ncols)]
        tx = x0 + boxes[0][0] + GROUP_SEP
        ty = top - max(b[1] for b in boxes[1:]) - 0.3
        tw, th = x0 + bw - tx, ty - (top - bh)
        if tw > 0 and th > 0:
            size = min(TEXT_FONT, tw / per_char, th / max(1e-9, n_lines * line_h))
            consider("under the kernel", "row", full * f, size, bw, bh, (tx, ty, tw))
    _, text_where, direction, pitch, cell, number, size, idx, pw, ph, text_at = best
    plan = PartPlan(part, pitch, cell, number, idx, text_size=size, n_lines=n_lines,
                    arrangement=f"groups in a {direction}, text {text_where}")
    bottom = _place(plan, groups, x0, top, pw, ph, direction)
    plan.text_x, plan.text_y, plan.text_w = text_at if text_at else (x0, bottom - 0.3, bw)
    return plan


def _place(plan, groups, x0, top, pw, ph, direction) -> float:
    """Put the panels where `_fits` found room; returns the lowest edge used."""
    pitch, idx = plan.pitch, plan.index_size
    ncols = _fits(groups, pitch, pw, ph, direction) or [1] * len(groups)
    gx, gy, lowest = x0, top, top
    for g, ncol in zip([g for g in groups if g], ncols):
        w, h, step_x, step_y, left, head = _group_box(g, pitch, ncol, idx)
        for i, p in enumerate(g):
            r, c = divmod(i, ncol)
            plan.panels.append(PanelPlan(p.grid, p.channel, p.rows, p.cols, gx + c * step_x + left,
                                         gy - head - r * step_y, p.label, p.row_labels, p.col_labels, p.title))
        lowest = min(lowest, gy - h)
        if direction == "row":
            gx += w + GROUP_SEP
        else:
            gy -= h + GROUP_SEP
    return lowest


def plan(story) -> dict[str, PartPlan]:
    """A plan for every part the story's steps go through."""
    parts = []
    for s in story.steps:
        if s.part not in parts:
            parts.append(s.part)
    return {p: plan_part(story, p) for p in parts}


def refusal(story) -> str | None:
    """None when every part is legible at 1080p, else the limit that was passed, in words (the registry
    says the size is too large to draw legibly, and why)."""
    for part, pp in plan(story).items():
        px = pp.min_glyph_px()
        if px < style.MIN_GLYPH_PX - 1e-6:
            what = {pp.number_size: "numbers in cells", pp.text_size: "the products lines",
                    pp.index_size: "the position labels"}[min(pp.number_size, pp.text_size, pp.index_size)]
            return (f"{what} of the {PART_NAMES.get(part, part)} part would be "
                    f"{px:.1f} px tall at 1080p (at least {style.MIN_GLYPH_PX} px)")
    return None
