"""What the explorer answers: pure functions of a request's parameters, from the registry and the Stories.

    answer(figure, params, theme, mode) -> dict      (BadRequest with the command line's one-line message)

A figure is a registry kind; its form is the kind's parameters. What the page draws is the kind's
**Story** (`kind.build_story(values).to_dict()`, the same plain data the video, the slides and the
captions track draw), or, for the RNN diagrams, the SVG of `diagrams.figures.diagram_svg`. The page
never computes: every number, index and sentence it shows comes from here.

Modes (the views of one figure):
    conv        forward      the "animate conv" Story: each step lights an output and the window it reads
                backward     the "animate conv-backward" Story: ∂ℓ/∂w and ∂ℓ/∂x, each cell from the
                             output gradients and taps it came from
                transposed   the same Story's grad_x part read the other way (it IS a transposed
                             convolution): each ∂ℓ/∂y cell stamps its kernel into ∂ℓ/∂x
    transpose   scatter      the "diagram conv-transpose" Story, scatter form: each input x[n] stamps
                             x[n]·w onto y; an output lights every input whose stamp reaches it
                gather       the same kind, gather form: the flipped kernel over the zero-spread input
    pool        forward      the "diagram pool" Story's forward part: each output and the window it reads
                             (the maximum a max pool picks marked)
                backward     its grad_x part: where each ∂ℓ/∂y[o] goes (max: the argmax; avg: spread)
    bptt        bptt         the "animate bptt" Story: steps back through time, the log-scale bars
                diagram      the backward diagram of the same network (Graphviz)

A step is named by the cell it writes, or, in a mode with `owner`, by the cell it lights on that grid
(the input x[n] of a stamp, the ∂ℓ/∂y[o] that is passed back): hovering the owner lights its step,
hovering an output lights every step that reaches it.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
from dataclasses import dataclass
from typing import Callable

from viz import __version__
from viz.app import registry as figures
from viz.app.serve import user_arrays
from viz.app.serve.arithmetic import check_transpose, padding_note, stamp_products
from viz.text import fmt_shape

THEMES = ("light", "dark")
DOT_HINT = ("Graphviz's `dot` program is needed to draw this figure: install Graphviz with "
            "`apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS), then check "
            "that `dot -V` runs.")


class BadRequest(Exception):
    """A request the client got wrong (or cannot be served here): an HTTP status with a one-line message
    (and the parameter, if any)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.param = param
        self.status = status


@dataclass(frozen=True)
class Mode:
    id: str
    label: str
    kind: str                  # the registry kind whose Story (or diagram) this mode draws
    draws: str                 # "story" | "svg"
    part: str = ""             # only the steps of this Story part ("" = all)
    note: str = ""
    grids: tuple[str, ...] = ()   # the Story grids drawn ("" = all)
    sources: str = ""          # the grid that a step's data["sources"] (0-based cells) points into
    kernel: str = ""           # the kernel grid whose taps a step's data["taps"] lists, in row-major order
    scatter: bool = False      # step through the `sources` cells, each lighting the outputs it reaches
    owner: str = ""            # the grid whose lit cell names each step (its outputs: what it reaches)
    fixed: tuple[tuple[str, str], ...] = ()   # parameters this mode sets (its form row is hidden)

    def to_json(self) -> dict:
        return {"id": self.id, "label": self.label, "draws": self.draws, "part": self.part, "note": self.note,
                "grids": list(self.grids), "sources": self.sources, "scatter": self.scatter,
                "kernel": self.kernel, "owner": self.owner, "fixed": dict(self.fixed)}


