"""Every animation as slides: an offline reveal.js deck, stills of any step, a handout PDF.

A slide is a Story step. The animation is rendered ONCE; `scenes.stills.StepClock` records where each
step sits in the video (start, hold, end on the renderer's clock), then

    clip k    = frames [start_k, end_k) re-encoded on their own (step 1 includes the intro),
                played on entering the slide, holding its last frame (data-autoplay, no loop)
    poster k  = the frame in the middle of step k's hold (also media/step-k.png, the slide's poster)
    still k   = media/step-k.svg: the same state drawn as vectors when the hold begins
    notes k   = the step's narration and its Lines (the arithmetic, as the Story writes it)

The deck is a folder: index.html, deck.css, reveal/ (reveal.js's dist files, copied from the npm
package `./tasks setup` installs into .venv/share/viz/reveal.js), media/. It opens from file:// with
no network. `--handout FILE.pdf` writes one A4 page per step (vector still + lines) from the same
render; `--manim-slides DIR` renders the scene as a manim_slides.Slide instead (one slide per step).
"""
from __future__ import annotations

import html
import os
import shutil
import sys
import tempfile
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from viz.app.params import ParamError
from viz.io import MissingProgram

if TYPE_CHECKING:           # annotations only: the registry renders decks through this module
    from viz.app.registry import FigureKind

REVEAL_FILES = ("reset.css", "reveal.css", "reveal.js", "theme/black.css", "plugin/notes.js")
REVEAL_HINT = ("reveal.js is missing: run ./tasks setup, or npm install --prefix "
               "{prefix} reveal.js (or set VIZ_REVEAL_JS to its dist folder)")
TEMPLATE = Path(__file__).with_name("deck_template")
MARKER = ".viz-deck"              # marks a folder as a deck viz wrote (and may replace)
PAGE = (842.0, 595.0, 36.0)       # handout: A4 landscape in points, margin
CLIP_THREADS = "2"                # fixed encoder threads: same clip bytes on any machine


def reveal_prefix() -> Path:
    return Path(sys.prefix) / "share" / "viz" / "reveal.js"


def reveal_dist() -> Path:
    """reveal.js's dist folder: $VIZ_REVEAL_JS, else the npm package under .venv/share/viz/reveal.js."""
    env = os.environ.get("VIZ_REVEAL_JS")
    where = Path(env) if env else reveal_prefix() / "node_modules" / "reveal.js" / "dist"
    if not all((where / f).is_file() for f in REVEAL_FILES):
        raise MissingProgram(REVEAL_HINT.format(prefix=reveal_prefix()) + f" (looked in {where})")
    return where


# ---- scene, story, steps ----------------------------------------------------------------------

def scene_params(kind: FigureKind, values: dict) -> tuple[dict, str]:
    """(the scene's keyword arguments, quality) for a Story scene; ParamError if the kind has none."""
    from scenes.render import scene_class
    from scenes.story_scene import StoryScene

    if kind.command != "animate" or not issubclass(scene_class(kind.name), StoryScene):
        raise ParamError("kind", f"{kind.key} does not draw a Story step by step yet: no slides or --step")
    params = dict(values)
    return params, params.pop("quality", "low")


def check_step(kind: FigureKind, values: dict, step: int) -> int:
    """The 0-based index of 1-based `step`, or a ParamError naming --step and the range."""
    n = len(kind.build_story(values).steps) if kind.story else None
    if n is None:
        raise ParamError("step", f"--step: {kind.key} has no Story steps")
    if not 1 <= step <= n:
        raise ParamError("step", f"--step: must be an integer in 1..{n} (got {step})")
    return step - 1


def render_step(kind: FigureKind, values: dict, step: int, out: Path, fmt: str) -> None:
    """`viz animate KIND ... --step K -o still.png|svg|pdf`: the still of 1-based step K."""
    from scenes import stills

    if fmt not in ("png", "svg", "pdf"):
        raise ParamError("format", f"--step: writes png, svg or pdf (got {fmt!r})")
    index = check_step(kind, values, step)
    params, quality = scene_params(kind, values)
    stills.render_step_still(stills.scene_factory(kind.name, params), index, Path(out), fmt, quality,
                             name=kind.name)


# ---- the deck ---------------------------------------------------------------------------------

