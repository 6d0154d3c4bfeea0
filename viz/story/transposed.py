"""Stories of the transposed convolution (`diagram conv-transpose`, `animate conv-transpose`), in
PyTorch's ConvTranspose layout without the batch axis: x (C_in, *i'), w (C_in, F/G, *k), y (F, *o').
Input channel c belongs to group c // (C_in/G) and feeds the F/G maps of that group.

    scatter   y[f, m] = Σ_{c in group(f)} Σ_{n, j : n*s + j*d - p_lo = m} x[c, n] · w[c, f − first(f), j]
              one step per input cell (c, n): x[c, n] times w[c, ·] stamped onto every map of c's group
    gather    y[f] = Σ_{c in group(f)} corr(pad(dilate(x[c], s), d(k−1) − p), flip(w[c, f − first(f)]))
              one step per output cell (f, o): the flipped kernels over the group's spread channels

Grids as drawn: "x" (C_in, *i'); "w" (C_in·F/G, *k), row c·F/G + f' the kernel channel c stamps onto
map f' of its group; "y" (*o') for one map, (F, *o') for several; "x_spread" (C_in, *spread). Names
(1-based, as the course writes them): channels "x2", maps "y3", kernel slices "w2[y3]" (the kernel
x2 stamps onto y3; "w2" when there is one map, "w[y3]" when there is one channel). With one channel
and one map every grid, step and text is the single-channel figure's.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from viz import conv as V
from viz import transpose as T
from viz.runs import example_data
from viz.story.arithmetic import _cells, _given, _grid, _plain
from viz.story.conv import SUM_TOLERANCE, _shape_str, names, params_text, positions_labels, reads_text, weights
from viz.story.conv_text import products
from viz.story.core import Caption, Claim, Grid, Line, Lit, Step, Story, Write
from viz.story.groups import Groups, group_claims
from viz.text import fmt_factor, fmt_index, fmt_value, pretty_formula


class Maps(Groups):
    """Channels, maps and groups of one transposed convolution: who feeds whom (`Groups`), and their names."""

    def __init__(self, channels: int = 1, filters: int = 1, groups: int = 1):
        super().__init__(channels, filters, groups)
        self.multi = self.C > 1 or self.F > 1

    def x_name(self, c: int) -> str:
        return "x" if self.C == 1 else f"x{c + 1}"

    def y_name(self, f: int) -> str:
        return "y" if self.F == 1 else f"y{f + 1}"

    def w_name(self, c: int, f: int) -> str:
        if not self.multi:
            return "w"
        return f"w{c + 1}" if self.F == 1 else f"w[y{f + 1}]" if self.C == 1 else f"w{c + 1}[y{f + 1}]"

    def w_row(self, c: int, f: int) -> int:
        """Row (1-D) or panel (2-D) of w[c, f − first(f)] in the drawn kernel grid."""
        return c * self.Fg + f % self.Fg

    def w_labels(self) -> tuple[str, ...]:
        return tuple(self.w_name(c, f) for c in range(self.C) for f in self.maps_of(c))

    def y_cell(self, f: int, cell) -> tuple[int, ...]:
        cell = tuple(int(v) for v in cell)
        return (f, *cell) if self.F > 1 else cell

    def group_words(self, c: int) -> str:
        return f" (group {c // self.Cg + 1} of {self.G})" if self.G > 1 else ""

    def shown(self, values: dict) -> dict:
        """The figure's parameters as shown: one channel, map or group (the defaults) left out."""
        return {k: v for k, v in _plain(values).items() if not (k in ("channels", "filters", "groups") and v == 1)}


def _setup(values: dict):
    g = V.conv_transpose_geometry(values["input"], values["kernel"], values.get("stride", 1),
                                  values.get("padding", 0), values.get("dilation", 1),
                                  values.get("output_padding", 0))
    M = Maps(values.get("channels", 1), values.get("filters", 1), values.get("groups", 1))
    integer = values.get("values", "int") == "int"
    # the forward example's stream: x (C_in, *i') first, then a (F/G, C_in, *k) kernel read as w (C_in, F/G, *k)
    seeded = example_data(g.in_shape, M.C, g.kernel, g.out_shape, int(values.get("seed", 0)),
                          values.get("values", "int"), filters=M.Fg)
    data, integer = _given(values, {"x": seeded["x"], "w": np.swapaxes(seeded["w"], 0, 1)}, ("x", "w"), integer)
    return g, M, data["x"], data["w"], integer


