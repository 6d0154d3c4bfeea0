"""The BPTT scene shows the reference's numbers: ||δ[t]|| for t = T … 1, over the edges the trace used.

The story the scene tells is plain data (`scenes.bptt.tell`, also `scene.story`); it is compared here
with the reference recomputed from `viz.rnn` / `viz.attention`. A few dry runs (`scenes.render.dry_run`:
no frame drawn, no file written) check that the scene draws that story (the Text under each bar, the
bars, the edges' colours) and that the layout keeps text inside the frame and apart. One real render
checks the video file.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

pytest.importorskip("manim")

from viz import attention, rnn  # noqa: E402

from scenes import style  # noqa: E402
from scenes.bptt import tell  # noqa: E402
from viz.text import MINUS  # noqa: E402
from scenes.render import dry_run, render_animation  # noqa: E402

BASE = dict(model="gated", k=2, steps=12, preset="vanish", n=3, m=3, seed=0)


def params(**changes):
    return {**BASE, **changes}


def reference(p):
    """(trace, grads) recomputed from the reference the way the scene documents it: the preset's
    weights and inputs, a loss read at h[T] only (last_step_upstream)."""
    T = p["steps"]
    if p["model"] == "gated":
        net = rnn.GatedRNN.preset(p["preset"], n=p["n"], m=p["m"], seed=p["seed"])
        trace = net.forward(rnn.preset_inputs(p["preset"], T, p["n"], seed=p["seed"]))
        return trace, net.backward(trace, rnn.last_step_upstream(T, p["m"], seed=p["seed"]))
    net = attention.AttentionRNN.preset(p["preset"], n=p["n"], k=p["k"], seed=p["seed"])
    trace = net.forward(attention.preset_inputs(p["preset"], T, p["n"], seed=p["seed"]))
    return trace, net.backward(trace, rnn.last_step_upstream(T, p["n"], seed=p["seed"]))


def norms_of(story):
    return np.array([s.norm for s in story.steps])


def used_edges(trace, t):
    """(src, dst) for every real past state step t read, straight from the trace's lags."""
    return {(t - int(lag), t) for lag, present in zip(trace.lags[t - 1], trace.present[t - 1])
            if lag >= 1 and present}


# --------------------------------------------------------------------------------------------------
# The story: numbers and edges are the reference's


@pytest.mark.parametrize("model,k,preset", [("gated", 2, p) for p in rnn.PRESETS]
                         + [("attention", k, p) for k in (1, 2, 3, None) for p in attention.PRESETS])
@pytest.mark.parametrize("T", [1, 2, 12, 24])
def test_norms_shown_are_the_reference_delta_norms_in_sweep_order(model, k, preset, T):
    p = params(model=model, k=k, preset=preset, steps=T)
    story = tell(**p)
    _, grads = reference(p)
    assert [s.t for s in story.steps] == list(range(T, 0, -1)), "the backward sweep runs T … 1"
    np.testing.assert_array_equal(norms_of(story), grads.delta_norms[::-1])
    for s in story.steps:
        if s.norm == 0:
            assert s.label == "0" and s.log10 is None and s.bar_height == 0
            continue
        # the label reads as the norm to one decimal of its mantissa: 2.1e-15, 3.4e2
        decade = 10.0 ** math.floor(math.log10(s.norm))
        shown = float(s.label.replace(MINUS, "-"))
        assert abs(shown - s.norm) <= 0.05 * decade * (1 + 1e-9), (s.label, s.norm)
        assert s.log10 == pytest.approx(math.log10(s.norm))
    assert [s.direct for s in story.steps] == [True] + [False] * (T - 1), "the loss reads h[T] only"


def test_partials_instead_of_totals_would_be_detected():
    """The common mistake, p[t] in place of δ[t], differs from what is shown."""
    story = tell(**BASE)
    partials = np.linalg.norm(rnn.last_step_upstream(12, 3, seed=0), axis=1)
    assert not np.allclose(norms_of(story), partials[::-1])


def test_vanish_decays_explode_grows_by_orders_of_magnitude_toward_t1_on_a_log_scale():
    v, e, s = (norms_of(tell(**params(preset=p, steps=16))) for p in ("vanish", "explode", "survive"))
    # in sweep order T … 1
    assert np.all(np.diff(v) < 0) and v[-1] / v[0] < 1e-3, v
    assert np.all(np.diff(e) > 0) and e[-1] / e[0] > 1e3, e
    assert np.all((s > 0.5) & (s < 2)), s
    story = tell(**params(preset="explode", steps=16))
    heights = np.array([st.bar_height for st in story.steps])
    slope = np.diff(heights) / np.diff(np.log10(e))
    np.testing.assert_allclose(slope, slope[0], rtol=1e-9)   # heights affine in log10(norm)
    lo, hi = story.decades
    assert 10.0 ** lo <= e.min() and e.max() <= 10.0 ** hi and hi - lo >= 3


