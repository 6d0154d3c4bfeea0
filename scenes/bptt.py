"""Gradients flowing backward through time: draws the BPTT Story (`viz.story.bptt.bptt_story`).

The unrolled chain h[0] → h[1] … h[T] → ℓ (skip edges as arcs, opacity ∝ their attention weight a)
above a log-scale bar per ‖δ[t]‖. Steps, as the Story lists them, each on the Story's timeline
(`StoryScene`): "forward" (the whole chain computed at once), one step per δ[t] for t = T … 1 (h[t] and
the edges its gradient arrived over in yellow, its bar and number; what came before in the gradient
colour), then "summary" (the strongest path back in yellow, with the ratio and the path).

Nothing is computed here: numbers, texts, limits and ticks are the Story's; the scene maps values to
positions and roles to colours. Mobjects are kept for tests: `nodes`, `edges` (by Story edge id),
`bars`, `bar_labels` (by t), `step_lines` (the text of every step, by step index).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from manim import (DOWN, LEFT, PI, RIGHT, UP, Arrow, Circle, CubicBezier, GrowFromEdge, Line,
                   Rectangle, Square, VGroup, config)

from viz.story.bptt import bptt_story

from . import style
from .story_scene import Fade, StoryScene, fit_width

# Layout (scene units; the frame is 14.22 x 8)
TITLE_Y = 3.5
FORMULA_Y = 2.98
LINES_Y = (2.4, 1.95)        # the step's two lines
CHAIN_Y = 0.15
ARC_MAX = 0.95               # highest skip edge above a node's top
BASELINE_Y = -2.62           # the log axis' lowest decade
BAR_MAX = 1.85               # the highest decade's height above the baseline
TITLE_SIZE = 28
FORMULA_SIZE = 20
LINE_SIZE = 22
CHAIN_LEFT = -5.7            # h[0]
CHAIN_RIGHT = 6.45           # the loss node
MAX_COLUMN = 1.3
COMPACT_COLUMN = 0.75        # narrower columns label nodes with bare times
TRANSITION = 0.45            # seconds of a step's transition, at most (the rest is the hold)
FOCUS_WIDTH = 4.0            # stroke of the edges a step is about (the gradient's way in, the path)

ROLE_COLORS = {**style.ROLE_COLORS, "path": style.HIGHLIGHT}     # the way back is the focus of the last step


@dataclass(frozen=True)
class Layout:
    T: int
    column: float
    x0: float

    @classmethod
    def for_steps(cls, T: int) -> "Layout":
        column = min(MAX_COLUMN, (CHAIN_RIGHT - CHAIN_LEFT) / (T + 1))
        x0 = CHAIN_LEFT + ((CHAIN_RIGHT - CHAIN_LEFT) - column * (T + 1)) / 2
        return cls(T, column, x0)

    def x(self, rank: float) -> float:
        """Column of h[t] (rank t); rank T + 1 is the loss."""
        return self.x0 + rank * self.column

    @property
    def radius(self) -> float:
        return min(0.3, 0.3 * self.column)

    @property
    def bar_width(self) -> float:
        return min(0.5, 0.55 * self.column)


def _arc_peak(lag: int, longest: int) -> float:
    """Height of a skip edge's arc above the nodes' tops: 0.3 for lag 2 up to ARC_MAX for the longest."""
    frac = 0.0 if longest <= 2 else (lag - 2) / (longest - 2)
    return 0.3 + (ARC_MAX - 0.3) * frac


class GradientFlow(StoryScene):
    """BPTT for the gated RNN or AttentionRNN(k/∞), drawn from its Story.

    Parameters as in the registry (model, k, steps, preset, n, m, weights, inputs, seed, step_time); other keyword
    arguments go to `manim.Scene`.
    """

    def __init__(self, *, model: str = "gated", k: int | None = 2, steps: int = 12, preset: str = "vanish",
                 n: int = 3, m: int = 3, weights=None, inputs=None, seed: int = 0,
                 step_time: float = style.STEP_TIME, **scene_kwargs):
        story = bptt_story(dict(model=model, k=k, steps=steps, preset=preset, n=n, m=m, weights=weights,
                                inputs=inputs, seed=seed))
        super().__init__(story=story, step_time=step_time, **scene_kwargs)
        self.series = story.series[0]
        self.T = len(self.series.x)
        self.layout = Layout.for_steps(self.T)
        self.progress_total = 1 + 2 * len(story.steps)
        self.nodes: dict[str, Circle] = {}
        self.edges: dict[str, object] = {}
        self.edge_width: dict[str, float] = {}       # each edge's own stroke width (focus widens it)
        self.bars: dict[int, Rectangle] = {}
        self.bar_labels: dict[int, object] = {}
        self.step_lines: dict[int, VGroup] = {}

    # -- building blocks ----------------------------------------------------------------------------

    def _node(self, node) -> Circle:
        lay = self.layout
        if node.role == "loss":
            mob = Square(side_length=2 * lay.radius, color=style.LOSS, stroke_width=style.CELL_STROKE_WIDTH)
        else:
            mob = Circle(radius=lay.radius, color=style.MUTED, stroke_width=style.CELL_STROKE_WIDTH)
        if node.role == "muted":                                   # h[0] = 0, fixed
            mob.set_fill(style.MUTED, opacity=style.CELL_FILL_OPACITY)
        return mob.move_to([lay.x(node.rank), CHAIN_Y, 0])

    def _node_label(self, node):
        compact = self.layout.column < COMPACT_COLUMN and node.role != "loss"
        label = node.label if not compact else node.label[2:-1]     # "h[12]" -> "12"
        if node.role == "loss":
            return self.draw_text(label, style.LABEL_SIZE, style.LOSS).move_to(self.nodes[node.id])
        return self.draw_text(label, style.SMALL_SIZE, mono=True).next_to(self.nodes[node.id], DOWN, buff=0.1)

    def _edge(self, edge, longest: int, opacity: float):
        a, b = self.nodes[edge.source], self.nodes[edge.target]
        lag = round((b.get_center()[0] - a.get_center()[0]) / self.layout.column)
        if lag <= 1 or edge.target == "loss":
            mob = Arrow(a.get_right(), b.get_left(), buff=0.02, stroke_width=2.5, color=style.MUTED,
                        tip_length=min(0.14, 0.35 * self.layout.column),
                        max_tip_length_to_length_ratio=0.5, max_stroke_width_to_length_ratio=20)
        else:
            p0, p3 = a.get_top(), b.get_top()
            lift = UP * _arc_peak(lag, longest) / 0.75       # a cubic with both handles at `lift` peaks at 3/4
            mob = CubicBezier(p0, p0 + lift + RIGHT * 0.1, p3 + lift + LEFT * 0.1, p3, color=style.MUTED,
                              stroke_width=2)
        mob.set_stroke(opacity=opacity)
        self.edge_width[edge.id] = mob.get_stroke_width()
        if isinstance(mob, Arrow):
            mob.tip.set_fill(opacity=opacity).set_stroke(opacity=opacity)
        return mob

    def _color_edge(self, edge_id: str, color: str, width: float | None = None, opacity: float | None = None):
        mob = self.edges[edge_id]
        mob.set_stroke(color=color, width=width, opacity=opacity)
        if isinstance(mob, Arrow):
            mob.tip.set_fill(color, opacity=opacity).set_stroke(color, opacity=opacity)

    def _y(self, value: float) -> float:
        lo, hi = (math.log10(v) for v in self.series.limits)
        return BASELINE_Y + (math.log10(value) - lo) / (hi - lo) * BAR_MAX

    def _axis(self) -> VGroup:
        s = self.series
        ax_x = self.layout.x(0) + 0.5 * self.layout.column
        group = VGroup(Line([ax_x, BASELINE_Y, 0], [ax_x, BASELINE_Y + BAR_MAX, 0], color=style.MUTED,
                            stroke_width=2))
        every = max(1, math.ceil(len(s.ticks) / 7))          # at most about 7 labelled decades
        for i, (tick, label) in enumerate(zip(s.ticks, s.tick_labels)):
            y = self._y(tick)
            group.add(Line([ax_x - 0.07, y, 0], [ax_x, y, 0], color=style.MUTED, stroke_width=2))
            if (len(s.ticks) - 1 - i) % every == 0:         # the top decade always labelled
                group.add(self.draw_text(label, style.SMALL_SIZE, style.MUTED, mono=True)
                          .next_to([ax_x - 0.09, y, 0], LEFT, buff=0.04))
        name = self.draw_text(s.label, style.SMALL_SIZE, style.GRADIENT).rotate(PI / 2)
        ticks_left = min(m.get_left()[0] for m in group[1:])
        name.move_to([ticks_left - 0.1 - name.width / 2, BASELINE_Y + BAR_MAX / 2, 0])
        return group.add(name)

    def _bar(self, t: int, value: float) -> Rectangle:
        height = max(0.02, self._y(value) - BASELINE_Y) if value > 0 else 1e-3
        bar = Rectangle(width=self.layout.bar_width, height=height, stroke_width=style.CELL_STROKE_WIDTH,
                        color=style.HIGHLIGHT, fill_color=style.HIGHLIGHT,
                        fill_opacity=style.CELL_FILL_OPACITY_STRONG)
        return bar.move_to([self.layout.x(t), BASELINE_Y + height / 2, 0])

    def _bar_label(self, t: int, text: str):
        label = self.draw_text(text, style.SMALL_SIZE, mono=True)
        if label.width > 0.92 * self.layout.column:          # too wide for its column: read it upwards
            label.rotate(PI / 2)
        return label.next_to([self.layout.x(t), BASELINE_Y, 0], DOWN, buff=0.12)

    # -- the story ----------------------------------------------------------------------------------

    def construct(self):
        self.camera.background_color = style.BACKGROUND
        self.frame_w = config.frame_width - 2 * style.FRAME_MARGIN
        story, graph = self.story, self.story.graph
        self.title = fit_width(self.draw_text(story.title, TITLE_SIZE), self.frame_w).move_to([0, TITLE_Y, 0])
        self.formula = fit_width(self.draw_text(story.formula[0], FORMULA_SIZE, style.GRADIENT, mono=True),
                            self.frame_w).move_to([0, FORMULA_Y, 0])
        self.nodes.update({node.id: self._node(node) for node in graph.nodes})
        labels = VGroup(*[self._node_label(node) for node in graph.nodes])
        if self.layout.column < COMPACT_COLUMN:   # bare times: name them once, left of h[0]
            labels.add(self.draw_text("t", style.SMALL_SIZE, style.MUTED).next_to(labels[0], LEFT, buff=0.25))
        longest = max((round((self.nodes[e.target].get_center()[0] - self.nodes[e.source].get_center()[0])
                             / self.layout.column) for e in graph.edges), default=1)
        # opacity = a, the edge's attention weight (1 in the gated RNN and for the loss): an edge the
        # attention ignores is not drawn, even while the gradient arrives over it (it carries ~nothing)
        self.edge_opacity = {e.id: min(1.0, max(0.0, e.weight)) for e in graph.edges}
        self.edges.update({e.id: self._edge(e, longest, self.edge_opacity[e.id]) for e in graph.edges})
        # everything static is on the first frame (no blank start, no fade of hundreds of mobjects)
        self.add(*self.edges.values(), *self.nodes.values(), labels, self._axis(), self.title, self.formula)
        self.wait(self.intro_time)
        shown = VGroup()
        for index, (step, (start, end)) in enumerate(zip(story.steps, self.timeline)):
            self.begin_step(index)
            lines = self.lines_of(step, LINES_Y, LINE_SIZE, self.frame_w, ROLE_COLORS)
            self.step_lines[index] = lines
            anims = self._light(step)
            run_time = min(TRANSITION, 0.3 * (end - start))
            self.play(Fade(shown, out=True), Fade(lines), *anims, run_time=run_time)
            shown = lines
            self.hold_until(end)

    def _light(self, step) -> list:
        """Colour what the step lights (at once) and return the animations that bring in its new parts."""
        for lit in step.lit:
            if lit.target != "graph":
                continue
            color = ROLE_COLORS[lit.role]
            for cell in lit.cells:
                if cell in self.edges and lit.role == "hidden":
                    continue                          # computed edges keep their grey: only states fill
                if cell in self.edges:
                    path = lit.role == "path"          # the path back is drawn in full, whatever its a
                    width = FOCUS_WIDTH if lit.role in ("path", "highlight") else self.edge_width[cell]
                    self._color_edge(cell, color, width, 1.0 if path else None)
                elif cell in self.nodes:
                    node = self.nodes[cell]
                    if lit.role == "hidden":
                        node.set_fill(style.HIDDEN, opacity=style.CELL_FILL_OPACITY_STRONG).set_stroke(style.HIDDEN)
                    elif lit.role == "loss":
                        node.set_fill(style.LOSS, opacity=style.CELL_FILL_OPACITY)
                    else:
                        node.set_stroke(color, width=style.HIGHLIGHT_STROKE_WIDTH)
        lit_bars = set(step.lit_cells("delta", "highlight"))
        for t, bar in self.bars.items():      # bars of earlier steps: back to the gradient colour
            if float(t) not in lit_bars:
                bar.set_stroke(style.GRADIENT).set_fill(style.GRADIENT)
        anims = []
        for w in step.writes:
            t = int(self.series.x[w.cell[0]])
            bar, label = self._bar(t, w.value), self._bar_label(t, w.text)
            self.bars[t], self.bar_labels[t] = bar, label
            anims += ([GrowFromEdge(bar, DOWN)] if w.value > 0 else []) + [Fade(label)]
        return anims
