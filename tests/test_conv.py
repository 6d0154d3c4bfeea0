"""Convolution numbers: forward, backward and transposed convolution in 1, 2 and 3 spatial dimensions.

Oracles: naive Python loops over every output position and tap, central finite differences, and
PyTorch (F.conv*d, F.conv_transpose*d, autograd) in float64. Kernels are random and asymmetric
(symmetric ones would hide a missing flip). Torch only takes symmetric int padding, so asymmetric
padding is applied to its input with F.pad first.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from tests.oracles import assert_close, central_diff, central_jacobian, torch_or_skip
from viz.conv import (conv, conv_backward, conv_backward_steps, conv_geometry, conv_transpose, dilate, pad,
                      windows)


def examples(n: int) -> int:
    """n examples, or more under a heavier hypothesis profile (VIZ_HYPOTHESIS=thorough)."""
    return max(n, settings().max_examples)


# ---------------------------------------------------------------------------------------------------
# Independent implementations

def naive_conv(x, w, b, stride, pairs, dilation, groups):
    """y[n, f, o] = b[f] + sum over c in f's group and taps j of x[n, c, o*s + j*d - p_lo] w[f, c, j]."""
    n_, c_ = x.shape[:2]
    f_, cg = w.shape[:2]
    k = w.shape[2:]
    nd = len(k)
    out = conv_geometry(x.shape[2:], k, stride, pairs, dilation).out_shape
    y = np.zeros((n_, f_, *out))
    for n, f in itertools.product(range(n_), range(f_)):
        g = f // (f_ // groups)
        for o in itertools.product(*map(range, out)):
            total = 0.0 if b is None else b[f]
            for c in range(cg):
                for j in itertools.product(*map(range, k)):
                    m = tuple(o[a] * stride[a] + j[a] * dilation[a] - pairs[a][0] for a in range(nd))
                    if all(0 <= m[a] < x.shape[2 + a] for a in range(nd)):
                        total += x[(n, g * cg + c) + m] * w[(f, c) + j]
            y[(n, f) + o] = total
    return y


def naive_conv_transpose(x, w, stride, pairs, dilation, output_padding, groups):
    """Scatter: every input x[n, c, i] adds x * w[c, f, j] to y[n, f, i*s + j*d - p_lo] (cropped)."""
    n_, c_ = x.shape[:2]
    fg = w.shape[1]
    k = w.shape[2:]
    nd = len(k)
    cg = c_ // groups
    out = tuple((x.shape[2 + a] - 1) * stride[a] - pairs[a][0] - pairs[a][1] + dilation[a] * (k[a] - 1)
                + output_padding[a] + 1 for a in range(nd))
    y = np.zeros((n_, fg * groups, *out))
    for n, c in itertools.product(range(n_), range(c_)):
        g = c // cg
        for i in itertools.product(*map(range, x.shape[2:])):
            for f, j in itertools.product(range(fg), itertools.product(*map(range, k))):
                m = tuple(i[a] * stride[a] + j[a] * dilation[a] - pairs[a][0] for a in range(nd))
                if all(0 <= m[a] < out[a] for a in range(nd)):
                    y[(n, g * fg + f) + m] += x[(n, c) + i] * w[(c, f) + j]
    return y


def _torch_pad(torch, t, pairs):
    import torch.nn.functional as F

    flat = [v for lo_hi in reversed(pairs) for v in lo_hi]     # F.pad wants the last axis first
    return F.pad(t, flat) if any(flat) else t


def torch_conv(x, w, b, gy, stride, pairs, dilation, groups):
    """y, grad_x, grad_w, grad_b from torch autograd (float64)."""
    torch = torch_or_skip()
    import torch.nn.functional as F

    nd = w.ndim - 2
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    fn = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    yt = fn(_torch_pad(torch, xt, pairs), wt, bt, stride=stride, dilation=dilation, groups=groups)
    yt.backward(torch.tensor(gy))
    return (yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), None if b is None else bt.grad.numpy())


def torch_conv_transpose(x, w, stride, padding, dilation, output_padding, groups):
    torch = torch_or_skip()
    import torch.nn.functional as F

    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[w.ndim - 3]
    return fn(torch.tensor(x), torch.tensor(w), stride=stride, padding=padding, output_padding=output_padding,
              groups=groups, dilation=dilation).numpy()


