"""The convolution backward pass as an animation (ConvBackward), drawn from `viz.story.conv_backward.backward_story`.

    ∂ℓ/∂w = corr(pad(x), ∂ℓ/∂y; stride d, dilation s)                 (the forward stride becomes a dilation)
    ∂ℓ/∂x = corr(pad(dilate(∂ℓ/∂y, s), d(k−1) − p), flip(w); stride 1, dilation d)   (transposed conv)
    ∂ℓ/∂b = Σ ∂ℓ/∂y                                                    (with --bias)

The scene computes nothing: grids, texts, lit cells, written values and step times are the Story's;
where things go is `scenes.conv_layout.plan` (sizes from the frame and the Story). Step k starts at
`timeline[k][0]`: the previous step's highlights and lines fade out, this step's fade in (a short
transition, never a text morph; the taps read filled, taps on padding or inserted zeros
and the written cells outlined, never-read cells filled), its cells are written, and the frame holds until the step's end, so
any frame of a hold shows that step and nothing of another.

For the tests the scene records what was on screen after each transition (`screen[k]`): the kind,
name and bounding box of every text and cell mobject, and the digit height of every text.
"""
from __future__ import annotations

import functools

import numpy as np
from manim import DOWN, LEFT, UL, FadeIn, FadeOut, VGroup

from viz.story.conv_backward import backward_story

from . import conv_layout, style
from .common import CellGrid, glyphs, legend, text
from .story_scene import StoryScene

FIGURE_PARAMS = ("input", "kernel", "stride", "padding", "dilation", "channels", "filters", "groups", "values",
                 "bias", "seed", "x", "w", "b", "grad_y")
FORMULA_OF_PART = {"grad_w": 0, "grad_x": 1, "forward": None}   # which Story.formula line heads each part
#                                                                  (None: all of them, joined)
LINE_COLORS = {"window": style.HIGHLIGHT, "output": style.GRADIENT, "never_read": style.NEVER_READ,
               "text": style.TEXT}
LEGEND = (("input", "input x"), ("padding", "padding (0)"), ("kernel", "kernel w"), ("gradient", "gradients"),
          ("muted", "inserted 0"), ("highlight", "window"), ("never_read", "never read"))


def _tag(mob, kind: str, name: str, glyph: float = 0.0):
    mob.viz_kind, mob.viz_name, mob.viz_glyph = kind, name, glyph
    return mob


