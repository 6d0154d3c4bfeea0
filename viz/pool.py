"""Max and average pooling, forward and backward, as PyTorch defines them (`max_pool{1,2,3}d`,
`avg_pool{1,2,3}d`), on the convolution's own windows (`viz.conv.windows`).

Per spatial axis, with input i, kernel k, stride s (default k), padding p (both sides), dilation d:

    o = floor((i + 2p - d(k-1) - 1) / s) + 1                    ceil_mode=False
    o = ceil((i + 2p - d(k-1) - 1) / s) + 1,  minus 1 if (o-1)s >= i + p    ceil_mode=True

(the last window must start inside the input or the left padding). Ceil mode is extra padding after
the input: p_hi = max(p, (o-1)s + d(k-1) + 1 - i - p), so the windows are the convolution's windows.

- max:  y[o] = max over the window's input taps (padding never wins: it is -inf); backward routes
        ∂ℓ/∂y[o] to the first tap holding the maximum (PyTorch's choice on ties), summed over windows.
- avg:  y[o] = (sum of the taps) / divisor, padding counting as 0; divisor = the window's taps that lie
        in the padded input [-p, i+p) (count_include_pad=True, PyTorch's default) or in the input
        (count_include_pad=False); backward spreads ∂ℓ/∂y[o] / divisor over the window's input taps.
Layouts: x (C, *spatial), or (N, C, *spatial) with a kernel given per axis (a tuple); channels pool
independently. dilation applies to max only
(PyTorch's avg pooling has none). Errors name the parameter and the allowed range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viz import conv as V


@dataclass(frozen=True)
class PoolGeometry:
    """The windows of a pooling layer: `windows` (viz.conv.Windows with the ceil-mode padding)."""
    in_shape: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool
    out_shape: tuple[int, ...]
    windows: V.Windows

    def formula(self, axis: int) -> str:
        i, k, s, p, d = (v[axis] for v in (self.in_shape, self.kernel, self.stride, self.padding, self.dilation))
        op = "ceil" if self.ceil_mode else "floor"
        return f"{op}(({i} + 2*{p} - {d}*({k}-1) - 1)/{s}) + 1 = {self.out_shape[axis]}"


def _axes(value, ndim: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * ndim
    value = tuple(int(v) for v in value)
    if len(value) != ndim:
        raise ValueError(f"{name} must have {ndim} entries, one per spatial axis (got {len(value)})")
    return value


def pool_geometry(in_shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False) -> PoolGeometry:
    """Output size and windows of a pooling layer (PyTorch's rules, including ceil_mode)."""
    in_shape = tuple(int(v) for v in np.atleast_1d(in_shape))
    nd = len(in_shape)
    kernel = _axes(kernel, nd, "kernel")
    stride = kernel if stride is None else _axes(stride, nd, "stride")
    padding, dilation = _axes(padding, nd, "padding"), _axes(dilation, nd, "dilation")
    out, pairs = [], []
    for a in range(nd):
        i, k, s, p, d = in_shape[a], kernel[a], stride[a], padding[a], dilation[a]
        if k < 1 or s < 1 or d < 1 or i < 1:
            raise ValueError(f"input, kernel, stride and dilation must be >= 1 on axis {a + 1} "
                             f"(got {i}, {k}, {s}, {d})")
        if not 0 <= p <= k // 2:
            raise ValueError(f"padding must be in 0..kernel//2 = 0..{k // 2} on axis {a + 1} (got {p}), "
                             "as PyTorch requires")
        span = i + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise ValueError(f"kernel too large on axis {a + 1}: dilated kernel d*(k-1)+1 = {d * (k - 1) + 1} "
                             f"must be <= padded input i + 2p = {i + 2 * p}")
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= i + p:
            o -= 1
        out.append(o)
        pairs.append((p, max(p, (o - 1) * s + d * (k - 1) + 1 - i - p)))
    win = V.windows(in_shape, kernel, stride, tuple(pairs), dilation)
    return PoolGeometry(in_shape, kernel, stride, padding, dilation, bool(ceil_mode), tuple(out), win)


def _prepare(x, g: PoolGeometry):
    x = np.asarray(x, dtype=float)
    nd = len(g.in_shape)
    if x.ndim == nd + 1:
        return x[None], True
    if x.ndim != nd + 2 or tuple(x.shape[-nd:]) != g.in_shape:
        raise ValueError(f"x must have shape (C, {', '.join(map(str, g.in_shape))}) or with a batch axis "
                         f"in front (got {x.shape})")
    return x, False


def _taps(x, g: PoolGeometry, fill: float):
    """x's value at every (window, tap): shape (N, C, *out, taps); padding taps hold `fill`."""
    w = g.windows
    nd = len(g.in_shape)
    idx = w.indices.reshape(*g.out_shape, -1, nd)
    pad = w.is_padding.reshape(*g.out_shape, -1)
    safe = tuple(np.clip(idx[..., a], 0, g.in_shape[a] - 1) for a in range(nd))
    vals = x[(..., *safe)]
    return np.where(pad, fill, vals), idx, pad


def max_pool(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """y[n, c, o] = max of x[n, c] over window o; with return_indices, the flat input index of the max."""
    g = pool_geometry(_spatial(x, kernel), kernel, stride, padding, dilation, ceil_mode)
    xb, unbatched = _prepare(x, g)
    vals, idx, pad = _taps(xb, g, -np.inf)
    if pad.all(axis=-1).any():
        o = tuple(int(v) + 1 for v in np.argwhere(pad.all(axis=-1))[0])
        raise ValueError(f"max pooling window {o} (1-based) reads only padding, so its maximum is -inf: "
                         "use less padding or dilation")
    first = np.argmax(vals, axis=-1)                  # the first maximum, as PyTorch picks on ties
    y = np.take_along_axis(vals, first[..., None], axis=-1)[..., 0]
    if not return_indices:
        return y[0] if unbatched else y
    nd = len(g.in_shape)
    tap_flat = np.ravel_multi_index(tuple(np.clip(idx[..., a], 0, g.in_shape[a] - 1) for a in range(nd)),
                                    g.in_shape)                      # (*out, taps)
    flat = np.take_along_axis(np.broadcast_to(tap_flat, vals.shape), first[..., None], axis=-1)[..., 0]
    return (y[0], flat[0]) if unbatched else (y, flat)


def _spatial(x, kernel) -> tuple[int, ...]:
    """The spatial shape of x: as many trailing axes as the kernel has (an int kernel: all but C)."""
    nd = len(kernel) if isinstance(kernel, (tuple, list)) else np.ndim(x) - 1
    return tuple(np.shape(x)[-nd:])


def divisors(g: PoolGeometry, count_include_pad: bool = True) -> np.ndarray:
    """The divisor of every window of an average pool (see the module docstring)."""
    idx = g.windows.indices.reshape(*g.out_shape, -1, len(g.in_shape))
    lo = -np.asarray(g.padding) if count_include_pad else np.zeros(len(g.in_shape), int)
    hi = np.asarray(g.in_shape) + (np.asarray(g.padding) if count_include_pad else 0)
    return np.all((idx >= lo) & (idx < hi), axis=-1).sum(axis=-1).astype(float)


def avg_pool(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """y[n, c, o] = (sum of window o, padding 0) / divisor[o]."""
    g = pool_geometry(_spatial(x, kernel), kernel, stride, padding, 1, ceil_mode)
    xb, unbatched = _prepare(x, g)
    vals, _, _ = _taps(xb, g, 0.0)
    y = vals.sum(axis=-1) / divisors(g, count_include_pad)
    return y[0] if unbatched else y


def pool_backward(x, grad_y, mode: str, kernel, stride=None, padding=0, dilation=1, ceil_mode=False,
                  count_include_pad=True):
    """∂ℓ/∂x from ∂ℓ/∂y: max routes each output's gradient to its window's first maximum, avg spreads
    it as grad_y[o] / divisor[o] over the window's input taps; overlapping windows add up."""
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg' (got {mode!r})")
    g = pool_geometry(_spatial(x, kernel), kernel, stride, padding, dilation if mode == "max" else 1, ceil_mode)
    xb, unbatched = _prepare(x, g)
    gy = np.asarray(grad_y, dtype=float)
    gy = gy[None] if unbatched else gy
    if gy.shape != (*xb.shape[:2], *g.out_shape):
        raise ValueError(f"grad_y must have shape {(*xb.shape[1 if unbatched else 0:2], *g.out_shape)} "
                         f"(got {np.shape(grad_y)})")
    n, c = xb.shape[:2]
    gx = np.zeros((n, c, int(np.prod(g.in_shape))))
    rows = np.arange(n * c)
    if mode == "max":
        _, flat = max_pool(xb, g.kernel, g.stride, g.padding, g.dilation, ceil_mode, return_indices=True)
        np.add.at(gx.reshape(n * c, -1), (rows[:, None], flat.reshape(n * c, -1)), gy.reshape(n * c, -1))
    else:
        gx = _spread(gy / divisors(g, count_include_pad), g, n, c)
    gx = gx.reshape(n, c, *g.in_shape)
    return gx[0] if unbatched else gx


def _spread(share, g: PoolGeometry, n: int, c: int) -> np.ndarray:
    """Add share[n, c, o] to every input tap of window o."""
    nd = len(g.in_shape)
    idx = g.windows.indices.reshape(-1, nd)                          # (out * taps, nd)
    pad = g.windows.is_padding.reshape(-1)
    taps = int(np.prod(g.kernel))
    per_tap = np.repeat(share.reshape(n * c, -1), taps, axis=1)     # (n*c, out * taps)
    flat = np.ravel_multi_index(tuple(np.clip(idx[:, a], 0, g.in_shape[a] - 1) for a in range(nd)), g.in_shape)
    gx = np.zeros((n * c, int(np.prod(g.in_shape))))
    rows = np.arange(n * c)[:, None]
    np.add.at(gx, (rows, flat[~pad][None, :]), per_tap[:, ~pad])
    return gx
