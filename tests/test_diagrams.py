"""diagrams/: graph structure against the reference's traces, determinism, missing Graphviz, golden DOT.

Golden files: tests/golden/*.dot hold the DOT text of two small figures. After an intended change of a
figure, regenerate them with

    VIZ_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_diagrams.py -k golden

and review the diff like code.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from diagrams import figures, legend, render, style
from viz.app import registry
from viz.io import MissingProgram
from viz.story.graphs import common
from viz.story.graphs import figure as graph_figure
from viz.story.graphs.model import Graph, fmt_num, summary

GOLDEN = Path(__file__).parent / "golden"
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` not installed")


def values(kind: str, params: dict) -> dict:
    """The registry's validated values (the renderer takes nothing else); k=None means ∞."""
    raw = {k: ("inf" if k == "k" and v is None else v) for k, v in params.items()}
    return registry.get(f"diagram {kind}").validate(raw)


_params = values


def build_diagram(kind, params):
    return figures.build_diagram(kind, values(kind, params))


def diagram_source(kind, params):
    return figures.diagram_source(kind, values(kind, params))


def diagram_svg(kind, params):
    return figures.diagram_svg(kind, values(kind, params))


def render_diagram(kind, params, out, fmt):
    return figures.render_diagram(kind, values(kind, params), out, fmt)


def _run(kind, p):
    r = graph_figure.run(kind, p)
    return r.model, r.trace, r.grads, r.dl_dh


def gated_run(p):
    return _run("gated-rnn", p)


def attention_run(p):
    return _run("attention-rnn", p)


def drawn(g: Graph, kind: str | None = None):
    return [e for e in g.edges if e.kind != "invisible" and (kind is None or e.kind == kind)]


def into(g: Graph, head: str, kind: str):
    return [e for e in g.edges if e.head == head and e.kind == kind]


# ---- graph model ---------------------------------------------------------------------------------

def test_graph_model_rejects_bad_structure():
    g = Graph("g", "t")
    g.node("a", "state", "a")
    with pytest.raises(ValueError, match="duplicate node id"):
        g.node("a", "state", "a")
    with pytest.raises(ValueError, match="unknown node"):
        g.edge("a", "b")
    with pytest.raises(ValueError, match="node kind"):
        g.node("b", "bogus", "b")
    with pytest.raises(ValueError, match="identifiers"):
        g.node("id()", "state", "x")
    with pytest.raises(ValueError, match="edge kind"):
        g.node("c", "state", "c")
        g.edge("a", "c", "bogus")


def test_summaries_are_micrograd_style():
    assert summary(np.array([1.0, -0.5]), "values") == "1<br/>−0.5"
    assert summary(np.array([[1.0, -0.5]]), "values") == "[1, −0.5]"
    assert summary(np.ones((3, 4)), "values").startswith("3×4, ‖·‖ = 3.46")
    assert summary(np.ones((3, 4)), "shapes") == "3×4"
    assert summary(np.ones(3), "none") is None
    assert fmt_num(2.5e-7) == "2.50·10<sup>−7</sup>"
    assert fmt_num(0.0123) == "0.0123"


# ---- the gated RNN ---------------------------------------------------------------------------------

GATED = dict(n=2, m=3, seed=3, preset="none", annotate="shapes", theme="light")


