"""Stories of the conv-arithmetic figures beside the convolution: the transposed convolution (scatter and
gather forms) and pooling (max and average, forward and backward). Same structure as `viz.story.conv`:
grids "x" (the input as drawn, channel first) and "y", one step per stamp or window, Lit roles
"window", "padding_tap", "muted", "output" (and "highlight": the maximum a max pool picks).

    transposed, scatter   y[m] = Σ_{n, j : n*s + j*d - p_lo = m} x[n] · w[j]     one step per input n
    transposed, gather    y = corr(pad(dilate(x, s), d(k-1) - p), flip(w); stride 1, dilation d)
    max pool              y[o] = max_j x[o*s + j*d - p];  ∂ℓ/∂x gets ∂ℓ/∂y[o] at the first maximum
    avg pool              y[o] = Σ_j x[o*s + j - p] / divisor[o];  ∂ℓ/∂x gets ∂ℓ/∂y[o] / divisor[o] per tap
"""
from __future__ import annotations

import math

import numpy as np

from viz import conv as V
from viz import pool as P
from viz import transpose as T
from viz.runs import example_data
from viz.story.conv import (RENDER_OPTIONS, SUM_TOLERANCE, _shape_str, names, params_text, positions_labels,
                            reads_text, weights)
from viz.story.core import Caption, Claim, Grid, Line, Lit, Step, Story, Write
from viz.text import fmt_factor, fmt_index, fmt_value, pretty_formula


def _grid(name, label, role, a, integer, padding=None, muted=None, axis_labels=()) -> Grid:
    a = np.asarray(a, dtype=float)
    flat = lambda m: () if m is None else tuple(bool(v) for v in np.broadcast_to(m, a.shape).ravel())  # noqa: E731
    return Grid(name, label, role, tuple(int(v) for v in a.shape), tuple(float(v) for v in a.ravel()),
                tuple(fmt_value(v, integer) for v in a.ravel()), flat(padding), flat(muted),
                tuple(tuple(ax) for ax in axis_labels))


def _plain(values: dict) -> dict:
    def plain(v):
        return [plain(e) for e in v] if isinstance(v, (list, tuple)) else v
    return {k: plain(v) for k, v in values.items()             # user arrays not given: not shown
            if k not in RENDER_OPTIONS and not (k in ("x", "w", "grad_y") and v is None)}


def _given(values: dict, data: dict, names, integer: bool) -> tuple[dict, bool]:
    """The seeded example data with the user's arrays (shapes checked by the registry) put in; integer
    formatting only if every array given is integral."""
    given = {k: np.asarray(values[k], dtype=float) for k in names if values.get(k) is not None}
    return {**data, **given}, integer and all(np.all(a == np.round(a)) for a in given.values())


def _cells(a) -> tuple:
    return tuple(tuple(int(v) for v in c) for c in a)


def conv_figure_story(values: dict) -> Story:
    """The forward convolution of one channel, for the static small-multiples figure."""
    from viz.story.conv import forward_story

    story = forward_story({**values, "channels": 1, "values": "int", "seed": values.get("seed", 0)})
    return Story("diagram conv", _plain(values), story.title, story.formula, story.grids, story.graph,
                 story.series, story.steps, story.captions, story.alt.replace("Animation", "Figure", 1),
                 story.description)


# ---- transposed convolution ------------------------------------------------------------------------

