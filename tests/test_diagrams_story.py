"""The diagrams' Stories (viz.story.graphs.figure): the graph summary against the graph model, every
caption claim against the numbers (and the backward claims against PyTorch autograd), the base case
stated in every AttentionRNN figure, alt text and description, `-o x.story.json`. No Graphviz needed.
"""
from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tests.oracles import torch_or_skip
from tests.test_diagrams import values
from viz.app import registry
from viz.story.core import Story
from viz.story.graphs import figure as gf

GALLERY = Path(registry.__file__).with_name("gallery.toml")


def story(kind, **raw) -> Story:
    return gf.figure(kind, values(kind, raw)).story


def all_cases():
    """Every view x preset of both kinds, at T = 1, 4 and 12 (detailed and compact), both base cases."""
    for view, preset, T in itertools.product(gf.VIEWS, ("none", "vanish", "survive", "explode"), (1, 4, 12)):
        yield "gated-rnn", dict(view=view, preset=preset, steps=T)
        for k, base in ((2, "zeros"), (2, "mask"), (None, "zeros")):
            yield "attention-rnn", dict(view=view, preset=preset, steps=T, k=k, base_case=base)


def gallery_cases():
    for fig in tomllib.loads(GALLERY.read_text(encoding="utf-8"))["figure"]:
        if fig["kind"].startswith("diagram "):
            yield fig["kind"].split()[1], fig.get("params", {})


@pytest.mark.parametrize("kind,raw", list(all_cases()) + list(gallery_cases()),
                         ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()))
def test_every_claim_holds_and_names_its_numbers(kind, raw):
    s = story(kind, **raw)
    assert s.claims, "every diagram caption makes a checkable claim"
    assert not s.failed_claims(), [c.text for c in s.failed_claims()]
    for c in s.claims:
        assert c.lhs_label and c.rhs_label and c.text
    assert Story.from_json(s.to_json()) == s
    assert s.alt and len(s.alt) <= 400 and s.description.startswith(s.alt)


def test_claims_can_fail():
    # a claim is the numbers, not the words: swap them and it no longer holds
    s = story("gated-rnn", view="backward", steps=12, preset="vanish")
    claim = next(c for c in s.claims if c.id == "vanishes")
    from dataclasses import replace
    assert not replace(claim, lhs=claim.rhs * 10).holds()
    assert story("gated-rnn", view="backward", steps=12, preset="explode").captions[0].claims[0].id == "explodes"


# ---- the backward claims against PyTorch --------------------------------------------------------------

def torch_delta_norms(kind: str, v: dict) -> np.ndarray:
    """‖δ[t]‖ by PyTorch float64 autograd of the same network, inputs and loss (read at h[T])."""
    from tests.test_attention import torch_reference as attention_torch
    from tests.test_rnn import torch_reference as gated_torch

    r = gf.run(kind, v)
    if kind == "gated-rnn":
        out = gated_torch(r.model.W_c, r.model.W_h, r.model.W_x, r.trace.xs, r.dl_dh)
    else:
        out = attention_torch(r.model.Q, r.model.K, r.model.V, r.model.k, r.model.base_case, r.trace.xs, r.dl_dh)
    return np.linalg.norm(out["delta"], axis=-1)


@pytest.mark.parametrize("kind,raw", [
    ("gated-rnn", dict(preset="vanish", steps=12)), ("gated-rnn", dict(preset="explode", steps=6)),
    ("gated-rnn", dict(preset="survive", steps=8)), ("gated-rnn", dict(preset="none", steps=4, seed=3)),
    ("attention-rnn", dict(k=2, base_case="zeros", steps=12)),
    ("attention-rnn", dict(k=2, base_case="mask", steps=12)),
    ("attention-rnn", dict(k=None, preset="explode", steps=9)),
])
def test_backward_numbers_and_verdict_are_pytorchs(kind, raw):
    torch_or_skip()
    v = values(kind, dict(raw, view="backward"))
    s = gf.figure(kind, v).story
    norms = torch_delta_norms(kind, v)
    T = v["steps"]
    shown = [ln for ln in s.steps[0].lines if ln.role == "gradient"]
    assert [ln.text.split(" = ")[0] for ln in shown] == [f"‖δ[{t}]‖" for t in range(1, T + 1)]   # 1-based
    np.testing.assert_allclose([ln.numbers[0] for ln in shown], norms, rtol=1e-9)
    rho = (norms[0] / norms[-1]) ** (1 / (T - 1))          # per-step factor of ‖δ[t]‖
    verdict = s.captions[0].claims[0]
    np.testing.assert_allclose(verdict.lhs, rho, rtol=1e-9)
    expected = "vanishes" if rho < 0.9 else "explodes" if rho > 1.1 else "survives"
    assert verdict.id == expected and f"The gradient {expected}" in s.captions[0].text
    assert verdict.holds()


