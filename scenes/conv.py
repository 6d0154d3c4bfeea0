"""Convolution scenes drawn from the convolution Story (`viz.story.conv`): ConvScene, the base both
conv animations share, and ConvSlide, the forward pass.

The Story holds every number, index, text and time: the grids as drawn (the padded input with its
padding mask, the kernel, the output), one step per output position (the taps read, the padding taps,
the cell written, the lines of products and their sum, the window in words) and a closing step with
the never-read inputs. ConvSlide lays the grids out from the frame and the Story, then plays the steps
on the Story's timeline with `StoryPlayer` (scenes/player.py): one step, one screen.
"""
from __future__ import annotations

import numpy as np
from manim import DOWN, LEFT, RIGHT, UL, UP, VGroup

from viz.story import conv as SC

from . import conv_plan as P
from . import style
from .common import CellGrid, fit, legend, text
from .player import GridView, StoryPlayer
from .conv_backward import PartScene
from .conv_plan import DOT_W, GAP, INSET_SEP, LABEL_W, PAIR_SEP, PANEL_SEP, TEXT_GAP, TITLE_H
from .story_scene import StoryScene

FRAME_W, FRAME_H = 14.22, 8.0
LEFT_X = -FRAME_W / 2 + style.FRAME_MARGIN
RIGHT_X = FRAME_W / 2 - style.FRAME_MARGIN


class ConvScene(StoryScene):
    """The base of the conv animations: the Story (built from the parameters, or given), the header,
    the legend and the grid views drawn from it, and the step player. Subclasses set `build_story`
    and lay out their grids in `construct`.
    """
    build_story = staticmethod(SC.forward_story)

    def __init__(self, *, input, kernel, stride=1, padding=0, dilation=1, channels: int = 1, filters: int = 1,
                 groups: int = 1, seed: int = 0, values: str = "int", bias: bool = False, story=None,
                 step_time: float = style.STORY_STEP_TIME, x=None, w=None, b=None, grad_y=None, **scene_kwargs):
        params = dict(input=input, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                      channels=channels, filters=filters, groups=groups, values=values, seed=seed, bias=bias,
                      x=x, w=w, b=b, grad_y=grad_y)
        story = story if story is not None else type(self).build_story(params)
        super().__init__(story=story, step_time=step_time, **scene_kwargs)
        self.captions: list[str] = []          # the title and formula lines shown
        self.layout: dict = {}                 # where each grid cell was drawn (for the frame tests)
        self.shown: list[dict] = []            # per step, what the player drew (StoryPlayer.shown)

    # ---- drawing the Story ---------------------------------------------------------------------
    def story_header(self):
        """The Story's title and formula lines, top-left."""
        self.captions += [self.story.title, *self.story.formula]
        t = text(self.story.title, size=style.TITLE_SIZE * 0.75, color=style.TEXT, font=style.FONT)
        fit(t, FRAME_W - 2 * style.FRAME_MARGIN, 0.5)
        body = VGroup(*[text(f, size=style.FORMULA_SIZE * 0.9, color=style.MUTED) for f in self.story.formula])
        body.arrange(DOWN, aligned_edge=LEFT, buff=0.1)
        fit(body, FRAME_W - 2 * style.FRAME_MARGIN, 0.75)
        group = VGroup(t, body).arrange(DOWN, aligned_edge=LEFT, buff=0.14) if len(body) else VGroup(t)
        group.to_corner(UL, buff=style.FRAME_MARGIN)
        return group

    def story_legend(self, items):
        lg = legend(items)
        fit(lg, FRAME_W - 2 * style.FRAME_MARGIN, 0.36)
        lg.to_edge(DOWN, buff=style.FRAME_MARGIN * 0.8)
        return lg

    def play_story(self, views: dict, text_at, extra=None, still=()):
        """Show the layout from the first frame, hold the intro, then play every step on the timeline."""
        self.add(*still, *[v.group for v in views.values()])
        self.record_layout(views)
        self.boxes = [(f"still {i}", _box(m)) for i, m in enumerate(still)]
        for name, v in views.items():
            self.boxes += [(f"{name} panel {i}", _box(p.group)) for i, p in enumerate(v.panels)]
            self.boxes += [(f"{name} label {i}", _box(t)) for i, t in enumerate(v.labels.submobjects)]
        first = extra(self.story.steps[0]) if extra else None
        if first is not None:
            self.boxes += [(f"inset {i}", _box(m)) for i, m in enumerate(first.submobjects)]
        self.hold_until(self.intro_time)
        player = StoryPlayer(self, views, text_at, extra)
        for k, (start, end) in enumerate(self.timeline):
            player.play(k, start, end)
        self.shown = player.shown
        return player

    def record_layout(self, views: dict):
        """Cell centres and sides in frame units, per Story grid and cell (the frame tests map them to
        pixels): layout[grid] = {"cell": side, "centres": {cell index: (x, y)}}; layout["text"] is the
        box of the step's lines (left, top, width, height)."""
        for name, view in views.items():
            shape = tuple(view.grid.shape)
            self.layout[name] = {"cell": view.cell, "centres": {
                idx: tuple(float(v) for v in view.centre(idx)[:2]) for idx in np.ndindex(*shape)}}