def _gather_kernel(M: Maps, w, nd: int):
    """The gather form's kernel (F, C_in/G, *k): w's in/out axes swapped per group, flipped in space."""
    k = w.shape[2:]
    swapped = w.reshape(M.G, M.Cg, M.Fg, *k).swapaxes(1, 2).reshape(M.F, M.Cg, *k)
    return np.flip(swapped, axis=tuple(range(2, 2 + nd)))


def transpose_story(values: dict) -> Story:
    """The transposed convolution: scatter (one step per input cell: its stamps on the maps of its
    group, the running sums written) or gather (one step per output cell: the flipped kernels over the
    group's spread, padded input channels)."""
    g, M, x, w, integer = _setup(values)
    args = dict(stride=g.stride, padding=g.padding, dilation=g.dilation, output_padding=g.output_padding)
    y = V.conv_transpose(x, w, groups=M.G, **args)                    # (F, *o')
    sc = T.scatter(x, w, groups=M.G, **args)
    spread, holds, pads = T.gather_input(x, g.kernel, **args)
    gathered = V.conv(spread, _gather_kernel(M, w, g.ndim), dilation=g.dilation, groups=M.G)
    form = values.get("form", "scatter")
    steps = _scatter_steps(g, M, x, w, sc, integer) if form == "scatter" else \
        _gather_steps(g, M, spread, holds, pads, w, gathered, integer)
    axes = ["length"] if g.ndim == 1 else ["rows", "cols"]
    formula = tuple(f"output {axes[a]}: {pretty_formula(g.formula(a))}" for a in range(g.ndim))
    nr = sc.stamps.never_read
    claims = (Claim("scatter-equals-conv-transpose", "the stamps add up to the transposed convolution",
                    float(np.max(np.abs(sc.y - y))), "<=", SUM_TOLERANCE, "max |Σ stamps − y|", "tolerance"),
              Claim("gather-equals-scatter", "zeros inserted, padded, flipped kernel: the same output",
                    float(np.max(np.abs(gathered - y))), "<=", SUM_TOLERANCE, "max |gather − y|", "tolerance"))
    extra = f" Output padding {_shape_str(g.output_padding)} adds the last row/column after the stamps." \
        if any(g.output_padding) else ""
    several = (f" Every input channel is stamped with its own kernel onto each map of its group, and each map "
               f"sums the stamps of its group's {M.Cg} channel{'s' if M.Cg > 1 else ''}.") if M.multi else ""
    captions = [Caption("Each input times the kernel is stamped onto the output; where stamps overlap they add. "
                        "The same output comes from inserting stride − 1 zeros between the inputs, padding by "
                        "d(k−1) − p and correlating with the flipped kernel." + several + extra, claims),
                Caption(f"Output size per axis: {'; '.join(formula)}.",
                        tuple(Claim(f"size-{a + 1}", f"output axis {a + 1} has {g.out_shape[a]} positions",
                                    float(y.shape[1 + a]), "==", float(g.out_shape[a]), "drawn", "formula")
                              for a in range(g.ndim)))]
    if M.G > 1:
        captions.append(groups_caption(M, steps))
    grids = _grids(g, M, x, w, y, integer)
    if form == "gather":
        grids.insert(1, _spread_grid(g, M, x, spread, holds, pads, integer))
    if nr:
        steps.append(_unreached_step(M, nr))
    title = (f"Transposed convolution {g.ndim}-D ({form}): input {_input_words(g, M)}, {params_text(g)}"
             + (f", {M.F} output maps" if M.F > 1 else "") + (f", {M.G} groups" if M.G > 1 else "")
             + (f", output padding {_shape_str(g.output_padding)}" if any(g.output_padding) else ""))
    maps = f"{M.F} output maps of {_shape_str(g.out_shape)}" if M.F > 1 else f"output {_shape_str(g.out_shape)}"
    alt = (f"Figure of a transposed convolution ({form} form): a {_input_words(g, M, alt=True)}, "
           f"{params_text(g)}{f', {M.G} groups' if M.G > 1 else ''}, {maps}.")
    return Story("diagram conv-transpose", M.shown(values), title, formula, tuple(grids), steps=tuple(steps),
                 captions=tuple(captions), alt=alt, description=" ".join([alt] + [s.narration for s in steps]))


def _input_words(g, M: Maps, alt: bool = False) -> str:
    if M.C == 1:
        return f"{_shape_str(g.in_shape)} input" if alt else _shape_str(g.in_shape)
    return f"{M.C}-channel input of size {_shape_str(g.in_shape)}" if alt else f"{M.C} channels × {_shape_str(g.in_shape)}"