def test_presets_say_what_their_names_promise():
    for kind, extra in (("gated-rnn", {}), ("attention-rnn", dict(k=2))):
        for preset, word in (("vanish", "vanishes"), ("explode", "explodes"), ("survive", "survives")):
            for T in (3, 6, 12, 24):
                s = story(kind, view="backward", steps=T, preset=preset, **extra)
                assert s.captions[0].claims[0].id == word, (kind, preset, T, s.captions[0].text)


# ---- the base case (issue 15 item 8) ------------------------------------------------------------------

@pytest.mark.parametrize("view,T", [("cell", 4), ("unrolled", 4), ("unrolled", 12), ("backward", 4),
                                    ("backward", 12)])
def test_every_attention_figure_states_its_base_case(view, T):
    from diagrams.figures import diagram_source
    numbers = {}
    for base in ("zeros", "mask"):
        v = values("attention-rnn", dict(view=view, steps=T, k=2, base_case=base))
        s = gf.figure("attention-rnn", v).story
        said = f"base case “{base}”"
        assert any(said in c.text.lower() for c in s.captions) and said in s.description.lower()
        assert said in diagram_source("attention-rnn", v)             # in the figure's own legend
        numbers[base] = [ln.numbers for ln in s.steps[0].lines if ln.role == "gradient"]
    if view == "backward" and T == 12:     # the two base cases give different numbers: ‖δ[1]‖
        assert numbers["zeros"][0][0] == pytest.approx(3.53e-3, rel=2e-3)
        assert numbers["mask"][0][0] == pytest.approx(2.99e-3, rel=2e-3)


def test_base_case_claims_are_the_softmax_mass():
    zeros = story("attention-rnn", view="unrolled", steps=3, k=2, base_case="zeros")
    mask = story("attention-rnn", view="unrolled", steps=3, k=2, base_case="mask")
    inf = story("attention-rnn", view="unrolled", steps=3, k=None)
    r = gf.run("attention-rnn", values("attention-rnn", dict(view="unrolled", steps=3, k=2)))
    lost = float(sum(a for a, p in zip(r.trace.a[0], r.trace.present[0]) if not p))
    assert next(c for c in zeros.claims if c.id == "zero_mass").lhs == pytest.approx(lost) and lost > 0.1
    assert next(c for c in mask.claims if c.id == "no_zero_mass").lhs == 0.0
    assert next(c for c in inf.claims if c.id == "h0_never_read").lhs == 0.0


# ---- the graph summary, alt text, JSON ------------------------------------------------------------------

@pytest.mark.parametrize("kind,raw", [("gated-rnn", dict(view="cell")), ("gated-rnn", dict(view="backward")),
                                      ("attention-rnn", dict(view="unrolled", k=None, steps=5)),
                                      ("attention-rnn", dict(view="backward", steps=12))])
def test_story_graph_is_the_drawn_graph(kind, raw):
    f = gf.figure(kind, values(kind, raw))
    g, sg = f.graph, f.story.graph
    assert [n.id for n in sg.nodes] == list(g.nodes)
    drawn = [e for e in g.edges if e.kind != "invisible"]
    assert [(e.source, e.target) for e in sg.edges] == [(e.tail, e.head) for e in drawn]
    assert len({e.id for e in sg.edges}) == len(sg.edges)
    for n in sg.nodes:
        assert "<" not in n.label and "&" not in n.label, n.label          # plain text, no markup
        assert n.role in ("input", "kernel", "text", "output", "loss", "gradient", "padding", "never_read",
                          "muted")
    for e, m in zip(sg.edges, drawn):
        assert e.weight == (1.0 if m.value is None else m.value)          # attention weights a_i[t]
    if g.grid:
        assert {n.id: n.rank for n in sg.nodes} == {i: c for i, (c, _) in g.grid.items()}
    labels = [n.label for n in sg.nodes]
    assert not [s for s in labels if re.search(r"\b[hxδ]\[0\]", s) and not s.startswith("h[0] = 0")]


def test_plain_text_of_labels():
    from viz.story.graphs.model import fmt_num, jacobian, plain, sub
    assert plain(sub("W", "c")) == "W_c" and plain(sub("Q", "t-1")) == "Q_(t-1)"
    assert plain(fmt_num(2.5e-7)) == "2.50·10⁻⁷" and plain("log<sub>10</sub>") == "log₁₀"
    assert plain(jacobian(3, 2)) == "(∂h[3]/∂h[2])ᵀ" and plain("h[t-i] = 0<br/>(t-i &lt; 1)") == "h[t-i] = 0 (t-i < 1)"


def test_alt_text_and_description_come_from_the_run():
    s = story("gated-rnn", view="backward", steps=4, preset="vanish")
    assert s.alt.startswith("Gated RNN — backward through T = 4 steps") and "vanishes" in s.alt
    for t in range(1, 5):
        assert f"‖δ[{t}]‖ = " in s.description
    assert "Drawn: " in s.description and "<" not in s.description