def transpose_story(values: dict) -> Story:
    """The transposed convolution of one channel: scatter (one step per input: its stamp on the output,
    the running sums written) or gather (one step per output: the flipped kernel over the spread input)."""
    g = V.conv_transpose_geometry(values["input"], values["kernel"], values.get("stride", 1),
                                  values.get("padding", 0), values.get("dilation", 1),
                                  values.get("output_padding", 0))
    integer = values.get("values", "int") == "int"
    data = example_data(g.in_shape, 1, g.kernel, g.out_shape, int(values.get("seed", 0)),
                        values.get("values", "int"))
    data, integer = _given(values, data, ("x", "w"), integer)
    x, w = data["x"], data["w"]                       # x (1, *i'), w (1, 1, *k): C_in = F = 1
    args = dict(stride=g.stride, padding=g.padding, dilation=g.dilation, output_padding=g.output_padding)
    y = V.conv_transpose(x, w, **args)[0]
    sc = T.scatter(x, w, **args)
    spread, holds, pads = T.gather_input(x, g.kernel, **args)
    gathered = V.conv(spread, np.flip(w, axis=tuple(range(2, 2 + g.ndim))), dilation=g.dilation)[0]
    form = values.get("form", "scatter")
    steps = _scatter_steps(g, x, w, sc, integer) if form == "scatter" else \
        _gather_steps(g, spread, holds, pads, w, gathered, integer)
    axes = ["length"] if g.ndim == 1 else ["rows", "cols"]
    formula = tuple(f"output {axes[a]}: {pretty_formula(g.formula(a))}" for a in range(g.ndim))
    nr = sc.stamps.never_read
    claims = (Claim("scatter-equals-conv-transpose", "the stamps add up to the transposed convolution",
                    float(np.max(np.abs(sc.y[0] - y))), "<=", SUM_TOLERANCE, "max |Σ stamps − y|", "tolerance"),
              Claim("gather-equals-scatter", "zeros inserted, padded, flipped kernel: the same output",
                    float(np.max(np.abs(gathered - y))), "<=", SUM_TOLERANCE, "max |gather − y|", "tolerance"))
    extra = f" Output padding {_shape_str(g.output_padding)} adds the last row/column after the stamps." \
        if any(g.output_padding) else ""
    captions = (Caption("Each input times the kernel is stamped onto the output; where stamps overlap they add. "
                        "The same output comes from inserting stride − 1 zeros between the inputs, padding by "
                        "d(k−1) − p and correlating with the flipped kernel." + extra, claims),
                Caption(f"Output size per axis: {'; '.join(formula)}.",
                        tuple(Claim(f"size-{a + 1}", f"output axis {a + 1} has {g.out_shape[a]} positions",
                                    float(y.shape[a]), "==", float(g.out_shape[a]), "drawn", "formula")
                              for a in range(g.ndim))))
    k_axes = [positions_labels(k) for k in g.kernel]
    grids = [_grid("x", "x", "input", x, integer, axis_labels=[("x",)] + [positions_labels(n) for n in g.in_shape]),
             _grid("w", "w", "kernel", w[0], integer, axis_labels=[("w",)] + k_axes),
             _grid("y", "y", "output", y, integer, axis_labels=[positions_labels(n) for n in g.out_shape])]
    if form == "gather":
        inside = V.pad(np.ones(V.dilate(x, g.stride).shape[1:]), pads) == 1
        grids.insert(1, _grid("x_spread", "x spread, padded", "input", spread, integer, padding=~inside,
                              muted=inside & ~holds))
    if nr:
        steps.append(Step("unreached", "cells no stamp reaches", f"No stamp reaches y[{names(nr)}]: they stay 0.",
                          lit=(Lit("y", "never_read", _cells(nr)),),
                          lines=(Line(f"no stamp reaches y[{names(nr)}]: 0", "never_read", ()),),
                          part="never_read"))
    alt = (f"Figure of a transposed convolution ({form} form): a {_shape_str(g.in_shape)} input, "
           f"{params_text(g)}, output {_shape_str(g.out_shape)}.")
    title = (f"Transposed convolution {g.ndim}-D ({form}): input {_shape_str(g.in_shape)}, {params_text(g)}"
             + (f", output padding {_shape_str(g.output_padding)}" if any(g.output_padding) else ""))
    return Story("diagram conv-transpose", _plain(values), title, formula, tuple(grids), steps=tuple(steps),
                 captions=captions, alt=alt, description=" ".join([alt] + [s.narration for s in steps]))