@dataclass(frozen=True)
class ExplorerFigure:
    id: str
    label: str
    kind: str                           # registry key whose parameters the form shows
    modes: tuple[Mode, ...]
    hidden: tuple[str, ...] = ()        # registry parameters the page does not show, besides render options
    note: str = ""
    # the checks the explorer applies instead of the kind's own (None: the kind's): the reference's
    # geometry, not a video's legibility limit at 1080p, since the explorer zooms and pans
    check: Callable[[dict], None] | None = None

    def mode(self, mode_id: str | None) -> Mode:
        if mode_id is None:
            return self.modes[0]
        for m in self.modes:
            if m.id == mode_id:
                return m
        raise BadRequest(f"--mode: must be one of {', '.join(m.id for m in self.modes)} (got {mode_id})",
                         "mode")

    @property
    def hidden_params(self) -> tuple[str, ...]:
        """What the form leaves out: how a file is encoded (the registry's render options: quality,
        step time; the theme, which the page's own switch sets), and `hidden`."""
        kind = figures.get(self.kind)
        fixed = {name for m in self.modes for name, _ in m.fixed}
        return tuple(p.name for p in kind.params if p.render_option or p.name in self.hidden or p.name in fixed)

    def to_json(self) -> dict:
        kind = figures.get(self.kind)
        return {"id": self.id, "label": self.label, "kind": kind.key, "summary": kind.summary,
                "note": self.note, "modes": [m.to_json() for m in self.modes],
                "params": [p.to_json() for p in kind.params if p.name not in self.hidden_params]}


_CONV_MODES = (
    Mode("forward", "Forward", "animate conv", "story", kernel="w",
         note="Hover or click an output to light the window it reads; hover an input to light every "
              "output that reads it. Arrow keys move the focused cell."),
    Mode("backward", "Backward", "animate conv-backward", "story", sources="grad_y", kernel="w_flipped",
         note="∂ℓ/∂w and ∂ℓ/∂x: hover a gradient cell to light the output gradients and taps it came from."),
    Mode("transposed", "Transposed (∂ℓ/∂x)", "animate conv-backward", "story", part="grad_x", sources="grad_y",
         grids=("grad_y", "w", "grad_x"), scatter=True,
         note="Derived from the backward Story's ∂ℓ/∂x part, which is a transposed convolution: each "
              "∂ℓ/∂y entry scatters a stamp of w into ∂ℓ/∂x. Hover a ∂ℓ/∂y cell to light its stamp. "
              "The Transposed conv figure draws a transposed convolution's own Story."),
)
_DIAGRAM_MODE = (Mode("diagram", "Diagram", "", "svg"),)
_TRANSPOSE_MODES = (
    Mode("scatter", "Scatter", "diagram conv-transpose", "story", owner="x", fixed=(("form", "scatter"),),
         note="Each input x[n] times the kernel is stamped onto y; overlapping stamps add. Hover an input to "
              "light its stamp and the taps it uses; hover an output to light every input whose stamp reaches it."),
    Mode("gather", "Gather", "diagram conv-transpose", "story", fixed=(("form", "gather"),),
         note="The same output: stride − 1 zeros inserted between the inputs (dotted), padded by d(k−1) − p "
              "(dashed), read by the flipped kernel. Hover an output to light what it reads."),
)
_POOL_MODES = (
    Mode("forward", "Forward", "diagram pool", "story", part="forward", grids=("x", "y"),
         note="Hover an output to light its window (a max pool's winning cell filled); hover an input to "
              "light every output that reads it. Arrow keys move the focused cell."),
    Mode("backward", "Backward", "diagram pool", "story", part="grad_x", grids=("grad_y", "grad_x"),
         owner="grad_y",
         note="Where ∂ℓ/∂y goes: a max pool sends each entry to its window's maximum, an average pool spreads "
              "it over the window. Hover ∂ℓ/∂y[o] to light its cells; hover ∂ℓ/∂x to light what it receives."),
)

FIGURES = {f.id: f for f in (
    ExplorerFigure("conv", "Convolution", "animate conv", _CONV_MODES, check=figures._check_conv_animation),
    ExplorerFigure("transpose", "Transposed conv", "diagram conv-transpose", _TRANSPOSE_MODES,
                   hidden=("positions",), check=check_transpose),
    ExplorerFigure("pool", "Pooling", "diagram pool", _POOL_MODES, hidden=("positions",)),
    ExplorerFigure("gated", "Gated RNN", "diagram gated-rnn", _DIAGRAM_MODE),
    ExplorerFigure("attention", "AttentionRNN(k/∞)", "diagram attention-rnn", _DIAGRAM_MODE),
    ExplorerFigure("bptt", "BPTT", "animate bptt", (
        Mode("bptt", "Back through time", "animate bptt", "story",
             note="Step back through time: ‖δ[t]‖ on a log scale, and the path that carries the gradient."),
        Mode("diagram", "Diagram", "", "svg", note="The backward diagram of the same network."),
    )),
)}