@pytest.mark.parametrize("T", [1, 4, 8])
def test_gated_unrolled_structure(T):
    g = build_diagram("gated-rnn", dict(GATED, view="unrolled", steps=T))
    kinds = [n.kind for n in g.nodes.values()]
    assert kinds.count("input") == T and kinds.count("gate") == T
    assert kinds.count("state") == T and g.nodes["h0"].kind == "padding"     # h[0] = 0 shown
    assert kinds.count("parameter") == 1                                    # tied weights drawn once
    assert "shared by steps 1–" + str(T) in g.nodes["W"].info[0]
    assert [c.label for c in g.clusters.values()] == [f"step {t}" for t in range(1, T + 1)]
    # five forward edges per step: h[t-1] -> c, h[t-1] -> h, x -> c, x -> h, c -> h
    pairs = {(e.tail, e.head) for e in drawn(g)}
    assert len(drawn(g)) == 5 * T
    for t in range(1, T + 1):
        prev = "h0" if t == 1 else f"h{t - 1}"
        assert {(prev, f"c{t}"), (prev, f"h{t}"), (f"x{t}", f"c{t}"), (f"x{t}", f"h{t}"),
                (f"c{t}", f"h{t}")} <= pairs
    assert g.nodes["h1"].info == ("m = 3",) and g.nodes["x1"].info == ("n = 2",)


def test_gated_cell_is_the_equations():
    g = build_diagram("gated-rnn", dict(GATED, view="cell", steps=3))
    ops = sorted(n.label for n in g.nodes.values() if n.kind == "op")
    assert ops == sorted(["×", "×", "×", "+", "+", "σ", "1 − ·", "⊙", "⊙"])
    params = {n.id: n.info[0] for n in g.nodes.values() if n.kind == "parameter"}
    assert params == {"W_c": "m×n = 3×2", "W_h": "m×m = 3×3", "W_x": "m×n = 3×2"}
    assert g.nodes["gate"].kind == "gate" and g.nodes["gate"].label == "c[t]"
    # the two Hadamard products read the gate and h[t-1] / u[t]; the final sum gives h[t]
    assert {("gate", "had_h"), ("h_prev", "had_h"), ("one_minus", "had_u"), ("mul_x", "had_u"),
            ("had_h", "add_h"), ("had_u", "add_h"), ("add_h", "h")} <= {(e.tail, e.head) for e in g.edges}


def test_gated_cell_values_come_from_the_trace():
    p = _params("gated-rnn", dict(GATED, view="cell", steps=3, annotate="values"))
    model, trace, _, _ = gated_run(p)
    g = build_diagram("gated-rnn", p)
    assert g.nodes["gate"].info[1] == summary(trace.c[2], "values")
    assert g.nodes["h"].info[1] == summary(trace.h[3], "values")
    assert g.nodes["h_prev"].info[1] == summary(trace.h[2], "values")
    z_edge = next(e for e in g.edges if e.tail == "add_z")
    assert summary(trace.z[2], "values") in z_edge.label


@pytest.mark.parametrize("preset", ["none", "vanish", "explode"])
def test_gated_backward_norms_are_the_references(preset):
    T = 6
    p = _params("gated-rnn", dict(GATED, view="backward", steps=T, preset=preset))
    _, _, grads, dl_dh = gated_run(p)
    g = build_diagram("gated-rnn", p)
    norms = grads.delta_norms
    for t in range(1, T + 1):
        assert g.nodes[f"d{t}"].info[0] == f"‖δ‖ = {fmt_num(norms[t - 1])}"
    # colour intensity is log10 of the norm on the stated scale
    intens, lo, hi = common.norm_scale(norms)
    got = [g.nodes[f"d{t}"].intensity for t in range(1, T + 1)]
    assert got == intens
    for t in range(1, T + 1):
        assert math.isclose(got[t - 1], (math.log10(norms[t - 1]) - lo) / (hi - lo))
    # the gradient path in reverse: one "× (∂h[t]/∂h[t-1])ᵀ" node per step t = 2..T
    jac = [n for n in g.nodes.values() if n.id.startswith("J")]
    assert sorted(n.id for n in jac) == sorted(f"J{t}" for t in range(2, T + 1))
    for t in range(2, T + 1):
        assert f"∂h[{t}]" in g.nodes[f"J{t}"].label and f"∂h[{t - 1}]" in g.nodes[f"J{t}"].label
        assert ("d" + str(t - 1), f"J{t}") in {(e.tail, e.head) for e in drawn(g, "gradient")}
    grad_edges = drawn(g, "gradient")
    assert all(e.reverse for e in grad_edges)
    # the loss reads h[T] only (last_step_upstream): one direct-gradient edge, into δ[T]
    assert [e.tail for e in grad_edges if e.head == "loss"] == [f"d{T}"]
    assert int((np.abs(dl_dh).sum(axis=1) > 0).sum()) == 1


