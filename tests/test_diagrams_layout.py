"""Layouts of the unrolled/backward figures: time runs left to right, rows stay in order.

Graphviz keeps ranks exactly but orders nodes inside a rank heuristically (and ignores flat-edge order
inside clusters), so diagrams/common.grid pins the order and the renderer draws step frames after the
layout. These tests run the real layout (`dot -Tplain`) for every figure size the registry allows
and check that each column is left of the next and each row above the next.
"""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from diagrams import render
from diagrams.figures import build_diagram, diagram_svg

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
    svg = diagram_svg("attention-rnn", dict(view="unrolled", steps=4, k=2))
    root = ET.fromstring(svg.encode("utf-8"))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert [s for s in texts if s and s.startswith("step ")] == [f"step {t}" for t in range(1, 5)]
