"""The entry points the figure registry (viz/figures.py) calls, and a notebook-friendly `Diagram`.

    build_diagram(kind, params) -> Graph     kind "gated-rnn" or "attention-rnn"
    diagram_source(kind, params) -> str      DOT text (deterministic, no Graphviz program needed)
    render_diagram(kind, params, out, fmt)   svg | png | pdf | dot, written atomically
    diagram_svg(kind, params) -> str         SVG text (notebooks, the web explorer)
    diagram(kind, **params) -> Diagram       shows itself in Jupyter (_repr_svg_), .save(path)

params (already validated by the registry; missing keys take the defaults below):
    view "cell" | "unrolled" | "backward";  steps T (1..64);  n;  m (gated);  k int or None = ∞
    (attention);  base_case "zeros" | "mask" (attention);  preset "none" | "vanish" | "survive" |
    "explode";  scale (weight scale, with preset "none");  seed;  annotate "none" | "shapes" |
    "values";  theme "light" | "dark"

The numbers come from one run of the reference (viz.rnn / viz.attention) with these parameters; the
backward figures use a loss read at h[T] only (`last_step_upstream`), so ‖δ[t]‖ is the size of the
Jacobian product from T back to t.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from diagrams import render
from diagrams.graph import Graph

KINDS = ("gated-rnn", "attention-rnn")
VIEWS = ("cell", "unrolled", "backward")

DEFAULTS = {
    "gated-rnn": dict(view="unrolled", steps=4, n=3, m=3, preset="none", scale=1.0, seed=0,
                      annotate="shapes", theme="light"),
    "attention-rnn": dict(view="unrolled", steps=6, n=3, k=2, base_case="zeros", preset="none",
                          scale=1.0, seed=0, annotate="shapes", theme="light"),
}


def _params(kind: str, params: dict) -> dict:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    unknown = sorted(set(params) - set(DEFAULTS[kind]))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} for {kind} (allowed: {', '.join(DEFAULTS[kind])})")
    p = dict(DEFAULTS[kind])
    p.update(params)
    if p["view"] not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)} (got {p['view']!r})")
    return p


# ---- running the reference ------------------------------------------------------------------------

def gated_run(p: dict):
    """(model, trace, grads or None, dl_dh or None) of the gated RNN for these parameters."""
    from viz import rnn

    r = rnn.gated_run(p["steps"], p["n"], p["m"], seed=p["seed"], preset=p["preset"], scale=p["scale"],
                      backward=p["view"] == "backward")
    return r.model, r.trace, r.grads, r.dl_dh


def attention_run(p: dict):
    """(model, trace, grads or None, dl_dh or None) of AttentionRNN(k) for these parameters."""
    from viz import attention

    r = attention.attention_run(p["steps"], p["n"], p["k"], seed=p["seed"], preset=p["preset"],
                                base_case=p["base_case"], scale=p["scale"], backward=p["view"] == "backward")
    return r.model, r.trace, r.grads, r.dl_dh


# ---- entry points ----------------------------------------------------------------------------------

def build_diagram(kind: str, params: dict) -> Graph:
    """The graph model of one figure (no Graphviz involved)."""
    p = _params(kind, params)
    if kind == "gated-rnn":
        from diagrams import gated_rnn

        model, trace, grads, dl_dh = gated_run(p)
        if p["view"] == "cell":
            return gated_rnn.cell(model, trace, trace.T, p["annotate"], p["preset"])
        return gated_rnn.unrolled(model, trace, p["annotate"], grads, dl_dh, p["preset"])
    from diagrams import attention_rnn

    model, trace, grads, dl_dh = attention_run(p)
    if p["view"] == "cell":
        return attention_rnn.cell(model, trace, trace.T, p["annotate"])
    return attention_rnn.unrolled(model, trace, p["annotate"], grads, dl_dh)


def diagram_source(kind: str, params: dict) -> str:
    """DOT text of the figure; deterministic and available without the Graphviz programs."""
    return render.dot_source(build_diagram(kind, params), _params(kind, params)["theme"])


def render_diagram(kind: str, params: dict, out, fmt: str, *, dpi: float | None = None) -> None:
    """Write the figure to `out` as svg, png, pdf or dot, atomically (never a partial file).

    svg/png/pdf need Graphviz's programs (viz.io.MissingProgram says how to install them); dot does not.
    """
    p = _params(kind, params)
    render.render(build_diagram(kind, p), Path(out), fmt, p["theme"], dpi=dpi)


def diagram_svg(kind: str, params: dict) -> str:
    """The figure as SVG text (byte-identical across runs)."""
    p = _params(kind, params)
    return render.svg_text(build_diagram(kind, p), p["theme"])


@dataclass
class Diagram:
    """A figure for notebooks: displays as SVG in Jupyter, `.save("fig.png")` writes a file."""

    kind: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.params = _params(self.kind, self.params)
        self._graph = None

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            self._graph = build_diagram(self.kind, self.params)
        return self._graph

    @property
    def source(self) -> str:
        return render.dot_source(self.graph, self.params["theme"])

    def svg(self) -> str:
        return render.svg_text(self.graph, self.params["theme"])

    def _repr_svg_(self) -> str:
        return self.svg()

    def save(self, path, fmt: str | None = None, dpi: float | None = None) -> Path:
        path = Path(path)
        return render.render(self.graph, path, fmt or path.suffix.lstrip("."), self.params["theme"], dpi=dpi)


def diagram(kind: str, **params) -> Diagram:
    """diagram("gated-rnn", view="backward", preset="explode") -> Diagram (lazy: renders when shown)."""
    return Diagram(kind, params)
