"""Convolution geometry: output shapes, validation, formula strings, unread inputs and windows.

Oracles: the closed-form formula evaluated from the printed string, PyTorch (which geometries it
accepts and the shapes it produces) and naive Python loops over every output position and tap.
"""
from __future__ import annotations

import html.parser
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tests.oracles import torch_or_skip
from viz.conv import (FORMULA, TRANSPOSE_FORMULA, ConvGeometry, conv, conv_backward, conv_geometry,
                      conv_output_shape, conv_transpose_geometry, conv_transpose_output_shape, windows)


def examples(n: int) -> int:
    """n examples, or more under a heavier hypothesis profile (VIZ_HYPOTHESIS=thorough)."""
    return max(n, settings().max_examples)


# ---------------------------------------------------------------------------------------------------
# Worked examples (MATH.md section 1 and the edge cases)

@pytest.mark.parametrize("in_shape,kernel,stride,padding,dilation,out", [
    ((21, 12), (4, 5), 4, 0, 1, (5, 2)),                  # section 1
    ((7, 7), (3, 2), (2, 1), 0, (1, 3), (3, 4)),           # section 1
    ((7,), 3, 2, 0, 1, (3,)),                              # homework 1-D: R^3, not R^2
    ((8, 8), 3, 2, 0, 1, (3, 3)),                          # edge 1
    ((10, 10), 3, 3, 1, 2, (3, 3)),                        # edge 2
    ((5, 5), 1, 2, 0, 1, (3, 3)),                          # edge 3
    ((6, 6), 4, 1, ((1, 2), (1, 2)), 1, (6, 6)),           # edge 4
    ((6, 6), 4, 1, "same", 1, (6, 6)),                     # edge 4, same padding
    ((5, 5), 3, 2, ((1, 0), (1, 0)), 1, (2, 2)),           # edge 4
    ((4, 4), 2, 1, 3, 1, (9, 9)),                          # edge 6
    ((5, 3), (7, 5), 3, 1, 1, (1, 1)),                     # edge 7
    ((9, 9, 9), 3, 2, 1, 1, (5, 5, 5)),
])
def test_output_shape_examples(in_shape, kernel, stride, padding, dilation, out):
    assert conv_output_shape(in_shape, kernel, stride, padding, dilation) == out
    g = conv_geometry(in_shape, kernel, stride, padding, dilation)
    assert g.out_shape == out
    # the forward pass produces exactly that shape
    rng = np.random.default_rng(0)
    k = g.kernel
    y = conv(rng.standard_normal((2, 3, *in_shape)), rng.standard_normal((4, 3, *k)),
             stride=stride, padding=padding, dilation=dilation)
    assert y.shape == (2, 4, *out)


def test_same_padding_is_asymmetric_extra_after():
    g = conv_geometry((6, 6), 4, padding="same")
    assert g.padding == ((1, 2), (1, 2))
    assert conv_geometry((7,), 4, padding="same", dilation=2).padding == ((3, 3),)
    assert conv_geometry((7,), 2, padding="same", dilation=3).padding == ((1, 2),)
    assert conv_geometry((7,), 3, padding="valid").padding == ((0, 0),)
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1.*stride 2 on axis 1"):
        conv_geometry((7,), 3, stride=2, padding="same")


def test_edge_8_too_small_is_an_error_not_size_1():
    # Truncation toward zero would give int((3 - 4)/2) + 1 = 1; floor gives 0 windows: invalid.
    assert int((3 - 4) / 2) + 1 == 1
    with pytest.raises(ValueError, match=r"kernel too large on axis 1: .* = 4 must be <= padded input .* = 3"):
        conv_output_shape((3,), 4, 2, 0)


