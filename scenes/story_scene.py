"""The base of every animation: a Manim scene that draws a Story, step by step, on the Story's timeline.

    step k occupies [start_k, end_k) = story.timeline(step_time, intro=intro_time)[k]

A scene draws its title and layout during `intro_time`, then for each step calls `begin_step(k)`,
brings the step on screen with a short transition (a fade or a move, never a text morph), and holds it
until the step's end. The frame in the middle of a step's hold shows that step and nothing of another.
Video, captions track (one cue per step) and slides (one clip per step) all cut at these times, so a
scene must not drift from them: `step_starts` records the renderer's clock at every `begin_step` and the
tests compare it with the timeline.

With manim-slides installed, `begin_step` also calls `next_slide()` when the scene is a `Slide`.
"""
from __future__ import annotations

from manim import Animation, Mobject, Scene, VGroup

from viz.story.core import Story

from . import style
from .common import text as make_text


class StoryScene(Scene):
    intro_time: float = style.INTRO_TIME

    def __init__(self, *, story: Story, step_time: float = style.STEP_TIME, **scene_kwargs):
        super().__init__(**scene_kwargs)
        self.story = story
        self.step_time = float(step_time)
        self.step_starts: list[float] = []
        self.texts: list[tuple[object, str]] = []    # every text drawn, with its string (for tests)

    @property
    def timeline(self) -> list[tuple[float, float]]:
        return self.story.timeline(self.step_time, intro=self.intro_time)

    def clock(self) -> float:
        """Seconds of video rendered so far."""
        return float(self.renderer.time)

    def begin_step(self, index: int) -> None:
        """Mark the start of Story step `index` (a slide boundary with manim-slides)."""
        if index > 0 and hasattr(self, "next_slide"):
            self.next_slide()
        self.step_starts.append(self.clock())

    def hold_until(self, t: float) -> None:
        """Wait until the video clock reaches `t` (the end of the current step)."""
        rest = t - self.clock()
        if rest > 1e-6:
            self.wait(rest)


    def draw_text(self, s: str, size: float, color: str = style.TEXT, mono: bool = False):
        """Monospaced text from cached outlines (fast); other text a Manim Text without its SVG tree;
        recorded in `texts`."""
        mob = make_text(s, size, color, font=style.MONO if mono else style.FONT)
        self.texts.append((mob, s))
        return mob

    def lines_of(self, step, ys, size: float, width: float, colors=style.ROLE_COLORS) -> VGroup:
        """A step's lines, one per height in `ys`, centred, each scaled down to `width` if wider,
        in its role's colour."""
        group = VGroup()
        for line, y in zip(step.lines, ys):
            mob = fit_width(self.draw_text(line.text, size, colors.get(line.role, style.TEXT)), width)
            group.add(mob.move_to([0, y, 0]))
        return group


def fit_width(mob, width: float):
    """Scale `mob` down (never up) to `width`."""
    if mob.width > width:
        mob.scale_to_fit_width(width)
    return mob


class Fade(Animation):
    """Fade a group in (or out, then remove it) by setting its opacity in place: a step's transition.
    Manim's FadeIn/FadeOut deep-copy every glyph of the group, which costs more than the frames."""

    def __init__(self, mob, out: bool = False, **kwargs):
        super().__init__(mob, remover=out, introducer=not out, **kwargs)
        self.out = out

    def create_starting_mobject(self):
        return Mobject()                      # nothing to interpolate from: no copy

    def interpolate_mobject(self, alpha: float) -> None:
        self.mobject.set_opacity(1.0 - alpha if self.out else alpha)