def _scatter_steps(g, x, w, sc, integer) -> list[Step]:
    nd = g.ndim
    running = np.zeros(g.out_shape)
    inputs = list(np.ndindex(*g.in_shape))
    steps = []
    for n, wt in zip(inputs, weights(len(inputs))):
        idx = sc.stamps.indices[n].reshape(-1, nd)
        keep = ~sc.stamps.is_padding[n].ravel()
        taps = list(np.ndindex(*g.kernel))
        cells = [tuple(int(v) for v in c) for c, k in zip(idx, keep) if k]
        for c, j, k in zip(idx, taps, keep):
            if k:
                running[tuple(c)] += x[(0, *n)] * w[(0, 0, *j)]
        xv = fmt_factor(x[(0, *n)], integer)
        label = f"x[{fmt_index(n)}]"
        where = reads_text("y", cells, int((~keep).sum()), channel=False).replace("padding zeros", "cropped taps")
        lines = (Line(f"{label} = {fmt_value(x[(0, *n)], integer)} times w lands on {where}", "window",
                      (float(x[(0, *n)]),)),
                 Line("running sums: " + ", ".join(f"y[{fmt_index(c)}] = {fmt_value(running[c], integer)}"
                                                   for c in cells[:6]) + (" …" if len(cells) > 6 else ""),
                      "output", tuple(float(running[c]) for c in cells)))
        steps.append(Step(f"x-{fmt_index(n).replace(',', '-')}", label,
                          f"{label} = {xv} times the kernel is stamped on {where}; overlapping stamps add up.",
                          lit=(Lit("x", "window", ((0, *n),)),
                               Lit("w", "window", tuple((0, *j) for j, k in zip(taps, keep) if k)),
                               Lit("y", "output", tuple(cells))),
                          lines=lines,
                          writes=tuple(Write("y", c, float(running[c]), fmt_value(running[c], integer))
                                       for c in cells),
                          weight=wt, part="scatter",
                          data={"input": list(n), "stamp": [list(c) for c in cells],
                                "taps": [list(j) for j, k in zip(taps, keep) if k],
                                "products": [float(x[(0, *n)] * w[(0, 0, *j)]) for j, k in zip(taps, keep) if k]}))
    return steps


def _gather_steps(g, spread, holds, pads, w, gathered, integer) -> list[Step]:
    nd = g.ndim
    win = V.windows(spread.shape[1:], g.kernel, 1, 0, g.dilation)
    inside = V.pad(np.ones(V.dilate(np.ones((1, *g.in_shape)), g.stride).shape[1:]), pads) == 1
    wf = np.flip(w[0, 0])
    outs = list(np.ndindex(*g.out_shape))
    steps = []
    for m, wt in zip(outs, weights(len(outs))):
        taps = [tuple(int(v) for v in t) for t in win.indices[m].reshape(-1, nd)]
        pairs = [(float(spread[(0, *t)]), float(wf[j])) for t, j in zip(taps, np.ndindex(*g.kernel))]
        label = f"y[{fmt_index(m)}]"
        n_held = sum(bool(holds[t]) for t in taps)
        body = " + ".join(f"{fmt_factor(a, integer)}·{fmt_factor(b, integer)}" for a, b in pairs)
        steps.append(Step(f"y-{fmt_index(m).replace(',', '-')}", label,
                          f"{label} = {fmt_value(gathered[m], integer)}: the flipped kernel over the spread input.",
                          lit=(Lit("x_spread", "window", tuple((0, *t) for t in taps if holds[t])),
                               Lit("x_spread", "muted", tuple((0, *t) for t in taps if inside[t] and not holds[t])),
                               Lit("x_spread", "padding_tap", tuple((0, *t) for t in taps if not inside[t])),
                               Lit("y", "output", (tuple(int(v) for v in m),))),
                          lines=(Line(f"{label}: flip(w) over the spread input reads {n_held} input "
                                      f"value{'s' if n_held != 1 else ''}", "window", ()),
                                 Line(f"{label} = {body} = {fmt_value(gathered[m], integer)}", "text",
                                      tuple(v for ab in pairs for v in ab) + (float(gathered[m]),))),
                          writes=(Write("y", tuple(int(v) for v in m), float(gathered[m]),
                                        fmt_value(gathered[m], integer)),),
                          weight=wt, part="gather"))
    return steps


# ---- pooling ---------------------------------------------------------------------------------------