def test_padding_forms():
    g = conv_geometry((8, 8), 3, padding=(1, (0, 2)))
    assert g.padding == ((1, 1), (0, 2))
    assert conv_geometry((8, 8), 3, padding=((1, 2), (3, 0))).padding == ((1, 2), (3, 0))
    assert conv_geometry(8, 3, padding=((1, 2),)).padding == ((1, 2),)
    assert conv_geometry((8, 8), 3, padding=np.int64(2)).padding == ((2, 2), (2, 2))
    with pytest.raises(ValueError, match=r"for \(lo, hi\) pairs nest them: \(\(1, 2\),\)"):
        conv_geometry((8,), 3, padding=(1, 2))


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_shape=(7, 7), kernel=3, stride=(1, 0)), r"^stride must be >= 1 on axis 2 \(got 0\)$"),
    (dict(in_shape=(7,), kernel=3, dilation=0), r"^dilation must be >= 1 on axis 1 \(got 0\)$"),
    (dict(in_shape=(7,), kernel=3, padding=-1), r"^padding must be >= 0 on axis 1 \(got \(lo, hi\) = \(-1, -1\)\)$"),
    (dict(in_shape=(7, 0), kernel=1), r"^input size must be >= 1 on axis 2 \(got 0\)$"),
    (dict(in_shape=(7,), kernel=0), r"^kernel size must be >= 1 on axis 1 \(got 0\)$"),
    (dict(in_shape=(7, 7), kernel=(3, 3, 3)), r"^kernel must have 2 entries, one per spatial axis \(got 3"),
    (dict(in_shape=(7, 7), kernel=3, stride=(1, 1, 1)), r"^stride must have 2 entries"),
    (dict(in_shape=(7, 7), kernel=3, padding=(1, 1, 1)), r"^padding must have 2 entries"),
    (dict(in_shape=(7,), kernel=3, padding="full"), r"^padding must be an int, .*'valid' or 'same'"),
    (dict(in_shape=(7,), kernel=2.5), r"^kernel must be an int or a tuple of 1 ints"),
    (dict(in_shape=(7, 3), kernel=(3, 4)), r"^kernel too large on axis 2"),
    (dict(in_shape=(), kernel=3), r"^in_shape must be a non-empty tuple of ints"),
])
def test_invalid_geometry_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv_geometry(**kwargs)


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_shape=(3,), kernel=3, stride=2, output_padding=2),
     r"^output_padding must be >= 0 and smaller than stride or dilation \(< max\(s, d\) = 2\) on axis 1 \(got 2\)$"),
    (dict(in_shape=(3,), kernel=3, stride=1, output_padding=1), r"output_padding must be >= 0"),
    (dict(in_shape=(3,), kernel=3, stride=2, output_padding=-1), r"output_padding must be >= 0"),
    (dict(in_shape=(1,), kernel=3, padding=2), r"^padding too large on axis 1: .* = -1 must be >= 1$"),
    (dict(in_shape=(3,), kernel=3, padding="same"), r"^padding must be an int, per-axis ints or \(lo, hi\) pairs for a transposed"),
])
def test_invalid_transposed_geometry_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv_transpose_geometry(**kwargs)


def test_output_padding_below_dilation_is_allowed_like_torch():
    # torch: output_padding must be smaller than the stride OR the dilation.
    assert conv_transpose_output_shape((3,), 3, stride=2, dilation=3, output_padding=2) == (13,)
    with pytest.raises(ValueError):
        conv_transpose_output_shape((3,), 3, stride=2, dilation=2, output_padding=2)


def test_transposed_output_padding_restores_8x8():
    g = conv_geometry((8, 8), 3, 2)                            # edge 1: 8x8 -> 3x3
    assert g.remainder == (1, 1)
    assert conv_transpose_output_shape((3, 3), 3, 2) == (7, 7)  # the floor dropped a row and a column
    assert conv_transpose_output_shape((3, 3), 3, 2, output_padding=1) == (8, 8)
    t = g.transpose()
    assert t.transposed and t.output_padding == (1, 1) and t.out_shape == (8, 8)
    assert t.formula(0) == "(3 - 1)*2 - 0 - 0 + 1*(3-1) + 1 + 1 = 8"


def test_hand_built_geometry_must_be_consistent():
    g = conv_geometry((21, 12), (4, 5), 4)
    assert ConvGeometry(g.in_shape, g.kernel, g.stride, g.dilation, g.padding, g.out_shape) == g
    with pytest.raises(ValueError, match=r"out_shape must be \(5, 2\)"):
        ConvGeometry(g.in_shape, g.kernel, g.stride, g.dilation, g.padding, (6, 2))


# ---------------------------------------------------------------------------------------------------
# Formula strings and unread inputs

def test_formula_strings_homework():
    g = conv_geometry((21, 12), (4, 5), 4)
    assert g.formula(0) == "floor((21 + 0 + 0 - 1*(4-1) - 1)/4) + 1 = 5"
    assert g.formula(1) == "floor((12 + 0 + 0 - 1*(5-1) - 1)/4) + 1 = 2"
    g = conv_geometry((7, 7), (3, 2), (2, 1), 0, (1, 3))
    assert g.formula(0) == "floor((7 + 0 + 0 - 1*(3-1) - 1)/2) + 1 = 3"
    assert g.formula(1) == "floor((7 + 0 + 0 - 3*(2-1) - 1)/1) + 1 = 4"
    assert conv_geometry(7, 3, 2).formula(0) == "floor((7 + 0 + 0 - 1*(3-1) - 1)/2) + 1 = 3"
    assert conv_geometry(5, 3, 2, ((1, 0),)).formula(0) == "floor((5 + 1 + 0 - 1*(3-1) - 1)/2) + 1 = 2"
    with pytest.raises(ValueError, match=r"axis must be an int in 0\.\.1"):
        g.formula(2)


