"""The convolution Stories: the set-up both share (`_Setup`) and the forward pass (`forward_story`); the
backward pass (`backward_story`) is in `viz.story.conv_backward`.

Every number and index comes from `viz.conv`, every text from `viz.text`; renderers only draw them.

    forward   y[o]     = b + Σ_c Σ_j pad(x, p)[c, o*s + j*d] · w[c, j]          one step per output o
    grad_w    ∂ℓ/∂w[c, j] = Σ_o pad(x, p)[c, o*s + j*d] · ∂ℓ/∂y[o]          one step per tap j
              (correlate pad(x) with ∂ℓ/∂y as the kernel: stride d, dilation s)
    grad_x    ∂ℓ/∂x[c, m] = Σ_j pad(dilate(∂ℓ/∂y, s), d(k-1) - p)[m + j*d] · flip(w)[c, j]
              (the transposed convolution)                                    one step per input m
    grad_b    ∂ℓ/∂b = Σ_o ∂ℓ/∂y[o]                                            one step, with --bias

Grids hold the arrays as drawn: "x" is the padded input (C, *padded) with its padding mask, so a
step's cells are 0-based coordinates in the drawn grid, channel first. Lit roles per step: "window"
(the taps read, real cells), "padding_tap" (taps on padding), "muted" (taps on zeros the stride
inserted), "output" (the cells written); the last step lights the "never_read" inputs.

One rule for products lines (`products`): a line lists its terms when it has at most
MAX_TERMS_INLINE of them, else it reads "Σ of N products = v". Which steps are shown in full and
which are sped up is `weights`: the Story's step weights, not scene logic.
"""
from __future__ import annotations

import math

import numpy as np

from viz import conv as V
from viz.runs import example_data
from viz.text import fmt_factor, fmt_index, fmt_value, pretty_formula
from viz.story.conv_text import (MAX_ROW_LINES, MAX_TERMS_INLINE, _shape_str, names, params_text,  # noqa: F401
                                 positions, positions_labels, products, reads_text, row_lines)
from viz.story.core import Caption, Claim, Grid, Line, Lit, Step, Story, Write
from viz.story.groups import Groups, group_claims

FULL_STEPS = 4           # steps shown in full before the rest are sped up...
ALL_FULL_UP_TO = 9       # ...unless there are at most this many
FAST_WEIGHT = 0.05       # weight of one sped-up step (a full step weighs 1)
MAX_FAST_WEIGHT = 3.0    # all sped-up steps of one part together weigh at most this
FINAL_WEIGHT = 1.0       # the closing never-read step
SUM_TOLERANCE = 1e-9     # |Σ of the products shown − the reference's value| must stay below this
RENDER_OPTIONS = ("quality", "step_time", "theme", "format")


# ---- weights: which steps are shown in full ----------------------------------------------------------

def weights(n: int) -> list[float]:
    """Step weights of n steps of one part: all 1 up to ALL_FULL_UP_TO steps; else the first FULL_STEPS
    at 1 and the others sped up, together weighing at most MAX_FAST_WEIGHT."""
    if n <= max(FULL_STEPS, ALL_FULL_UP_TO):
        return [1.0] * n
    fast = min(FAST_WEIGHT, MAX_FAST_WEIGHT / (n - FULL_STEPS))
    return [1.0] * FULL_STEPS + [fast] * (n - FULL_STEPS)


# ---- the set-up both stories share -------------------------------------------------------------------

