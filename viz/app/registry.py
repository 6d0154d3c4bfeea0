"""The one registry of figure kinds behind every front end.

Each kind declares its parameters (type, range, default, help) and how it renders. The click commands
(`viz shape`, `viz diagram ...`, `viz animate ...`, `viz plot ...`), the `viz build` manifest validator and
the `viz serve` explorer form are all generated from this table, so they cannot disagree about limits
or error messages. Renderers are named by import string and loaded only when a file is rendered, so
`import viz` stays NumPy-only.

Every parse error is a `ParamError` whose message names the parameter (as its command-line flag) and
the allowed range, e.g. ``--stride: must be an integer in 1..8 (got 0)``. The parameter types (parse,
format, range, completion) are classes in `viz.app.params`; render options (quality, theme, step time)
are parameters with ``render_option=True``, kept apart by `FigureKind.render_options`.
"""
from __future__ import annotations

import dataclasses
import importlib
import shlex
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from viz import train
from viz.app.params import Param, ParamError, show as _show  # noqa: F401  (re-exported)


# ---------------------------------------------------------------------------------------------------
# Figure kinds


STORY_CACHE = 4       # Stories kept (immutable plain data): a kind's check builds the one its render draws
_STORIES: "OrderedDict[tuple, object]" = OrderedDict()


@dataclass(frozen=True)
class FigureKind:
    """A kind of figure: `viz <command> <name>` on the command line, `kind = "<command> <name>"` in a
    manifest. `check` validates combinations of parameters through the reference (for example, a
    convolution geometry) and raises ValueError; `render` is "module:function" loaded lazily."""

    command: str
    name: str
    summary: str
    params: tuple[Param, ...]
    formats: tuple[str, ...]
    render: str
    check: Callable[[dict], None] | None = None
    story: str | None = None   # "module:function" building the kind's Story from validated values
    stdout_format: str | None = None   # printed to standard output when no -o is given (`viz shape`: txt)

    @property
    def writes_text(self) -> bool:
        """A report printed or written as text (`viz shape`), rather than a figure that needs -o."""
        return self.stdout_format is not None

    @property
    def is_video(self) -> bool:
        """An animation: the figure unfolds in time (it writes mp4, gif or webm), so its Story's steps
        have a timeline (captions track, stills of one step)."""
        return any(f in VIDEO_FORMATS for f in self.formats)

    @property
    def figure_params(self) -> tuple[Param, ...]:
        """The parameters that decide what the figure shows (and its Story)."""
        return tuple(p for p in self.params if not p.render_option)

    @property
    def render_options(self) -> tuple[Param, ...]:
        """The parameters that decide only how it is drawn: quality, theme, step time."""
        return tuple(p for p in self.params if p.render_option)

    def split(self, values: dict) -> tuple[dict, dict]:
        """Validated values as (figure parameters, render options)."""
        options = {p.name for p in self.render_options}
        return ({k: v for k, v in values.items() if k not in options},
                {k: v for k, v in values.items() if k in options})

    def with_options(self, raw: dict, **options) -> dict:
        """`raw` with the render options this kind has set to `options` (None: leave as is); e.g. a
        build's ``--quality high`` for every animation, ignored by diagrams."""
        names = {p.name for p in self.render_options}
        return {**raw, **{k: v for k, v in options.items() if k in names and v is not None}}

    @property
    def all_formats(self) -> tuple[str, ...]:
        """The renderer's formats, plus "story.json" (the figure as data) where the kind has a Story."""
        derived = (STORY_FORMAT,) if self.story else ()
        if self.story and self.is_video:
            derived += (CAPTIONS_FORMAT, DECK_FORMAT)   # the captions track; the slides, one file
        return self.formats + derived

    def format_for(self, out) -> str | None:
        """The format a file name asks for: "fig.story.json" -> "story.json", "fig.svg" -> "svg".
        Suffixes are lower case, as the formats are spelled ("fig.SVG" asks for none)."""
        return suffix_format(Path(out).name, self.all_formats)

    def build_story(self, values: dict):
        """The kind's Story (plain data, NumPy only) for validated values."""
        if not self.story:
            raise ParamError("format", f"{self.key} has no story")
        try:            # the check and the render (or the explorer's answer) ask for the same Story
            key = (self.key, tuple(sorted(values.items())))
            hash(key)
        except TypeError:
            key = None
        story = _STORIES.get(key) if key is not None else None
        if story is None:
            module, _, func = self.story.partition(":")
            story = getattr(importlib.import_module(module), func)(dict(values))
            # one builder may serve several kinds (a figure and its animation): the story names the one asked
            story = story if story.kind == self.key else dataclasses.replace(story, kind=self.key)
            if key is not None:
                _STORIES[key] = story
                while len(_STORIES) > STORY_CACHE:
                    _STORIES.popitem(last=False)
        else:
            _STORIES.move_to_end(key)
        return story

    @property
    def key(self) -> str:
        return f"{self.command} {self.name}" if self.name else self.command

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def validate(self, raw: dict) -> dict:
        """Typed, complete parameters from raw values; ParamError/ValueError naming the parameter."""
        known = {p.name for p in self.params}
        for name in raw:
            if name.replace("-", "_") not in known:
                allowed = ", ".join(sorted(known))
                raise ParamError(name, f"unknown parameter {name!r} for {self.key} (allowed: {allowed})")
        carried = self._carried(raw)
        try:
            return self._validate(carried)
        except ParamError as err:     # an array given to its flag: the error names the flag typed
            by = next((p for p in self.params if p.type == "flag" and p.carries == err.param
                       and p.carried(raw.get(p.name))), None)
            if by is None:
                raise
            old = self.param(err.param).flag
            raise ParamError(by.name, str(err).replace(f"{old}:", f"{by.flag}:", 1)) from None

    def _validate(self, raw: dict) -> dict:
        values = {}
        for p in self.params:
            given = raw.get(p.name, raw.get(p.name.replace("_", "-"), _MISSING))
            if given is _MISSING and p.required:
                raise ParamError(p.name, f"{p.flag}: is required ({p.describe_range()})")
            values[p.name] = p.default if given is _MISSING else p.parse(given)
        if self.check is not None:
            self.check(values)
        return values

    def _carried(self, raw: dict) -> dict:
        """A flag given an array (`--bias '[1, 2]'`, `bias = [1, 2]`) turns on and passes the array to
        the parameter it carries (`b`); giving both is refused in one line."""
        for p in self.params:
            value = raw.get(p.name)
            if p.type == "flag" and p.carried(value):
                if raw.get(p.carries) is not None:
                    other = self.param(p.carries).flag
                    raise ParamError(p.name, f"{p.flag}: given an array and {other} too; give the array once")
                raw = {**raw, p.carries: value, p.name: True}
        return raw

    def command_line(self, values: dict, fmt: str | None = None, out: str | None = None) -> str:
        """The `viz ...` command that reproduces a figure (shown in galleries)."""
        words = ["viz", self.command] + ([self.name] if self.name else [])
        for p in self.params:
            v = values.get(p.name, p.default)
            if v == p.default or not p.applies_to(values):
                continue
            if p.type == "flag":
                words.append(p.flag if v else f"--no-{p.flag[2:]}")
            else:
                words += [p.flag, p.format(v)]
        if fmt is not None and not self.writes_text:
            words += ["--format", fmt]
        if out is not None:
            words += ["-o", out]
        return " ".join(shlex.quote(w) for w in words)      # arrays and odd paths stay one word in a shell

    def render_to(self, values: dict, out: Path, fmt: str) -> None:
        """Render validated parameters to `out` in format `fmt` (atomically, by the renderer)."""
        if fmt not in self.all_formats:
            raise ParamError("format", f"--format: must be one of {', '.join(self.all_formats)} (got {fmt!r})")
        if fmt == STORY_FORMAT:
            from viz.io import write_text_atomic
            write_text_atomic(out, self.build_story(values).to_json())
            return
        if fmt == CAPTIONS_FORMAT:
            _write_captions(self, values, out)
            return
        if fmt == DECK_FORMAT:
            from viz.app.slides import build_single_file
            build_single_file(self, values, out)
            return
        module, _, func = self.render.partition(":")
        getattr(importlib.import_module(module), func)(self, dict(values), Path(out), fmt)

    def to_json(self) -> dict:
        return {"key": self.key, "command": self.command, "name": self.name, "summary": self.summary,
                "formats": list(self.all_formats), "params": [p.to_json() for p in self.params]}


