"""Steps of a rendered StoryScene: where each one sits in the video, a still of any step, vector frames.

A StoryScene marks step k with `begin_step(k)`, brings it on screen, then `hold_until(end_k)`. The
`StepClock` attached to a scene instance records, on the renderer's clock (frames written / fps, so
the numbers are exact frame boundaries of the video):

    start_k   clock at begin_step(k)
    hold_k    clock when the step's (last) hold begins: everything after it until end_k is one frame
    end_k     clock when the step ends (after its hold, or at the next begin_step)

From one render the slides cut clip k = frames [start_k, end_k) and take as poster the frame in the
middle of the hold, round(hold_k·fps) … round(end_k·fps) - 1. A still of step k (`render_step_still`)
runs the scene with animations skipped and stops when step k's hold begins: the same state, drawn
by Cairo as PNG, or as SVG/PDF through a Cairo vector surface (`draw_vector`).
"""
from __future__ import annotations

import contextlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from viz.io import atomic_path

from . import render as R


@dataclass(frozen=True)
class StepSpan:
    """Seconds on the video's clock: [start, end) is the step, [hold, end) its hold."""
    start: float
    hold: float
    end: float

    def frames(self, fps: float) -> tuple[int, int, int]:
        """(first frame, poster frame in the middle of the hold, end frame (exclusive))."""
        a, h, b = (int(round(t * fps)) for t in (self.start, self.hold, self.end))
        b = max(b, a + 1)
        h = min(max(h, a), b - 1)
        return a, min(max((h + b - 1) // 2, a), b - 1), b


class StepClock:
    """Record StepSpans of a StoryScene instance; optionally stop it when step `stop_at` holds, or
    call `on_hold(index)` at the start of every hold (the scene's state is then the step's still)."""

    def __init__(self, scene, stop_at: int | None = None, on_hold=None):
        self.scene, self.stop_at, self.on_hold = scene, stop_at, on_hold
        self.starts: list[float] = []
        self.holds: list[float | None] = []
        self.ends: list[float | None] = []
        begin, hold = scene.begin_step, scene.hold_until

        def begin_step(index: int) -> None:
            self._close(None)
            if self.stop_at is not None and len(self.starts) == self.stop_at + 1:
                if self.on_hold is not None:
                    self.on_hold(self.stop_at)
                self._stop()       # step stop_at never held: its still is its last state
            begin(index)
            self.starts.append(scene.clock())
            self.holds.append(None)
            self.ends.append(None)

        def hold_until(t: float) -> None:
            if self.starts:
                k = len(self.starts) - 1
                self.holds[k] = scene.clock()
                if self.on_hold is not None and (self.stop_at is None or self.stop_at == k):
                    self.on_hold(k)
                if self.stop_at == k:
                    self._stop()
            hold(t)
            if self.starts:
                self.ends[-1] = scene.clock()

        scene.begin_step, scene.hold_until = begin_step, hold_until

    def _stop(self):
        from manim.utils.exceptions import EndSceneEarlyException
        raise EndSceneEarlyException()

    def _close(self, _):
        if self.starts and self.ends[-1] is None:
            self.ends[-1] = self.scene.clock()

    def spans(self) -> list[StepSpan]:
        """One StepSpan per step begun (a step that never held: its hold is its end)."""
        self._close(None)
        return [StepSpan(s, e if h is None else h, e)
                for s, h, e in zip(self.starts, self.holds, self.ends)]


def scene_factory(kind: str, params: dict):
    """A function building the registered scene of `kind` with `params`, as scenes.render does."""
    cls = R.scene_class(kind)
    return lambda **kw: cls(**params, **kw)


@dataclass
class Recorded:
    spans: list[StepSpan]
    fps: int
    scene: object


def render_recorded(factory, out: Path, quality: str = "low", on_hold=None, progress: bool = True,
                    name: str = "scene") -> Recorded:
    """Render `factory()` to the mp4 `out` once and return where every step sits in it."""
    holder: list = []

    def make():
        scene = factory()
        holder.append(StepClock(scene, on_hold=on_hold and (lambda k: on_hold(scene, k))))
        return scene

    R.render_scene(make, Path(out), "mp4", quality=quality, progress=progress, name=name)
    clock = holder[-1]
    return Recorded(clock.spans(), R.QUALITIES[quality][3], clock.scene)


def render_step_still(factory, step: int, out: Path, fmt: str, quality: str = "low",
                      progress: bool = False, name: str = "scene") -> None:
    """The still of 0-based `step` (its state when its hold begins) as png, svg or pdf at `out`.

    The scene runs with animations skipped and stops there; PNG is Manim's last frame, SVG/PDF the
    same mobjects drawn on a Cairo vector surface."""
    if fmt == "png":
        R.render_scene(lambda: _stopping(factory, step), Path(out), "png", quality=quality,
                       progress=progress, name=name)
        return
    if fmt not in ("svg", "pdf"):
        raise ValueError(f"fmt must be png, svg or pdf (got {fmt!r})")

    def write(scene, k):
        with atomic_path(out) as tmp:
            write_vector(scene, tmp, fmt)

    with tempfile.TemporaryDirectory() as tmp:
        R.render_scene(lambda: _stopping(factory, step, write), Path(tmp) / "last.png", "png",
                       quality=quality, progress=progress, name=name)


def _stopping(factory, step: int, on_hold=None):
    scene = factory()
    scene._viz_clock = StepClock(scene, stop_at=step, on_hold=on_hold and (lambda k: on_hold(scene, k)))
    return scene


# ---- vector frames -------------------------------------------------------------------------------

def write_vector(scene, path: Path, fmt: str) -> None:
    """The scene's current frame as one SVG or PDF page of the frame's pixel size (in points)."""
    import cairo

    cam = scene.renderer.camera
    w, h = int(cam.pixel_width), int(cam.pixel_height)
    surface = cairo.SVGSurface(str(path), w, h) if fmt == "svg" else cairo.PDFSurface(str(path), w, h)
    if fmt == "svg":
        surface.restrict_to_version(cairo.SVG_VERSION_1_2)
    else:
        _fixed_pdf_date(surface)
    ctx = cairo.Context(surface)
    draw_vector(scene, ctx, 0, 0, 1.0)
    surface.finish()
    if fmt == "svg":   # Cairo numbers surfaces per process ("surface64"): same frame, same bytes
        text = Path(path).read_text(encoding="utf-8")
        names = dict.fromkeys(re.findall(r"\bsurface\d+\b", text))
        for i, old in enumerate(names):
            text = re.sub(rf"\b{old}\b", f"viz-surface{i + 1}", text)
        Path(path).write_text(text, encoding="utf-8")


def _fixed_pdf_date(surface) -> None:
    import cairo
    with contextlib.suppress(AttributeError):   # cairo < 1.16: no metadata (PDF then carries the time)
        surface.set_metadata(cairo.PDFMetadata.CREATE_DATE, "2000-01-01T00:00:00Z")
        surface.set_metadata(cairo.PDFMetadata.CREATOR, "viz")


def draw_vector(scene, ctx, x: float, y: float, scale: float) -> None:
    """Draw the scene's mobjects with Manim's own Cairo code into `ctx` (any surface: SVG, PDF),
    the frame's top-left corner at (x, y), one pixel of the frame = `scale` units of `ctx`."""
    import cairo
    from manim.utils.color import ManimColor

    cam = scene.renderer.camera
    pw, ph, fw, fh, fc = cam.pixel_width, cam.pixel_height, cam.frame_width, cam.frame_height, cam.frame_center
    ctx.save()
    ctx.translate(x, y)
    ctx.scale(scale, scale)
    ctx.rectangle(0, 0, pw, ph)
    ctx.clip()
    r, g, b = ManimColor(cam.background_color).to_rgb()
    ctx.set_source_rgb(r, g, b)
    ctx.paint()
    ctx.transform(cairo.Matrix(pw / fw, 0, 0, -(ph / fh), pw / 2 - fc[0] * pw / fw, ph / 2 + fc[1] * ph / fh))
    rgb = _RGBContext(ctx)
    cam.get_cairo_context = lambda pixel_array: rgb      # Manim draws every VMobject through this
    try:
        from manim.utils.iterables import list_update
        cam.capture_mobjects(list_update(scene.mobjects, scene.foreground_mobjects))
    finally:
        del cam.get_cairo_context
        ctx.restore()


class _RGBContext:
    """A Cairo context as Manim's camera sees it. Manim draws into image surfaces whose bytes it reads
    as RGBA while Cairo stores them as BGRA, so it passes colours with red and blue swapped; a vector
    surface takes them literally, so they are swapped back here."""

    def __init__(self, ctx):
        self._ctx = ctx

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def set_source_rgba(self, b, g, r, a=1.0):
        self._ctx.set_source_rgba(r, g, b, a)

    def set_source_rgb(self, b, g, r):
        self._ctx.set_source_rgb(r, g, b)

    def set_source(self, pattern):
        import cairo

        if isinstance(pattern, cairo.Gradient):
            stops = pattern.get_color_stops_rgba()
            if isinstance(pattern, cairo.LinearGradient):
                pattern = cairo.LinearGradient(*pattern.get_linear_points())
            else:
                pattern = cairo.RadialGradient(*pattern.get_radial_circles())
            for offset, b, g, r, a in stops:
                pattern.add_color_stop_rgba(offset, r, g, b, a)
        self._ctx.set_source(pattern)


# ---- manim-slides ------------------------------------------------------------------------------

def step_notes(step) -> str:
    """Speaker notes of a Story step: its narration, then its lines (the arithmetic)."""
    return "\n".join([step.narration] + [line.text for line in step.lines])


def slide_class(cls: type) -> type:
    """`cls` (a StoryScene) as a manim_slides.Slide: StoryScene.begin_step calls next_slide() at every
    step after the first, so the presentation has one slide per Story step (the first one includes
    the intro), each with the step's notes.

    manim-slides 5.7 sets two config keys manim 0.22 no longer takes (`write_to_movie`, and
    `max_files_cached = inf`); this subclass skips those two lines and keeps everything else."""
    from manim import Scene
    from manim_slides import Slide
    from manim_slides.config import BaseSlideConfig
    from manim_slides.slide.base import BaseSlide

    def __init__(self, *args, **kwargs):
        BaseSlide.__init__(self, *args, **kwargs)
        self._base_slide_config = BaseSlideConfig(notes=step_notes(self.story.steps[0])) \
            if self.story.steps else self._base_slide_config

    def next_slide(self, *args, **kwargs):
        upcoming = len(self.step_starts)           # begin_step(k) calls this before recording k
        if upcoming < len(self.story.steps):
            kwargs.setdefault("notes", step_notes(self.story.steps[upcoming]))
        return Slide.next_slide(self, *args, **kwargs)

    def render(self, *args, **kwargs):
        Scene.render(self, *args, **kwargs)
        self._save_slides(use_cache=False, flush_cache=False, skip_reversing=True)

    return type(cls.__name__, (Slide, cls), {"__module__": cls.__module__, "__init__": __init__,
                                              "next_slide": next_slide, "render": render,
                                              "skip_reversing": True})


def render_manim_slides(cls: type, params: dict, folder: Path, quality: str = "low",
                        progress: bool = True, name: str = "scene") -> str:
    """Render the scene as a manim_slides.Slide into `folder` (manim-slides' `slides/` layout:
    NAME.json + files/NAME/*.mp4); returns the scene name `manim-slides convert` takes."""
    import logging

    logging.getLogger("manim-slides").setLevel(logging.WARNING)
    holder: list = []

    def make():
        scene = slide_class(cls)(**params, output_folder=Path(folder))
        holder.append(scene)
        return scene

    with tempfile.TemporaryDirectory() as work:     # the whole video: manim-slides keeps the steps
        R.render_scene(make, Path(work) / "scene.mp4", "mp4", quality=quality, progress=progress, name=name)
    return str(holder[-1])
