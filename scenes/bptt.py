"""Gradients flowing backward through time: BPTT in a gated RNN and in AttentionRNN(k) / AttentionRNN(∞).

MATH.md §3–4. The unrolled chain h[0] → h[1] … h[T] → ℓ; a forward sweep lights the states up in
order; then the gradient travels back from the loss and every total gradient δ[t] = dℓ/dh[t] appears
as a bar on a log scale, with its norm written out (2.1e-15). The gated RNN has one way back, through
T − 1 Jacobians J[t] (vanishing, surviving or exploding with the preset); in AttentionRNN(k) the
gradient also takes the skip edges, so it crosses T steps in about T/k hops. Both models take their
weights and inputs from the preset (`viz.rnn.gated_run`, `viz.attention.attention_run`);
for AttentionRNN the last caption line is the preset's `PRESET_NOTES` line (why it vanishes, survives or
explodes — and why AttentionRNN(∞) does not vanish: every state is one hop from h[T]).

Every number comes from the reference (`viz.rnn`, `viz.attention`): the scene reads the trace and the
backward result and only takes logs, norms and extremes of what they return, for display.

The story is plain data, `tell(...) -> Story`, computed before anything is drawn: `forward_steps`
(which states each step read), `steps` (the backward sweep, T down to 1: the norm shown, its label, its
bar, the edges the gradient arrived over), `shortest_path` (the fewest hops from h[T] back to h[1]) and
the timeline. `GradientFlow` draws exactly that story (and exposes it as `scene.story`, `scene.steps`,
...), so tests check the numbers on the data and the drawing on a dry run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from manim import (
    DOWN, LEFT, PI, RIGHT, UP,
    Arrow, Circle, CubicBezier, FadeIn, FadeOut, GrowFromEdge, Line, MathTypst, Rectangle, Scene,
    ShowPassingFlash, Square, Text, VGroup, config,
)

from viz.attention import PRESET_NOTES, attention_run
from viz.rnn import gated_run

from . import style
from .common import MINUS

MODELS = ("gated", "attention")


# ---------------------------------------------------------------------------------------------------
# What the scene shows, as plain data


@dataclass(frozen=True, order=True)
class Edge:
    """Step `dst` read h[src] (course times, 1-based; src 0 is h[0] = 0); lag = dst - src."""

    src: int
    dst: int

    @property
    def lag(self) -> int:
        return self.dst - self.src


@dataclass(frozen=True)
class ForwardStep:
    t: int
    edges: tuple[Edge, ...]        # the states step t read (the trace's lags; states before h[0] left out)


@dataclass(frozen=True)
class BackwardStep:
    t: int
    norm: float                    # ||δ[t]|| = backward(...).delta_norms[t - 1]
    label: str                     # that number as written under its bar
    log10: float | None            # log10(norm); None when the norm is exactly 0 (no bar)
    bar_height: float              # scene units above the axis' lowest decade
    edges: tuple[Edge, ...]        # the edges the gradient arrived over: every later step that read h[t]
    direct: bool                   # the loss reads h[t] itself (∂ℓ/∂h[t] != 0)


@dataclass
class Flow:
    """Everything the scene shows, from the reference: model, trace, gradients, captions."""

    model: str
    k: int | None
    T: int
    preset: str
    net: object
    trace: object
    grads: object
    dl_dh: np.ndarray
    reads: list[tuple[Edge, ...]]  # reads[t - 1]: the states step t read
    title: str
    caption: list[str] = field(default_factory=list)


def sci(x: float) -> str:
    """2.1e−15, 3.4e2, 1.0e0: one decimal, compact exponent, a real minus (readable at 480p)."""
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}".replace("-", MINUS)


def _g(x: float) -> str:
    return f"{x:.2g}"


def build_flow(model: str, k: int | None, steps: int, preset: str, n: int, m: int, seed: int) -> Flow:
    """Run the reference forward and backward (loss read at h[T]) and collect what the scene shows."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)} (got {model!r})")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be >= 1 (got {steps!r})")
    T = steps
    if model == "gated":
        run = gated_run(T, n, m, seed=seed, preset=preset)
        net, trace, dl_dh, grads = run.model, run.trace, run.dl_dh, run.grads
        reads = [(Edge(t - 1, t),) for t in range(1, T + 1)]
        jnorms = [float(np.linalg.norm(net.jacobian(trace, t), 2)) for t in range(1, T + 1)]
        title = f"Backpropagation through time: gated RNN (n = {n}, m = {m}), T = {T}"
        caption = [*GATED_MEANING[preset],
                   f"‖W_h‖₂ = {_g(np.linalg.norm(net.W_h, 2))}    mean c[t] = {_g(np.mean(trace.c))}    "
                   f"‖J[t]‖₂ = {_g(min(jnorms))} … {_g(max(jnorms))}    J[t] = ∂h[t]/∂h[t−1]"]
    else:
        run = attention_run(T, n, k, seed=seed, preset=preset)
        net, trace, dl_dh, grads = run.model, run.trace, run.dl_dh, run.grads
        reads = []
        for t in range(1, T + 1):
            real = trace.present[t - 1] & (trace.lags[t - 1] >= 1)   # past states, not x[t], not zeros
            reads.append(tuple(sorted(Edge(int(src), t) for src in trace.sources[t - 1][real])
                               )[::-1])  # nearest first
        span = "∞" if k is None else str(k)
        title = f"Backpropagation through time: AttentionRNN({span}) (n = {n}), T = {T}"
        if k is None:
            first = ("h[t] attends to x[t] and every earlier state; "
                     "δ[t] sums the gradients of all later steps")
            way = "skip edges shorten the way back: every state is one hop from h[T]"
        else:
            reach = "h[t−1]" if k == 1 else f"h[t−1] … h[t−{k}]"
            first = f"h[t] attends to x[t] and {reach}; δ[t] sums the gradients of the steps that read h[t]"
            way = ("k = 1: no skip edges, T − 1 hops back as in the gated RNN" if k == 1 else
                   "skip edges shorten the way back to about T/k hops")
        if net.base_case == "zeros" and k is not None:
            way += "; states before h[1]: zeros with softmax mass"
        caption = [first, way, f"{preset}: {PRESET_NOTES[preset]}"]
    return Flow(model=model, k=k, T=T, preset=preset, net=net, trace=trace, grads=grads, dl_dh=dl_dh,
                reads=reads, title=title, caption=[c for c in caption if c])


