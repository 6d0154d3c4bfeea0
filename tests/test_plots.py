"""The training figures show viz.train's numbers: the matplotlib plot and the Manim TrainingCurve scene.

The plot is checked on its Figure (artists carry gids: loss-0, spikes-0, spike-label-0-0, ...): the
curves are the runs' per-step records, the reference lines sit at ln 4, 25% and the clip value, the
labels say the first spike's step, loss and gradient norm, and no label covers a curve, a marker or
another label. Files: deterministic bytes in every format, written atomically, no pyplot. The scene
is checked on a dry run (what it annotates equals TrainingRun.first_spike()) and one last-frame render.
"""
from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from viz import train as tr

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = {"model": "vanilla", "clip": tr.CLIP, "steps": tr.STEPS, "seed": 0}


@pytest.fixture(scope="module")
def runs():
    return tr.clipping_comparison(**DEFAULT)


@pytest.fixture(scope="module")
def figure(runs):
    matplotlib = pytest.importorskip("matplotlib")
    from diagrams import plots

    with matplotlib.rc_context(plots._RC):
        fig = plots.training_figure(*runs)
        fig.canvas.draw()
    return fig


def by_gid(fig, prefix):
    return [a for a in fig.findobj() if (a.get_gid() or "").startswith(prefix)]


# ---------------------------------------------------------------------------------------------------
# The plot's content
# ---------------------------------------------------------------------------------------------------

def test_curves_are_the_runs_records(figure, runs):
    for col, run in enumerate(runs):
        steps = np.arange(1, run.steps + 1)                  # 1-based for the reader
        for gid, values in (("loss", run.loss), ("grad", run.grad_norm),
                            ("accuracy", run.accuracy)):
            (line,) = by_gid(figure, f"{gid}-{col}")
            assert np.array_equal(line.get_xdata(), steps)
            assert np.array_equal(line.get_ydata(), values)
        (ln4,) = by_gid(figure, f"ln4-{col}")
        assert np.allclose(ln4.get_ydata(), np.log(4))
        (chance,) = by_gid(figure, f"chance-{col}")
        assert np.allclose(chance.get_ydata(), 0.25)
        (clip,) = by_gid(figure, f"clip-{col}")
        assert np.allclose(clip.get_ydata(), tr.CLIP)


def test_spikes_are_marked_and_labelled_with_their_gradient_norm(figure, runs):
    unclipped, clipped = runs
    first = unclipped.first_spike()
    assert first is not None and first.above_initial
    (markers,) = by_gid(figure, "spikes-0")
    assert list(markers.get_xdata()) == [s.step + 1 for s in unclipped.spikes()]
    assert list(markers.get_ydata()) == [s.loss for s in unclipped.spikes()]
    labels = {a.get_gid(): a.get_text() for a in by_gid(figure, "spike-label-0-")}
    assert labels["spike-label-0-0"] == (
        f"step {first.step + 1}: loss {first.loss:.2f}\n"
        f"‖g‖ = {first.grad_norm:.3g} at step {first.cause_step + 1}")
    causes = by_gid(figure, "cause-0")
    assert (first.cause_step + 1, first.grad_norm) in [
        (c.get_xdata()[0], c.get_ydata()[0]) for c in causes]
    # the clipped run has none
    assert clipped.spikes() == []
    assert not by_gid(figure, "spikes-1") and not by_gid(figure, "spike-label-1-")
    titles = [ax.get_title() for ax in figure.axes[:2]]
    assert f"{len(unclipped.spikes())} spikes" in titles[0]
    assert "0 spikes" in titles[1] and f"clipped at {tr.CLIP:g}" in titles[1]


def test_labels_cover_no_curve_marker_or_other_label(figure):
    renderer = figure.canvas.get_renderer()
    labels = [a for a in by_gid(figure, "spike-label-") if a.get_figure() is not None]
    assert labels
    boxes = [t.get_window_extent(renderer) for t in labels]
    for t, box in zip(labels, boxes):
        ax = t.axes
        frame = ax.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        for line in [a for a in ax.get_lines() if a.get_gid() and a.get_gid()[:5] in
                     ("loss-", "spike")]:
            pts = line.get_transform().transform(line.get_xydata())
            inside = ((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0)
                      & (pts[:, 1] <= box.y1))
            assert not inside.any(), f"{t.get_gid()} covers {line.get_gid()}"
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j])