def test_gated_backward_shows_vanish_and_explode():
    """The presets' figures must look different: fading toward h[1] vs growing toward h[1]."""
    T = 8
    vanish = build_diagram("gated-rnn", dict(GATED, view="backward", steps=T, preset="vanish"))
    explode = build_diagram("gated-rnn", dict(GATED, view="backward", steps=T, preset="explode"))
    assert vanish.nodes["d1"].intensity < vanish.nodes[f"d{T}"].intensity - 0.2
    assert explode.nodes["d1"].intensity > explode.nodes[f"d{T}"].intensity + 0.2


def test_gated_compact_long_chain():
    T = 20
    g = build_diagram("gated-rnn", dict(GATED, view="unrolled", steps=T))
    assert g.direction == "TB" and not g.clusters
    assert sum(n.kind == "state" for n in g.nodes.values()) == T
    assert len(drawn(g)) == 2 * T
    b = build_diagram("gated-rnn", dict(GATED, view="backward", steps=T))
    assert sum(n.kind == "gradient" for n in b.nodes.values()) == T + 1     # δ[1..T] and ∂ℓ/∂W
    assert len(drawn(b, "gradient")) == T          # T-1 Jacobian hops + the loss


# ---- AttentionRNN ----------------------------------------------------------------------------------

ATT = dict(n=3, seed=1, annotate="shapes", theme="light")


def expected_tail(trace, t, lag, src, present):
    if lag == 0:
        return f"x{t}"
    return f"h{src}" if present else ("h0" if src == 0 else f"hm{-src}")


@pytest.mark.parametrize("k,base_case,T", [(2, "zeros", 6), (3, "zeros", 6), (3, "mask", 6),
                                           (None, "zeros", 6), (1, "zeros", 3)])
def test_attention_unrolled_reads_are_the_trace(k, base_case, T):
    p = _params("attention-rnn", dict(ATT, view="unrolled", steps=T, k=k, base_case=base_case))
    _, trace, _, _ = attention_run(p)
    g = build_diagram("attention-rnn", p)
    assert g.direction == "LR" and len(g.clusters) == T
    for t in range(1, T + 1):
        edges = into(g, f"h{t}", "attention")
        want = {expected_tail(trace, t, int(i), int(s), bool(pr)): float(a)
                for i, s, pr, a in zip(trace.lags[t - 1], trace.sources[t - 1], trace.present[t - 1],
                                       trace.a[t - 1])}
        assert {e.tail: e.value for e in edges} == pytest.approx(want, abs=0)
        assert len(edges) == len(trace.lags[t - 1])
        for e in edges:
            assert e.label == f"{e.value:.2f}"
            assert e.width == pytest.approx(0.6 + 5.0 * e.value)
    if k is None:                  # AttentionRNN(∞): every earlier state, all of them
        assert len(drawn(g, "attention")) == T * (T + 1) // 2
    zeros = [n.id for n in g.nodes.values() if n.kind == "padding"]
    if base_case == "zeros" and k is not None:
        assert sorted(zeros) == sorted(["h0"] + [f"hm{i}" for i in range(1, k)])
        assert "literal rule" in " ".join(g.notes)
    else:
        assert zeros == [] and g.nodes["h0"].kind == "never_read"
        assert ("mask" in " ".join(g.notes)) or k is None


def test_attention_zeros_take_mass_that_is_drawn():
    """k = 3, t = 1, literal base case: three zero states share the softmax with x[1]."""
    p = _params("attention-rnn", dict(ATT, view="unrolled", steps=2, k=3, base_case="zeros"))
    _, trace, _, _ = attention_run(p)
    g = build_diagram("attention-rnn", p)
    from_zeros = [e for e in into(g, "h1", "attention") if g.nodes[e.tail].kind == "padding"]
    assert len(from_zeros) == 3
    assert sum(e.value for e in from_zeros) == pytest.approx(float(trace.a[0][1:].sum()))
    assert all(e.value > 0 for e in from_zeros)