GATED_MEANING = {
    "vanish": ("vanish: small weights (all ×0.1) leave J[t] ≈ diag(c[t]) with c ≈ 1/2,",
               "so the product of Jacobians J[T] ··· J[t+1] decays geometrically"),
    "survive": ("survive: W_c x[t] ≥ 6 keeps every gate open, c ≈ 1, so J[t] ≈ I:",
                "a leaky integrator, and the gradient survives the way back"),
    "explode": ("explode: large W_h with unsaturated gates (c = 1/2) makes ‖J[t]‖ > 1,",
                "so the product of Jacobians J[T] ··· J[t+1] grows geometrically"),
}


def shortest_hops(T: int, reads: list[tuple[Edge, ...]]) -> list[int]:
    """Fewest edges from h[T] back to h[1], following the edges the trace used (a path, T first)."""
    best = {T: (0, None)}
    for t in range(T - 1, 0, -1):
        options = [(best[e.dst][0] + 1, e.dst) for s in range(t + 1, T + 1) for e in reads[s - 1]
                   if e.src == t and e.dst in best]
        if options:
            best[t] = min(options)
    if 1 not in best:
        return []
    path, t = [1], 1
    while best[t][1] is not None:
        t = best[t][1]
        path.append(t)
    return path[::-1]




# ---------------------------------------------------------------------------------------------------
# Layout (scene units; the frame is 14.22 x 8)

TITLE_Y = 3.5
CHAIN_Y = 0.15
ARC_MAX = 0.95             # highest skip edge above a node's top
BASELINE_Y = -2.62         # the log axis' lowest decade
BAR_MAX = 1.85             # the highest decade's height above the baseline
CAPTION_SIZE = 20
FORMULA_SIZE = 26
CHAIN_LEFT = -5.7          # h[0]
CHAIN_RIGHT = 6.45         # the loss node
MAX_COLUMN = 1.3
COMPACT_COLUMN = 0.75      # narrower columns label nodes with bare times


