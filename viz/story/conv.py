"""The convolution Stories: the forward pass (`forward_story`) and the backward pass (`backward_story`).

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
from viz.text import MINUS, fmt_factor, fmt_index, fmt_value, pretty_formula
from viz.story.conv_text import (MAX_ROW_LINES, MAX_TERMS_INLINE, _shape_str, names, params_text,  # noqa: F401
                                 positions, positions_labels, products, reads_text, row_lines)
from viz.story.core import Caption, Claim, Grid, Line, Lit, Step, Story, Write

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
        seed = int(values.get("seed", 0))
        data = example_data(g.in_shape, self.C, g.kernel, g.out_shape, seed, values.get("values", "int"))
        # the user's arrays (--x, --w, --b, --grad-y; shapes checked by the registry) replace the seeded ones
        given = {k: np.asarray(values[k], dtype=float) for k in ("x", "w", "grad_y", "b") if values.get(k) is not None}
        data.update(given)
        self.x, self.w, self.grad_y = data["x"], data["w"], data["grad_y"]
        self.b = data["b"] if "b" in given else \
            example_bias(seed, values.get("values", "int")) if values.get("bias") else None
        # integers are shown as integers only if every array given is integral
        self.integer = values.get("values", "int") == "int" and all(np.all(a == np.round(a)) for a in given.values())
        self.args = dict(stride=g.stride, padding=g.padding, dilation=g.dilation)
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

    def x_grid(self) -> Grid:
        axes = [self.channels("x")] + [positions_labels(n, lo, i) for n, lo, i
                                       in zip(self.xp.shape[1:], self.lo, self.g.in_shape)]
        return self.grid("x", "x", "input", self.xp, padding=self.pad_mask, axis_labels=axes)

    def shown_params(self) -> dict:
        """The figure's parameters as JSON keeps them (tuples as lists), render options left out."""
        def plain(v):
            return [plain(e) for e in v] if isinstance(v, (list, tuple)) else v
        return {k: plain(v) for k, v in self.values.items()     # user arrays not given: not shown
                if k not in RENDER_OPTIONS and not (k in ("x", "w", "b", "grad_y") and v is None)}

    def title(self, what: str) -> str:
        g, C = self.g, self.C
        bias = ", with bias" if self.b is not None else ""
        return (f"{what} {g.ndim}-D: input {C} channel{'s' if C > 1 else ''} × {_shape_str(g.in_shape)}, "
                f"{params_text(g)}{bias}")

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


def example_bias(seed: int, values: str = "int") -> np.ndarray:
    """The seeded example bias of the one filter (shape (1,)): ±1, ±2 for integer data, else one decimal.
    Drawn from its own stream so adding a bias leaves x, w and ∂ℓ/∂y unchanged."""
    rng = np.random.default_rng([int(seed), 1])
    if values == "int":
        return rng.choice(np.array([-2.0, -1.0, 1.0, 2.0]), size=(1,))
    return np.round(rng.standard_normal((1,)), 1)


def _sum_claim(cid: str, what: str, shown_terms, value: float) -> Claim:
    err = abs(math.fsum(shown_terms) - float(value))
    return Claim(cid, f"{what} equals the sum shown", err, "<=", SUM_TOLERANCE,
                 f"|Σ shown − {what}|", "tolerance")


# ---- forward -----------------------------------------------------------------------------------------