_MISSING = object()
VIDEO_FORMATS = ("mp4", "gif", "webm")
STORY_FORMAT = "story.json"
CAPTIONS_FORMAT = "vtt"
DECK_FORMAT = "slides.html"        # a reveal.js deck in one self-contained file (viz/app/slides.py)

SEED = Param("seed", "int", 0, "Seed of the random weights and inputs (same seed, same figure).",
             min=0, max=2**31 - 1)
THEME = Param("theme", "choice", "light", "Colour theme.", choices=("light", "dark"), render_option=True)
QUALITY = Param("quality", "choice", "low", "Video quality: low 480p15, medium 720p30, high 1080p60.",
                choices=("low", "medium", "high"), render_option=True)
STEP_TIME = Param("step_time", "float", 3.0,
                  "Seconds a fully shown step stays on screen (sped-up steps take their share of it).",
                  min=0.5, max=30.0, render_option=True)


def _conv_params(max_size: int, default_input, default_kernel, default_stride, channels: bool,
                 max_axes: int = 3) -> tuple:
    required = default_input is None
    geo = 16 if max_size <= 32 else max_size  # animations keep geometry drawable; `viz shape` is arithmetic
    params = [
        Param("input", "shape", default_input, "Spatial input size per axis, e.g. 7 or 28x28.",
              min=1, max=max_size, required=required, max_axes=max_axes),
        Param("kernel", "shape", default_kernel, "Kernel size per axis, e.g. 3 or 4x5.", min=1, max=geo,
              required=required, broadcast=True),
        Param("stride", "shape", default_stride, "Stride per axis, e.g. 2 or 2x1.", min=1, max=geo,
              broadcast=True),
        Param("padding", "padding", 0, "Zero padding: 1, 1x2 per axis, 1:2x0:1 as lo:hi, same or valid.",
              min=0, max=geo),
        Param("dilation", "shape", 1, "Kernel dilation per axis, e.g. 1 or 1x3.", min=1, max=geo,
              broadcast=True),
    ]
    if channels:
        params.append(Param("channels", "int", 5, "Input channels (drawn as stacked rows).", min=1, max=8))
    return tuple(params)


def _check_conv(values: dict) -> None:
    """Invalid geometry gets the reference's own message (naming the axis and the range)."""
    from viz import conv

    if values.get("transposed"):
        conv.conv_transpose_output_shape(values["input"], values["kernel"], values["stride"],
                                         values["padding"], values["dilation"], values["output_padding"])
    else:
        conv.conv_output_shape(values["input"], values["kernel"], values["stride"], values["padding"],
                               values["dilation"])


