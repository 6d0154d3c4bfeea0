"""Where the forward convolution's grids and lines go: sizes from the frame and the Story, no Manim.

The registry asks `refusal(story)` before anything renders; ConvSlide draws `best(story)`.

1-D: the input's channel rows with the kernel rows beside them and the output row below; the lines
beside or below. 2-D: the channel panels on the left; on the right the kernel (one channel) or, for
several channels, a zoomed inset of the window's numbers beside each kernel, then the output; the
lines under the right block or under everything. Every candidate arrangement is sized and scored by
its smallest element relative to its full size (input cells, kernel/output cells, text scale); the
best score wins. A plan is legible when every number drawn in a cell and every line keeps a digit
height of at least `style.MIN_GLYPH_PX` pixels at 1080p; input cells too small for that are drawn
without numbers (shaded by value) when the window's numbers are shown elsewhere (the inset, or the
products lines), else `refusal` names the limit.
"""
from __future__ import annotations

from . import style

FRAME_W, FRAME_H = 14.22, 8.0
PX_1080 = 1080 / FRAME_H
LEFT_X = -FRAME_W / 2 + style.FRAME_MARGIN
RIGHT_X = FRAME_W / 2 - style.FRAME_MARGIN
LABEL_W, GAP, TEXT_GAP = 0.75, 0.55, 0.35   # row labels, between grids, between grids and text
PANEL_SEP, TITLE_H = 0.45, 0.7              # between channel panels; a panel's title and column labels
INSET_SEP = 0.38                            # between rows of the inset (a label's height)
DOT_W, PAIR_SEP = 0.25, 0.35                # inset: window numbers · kernel, and between such pairs
LEGIBLE_X_CELL = 0.45                       # input cells this big read well; smaller ones score less
LINE_UNIT = 0.75 * 1.45 / 48                # a line of the text block per point of font size
TITLE_BOX_H, FORMULA_LINE_H, HEADER_SEP = 0.5, 0.3, 0.14
LEGEND_H = 0.36


def digit_px(font_size: float) -> float:
    """Height of a digit at 1080p for a monospaced font size."""
    return font_size * style.MONO_DIGIT_HEIGHT * PX_1080


CELL_TEXT_W = 0.86     # a number may use this share of its cell's width (CellGrid)


def cell_number_size(cell: float, widest: int = 1) -> float:
    """The font size of the numbers in cells of side `cell` whose longest text has `widest` characters
    (as CellGrid draws a Story grid: one size, the widest text fits)."""
    return min(style.CELL_FONT_SIZE * min(1.0, cell / style.CELL_SIZE),
               cell * CELL_TEXT_W / (max(widest, 1) * style.MONO_ADVANCE))


MIN_CELL = style.MIN_GLYPH_PX / digit_px(style.CELL_FONT_SIZE / style.CELL_SIZE)  # numbered cells at least
MIN_TEXT_SCALE = style.MIN_GLYPH_PX / digit_px(style.FORMULA_SIZE)


def min_cell(widest: int) -> float:
    """The smallest cell whose numbers of `widest` characters keep MIN_GLYPH_PX digits at 1080p."""
    font = style.MIN_GLYPH_PX / digit_px(1.0)
    return max(MIN_CELL, font * max(widest, 1) * style.MONO_ADVANCE / CELL_TEXT_W)


def widest(story, names) -> int:
    return max((len(t) for n in names if _has(story, n) for t in story.grid(n).texts), default=1)


def pitch_cell(pitch: float) -> float:
    return max(0.0, min(style.CELL_SIZE, pitch - min(style.CELL_GAP, pitch / 10)))