def forward_story(values: dict) -> Story:
    """The forward convolution, one step per output position (row-major), then the never-read inputs."""
    S = _Setup(values)
    g, C, nd = S.g, S.C, S.g.ndim
    y = V.conv(S.x, S.w, bias=S.b, **S.args)[0]
    per_channel = V.conv(S.x, S.w.reshape(C, 1, *g.kernel), groups=C, **S.args)
    grad_x, _ = V.conv_backward(S.x, S.w, S.grad_y, **S.args)
    outs = list(np.ndindex(*g.out_shape))
    ws = weights(len(outs))
    steps, claims = [], []
    for o, wt in zip(outs, ws):
        step, terms = _forward_step(S, o, y, per_channel, wt)
        steps.append(step)
        claims.append(_sum_claim(f"sum-{step.id}", step.label, terms, y[o]))
    nr_step, nr_text = S.never_read_step([("x", S.drawn)], "no window reads them, so their gradient is exactly 0")
    steps += [nr_step] if nr_step else []
    nr = S.win.never_read
    worst = max((abs(float(grad_x[(c, *m)])) for c in range(C) for m in nr), default=0.0)
    captions = [
        Caption(f"Each output y[n] is the sum of the products shown: the kernel times the window it "
                f"reads{', summed over the ' + str(C) + ' channels' if C > 1 else ''}"
                f"{', plus the bias' if S.b is not None else ''}.", tuple(claims)),
        Caption(f"Output size per axis: {'; '.join(S.formula())}.",
                tuple(Claim(f"size-{a + 1}", f"output axis {a + 1} has {g.out_shape[a]} positions",
                            float(len({o[a] for o in outs})), "==", float(g.out_shape[a]), "positions drawn",
                            "formula") for a in range(nd))),
        Caption(nr_text[0].upper() + nr_text[1:] + ".",
                (Claim("never-read-zero-gradient", "never-read inputs get exactly zero gradient", worst, "==",
                       0.0, "max |∂ℓ/∂x| over never-read inputs", "zero"),) if nr else ()),
    ]
    k_axes = [S.channels("w")] + [positions_labels(k) for k in g.kernel]
    grids = [S.x_grid(), S.grid("w", "w", "kernel", S.w[0], axis_labels=k_axes),
             S.grid("y", "y", "output", y, axis_labels=[positions_labels(n) for n in g.out_shape])]
    if S.b is not None:
        grids.append(S.grid("b", "b", "bias", S.b, axis_labels=[("b",)]))
    y_text = ", ".join(S.fmt(v) for v in y.ravel()[:12]) + (", …" if y.size > 12 else "")
    alt = (f"Animation: a {_shape_str(g.kernel)} kernel slides over {C} input channel{'s' if C > 1 else ''} "
           f"of size {_shape_str(g.in_shape)} ({params_text(g)}), writing the {y.size} outputs y = [{y_text}].")
    desc = " ".join([alt] + [s.narration for s in steps])
    return Story("animate conv", S.shown_params(), S.title("Convolution"), S.formula(), tuple(grids),
                 steps=tuple(steps), captions=tuple(captions), alt=alt, description=desc)