@pytest.mark.parametrize("k", [2, None])
def test_attention_backward_follows_every_read(k):
    T = 5
    p = _params("attention-rnn", dict(ATT, view="backward", steps=T, k=k))
    _, trace, grads, _ = attention_run(p)
    g = build_diagram("attention-rnn", p)
    for t in range(1, T + 1):
        assert g.nodes[f"d{t}"].info[0] == f"‖δ‖ = {fmt_num(grads.delta_norms[t - 1])}"
    hops = {(e.tail, e.head) for e in drawn(g, "gradient") if e.head != "loss"}
    want = {(f"d{int(s)}", f"d{t}") for t in range(1, T + 1)
            for i, s, pr in zip(trace.lags[t - 1], trace.sources[t - 1], trace.present[t - 1])
            if i > 0 and pr}
    assert hops == want
    for e in drawn(g, "gradient"):
        if e.head != "loss":
            src, t = int(e.tail[1:]), int(e.head[1:])
            assert f"∂h[{t}]" in e.label and f"∂h[{src}]" in e.label


def test_attention_cell_has_the_products():
    g = build_diagram("attention-rnn", dict(ATT, view="cell", steps=4, k=2))
    ops = [n.label for n in g.nodes.values() if n.kind == "op"]
    assert ops.count("×") == 9 and ops.count("·") == 3 and "softmax" in ops
    assert sum(n.kind == "parameter" for n in g.nodes.values()) == 3
    inf = build_diagram("attention-rnn", dict(ATT, view="cell", steps=4, k=None))
    shared = [n for n in inf.nodes.values() if n.kind == "parameter"]
    assert len(shared) == 2 and "shared by every lag" in shared[1].info[0]


def test_attention_compact_draws_the_stated_subset():
    T = 64
    p = _params("attention-rnn", dict(ATT, view="unrolled", steps=T, k=None))
    _, trace, _, _ = attention_run(p)
    g = build_diagram("attention-rnn", p)
    edges = drawn(g, "attention")
    # AttentionRNN(∞), compact: the lag-1 chain and every read of the last step
    want = {(f"h{t - 1}", f"h{t}") for t in range(2, T + 1)} | {(f"h{s}", f"h{T}") for s in range(1, T)}
    assert {(e.tail, e.head) for e in edges} == want
    for e in edges:
        t, s = int(e.head[1:]), int(e.tail[1:])
        row = list(trace.lags[t - 1]).index(t - s)
        assert e.value == float(trace.a[t - 1][row])
    assert f"({len(want)} of {T * (T - 1) // 2} reads" in g.notes[-1]


# ---- labels, legend ----------------------------------------------------------------------------------

FIGURES = [
    ("gated-rnn", dict(view="cell", annotate="values")),
    ("gated-rnn", dict(view="backward", steps=4, preset="explode", annotate="values")),
    ("gated-rnn", dict(view="backward", steps=12)),
    ("attention-rnn", dict(view="cell", k=None, annotate="values")),
    ("attention-rnn", dict(view="cell", k=5)),
    ("attention-rnn", dict(view="backward", steps=4, k=3, annotate="values")),
    ("attention-rnn", dict(view="unrolled", steps=10, k=2)),
    ("attention-rnn", dict(view="backward", steps=3, k=8)),
]


def _well_formed(fragment: str):
    ET.fromstring(f"<x>{fragment}</x>")        # Graphviz's HTML-like labels must be well-formed XML


