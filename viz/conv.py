"""N-d convolution reference: geometry, windows, forward, backward and transposed convolution.

Layouts are PyTorch's: input ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, weight
``(F, C // groups, *kernel)`` (``(C_in, F // groups, *kernel)`` for the transposed convolution).
One, two and three spatial axes (any number, in fact) go through the same code.

Per spatial axis, with input size i, kernel k, stride s, dilation d, padding p_lo (before), p_hi (after):

    o = floor((i + p_lo + p_hi - d*(k-1) - 1) / s) + 1        needs i + p_lo + p_hi >= d*(k-1) + 1

Everything numeric goes through ONE primitive, `_conv_general` (the style of JAX's
``lax_reference.conv_general_dilated``): pad (negative padding crops), insert zeros between inputs
(``lhs_dilation``), then correlate with a kernel whose taps are spread out (``rhs_dilation``):

    y[n, f, o] = sum_{c in group(f), j} pad(dilate(x, lhs_dilation), padding)[n, c, o*s + j*d] * w[f, c, j]

- forward:    y     = corr(pad(x, p), w;                       stride s, dilation d)
- grad_w:     dL/dw = corr(pad(x, p), dL/dy;                   stride d, dilation s)   (dL/dy is the kernel)
- grad_x:     dL/dx = corr(pad(dilate(dL/dy, s), d(k-1) - p), flip(w); stride 1, dilation d)
              (the transposed convolution; negative padding crops, extra trailing padding gives the
              zeros of inputs no window reads)
- conv_transpose is the same call as grad_x.

Zero insertion is what ``lhs_dilation`` means, and `conv_backward_steps` materialises it for the
figures. When the window stride is 1 (grad_x, conv_transpose) the primitive skips the inserted zeros
by splitting the outputs by phase (`_conv_by_phase`), each phase being the primitive again without
zero insertion, so grad_x costs about what the forward pass costs instead of s^ndim times more.

Indices in code and data (arrays, `to_dict`, `formula(axis)`) are 0-based; what a person reads
(error messages, `str(geometry)`, the HTML table) numbers axes and input positions from 1, like the
course: "stride must be >= 1 on axis 2 (got 0)" is about the second spatial axis.
"""
from __future__ import annotations

import html
import itertools
import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "ConvGeometry", "conv_geometry", "conv_transpose_geometry",
    "conv_output_shape", "conv_transpose_output_shape",
    "Windows", "windows",
    "conv", "conv_backward", "conv_transpose", "ConvBackwardSteps", "conv_backward_steps",
    "dilate", "pad",
]

FORMULA = "floor((i + p_lo + p_hi - d*(k-1) - 1)/s) + 1"
TRANSPOSE_FORMULA = "(i' - 1)*s - p_lo - p_hi + d*(k-1) + a + 1"


# ----------------------------------------------------------------------------------------------------
# Parameter normalisation: int or per-axis tuple -> per-axis tuple, with one-line ValueErrors.

def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _per_axis(value, ndim: int, name: str) -> tuple[int, ...]:
    """An int (same on every axis) or a sequence of ndim ints -> tuple of ndim Python ints."""
    if _is_int(value):
        return (int(value),) * ndim
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be an int or a tuple of {ndim} ints (got {value!r})") from None
    if len(items) != ndim:
        raise ValueError(f"{name} must have {ndim} entries, one per spatial axis (got {len(items)}: {value!r})")
    if not all(_is_int(v) for v in items):
        raise ValueError(f"{name} must contain ints (got {value!r})")
    return tuple(int(v) for v in items)


def _shape(value, name: str) -> tuple[int, ...]:
    """Spatial sizes: an int (one axis) or a sequence of ints."""
    if _is_int(value):
        return (int(value),)
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be an int or a tuple of ints (got {value!r})") from None
    if not items or not all(_is_int(v) for v in items):
        raise ValueError(f"{name} must be a non-empty tuple of ints (got {value!r})")
    return tuple(int(v) for v in items)


def _padding_pairs(padding, kernel, stride, dilation, *, allow_strings=True) -> tuple[tuple[int, int], ...]:
    """Padding as per-axis (lo, hi) pairs.

    Accepts an int, per-axis ints, per-axis (lo, hi) pairs (an axis may mix: ``(1, (0, 2))``),
    ``"valid"`` (no padding) or ``"same"`` (stride 1 only: total d*(k-1) per axis, the odd extra one
    after, like TensorFlow and PyTorch: 6x6, k=4 -> (1, 2) per axis).
    """
    ndim = len(kernel)
    if isinstance(padding, str):
        mode = padding.lower()
        if not allow_strings:
            raise ValueError(f"padding must be an int, per-axis ints or (lo, hi) pairs for a transposed "
                             f"convolution (got {padding!r})")
        if mode == "valid":
            return ((0, 0),) * ndim
        if mode == "same":
            for a, s in enumerate(stride):
                if s != 1:
                    raise ValueError(f"padding='same' needs stride 1 on every axis, like torch "
                                     f"(got stride {s} on axis {a + 1})")
            pairs = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"padding must be an int, per-axis ints or (lo, hi) pairs, 'valid' or 'same' "
                         f"(got {padding!r})")
    if _is_int(padding):
        return ((int(padding), int(padding)),) * ndim
    try:
        items = tuple(padding)
    except TypeError:
        raise ValueError(f"padding must be an int, per-axis ints or (lo, hi) pairs (got {padding!r})") from None
    if len(items) != ndim:
        hint = (f"; for (lo, hi) pairs nest them: {(items,)!r}"
                if ndim == 1 and len(items) == 2 and all(_is_int(v) for v in items) else "")
        raise ValueError(f"padding must have {ndim} entries, one per spatial axis "
                         f"(got {len(items)}: {padding!r}){hint}")
    pairs = []
    for item in items:
        if _is_int(item):
            pairs.append((int(item), int(item)))
            continue
        try:
            pair = tuple(item)
        except TypeError:
            pair = ()
        if len(pair) != 2 or not all(_is_int(v) for v in pair):
            raise ValueError(f"padding entries must be ints or (lo, hi) pairs of ints (got {item!r} in {padding!r})")
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