@dataclass(frozen=True)
class Layout:
    T: int
    column: float
    x0: float

    @classmethod
    def for_steps(cls, T: int) -> "Layout":
        column = min(MAX_COLUMN, (CHAIN_RIGHT - CHAIN_LEFT) / (T + 1))
        width = column * (T + 1)
        x0 = CHAIN_LEFT + ((CHAIN_RIGHT - CHAIN_LEFT) - width) / 2
        return cls(T, column, x0)

    def x(self, t: int) -> float:
        """Column of h[t]; t = T + 1 is the loss."""
        return self.x0 + t * self.column

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


def _flash(edge, color: str, width: float, backward: bool = False):
    """A bright pulse running along an edge (against its direction for the gradient)."""
    pulse = edge.copy()
    if backward:
        pulse.reverse_direction()
    return ShowPassingFlash(pulse.set_stroke(color, width=width, opacity=1), time_width=0.6)


def _text(s: str, size: float, color: str = style.TEXT, mono: bool = False) -> Text:
    return Text(s, font=style.MONO if mono else style.FONT, font_size=size, color=color)


def _fit_width(mob, width: float):
    if mob.width > width:
        mob.scale_to_fit_width(width)
    return mob


# ---------------------------------------------------------------------------------------------------
# The story as plain data, in the order the scene tells it


@dataclass
class Story:
    """What the scene shows, in order, as plain data."""

    flow: Flow
    forward_steps: list[ForwardStep]
    steps: list[BackwardStep]          # the backward sweep, t = T … 1
    shortest_path: list[int]           # h[T] … h[1] along the fewest edges (empty if unreachable)
    decades: tuple[int, int]           # the log axis runs from 10^lo to 10^hi
    forward_time: float                # seconds per forward step
    backward_times: list[float]        # seconds per backward step, in sweep order

    @property
    def seconds(self) -> float:
        """Planned video length: intro, forward sweep, loss, formula, backward sweep, path, summary, outro."""
        path = style.PAUSE if len(self.shortest_path) > 1 else 0.0
        return (style.INTRO_TIME + self.flow.T * self.forward_time + 2 * style.PAUSE
                + sum(self.backward_times) + path + style.PAUSE + style.OUTRO_TIME)

    @property
    def plays(self) -> int:
        return 1 + self.flow.T + 2 + self.flow.T + (len(self.shortest_path) > 1) + 2


def tell(model: str = "gated", k: int | None = 2, steps: int = 12, preset: str = "vanish", n: int = 3,
         m: int = 3, seed: int = 0) -> Story:
    """The whole story for these parameters (the scene's parameters), from the reference."""
    flow = build_flow(model, k, steps, preset, n, m, seed)
    T = flow.T
    norms = np.asarray(flow.grads.delta_norms, dtype=float)
    positive = norms[norms > 0]
    lo = math.floor(np.log10(positive.min())) if positive.size else -1
    hi = max(math.ceil(np.log10(positive.max())) if positive.size else 0, lo + 1)
    steps_back = []
    for t in range(T, 0, -1):
        norm = float(norms[t - 1])
        log = None if norm == 0 else math.log10(norm)
        height = 0.0 if log is None else max(0.02, (log - lo) / (hi - lo) * BAR_MAX)
        edges = tuple(e for s in range(t + 1, T + 1) for e in flow.reads[s - 1] if e.src == t)
        steps_back.append(BackwardStep(t=t, norm=norm, label=sci(norm), log10=log, bar_height=height,
                                       edges=edges, direct=bool(np.any(flow.dl_dh[t - 1] != 0))))
    forward = max(style.FAST_STEP_TIME, min(0.45, 4.0 / T))
    full = min(style.FULL_STEPS, T)
    fast = max(style.FAST_STEP_TIME, min(0.45, style.MAX_FAST_TIME / max(T - full, 1)))
    return Story(flow=flow,
                 forward_steps=[ForwardStep(t, flow.reads[t - 1]) for t in range(1, T + 1)],
                 steps=steps_back, shortest_path=shortest_hops(T, flow.reads), decades=(lo, hi),
                 forward_time=forward, backward_times=[0.9] * full + [fast] * (T - full))


