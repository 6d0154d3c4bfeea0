"""The convolution scenes draw exactly their Story, on the Story's timeline.

Scenes are constructed in a dry run (no frame drawn, no file written). What the forward scene drew at
each step (`scene.shown`: lines, lit cells, written cells) is compared with its Story and, independently
of viz.windows, with the closed form m = o*s + j*d - p_lo (plain loops) and PyTorch's values; the
clock at every `begin_step` is compared with `story.timeline`; the animations played are fades and
fills only (text never morphs into other text). The Story itself is checked against PyTorch in
test_story_conv.py; frames of real renders in test_frames.py.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("manim")

from scenes import style  # noqa: E402
from scenes.render import dry_run, dry_run_scene, scene_class  # noqa: E402
from viz.story import conv as SC  # noqa: E402
from viz.story import conv_backward as SB  # noqa: E402
from viz.runs import example_data  # noqa: E402


def params(input, kernel, stride=1, padding=0, dilation=1, channels=1, values="int", seed=0, bias=False):
    return dict(input=input, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                channels=channels, values=values, seed=seed, bias=bias)


HOMEWORK = params((7,), (3,), stride=2, channels=5)
GEOMETRIES = {
    "homework-1d": HOMEWORK,
    "2d-strided-dilated-padded": params((7, 7), (3, 3), stride=2, dilation=2, padding=2, channels=1,
                                        values="float", seed=3),
    "1d-asymmetric-padding-bias": params((6,), (4,), padding=((1, 2),), channels=2, seed=1, bias=True),
    "2d-asymmetric-padding": params((5, 5), (3, 3), stride=2, padding=((1, 0), (1, 0)), channels=2, seed=2),
    "2d-unread-last-row": params((8, 8), (3, 3), stride=2, seed=4),
    "2d-channels-inset": params((6, 6), (3, 3), stride=2, padding=1, dilation=2, channels=5),
    "2d-only-padding-windows": params((4, 4), (2, 2), padding=2, seed=6),
}


def naive(p):
    """Windows (drawn, padded coordinates, channel first) and never-read cells by the closed form."""
    shape, k = tuple(p["input"]), tuple(p["kernel"])
    nd = len(shape)
    per = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    s, d = per(p["stride"]), per(p["dilation"])
    pads = [(p["padding"],) * 2] * nd if isinstance(p["padding"], int) else [tuple(q) for q in p["padding"]]
    out = tuple((shape[a] + pads[a][0] + pads[a][1] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(nd))
    reads, read = {}, set()
    for o in itertools.product(*map(range, out)):
        cells = []
        for j in itertools.product(*map(range, k)):
            m = tuple(o[a] * s[a] + j[a] * d[a] - pads[a][0] for a in range(nd))
            if all(0 <= m[a] < shape[a] for a in range(nd)):
                cells.append(tuple(m[a] + pads[a][0] for a in range(nd)))
                read.add(m)
        reads[o] = cells
    never = [tuple(m[a] + pads[a][0] for a in range(nd)) for m in itertools.product(*map(range, shape))
             if m not in read]
    return out, reads, never


def torch_y(p):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    out, _, _ = naive(p)
    nd = len(p["input"])
    data = example_data(p["input"], p["channels"], p["kernel"], out, p["seed"], p["values"])
    pads = [(p["padding"],) * 2] * nd if isinstance(p["padding"], int) else [tuple(q) for q in p["padding"]]
    flat = [v for pair in reversed(pads) for v in pair]
    b = torch.tensor(SC.example_bias(p["seed"], p["values"])) if p["bias"] else None
    conv = F.conv1d if nd == 1 else F.conv2d
    return conv(F.pad(torch.tensor(data["x"])[None], flat), torch.tensor(data["w"]), b,
                stride=p["stride"], dilation=p["dilation"]).numpy()[0, 0]


class Recorder:
    """Wraps a scene's play to record the class of every animation it plays."""

    def __init__(self, scene):
        self.kinds = []
        play = scene.play

        def recorded(*anims, **kw):
            self.kinds += [type(getattr(a, "animation", a)).__name__ for a in anims]
            return play(*anims, **kw)
        scene.play = recorded