# ---------------------------------------------------------------------------------------------------
# MATH.md edge cases (also fed to the property tests as explicit examples)

EDGE_CASES = {
    # name: (in_shape, kernel, stride, padding, dilation, out_shape, unread per axis)
    "1: 8x8 k3 s2, last row/col unread": ((8, 8), 3, 2, 0, 1, (3, 3), [[7], [7]]),
    "2: 10x10 k3 d2 s3 p1, rows 0 and 8": ((10, 10), 3, 3, 1, 2, (3, 3), [[0, 8], [0, 8]]),
    "3: 5x5 k1 s2": ((5, 5), 1, 2, 0, 1, (3, 3), [[1, 3], [1, 3]]),
    "4a: 6x6 k4 p(1,2)": ((6, 6), 4, 1, ((1, 2), (1, 2)), 1, (6, 6), [[], []]),
    "4b: 5x5 k3 s2 p(1,0)": ((5, 5), 3, 2, ((1, 0), (1, 0)), 1, (2, 2), [[4], [4]]),
    "5: p=0 crop and lopsided p": ((6, 5), (2, 3), 1, ((0, 2), (3, 0)), 1, (7, 6), [[], []]),
    "6: 4x4 k2 p3": ((4, 4), 2, 1, 3, 1, (9, 9), [[], []]),
    "7: kernel = padded input": ((5, 3), (7, 5), 3, 1, 1, (1, 1), [[], []]),
    "p > d(k-1): crop in grad_x": ((5, 4), 2, (2, 1), ((3, 1), (2, 3)), (1, 2), (4, 7), [[], []]),
}


def edge_case(name, groups=1, batched=True, seed=7):
    """A conv case (same dict as `conv_cases` draws) for one of the EDGE_CASES."""
    in_shape, kernel, stride, padding, dilation, out_shape, _ = EDGE_CASES[name]
    g = conv_geometry(in_shape, kernel, stride, padding, dilation)
    rng = np.random.default_rng(seed)
    n = 2 if batched else 1
    x = rng.standard_normal((n, 2 * groups, *in_shape))
    w = rng.standard_normal((2 * groups, 2, *g.kernel))
    gy = rng.standard_normal((n, 2 * groups, *out_shape))
    if not batched:
        x, gy = x[0], gy[0]
    return dict(x=x, w=w, b=rng.standard_normal(2 * groups), gy=gy, stride=g.stride, padding=g.padding,
                dilation=g.dilation, groups=groups, batched=batched)


def with_edge_cases(test):
    """Run a property test on every edge case too (grouped and unbatched variants alternate)."""
    for i, name in enumerate(EDGE_CASES):
        test = example(edge_case(name, groups=1 + i % 2, batched=i % 3 != 1))(test)
    return test


# ---------------------------------------------------------------------------------------------------
# Random configurations

@st.composite
def conv_cases(draw, max_elems=400, max_nd=3, symmetric=False):
    """A random, valid convolution: shapes, geometry and seeded asymmetric data."""
    nd = draw(st.integers(1, max_nd))
    groups = draw(st.integers(1, 3))
    cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    batched = draw(st.booleans())
    max_i = {1: 12, 2: 7, 3: 5}[nd]
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    if symmetric:
        pairs = tuple((p, p) for p in (draw(st.integers(0, 3)) for _ in range(nd)))
    else:
        pairs = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    in_shape = tuple(max(draw(st.integers(1, max_i)), d * (k - 1) + 1 - lo - hi)
                     for k, d, (lo, hi) in zip(kernel, dilation, pairs))
    c = cg * groups
    if not batched:
        n = 1
    if n * c * np.prod(in_shape) > max_elems:
        in_shape = tuple(max(1, d * (k - 1) + 1 - lo - hi) for k, d, (lo, hi) in zip(kernel, dilation, pairs))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *in_shape))
    w = rng.standard_normal((fg * groups, cg, *kernel))
    b = rng.standard_normal(fg * groups) if draw(st.booleans()) else None
    out = conv_geometry(in_shape, kernel, stride, pairs, dilation).out_shape
    gy = rng.standard_normal((n, fg * groups, *out))
    if not batched:
        x, gy = x[0], gy[0]
    return dict(x=x, w=w, b=b, gy=gy, stride=stride, padding=pairs, dilation=dilation, groups=groups,
                batched=batched)