class _Panel:
    """One drawn panel: a CellGrid of a Story grid (or of one channel of it), with its labels."""

    def __init__(self, grid, pp: conv_layout.PanelPlan, part: conv_layout.PartPlan, empty: bool):
        values = grid.array()
        texts = np.asarray(grid.texts, dtype=object).reshape(grid.shape)
        pad = np.asarray(grid.padding, bool).reshape(grid.shape) if grid.padding else np.zeros(grid.shape, bool)
        mute = np.asarray(grid.muted, bool).reshape(grid.shape) if grid.muted else np.zeros(grid.shape, bool)
        if pp.channel is not None:
            values, texts, pad, mute = values[pp.channel], texts[pp.channel], pad[pp.channel], mute[pp.channel]
        self.values, self.texts = np.atleast_2d(values), np.atleast_2d(texts)
        self.pad, self.mute = np.atleast_2d(pad), np.atleast_2d(mute)
        self.plan, self.part, self.name = pp, part, grid.name
        cell = part.cell
        self.cells = CellGrid(self.values, grid.role, cell, padding=self.pad, muted=self.mute, empty=True,
                              gap=part.pitch - cell)
        self.cells.group.shift(np.array([pp.x + cell / 2, pp.y - cell / 2, 0]) - self.cells.position(0, 0))
        for (r, c), sq in self.cells.squares.items():
            _tag(sq, "cell", f"{grid.name}[{pp.channel}]({r},{c})")
            if not empty and not self.pad[r, c]:
                sq.set_fill(sq.get_stroke_color(), opacity=style.CELL_FILL_OPACITY * (0.5 if self.mute[r, c] else 1))
        self.group = VGroup(self.cells.group)
        if not empty:
            for muted in (False, True):
                cells = [(r, c) for r in range(self.cells.rows) for c in range(self.cells.cols)
                         if bool(self.pad[r, c] or self.mute[r, c]) == muted]
                if cells:
                    self.group.add(self.numbers(cells, style.MUTED if muted else style.TEXT))
        self.group.add(self._labels(grid))

    def numbers(self, cells, color=style.TEXT):
        size = self.part.number_size
        entries = [(self.texts[r, c], size, self.cells.position(r, c), self.part.cell * 0.9, self.part.cell * 0.8)
                   for r, c in cells]
        mob = glyphs(entries, color).set_z_index(style.Z_NUMBERS)
        return _tag(mob, "numbers", self.name, size * style.MONO_DIGIT_HEIGHT)

    def _labels(self, grid):
        pp, part = self.plan, self.part
        out = VGroup()
        lab = _tag(text(pp.label, size=part.label_size, color=style.ROLE_COLORS[grid.role]),
                   "text", f"label {pp.label}", part.label_size * style.MONO_DIGIT_HEIGHT)
        col_h = conv_layout.COL_LABEL_H if any(pp.col_labels) else 0.0
        lab.move_to(np.array([pp.x, pp.y - 0.02 + col_h + conv_layout.LABEL_H / 2, 0]), aligned_edge=LEFT)
        out.add(lab)
        if pp.title:         # the grid's name over its per-channel panels
            title = _tag(text(pp.title, size=part.label_size, color=style.ROLE_COLORS[grid.role]),
                         "text", f"title {pp.title}", part.label_size * style.MONO_DIGIT_HEIGHT)
            title.move_to(np.array([pp.x, pp.y - 0.02 + col_h + conv_layout.LABEL_H * 1.5, 0]), aligned_edge=LEFT)
            out.add(title)
        size = part.index_size
        for c, s in enumerate(pp.col_labels):
            if s:
                t = _tag(text(s, size=size, color=style.MUTED), "text", f"col {pp.label} {s}",
                         size * style.MONO_DIGIT_HEIGHT)
                out.add(t.move_to(self.cells.position(0, c) + np.array([0, part.cell / 2 + col_h / 2, 0])))
        for r, s in enumerate(pp.row_labels):
            if s:
                t = _tag(text(s, size=size, color=style.MUTED), "text", f"row {pp.label} {s}",
                         size * style.MONO_DIGIT_HEIGHT)
                out.add(t.next_to(self.cells.square(r, 0), LEFT, buff=0.08))
        return out


