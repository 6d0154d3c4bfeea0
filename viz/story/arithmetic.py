"""Stories of the conv-arithmetic figures beside the convolution: the one-channel forward figure and pooling
(max and average, forward and backward); the transposed convolution is
`viz.story.transposed`, which shares the grid helpers here. Same structure as `viz.story.conv`: grids
"x" (the input as drawn, channel first) and "y", one step per window, Lit roles "window",
"padding_tap", "muted", "output" (and "highlight": the maximum a max pool picks).

    max pool              y[o] = max_j x[o*s + j*d - p];  ∂ℓ/∂x gets ∂ℓ/∂y[o] at the first maximum
    avg pool              y[o] = Σ_j x[o*s + j - p] / divisor[o];  ∂ℓ/∂x gets ∂ℓ/∂y[o] / divisor[o] per tap
"""
from __future__ import annotations

import math

import numpy as np

from viz import conv as V
from viz import pool as P
from viz.runs import example_data
from viz.story.conv import (RENDER_OPTIONS, SUM_TOLERANCE, _shape_str, names, positions_labels, reads_text,
                            weights)
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
    never = _pool_never_read(g, gx, lo)
    steps += [never[0]] if never else []
    sums = float(np.sum(gx)), float(np.sum(gy))
    claims_back = (Claim("gradient-conserved", "pooling passes on all of ∂ℓ/∂y (nothing is lost or made)",
                         abs(sums[0] - sums[1]), "<=", 1e-9, "|Σ ∂ℓ/∂x − Σ ∂ℓ/∂y|", "tolerance"),) \
        if mode == "max" or not include_pad else ()
    what = "max" if mode == "max" else "average"
    captions = (Caption(f"Each output is the {what} of its window" + (" (padding never wins)." if mode == "max"
                        else f" (padding counts as 0, divisor {'with' if include_pad else 'without'} padding)."),
                        tuple(claims)),
                Caption("Backward: max pooling routes each gradient to the input that won its window; average "
                        "pooling spreads it evenly over the window." , claims_back)) + \
        ((never[1],) if never else ())
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
    return Story("animate pool", _plain(values), title, formula, grids, steps=tuple(steps), captions=captions,
                 alt=alt, description=" ".join([alt] + [s.narration for s in steps]))


def _pool_never_read(g, gx, lo):
    """(the closing step lighting the inputs no window reads, its caption), or None when every input
    is read: floor mode drops the inputs past the last full window, and their gradient is exactly 0."""
    nr = [tuple(int(v) for v in m) for m in g.windows.never_read]
    if not nr:
        return None
    worst = max(abs(float(gx[(0, *m)])) for m in nr)
    text = f"never read: x[{names(nr)}] — no window reads them, so their gradient is exactly 0"
    step = Step("never-read", "never read", text,
                lit=(Lit("x", "never_read", tuple((0, *(int(a + b) for a, b in zip(m, lo))) for m in nr)),
                     Lit("grad_x", "never_read", tuple(nr))),
                lines=(Line(f"never read: {len(nr)} input position{'s' if len(nr) > 1 else ''}", "never_read",
                            (float(len(nr)),)),
                       Line(f"x[{names(nr, 6)}]", "never_read", ()),
                       Line("no window reads them: their gradient is exactly 0", "text", ())),
                part="never_read", data={"never_read": [list(m) for m in nr]})
    caption = Caption(f"Never read: x[{names(nr)}]; no window reaches them, so their gradient is exactly 0.",
                      (Claim("never-read-zero-gradient", "never-read inputs get exactly zero gradient", worst, "==",
                             0.0, "max |∂ℓ/∂x| over never-read inputs", "zero"),))
    return step, caption


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


# ---- animations ------------------------------------------------------------------------------------

def pool_animation_story(values: dict) -> Story:
    """`animate pool`: the pooling Story (forward then backward) as an animation."""
    import dataclasses

    story = pool_story(values, running=True)
    return dataclasses.replace(story, kind="animate pool", alt=story.alt.replace("Figure", "Animation", 1),
                               description=story.description.replace("Figure", "Animation", 1))