def _geo(case):
    return dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=case["groups"])


def _batched(case, *arrays):
    return [a if case["batched"] else a[None] for a in arrays]


@settings(max_examples=examples(300))
@given(conv_cases())
@with_edge_cases
def test_forward_and_backward_match_torch(case):
    x, w, b, gy = case["x"], case["w"], case["b"], case["gy"]
    y = conv(x, w, b, **_geo(case))
    gx, gw, gb = conv_backward(x, w, gy, **_geo(case), with_bias=True)
    xb, gyb = _batched(case, x, gy)
    ty, tgx, tgw, tgb = torch_conv(xb, w, b, gyb, case["stride"], case["padding"], case["dilation"], case["groups"])
    if not case["batched"]:
        ty, tgx = ty[0], tgx[0]
    assert_close(y, ty, what="y")
    assert_close(gx, tgx, what="grad_x")
    assert_close(gw, tgw, what="grad_w")
    if b is not None:
        assert_close(gb, tgb, what="grad_bias")
    assert conv_backward(x, w, gy, **_geo(case))[0].shape == x.shape


@settings(max_examples=examples(100))
@given(conv_cases(max_elems=120))
@with_edge_cases
def test_forward_matches_naive_loop(case):
    xb, = _batched(case, case["x"])
    y = conv(xb, case["w"], case["b"], **_geo(case))
    ref = naive_conv(xb, case["w"], case["b"], case["stride"], case["padding"], case["dilation"], case["groups"])
    assert_close(y, ref, what="y")


@settings(max_examples=examples(60))
@given(conv_cases(max_elems=48))
@with_edge_cases
def test_gradients_match_finite_differences(case):
    x, w, b, gy = case["x"], case["w"], case["b"], case["gy"]
    geo = _geo(case)
    gx, gw, gb = conv_backward(x, w, gy, **geo, with_bias=True)
    # L = <conv(x, w, b), gy> has dL/dy = gy
    assert_close(gx, central_diff(lambda v: np.sum(conv(v, w, b, **geo) * gy), x.copy()), rtol=1e-6, atol=1e-7,
                 what="grad_x")
    assert_close(gw, central_diff(lambda v: np.sum(conv(x, v, b, **geo) * gy), w.copy()), rtol=1e-6, atol=1e-7,
                 what="grad_w")
    if b is not None:
        assert_close(gb, central_diff(lambda v: np.sum(conv(x, w, v, **geo) * gy), b.copy()), rtol=1e-6,
                     atol=1e-7, what="grad_bias")


@st.composite
def transpose_cases(draw, max_elems=300):
    case = draw(conv_cases(max_elems=max_elems, symmetric=True))
    g = conv_geometry(case["x"].shape[-len(case["stride"]):], case["w"].shape[2:], case["stride"],
                      case["padding"], case["dilation"])
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(g.stride, g.dilation))
    return case, g, out_pad


def _transpose_inputs(case, g):
    """conv_transpose input: grad_y-shaped data; weight in torch's transposed layout (C_in, F/G, *k)."""
    groups = case["groups"]
    w = case["w"]                                    # (F, C/G, *k) read as (C_in = F, F_out/G = C/G, *k)
    x = case["gy"]
    return x, w, groups


@settings(max_examples=examples(200))
@given(transpose_cases())
def test_conv_transpose_matches_torch(tc):
    case, g, out_pad = tc
    x, w, groups = _transpose_inputs(case, g)
    p = tuple(lo for lo, _ in g.padding)
    xb, = _batched(case, x)
    try:
        y = conv_transpose(x, w, stride=g.stride, padding=p, dilation=g.dilation, output_padding=out_pad,
                           groups=groups)
    except ValueError:                   # padding crops everything: torch must refuse too
        with pytest.raises(RuntimeError, match="too small"):
            torch_conv_transpose(xb, w, g.stride, p, g.dilation, out_pad, groups)
        return
    ref = torch_conv_transpose(xb, w, g.stride, p, g.dilation, out_pad, groups)
    assert_close(y, ref if case["batched"] else ref[0], what="conv_transpose")


