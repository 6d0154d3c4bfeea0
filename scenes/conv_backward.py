"""The convolution backward pass as an animation (ConvBackward): grad_w, then grad_x.

grad_w = corr(pad(x), grad_y; stride d, dilation s) (the forward stride becomes a dilation) and
grad_x = corr(pad(dilate(grad_y, s), d(k-1)), flip(w); stride 1, dilation d) (a transposed convolution),
with every window and number from `viz.conv.conv_backward_steps`.
"""
from __future__ import annotations

import numpy as np
from manim import DOWN, LEFT, RIGHT, UL, UP, FadeIn, FadeOut, Scene, VGroup  # noqa: F401

from viz import conv as V

from . import style
from .common import (  # noqa: F401
    CellGrid, Panel, Slide, Step, arrange_panels, cell_for_pitch, gap_for, color_span, fit, fmt_factor, fmt_index,
    fmt_value, index_labels, legend, markup, pretty_formula, text,
)
from .conv import (  # noqa: F401
    FRAME_W, FRAME_H, LEFT_X, RIGHT_X, ConvScene, _params_str, _shape_str, block_lines, sum_text, _row_label,
)


# ======================================================================================================
# Backward

class ConvBackward(ConvScene):
    """The backward pass, every number from viz.conv.conv_backward_steps.

    Part 1, ∂ℓ/∂w: correlate the padded input with the upstream gradient ∂ℓ/∂y as the kernel: the
    forward stride becomes the dilation (and the dilation the stride); channels are not summed.
    Part 2, ∂ℓ/∂x, the transposed convolution: ∂ℓ/∂y with zeros inserted (dilated by the stride),
    padded, correlated with the flipped kernel at the forward dilation.
    """

    def construct(self):
        g = self.geometry
        C = self.channels
        st = V.conv_backward_steps(self.x, self.w, self.grad_y, **self.conv_args)
        self.backward_steps = st
        gwg, gxg = st.grad_w_geometry, st.grad_x_geometry
        n_w, n_x = int(np.prod(gwg.out_shape)), int(np.prod(gxg.out_shape))
        self.progress_total = 2 + Slide.n_plays(n_w) + 3 + Slide.n_plays(n_x) + 3
        self.grad_w_steps: list[dict] = []
        self.grad_x_steps: list[dict] = []
        title = (f"Convolution backward {g.ndim}-D: {C} channel{'s' if C > 1 else ''} × "
                 f"{_shape_str(g.in_shape)}, {_params_str(g)}")
        s_txt, d_txt = _shape_str(g.stride), _shape_str(g.dilation)
        foot = self.footer([("input", "input x"), ("padding", "padding (0)"), ("kernel", "kernel w"),
                            ("gradient", "gradients"), ("muted", "inserted 0"), ("highlight", "window"),
                            ("never_read", "never read")])
        multi = C > 1
        strided = any(v > 1 for v in g.stride)

        # ---- part 1: grad_w = corr(pad(x), grad_y; stride d, dilation s) ----------------------
        head = self.header(title, [
            f"∂ℓ/∂w = correlate the padded x with ∂ℓ/∂y as the kernel: stride {_shape_str(gwg.stride)},"
            f" dilation {_shape_str(gwg.dilation)}",
            f"the forward stride {s_txt} becomes a dilation of {s_txt}; channels are not summed" if strided
            else "stride 1: ∂ℓ/∂y is used as it is (nothing to dilate); channels are not summed"])
        top, bottom = head.get_bottom()[1] - 0.3, foot.get_top()[1] + 0.7
        xp = self.padded(self.x)
        pad_mask = self.padding_mask()
        inserted = V.dilate(np.ones(st.grad_y.shape[1:]), g.stride) == 0   # zeros dilate() inserts
        gy_panels = [Panel("gd", f"∂ℓ/∂y dilated by {s_txt}" if strided else "∂ℓ/∂y", st.grad_y_dilated[0],
                           "gradient", muted=inserted)]
        if g.ndim == 1:
            grids, labels, slide = self._layout_1d(
                [Panel("g", "∂ℓ/∂y", st.grad_y[0], "gradient")]
                + ([Panel("gd", "dilated", st.grad_y_dilated[0], "gradient", muted=inserted)] if strided else []),
                Panel("x", "x{c}", xp, "input", padding=np.broadcast_to(pad_mask, xp.shape)),
                Panel("gw", "∂ℓ/∂w{c}", st.grad_w[0], "gradient", empty=True), top, bottom)
        else:
            big = [Panel(f"x{c}", f"x{c + 1}" if multi else "x", xp[c], "input", padding=pad_mask)
                   for c in range(C)]
            out = [Panel(f"gw{c}", f"∂ℓ/∂w{c + 1}" if multi else "∂ℓ/∂w", st.grad_w[0, c], "gradient", empty=True)
                   for c in range(C)]
            n_lines = g.out_shape[0] + 2 if C == 1 else C
            grids, labels, anchor, size = self.layout_2d(big, gy_panels, out, top, bottom, n_lines)
            slide = Slide(self, grids, products_anchor=anchor, products_size=size)
        self.play(FadeIn(head), FadeIn(foot), run_time=style.INTRO_TIME)
        self.play(*[FadeIn(gr.group) for gr in grids.values()], FadeIn(labels), run_time=style.INTRO_TIME)
        gw_windows = gwg.windows()
        slide.play_steps([self._grad_w_step(j, gw_windows, xp, st) for j in np.ndindex(*gwg.out_shape)],
                         record=self.grad_w_steps)
        self.play(*slide.clear(), run_time=style.PAUSE)
        self.wait(style.PAUSE)
        self.play(FadeOut(VGroup(*[gr.mobjects() for gr in grids.values()], labels, head)), run_time=style.PAUSE)

        # ---- part 2: grad_x = corr(pad(dilate(grad_y, s)), flip(w); stride 1, dilation d) -------
        pads = " × ".join(f"({lo},{hi})" for lo, hi in st.grad_x_padding).replace("-", "−")
        if any(v < 0 for pair in st.grad_x_padding for v in pair):
            pads += " (negative: crop)"
        head2 = self.header(title, [
            (f"∂ℓ/∂x = transposed convolution: dilate ∂ℓ/∂y by the stride {s_txt} (insert zeros),"
             if strided else "∂ℓ/∂x = transposed convolution (stride 1: no zeros to insert):"),
            f"pad by {pads}, correlate with the flipped kernel: stride 1, dilation {d_txt}"])
        gyp = st.grad_y_padded[0]
        # which cells of the padded, dilated gradient hold an entry, an inserted zero, or padding:
        # the reference's own pad(dilate(.)) applied to masks (negative padding crops, as there)
        entry = V.pad(V.dilate(np.ones(st.grad_y.shape[1:]), g.stride), st.grad_x_padding) == 1
        # and which upstream entry each cell holds (1-based flat index, 0 for zeros): for the record
        labels_in = np.arange(1, st.grad_y[0].size + 1, dtype=float).reshape(st.grad_y.shape[1:])
        self._gy_labels = V.pad(V.dilate(labels_in, g.stride), st.grad_x_padding).astype(int)
        inside = V.pad(np.ones(st.grad_y_dilated.shape[1:]), st.grad_x_padding) == 1
        big2 = Panel("gp", "∂ℓ/∂y dilated, padded", gyp, "gradient", padding=~inside, muted=inside & ~entry)
        if g.ndim == 1:
            grids2, labels2, slide2 = self._layout_1d(
                [Panel("gp", "padded", gyp, "gradient", padding=~inside, muted=inside & ~entry)],
                Panel("gx", "∂ℓ/∂x{c}", st.grad_x, "gradient", empty=True),
                Panel("wf", "flip(w{c})", st.w_flipped[0], "kernel"), top, bottom)
        else:
            small = [Panel(f"wf{c}", f"flip(w{c + 1})" if multi else "flip(w)", st.w_flipped[0, c], "kernel")
                     for c in range(C)]
            out = [Panel(f"gx{c}", f"∂ℓ/∂x{c + 1}" if multi else "∂ℓ/∂x", st.grad_x[c], "gradient", empty=True)
                   for c in range(C)]
            n_lines = g.kernel[0] + 2 if C == 1 else C
            grids2, labels2, anchor, size = self.layout_2d([big2], small, out, top, bottom, n_lines)
            slide2 = Slide(self, grids2, products_anchor=anchor, products_size=size)
        self.play(FadeIn(head2), FadeIn(VGroup(*[gr.group for gr in grids2.values()], labels2)),
                  run_time=style.INTRO_TIME)
        gx_windows = gxg.windows()
        slide2.play_steps([self._grad_x_step(m, gx_windows, gyp, st) for m in np.ndindex(*gxg.out_shape)],
                          record=self.grad_x_steps)
        self.steps = self.grad_w_steps + self.grad_x_steps

        # inputs no window reads get exactly zero gradient
        nr = self.windows.never_read
        if g.ndim == 1:
            marks = VGroup(*[grids2["gx"].outline([(c, i[0]) for i in nr for c in range(C)],
                                                  color=style.NEVER_READ)])
        else:
            marks = VGroup(*[grids2[f"gx{c}"].outline([tuple(i) for i in nr], color=style.NEVER_READ)
                             for c in range(C)])
        cap = self.never_read_caption("no window reads them: their gradient is exactly 0")
        self.play(*slide2.clear(), run_time=style.PAUSE)
        self.play(FadeIn(marks), FadeIn(cap), run_time=style.PAUSE)
        self.wait(style.OUTRO_TIME)

    # ---- steps ---------------------------------------------------------------------------------
    def _grad_w_step(self, j, win: V.Windows, xp, st) -> Step:
        """grad_w[0, c, j] for every channel c: the grad_w correlation's window at its output j."""
        g = self.geometry
        C = self.channels
        taps = win.indices[j].reshape(-1, g.ndim)       # coordinates in x_padded (= the padded x drawn)
        disp = [tuple(int(v) for v in t) for t in taps]
        g_index = list(np.ndindex(*g.out_shape))
        pairs = [[(xp[(c, *t)], st.grad_y[(0, *n)]) for t, n in zip(disp, g_index)] for c in range(C)]
        vals = [float(st.grad_w[(0, c, *j)]) for c in range(C)]
        texts = [self.fmt(v) for v in vals]
        if g.ndim == 1:
            lines = [sum_text(pairs[c], texts[c], self.integer) for c in range(C)]
            taps_on = {"x": [(c, d[0]) for c in range(C) for d in disp]}
            box = {"x": (0, disp[0][0], C - 1, disp[-1][0])}
            outs = [("gw", c, j[0], vals[c], texts[c]) for c in range(C)]
        else:
            if C == 1:
                cols = g.out_shape[1]
                rows = [pairs[0][r * cols:(r + 1) * cols] for r in range(g.out_shape[0])]
                lines = [f"∂ℓ/∂w[{fmt_index(j)}] ="] + block_lines(rows, texts[0], self.integer)
            else:
                lines = [sum_text(pairs[c], texts[c], self.integer, head=f"∂ℓ/∂w{c + 1}[{fmt_index(j)}] = ")
                         for c in range(C)]
            taps_on = {f"x{c}": disp for c in range(C)}
            box = {f"x{c}": (*disp[0], *disp[-1]) for c in range(C)}
            outs = [(f"gw{c}", j[0], j[1], vals[c], texts[c]) for c in range(C)]
        padded_mask = self.padding_mask()
        cells = [tuple(int(v) - lo for v, (lo, _) in zip(d, g.padding)) for d in disp if not padded_mask[d]]
        record = {"part": "grad_w", "output": tuple(int(v) for v in j), "cells": cells, "values": vals,
                  "texts": texts, "pairs": [[(float(a), float(b)) for a, b in pc] for pc in pairs]}
        return Step(outs=outs, taps=taps_on, lines=lines, record=record, box=box)

    def _grad_x_step(self, m, win: V.Windows, gyp, st) -> Step:
        """grad_x[c, m] for every channel c: the flipped kernel over the padded, dilated gradient."""
        g = self.geometry
        C = self.channels
        taps = win.indices[m].reshape(-1, g.ndim)       # coordinates in grad_y_padded
        disp = [tuple(int(v) for v in t) for t in taps]
        k_index = list(np.ndindex(*g.kernel))
        pairs = [[(gyp[t], st.w_flipped[(0, c, *kk)]) for t, kk in zip(disp, k_index)] for c in range(C)]
        vals = [float(st.grad_x[(c, *m)]) for c in range(C)]
        texts = [self.fmt(v) for v in vals]
        if g.ndim == 1:
            lines = [sum_text(pairs[c], texts[c], self.integer) for c in range(C)]
            taps_on = {"gp": [(0, d[0]) for d in disp]}
            box = {"gp": (0, disp[0][0], 0, disp[-1][0])}
            outs = [("gx", c, m[0], vals[c], texts[c]) for c in range(C)]
        else:
            if C == 1:
                cols = g.kernel[1]
                rows = [pairs[0][r * cols:(r + 1) * cols] for r in range(g.kernel[0])]
                lines = [f"∂ℓ/∂x[{fmt_index(m)}] ="] + block_lines(rows, texts[0], self.integer)
            else:
                lines = [sum_text(pairs[c], texts[c], self.integer, head=f"∂ℓ/∂x{c + 1}[{fmt_index(m)}] = ")
                         for c in range(C)]
            taps_on = {"gp": disp}
            box = {"gp": (*disp[0], *disp[-1])}
            outs = [(f"gx{c}", m[0], m[1], vals[c], texts[c]) for c in range(C)]
        sources = sorted(tuple(int(v) for v in np.unravel_index(int(self._gy_labels[t]) - 1, g.out_shape))
                         for t in disp if self._gy_labels[t] > 0)
        record = {"part": "grad_x", "output": tuple(int(v) for v in m), "cells": disp, "values": vals,
                  "texts": texts, "sources": sources,
                  "pairs": [[(float(a), float(b)) for a, b in pc] for pc in pairs]}
        return Step(outs=outs, taps=taps_on, lines=lines, record=record, box=box)

    # ---- 1-D layout: single rows on top; below, C rows on the left and C rows on the right -------
    def _layout_1d(self, top_rows, left, right, top, bottom):
        """top_rows: one-row panels (the gradient, dilated / padded); left, right: panels of C rows
        drawn side by side, channel c on row c; the products of channel c beside right's row c."""
        C = self.channels
        L_left = max([np.atleast_2d(p.values).shape[1] for p in (*top_rows, left)])
        L_right = np.atleast_2d(right.values).shape[1]
        label_l, label_r, prod_w = 1.25, 1.45, 4.1
        n_rows = len(top_rows) + C
        cell = cell_for_pitch(min((RIGHT_X - LEFT_X - label_l - label_r - 0.3 - 0.35 - prod_w) / (L_left + L_right),
                                  (top - bottom - 0.3 - 0.3 * len(top_rows)) / n_rows))
        gap = gap_for(cell)
        x0 = LEFT_X + label_l
        cur = top - 0.15 - cell / 2
        grids, labels = {}, VGroup()

        def place(p, x, y):
            gr = CellGrid(np.atleast_2d(p.values), p.role, cell, self.integer,
                          padding=None if p.padding is None else np.atleast_2d(p.padding),
                          muted=None if p.muted is None else np.atleast_2d(p.muted), empty=p.empty)
            gr.group.shift(np.array([x + cell / 2, y, 0]) - gr.position(0, 0))
            grids[p.key] = gr
            for r in range(gr.rows):
                name = p.label if gr.rows == 1 else p.label.format(c=r + 1)
                t = text(name, size=style.LABEL_SIZE * 0.75, color=style.ROLE_COLORS[p.role])
                fit(t, (label_l if x == x0 else label_r) - 0.2, cell)
                t.next_to(gr.square(r, 0), LEFT, buff=0.15)
                labels.add(t)
            return gr

        for p in top_rows:
            place(p, x0, cur)
            cur -= cell + gap + 0.3
        cur -= 0.1
        lg = place(left, x0, cur)
        xr = x0 + L_left * (cell + gap) + 0.3 + label_r
        rg = place(right, xr, cur)
        prod_x = rg.group.get_right()[0] + 0.35
        anchors = [np.array([prod_x, rg.position(r, 0)[1], 0]) for r in range(C)]
        slide = Slide(self, grids, products_anchor=anchors, products_size=(RIGHT_X - prod_x, cell * 1.1))
        del lg
        return grids, labels, slide
