"""Why the training loss spikes: the loss curve drawn as training proceeds (MATH.md section 5).

The same run of `viz.train` twice, without and with gradient-norm clipping (same seed: same initial
weights, same batches). The unclipped curve is drawn step by step, with the gradient norm below it on
a log scale; at the first spike the drawing stops and the spike is annotated with the exploding
gradient norm that caused it (the largest norm among the updates that carried the loss up there,
`viz.train.Spike`). Then the rest of the run, then the clipped run over it: no spike.

Every number comes from `viz.train` (the runs, their spikes); the scene only bins long runs for
display (keeping each bin's maximum, so no spike disappears) and maps values to the screen. What the
scene shows is recorded as plain data for tests: `scene.annotated_spike` = (step, grad_norm) of the
annotated spike (0-based step, as in `TrainingRun.first_spike()`), or None when the run has none.
"""
from __future__ import annotations

import math

import numpy as np
from manim import (
    DOWN, LEFT, RIGHT, UP,
    Create, DashedLine, Dot, FadeIn, FadeOut, Flash, Line, Scene, Text, Triangle, VGroup, VMobject, config,
)

from viz.train import CLIP, LN4, STEPS, clipping_comparison

from . import style

MAX_POINTS = 800              # longer runs are binned (max per bin) for drawing
X_LEFT, X_RIGHT = -5.4, 6.3   # plot area (Manim units)
LOSS_BOTTOM, LOSS_TOP = -0.7, 2.3
GRAD_BOTTOM, GRAD_TOP = -3.2, -1.5
TITLE_Y, CAPTION_Y = 3.55, 3.0
DRAW_TIME = 5.0               # seconds to draw a whole run's curve
MODEL_NAMES = {"vanilla": "vanilla tanh RNN", "gated": "gated RNN"}


def _text(s: str, size: float, color: str = style.TEXT, mono: bool = False) -> Text:
    return Text(s, font=style.MONO if mono else style.FONT, font_size=size, color=color)


def _fmt_norm(x: float) -> str:
    if not math.isfinite(x):
        return "overflow"
    return f"{x:.3g}" if x < 1e5 else f"{x:.1e}"