def test_label_placement_avoids_what_it_must(runs):
    """A crowded run (seed 3: six spikes close together): still no overlaps, one label per spike
    at most three, and the first spike above the initial loss is among them."""
    matplotlib = pytest.importorskip("matplotlib")
    from diagrams import plots

    crowded = tr.clipping_comparison(seed=3, steps=250)
    with matplotlib.rc_context(plots._RC):
        fig = plots.training_figure(*crowded)
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [a for a in by_gid(fig, "spike-label-0-") if a.get_figure() is not None]
    first = crowded[0].first_spike()
    assert 1 <= len(labels) <= tr.MAX_LABELLED_SPIKES
    assert labels[0].get_text().startswith(f"step {first.step + 1}: loss {first.loss:.2f}")
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes))
                   for j in range(i + 1, len(boxes)))


def test_story_follows_the_numbers(runs):
    from diagrams.plots import _story

    unclipped, clipped = runs
    first = unclipped.first_spike()
    line1, line2 = _story(unclipped, clipped)
    assert f"{first.loss:.2f}" in line1 and f"step {first.step + 1}" in line1
    assert "above ln 4" in line1
    assert "has no spike" in line2
    gated = tr.clipping_comparison(model="gated", steps=40)
    line1, line2 = _story(*gated)
    assert "no spike" in line1 and "never acts" in line2


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------

MAGIC = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF"}


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_render_is_deterministic(tmp_path, fmt):
    pytest.importorskip("matplotlib")
    from diagrams.plots import render_training_plot

    params = {**DEFAULT, "steps": 60}
    a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    render_training_plot(params, a, fmt)
    render_training_plot(params, b, fmt)
    data = a.read_bytes()
    assert data.startswith(MAGIC[fmt])
    assert data == b.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [a.name, b.name]   # no temp files left
    if fmt == "svg":
        assert b"<dc:date>" not in data and b"Matplotlib v" not in data
    if fmt == "pdf":
        assert b"/CreationDate" not in data and b"/Producer" not in data