def _check_params(in_shape, kernel, stride, dilation, pairs):
    for a in range(len(kernel)):
        if in_shape[a] < 1:
            raise ValueError(f"input size must be >= 1 on axis {a + 1} (got {in_shape[a]})")
        if kernel[a] < 1:
            raise ValueError(f"kernel size must be >= 1 on axis {a + 1} (got {kernel[a]})")
        if stride[a] < 1:
            raise ValueError(f"stride must be >= 1 on axis {a + 1} (got {stride[a]})")
        if dilation[a] < 1:
            raise ValueError(f"dilation must be >= 1 on axis {a + 1} (got {dilation[a]})")
        if min(pairs[a]) < 0:
            raise ValueError(f"padding must be >= 0 on axis {a + 1} (got (lo, hi) = {pairs[a]})")


def _forward_size(i, k, s, d, lo, hi, axis) -> int:
    span = i + lo + hi
    need = d * (k - 1) + 1
    if span < need:
        raise ValueError(
            f"kernel too large on axis {axis + 1}: dilated kernel d*(k-1)+1 = {d}*({k}-1)+1 = {need} must be "
            f"<= padded input i + p_lo + p_hi = {i} + {lo} + {hi} = {span}")
    return (span - need) // s + 1


def _transpose_size(i, k, s, d, lo, hi, a, axis) -> int:
    o = (i - 1) * s - lo - hi + d * (k - 1) + a + 1
    if o < 1:
        raise ValueError(
            f"padding too large on axis {axis + 1}: output size (i'-1)*s - p_lo - p_hi + d*(k-1) + a + 1 = "
            f"({i}-1)*{s} - {lo} - {hi} + {d}*({k}-1) + {a} + 1 = {o} must be >= 1")
    return o


# ----------------------------------------------------------------------------------------------------
# Geometry

