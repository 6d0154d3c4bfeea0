"""The BPTT scene draws its Story (viz.story.bptt) and nothing else, on the Story's timeline.

Dry runs (`scenes.render.dry_run`: no frame drawn, no file written) check that the scene's bars, bar
labels and edges are the Story's, that every step starts on the timeline, and that the layout keeps
text inside the frame and apart over a matrix reaching the parameter limits. One real render is decoded:
the frame in the middle of every step's hold lights exactly that step's bar (yellow) and no other.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

pytest.importorskip("manim")

from scenes import style  # noqa: E402
from scenes.render import dry_run, render_animation  # noqa: E402
from viz.story.bptt import bptt_story  # noqa: E402

BASE = dict(model="gated", k=2, steps=12, preset="vanish", n=3, m=3, seed=0)


def params(**changes):
    return {**BASE, **changes}


def _texts(scene):
    """(mobject, string) of every text on screen at the end (the scene records what it wrote)."""
    family = {id(m) for top in scene.mobjects for m in top.get_family()}
    return [(m, s) for m, s in scene.texts if id(m) in family]


def _box(m):
    return m.get_left()[0], m.get_bottom()[1], m.get_right()[0], m.get_top()[1]


def _overlap(a, b, tol=0.01):
    return a[0] < b[2] - tol and b[0] < a[2] - tol and a[1] < b[3] - tol and b[1] < a[3] - tol


# the limits: one step; AttentionRNN(∞) at the largest T (276 arcs); the largest numbers (1e14) at the
# largest T and sizes
LAYOUTS = [dict(steps=1), dict(model="attention", k=None, steps=24, preset="survive"),
           dict(steps=24, preset="explode", n=8, m=8)]


@pytest.mark.parametrize("changes", LAYOUTS)
def test_scene_draws_the_story_on_its_timeline_inside_the_frame_without_overlaps(changes):
    from manim import config
    p = params(**changes)
    scene = dry_run("bptt", p)
    story = scene.story
    assert story == bptt_story(p)

    # the timeline contract: every step begins where the Story's timeline says
    starts = [a for a, _ in story.timeline(scene.step_time, intro=scene.intro_time)]
    np.testing.assert_allclose(scene.step_starts, starts, atol=1e-6)
    assert scene.clock() == pytest.approx(story.timeline(scene.step_time, intro=scene.intro_time)[-1][1])

    # what is on screen is the story: the numbers under the bars, the bars' heights, the edges
    series = story.series[0]
    lo, hi = (math.log10(v) for v in series.limits)
    for st in story.steps:
        for w in st.writes:
            t = int(series.x[w.cell[0]])
            assert (scene.bar_labels[t], w.text) in scene.texts
            assert scene.bar_labels[t] in scene.mobjects
            height = (math.log10(w.value) - lo) / (hi - lo) * 1.85
            assert scene.bars[t].height == pytest.approx(max(0.02, height), abs=1e-6)
    assert set(scene.edges) == {e.id for e in story.graph.edges}
    final = story.steps[-1]
    path = set(final.lit_cells("graph", "path"))
    for e in story.graph.edges:          # the last screen: the path yellow and opaque, the rest at opacity a
        m = scene.edges[e.id]
        if e.id in path:
            assert m.get_stroke_color().to_hex().upper() == style.HIGHLIGHT.upper()
            assert m.get_stroke_opacity() == pytest.approx(1.0)
        else:
            assert m.get_stroke_opacity() == pytest.approx(e.weight, abs=1e-6), e.id      # opacity = a
    written = {id(m): s for m, s in scene.texts}
    for index, st in enumerate(story.steps):        # the step's lines, as the Story writes them
        assert [written[id(m)] for m in scene.step_lines[index]] == [line.text for line in st.lines[:2]]

    # layout: text inside the frame (with the style's margin) and never on top of other things
    half_w, half_h = config.frame_width / 2, config.frame_height / 2
    margin = style.FRAME_MARGIN - 0.05
    for m, text in scene.texts:
        x0, y0, x1, y1 = _box(m)
        assert -half_w + margin <= x0 and x1 <= half_w - margin and \
            -half_h + margin <= y0 and y1 <= half_h - margin, f"{text!r} leaves the frame"
    step_texts = {id(m) for lines in scene.step_lines.values() for m in lines}
    on_screen = [(_box(m), s) for m, s in _texts(scene) if id(m) not in step_texts]   # all the time
    for lines in scene.step_lines.values():       # each step's lines against what stays on screen
        group = on_screen + [(_box(m), written[id(m)] + " (step line)") for m in lines]
        for (a, na), (b, nb) in combinations(group, 2):
            assert not _overlap(a, b), f"texts overlap: {na!r} and {nb!r}"
    solids = np.array([_box(m) for m in [*scene.bars.values(), *scene.nodes.values()]])
    points = np.array([m.point_from_proportion(a)[:2] for m in scene.edges.values()
                       if m.get_stroke_opacity() > 0.02 for a in np.linspace(0, 1, 21)]).reshape(-1, 2)
    tol = 0.01
    for box, name in on_screen + [(_box(m), written[id(m)]) for ls in scene.step_lines.values() for m in ls]:
        if name == "ℓ":
            continue                                      # the loss symbol sits inside its square
        hit = ((box[0] < solids[:, 2] - tol) & (solids[:, 0] < box[2] - tol) & (box[1] < solids[:, 3] - tol)
               & (solids[:, 1] < box[3] - tol))
        assert not hit.any(), f"text {name!r} overlaps a bar or a node"
        crossed = ((points[:, 0] >= box[0]) & (points[:, 0] <= box[2]) & (points[:, 1] >= box[1])
                   & (points[:, 1] <= box[3]))
        assert not crossed.any(), f"text {name!r} is crossed by an edge"


def test_step_time_drives_the_steps():
    slow = dry_run("bptt", params(steps=2, step_time=5.0))
    fast = dry_run("bptt", params(steps=2, step_time=1.0))
    assert np.diff(slow.step_starts)[0] == pytest.approx(5.0 * slow.story.steps[0].weight)
    assert np.diff(fast.step_starts)[0] == pytest.approx(1.0 * fast.story.steps[0].weight)


# --------------------------------------------------------------------------------------------------
# One real render, checked frame by frame


def _rgb(hex_color):
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])


def _bar_colours(frame, scene_x, width_px, height_px, frame_width=14.22, frame_height=8.0):
    """Counts of yellow and pink pixels in the bar column at scene x (between the axis and the chain)."""
    px = int(round((scene_x / frame_width + 0.5) * width_px))
    y0 = int(round((0.5 - (-0.8) / frame_height) * height_px))      # bar tops sit below -0.77
    y1 = int(round((0.5 - (-2.6) / frame_height) * height_px))      # the baseline
    patch = frame[y0:y1, px - 3:px + 4].astype(int)
    yellow = np.abs(patch - _rgb(style.HIGHLIGHT) * style.CELL_FILL_OPACITY_STRONG
                    - _rgb(style.BACKGROUND) * (1 - style.CELL_FILL_OPACITY_STRONG)).sum(axis=2) < 60
    pink = np.abs(patch - _rgb(style.GRADIENT) * style.CELL_FILL_OPACITY_STRONG
                  - _rgb(style.BACKGROUND) * (1 - style.CELL_FILL_OPACITY_STRONG)).sum(axis=2) < 60
    return int(yellow.sum()), int(pink.sum())


@pytest.mark.render
def test_every_step_hold_shows_that_step_and_no_other(tmp_path):
    av = pytest.importorskip("av")
    from scenes.bptt import Layout

    p = params(model="attention", k=2, steps=4, preset="explode", step_time=1.0)
    out = tmp_path / "bptt.mp4"
    render_animation("bptt", p, out, "mp4", "low", progress=False)
    story = bptt_story(p)
    timeline = story.timeline(1.0, intro=1.0)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (854, 480)
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    duration = len(frames) / 15
    assert abs(duration - timeline[-1][1]) < 0.15, (duration, timeline[-1][1])
    assert frames[0][1].astype(int).std() > 5, "the first frame is not blank"
    layout = Layout.for_steps(4)
    for (start, end), step in zip(timeline, story.steps):
        mid = start + 0.75 * (end - start)                   # inside the hold, after the transition
        frame = min(frames, key=lambda f: abs(f[0] - mid))[1]
        lit = {int(t) for t in step.lit_cells("delta", "highlight")}
        done = {int(t) for t in step.lit_cells("delta", "gradient")}
        drawn = {int(story.series[0].x[w.cell[0]]) for s in story.steps[:story.steps.index(step) + 1]
                 for w in s.writes}
        for t in range(1, 5):
            yellow, pink = _bar_colours(frame, layout.x(t), 854, 480)
            if t in lit:
                assert yellow > 20 and pink == 0, (step.id, t, yellow, pink)
            elif t in drawn:
                assert yellow == 0 and pink > 20, (step.id, t, yellow, pink)
            else:
                assert yellow == 0 and pink == 0, (step.id, t, yellow, pink)
            assert (t in drawn) == (t in lit or t in done or step.part == "summary")
