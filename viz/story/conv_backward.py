"""The convolution backward Story (`backward_story`), on the set-up the forward shares (`viz.story.conv`).

    grad_w    ∂ℓ/∂w[f, c, j] = Σ_o pad(x, p)[c, o*s + j*d] · ∂ℓ/∂y[f, o]      one step per tap j (per filter)
              (correlate pad(x) with ∂ℓ/∂y as the kernel: stride d, dilation s)
    grad_x    ∂ℓ/∂x[c, m] = Σ_f Σ_j pad(dilate(∂ℓ/∂y, s), d(k-1) - p)[f, m + j*d] · flip(w)[f, c, j]
              (the transposed convolution; f over the filters reading c)      one step per input m
    grad_b    ∂ℓ/∂b[f] = Σ_o ∂ℓ/∂y[f, o]                                      one step, with --bias

Every number comes from `viz.conv` (conv_backward_steps, conv_backward), every text from `viz.text`.
"""
from __future__ import annotations

import numpy as np

from viz import conv as V
from viz.story.conv import (MAX_TERMS_INLINE, _filter_weights, _Setup, _shape_str, _sum_claim, params_text,
                            positions_labels, products, reads_text, row_lines, weights)
from viz.story.core import Caption, Claim, Grid, Line, Lit, Step, Story, Write
from viz.text import MINUS, fmt_factor, fmt_index

def backward_story(values: dict) -> Story:
    """The backward pass: ∂ℓ/∂w one step per tap (per filter), ∂ℓ/∂x one step per input, ∂ℓ/∂b (with
    --bias), then the never-read inputs (exactly zero gradient).

        ∂ℓ/∂w[f, c', j] = Σ_o pad(x)[c, o*s + j*d] · ∂ℓ/∂y[f, o]              c = first(f) + c'
        ∂ℓ/∂x[c, m]     = Σ_{f reading c} Σ_j pad(dilate(∂ℓ/∂y, s))[f, m + j*d] · flip(w)[f, c', j]
    """
    S = _Setup(values)
    g, C = S.g, S.C
    st = V.conv_backward_steps(S.x, S.w, S.grad_y, **S.gargs)
    grad_x, grad_w, grad_b = V.conv_backward(S.x, S.w, S.grad_y, with_bias=True, **S.gargs)
    masks = _backward_masks(S, st)
    steps, claims = [], []
    taps = list(np.ndindex(*g.kernel))
    gw_win = st.grad_w_geometry.windows()
    for f in range(S.F):
        for j, wt in zip(taps, _filter_weights(S.F, len(taps))[f]):
            step, sums = _grad_w_step(S, f, j, gw_win, grad_w, wt)
            steps.append(step)
            claims += [_sum_claim(f"sum-{step.id}-{c + 1}", f"∂ℓ/∂w[{f + 1},{c + 1},{fmt_index(j)}]"
                                  if S.several else f"∂ℓ/∂w[{c + 1},{fmt_index(j)}]", t, grad_w[(f, c, *j)])
                       for c, t in enumerate(sums)]
    inputs = list(np.ndindex(*g.in_shape))
    gx_win = st.grad_x_geometry.windows()
    for m, wt in zip(inputs, weights(len(inputs))):
        step, sums = _grad_x_step(S, m, gx_win, st, grad_x, masks, wt)
        steps.append(step)
        claims += [_sum_claim(f"sum-{step.id}-{c + 1}", f"∂ℓ/∂x[{c + 1},{fmt_index(m)}]", t, grad_x[(c, *m)])
                   for c, t in enumerate(sums)]
    if S.b is not None:
        step, bias_claims = _grad_b_step(S, grad_b)
        steps.append(step)
        claims += bias_claims
    nr_step, nr_text = S.never_read_step([("x", S.drawn), ("grad_x", lambda m: tuple(int(v) for v in m))],
                                         "no window reads them: their gradient is exactly 0")
    steps += [nr_step] if nr_step else []
    nr = S.win.never_read
    worst = max((abs(float(grad_x[(c, *m)])) for c in range(C) for m in nr), default=0.0)
    summed = (" ∂ℓ/∂x sums over the filters that read each channel." if S.several else "")
    captions = [
        Caption("Every gradient entry is the sum of the products shown (channels are not summed)." + summed,
                tuple(claims)),
        Caption(nr_text[0].upper() + nr_text[1:] + ".",
                (Claim("never-read-zero-gradient", "never-read inputs get exactly zero gradient", worst, "==",
                       0.0, "max |∂ℓ/∂x| over never-read inputs", "zero"),) if nr else ()),
    ]
    filters = f" with {S.F} filters" + (f" in {S.G} groups" if S.G > 1 else "") if S.several else ""
    alt = (f"Animation of the convolution backward pass for {C} channel{'s' if C > 1 else ''} of size "
           f"{_shape_str(g.in_shape)} ({params_text(g)}){filters}: ∂ℓ/∂w by correlating the padded input "
           f"with ∂ℓ/∂y, then ∂ℓ/∂x as a transposed convolution with the flipped kernel.")
    desc = " ".join([alt] + [s.narration for s in steps])
    return Story("animate conv-backward", S.shown_params(), S.title("Convolution backward"),
                 _backward_formula(S, st), _backward_grids(S, st, masks, grad_w, grad_x, grad_b),
                 steps=tuple(steps), captions=tuple(captions), alt=alt, description=desc)


