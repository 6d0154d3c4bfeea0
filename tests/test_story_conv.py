"""The convolution Stories say what the reference computes, checked against PyTorch and the closed form.

Windows come from the closed form m = o*s + j*d - p_lo (plain loops here, not viz.windows); values
and gradients from torch.nn.functional.conv1d/conv2d and autograd in float64; the products each line
shows must add up to the value it states; every caption claim must hold (and a tampered one fails).
"""
from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from viz.app import registry  # noqa: E402
from viz.story import conv as SC  # noqa: E402
from viz.story import conv_backward as SB  # noqa: E402
from viz.story.core import Story  # noqa: E402
from viz.runs import example_data  # noqa: E402
from viz.conv import conv_geometry  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def params(input, kernel, stride=1, padding=0, dilation=1, channels=1, values="int", seed=0, bias=False):
    return dict(input=tuple(input), kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                channels=channels, values=values, seed=seed, bias=bias)


# The MATH.md edge cases, the homework, asymmetric padding, several channels, floats, bias.
CASES = {
    "homework": params((7,), 3, stride=2, channels=5),
    "unread-last-row": params((8, 8), 3, stride=2, seed=4),
    "unread-interior": params((10, 10), 3, stride=3, dilation=2, padding=1, seed=5),
    "kernel-1-stride-2": params((5, 5), 1, stride=2),
    "same-asymmetric": params((6, 6), 4, padding=((1, 2), (1, 2)), seed=2),
    "asymmetric-1-0": params((5, 5), 3, stride=2, padding=((1, 0), (1, 0)), channels=2, values="float"),
    "only-padding-windows": params((4, 4), 2, padding=3, seed=6),
    "kernel-is-padded-input": params((5, 3), (7, 5), stride=3, padding=1),
    "1d-asymmetric-bias": params((6,), 4, padding=((1, 2),), channels=2, seed=1, bias=True),
    "2d-channels-dilated-bias": params((6, 6), 3, stride=2, padding=1, dilation=2, channels=3, seed=7,
                                       values="float", bias=True),
}


# ---- independent expectations ------------------------------------------------------------------------