def explorer_json() -> dict:
    return {"version": __version__, "themes": list(THEMES),
            "figures": [f.to_json() for f in FIGURES.values()]}


# ---------------------------------------------------------------------------------------------------
# Parameters that do not change the figure (the page hides their controls)

# value-dependent rules the registry's `Param.applies` cannot say: (kind, parameter) -> unused when
_UNUSED_WHEN = {
    ("diagram gated-rnn", "steps"): lambda v: v.get("view") == "cell",
    ("diagram attention-rnn", "steps"): lambda v: v.get("view") == "cell",
    # AttentionRNN(∞) reads existing states only: the base case is always "mask"
    ("diagram attention-rnn", "base_case"): lambda v: v.get("k", 0) is None,
    # PyTorch's avg pool has no dilation; count_include_pad is the average's divisor
    ("diagram pool", "dilation"): lambda v: v.get("mode") == "avg",
    ("diagram pool", "count_include_pad"): lambda v: v.get("mode") == "max",
}


def unused_params(kind: figures.FigureKind, values: dict) -> list[str]:
    """The parameters whose value does not matter for these values (Param.applies, then _UNUSED_WHEN)."""
    return [p.name for p in kind.params
            if not p.applies_to(values) or _UNUSED_WHEN.get((kind.key, p.name), lambda v: False)(values)]


# ---------------------------------------------------------------------------------------------------
# Formulas (the RNN diagrams have no Story yet; the convolution's comes from its Story)


def _sizes(seq) -> str:
    return fmt_shape(seq)


def conv_formula(values: dict) -> list[str]:
    """Output shape first, then the formula per axis with the numbers (`ConvGeometry.formula`).
    Used only when the Story carries no formula."""
    from viz import conv

    g = conv.conv_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"])
    c = values["channels"]
    lines = [f"output {_sizes(g.out_shape)}   (input {c}×{_sizes(g.in_shape)}, one filter w "
             f"1×{c}×{_sizes(g.kernel)} → output 1×{_sizes(g.out_shape)})",
             "o = floor((i + p_lo + p_hi − d·(k−1) − 1) / s) + 1" + ("   per axis" if g.ndim > 1 else "")]
    for a in range(g.ndim):
        name = "" if g.ndim == 1 else f"axis {a + 1}: "
        unread = g.unread(a)
        note = f"   never read: {', '.join(str(m + 1) for m in unread)}" if unread else ""
        lines.append(f"{name}{g.formula(a)}{note}")
    return lines


def rnn_formula(key: str, values: dict) -> list[str]:
    """The equations and every shape, with the numbers, from the reference's own objects."""
    if key == "diagram gated-rnn":
        from viz.rnn import GatedRNN

        net = GatedRNN(values["n"], values["m"], seed=values["seed"])
        shape = lambda a: fmt_shape(a.shape)  # noqa: E731
        return [f"x[t] ∈ ℝ^{net.n},  h[t], c[t] ∈ ℝ^{net.m};  W_c {shape(net.W_c)}, W_x {shape(net.W_x)} "
                f"(m×n),  W_h {shape(net.W_h)} (m×m);  T = {values['steps']}, h[0] = 0",
                "c[t] = σ(W_c x[t] + W_h h[t−1]),   h[t] = c[t] ⊙ h[t−1] + (1 − c[t]) ⊙ W_x x[t]"]
    from viz.attention import AttentionRNN, step_lags

    net = AttentionRNN(values["n"], values["k"], seed=values["seed"], base_case=values["base_case"])
    T, k = values["steps"], values["k"]
    sizes = [len(step_lags(k, net.base_case, t)) for t in range(1, T + 1)]
    a = (f"a[t] ∈ ℝ^{sizes[0]}" if len(set(sizes)) == 1 else
         f"a[1] ∈ ℝ^{sizes[0]} … a[{T}] ∈ ℝ^{sizes[-1]}")
    span = "∞" if k is None else str(k)
    return [f"AttentionRNN({span}):  x[t], h[t] ∈ ℝ^{net.n};  Q, K, V each {'×'.join(map(str, net.param_shape))}"
            f";  {a};  T = {T}, base case {net.base_case}",
            "h[t] = Σ_i a_i[t] v_i,   a[t] = softmax(w_0 … w_k),   w_i = q_iᵀ k_i,   "
            "q_i, k_i, v_i = Q_i h[t−i], K_i h[t−i], V_i h[t−i]  (i = 0: x[t])"]


