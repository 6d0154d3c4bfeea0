"""ConvBackward (and the forward of several filters, drawn by the same PartScene) against its Story,
frame by frame: a real render (480p15), the frame in the middle of every step's hold decoded, and at every drawn cell the colour says whether it is lit. The cells filled
in HIGHLIGHT must be exactly the step's window (no other step's), the never-read step fills exactly the
Story's never-read cells, and the video lasts the Story's timeline to the frame.
"""
from __future__ import annotations

import numpy as np
import pytest

from scenes import conv_layout, style
from viz.app.registry import get

KIND = get("animate conv-backward")
W_PX, H_PX, FPS = 854, 480, 15
CASES = {
    "homework-1d": dict(input="7", channels=5, kernel=3, stride=2, step_time=2.0),
    "8x8-stride-2": dict(input="8x8", kernel=3, stride=2, channels=1, step_time=2.0),
    "1d-bias-padding": dict(input="5", channels=2, kernel=3, padding=1, stride=1, bias=True, step_time=2.0),
    # several filters, groups: each step lights its filter's kernel (forward) or ∂ℓ/∂y map (∂ℓ/∂w)
    "1d-4-filters-2-groups": dict(input="5", channels=4, filters=4, groups=2, kernel=2, stride=2, step_time=2.0),
    "2d-depthwise": dict(input="3x3", channels=2, filters=2, groups=2, kernel=2, stride=1, step_time=2.0),
    "forward-1d-groups-bias": dict(kind="animate conv", input="5", channels=4, filters=4, groups=2, kernel=2,
                                   stride=2, bias=True, step_time=2.0),
    "forward-2d-3-filters": dict(kind="animate conv", input="4x4", channels=1, filters=3, kernel=2, stride=2,
                                 step_time=2.0),
}
LIT_FILLED = ("window", "bias")    # the roles a step fills in HIGHLIGHT


def _kind(raw):
    return get(raw.get("kind", KIND.key))


