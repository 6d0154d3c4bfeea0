"""A figure requested inside Markdown: the `viz` fence, shared by the MkDocs plugin and the Sphinx directive.

    ```viz format="svg" caption="AttentionRNN(2), one step"
    diagram attention-rnn --view cell --k 2
    ```

The body is the command line as typed in a terminal (a leading `viz` is optional, `-o` is not given: the
site decides where files go); the header carries only rendering options: format, caption, alt, theme,
width, step. Values go through the registry's parameters, so a bad value gets the command line's own
one-line message (`FenceError`), which the page shows and a strict build fails on.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from viz.app import registry

HEADER_OPTIONS = ("format", "caption", "alt", "theme", "width", "step")


class FenceError(ValueError):
    """A fence that cannot be drawn; the message is one line, as the command line would print it."""


@dataclass(frozen=True)
class FigureRequest:
    kind: registry.FigureKind
    values: dict
    fmt: str
    caption: str = ""
    alt: str = ""
    width: str = ""
    step: int | None = None

    @property
    def command(self) -> str:
        return self.kind.command_line(self.values, self.fmt)


def _kind_of(words: list[str]) -> tuple[registry.FigureKind, list[str]]:
    if words and words[0] == "viz":
        words = words[1:]
    if not words:
        raise FenceError("the viz fence is empty: write a command such as `diagram gated-rnn --view cell`")
    for take in (2, 1):
        key = " ".join(words[:take])
        if key in registry.KINDS:
            return registry.KINDS[key], words[take:]
    raise FenceError(f"unknown figure kind {' '.join(words[:2])!r} (allowed: {', '.join(registry.KINDS)})")


def _raw_params(kind: registry.FigureKind, args: list[str]) -> dict:
    """`--name value`, `--name=value`, `--flag`, `--no-flag` -> raw strings for the registry to parse."""
    by_flag = {p.flag: p for p in kind.params}
    raw, i = {}, 0
    while i < len(args):
        word = args[i]
        name, eq, value = word.partition("=")
        if name in ("-o", "--output"):
            raise FenceError("-o: the site decides where a fence's files go; use the header's format=")
        p = by_flag.get(name)
        if p is None and name.startswith("--no-") and by_flag.get("--" + name[5:]) is not None \
                and by_flag["--" + name[5:]].type == "flag" and not eq:
            raw[by_flag["--" + name[5:]].name] = False
        elif p is None:
            allowed = ", ".join(sorted(by_flag))
            raise FenceError(f"{word}: no such option of {kind.key} (allowed: {allowed})")
        elif p.type == "flag" and not eq:
            raw[p.name] = True
        elif eq:
            raw[p.name] = value
        elif i + 1 < len(args):
            raw[p.name] = args[i + 1]
            i += 1
        else:
            raise FenceError(f"{name}: needs a value ({p.describe_range()})")
        i += 1
    return raw


def parse_header(info: str) -> dict:
    """`format="svg" caption="..."` (the fence's info string after `viz`) -> options; unknown keys refused."""
    try:
        words = shlex.split(info)
    except ValueError as err:
        raise FenceError(f"viz fence header: {err}") from None
    options = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or key not in HEADER_OPTIONS:
            raise FenceError(f"viz fence header: {word!r} is not one of {', '.join(k + '=' for k in HEADER_OPTIONS)}")
        options[key] = value
    return options


def parse_fence(body: str, options: dict | None = None) -> FigureRequest:
    """The figure a fence asks for, validated by the registry; FenceError with one line otherwise."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(HEADER_OPTIONS))
    if unknown:
        raise FenceError(f"viz fence header: {unknown[0]!r} is not one of {', '.join(HEADER_OPTIONS)}")
    try:
        words = shlex.split(body.replace("\\\n", " "), comments=True)
    except ValueError as err:
        raise FenceError(f"viz fence: {err}") from None
    kind, args = _kind_of(words)
    raw = _raw_params(kind, args)
    if "theme" in options:
        if not any(p.name == "theme" for p in kind.params):
            raise FenceError(f"theme=: {kind.key} has no theme")
        raw["theme"] = options["theme"]
    try:
        values = kind.validate(raw)
    except ValueError as err:
        raise FenceError(" ".join(str(err).split())) from None
    fmt = options.get("format") or default_format(kind)
    if fmt not in kind.all_formats:
        raise FenceError(f"format=: {kind.key} writes {', '.join(kind.all_formats)} (got {fmt!r})")
    step = options.get("step")
    if step is not None:
        if not step.isdigit() or int(step) < 1:
            raise FenceError(f"step=: must be a step number 1, 2, ... (got {step!r})")
        step = int(step)
    width = options.get("width", "")
    if width and not (width.rstrip("%").isdigit() or width.endswith("px") and width[:-2].isdigit()):
        raise FenceError(f"width=: must be like 600, 600px or 80% (got {width!r})")
    return FigureRequest(kind, values, fmt, options.get("caption", ""), options.get("alt", ""), width, step)


def default_format(kind: registry.FigureKind) -> str:
    """What a page shows when the fence names no format: a video, an SVG, or the shape table."""
    for fmt in ("mp4", "svg", "md"):
        if fmt in kind.formats:
            return fmt
    return kind.formats[0]


def fence_html(request: FigureRequest, out_dir, url_prefix: str = "") -> str:
    """Render a fence's files (cached) into `out_dir` and return the accessible HTML that shows them,
    with URLs `url_prefix + file name`: what static-site generators without a plugin (Quarto, Pandoc,
    Hugo) embed through `viz fence`."""
    from pathlib import Path

    from viz.app import embed
    from viz.io import copy_atomic

    if request.kind.writes_text:
        from viz.app.shape_report import shape_html

        return f'<figure class="viz-figure viz-shape">{shape_html(request.values)}</figure>'
    urls = {}
    for fmt, source in embed.request_files(request).items():
        copy_atomic(source, Path(out_dir) / source.name)
        urls[fmt] = url_prefix + source.name
    return embed.figure_html(request.kind, request.values, embed.shown_format(request), urls,
                             caption=request.caption, alt=request.alt, width=request.width)