def _eval_formula(text: str) -> tuple[int, int]:
    left, right = text.split(" = ")
    return eval(left, {"__builtins__": {}}, {"floor": math.floor}), int(right)


@pytest.mark.parametrize("in_shape,kernel,stride,padding,dilation,unread", [
    ((8, 8), 3, 2, 0, 1, [[7], [7]]),                      # edge 1: last row/col
    ((10, 10), 3, 3, 1, 2, [[0, 8], [0, 8]]),              # edge 2: interior rows too
    ((5, 5), 1, 2, 0, 1, [[1, 3], [1, 3]]),                # edge 3
    ((21, 12), (4, 5), 4, 0, 1, [[20], [9, 10, 11]]),
    ((7,), 3, 2, 0, 1, [[]]),
    ((4, 4), 2, 1, 3, 1, [[], []]),
])
def test_unread(in_shape, kernel, stride, padding, dilation, unread):
    g = conv_geometry(in_shape, kernel, stride, padding, dilation)
    assert [g.unread(a) for a in range(g.ndim)] == unread
    w = windows(in_shape, kernel, stride, padding, dilation)
    assert w.never_read == sorted(p for p in itertools.product(*map(range, in_shape))
                                  if any(p[a] in unread[a] for a in range(len(in_shape))))


def test_str_and_html_are_1_based_and_well_formed():
    g = conv_geometry((10, 10), 3, 3, 1, 2)
    text = str(g)
    assert text.splitlines()[0] == ("conv 2-D: in 10x10, kernel 3x3, stride 3x3, dilation 2x2, "
                                    "padding (1,1)x(1,1) -> out 3x3")
    assert "axis 1: floor((10 + 1 + 1 - 2*(3-1) - 1)/3) + 1 = 3   never read (1-based): 1, 9" in text
    page = g._repr_html_()
    checker = _TagBalance()
    checker.feed(page)
    assert checker.stack == [] and checker.count["tr"] == 3
    assert checker.cells[:9] == ["1", "10", "3", "3", "2", "(1, 1)", "3",
                                 "floor((10 + 1 + 1 - 2*(3-1) - 1)/3) + 1 = 3", "1, 9"]
    t = conv_transpose_geometry((3,), 3, 2, output_padding=1)
    assert ">a</th>" in t._repr_html_() and "output_padding 1 -> out 8" in str(t)