def _grids(g, M: Maps, x, w, y, integer) -> list[Grid]:
    k_axes = [positions_labels(k) for k in g.kernel]
    out_axes = [positions_labels(n) for n in g.out_shape]
    chans = ("x",) if M.C == 1 else tuple(M.x_name(c) for c in range(M.C))
    y_grid = _grid("y", "y", "output", y, integer, axis_labels=[tuple(M.y_name(f) for f in range(M.F))] + out_axes) \
        if M.F > 1 else _grid("y", "y", "output", y[0], integer, axis_labels=out_axes)
    return [_grid("x", "x", "input", x, integer, axis_labels=[chans] + [positions_labels(n) for n in g.in_shape]),
            _grid("w", "w", "kernel", w.reshape(M.C * M.Fg, *g.kernel), integer, axis_labels=[M.w_labels()] + k_axes),
            y_grid]


def _spread_grid(g, M: Maps, x, spread, holds, pads, integer) -> Grid:
    """The zero-spread, padded input; with several channels named by channel, each cell holding an input
    labelled with that input's position."""
    inside = V.pad(np.ones(V.dilate(x, g.stride).shape[1:]), pads) == 1
    labels = ()
    if M.multi:
        def held(a):
            lo, n, s = pads[a][0], g.in_shape[a], g.stride[a]
            return [(t - lo) // s if (t - lo) % s == 0 and 0 <= (t - lo) // s < n else None
                    for t in range(spread.shape[1 + a])]
        labels = [tuple(M.x_name(c) for c in range(M.C))] + \
            [positions_labels(spread.shape[1 + a], order=held(a)) for a in range(g.ndim)]
    return _grid("x_spread", "x spread, padded", "input", spread, integer, padding=~inside, muted=inside & ~holds,
                 axis_labels=labels)


def _unreached_step(M: Maps, nr) -> Step:
    where = f"y[{names(nr)}]" + (" of every map" if M.F > 1 else "")
    return Step("unreached", "cells no stamp reaches", f"No stamp reaches {where}: they stay 0.",
                lit=(Lit("y", "never_read", tuple(M.y_cell(f, c) for f in range(M.F) for c in _cells(nr))),),
                lines=(Line(f"no stamp reaches {where}: 0", "never_read", ()),), part="never_read")


def _scatter_steps(g, M: Maps, x, w, sc, integer) -> list[Step]:
    nd = g.ndim
    running = np.zeros((M.F, *g.out_shape))
    inputs = [(c, n) for c in range(M.C) for n in np.ndindex(*g.in_shape)]
    taps = list(np.ndindex(*g.kernel))
    steps = []
    for (c, n), wt in zip(inputs, weights(len(inputs))):
        idx = sc.stamps.indices[n].reshape(-1, nd)
        keep = ~sc.stamps.is_padding[n].ravel()
        cells = [tuple(int(v) for v in cc) for cc, k in zip(idx, keep) if k]
        maps = list(M.maps_of(c))
        xc = x[(c, *n)]
        for f in maps:
            for cc, j, k in zip(idx, taps, keep):
                if k:
                    running[(f, *cc)] += xc * w[(c, f % M.Fg, *j)]
        kernels = ", ".join(M.w_name(c, f) for f in maps)
        label = f"{M.x_name(c)}[{fmt_index(n)}]"
        y_words = M.y_name(maps[0]) if len(maps) == 1 else "y"       # "y2[3..5]", or "y[3..5] of y1, y2"
        where = reads_text(y_words, cells, int((~keep).sum()), channel=False).replace("padding zeros", "cropped taps")
        sums = [(f, cell) for f in maps for cell in cells]
        lines = [Line(f"{label} = {fmt_value(xc, integer)} times {kernels} lands on {where}", "window", (float(xc),))]
        if M.F > 1:
            lines.append(Line(f"{M.x_name(c)}{M.group_words(c)} is stamped onto {', '.join(M.y_name(f) for f in maps)}",
                              "text", ()))
        lines.append(Line("running sums: " + ", ".join(f"{M.y_name(f)}[{fmt_index(cell)}] = "
                                                       f"{fmt_value(running[(f, *cell)], integer)}"
                                                       for f, cell in sums[:6]) + (" …" if len(sums) > 6 else ""),
                          "output", tuple(float(running[(f, *cell)]) for f, cell in sums)))
        whose = f"{kernels} {'is' if len(maps) == 1 else 'are'}" if M.multi else "the kernel is"
        of_maps = f" of {', '.join(M.y_name(f) for f in maps)}" if len(maps) > 1 else ""
        kept = [j for j, k in zip(taps, keep) if k]
        data = {"input": list(n), "stamp": [list(cell) for cell in cells], "taps": [list(j) for j in kept],
                "products": [float(xc * w[(c, maps[0] % M.Fg, *j)]) for j in kept]}
        if M.multi:
            data.update(channel=c, maps=maps,
                        products=[float(xc * w[(c, f % M.Fg, *j)]) for f in maps for j in kept])
        steps.append(Step(f"{M.x_name(c)}-{fmt_index(n).replace(',', '-')}", label,
                          f"{label} = {fmt_factor(xc, integer)} times {whose} stamped on {where}{of_maps}; "
                          f"overlapping stamps add up.",
                          lit=(Lit("x", "window", ((c, *n),)),
                               Lit("w", "window", tuple((M.w_row(c, f), *j) for f in maps for j in kept)),
                               Lit("y", "output", tuple(M.y_cell(f, cell) for f, cell in sums))),
                          lines=tuple(lines),
                          writes=tuple(Write("y", M.y_cell(f, cell), float(running[(f, *cell)]),
                                             fmt_value(running[(f, *cell)], integer)) for f, cell in sums),
                          weight=wt, part="scatter", data=data))
    return steps


