"""Convolution scenes: the forward slide (ConvSlide) and the backward pass (ConvBackward).

Every number, index and highlighted cell comes from `viz.conv`: `windows` (which input cell each tap
reads, which inputs are never read), `conv` (the outputs; with groups=C the per-channel sums),
`conv_backward_steps` (grad_y dilated and padded, the flipped kernel, the geometry of both
correlations, grad_w, grad_x), `pad`/`dilate` (what the padded and dilated arrays look like, applied
to the data or to masks), and `ConvGeometry.formula`. The scenes only lay these out and animate.

Each scene records what it showed as plain data, for the tests:
    scene.steps     [{"output": index tuple, "cells": [input cells read, 0-based, padding excluded],
                      "values": [numbers written], "texts": [as shown], "mode": "full" | "fast", ...}]
    scene.never_read_shown, scene.formulas_shown
"""
from __future__ import annotations

import re

import numpy as np
from manim import DOWN, LEFT, RIGHT, UL, UP, FadeIn, FadeOut, Scene, VGroup

from viz import conv as V

from . import style
from .common import (
    CellGrid, Panel, Slide, Step, arrange_panels, cell_for_pitch, gap_for, color_span, example_data, fit, fmt_factor, fmt_index,
    fmt_value, index_labels, legend, markup, pretty_formula, text,
)

FRAME_W, FRAME_H = 14.22, 8.0
LEFT_X = -FRAME_W / 2 + style.FRAME_MARGIN
RIGHT_X = FRAME_W / 2 - style.FRAME_MARGIN
MAX_TERMS_INLINE = 6   # a products line with more terms collapses to "Σ of N products = v"


def _shape_str(shape) -> str:
    return "×".join(str(int(v)) for v in shape)


def _params_str(g: V.ConvGeometry) -> str:
    """The geometry as a caption: only the parameters that differ from the defaults."""
    parts = [f"kernel {_shape_str(g.kernel)}"]
    if any(s != 1 for s in g.stride):
        parts.append(f"stride {_shape_str(g.stride)}")
    if any(d != 1 for d in g.dilation):
        parts.append(f"dilation {_shape_str(g.dilation)}")
    if any(lo or hi for lo, hi in g.padding):
        if all(lo == hi for lo, hi in g.padding):
            parts.append(f"padding {_shape_str([lo for lo, _ in g.padding])}")
        else:
            parts.append("padding " + "×".join(f"({lo},{hi})" for lo, hi in g.padding))
    return ", ".join(parts)


def products_text(pairs, integer: bool) -> str:
    """ "2·1 + 0·(−1) + 3·2" from (a, b) factor pairs, numbers as the reader sees them."""
    return " + ".join(f"{fmt_factor(a, integer)}·{fmt_factor(b, integer)}" for a, b in pairs)


def sum_text(pairs, value_text: str, integer: bool, head: str = "") -> str:
    """ "head2·1 + 0·(−1) = 2" or, with many terms, "headΣ of 9 products = 2"."""
    body = (products_text(pairs, integer) if len(pairs) <= MAX_TERMS_INLINE
            else f"Σ of {len(pairs)} products")
    return f"{head}{body} = {value_text}"


def block_lines(pairs_rows, value_text: str, integer: bool) -> list[str]:
    """Products of one 2-D window, one line per kernel row, then "= v" (one Σ line if too many)."""
    n = sum(len(r) for r in pairs_rows)
    if len(pairs_rows) > 5 or max(len(r) for r in pairs_rows) > MAX_TERMS_INLINE:
        return [f"Σ of {n} products = {value_text}"]
    lines = [("  " if i == 0 else "+ ") + products_text(r, integer) for i, r in enumerate(pairs_rows)]
    return lines + [f"= {value_text}"]


