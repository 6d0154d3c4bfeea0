"""The entry points the figure registry (viz/app/registry.py) calls. They take the kind's validated
parameters (the registry validates once) and draw what `viz.story.graphs.figure` built.

    build_diagram(kind, values) -> Graph     kind "gated-rnn" or "attention-rnn": the graph model
    diagram_source(kind, values) -> str      DOT text (deterministic, no Graphviz program needed)
    render_diagram(kind, values, out, fmt)   svg | png | pdf | dot, written atomically
    diagram_svg(kind, values) -> str         SVG text (notebooks, the web explorer)

The numbers, captions, alt text and description come from one run of the reference (see
viz.story.graphs.figure); the SVG carries the Story's alt text and description.
"""
from __future__ import annotations

from pathlib import Path

from diagrams import render
from viz.story.graphs.figure import Figure, figure
from viz.story.graphs.model import Graph


def build_diagram(kind: str, values: dict) -> Graph:
    """The graph model of one figure (no Graphviz involved)."""
    return figure(kind, values).graph


def diagram_source(kind: str, values: dict) -> str:
    """DOT text of the figure; deterministic and available without the Graphviz programs."""
    return render.dot_source(build_diagram(kind, values), _theme(values))


def _theme(values: dict) -> str:
    return values.get("theme", "light")      # a render option: not part of what the figure shows


def render_figure(fig: Figure, out, fmt: str, *, theme: str = "light", dpi: float | None = None) -> Path:
    """Write a built figure to `out` as svg, png, pdf or dot, atomically (never a partial file)."""
    return render.render(fig.graph, Path(out), fmt, theme, dpi=dpi, story=fig.story)


def render_diagram(kind: str, values: dict, out, fmt: str, *, dpi: float | None = None) -> Path:
    """svg/png/pdf need Graphviz's programs (viz.io.MissingProgram says how to install them); dot does not."""
    return render_figure(figure(kind, values), out, fmt, theme=_theme(values), dpi=dpi)


def diagram_svg(kind: str, values: dict) -> str:
    """The figure as SVG text (byte-identical across runs), with its alt text and description."""
    fig = figure(kind, values)
    return render.svg_text(fig.graph, _theme(values), story=fig.story)