class PartScene(StoryScene):
    """A convolution Story drawn part by part (`Step.part`: forward, grad_w, grad_x, grad_b,
    never_read), every part's panels where `conv_layout.plan` puts them, one cell pitch per part.
    Draws the backward pass (ConvBackward) and the forward pass of several filters (ConvSlide)."""

    legend_items = LEGEND

    def __init__(self, *, story, step_time: float = style.STORY_STEP_TIME, **kwargs):
        super().__init__(story=story, step_time=step_time, **kwargs)
        self.screen: list[list[tuple]] = []      # per step: what the layout test checks
        self.panels: dict = {}                   # (grid name, channel) -> _Panel of the current part
        self.written: dict = {}                  # grid name -> set of cells written so far
        self.layouts: dict = {}                  # part -> grid -> cell side and centres (layout_at)

    # ---- frame furniture -------------------------------------------------------------------------
    def _header(self):
        size = 24
        t = text(self.story.title, size=size, color=style.TEXT, font=style.FONT)
        scale = min(1.0, (conv_layout.FRAME_W - 2 * style.FRAME_MARGIN) / t.width)
        t.scale(scale).to_corner(UL, buff=style.FRAME_MARGIN)
        return _tag(t, "text", "title", size * scale * style.MONO_DIGIT_HEIGHT)

    def _formula(self, part: str, title):
        i = FORMULA_OF_PART.get(part, -1)
        if i == -1 or (i is not None and i >= len(self.story.formula)) or not self.story.formula:
            return VGroup()
        size = 17
        line = "; ".join(self.story.formula) if i is None else self.story.formula[i]
        f = text(line, size=size, color=style.MUTED)
        scale = min(1.0, (conv_layout.FRAME_W - 2 * style.FRAME_MARGIN) / f.width)
        f.scale(scale).next_to(title, DOWN, buff=0.14, aligned_edge=LEFT)
        return _tag(f, "text", f"formula {part}", size * scale * style.MONO_DIGIT_HEIGHT)

    def _legend(self):
        lg = legend(self.legend_items)
        lg.scale(min(1.0, (conv_layout.FRAME_W - 2 * style.FRAME_MARGIN) / lg.width))
        lg.to_edge(DOWN, buff=style.FRAME_MARGIN)
        return _tag(lg, "text", "legend", style.SMALL_SIZE * style.MONO_DIGIT_HEIGHT)

    # ---- panels and step overlays --------------------------------------------------------------
    def _build_part(self, part: str) -> VGroup:
        """The panels of `part`: grids this part writes start empty (cells written before stay filled)."""
        pp = self.plans[part]
        writes_here = {w.target for s in self.story.steps if s.part == part for w in s.writes}
        self.panels = {}
        group = VGroup()
        layout = self.layouts.setdefault(part, {})
        for p in pp.panels:
            grid = self.story.grid(p.grid)
            panel = _Panel(grid, p, pp, empty=p.grid in writes_here)
            self.panels[p.grid, p.channel] = panel
            group.add(panel.group)
            centres = layout.setdefault(p.grid, {"cell": pp.cell, "centres": {}})["centres"]
            for (r, c) in panel.cells.squares:
                idx = (p.channel, r, c) if p.channel is not None else (c,) if len(grid.shape) == 1 else (r, c)
                centres[idx] = tuple(float(v) for v in panel.cells.position(r, c)[:2])
        return group

    @functools.cached_property
    def plans(self) -> dict:
        """Where each part's panels and lines go (computed on first use: ConvSlide may not draw by parts)."""
        return conv_layout.plan(self.story)

    def layout_at(self, k: int) -> dict:
        """Where each Story grid's cells are drawn during step k: {grid: {"cell": side, "centres":
        {Story index: (x, y) in frame units}}} (the panels change between parts)."""
        return self.layouts[self.story.steps[k].part]

    def _locate(self, target: str, cell):
        """The panel and (row, col) showing a Story cell (0-based, the grid's own coordinates)."""
        ndim = len(self.story.grid(target).shape)
        if ndim == 3:
            return self.panels.get((target, cell[0])), (cell[1], cell[2])
        if ndim == 1:
            return self.panels.get((target, None)), (0, cell[0])
        return self.panels.get((target, None)), (cell[0], cell[1])

    def _by_panel(self, target, cells):
        out: dict = {}
        for cell in cells:
            panel, rc = self._locate(target, tuple(cell))
            if panel is not None:
                out.setdefault(id(panel), (panel, []))[1].append(rc)
        return out.values()

    def _overlay(self, step) -> VGroup:
        """The step's highlights, as the forward scene draws them: the taps read filled in HIGHLIGHT,
        taps on padding or inserted zeros and the cells written outlined, never-read inputs filled."""
        g = VGroup()
        for lit in step.lit:
            for panel, cells in self._by_panel(lit.target, lit.cells):
                grid = panel.cells
                if lit.role in ("window", "bias"):
                    g.add(grid.fills(cells, style.HIGHLIGHT, style.WINDOW_FILL_OPACITY))
                elif lit.role in ("padding_tap", "muted", "output"):
                    g.add(grid.outline(cells, color=style.HIGHLIGHT).set_z_index(style.Z_OUTLINE))
                elif lit.role == "never_read":
                    g.add(grid.fills(cells, style.NEVER_READ, style.NEVER_READ_FILL_OPACITY))
        return g

    def _lines(self, step, pp: conv_layout.PartPlan) -> VGroup:
        g = VGroup()
        for i, line in enumerate(step.lines):
            t = text(line.text, size=pp.text_size, color=LINE_COLORS.get(line.role, style.TEXT))
            if t.width > pp.text_w:
                t.scale(pp.text_w / t.width)
            t.move_to(np.array([pp.text_x, pp.text_y - (i + 0.5) * pp.line_pitch, 0]), aligned_edge=LEFT)
            g.add(_tag(t, "line", f"{step.id} line {i + 1}", pp.text_size * style.MONO_DIGIT_HEIGHT
                       * min(1.0, pp.text_w / max(t.width, 1e-9))))
        return g

    def _writes(self, step):
        """Fill the cells this step writes and put their numbers in (returned as mobjects to fade in)."""
        mobs = []
        for w in step.writes:
            panel, (r, c) = self._locate(w.target, w.cell)
            self.written.setdefault(w.target, set()).add(tuple(w.cell))
            if panel is None:
                continue
            sq = panel.cells.square(r, c)
            sq.set_fill(sq.get_stroke_color(), opacity=style.CELL_FILL_OPACITY_STRONG)
            mobs.append(panel.numbers([(r, c)]))
        return mobs

    # ---- the timeline --------------------------------------------------------------------------
    def construct(self):
        self.draw_parts()

    def draw_parts(self):
        steps, timeline = self.story.steps, self.timeline
        title, foot = self._header(), self._legend()
        self.add(title, foot)
        part, panels, formula, overlay, lines = None, VGroup(), VGroup(), VGroup(), VGroup()
        fps = float(self.camera.frame_rate)
        for k, step in enumerate(steps):
            start, end = timeline[k]
            if k == 0:
                # the intro: the first part's panels fade in before the first step begins
                part = step.part
                panels, formula = self._build_part(part), self._formula(part, title)
                if self.renderer.skip_animations:
                    self.add(panels, formula)
                    self.wait(self.intro_time)
                else:
                    self.play(FadeIn(panels), FadeIn(formula), run_time=self.intro_time)
            self.begin_step(k)
            fade = min(style.TRANSITION_TIME, (end - start) / 4)
            # nothing is drawn while skipping (dry runs): the end state without the fades' copies
            animate = fade * fps >= 4 and not self.renderer.skip_animations
            old = [m for m in (overlay, lines) if m.submobjects]
            new_part = step.part != part
            if new_part:
                old += [panels, formula]
            if animate and old:
                self.play(*[FadeOut(m) for m in old], run_time=fade / 2)
            else:
                self.remove(*old)
            if new_part:
                part = step.part
                panels, formula = self._build_part(part), self._formula(part, title)
            numbers = self._writes(step)
            overlay, lines = self._overlay(step), self._lines(step, self.plans[part])
            incoming = ([panels, formula] if new_part else []) + [overlay, lines] + numbers
            if animate:
                self.play(*[FadeIn(m) for m in incoming], run_time=fade / 2)
            else:
                self.add(*incoming)
            self.remove(*numbers)          # written numbers stay with their panel until the part ends
            panels.add(*numbers)
            full = step.weight >= 1.0 or new_part or k + 1 == len(steps) or steps[k + 1].part != step.part
            self._record(self.mobjects if full else [lines])
            self.hold_until(end)

    def _record(self, roots):
        """What is on screen now: every tagged mobject under `roots` (all at full steps, else the lines)."""
        seen, out = set(), []
        for root in roots:
            for mob in root.get_family():
                kind = getattr(mob, "viz_kind", None)
                if kind is None or id(mob) in seen or not mob.has_points():
                    continue
                seen.add(id(mob))
                lo, hi = mob.get_critical_point(DOWN + LEFT), mob.get_critical_point(-DOWN - LEFT)
                out.append((kind, mob.viz_name, float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]),
                            float(mob.viz_glyph)))
        self.screen.append(out)



class ConvBackward(PartScene):
    """The backward Story, step by step: ∂ℓ/∂w per tap, ∂ℓ/∂x per input, ∂ℓ/∂b, the never-read inputs."""

    def __init__(self, *, story=None, step_time: float = style.STORY_STEP_TIME, **kwargs):
        params = {k: kwargs.pop(k) for k in FIGURE_PARAMS if k in kwargs}
        super().__init__(story=story or backward_story(params), step_time=step_time, **kwargs)