def pool_story(values: dict, running: bool = False) -> Story:
    """Max or average pooling of one channel, forward (one step per window) then backward (one step per
    window: where its gradient goes; with `running`, each backward step also writes the running sums of
    ∂ℓ/∂x it adds to, ending at ∂ℓ/∂x)."""
    mode = values.get("mode", "max")
    g = P.pool_geometry(values["input"], values["kernel"], values.get("stride"), values.get("padding", 0),
                        values.get("dilation", 1) if mode == "max" else 1, values.get("ceil_mode", False))
    integer = values.get("values", "int") == "int"
    include_pad = values.get("count_include_pad", True)
    data = example_data(g.in_shape, 1, g.kernel, g.out_shape, int(values.get("seed", 0)), values.get("values", "int"))
    data, integer = _given(values, data, ("x", "grad_y"), integer)
    x, gy = data["x"], data["grad_y"]
    if mode == "max":
        y, arg = P.max_pool(x, g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode, return_indices=True)
    else:
        y, arg = P.avg_pool(x, g.kernel, g.stride, g.padding, g.ceil_mode, include_pad), None
    gx = P.pool_backward(x, gy, mode, g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode, include_pad)
    div = P.divisors(g, include_pad) if mode == "avg" else None
    lo = np.array([p for p, _ in g.windows.geometry.padding])
    xp = V.pad(x, g.windows.geometry.padding)
    pad_mask = V.pad(np.ones(g.in_shape), g.windows.geometry.padding) == 0
    steps, claims = [], []
    outs = list(np.ndindex(*g.out_shape))
    nd = len(g.in_shape)
    for o, wt in zip(outs, weights(len(outs))):
        taps = g.windows.indices[o].reshape(-1, nd)
        pads = g.windows.is_padding[o].ravel()
        drawn = [tuple(int(v) for v in t + lo) for t in taps]
        vals = [float(xp[(0, *d)]) for d in drawn]
        label = f"y[{fmt_index(o)}]"
        real = [tuple(int(v) for v in t) for t, p in zip(taps, pads) if not p]
        if mode == "max":
            win_at = tuple(int(v) for v in np.unravel_index(int(arg[(0, *o)]), g.in_shape))
            body = f"max({', '.join(fmt_value(v, integer) for v, p in zip(vals, pads) if not p)})"
            hl = (Lit("x", "highlight", ((0, *(int(a + b) for a, b in zip(win_at, lo))),)),)
            shown = [v for v, p in zip(vals, pads) if not p]
            claims.append(Claim(f"max-{fmt_index(o)}", f"{label} is the largest value it reads",
                                float(max(shown)), "==", float(y[(0, *o)]), "max of the window", label))
        else:
            body = f"({' + '.join(fmt_factor(v, integer) for v in vals)}) / {int(div[o])}"
            hl = ()
            claims.append(Claim(f"avg-{fmt_index(o)}", f"{label} is the window's sum over its divisor",
                                abs(math.fsum(vals) / div[o] - float(y[(0, *o)])), "<=", SUM_TOLERANCE,
                                "|Σ / divisor − y|", "tolerance"))
        yv = fmt_value(y[(0, *o)], integer and mode == "max")
        reads = reads_text("x", real, int(pads.sum()))
        if mode == "max" or g.ceil_mode:
            reads = reads.replace("padding zeros", "padding cells").replace("padding zero", "padding cell")
        steps.append(Step(f"y-{fmt_index(o).replace(',', '-')}", label,
                          f"{label} = {yv}: the {'largest' if mode == 'max' else 'mean'} of {reads}.",
                          lit=(Lit("x", "window", tuple((0, *d) for d, p in zip(drawn, pads) if not p)),
                               Lit("x", "padding_tap", tuple((0, *d) for d, p in zip(drawn, pads) if p)),
                               Lit("y", "output", (tuple(int(v) for v in o),))) + hl,
                          lines=(Line(f"{label} reads {reads}", "window", ()),
                                 Line(f"{label} = {body} = {yv}", "output", tuple(vals) + (float(y[(0, *o)]),))),
                          writes=(Write("y", tuple(int(v) for v in o), float(y[(0, *o)]), yv),),
                          weight=wt, part="forward"))
    steps += _pool_backward_steps(g, mode, gy, gx, arg, div, lo, integer, running)
    sums = float(np.sum(gx)), float(np.sum(gy))
    claims_back = (Claim("gradient-conserved", "pooling passes on all of ∂ℓ/∂y (nothing is lost or made)",
                         abs(sums[0] - sums[1]), "<=", 1e-9, "|Σ ∂ℓ/∂x − Σ ∂ℓ/∂y|", "tolerance"),) \
        if mode == "max" or not include_pad else ()
    what = "max" if mode == "max" else "average"
    captions = (Caption(f"Each output is the {what} of its window" + (" (padding never wins)." if mode == "max"
                        else f" (padding counts as 0, divisor {'with' if include_pad else 'without'} padding)."),
                        tuple(claims)),
                Caption("Backward: max pooling routes each gradient to the input that won its window; average "
                        "pooling spreads it evenly over the window." , claims_back))
    grids = (_grid("x", "x", "input", xp, integer, padding=pad_mask,
                   axis_labels=[("x",)] + [positions_labels(n, l, i) for n, l, i in zip(xp.shape[1:], lo, g.in_shape)]),
             _grid("y", "y", "output", y[0], integer and mode == "max"),
             _grid("grad_y", "∂ℓ/∂y", "gradient", gy[0], integer),
             _grid("grad_x", "∂ℓ/∂x", "gradient", gx[0], integer and mode == "max"))
    title = (f"{'Max' if mode == 'max' else 'Average'} pooling {nd}-D: input {_shape_str(g.in_shape)}, kernel "
             f"{_shape_str(g.kernel)}, stride {_shape_str(g.stride)}"
             + (f", padding {_shape_str(g.padding)}" if any(g.padding) else "")
             + (", ceil mode" if g.ceil_mode else ""))
    formula = tuple(f"output axis {a + 1}: {pretty_formula(g.formula(a))}" for a in range(nd))
    alt = f"Figure of {what} pooling: a {_shape_str(g.in_shape)} input, output {_shape_str(g.out_shape)}."
    return Story(f"animate pool", _plain(values), title, formula, grids, steps=tuple(steps), captions=captions,
                 alt=alt, description=" ".join([alt] + [s.narration for s in steps]))