def build_deck(kind: FigureKind, values: dict, out: Path, handout: Path | None = None,
               progress: bool = True) -> Path:
    """`viz slides animate KIND ... -o DECK/`: render the animation once, write the deck folder."""
    from scenes import stills

    reveal_dist()                      # before anything renders: a missing reveal.js is one line
    params, quality = scene_params(kind, values)
    return make_deck(stills.scene_factory(kind.name, params), Path(out), quality, handout=handout,
                     command=kind.command_line(values), name=kind.name, progress=progress)


def build_single_file(kind: FigureKind, values: dict, out: Path, progress: bool = True) -> Path:
    """The deck as ONE self-contained HTML file (`-o talk.slides.html`, and the manifest format
    "slides.html"): the folder deck with reveal.js's CSS and JS inlined and every clip, poster and
    captions track as a data: URI. Opens from file:// with no network, like the folder; a build can
    cache it like any other file."""
    from viz.io import write_text_atomic

    with tempfile.TemporaryDirectory(prefix=".viz-deck-") as work:
        deck = build_deck(kind, values, Path(work) / "deck", progress=progress)
        page = inline_deck(deck)
    write_text_atomic(out, page)
    return Path(out)


_MIME = {".mp4": "video/mp4", ".png": "image/png", ".vtt": "text/vtt", ".svg": "image/svg+xml"}


def inline_deck(deck: Path) -> str:
    """index.html of a folder deck with everything it loads inlined (see build_single_file)."""
    import base64
    import re

    page = (deck / "index.html").read_text(encoding="utf-8")

    def style(match):
        css = (deck / match.group(1)).read_text(encoding="utf-8")
        css = re.sub(r"@import[^;]*;", "", css)              # web fonts the folder deck does not ship either
        return f"<style>\n{css}\n</style>"

    def script(match):
        js = (deck / match.group(1)).read_text(encoding="utf-8").replace("</script", "<\\/script")
        return f"<script>\n{js}\n</script>"

    def media(match):
        path = deck / match.group(2)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'{match.group(1)}="data:{_MIME[path.suffix]};base64,{data}"'

    page = re.sub(r'<link rel="stylesheet" href="([^"]+)">', style, page)
    page = re.sub(r'<script src="([^"]+)"></script>', script, page)
    return re.sub(r'\b(src|poster)="(media/[^"]+)"', media, page)