def _forward_step(S: _Setup, o, y, per_channel, weight: float) -> tuple[Step, list[float]]:
    """Output position o: its window from viz.windows, its value from viz.conv."""
    g, C, nd = S.g, S.C, S.g.ndim
    taps = S.win.indices[o].reshape(-1, nd)
    pads = S.win.is_padding[o].ravel()
    disp = [tuple(int(v) for v in t + S.lo) for t in taps]
    k_index = list(np.ndindex(*g.kernel))
    label = f"y[{fmt_index(o)}]"
    sums = [float(per_channel[(c, *o)]) for c in range(C)]
    pairs = [[(float(S.xp[(c, *d)]), float(S.w[(0, c, *j)])) for d, j in zip(disp, k_index)] for c in range(C)]
    extra = ((float(S.b[0]), "bias"),) if S.b is not None else ()
    real = [tuple(int(v) for v in t) for t, p in zip(taps, pads) if not p]
    reads = reads_text("x", real, int(pads.sum()))
    lines = [Line(f"{label} reads {reads}", "window", ())]
    if C == 1 and nd == 2:
        lines += row_lines(f"{label} =", pairs[0], g.kernel[1], y[o], S.integer, extra)
    elif C == 1:
        lines.append(products(pairs[0], y[o], S.integer, head=f"{label} = ", extra=extra))
    else:
        lines += [products(pairs[c], sums[c], S.integer, head=f"channel {c + 1}: ") for c in range(C)]
        body = " + ".join([fmt_factor(v, S.integer) for v in sums]
                          + [f"{fmt_factor(v, S.integer)} ({lab})" for v, lab in extra])
        lines.append(Line(f"{label} = {body} = {S.fmt(y[o])}", "output",
                          tuple(sums) + tuple(v for v, _ in extra) + (float(y[o]),)))
    lit = (Lit("x", "window", tuple((c, *d) for c in range(C) for d, p in zip(disp, pads) if not p)),
           Lit("x", "padding_tap", tuple((c, *d) for c in range(C) for d, p in zip(disp, pads) if p)),
           Lit("y", "output", (tuple(int(v) for v in o),)))
    if S.b is not None:
        lit += (Lit("b", "bias", ((0,),)),)
    bias_words = " plus the bias" if S.b is not None else ""
    chan_words = f", summed over {C} channels" if C > 1 else ""
    narration = (f"{label} = {S.fmt(y[o])}: the kernel reads {reads}, multiplied tap by tap{chan_words}"
                 f"{bias_words}.")
    data = {"output": [int(v) for v in o], "channel_sums": sums, "full": weight >= 1.0,
            "taps": [list(d) for d in disp], "padding": [bool(p) for p in pads],
            "patch_texts": [[S.fmt(a) for a, _ in pc] for pc in pairs]}
    step = Step(f"y-{fmt_index(o).replace(',', '-')}", label, narration, lit=lit, lines=tuple(lines),
                writes=(Write("y", tuple(int(v) for v in o), float(y[o]), S.fmt(y[o])),), weight=weight,
                part="forward", data=data)
    return step, [a * b for pc in pairs for a, b in pc] + [v for v, _ in extra]


# ---- backward ----------------------------------------------------------------------------------------

def backward_story(values: dict) -> Story:
    """The backward pass: ∂ℓ/∂w one step per tap, ∂ℓ/∂x one step per input, ∂ℓ/∂b (with --bias),
    then the never-read inputs (exactly zero gradient)."""
    S = _Setup(values)
    g, C = S.g, S.C
    st = V.conv_backward_steps(S.x, S.w, S.grad_y, **S.args)
    grad_x, grad_w, grad_b = V.conv_backward(S.x, S.w, S.grad_y, with_bias=True, **S.args)
    masks = _backward_masks(S, st)
    steps, claims = [], []
    taps = list(np.ndindex(*g.kernel))
    gw_win = st.grad_w_geometry.windows()
    for j, wt in zip(taps, weights(len(taps))):
        step, sums = _grad_w_step(S, j, gw_win, grad_w, wt)
        steps.append(step)
        claims += [_sum_claim(f"sum-{step.id}-{c + 1}", f"∂ℓ/∂w[{c + 1},{fmt_index(j)}]", t, grad_w[(0, c, *j)])
                   for c, t in enumerate(sums)]
    inputs = list(np.ndindex(*g.in_shape))
    gx_win = st.grad_x_geometry.windows()
    for m, wt in zip(inputs, weights(len(inputs))):
        step, sums = _grad_x_step(S, m, gx_win, st, grad_x, masks, wt)
        steps.append(step)
        claims += [_sum_claim(f"sum-{step.id}-{c + 1}", f"∂ℓ/∂x[{c + 1},{fmt_index(m)}]", t, grad_x[(c, *m)])
                   for c, t in enumerate(sums)]
    if S.b is not None:
        step, claim = _grad_b_step(S, grad_b)
        steps.append(step)
        claims.append(claim)
    nr_step, nr_text = S.never_read_step([("x", S.drawn), ("grad_x", lambda m: tuple(int(v) for v in m))],
                                         "no window reads them: their gradient is exactly 0")
    steps += [nr_step] if nr_step else []
    nr = S.win.never_read
    worst = max((abs(float(grad_x[(c, *m)])) for c in range(C) for m in nr), default=0.0)
    captions = [
        Caption("Every gradient entry is the sum of the products shown (channels are not summed).", tuple(claims)),
        Caption(nr_text[0].upper() + nr_text[1:] + ".",
                (Claim("never-read-zero-gradient", "never-read inputs get exactly zero gradient", worst, "==",
                       0.0, "max |∂ℓ/∂x| over never-read inputs", "zero"),) if nr else ()),
    ]
    alt = (f"Animation of the convolution backward pass for {C} channel{'s' if C > 1 else ''} of size "
           f"{_shape_str(g.in_shape)} ({params_text(g)}): ∂ℓ/∂w by correlating the padded input with ∂ℓ/∂y, "
           f"then ∂ℓ/∂x as a transposed convolution with the flipped kernel.")
    desc = " ".join([alt] + [s.narration for s in steps])
    return Story("animate conv-backward", S.shown_params(), S.title("Convolution backward"),
                 _backward_formula(S, st), _backward_grids(S, st, masks, grad_w, grad_x, grad_b),
                 steps=tuple(steps), captions=tuple(captions), alt=alt, description=desc)


