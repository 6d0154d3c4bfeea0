"""Animations checked frame by frame: the frame in the middle of each step's hold shows that step.

A small matrix of configurations is rendered at low quality with a short --step-time. For every step
long enough to hold (at least HOLD_FRAMES frames), the frame in the middle of its hold is decoded
with PyAV and every cell of every grid the Story lights is classified by colour at points inside the
cell, clear of its number: the cells filled with the window colour must be exactly that step's Lit
"window" cells (so no other step's window is visible), the never-read cells exactly the Lit
"never_read" ones, and the output cells written so far filled, the others still empty. The text
region must change from one step to the next, and the first frame already shows the layout.

Cell centres come from the scene itself (`scene.layout`, recorded by a dry run at the same
resolution): layout[grid] = {"cell": side, "centres": {cell index: (x, y)}} in frame units, and
layout["text"] = {"left", "top", "width", "height"}. A scene that records the same (the backward
scene can) joins the matrix with one line in CASES.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("manim")
av = pytest.importorskip("av")

from scenes import style  # noqa: E402
from scenes.render import QUALITIES, dry_run, render_animation  # noqa: E402

STEP_TIME = 1.0        # seconds per full step in these renders (fade 0.25 s, hold 0.75 s)
HOLD_FRAMES = 4        # steps shorter than this many frames are not checked (sped-up steps)
FRAME_W, FRAME_H = 14.222222222222221, 8.0


def params(input, kernel, stride=1, padding=0, dilation=1, channels=1, values="int", seed=0, bias=False):
    return dict(input=input, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                channels=channels, values=values, seed=seed, bias=bias, step_time=STEP_TIME)


# (kind, parameters): 1-D and 2-D, padding, stride, dilation, unread trailing inputs, several channels
CASES = {
    "1d-homework": ("conv", params((7,), (3,), stride=2, channels=5)),
    "1d-asymmetric-padding-dilated-bias": ("conv", params((8,), (3,), padding=((2, 1),), dilation=2,
                                                          stride=2, channels=2, bias=True)),
    "2d-strided-dilated-padded": ("conv", params((7, 7), (3, 3), stride=2, dilation=2, padding=2)),
    "2d-unread-trailing": ("conv", params((6, 6), (3, 3), stride=2, channels=1, seed=4)),
    "2d-channels": ("conv", params((5, 5), (3, 3), stride=2, padding=1, channels=3, seed=2)),
}


def to_px(point, shape):
    h, w = shape[:2]
    return ((point[0] + FRAME_W / 2) / FRAME_W * w, (FRAME_H / 2 - point[1]) / FRAME_H * h)


def samples(frame, centre, cell):
    """RGB at points inside the cell and clear of its number: four near the corners (the centre when
    the cell is too small for a number)."""
    offsets = [(0, 0)] if cell < style.MIN_NUMBERED_CELL_SIZE else \
        [(dx * 0.34 * cell, dy * 0.34 * cell) for dx in (-1, 1) for dy in (-1, 1)]
    out = []
    for dx, dy in offsets:
        x, y = to_px((centre[0] + dx, centre[1] + dy), frame.shape)
        patch = frame[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2].reshape(-1, 3)
        out.append(np.median(patch, axis=0))
    return np.array(out, float)


def is_window(rgb):        # the HIGHLIGHT fill: yellow, red and green both high
    r, g, b = rgb.T
    return np.mean((r > 100) & (g > 0.8 * r) & (b < 0.7 * g)) > 0.5


def is_never_read(rgb):    # the NEVER_READ fill: vermillion, green well below red
    r, g, b = rgb.T
    return np.mean((r > 100) & (g < 0.75 * r) & (b < 0.6 * g)) > 0.5


def is_filled_output(rgb):  # a written output cell: strong OUTPUT green
    r, g, b = rgb.T
    return np.mean((g > 70) & (g > r + 40)) > 0.5


@pytest.fixture(scope="module", params=list(CASES))
def rendered(request, tmp_path_factory):
    kind, p = CASES[request.param]
    return (request.param, *render_decoded(kind, p, tmp_path_factory.mktemp("frames") / f"{request.param}.mp4"))


def render_decoded(kind: str, params: dict, out):
    """Render `kind` at low quality to `out`, and its scene again as a dry run (what it drew where):
    (scene, every decoded RGB frame, frames per second)."""
    render_animation(kind, params, out, "mp4", quality="low", progress=False)
    scene = dry_run(kind, params)
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    return scene, frames, QUALITIES["low"][3]


def mid_hold_frames(scene, frames, fps):
    """(step index, frame) in the middle of the hold of every step long enough to have one."""
    out = []
    fade = style.TRANSITION_TIME
    for k, (start, end) in enumerate(scene.timeline):
        if (end - start) * fps < HOLD_FRAMES:
            continue
        t = (start + min(fade, (end - start) / 4) + end) / 2
        out.append((k, frames[min(int(t * fps), len(frames) - 1)]))
    return out


def test_video_follows_the_timeline(rendered):
    name, scene, frames, fps = rendered
    assert abs(len(frames) / fps - scene.timeline[-1][1]) <= 1 / fps + 1e-9


def test_first_frame_shows_the_layout(rendered):
    name, scene, frames, fps = rendered
    first = frames[0].astype(int)
    background = np.array([int(style.BACKGROUND[i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(first - background).sum(axis=2) > 60).mean() > 0.03     # title, grids, legend
    cell = scene.layout["x"]["cell"]
    x = scene.story.grid("x")
    pads = x.padding or (False,) * len(x.values)
    real = [i for i, pad in zip(np.ndindex(*x.shape), pads) if not pad]
    for idx in real[:5]:                                                   # input cells already drawn
        rgb = samples(frames[0], scene.layout["x"]["centres"][idx], cell)
        assert np.abs(rgb - background).sum(axis=1).mean() > 30


def test_mid_hold_frames_light_exactly_the_steps_cells(rendered):
    name, scene, frames, fps = rendered
    story = scene.story
    targets = sorted({lit.target for s in story.steps for lit in s.lit if lit.role in ("window", "never_read")
                      and lit.target in scene.layout})
    checked = mid_hold_frames(scene, frames, fps)
    assert len(checked) >= min(3, len(story.steps))
    for k, frame in checked:
        step = story.steps[k]
        for target in targets:
            lay = scene.layout[target]
            lit = {tuple(c) for c in step.lit_cells(target, "window")}
            never = {tuple(c) for c in step.lit_cells(target, "never_read")}
            seen_lit, seen_never = set(), set()
            for idx, centre in lay["centres"].items():
                rgb = samples(frame, centre, lay["cell"])
                if is_window(rgb):
                    seen_lit.add(tuple(idx))
                if is_never_read(rgb):
                    seen_never.add(tuple(idx))
            assert seen_lit == lit, f"{name} step {step.id}: window cells on {target}"
            assert seen_never == never, f"{name} step {step.id}: never-read cells on {target}"


def test_outputs_fill_as_the_steps_write_them(rendered):
    name, scene, frames, fps = rendered
    story = scene.story
    written_at = {}
    for k, s in enumerate(story.steps):
        for w in s.writes:
            if w.target in scene.layout:
                written_at[(w.target, tuple(w.cell))] = k
    assert written_at
    for k, frame in mid_hold_frames(scene, frames, fps):
        for (target, cell), when in written_at.items():
            lay = scene.layout[target]
            filled = is_filled_output(samples(frame, lay["centres"][cell], lay["cell"]))
            assert filled == (when <= k), f"{name} step {story.steps[k].id}: {target}{cell}"


def test_text_changes_from_step_to_step(rendered):
    name, scene, frames, fps = rendered
    box = scene.layout["text"]
    x0, y0 = to_px((box["left"], box["top"]), frames[0].shape)
    x1, y1 = to_px((box["left"] + box["width"], box["top"] - box["height"]), frames[0].shape)
    crops = [(k, f[int(y0):int(y1) + 1, int(x0):int(x1) + 1].astype(int)) for k, f in mid_hold_frames(scene, frames, fps)]
    for (a, ca), (b, cb) in zip(crops, crops[1:]):
        assert np.abs(ca - cb).mean() > 0.5, f"{name}: text of steps {a} and {b} look the same"
        assert ca.std() > 5, f"{name}: no text in the text box at step {a}"