def _gather_steps(g, M: Maps, spread, holds, pads, w, gathered, integer) -> list[Step]:
    nd = g.ndim
    win = V.windows(spread.shape[1:], g.kernel, 1, 0, g.dilation)
    inside = V.pad(np.ones(V.dilate(np.ones((1, *g.in_shape)), g.stride).shape[1:]), pads) == 1
    wg = _gather_kernel(M, w, nd)                                   # (F, C_in/G, *k)
    outs = [(f, m) for f in range(M.F) for m in np.ndindex(*g.out_shape)]
    taps_k = list(np.ndindex(*g.kernel))
    steps = []
    for (f, m), wt in zip(outs, weights(len(outs))):
        chans = list(M.channels_of(f))
        taps = [tuple(int(v) for v in t) for t in win.indices[m].reshape(-1, nd)]
        pairs = [[(float(spread[(c, *t)]), float(wg[(f, i, *j)])) for t, j in zip(taps, taps_k)]
                 for i, c in enumerate(chans)]
        value = gathered[(f, *m)]
        label = f"{M.y_name(f)}[{fmt_index(m)}]"
        n_held = sum(bool(holds[t]) for t in taps) * len(chans)
        kernels = ", ".join(M.w_name(c, f) for c in chans)
        named = ", ".join(M.x_name(c) for c in chans) if len(chans) < 3 else \
            f"{M.x_name(chans[0])}..{M.x_name(chans[-1])}"
        over = "the spread input" if not M.multi else f"spread {named}"
        lines = [Line(f"{label}: flip(w) over {over} reads {n_held} input "
                      f"value{'s' if n_held != 1 else ''}", "window", ())]
        if len(chans) == 1:
            body = " + ".join(f"{fmt_factor(a, integer)}·{fmt_factor(b, integer)}" for a, b in pairs[0])
            lines.append(Line(f"{label} = {body} = {fmt_value(value, integer)}", "text",
                              tuple(v for ab in pairs[0] for v in ab) + (float(value),)))
        else:
            sums = [float(np.sum([a * b for a, b in pc])) for pc in pairs]
            lines += [products(pc, s, integer, head=f"{M.x_name(c)}: ") for pc, s, c in zip(pairs, sums, chans)]
            lines.append(Line(f"{label} = {' + '.join(fmt_factor(s, integer) for s in sums)} = "
                              f"{fmt_value(value, integer)}", "output", tuple(sums) + (float(value),)))
        lit = (Lit("x_spread", "window", tuple((c, *t) for c in chans for t in taps if holds[t])),
               Lit("x_spread", "muted", tuple((c, *t) for c in chans for t in taps if inside[t] and not holds[t])),
               Lit("x_spread", "padding_tap", tuple((c, *t) for c in chans for t in taps if not inside[t])),
               Lit("y", "output", (M.y_cell(f, m),)))
        narration = f"{label} = {fmt_value(value, integer)}: the flipped kernel over the spread input."
        data = {}
        if M.multi:          # the kernel slices in use, and the channels summed
            lit += (Lit("w", "window", tuple((M.w_row(c, f), *j) for c in chans for j in taps_k)),)
            narration = (f"{label} = {fmt_value(value, integer)}: flip({kernels}) over {over}"
                         + (f", summed over {len(chans)} channels." if len(chans) > 1 else "."))
            data = {"output": list(m), "map": f, "channels": chans}
        steps.append(Step(f"{M.y_name(f)}-{fmt_index(m).replace(',', '-')}", label, narration, lit=lit,
                          lines=tuple(lines),
                          writes=(Write("y", M.y_cell(f, m), float(value), fmt_value(value, integer)),),
                          weight=wt, part="gather", data=data))
    return steps