def dry(kind, p):
    cls = scene_class(kind)
    rec = {}

    def factory(**kw):
        scene = cls(**p, **kw)
        rec["r"] = Recorder(scene)
        return scene
    scene = dry_run_scene(factory)
    scene.animation_kinds = rec["r"].kinds
    return scene


@pytest.fixture(scope="module")
def forward_scenes():
    return {name: dry("conv", p) for name, p in GEOMETRIES.items()}


# ---- forward: the scene draws its Story ----------------------------------------------------------------

@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_forward_scene_draws_its_story(forward_scenes, name):
    p = GEOMETRIES[name]
    scene = forward_scenes[name]
    story = scene.story
    assert story == SC.forward_story(p)
    assert [s["id"] for s in scene.shown] == [s.id for s in story.steps]
    for shown, step in zip(scene.shown, story.steps):
        assert shown["lines"] == [ln.text for ln in step.lines]
        assert shown["writes"] == [(w.target, tuple(w.cell), w.text) for w in step.writes]
        assert shown["lit"] == {(lit.target, lit.role): list(lit.cells) for lit in step.lit}
    # independent of viz.windows: the lit windows are the closed form's, every output written once
    out, reads, never = naive(p)
    C = p["channels"]
    fwd = [s for s, step in zip(scene.shown, story.steps) if step.part == "forward"]
    assert [w[0][1] for w in (s["writes"] for s in fwd)] == list(itertools.product(*map(range, out)))
    for s, o in zip(fwd, reads):
        assert sorted(s["lit"][("x", "window")]) == sorted((c, *m) for c in range(C) for m in reads[o])
    # a closing step lights the never-read inputs, exactly when there are some
    assert len(scene.shown) == len(fwd) + bool(never)
    assert sorted(scene.shown[-1]["lit"].get(("x", "never_read"), [])) == sorted(
        (c, *m) for c in range(C) for m in never)
    y = torch_y(p)
    assert [step.writes[0].value for step in story.steps if step.part == "forward"] == pytest.approx(
        list(y.ravel()), abs=1e-9)
    # every cell of the drawn grids has a place on screen (the frame tests read it)
    for grid in ("x", "w", "y"):
        assert len(scene.layout[grid]["centres"]) == int(np.prod(story.grid(grid).shape))


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_forward_scene_follows_the_timeline(forward_scenes, name):
    scene = forward_scenes[name]
    starts = [a for a, _ in scene.timeline]
    assert scene.step_starts == pytest.approx(starts, abs=1e-9)
    assert scene.renderer.time == pytest.approx(scene.timeline[-1][1], abs=1e-9)
    # fully shown steps stay on screen at least 3 s by default
    full = [b - a for (a, b), s in zip(scene.timeline, scene.story.steps) if s.weight >= 1]
    assert min(full) >= 3.0
    # only fades, fills and holds: no Transform turns one text into another
    assert set(scene.animation_kinds) <= {"FadeIn", "FadeOut", "_MethodAnimation", "_AnimationBuilder", "Wait"}
    assert "FadeOut" in scene.animation_kinds


def test_step_time_scales_the_timeline():
    p = GEOMETRIES["homework-1d"]
    slow = dry_run("conv", {**p, "step_time": 5.0})
    assert slow.step_starts == pytest.approx([1.0, 6.0, 11.0])        # 3 windows, every input read
    with pytest.raises(Exception, match="step-time"):
        from viz.app.registry import get
        get("animate conv").validate({"step_time": "0.1"})