class _Setup:
    """Geometry, data and the drawn (padded) input of one validated parameter set."""

    def __init__(self, values: dict):
        self.values = values
        g = V.conv_geometry(values["input"], values.get("kernel", 3), values.get("stride", 1),
                            values.get("padding", 0), values.get("dilation", 1))
        if g.ndim not in (1, 2):
            raise ValueError(f"input must have 1 or 2 axes for an animation (got {g.ndim})")
        self.g = g
        self.C = int(values.get("channels", 1))
        if self.C < 1:
            raise ValueError(f"channels must be >= 1 (got {self.C})")
        # F filters in G groups: filter f reads the C/G channels of its group f // (F/G)
        self.groups = Groups(self.C, values.get("filters", 1), values.get("groups", 1))
        self.F, self.G, self.Cg = self.groups.F, self.groups.G, self.groups.Cg
        seed = int(values.get("seed", 0))
        data = example_data(g.in_shape, self.C, g.kernel, g.out_shape, seed, values.get("values", "int"),
                            filters=self.F, groups=self.G)
        # the user's arrays (--x, --w, --b, --grad-y; shapes checked by the registry) replace the seeded ones
        given = {k: np.asarray(values[k], dtype=float) for k in ("x", "w", "grad_y", "b") if values.get(k) is not None}
        data.update(given)
        self.x, self.w, self.grad_y = data["x"], data["w"], data["grad_y"]
        self.b = data["b"] if "b" in given else \
            example_bias(seed, values.get("values", "int"), self.F) if values.get("bias") else None
        # integers are shown as integers only if every array given is integral
        self.integer = values.get("values", "int") == "int" and all(np.all(a == np.round(a)) for a in given.values())
        self.args = dict(stride=g.stride, padding=g.padding, dilation=g.dilation)
        self.gargs = dict(self.args, groups=self.G)
        self.win = g.windows()
        self.xp = V.pad(self.x, g.padding)
        self.pad_mask = V.pad(np.ones(g.in_shape), g.padding) == 0
        self.lo = np.array([lo for lo, _ in g.padding])

    def fmt(self, v) -> str:
        return fmt_value(v, self.integer)

    def grid(self, name, label, role, a, padding=None, muted=None, axis_labels=()) -> Grid:
        a = np.asarray(a, dtype=float)
        return Grid(name, label, role, tuple(int(v) for v in a.shape), tuple(float(v) for v in a.ravel()),
                    tuple(self.fmt(v) for v in a.ravel()),
                    () if padding is None else tuple(bool(v) for v in np.broadcast_to(padding, a.shape).ravel()),
                    () if muted is None else tuple(bool(v) for v in np.broadcast_to(muted, a.shape).ravel()),
                    tuple(tuple(ax) for ax in axis_labels))

    def channels(self, name: str) -> tuple[str, ...]:
        """Channel labels: "x" for one channel, "x1", "x2", ... for several."""
        return (name,) if self.C == 1 else tuple(f"{name}{c + 1}" for c in range(self.C))

    # ---- several filters (F > 1): the kernels drawn as F·C/G rows or panels, the outputs as F maps ----
    @property
    def several(self) -> bool:
        return self.F > 1

    def group_of(self, f: int) -> int:
        return self.groups.group_of(f)

    def channels_of(self, f: int) -> range:
        """The input channels filter f reads (0-based): its group's C/G channels."""
        return self.groups.channels_of(f)

    def w_rows(self, f: int) -> range:
        """Filter f's rows (1-D) or panels (2-D) in the drawn kernel grid."""
        return range(f * self.Cg, (f + 1) * self.Cg)

    def w_labels(self) -> tuple[str, ...]:
        """Kernel channel labels: "w", "w1", ... for one filter; "w2[x3]" (filter 2's slice for input
        channel 3) for several ("w2" when the input has one channel)."""
        if not self.several:
            return self.channels("w")
        if self.C == 1:
            return tuple(f"w{f + 1}" for f in range(self.F))
        return tuple(f"w{f + 1}[x{c + 1}]" for f in range(self.F) for c in self.channels_of(f))

    def y_name(self, f: int) -> str:
        return "y" if not self.several else f"y{f + 1}"

    def y_cell(self, f: int, o) -> tuple[int, ...]:
        """A cell of the drawn output: the map's axis first when there are several filters."""
        o = tuple(int(v) for v in o)
        return (f, *o) if self.several else o

    def filter_words(self, f: int) -> str:
        """ "filter 2 reads x3, x4 (group 2 of 2)", or "" for one filter."""
        if not self.several:
            return ""
        chans = ", ".join(f"x{c + 1}" for c in self.channels_of(f))
        group = f" (group {self.group_of(f) + 1} of {self.G})" if self.G > 1 else ""
        return f"filter {f + 1} reads {chans}{group}"

    def x_grid(self) -> Grid:
        axes = [self.channels("x")] + [positions_labels(n, lo, i) for n, lo, i
                                       in zip(self.xp.shape[1:], self.lo, self.g.in_shape)]
        return self.grid("x", "x", "input", self.xp, padding=self.pad_mask, axis_labels=axes)

    def shown_params(self) -> dict:
        """The figure's parameters as JSON keeps them (tuples as lists), render options left out."""
        def plain(v):
            return [plain(e) for e in v] if isinstance(v, (list, tuple)) else v
        return {k: plain(v) for k, v in self.values.items()     # user arrays not given: not shown
                if k not in RENDER_OPTIONS and not (k in ("x", "w", "b", "grad_y") and v is None)
                and not (k in ("filters", "groups") and v == 1)}   # one filter, one group: as before

    def title(self, what: str) -> str:
        g, C = self.g, self.C
        bias = ", with bias" if self.b is not None else ""
        filters = f", {self.F} filters" if self.several else ""
        groups = f", {self.G} groups" if self.G > 1 else ""
        return (f"{what} {g.ndim}-D: input {C} channel{'s' if C > 1 else ''} × {_shape_str(g.in_shape)}, "
                f"{params_text(g)}{filters}{groups}{bias}")

    def formula(self) -> tuple[str, ...]:
        """The output size formula of every axis, numbers substituted by viz (ConvGeometry.formula)."""
        axes = ["length"] if self.g.ndim == 1 else ["rows", "cols"]
        return tuple(f"output {axes[a]}: {pretty_formula(self.g.formula(a))}" for a in range(self.g.ndim))

    def drawn(self, m) -> tuple[int, ...]:
        """Input coordinates (0-based, unpadded) -> coordinates in the drawn, padded grid."""
        return tuple(int(i) + int(lo) for i, lo in zip(m, self.lo))

    def never_read_step(self, targets, consequence: str) -> tuple[Step | None, str]:
        """The closing step lighting the never-read inputs (None when every input is read), and its words."""
        nr = self.win.never_read
        lits = tuple(Lit(t, "never_read", tuple((c, *f(m)) for c in range(self.C) for m in nr)) for t, f in targets)
        if nr:
            text = f"never read: x[·, {names(nr)}] — {consequence}"
            lines = (Line(f"never read: {len(nr)} input position{'s' if len(nr) > 1 else ''}", "never_read",
                          (float(len(nr)),)),
                     Line(f"x[·, {names(nr, 6)}]", "never_read", ()), Line(consequence, "text", ()))
        else:           # nothing to show on a screen of its own: the caption says it
            return None, "every input is read by at least one window"
        step = Step("never-read", "never read", text, lit=lits, lines=lines, weight=FINAL_WEIGHT,
                    part="never_read", data={"never_read": [list(m) for m in nr]})
        return step, text