@pytest.mark.parametrize("kind", ["gated-rnn", "attention-rnn"])
def test_story_json_from_the_command_line_path(kind, tmp_path):
    out = tmp_path / "fig.story.json"
    registry.render(f"diagram {kind}", dict(view="backward", steps=5), out)
    loaded = Story.from_json(out.read_text(encoding="utf-8"))
    assert loaded == story(kind, view="backward", steps=5)
    assert loaded.kind == f"diagram {kind}" and loaded.params["steps"] == 5
    assert out.read_bytes() == story(kind, view="backward", steps=5).to_json().encode("utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["fig.story.json"]


@pytest.mark.parametrize("k,base,T", [(2, "zeros", 4), (2, "mask", 12), (None, "zeros", 9)])
def test_every_attention_weight_is_in_the_story(k, base, T):
    # compact figures draw only some reads; the Story carries every a[t], equal to the softmax of
    # the trace's logits (computed here independently) and in the trace's lag order
    v = values("attention-rnn", dict(view="unrolled", steps=T, k=k, base_case=base))
    r = gf.run("attention-rnn", v)
    s = gf.figure("attention-rnn", v).story
    weights = [ln for ln in s.steps[0].lines if ln.role == "highlight"]
    assert [ln.text.split(":")[0] for ln in weights] == [f"a[{t}]" for t in range(1, T + 1)]
    for t, ln in enumerate(weights, 1):
        logits = np.asarray(r.trace.logits[t - 1], dtype=float)
        softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(ln.numbers, softmax, rtol=1e-12, atol=1e-15)
        assert ln.text.count("a_") == len(softmax)
    assert ("a[1]:" in s.description) == (T <= gf.DESCRIBED_WEIGHTS)


@pytest.mark.parametrize("scale", [1.0, 30.0, 100.0])
def test_gate_caption_says_what_the_numbers_show(scale):
    # σ(z) rounds to exactly 0 or 1 in float64 for |z| ≳ 37: at large weight scales the caption must
    # not claim that every gate lies strictly inside (0, 1)
    v = values("gated-rnn", dict(view="unrolled", steps=7, n=6, m=1, scale=scale, seed=5541))
    c = np.asarray(gf.run("gated-rnn", v).trace.c)
    s = gf.figure("gated-rnn", v).story
    ids = {cl.id for cl in s.claims}
    saturated = int(np.sum((c == 0) | (c == 1)))
    assert ("gates_saturated" in ids) == (saturated > 0) and ("gate_below_1" in ids) == (saturated == 0)
    assert not s.failed_claims()
    if saturated:
        assert any(f"{saturated} of {c.size} gate values are saturated" in cap.text for cap in s.captions)


def test_claims_hold_at_any_seed_and_weight_scale():
    # large scales saturate σ and the softmax (values round to exactly 0 or 1 in float64): each
    # caption must then say what the numbers show, not what the exact maths would give
    for seed, scale, view, T in itertools.product((0, 5541), (0.01, 1.0, 100.0), gf.VIEWS, (3, 9)):
        raw = dict(view=view, steps=T, seed=seed, scale=scale)
        cases = [("gated-rnn", raw)] + [("attention-rnn", dict(raw, k=k, base_case=b))
                                       for k, b in ((1, "zeros"), (3, "mask"), (None, "zeros"))]
        for kind, r in cases:
            s = story(kind, **r)
            assert s.claims and not s.failed_claims(), (kind, r, [c.id for c in s.failed_claims()])


def test_underflowing_zero_states_are_said_so():
    s = story("attention-rnn", view="unrolled", steps=3, k=1, base_case="zeros", scale=100.0)
    (claim,) = [c for c in s.claims if c.id.startswith("zero_mass")]
    assert claim.id == "zero_mass_underflow" and claim.lhs == 0.0
    assert any("exactly 0 in float64" in c.text for c in s.captions)
    normal = story("attention-rnn", view="unrolled", steps=3, k=1, base_case="zeros")
    share = next(c for c in normal.claims if c.id == "zero_mass").lhs
    assert any(f"take {gf._num(share)} of the softmax mass" in c.text for c in normal.captions)


@pytest.mark.parametrize("kind,raw", [("gated-rnn", dict(view="backward", steps=12)),
                                      ("attention-rnn", dict(view="unrolled", steps=4, k=None)),
                                      ("attention-rnn", dict(view="cell", k=5))])
def test_the_drawn_legend_is_the_storys_lines(kind, raw):
    # what the renderer writes under the figure is what the Story says, line for line
    from diagrams import legend
    from diagrams.figures import diagram_source
    from viz.story.graphs.model import plain

    v = values(kind, raw)
    f = gf.figure(kind, v)
    notes = ([f.graph.scale_note] if f.graph.scale_note else []) + list(f.graph.notes)
    legend_lines = [ln.text for ln in f.story.steps[0].lines if ln.role == "text"]
    assert legend_lines == [plain(n) for n in notes] and legend_lines
    dot = diagram_source(kind, v)
    for n in notes:
        assert legend.wrap(n) in dot
    assert plain(f.graph.title) == f.story.title and f"<b>{f.graph.title}</b>" in dot
