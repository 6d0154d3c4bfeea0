"""The convolution scenes show exactly what the reference computes.

Scenes are constructed in a dry run (no frame drawn, no file written) and their recorded state is
compared with independent expectations: window cells from the closed form m = o*s + j*d - p_lo
(a naive loop here, not viz.windows), output values and gradients from PyTorch autograd in float64
(or the naive loop when torch is missing), never-read cells from counting reads. The products shown
must add up to the value shown, which catches a kernel paired with the wrong taps (e.g. unflipped).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

pytest.importorskip("manim")

from scenes import style  # noqa: E402
from scenes.common import speed_plan  # noqa: E402
from viz.runs import example_data  # noqa: E402
from viz.text import fmt_value  # noqa: E402
from scenes.render import dry_run  # noqa: E402
from viz import conv as V  # noqa: E402


def params(input, kernel, stride=1, padding=0, dilation=1, channels=1, values="int", seed=0):
    return dict(input=input, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                channels=channels, values=values, seed=seed)


HOMEWORK = params((7,), (3,), stride=2, channels=5)
GEOMETRIES = {
    "homework-1d": HOMEWORK,
    "2d-strided-dilated-padded": params((7, 7), (3, 3), stride=2, dilation=2, padding=2, channels=2,
                                        values="float", seed=3),
    "1d-asymmetric-padding": params((6,), (4,), padding=((1, 2),), channels=2, seed=1),
    "2d-asymmetric-padding": params((5, 5), (3, 3), stride=2, padding=((1, 0), (1, 0)), seed=2),
    "2d-unread-last-row": params((8, 8), (3, 3), stride=2, seed=4),
    "2d-unread-interior": params((10, 10), (3, 3), stride=3, dilation=2, padding=1, seed=5),
    "2d-only-padding-windows": params((4, 4), (2, 2), padding=3, seed=6),
}


# ---- independent expectations ---------------------------------------------------------------------

def pairs_of(padding, ndim):
    """Padding as (lo, hi) per axis, for the test's own loops (ints, per-axis ints or pairs)."""
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def per_axis(v, ndim):
    return (v,) * ndim if isinstance(v, int) else tuple(v)