def example_bias(seed: int, values: str = "int", filters: int = 1) -> np.ndarray:
    """The seeded example bias, one per filter (shape (filters,)): ±1, ±2 for integer data, else one
    decimal. Drawn from its own stream so adding a bias leaves x, w and ∂ℓ/∂y unchanged."""
    rng = np.random.default_rng([int(seed), 1])
    if values == "int":
        return rng.choice(np.array([-2.0, -1.0, 1.0, 2.0]), size=(filters,))
    return np.round(rng.standard_normal((filters,)), 1)


def _sum_claim(cid: str, what: str, shown_terms, value: float) -> Claim:
    err = abs(math.fsum(shown_terms) - float(value))
    return Claim(cid, f"{what} equals the sum shown", err, "<=", SUM_TOLERANCE,
                 f"|Σ shown − {what}|", "tolerance")


# ---- forward -----------------------------------------------------------------------------------------

def forward_story(values: dict) -> Story:
    """The forward convolution, one step per output position (row-major; filter by filter when there
    are several), then the never-read inputs.

        y[f, o] = b[f] + Σ_{c in group(f)} Σ_j pad(x, p)[c, o*s + j*d] · w[f, c − first(f), j]
    """
    S = _Setup(values)
    g, C, nd = S.g, S.C, S.g.ndim
    y = V.conv(S.x, S.w, bias=S.b, **S.gargs)                    # (F, *out)
    grad_x, _ = V.conv_backward(S.x, S.w, S.grad_y, **S.gargs)
    outs = list(np.ndindex(*g.out_shape))
    steps, claims = [], []
    for f in range(S.F):
        chans = list(S.channels_of(f))
        # Σ_j over one channel at a time: the per-channel sums the lines add up (depthwise over the group)
        per_channel = V.conv(S.x[chans], S.w[f][:, None], groups=len(chans), **S.args)
        for o, wt in zip(outs, _filter_weights(S.F, len(outs))[f]):
            step, terms = _forward_step(S, f, o, y[f], per_channel, wt)
            steps.append(step)
            claims.append(_sum_claim(f"sum-{step.id}", step.label, terms, y[(f, *o)]))
    nr_step, nr_text = S.never_read_step([("x", S.drawn)], "no window reads them, so their gradient is exactly 0")
    steps += [nr_step] if nr_step else []
    nr = S.win.never_read
    worst = max((abs(float(grad_x[(c, *m)])) for c in range(C) for m in nr), default=0.0)
    captions = [
        Caption(f"Each output {'y[n]' if not S.several else 'y_f[n]'} is the sum of the products shown: "
                f"the kernel{' of its filter' if S.several else ''} times the window it reads"
                f"{', summed over the ' + str(S.Cg) + ' channels' + (' of its group' if S.G > 1 else '') if S.Cg > 1 else ''}"
                f"{', plus the bias' if S.b is not None else ''}.", tuple(claims)),
        Caption(f"Output size per axis: {'; '.join(S.formula())}.",
                tuple(Claim(f"size-{a + 1}", f"output axis {a + 1} has {g.out_shape[a]} positions",
                            float(len({o[a] for o in outs})), "==", float(g.out_shape[a]), "positions drawn",
                            "formula") for a in range(nd))),
        Caption(nr_text[0].upper() + nr_text[1:] + ".",
                (Claim("never-read-zero-gradient", "never-read inputs get exactly zero gradient", worst, "==",
                       0.0, "max |∂ℓ/∂x| over never-read inputs", "zero"),) if nr else ()),
    ]
    if S.G > 1:
        captions.append(_groups_caption(S, steps))
    alt = (f"Animation: {'a' if not S.several else str(S.F)} {_shape_str(g.kernel)} "
           f"kernel{'s slide' if S.several else ' slides'} over {C} input channel{'s' if C > 1 else ''} "
           f"of size {_shape_str(g.in_shape)} ({params_text(g)}"
           f"{', ' + str(S.G) + ' groups of ' + str(S.Cg) + ' channels' if S.G > 1 else ''}), "
           f"writing the {y.size} outputs y = [{_values_text(S, y)}].")
    desc = " ".join([alt] + [s.narration for s in steps])
    return Story("animate conv", S.shown_params(), S.title("Convolution"), S.formula(), _forward_grids(S, y),
                 steps=tuple(steps), captions=tuple(captions), alt=alt, description=desc)