def attention_norms(k, preset, T=12, n=3, seed=0):
    """||δ[t]|| as the scene shows them, in sweep order T … 1."""
    return norms_of(tell(**params(model="attention", k=k, preset=preset, steps=T, n=n, seed=seed)))


@pytest.mark.parametrize("n,seed", [(3, 0), (3, 1), (5, 2), (2, 3)])
@pytest.mark.parametrize("T", [12, 24])
def test_attention_presets_decay_survive_grow_as_their_notes_say(n, seed, T):
    """viz.attention.PRESET_NOTES: vanish decays for finite k (||δ[1]||/||δ[T]|| < 1e-2, and every
    state's gradient is below the largest of the k it came from), while ∞ levels off (one hop to
    h[1]): its ratio is above 1e-4 and 1e4 times k = 1's. survive: 1 for finite k, 1/t for ∞.
    explode: doubles at every step back (2^(T-t)) for every k."""
    for k in (1, 2, 3):
        v = attention_norms(k, "vanish", T, n, seed)
        assert v[-1] / v[0] < 1e-2, (k, v)
        assert all(v[i] < max(v[max(0, i - k):i]) for i in range(1, T)), (k, v)
    v1, vinf = attention_norms(1, "vanish", T, n, seed), attention_norms(None, "vanish", T, n, seed)
    assert vinf[-1] / vinf[0] > max(1e-4, 1e4 * v1[-1] / v1[0]), (vinf, v1)
    for k in (1, 2, 3):
        np.testing.assert_allclose(attention_norms(k, "survive", T, n, seed), 1.0, atol=1e-5)
    t = np.arange(T, 0, -1)                                          # sweep order
    np.testing.assert_allclose(attention_norms(None, "survive", T, n, seed),
                               np.where((t > 1) & (t < T), 1.0 / t, 1.0), rtol=1e-6)
    for k in (1, 2, 3, None):
        e = attention_norms(k, "explode", T, n, seed)
        np.testing.assert_allclose(e, 2.0 ** (T - t), rtol=1e-6)
        assert np.all(np.diff(e) > 0) and e[-1] / e[0] > 1e2


@pytest.mark.parametrize("preset", attention.PRESETS)
def test_attention_caption_says_why_from_the_preset_notes(preset):
    for k in (1, 2, None):
        caption = tell(**params(model="attention", k=k, preset=preset)).flow.caption
        assert caption[-1] == f"{preset}: {attention.PRESET_NOTES[preset]}"
        assert not any("presets apply" in line for line in caption)
    # the caption line fits the frame at the caption size (not shrunk to fit)
    from manim import Text, config
    from scenes.bptt import CAPTION_SIZE
    width = Text(caption[-1], font=style.FONT, font_size=CAPTION_SIZE).width
    assert width <= config.frame_width - 2 * style.FRAME_MARGIN, width
    with pytest.raises(ValueError, match="^preset name must be one of"):
        tell(model="attention", preset="wobble")


@pytest.mark.parametrize("k", [1, 2, 3, None])
@pytest.mark.parametrize("T", [1, 3, 9])
def test_attention_edges_are_the_lags_the_trace_used(k, T):
    p = params(model="attention", k=k, steps=T)
    story = tell(**p)
    trace, _ = reference(p)
    for f in story.forward_steps:
        assert {(e.src, e.dst) for e in f.edges} == used_edges(trace, f.t)
    for s in story.steps:
        expected = {e for r in range(s.t + 1, T + 1) for e in used_edges(trace, r) if e[0] == s.t}
        assert {(e.src, e.dst) for e in s.edges} == expected
        # closed form: h[t] is read by steps t+1 … t+k (all later steps for ∞)
        last = T if k is None else min(T, s.t + k)
        assert expected == {(s.t, r) for r in range(s.t + 1, last + 1)}


def test_gated_chain_reads_only_the_previous_state():
    story = tell(**params(steps=6))
    assert [[(e.src, e.dst) for e in f.edges] for f in story.forward_steps] == \
        [[(t - 1, t)] for t in range(1, 7)]
    assert [[(e.src, e.dst) for e in s.edges] for s in story.steps] == \
        [[]] + [[(t, t + 1)] for t in range(5, 0, -1)]


@pytest.mark.parametrize("model,k", [("gated", 2), ("attention", 1), ("attention", 2), ("attention", 3),
                                     ("attention", None)])
@pytest.mark.parametrize("T", [1, 2, 11, 24])
def test_skip_edges_shorten_the_way_back(model, k, T):
    story = tell(**params(model=model, k=k, steps=T))
    path = story.shortest_path
    assert path[0] == T and path[-1] == 1
    assert len(path) - 1 == attention.hops(1 if model == "gated" else k, T - 1)
    used = {(e.src, e.dst) for f in story.forward_steps for e in f.edges}
    assert all((a, b) in used for b, a in zip(path, path[1:]))