def naive(p):
    """Windows, outputs and never-read cells by the closed form, with plain loops."""
    shape, k = tuple(p["input"]), tuple(p["kernel"])
    nd = len(shape)
    s, d = per_axis(p["stride"], nd), per_axis(p["dilation"], nd)
    pads = pairs_of(p["padding"], nd)
    out = tuple((shape[a] + pads[a][0] + pads[a][1] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(nd))
    reads = {}
    for o in itertools.product(*map(range, out)):
        cells = []
        for j in itertools.product(*map(range, k)):
            m = tuple(o[a] * s[a] + j[a] * d[a] - pads[a][0] for a in range(nd))
            if all(0 <= m[a] < shape[a] for a in range(nd)):
                cells.append(m)
        reads[o] = cells
    read = {c for cells in reads.values() for c in cells}
    never = [m for m in itertools.product(*map(range, shape)) if m not in read]
    return out, reads, never, s, d, pads


def torch_grads(p, data):
    """y, per-channel sums, grad_x and grad_w from PyTorch autograd in float64 (None without torch)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    nd = len(p["input"])
    out, _, _, s, d, pads = naive(p)
    x = torch.tensor(data["x"], dtype=torch.float64, requires_grad=True)
    w = torch.tensor(data["w"], dtype=torch.float64, requires_grad=True)
    flat = [v for lo_hi in reversed(pads) for v in lo_hi]           # F.pad: last axis first
    xp = F.pad(x[None], flat)
    conv = F.conv1d if nd == 1 else F.conv2d
    y = conv(xp, w, stride=s, dilation=d)[0]
    C = data["x"].shape[0]
    per_channel = conv(xp, w.reshape(C, 1, *w.shape[2:]), stride=s, dilation=d, groups=C)[0]
    g = torch.tensor(data["grad_y"], dtype=torch.float64)
    y.backward(g)
    return {"y": y.detach().numpy()[0], "per_channel": per_channel.detach().numpy(),
            "grad_x": x.grad.numpy(), "grad_w": w.grad.numpy()}


def reference(p, data):
    """Expected numbers: torch when installed, else viz.conv (itself gradient-checked elsewhere)."""
    t = torch_grads(p, data)
    if t is not None:
        return t
    args = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"])
    C = data["x"].shape[0]
    gx, gw = V.conv_backward(data["x"], data["w"], data["grad_y"], **args)
    return {"y": V.conv(data["x"], data["w"], **args)[0],
            "per_channel": V.conv(data["x"], data["w"].reshape(C, 1, *data["w"].shape[2:]), groups=C, **args),
            "grad_x": gx, "grad_w": gw}


@pytest.fixture(scope="module")
def forward_scenes():
    return {name: dry_run("conv", p) for name, p in GEOMETRIES.items()}


@pytest.fixture(scope="module")
def backward_scenes():
    names = ["homework-1d", "2d-strided-dilated-padded", "1d-asymmetric-padding", "2d-unread-last-row",
             "2d-unread-interior"]
    return {name: dry_run("conv-backward", GEOMETRIES[name]) for name in names}


# ---- forward -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_forward_windows_values_and_never_read(forward_scenes, name):
    p = GEOMETRIES[name]
    scene = forward_scenes[name]
    out, reads, never, *_ = naive(p)
    ref = reference(p, scene.data)
    integer = p["values"] == "int"
    # every output position exactly once, in row-major order
    assert [st["output"] for st in scene.steps] == list(itertools.product(*map(range, out)))
    for st in scene.steps:
        o = st["output"]
        assert st["cells"] == reads[o], f"window of output {o}"
        assert st["values"] == pytest.approx([ref["y"][o]], abs=1e-9)
        assert st["texts"] == [fmt_value(ref["y"][o], integer)]
        assert st["channel_sums"] == pytest.approx(ref["per_channel"][(slice(None), *o)], abs=1e-9)
        # the products shown add up to each channel's sum, and the channel sums to the output
        for c, pairs in enumerate(st["pairs"]):
            assert math.fsum(a * b for a, b in pairs) == pytest.approx(st["channel_sums"][c], abs=1e-9)
        assert math.fsum(st["channel_sums"]) == pytest.approx(st["values"][0], abs=1e-9)
    assert scene.never_read_shown == never
    # the output-size formula shown per axis ends in the output size
    assert len(scene.formulas_shown) == len(out)
    for a, f in enumerate(scene.formulas_shown):
        assert f.startswith("floor((") and f.endswith(f"= {out[a]}")


def test_homework_numbers_and_windows(forward_scenes):
    """The homework: f in R^3 (not R^2), windows 1-3, 3-5, 5-7, five channels summed."""
    scene = forward_scenes["homework-1d"]
    assert [st["cells"] for st in scene.steps] == [[(0,), (1,), (2,)], [(2,), (3,), (4,)], [(4,), (5,), (6,)]]
    assert scene.formulas_shown == ["floor((7 + 0 + 0 - 1*(3-1) - 1)/2) + 1 = 3"]
    assert all(len(st["channel_sums"]) == 5 for st in scene.steps)
    assert scene.never_read_shown == []
    # integer data: every shown number is an integer (checkable by hand)
    assert all(float(v).is_integer() for st in scene.steps for v in st["values"])


def test_edge_cases_never_read(forward_scenes):
    s = forward_scenes["2d-unread-last-row"]
    assert {m for m in s.never_read_shown} == {(7, j) for j in range(8)} | {(i, 7) for i in range(8)}
    s = forward_scenes["2d-unread-interior"]
    rows = {m[0] for m in s.never_read_shown if all((m[0], j) in s.never_read_shown for j in range(10))}
    assert rows == {0, 8}
    s = forward_scenes["2d-only-padding-windows"]
    assert len(s.steps) == 81
    assert [st for st in s.steps if not st["cells"]], "outputs that see only padding exist"
    assert all(st["values"] == [0.0] for st in s.steps if not st["cells"])


def test_products_check_detects_a_flipped_kernel(forward_scenes):
    """A test that can fail: pairing the inputs with the kernel reversed gives other sums."""
    scene = forward_scenes["homework-1d"]
    wrong = 0
    for st in scene.steps:
        for c, pairs in enumerate(st["pairs"]):
            xs = [a for a, _ in pairs]
            ws = [b for _, b in pairs][::-1]
            wrong += not math.isclose(math.fsum(a * b for a, b in zip(xs, ws)), st["channel_sums"][c])
    assert wrong > 0


def test_large_input_speeds_up_but_fills_every_output():
    p = params((28, 28), (3, 3))
    scene = dry_run("conv", p)
    out, reads, never, *_ = naive(p)
    ref = reference(p, scene.data)
    assert len(scene.steps) == out[0] * out[1] == 676
    assert [st["output"] for st in scene.steps] == list(itertools.product(*map(range, out)))
    assert [st["mode"] for st in scene.steps[:style.FULL_STEPS]] == ["full"] * style.FULL_STEPS
    assert all(st["mode"] == "fast" for st in scene.steps[style.FULL_STEPS:])
    for st in scene.steps[::37]:
        assert st["cells"] == reads[st["output"]]
    assert np.allclose([st["values"][0] for st in scene.steps], ref["y"].ravel())
    # bounded video: the sped-up part is at most MAX_FAST_TIME, the whole scene well under a minute
    assert len(speed_plan(676)) <= style.FULL_STEPS + style.MAX_FAST_TIME / style.FAST_STEP_TIME
    assert scene.renderer.time < 40.0


def test_float_data_has_one_decimal_inputs():
    d = example_data((7, 7), 2, (3, 3), (4, 4), seed=3, values="float")
    assert np.allclose(d["x"] * 10, np.round(d["x"] * 10)) and np.allclose(d["w"] * 10, np.round(d["w"] * 10))
    i = example_data((7,), 5, (3,), (3,), seed=0, values="int")
    assert set(np.unique(i["w"])) <= {-2.0, -1.0, 1.0, 2.0} and i["x"].min() >= -3 and i["x"].max() <= 3
    # seeded: same seed, same data
    assert all(np.array_equal(i[k], example_data((7,), 5, (3,), (3,), seed=0)[k]) for k in i)
    with pytest.raises(ValueError, match="values"):
        example_data((7,), 1, (3,), (3,), values="half")


# ---- backward ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["homework-1d", "2d-strided-dilated-padded", "1d-asymmetric-padding",
                                  "2d-unread-last-row", "2d-unread-interior"])
def test_backward_matches_autograd(backward_scenes, name):
    p = GEOMETRIES[name]
    scene = backward_scenes[name]
    out, reads, never, s, d, pads = naive(p)
    ref = reference(p, scene.data)
    C = p["channels"]
    k = tuple(p["kernel"])
    nd = len(k)
    gw_steps = [st for st in scene.steps if st["part"] == "grad_w"]
    gx_steps = [st for st in scene.steps if st["part"] == "grad_x"]
    # grad_w: one step per kernel tap j, the cells are the inputs tap j reads over all outputs
    assert [st["output"] for st in gw_steps] == list(itertools.product(*map(range, k)))
    for st in gw_steps:
        j = st["output"]
        want = sorted({tuple(o[a] * s[a] + j[a] * d[a] - pads[a][0] for a in range(nd)) for o in reads
                       if all(0 <= o[a] * s[a] + j[a] * d[a] - pads[a][0] < p["input"][a] for a in range(nd))})
        assert sorted(st["cells"]) == want
        assert st["values"] == pytest.approx([ref["grad_w"][(0, c, *j)] for c in range(C)], abs=1e-9)
        for c, pairs in enumerate(st["pairs"]):
            assert math.fsum(a * b for a, b in pairs) == pytest.approx(st["values"][c], abs=1e-9)
    # grad_x: one step per input position; the upstream entries under the flipped kernel are the
    # outputs whose forward window reads that position; the values are autograd's
    assert [st["output"] for st in gx_steps] == list(itertools.product(*map(range, p["input"])))
    for st in gx_steps:
        m = st["output"]
        assert st["sources"] == sorted(o for o, cells in reads.items() if m in cells)
        assert st["values"] == pytest.approx([ref["grad_x"][(c, *m)] for c in range(C)], abs=1e-9)
        for c, pairs in enumerate(st["pairs"]):
            assert math.fsum(a * b for a, b in pairs) == pytest.approx(st["values"][c], abs=1e-9)
        if m in never:
            assert st["sources"] == [] and st["values"] == [0.0] * C
    assert scene.never_read_shown == never


def test_backward_homework_says_stride_becomes_dilation(backward_scenes):
    scene = backward_scenes["homework-1d"]
    st = scene.backward_steps
    assert st.grad_w_geometry.dilation == (2,) and st.grad_w_geometry.stride == (1,)
    assert any("stride 2 becomes a dilation of 2" in c for c in scene.captions)
    assert any("transposed convolution" in c for c in scene.captions)
    assert st.grad_y_dilated.shape == (1, 5) and st.grad_x_padding == ((2, 2),)
    # columns 3 and 5 (1-based) feed two outputs
    two = [st_["output"][0] + 1 for st_ in scene.steps if st_["part"] == "grad_x" and len(st_["sources"]) == 2]
    assert two == [3, 5]


def test_backward_flip_matters(backward_scenes):
    """A test that can fail: pairing the padded gradient with the UNflipped kernel disagrees."""
    scene = backward_scenes["homework-1d"]
    w = scene.data["w"]
    wrong = 0
    for st in scene.steps:
        if st["part"] != "grad_x":
            continue
        for c, pairs in enumerate(st["pairs"]):
            gs = [a for a, _ in pairs]
            wrong += not math.isclose(math.fsum(g * v for g, v in zip(gs, w[0, c])), st["values"][c])
    assert wrong > 0


def test_bad_parameters_raise_value_error():
    with pytest.raises(ValueError, match="kernel"):
        dry_run("conv", params((3,), (4,), stride=2))
    with pytest.raises(ValueError, match="axes"):
        dry_run("conv", params((4, 4, 4), (2, 2, 2)))
    with pytest.raises(ValueError, match="kind"):
        dry_run("nope", HOMEWORK)


# ---- real renders (low quality) --------------------------------------------------------------------

@pytest.mark.render
@pytest.mark.parametrize("kind", ["conv", "conv-backward"])
def test_render_homework_video(tmp_path, kind, forward_scenes, backward_scenes):
    import av

    from scenes.render import render_animation
    out = tmp_path / f"{kind}.mp4"
    render_animation(kind, HOMEWORK, out, "mp4", quality="low", progress=False)
    dry = (forward_scenes if kind == "conv" else backward_scenes)["homework-1d"]
    planned, plays = dry.renderer.time, dry.renderer.num_plays
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (854, 480)
        assert s.average_rate == 15
        n = sum(1 for _ in c.decode(s))
    assert 5.0 < n / 15 < 40.0
    # the video lasts as long as the scene planned (each play rounds to whole frames)
    assert abs(n / 15 - planned) <= plays / 15 + 1e-9


@pytest.mark.render
def test_render_png_still(tmp_path):
    from PIL import Image

    from scenes.render import render_animation
    out = tmp_path / "still.png"
    render_animation("conv-backward", GEOMETRIES["2d-strided-dilated-padded"], out, "png", progress=False)
    img = Image.open(out)
    assert img.size == (854, 480)
    # not blank: the still shows the grids (many distinct colours)
    assert len(img.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 50