def _pool_backward_steps(g, mode, gy, gx, arg, div, lo, integer, running=False) -> list[Step]:
    nd = len(g.in_shape)
    outs = list(np.ndindex(*g.out_shape))
    steps = []
    acc = np.zeros(g.in_shape)         # ∂ℓ/∂x so far: Σ over the windows done of what each sends
    for o, wt in zip(outs, weights(len(outs))):
        label = f"∂ℓ/∂y[{fmt_index(o)}]"
        gv = float(gy[(0, *o)])
        if mode == "max":
            to = (tuple(int(v) for v in np.unravel_index(int(arg[(0, *o)]), g.in_shape)),)
            words = f"{label} = {fmt_value(gv, integer)} goes to x[{fmt_index(to[0])}], the maximum"
        else:
            taps = g.windows.indices[o].reshape(-1, nd)
            to = tuple(tuple(int(v) for v in t) for t, p in zip(taps, g.windows.is_padding[o].ravel()) if not p)
            words = (f"{label} = {fmt_value(gv, integer)} spreads as {fmt_value(gv / div[o], False)} "
                     f"to each of {len(to)} inputs")
        share = gv if mode == "max" else gv / div[o]
        for t in to:
            acc[t] += share
        shown = integer and mode == "max"
        writes = tuple(Write("grad_x", t, float(acc[t]), fmt_value(acc[t], shown)) for t in to) if running else ()
        steps.append(Step(f"gy-{fmt_index(o).replace(',', '-')}", label, words + ".",
                          lit=(Lit("grad_y", "window", (tuple(int(v) for v in o),)),
                               Lit("grad_x", "output", to)),
                          lines=(Line(words, "gradient", (gv,)),), writes=writes,
                          weight=wt, part="grad_x", data={"to": [list(t) for t in to]}))
    return steps


# ---- animations: both forms of the transposed convolution in one Story ----------------------------