def test_homework_numbers_and_windows(forward_scenes):
    """The homework: f in R^3 (not R^2), windows 1-3, 3-5, 5-7, five channels summed."""
    scene = forward_scenes["homework-1d"]
    assert [sorted({c[1] for c in s["lit"][("x", "window")]}) for s in scene.shown[:3]] == \
        [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    assert scene.shown[1]["lines"][0] == "y[2] reads x[·, 3..5]"
    assert scene.captions[1] == "output length: floor((7 + 0 + 0 − 1·(3−1) − 1)/2) + 1 = 3"
    assert all(float(w.value).is_integer() for s in scene.story.steps for w in s.writes)


def test_inset_shows_each_channels_window(forward_scenes):
    """Several 2-D channels: the layout keeps kernels and the inset numbered (>= MIN_NUMBERED_CELL_SIZE)."""
    scene = forward_scenes["2d-channels-inset"]
    assert scene.chosen["cell_r"] >= style.MIN_NUMBERED_CELL_SIZE
    step = scene.story.steps[0]
    assert len(step.data["patch_texts"]) == 5 and all(len(t) == 9 for t in step.data["patch_texts"])


def test_large_input_speeds_up_but_writes_every_output():
    p = params((14, 14), (3, 3))
    scene = dry_run("conv", p)
    y = torch_y(p)
    writes = [s["writes"][0] for s, step in zip(scene.shown, scene.story.steps) if step.part == "forward"]
    assert len(writes) == 144 and [w[1] for w in writes] == list(itertools.product(range(12), range(12)))
    assert [s.weight for s in scene.story.steps[:SC.FULL_STEPS]] == [1.0] * SC.FULL_STEPS
    assert np.allclose([s.writes[0].value for s in scene.story.steps if s.part == "forward"], y.ravel())
    # bounded video: the sped-up part weighs at most MAX_FAST_WEIGHT step times
    assert scene.renderer.time <= style.INTRO_TIME + style.STORY_STEP_TIME * (
        SC.FULL_STEPS + SC.MAX_FAST_WEIGHT + SC.FINAL_WEIGHT) + 1e-6


def test_bad_parameters_raise_value_error():
    with pytest.raises(ValueError, match="kernel"):
        dry_run("conv", params((3,), (4,), stride=2))
    with pytest.raises(ValueError, match="axes"):
        dry_run("conv", params((4, 4, 4), (2, 2, 2)))
    with pytest.raises(ValueError, match="kind"):
        dry_run("nope", HOMEWORK)


# ---- legible or refused -----------------------------------------------------------------------------------

def test_every_tested_geometry_is_drawable():
    from viz.app.registry import get
    for p in GEOMETRIES.values():
        get("animate conv").validate(p)


LIMITS = [dict(input=f"{n}", kernel=k, channels=c, stride=s, padding=p, values=v)
          for n in (7, 16, 24, 32) for k in (3, 5) for c in (1, 5, 8) for s in (1, 2) for p in (0, 2)
          for v in ("int", "float")][::5] + \
         [dict(input=f"{n}x{n}", kernel=k, channels=c, stride=s, padding=p, dilation=d, values=v)
          for n in (5, 8, 12, 16) for k in (2, 3, 5) for c in (1, 3, 8) for s in (1, 2) for p in (0, 1)
          for d in (1, 2) for v in ("int", "float")][::11]


@pytest.mark.parametrize("raw", LIMITS, ids=lambda r: "-".join(f"{k}{v}" for k, v in r.items()))
def test_drawn_at_14px_or_refused_in_one_line(raw):
    """Over sizes up to the registry's limits: the plan ConvSlide draws keeps every number and line at
    least MIN_GLYPH_PX tall at 1080p, or the registry refuses the size in one line naming the limit."""
    from scenes import conv_plan as P
    from viz.app.registry import ParamError, get
    kind = get("animate conv")
    try:
        values = kind.validate(raw)
    except ValueError as err:
        if "too large to draw legibly" not in str(err):    # a geometry error: not this test's concern
            assert "must be" in str(err)
            return
        assert isinstance(err, ParamError) and "\n" not in str(err) and "at least 14 px" in str(err)
        return
    story = SC.forward_story(values)
    plan = P.best(story)
    wide = lambda names: max(len(t) for n in names if any(g.name == n for g in story.grids)  # noqa: E731
                             for t in story.grid(n).texts)
    assert P.digit_px(style.FORMULA_SIZE * plan["text_scale"]) >= style.MIN_GLYPH_PX - 1e-6
    assert P.digit_px(P.cell_number_size(plan["cell_r"], wide(("w", "y", "b")))) >= style.MIN_GLYPH_PX - 1e-6
    if plan["x_numbered"] or plan["inset"]:
        cell = plan["cell_x"] if plan["x_numbered"] else plan["cell_r"]
        assert P.digit_px(P.cell_number_size(cell, wide(("x",)))) >= style.MIN_GLYPH_PX - 1e-6


def _overlap(a, b, tol=1e-3):
    return min(a[2], b[2]) - max(a[0], b[0]) > tol and min(a[3], b[3]) - max(a[1], b[1]) > tol


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_nothing_overlaps_and_everything_is_inside_the_frame(forward_scenes, name):
    """Panels, labels, header, legend, the inset and the text box: pairwise disjoint, inside the frame."""
    scene = forward_scenes[name]
    t = scene.layout["text"]
    boxes = scene.boxes + [("text", (t["left"], t["top"] - t["height"], t["left"] + t["width"], t["top"]))]
    w, h = 14.22 / 2, 8.0 / 2
    for label, (x0, y0, x1, y1) in boxes:
        assert -w <= x0 and x1 <= w and -h <= y0 and y1 <= h, f"{label} leaves the frame"
    for (la, a), (lb, b) in itertools.combinations(boxes, 2):
        assert not _overlap(a, b), f"{name}: {la} overlaps {lb}"


def test_refusal_on_the_command_line(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "big.mp4"
    r = subprocess.run([sys.executable, "-m", "viz", "animate", "conv", "--input", "14x14", "--kernel", "3",
                        "--stride", "1", "--channels", "1", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and not out.exists()
    assert r.stderr.count("\n") == 1 and "too large to draw legibly" in r.stderr and "Traceback" not in r.stderr


# ---- backward: the same timeline contract ----------------------------------------------------------------

def test_backward_scene_follows_its_story_timeline():
    scene = dry("conv-backward", HOMEWORK)
    assert scene.story == SB.backward_story(HOMEWORK)
    assert scene.step_starts == pytest.approx([a for a, _ in scene.timeline], abs=1e-9)
    assert not {"Transform", "ReplacementTransform", "TransformMatchingShapes"} & set(scene.animation_kinds)


# ---- real renders (low quality) --------------------------------------------------------------------

@pytest.mark.render
@pytest.mark.parametrize("kind", ["conv", "conv-backward"])
def test_render_homework_video(tmp_path, kind):
    import av

    from scenes.render import render_animation
    out = tmp_path / f"{kind}.mp4"
    render_animation(kind, HOMEWORK, out, "mp4", quality="low", progress=False)
    planned = dry_run(kind, HOMEWORK).timeline[-1][1]
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (854, 480)
        assert s.average_rate == 15
        n = sum(1 for _ in c.decode(s))
    # the video lasts as long as the Story's timeline (to the frame)
    assert abs(n / 15 - planned) <= 1 / 15 + 1e-9


@pytest.mark.render
def test_render_png_still(tmp_path):
    from PIL import Image

    from scenes.render import render_animation
    out = tmp_path / "still.png"
    render_animation("conv", GEOMETRIES["2d-strided-dilated-padded"], out, "png", progress=False)
    img = Image.open(out)
    assert img.size == (854, 480)
    # not blank: the still shows the grids (many distinct colours)
    assert len(img.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 50