def _values_text(S: _Setup, a, limit: int = 12) -> str:
    return ", ".join(S.fmt(v) for v in a.ravel()[:limit]) + (", …" if a.size > limit else "")


def _filter_weights(F: int, n: int) -> list[list[float]]:
    """Step weights per filter: one part's `weights` over all F·n steps, each filter's first step
    shown in full (the screen where the kernel in use changes)."""
    flat = weights(F * n)
    per = [flat[f * n:(f + 1) * n] for f in range(F)]
    for ws in per:
        ws[0] = 1.0
    return per


def _groups_caption(S: _Setup, steps) -> Caption:
    """With groups: each filter's steps light only the channels of its group (counted on the steps)."""
    claims = group_claims(S.groups, steps, {"x"}, {"y"}, lambda f: f"filter {f + 1}")
    return Caption(f"With {S.G} groups each filter reads only the {S.Cg} channel{'s' if S.Cg > 1 else ''} of its "
                   f"group: {S.F // S.G} filter{'s' if S.F // S.G > 1 else ''} per group"
                   f"{' (depthwise)' if S.Cg == 1 else ''}.", claims)


def _forward_grids(S: _Setup, y) -> tuple[Grid, ...]:
    g = S.g
    k_axes = [S.w_labels()] + [positions_labels(k) for k in g.kernel]
    out_axes = [positions_labels(n) for n in g.out_shape]
    w_drawn = S.w.reshape(S.F * S.Cg, *g.kernel)
    if S.several:
        y_grid = S.grid("y", "y", "output", y, axis_labels=[tuple(S.y_name(f) for f in range(S.F))] + out_axes)
    else:
        y_grid = S.grid("y", "y", "output", y[0], axis_labels=out_axes)
    grids = [S.x_grid(), S.grid("w", "w", "kernel", w_drawn, axis_labels=k_axes), y_grid]
    if S.b is not None:
        grids.append(S.grid("b", "b", "bias", S.b, axis_labels=[tuple(f"b{f + 1}" for f in range(S.F))
                                                                  if S.several else ("b",)]))
    return tuple(grids)


