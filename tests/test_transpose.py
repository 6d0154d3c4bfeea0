"""The transposed convolution's scatter form (stamps summed) and gather form equal viz.conv.conv_transpose
and torch's conv_transpose, over random geometries (hypothesis) with output padding and groups."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viz import conv as V
from viz import transpose as T

torch = pytest.importorskip("torch")


@st.composite
def cases(draw):
    nd = draw(st.integers(1, 2))
    i, k, s, d, p, a = [], [], [], [], [], []
    for _ in range(nd):
        i.append(draw(st.integers(1, 5)))
        k.append(draw(st.integers(1, 4)))
        s.append(draw(st.integers(1, 3)))
        d.append(draw(st.integers(1, 2)))
        a.append(draw(st.integers(0, max(s[-1], d[-1]) - 1)))
        p.append(draw(st.integers(0, 2)))
    groups = draw(st.sampled_from([1, 2]))
    return tuple(i), tuple(k), tuple(s), tuple(d), tuple(p), tuple(a), groups, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(cases())
def test_scatter_and_gather_equal_torch(case):
    i, k, s, d, p, a, groups, seed = case
    try:
        g = V.conv_transpose_geometry(i, k, s, p, d, a)
    except ValueError:
        return                                     # padding too large for this size: refused, as torch does
    rng = np.random.default_rng(seed)
    c_in, f_per = 2 * groups, 2
    x = rng.integers(-3, 4, size=(c_in, *i)).astype(float)
    w = rng.choice([-2.0, -1.0, 1.0, 2.0], size=(c_in, f_per, *k))
    fn = [torch.nn.functional.conv_transpose1d, torch.nn.functional.conv_transpose2d][len(i) - 1]
    expected = fn(torch.tensor(x[None]), torch.tensor(w), stride=s, padding=p, output_padding=a,
                  dilation=d, groups=groups)[0].numpy()
    sc = T.scatter(x, w, s, p, d, a, groups)
    assert sc.y.shape == expected.shape == (f_per * groups, *g.out_shape)
    np.testing.assert_allclose(sc.y, expected, atol=1e-9)
    np.testing.assert_allclose(V.conv_transpose(x, w, stride=s, padding=p, dilation=d, output_padding=a,
                                                groups=groups), expected, atol=1e-9)
    # the stamps are the adjoint's windows: one stamp per input position
    assert sc.stamps.indices.shape[:len(i)] == i
    if groups == 1:
        spread, holds, pads = T.gather_input(x, k, s, p, d, a)
        flipped = np.flip(w, axis=tuple(range(2, 2 + len(i)))).transpose(1, 0, *range(2, 2 + len(i)))
        gathered = V.conv(spread, flipped, dilation=d)
        np.testing.assert_allclose(gathered, expected, atol=1e-9)
        if min(min(pair) for pair in pads) >= 0:   # no cropping: every input value appears once, spread out
            assert holds.sum() == np.prod(i)


def test_homework_transpose_restores_the_input_size():
    # 8x8, k=3, s=2 -> 3x3 forward; the transposed needs output padding 1 to give 8x8 back (MATH.md case 1)
    assert V.conv_transpose_geometry((3, 3), 3, 2, 0, 1, 1).out_shape == (8, 8)
    win = T.stamps((3, 3), 3, 2, 0, 1, 1)
    assert (7, 7) in win.never_read and (7, 0) in win.never_read     # the row/column output padding adds
