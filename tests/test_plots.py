"""The training figures show viz.train's numbers: the matplotlib plot and the Manim TrainingCurve scene.

The plot is checked on its Figure (artists carry gids: loss-0, spikes-0, spike-label-0-0, ...): the
curves are the runs' per-step records, the reference lines sit at ln 4, 25% and the clip value, the
labels say the first spike's step, loss and gradient norm, and no label covers a curve, a marker or
another label. Files: deterministic bytes in every format, written atomically, no pyplot. The scene
is checked on a dry run (what it annotates equals TrainingRun.first_spike()) and one last-frame render.
"""
from __future__ import annotations

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
    assert 1 <= len(labels) <= plots.MAX_LABELLED_SPIKES
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

def test_scene_annotates_the_first_spike(runs):
    pytest.importorskip("manim")
    from scenes.render import dry_run

    scene = dry_run("training", DEFAULT)
    first = runs[0].first_spike()
    assert scene.annotated_spike == (first.step, first.grad_norm)
    assert scene.labels["spike"] == f"step {first.step + 1}: loss {first.loss:.2f} > ln 4"
    assert f"‖g‖ = {first.grad_norm:.3g} at step {first.cause_step + 1}" in scene.labels["cause"]
    assert "no spike" in scene.labels["summary"]
    np.testing.assert_array_equal(scene.unclipped.loss, runs[0].loss)
    # everything the annotation shows sits inside the frame, and its two texts apart
    from manim import config

    half_w, half_h = config.frame_width / 2, config.frame_height / 2
    for mob in scene.annotation:
        (x0, y0, _), (x1, y1, _) = mob.get_corner([-1, -1, 0]), mob.get_corner([1, 1, 0])
        assert -half_w <= x0 and x1 <= half_w and -half_h <= y0 and y1 <= half_h
    label, cause = scene.annotation[1], scene.annotation[3]
    assert (label.get_bottom()[1] > cause.get_top()[1]
            or label.get_right()[0] < cause.get_left()[0] or cause.get_right()[0] < label.get_left()[0])


def test_scene_without_a_spike_says_so():
    pytest.importorskip("manim")
    from scenes.render import dry_run

    scene = dry_run("training", {**DEFAULT, "model": "gated", "steps": 40})
    assert scene.annotated_spike is None
    assert "no spike" in scene.labels["no_spike"]
    assert "never" in scene.labels["summary"]


@pytest.mark.render
def test_scene_last_frame_renders(tmp_path):
    pytest.importorskip("manim")
    from scenes.render import render_animation

    out = tmp_path / "training.png"
    render_animation("training", {**DEFAULT, "steps": 120}, out, "png", "low", progress=False)
    assert out.read_bytes().startswith(b"\x89PNG")
