"""Pooling (viz.pool) against PyTorch's max/avg pooling and their autograd gradients, and its geometry
against the closed form, over random geometries (hypothesis), 1-D and 2-D, ceil_mode and padding."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viz import pool

torch = pytest.importorskip("torch")
F = torch.nn.functional


@st.composite
def geometries(draw, max_pool: bool):
    nd = draw(st.integers(1, 2))
    axes = []
    for _ in range(nd):
        k = draw(st.integers(1, 4))
        d = draw(st.integers(1, 2)) if max_pool else 1
        p = draw(st.integers(0, k // 2))
        i = draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9))
        s = draw(st.integers(1, 3))
        axes.append((i, k, s, p, d))
    i, k, s, p, d = (tuple(a[j] for a in axes) for j in range(5))
    return i, k, s, p, d, draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2**31 - 1))


def _torch(fn, x, gy, **kw):
    xt = torch.tensor(x, requires_grad=True)
    yt = fn(xt[None], **kw)[0]
    yt.backward(torch.tensor(gy))
    return yt.detach().numpy(), xt.grad.numpy()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(geometries(max_pool=True))
def test_max_pool_equals_torch(geo):
    i, k, s, p, d, ceil, _, seed = geo
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(2, *i)).astype(float)      # small integers: ties happen, and must match
    fn = [F.max_pool1d, F.max_pool2d][len(i) - 1]
    g = pool.pool_geometry(i, k, s, p, d, ceil)
    gy = rng.standard_normal((2, *g.out_shape))
    yt, gxt = _torch(fn, x, gy, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    if np.isinf(yt).any():                 # a window of padding only: viz refuses it (PyTorch gives -inf)
        with pytest.raises(ValueError, match="reads only padding"):
            pool.max_pool(x, k, s, p, d, ceil)
        return
    assert g.out_shape == yt.shape[1:]
    np.testing.assert_array_equal(pool.max_pool(x, k, s, p, d, ceil), yt)
    np.testing.assert_allclose(pool.pool_backward(x, gy, "max", k, s, p, d, ceil), gxt, atol=1e-12)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(geometries(max_pool=False))
def test_avg_pool_equals_torch(geo):
    i, k, s, p, _, ceil, include_pad, seed = geo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, *i))
    fn = [F.avg_pool1d, F.avg_pool2d][len(i) - 1]
    g = pool.pool_geometry(i, k, s, p, 1, ceil)
    gy = rng.standard_normal((3, *g.out_shape))
    yt, gxt = _torch(fn, x, gy, kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                     count_include_pad=include_pad)
    np.testing.assert_allclose(pool.avg_pool(x, k, s, p, ceil, include_pad), yt, atol=1e-12)
    np.testing.assert_allclose(pool.pool_backward(x, gy, "avg", k, s, p, 1, ceil, include_pad), gxt, atol=1e-12)


def test_ceil_mode_drops_a_window_that_starts_in_the_right_padding():
    # i=5, k=2, s=2, p=1: ceil((5+2-1-1)/2)+1 = 4, but window 4 would start at 6 >= i + p = 6: 3 windows
    assert pool.pool_geometry(5, 2, 2, 1, ceil_mode=True).out_shape == (3,)
    assert pool.pool_geometry(5, 2, 2, 0, ceil_mode=True).out_shape == (3,)   # ceil((5-2)/2)+1 = 3
    assert pool.pool_geometry(5, 2, 2, 0, ceil_mode=False).out_shape == (2,)  # the last input unread
    assert pool.pool_geometry(5, 2, 2, 0).windows.never_read == [(4,)]


def test_max_routes_to_the_first_maximum_and_avg_spreads():
    x = np.array([[1.0, 3.0, 3.0, 2.0]])
    assert pool.max_pool(x, 2, 2).tolist() == [[3.0, 3.0]]
    np.testing.assert_array_equal(pool.pool_backward(x, [[1.0, 10.0]], "max", 2, 2), [[0, 1, 10, 0]])
    np.testing.assert_array_equal(pool.pool_backward(x, [[1.0, 10.0]], "avg", 2, 2), [[0.5, 0.5, 5, 5]])


@pytest.mark.parametrize("args, message", [
    (dict(in_shape=5, kernel=2, padding=2), r"padding must be in 0\.\.kernel//2 = 0\.\.1 on axis 1 \(got 2\)"),
    (dict(in_shape=2, kernel=3, padding=0), r"kernel too large on axis 1"),
    (dict(in_shape=5, kernel=0), r"must be >= 1 on axis 1"),
])
def test_bad_geometry_names_the_parameter(args, message):
    with pytest.raises(ValueError, match=message):
        pool.pool_geometry(**args)