@settings(max_examples=examples(60))
@given(transpose_cases(max_elems=100), st.data())
def test_conv_transpose_matches_naive_scatter_with_asymmetric_padding(tc, data):
    case, g, out_pad = tc
    x, w, groups = _transpose_inputs(case, g)
    xb, = _batched(case, x)
    # asymmetric padding crops the output unevenly; keep the output non-empty
    full = tuple((xb.shape[2 + a] - 1) * g.stride[a] + g.dilation[a] * (g.kernel[a] - 1) + out_pad[a] + 1
                 for a in range(g.ndim))
    pairs = []
    for size in full:
        lo = data.draw(st.integers(0, min(3, size - 1)))
        pairs.append((lo, data.draw(st.integers(0, min(3, size - 1 - lo)))))
    bias = np.arange(w.shape[1] * groups) * 0.5
    y = conv_transpose(xb, w, stride=g.stride, padding=tuple(pairs), dilation=g.dilation, output_padding=out_pad,
                       groups=groups, bias=bias)
    ref = naive_conv_transpose(xb, w, g.stride, pairs, g.dilation, out_pad, groups)
    assert_close(y, ref + bias.reshape(-1, *([1] * g.ndim)), what="conv_transpose")


@settings(max_examples=examples(100))
@given(conv_cases())
@with_edge_cases
def test_conv_transpose_is_the_adjoint_of_conv(case):
    # <conv(x, w), v> = <x, conv_transpose(v, w, output_padding = remainder)> for every x, v
    x, w, v = case["x"], case["w"], case["gy"]
    g = conv_geometry(x.shape[-w.ndim + 2:], w.shape[2:], case["stride"], case["padding"], case["dilation"])
    lhs = np.sum(conv(x, w, **_geo(case)) * v)
    back = conv_transpose(v, w, stride=g.stride, padding=g.padding, dilation=g.dilation,
                          output_padding=g.remainder, groups=case["groups"])
    assert back.shape == x.shape
    assert np.isclose(lhs, np.sum(x * back), rtol=1e-10, atol=1e-10)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=examples(80))
@given(st.integers(1, 3), st.data())
def test_same_padding_matches_torch_same(nd, data):
    torch = torch_or_skip()
    import torch.nn.functional as F

    kernel = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
    dilation = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    in_shape = tuple(data.draw(st.integers(1, 6)) for _ in range(nd))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((1, 2, *in_shape))
    w = rng.standard_normal((3, 2, *kernel))
    fn = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    ref = fn(torch.tensor(x), torch.tensor(w), padding="same", dilation=dilation).numpy()
    assert_close(conv(x, w, padding="same", dilation=dilation), ref, what="same")


# ---------------------------------------------------------------------------------------------------
# MATH.md edge cases, written out


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_case(name):
    in_shape, kernel, stride, padding, dilation, out_shape, unread = EDGE_CASES[name]
    g = conv_geometry(in_shape, kernel, stride, padding, dilation)
    assert g.out_shape == out_shape
    assert [g.unread(a) for a in range(g.ndim)] == unread
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, *in_shape))
    w = rng.standard_normal((2, 3, *g.kernel))                  # asymmetric random kernel
    b = rng.standard_normal(2)
    gy = rng.standard_normal((2, 2, *out_shape))
    geo = dict(stride=stride, padding=padding, dilation=dilation)
    y = conv(x, w, b, **geo)
    gx, gw, gb = conv_backward(x, w, gy, **geo, with_bias=True)
    assert y.shape == (2, 2, *out_shape)
    # exactly zero gradient on every unread row/column, nonzero elsewhere
    for a, rows in enumerate(unread):
        zero = np.all(np.moveaxis(gx, 2 + a, 0).reshape(in_shape[a], -1) == 0, axis=1)
        assert np.flatnonzero(zero).tolist() == rows
    # the steps the animation shows give the same numbers
    steps = conv_backward_steps(x, w, gy, **geo)
    assert_close(steps.grad_x, gx, what="steps grad_x")
    assert_close(steps.grad_w, gw, what="steps grad_w")
    # finite differences on a slice of the problem (one batch item) and torch on all of it
    geo1 = dict(geo)
    assert_close(conv_backward(x[0], w, gy[0], **geo1)[0],
                 central_diff(lambda v: np.sum(conv(v, w, **geo1) * gy[0]), x[0].copy()), rtol=1e-6, atol=1e-7)
    ty, tgx, tgw, tgb = torch_conv(x, w, b, gy, g.stride, g.padding, g.dilation, 1)
    assert_close(y, ty, what="y")
    assert_close(gx, tgx, what="grad_x")
    assert_close(gw, tgw, what="grad_w")
    assert_close(gb, tgb, what="grad_b")


