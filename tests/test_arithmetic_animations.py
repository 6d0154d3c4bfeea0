"""`animate conv-transpose` and `animate pool`: their Stories against PyTorch, their scenes against
their Stories (a rewritten running sum replaces its number; the frame in the middle of each step's
hold lights exactly the step's cells on the page it is drawn on), and their refusals.

Story numbers: the scatter's last running sum of every output cell, the gather's written outputs and
the grid y_gather all equal torch's conv_transpose on the Story's own x and w; pooling's written y equals
torch's max/avg pool, and the backward's last running sum of every ∂ℓ/∂x cell equals torch's autograd
gradient for the Story's ∂ℓ/∂y, over random geometries (hypothesis), 1-D and 2-D.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import json

from viz.app.registry import ParamError, get
from viz.app.shape_report import report
from viz.story.arithmetic import pool_animation_story
from viz.story.transposed import transpose_animation_story

torch = pytest.importorskip("torch")
F = torch.nn.functional
VIZ = str(Path(sys.executable).with_name("viz"))


def last_writes(story, target):
    out = {}
    for s in story.steps:
        for w in s.writes:
            if w.target == target:
                out[tuple(w.cell)] = w.value
    return out


@st.composite
def transposed(draw):
    nd = draw(st.integers(1, 2))
    axes = []
    for _ in range(nd):
        s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        axes.append((draw(st.integers(1, 4)), draw(st.integers(1, 3)), s, draw(st.integers(0, 1)), d,
                     draw(st.integers(0, max(s, d) - 1))))
    i, k, s, p, d, a = (tuple(ax[j] for ax in axes) for j in range(6))
    values = dict(input=i, kernel=k, stride=s, padding=p, dilation=d, output_padding=a,
                  values=draw(st.sampled_from(["int", "float"])), seed=draw(st.integers(0, 1000)))
    groups = draw(st.sampled_from([1, 1, 2]))             # several channels and maps half the time
    c_in = groups * draw(st.sampled_from([1, 1, 2]))
    maps = groups * draw(st.sampled_from([1, 2]))
    if (c_in, maps) != (1, 1):
        values.update(channels=c_in, filters=maps, groups=groups)
    if draw(st.booleans()):                      # the user's own x and w (--x, --w)
        rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
        values.update(x=np.round(rng.uniform(-3, 3, (c_in, *i)), 2).tolist(),
                      w=np.round(rng.uniform(-2, 2, (c_in, maps // groups, *k)), 2).tolist())
    return values


@settings(max_examples=80, deadline=None, derandomize=True)
@given(transposed())
def test_transpose_story_equals_torch(values):
    """y = torch's conv_transpose{1,2}d on the Story's x and w (given ones unchanged), with channels,
    maps and groups: the grids, every scatter cell's last running sum and every gathered output."""
    key = "animate conv-transpose"
    try:
        values = get(key).validate(values)
    except ParamError as err:
        if "too large to draw legibly" not in str(err):
            return                               # refused geometry (padding too large): as torch
        # several channels the scene cannot draw legibly: the Story is the same, the diagram's rules
        values = {**get("diagram conv-transpose").validate({k: v for k, v in values.items() if k != "values"}),
                  "values": values["values"]}
    except ValueError:
        return
    story = transpose_animation_story(values)
    nd = len(values["input"])
    C, Fm, G = values.get("channels", 1), values.get("filters", 1), values.get("groups", 1)
    x = story.grid("x").array()                  # (C_in, *input)
    w = story.grid("w").array()
    w = w.reshape(C, Fm // G, *w.shape[1:])      # drawn (C_in·F/G, *kernel)
    if values.get("x") is not None:              # the user's arrays flow through unchanged
        np.testing.assert_array_equal(x, np.asarray(values["x"]))
        np.testing.assert_array_equal(w, np.asarray(values["w"]))
    conv_t = F.conv_transpose1d if nd == 1 else F.conv_transpose2d
    ref = conv_t(torch.tensor(x[None]), torch.tensor(w), stride=values["stride"], padding=values["padding"],
                 dilation=values["dilation"], output_padding=values["output_padding"], groups=G)[0].numpy()
    if Fm == 1:
        ref = ref[0]                             # one map: no map axis in the grids
    assert story.grid("y_gather").array().shape == ref.shape
    shape = get("shape").validate({**{k: values[k] for k in ("input", "kernel", "stride", "padding", "dilation",
                                                             "output_padding")}, "transposed": True})
    assert json.loads(report(shape, "json"))["out_shape"] == list(ref.shape[-nd:])   # = viz shape --transposed
    np.testing.assert_allclose(story.grid("y").array(), ref, atol=1e-9)
    np.testing.assert_allclose(story.grid("y_gather").array(), ref, atol=1e-9)
    scatter = last_writes(story, "y")
    gather = last_writes(story, "y_gather")
    assert set(gather) == set(np.ndindex(*ref.shape))          # every output gathered once
    for cell in np.ndindex(*ref.shape):
        assert abs(gather[cell] - ref[cell]) <= 1e-9
        assert abs(scatter.get(cell, 0.0) - ref[cell]) <= 1e-9  # unreached cells stay 0
    unreached = {tuple(c) for s in story.steps for c in s.lit_cells("y", "never_read")}
    assert unreached == set(np.ndindex(*ref.shape)) - set(scatter)
    flip = story.grid("w_flip").array()
    np.testing.assert_array_equal(flip, np.flip(story.grid("w").array(), axis=tuple(range(1, nd + 1))))
    # one scatter step per input cell (c, n), one gather step per output cell (f, o)
    assert sum(s.part == "scatter" for s in story.steps) == C * int(np.prod(values["input"]))
    assert sum(s.part == "gather" for s in story.steps) == int(np.prod(ref.shape))
    ids = {c.id for c in story.claims}
    assert ({f"filter-{f + 1}-channels" for f in range(Fm)} <= ids) == (G > 1)
    assert not story.failed_claims()


def test_groups_claim_fails_when_a_map_reads_outside_its_group():
    """The claim counts the steps: a gather step lighting another group's channel makes it fail."""
    import dataclasses

    from viz.story.core import Lit
    from viz.story.transposed import Maps, groups_caption

    values = get("animate conv-transpose").validate(dict(input=(3,), channels=2, filters=2, groups=2))
    story = transpose_animation_story(values)
    M = Maps(2, 2, 2)
    assert all(c.holds() for c in groups_caption(M, story.steps).claims)
    k = next(i for i, s in enumerate(story.steps) if s.part == "gather")
    bad = dataclasses.replace(story.steps[k], lit=story.steps[k].lit + (Lit("x_spread", "window", ((1, 2),)),))
    claims = groups_caption(M, story.steps[:k] + (bad,) + story.steps[k + 1:]).claims
    assert [c.holds() for c in claims] == [False, True]


@st.composite
def pools(draw):
    mode = draw(st.sampled_from(["max", "avg"]))
    nd = draw(st.integers(1, 2))
    axes = []
    for _ in range(nd):
        k = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2)) if mode == "max" else 1
        p = draw(st.integers(0, k // 2))
        axes.append((draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 6)), k, draw(st.integers(1, 3)), p, d))
    i, k, s, p, d = (tuple(ax[j] for ax in axes) for j in range(5))
    values = dict(input=i, kernel=k, stride=s, padding=p, dilation=d, mode=mode, ceil_mode=draw(st.booleans()),
                  count_include_pad=draw(st.booleans()), values=draw(st.sampled_from(["int", "float"])),
                  seed=draw(st.integers(0, 1000)))
    if draw(st.booleans()):                      # the user's own x and ∂ℓ/∂y (--x, --grad-y)
        from viz import pool

        try:
            out = pool.pool_geometry(i, k, s, p, d, values["ceil_mode"]).out_shape
        except ValueError:
            return values
        rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
        values.update(x=np.round(rng.uniform(-3, 3, (1, *i)), 1).tolist(),
                      grad_y=np.round(rng.uniform(-2, 2, (1, *out)), 1).tolist())
    return values


