"""Figures that display themselves inline in Jupyter (and save like the command line).

    import viz
    viz.figure("diagram gated-rnn", view="cell")                  # shows the SVG
    viz.figure("animate conv", input=7, channels=5, stride=2)     # shows an HTML5 <video>
    viz.figure("shape", input="21x12", kernel="4x5", stride=4)    # shows the formula table
    viz.figure("diagram attention-rnn", k="inf").save("att.png")  # writes a file, like the CLI

Parameters are the registry's (`viz kinds`), spelled as Python names (``base_case``) or as on the
command line (``"base-case"``), and validated with the same messages. Jupyter asks for
`_repr_mimebundle_`: diagrams and plots answer ``image/svg+xml``, animations ``text/html`` with the
mp4 inlined as base64, `shape` an HTML table (the geometry's own `_repr_html_`). Rendered files are
kept in a cache keyed like `viz build`'s (parameters, format, viz and tool versions, source), so
showing the same figure again is instant: ``$XDG_CACHE_HOME/viz/notebook`` (else ``~/.cache``).
"""
from __future__ import annotations

import base64
from pathlib import Path

from viz.app import registry as figures
from viz.app.embed import cache_dir  # noqa: F401  (where notebook figures are kept)
from viz.io import copy_atomic


class Figure:
    """One figure of the registry with validated parameters; renders lazily, displays inline."""

    def __init__(self, key: str, **params):
        self.kind = figures.get(key)
        if "layer" in params:           # a PyTorch layer, read by duck typing (viz.app.layer)
            from viz.app.layer import with_layer

            params = with_layer(params, self.kind.key)
        self.values = self.kind.validate(params)

    @property
    def key(self) -> str:
        return self.kind.key

    def command(self, fmt: str | None = None, out: str | None = None) -> str:
        """The `viz ...` command that draws this figure."""
        return self.kind.command_line(self.values, fmt, out)

    def __repr__(self) -> str:
        return f"<viz.Figure: {self.command()}>"

    def render(self, fmt: str) -> Path:
        """The figure in format `fmt`, rendered once into the cache; returns the cached file."""
        from viz.app.embed import cached

        return cached(self.kind, self.values, fmt)

    def save(self, path, fmt: str | None = None) -> Path:
        """Write the figure to `path` (format from the suffix unless given), atomically."""
        path = Path(path)
        fmt = fmt or path.suffix.lstrip(".").lower()
        if fmt not in self.kind.all_formats:
            raise figures.ParamError("format", f"--format: cannot tell the format from {str(path)!r}; "
                                               f"give fmt (one of {', '.join(self.kind.formats)})")
        copy_atomic(self.render(fmt), path)
        return path

    # -- Jupyter, VS Code, nbconvert: every front end asks for one of these ---------------------------

    def svg(self) -> str:
        return self.render("svg").read_text(encoding="utf-8")

    def png(self) -> bytes:
        return self.render("png").read_bytes()

    def alt(self) -> str:
        from viz.app.embed import alt_text

        return alt_text(self.kind, self.values)[0]

    def html(self) -> str:
        """HTML for the figure: a video (with poster, captions and alt text) for animations, the table
        for shapes, an <img> with alt text otherwise; files inlined, so the notebook carries them."""
        from viz.app import embed

        if self.kind.writes_text:
            from viz.app.shape_report import shape_html

            return shape_html(self.values)
        fmt = "mp4" if self.kind.is_video else "svg" if "svg" in self.kind.formats else "png"
        urls = {f: _data_url(self.render(f), f) for f in (fmt, *embed.companions(self.kind, fmt))}
        return embed.figure_html(self.kind, self.values, fmt, urls)

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_svg_(self) -> str | None:
        return self.svg() if "svg" in self.kind.formats else None

    def _repr_png_(self) -> bytes | None:
        return self.png() if "png" in self.kind.formats else None

    def _repr_markdown_(self) -> str | None:
        if not self.kind.writes_text:
            return None
        from viz.app import shape_report

        return shape_report.report(self.values, "md")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Every representation this figure has, richest first; PNG beside SVG/HTML for sanitized viewers."""
        bundle = {"text/plain": repr(self)}
        if self.kind.writes_text:
            from viz.app import shape_report

            bundle["text/plain"] = shape_report.report(self.values, "txt")
            bundle["text/markdown"] = shape_report.report(self.values, "md")
        elif "svg" in self.kind.formats:
            bundle["image/svg+xml"] = self.svg()
        if "png" in self.kind.formats:
            bundle["image/png"] = base64.b64encode(self.png()).decode("ascii")
        bundle["text/html"] = self.html()
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle


def _data_url(path: Path, fmt: str) -> str:
    mime = {"mp4": "video/mp4", "webm": "video/webm", "png": "image/png", "svg": "image/svg+xml",
            "gif": "image/gif", "vtt": "text/vtt"}[fmt]
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def figure(key: str, **params) -> Figure:
    """A figure of kind `key` ("diagram gated-rnn", "animate conv", "shape", ...) that shows itself
    inline in Jupyter; ParamError/ValueError naming the parameter when a value is out of range.
    The conv animations also take `layer=` a torch Conv1d/Conv2d (and `x=` a tensor): geometry and
    weights are read from it (viz.app.layer), torch itself is never imported."""
    return Figure(key, **params)