def _backward_masks(S: _Setup, st) -> dict:
    """Masks of the dilated and the padded, dilated ∂ℓ/∂y (the reference's dilate/pad applied to ones;
    spatial: the same for every filter): inserted zeros, entries, inside the padding; and which
    upstream entry each padded cell holds (1-based flat index, 0 for a zero)."""
    g = S.g
    flat = np.arange(1, int(np.prod(g.out_shape)) + 1, dtype=float).reshape(g.out_shape)
    return {"inserted": V.dilate(np.ones(g.out_shape), g.stride) == 0,
            "entry": V.pad(V.dilate(np.ones(g.out_shape), g.stride), st.grad_x_padding) == 1,
            "inside": V.pad(np.ones(st.grad_y_dilated.shape[1:]), st.grad_x_padding) == 1,
            "label_of": V.pad(V.dilate(flat, g.stride), st.grad_x_padding).astype(int)}


def _per_filter(S: _Setup, a, name: str, axes) -> tuple:
    """A per-filter array (F, ...) as drawn: without the filter axis for one filter, else with the
    filter names ("∂ℓ/∂y1", ...) as its first axis."""
    if not S.several:
        return a[0], list(axes)
    return a, [tuple(f"{name}{f + 1}" for f in range(S.F))] + list(axes)