def _forward_step(S: _Setup, f: int, o, y_f, per_channel, weight: float) -> tuple[Step, list[float]]:
    """Output o of filter f: its window from viz.windows, its value from viz.conv."""
    g, nd = S.g, S.g.ndim
    chans = list(S.channels_of(f))
    n = len(chans)
    taps = S.win.indices[o].reshape(-1, nd)
    pads = S.win.is_padding[o].ravel()
    disp = [tuple(int(v) for v in t + S.lo) for t in taps]
    k_index = list(np.ndindex(*g.kernel))
    label = f"{S.y_name(f)}[{fmt_index(o)}]"
    sums = [float(per_channel[(i, *o)]) for i in range(n)]
    pairs = [[(float(S.xp[(c, *d)]), float(S.w[(f, i, *j)])) for d, j in zip(disp, k_index)]
             for i, c in enumerate(chans)]
    extra = ((float(S.b[f]), "bias"),) if S.b is not None else ()
    real = [tuple(int(v) for v in t) for t, p in zip(taps, pads) if not p]
    if S.G > 1:      # the channels read are the group's: name them
        reads = reads_text("x", [(c, *r) for c in chans for r in real], int(pads.sum()), channel=False)
    else:
        reads = reads_text("x", real, int(pads.sum()))
    value = y_f[o]
    lines = [Line(f"{label} reads {reads}", "window", ())]
    if S.several:
        lines.append(Line(S.filter_words(f), "text", ()))
    if n == 1 and nd == 2:
        lines += row_lines(f"{label} =", pairs[0], g.kernel[1], value, S.integer, extra)
    elif n == 1:
        lines.append(products(pairs[0], value, S.integer, head=f"{label} = ", extra=extra))
    else:
        lines += [products(pairs[i], sums[i], S.integer, head=f"channel {c + 1}: ") for i, c in enumerate(chans)]
        body = " + ".join([fmt_factor(v, S.integer) for v in sums]
                          + [f"{fmt_factor(v, S.integer)} ({lab})" for v, lab in extra])
        lines.append(Line(f"{label} = {body} = {S.fmt(value)}", "output",
                          tuple(sums) + tuple(v for v, _ in extra) + (float(value),)))
    lit = (Lit("x", "window", tuple((c, *d) for c in chans for d, p in zip(disp, pads) if not p)),
           Lit("x", "padding_tap", tuple((c, *d) for c in chans for d, p in zip(disp, pads) if p)),
           Lit("y", "output", (S.y_cell(f, o),)))
    if S.several:         # the kernel in use: filter f's slices
        lit += (Lit("w", "window", tuple((r, *j) for r in S.w_rows(f) for j in k_index)),)
    if S.b is not None:
        lit += (Lit("b", "bias", ((f,),)),)
    bias_words = " plus the bias" if S.b is not None else ""
    chan_words = f", summed over {n} channels" if n > 1 else ""
    whose = f"filter {f + 1}'s kernel" if S.several else "the kernel"
    narration = (f"{label} = {S.fmt(value)}: {whose} reads {reads}, multiplied tap by tap{chan_words}"
                 f"{bias_words}.")
    data = {"output": [int(v) for v in o], "channel_sums": sums, "full": weight >= 1.0,
            "taps": [list(d) for d in disp], "padding": [bool(p) for p in pads],
            "patch_texts": [[S.fmt(a) for a, _ in pc] for pc in pairs]}
    if S.several:
        data.update(filter=f, channels=chans)
    sid = ("y-" if not S.several else f"y{f + 1}-") + fmt_index(o).replace(',', '-')
    step = Step(sid, label, narration, lit=lit, lines=tuple(lines),
                writes=(Write("y", S.y_cell(f, o), float(value), S.fmt(value)),), weight=weight,
                part="forward", data=data)
    return step, [a * b for pc in pairs for a, b in pc] + [v for v, _ in extra]
