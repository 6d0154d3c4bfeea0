"""The arithmetic of `scenes.arithmetic.RowsScene`'s layout, without Manim: the cell size of a page of
rows of grids, and whether a Story's numbers stay legible at 1080p, so the registry can refuse a size
in one line before anything loads Manim.

A grid of shape (n,) is one row of n cells, (r, c) r rows, (C, r, c) C panels of r rows: stacked
(C·r rows) or, with `columns` = C, side by side (C·c cells wide, separated by PANEL_SEP). The cell is
the largest (at most style.CELL_SIZE) with which every row of grids fits the frame's width and all
rows, plus the step's lines, its height:

    cell = min(CELL_SIZE, (W − Σ_grids (LABEL_W + GAP) − Σ seps) / (cells across · pitch),
               (H − text − TEXT_GAP − rows · TOP_ROOM − (rows − 1) · ROW_GAP) / (cells down · pitch))

A number in a cell of side a is drawn at min(CELL_FONT_SIZE · a / CELL_SIZE, 0.86 a / (digits · advance))
points (`scenes.common.CellGrid`); legible means a digit height of at least style.MIN_GLYPH_PX at 1080p.
"""
from __future__ import annotations

import math

from . import style
from .conv_plan import GAP, LABEL_W, TEXT_GAP

FRAME_W, FRAME_H = 14.22, 8.0
LEFT_X, RIGHT_X = -FRAME_W / 2 + style.FRAME_MARGIN, FRAME_W / 2 - style.FRAME_MARGIN
PX_1080 = 1080 / FRAME_H
ROW_GAP = 0.55          # between two rows of grids (room for the lower row's titles and column labels)
TOP_ROOM = 0.62         # above a row's first cells: its titles and column labels
PANEL_SEP = 0.35        # between the side-by-side panels of one grid (GridView.place's sep)
LINE_PITCH = 1.45       # as scenes.player.LINE_PITCH
MONO_SIZE = 48.0        # as scenes.common._MONO_SIZE
# the room the header (title, one formula line per axis) and the legend leave, as RowsScene measures it
HEADER_H = {1: 1.25, 2: 1.6}
FOOTER_H = 0.75


def extent(shape, columns: int = 1) -> tuple[float, float, float]:
    """(cells across, cells down, fixed width of the separators) of a grid drawn in `columns`."""
    shape = tuple(shape)
    if len(shape) == 1:
        return shape[0], 1, 0.0
    if len(shape) == 3 and columns > 1:
        per_row = math.ceil(shape[0] / columns)
        return columns * shape[2], per_row * shape[1], (columns - 1) * PANEL_SEP
    return shape[-1], int(math.prod(shape[:-1])), 0.0


def cell_for(rows, top: float, bottom: float, text_h: float) -> float:
    """The largest cell for rows of grids, each row a list of (shape, columns)."""
    pitch = 1 + style.CELL_GAP / style.CELL_SIZE
    width = RIGHT_X - LEFT_X
    cells = []
    for row in rows:
        ext = [extent(s, n) for s, n in row]
        cells.append((width - len(row) * (LABEL_W + GAP) - sum(e[2] for e in ext)) / (sum(e[0] for e in ext) * pitch))
    tall = sum(max(extent(s, n)[1] for s, n in row) for row in rows)
    room = top - bottom - text_h - TEXT_GAP - len(rows) * TOP_ROOM - (len(rows) - 1) * ROW_GAP
    cells.append(room / (tall * pitch))
    return max(min(style.CELL_SIZE, *cells), style.MIN_CELL_SIZE)


def text_size(story, width: float) -> float:
    """One font size for every step's lines: the widest line fits `width`, at most FORMULA_SIZE."""
    widest = max((len(ln.text) for s in story.steps for ln in s.lines), default=1)
    return min(style.FORMULA_SIZE, width / (max(widest, 1) * style.MONO_ADVANCE))