def test_timeline_fits_the_registry_range():
    for T in (1, 12, 24):
        seconds = tell(**params(steps=T)).seconds
        assert 6 < seconds < 30, (T, seconds)


def test_bad_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="model"):
        tell(model="lstm")
    with pytest.raises(ValueError, match="steps"):
        tell(steps=0)
    with pytest.raises(ValueError, match="m must be >= 2"):
        tell(preset="explode", m=1)


# --------------------------------------------------------------------------------------------------
# The drawing (dry runs): the scene draws the story, text stays inside the frame and apart


def _texts(scene):
    from manim import MathTypst, Text
    return [m for top in scene.mobjects for m in top.get_family() if isinstance(m, (Text, MathTypst))]


def _box(m):
    return m.get_left()[0], m.get_bottom()[1], m.get_right()[0], m.get_top()[1]


def _overlap(a, b, tol=0.01):
    return a[0] < b[2] - tol and b[0] < a[2] - tol and a[1] < b[3] - tol and b[1] < a[3] - tol


def _inside(point, box):
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@pytest.mark.parametrize("changes", [dict(steps=1), dict(steps=24, preset="explode"),
                                     dict(model="attention", k=None, steps=24),
                                     dict(model="attention", k=3, steps=12),
                                     dict(model="attention", k=3, steps=1)])
def test_scene_draws_the_story_inside_the_frame_without_overlaps(changes):
    from manim import config
    p = params(**changes)
    scene = dry_run("bptt", p)
    story = scene.story
    np.testing.assert_array_equal(norms_of(story), reference(p)[1].delta_norms[::-1])

    # what is on screen is the story: the numbers under the bars, the bars' heights, the edges
    for s in story.steps:
        assert scene.bar_labels[s.t].text == s.label
        assert scene.bar_labels[s.t] in scene.mobjects
        assert scene.bars[s.t].height == pytest.approx(s.bar_height, abs=1e-6)
    drawn = set(scene.edge_mobjects)
    assert drawn == {e for f in story.forward_steps for e in f.edges}
    path = {(a, b) for b, a in zip(story.shortest_path, story.shortest_path[1:])}
    for e, m in scene.edge_mobjects.items():   # every edge into h[1..T] carried gradient (h[0] is fixed)
        colour = (style.HIGHLIGHT if (e.src, e.dst) in path else   # the shortest way back is yellow
                  style.MUTED if e.src == 0 else style.GRADIENT)
        assert m.get_color().to_hex().upper() == colour.upper(), e

    # layout: text inside the frame (with the style's margin) and never on top of other things
    texts = _texts(scene)
    half_w, half_h = config.frame_width / 2, config.frame_height / 2
    margin = style.FRAME_MARGIN - 0.05
    for m in texts:
        x0, y0, x1, y1 = _box(m)
        assert -half_w + margin <= x0 and x1 <= half_w - margin and \
            -half_h + margin <= y0 and y1 <= half_h - margin, f"{getattr(m, 'text', m)!r} leaves the frame"
    named = [(_box(m), getattr(m, "text", type(m).__name__)) for m in texts]
    for (a, na), (b, nb) in combinations(named, 2):
        assert not _overlap(a, b), f"texts overlap: {na!r} and {nb!r}"
    solids = [(_box(m), f"bar {t}") for t, m in scene.bars.items()] + \
             [(_box(m), f"node {t}") for t, m in scene.nodes.items()]
    curve_points = [(m.point_from_proportion(a), f"edge {e}") for e, m in scene.edge_mobjects.items()
                    for a in np.linspace(0, 1, 21)]
    for box, name in named:
        for other, what in solids:
            assert not _overlap(box, other), f"text {name!r} overlaps {what}"
        for point, what in curve_points:
            assert not _inside(point, box), f"text {name!r} is crossed by {what}"


# --------------------------------------------------------------------------------------------------
# One real render


@pytest.mark.render
def test_low_quality_render_decodes(tmp_path):
    av = pytest.importorskip("av")
    p = params(steps=3)
    out = tmp_path / "bptt.mp4"
    render_animation("bptt", p, out, "mp4", "low", progress=False)
    planned = tell(**p).seconds
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (854, 480)
        assert stream.guessed_rate == 15
        frames = list(container.decode(stream))
    gaps = np.array([float((b.pts - a.pts) * b.time_base) for a, b in zip(frames, frames[1:])])
    np.testing.assert_allclose(gaps, 1 / 15, rtol=0.01)   # 15 frames per second throughout
    duration = len(frames) / 15
    assert 5 < duration < 30
    assert abs(duration - planned) < 0.25, (duration, planned)
    last = frames[-1].to_ndarray(format="rgb24").astype(int)
    bar_fill = np.array([int(style.GRADIENT[i:i + 2], 16) for i in (1, 3, 5)])
    pinkish = np.abs(last - bar_fill).sum(axis=2) < 90
    assert pinkish.sum() > 300, "the gradient bars are on the last frame"