def _retarget(step: Step, names: dict) -> Step:
    """The same step drawn on renamed grids (the gather form writes its own output grid)."""
    import dataclasses

    return dataclasses.replace(step, lit=tuple(Lit(names.get(lit.target, lit.target), lit.role, lit.cells)
                                               for lit in step.lit),
                               writes=tuple(Write(names.get(w.target, w.target), w.cell, w.value, w.text)
                                            for w in step.writes))


def _output_padding_note(step: Step, values: dict, out_shape) -> Step:
    """The unreached step, saying which of its cells are the rows/columns output padding adds:
    index ≥ out − a on some axis (a = output padding)."""
    import dataclasses

    nd = len(out_shape)
    op = values.get("output_padding", 0)
    op = tuple(op) if isinstance(op, (tuple, list)) else (int(op),) * nd
    added = [c for c in step.lit_cells("y", "never_read") if any(c[a] >= out_shape[a] - op[a] for a in range(nd))]
    if not added:
        return step
    if nd == 1:
        what = f"y[{names(added)}]"
    else:
        span = lambda a: ", ".join(str(i + 1) for i in range(out_shape[a] - op[a], out_shape[a]))  # noqa: E731
        what = " and ".join(f"{('row', 'column')[a]}{'s' if op[a] > 1 else ''} {span(a)}" for a in range(nd) if op[a])
    text = f"output padding {_shape_str(op)} adds {what} after the last stamp"
    return dataclasses.replace(step, lines=step.lines + (Line(text, "never_read", ()),),
                               narration=step.narration + " " + text[0].upper() + text[1:] + ".")


def transpose_animation_story(values: dict) -> Story:
    """`animate conv-transpose`: the scatter form (one step per input: its stamp, the running sums
    rewritten), the outputs no stamp reaches (output padding: the extra last rows/columns), then the
    gather form on the same numbers (one step per output of `y_gather`: flip(w) over the spread input).

        y = Σ_n x[n] · stamp_n(w) = corr(pad(dilate(x, s), d(k−1) − p), flip(w))
    """
    scatter = transpose_story({**values, "form": "scatter"})
    gather = transpose_story({**values, "form": "gather"})
    w = scatter.grid("w")                            # shape (1, *kernel): axis 0 is the single filter
    axes = tuple(range(1, len(w.shape)))
    kf = np.flip(w.array(), axis=axes)
    tf = np.flip(np.asarray(w.texts, dtype=object).reshape(w.shape), axis=axes)
    w_flip = Grid("w_flip", "flip(w)", "kernel", w.shape, tuple(float(v) for v in kf.ravel()),
                  tuple(str(t) for t in tf.ravel()),     # the taps' 1-based labels run backwards too
                  axis_labels=(("flip(w)",),) + tuple(tuple(reversed(a)) for a in w.axis_labels[1:])
                  if w.axis_labels else ())
    y = gather.grid("y")
    y_gather = Grid("y_gather", "y (gather)", "output", y.shape, y.values, y.texts, axis_labels=y.axis_labels)
    grids = scatter.grids + (gather.grid("x_spread"), w_flip, y_gather)
    rename = {"y": "y_gather"}
    steps = tuple(_output_padding_note(s, values, y.shape) if s.part == "never_read" else s for s in scatter.steps)
    steps += tuple(_retarget(s, rename) for s in gather.steps if s.part == "gather")
    claims = tuple(c for cap in scatter.captions for c in cap.claims)
    captions = (Caption(scatter.captions[0].text, claims[:2]), scatter.captions[1])
    title = scatter.title.replace(" (scatter)", "")
    alt = scatter.alt.replace("Figure", "Animation", 1).replace("(scatter form)", "(scatter, then gather form)")
    return Story("animate conv-transpose", _plain(values), title, scatter.formula, grids, steps=steps,
                 captions=captions, alt=alt, description=" ".join([alt] + [s.narration for s in steps]))


def pool_animation_story(values: dict) -> Story:
    """`animate pool`: the pooling Story (forward then backward) as an animation."""
    import dataclasses

    story = pool_story(values, running=True)
    return dataclasses.replace(story, kind="animate pool", alt=story.alt.replace("Figure", "Animation", 1),
                               description=story.description.replace("Figure", "Animation", 1))