def _check_pool_shape(values: dict) -> None:
    """`viz shape --pool`: what a pooling layer takes (no transposed, channels, output padding or
    asymmetric padding; dilation only for max), then PyTorch's rules (viz.pool)."""
    from viz import pool

    flag = f"--pool {values['pool']}"
    for name, off in (("transposed", False), ("in_channels", None), ("filters", None), ("groups", 1)):
        if values[name] != off:
            raise ParamError(name, f"--{name.replace('_', '-')}: does not apply with {flag}")
    pad = values["padding"]
    if isinstance(pad, str) or (isinstance(pad, tuple) and any(isinstance(p, tuple) for p in pad)):
        raise ParamError("padding", f"--padding: {flag} pads both sides alike: give 1 or 1x2 per axis "
                                    f"(got {SHAPE.param('padding').format(pad)})")
    dil = values["dilation"]
    if values["pool"] == "avg" and any(d != 1 for d in (dil if isinstance(dil, tuple) else (dil,))):
        raise ParamError("dilation", f"--dilation: average pooling has none (got {SHAPE.param('dilation').format(dil)})")
    op = values["output_padding"]
    if any(op if isinstance(op, tuple) else (op,)):
        raise ParamError("output_padding", f"--output-padding: does not apply with {flag}")
    try:
        pool.pool_geometry(values["input"], values["kernel"], values["stride"], pad, dil, values["ceil_mode"])
    except ValueError as err:
        raise ParamError("input", " ".join(str(err).split())) from None


def _check_shape(values: dict) -> None:
    """`viz shape`: the geometry, then channels and groups (both or neither; groups divide both)."""
    if values.get("pool", "none") != "none":
        return _check_pool_shape(values)
    if values.get("ceil_mode"):
        raise ParamError("ceil_mode", "--ceil-mode: applies only with --pool max or --pool avg")
    _check_conv(values)
    op = values["output_padding"]
    if not values["transposed"] and any(op if isinstance(op, tuple) else (op,)):
        raise ParamError("output_padding", "--output-padding: applies only with --transposed "
                                           f"(got {SHAPE.param('output_padding').format(values['output_padding'])})")
    c, f, groups = values["in_channels"], values["filters"], values["groups"]
    if c is None and f is None:
        if groups != 1:
            raise ParamError("groups", f"--groups: needs --in-channels and --filters (got --groups {groups} alone)")
        return
    if c is None or f is None:
        given, missing = ("--in-channels", "--filters") if f is None else ("--filters", "--in-channels")
        raise ParamError(missing.lstrip("-").replace("-", "_"),
                         f"{missing}: is required with {given} (they go together; got only {given})")
    from viz.app.shape_report import geometry

    try:
        geometry(values).weight_shape(c, f, groups)
    except ValueError as err:
        raise ParamError("groups", f"--groups: {err}") from None


def _check_conv_animation(values: dict) -> None:
    if len(values["input"]) > 2:
        raise ParamError("input", f"--input: animations show 1-D or 2-D inputs (got {len(values['input'])} axes)")
    _check_conv(values)
    if "filters" in values:
        _check_filter_groups(values)
    if "x" in values and not values.get("transposed"):     # the conv kinds' arrays (transposed: its own check)
        _check_conv_arrays(values)


def _check_filter_groups(values: dict) -> None:
    """Groups split the channels and the filters alike: both must be divisible by it (as torch)."""
    c, f, groups = values["channels"], values["filters"], values["groups"]
    if c % groups or f % groups:
        raise ParamError("groups", f"--groups: must divide --channels ({c}) and --filters ({f}) (got {groups})")


_ARRAY_HELP = " (PyTorch layout, no batch axis; a JSON array or a .npy, .json or .csv file) [default: seeded example]"
USER_ARRAYS = (
    Param("x", "array", None, "Your input x, shape C x *input" + _ARRAY_HELP + "."),
    Param("w", "array", None, "Your kernel w, shape F x C/groups x *kernel" + _ARRAY_HELP + "."),
    Param("b", "array", None, "Your bias b, shape F: turns the bias on (--bias alone adds a seeded one)"
          + _ARRAY_HELP.replace(" [default: seeded example]", "") + "."),
    Param("grad_y", "array", None, "Your upstream gradient ∂ℓ/∂y, shape F x *output" + _ARRAY_HELP + "."),
)


def _shape(t) -> str:
    from viz.text import fmt_shape

    return fmt_shape(t, "x")