# ---------------------------------------------------------------------------------------------------
# Drawing: Stories and diagrams


def diagram_svg(key: str, values: dict) -> str:
    """The diagram's SVG; BadRequest 503 with the install hint when Graphviz's `dot` is missing."""
    from viz.io import MissingProgram

    if shutil.which("dot") is None:
        raise BadRequest(DOT_HINT, status=503)
    from diagrams.figures import diagram_svg as draw

    try:
        return draw(figures.get(key).name, dict(values))
    except MissingProgram as err:
        raise BadRequest(str(err).splitlines()[0], status=503) from None


def bptt_diagram(values: dict, theme: str) -> tuple[str, dict]:
    """The backward diagram of the network `animate bptt` animates: (kind key, its parameters).

    Every parameter the two kinds share (steps, k, n, m, preset, seed, and any added later) is passed
    on; the diagram's own validation applies."""
    key = "diagram gated-rnn" if values["model"] == "gated" else "diagram attention-rnn"
    target = figures.get(key)
    raw = {p.name: values[p.name] for p in target.params if p.name in values}
    raw.update(view="backward", annotate="values", theme=theme)
    return key, target.validate(raw)


def story_dict(kind_key: str, values: dict) -> dict:
    """`kind.build_story(values).to_dict()` for `kind_key`, from the figure's validated values (the kinds
    a figure's modes draw share its parameters; a parameter only `kind_key` has takes its default).

    The other kind's own check is not applied: it guards what a *video* can show legibly at 1080p,
    and the explorer zooms instead. The reference's own errors still answer 400."""
    kind = figures.get(kind_key)
    if not kind.story:
        raise BadRequest(f"{kind.key} has no Story yet (viz/story/), so this view cannot be drawn", status=503)
    own = {p.name: values.get(p.name, p.default) for p in kind.params}
    try:
        return kind.build_story(own).to_dict()
    except figures.ParamError as err:
        raise BadRequest(str(err), err.param) from None
    except ValueError as err:
        raise BadRequest(str(err).splitlines()[0]) from None


# ---------------------------------------------------------------------------------------------------
# The answer


def _formatted(kind: figures.FigureKind, values: dict) -> dict:
    return {p.name: p.format(values[p.name]) for p in kind.params if values.get(p.name) is not None}


def _raw_params(fig: ExplorerFigure, raw_params, arrays: bool = True) -> dict:
    """The request's parameter values as the command line would get them; the user's arrays (JSON
    arrays only, bounded: `user_arrays`) unless `arrays` is False."""
    if not isinstance(raw_params, dict):
        raise BadRequest("params must be an object of parameter values", "params")
    raw, given = {}, {}
    kind = figures.get(fig.kind)
    optional = {p.name for p in kind.params if p.default is None}
    for name, value in raw_params.items():
        if value in ("", None) and isinstance(name, str) and name.replace("-", "_") in optional:
            continue  # an empty box: the default (pool's stride: the kernel; an array: the seeded one)
        if not isinstance(name, str) or len(name) > 64:
            raise BadRequest("parameter names must be short strings", "params")
        if name.replace("-", "_") in fig.hidden_params:
            continue  # quality, theme: fixed by the page
        if user_arrays.is_array_param(kind, name.replace("-", "_")):
            if arrays:
                given[name] = _array_request(user_arrays.raw_array, name, value)
            continue
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, str) and len(value) > 200):
            raise BadRequest(f"--{name.replace('_', '-')}: must be a short string or a number", name)
        raw[name] = value
    if given:
        _array_request(user_arrays.check_total, given)
    return {**raw, **given}


def _array_request(check, *args):
    try:
        return check(*args)
    except user_arrays.BadArray as err:
        raise BadRequest(str(err), err.param) from None


def _figure_view(figure_id, theme, mode) -> tuple[ExplorerFigure, Mode]:
    if not isinstance(figure_id, str) or figure_id not in FIGURES:
        raise BadRequest(f"unknown figure {figure_id!r} (allowed: {', '.join(FIGURES)})", "figure")
    if not isinstance(theme, str) or theme not in THEMES:
        raise BadRequest(f"--theme: must be one of {', '.join(THEMES)} (got {theme})", "theme")
    if mode is not None and not isinstance(mode, str):
        raise BadRequest("--mode: must be a string", "mode")
    return FIGURES[figure_id], FIGURES[figure_id].mode(mode)