def text_height(story, size: float) -> float:
    lines = max((len(s.lines) for s in story.steps), default=0)
    return lines * size / MONO_SIZE * 0.75 * LINE_PITCH


def number_px(cell: float, digits: int) -> float:
    """Digit height in pixels at 1080p of a number of `digits` characters in a cell of side `cell`."""
    size = min(style.CELL_FONT_SIZE * min(1.0, cell / style.CELL_SIZE), cell * 0.86 / (max(digits, 1) * style.MONO_ADVANCE))
    return size * style.MONO_DIGIT_HEIGHT * PX_1080


def legible_cell(story, layouts, columns) -> tuple[float, str | None]:
    """(the cell of the best layout, None) or (its cell, why the numbers or lines would be too small);
    `columns(grid)`: how many panels of a grid sit side by side."""
    top = FRAME_H / 2 - style.FRAME_MARGIN - HEADER_H.get(len(story.formula), 1.6)
    bottom = -FRAME_H / 2 + FOOTER_H
    size = text_size(story, RIGHT_X - LEFT_X)
    text_h = text_height(story, size)
    present = {g.name for g in story.grids}
    best = 0.0
    for pages in layouts:
        pages = [[[n for n in row if n in present] for row in rows] for rows in pages]
        pages = [[r for r in rows if r] for rows in pages if any(rows)]
        cell = min(cell_for([[(story.grid(n).shape, columns(story.grid(n))) for n in r] for r in rows],
                            top, bottom, text_h) for rows in pages)
        best = max(best, cell)
    digits = max((len(t) for g in story.grids for t in g.texts), default=1)
    px, lines_px = number_px(best, digits), size * style.MONO_DIGIT_HEIGHT * PX_1080
    if best < style.MIN_NUMBERED_CELL_SIZE or px < style.MIN_GLYPH_PX:
        return best, (f"numbers in cells would be {px:.1f} px tall at 1080p (at least {style.MIN_GLYPH_PX} px)"
                      if best >= style.MIN_NUMBERED_CELL_SIZE else
                      f"cells would be too small for numbers ({best:.2f} units, at least "
                      f"{style.MIN_NUMBERED_CELL_SIZE})")
    if lines_px < style.MIN_GLYPH_PX:
        return best, f"the step's lines would be {lines_px:.1f} px tall at 1080p (at least {style.MIN_GLYPH_PX} px)"
    return best, None


# ---- `animate conv-transpose` ----------------------------------------------------------------------

TRANSPOSE_LAYOUTS = (((("x", "w", "y"), ("x_spread", "w_flip", "y_gather")),),    # both forms, one above the other
                     ((("x", "w", "y"),), (("x_spread", "w_flip", "y_gather"),)))  # scatter, then gather
# several channels or maps also try: the operand above the kernel and the output, or each grid a row
SEVERAL_LAYOUTS = (((("x", "w"), ("y",)), (("x_spread",), ("w_flip", "y_gather"))),
                   ((("x",), ("w",), ("y",)), (("x_spread",), ("w_flip",), ("y_gather",))))


def several_maps(story) -> bool:
    """More than one input channel or output map (the Story's kernel grid has one slice per pair)."""
    return story.grid("w").shape[0] > 1


def transpose_layouts(story) -> tuple:
    return TRANSPOSE_LAYOUTS + (SEVERAL_LAYOUTS if several_maps(story) else ())


def transpose_columns(grid) -> int:
    """Several 2-D channels or maps: their panels side by side (the rows of grids are wide, not tall)."""
    return grid.shape[0] if len(grid.shape) == 3 else 1


def transpose_refusal(story) -> str | None:
    """None when the transposed convolution with several channels or maps is drawn with every number
    at least MIN_GLYPH_PX tall at 1080p (one channel and one map: drawn as always), else why not."""
    if not several_maps(story):
        return None
    return legible_cell(story, transpose_layouts(story), transpose_columns)[1]