def test_edge_1_transposed_needs_output_padding_1_for_8x8():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((1, 2, 3, 3))
    w = rng.standard_normal((2, 4, 3, 3))
    assert conv_transpose(v, w, stride=2).shape == (1, 4, 7, 7)
    y = conv_transpose(v, w, stride=2, output_padding=1)
    assert y.shape == (1, 4, 8, 8)
    assert_close(y, torch_conv_transpose(v, w, 2, 0, 1, 1, 1))
    assert np.all(y[..., 7, :] == 0) and np.all(y[..., :, 7] == 0)    # the restored row/col is all zeros


def test_edge_6_outputs_that_see_only_padding_are_the_bias():
    rng = np.random.default_rng(2)
    y = conv(rng.standard_normal((2, 4, 4)), rng.standard_normal((3, 2, 2, 2)), np.array([1.0, 2.0, 3.0]),
             padding=3)
    assert y.shape == (3, 9, 9)
    assert y[:, 0, 0].tolist() == [1.0, 2.0, 3.0] and y[:, 8, 8].tolist() == [1.0, 2.0, 3.0]


def test_edge_8_too_small_raises_like_torch():
    torch = torch_or_skip()
    import torch.nn.functional as F

    with pytest.raises(ValueError, match="kernel too large on axis 1"):
        conv(np.zeros((1, 3)), np.zeros((1, 1, 4)), stride=2)
    with pytest.raises(RuntimeError):
        F.conv1d(torch.zeros(1, 1, 3), torch.zeros(1, 1, 4), stride=2)


def test_edge_5_zero_padding_crop_is_not_empty():
    a = np.arange(5.0)
    assert a[0:-0].size == 0                        # the bug the edge case warns about
    assert pad(a, [(0, 0)]).tolist() == a.tolist()
    assert pad(a, [(-2, 0)]).tolist() == [2.0, 3.0, 4.0]
    assert pad(a, [(0, -1)]).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert pad(a, [(1, -2)]).tolist() == [0.0, 0.0, 1.0, 2.0]
    assert pad(a, [(-6, 3)]).tolist() == [0.0, 0.0]   # element m is a[m - lo], zero outside
    with pytest.raises(ValueError, match="negative size"):
        pad(a, [(-4, -2)])


# ---------------------------------------------------------------------------------------------------
# The homework (MATH.md section 2): x in R^{5x7}, W in R^{1x5x3}, stride 2

@pytest.fixture
def homework():
    rng = np.random.default_rng(2024)
    return rng.standard_normal((5, 7)), rng.standard_normal((1, 5, 3)), rng.standard_normal(3)


def test_homework_a_output_is_r3(homework):
    x, W, _ = homework
    f = conv(x, W, stride=2)[0]
    assert f.shape == (3,)                                        # not R^2
    # f[n] = sum_c sum_j W[1,c,j] x[c, 2(n-1)+j] (1-based) -> windows 1-3, 3-5, 5-7
    assert_close(f, [np.sum(W[0] * x[:, 2 * n:2 * n + 3]) for n in range(3)])


def test_homework_b_jacobian_wrt_w(homework):
    x, W, _ = homework
    J = central_jacobian(lambda v: conv(x, v, stride=2)[0], W.copy())
    assert J.shape == (3, 1, 5, 3)                                # R^{3 x (1x5x3)}, not R^{5 x ...}
    closed = np.zeros((3, 1, 5, 3))
    for n, c, j in itertools.product(range(3), range(5), range(3)):
        closed[n, 0, c, j] = x[c, 2 * n + j]                      # df[n]/dW[1,c,j] = x[c, 2(n-1)+j]
    assert_close(J, closed, rtol=1e-6, atol=1e-8)
    # and each row is the grad_w of a one-hot upstream gradient
    for n in range(3):
        assert_close(conv_backward(x, W, np.eye(3)[n][None], stride=2)[1], closed[n])


