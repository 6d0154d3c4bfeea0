"""Why the training loss spikes: draws the training Story (`viz.story.training.training_story`).

Two panels sharing the step axis: the loss (linear, with the ln 4 line) and the gradient norm before
clipping (log, with the clip line), for the same run without and with clipping. The Story's steps,
each on its timeline (`StoryScene`): the start at ln 4, one step per labelled spike (the plot's spikes:
`viz.train.labelled_spikes`; its peak and the step that caused it marked in yellow while it is the
current step, in the loss colour after), the rest of the run, then the clipped run over it. A step's
curves are drawn during its transition; its text lines stand above the panels.

Nothing is computed here: curves, limits, ticks and texts are the Story's; the scene maps values to
positions. Kept for tests: `texts` (every text drawn, with its string), `step_lines`, `markers`
(per spike step: the peak and the cause marker), `curves` (series name -> drawn polylines).
"""
from __future__ import annotations

import math

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, BackgroundRectangle, Create, DashedLine, Dot, Line, Triangle, VGroup, VMobject,
                   config)

from viz.story.training import training_story
from viz.train import CLIP, STEPS

from . import style
from .story_scene import Fade, StoryScene, fit_width

X_LEFT, X_RIGHT = -5.4, 6.3          # plot area (Manim units)
LOSS_BOTTOM, LOSS_TOP = -0.7, 1.95
GRAD_BOTTOM, GRAD_TOP = -3.2, -1.5
TITLE_Y, LINES_Y = 3.55, (3.0, 2.62)
TITLE_SIZE, LINE_SIZE = 30, 20
LABEL_Z = 5                          # reference-line labels stay above the curves
DRAW_SHARE = 0.5                     # a step that draws curves spends this share of its time drawing
TRANSITION = 0.45                    # seconds of a step's other transitions, at most
ROLE_COLORS = style.ROLE_COLORS