# ---------------------------------------------------------------------------------------------------
# The scene


class GradientFlow(Scene):
    """BPTT: the forward sweep, then ||δ[t]|| for t = T … 1 on a log scale (gated RNN or AttentionRNN).

    Parameters as in the registry: model "gated" | "attention"; k (AttentionRNN span, None = ∞);
    steps T; preset "vanish" | "survive" | "explode"; n, m sizes; seed. Other keyword arguments go to
    `manim.Scene`.
    """

    def __init__(self, *, model: str = "gated", k: int | None = 2, steps: int = 12, preset: str = "vanish",
                 n: int = 3, m: int = 3, seed: int = 0, **scene_kwargs):
        self.story = tell(model, k, steps, preset, n, m, seed)
        self.flow = self.story.flow
        self.forward_steps = self.story.forward_steps
        self.steps = self.story.steps
        self.shortest_path = self.story.shortest_path
        self.layout = Layout.for_steps(self.flow.T)
        self.progress_total = self.story.plays
        self.nodes: dict[int, Circle] = {}          # t -> h[t]'s circle (mobjects kept for layout tests)
        self.bars: dict[int, Rectangle] = {}        # t -> its bar
        self.bar_labels: dict[int, Text] = {}       # t -> the number written under it
        self.edge_mobjects: dict = {}               # Edge -> its arrow or arc
        super().__init__(**scene_kwargs)

    # -- building blocks ----------------------------------------------------------------------------

    def _node(self, t: int) -> Circle:
        lay = self.layout
        node = Circle(radius=lay.radius, color=style.MUTED, stroke_width=style.CELL_STROKE_WIDTH)
        return node.move_to([lay.x(t), CHAIN_Y, 0])

    def _node_label(self, t: int) -> Text:
        compact = self.layout.column < COMPACT_COLUMN
        label = _text(str(t) if compact else f"h[{t}]", style.SMALL_SIZE)
        return label.next_to(self.nodes[t], DOWN, buff=0.1)

    def _arrow(self, a, b) -> Arrow:
        return Arrow(a.get_right(), b.get_left(), buff=0.02, stroke_width=2.5, color=style.MUTED,
                     tip_length=min(0.14, 0.35 * self.layout.column),
                     max_tip_length_to_length_ratio=0.5, max_stroke_width_to_length_ratio=20)

    def _edge(self, e: Edge, longest: int):
        """Lag 1: a straight arrow between neighbours; longer lags: an arc over the chain, higher for
        longer lags (so arcs of different lags do not run on top of each other)."""
        a, b = self.nodes[e.src], self.nodes[e.dst]
        if e.lag == 1:
            return self._arrow(a, b)
        peak = _arc_peak(e.lag, longest)
        p0, p3 = a.get_top(), b.get_top()
        lift = UP * peak / 0.75           # a cubic with both handles at `lift` peaks at 3/4 of it
        return CubicBezier(p0, p0 + lift + RIGHT * 0.1, p3 + lift + LEFT * 0.1, p3,
                           color=style.MUTED, stroke_width=2, stroke_opacity=0.8)

    def _axis(self) -> VGroup:
        lo, hi = self.story.decades
        ax_x = self.layout.x(0) + 0.5 * self.layout.column
        group = VGroup(Line([ax_x, BASELINE_Y, 0], [ax_x, BASELINE_Y + BAR_MAX, 0], color=style.MUTED,
                            stroke_width=2))
        span = hi - lo
        every = 1 if span <= 6 else 2 if span <= 12 else 5 if span <= 30 else 10
        for d in range(lo, hi + 1):
            if (d - lo) % every and d != hi:
                continue
            y = BASELINE_Y + (d - lo) / span * BAR_MAX
            group.add(Line([ax_x - 0.07, y, 0], [ax_x, y, 0], color=style.MUTED, stroke_width=2))
            label = _text("1" if d == 0 else f"1e{d}".replace("-", MINUS), style.SMALL_SIZE, style.MUTED,
                          mono=True)
            group.add(label.next_to([ax_x - 0.09, y, 0], LEFT, buff=0.04))
        name = _text("‖δ[t]‖, log scale", style.SMALL_SIZE, style.GRADIENT).rotate(PI / 2)
        ticks_left = min(m.get_left()[0] for m in group[1:])
        name.move_to([ticks_left - 0.1 - name.width / 2, BASELINE_Y + BAR_MAX / 2, 0])
        return group.add(name)

    def _bar(self, step: BackwardStep) -> Rectangle:
        bar = Rectangle(width=self.layout.bar_width, height=max(step.bar_height, 1e-3),
                        stroke_width=style.CELL_STROKE_WIDTH, color=style.GRADIENT,
                        fill_color=style.GRADIENT, fill_opacity=style.CELL_FILL_OPACITY_STRONG)
        return bar.move_to([self.layout.x(step.t), BASELINE_Y + step.bar_height / 2, 0])

    def _bar_label(self, step: BackwardStep) -> Text:
        label = _text(step.label, style.SMALL_SIZE, mono=True)
        if label.width > 0.92 * self.layout.column:      # too wide for its column: read it upwards
            label.rotate(PI / 2)
        return label.next_to([self.layout.x(step.t), BASELINE_Y, 0], DOWN, buff=0.12)

    def _formula(self):
        if self.flow.model == "gated":
            return MathTypst("delta[t] = J[t+1]^T delta[t+1] quad quad J[t] = op(\"diag\")(c[t]) + "
                             "op(\"diag\")(c[t] dot.o (1 - c[t]) dot.o (h[t-1] - u[t])) W_h",
                             font_size=FORMULA_SIZE, color=style.GRADIENT)
        total = "scripts(sum)_(i >= 1)" if self.flow.k is None else "scripts(sum)_(i=1)^k"
        return MathTypst(f"delta[t] = {total} (partial h[t+i] slash partial h[t])^T delta[t+i] quad quad "
                         "partial h[t] slash partial h[t-i] = a_i [V_i + (v_i - h[t]) h[t-i]^T "
                         "(Q_i^T K_i + K_i^T Q_i)]",
                         font_size=FORMULA_SIZE, color=style.GRADIENT)

    def _summary(self) -> Text:
        T, path = self.flow.T, self.shortest_path
        first, last = self.steps[-1].norm, self.steps[0].norm
        ratio = sci(first / last) if last else "undefined"
        if T == 1:
            return _text(f"‖δ[1]‖ = {sci(first)}: the loss reads h[1] directly", style.LABEL_SIZE,
                         style.HIGHLIGHT)
        if path:
            hops = len(path) - 1
            way = f"h[1] is {hops} hop{'s' if hops != 1 else ''} back from h[{T}] (yellow)"
        else:
            way = "no path back to h[1]"
        return _text(f"‖δ[1]‖ / ‖δ[{T}]‖ = {ratio}     {way}", style.LABEL_SIZE, style.HIGHLIGHT)

    # -- the story ----------------------------------------------------------------------------------

    def construct(self):
        self.camera.background_color = style.BACKGROUND
        self.frame_w = config.frame_width - 2 * style.FRAME_MARGIN
        self._intro()
        self._forward_sweep()
        self._backward_sweep()
        self._finale()

    def _intro(self):
        flow, lay, T = self.flow, self.layout, self.flow.T
        self.title = _fit_width(_text(flow.title, 28), self.frame_w).move_to([0, TITLE_Y, 0])
        last = len(flow.caption) - 1
        self.captions = VGroup(*[_fit_width(_text(c, CAPTION_SIZE, style.MUTED if i == last and i else
                                                  style.TEXT), self.frame_w)
                                 for i, c in enumerate(flow.caption)])
        self.captions.arrange(DOWN, buff=0.1).next_to(self.title, DOWN, buff=0.15)

        self.nodes.update({t: self._node(t) for t in range(T + 1)})
        self.nodes[0].set_fill(style.MUTED, opacity=style.CELL_FILL_OPACITY)   # h[0] = 0
        self.loss = Square(side_length=2 * lay.radius, color=style.LOSS, stroke_width=style.CELL_STROKE_WIDTH)
        self.loss.move_to([lay.x(T + 1), CHAIN_Y, 0])
        loss_label = _text("ℓ", style.LABEL_SIZE, style.LOSS).move_to(self.loss)
        self.loss_edge = self._arrow(self.nodes[T], self.loss)
        labels = VGroup(*[self._node_label(t) for t in range(T + 1)])
        if lay.column < COMPACT_COLUMN:     # compact labels are bare times: name them once, left of h[0]
            labels.add(_text("t", style.SMALL_SIZE, style.MUTED).next_to(labels[0], LEFT, buff=0.25))
        longest = max((e.lag for r in flow.reads for e in r), default=1)
        self.edge_mobjects.update({e: self._edge(e, longest) for r in flow.reads for e in r})
        # the chain appears at once (no fade: fading hundreds of mobjects costs a copy of each)
        self.add(*self.edge_mobjects.values(), *self.nodes.values(), labels, self.loss, loss_label,
                 self.loss_edge, self._axis())
        self.play(FadeIn(self.title), FadeIn(self.captions), run_time=style.INTRO_TIME)

    def _forward_sweep(self):
        """States light up in order; the edges each step read flash."""
        for f in self.forward_steps:
            flashes = [_flash(self.edge_mobjects[e], style.OUTPUT, 4) for e in f.edges]
            light = self.nodes[f.t].animate.set_fill(style.HIDDEN, opacity=style.CELL_FILL_OPACITY_STRONG)
            self.play(*flashes, light.set_stroke(style.HIDDEN), run_time=self.story.forward_time)
        self.play(self.loss.animate.set_fill(style.LOSS, opacity=style.CELL_FILL_OPACITY), run_time=style.PAUSE)

    def _backward_sweep(self):
        """T … 1: the gradient flashes back over every edge that read h[t]; ||δ[t]|| grows as a bar."""
        # the formula (later the summary) sits in the free band between the captions and the edges
        band_top = self.captions.get_bottom()[1]
        longest = max((e.lag for e in self.edge_mobjects), default=1)
        band_bottom = CHAIN_Y + self.layout.radius + (_arc_peak(longest, longest) if longest > 1 else 0.0)
        self.formula_y = (band_top + band_bottom) / 2
        self.formula = _fit_width(self._formula(), self.frame_w).move_to([0, self.formula_y, 0])
        self.play(FadeIn(self.formula), run_time=style.PAUSE)
        for step, run_time in zip(self.steps, self.story.backward_times):
            bar, label = self._bar(step), self._bar_label(step)
            self.bars[step.t], self.bar_labels[step.t] = bar, label
            incoming = [self.edge_mobjects[e] for e in step.edges] + ([self.loss_edge] if step.direct else [])
            flashes = [_flash(m, style.GRADIENT, 5, backward=True) for m in incoming]
            for m in incoming:         # recoloured at once (not animated: cheap for hundreds of edges)
                m.set_color(style.GRADIENT)
            self.nodes[step.t].set_stroke(style.GRADIENT, width=style.HIGHLIGHT_STROKE_WIDTH)
            grow = [GrowFromEdge(bar, DOWN)] if step.log10 is not None else []
            self.play(*flashes, *grow, FadeIn(label), run_time=run_time)

    def _finale(self):
        """The fewest hops back from h[T] to h[1] in yellow, then the summary."""
        path = self.shortest_path
        path_edges = [self.edge_mobjects[Edge(a, b)] for a, b in zip(path[1:], path[:-1])]
        if path_edges:
            self.play(*[m.animate.set_color(style.HIGHLIGHT).set_stroke(width=4, opacity=1)
                        for m in path_edges], run_time=style.PAUSE)
        self.summary = _fit_width(self._summary(), self.frame_w).move_to([0, self.formula_y, 0])
        self.play(FadeOut(self.formula), FadeIn(self.summary), run_time=style.PAUSE)
        self.wait(style.OUTRO_TIME)