@settings(max_examples=60, deadline=None, derandomize=True)
@given(pools())
def test_pool_story_equals_torch_forward_and_autograd(values):
    try:
        values = get("animate pool").validate(values)
    except (ParamError, ValueError):
        return
    story = pool_animation_story(values)
    nd = len(values["input"])
    pad = np.asarray(story.grid("x").padding, bool).reshape(story.grid("x").shape)
    x = story.grid("x").array()[~pad].reshape(1, *values["input"])   # the unpadded input
    xt = torch.tensor(x[None], requires_grad=True)
    if values["mode"] == "max":
        pool = F.max_pool1d if nd == 1 else F.max_pool2d
        y = pool(xt, values["kernel"], values["stride"], values["padding"], values["dilation"],
                 ceil_mode=values["ceil_mode"])
    else:
        pool = F.avg_pool1d if nd == 1 else F.avg_pool2d
        y = pool(xt, values["kernel"], values["stride"], values["padding"], ceil_mode=values["ceil_mode"],
                 count_include_pad=values["count_include_pad"])
    gy = story.grid("grad_y").array()
    if values.get("x") is not None:              # the user's arrays flow through unchanged
        np.testing.assert_array_equal(x, np.asarray(values["x"]))
        np.testing.assert_array_equal(gy, np.asarray(values["grad_y"])[0])
    y.backward(torch.tensor(gy[None, None]))
    ref_y, ref_gx = y[0, 0].detach().numpy(), xt.grad[0, 0].numpy()
    written = last_writes(story, "y")
    assert set(written) == set(np.ndindex(*ref_y.shape))
    for cell, v in written.items():
        assert abs(v - ref_y[cell]) <= 1e-9
    grads = last_writes(story, "grad_x")
    for cell in np.ndindex(*ref_gx.shape):                # cells no window sends to stay 0
        assert abs(grads.get(cell, 0.0) - ref_gx[cell]) <= 1e-9
    np.testing.assert_allclose(story.grid("grad_x").array(), ref_gx, atol=1e-9)
    assert not story.failed_claims()