class _TagBalance(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.count, self.cells = [], {}, []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag == "td":
            self.cells.append("")

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag

    def handle_data(self, data):
        if "td" in self.stack:
            self.cells[-1] += data


def test_to_dict_is_json_and_complete():
    g = conv_geometry((21, 12), (4, 5), 4)
    d = json.loads(json.dumps(g.to_dict(in_channels=6, filters=8, groups=2)))
    assert d == {
        "kind": "conv", "ndim": 2, "in_shape": [21, 12], "kernel": [4, 5], "stride": [4, 4],
        "dilation": [1, 1], "padding": [[0, 0], [0, 0]], "out_shape": [5, 2], "formula": FORMULA,
        "formulas": ["floor((21 + 0 + 0 - 1*(4-1) - 1)/4) + 1 = 5", "floor((12 + 0 + 0 - 1*(5-1) - 1)/4) + 1 = 2"],
        "unread": [[20], [9, 10, 11]], "index_base": 0, "in_channels": 6, "filters": 8, "groups": 2,
        "weight_shape": [8, 3, 4, 5], "bias_shape": [8], "input_array_shape": [6, 21, 12],
        "output_array_shape": [8, 5, 2]}
    assert "weight_shape" not in g.to_dict()
    t = conv_transpose_geometry((3, 3), 3, 2, output_padding=1).to_dict(in_channels=4, filters=6, groups=2)
    assert t["kind"] == "conv_transpose" and t["formula"] == TRANSPOSE_FORMULA
    assert t["output_padding"] == [1, 1] and t["weight_shape"] == [4, 3, 3, 3] and t["out_shape"] == [8, 8]
    with pytest.raises(ValueError, match=r"groups must divide in_channels = 6 \(got groups = 4\)"):
        g.weight_shape(6, 8, 4)
    with pytest.raises(ValueError, match=r"groups must divide filters = 9"):
        g.weight_shape(6, 9, 2)
    with pytest.raises(ValueError, match="together"):
        g.to_dict(in_channels=3)


# ---------------------------------------------------------------------------------------------------
# Random geometries, valid and invalid, against PyTorch and the formula

@st.composite
def geometries(draw, max_nd=3, allow_invalid=False):
    """(in_shape, kernel, stride, padding, dilation) with symmetric int padding (what torch takes).

    With allow_invalid, half the draws may hold out-of-range values (0 sizes, stride or dilation 0,
    negative padding, kernels larger than the padded input)."""
    nd = draw(st.integers(1, max_nd))
    bad = allow_invalid and draw(st.booleans())
    in_shape = tuple(draw(st.integers(0 if bad else 1, 9)) for _ in range(nd))
    kernel = tuple(draw(st.integers(0 if bad else 1, 5)) for _ in range(nd))
    stride = tuple(draw(st.integers(0 if bad else 1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(0 if bad else 1, 3)) for _ in range(nd))
    padding = tuple(draw(st.integers(-1 if bad else 0, 4)) for _ in range(nd))
    if not bad:
        # keep the kernel inside the padded input
        in_shape = tuple(max(i, d * (k - 1) + 1 - 2 * p) for i, k, d, p in zip(in_shape, kernel, dilation, padding))
    return in_shape, kernel, stride, padding, dilation


@settings(max_examples=examples(300))
@given(geometries(allow_invalid=True))
def test_output_shape_agrees_with_torch_including_rejections(geo):
    torch = torch_or_skip()
    import torch.nn.functional as F

    in_shape, kernel, stride, padding, dilation = geo
    nd = len(in_shape)
    try:
        mine = conv_output_shape(in_shape, kernel, stride, padding, dilation)
    except ValueError:
        mine = None
    fn = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    try:
        y = fn(torch.zeros(1, 1, *in_shape, dtype=torch.float64), torch.zeros(1, 1, *kernel, dtype=torch.float64),
               stride=stride, padding=padding, dilation=dilation)
        theirs = tuple(y.shape[2:])
    except RuntimeError:
        theirs = None
    assert mine == theirs
    if mine is not None:                 # and the forward pass produces exactly that shape
        assert conv(np.zeros((1, 1, *in_shape)), np.zeros((1, 1, *kernel)), stride=stride, padding=padding,
                    dilation=dilation).shape[2:] == mine


@settings(max_examples=examples(300))
@given(geometries(allow_invalid=True), st.lists(st.integers(-1, 3), min_size=3, max_size=3))
def test_transposed_output_shape_agrees_with_torch_including_rejections(geo, out_pad):
    torch = torch_or_skip()
    import torch.nn.functional as F

    in_shape, kernel, stride, padding, dilation = geo
    nd = len(in_shape)
    out_pad = tuple(out_pad[:nd])
    try:
        mine = conv_transpose_output_shape(in_shape, kernel, stride, padding, dilation, out_pad)
    except ValueError:
        mine = None
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]
    try:
        y = fn(torch.zeros(1, 1, *in_shape, dtype=torch.float64), torch.zeros(1, 1, *kernel, dtype=torch.float64),
               stride=stride, padding=padding, output_padding=out_pad, dilation=dilation)
        theirs = tuple(y.shape[2:])
    except RuntimeError:
        theirs = None
    assert mine == theirs, (mine, theirs)


@settings(max_examples=examples(200))
@given(geometries(), st.data())
def test_formula_strings_evaluate_to_the_output_size(geo, data):
    in_shape, kernel, stride, padding, dilation = geo
    g = conv_geometry(in_shape, kernel, stride, padding, dilation)
    for a in range(g.ndim):
        value, printed = _eval_formula(g.formula(a))
        assert value == printed == g.out_shape[a]
    out_pad = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    try:
        t = conv_transpose_geometry(g.out_shape, kernel, stride, padding, dilation, out_pad)
    except ValueError:
        return
    for a in range(t.ndim):
        value, printed = _eval_formula(t.formula(a))
        assert value == printed == t.out_shape[a]


@settings(max_examples=examples(150))
@given(geometries())
def test_transpose_maps_back_onto_the_input(geo):
    g = conv_geometry(*geo)
    t = g.transpose()
    assert t.in_shape == g.out_shape and t.out_shape == g.in_shape
    assert all(0 <= a < s for a, s in zip(t.output_padding, g.stride))


# ---------------------------------------------------------------------------------------------------
# Windows against a naive loop, and against the gradient's zeros

def naive_windows(g):
    """Loop over every output position and tap: indices, padding mask, read counts."""
    idx = np.zeros((*g.out_shape, *g.kernel, g.ndim), dtype=int)
    is_pad = np.zeros((*g.out_shape, *g.kernel), dtype=bool)
    count = np.zeros(g.in_shape, dtype=int)
    for o in itertools.product(*map(range, g.out_shape)):
        for j in itertools.product(*map(range, g.kernel)):
            m = tuple(o[a] * g.stride[a] + j[a] * g.dilation[a] - g.padding[a][0] for a in range(g.ndim))
            idx[o + j] = m
            if all(0 <= m[a] < g.in_shape[a] for a in range(g.ndim)):
                count[m] += 1
            else:
                is_pad[o + j] = True
    return idx, is_pad, count


@st.composite
def asymmetric_geometries(draw):
    """Like `geometries`, with independent (lo, hi) padding per axis."""
    in_shape, kernel, stride, padding, dilation = draw(geometries())
    pairs = tuple((p, draw(st.integers(0, 4))) for p in padding)
    in_shape = tuple(max(i, d * (k - 1) + 1 - lo - hi) for i, k, d, (lo, hi) in zip(in_shape, kernel, dilation, pairs))
    return in_shape, kernel, stride, pairs, dilation


@settings(max_examples=examples(150))
@given(asymmetric_geometries())
def test_windows_match_naive_loop(geo):
    w = windows(*geo)
    idx, is_pad, count = naive_windows(w.geometry)
    np.testing.assert_array_equal(w.indices, idx)
    np.testing.assert_array_equal(w.is_padding, is_pad)
    np.testing.assert_array_equal(w.read_count, count)
    assert w.never_read == [tuple(p) for p in np.argwhere(count == 0)]
    # never_read is the product of the per-axis unread sets
    g = w.geometry
    unread = [set(g.unread(a)) for a in range(g.ndim)]
    assert w.never_read == [p for p in itertools.product(*map(range, g.in_shape))
                            if any(p[a] in unread[a] for a in range(g.ndim))]
    assert w.read_count.sum() == (~w.is_padding).sum()


@settings(max_examples=examples(100))
@given(asymmetric_geometries(), st.integers(0, 2**31 - 1))
def test_never_read_inputs_get_exactly_zero_gradient(geo, seed):
    in_shape, kernel, stride, pairs, dilation = geo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *in_shape))
    w = rng.standard_normal((3, 2, *conv_geometry(*geo).kernel)) + 0.1
    y = conv(x, w, stride=stride, padding=pairs, dilation=dilation)
    gx, _ = conv_backward(x, w, rng.standard_normal(y.shape) + 0.1, stride=stride, padding=pairs, dilation=dilation)
    win = windows(*geo)
    zero = np.all(gx == 0.0, axis=0)
    never = np.zeros(in_shape, dtype=bool)
    for p in win.never_read:
        never[p] = True
    assert np.array_equal(zero, never)      # exactly zero where never read, nonzero elsewhere