def _backward_masks(S: _Setup, st) -> dict:
    """Masks of the dilated and the padded, dilated ∂ℓ/∂y (the reference's dilate/pad applied to ones):
    inserted zeros, entries, inside the padding; and which upstream entry each padded cell holds
    (1-based flat index, 0 for a zero)."""
    g = S.g
    flat = np.arange(1, S.grad_y[0].size + 1, dtype=float).reshape(g.out_shape)
    return {"inserted": V.dilate(np.ones(g.out_shape), g.stride) == 0,
            "entry": V.pad(V.dilate(np.ones(g.out_shape), g.stride), st.grad_x_padding) == 1,
            "inside": V.pad(np.ones(st.grad_y_dilated.shape[1:]), st.grad_x_padding) == 1,
            "label_of": V.pad(V.dilate(flat, g.stride), st.grad_x_padding).astype(int)}


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
    grids = [S.x_grid(), S.grid("grad_y", "∂ℓ/∂y", "gradient", S.grad_y[0], axis_labels=out_axes)]
    if any(s > 1 for s in g.stride):
        grids.append(S.grid("grad_y_dilated", f"∂ℓ/∂y dilated by {_shape_str(g.stride)}", "gradient",
                            st.grad_y_dilated[0], muted=masks["inserted"],
                            axis_labels=[positions_labels(len(ax), order=ax) for ax in dil_axes]))
    grids += [S.grid("grad_y_padded", "∂ℓ/∂y dilated, padded", "gradient", st.grad_y_padded[0],
                     padding=~inside, muted=inside & ~entry,
                     axis_labels=[positions_labels(len(ax), order=ax) for ax in pad_axes]),
              S.grid("w", "w", "kernel", S.w[0], axis_labels=[S.channels("w")] + k_axes),
              S.grid("w_flipped", "flip(w)", "kernel", st.w_flipped[0],
                     axis_labels=[S.channels("w")] + [positions_labels(k, order=range(k - 1, -1, -1))
                                                      for k in g.kernel]),
              S.grid("grad_w", "∂ℓ/∂w", "gradient", grad_w[0], axis_labels=[S.channels("∂ℓ/∂w")] + k_axes),
              S.grid("grad_x", "∂ℓ/∂x", "gradient", grad_x,
                     axis_labels=[S.channels("∂ℓ/∂x")] + [positions_labels(n) for n in g.in_shape])]
    if S.b is not None:
        grids.append(S.grid("grad_b", "∂ℓ/∂b", "gradient", grad_b, axis_labels=[("∂ℓ/∂b",)]))
    return tuple(grids)