# ======================================================================================================
# Forward

LEGEND = [("input", "input x"), ("padding", "padding (0)"), ("kernel", "kernel w"), ("output", "output y"),
          ("highlight", "window"), ("never_read", "never read")]


def _box(mob) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a mobject in frame units."""
    lo, hi = mob.get_corner(DOWN + LEFT), mob.get_corner(UP + RIGHT)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


class ConvSlide(ConvScene, PartScene):
    """The forward pass: the window lit on the padded input, the output cell filled, the products and
    their sum, one Story step per output position; last, the never-read inputs filled.

    Several filters (F output maps, each its own kernel, maybe in groups) are drawn part by part as
    the backward pass is (PartScene: x, the F·C/G kernel slices, the F maps, one cell pitch), the
    kernel in use lit with the window.

    1-D: channels are stacked rows, the kernel's rows beside them, the output row below, the text
    beside or below. 2-D: the channel panels on the left; on the right the kernel(s) and the output,
    the text below them; with several channels a zoomed inset beside each kernel shows the numbers
    its window reads at this step (the panels themselves may be too small for numbers). The layout
    is the best of several candidates: the one whose smallest element (input cells, kernel and
    output cells, text) is largest.
    """

    @property
    def legend_items(self):
        return LEGEND + ([("bias", "bias b")] if P._has(self.story, "b") else [])

    def construct(self):
        if P.by_parts(self.story):
            return self.draw_parts()
        head = self.story_header()
        foot = self.story_legend(LEGEND + ([("bias", "bias b")] if P._has(self.story, "b") else []))
        plan = P.best(self.story)
        self.chosen = plan
        views, inset, anchor = (self._build_1d if plan["depth"] == 1 else self._build_2d)(plan)
        extent, scale = plan["extent"], plan["text_scale"]
        box = plan["box"]
        # centre the content vertically in the box
        low = min(min(v.group.get_bottom()[1] for v in views.values()), anchor[1] - extent[1] * scale)
        high = max(v.group.get_top()[1] for v in views.values())
        dy = -max(0.0, (low - box[3]) - max(0.0, high - box[1])) / 2
        for v in views.values():
            v.group.shift(UP * dy)
        if inset is not None:
            inset.shift(UP * dy)
        anchor = anchor + UP * dy
        self.layout["text"] = {"left": float(anchor[0]), "top": float(anchor[1]),
                               "width": float(extent[0] * scale), "height": float(extent[1] * scale)}
        size = style.FORMULA_SIZE * scale
        self.play_story(views, lambda step: (anchor, size), extra=inset.for_step if inset else None,
                        still=(head, foot))

    # ---- 1-D: x rows with the kernel beside them, y below; text beside or below ---------------------
    def _build_1d(self, plan):
        x0, top, _, _ = plan["box"]
        cell = plan["cell"]
        g = {n: self.story.grid(n) for n in ("x", "w", "y")}
        x = GridView(g["x"], cell, numbered=plan["x_numbered"]).place(x0 + LABEL_W, top - 0.35)
        w = GridView(g["w"], cell, col_labels=False).place(x.group.get_right()[0] + GAP + LABEL_W, top - 0.35)
        y_top = x.panels[0].position(g["x"].shape[0] - 1, 0)[1] - cell / 2 - 0.75
        y = GridView(g["y"], cell, empty=True).place(x0 + LABEL_W, y_top)
        views = {"x": x, "w": w, "y": y}
        if P._has(self.story, "b"):
            views["b"] = GridView(self.story.grid("b"), cell, col_labels=False).place(
                w.panels[0].position(0, 0)[0] - cell / 2, y_top)
        if plan["side"] == "right":
            anchor = np.array([max(v.group.get_right()[0] for v in views.values()) + TEXT_GAP + 0.2, top, 0])
        else:
            anchor = np.array([x0, min(v.group.get_bottom()[1] for v in views.values()) - TEXT_GAP, 0])
        return views, None, anchor

    # ---- 2-D: channel panels left; kernels (and the inset), output right, text below them -------------
    def _build_2d(self, plan):
        x0, top, x1, _ = plan["box"]
        C = self.story.grid("x").shape[0]
        x = GridView(self.story.grid("x"), plan["cell_x"], numbered=plan["x_numbered"]).place(
            x0 + LABEL_W, top - TITLE_H, columns=plan["pc"], sep=PANEL_SEP + 0.3, label_h=TITLE_H - 0.3)
        left = max(x0 + (x1 - x0) * plan["fl"], x.group.get_right()[0]) + GAP
        cell = plan["cell_r"]
        inset = None
        if C > 1:
            inset = _Inset(self.story, cell, left + 0.1, top - TITLE_H, plan["pairs"])
            w, right = inset.kernels, inset.right
        else:
            w = GridView(self.story.grid("w"), cell, col_labels=False).place(left + LABEL_W * 0.6, top - TITLE_H)
            right = w.group.get_right()[0]
        y = GridView(self.story.grid("y"), cell, empty=True).place(right + GAP + LABEL_W * 0.6, top - TITLE_H)
        views = {"x": x, "w": w, "y": y}
        if P._has(self.story, "b"):
            views["b"] = GridView(self.story.grid("b"), cell, col_labels=False).place(
                y.group.get_right()[0] + GAP, top - TITLE_H)
        if plan["side"] == "below":
            low = min(v.group.get_bottom()[1] for v in views.values())
            return views, inset, np.array([x0, low - TEXT_GAP, 0])
        low = min(v.group.get_bottom()[1] for k, v in views.items() if k != "x")
        return views, inset, np.array([left, low - TEXT_GAP, 0])


class _Inset:
    """Several 2-D channels: beside each kernel w_c, the numbers its window reads at this step (from
    the Story step's `patch_texts`), at the kernels' size, so the arithmetic stays readable."""

    def __init__(self, story, cell, x0, top, pairs):
        self.story, self.cell = story, cell
        self.w = story.grid("w")
        C, kh, kw = self.w.shape
        self.per = -(-C // pairs)
        step = cell + min(style.CELL_GAP, cell / 9)
        self.pair_w = 2 * kw * step + DOT_W
        self.origins = []
        for c in range(C):
            col, row = divmod(c, self.per)
            self.origins.append((x0 + col * (self.pair_w + PAIR_SEP), top - row * (kh * step + INSET_SEP)))
        self.kernels = GridView(self.w, cell, col_labels=False, row_labels=False)
        for c, p in enumerate(self.kernels.panels):
            ox, oy = self.origins[c]
            target = np.array([ox + kw * step + DOT_W + cell / 2, oy - cell / 2, 0])
            p.group.shift(target - p.position(0, 0))
        self.kernels._draw_labels()
        x_names = story.grid("x").axis_labels[0]
        for c, (ox, oy) in enumerate(self.origins):      # "x1" above the window's numbers
            t = text(x_names[c], size=style.LABEL_SIZE * 0.75, color=style.HIGHLIGHT, font=style.FONT)
            fit(t, kw * step, 0.32)
            t.move_to(np.array([ox, oy + 0.1, 0]), aligned_edge=DOWN + LEFT)
            self.kernels.labels.add(t)
        self.right = max(p.group.get_right()[0] for p in self.kernels.panels)

    def shift(self, v):
        """Follow the kernels when the layout moves (the inset is drawn per step at the origins)."""
        self.origins = [(ox + v[0], oy + v[1]) for ox, oy in self.origins]
        return self

    def for_step(self, step):
        """The window's numbers per channel, drawn left of each kernel (none on the closing step)."""
        texts = step.data.get("patch_texts")
        if not texts:
            return None
        C, kh, kw = self.w.shape
        group = VGroup()
        pads = np.asarray(step.data["padding"], bool).reshape(kh, kw)
        for c in range(C):
            vals = np.zeros((kh, kw))
            grid = CellGrid(vals, "highlight", self.cell, padding=None, muted=pads,
                            texts=np.asarray(texts[c], dtype=object).reshape(kh, kw))
            ox, oy = self.origins[c]
            grid.group.shift(np.array([ox + self.cell / 2, oy - self.cell / 2, 0]) - grid.position(0, 0))
            dot = text("·", size=style.LABEL_SIZE, color=style.TEXT)
            dot.next_to(grid.group, RIGHT, buff=0.06)
            group.add(grid.group, dot)
        return group