@dataclass(frozen=True)
class ConvGeometry:
    """Normalised per-axis geometry of one (transposed) convolution; build it with `conv_geometry`
    or `conv_transpose_geometry`. All tuples have one entry per spatial axis; padding holds (lo, hi).

    For a transposed convolution ``in_shape`` is the size i' of its input and ``out_shape`` the size
    ``(i' - 1)*s - p_lo - p_hi + d*(k-1) + a + 1`` with a = ``output_padding``.
    """
    in_shape: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    out_shape: tuple[int, ...]
    transposed: bool = False
    output_padding: tuple[int, ...] = field(default=())

    def __post_init__(self):
        # The factories compute out_shape; a hand-built instance must agree with the formula.
        want = _out_shape(self.in_shape, self.kernel, self.stride, self.dilation, self.padding,
                          self.transposed, self.output_padding)
        if tuple(self.out_shape) != want:
            raise ValueError(f"out_shape must be {want} for this geometry (got {self.out_shape})")

    @property
    def ndim(self) -> int:
        return len(self.in_shape)

    @property
    def effective_kernel(self) -> tuple[int, ...]:
        """d*(k-1) + 1 per axis: the span one window covers."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    @property
    def remainder(self) -> tuple[int, ...]:
        """Forward only: (i + p_lo + p_hi - d*(k-1) - 1) mod s per axis, the padded trailing cells the
        floor drops. It is the output_padding a transposed convolution needs to restore in_shape."""
        if self.transposed:
            raise ValueError("remainder is defined for a forward geometry (got a transposed one)")
        return tuple((i + lo + hi - (d * (k - 1) + 1)) % s for i, k, s, d, (lo, hi)
                     in zip(self.in_shape, self.kernel, self.stride, self.dilation, self.padding))

    def transpose(self) -> "ConvGeometry":
        """Forward only: the transposed geometry mapping out_shape back onto in_shape (its adjoint),
        with output_padding = remainder (8x8, k=3, s=2 -> 3x3 -> 8x8 needs output_padding 1)."""
        return conv_transpose_geometry(self.out_shape, self.kernel, self.stride, self.padding,
                                       self.dilation, self.remainder)

    def formula(self, axis: int) -> str:
        """The output-size formula of one axis with its numbers, e.g.
        ``floor((21 + 0 + 0 - 1*(4-1) - 1)/4) + 1 = 5`` or, transposed,
        ``(3 - 1)*2 - 0 - 0 + 1*(3-1) + 1 + 1 = 8``."""
        a = self._axis(axis)
        i, k, s, d = self.in_shape[a], self.kernel[a], self.stride[a], self.dilation[a]
        lo, hi = self.padding[a]
        o = self.out_shape[a]
        if self.transposed:
            return f"({i} - 1)*{s} - {lo} - {hi} + {d}*({k}-1) + {self.output_padding[a]} + 1 = {o}"
        return f"floor(({i} + {lo} + {hi} - {d}*({k}-1) - 1)/{s}) + 1 = {o}"

    def unread(self, axis: int) -> list[int]:
        """Sorted 0-based input indices on `axis` that no output reads (they get zero gradient).

        Forward: input m is read iff m = o*s + j*d - p_lo for some output o and tap j.
        Transposed: input m is unread iff every output it feeds, m*s + j*d - p_lo, is cropped away.
        """
        a = self._axis(axis)
        i, k, s, d = self.in_shape[a], self.kernel[a], self.stride[a], self.dilation[a]
        lo = self.padding[a][0]
        taps = np.arange(k) * d
        if self.transposed:
            targets = np.arange(i)[:, None] * s + taps[None, :] - lo
            hit = ((targets >= 0) & (targets < self.out_shape[a])).any(axis=1)
            return [int(m) for m in np.flatnonzero(~hit)]
        coords = (np.arange(self.out_shape[a])[:, None] * s + taps[None, :] - lo).ravel()
        read = np.zeros(i, dtype=bool)
        read[coords[(coords >= 0) & (coords < i)]] = True
        return [int(m) for m in np.flatnonzero(~read)]

    def weight_shape(self, in_channels: int, filters: int, groups: int = 1) -> tuple[int, ...]:
        """PyTorch weight shape: (F, C // groups, *kernel); transposed: (C, F // groups, *kernel)."""
        for name, v in (("in_channels", in_channels), ("filters", filters), ("groups", groups)):
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name} must be an int >= 1 (got {v!r})")
        if in_channels % groups:
            raise ValueError(f"groups must divide in_channels = {in_channels} (got groups = {groups})")
        if filters % groups:
            raise ValueError(f"groups must divide filters = {filters} (got groups = {groups})")
        if self.transposed:
            return (in_channels, filters // groups, *self.kernel)
        return (filters, in_channels // groups, *self.kernel)

    def windows(self) -> "Windows":
        """The input cells every tap of every window reads (forward geometry only); see `windows`."""
        return _windows(self)

    def to_dict(self, in_channels: int | None = None, filters: int | None = None, groups: int = 1) -> dict:
        """JSON-serialisable summary (what ``viz shape --json`` prints). Indices are 0-based.

        With in_channels and filters it also holds the weight, bias, input and output array shapes.
        """
        d = {
            "kind": "conv_transpose" if self.transposed else "conv",
            "ndim": self.ndim,
            "in_shape": list(self.in_shape),
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "dilation": list(self.dilation),
            "padding": [list(p) for p in self.padding],
        }
        if self.transposed:
            d["output_padding"] = list(self.output_padding)
        d["out_shape"] = list(self.out_shape)
        d["formula"] = TRANSPOSE_FORMULA if self.transposed else FORMULA
        d["formulas"] = [self.formula(a) for a in range(self.ndim)]
        d["unread"] = [self.unread(a) for a in range(self.ndim)]
        d["index_base"] = 0
        if (in_channels is None) != (filters is None):
            raise ValueError("in_channels and filters must be given together (got only one)")
        if in_channels is not None:
            d["in_channels"], d["filters"], d["groups"] = in_channels, filters, groups
            d["weight_shape"] = list(self.weight_shape(in_channels, filters, groups))
            d["bias_shape"] = [filters]
            d["input_array_shape"] = [in_channels, *self.in_shape]
            d["output_array_shape"] = [filters, *self.out_shape]
        return d

    def __str__(self) -> str:
        x = "x"
        kind = "conv_transpose" if self.transposed else "conv"
        pads = x.join(f"({lo},{hi})" for lo, hi in self.padding)
        head = (f"{kind} {self.ndim}-D: in {x.join(map(str, self.in_shape))}, kernel "
                f"{x.join(map(str, self.kernel))}, stride {x.join(map(str, self.stride))}, dilation "
                f"{x.join(map(str, self.dilation))}, padding {pads}")
        if self.transposed:
            head += f", output_padding {x.join(map(str, self.output_padding))}"
        lines = [head + f" -> out {x.join(map(str, self.out_shape))}"]
        for a in range(self.ndim):
            unread = self.unread(a)
            note = f"   never read (1-based): {', '.join(str(m + 1) for m in unread)}" if unread else ""
            lines.append(f"  axis {a + 1}: {self.formula(a)}{note}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """A small table for notebooks: one row per axis (numbered from 1), the formula with numbers."""
        kind = "Transposed convolution" if self.transposed else "Convolution"
        cols = ["axis", "i'" if self.transposed else "i", "k", "s", "d", "p (lo, hi)"]
        if self.transposed:
            cols.append("a")
        cols += ["o", "formula", "never read (1-based)"]
        td = ' style="padding: 2px 10px; border-bottom: 1px solid #ccc; text-align: left"'
        rows = []
        for a in range(self.ndim):
            cells = [a + 1, self.in_shape[a], self.kernel[a], self.stride[a], self.dilation[a],
                     f"({self.padding[a][0]}, {self.padding[a][1]})"]
            if self.transposed:
                cells.append(self.output_padding[a])
            unread = ", ".join(str(m + 1) for m in self.unread(a)) or "\u2013"
            tds = [f"<td{td}>{html.escape(str(c))}</td>" for c in cells + [self.out_shape[a]]]
            tds += [f"<td{td}><code>{html.escape(self.formula(a))}</code></td>",
                    f"<td{td}>{html.escape(unread)}</td>"]
            rows.append("<tr>" + "".join(tds) + "</tr>")
        caption = (f"{kind}, {self.ndim}-D: {' &times; '.join(map(str, self.in_shape))} &rarr; "
                   f"{' &times; '.join(map(str, self.out_shape))}")
        head = "".join(f"<th{td}>{html.escape(c)}</th>" for c in cols)
        return (f'<table style="border-collapse: collapse"><caption>{caption}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def _axis(self, axis) -> int:
        if not _is_int(axis) or not 0 <= axis < self.ndim:
            raise ValueError(f"axis must be an int in 0..{self.ndim - 1} (got {axis!r})")
        return int(axis)


def conv_geometry(in_shape, kernel, stride=1, padding=0, dilation=1) -> ConvGeometry:
    """Validated geometry of a convolution. in_shape holds the spatial sizes only (an int for 1-D).

    Raises ValueError naming the axis, the parameter and the allowed range: sizes < 1, stride or
    dilation < 1, negative padding, wrong number of axes, padding='same' with stride > 1, and a
    dilated kernel d*(k-1)+1 larger than the padded input.
    """
    in_shape = _shape(in_shape, "in_shape")
    nd = len(in_shape)
    kernel = _per_axis(kernel, nd, "kernel")
    stride = _per_axis(stride, nd, "stride")
    dilation = _per_axis(dilation, nd, "dilation")
    pairs = _padding_pairs(padding, kernel, stride, dilation)
    out = _out_shape(in_shape, kernel, stride, dilation, pairs, False, ())
    return ConvGeometry(in_shape, kernel, stride, dilation, pairs, out)


def conv_transpose_geometry(in_shape, kernel, stride=1, padding=0, dilation=1, output_padding=0) -> ConvGeometry:
    """Validated geometry of a transposed convolution (PyTorch semantics).

    Per axis o' = (i' - 1)*s - p_lo - p_hi + d*(k-1) + a + 1. Like torch, output_padding a must be
    >= 0 and smaller than the stride or the dilation (a < max(s, d)), and o' must be >= 1.
    """
    in_shape = _shape(in_shape, "in_shape")
    nd = len(in_shape)
    kernel = _per_axis(kernel, nd, "kernel")
    stride = _per_axis(stride, nd, "stride")
    dilation = _per_axis(dilation, nd, "dilation")
    pairs = _padding_pairs(padding, kernel, stride, dilation, allow_strings=False)
    out_pad = _per_axis(output_padding, nd, "output_padding")
    out = _out_shape(in_shape, kernel, stride, dilation, pairs, True, out_pad)
    return ConvGeometry(in_shape, kernel, stride, dilation, pairs, out, True, out_pad)


def _out_shape(in_shape, kernel, stride, dilation, pairs, transposed, output_padding) -> tuple[int, ...]:
    """Validate normalised per-axis parameters and return the output sizes."""
    _check_params(in_shape, kernel, stride, dilation, pairs)
    if not transposed:
        return tuple(_forward_size(i, k, s, d, lo, hi, a) for a, (i, k, s, d, (lo, hi))
                     in enumerate(zip(in_shape, kernel, stride, dilation, pairs)))
    if len(output_padding) != len(in_shape):
        raise ValueError(f"output_padding must have {len(in_shape)} entries, one per spatial axis "
                         f"(got {len(output_padding)})")
    for a, (op, s, d) in enumerate(zip(output_padding, stride, dilation)):
        if not 0 <= op < max(s, d):
            raise ValueError(f"output_padding must be >= 0 and smaller than stride or dilation "
                             f"(< max(s, d) = {max(s, d)}) on axis {a + 1} (got {op})")
    return tuple(_transpose_size(i, k, s, d, lo, hi, op, a) for a, (i, k, s, d, (lo, hi), op)
                 in enumerate(zip(in_shape, kernel, stride, dilation, pairs, output_padding)))


def conv_output_shape(in_shape, kernel, stride=1, padding=0, dilation=1) -> tuple[int, ...]:
    """Spatial output sizes of a convolution: floor((i + p_lo + p_hi - d*(k-1) - 1)/s) + 1 per axis."""
    return conv_geometry(in_shape, kernel, stride, padding, dilation).out_shape


def conv_transpose_output_shape(in_shape, kernel, stride=1, padding=0, dilation=1, output_padding=0) -> tuple[int, ...]:
    """Spatial output sizes of a transposed convolution: (i' - 1)*s - p_lo - p_hi + d*(k-1) + a + 1."""
    return conv_transpose_geometry(in_shape, kernel, stride, padding, dilation, output_padding).out_shape


# ----------------------------------------------------------------------------------------------------
# Windows: which input cell each tap of each window reads. Diagrams and animations draw exactly this.

@dataclass(frozen=True, eq=False)
class Windows:
    """For every output position o and kernel tap j, the input cell it reads.

    indices[*o, *j, axis] = o[axis]*s + j[axis]*d - p_lo   (unpadded input coordinates, 0-based;
                                                           < 0 or >= size means a padding cell)
    is_padding[*o, *j]    True where the tap reads padding
    read_count            array of in_shape: how many (output, tap) pairs read each input cell
    never_read            sorted list of input positions (tuples) no tap reads: their gradient is 0
    """
    geometry: ConvGeometry
    indices: np.ndarray
    is_padding: np.ndarray
    read_count: np.ndarray
    never_read: list[tuple[int, ...]]

    def reads(self, out_index) -> list[tuple[int, ...]]:
        """Input cells (tuples, 0-based) read by the window at output position out_index, tap order."""
        out_index = tuple(np.atleast_1d(out_index))
        idx = self.indices[out_index].reshape(-1, self.geometry.ndim)
        pad = self.is_padding[out_index].ravel()
        return [tuple(int(v) for v in row) for row, p in zip(idx, pad) if not p]


def windows(in_shape, kernel, stride=1, padding=0, dilation=1) -> Windows:
    """The `Windows` of a convolution geometry (same arguments as `conv_geometry`). Vectorised."""
    return _windows(conv_geometry(in_shape, kernel, stride, padding, dilation))


def _windows(g: ConvGeometry) -> Windows:
    if g.transposed:
        raise ValueError("windows needs a forward geometry (got a transposed one); use geometry.transpose() "
                         "on the forward convolution instead")
    nd = g.ndim
    grid = (*g.out_shape, *g.kernel)
    coords = []
    for a in range(nd):
        o = np.arange(g.out_shape[a]).reshape([-1 if b == a else 1 for b in range(2 * nd)])
        j = np.arange(g.kernel[a]).reshape([-1 if b == nd + a else 1 for b in range(2 * nd)])
        coords.append(np.broadcast_to(o * g.stride[a] + j * g.dilation[a] - g.padding[a][0], grid))
    indices = np.stack(coords, axis=-1)
    inside = np.ones(grid, dtype=bool)
    for a in range(nd):
        inside &= (coords[a] >= 0) & (coords[a] < g.in_shape[a])
    flat = np.ravel_multi_index(tuple(c[inside] for c in coords), g.in_shape)
    read_count = np.bincount(flat, minlength=math.prod(g.in_shape)).reshape(g.in_shape)
    never = [tuple(int(v) for v in row) for row in np.argwhere(read_count == 0)]
    return Windows(g, indices, ~inside, read_count, never)


# ----------------------------------------------------------------------------------------------------
# Array helpers

def dilate(a, s, ndim: int | None = None) -> np.ndarray:
    """Insert s-1 zeros between neighbouring elements along the last `ndim` axes.

    s is an int or a per-axis tuple; ndim defaults to len(s) for a tuple and to a.ndim for an int.
    Length n becomes (n-1)*s + 1:  dilate([g1, g2, g3], 2) = [g1, 0, g2, 0, g3].
    With s = 1 on every axis `a` itself is returned (no copy).
    """
    a = np.asarray(a)
    if ndim is None:
        ndim = a.ndim if _is_int(s) else len(tuple(s))
    s = _per_axis(s, ndim, "s")
    for ax, v in enumerate(s):
        if v < 1:
            raise ValueError(f"s must be >= 1 on axis {ax + 1} (got {v})")
    if all(v == 1 for v in s):
        return a
    lead = a.ndim - ndim
    out = np.zeros(a.shape[:lead] + tuple((n - 1) * v + 1 for n, v in zip(a.shape[lead:], s)), dtype=a.dtype)
    out[(Ellipsis,) + tuple(slice(None, None, v) for v in s)] = a
    return out


def pad(a, pairs) -> np.ndarray:
    """Pad the last len(pairs) axes with zeros by (lo, hi) each; a negative amount crops instead.

    Per axis the result has n + lo + hi elements and element m is a[m - lo] (zero outside a). Crops
    are slices a[lo : lo + size], never a[p:-p], which is empty for p = 0. A pure crop (or no
    padding) returns a view of `a`.
    """
    a = np.asarray(a)
    pairs = tuple((int(lo), int(hi)) for lo, hi in pairs)
    lead = a.ndim - len(pairs)
    sizes = tuple(n + lo + hi for n, (lo, hi) in zip(a.shape[lead:], pairs))
    if any(v < 0 for v in sizes):
        raise ValueError(f"padding {pairs} leaves a negative size for shape {a.shape[lead:]}")
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return a
    # Element m of the result is a[m - lo]: copy the overlap [max(lo, 0), min(size, n + lo)).
    dst = tuple(slice(max(lo, 0), max(min(size, n + lo), max(lo, 0)))
                for n, (lo, _), size in zip(a.shape[lead:], pairs, sizes))
    src = tuple(slice(d.start - lo, d.stop - lo) for d, (lo, _) in zip(dst, pairs))
    if all(lo <= 0 and hi <= 0 for lo, hi in pairs):
        return a[(Ellipsis, *src)]          # a pure crop is a view
    out = np.zeros(a.shape[:lead] + sizes, dtype=a.dtype)
    out[(Ellipsis, *dst)] = a[(Ellipsis, *src)]
    return out


# ----------------------------------------------------------------------------------------------------
# The one primitive

def _conv_general(x, w, window_strides, padding_pairs, lhs_dilation, rhs_dilation, groups):
    """Grouped, dilated correlation in PyTorch layout: x (N, C, *sp), w (F, C // groups, *k) -> (N, F, *o).

        y[n, f, o] = sum_{c in group(f), j} pad(dilate(x, lhs_dilation), padding)[n, c, o*s + j*d] w[f, c, j]
    """
    n, c = x.shape[:2]
    f = w.shape[0]
    y = _conv_general_grouped(x.reshape(n, groups, c // groups, *x.shape[2:]),
                              w.reshape(groups, f // groups, *w.shape[1:]),
                              window_strides, padding_pairs, lhs_dilation, rhs_dilation)
    return y.reshape(n, f, *y.shape[3:])


def _conv_general_grouped(x, w, window_strides, padding_pairs, lhs_dilation, rhs_dilation):
    """The primitive with the group axis explicit: x (B, G, C, *sp), w (G, F, C, *k) -> (B, G, F, *o).

    A strided window view of the padded, dilated input (no copy), sliced by the stride (window
    positions) and the dilation (taps), then one batched matmul over the groups (im2col).
    """
    nd = w.ndim - 3
    if any(v > 1 for v in lhs_dilation) and all(s == 1 for s in window_strides):
        return _conv_by_phase(x, w, padding_pairs, lhs_dilation, rhs_dilation)
    x = pad(dilate(x, lhs_dilation, nd), padding_pairs)
    k = w.shape[3:]
    eff = tuple(d * (kk - 1) + 1 for kk, d in zip(k, rhs_dilation))
    win = sliding_window_view(x, eff, axis=tuple(range(3, 3 + nd)))       # (B, G, C, *P, *eff)
    win = win[(slice(None),) * 3 + tuple(slice(None, None, s) for s in window_strides)
              + tuple(slice(None, None, d) for d in rhs_dilation)]        # (B, G, C, *o, *k)
    b, g, c = win.shape[:3]
    o = win.shape[3:3 + nd]
    f = w.shape[1]
    big_o, big_k = math.prod(o), math.prod(k)
    o_ax = tuple(range(3, 3 + nd))
    k_ax = tuple(range(3 + nd, 3 + 2 * nd))
    wm = np.ascontiguousarray(w).reshape(g, f, c * big_k)
    # The gather copy is fastest when its innermost loop is long: put the longer of (outputs, taps) last.
    if big_o >= big_k:
        cols = win.transpose(0, 1, 2, *k_ax, *o_ax).reshape(b, g, c * big_k, big_o)
        return np.matmul(wm, cols).reshape(b, g, f, *o)                   # (B, G, F, *o), contiguous
    else:
        cols = win.transpose(1, 0, *o_ax, 2, *k_ax).reshape(g, b * big_o, c * big_k)
        y = np.matmul(cols, wm.transpose(0, 2, 1)).reshape(g, b, *o, f)   # (G, B, *o, F)
        y = y.transpose(1, 0, 2 + nd, *range(2, 2 + nd))
    return np.ascontiguousarray(y)


def _conv_by_phase(x, w, padding_pairs, lhs_dilation, rhs_dilation):
    """The primitive with zero insertion (lhs_dilation s) and window stride 1, skipping the zeros.

    Same result as correlating pad(dilate(x, s), p) with w (what `conv_backward_steps` shows), but the
    outputs are split by phase r = o mod s: output o = r + s*t, tap j reads the dilated input at
    o + j*d - p_lo, a real input only when (r + j*d - p_lo) is a multiple of s, and then it is
    x[t + (r + j*d - p_lo) / s]. Those taps are every s/gcd(s, d)-th one, so each phase is a plain
    correlation of x with a slice of w at dilation d/gcd(s, d): the same primitive without zero
    insertion. This makes grad_x cost what the forward pass costs instead of s^ndim times more.
    """
    nd = w.ndim - 3
    n, k = x.shape[3:], w.shape[3:]
    out = tuple((ni - 1) * s + 1 + lo + hi - d * (ki - 1)
                for ni, ki, s, d, (lo, hi) in zip(n, k, lhs_dilation, rhs_dilation, padding_pairs))
    y = np.zeros(x.shape[:1] + w.shape[:2] + out, dtype=np.result_type(x.dtype, w.dtype))
    per_axis = []                        # for each axis: (output slice, tap slice, x padding, dilation)
    for ni, ki, s, d, (lo, _), o in zip(n, k, lhs_dilation, rhs_dilation, padding_pairs, out):
        step, dd = s // math.gcd(s, d), d // math.gcd(s, d)
        phases = []
        for r in range(min(s, o)):
            taps = [j for j in range(min(step, ki)) if (r + j * d - lo) % s == 0]
            if not taps:
                continue                 # this phase reads only inserted zeros
            j0 = taps[0]
            kk = len(range(j0, ki, step))
            c0 = (r + j0 * d - lo) // s  # x index read by tap j0 of output t = 0
            t = (o - r + s - 1) // s     # outputs in this phase
            if c0 >= ni or c0 + t - 1 + dd * (kk - 1) < 0:
                continue                 # every read of this phase falls outside x: zeros
            phases.append((slice(r, None, s), slice(j0, None, step), (-c0, t + dd * (kk - 1) - ni + c0), dd))
        per_axis.append(phases)
    for combo in itertools.product(*per_axis):
        out_sl, tap_sl, pads, dils = zip(*combo)
        y[(Ellipsis, *out_sl)] = _conv_general_grouped(x, w[(Ellipsis, *tap_sl)], (1,) * nd, pads,
                                                       (1,) * nd, dils)
    return y


# ----------------------------------------------------------------------------------------------------
# Public operations (each backward rule next to its forward)

def _float(a, name):
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise ValueError(f"{name} must be a real numeric array (got dtype {a.dtype})")
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def _batched(x, nd, name, layout):
    """(N, C, *sp) stays, (C, *sp) gets a batch axis; returns (array, was_unbatched)."""
    if x.ndim == nd + 2:
        return x, False
    if x.ndim == nd + 1:
        return x[None], True
    raise ValueError(f"{name} must have shape {layout} with {nd} spatial axes to match the weight "
                     f"(got shape {x.shape})")


def _check_weight(w, name, layout):
    if w.ndim < 3:
        raise ValueError(f"{name} must have shape {layout} with at least one spatial axis (got shape {w.shape})")


def _check_groups(groups):
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups must be an int >= 1 (got {groups!r})")
    return int(groups)


def _prepare_forward(x, w, stride, padding, dilation, groups):
    x, w = _float(x, "x"), _float(w, "w")
    _check_weight(w, "w", "(F, C // groups, *kernel)")
    nd = w.ndim - 2
    x, unbatched = _batched(x, nd, "x", "(N, C, *spatial) or (C, *spatial)")
    groups = _check_groups(groups)
    f, cg = w.shape[:2]
    c = x.shape[1]
    if c % groups:
        raise ValueError(f"groups must divide the input channels C = {c} (got groups = {groups})")
    if f % groups:
        raise ValueError(f"groups must divide the filters F = w.shape[0] = {f} (got groups = {groups})")
    if cg * groups != c:
        raise ValueError(f"w.shape[1] must be C // groups = {c} // {groups} = {c // groups} (got {cg})")
    g = conv_geometry(x.shape[2:], w.shape[2:], stride, padding, dilation)
    dtype = np.result_type(x.dtype, w.dtype)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False), g, groups, unbatched


def conv(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Convolution (cross-correlation, as in deep learning), PyTorch's ``F.conv{1,2,3}d``.

        y[n, f, o] = bias[f] + sum_{c in group(f), j} pad(x, p)[n, c, o*s + j*d] w[f, c, j]

    x: (N, C, *spatial) or (C, *spatial); w: (F, C // groups, *kernel); bias: (F,) or None.
    Backward: `conv_backward`.
    """
    x, w, g, groups, unbatched = _prepare_forward(x, w, stride, padding, dilation, groups)
    y = _conv_general(x, w, g.stride, g.padding, (1,) * g.ndim, g.dilation, groups)
    if bias is not None:
        bias = _float(bias, "bias")
        if bias.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},), one per filter (got {bias.shape})")
        y = y + bias.reshape(-1, *([1] * g.ndim))
    return y[0] if unbatched else y


def _prepare_backward(x, w, grad_y, stride, padding, dilation, groups):
    x, w, g, groups, unbatched = _prepare_forward(x, w, stride, padding, dilation, groups)
    grad_y = _float(grad_y, "grad_y")
    want = (x.shape[0], w.shape[0], *g.out_shape)
    if grad_y.shape != (want[1:] if unbatched else want):
        raise ValueError(f"grad_y must have the output's shape {want[1:] if unbatched else want} "
                         f"(got {grad_y.shape})")
    grad_y = grad_y.reshape(want).astype(np.result_type(x.dtype, grad_y.dtype), copy=False)
    return x, w, grad_y, g, groups, unbatched


def _grad_w(x, grad_y, g: ConvGeometry, groups, x_padding):
    """dL/dw[f, c, j] = sum_{n, o} pad(x, p)[n, c, o*s + j*d] dL/dy[n, f, o]: a correlation of the padded
    input with dL/dy as the kernel, stride d and dilation s (the roles swap), channels not summed:
    batch <-> channel axes are swapped so that the sum over n is the primitive's channel sum.
    x_padding crops the trailing cells no window reads, so exactly k taps come out."""
    n, c = x.shape[:2]
    f = grad_y.shape[1]
    nd = g.ndim
    sp = tuple(range(3, 3 + nd))
    xg = x.reshape(n, groups, c // groups, *x.shape[2:]).transpose(2, 1, 0, *sp)       # (Cg, G, N, *i)
    gg = grad_y.reshape(n, groups, f // groups, *g.out_shape).transpose(1, 2, 0, *sp)  # (G, Fg, N, *o)
    gw = _conv_general_grouped(xg, gg, g.dilation, x_padding, (1,) * nd, g.stride)    # (Cg, G, Fg, *k)
    return gw.transpose(1, 2, 0, *sp).reshape(f, c // groups, *g.kernel)


def _grad_w_padding(g: ConvGeometry):
    """(p_lo, p_hi - r): the padded input cropped to the cells the windows span (r = remainder)."""
    return tuple((lo, hi - r) for (lo, hi), r in zip(g.padding, g.remainder))


def conv_backward(x, w, grad_y, stride=1, padding=0, dilation=1, groups=1, with_bias=False):
    """Gradients of a scalar loss L through ``y = conv(x, w, bias, ...)`` given grad_y = dL/dy.

    Returns (grad_x, grad_w), or (grad_x, grad_w, grad_bias) with ``with_bias=True``:

        grad_w = corr(pad(x, p), grad_y; stride d, dilation s)          first k taps
        grad_x = conv_transpose(grad_y, w, stride s, padding p, dilation d, output_padding r)
               = corr(pad(dilate(grad_y, s), d(k-1) - p), flip(w); stride 1, dilation d)
        grad_bias[f] = sum over n and o of grad_y[n, f, o]

    where r = (i + p_lo + p_hi - d(k-1) - 1) mod s restores the trailing inputs no window reads
    (their gradient is exactly 0). All three go through the forward primitive.
    """
    x, w, grad_y, g, groups, unbatched = _prepare_backward(x, w, grad_y, stride, padding, dilation, groups)
    grad_w = _grad_w(x, grad_y, g, groups, _grad_w_padding(g))
    grad_x = _conv_transpose(grad_y, w, g.transpose(), groups)
    if unbatched:
        grad_x = grad_x[0]
    if with_bias:
        grad_bias = grad_y.sum(axis=(0, *range(2, 2 + g.ndim)))
        return grad_x, grad_w, grad_bias
    return grad_x, grad_w


def _swap_in_out(w, groups):
    """(A, B, *k) grouped as (G, A/G, B, *k) -> (B*G, A/G, *k): the weight of the adjoint map,
    turning a conv weight (F, C/G, *k) into a transposed-conv weight (C, F/G, *k) and back."""
    a, b = w.shape[:2]
    k = w.shape[2:]
    wg = w.reshape(groups, a // groups, b, *k).transpose(0, 2, 1, *range(3, 3 + len(k)))
    return wg.reshape(groups * b, a // groups, *k)


def _flip(w):
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def _transpose_padding(g: ConvGeometry):
    """Padding of dilate(x, s) that turns the transposed convolution into a correlation:
    (d(k-1) - p_lo, d(k-1) - p_hi + a); negative means crop."""
    return tuple((d * (k - 1) - lo, d * (k - 1) - hi + a) for k, d, (lo, hi), a
                 in zip(g.kernel, g.dilation, g.padding, g.output_padding))


def _conv_transpose(x, w, g: ConvGeometry, groups):
    """x (N, C_in, *i'), w (C_in, F/G, *k) in torch's transposed layout, g a transposed geometry."""
    wf = _flip(_swap_in_out(w, groups))                                   # (F, C_in/G, *k), flipped
    return _conv_general(x, wf, (1,) * g.ndim, _transpose_padding(g), g.stride, g.dilation, groups)


def conv_transpose(x, w, *, stride=1, padding=0, dilation=1, output_padding=0, groups=1, bias=None) -> np.ndarray:
    """Transposed convolution, PyTorch's ``F.conv_transpose{1,2,3}d`` (the adjoint of `conv`).

    x: (N, C_in, *spatial) or (C_in, *spatial); w: (C_in, F // groups, *kernel); bias: (F,) or None.
    Per axis o' = (i' - 1)*s - p_lo - p_hi + d*(k-1) + a + 1. Computed as: insert s-1 zeros between
    inputs, pad by d(k-1) - p (cropping where that is negative, plus a after), correlate with the
    flipped, in/out-swapped kernel at dilation d.
    """
    x, w = _float(x, "x"), _float(w, "w")
    _check_weight(w, "w", "(C_in, F // groups, *kernel)")
    nd = w.ndim - 2
    x, unbatched = _batched(x, nd, "x", "(N, C_in, *spatial) or (C_in, *spatial)")
    groups = _check_groups(groups)
    c = x.shape[1]
    if w.shape[0] != c:
        raise ValueError(f"w.shape[0] must equal the input channels C_in = {c} (got {w.shape[0]})")
    if c % groups:
        raise ValueError(f"groups must divide the input channels C_in = {c} (got groups = {groups})")
    g = conv_transpose_geometry(x.shape[2:], w.shape[2:], stride, padding, dilation, output_padding)
    dtype = np.result_type(x.dtype, w.dtype)
    y = _conv_transpose(x.astype(dtype, copy=False), w.astype(dtype, copy=False), g, groups)
    if bias is not None:
        bias = _float(bias, "bias")
        f = w.shape[1] * groups
        if bias.shape != (f,):
            raise ValueError(f"bias must have shape ({f},), one per output channel (got {bias.shape})")
        y = y + bias.reshape(-1, *([1] * nd))
    return y[0] if unbatched else y


# ----------------------------------------------------------------------------------------------------
# The backward pass step by step (what the animations show)

@dataclass(frozen=True, eq=False)
class ConvBackwardSteps:
    """Intermediate arrays of `conv_backward`, in the layout of the inputs (batched or not).

    grad_x path:  grad_y --dilate by s--> grad_y_dilated --pad by grad_x_padding--> grad_y_padded
                  --corr with w_flipped (grad_x_geometry: stride 1, dilation d)--> grad_x
    grad_w path:  x --pad by grad_w_padding--> x_padded
                  --corr with grad_y as kernel (grad_w_geometry: stride d, dilation s)--> grad_w

    Paddings are signed per-axis (lo, hi) pairs: negative amounts crop (p > d(k-1)), and the extra
    trailing r = geometry.remainder in grad_x_padding gives the zero gradient of unread inputs.
    """
    geometry: ConvGeometry
    grad_y: np.ndarray
    grad_y_dilated: np.ndarray
    grad_x_padding: tuple[tuple[int, int], ...]
    grad_y_padded: np.ndarray
    w_flipped: np.ndarray
    grad_x_geometry: ConvGeometry
    x_padded: np.ndarray
    grad_w_padding: tuple[tuple[int, int], ...]
    grad_w_geometry: ConvGeometry
    grad_x: np.ndarray
    grad_w: np.ndarray
    grad_bias: np.ndarray


def conv_backward_steps(x, w, grad_y, stride=1, padding=0, dilation=1, groups=1) -> ConvBackwardSteps:
    """`conv_backward` with every intermediate materialised (for figures; same primitive, same numbers).

    w_flipped is w reversed on every spatial axis, in the forward layout (F, C // groups, *kernel).
    """
    x, w, gy, g, groups, unbatched = _prepare_backward(x, w, grad_y, stride, padding, dilation, groups)
    nd = g.ndim
    gy_dilated = dilate(gy, g.stride)
    gx_pad = _transpose_padding(g.transpose())
    gy_padded = pad(gy_dilated, gx_pad)
    w_flipped = _flip(w)
    gx_geom = conv_geometry(gy_padded.shape[2:], g.kernel, 1, 0, g.dilation)
    grad_x = _conv_general(gy_padded, _swap_in_out(w_flipped, groups), (1,) * nd, ((0, 0),) * nd,
                           (1,) * nd, g.dilation, groups)
    gw_pad = _grad_w_padding(g)
    x_padded = pad(x, gw_pad)
    gw_geom = conv_geometry(x_padded.shape[2:], g.out_shape, g.dilation, 0, g.stride)
    grad_w = _grad_w(x_padded, gy, g, groups, ((0, 0),) * nd)
    grad_bias = gy.sum(axis=(0, *range(2, 2 + nd)))
    one = (lambda a: a[0]) if unbatched else (lambda a: a)
    return ConvBackwardSteps(g, one(gy), one(gy_dilated), gx_pad, one(gy_padded), w_flipped, gx_geom,
                             one(x_padded), gw_pad, gw_geom, one(grad_x), grad_w, grad_bias)