def geometry(p):
    nd = len(p["input"])
    per = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    pad = p["padding"]
    pads = [(pad, pad)] * nd if isinstance(pad, int) else [(q, q) if isinstance(q, int) else tuple(q) for q in pad]
    k, s, d = per(p["kernel"]), per(p["stride"]), per(p["dilation"])
    out = tuple((p["input"][a] + pads[a][0] + pads[a][1] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(nd))
    return nd, k, s, d, pads, out


def naive_windows(p):
    """For every output o (row-major): the real taps and the padding taps, in drawn (padded) coordinates."""
    nd, k, s, d, pads, out = geometry(p)
    res = {}
    for o in itertools.product(*map(range, out)):
        real, pad = [], []
        for j in itertools.product(*map(range, k)):
            m = tuple(o[a] * s[a] + j[a] * d[a] - pads[a][0] for a in range(nd))
            drawn = tuple(m[a] + pads[a][0] for a in range(nd))
            (real if all(0 <= m[a] < p["input"][a] for a in range(nd)) else pad).append(drawn)
        res[o] = real, pad
    read = {tuple(c - pads[a][0] for a, c in enumerate(cell)) for real, _ in res.values() for cell in real}
    never = [m for m in itertools.product(*map(range, p["input"])) if m not in read]
    return res, never


def oracle(p):
    """y, grad_x, grad_w, grad_b by PyTorch autograd in float64 on the story's own example data."""
    nd, k, s, d, pads, out = geometry(p)
    data = example_data(p["input"], p["channels"], k, out, p["seed"], p["values"])
    x = torch.tensor(data["x"], dtype=torch.float64, requires_grad=True)
    w = torch.tensor(data["w"], dtype=torch.float64, requires_grad=True)
    b = (torch.tensor(SC.example_bias(p["seed"], p["values"]), dtype=torch.float64, requires_grad=True)
         if p["bias"] else None)
    flat = [v for pair in reversed(pads) for v in pair]           # F.pad: last axis first
    y = (F.conv1d if nd == 1 else F.conv2d)(F.pad(x[None], flat), w, b, stride=s, dilation=d)[0]
    y.backward(torch.tensor(data["grad_y"], dtype=torch.float64))
    return {"y": y.detach().numpy()[0], "grad_x": x.grad.numpy(), "grad_w": w.grad.numpy()[0],
            "grad_b": None if b is None else b.grad.numpy(), "x": data["x"]}


def check_lines(step, value_of):
    """Every products line: its factors multiply and add up to the value it states (last number);
    a line lists its terms iff it has at most MAX_TERMS_INLINE of them."""
    for line in step.lines:
        m = re.search(r"Σ of (\d+) products = ", line.text)
        if m:
            assert int(m.group(1)) > SC.MAX_TERMS_INLINE
            assert line.numbers[0] == int(m.group(1))
        elif "·" in line.text and " = " in line.text and "(bias)" not in line.text:
            *factors, total = line.numbers
            assert len(factors) // 2 <= SC.MAX_TERMS_INLINE
            assert math.fsum(a * b for a, b in zip(factors[::2], factors[1::2])) == pytest.approx(total, abs=1e-9)
    for w in step.writes:
        assert w.value == pytest.approx(value_of(w), abs=1e-9)


# ---- forward -----------------------------------------------------------------------------------------

def check_forward(p):
    s = SC.forward_story(p)
    ref = oracle(p)
    wins, never = naive_windows(p)
    C = p["channels"]
    fwd = [st_ for st_ in s.steps if st_.part == "forward"]
    assert [tuple(st_.data["output"]) for st_ in fwd] == list(wins)
    for st_ in fwd:
        o = tuple(st_.data["output"])
        real, pad = wins[o]
        assert sorted(st_.lit_cells("x", "window")) == sorted((c, *t) for c in range(C) for t in real)
        assert sorted(st_.lit_cells("x", "padding_tap")) == sorted((c, *t) for c in range(C) for t in pad)
        assert st_.lit_cells("y", "output") == (o,)
        assert [w.cell for w in st_.writes] == [o]
        check_lines(st_, lambda w: ref["y"][w.cell])
        # the sum line adds the per-channel sums (and the bias) to y
        assert st_.lines[-1].numbers[-1] == pytest.approx(ref["y"][o], abs=1e-9)
        if p["bias"]:
            assert st_.lit_cells("b", "bias") == ((0,),)
            assert any("(bias)" in line.text for line in st_.lines)
    assert np.allclose(s.grid("y").array(), ref["y"], atol=1e-9)
    # the drawn input is the padded x, its mask the padding
    x = s.grid("x")
    nd, k, _, _, pads, _ = geometry(p)
    assert np.array_equal(x.array(), np.pad(ref["x"], [(0, 0)] + [tuple(q) for q in pads]))
    mask = np.asarray(x.padding).reshape(x.shape)
    assert mask.sum() == C * (math.prod(x.shape[1:]) - math.prod(p["input"]))
    last = s.steps[-1]
    assert (last.part == "never_read") == bool(never)      # a closing step only when something is unread
    lit = last.lit_cells("x", "never_read") if never else ()
    assert sorted(lit) == sorted((c, *(m[a] + pads[a][0] for a in range(nd))) for c in range(C) for m in never)
    assert all(ref["grad_x"][(c, *m)] == 0.0 for c in range(C) for m in never)
    assert s.failed_claims() == []
    assert Story.from_json(s.to_json()) == s
    return s


@pytest.mark.parametrize("name", list(CASES))
def test_forward_story_against_torch(name):
    check_forward(CASES[name])


def test_homework_story():
    """MATH.md 2(a): R^3, windows 1-3, 3-5, 5-7, five channels summed; the window said in words."""
    s = check_forward(CASES["homework"])
    fwd = s.steps
    assert len(fwd) == 3 and all(st_.part == "forward" for st_ in fwd)    # every input is read: no 4th step
    assert [sorted({c[1] for c in st_.lit_cells("x", "window")}) for st_ in fwd] == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    assert [st_.lines[0].text for st_ in fwd] == ["y[1] reads x[·, 1..3]", "y[2] reads x[·, 3..5]",
                                                "y[3] reads x[·, 5..7]"]
    assert s.formula == ("output length: floor((7 + 0 + 0 − 1·(3−1) − 1)/2) + 1 = 3",)
    assert all(len(st_.data["channel_sums"]) == 5 for st_ in fwd)
    assert s.captions[-1].text == "Every input is read by at least one window."


def test_never_read_words_and_claim():
    s = check_forward(CASES["unread-last-row"])
    last = s.steps[-1]
    assert last.lines[0].text == "never read: 15 input positions" and last.lines[0].numbers == (15.0,)
    assert last.lines[1].text == "x[·, (1,8), (2,8), (3,8), (4,8), (5,8), (6,8) and 9 more]"
    claim = next(c for c in s.claims if c.id == "never-read-zero-gradient")
    assert claim.holds() and claim.lhs == 0.0


def test_collapse_rule_is_one_rule():
    """3x3 on one channel: rows of 3 products; 5 channels of 3x3: 9 terms > 6 collapse; 1-D k=7 collapses."""
    one = SC.forward_story(params((5, 5), 3))
    assert [line.text.count("·") for line in one.steps[0].lines[2:5]] == [3, 3, 3]
    many = SC.forward_story(params((5, 5), 3, channels=5))
    assert all("Σ of 9 products" in line.text for line in many.steps[0].lines[1:6])
    long = SC.forward_story(params((9,), 7))
    assert "Σ of 7 products" in long.steps[0].lines[1].text
    six = SC.forward_story(params((9,), 6))
    assert six.steps[0].lines[1].text.count("·") == 6


def test_claims_can_fail():
    """A test that can fail: a story whose shown sum disagrees with y breaks its claim."""
    import dataclasses
    s = SC.forward_story(CASES["homework"])
    c = s.captions[0].claims[0]
    bad = dataclasses.replace(c, lhs=abs(c.lhs) + 1.0)
    assert c.holds() and not bad.holds()


def test_weights_speed_up_long_parts():
    s = SC.forward_story(params((28, 28), 3))
    w = [st_.weight for st_ in s.steps if st_.part == "forward"]
    assert len(w) == 676 and w[:SC.FULL_STEPS] == [1.0] * SC.FULL_STEPS
    assert all(v < 1 for v in w[SC.FULL_STEPS:])
    assert sum(w[SC.FULL_STEPS:]) <= SC.MAX_FAST_WEIGHT + 1e-9
    assert [st_.data["full"] for st_ in s.steps[:6]] == [True] * 4 + [False] * 2
    assert all(v == 1.0 for v in (st_.weight for st_ in SC.forward_story(params((9,), 1)).steps))


geometries = st.integers(1, 2).flatmap(lambda nd: st.tuples(
    st.tuples(*[st.integers(1, 9)] * nd), st.tuples(*[st.integers(1, 4)] * nd),
    st.tuples(*[st.integers(1, 3)] * nd), st.tuples(*[st.integers(1, 3)] * nd),
    st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * nd),
    st.integers(1, 3), st.sampled_from(["int", "float"]), st.booleans(), st.integers(0, 50)))