def _nice_step(span: float, target: int = 5) -> float:
    """A 1-2-5 tick spacing giving about `target` ticks over `span`."""
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def binned(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(first step of each bin, max of each bin) for at most n_bins bins (identity when short)."""
    n = len(values)
    if n <= n_bins:
        return np.arange(n), values
    edges = np.linspace(0, n, n_bins + 1).astype(int)
    return edges[:-1], np.maximum.reduceat(values, edges[:-1])


def _segment_boxes(curves) -> tuple[np.ndarray, np.ndarray]:
    """Lower-left and upper-right corners of every segment of the given polylines (screen units)."""
    lo, hi = [np.zeros((0, 2))], [np.zeros((0, 2))]
    for pts in curves:
        pts = np.asarray(pts)[:, :2]
        if len(pts) > 1:
            lo.append(np.minimum(pts[:-1], pts[1:]))
            hi.append(np.maximum(pts[:-1], pts[1:]))
    return np.concatenate(lo), np.concatenate(hi)


def place_label(mob, point, bottom: float, top: float, curves, obstacles, pad: float = 0.08):
    """Move `mob` to the free spot nearest to `point` between heights bottom and top and inside the
    plot area: clear of every segment of `curves` and of the boxes in `obstacles` (x0, y0, x1, y1).
    Candidates sit right or left of the point, from the top down. Falls back to the right of the
    point. Returns the point of the label's box nearest to `point` (where a leader line starts)."""
    px, py = float(point[0]), float(point[1])
    w, h = mob.width, mob.height
    lo, hi = _segment_boxes(curves)
    obs = np.array(obstacles, dtype=float).reshape(-1, 4)
    best = None
    for yc in np.arange(top - h / 2, bottom + h / 2 - 1e-9, -0.05):
        for x0 in (px + 0.18, px - 0.18 - w):
            box = (x0 - pad, yc - h / 2 - pad, x0 + w + pad, yc + h / 2 + pad)
            if box[0] < X_LEFT + 0.05 or box[2] > X_RIGHT + 0.45:
                continue
            if np.any((hi[:, 0] >= box[0]) & (lo[:, 0] <= box[2]) & (hi[:, 1] >= box[1])
                      & (lo[:, 1] <= box[3])):
                continue
            if np.any((obs[:, 2] >= box[0]) & (obs[:, 0] <= box[2]) & (obs[:, 3] >= box[1])
                      & (obs[:, 1] <= box[3])):
                continue
            nx, ny = min(max(px, x0), x0 + w), min(max(py, yc - h / 2), yc + h / 2)
            cost = math.hypot(nx - px, ny - py)
            if best is None or cost < best[0]:
                best = (cost, x0, yc, (nx, ny))
    if best is None:
        mob.move_to([px + 0.18 + w / 2, min(max(py, bottom + h / 2), top - h / 2), 0])
        return (px + 0.18, mob.get_center()[1])
    _, x0, yc, near = best
    mob.move_to([x0 + w / 2, yc, 0])
    return near


def _box(mob) -> tuple[float, float, float, float]:
    (x0, y0, _), (x1, y1, _) = mob.get_corner(DOWN + LEFT), mob.get_corner(UP + RIGHT)
    return (x0, y0, x1, y1)


class TrainingCurve(Scene):
    """The training loss of the unclipped run drawn as training proceeds, its first spike annotated
    with the gradient norm that caused it, then the clipped run for comparison."""

    def __init__(self, *, model: str = "vanilla", clip: float = CLIP, steps: int = STEPS,
                 seed: int = 0, **scene_kwargs):
        self.unclipped, self.clipped = clipping_comparison(model=model, clip=clip, steps=steps,
                                                           seed=seed)
        self.model, self.clip, self.n_steps, self.seed = model, clip, steps, seed
        spike = self.unclipped.first_spike()
        self.spike = spike
        self.annotated_spike = None if spike is None else (spike.step, spike.grad_norm)
        self.labels: dict[str, str] = {}          # what each piece of text says, for tests
        # intro, draw to the spike, annotate, pause, draw the rest, clipped run, summary, outro;
        # without a spike: intro, draw, note, clipped run, summary, outro
        self.progress_total = 8 if spike is not None else 6
        super().__init__(**scene_kwargs)

    # -- coordinates ------------------------------------------------------------------------------

    def _limits(self):
        runs = (self.unclipped, self.clipped)
        finite = np.concatenate([r.loss[np.isfinite(r.loss)] for r in runs])
        self.loss_max = max(LN4, float(finite.max())) * 1.2
        norms = np.concatenate([r.grad_norm[np.isfinite(r.grad_norm) & (r.grad_norm > 0)]
                                for r in runs])
        self.log_lo = math.floor(math.log10(min(float(norms.min()), self.clip)))
        self.log_hi = math.ceil(math.log10(max(float(norms.max()), self.clip)))
        if self.log_hi == self.log_lo:
            self.log_hi += 1

    def x(self, step: float) -> float:
        """Screen x of a 0-based step (drawn at the reader's step + 1)."""
        return X_LEFT + (step + 1) / (self.n_steps + 1) * (X_RIGHT - X_LEFT)

    def y_loss(self, loss: float) -> float:
        return LOSS_BOTTOM + min(loss, self.loss_max) / self.loss_max * (LOSS_TOP - LOSS_BOTTOM)

    def y_grad(self, norm: float) -> float:
        v = (math.log10(max(norm, 10.0 ** self.log_lo)) - self.log_lo) / (self.log_hi - self.log_lo)
        return GRAD_BOTTOM + min(v, 1.0) * (GRAD_TOP - GRAD_BOTTOM)

    # -- building blocks --------------------------------------------------------------------------

    def _axes(self):
        g = VGroup()
        small = style.SMALL_SIZE
        for bottom, top in ((LOSS_BOTTOM, LOSS_TOP), (GRAD_BOTTOM, GRAD_TOP)):
            g.add(Line([X_LEFT, bottom, 0], [X_RIGHT, bottom, 0], color=style.MUTED, stroke_width=2))
            g.add(Line([X_LEFT, bottom, 0], [X_LEFT, top, 0], color=style.MUTED, stroke_width=2))
        step = max(1.0, _nice_step(self.n_steps))        # steps are whole numbers
        tick = 0.0
        while tick <= self.n_steps:
            xx = self.x(tick - 1)
            g.add(Line([xx, GRAD_BOTTOM, 0], [xx, GRAD_BOTTOM - 0.08, 0], color=style.MUTED))
            g.add(_text(f"{tick:g}", small, style.MUTED, mono=True)
                  .next_to([xx, GRAD_BOTTOM - 0.08, 0], DOWN, buff=0.06))
            tick += step
        g.add(_text("training step", small, style.MUTED)
              .move_to([(X_LEFT + X_RIGHT) / 2, GRAD_BOTTOM - 0.62, 0]))
        ystep = _nice_step(self.loss_max, 4)
        v = 0.0
        while v <= self.loss_max:
            yy = self.y_loss(v)
            g.add(Line([X_LEFT - 0.08, yy, 0], [X_LEFT, yy, 0], color=style.MUTED))
            g.add(_text(f"{v:g}", small, style.MUTED, mono=True)
                  .next_to([X_LEFT - 0.08, yy, 0], LEFT, buff=0.06))
            v += ystep
        for d in range(self.log_lo, self.log_hi + 1):
            yy = self.y_grad(10.0 ** d)
            g.add(Line([X_LEFT - 0.08, yy, 0], [X_LEFT, yy, 0], color=style.MUTED))
            g.add(_text(f"{10.0 ** d:g}" if -3 <= d <= 4 else f"1e{d}", small, style.MUTED,
                        mono=True).next_to([X_LEFT - 0.08, yy, 0], LEFT, buff=0.06))
        titles = [
            _text("loss", style.LABEL_SIZE - 4, style.TEXT)
            .next_to([X_LEFT, LOSS_TOP, 0], UP, buff=0.1).align_to([X_LEFT - 0.6, 0, 0], LEFT),
            _text("gradient norm ‖g‖ (log)", style.LABEL_SIZE - 4, style.GRADIENT)
            .next_to([X_LEFT, GRAD_TOP, 0], UP, buff=0.1).align_to([X_LEFT - 0.6, 0, 0], LEFT)]
        g.add(*titles)
        # references: ln 4 (chance) and the clip value
        y4 = self.y_loss(LN4)
        g.add(DashedLine([X_LEFT, y4, 0], [X_RIGHT, y4, 0], color=style.MUTED, stroke_width=2,
                         dash_length=0.08))
        self.labels["ln4"] = "ln 4 ≈ 1.386 (chance)"
        ln4 = _text(self.labels["ln4"], small, style.MUTED)
        g.add(ln4.next_to([X_RIGHT, y4, 0], DOWN, buff=0.06).align_to([X_RIGHT, 0, 0], RIGHT))
        yc = self.y_grad(self.clip)
        g.add(DashedLine([X_LEFT, yc, 0], [X_RIGHT, yc, 0], color=style.KERNEL, stroke_width=2,
                         dash_length=0.08))
        self.labels["clip"] = f"clip = {self.clip:g}"
        clip = _text(self.labels["clip"], small, style.KERNEL)
        g.add(clip.next_to([X_RIGHT, yc, 0], UP, buff=0.06).align_to([X_RIGHT, 0, 0], RIGHT))
        self.obstacles = [_box(ln4), _box(clip)] + [_box(t) for t in titles]
        return g

    def _curve(self, steps: np.ndarray, ys: np.ndarray, color: str, width: float = 2.5):
        pts = np.column_stack([[self.x(s) for s in steps], ys, np.zeros(len(steps))])
        if len(pts) == 1:
            pts = np.vstack([pts, pts])
        return VMobject(stroke_color=color, stroke_width=width).set_points_as_corners(pts)

    def _run_curves(self, run, color: str, split: int | None = None):
        """Loss and gradient-norm polylines of a run (binned); split = a 0-based step at which the
        drawing pauses: returns [(loss part, grad part), ...]."""
        end = run.steps if run.diverged_at is None else run.diverged_at + 1
        loss = np.nan_to_num(run.loss[:end], nan=self.loss_max, posinf=self.loss_max)
        grad = np.nan_to_num(run.grad_norm[:end], nan=10.0 ** self.log_hi,
                             posinf=10.0 ** self.log_hi)
        steps, lmax = binned(loss, MAX_POINTS)
        _, gmax = binned(grad, MAX_POINTS)
        ly = np.array([self.y_loss(v) for v in lmax])
        gy = np.array([self.y_grad(v) for v in gmax])
        cut = [0, len(steps)]
        if split is not None:
            k = int(np.searchsorted(steps, split, side="right"))   # bins up to the split's bin
            cut = [0, k, len(steps)]
        parts = []
        for a, b in zip(cut[:-1], cut[1:]):
            a0 = max(a - 1, 0)                                      # parts join without a gap
            if b - a0 < 1:
                continue
            parts.append((self._curve(steps[a0:b], ly[a0:b], color),
                          self._curve(steps[a0:b], gy[a0:b], style.GRADIENT, 2.0)))
        return parts

    # -- the scene ----------------------------------------------------------------------------------

    def construct(self):
        self.camera.background_color = style.BACKGROUND
        self._limits()
        frame_w = config.frame_width - 2 * style.FRAME_MARGIN
        run, cfg = self.unclipped, self.unclipped.config
        self.labels["title"] = f"Why the training loss spikes: a {MODEL_NAMES[self.model]}"
        self.labels["caption"] = (
            f"temporal-order task, T = {cfg['T']}, {cfg['optimizer'].upper()} lr {cfg['lr']:g}, "
            f"seed {self.seed}: loss starts at {run.initial_loss:.3f} ≈ ln 4 and accuracy at "
            f"{100 * run.accuracy[0]:.0f}% (chance)")
        title = _text(self.labels["title"], 30).move_to([0, TITLE_Y, 0])
        caption = _text(self.labels["caption"], 20, style.MUTED).next_to(title, DOWN, buff=0.15)
        for m in (title, caption):
            if m.width > frame_w:
                m.scale_to_fit_width(frame_w)
        legend = _text("without clipping", style.SMALL_SIZE + 2, style.TEXT)
        legend2 = _text(f"clipped at ‖g‖ ≤ {self.clip:g}", style.SMALL_SIZE + 2, style.OUTPUT)
        VGroup(legend, legend2).arrange(RIGHT, buff=0.5).next_to(
            [X_RIGHT, LOSS_TOP + 0.05, 0], UP, buff=0.05).align_to([X_RIGHT, 0, 0], RIGHT)
        self.add(self._axes())
        self.obstacles += [_box(legend), _box(legend2)]
        self.play(FadeIn(title), FadeIn(caption), FadeIn(legend), run_time=style.INTRO_TIME)

        spike = self.spike
        parts = self._run_curves(run, style.TEXT, split=None if spike is None else spike.step)
        (closs, cgrad), = self._run_curves(self.clipped, style.OUTPUT)
        self.curve_points = {"loss": [m.points.copy() for m in [p[0] for p in parts] + [closs]],
                             "grad": [m.points.copy() for m in [p[1] for p in parts] + [cgrad]]}
        share = [1.0] if len(parts) == 1 else [(spike.step + 1) / run.steps,
                                               1 - (spike.step + 1) / run.steps]
        loss_part, grad_part = parts[0]
        self.play(Create(loss_part), Create(grad_part), run_time=max(0.5, DRAW_TIME * share[0]),
                  rate_func=lambda t: t)
        if spike is None:
            k = int(np.nanargmax(run.grad_norm))
            self.labels["no_spike"] = (f"no spike without clipping: largest ‖g‖ = "
                                       f"{_fmt_norm(float(run.grad_norm[k]))}")
            note = _text(self.labels["no_spike"], style.SMALL_SIZE + 2, style.GRADIENT)
            place_label(note, (self.x(k), self.y_grad(float(run.grad_norm[k]))),
                        GRAD_BOTTOM + 0.05, GRAD_TOP + 0.2, self.curve_points["grad"],
                        self.obstacles)
            self.play(FadeIn(note), run_time=style.PAUSE)
        else:
            self._annotate(spike)
            self.wait(style.PAUSE * 2)
            if len(parts) > 1:
                loss_part, grad_part = parts[1]
                self.play(Create(loss_part), Create(grad_part),
                          run_time=max(0.5, DRAW_TIME * share[1]), rate_func=lambda t: t)

        # the clipped run over it
        clipped = self.clipped
        cgrad.set_stroke(style.OUTPUT, opacity=0.9)
        self.play(FadeIn(legend2), Create(closs), Create(cgrad), run_time=DRAW_TIME * 0.8,
                  rate_func=lambda t: t)
        n_spikes = len(clipped.spikes())
        finite = clipped.loss[1:][np.isfinite(clipped.loss[1:])]
        worst = float(finite.max()) if len(finite) else clipped.initial_loss
        if not clipped.clipped.any():
            summary = (f"The gradient norm never reaches {self.clip:g}: clipping never acts, "
                       "the two runs are the same.")
        elif n_spikes == 0:
            summary = (f"Clipped: same weights, same batches, no spike (max loss {worst:.2f}). "
                       "Clipping bounds every step.")
        else:
            summary = (f"Clipped at {self.clip:g}: still {n_spikes} spike{'s' if n_spikes > 1 else ''} "
                       f"(max loss {worst:.2f}); a smaller clip bounds the steps more.")
        self.labels["summary"] = summary
        text = _text(summary, 20, style.OUTPUT)
        if text.width > frame_w:
            text.scale_to_fit_width(frame_w)
        text.move_to(caption)
        self.play(FadeOut(caption), FadeIn(text), run_time=style.PAUSE)
        self.wait(style.OUTRO_TIME)

    def _annotate(self, spike):
        """Marker and label at the spike's peak; a ring and the norm at the step that caused it."""
        px, py = self.x(spike.step), self.y_loss(spike.loss)
        marker = Triangle(color=style.LOSS, fill_opacity=1, stroke_width=0).scale(0.09).rotate(math.pi)
        marker.move_to([px, py + 0.1, 0])
        self.labels["spike"] = (f"step {spike.step + 1}: loss {spike.loss:.2f}"
                                + (" > ln 4" if spike.above_initial else ""))
        self.labels["cause"] = (f"exploding gradient: ‖g‖ = {_fmt_norm(spike.grad_norm)} at step "
                                f"{spike.cause_step + 1}")
        cx, cy = self.x(spike.cause_step), self.y_grad(spike.grad_norm)
        link = DashedLine([cx, cy + 0.08, 0], [px, py, 0], color=style.LOSS, stroke_width=1.5,
                          dash_length=0.06)
        label = _text(self.labels["spike"], style.LABEL_SIZE - 4, style.LOSS)
        near = place_label(label, (px, py + 0.1), LOSS_BOTTOM + 0.05, LOSS_TOP + 0.05,
                           self.curve_points["loss"] + [np.array([[cx, cy, 0], [px, py, 0]])],
                           self.obstacles + [_box(marker)])
        leader = Line([near[0], near[1], 0], [px, py + 0.1, 0], color=style.LOSS, stroke_width=1.5)
        ring = Dot([cx, cy, 0], radius=0.07, color=style.LOSS, fill_opacity=0).set_stroke(
            style.LOSS, width=3)
        cause = _text(self.labels["cause"], style.SMALL_SIZE + 2, style.LOSS)
        near = place_label(cause, (cx, cy), GRAD_BOTTOM + 0.05, GRAD_TOP + 0.2,
                           self.curve_points["grad"] + [np.array([[cx, cy, 0], [px, py, 0]])],
                           self.obstacles + [_box(ring)])
        cause_leader = Line([near[0], near[1], 0], [cx, cy, 0], color=style.LOSS,
                            stroke_width=1.5)
        self.annotation = VGroup(marker, label, ring, cause, link, leader, cause_leader)
        self.play(Flash([px, py, 0], color=style.LOSS, line_length=0.25, flash_radius=0.2),
                  FadeIn(marker), FadeIn(label), FadeIn(ring), FadeIn(cause), Create(link),
                  Create(leader), Create(cause_leader), run_time=1.2)