def test_homework_c_jacobian_wrt_x_is_banded(homework):
    x, W, _ = homework
    J = central_jacobian(lambda v: conv(v, W, stride=2)[0], x.copy())
    assert J.shape == (3, 5, 7)                                   # R^{3 x (5x7)}, not R^{2 x (2x7)}
    closed = np.zeros((3, 5, 7))
    for n, c, m in itertools.product(range(3), range(5), range(7)):
        if 0 <= m - 2 * n < 3:
            closed[n, c, m] = W[0, c, m - 2 * n]
    assert_close(J, closed, rtol=1e-6, atol=1e-8)
    feeds = (np.abs(closed).sum(axis=1) > 0).sum(axis=0)          # outputs fed by each column
    assert feeds.tolist() == [1, 1, 2, 1, 2, 1, 1]               # columns 3 and 5 (1-based) feed two
    for n in range(3):
        assert_close(conv_backward(x, W, np.eye(3)[n][None], stride=2)[0], closed[n])


def test_homework_d_grad_w_is_a_dilation_2_correlation(homework):
    x, W, g = homework
    gx, gw = conv_backward(x, W, g[None], stride=2)
    # dL/dW[1,c,j] = sum_n g[n] x[c, 2(n-1)+j]: the sum runs over the 3 outputs
    explicit = np.array([[sum(g[n] * x[c, 2 * n + j] for n in range(3)) for j in range(3)] for c in range(5)])
    assert_close(gw, explicit[None])
    # ... a valid correlation of x with g as the kernel, dilation 2 (= stride), stride 1, channels unsummed
    assert_close(gw, conv(x[:, None, :], g[None, None, :], dilation=2)[:, 0, :][None])
    # dL/dx: dilate g by the stride, pad by k-1 = 2, correlate with the flipped kernel
    gd = np.array([g[0], 0, g[1], 0, g[2]])
    padded = np.concatenate([np.zeros(2), gd, np.zeros(2)])
    by_hand = np.array([[np.dot(padded[m:m + 3], W[0, c, ::-1]) for m in range(7)] for c in range(5)])
    assert_close(gx, by_hand)
    assert_close(gx, central_diff(lambda v: conv(v, W, stride=2)[0] @ g, x.copy()), rtol=1e-6, atol=1e-8)


def test_homework_steps(homework):
    x, W, g = homework
    s = conv_backward_steps(x, W, g[None], stride=2)
    assert s.grad_y_dilated.tolist() == [[g[0], 0.0, g[1], 0.0, g[2]]]
    assert s.grad_x_padding == ((2, 2),)
    assert s.grad_y_padded.tolist() == [[0.0, 0.0, g[0], 0.0, g[1], 0.0, g[2], 0.0, 0.0]]
    assert np.array_equal(s.w_flipped, W[:, :, ::-1])
    gx_geo, gw_geo = s.grad_x_geometry, s.grad_w_geometry
    assert (gx_geo.in_shape, gx_geo.kernel, gx_geo.stride, gx_geo.dilation, gx_geo.out_shape) == \
        ((9,), (3,), (1,), (1,), (7,))
    # grad_w: stride and dilation swap roles: stride d = 1, dilation s = 2, g (3 taps) as the kernel
    assert (gw_geo.in_shape, gw_geo.kernel, gw_geo.stride, gw_geo.dilation, gw_geo.out_shape) == \
        ((7,), (3,), (1,), (2,), (3,))
    gx, gw = conv_backward(x, W, g[None], stride=2)
    assert_close(s.grad_x, gx)
    assert_close(s.grad_w, gw)
    assert_close(s.grad_bias, [g.sum()])


# ---------------------------------------------------------------------------------------------------
# The backward steps, on their own