def body_box(story) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) between the header (title, formula lines) and the legend."""
    header = TITLE_BOX_H + HEADER_SEP + min(0.75, FORMULA_LINE_H * len(story.formula))
    top = FRAME_H / 2 - style.FRAME_MARGIN - header - 0.25
    bottom = -FRAME_H / 2 + style.FRAME_MARGIN * 0.8 + LEGEND_H + 0.2
    return LEFT_X, top, RIGHT_X, bottom


def text_extent(story, size: float = style.FORMULA_SIZE) -> tuple[float, float]:
    """(widest line, tallest block) over every step's lines at `size`: one box, one scale for all."""
    wide = max((len(ln.text) for s in story.steps for ln in s.lines), default=0) * style.MONO_ADVANCE * size
    tall = max((len(s.lines) for s in story.steps), default=0) * LINE_UNIT * size
    return wide, tall


def fit_scale(extent, width: float, height: float) -> float:
    wide, tall = extent
    return min(1.0, width / max(wide, 1e-9), height / max(tall, 1e-9))


def x_columns(C: int) -> int:
    return 1 if C == 1 else 2 if C <= 4 else 3 if C <= 6 else 4


def _has(story, name: str) -> bool:
    return any(g.name == name for g in story.grids)


def plans_1d(story, box, extent):
    x0, top, x1, bottom = box
    W, H = x1 - x0, top - bottom
    (C, L), k = story.grid("x").shape, story.grid("w").shape[1]
    cols, rows = L + k, C + 1
    extra_w, extra_h = 2 * LABEL_W + GAP, 0.35 + 0.75
    out = []
    for side in ("right", "below"):
        for f in (0.3, 0.4, 0.5, 0.6):
            gw, gh = (W * (1 - f) - TEXT_GAP, H) if side == "right" else (W, H * (1 - f) - TEXT_GAP)
            tw, th = (W * f, H) if side == "right" else (W, H * f)
            cell = pitch_cell(min((gw - extra_w) / cols, (gh - extra_h) / rows))
            scale = fit_scale(extent, tw, th)
            out.append({"depth": 1, "side": side, "cell": cell, "cell_x": cell, "cell_r": cell,
                        "text_scale": scale, "box": box, "inset": False,
                        "score": min(cell / style.CELL_SIZE, scale) + 0.01 * cell})
    return out