def test_windows_edge_6_outputs_that_see_only_padding():
    w = windows((4, 4), 2, 1, 3)
    assert w.geometry.out_shape == (9, 9)
    assert w.is_padding[0, 0].all() and w.is_padding[8, 8].all() and not w.is_padding[4, 4].any()
    assert w.reads((0, 0)) == [] and w.reads((3, 3)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert w.never_read == []
    assert w.indices[0, 0, 0, 0].tolist() == [-3, -3]


def test_windows_homework_1d():
    w = windows((7,), 3, 2)
    # windows 1-3, 3-5, 5-7 in the course's 1-based numbering
    assert [[m + 1 for (m,) in w.reads(n)] for n in range(3)] == [[1, 2, 3], [3, 4, 5], [5, 6, 7]]
    assert w.read_count.tolist() == [1, 1, 2, 1, 2, 1, 1]
    with pytest.raises(ValueError, match="forward geometry"):
        conv_transpose_geometry((3,), 3, 2).windows()


def test_transposed_unread_counts_inputs_cropped_away():
    # A transposed convolution's input m feeds outputs m*s + j*d - p_lo; with heavy cropping some
    # inputs feed nothing.
    t = conv_transpose_geometry((4,), 1, stride=3, padding=2)
    assert t.out_shape == (6,)
    assert t.unread(0) == [0, 3]       # they feed outputs -2 and 7 only, both cropped
    assert conv_transpose_geometry((3,), 3, 2).unread(0) == []