@settings(max_examples=examples(80))
@given(conv_cases(max_elems=200))
@with_edge_cases
def test_backward_steps_recompute_from_their_own_arrays(case):
    x, w, gy = case["x"], case["w"], case["gy"]
    geo = _geo(case)
    s = conv_backward_steps(x, w, gy, **geo)
    gx, gw, gb = conv_backward(x, w, gy, **geo, with_bias=True)
    assert_close(s.grad_x, gx, what="grad_x")
    assert_close(s.grad_w, gw, what="grad_w")
    assert_close(s.grad_bias, gb, what="grad_bias")
    g = s.geometry
    nd = g.ndim
    assert np.array_equal(s.grad_y_dilated, dilate(gy, g.stride))
    assert np.array_equal(s.grad_y_padded, pad(s.grad_y_dilated, s.grad_x_padding))
    assert s.grad_x_padding == tuple((d * (k - 1) - lo, d * (k - 1) - hi + r) for k, d, (lo, hi), r
                                     in zip(g.kernel, g.dilation, g.padding, g.remainder))
    # grad_x = plain correlation (public conv, no phase split) of the zero-inserted, padded grad_y
    # with the flipped kernel, input/output channels swapped within each group
    G = case["groups"]
    f, cg = w.shape[:2]
    wf = s.w_flipped.reshape(G, f // G, cg, *g.kernel).swapaxes(1, 2).reshape(G * cg, f // G, *g.kernel)
    assert_close(conv(s.grad_y_padded, wf, dilation=g.dilation, groups=G), gx, what="corr grad_x")
    assert (s.grad_x_geometry.stride, s.grad_x_geometry.dilation) == ((1,) * nd, g.dilation)
    assert s.grad_x_geometry.out_shape == g.in_shape
    # grad_w = correlation of padded x with grad_y as kernel, stride d and dilation s: exactly k taps
    assert (s.grad_w_geometry.stride, s.grad_w_geometry.dilation) == (g.dilation, g.stride)
    assert s.grad_w_geometry.kernel == g.out_shape and s.grad_w_geometry.out_shape == g.kernel
    xb, gyb = _batched(case, s.x_padded, gy)
    per_group = []
    for k in range(G):
        xs = xb[:, k * cg:(k + 1) * cg].swapaxes(0, 1)                   # (C/G, N, *i): N is summed
        ws = gyb[:, k * (f // G):(k + 1) * (f // G)].swapaxes(0, 1)      # (F/G, N, *o)
        per_group.append(conv(xs, ws, stride=g.dilation, dilation=g.stride).swapaxes(0, 1))
    assert_close(np.concatenate(per_group), gw, what="corr grad_w")


# ---------------------------------------------------------------------------------------------------
# Wrong variants the tests above must catch (each one is a plausible bug)

def test_a_missing_flip_is_detected():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 2, 9)), rng.standard_normal((3, 2, 3))
    gy = rng.standard_normal((1, 3, 5))
    s = conv_backward_steps(x, w, gy, stride=2, padding=1)
    unflipped = conv(s.grad_y_padded, w.swapaxes(0, 1))
    flipped = conv(s.grad_y_padded, s.w_flipped.swapaxes(0, 1))
    _, tgx, _, _ = torch_conv(x, w, None, gy, (2,), ((1, 1),), (1,), 1)
    assert_close(flipped, tgx)
    assert not np.allclose(unflipped, tgx)
    # a symmetric kernel would hide the bug: flipped and unflipped agree
    sym = w + w[:, :, ::-1]
    assert np.allclose(conv(s.grad_y_padded, sym.swapaxes(0, 1)), conv(s.grad_y_padded, sym[:, :, ::-1].swapaxes(0, 1)))


def test_grad_w_with_unswapped_stride_and_dilation_is_detected(homework):
    x, W, g = homework
    _, gw = conv_backward(x, W, g[None], stride=2)
    wrong = conv(x[:, None, :7], g[None, None, :], stride=2)           # stride 2 instead of dilation 2
    assert wrong.shape[-1] != 3 or not np.allclose(wrong[:, 0][None], gw)


def test_same_padding_with_extra_before_is_detected():
    torch = torch_or_skip()
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 1, 6, 6)), rng.standard_normal((1, 1, 4, 4))
    ref = F.conv2d(torch.tensor(x), torch.tensor(w), padding="same").numpy()
    assert_close(conv(x, w, padding="same"), ref)
    assert not np.allclose(conv(x, w, padding=((2, 1), (2, 1))), ref)


def test_truncating_division_is_detected():
    # floor((i + 2p - d(k-1) - 1)/s) + 1 with a negative numerator: truncation says 1 window
    i, k, s = 3, 4, 2
    assert int((i - (k - 1) - 1) / s) + 1 == 1 and (i - (k - 1) - 1) // s + 1 == 0
    with pytest.raises(ValueError):
        conv_geometry(i, k, s)


# ---------------------------------------------------------------------------------------------------
# Arguments, layouts and dtypes