def _backward_formula(S: _Setup, st) -> tuple[str, str]:
    g = S.g
    strided = any(s > 1 for s in g.stride)
    s_txt = _shape_str(g.stride)
    pads = " × ".join(f"({lo},{hi})" for lo, hi in st.grad_x_padding).replace("-", MINUS)
    return (f"∂ℓ/∂w = correlate the padded x with ∂ℓ/∂y as the kernel: stride "
            f"{_shape_str(st.grad_w_geometry.stride)}, dilation {_shape_str(st.grad_w_geometry.dilation)}"
            + (f" (the forward stride {s_txt} becomes a dilation of {s_txt})" if strided else ""),
            "∂ℓ/∂x = transposed convolution: " + (f"dilate ∂ℓ/∂y by {s_txt}, " if strided else "")
            + f"pad by {pads}, correlate with flip(w): stride 1, dilation {_shape_str(g.dilation)}")


def _grad_b_step(S: _Setup, grad_b) -> tuple[Step, Claim]:
    """∂ℓ/∂b = Σ ∂ℓ/∂y: the bias adds to every output. Entries listed up to MAX_TERMS_INLINE."""
    gy = [float(v) for v in S.grad_y[0].ravel()]
    inline = len(gy) <= MAX_TERMS_INLINE
    terms = " + ".join(fmt_factor(v, S.integer) for v in gy) if inline else f"Σ of {len(gy)} entries"
    line = Line(f"∂ℓ/∂b = Σ ∂ℓ/∂y = {terms} = {S.fmt(grad_b[0])}", "output",
                (tuple(gy) if inline else (float(len(gy)),)) + (float(grad_b[0]),))
    cells = tuple(tuple(int(v) for v in o) for o in np.ndindex(*S.g.out_shape))
    step = Step("grad-b", "∂ℓ/∂b", f"∂ℓ/∂b = {S.fmt(grad_b[0])}: the bias adds to every output, so its "
                f"gradient is the sum of all of ∂ℓ/∂y.",
                lit=(Lit("grad_y", "window", cells), Lit("grad_b", "output", ((0,),))),
                lines=(Line("∂ℓ/∂b reads every entry of ∂ℓ/∂y", "window", ()), line),
                writes=(Write("grad_b", (0,), float(grad_b[0]), S.fmt(grad_b[0])),), part="grad_b")
    return step, _sum_claim("sum-grad-b", "∂ℓ/∂b", gy, grad_b[0])


def _grad_w_step(S: _Setup, j, win: V.Windows, grad_w, weight: float):
    """∂ℓ/∂w[c, j] for every channel c: the grad_w correlation's window at its output j (over the drawn x)."""
    g, C, nd = S.g, S.C, S.g.ndim
    taps = [tuple(int(v) for v in t) for t in win.indices[j].reshape(-1, nd)]   # drawn-x coordinates
    outs = list(np.ndindex(*g.out_shape))
    pad = [bool(S.pad_mask[t]) for t in taps]
    pairs = [[(float(S.xp[(c, *t)]), float(S.grad_y[(0, *n)])) for t, n in zip(taps, outs)] for c in range(C)]
    vals = [float(grad_w[(0, c, *j)]) for c in range(C)]
    label = f"∂ℓ/∂w[{fmt_index(j)}]" if C == 1 else f"∂ℓ/∂w[·, {fmt_index(j)}]"
    real = [tuple(int(v) - int(lo) for v, lo in zip(t, S.lo)) for t, p in zip(taps, pad) if not p]
    reads = reads_text("x", real, sum(pad))
    lines = [Line(f"{label} reads {reads}", "window", ())] + \
        _gradient_lines(S, label, "∂ℓ/∂w", j, pairs, vals, g.out_shape[-1])
    lit = (Lit("x", "window", tuple((c, *t) for c in range(C) for t, p in zip(taps, pad) if not p)),
           Lit("x", "padding_tap", tuple((c, *t) for c in range(C) for t, p in zip(taps, pad) if p)),
           Lit("grad_w", "output", tuple((c, *j) for c in range(C))))
    narration = (f"{label} = {', '.join(S.fmt(v) for v in vals)}: ∂ℓ/∂y as the kernel reads {reads}, "
                 f"channel by channel.")
    data = {"output": [int(v) for v in j], "cells": [list(r) for r in real], "values": vals, "full": weight >= 1.0}
    step = Step(f"gw-{fmt_index(j).replace(',', '-')}", label, narration, lit=lit, lines=tuple(lines),
                writes=tuple(Write("grad_w", (c, *j), vals[c], S.fmt(vals[c])) for c in range(C)),
                weight=weight, part="grad_w", data=data)
    return step, [[a * b for a, b in pc] for pc in pairs]