def _names(indices) -> str:
    """1-based names of input positions: "8" (1-D) or "(1,2), (1,4)" (2-D), at most 8 of them."""
    shown = ", ".join(fmt_index(i) if len(i) == 1 else f"({fmt_index(i)})" for i in indices[:8])
    return shown + (f" and {len(indices) - 8} more" if len(indices) > 8 else "")


class ConvScene(Scene):
    """Shared set-up (geometry and data from viz) and the layout helpers of both scenes."""

    def __init__(self, *, input, kernel, stride=1, padding=0, dilation=1, channels: int = 1, seed: int = 0,
                 values: str = "int", data: dict | None = None, **scene_kwargs):
        super().__init__(**scene_kwargs)
        self.geometry = V.conv_geometry(input, kernel, stride, padding, dilation)
        g = self.geometry
        if g.ndim not in (1, 2):
            raise ValueError(f"input must have 1 or 2 axes for an animation (got {g.ndim})")
        if int(channels) < 1:
            raise ValueError(f"channels must be >= 1 (got {channels})")
        self.channels = int(channels)
        self.integer = values == "int"
        self.data = data if data is not None else example_data(g.in_shape, self.channels, g.kernel,
                                                               g.out_shape, seed, values)
        self.x, self.w, self.grad_y = self.data["x"], self.data["w"], self.data["grad_y"]
        self.conv_args = dict(stride=g.stride, padding=g.padding, dilation=g.dilation)
        self.windows = V.windows(g.in_shape, g.kernel, **self.conv_args)
        self.steps: list[dict] = []
        self.never_read_shown: list[tuple] = []
        self.formulas_shown: list[str] = []
        self.captions: list[str] = []          # every title/caption line shown, markup removed
        self.progress_total = None

    # ---- data as drawn ------------------------------------------------------------------------
    def fmt(self, v) -> str:
        return fmt_value(v, self.integer)

    def padded(self, a):
        """An array as drawn: zero-padded by the forward padding (viz.conv.pad)."""
        return V.pad(a, self.geometry.padding)

    def padding_mask(self):
        """True on the padding cells of the padded input (pad applied to a mask of ones)."""
        return V.pad(np.ones(self.geometry.in_shape), self.geometry.padding) == 0

    def to_display(self, index):
        """Unpadded input coordinates -> coordinates in the padded grid on screen."""
        return tuple(int(i) + lo for i, (lo, _) in zip(index, self.geometry.padding))

    # ---- frame furniture ---------------------------------------------------------------------
    def header(self, title: str, lines: list[str]):
        """Title and formula lines at the top-left."""
        self.captions += [re.sub(r"<[^>]+>", "", title), *lines]
        t = markup(title, size=style.TITLE_SIZE * 0.85, font=style.FONT)
        fit(t, FRAME_W - 2 * style.FRAME_MARGIN, 0.6)
        body = VGroup(*[text(s, size=style.FORMULA_SIZE, color=style.TEXT) for s in lines])
        body.arrange(DOWN, aligned_edge=LEFT, buff=0.1)
        fit(body, FRAME_W - 2 * style.FRAME_MARGIN, 0.9)
        group = VGroup(t, body).arrange(DOWN, aligned_edge=LEFT, buff=0.15) if lines else VGroup(t)
        group.to_corner(UL, buff=style.FRAME_MARGIN)
        return group

    def formula_lines(self) -> list[str]:
        """The output size formula of every axis, numbers substituted by viz (ConvGeometry.formula)."""
        g = self.geometry
        names = ["length"] if g.ndim == 1 else ["rows", "cols"]
        out = []
        for a in range(g.ndim):
            f = g.formula(a)
            self.formulas_shown.append(f)
            out.append(f"output {names[a]}: {pretty_formula(f)}")
        return out

    def footer(self, items):
        lg = legend(items)
        fit(lg, FRAME_W - 2 * style.FRAME_MARGIN, 0.4)
        lg.to_edge(DOWN, buff=style.FRAME_MARGIN)
        self.foot = lg
        return lg

    def caption(self, markup_text: str):
        """One line above the legend."""
        self.captions.append(re.sub(r"<[^>]+>", "", markup_text))
        cap = markup(markup_text, size=style.LABEL_SIZE * 0.8)
        fit(cap, FRAME_W - 2 * style.FRAME_MARGIN, 0.45)
        cap.next_to(self.foot, UP, buff=0.2).to_edge(LEFT, buff=style.FRAME_MARGIN)
        return cap

    def never_read_caption(self, consequence: str):
        nr = self.windows.never_read
        self.never_read_shown = list(nr)
        if nr:
            return self.caption(f"{color_span('never read', style.NEVER_READ)}: {_names(nr)} — {consequence}")
        return self.caption("every input is read by at least one window")

    def layout_2d(self, big, small, out, top, bottom, n_lines: int):
        """2-D: the big operand's panels on the left, the result's panels on the right, and between
        them the small operand (kernel) with room for `n_lines` of products below it.
        Returns grids by key, labels, the products anchor (top-left) and size."""
        body_h = top - bottom
        H, W = np.atleast_2d(big[0].values).shape
        Ho, Wo = np.atleast_2d(out[0].values).shape
        nb = len(big)
        # share the width between big and result panels in proportion to their columns
        share = W * min(nb, 2) / (W * min(nb, 2) + Wo * min(len(out), 2))
        avail = RIGHT_X - LEFT_X - 0.2 - 3.6         # 3.6: the middle column (kernel, products)
        left_w = min(6.6, max(2.5, avail * share), (body_h - 0.42) / H * W * min(nb, 2) + 0.3)
        grids, labels = arrange_panels(big, LEFT_X + 0.1, top, left_w, body_h, self.integer)
        mid_x0 = max(gr.group.get_right()[0] for gr in grids.values()) + 0.5
        out_w = min(RIGHT_X - mid_x0 - 3.3, max(2.0, avail * (1 - share)))
        g_out, l_out = arrange_panels(out, RIGHT_X - out_w, top, out_w, body_h, self.integer)
        out_left = min(gr.group.get_left()[0] for gr in g_out.values())
        g_out_shift = (RIGHT_X - max(gr.group.get_right()[0] for gr in g_out.values()))
        for gr in g_out.values():
            gr.group.shift(RIGHT * g_out_shift)
        l_out.shift(RIGHT * g_out_shift)
        out_left += g_out_shift
        mid_w = out_left - 0.45 - mid_x0
        upper_h = max(body_h * 0.5, body_h - (0.36 * n_lines + 0.45))
        g_small, l_small = arrange_panels(small, mid_x0, top, mid_w, upper_h, self.integer,
                                          max_cols=1 if len(small) <= 3 else 2)
        grids.update(g_small)
        grids.update(g_out)
        labels.add(l_small, l_out)
        lowest = min(gr.group.get_bottom()[1] for gr in g_small.values())
        anchor = np.array([mid_x0, lowest - 0.3, 0])
        size = (mid_w, lowest - 0.3 - bottom)
        return grids, labels, anchor, size