@pytest.mark.parametrize("argv, words", [
    (["animate", "conv-transpose", "--input", "16x16", "--stride", "4"], "--input: the transposed convolution would draw"),
    (["animate", "conv-transpose", "--input", "3", "--stride", "2", "--output-padding", "2"], "output_padding"),
    (["animate", "pool", "--input", "5", "--kernel", "3", "--padding", "2"], "padding must be in 0..kernel//2"),
    (["animate", "pool", "--input", "1", "--kernel", "2", "--padding", "1", "--dilation", "2"], "reads only padding"),
    (["animate", "conv-transpose", "--input", "3", "--w", "[[[1, 1]]]"],
     "--w: expected shape 1x1x3 for 1 input channel, 1 filter and kernel 3, got 1x1x2"),
    (["animate", "pool", "--input", "4", "--kernel", "2", "--grad-y", "[[1, -1, 3]]"],
     "--grad-y: expected shape 1x2 for 1 channel and output 2, got 1x3"),
    (["animate", "pool", "--input", "4", "--kernel", "2", "--x", "[[1, 2], [3, 4]]"],
     "--x: expected shape 1x4 for 1 channel and input 4, got 2x2"),
    (["animate", "conv-transpose", "--input", "3", "--channels", "3", "--filters", "2", "--groups", "2"],
     "--groups: must divide --channels (3) and --filters (2) (got 2)"),
    (["diagram", "conv-transpose", "--input", "3", "--channels", "3", "--filters", "2", "--groups", "2"],
     "--groups: must divide --channels (3) and --filters (2) (got 2)"),
    (["animate", "conv-transpose", "--input", "3", "--channels", "2", "--filters", "2", "--groups", "2",
      "--w", "[[[1, 1, 1]], [[1, 1, 1]], [[1, 1, 1]]]"],
     "--w: expected shape 2x1x3 for 2 input channels, 2 filters (1 per group of 2) and kernel 3, got 3x1x3"),
    (["diagram", "conv-transpose", "--input", "3", "--channels", "2", "--filters", "3", "--w", "[[[1, 1, 1]]]"],
     "--w: expected shape 2x3x3 for 2 input channels, 3 filters and kernel 3, got 1x1x3"),
    (["animate", "conv-transpose", "--input", "3", "--channels", "2", "--x", "[[1, 2, 3]]"],
     "--x: expected shape 2x3 for 2 channels and input 3, got 1x3"),
    (["animate", "conv-transpose", "--input", "3", "--channels", "4", "--filters", "4", "--stride", "2"],
     "--input: 3 with 4 channel(s) and 4 map(s) is too large to draw legibly: cells would be too small"),
    (["animate", "conv-transpose", "--input", "3x3", "--channels", "2", "--stride", "2"],
     "is too large to draw legibly"),
])
def test_refusals_are_one_line_exit_2_no_file(tmp_path, argv, words):
    out = tmp_path / "fig.mp4"
    r = subprocess.run([VIZ, *argv, "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


# ---- viz shape --pool ------------------------------------------------------------------------------

@settings(max_examples=80, deadline=None, derandomize=True)
@given(pools())
def test_shape_pool_equals_torch_output_shape(values):
    import json

    from viz.app.shape_report import report

    raw = {k: values[k] for k in ("input", "kernel", "stride", "padding", "ceil_mode")}
    raw.update(pool=values["mode"], dilation=values["dilation"] if values["mode"] == "max" else 1)
    try:
        v = get("shape").validate(raw)
    except (ParamError, ValueError):
        return
    data = json.loads(report(v, "json"))
    nd = len(raw["input"])
    x = torch.zeros(1, 1, *raw["input"], dtype=torch.float64)
    if raw["pool"] == "max":
        y = (F.max_pool1d if nd == 1 else F.max_pool2d)(x, raw["kernel"], raw["stride"], raw["padding"],
                                                        raw["dilation"], ceil_mode=raw["ceil_mode"])
    else:
        y = (F.avg_pool1d if nd == 1 else F.avg_pool2d)(x, raw["kernel"], raw["stride"], raw["padding"],
                                                        ceil_mode=raw["ceil_mode"])
    assert data["out_shape"] == list(y.shape[2:])
    assert [f.endswith(f"= {o}") for f, o in zip(data["formula"], data["out_shape"])] == [True] * nd
    text = report(v, "txt")
    assert f"-> out {'x'.join(map(str, y.shape[2:]))}" in text.splitlines()[0]


@pytest.mark.parametrize("raw", [dict(input="5x5", kernel=2, mode="max"), dict(input="8", kernel=3, stride=2,
                                                                            mode="avg"),
                                 dict(input="6", kernel=2, mode="max")])        # every input read: no step
def test_pool_never_read_inputs_are_named_and_get_zero_gradient(raw):
    """Floor mode drops the inputs past the last full window: the Story's closing step lights exactly
    them (x as drawn and ∂ℓ/∂x), and torch's autograd gives them exactly 0."""
    values = get("animate pool").validate(raw)
    story = pool_animation_story(values)
    x = torch.tensor(story.grid("x").array()[None], requires_grad=True)
    nd = x.dim() - 2
    pool = (F.max_pool1d if nd == 1 else F.max_pool2d) if raw["mode"] == "max" else \
        (F.avg_pool1d if nd == 1 else F.avg_pool2d)
    y = pool(x, values["kernel"], values["stride"])
    y.backward(torch.ones_like(y))
    unread = {tuple(int(v) for v in m) for m in zip(*np.nonzero(x.grad[0, 0].numpy() == 0))} if raw["mode"] == "avg" \
        else None
    last = story.steps[-1]
    if last.part != "never_read":
        assert raw["input"] == "6" and not any(s.part == "never_read" for s in story.steps)
        return
    cells = {tuple(c) for c in last.lit_cells("grad_x", "never_read")}
    assert {tuple(c[1:]) for c in last.lit_cells("x", "never_read")} == cells       # no padding here
    assert all(float(x.grad[(0, 0, *c)]) == 0.0 for c in cells)
    if unread is not None:             # average pooling: exactly the inputs with zero gradient
        assert cells == unread
    assert not story.failed_claims()


@pytest.mark.parametrize("argv, words", [
    (["--pool", "max", "--input", "8", "--kernel", "3", "--padding", "1:0"], "--padding: --pool max pads both sides alike"),
    (["--pool", "avg", "--input", "8", "--kernel", "3", "--dilation", "2"], "--dilation: average pooling has none"),
    (["--pool", "max", "--input", "8", "--kernel", "3", "--transposed"], "--transposed: does not apply with --pool max"),
    (["--input", "8", "--kernel", "3", "--ceil-mode"], "--ceil-mode: applies only with --pool"),
    (["--pool", "max", "--input", "4", "--kernel", "3", "--padding", "2"], "padding must be in 0..kernel//2"),
])
def test_shape_pool_refusals(argv, words):
    r = subprocess.run([VIZ, "shape", *argv], capture_output=True, text=True)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stdout == ""


# ---- the scenes ----------------------------------------------------------------------------------

pytest.importorskip("manim")
av = pytest.importorskip("av")

from scenes import style  # noqa: E402
from scenes.render import dry_run  # noqa: E402
from test_frames import is_filled_output, is_window, mid_hold_frames, render_decoded, samples  # noqa: E402

STEP_TIME = 1.0
CASES = {   # overlapping stamps (running sums rewritten) and output padding; max pool, both pages or one
    "transpose-1d-overlap-outpad": ("conv-transpose", dict(input=(3,), kernel=(3,), stride=(2,), padding=0,
                                                            dilation=(1,), output_padding=(1,), values="int", seed=0)),
    "pool-2d-max-overlap": ("pool", dict(input=(4, 4), kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                                         mode="max", ceil_mode=False, count_include_pad=True, values="int", seed=3)),
    # two groups of 2 channels and 1 map each: the kernel slices in use lit on w and flip(w) too
    "transpose-1d-maps-groups": ("conv-transpose", dict(input=(3,), kernel=(3,), stride=(2,), padding=0, dilation=(1,),
                                                        output_padding=(1,), values="int", seed=0, channels=4,
                                                        filters=2, groups=2)),
}


@pytest.fixture(scope="module", params=list(CASES))
def rendered(request, tmp_path_factory):
    kind, p = CASES[request.param]
    p = {**p, "step_time": STEP_TIME}
    return (request.param, *render_decoded(kind, p, tmp_path_factory.mktemp("arith") / f"{request.param}.mp4"))


def test_a_rewritten_cell_shows_one_number(rendered):
    name, scene, _, _ = rendered
    rewritten = 0
    for player in scene.players:
        for target, view in player.views.items():
            cells = {tuple(w.cell) for s in scene.story.steps for w in s.writes if w.target == target}
            times = sum(1 for s in scene.story.steps for w in s.writes if w.target == target)
            rewritten += times - len(cells)
            assert sum(len(p.written.submobjects) for p in view.panels) == len(cells), f"{name}: {target}"
    assert rewritten > 0, f"{name}: the case must rewrite running sums"


def test_video_follows_the_timeline(rendered):
    name, scene, frames, fps = rendered
    assert abs(len(frames) / fps - scene.timeline[-1][1]) <= 1 / fps + 1e-9
    assert len(scene.step_starts) == len(scene.story.steps)
    for t, (start, _) in zip(scene.step_starts, scene.timeline):
        assert abs(t - start) <= 1 / fps + 1e-9


def test_mid_hold_frames_light_exactly_the_steps_cells_and_writes(rendered):
    name, scene, frames, fps = rendered
    story = scene.story
    checked = mid_hold_frames(scene, frames, fps)
    assert len(checked) >= min(6, len(story.steps))
    for k, frame in checked:
        step, page = story.steps[k], scene.pages[scene.page_of_step[k]]
        for target, lay in page.items():
            lit = {tuple(c) for c in step.lit_cells(target, "window")}
            seen = {tuple(i) for i, c in lay["centres"].items() if is_window(samples(frame, c, lay["cell"]))}
            assert seen == lit, f"{name} step {step.id}: window cells on {target}"
            written = {tuple(w.cell) for s in story.steps[:k + 1] for w in s.writes if w.target == target}
            if story.grid(target).role == "output":         # y, y_gather: filled as they are written
                filled = {tuple(i) for i, c in lay["centres"].items()
                          if is_filled_output(samples(frame, c, lay["cell"]))}
                assert filled == written, f"{name} step {step.id}: written cells of {target}"


def test_pages_hold_every_grid_a_step_uses(rendered):
    name, scene, _, _ = rendered
    for k, step in enumerate(scene.story.steps):
        page = scene.pages[scene.page_of_step[k]]
        used = {lit.target for lit in step.lit if lit.cells} | {w.target for w in step.writes}
        assert used <= set(page), f"{name} step {step.id}"


LAYOUT_CASES = {
    "transpose-2d-dilated": ("conv-transpose", dict(input=(7, 7), kernel=(3, 3), stride=(1, 1), padding=0,
                                                    dilation=(2, 2), output_padding=(0, 0), values="float", seed=0)),
    "transpose-2d-outpad": ("conv-transpose", dict(input=(3, 3), kernel=(3, 3), stride=(2, 2), padding=1,
                                                   dilation=(1, 1), output_padding=(1, 1), values="int", seed=0)),
    "transpose-1d-long": ("conv-transpose", dict(input=(8,), kernel=(4,), stride=(3,), padding=0, dilation=(1,),
                                                 output_padding=(2,), values="int", seed=1)),
    "transpose-1d-maps": ("conv-transpose", dict(input=(4,), kernel=(3,), stride=(1,), padding=1, dilation=(1,),
                                                 output_padding=(0,), values="float", seed=2, channels=3, filters=2)),
    "transpose-2d-maps-groups": ("conv-transpose", dict(input=(2, 2), kernel=(2, 2), stride=(2, 2), padding=0,
                                                        dilation=(1, 1), output_padding=(0, 0), values="int", seed=0,
                                                        channels=2, filters=2, groups=2)),
    "pool-1d-avg-ceil": ("pool", dict(input=(6,), kernel=(3,), stride=(2,), padding=(1,), dilation=(1,), mode="avg",
                                      ceil_mode=True, count_include_pad=False, values="float", seed=1)),
    "pool-2d-max-big": ("pool", dict(input=(12, 12), kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                                     mode="max", ceil_mode=False, count_include_pad=True, values="int", seed=0)),
}


@pytest.mark.parametrize("name", list(LAYOUT_CASES))
def test_pages_fit_the_frame_without_overlaps(name):
    """Every page's grids (with their labels) lie inside the frame, pairwise apart, above the text
    box, which lies above the legend; the text's widest line fits the frame's width."""
    from scenes.arithmetic import LEFT_X, RIGHT_X

    kind, p = LAYOUT_CASES[name]
    scene = dry_run(kind, {**p, "step_time": STEP_TIME})
    for page_views in scene.players:
        boxes = {n: (v.group.get_left()[0], v.group.get_bottom()[1], v.group.get_right()[0], v.group.get_top()[1])
                 for n, v in page_views.views.items()}
        for n, (l, b, r, t) in boxes.items():
            assert LEFT_X - 1e-6 <= l and r <= RIGHT_X + 1e-6 and b >= -4 and t <= 4, (name, n)
        names = list(boxes)
        for i, a in enumerate(names):
            for c in names[i + 1:]:
                A, C = boxes[a], boxes[c]
                apart = A[2] <= C[0] + 1e-6 or C[2] <= A[0] + 1e-6 or A[3] <= C[1] + 1e-6 or C[3] <= A[1] + 1e-6
                assert apart, f"{name}: {a} overlaps {c}"
        low = min(b for _, b, _, _ in boxes.values())
        top = scene.text_tops[scene.players.index(page_views)]
        assert top <= low + 1e-6, f"{name}: the lines start inside the grids"
        assert top - scene.layout["text"]["height"] >= scene.body[1] - 1e-6, f"{name}: the lines reach the legend"
        assert max(t for _, _, _, t in boxes.values()) <= scene.body[0] + 1e-6, f"{name}: grids reach the header"
    widest = max(len(ln.text) for s in scene.story.steps for ln in s.lines)
    assert widest * style.MONO_ADVANCE * scene_text_size(scene) <= RIGHT_X - LEFT_X + 1e-6


def scene_text_size(scene):
    from scenes.arithmetic import LEFT_X, RIGHT_X
    return scene.text_size(RIGHT_X - LEFT_X)


# ---- several channels and maps: legible at 1080p, or refused before Manim loads --------------------

SEVERAL = [dict(input=(3,), stride=2, channels=2, filters=2), dict(input=(4,), stride=2, channels=4, filters=2, groups=2,
                                                                   output_padding=1),
           dict(input=(5,), kernel=2, channels=2, filters=3, values="float"), dict(input=(2, 2), kernel=2, channels=2),
           dict(input=(2, 2), kernel=2, stride=2, channels=2, filters=2, groups=2),
           dict(input=(3,), channels=4, filters=4, stride=2), dict(input=(3, 3), stride=2, channels=2),
           dict(input=(2, 3), kernel=2, channels=3, filters=3, groups=3)]


@pytest.mark.parametrize("params", SEVERAL, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_several_maps_are_legible_or_refused(params):
    """Accepted: in the scene as drawn every grid keeps numbers and every number and line is at least
    14 px tall at 1080p (the manim-free estimate is never too optimistic); refused: one line, naming it."""
    from scenes import rows_plan

    px = 1080 / 8.0
    try:
        values = get("animate conv-transpose").validate(params)
    except ParamError as err:
        assert "too large to draw legibly" in str(err) and len(str(err).splitlines()) == 1
        return
    assert rows_plan.transpose_refusal(transpose_animation_story(values)) is None
    scene = dry_run("conv-transpose", {**{k: v for k, v in values.items() if k != "quality"}, "step_time": STEP_TIME})
    for player in scene.players:
        for name, view in player.views.items():
            for panel in view.panels:
                assert panel.numbered, f"{name}: no numbers"
                assert panel.number_size * style.MONO_DIGIT_HEIGHT * px >= style.MIN_GLYPH_PX - 1e-6, name
    assert scene_text_size(scene) * style.MONO_DIGIT_HEIGHT * px >= style.MIN_GLYPH_PX - 1e-6


def test_rows_plan_constants_are_the_scenes():
    from scenes import common, conv, player, rows_plan

    assert (rows_plan.LEFT_X, rows_plan.RIGHT_X) == (conv.LEFT_X, conv.RIGHT_X)
    assert rows_plan.MONO_SIZE == common._MONO_SIZE and rows_plan.LINE_PITCH == player.LINE_PITCH
