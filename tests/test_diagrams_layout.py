"""Layouts of the unrolled/backward figures: time runs left to right, rows stay in order.

Graphviz keeps ranks exactly but orders nodes inside a rank heuristically (and ignores flat-edge order
inside clusters), so diagrams/common.grid pins the order and the renderer draws step frames after the
layout. These tests run the real layout (`dot -Tplain`) for every figure size the registry allows
and check that each column is left of the next and each row above the next.
"""
from __future__ import annotations

import re
import shutil

import pytest

from diagrams import render, style
from tests.test_diagrams import build_diagram

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def check(kind, params):
    g = build_diagram(kind, params)
    bad = render.grid_violations(g, render.positions(g))
    assert not bad, f"{kind} {params}: {bad[:3]}"
    return g


@pytest.mark.parametrize("view", ["unrolled", "backward"])
def test_gated_layouts(view):
    for T in list(range(1, 18)) + [24, 33, 64]:
        check("gated-rnn", dict(view=view, steps=T))


@pytest.mark.parametrize("k", [1, 2, 3, 6, None])
@pytest.mark.parametrize("view", ["unrolled", "backward"])
def test_attention_layouts(k, view):
    for base_case in ("zeros", "mask"):
        if k is None and base_case == "mask":
            continue                      # ∞ is always "mask"-like: same figure
        for T in list(range(1, 10)) + [16, 64]:
            check("attention-rnn", dict(view=view, steps=T, k=k, base_case=base_case))


def test_grid_check_can_fail():
    g = build_diagram("gated-rnn", dict(view="unrolled", steps=3))
    pos = render.positions(g)
    swapped = dict(pos, h2=pos["x2"], x2=pos["h2"])       # input above its state
    assert render.grid_violations(g, swapped)
    later = dict(pos, h1=(pos["h3"][0] + 1, pos["h1"][1]))  # step 1 right of step 3
    assert render.grid_violations(g, later)


def test_step_frames_are_drawn():
    # the SVG draws text as outlines, so the frames are checked in the DOT that is drawn
    g = build_diagram("attention-rnn", dict(view="unrolled", steps=4, k=2))
    laid_out = render._run(render.dot_source(g, overlay=False), "dot").decode("utf-8")
    final = render.add_frames(laid_out, g, style.LIGHT)
    frames = re.findall(r"\tframe_step(\d+)\t\[.*?label=<step (\d+)>", final)
    assert frames == [(str(t), str(t)) for t in range(1, 5)]
    boxes = render.node_boxes(final)
    for t in range(1, 5):       # each frame holds its step's nodes
        fx0, fy0, fx1, fy1 = boxes[f"frame_step{t}"]
        for nid in (f"x{t}", f"h{t}"):
            x0, y0, x1, y1 = boxes[nid]
            assert fx0 < x0 and x1 < fx1 and fy0 < y0 and y1 < fy1


def test_dense_attention_figures_go_compact():
    """Issue 14: AttentionRNN(∞) at T = 8 (36 reads) dropped states off the row and tangled its arcs in
    the detailed layout; past DETAILED_MAX_EDGES reads (unrolled) or DETAILED_MAX_BACKWARD_EDGES
    (backward) the figure is compact: one row of states, no inputs drawn."""
    from viz.app import registry

    kind = registry.get("diagram attention-rnn")
    for view, T, k, compact in [("unrolled", 6, "inf", False), ("unrolled", 8, 3, True), ("unrolled", 8, 2, False),
                                ("unrolled", 8, "inf", True), ("backward", 6, "inf", True),
                                ("backward", 6, 2, False)]:
        story = kind.build_story(kind.validate({"view": view, "steps": T, "k": k}))
        labels = {n.label for n in story.graph.nodes}
        assert any(label.startswith("x[") for label in labels) != compact, (view, T, k)