def _backward_grids(S: _Setup, st, masks, grad_w, grad_x, grad_b) -> tuple[Grid, ...]:
    g = S.g
    out_axes = [positions_labels(n) for n in g.out_shape]
    k_axes = [positions_labels(k) for k in g.kernel]
    # which upstream position each cell of the dilated (and padded) gradient holds, per axis
    dil_axes = [[o // s if o % s == 0 else None for o in range((n - 1) * s + 1)]
                for n, s in zip(g.out_shape, g.stride)]
    pad_axes = [[None if not 0 <= m - lo < len(ax) else ax[m - lo] for m in range(n)]
                for ax, (lo, _), n in zip(dil_axes, st.grad_x_padding, st.grad_y_padded.shape[1:])]
    inside, entry = masks["inside"], masks["entry"]
    drawn = lambda a: a.reshape(S.F * S.Cg, *g.kernel)  # noqa: E731  (F, C/G, *k) as F·C/G rows/panels
    w_names = S.w_labels()
    gw_names = w_names if S.several else S.channels("∂ℓ/∂w")
    a, ax = _per_filter(S, S.grad_y, "∂ℓ/∂y", out_axes)
    grids = [S.x_grid(), S.grid("grad_y", "∂ℓ/∂y", "gradient", a, axis_labels=ax)]
    if any(s > 1 for s in g.stride):
        a, ax = _per_filter(S, st.grad_y_dilated, "∂ℓ/∂y", [positions_labels(len(d), order=d) for d in dil_axes])
        grids.append(S.grid("grad_y_dilated", f"∂ℓ/∂y dilated by {_shape_str(g.stride)}", "gradient", a,
                            muted=masks["inserted"], axis_labels=ax))
    a, ax = _per_filter(S, st.grad_y_padded, "∂ℓ/∂y", [positions_labels(len(d), order=d) for d in pad_axes])
    grids += [S.grid("grad_y_padded", "∂ℓ/∂y dilated, padded", "gradient", a, padding=~inside,
                     muted=inside & ~entry, axis_labels=ax),
              S.grid("w", "w", "kernel", drawn(S.w), axis_labels=[w_names] + k_axes),
              S.grid("w_flipped", "flip(w)", "kernel", drawn(st.w_flipped),
                     axis_labels=[w_names] + [positions_labels(k, order=range(k - 1, -1, -1)) for k in g.kernel]),
              S.grid("grad_w", "∂ℓ/∂w", "gradient", drawn(grad_w), axis_labels=[gw_names] + k_axes),
              S.grid("grad_x", "∂ℓ/∂x", "gradient", grad_x,
                     axis_labels=[S.channels("∂ℓ/∂x")] + [positions_labels(n) for n in g.in_shape])]
    if S.b is not None:
        grids.append(S.grid("grad_b", "∂ℓ/∂b", "gradient", grad_b,
                            axis_labels=[tuple(f"∂ℓ/∂b{f + 1}" for f in range(S.F)) if S.several else ("∂ℓ/∂b",)]))
    return tuple(grids)


def _backward_formula(S: _Setup, st) -> tuple[str, str]:
    g = S.g
    strided = any(s > 1 for s in g.stride)
    s_txt = _shape_str(g.stride)
    pads = " × ".join(f"({lo},{hi})" for lo, hi in st.grad_x_padding).replace("-", MINUS)
    over = ", summed over filters" if S.several else ""
    return (f"∂ℓ/∂w = correlate the padded x with ∂ℓ/∂y as the kernel: stride "
            f"{_shape_str(st.grad_w_geometry.stride)}, dilation {_shape_str(st.grad_w_geometry.dilation)}"
            + (f" (the forward stride {s_txt} becomes a dilation of {s_txt})" if strided else ""),
            "∂ℓ/∂x = transposed convolution: " + (f"dilate ∂ℓ/∂y by {s_txt}, " if strided else "")
            + f"pad by {pads}, correlate with flip(w): stride 1, dilation {_shape_str(g.dilation)}{over}")


def _grad_b_step(S: _Setup, grad_b) -> tuple[Step, list[Claim]]:
    """∂ℓ/∂b[f] = Σ ∂ℓ/∂y[f]: the bias adds to every output of its filter. Entries listed up to
    MAX_TERMS_INLINE."""
    lines, claims, writes = [Line("∂ℓ/∂b reads every entry of ∂ℓ/∂y", "window", ())], [], []
    for f in range(S.F):
        gy = [float(v) for v in S.grad_y[f].ravel()]
        inline = len(gy) <= MAX_TERMS_INLINE
        terms = " + ".join(fmt_factor(v, S.integer) for v in gy) if inline else f"Σ of {len(gy)} entries"
        name, of = (f"∂ℓ/∂b{f + 1}", f"∂ℓ/∂y{f + 1}") if S.several else ("∂ℓ/∂b", "∂ℓ/∂y")
        lines.append(Line(f"{name} = Σ {of} = {terms} = {S.fmt(grad_b[f])}", "output",
                          (tuple(gy) if inline else (float(len(gy)),)) + (float(grad_b[f]),)))
        writes.append(Write("grad_b", (f,), float(grad_b[f]), S.fmt(grad_b[f])))
        claims.append(_sum_claim("sum-grad-b" + (f"-{f + 1}" if S.several else ""), name, gy, grad_b[f]))
    cells = tuple(S.y_cell(f, o) for f in range(S.F) for o in np.ndindex(*S.g.out_shape))
    values = ", ".join(S.fmt(v) for v in grad_b)
    step = Step("grad-b", "∂ℓ/∂b", f"∂ℓ/∂b = {values}: the bias adds to every output"
                f"{' of its filter' if S.several else ''}, so its gradient is the sum of all of "
                f"{'its' if S.several else ''} ∂ℓ/∂y.".replace("of  ∂", "of ∂"),
                lit=(Lit("grad_y", "window", cells), Lit("grad_b", "output", tuple((f,) for f in range(S.F)))),
                lines=tuple(lines), writes=tuple(writes), part="grad_b")
    return step, claims


def _grad_w_step(S: _Setup, f: int, j, win: V.Windows, grad_w, weight: float):
    """∂ℓ/∂w[f, c, j] for every channel c filter f reads: the grad_w correlation's window at its
    output j (over the drawn x), ∂ℓ/∂y[f] as the kernel."""
    g, nd = S.g, S.g.ndim
    chans = list(S.channels_of(f))
    taps = [tuple(int(v) for v in t) for t in win.indices[j].reshape(-1, nd)]   # drawn-x coordinates
    outs = list(np.ndindex(*g.out_shape))
    pad = [bool(S.pad_mask[t]) for t in taps]
    pairs = [[(float(S.xp[(c, *t)]), float(S.grad_y[(f, *n)])) for t, n in zip(taps, outs)] for c in chans]
    vals = [float(grad_w[(f, i, *j)]) for i in range(len(chans))]
    name = f"∂ℓ/∂w{f + 1}" if S.several else "∂ℓ/∂w"
    label = f"{name}[{fmt_index(j)}]" if len(chans) == 1 else f"{name}[·, {fmt_index(j)}]"
    real = [tuple(int(v) - int(lo) for v, lo in zip(t, S.lo)) for t, p in zip(taps, pad) if not p]
    reads = (reads_text("x", [(c, *r) for c in chans for r in real], sum(pad), channel=False) if S.G > 1
             else reads_text("x", real, sum(pad)))
    lines = [Line(f"{label} reads {reads}", "window", ())] + \
        ([Line(S.filter_words(f) + f", ∂ℓ/∂y{f + 1} as the kernel", "text", ())] if S.several else []) + \
        _gradient_lines(S, label, name, j, pairs, vals, g.out_shape[-1], chans)
    lit = (Lit("x", "window", tuple((c, *t) for c in chans for t, p in zip(taps, pad) if not p)),
           Lit("x", "padding_tap", tuple((c, *t) for c in chans for t, p in zip(taps, pad) if p)),
           Lit("grad_w", "output", tuple((r, *j) for r in S.w_rows(f))))
    if S.several:                 # the kernel in use: ∂ℓ/∂y of this filter
        lit += (Lit("grad_y", "window", tuple(S.y_cell(f, n) for n in outs)),)
    narration = (f"{label} = {', '.join(S.fmt(v) for v in vals)}: ∂ℓ/∂y{f + 1 if S.several else ''} as the "
                 f"kernel reads {reads}, channel by channel.")
    data = {"output": [int(v) for v in j], "cells": [list(r) for r in real], "values": vals, "full": weight >= 1.0}
    if S.several:
        data.update(filter=f, channels=chans)
    sid = ("gw-" if not S.several else f"gw{f + 1}-") + fmt_index(j).replace(',', '-')
    step = Step(sid, label, narration, lit=lit, lines=tuple(lines),
                writes=tuple(Write("grad_w", (r, *j), vals[i], S.fmt(vals[i])) for i, r in enumerate(S.w_rows(f))),
                weight=weight, part="grad_w", data=data)
    return step, [[a * b for a, b in pc] for pc in pairs]


def _gradient_lines(S: _Setup, label: str, name: str, index, pairs, vals, cols: int, chans) -> list[Line]:
    """The products of one gradient entry: one line per row of a 2-D window (one channel, one
    filter), one line (one channel), or one line per channel, "∂ℓ/∂w[c,j] = …" (channels are not
    summed; with several filters "channel c: …")."""
    # a channel's ∂ℓ/∂x terms run over its filters' kernels: rows of one kernel only with one filter
    if len(pairs) == 1 and S.g.ndim == 2 and not (S.several and name == "∂ℓ/∂x"):
        return row_lines(f"{label} =", pairs[0], cols, vals[0], S.integer)
    if len(pairs) == 1:
        return [products(pairs[0], vals[0], S.integer, head=f"{label} = ")]
    heads = [f"channel {c + 1}: " if S.several else f"{name}[{c + 1},{fmt_index(index)}] = " for c in chans]
    return [products(pairs[i], vals[i], S.integer, head=heads[i]) for i in range(len(pairs))]


def _grad_x_step(S: _Setup, m, win: V.Windows, st, grad_x, masks, weight: float):
    """∂ℓ/∂x[c, m] for every channel c: flip(w) over the padded, dilated gradient at position m, summed
    over the filters that read channel c."""
    g, C, nd = S.g, S.C, S.g.ndim
    entry, inside, label_of = masks["entry"], masks["inside"], masks["label_of"]
    gyp = st.grad_y_padded
    taps = [tuple(int(v) for v in t) for t in win.indices[m].reshape(-1, nd)]
    k_index = list(np.ndindex(*g.kernel))
    readers = [[f for f in range(S.F) if c in S.channels_of(f)] for c in range(C)]
    pairs = [[(float(gyp[(f, *t)]), float(st.w_flipped[(f, c % S.Cg, *kk)]))
              for f in readers[c] for t, kk in zip(taps, k_index)] for c in range(C)]
    vals = [float(grad_x[(c, *m)]) for c in range(C)]
    sources = sorted(tuple(int(v) for v in np.unravel_index(int(label_of[t]) - 1, g.out_shape))
                     for t in taps if label_of[t] > 0)
    label = f"∂ℓ/∂x[{fmt_index(m)}]" if C == 1 else f"∂ℓ/∂x[·, {fmt_index(m)}]"
    src = ", ".join(f"∂ℓ/∂y[{fmt_index(o)}]" for o in sources[:6]) + (" …" if len(sources) > 6 else "")
    words = f"{label} reads {src}" if sources else f"{label} reads only zeros (no window reads x[{fmt_index(m)}])"
    if sources and S.several:
        words = words.replace("∂ℓ/∂y[", "∂ℓ/∂y·[", 1).replace(", ∂ℓ/∂y[", ", ∂ℓ/∂y·[")
    lines = [Line(words, "window", ())] + \
        ([Line(f"each channel sums over the {len(readers[0])} filter{'s' if len(readers[0]) > 1 else ''} "
               f"reading it", "text", ())] if S.several else []) + \
        _gradient_lines(S, label, "∂ℓ/∂x", m, pairs, vals, g.kernel[-1], range(C))
    filt = range(S.F)
    lit = (Lit("grad_y_padded", "window", tuple(S.y_cell(f, t) for f in filt for t in taps if entry[t])),
           Lit("grad_y_padded", "padding_tap", tuple(S.y_cell(f, t) for f in filt for t in taps if not inside[t])),
           Lit("grad_y_padded", "muted", tuple(S.y_cell(f, t) for f in filt for t in taps
                                                if inside[t] and not entry[t])),
           Lit("grad_x", "output", tuple((c, *(int(v) for v in m)) for c in range(C))))
    per = S.F // S.G
    over = f", summed over the {per} filter{'s' if per > 1 else ''} reading each channel" if S.several else ""
    narration = (f"{label} = {', '.join(S.fmt(v) for v in vals)}: the flipped kernel over the dilated, padded "
                 f"∂ℓ/∂y picks up {len(sources)} upstream entr{'y' if len(sources) == 1 else 'ies'}{over}.")
    data = {"output": [int(v) for v in m], "sources": [list(s) for s in sources], "values": vals,
            "full": weight >= 1.0, "taps": [list(t) for t in taps]}
    step = Step(f"gx-{fmt_index(m).replace(',', '-')}", label, narration, lit=lit, lines=tuple(lines),
                writes=tuple(Write("grad_x", (c, *(int(v) for v in m)), vals[c], S.fmt(vals[c])) for c in range(C)),
                weight=weight, part="grad_x", data=data)
    return step, [[a * b for a, b in pc] for pc in pairs]
