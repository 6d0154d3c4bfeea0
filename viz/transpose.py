"""The transposed convolution in the two forms a course draws, both equal to `viz.conv.conv_transpose`.

Per spatial axis, input i', kernel k, stride s, padding p_lo/p_hi, dilation d, output padding a:

    o' = (i' - 1)s - p_lo - p_hi + d(k-1) + a + 1

- **scatter** (how the layer is defined): every input value times the kernel is stamped onto the
  output, tap j of input n landing on output cell n*s + j*d - p_lo, and stamps add up where they
  overlap; taps landing outside [0, o') are cropped by the padding.
      y[f, m] = sum_{c, n, j : n*s + j*d - p_lo = m} x[c, n] * w[c, f, j]
  The stamp of input n is exactly window n of the forward convolution of an o'-sized input with the
  same k, s, p, d (`viz.conv.windows`): the transposed convolution is that convolution's adjoint.
- **gather** (how it is computed): insert s-1 zeros between inputs, pad by d(k-1) - p on each side
  (plus a after; negative crops), and correlate with the flipped kernel at stride 1, dilation d.
The output padding a adds a rows/columns after the last stamp: cells no stamp reaches when a > 0
land there only through a stamp's taps, so they are often 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viz import conv as V


@dataclass(frozen=True, eq=False)
class Scatter:
    """geometry (transposed); stamps: V.Windows whose window n lists the output cells input n's kernel
    stamp covers (tap order; is_padding marks taps cropped away); y: the summed output (F, *o')."""
    geometry: V.ConvGeometry
    stamps: V.Windows
    y: np.ndarray


def stamps(in_shape, kernel, stride=1, padding=0, dilation=1, output_padding=0) -> V.Windows:
    """For every input position n and kernel tap j of a transposed convolution, the output cell it
    lands on (windows of the forward convolution of the output; see the module docstring)."""
    g = V.conv_transpose_geometry(in_shape, kernel, stride, padding, dilation, output_padding)
    win = V.windows(g.out_shape, g.kernel, g.stride, g.padding, g.dilation)
    if win.geometry.out_shape == g.in_shape:
        return win
    # an output padding a >= s (allowed when a < d) gives the forward geometry floor(a/s) extra windows
    # that no input owns: keep the first i' per axis and recount which output cells a stamp reaches
    first = tuple(slice(0, n) for n in g.in_shape)
    indices, is_padding = win.indices[first], win.is_padding[first]
    nd = len(g.in_shape)
    inside = indices.reshape(-1, nd)[~is_padding.reshape(-1)]
    count = np.bincount(np.ravel_multi_index(tuple(inside.T), g.out_shape),
                        minlength=int(np.prod(g.out_shape))).reshape(g.out_shape)
    never = [tuple(int(v) for v in row) for row in np.argwhere(count == 0)]
    return V.Windows(win.geometry, indices, is_padding, count, never)


def scatter(x, w, stride=1, padding=0, dilation=1, output_padding=0, groups=1) -> Scatter:
    """The transposed convolution as a sum of stamps; x (C_in, *i'), w (C_in, F/groups, *k)."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    nd = w.ndim - 2
    if x.ndim != nd + 1:
        raise ValueError(f"x must have shape (C_in, *spatial) with {nd} spatial axes (got {x.shape})")
    c_in, f_per = w.shape[:2]
    if x.shape[0] != c_in or c_in % groups:
        raise ValueError(f"x has {x.shape[0]} channels; w.shape[0] = {c_in} must equal it and be divisible by "
                         f"groups = {groups}")
    win = stamps(x.shape[1:], w.shape[2:], stride, padding, dilation, output_padding)
    g = V.conv_transpose_geometry(x.shape[1:], w.shape[2:], stride, padding, dilation, output_padding)
    out = np.zeros((f_per * groups, int(np.prod(g.out_shape))))
    idx = win.indices.reshape(*g.in_shape, -1, nd)                     # (*i', taps, nd)
    keep = ~win.is_padding.reshape(*g.in_shape, -1)
    flat = np.ravel_multi_index(tuple(np.clip(idx[..., a], 0, g.out_shape[a] - 1) for a in range(nd)),
                                g.out_shape)                           # (*i', taps)
    per_group = c_in // groups
    for c in range(c_in):
        grp = c // per_group
        for f in range(f_per):
            # x[c, n] * w[c, f, j] for every input n and tap j, in (n, j) order like `flat`
            contrib = x[c].reshape(-1, 1) * w[c, f].reshape(1, -1)
            np.add.at(out[grp * f_per + f], flat.reshape(-1)[keep.reshape(-1)],
                      contrib.reshape(-1)[keep.reshape(-1)])
    return Scatter(g, win, out.reshape(f_per * groups, *g.out_shape))


def gather_input(x, kernel, stride=1, padding=0, dilation=1, output_padding=0):
    """The gather form's input: zeros inserted by the stride, padded by d(k-1) - p (+ a after), and the
    mask of cells that hold an input value (the rest are inserted zeros or padding)."""
    g = V.conv_transpose_geometry(np.shape(x)[1:], kernel, stride, padding, dilation, output_padding)
    pads = tuple((d * (k - 1) - lo, d * (k - 1) - hi + a)
                 for k, d, (lo, hi), a in zip(g.kernel, g.dilation, g.padding, g.output_padding))
    spread = V.pad(V.dilate(np.asarray(x, dtype=float), g.stride), pads)
    holds = V.pad(V.dilate(np.ones(np.shape(x)[1:]), g.stride), pads) == 1
    return spread, holds, pads