def _valid(g):
    i, k, s, d, pads, C, values, bias, seed = g
    try:
        conv_geometry(i, k, s, pads, d)
    except ValueError:
        return None
    return params(i, k, stride=s, padding=pads, dilation=d, channels=C, values=values, seed=seed, bias=bias)


@settings(max_examples=40)
@given(geometries)
def test_forward_story_hypothesis(g):
    p = _valid(g)
    if p is not None:
        check_forward(p)


# ---- backward ----------------------------------------------------------------------------------------

def check_backward(p):
    s = SB.backward_story(p)
    ref = oracle(p)
    wins, never = naive_windows(p)
    nd, k, st_, d, pads, out = geometry(p)
    C = p["channels"]
    gw = [x for x in s.steps if x.part == "grad_w"]
    gx = [x for x in s.steps if x.part == "grad_x"]
    assert [tuple(x.data["output"]) for x in gw] == list(itertools.product(*map(range, k)))
    for x in gw:
        j = tuple(x.data["output"])
        # tap j reads input o*s + j*d - p_lo for every output o
        cells = [tuple(o[a] * st_[a] + j[a] * d[a] for a in range(nd)) for o in wins]
        real = [c for c in cells if all(pads[a][0] <= c[a] < pads[a][0] + p["input"][a] for a in range(nd))]
        assert sorted(x.lit_cells("x", "window")) == sorted((c, *t) for c in range(C) for t in real)
        assert sorted(x.lit_cells("grad_w", "output")) == [(c, *j) for c in range(C)]
        check_lines(x, lambda w: ref["grad_w"][w.cell])
    assert [tuple(x.data["output"]) for x in gx] == list(itertools.product(*map(range, p["input"])))
    for x in gx:
        m = tuple(x.data["output"])
        drawn = tuple(m[a] + pads[a][0] for a in range(nd))
        assert [tuple(v) for v in x.data["sources"]] == sorted(o for o, (real, _) in wins.items() if drawn in real)
        # the lit entries of the dilated, padded gradient are exactly the sources
        assert len(x.lit_cells("grad_y_padded", "window")) == len(x.data["sources"])
        check_lines(x, lambda w: ref["grad_x"][w.cell])
        if m in never:
            assert x.data["sources"] == [] and all(w.value == 0.0 for w in x.writes)
    assert np.allclose(s.grid("grad_w").array(), ref["grad_w"], atol=1e-9)
    assert np.allclose(s.grid("grad_x").array(), ref["grad_x"], atol=1e-9)
    gb = [x for x in s.steps if x.part == "grad_b"]
    if p["bias"]:
        assert len(gb) == 1 and gb[0].writes[0].value == pytest.approx(ref["grad_b"][0], abs=1e-9)
        assert np.allclose(s.grid("grad_b").array(), ref["grad_b"])
        assert len(gb[0].lit_cells("grad_y", "window")) == math.prod(out)
    else:
        assert gb == []
    lit = s.steps[-1].lit_cells("grad_x", "never_read") if never else ()
    assert (s.steps[-1].part == "never_read") == bool(never)
    assert sorted(lit) == sorted((c, *m) for c in range(C) for m in never)
    assert s.failed_claims() == []
    assert Story.from_json(s.to_json()) == s
    return s