def groups_caption(M: Maps, steps, outputs=("y", "y_gather")) -> Caption:
    """With groups, counted on the steps: the input channels each map's steps light (stamped from, or
    gathered over) are exactly its group's."""
    claims = group_claims(M, steps, {"x", "x_spread"}, outputs, lambda f: f"filter {f + 1} ({M.y_name(f)})")
    return Caption(f"With {M.G} groups each map is made from the {M.Cg} channel{'s' if M.Cg > 1 else ''} of its "
                   f"group only: {M.Fg} map{'s' if M.Fg > 1 else ''} per group.", claims)


# ---- the animation: both forms in one Story --------------------------------------------------------

def _retarget(step: Step, names: dict) -> Step:
    """The same step drawn on renamed grids (the gather form writes its own output grid)."""
    return dataclasses.replace(step, lit=tuple(Lit(names.get(lit.target, lit.target), lit.role, lit.cells)
                                               for lit in step.lit),
                               writes=tuple(Write(names.get(w.target, w.target), w.cell, w.value, w.text)
                                            for w in step.writes))


def _output_padding_note(step: Step, values: dict, out_shape) -> Step:
    """The unreached step, saying which of its cells are the rows/columns output padding adds:
    index ≥ out − a on some axis (a = output padding; out_shape spatial, a map's axis first if any)."""
    nd = len(out_shape)
    op = values.get("output_padding", 0)
    op = tuple(op) if isinstance(op, (tuple, list)) else (int(op),) * nd
    cells = dict.fromkeys(tuple(c[-nd:]) for c in step.lit_cells("y", "never_read"))
    added = [c for c in cells if any(c[a] >= out_shape[a] - op[a] for a in range(nd))]
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
    """`animate conv-transpose`: the scatter form (one step per input cell: its stamps, the running sums
    rewritten), the outputs no stamp reaches (output padding: the extra last rows/columns), then the
    gather form on the same numbers (one step per output cell of `y_gather`: flip(w) over the spread
    input; w_flip is w with each slice flipped in space, the rows in w's order).

        y = Σ_{c, n} x[c, n] · stamp_n(w[c]) = corr(pad(dilate(x, s), d(k−1) − p), flip(w)ᵀ)
    """
    scatter = transpose_story({**values, "form": "scatter"})
    gather = transpose_story({**values, "form": "gather"})
    M = Maps(values.get("channels", 1), values.get("filters", 1), values.get("groups", 1))
    w = scatter.grid("w")                            # shape (C_in·F/G, *kernel): axis 0 the slices
    axes = tuple(range(1, len(w.shape)))
    kf = np.flip(w.array(), axis=axes)
    tf = np.flip(np.asarray(w.texts, dtype=object).reshape(w.shape), axis=axes)
    first = ("flip(w)",) if not M.multi else w.axis_labels[0]
    w_flip = Grid("w_flip", "flip(w)", "kernel", w.shape, tuple(float(v) for v in kf.ravel()),
                  tuple(str(t) for t in tf.ravel()),     # the taps' 1-based labels run backwards too
                  axis_labels=(first,) + tuple(tuple(reversed(a)) for a in w.axis_labels[1:])
                  if w.axis_labels else ())
    y = gather.grid("y")
    y_gather = Grid("y_gather", "y (gather)", "output", y.shape, y.values, y.texts, axis_labels=y.axis_labels)
    grids = scatter.grids + (gather.grid("x_spread"), w_flip, y_gather)
    nd = len(values["input"])
    steps = tuple(_output_padding_note(s, values, y.shape[-nd:]) if s.part == "never_read" else s
                  for s in scatter.steps)
    steps += tuple(_retarget(s, {"y": "y_gather", "w": "w_flip"}) for s in gather.steps if s.part == "gather")
    claims = tuple(c for cap in scatter.captions[:2] for c in cap.claims)
    captions = (Caption(scatter.captions[0].text, claims[:2]), scatter.captions[1])
    if M.G > 1:
        captions += (groups_caption(M, steps),)
    title = scatter.title.replace(" (scatter)", "")
    alt = scatter.alt.replace("Figure", "Animation", 1).replace("(scatter form)", "(scatter, then gather form)")
    return Story("animate conv-transpose", M.shown(values), title, scatter.formula, grids, steps=steps,
                 captions=captions, alt=alt, description=" ".join([alt] + [s.narration for s in steps]))