def _gradient_lines(S: _Setup, label: str, name: str, index, pairs, vals, cols: int) -> list[Line]:
    """The products of one gradient entry: one line per row of a 2-D window (one channel), one line
    (one channel, 1-D), or one line per channel, "∂ℓ/∂w[c,j] = …" (channels are not summed)."""
    if S.C == 1 and S.g.ndim == 2:
        return row_lines(f"{label} =", pairs[0], cols, vals[0], S.integer)
    if S.C == 1:
        return [products(pairs[0], vals[0], S.integer, head=f"{label} = ")]
    return [products(pairs[c], vals[c], S.integer, head=f"{name}[{c + 1},{fmt_index(index)}] = ")
            for c in range(S.C)]


def _grad_x_step(S: _Setup, m, win: V.Windows, st, grad_x, masks, weight: float):
    """∂ℓ/∂x[c, m] for every channel c: flip(w) over the padded, dilated gradient at position m."""
    g, C, nd = S.g, S.C, S.g.ndim
    entry, inside, label_of = masks["entry"], masks["inside"], masks["label_of"]
    gyp = st.grad_y_padded[0]
    taps = [tuple(int(v) for v in t) for t in win.indices[m].reshape(-1, nd)]
    k_index = list(np.ndindex(*g.kernel))
    pairs = [[(float(gyp[t]), float(st.w_flipped[(0, c, *kk)])) for t, kk in zip(taps, k_index)] for c in range(C)]
    vals = [float(grad_x[(c, *m)]) for c in range(C)]
    sources = sorted(tuple(int(v) for v in np.unravel_index(int(label_of[t]) - 1, g.out_shape))
                     for t in taps if label_of[t] > 0)
    label = f"∂ℓ/∂x[{fmt_index(m)}]" if C == 1 else f"∂ℓ/∂x[·, {fmt_index(m)}]"
    src = ", ".join(f"∂ℓ/∂y[{fmt_index(o)}]" for o in sources[:6]) + (" …" if len(sources) > 6 else "")
    words = f"{label} reads {src}" if sources else f"{label} reads only zeros (no window reads x[{fmt_index(m)}])"
    lines = [Line(words, "window", ())] + _gradient_lines(S, label, "∂ℓ/∂x", m, pairs, vals, g.kernel[-1])
    lit = (Lit("grad_y_padded", "window", tuple(t for t in taps if entry[t])),
           Lit("grad_y_padded", "padding_tap", tuple(t for t in taps if not inside[t])),
           Lit("grad_y_padded", "muted", tuple(t for t in taps if inside[t] and not entry[t])),
           Lit("grad_x", "output", tuple((c, *(int(v) for v in m)) for c in range(C))))
    narration = (f"{label} = {', '.join(S.fmt(v) for v in vals)}: the flipped kernel over the dilated, padded "
                 f"∂ℓ/∂y picks up {len(sources)} upstream entr{'y' if len(sources) == 1 else 'ies'}.")
    data = {"output": [int(v) for v in m], "sources": [list(s) for s in sources], "values": vals,
            "full": weight >= 1.0, "taps": [list(t) for t in taps]}
    step = Step(f"gx-{fmt_index(m).replace(',', '-')}", label, narration, lit=lit, lines=tuple(lines),
                writes=tuple(Write("grad_x", (c, *(int(v) for v in m)), vals[c], S.fmt(vals[c])) for c in range(C)),
                weight=weight, part="grad_x", data=data)
    return step, [[a * b for a, b in pc] for pc in pairs]