@pytest.mark.parametrize("name", list(CASES))
def test_backward_story_against_autograd(name):
    check_backward(CASES[name])


def test_backward_homework_words():
    s = check_backward(CASES["homework"])
    assert "the forward stride 2 becomes a dilation of 2" in s.formula[0]
    assert "dilate ∂ℓ/∂y by 2, pad by (2,2)" in s.formula[1]
    two = [x.data["output"][0] + 1 for x in s.steps if x.part == "grad_x" and len(x.data["sources"]) == 2]
    assert two == [3, 5]                      # columns 3 and 5 feed two outputs (MATH.md 2(c))
    assert s.steps[0].lines[0].text == "∂ℓ/∂w[·, 1] reads x[·, 1, 3, 5]"
    dil = s.grid("grad_y_dilated")
    assert dil.shape == (5,) and dil.muted == (False, True, False, True, False)


@settings(max_examples=25)
@given(geometries)
def test_backward_story_hypothesis(g):
    p = _valid(g)
    if p is not None:
        check_backward(p)


# ---- registry, CLI, bias and viz shape ---------------------------------------------------------------

def test_bias_agrees_with_viz_shape():
    p = CASES["1d-asymmetric-bias"]
    s = SC.forward_story(p)
    g = conv_geometry(p["input"], p["kernel"], p["stride"], p["padding"], p["dilation"])
    shape = g.to_dict(in_channels=p["channels"], filters=1)
    assert list(s.grid("b").shape) == shape["bias_shape"]
    assert list(s.grid("w").shape) == shape["weight_shape"][1:]
    assert list(s.grid("y").shape) == shape["output_array_shape"][1:]
    assert "with bias" in s.title
    assert all(name not in [gr.name for gr in SC.forward_story({**p, "bias": False}).grids] for name in ["b"])


