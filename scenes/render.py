"""Render a scene kind to a file, in-process, atomically.

    render_animation("conv", {"input": (7,), "channels": 5, "kernel": (3,), "stride": 2, ...},
                     Path("conv.mp4"), "mp4", quality="low")

- One table, `SCENES`, maps a figure kind to its scene class ("module:Class", imported lazily, so the
  modules written by others load only when their kind is rendered).
- Scene classes take their parameters as keyword arguments and forward any other keyword arguments
  to `manim.Scene.__init__`:  `def __init__(self, *, input, kernel, ..., **scene_kwargs)`.
  A scene may set `self.progress_total` (the number of `play`/`wait` calls it will make) for a
  progress bar with a total.
- Manim's `config` is process-global: everything is set inside one `tempconfig`, which restores it.
  Manim's media folders live under `cache_dir()`, never in the working directory; each render works
  in a private folder there (``work/render-*``, locked while in use; `remove_stale_workdirs` removes
  those a killed render left) and the finished file is renamed onto `out` (viz.io.atomic_path).
- SIGTERM/SIGHUP during a render in a process that does not handle them itself (`viz animate`) end it
  like Ctrl-C: the temporary file and the work folder go, exit status 128 + signal.
- Same inputs, same bytes: caching off, fixed scene order, no randomness in scenes; WebM is remuxed
  with FFmpeg's bitexact flag (the Matroska muxer otherwise writes random segment and track ids).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import shutil
import sys
import time
from pathlib import Path

from viz.io import MissingProgram, atomic_path

from . import style
from .encode import bitexact_webm, gif_from_video
from .files import cache_dir, held, remove_stale_temporaries, remove_stale_workdirs, stop_on_term, workdir

__all__ = ["FORMATS", "QUALITIES", "SCENES", "cache_dir", "dry_run", "dry_run_scene", "import_manim",
           "remove_stale_workdirs", "render_animation", "render_scene", "scene_class"]

SCENES: dict[str, str] = {
    "conv": "scenes.conv:ConvSlide",
    "conv-backward": "scenes.conv_backward:ConvBackward",
    "bptt": "scenes.bptt:GradientFlow",
    "training": "scenes.training:TrainingCurve",
    "conv-transpose": "scenes.arithmetic:TransposeScene",
    "pool": "scenes.arithmetic:PoolScene",
}

# quality name -> (Manim quality key, pixel width, pixel height, frames per second)
QUALITIES: dict[str, tuple[str, int, int, int]] = {
    "low": ("low_quality", 854, 480, 15),
    "medium": ("medium_quality", 1280, 720, 30),
    "high": ("high_quality", 1920, 1080, 60),
}
FORMATS = ("mp4", "gif", "webm", "png")
H264_OPTIONS = {"crf": "23", "preset": "superfast", "tune": "animation"}

CAIRO_HINT = ("Manim needs the Cairo and Pango libraries: apt-get install libcairo2-dev libpango1.0-dev "
              "pkg-config, then reinstall (./tasks setup, or pip install --force-reinstall pycairo "
              "manimpango)")


def import_manim():
    """Import manim, turning a missing Cairo/Pango into MissingProgram with the install line."""
    try:
        import manim
    except (ImportError, OSError) as exc:  # pycairo/manimpango not built, or libcairo.so missing
        raise MissingProgram(f"{CAIRO_HINT} ({exc})") from exc
    return manim


def scene_class(kind: str) -> type:
    """The scene class registered for `kind` (imported on first use)."""
    if kind not in SCENES:
        raise ValueError(f"kind must be one of {', '.join(SCENES)} (got {kind!r})")
    import_manim()
    module_name, class_name = SCENES[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _manim_config(fmt: str, quality: str, workdir: Path, extra: dict | None = None) -> dict:
    quality_key, width, height, fps = QUALITIES[quality]
    return {**{
        "verbosity": "ERROR",         # first: setting "format" below logs a warning for webm otherwise
        "media_dir": str(cache_dir()),
        # Text's and Typst's SVG caches live in the render's own folder: Pango wraps text at the
        # frame's pixel width but Manim's cache key ignores it (a shared cache would reuse an SVG
        # made at another size), and Manim writes then deletes a temporary `<hash>_.svg` beside each
        # entry, so two renders in parallel processes delete each other's files (viz build --jobs 2).
        "text_dir": str(workdir / "texts"),
        "tex_dir": str(workdir / "tex"),
        "video_dir": str(workdir),
        "images_dir": str(workdir),
        "partial_movie_dir": str(workdir / "partial"),
        "output_file": "scene",
        "format": fmt,
        "quality": quality_key,
        "pixel_width": width,
        "pixel_height": height,
        "frame_rate": fps,
        "background_color": style.BACKGROUND,
        "disable_caching": True,      # deterministic segment names; nothing stale reused
        "flush_cache": False,
        "progress_bar": "none",       # replaced by one line per render (Progress below)
        "log_to_file": False,
        "preview": False,
        "show_in_file_browser": False,
        "dry_run": False,
        "from_animation_number": 0,
        "upto_animation_number": -1,
        "write_all": False,
        "save_sections": False,
        "transparent": False,
        # H.264 settings measured in benchmarks/bench_scenes.py --encoders (1080p60, the homework
        # backward): x264's default `medium` 74 ms/frame, 2264 kB, PSNR(Y) 40.7 dB; `veryfast` +
        # `animation` 28 ms, 1944 kB, 38.7 dB; `superfast` + `animation` 21 ms, 3480 kB, 43.2 dB
        # (flat colours and text: sharper and 3.5x faster, at a larger file). Only for mp4 (libx264);
        # webm keeps Manim's VP9 defaults.
        **({"video_encoder_options": dict(H264_OPTIONS)} if fmt == "mp4" else {}),
    }, **(extra or {})}


def _encode_holds_once(renderer) -> None:
    """A held frame (Manim's static `wait` writes one frame with repeat=N) is converted from RGBA to
    the encoder's pixel format once, not N times: at 1080p the conversion alone costs about as much
    as encoding. Same frames, same bytes; only the repeated work goes."""
    writer = getattr(renderer, "file_writer", None)
    if writer is None or getattr(writer, "video_encoder", None) is None:
        return
    from fractions import Fraction

    import av
    from manim.scene.video_segment_encoder import VideoSegmentEncoder

    class HoldOnceEncoder(VideoSegmentEncoder):
        def write_frame(self, pixels, *, repeat: int = 1) -> None:
            if repeat == 1:
                return super().write_frame(pixels, repeat=1)
            self._validate_frame(pixels, repeat)
            rate = self.spec.frame_rate
            frame = av.VideoFrame.from_ndarray(pixels, format="rgba").reformat(format=self._stream.pix_fmt)
            frame.time_base = Fraction(rate.denominator, rate.numerator)
            try:
                for _ in range(repeat):
                    frame.pts = self._next_pts
                    self._next_pts += 1
                    for packet in self._stream.encode(frame):
                        self._container.mux(packet)
            except BaseException as error:
                raise self._operation_error("encode", error) from error

    writer._create_segment_encoder = lambda target: HoldOnceEncoder(target=target, spec=writer.video_encoder)


class Progress:
    """Progress of one render on stderr: animations played, seconds of video, wall time.

    On a terminal, a `rich` bar redrawn in place; otherwise a plain line at most every 5 s and once
    at the end, so logs stay short (and a notebook or a build's log gets no escape codes).
    """

    def __init__(self, name: str, stream=None, enabled: bool = True):
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.plays = 0
        self.video_seconds = 0.0
        self.total: int | None = None
        self.start = time.perf_counter()
        self.last_print = self.start
        self._bar = None

    def _line(self) -> str:
        elapsed = time.perf_counter() - self.start
        if self.total:
            done = min(self.plays, self.total)
            width = 24
            filled = round(width * done / self.total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}"
        else:
            bar = f"{self.plays} animations"
        return f"viz: {self.name} {bar}, {self.video_seconds:.1f} s of video, {elapsed:.1f} s"

    def _draw(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        if self._bar is None:
            console = Console(file=self.stream, force_terminal=True, highlight=False)
            self._bar = Bar(TextColumn(f"viz: {self.name}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                            TextColumn("{task.fields[video]:.1f} s of video"), TimeElapsedColumn(),
                            console=console, transient=True, auto_refresh=False)
            self._task = self._bar.add_task("", total=self.total, video=0.0)
            self._bar.start()
        self._bar.update(self._task, completed=self.plays, total=self.total, video=self.video_seconds)
        self._bar.refresh()

    def tick(self, duration: float, total: int | None) -> None:
        self.plays += 1
        self.video_seconds += duration
        self.total = total
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            self._draw()
        elif now - self.last_print >= 5.0:
            self.stream.write(self._line() + "\n")
            self.last_print = now

    def close(self) -> None:
        """Take the bar off the terminal (also when the render failed)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def done(self) -> None:
        self.close()
        if not self.enabled:
            return
        self.stream.write(self._line() + " - done\n")
        self.stream.flush()


_QUIET: list[bool] = []


@contextlib.contextmanager
def quiet():
    """Renders inside this block report no progress: where the figure itself is the output (a notebook
    cell, a page build), a progress line would be saved into it."""
    _QUIET.append(True)
    try:
        yield
    finally:
        _QUIET.pop()


def _attach_progress(scene, progress: Progress) -> None:
    """Count every play (Scene.wait goes through play too) without touching Manim's internals."""
    play = scene.play

    def counted_play(*args, **kwargs):
        result = play(*args, **kwargs)
        progress.tick(float(scene.duration), getattr(scene, "progress_total", None))
        return result

    scene.play = counted_play


def _skip_intermediate_frames(renderer, final_frame: bool = True) -> None:
    """Stop the Cairo renderer from drawing frames nobody will see.

    Manim draws the static background and the last frame of every play even when it skips the
    animations (last-frame PNG, dry runs): for a 28x28 grid that is most of the time. With
    final_frame the frame at the end (what a PNG shows) is still drawn by scene_finished.
    """
    renderer.save_static_frame_data = lambda *args, **kwargs: None
    renderer.render = lambda *args, **kwargs: None
    if not final_frame:
        renderer.update_frame = lambda *args, **kwargs: None


def render_scene(scene_factory, out: Path, fmt: str, quality: str = "low", progress: bool = True,
                 name: str = "scene", extra_config: dict | None = None) -> None:
    """Render the scene `scene_factory()` builds (inside the render's config) to `out`.

    fmt: mp4 | gif | webm | png (png = the last frame as a still). quality: low | medium | high
    (480p15, 720p30, 1080p60). The file appears whole at `out` or not at all. extra_config: more
    Manim config keys, e.g. {"upto_animation_number": 12} with fmt="png" for a still of the
    frame after animation 12.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {', '.join(QUALITIES)} (got {quality!r})")
    manim = import_manim()
    out = Path(out)
    bar = Progress(name, enabled=progress and not _QUIET)
    # GIF: Manim's own GIF (fixed rgb8 colours, dithered) is ~10x larger than one with the video's
    # own 256-colour palette and no dithering; render an mp4, then convert (encode.gif_from_video).
    remove_stale_workdirs()
    remove_stale_temporaries(out)
    config = functools.partial(_manim_config, "mp4" if fmt == "gif" else fmt, quality, extra=extra_config)
    with contextlib.closing(bar), stop_on_term(), workdir() as work, manim.tempconfig(config(work)):
        scene = scene_factory()
        _attach_progress(scene, bar)
        _encode_holds_once(scene.renderer)
        if fmt == "png":
            _skip_intermediate_frames(scene.renderer)
        scene.render()
        artifact = scene.renderer.file_writer.output_plan.primary_artifact
        if artifact is None or not Path(artifact).is_file():
            raise RuntimeError(f"manim produced no {fmt} file for {name} (expected {artifact})")
        with atomic_path(out) as tmp, held(tmp):
            if fmt == "gif":
                gif_from_video(Path(artifact), tmp)
            elif fmt == "webm":
                bitexact_webm(Path(artifact), tmp)
            else:
                shutil.move(str(artifact), str(tmp))
    bar.done()


def render_animation(kind: str, params: dict, out: Path, fmt: str, quality: str = "low",
                     progress: bool = True, extra_config: dict | None = None) -> None:
    """Render figure `kind` with `params` (validated by the registry, without quality/format) to `out`."""
    cls = scene_class(kind)
    render_scene(lambda: cls(**params), out, fmt, quality=quality, progress=progress, name=kind,
                 extra_config=extra_config)


def dry_run(kind: str, params: dict):
    """Construct the scene for `kind` without drawing a frame or writing a file; return the scene.

    For tests: the scene's recorded state (e.g. `scene.steps`) can be inspected afterwards.
    """
    cls = scene_class(kind)
    return dry_run_scene(lambda **kw: cls(**params, **kw))


def dry_run_scene(scene_factory):
    """Run `scene_factory(skip_animations=True).construct()` under a dry-run config; return the scene."""
    manim = import_manim()
    with workdir() as work:
        # same resolution as "low": same text layout
        with manim.tempconfig(_manim_config("png", "low", work, {"dry_run": True, "format": "none"})):
            scene = scene_factory(skip_animations=True)
            _skip_intermediate_frames(scene.renderer, final_frame=False)
            scene.render()
    return scene