class TrainingCurve(StoryScene):
    """The loss and gradient norm of the unclipped run drawn phase by phase, each labelled spike marked
    with the gradient that caused it, then the clipped run for comparison."""

    def __init__(self, *, model: str = "vanilla", clip: float = CLIP, steps: int = STEPS, seed: int = 0,
                 step_time: float = style.STEP_TIME, **scene_kwargs):
        story = training_story(dict(model=model, clip=clip, steps=steps, seed=seed))
        super().__init__(story=story, step_time=step_time, **scene_kwargs)
        self.series = {s.name: s for s in story.series}
        self.n_steps = steps
        self.progress_total = 1 + 2 * len(story.steps)
        self.step_lines: dict[int, VGroup] = {}
        self.markers: dict[str, VGroup] = {}
        self.curves: dict[str, list] = {}

    # -- coordinates ------------------------------------------------------------------------------

    def x(self, step: float) -> float:
        """Screen x of a reader's (1-based) step."""
        return X_LEFT + step / (self.n_steps + 1) * (X_RIGHT - X_LEFT)

    def y(self, series, value: float) -> float:
        lo, hi = series.limits
        if series.scale == "log":
            v = (math.log10(max(value, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
            return GRAD_BOTTOM + min(v, 1.0) * (GRAD_TOP - GRAD_BOTTOM)
        return LOSS_BOTTOM + min(max(value, lo), hi) / hi * (LOSS_TOP - LOSS_BOTTOM)

    def _point(self, series, x: float, value: float):
        if not math.isfinite(value):                 # a diverged run: drawn at the top of its panel
            value = series.limits[1]
        return [self.x(x), self.y(series, value), 0.0]

    # -- building blocks --------------------------------------------------------------------------

    def _axes(self) -> VGroup:
        g, small = VGroup(), style.SMALL_SIZE
        loss, grad = self.series["loss"], self.series["grad"]
        for bottom, top in ((LOSS_BOTTOM, LOSS_TOP), (GRAD_BOTTOM, GRAD_TOP)):
            g.add(Line([X_LEFT, bottom, 0], [X_RIGHT, bottom, 0], color=style.MUTED, stroke_width=2))
            g.add(Line([X_LEFT, bottom, 0], [X_LEFT, top, 0], color=style.MUTED, stroke_width=2))
        for tick, label in zip(loss.x_ticks, loss.x_tick_labels):
            xx = self.x(tick)
            g.add(Line([xx, GRAD_BOTTOM, 0], [xx, GRAD_BOTTOM - 0.08, 0], color=style.MUTED))
            g.add(self.draw_text(label, small, style.MUTED, mono=True).next_to([xx, GRAD_BOTTOM - 0.08, 0], DOWN,
                                                                          buff=0.06))
        g.add(self.draw_text("training step", small, style.MUTED).move_to([(X_LEFT + X_RIGHT) / 2, GRAD_BOTTOM - 0.62, 0]))
        for series in (loss, grad):
            for tick, label in zip(series.ticks, series.tick_labels):
                yy = self.y(series, tick)
                g.add(Line([X_LEFT - 0.08, yy, 0], [X_LEFT, yy, 0], color=style.MUTED))
                g.add(self.draw_text(label, small, style.MUTED, mono=True).next_to([X_LEFT - 0.08, yy, 0], LEFT,
                                                                              buff=0.06))
        for name, top, color in (("loss", LOSS_TOP, style.TEXT), ("grad", GRAD_TOP, style.GRADIENT)):
            title = "loss" if name == "loss" else self.series[name].label
            g.add(self.draw_text(title, style.LABEL_SIZE - 4, color).next_to([X_LEFT, top, 0], UP, buff=0.1)
                  .align_to([X_LEFT - 0.6, 0, 0], LEFT))
        for name, below in (("ln4", True), ("clip", False)):          # the reference lines
            s = self.series[name]
            color = ROLE_COLORS[s.role]
            a, b = self._point(s, s.x[0], s.y[0]), self._point(s, s.x[-1], s.y[-1])
            a[0], b[0] = X_LEFT, X_RIGHT
            g.add(DashedLine(a, b, color=color, stroke_width=2, dash_length=0.08))
            label = self.draw_text(s.label, small, color)
            label.next_to(b, DOWN if below else UP, buff=0.06).align_to([X_RIGHT, 0, 0], RIGHT)
            back = BackgroundRectangle(label, color=style.BACKGROUND, fill_opacity=0.85, buff=0.04)
            g.add(VGroup(back, label).set_z_index(LABEL_Z))      # curves drawn later pass under it
        return g

    def _polyline(self, series, until: float, since: float, color: str, width: float):
        """The part of a series with since <= x <= until (joined to the point before, no gap)."""
        xs = np.asarray(series.x)
        idx = np.flatnonzero((xs <= until) & (xs >= since))
        if idx.size == 0:
            return None
        idx = np.concatenate([[idx[0] - 1], idx]) if idx[0] > 0 else idx
        pts = np.array([self._point(series, series.x[i], series.y[i]) for i in idx])
        if len(pts) == 1:
            pts = np.vstack([pts, pts])
        mob = VMobject(stroke_color=color, stroke_width=width).set_points_as_corners(pts)
        self.curves.setdefault(series.name, []).append(mob)
        return mob

    def _markers(self, step) -> VGroup:
        """Yellow marks at what the step lights: a triangle over a spike's peak (a dot for a plain point
        of the loss), a ring at the gradient step, and a dashed link between the two."""
        g, loss, grad = VGroup(), self.series["loss"], self.series["grad"]
        peaks, causes = step.lit_cells("loss", "highlight"), step.lit_cells("grad", "highlight")
        points = []
        for x in peaks:
            p = self._point(loss, x, loss.y[list(loss.x).index(x)])
            if causes:
                mark = Triangle(color=style.HIGHLIGHT, fill_opacity=1, stroke_width=0).scale(0.09).rotate(math.pi)
                g.add(mark.move_to([p[0], p[1] + 0.12, 0]))
            else:
                g.add(Dot(p, radius=0.07, color=style.HIGHLIGHT))
            points.append(p)
        for x in causes:
            c = self._point(grad, x, grad.y[list(grad.x).index(x)])
            g.add(Dot(c, radius=0.08, fill_opacity=0).set_stroke(style.HIGHLIGHT, width=3))
            for p in points:
                g.add(DashedLine([c[0], c[1] + 0.08, 0], p, color=style.HIGHLIGHT, stroke_width=1.5,
                                 dash_length=0.06))
        return g

    # -- the scene ----------------------------------------------------------------------------------

    def construct(self):
        self.camera.background_color = style.BACKGROUND
        self.frame_w = config.frame_width - 2 * style.FRAME_MARGIN
        story = self.story
        title = fit_width(self.draw_text(story.title, TITLE_SIZE), self.frame_w).move_to([0, TITLE_Y, 0])
        legend = VGroup(self.draw_text(self.series["loss"].label, style.SMALL_SIZE + 2, style.TEXT),
                        self.draw_text(self.series["loss-clipped"].label, style.SMALL_SIZE + 2, style.OUTPUT))
        legend.arrange(RIGHT, buff=0.5).next_to([X_RIGHT, LOSS_TOP + 0.05, 0], UP, buff=0.05)
        legend.align_to([X_RIGHT, 0, 0], RIGHT)
        self.add(self._axes(), title, legend[0])
        self.wait(self.intro_time)
        shown, drawn, previous = VGroup(), 0.0, None
        for index, (step, (start, end)) in enumerate(zip(story.steps, self.timeline)):
            self.begin_step(index)
            lines = self.lines_of(step, LINES_Y, LINE_SIZE, self.frame_w, ROLE_COLORS)
            self.step_lines[index] = lines
            until = float(step.data.get("until", drawn))
            new = [m for m in (self._polyline(self.series["loss"], until, drawn, style.TEXT, 2.5),
                               self._polyline(self.series["grad"], until, drawn, style.GRADIENT, 2.0))
                   if m is not None and until > drawn]
            if step.id == "clipped":
                new += [self._polyline(self.series["loss-clipped"], math.inf, 0, style.OUTPUT, 2.5),
                        self._polyline(self.series["grad-clipped"], math.inf, 0, style.OUTPUT, 2.0)]
            anims = [Fade(shown, out=True), Fade(lines)]
            if previous is not None:                        # the last spike's marks: back to the loss colour
                for m in previous:
                    m.set_color(style.LOSS)
                previous = None
            marks = self._markers(step)
            if len(marks):
                previous = self.markers[step.id] = marks
                anims.append(Fade(marks))
            if step.id == "clipped":
                anims.append(Fade(legend[1]))
            share = DRAW_SHARE if new else 0.0
            run_time = max(min(TRANSITION, 0.3 * (end - start)), share * (end - start))
            self.play(*anims, *[Create(m, rate_func=lambda t: t) for m in new], run_time=run_time)
            shown, drawn = lines, max(drawn, until)
            self.hold_until(end)