# ======================================================================================================
# Forward

class ConvSlide(ConvScene):
    """The kernel slides over the (padded) input by the stride; each output cell fills with its value.

    1-D: channels are stacked rows; each channel's products sit beside its kernel row, and the
    per-channel sums add up to the output value. 2-D: one panel per channel, products on the right.
    """

    def construct(self):
        g = self.geometry
        C = self.channels
        y = V.conv(self.x, self.w, **self.conv_args)[0]                                # (*out)
        per_channel = V.conv(self.x, self.w.reshape(C, 1, *g.kernel), groups=C, **self.conv_args)  # (C, *out)
        xp = self.padded(self.x)
        pad_mask = self.padding_mask()
        self.progress_total = 2 + Slide.n_plays(int(np.prod(g.out_shape))) + 2

        title = (f"Convolution {g.ndim}-D: {color_span('input', style.INPUT)} {C} "
                 f"channel{'s' if C > 1 else ''} × {_shape_str(g.in_shape)}, "
                 f"{color_span(_params_str(g), style.KERNEL)}")
        head = self.header(title, self.formula_lines())
        foot = self.footer([("input", "input x"), ("padding", "padding (0)"), ("kernel", "kernel w"),
                            ("output", "output y"), ("highlight", "window"), ("never_read", "never read")])
        top = head.get_bottom()[1] - 0.3
        bottom = foot.get_top()[1] + 0.7          # room for the closing caption
        if g.ndim == 1:
            grids, labels, slide, marks_on = self._layout_1d(xp, pad_mask, y, top, bottom)
        else:
            grids, labels, slide, marks_on = self._layout_2d(xp, pad_mask, y, top, bottom)

        self.play(FadeIn(head), FadeIn(foot), run_time=style.INTRO_TIME)
        self.play(*[FadeIn(gr.group) for gr in grids.values()], FadeIn(labels), run_time=style.INTRO_TIME)

        slide.play_steps([self._step(o, xp, y, per_channel) for o in np.ndindex(*g.out_shape)])

        marks = VGroup(*[gr.outline(cells, color=style.NEVER_READ) for gr, cells in marks_on()])
        cap = self.never_read_caption("no window reads them, so their gradient is exactly 0")
        self.play(*slide.clear(), run_time=style.PAUSE)
        self.play(FadeIn(marks), FadeIn(cap), run_time=style.PAUSE)
        self.wait(style.OUTRO_TIME)

    def _step(self, o, xp, y, per_channel) -> Step:
        """Output position o: its window from viz.windows, its value from viz.conv."""
        g = self.geometry
        C = self.channels
        taps = self.windows.indices[o].reshape(-1, g.ndim)        # one row per kernel tap, in order
        pads = self.windows.is_padding[o].ravel()
        disp = [self.to_display(t) for t in taps]
        k_index = list(np.ndindex(*g.kernel))
        ys = self.fmt(y[o])
        sums = [per_channel[(c, *o)] for c in range(C)]
        pairs = [[(xp[(c, *d)], self.w[(0, c, *j)]) for d, j in zip(disp, k_index)] for c in range(C)]
        total = (f"y[{fmt_index(o)}] = " + " + ".join(fmt_factor(v, self.integer) for v in sums) + f" = {ys}"
                 if C > 1 else f"y[{fmt_index(o)}] = {ys}")
        if g.ndim == 1:
            lines = [sum_text(pairs[c], self.fmt(sums[c]), self.integer) for c in range(C)] + [total]
            taps_on = {"x": [(c, d[0]) for c in range(C) for d in disp]}
            box = {"x": (0, disp[0][0], C - 1, disp[-1][0])}
            outs = [("y", 0, o[0], float(y[o]), ys)]
        else:
            if C == 1:
                rows = [pairs[0][r * g.kernel[1]:(r + 1) * g.kernel[1]] for r in range(g.kernel[0])]
                lines = [f"y[{fmt_index(o)}] ="] + block_lines(rows, ys, self.integer)
            else:
                lines = [sum_text(pairs[c], self.fmt(sums[c]), self.integer, head=f"channel {c + 1}: ")
                         for c in range(C)] + [total]
            taps_on = {f"x{c}": disp for c in range(C)}
            box = {f"x{c}": (*disp[0], *disp[-1]) for c in range(C)}
            outs = [("y", o[0], o[1], float(y[o]), ys)]
        record = {
            "output": tuple(int(v) for v in o),
            "cells": [tuple(int(v) for v in t) for t, p in zip(taps, pads) if not p],
            "padding_taps": int(pads.sum()),
            "values": [float(y[o])],
            "texts": [ys],
            "channel_sums": [float(v) for v in sums],
            "pairs": [[(float(a), float(b)) for a, b in pc] for pc in pairs],   # factors shown, per channel
        }
        return Step(outs=outs, taps=taps_on, lines=lines, record=record, box=box)

    def _layout_1d(self, xp, pad_mask, y, top, bottom):
        g = self.geometry
        C, L, k, o = self.channels, xp.shape[1], g.kernel[0], g.out_shape[0]
        prod_w = 4.6 if self.integer else 5.8     # decimals make longer products
        gap_xw, label_w = 0.45, 0.6
        cell = cell_for_pitch(min((RIGHT_X - LEFT_X - 0.7 - gap_xw - label_w - 0.3 - prod_w) / (L + k),
                                  (top - bottom - 0.45) / (C + 1.8)))
        gap = gap_for(cell)
        xg = CellGrid(xp, "input", cell, self.integer, padding=np.broadcast_to(pad_mask, xp.shape))
        wg = CellGrid(self.w[0], "kernel", cell, self.integer)
        yg = CellGrid(y[None], "output", cell, self.integer, empty=True)
        x0 = LEFT_X + 0.7
        row0 = top - 0.4 - cell / 2
        xg.group.shift(np.array([x0 + cell / 2, row0, 0]) - xg.position(0, 0))
        wg.group.shift(xg.position(0, L - 1) + np.array([cell + gap + gap_xw + label_w, 0, 0]) - wg.position(0, 0))
        out_y = xg.position(C - 1, 0)[1] - (cell + gap) * 1.8
        first_real = self.to_display((0,))[0]
        yg.group.shift(np.array([xg.position(0, first_real)[0], out_y, 0]) - yg.position(0, 0))
        labels = VGroup()
        for c in range(C):
            labels.add(_row_label(f"x{c + 1}", xg, c, style.INPUT), _row_label(f"w{c + 1}", wg, c, style.KERNEL))
        labels.add(_row_label("y", yg, 0, style.OUTPUT))
        col_labels = [None] * L
        for i in range(g.in_shape[0]):
            col_labels[self.to_display((i,))[0]] = i + 1
        labels.add(index_labels(xg, col_labels, "cols"), index_labels(yg, list(range(1, o + 1)), "cols"))
        prod_x = wg.group.get_right()[0] + 0.3
        anchors = [np.array([prod_x, xg.position(c, 0)[1], 0]) for c in range(C)]
        total_x = wg.group.get_left()[0] - label_w      # the total has the row below the kernel to itself
        anchors.append(np.array([total_x, out_y, 0]))
        slide = Slide(self, {"x": xg, "y": yg}, products_anchor=anchors,
                      products_size=([RIGHT_X - prod_x] * C + [RIGHT_X - total_x], cell * 1.1))

        def marks_on():
            return [(xg, [(c, self.to_display(i)[0]) for i in self.windows.never_read for c in range(C)])]
        return {"x": xg, "w": wg, "y": yg}, labels, slide, marks_on

    def _layout_2d(self, xp, pad_mask, y, top, bottom):
        C = self.channels
        multi = C > 1
        big = [Panel(f"x{c}", f"x{c + 1}" if multi else "x", xp[c], "input", padding=pad_mask) for c in range(C)]
        small = [Panel(f"w{c}", f"w{c + 1}" if multi else "w", self.w[0, c], "kernel") for c in range(C)]
        out = [Panel("y", "y", y, "output", empty=True)]
        n_lines = self.geometry.kernel[0] + 2 if C == 1 else C + 1
        grids, labels, anchor, size = self.layout_2d(big, small, out, top, bottom, n_lines)
        slide = Slide(self, grids, products_anchor=anchor, products_size=size)

        def marks_on():
            cells = [self.to_display(i) for i in self.windows.never_read]
            return [(grids[f"x{c}"], cells) for c in range(C)]
        return grids, labels, slide, marks_on


def _row_label(s, grid: CellGrid, row: int, color):
    t = text(s, size=style.LABEL_SIZE * 0.9 * min(1.0, grid.cell / 0.45), color=color)
    t.next_to(grid.square(row, 0), LEFT, buff=0.15)
    return t
