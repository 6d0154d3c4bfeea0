"""Figures embedded in pages: the files a page needs and the accessible HTML that shows them.

One mechanism for every page viz writes into (MkDocs, Sphinx, notebooks):
- `cached(kind, values, fmt)`: the figure rendered once into a content-addressed cache (the key of
  `viz build`: parameters, format, viz and tool versions, source), so pages and notebooks share renders.
- `companions(kind, fmt)`: what goes with a primary file: a poster still and a captions track for a
  video; `still_format(kind)`: what print (LaTeX) takes instead.
- `figure_html(...)`: `<figure>` with alt text (from the Story, unless the author gave one), a video with
  poster, `aria-label` and a captions `<track>`, and a `<figcaption>`.
"""
from __future__ import annotations

import html
from pathlib import Path

from viz.app import registry
from viz.io import atomic_path

VIDEO_FORMATS = ("mp4", "webm")


def cache_dir() -> Path:
    """The figures pages and notebooks share: the user's cache folder for viz (platformdirs:
    $XDG_CACHE_HOME/viz, else ~/.cache/viz on Linux), then notebook/."""
    import platformdirs

    return platformdirs.user_cache_path("viz") / "notebook"


def cached(kind: registry.FigureKind, values: dict, fmt: str) -> Path:
    """The figure in format `fmt`, rendered once into the shared cache; returns the cached file."""
    from viz.app.build import cache_key

    if fmt not in kind.all_formats:
        raise registry.ParamError("format", f"--format: must be one of {', '.join(kind.all_formats)} (got {fmt!r})")
    path = cache_dir() / f"{cache_key(kind.key, values, fmt)}.{fmt}"
    if not path.is_file():
        from scenes.render import quiet     # the page or the cell shows the figure, not a progress line

        with quiet(), atomic_path(path) as tmp:       # never a half-written file in the cache
            kind.render_to(dict(values), tmp, fmt)
    return path


def cached_step(kind: registry.FigureKind, values: dict, step: int, fmt: str) -> Path:
    """The still of 1-based Story step `step` of an animation (png, svg or pdf), cached like `cached`."""
    from viz.app.build import cache_key
    from viz.app.slides import check_step, render_step

    check_step(kind, values, step)                  # a ParamError naming --step and the range
    path = cache_dir() / f"{cache_key(kind.key, {**values, '_step': step}, fmt)}.{fmt}"
    if not path.is_file():
        from scenes.render import quiet

        with quiet(), atomic_path(path) as tmp:
            render_step(kind, dict(values), step, tmp, fmt)
    return path


def request_files(request) -> dict[str, Path]:
    """Format -> cached file of everything a page shows for a fence: the figure and its companions, or
    with step=K on an animation, that step's still (SVG, and PNG for viewers without SVG)."""
    kind, values = request.kind, request.values
    if request.step is not None and kind.is_video:
        return {fmt: cached_step(kind, values, request.step, fmt) for fmt in ("svg", "png")}
    return {fmt: cached(kind, values, fmt) for fmt in (request.fmt, *companions(kind, request.fmt))}


def shown_format(request) -> str:
    """The format a page embeds for a fence: the still's SVG with step=K, else the fence's format."""
    return "svg" if request.step is not None and request.kind.is_video else request.fmt


def companions(kind: registry.FigureKind, fmt: str) -> tuple[str, ...]:
    """Formats rendered beside `fmt` so a page can show it accessibly: a video's poster and captions."""
    if fmt in VIDEO_FORMATS:
        return tuple(f for f in ("png", registry.CAPTIONS_FORMAT) if f in kind.all_formats)
    return ()


def still_format(kind: registry.FigureKind, vector: bool = True) -> str | None:
    """The format of a still for print (LaTeX): PDF where the kind writes one, else PNG."""
    for fmt in (("pdf", "png") if vector else ("png",)):
        if fmt in kind.all_formats:
            return fmt
    return None


def alt_text(kind: registry.FigureKind, values: dict, given: str = "") -> tuple[str, str]:
    """(alt, longer description): the author's alt if given, else the Story's, else the kind's summary."""
    if given:
        return given, ""
    if kind.story:
        story = kind.build_story(values)
        if story.alt:
            return story.alt, story.description
    return kind.summary, ""


def figure_html(kind: registry.FigureKind, values: dict, fmt: str, urls: dict[str, str], *, caption: str = "",
                alt: str = "", width: str = "") -> str:
    """Accessible HTML for one figure whose files are at `urls` (format -> URL relative to the page)."""
    e = html.escape
    alt, description = alt_text(kind, values, alt)
    style = f' style="width:{e(width if not width.isdigit() else width + "px")};max-width:100%"' if width else \
        ' style="max-width:100%"'
    if fmt in VIDEO_FORMATS:
        poster = f' poster="{e(urls["png"])}"' if "png" in urls else ""
        track = (f'<track kind="captions" srclang="en" label="English" src="{e(urls["vtt"])}" default>'
                 if "vtt" in urls else "")
        body = (f'<video controls playsinline preload="metadata"{poster} aria-label="{e(alt)}"{style}>'
                f'<source src="{e(urls[fmt])}" type="video/{fmt}">{track}</video>')
    elif fmt in ("svg", "png", "gif"):
        body = f'<img src="{e(urls[fmt])}" alt="{e(alt)}"{style}>'
    else:
        body = f'<a href="{e(urls[fmt])}">{e(alt)}</a>'
    desc = f'<details class="viz-description"><summary>Description</summary><p>{e(description)}</p></details>' \
        if description and description != alt else ""
    cap = f"<figcaption>{e(caption)}</figcaption>" if caption else ""
    return f'<figure class="viz-figure">{body}{cap}{desc}</figure>'


def error_html(message: str) -> str:
    """A fence that could not be drawn: the command line's one-line message, in the page."""
    return f'<div class="viz-error admonition failure"><p>viz: error: {html.escape(message)}</p></div>'