def _values(raw):
    v = _kind(raw).validate({k: v for k, v in raw.items() if k != "kind"})
    v.pop("quality", None)
    return v


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """name -> (the rendered scene, its frames as RGB arrays, the animation classes it played)."""
    import av

    from scenes.render import render_scene, scene_class
    out = {}
    for name, raw in CASES.items():
        cls = scene_class(_kind(raw).name)
        path = tmp_path_factory.mktemp("bw") / f"{name}.mp4"
        made = {}

        def factory():
            scene = made["scene"] = cls(**_values(raw))
            play, kinds = scene.play, made.setdefault("kinds", [])

            def recorded(*anims, **kw):
                kinds.extend(type(a).__name__ for a in anims)
                return play(*anims, **kw)
            scene.play = recorded
            return scene
        render_scene(factory, path, "mp4", quality="low", progress=False)
        with av.open(str(path)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        out[name] = (made["scene"], frames, made["kinds"])
    return out


def _px(x, y):
    return (int(round((x + conv_layout.FRAME_W / 2) * W_PX / conv_layout.FRAME_W)),
            int(round((conv_layout.FRAME_H / 2 - y) * H_PX / conv_layout.FRAME_H)))


def _patch(frame, x, y, cell):
    """Mean colour of a 3x3 patch in the corner of a cell (clear of its number and its outline)."""
    px, py = _px(x - 0.3 * cell, y + 0.3 * cell)
    return frame[py - 1:py + 2, px - 1:px + 2].reshape(-1, 3).mean(axis=0)


def _yellow(rgb) -> bool:
    r, g, b = rgb
    return r > 110 and g > 110 and b < 0.75 * min(r, g)


def _vermillion(rgb) -> bool:
    r, g, b = rgb
    return r > 100 and g < 95 and b < 50


def _mid_hold(scene, k):
    start, end = scene.timeline[k]
    fade = min(style.TRANSITION_TIME, (end - start) / 4)
    return int(((start + fade + end) / 2) * FPS)


@pytest.mark.render
@pytest.mark.parametrize("name", list(CASES))
def test_every_hold_lights_exactly_its_window(rendered, name):
    scene, frames, _ = rendered[name]
    story = scene.story
    assert abs(len(frames) / FPS - scene.timeline[-1][1]) <= 1 / FPS + 1e-9
    checked = 0
    for k, step in enumerate(story.steps):
        i = _mid_hold(scene, k)
        if step.weight < 1.0 and (k + 1) % 7:        # sped-up steps: every 7th (each lasts a few frames)
            continue
        frame = frames[min(i, len(frames) - 1)]
        lit = {}
        never = {}
        for grid, where in scene.layout_at(k).items():
            cell = where["cell"]
            for idx, (x, y) in where["centres"].items():
                rgb = _patch(frame, x, y, cell)
                lit[grid, idx] = _yellow(rgb)
                never[grid, idx] = _vermillion(rgb)
        shown = {key for key, v in lit.items() if v}
        want = {(grid, tuple(c)) for grid in scene.layout_at(k) for role in LIT_FILLED
                for c in step.lit_cells(grid, role)}
        assert shown == want, (f"{name} step {k + 1} ({step.id}) at {i / FPS:.2f} s: lit {sorted(shown - want)} "
                               f"extra, {sorted(want - shown)} missing")
        want_nr = {(grid, tuple(c)) for grid in scene.layout_at(k) for c in step.lit_cells(grid, "never_read")}
        assert {key for key, v in never.items() if v} == want_nr, f"{name} step {k + 1} never-read cells"
        checked += 1
    assert checked >= 5


@pytest.mark.render
def test_never_read_cells_are_filled(rendered):
    """8x8, kernel 3, stride 2: row and column 8 are never read; at the last step they are filled."""
    scene, frames, _ = rendered["8x8-stride-2"]
    last = scene.story.steps[-1]
    assert last.part == "never_read" and last.lit_cells("grad_x", "never_read")
    assert {tuple(c) for c in last.lit_cells("grad_x", "never_read")} == \
        {(0, 7, j) for j in range(8)} | {(0, i, 7) for i in range(8)}


@pytest.mark.render
def test_first_frame_is_not_blank(rendered):
    _, frames, _ = rendered["homework-1d"]
    bg = np.array([int(style.BACKGROUND[i:i + 2], 16) for i in (1, 3, 5)])
    differs = np.abs(frames[0].astype(int) - bg).sum(axis=2) > 60
    assert differs.mean() > 0.01          # the title and the legend are there from the first frame


@pytest.mark.render
@pytest.mark.parametrize("name", list(CASES))
def test_steps_start_on_the_timeline_and_text_never_morphs(rendered, name):
    scene, _, kinds = rendered[name]
    starts = np.array(scene.step_starts)
    assert len(starts) == len(scene.story.steps)
    assert np.max(np.abs(starts - [a for a, _ in scene.timeline])) <= 1 / FPS + 1e-9
    assert set(kinds) <= {"FadeIn", "FadeOut", "Wait"} and {"FadeIn", "FadeOut"} <= set(kinds)


@pytest.mark.render
def test_bias_gets_its_own_step(rendered):
    scene, frames, _ = rendered["1d-bias-padding"]
    k = next(k for k, s in enumerate(scene.story.steps) if s.part == "grad_b")
    assert [s.part for s in scene.story.steps].count("grad_b") == 1
    assert {"grad_y", "grad_b"} <= set(scene.layout_at(k))      # ∂ℓ/∂y and ∂ℓ/∂b on screen


@pytest.mark.render
@pytest.mark.parametrize("name", ["homework-1d", "8x8-stride-2"])
def test_the_text_changes_with_the_window_and_then_holds(rendered, name):
    """The lines block, in pixels: in the middle of step k's hold it already differs from step k-1's
    (when the Story's lines differ) and stays exactly as it is until the step's last frame."""
    scene, frames, _ = rendered[name]
    steps = scene.story.steps
    changed = 0
    for k in range(1, len(steps)):
        a, b = steps[k - 1], steps[k]
        if a.weight < 1.0 or b.weight < 1.0 or a.part != b.part:
            continue
        pp = scene.plans[b.part]
        x0, y0 = _px(pp.text_x, pp.text_y)
        x1, y1 = _px(pp.text_x + pp.text_w, pp.text_y - pp.n_lines * pp.line_pitch)
        region = lambda i: frames[min(i, len(frames) - 1)][y0:y1, x0:x1].astype(int)   # noqa: E731
        mid_prev, mid, last = _mid_hold(scene, k - 1), _mid_hold(scene, k), int(scene.timeline[k][1] * FPS) - 1
        assert np.abs(region(mid) - region(last)).mean() <= 2.0, f"step {k + 1}: the text moves during the hold"
        if [ln.text for ln in a.lines] != [ln.text for ln in b.lines]:
            assert np.abs(region(mid) - region(mid_prev)).mean() > 0.5, f"step {k + 1} still shows step {k}'s text"
            changed += 1
    assert changed >= 2