def make_deck(factory, out: Path, quality: str = "low", handout: Path | None = None, command: str = "",
              name: str = "scene", progress: bool = True) -> Path:
    """The deck of the StoryScene `factory()` builds, at `out` (an earlier viz deck is replaced only
    once the new one is whole); `handout`: also the PDF with one page per step."""
    from scenes import stills

    reveal = reveal_dist()
    out = Path(out)
    if out.exists() and not (out / MARKER).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise ParamError("output", f"-o: {out} exists and is not a deck viz wrote; give a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(work, 0o777 & ~_umask())
    pages = _Handout(Path(handout)) if handout else None
    try:
        media = work / "media"
        media.mkdir()

        def on_hold(scene, k):
            stills.write_vector(scene, media / f"step-{k + 1}.svg", "svg")
            if pages:
                pages.page(scene, k)

        rec = stills.render_recorded(factory, media / "animation.mp4", quality, on_hold=on_hold,
                                     progress=progress, name=name)
        story = rec.scene.story
        if len(rec.spans) != len(story.steps):
            raise RuntimeError(f"{name}: the scene began {len(rec.spans)} steps, its Story has "
                               f"{len(story.steps)}")
        cut_clips(media / "animation.mp4", rec.spans, rec.fps, media)
        write_step_captions(story, [s.frames(rec.fps) for s in rec.spans], rec.fps, media)
        cam = rec.scene.renderer.camera
        _write_site(work, story, reveal, cam.pixel_width, cam.pixel_height, command)
        if pages:
            pages.finish()
        _replace_dir(work, out)
    finally:
        if pages:
            pages.abort()
        shutil.rmtree(work, ignore_errors=True)
    return out


def write_step_captions(story, bounds, fps: int, media: Path) -> None:
    """media/step-k.vtt: the captions track of step k's clip, one cue (the step's narration) over the
    whole clip, like the cue of that step in the full video's track."""
    from viz.story.vtt import step_track

    for k, (step, (start, _, end)) in enumerate(zip(story.steps, bounds), start=1):
        first = 0 if k == 1 else start
        (media / f"step-{k}.vtt").write_text(step_track(step, (end - first) / fps), encoding="utf-8")


def cut_clips(video: Path, spans, fps: int, media: Path) -> None:
    """media/step-k.mp4 (frames [start, end) of step k; step 1 from frame 0, with the intro) and
    media/step-k.png (the frame in the middle of the hold), from the one video.

    Manim encodes every play as its own segment, so a step's first frame (the start of a play) is a
    keyframe and no frame before it refers to one after: such a clip is copied packet by packet,
    without re-encoding. A clip that does not start on a keyframe is decoded and re-encoded."""
    import av

    bounds = [s.frames(fps) for s in spans]
    if bounds:
        bounds[0] = (0,) + bounds[0][1:]
    with av.open(str(video)) as inp:
        stream = inp.streams.video[0]
        tb = stream.time_base
        packets = [p for p in inp.demux(stream) if p.size]
        index = [int(round(float(p.pts * tb * fps))) for p in packets]
        keys = {i for i, p in zip(index, packets) if p.is_keyframe}
        total = len(packets)
        for k, (start, poster, end) in enumerate(bounds):
            if start >= total:
                raise RuntimeError(f"the video ended before step {k + 1} ({total} frames, spans {bounds})")
            before = max(i for i in keys if i <= poster)      # first: the copy below moves packets
            _save_poster(stream, packets[index.index(before):], fps, poster, media / f"step-{k + 1}.png")
            clip = media / f"step-{k + 1}.mp4"
            if start in keys and (end >= total or end in keys):
                _copy_clip(stream, [p for i, p in zip(index, packets) if start <= i < end], start, fps, clip)
            else:
                _encode_clip(video, start, end, fps, clip)


def _copy_clip(stream, packets, start: int, fps: int, out: Path) -> None:
    """Remux `packets` (a closed run of frames beginning at frame `start`) into their own mp4."""
    import av

    shift = int(round(start / (fps * stream.time_base)))
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
        copy = dst.add_stream_from_template(stream)
        for p in packets:
            p.pts -= shift
            p.dts -= shift
            p.stream = copy
            dst.mux(p)


def _encode_clip(video: Path, start: int, end: int, fps: int, out: Path) -> None:
    import av

    from scenes.render import H264_OPTIONS

    with av.open(str(video)) as inp:
        stream = inp.streams.video[0]
        writer = _ClipWriter(out, stream, fps, H264_OPTIONS)
        for i, frame in enumerate(inp.decode(stream)):
            if i >= end:
                break
            if i >= start:
                writer.write(frame, i - start)
        writer.close()


def _save_poster(stream, packets, fps: int, poster: int, out: Path) -> None:
    """Frame `poster` of the video as PNG, decoding `packets` from the keyframe before it (the hold is
    its own segment, so this decodes a few static frames, not the whole step)."""
    import av
    from PIL import Image

    codec = av.CodecContext.create(stream.codec_context.name, "r")
    codec.extradata = stream.codec_context.extradata
    for packet in packets + [None]:
        for frame in codec.decode(packet):
            if int(round(float(frame.pts * stream.time_base * fps))) == poster:
                # compress_level 1: a 1080p poster in a tenth of the default's time, ~1.3x the bytes
                Image.fromarray(frame.to_ndarray(format="rgb24")).save(out, compress_level=1)
                return
    raise RuntimeError(f"the video has no frame {poster + 1}")


class _ClipWriter:
    """One H.264 clip (yuv420p, faststart, fixed threads) fed decoded frames of the full video."""

    def __init__(self, path: Path, like, fps: int, options: dict):
        import av

        self.out = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.out.add_stream("libx264", rate=fps,
                                          options={**options, "threads": CLIP_THREADS})
        self.stream.width, self.stream.height = like.codec_context.width, like.codec_context.height
        self.stream.pix_fmt = "yuv420p"
        self.fps = fps

    def write(self, frame, pts: int) -> None:
        from fractions import Fraction

        frame = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
        frame.pts, frame.time_base = pts, Fraction(1, self.fps)
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.out.mux(packet)
        self.out.close()


def _write_site(work: Path, story, reveal: Path, width: int, height: int, command: str) -> None:
    from viz import __version__

    for name in REVEAL_FILES:
        (work / "reveal" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(reveal / name, work / "reveal" / name)
    shutil.copyfile(TEMPLATE / "deck.css", work / "deck.css")
    label_h = 56
    scale = 1280 / width                     # reveal lays the deck out at 1280 wide and scales it
    page = Template((TEMPLATE / "index.html").read_text(encoding="utf-8"))
    (work / "index.html").write_text(page.substitute(
        version=__version__, title=_e(story.title), width=1280, height=int(round(height * scale)) + label_h,
        slides=deck_slides(story, command)), encoding="utf-8")
    (work / MARKER).write_text("a slide deck written by viz; `viz slides ... -o` may replace it\n")


def deck_slides(story, command: str = "") -> str:
    """The <section>s: a title slide with the formula, then one slide per Story step."""
    n = len(story.steps)
    formula = "".join(f"<p>{_e(line)}</p>" for line in story.formula)
    parts = [f'<section class="title-slide" id="title">\n<h1>{_e(story.title)}</h1>\n'
             + (f'<div class="formula">{formula}</div>\n' if formula else "")
             + (f'<p class="about">{_e(story.alt)}</p>\n' if story.alt else "")
             + f'<aside class="notes"><p>{_e(story.description or story.alt)}</p>'
             + (f"<p><code>{_e(command)}</code></p>" if command else "") + "</aside>\n</section>"]
    for k, step in enumerate(story.steps, start=1):
        lines = "\n".join(_e(line.text) for line in step.lines)
        parts.append(
            f'<section class="step" id="step-{k}" data-step="{_e(step.id)}">\n'
            f'<h2 class="step-label"><span class="count">{k}/{n}</span>{_e(step.label)}</h2>\n'
            f'<video class="clip" data-autoplay muted playsinline preload="auto" '
            f'src="media/step-{k}.mp4" poster="media/step-{k}.png" aria-label="{_e(step.narration)}">'
            f'<track kind="captions" srclang="en" label="English" src="media/step-{k}.vtt"></video>\n<aside class="notes"><p>{_e(step.narration)}</p>\n<pre style="white-space: pre-wrap">{lines}</pre></aside>\n'
            f'</section>')
    return "\n".join(parts)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _replace_dir(new: Path, out: Path) -> None:
    """Put the finished folder `new` at `out`; an earlier deck there goes only once the new one is whole."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, out)


# ---- handout ----------------------------------------------------------------------------------

class _Handout:
    """A4 landscape pages, one per step: the step's label, its still as vectors, its lines."""

    def __init__(self, target: Path):
        import cairo

        from scenes.stills import _fixed_pdf_date

        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".pdf", dir=target.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        w, h, _ = PAGE
        self.surface = cairo.PDFSurface(str(self.tmp), w, h)
        _fixed_pdf_date(self.surface)
        self.ctx = cairo.Context(self.surface)

    def page(self, scene, k: int) -> None:
        import cairo

        from scenes.stills import draw_vector

        story, ctx, (w, h, m) = scene.story, self.ctx, PAGE
        step = story.steps[k]
        ctx.set_source_rgb(1, 1, 1)
        ctx.paint()
        ctx.set_source_rgb(0.35, 0.37, 0.40)
        ctx.select_font_face("DejaVu Sans", cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_NORMAL)
        ctx.set_font_size(10)
        ctx.move_to(m, m)
        ctx.show_text(f"{story.title}    step {k + 1} of {len(story.steps)}")
        ctx.set_source_rgb(0, 0, 0)
        ctx.select_font_face("DejaVu Sans", cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_BOLD)
        ctx.set_font_size(16)
        ctx.move_to(m, m + 22)
        ctx.show_text(step.label)
        cam = scene.renderer.camera
        rows = [step.narration] + [line.text for line in step.lines]
        top, row = m + 32, 15
        # the frame shrinks (down to 45% of the page height) so that every line fits below it
        room = h - m - top - 18 - row * len(rows)
        scale = min((w - 2 * m) / cam.pixel_width, max(room, 0.45 * h) / cam.pixel_height)
        draw_vector(scene, ctx, m, top, scale)
        y = top + cam.pixel_height * scale + 18
        # Cairo's toy text API has no font fallback, and DejaVu Sans Mono lacks ℓ: one font for all
        ctx.select_font_face("DejaVu Sans", cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_NORMAL)
        ctx.set_font_size(11)
        fits = int((h - m - y) // row) + 1
        if len(rows) > fits:     # keep the first lines and the last one (the result), mark the cut
            rows = rows[:fits - 2] + ["…"] + rows[-1:]
        for text in rows:
            ctx.move_to(m, y)
            ctx.show_text(text)
            y += row
        ctx.show_page()

    def finish(self) -> None:
        self.surface.finish()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        """Remove the unfinished PDF (nothing is left behind when the deck fails)."""
        self.tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- command line -----------------------------------------------------------------------------

def step_format(out: Path, fmt: str | None) -> str:
    """png, svg or pdf, from --format or the -o suffix (ParamError otherwise)."""
    fmt = fmt or Path(out).suffix.lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ParamError("format", f"--step: -o must end in .png, .svg or .pdf (got {str(out)!r})")
    return fmt


def cli_group(kinds, options, given):
    """`viz slides animate KIND [options] -o DECK/ [--handout FILE.pdf] [--manim-slides DIR]`, one
    command per animation kind, its options generated from the registry like `viz animate`'s.
    `options(kind)` and `given(values)` are the command line's own helpers."""
    import click

    group = click.Group("slides", help="Every animation as slides: a reveal.js deck in a folder (one slide "
                                       "per step, speaker notes), a handout PDF, manim-slides.")
    animate = click.Group("animate", help="Slides of a Manim animation.")
    group.add_command(animate)
    for kind in kinds:
        if kind.command == "animate":
            animate.add_command(_slides_command(kind, options, given))
    return group


def _slides_command(kind: FigureKind, options, given):
    import click

    def callback(output, handout, manim_slides, **raw):
        try:
            values = kind.validate(given(raw))
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        if handout and not handout.lower().endswith(".pdf"):
            raise ParamError("handout", f"--handout: must be a .pdf file (got {handout!r})")
        if not output and not manim_slides:
            raise click.UsageError("-o DECK/ (or --manim-slides DIR) is required")
        scene_params(kind, values)                # a kind without a Story: one line, before rendering
        if manim_slides:
            name = build_manim_slides(kind, values, Path(manim_slides))
            click.echo(f"wrote {manim_slides}: manim-slides present --folder {manim_slides} {name} "
                       f"(or convert --folder {manim_slides} {name} out.html|pdf|pptx)", err=True)
        if output:
            build_deck(kind, values, Path(output), handout=Path(handout) if handout else None)
            click.echo(f"wrote {output}/index.html" + (f" and {handout}" if handout else ""), err=True)

    params = options(kind) + [
        click.Option(["-o", "--output"], type=click.Path(), default=None,
                     help="Deck folder to write (index.html, reveal/, media/); an earlier viz deck there "
                          "is replaced once the new one is whole."),
        click.Option(["--handout"], type=click.Path(dir_okay=False), default=None,
                     help="Also write a PDF with every step's still and its lines, one page per step."),
        click.Option(["--manim-slides", "manim_slides"], type=click.Path(file_okay=False), default=None,
                     help="Render for manim-slides into this folder (needs viz[slides]); then "
                          "manim-slides convert --folder DIR SCENE out.html|pdf|pptx."),
    ]
    return click.Command(kind.name, callback=callback, params=params,
                         help=f"Slides, one per step: {kind.summary}", short_help=kind.summary.split(":")[0])


def build_manim_slides(kind: FigureKind, values: dict, folder: Path) -> str:
    """The scene as a manim_slides.Slide rendered into `folder`; returns the scene's name."""
    try:
        import manim_slides  # noqa: F401
    except ImportError:
        raise MissingProgram("manim-slides is missing: pip install 'viz[slides]' "
                             "(or .venv/bin/pip install manim-slides)") from None
    from scenes import stills
    from scenes.render import scene_class

    params, quality = scene_params(kind, values)
    return stills.render_manim_slides(scene_class(kind.name), params, folder, quality, name=kind.name)