@pytest.mark.parametrize("kind,params", FIGURES)
def test_every_label_is_well_formed_and_one_based(kind, params):
    g = build_diagram(kind, params)
    texts = [g.title, *g.notes] + [n.label for n in g.nodes.values()]
    texts += [i for n in g.nodes.values() for i in n.info] + [e.label for e in g.edges if e.label]
    for text in texts:
        _well_formed(text)
    states = [n.label for n in g.nodes.values() if n.kind in ("state", "gradient", "input")]
    assert not any(re.search(r"\[0\]", s) for s in states)      # h[0] is the zero/padding node only
    _well_formed(legend.legend_label(g, style.LIGHT)[1:-1])


def test_legend_lists_exactly_the_kinds_used():
    g = build_diagram("gated-rnn", dict(view="backward", steps=3))
    caption = legend.legend_label(g, style.DARK)
    for k in ("input", "parameter (weights)", "state / output", "gradient", "loss", "zero state"):
        assert k in caption
    assert "never read" not in caption and "attention read" not in caption


# ---- determinism and files -----------------------------------------------------------------------------

@needs_dot
@pytest.mark.parametrize("kind,params", [("gated-rnn", dict(view="cell")),
                                         ("attention-rnn", dict(view="unrolled", steps=4, k=None,
                                                                theme="dark"))])
def test_svg_is_deterministic_valid_and_clean(kind, params):
    a, b = diagram_svg(kind, params), diagram_svg(kind, params)
    assert a == b
    assert "Generated by graphviz" not in a and "<title>%3</title>" not in a
    root = ET.fromstring(a.encode("utf-8"))
    assert root.tag.endswith("svg")
    assert diagram_source(kind, params) == diagram_source(kind, params)


@needs_dot
def test_render_files_atomically(tmp_path):
    out = tmp_path / "fig.svg"
    render_diagram("gated-rnn", dict(view="backward", steps=3), out, "svg")
    first = out.read_bytes()
    render_diagram("gated-rnn", dict(view="backward", steps=3), out, "svg")
    assert out.read_bytes() == first
    png = tmp_path / "fig.png"
    render_diagram("attention-rnn", dict(view="cell"), png, "png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "fig.svg"]


def test_failed_render_leaves_no_file(tmp_path, monkeypatch):
    out = tmp_path / "fig.svg"
    out.write_text("old")

    def boom(*a, **k):
        raise RuntimeError("layout failed")

    monkeypatch.setattr(render, "_run", boom)
    with pytest.raises(RuntimeError):
        render_diagram("gated-rnn", dict(view="cell"), out, "svg")
    with pytest.raises(RuntimeError):
        render_diagram("gated-rnn", dict(view="cell"), tmp_path / "new.svg", "svg")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.svg"]


def test_missing_dot_raises_with_install_hint_and_leaves_nothing(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))          # no `dot`, no `neato`
    target = tmp_path / "out" / "fig.svg"
    for fmt, params in (("svg", dict(view="cell")), ("png", dict(view="unrolled", steps=3))):
        with pytest.raises(MissingProgram) as err:
            render_diagram("gated-rnn", params, target.with_suffix("." + fmt), fmt)
        assert "apt-get install graphviz" in str(err.value) and "brew install graphviz" in str(err.value)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []
    # the dot format needs no program
    dot = tmp_path / "fig.dot"
    render_diagram("attention-rnn", dict(view="unrolled", steps=3), dot, "dot")
    assert dot.read_text(encoding="utf-8") == diagram_source("attention-rnn", dict(view="unrolled", steps=3))
    assert diagram_source("gated-rnn", dict(view="cell")).startswith("digraph gated_rnn_cell {")


def test_bad_arguments():
    # the registry validates once, naming the parameter; the figure builder only guards its kind/view
    with pytest.raises(ValueError, match="unknown parameter 'k'"):
        values("gated-rnn", dict(k=2))
    with pytest.raises(ValueError, match="--view: must be one of"):
        values("gated-rnn", dict(view="side"))
    good = values("gated-rnn", {})
    with pytest.raises(ValueError, match="kind must be one of"):
        figures.build_diagram("lstm", good)
    with pytest.raises(ValueError, match="view must be one of"):
        figures.build_diagram("gated-rnn", dict(good, view="side"))
    with pytest.raises(ValueError, match="format must be one of"):
        render.render_bytes(build_diagram("gated-rnn", {}), "gif")