def test_bad_format_and_failed_render_write_nothing(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from diagrams import plots

    with pytest.raises(ValueError, match="fmt"):
        plots.render_training_plot(DEFAULT, tmp_path / "x.jpg", "jpg")

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(plots, "training_figure", broken)
    with pytest.raises(RuntimeError):
        plots.render_training_plot({**DEFAULT, "steps": 5}, tmp_path / "x.svg", "svg")
    assert list(tmp_path.iterdir()) == []


def test_no_matplotlib_until_rendering_and_never_pyplot(tmp_path):
    code = (
        "import sys\n"
        "import viz, viz.train, diagrams.plots\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported too early'\n"
        "from diagrams.plots import render_training_plot\n"
        f"render_training_plot({{'steps': 20}}, {str(tmp_path / 'p.png')!r}, 'png')\n"
        "assert 'matplotlib' in sys.modules\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert (tmp_path / "p.png").exists()


# ---------------------------------------------------------------------------------------------------
# The animation
# ---------------------------------------------------------------------------------------------------

def test_plot_and_animation_share_the_spikes_and_the_before_clipping_label(figure, runs):
    """One spike definition (viz.train.labelled_spikes) and one label for ‖g‖ in both figures."""
    from viz.story.training import BEFORE_CLIPPING, GRAD_NORM_LABEL, training_story

    story = training_story(DEFAULT)
    labelled = tr.labelled_spikes(runs[0])
    assert len(labelled) == 2 and labelled[0].step == 232 and labelled[1].step == 112   # first above ln 4, then the rest
    texts = [a.get_text() for a in by_gid(figure, "spike-label-0-")]
    assert [t.split(":")[0] for t in texts] == [f"step {s.step + 1}" for s in labelled]
    spike_steps = [st for st in story.steps if st.id.startswith("spike-")]
    assert [st.data["spike"] for st in spike_steps] == sorted(s.step for s in labelled)     # in time order
    assert figure.axes[2].get_ylabel().replace("\n", " ") == GRAD_NORM_LABEL
    assert {s.name: s.label for s in story.series}["grad"] == GRAD_NORM_LABEL
    assert BEFORE_CLIPPING == "(before clipping)"


def test_scene_draws_the_story(runs):
    pytest.importorskip("manim")
    from manim import config

    from scenes.render import dry_run

    scene = dry_run("training", DEFAULT)
    story = scene.story
    starts = [a for a, _ in story.timeline(scene.step_time, intro=scene.intro_time)]
    np.testing.assert_allclose(scene.step_starts, starts, atol=1e-6)
    written = {id(m): s for m, s in scene.texts}
    for index, st in enumerate(story.steps):
        assert [written[id(m)] for m in scene.step_lines[index]] == [line.text for line in st.lines]
    drawn = [s for _, s in scene.texts]
    for name in ("grad", "ln4", "clip", "loss", "loss-clipped"):
        assert {s.name: s.label for s in story.series}[name] in drawn
    # every spike step marks its peak and its cause where the runs put them
    loss, grad = runs[0].loss, runs[0].grad_norm
    for st in story.steps:
        if not st.id.startswith("spike-"):
            continue
        marker, ring, _ = scene.markers[st.id]      # triangle over the peak, ring at the cause, link
        assert marker.get_center()[0] == pytest.approx(scene.x(st.data["spike"] + 1), abs=1e-6)
        assert ring.get_center()[0] == pytest.approx(scene.x(st.data["cause"] + 1), abs=1e-6)
        assert ring.get_center()[1] == pytest.approx(scene.y(scene.series["grad"], grad[st.data["cause"]]), abs=1e-6)
        assert marker.get_center()[1] > scene.y(scene.series["loss"], loss[st.data["spike"]])
    # the curves drawn are the runs' records, in screen coordinates
    pts = np.concatenate([m.points[::4] for m in scene.curves["loss"]])
    xs = np.array([scene.x(s + 1) for s in range(runs[0].steps)])
    ys = np.array([scene.y(scene.series["loss"], v) for v in loss])
    assert np.allclose(np.interp(pts[:, 0], xs, ys), pts[:, 1], atol=1e-6)
    # texts inside the frame and apart (each step's lines with what stays on screen)
    half_w, half_h = config.frame_width / 2, config.frame_height / 2
    boxes = []
    for m, s in scene.texts:
        (x0, y0, _), (x1, y1, _) = m.get_corner([-1, -1, 0]), m.get_corner([1, 1, 0])
        assert -half_w <= x0 and x1 <= half_w and -half_h <= y0 and y1 <= half_h, s
        boxes.append((x0, y0, x1, y1, s, id(m)))
    step_ids = {id(m): i for i, g in scene.step_lines.items() for m in g}
    for a, b in itertools.combinations(boxes, 2):
        if a[5] in step_ids and b[5] in step_ids and step_ids[a[5]] != step_ids[b[5]]:
            continue                                   # lines of different steps are never on screen together
        assert not (a[0] < b[2] - 0.01 and b[0] < a[2] - 0.01 and a[1] < b[3] - 0.01 and b[1] < a[3] - 0.01), \
            (a[4], b[4])


def test_scene_without_a_spike_says_so():
    pytest.importorskip("manim")
    from scenes.render import dry_run

    scene = dry_run("training", {**DEFAULT, "model": "gated", "steps": 40})
    assert [st.id for st in scene.story.steps] == ["start", "no-spike", "clipped"]
    assert list(scene.markers) == ["start", "no-spike"]
    assert "never reaches" in scene.story.steps[-1].lines[0].text and "never acts" in scene.story.steps[-1].lines[1].text


@pytest.mark.render
def test_every_step_hold_shows_that_step(tmp_path):
    """Frames in the middle of each step's hold: the current spike's marks are yellow, no other
    step's; the clipped run (green) appears only in its own step."""
    av = pytest.importorskip("av")
    from scenes import style
    from scenes.render import render_animation
    from viz.story.training import training_story

    p = {**DEFAULT, "steps": 120, "step_time": 1.0}
    out = tmp_path / "training.mp4"
    render_animation("training", p, out, "mp4", "low", progress=False)
    story = training_story(p)
    assert [st.id for st in story.steps] == ["start", "spike-1", "rest", "clipped"]
    with av.open(str(out)) as container:
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in
                  container.decode(container.streams.video[0])]
    rgb = lambda h: np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)])  # noqa: E731
    timeline = story.timeline(1.0, intro=1.0)
    assert abs(len(frames) / 15 - timeline[-1][1]) < 0.15
    for (start, end), st in zip(timeline, story.steps):
        frame = min(frames, key=lambda f: abs(f[0] - (start + 0.8 * (end - start))))[1].astype(int)
        plot = frame[int(480 * 0.5 - 480 * 2.0 / 8):, :]           # below the text lines
        yellow = (np.abs(plot - rgb(style.HIGHLIGHT)).sum(axis=2) < 60).sum()
        r, g, b = plot[..., 0], plot[..., 1], plot[..., 2]
        green = ((g - r > 60) & (g - b > 15)).sum()                  # the clipped run's colour, antialiased
        lit = bool(st.lit_cells("loss", "highlight") or st.lit_cells("grad", "highlight"))
        assert (yellow > 10) == lit, (st.id, yellow)           # only the current step's marks are yellow
        assert (green > 100) == (st.id == "clipped"), (st.id, green)
