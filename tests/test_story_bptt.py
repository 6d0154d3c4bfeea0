"""The BPTT Story (viz.story.bptt) against the reference, brute force over paths, and PyTorch.

- the strongest path (viz.attention.strongest_path) equals a brute force over every path back from h[T]
  to h[1] on small T, and the paths decompose δ[1] exactly (Σ over paths of their Jacobian products);
- the bars are the reference's ‖δ[t]‖ (and PyTorch autograd's for the comparison presets);
- every caption claim holds for every preset × model × k in {1, 2, 3, ∞} over several T, n, m, seeds,
  and the claims' numbers are recomputed here from the reference;
- the figures meant to be compared share one axis, and the gallery's pairs say what the issue asks.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from viz import attention as A
from viz import rnn
from viz.story.bptt import bptt_story, gated_gain, path_share, reference_run
from viz.story.core import Story

ROOT = Path(__file__).resolve().parents[1]
MODELS = [("gated", None)] + [("attention", k) for k in (1, 2, 3, None)]


def story(**p):
    return bptt_story({"model": "gated", "k": 2, "steps": 12, "preset": "vanish", "n": 3, "m": 3, "seed": 0, **p})


def all_paths(gains: dict, T: int):
    """Every path [T, ..., 1] along the edges (s, t) of `gains` (brute force, small T only)."""
    into = {}
    for s, t in gains:
        into.setdefault(t, []).append(s)

    def walk(path):
        if path[-1] == 1:
            yield list(path)
            return
        for s in into.get(path[-1], []):
            yield from walk(path + [s])
    yield from walk([T])


def jacobian_of(run, s, t):
    tr = run.trace
    return rnn.jacobian(tr, t) if isinstance(run.model, rnn.GatedRNN) else A.jacobian(tr, t, t - s)


def comparison(model, k, T, preset, n=3, m=3, seed=0):
    gated = reference_run("gated", None, T, n, max(m, 2) if preset == "explode" else m, seed, preset)
    return gated if model == "gated" else reference_run(model, k, T, n, m, seed, preset, gated_gain(gated, preset))


# --------------------------------------------------------------------------------------------------
# The path: brute force over every path


PATH_CASES = [(model, k, preset, T) for model, k in MODELS for preset in A.PRESETS for T in (2, 4, 7)]


@pytest.mark.parametrize("model,k,preset,T", PATH_CASES)
def test_strongest_path_is_the_brute_force_maximum_and_paths_decompose_delta(model, k, preset, T):
    r = comparison(model, k, T, preset)
    path, gain = A.strongest_path(r.gains, T)
    paths = list(all_paths(r.gains, T))
    products = [float(np.prod([r.gains[(b, a)] for a, b in zip(p, p[1:])])) for p in paths]
    assert gain == pytest.approx(max(products), rel=1e-9)
    assert path in paths and products[paths.index(path)] == pytest.approx(gain, rel=1e-12)
    # δ[1] is the sum over paths of (J_path)ᵀ δ[T]: the path model is the whole gradient
    p_T = r.run.dl_dh[-1]
    contributions = []
    for p in paths:
        v = p_T.copy()
        for a, b in zip(p, p[1:]):              # h[a] read h[b]: v <- (∂h[a]/∂h[b])ᵀ v
            v = jacobian_of(r.run, b, a).T @ v
        contributions.append(v)
    np.testing.assert_allclose(np.sum(contributions, axis=0), r.run.grads.delta[0], rtol=1e-9, atol=1e-12)
    # and no path carries more than its product of norms, the strongest path's bound
    norms = [float(np.linalg.norm(v)) for v in contributions]
    assert all(c <= g * (1 + 1e-9) + 1e-300 for c, g in zip(norms, products))
    # and it is the path that carries the largest share of δ[1] (the presets' Jacobians are nearly
    # multiples of I, so the largest bound is the largest contribution)
    assert norms[paths.index(path)] == pytest.approx(max(norms), rel=1e-6)       # near-ties: 1e-8 apart
    assert path_share(r, path) == pytest.approx(norms[paths.index(path)] / np.linalg.norm(r.run.grads.delta[0]))


def test_strongest_path_on_random_gains_matches_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(30):
        T = int(rng.integers(2, 8))
        k = int(rng.integers(1, 4))
        gains = {(t - i, t): float(rng.uniform(0.05, 3.0)) for t in range(2, T + 1) for i in range(1, k + 1)
                 if t - i >= 1 and rng.random() < 0.85}
        paths = list(all_paths(gains, T))
        path, gain = A.strongest_path(gains, T)
        if not paths:
            assert (path, gain) == ([], 0.0)
            continue
        best = max(float(np.prod([gains[(b, a)] for a, b in zip(p, p[1:])])) for p in paths)
        assert gain == pytest.approx(best, rel=1e-9), (trial, gains)


def test_strongest_path_ties_prefer_fewer_hops_then_long_hops_first():
    gains = {(t - i, t): 0.5 for t in range(2, 8) for i in (1, 2)}
    assert A.strongest_path(gains, 7)[0] == [7, 5, 3, 1]
    assert A.strongest_path({(1, 2): 1.0, (2, 3): 1.0, (1, 3): 1.0}, 3)[0] == [3, 1]


# --------------------------------------------------------------------------------------------------
# The numbers: reference, PyTorch


@pytest.mark.parametrize("model,k", MODELS)
@pytest.mark.parametrize("preset", A.PRESETS)
def test_bars_lines_and_lit_edges_are_the_reference(model, k, preset):
    T = 9
    s = story(model=model, k=k, preset=preset, steps=T)
    r = comparison(model, k, T, preset)
    series = s.series[0]
    np.testing.assert_array_equal(series.y, r.norms)
    assert series.x == tuple(float(t) for t in range(1, T + 1)) and series.scale == "log"
    sweep = [st for st in s.steps if st.part == "bptt"]
    assert [st.data["t"] for st in sweep] == list(range(T, 0, -1))
    assert s.steps[0].part == "forward" and s.steps[-1].part == "summary" and len(s.steps) == T + 2
    for st in sweep:
        t = st.data["t"]
        (w,) = st.writes
        norm = st.lines[-1]                         # sped-up steps show only this line
        assert len(st.lines) == (2 if t > T - 3 else 1)
        assert w.cell == (t - 1,) and w.value == r.norms[t - 1] and w.text == norm.text.split(" = ")[1].split()[0]
        assert norm.numbers[0] == r.norms[t - 1]
        if t < T:
            assert norm.numbers[1] == pytest.approx(r.norms[t - 1] / r.norms[t])
        # lit: h[t] and the edges from h[t] to every later step that read it (closed form for k)
        last = t + 1 if model == "gated" else (T if k is None else t + k)
        readers = range(t + 1, min(T, last) + 1)
        expected = {f"h{t}"} | {f"h{t}-h{u}" for u in readers} | ({f"h{T}-loss"} if t == T else set())
        assert set(st.lit_cells("graph", "highlight")) == expected
        assert st.lit_cells("delta", "highlight") == (float(t),)
    # the edges drawn are the reads of the trace, with their attention weights
    edges = {e.id: e.weight for e in s.graph.edges}
    for e, a in r.weights.items():
        assert edges[f"h{e[0]}-h{e[1]}"] == a


@pytest.mark.parametrize("k", [1, 2, 3, None])
@pytest.mark.parametrize("preset", A.PRESETS)
def test_bars_match_pytorch_autograd(k, preset):
    from tests.test_attention import torch_reference

    T = 6
    r = comparison("attention", k, T, preset)
    m = r.run.model
    ref = torch_reference(m.Q, m.K, m.V, k, m.base_case, r.run.trace.xs, r.run.dl_dh)
    np.testing.assert_allclose(story(model="attention", k=k, preset=preset, steps=T).series[0].y,
                               np.linalg.norm(ref["delta"], axis=1), rtol=1e-9, atol=1e-15)


# --------------------------------------------------------------------------------------------------
# Claims


CLAIM_GRID = [(model, k, preset, T, n, m, seed) for model, k in MODELS for preset in A.PRESETS
              for T in (1, 2, 3, 5, 12, 24) for n, m, seed in ((3, 3, 0), (2, 5, 1), (6, 2, 2))]


@pytest.mark.parametrize("model,k,preset", [(mo, k, p) for mo, k in MODELS for p in A.PRESETS])
def test_every_claim_holds(model, k, preset):
    for _, _, _, T, n, m, seed in (c for c in CLAIM_GRID if c[:3] == (model, k, preset)):
        s = story(model=model, k=k, preset=preset, steps=T, n=n, m=m, seed=seed)
        assert s.claims, "every figure makes claims"
        failed = [(c.id, c.lhs, c.relation, c.rhs) for c in s.failed_claims()]
        assert not failed, (T, n, m, seed, failed)
        ids = [c.id for c in s.claims]
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize("k", [4, 24])                 # up to the registry's limit for k
def test_every_claim_holds_for_long_spans(k):
    for preset in A.PRESETS:
        for T in (1, 5, 24):
            s = story(model="attention", k=k, preset=preset, steps=T)
            assert not s.failed_claims(), (k, preset, T, [(c.id, c.lhs, c.rhs) for c in s.failed_claims()])


def test_claims_numbers_are_recomputed_from_the_reference():
    T = 12
    gated = rnn.gated_run(T, 3, 3, preset="vanish")
    J = np.array([np.linalg.norm(rnn.jacobian(gated.trace, t), 2) for t in range(2, T + 1)])
    g = float(np.exp(np.log(J).mean()))
    g_ratio = gated.grads.delta_norms[0] / gated.grads.delta_norms[-1]
    for k in (2, 3, None):
        att = A.comparison_run(T, 3, k, preset="vanish", gain=g)
        a_ratio = att.grads.delta_norms[0] / att.grads.delta_norms[-1]
        claims = {c.id: c for c in story(model="attention", k=k).claims}
        skip = claims["skip-paths-keep-gradient"]
        assert (skip.lhs, skip.relation, skip.rhs) == (pytest.approx(a_ratio), ">", pytest.approx(g_ratio))
        assert claims["same-gain"].rhs == pytest.approx(g)
        assert claims["fewest-hops"].lhs == A.hops(k, T - 1)
    gated_claims = {c.id: c for c in story().claims}
    assert gated_claims["contracts"].lhs == pytest.approx(J.max())
    assert gated_claims["bound"].rhs == pytest.approx(np.prod(J), rel=1e-8)


def test_gallery_pairs_tell_the_truth():
    """The issue's defects: AttentionRNN(2) vanish worse than the gated RNN with a caption saying skip
    connections help; explode highlighting 6 skip hops while the gradient takes the 11-step chain."""
    gated, att = story(preset="vanish"), story(model="attention", k=2, preset="vanish")
    assert gated.series[0].limits == att.series[0].limits            # one y range for the pair
    a_ratio, g_ratio = att.series[0].y[0] / att.series[0].y[-1], gated.series[0].y[0] / gated.series[0].y[-1]
    assert a_ratio > 5 * g_ratio
    assert "skip-paths-keep-gradient" in {c.id for c in att.claims}
    assert att.steps[-1].data["path"] == [12, 10, 8, 6, 4, 2, 1]
    explode = story(model="attention", k=2, preset="explode")
    assert explode.steps[-1].data["path"] == list(range(12, 0, -1))   # the chain, not the skip edges
    assert "chain-beats-shortcut" in {c.id for c in explode.claims}
    assert story(preset="explode").series[0].limits == explode.series[0].limits
    inf = story(model="attention", k=None, preset="survive", steps=24)
    assert any("1/t" in c.text for c in inf.captions) and "one-over-t" in {c.id for c in inf.claims}
    assert all("1/t" not in line.text for st in inf.steps for line in st.lines)   # not in the header


def test_a_false_claim_would_fail():
    s = story(model="attention", k=2)
    claim = next(c for c in s.claims if c.id == "skip-paths-keep-gradient")
    from dataclasses import replace
    assert not replace(claim, lhs=claim.rhs / 2).holds()


# --------------------------------------------------------------------------------------------------
# Timeline, JSON, command line


def test_forward_is_one_step_and_the_sweep_stays_short():
    for T in (1, 12, 24):
        s = story(steps=T)
        tl = s.timeline(3.0, intro=1.0)
        assert s.steps[0].weight <= 1.0
        assert tl[-1][1] < 45, (T, tl[-1][1])
        assert min(st.weight for st in s.steps) * 3.0 >= 0.7      # even a sped-up step is on screen 0.7 s


def test_json_round_trip_and_command_line(tmp_path):
    s = story(model="attention", k=None, preset="explode", steps=5)
    assert Story.from_json(s.to_json()) == s
    out = tmp_path / "b.story.json"
    subprocess.run([sys.executable, "-m", "viz", "animate", "bptt", "--model", "attention", "--k", "inf",
                    "--preset", "explode", "--steps", "5", "-o", str(out)], check=True, cwd=ROOT)
    data = json.loads(out.read_text())
    assert data["schema"] == "viz.story/1" and data["kind"] == "animate bptt"
    assert Story.from_dict(data) == s


def test_bad_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="model"):
        story(model="lstm")
    with pytest.raises(ValueError, match="steps"):
        story(steps=0)
    with pytest.raises(ValueError, match="m must be >= 2"):
        story(preset="explode", m=1)