def test_registry_builds_the_stories():
    for key in ("animate conv", "animate conv-backward"):
        kind = registry.get(key)
        values = kind.validate({"input": "7", "channels": 5, "kernel": 3, "stride": 2})
        assert values["bias"] is False and values["step_time"] == 3.0
        s = kind.build_story(values)
        assert s.kind == key and "quality" not in s.params and "step_time" not in s.params
    with pytest.raises(registry.ParamError, match="up to 2 axes"):
        registry.get("animate conv").validate({"input": "4x4x4", "kernel": 2})


def test_cli_writes_the_homework_story(tmp_path):
    out = tmp_path / "hw.story.json"
    r = subprocess.run([sys.executable, "-m", "viz", "animate", "conv", "--input", "7", "--channels", "5",
                        "--kernel", "3", "--stride", "2", "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    s = Story.from_dict(data)
    steps = [x for x in s.steps if x.part == "forward"]
    assert len(steps) == 3
    # 0-based in the data: windows 0..2, 2..4, 4..6 (inputs 1-3, 3-5, 5-7 as a person counts them)
    assert [sorted({c[1] for c in x.lit_cells("x", "window")}) for x in steps] == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    ref = oracle(CASES["homework"])
    assert [x.writes[0].value for x in steps] == pytest.approx(list(ref["y"]), abs=1e-12)
    # same parameters, same bytes
    out2 = tmp_path / "again.story.json"
    subprocess.run([sys.executable, "-m", "viz", "animate", "conv", "--input", "7", "--channels", "5",
                    "--kernel", "3", "--stride", "2", "-o", str(out2)], check=True, cwd=ROOT, capture_output=True)
    assert out.read_bytes() == out2.read_bytes()


# ---- checks that can fail: a wrong pairing of factors is caught --------------------------------------

def test_products_check_detects_a_flipped_kernel():
    """Pairing the window with the kernel reversed gives other sums: the line check would fail."""
    s = SC.forward_story(CASES["homework"])
    wrong = 0
    for step in s.steps:
        for line in step.lines[1:-1]:                       # the five channel lines
            *f, total = line.numbers
            xs, ws = f[::2], f[1::2]
            wrong += not math.isclose(math.fsum(a * b for a, b in zip(xs, ws[::-1])), total)
    assert wrong > 0


def test_backward_pairs_the_flipped_kernel():
    """∂ℓ/∂x pairs the padded, dilated gradient with flip(w): the unflipped kernel disagrees."""
    s = SB.backward_story(CASES["homework"])
    w = s.grid("w").array()
    wrong = 0
    for step in (x for x in s.steps if x.part == "grad_x"):
        for c, line in enumerate(step.lines[1:]):
            *f, total = line.numbers
            assert f[1::2] == list(s.grid("w_flipped").array()[c])
            wrong += not math.isclose(math.fsum(g * v for g, v in zip(f[::2], w[c])), total)
    assert wrong > 0


def test_interior_rows_never_read():
    """MATH.md edge case 2: 10x10, k=3, d=2, s=3, p=1: rows and columns 1 and 9 (1-based) unread."""
    s = check_forward(CASES["unread-interior"])
    never = {tuple(m) for m in s.steps[-1].data["never_read"]}
    full_rows = {r for r in range(10) if all((r, c) in never for c in range(10))}
    assert full_rows == {0, 8}


def test_example_data_is_checkable_by_hand():
    d = example_data((7, 7), 2, (3, 3), (4, 4), seed=3, values="float")
    assert np.allclose(d["x"] * 10, np.round(d["x"] * 10)) and np.allclose(d["w"] * 10, np.round(d["w"] * 10))
    i = example_data((7,), 5, (3,), (3,), seed=0, values="int")
    assert set(np.unique(i["w"])) <= {-2.0, -1.0, 1.0, 2.0} and i["x"].min() >= -3 and i["x"].max() <= 3
    assert all(np.array_equal(i[k], example_data((7,), 5, (3,), (3,), seed=0)[k]) for k in i)
    assert SC.example_bias(0, "int")[0] in (-2.0, -1.0, 1.0, 2.0)
    assert SC.example_bias(5, "float")[0] * 10 == round(SC.example_bias(5, "float")[0] * 10)