def arrays_answer(figure_id, raw_params, theme: str = "light", mode: str | None = None) -> dict:
    """{"arrays": {name: {"shape", "why"}}}: the arrays the figure's mode takes for these parameters
    (arrays in the request left out), so the page drops an edited array that no longer fits."""
    fig, view = _figure_view(figure_id, theme, mode)
    kind = figures.get(fig.kind)
    values = _validate(fig, kind, {**_raw_params(fig, raw_params, arrays=False), **dict(view.fixed)})
    shapes = user_arrays.expected(view.kind, values) if view.kind else {}
    return {"arrays": {name: {"shape": list(shape), "why": why} for name, (shape, why) in shapes.items()}}


def render_answer(figure_id, raw_params, theme: str = "light", mode: str | None = None) -> dict:
    """The JSON answer for one parameter change; raises BadRequest with the CLI's message."""
    fig, view = _figure_view(figure_id, theme, mode)
    kind = figures.get(fig.kind)
    raw = {**_raw_params(fig, raw_params), **dict(view.fixed)}
    if "theme" in {p.name for p in kind.params}:
        raw["theme"] = theme
    values = _validate(fig, kind, raw)
    if view.kind:          # the drawn kind's shapes, whatever the figure's own check looks at
        _array_request(user_arrays.check, view.kind, values)
    shown = {k: v for k, v in _formatted(kind, values).items() if k not in fig.hidden_params}
    # the command that makes what this mode shows (the backward modes: `animate conv-backward`)
    target = figures.get(view.kind) if view.kind else kind
    own = {p.name: values.get(p.name, p.default) for p in target.params}
    answer = {"figure": fig.id, "kind": kind.key, "mode": view.id, "params": shown,
              "unused": [p for p in unused_params(kind, values) if p not in fig.hidden_params],
              "command": target.command_line(own), "video_note": _video_note(fig, target, own),
              "view": {**view.to_json(), "padding": padding_note(kind.key, values)}}
    if view.draws == "story":
        story = story_dict(view.kind, values)
        answer["story"] = story
        if products := stamp_products(story):
            answer["products"] = products
        answer["formula"] = list(story.get("formula") or ()) or (
            conv_formula(values) if fig.id == "conv" else [story.get("title", "")])
        answer["arrays"] = user_arrays.arrays_answer(view.kind, values, story, view.grids)
    elif fig.id == "bptt":
        key, diagram_values = bptt_diagram(values, theme)
        answer["formula"] = rnn_formula(key, diagram_values) + [
            f"the backward diagram: {figures.get(key).command_line(diagram_values)}"]
        answer["svg"] = diagram_svg(key, diagram_values)
    else:
        answer["formula"] = rnn_formula(kind.key, values)
        answer["svg"] = diagram_svg(kind.key, values)
    return answer


def _validate(fig: ExplorerFigure, kind: figures.FigureKind, raw: dict) -> dict:
    """The typed values, with the figure's checks (BadRequest with the command line's message)."""
    own = dataclasses.replace(kind, check=fig.check) if fig.check else kind
    try:
        return own.validate(raw)
    except figures.ParamError as err:   # the parameter the message names (a figure's geometry check
        raise BadRequest(str(err), _param_named(kind, str(err)) or err.param) from None   # says "input")
    except ValueError as err:     # a combination the reference rejects (same message as the CLI)
        raise BadRequest(str(err), _param_named(kind, str(err))) from None


def _video_note(fig: ExplorerFigure, target: figures.FigureKind, values: dict) -> str:
    """When the explorer draws what the shown command would refuse (a video whose digits would be too
    small at 1080p), that command's one-line refusal; else ""."""
    if not (fig.check and target.check) or target.command != "animate":
        return ""   # a static figure has no 1080p limit (and its check would build the Story again)
    try:
        target.check(values)
    except ValueError as err:
        return str(err).splitlines()[0]
    return ""


def _param_named(kind: figures.FigureKind, message: str) -> str | None:
    for p in kind.params:
        if re.match(rf"(--)?{p.name}\b", message):
            return p.name
    return None