def test_unbatched_equals_batched_and_dtype_is_kept():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    y = conv(x, w, stride=(2, 1), padding=((1, 0), 1), groups=2)
    assert y.dtype == np.float32
    assert np.array_equal(y, conv(x[None], w, stride=(2, 1), padding=((1, 0), 1), groups=2)[0])
    gx, gw = conv_backward(x, w, np.ones_like(y), stride=(2, 1), padding=((1, 0), 1), groups=2)
    assert gx.shape == x.shape and gw.shape == w.shape and gx.dtype == np.float32
    assert conv(np.ones((1, 3), dtype=int), np.ones((1, 1, 2), dtype=int)).dtype == np.float64


@pytest.mark.parametrize("call,message", [
    (lambda: conv(np.zeros((1, 4, 5)), np.zeros((2, 3, 3))), r"w.shape\[1\] must be C // groups = 4 // 1 = 4 \(got 3\)"),
    (lambda: conv(np.zeros((1, 4, 5)), np.zeros((3, 2, 3)), groups=2), r"groups must divide the filters F = w.shape\[0\] = 3"),
    (lambda: conv(np.zeros((1, 3, 5)), np.zeros((2, 1, 3)), groups=2), r"groups must divide the input channels C = 3"),
    (lambda: conv(np.zeros((1, 3, 5)), np.zeros((2, 3, 3)), groups=0), r"groups must be an int >= 1 \(got 0\)"),
    (lambda: conv(np.zeros((1, 1, 3, 5)), np.zeros((2, 1, 3))), r"x must have shape \(N, C, \*spatial\) or \(C, \*spatial\) with 1 spatial axes"),
    (lambda: conv(np.zeros((1, 5)), np.zeros((2, 1))), r"w must have shape \(F, C // groups, \*kernel\) with at least one spatial axis"),
    (lambda: conv(np.zeros((1, 5)), np.zeros((2, 1, 3)), np.zeros(3)), r"bias must have shape \(2,\)"),
    (lambda: conv_backward(np.zeros((1, 5)), np.zeros((2, 1, 3)), np.zeros((2, 4))), r"grad_y must have the output's shape \(2, 3\)"),
    (lambda: conv_transpose(np.zeros((1, 3, 5)), np.zeros((2, 1, 3))), r"w.shape\[0\] must equal the input channels C_in = 3"),
    (lambda: conv_transpose(np.zeros((1, 3, 5)), np.zeros((3, 1, 3)), stride=2, output_padding=2), r"output_padding must be"),
    (lambda: conv(np.zeros((1, 5), dtype=complex), np.zeros((2, 1, 3))), r"x must be a real numeric array"),
    (lambda: dilate(np.zeros(3), 0), r"s must be >= 1 on axis 1 \(got 0\)"),
])
def test_bad_arguments_raise_one_line_value_errors(call, message):
    with pytest.raises(ValueError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_conv_transpose_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        conv_transpose(np.zeros((1, 1, 3)), np.zeros((1, 1, 3)), 2)


def test_dilate():
    assert dilate(np.array([1.0, 2.0, 3.0]), 2).tolist() == [1.0, 0.0, 2.0, 0.0, 3.0]
    a = np.arange(6.0).reshape(1, 2, 3)
    d = dilate(a, (2, 3))
    assert d.shape == (1, 3, 7)
    assert d[0].tolist() == [[0, 0, 0, 1, 0, 0, 2], [0] * 7, [3, 0, 0, 4, 0, 0, 5]]
    assert dilate(a, 2, ndim=1).shape == (1, 2, 5)
    assert dilate(a, 1) is a


def test_windows_drive_the_forward_pass():
    # y = sum over taps of x at the windows' indices (padding taps read 0): the drawing is the math
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 7, 6))
    w = rng.standard_normal((1, 2, 3, 2))
    geo = dict(stride=(2, 1), padding=((1, 0), (0, 2)), dilation=(1, 3))
    win = windows(x.shape[1:], w.shape[2:], **geo)
    idx = np.where(win.is_padding[..., None], 0, win.indices)
    gathered = x[:, idx[..., 0], idx[..., 1]] * ~win.is_padding          # (C, *o, *k)
    y = np.einsum("cabij,cij->ab", gathered, w[0])
    assert_close(y, conv(x, w, **geo)[0])