def plans_2d(story, box, extent):
    x0, top, x1, bottom = box
    W, H = x1 - x0, top - bottom
    C, Hp, Wp = story.grid("x").shape
    _, kh, kw = story.grid("w").shape
    oh, ow = story.grid("y").shape
    b = 1 if _has(story, "b") else 0
    legible_x = LEGIBLE_X_CELL if C == 1 else style.MIN_NUMBERED_CELL_SIZE * 0.8
    need_r = min_cell(widest(story, ("w", "y", "b") + (("x",) if C > 1 else ())))
    out = []
    for pc in range(1, C + 1):
        prow = -(-C // pc)
        for pairs in ((1,) if C == 1 else range(1, min(C, 4) + 1)):
            per = -(-C // pairs)
            cols_r = (2 * pairs * kw if C > 1 else kw) + ow + b
            rows_r = max(per * kh, oh)
            extra_r = LABEL_W + GAP * (2 + b) + (pairs * DOT_W + (pairs - 1) * PAIR_SEP if C > 1 else 0)
            extra_rh = TITLE_H + (per - 1) * INSET_SEP
            for fl in ((0.3, 0.35, 0.45, 0.55, 0.65) if C == 1 else (0.15, 0.2, 0.28, 0.35, 0.45)):
                wl, wr = W * fl, W * (1 - fl) - GAP
                # text under the right block (which gets ft of the height), or under everything
                # (the grids get ft of the height)
                for side, ft in [("right", f) for f in (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8)] + \
                                [("below", f) for f in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8)]:
                    hx = H if side == "right" else H * ft - TEXT_GAP
                    hr = H * ft if side == "right" else hx
                    cell_x = pitch_cell(min((wl - LABEL_W - (pc - 1) * (PANEL_SEP + 0.3)) / (pc * Wp),
                                            (hx - prow * TITLE_H - (prow - 1) * PANEL_SEP) / (prow * Hp)))
                    cell_r = pitch_cell(min((wr - extra_r) / cols_r, (hr - extra_rh) / rows_r))
                    scale = (fit_scale(extent, wr, H - hr - TEXT_GAP) if side == "right"
                             else fit_scale(extent, W, H * (1 - ft)))
                    numbered = 1.0 if cell_r >= need_r else 0.5      # kernels and inset need numbers
                    score = min(min(1.0, cell_x / legible_x), numbered * cell_r / style.CELL_SIZE, scale)
                    out.append({"depth": 2, "pc": pc, "pairs": pairs, "fl": fl, "ft": ft, "side": side,
                                "cell_x": cell_x, "cell_r": cell_r, "text_scale": scale, "box": box,
                                "inset": C > 1, "score": score + 0.01 * (cell_x + cell_r + scale)})
    return out


def best(story) -> dict:
    """The plan ConvSlide draws: the highest-scoring candidate, with whether the input cells show
    their numbers (`x_numbered`: only when they stay at least MIN_GLYPH_PX tall at 1080p)."""
    box, extent = body_box(story), text_extent(story)
    depth = len(story.grid("x").shape) - 1
    plans = plans_1d(story, box, extent) if depth == 1 else plans_2d(story, box, extent)
    inset = depth == 2 and story.grid("x").shape[0] > 1
    wide_x = widest(story, ("x",))
    wide_r = widest(story, ("w", "y", "b") + (("x",) if inset or depth == 1 else ()))
    need_r = min_cell(wide_r)

    # a legible plan (text and kernel/output numbers at least MIN_GLYPH_PX) beats any other; among
    # illegible ones the closest to legible (its failing element is what `refusal` names)
    def key(c):
        legibility = min(c["text_scale"] / MIN_TEXT_SCALE, c["cell_r"] / need_r)
        return (legibility >= 1.0, c["score"] if legibility >= 1.0 else legibility)
    plan = max(plans, key=key)
    plan.update(extent=extent, wide_x=wide_x, wide_r=wide_r, need_r=need_r,
                x_numbered=plan["cell_x"] >= min_cell(wide_x))
    return plan


def _numbers_elsewhere(story) -> bool:
    """Whether the window's numbers are on screen besides the input cells: the inset (several 2-D
    channels) or products lines that list their terms."""
    if len(story.grid("x").shape) == 3 and story.grid("x").shape[0] > 1:
        return True
    return all("Σ of" not in ln.text for s in story.steps for ln in s.lines)


def by_parts(story) -> bool:
    """Several filters: ConvSlide draws the Story part by part (scenes.conv_layout), not this plan."""
    return int(story.params.get("filters", 1)) > 1


def refusal(story) -> str | None:
    """None when the forward Story can be drawn legibly at 1080p, else one line naming the limit."""
    if by_parts(story):
        from . import conv_layout

        return conv_layout.refusal(story)
    plan = best(story)
    limit = f"at least {style.MIN_GLYPH_PX} px"
    if plan["text_scale"] < MIN_TEXT_SCALE:
        return (f"the products lines would be {digit_px(style.FORMULA_SIZE * plan['text_scale']):.1f} px tall "
                f"at 1080p ({limit})")
    if plan["cell_r"] < plan["need_r"]:
        what = ("the kernel, inset and output numbers" if plan["inset"] else
                "the numbers in cells" if plan["depth"] == 1 else "the kernel and output numbers")
        px = digit_px(cell_number_size(plan["cell_r"], plan["wide_r"]))
        return f"{what} would be {px:.1f} px tall at 1080p ({limit})"
    if not plan["x_numbered"] and not _numbers_elsewhere(story):
        px = digit_px(cell_number_size(plan["cell_x"], plan["wide_x"]))
        return (f"the input numbers would be {px:.1f} px tall at 1080p ({limit}) and the products lines do "
                f"not list them")
    return None