def _conv_arrays(values: dict) -> dict:
    from viz import conv

    g = conv.conv_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"])
    c, f, groups = values["channels"], values.get("filters", 1), values.get("groups", 1)
    chans = f"{c} input channel{'s' if c != 1 else ''}"
    filt = f"{f} filter{'s' if f != 1 else ''}"
    per = f" ({c // groups} per group of {groups})" if groups > 1 else ""
    return {"x": ((c, *g.in_shape), f"{chans} and input {_shape(g.in_shape)}"),
            "w": ((f, c // groups, *g.kernel), f"{filt}, {chans}{per} and kernel {_shape(g.kernel)}"),
            "b": ((f,), filt),
            "grad_y": ((f, *g.out_shape), f"{filt} and output {_shape(g.out_shape)}")}


def _transpose_arrays(values: dict) -> dict:
    """PyTorch's ConvTranspose layout: x (C_in, *input), w (C_in, F/groups, *kernel); groups checked first."""
    from viz import conv

    if "filters" in values:
        _check_filter_groups(values)
    g = conv.conv_transpose_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                                     values["dilation"], values["output_padding"])
    c, f, groups = values.get("channels", 1), values.get("filters", 1), values.get("groups", 1)
    chans = f"channel{'s' if c != 1 else ''}"
    filt = f"{f} filter{'s' if f != 1 else ''}"
    per = f" ({f // groups} per group of {groups})" if groups > 1 else ""
    return {"x": ((c, *g.in_shape), f"{c} {chans} and input {_shape(g.in_shape)}"),
            "w": ((c, f // groups, *g.kernel), f"{c} input {chans}, {filt}{per} and kernel {_shape(g.kernel)}")}


def _pool_arrays(values: dict) -> dict:
    from viz import pool

    g = pool.pool_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"] if values["mode"] == "max" else 1, values["ceil_mode"])
    return {"x": ((1, *g.in_shape), f"1 channel and input {_shape(g.in_shape)}"),
            "grad_y": ((1, *g.out_shape), f"1 channel and output {_shape(g.out_shape)}")}


_ARRAYS_OF = {"animate conv": _conv_arrays, "animate conv-backward": _conv_arrays,
              "animate conv-transpose": _transpose_arrays, "animate pool": _pool_arrays,
              "diagram conv-transpose": _transpose_arrays, "diagram pool": _pool_arrays}


def expected_arrays(key: str, values: dict) -> dict:
    """{array parameter: (shape, "for ...")} that the kind `key` expects for the (geometry-checked)
    `values`: what the checks hold given arrays to, and what the explorer's cell editors are sized to.
    Empty for kinds that take no arrays."""
    of = _ARRAYS_OF.get(key)
    return {name: (tuple(int(v) for v in shape), why) for name, (shape, why) in of(values).items()} if of else {}


def _check_conv_arrays(values: dict) -> None:
    """Each given array has the shape the geometry asks: one line naming it and the expected shape."""
    _check_given_arrays(values, _conv_arrays(values))


def _check_conv_backward_animation(values: dict) -> None:
    """Geometry first; then whether the backward Story can be drawn legibly (scenes/conv_layout.py:
    every number at least 14 px tall at 1080p), else one line naming the limit."""
    _check_conv_animation(values)
    from scenes.conv_layout import refusal

    why = refusal(get("animate conv-backward").build_story(values))
    if why:
        size = _shape(values["input"])
        raise ParamError("input", f"--input: {size} with {_maps(values)} is too large to draw legibly: {why}; "
                                  f"use a smaller --input, --channels, --filters, --kernel, --padding or --dilation")


def _check_conv_forward_animation(values: dict) -> None:
    """Geometry first; then whether the forward Story can be drawn legibly (scenes/conv_plan.py: every
    number at least 14 px tall at 1080p), else one line naming the limit."""
    _check_conv_animation(values)
    from scenes.conv_plan import refusal

    why = refusal(get("animate conv").build_story(values))
    if why:
        size = _shape(values["input"])
        raise ParamError("input", f"--input: {size} with {_maps(values)} is too large to draw legibly: {why}; "
                                  f"use a smaller --input, --channels, --filters, --kernel, --padding or --dilation")


def _maps(values: dict) -> str:
    f = values.get("filters", 1)
    return f"{values['channels']} channel(s)" + (f" and {f} filters" if f > 1 else "")


def _check_gated_preset(values: dict) -> None:
    # The explode preset keeps all units in lockstep through a cyclic shift, which needs two units.
    if values.get("preset") == "explode" and values.get("model", "gated") == "gated" and values["m"] < 2:
        raise ParamError("m", f"--m: the explode preset needs m >= 2 (got {values['m']})")


def _check_recurrent(values: dict) -> None:
    """The recurrent kinds: the preset's own limit, then the user's weights and inputs (one line naming
    the flag and the key; with --weights the preset and scale do not apply and must stay unset)."""
    kind = _recurrent_kind(values)
    if values.get("weights") is not None:
        for name in ("preset", "scale"):
            if name in values and values[name] != kind.param(name).default:
                raise ParamError(name, f"--{name}: does not apply with --weights (your weights replace the "
                                       f"preset's; leave --{name} out)")
    if kind is not ATTENTION_DIAGRAM:
        _check_gated_preset(values)
    _check_given_arrays(values, _recurrent_inputs(values))
    if values.get("weights") is not None:
        from viz.arrays import ArrayError
        from viz.rnn_weights import check_weights, fitting_options, model_words, shapes_for

        model = values.get("model", "gated" if kind is GATED_DIAGRAM else "attention")
        k = values.get("k") if model == "attention" else None
        try:
            check_weights(dict(values["weights"]), shapes_for(model, values["n"], values.get("m"), k),
                          model_words(model, k))
        except ArrayError as err:
            fits = fitting_options(dict(values["weights"]), model)
            raise ParamError("weights", str(err) + (f"; these weights fit {fits}" if fits else "")) from None
    if values.get("weights") is not None or values.get("inputs") is not None:
        _check_user_run(kind, values)


def _recurrent_kind(values: dict) -> FigureKind:
    """Which recurrent kind validated `values` (they share one check; each has its own parameters)."""
    return next(k for k in (GATED_DIAGRAM, ATTENTION_DIAGRAM, BPTT_ANIMATION)
                if set(values) == {p.name for p in k.params})


def _check_user_run(kind: FigureKind, values: dict) -> None:
    """The user's numbers run through the figure's Story before anything renders: an overflow in
    float64 is one line naming --weights or --inputs (the Story's own message)."""
    try:
        kind.build_story(values)
    except ValueError as err:
        message = " ".join(str(err).split())
        name = "inputs" if message.startswith("--inputs") else "weights"
        raise ParamError(name, message if message.startswith("--") else f"--{name}: {message}") from None


def _recurrent_inputs(values: dict) -> dict:
    """{"inputs": ((T, n), "for ...")}: x[1..T], one row per step."""
    T, n = values["steps"], values["n"]
    return {"inputs": ((T, n), f"T = {T} steps (--steps) of input size n = {n} (--n)")}


_WEIGHTS_HELP = (" (.npz, .json or a JSON object; with it --preset and --scale do not apply) "
                 "[default: the preset's or seeded weights]")
_INPUTS = Param("inputs", "array", None, "Your inputs x[1..T], shape steps x n (a JSON array or a .npy, .json "
                "or .csv file) [default: the preset's or seeded inputs].")
_GATED_WEIGHTS = Param("weights", "weights", None, "Your weights W_c (m x n), W_h (m x m), W_x (m x n)"
                       + _WEIGHTS_HELP + ".")
_ATTENTION_WEIGHTS = Param("weights", "weights", None, "Your weights Q_i, K_i, V_i (n x n each) for i = 0..k "
                           "(i = 0: x[t]; for k = inf, i = 0 and 1, shared by every lag)" + _WEIGHTS_HELP + ".")
_BPTT_WEIGHTS = Param("weights", "weights", None, "Your weights: --model gated W_c, W_h, W_x; --model attention "
                      "Q_i, K_i, V_i for i = 0..k (k = inf: i = 0, 1)" + _WEIGHTS_HELP.replace(
                          "--preset and --scale do", "--preset does") + ".")


SHAPE = FigureKind(
    command="shape", name="",
    summary="Output shape of a (transposed) convolution, with the formula per axis and the unread inputs.",
    params=_conv_params(100_000, None, None, 1, channels=False) + (
        Param("in_channels", "int", None, "Input channels C (prints the weight shape).", min=1, max=100_000),
        Param("filters", "int", None, "Number of filters F (prints the weight shape).", min=1, max=100_000),
        Param("groups", "int", 1, "Channel groups (C and F must be divisible by it).", min=1, max=100_000),
        Param("transposed", "flag", False, "Transposed convolution (the adjoint)."),
        Param("output_padding", "shape", 0, "Transposed only: extra output rows per axis, each less than "
              "the stride or the dilation on that axis (as torch).", min=0, max=100_000, broadcast=True),
        Param("pool", "choice", "none", "A pooling layer instead: max or avg, PyTorch's rules (give --stride: "
              "here it defaults to 1, in PyTorch to the kernel).", choices=("none", "max", "avg")),
        Param("ceil_mode", "flag", False, "Pooling only: round the output size up, as PyTorch's ceil_mode.",
              applies=(("pool", ("max", "avg")),)),
    ),
    formats=("txt", "json", "md"),
    render="viz.app.shape_report:render_shape",
    check=_check_shape,
    stdout_format="txt",
)

_DIAGRAM_COMMON = (
    Param("view", "choice", "unrolled", "cell: one step; unrolled: T steps; backward: gradient path.",
          choices=("cell", "unrolled", "backward")),
    Param("steps", "int", 4, "Time steps T drawn.", min=1, max=64),
)
_DIAGRAM_PRESET = Param("preset", "choice", "none",
                        "Weights: none (random: seed, scale), or make gradients vanish/survive/explode.",
                        choices=("none", "vanish", "survive", "explode"))
_SCALE = Param("scale", "float", 1.0, "Weight scale with --preset none: N(0, 1)/sqrt(fan_in) * scale.",
               min=0.01, max=100.0, applies=(("preset", ("none",)),))
_DIAGRAM_TAIL = (
    SEED,
    Param("annotate", "choice", "shapes", "Annotate nodes: none, shapes, or values (norms/numbers).",
          choices=("none", "shapes", "values")),
    THEME,
)

GATED_DIAGRAM = FigureKind(
    command="diagram", name="gated-rnn",
    summary="Computation graph of the gated RNN: c[t] = σ(W_c x[t] + W_h h[t-1]), "
            "h[t] = c[t] ⊙ h[t-1] + (1 - c[t]) ⊙ W_x x[t].",
    params=_DIAGRAM_COMMON + (
        Param("n", "int", 3, "Input size n.", min=1, max=8),
        Param("m", "int", 3, "State size m.", min=1, max=8),
        _DIAGRAM_PRESET, _SCALE, _GATED_WEIGHTS, _INPUTS,
    ) + _DIAGRAM_TAIL,
    formats=("svg", "png", "pdf", "dot"),
    render="viz.app.registry:_render_diagram",
    check=_check_recurrent,
    story="viz.story.graphs.figure:gated_story",
)

ATTENTION_DIAGRAM = FigureKind(
    command="diagram", name="attention-rnn",
    summary="Computation graph of AttentionRNN(k) / AttentionRNN(∞): softmax attention over the last k states.",
    params=_DIAGRAM_COMMON[:1] + (
        Param("steps", "int", 6, "Time steps T drawn.", min=1, max=64),
        Param("k", "k", 2, "Attention span k (lags 1..k), or inf for AttentionRNN(∞).", min=1, max=64),
        Param("n", "int", 3, "State size n.", min=1, max=8),
        Param("base_case", "choice", "zeros",
              "States before h[1]: zeros (literal rule, they take softmax mass) or mask (excluded); "
              "AttentionRNN(∞) always reads existing states only.",
              choices=("zeros", "mask")),
        _DIAGRAM_PRESET, _SCALE, _ATTENTION_WEIGHTS, _INPUTS,
    ) + _DIAGRAM_TAIL,
    formats=("svg", "png", "pdf", "dot"),
    render="viz.app.registry:_render_diagram",
    check=_check_recurrent,
    story="viz.story.graphs.figure:attention_story",
)

_ANIMATION_FORMATS = ("mp4", "gif", "webm", "png")

CONV_ANIMATION = FigureKind(
    command="animate", name="conv",
    summary="A strided / padded / dilated convolution sliding over its input, with the numbers; 1-D or 2-D, "
            "sizes whose numbers would be under 14 px tall at 1080p are refused.",
    params=_conv_params(32, (7,), 3, 2, channels=True, max_axes=2) + (
        Param("values", "choice", "int", "Example data: small integers (checkable by hand) or decimals.",
              choices=("int", "float")),
        Param("bias", "flag", False, "Add a bias b to every output (the backward pass shows ∂ℓ/∂b = Σ ∂ℓ/∂y): "
              "--bias alone a seeded one, --bias ARRAY yours (shape F, as --b).", carries="b"),
        Param("filters", "int", 1, "Filters F: F output maps, each from its own kernel.", min=1, max=8),
        Param("groups", "int", 1, "Channel groups: filter f reads only the channels/groups channels of its group "
              "(groups = channels = filters: depthwise).", min=1, max=8),
        *USER_ARRAYS, SEED, QUALITY, STEP_TIME),
    formats=_ANIMATION_FORMATS,
    render="viz.app.registry:_render_animation",
    check=_check_conv_forward_animation,
    story="viz.story.conv:forward_story",
)

CONV_BACKWARD_ANIMATION = FigureKind(
    command="animate", name="conv-backward",
    summary="Convolution backward: grad_w (stride becomes dilation) and grad_x (transposed convolution); "
            "sizes whose numbers would be under 14 px tall at 1080p are refused.",
    params=CONV_ANIMATION.params,
    formats=_ANIMATION_FORMATS,
    render="viz.app.registry:_render_animation",
    check=_check_conv_backward_animation,
    story="viz.story.conv_backward:backward_story",
)

BPTT_ANIMATION = FigureKind(
    command="animate", name="bptt",
    summary="Gradients flowing backward through time, ||δ[t]|| on a log scale: vanish, survive or explode.",
    params=(
        Param("model", "choice", "gated", "Network: gated RNN or AttentionRNN.", choices=("gated", "attention")),
        Param("k", "k", 2, "AttentionRNN span k, or inf.", min=1, max=24,
              applies=(("model", ("attention",)),)),
        Param("steps", "int", 12, "Time steps T.", min=1, max=24),
        Param("preset", "choice", "vanish", "Make gradients vanish, survive or explode.",
              choices=("vanish", "survive", "explode")),
        Param("n", "int", 3, "Input size n.", min=1, max=8),
        Param("m", "int", 3, "State size m (gated RNN).", min=1, max=8, applies=(("model", ("gated",)),)),
        _BPTT_WEIGHTS, _INPUTS, SEED, QUALITY, STEP_TIME),
    formats=_ANIMATION_FORMATS,
    render="viz.app.registry:_render_animation",
    check=_check_recurrent,
    story="viz.story.bptt:bptt_story",
)

_TRAINING_PARAMS = (
    Param("model", "choice", "vanilla", "Network trained on the temporal-order task.",
          choices=("vanilla", "gated")),
    Param("clip", "float", train.CLIP, "Gradient-norm clip of the clipped run (shown beside the unclipped one).",
          min=1e-6, max=1e6),
    Param("steps", "int", train.STEPS, "Training steps.", min=1, max=20_000),
    SEED,
)

TRAINING_ANIMATION = FigureKind(
    command="animate", name="training",
    summary="The training loss drawn phase by phase; every spike the plot labels marked with the gradient norm that caused it, then the clipped run.",
    params=_TRAINING_PARAMS + (QUALITY, STEP_TIME),
    formats=_ANIMATION_FORMATS,
    render="viz.app.registry:_render_animation",
    story="viz.story.training:training_story",
)

TRAINING_PLOT = FigureKind(
    command="plot", name="training",
    summary="Loss and accuracy on the temporal-order task, with and without gradient clipping.",
    params=_TRAINING_PARAMS,
    formats=("svg", "png", "pdf"),
    render="viz.app.registry:_render_plot",
    story="viz.story.training:training_story",   # the same runs, curves and spikes the animation tells
)

_FIGURE_FORMATS = ("svg", "png", "pdf")
# the arrays of the transposed-convolution and pooling kinds (diagram and animation alike)
_TRANSPOSE_ARRAYS = (
    Param("channels", "int", 1, "Input channels C_in (drawn as stacked rows or panels).", min=1, max=4),
    Param("filters", "int", 1, "Output maps F, each the sum of its group's channels' stamps.", min=1, max=4),
    Param("groups", "int", 1, "Groups: channel c feeds only the F/groups maps of its group (must divide "
          "--channels and --filters).", min=1, max=4),
    Param("x", "array", None, "Your input x, shape C_in x *input" + _ARRAY_HELP + "."),
    Param("w", "array", None, "Your kernel w, shape C_in x F/groups x *kernel (PyTorch's conv_transpose layout)"
          + _ARRAY_HELP.replace(" (PyTorch layout, no batch axis;", " (") + "."))
_POOL_ARRAYS = (
    Param("x", "array", None, "Your input x, shape 1 x *input" + _ARRAY_HELP + "."),
    Param("grad_y", "array", None, "Your upstream gradient ∂ℓ/∂y, shape 1 x *output" + _ARRAY_HELP + "."))
_POSITIONS = Param("positions", "list", (), "Window positions drawn (1-based, row-major), or all.", min=1,
                   max=4096)


def _check_figure(values: dict) -> None:
    """The geometry (the reference's message), then the positions against the number of panels."""
    kind = next(k for k in (CONV_FIGURE, TRANSPOSE_FIGURE, POOL_FIGURE) if set(values) == {p.name for p in k.params})
    try:
        _check_given_arrays(values, expected_arrays(kind.key, values))
        story = kind.build_story(values)
    except ParamError:
        raise
    except ValueError as err:
        raise ParamError("input", " ".join(str(err).split())) from None
    first = story.steps[0].part if story.steps else ""
    n = sum(1 for s in story.steps if s.part == first)
    bad = [p for p in values["positions"] if p > n]
    if bad:
        raise ParamError("positions", f"--positions: each must be in 1..{n}, the windows of this figure (got {bad[0]})")


CONV_FIGURE = FigureKind(
    command="diagram", name="conv",
    summary="Static vector figure of a convolution: small multiples of the window positions (taps, padding, output).",
    params=_conv_params(16, (5, 5), 3, 1, channels=False, max_axes=2) + (_POSITIONS, SEED, THEME),
    formats=_FIGURE_FORMATS,
    render="viz.app.registry:_render_conv_figure",
    check=_check_figure,
    story="viz.story.arithmetic:conv_figure_story",
)

TRANSPOSE_FIGURE = FigureKind(
    command="diagram", name="conv-transpose",
    summary="Static figure of a transposed convolution: each input's kernel stamp (scatter) or the flipped kernel "
            "over the zero-spread input (gather).",
    params=_conv_params(16, (3, 3), 3, 2, channels=False, max_axes=2) + (
        Param("output_padding", "shape", 0, "Extra output rows/columns, less than the stride or the dilation.",
              min=0, max=15, broadcast=True),
        Param("form", "choice", "scatter", "scatter: stamps summed; gather: zeros inserted, flipped kernel.",
              choices=("scatter", "gather")),
        *_TRANSPOSE_ARRAYS, _POSITIONS, SEED, THEME),
    formats=_FIGURE_FORMATS,
    render="viz.app.registry:_render_conv_figure",
    check=_check_figure,
    story="viz.story.transposed:transpose_story",
)

POOL_FIGURE = FigureKind(
    command="diagram", name="pool",
    summary="Static figure of max or average pooling (PyTorch's rules: padding, dilation, ceil_mode).",
    params=(
        Param("input", "shape", (4, 4), "Spatial input size per axis, e.g. 7 or 4x4.", min=1, max=16, max_axes=2),
        Param("kernel", "shape", 2, "Pooling window per axis.", min=1, max=16, broadcast=True),
        Param("stride", "shape", None, "Stride per axis [default: the kernel].", min=1, max=16, broadcast=True),
        Param("padding", "shape", 0, "Padding on both sides, at most kernel // 2.", min=0, max=8, broadcast=True),
        Param("dilation", "shape", 1, "Dilation (max pooling only).", min=1, max=8, broadcast=True),
        Param("mode", "choice", "max", "max or avg.", choices=("max", "avg")),
        Param("ceil_mode", "flag", False, "Round the output size up, as PyTorch's ceil_mode."),
        Param("count_include_pad", "flag", True, "avg: padding counts in the divisor (PyTorch's default)."),
        *_POOL_ARRAYS, _POSITIONS, SEED, THEME),
    formats=_FIGURE_FORMATS,
    render="viz.app.registry:_render_conv_figure",
    check=_check_figure,
    story="viz.story.arithmetic:pool_story",
)

MAX_ANIMATED_AXIS = 32   # conv-arithmetic animations: at most this many cells per axis of any grid drawn


def _check_transpose_animation(values: dict) -> None:
    """The geometry (the reference's message), then the drawn size: output and spread input per axis."""
    _check_conv_animation({**values, "transposed": True})
    from viz import conv

    g = conv.conv_transpose_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                                     values["dilation"], values["output_padding"])
    spread = [(n - 1) * s + 1 + 2 * (d * (k - 1)) for n, s, d, k in zip(g.in_shape, g.stride, g.dilation, g.kernel)]
    _check_given_arrays(values, _transpose_arrays(values))
    big = max(max(g.out_shape), max(spread))
    if big > MAX_ANIMATED_AXIS:
        raise ParamError("input", f"--input: the transposed convolution would draw {big} cells on one axis "
                                  f"(at most {MAX_ANIMATED_AXIS}); use a smaller --input, --stride, --kernel or --dilation")
    if values.get("channels", 1) > 1 or values.get("filters", 1) > 1:     # several: legible at 1080p, or refused
        from scenes.rows_plan import transpose_refusal

        why = transpose_refusal(get("animate conv-transpose").build_story(values))   # the Story it renders
        if why:
            raise ParamError("input", f"--input: {_shape(values['input'])} with {values['channels']} channel(s) and "
                                      f"{values['filters']} map(s) is too large to draw legibly: {why}; use a smaller "
                                      f"--input, --channels, --filters, --kernel, --stride or --dilation")


def _check_given_arrays(values: dict, expected: dict) -> None:
    """Each array given has its expected shape: {name: (shape, "for ...")}; one line naming it."""
    import numpy as np

    from viz.arrays import ArrayError, check_shape

    for name, (want, why) in expected.items():
        if values.get(name) is not None:
            try:
                check_shape(np.asarray(values[name], dtype=float), want, name, why)
            except ArrayError as err:
                raise ParamError(name, str(err)) from None


def _check_pool_animation(values: dict) -> None:
    """PyTorch's pooling rules, the arrays given, and no max window reading only padding (the
    reference's message)."""
    from viz import pool

    try:
        pool.pool_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"] if values["mode"] == "max" else 1, values["ceil_mode"])
    except ValueError as err:
        raise ParamError("input", " ".join(str(err).split())) from None
    _check_given_arrays(values, _pool_arrays(values))
    try:
        get("animate pool").build_story(values)           # the Story it renders (kept for it)
    except ParamError:
        raise
    except ValueError as err:
        raise ParamError("input", " ".join(str(err).split())) from None


TRANSPOSE_ANIMATION = FigureKind(
    command="animate", name="conv-transpose",
    summary="Transposed convolution: each input times the kernel stamped onto the output (overlaps add), then "
            "the same output gathered by the flipped kernel over the zero-spread input.",
    params=_conv_params(16, (3,), 3, 2, channels=False, max_axes=2) + (
        Param("output_padding", "shape", 0, "Extra output rows/columns, less than the stride or the dilation.",
              min=0, max=15, broadcast=True),
        Param("values", "choice", "int", "Example data: small integers (checkable by hand) or decimals.",
              choices=("int", "float")),
        *_TRANSPOSE_ARRAYS, SEED, QUALITY, STEP_TIME),
    formats=_ANIMATION_FORMATS,
    render="viz.app.registry:_render_animation",
    check=_check_transpose_animation,
    story="viz.story.transposed:transpose_animation_story",
)

POOL_ANIMATION = FigureKind(
    command="animate", name="pool",
    summary="Max or average pooling (PyTorch's rules), each window's result, then the backward: max routes "
            "each gradient to its window's maximum, average spreads it.",
    params=tuple(p for p in POOL_FIGURE.params if p.name not in ("positions", "theme", "x", "grad_y")) + (
        Param("values", "choice", "int", "Example data: small integers (checkable by hand) or decimals.",
              choices=("int", "float")),
        *_POOL_ARRAYS, QUALITY, STEP_TIME),
    formats=_ANIMATION_FORMATS,
    render="viz.app.registry:_render_animation",
    check=_check_pool_animation,
    story="viz.story.arithmetic:pool_animation_story",
)

KINDS: dict[str, FigureKind] = {k.key: k for k in (
    SHAPE, GATED_DIAGRAM, ATTENTION_DIAGRAM, CONV_ANIMATION, CONV_BACKWARD_ANIMATION, BPTT_ANIMATION,
    TRAINING_ANIMATION, TRAINING_PLOT, CONV_FIGURE, TRANSPOSE_FIGURE, POOL_FIGURE, TRANSPOSE_ANIMATION,
    POOL_ANIMATION)}


COMMAND_ALIASES = {"animation": "animate"}   # spellings a manifest may use for a command


def suffix_format(name: str, formats) -> str | None:
    """The longest format `name` ends with as ".FORMAT" (exact case), or None."""
    return next((f for f in sorted(formats, key=len, reverse=True) if name.endswith("." + f)), None)


def all_known_formats() -> tuple[str, ...]:
    """Every format some kind writes (a suffix naming one of these is a format, not part of a name)."""
    return tuple(sorted({f for k in KINDS.values() for f in k.all_formats}))


def get(key: str) -> FigureKind:
    """The kind named `key` ("diagram gated-rnn", "animate conv", "shape", ...)."""
    words = key.split()
    key = " ".join([COMMAND_ALIASES.get(words[0], words[0])] + words[1:] if words else [])
    if key not in KINDS:
        raise ParamError("kind", f"unknown figure kind {key!r} (allowed: {', '.join(KINDS)})")
    return KINDS[key]


def render(key: str, raw: dict, out, fmt: str | None = None) -> Path:
    """Validate raw parameters and render one figure: the single entry point for Python users."""
    kind = get(key)
    values = kind.validate(raw)
    out = Path(out)
    fmt = fmt or kind.format_for(out) or out.suffix.lstrip(".")
    kind.render_to(values, out, fmt)
    return out


# ---------------------------------------------------------------------------------------------------
# Renderer adapters (lazy imports: graphviz, manim and matplotlib load only here)


def _render_diagram(kind: FigureKind, values: dict, out: Path, fmt: str) -> None:
    from diagrams.figures import render_diagram

    render_diagram(kind.name, values, out, fmt)


def _render_animation(kind: FigureKind, values: dict, out: Path, fmt: str) -> None:
    from scenes.render import render_animation, scene_class
    from scenes.story_scene import StoryScene

    params, options = kind.split(values)
    if issubclass(scene_class(kind.name), StoryScene) and "step_time" in options:
        params["step_time"] = options["step_time"]   # only scenes drawing a Story follow its timeline
    render_animation(kind.name, params, out, fmt, options["quality"])


def _render_conv_figure(kind: FigureKind, values: dict, out: Path, fmt: str) -> None:
    from diagrams.conv_figure import conv_figure

    conv_figure(kind.build_story(values), out, fmt, values["theme"], values["positions"])


def _render_plot(kind: FigureKind, values: dict, out: Path, fmt: str) -> None:
    from diagrams.plots import render_training_plot

    render_training_plot(values, out, fmt)


def _write_captions(kind: FigureKind, values: dict, out: Path) -> None:
    """The WebVTT track of an animation: the Story's steps on the scene's own timeline."""
    from scenes import style
    from scenes.render import scene_class
    from viz.io import write_text_atomic
    from viz.story.vtt import webvtt

    intro = scene_class(kind.name).intro_time
    step_time = values.get("step_time") or style.STEP_TIME
    write_text_atomic(out, webvtt(kind.build_story(values), step_time, intro))