@needs_dot
def test_svg_text_is_the_file(tmp_path):
    params = dict(view="unrolled", steps=3, k=1)
    svg = diagram_svg("attention-rnn", params)
    path = render_diagram("attention-rnn", params, tmp_path / "a.svg", "svg")
    assert "<svg" in svg and path.read_text(encoding="utf-8") == svg


# ---- golden DOT --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kind,params", [
    ("gated_rnn_cell", "gated-rnn", dict(view="cell", n=2, m=2, steps=2)),
    ("attention_rnn_unrolled_k2_T3", "attention-rnn", dict(view="unrolled", steps=3, k=2, n=2)),
])
def test_golden_dot(name, kind, params):
    path = GOLDEN / f"{name}.dot"
    text = diagram_source(kind, params)
    if os.environ.get("VIZ_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}: run with VIZ_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


# ---- style ---------------------------------------------------------------------------------------

def _hue(color: str) -> float:
    import colorsys
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hls(r, g, b)[0] * 360


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_palette_contrast(theme):
    th = style.theme(theme)
    for name, role in th.roles.items():
        if name in ("note",):
            continue
        assert style.contrast(role.line, th.background) >= 3.0, name
        assert style.contrast(th.text, role.fill) >= 4.5, name
        assert style.contrast(th.text, role.strong) >= 4.5, name
    assert style.contrast(th.muted, th.background) >= 4.5


def test_same_colour_same_meaning_as_the_animations():
    scenes_style = pytest.importorskip("scenes.style")
    same = {"input": "INPUT", "parameter": "KERNEL", "state": "OUTPUT", "gradient": "GRADIENT",
            "padding": "PADDING", "never_read": "NEVER_READ"}
    for role, name in same.items():
        base = style.OKABE_ITO[role]
        assert getattr(scenes_style, name) == base
        for th in style.THEMES.values():        # each theme keeps the hue (only lightness changes)
            if role != "padding":
                d = abs(_hue(th.role(role).line) - _hue(base))
                assert min(d, 360 - d) < 6, (th.name, role)
    used = set(style.OKABE_ITO.values())
    assert scenes_style.HIGHLIGHT not in used and scenes_style.HIDDEN not in used


def test_pdf_bytes_are_stable(monkeypatch):
    # Cairo writes the current time into the PDF; the renderer fixes it without moving any byte.
    from diagrams.files import clean_pdf

    raw = b"<< /Producer (cairo)\n   /CreationDate (D:20261126161032Z)\n>>"
    fixed = clean_pdf(raw)
    assert len(fixed) == len(raw)
    assert b"/CreationDate (D:20000101000000)" in fixed
    if shutil.which("dot"):
        from diagrams import render as r

        graph = build_diagram("gated-rnn", {"view": "cell"})
        first = r.render_bytes(graph, "pdf")
        assert b"/CreationDate (D:20000101000000)" in first


@pytest.mark.parametrize("kind,extra", [("gated-rnn", {}), ("attention-rnn", dict(k=2))])
def test_loss_arrow_is_named_where_it_has_room(kind, extra):
    # compact figures put ℓ beside δ[T] in one row, where Graphviz lays a label across the arrow:
    # the legend names it instead; detailed figures label the arrow itself
    for T, compact in ((4, False), (12, True)):
        g = build_diagram(kind, dict(view="backward", steps=T, **extra))
        (edge,) = [e for e in g.edges if e.head == "loss" and e.kind == "gradient"]
        assert edge.tail == f"d{T}"
        assert (edge.label is None) == compact
        note = f"the arrow from ℓ into δ[{T}] is the direct gradient ∂ℓ/∂h[{T}]"
        assert any(note in n for n in g.notes) == compact
