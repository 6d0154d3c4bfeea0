"""Parameter types as classes (viz/app/params.py), render options, strict parses, completion, help."""
from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from tests.oracles import torch_or_skip
from viz import conv
from viz.app import cli, params, registry

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ALL_PARAMS = [(k, p) for k in registry.KINDS.values() for p in k.params]


def run(args):
    return CliRunner().invoke(cli.cli, [str(a) for a in args], catch_exceptions=False)


# ---------------------------------------------------------------------------------------------------
# The classes


def test_param_builds_the_class_its_type_names():
    p = registry.Param("steps", "int", 4, "Steps.", min=1, max=64)
    assert type(p) is params.IntParam and isinstance(p, registry.Param)
    assert {t: c.__name__ for t, c in params.Param.TYPES.items()}.items() >= {
        "int": "IntParam", "float": "FloatParam", "choice": "ChoiceParam", "flag": "FlagParam",
        "shape": "ShapeParam", "padding": "PaddingParam", "k": "SpanParam"}.items()
    assert type(dataclasses.replace(p, max=8)) is params.IntParam and dataclasses.replace(p, max=8).max == 8
    assert pickle.loads(pickle.dumps(p)) == p   # manifest entries travel to worker processes
    assert p == registry.Param("steps", "int", 4, "Steps.", min=1, max=64) and hash(p) == hash(p)
    with pytest.raises(TypeError, match="unknown type 'integer'"):
        registry.Param("n", "integer", 1, "n")


def test_every_param_of_every_kind_has_a_known_type_and_metavar():
    for kind, p in ALL_PARAMS:
        assert type(p) is params.Param.TYPES[p.type], (kind.key, p.name)
        assert p.metavar and p.describe_range()
        if p.type == "choice":
            assert p.metavar == "[" + "|".join(p.choices) + "]"


def _values(p: params.Param):
    """A hypothesis strategy of valid typed values of `p`."""
    if p.type == "choice":
        return st.sampled_from(p.choices)
    if p.type == "flag":
        return st.booleans()
    if p.type == "float":
        return st.floats(p.min, p.max, allow_nan=False).map(lambda v: float(f"{v:g}"))  # format keeps %g
    if p.type == "array":         # rectangular, finite: 1-D or 2-D
        nums = st.floats(-1e6, 1e6, allow_nan=False).map(float)
        row = st.integers(1, 4).flatmap(lambda n: st.lists(nums, min_size=n, max_size=n).map(tuple))
        grid = st.tuples(st.integers(1, 3), st.integers(1, 3)).flatmap(
            lambda rc: st.lists(st.lists(nums, min_size=rc[1], max_size=rc[1]).map(tuple),
                                min_size=rc[0], max_size=rc[0]).map(tuple))
        return row | grid
    if p.type == "weights":       # named arrays, kept as (name, nested tuples) pairs sorted by name
        nums = st.floats(-1e6, 1e6, allow_nan=False).map(float)
        grid = st.lists(st.lists(nums, min_size=2, max_size=2).map(tuple), min_size=1, max_size=3).map(tuple)
        names = st.sampled_from(["W_c", "W_h", "W_x", "Q_0", "K_1"])
        return st.dictionaries(names, grid, min_size=1, max_size=3).map(lambda d: tuple(sorted(d.items())))
    ints = st.integers(int(p.min), int(min(p.max, 10**6)))
    if p.type == "int":
        return ints
    if p.type == "k":
        return st.none() | ints
    if p.type == "list":
        return st.lists(ints, max_size=5).map(tuple)
    axes = st.lists(ints, min_size=1, max_size=p.max_axes).map(tuple)
    if p.type == "shape":
        return axes.map(lambda t: t[0] if p.broadcast and len(t) == 1 else t)
    if p.type == "padding":
        pairs = st.lists(st.tuples(ints, ints), min_size=1, max_size=p.max_axes).map(tuple)
        return st.sampled_from(["same", "valid"]) | ints | axes.filter(lambda t: len(t) > 1) | pairs
    raise AssertionError(f"a new parameter type {p.type!r}: give it a strategy here")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_format_is_the_inverse_of_parse_for_every_param(data):
    kind, p = data.draw(st.sampled_from(ALL_PARAMS))
    value = data.draw(_values(p))
    assert p.parse(p.format(value)) == value, (kind.key, p.name, value)
    assert p.parse(value) == value   # parsing a typed value gives it back


@pytest.mark.parametrize("type_,raw", [
    ("int", "+2"), ("int", "٣"), ("int", "３"), ("int", "1_0"), ("int", "0x1"), ("int", "2.0"), ("int", "1e1"),
    ("float", "1_0"), ("float", "+2"), ("float", "１"), ("float", "nan"), ("float", "inf"), ("float", "1e400"),
    ("float", "2,5"), ("shape", "+7"), ("shape", "7x٣"), ("shape", "7x"), ("shape", "7*7"),
    ("padding", "+1"), ("padding", "1:"), ("k", "+3"), ("k", "∞∞"),
])
def test_lenient_look_alikes_are_refused(type_, raw):
    p = next(p for _, p in ALL_PARAMS if p.type == type_ and (p.max or 0) >= 10)
    with pytest.raises(params.ParamError, match=f"^{p.flag}: must be "):
        p.parse(raw)


def test_what_is_accepted_and_documented():
    shape = registry.get("shape").param("input")
    assert shape.parse("7×7") == shape.parse("7x7") == shape.parse("7X7") == (7, 7)   # × is the same letter
    assert shape.parse(" 7 ") == (7,) and shape.parse([7, 5]) == (7, 5)
    scale = registry.get("diagram gated-rnn").param("scale")
    assert [scale.parse(v) for v in ("5", "5.", ".5", "1e1", "-0.0e0" if scale.min <= 0 else "0.5")] == \
        [5.0, 5.0, 0.5, 10.0, 0.5]
    assert registry.get("diagram attention-rnn").param("k").parse("∞") is None


def test_values_with_control_characters_stay_on_one_line():
    p = registry.get("diagram gated-rnn").param("view")
    for raw, shown in (("a\nb", r'"a\nb"'), ("", '""'), ("\t", r'"\t"'), ("x\u200by", r'"x\u200by"')):
        with pytest.raises(params.ParamError) as err:
            p.parse(raw)
        assert str(err.value).endswith(f"(got {shown})") and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------------
# Render options apart from figure parameters; no special cases by command name


def test_render_options_are_declared_apart():
    for kind in registry.KINDS.values():
        options = {p.name for p in kind.render_options}
        assert options <= {"quality", "theme", "step_time"}, kind.key
        assert not options & {p.name for p in kind.figure_params}
        assert len(kind.figure_params) + len(kind.render_options) == len(kind.params)
    conv_kind = registry.get("animate conv")
    values = conv_kind.validate({"quality": "high"})
    figure, options = conv_kind.split(values)
    assert options["quality"] == "high" and "quality" not in figure and figure["stride"] == 2
    assert conv_kind.with_options({}, quality="medium", theme="dark") == {"quality": "medium"}
    assert registry.get("diagram gated-rnn").with_options({"n": 2}, quality="high") == {"n": 2}
    assert registry.get("diagram gated-rnn").with_options({}, theme=None) == {}
    described = {p["name"]: p["render_option"] for p in conv_kind.to_json()["params"]}   # for the explorer
    assert described["quality"] and described["step_time"] and not described["stride"]


def test_text_reports_and_aliases_are_properties_not_names():
    assert [k.key for k in registry.KINDS.values() if k.writes_text] == ["shape"]
    shape = registry.get("shape")
    values = shape.validate({"input": "8", "kernel": "3"})
    assert shape.command_line(values, "md", "s.md") == "viz shape --input 8 --kernel 3 -o s.md"
    assert registry.get("animation conv") is registry.get("animate conv")
    assert registry.get("  diagram   gated-rnn ") is registry.get("diagram gated-rnn")


def test_help_lists_figure_parameters_render_options_and_output_apart():
    text = run(["animate", "conv", "--help"]).stdout
    figure, rest = text.split("Render options:")
    options, output = rest.split("Output:")
    assert "--stride" in figure and "--quality" not in figure
    assert "--quality" in options and "--step-time" in options and "--stride" not in options
    assert "-o, --output FILE|-" in output and "Missing folders are created" in output
    assert "Exit status: 0 done" in text and "74 a file could not be written" in text


def test_viz_alone_and_a_group_alone_show_help_exit_0():
    for args in ([], ["diagram"], ["animate"]):
        result = run(args)
        assert result.exit_code == 0 and result.stdout.startswith("Usage: viz") and result.stderr == ""
    out = subprocess.run([sys.executable, "-m", "viz"], capture_output=True, text=True, env=ENV)
    assert out.returncode == 0 and "Commands:" in out.stdout and "_VIZ_COMPLETE=bash_source" in out.stdout


# ---------------------------------------------------------------------------------------------------
# Shell completion


def complete(words: str) -> list[str]:
    """What `viz WORDS<TAB>` offers, through click's completion API (words split like the shell)."""
    args = words.split(" ")
    return [c.value for c in ShellComplete(cli.cli, {}, "viz", "_VIZ_COMPLETE").get_completions(args[:-1], args[-1])]


@pytest.mark.parametrize("words,expected", [
    ("diagram gated-rnn --view ", ["cell", "unrolled", "backward"]),
    ("diagram gated-rnn --view b", ["backward"]),
    ("diagram attention-rnn --preset ", ["none", "vanish", "survive", "explode"]),
    ("diagram attention-rnn --base-case ", ["zeros", "mask"]),
    ("diagram gated-rnn --theme ", ["light", "dark"]),
    ("animate bptt --quality ", ["low", "medium", "high"]),
    ("diagram attention-rnn --k ", ["inf"]),
    ("shape --padding s", ["same"]),
    ("dia", ["diagram"]),
    ("diagram gated-rnn --format p", ["png", "pdf"]),
])
def test_completions(words, expected):
    assert complete(words) == expected


def test_completion_through_the_shell_protocol():
    env = {**ENV, "_VIZ_COMPLETE": "bash_complete", "COMP_WORDS": "viz diagram gated-rnn --annotate ",
           "COMP_CWORD": "4"}
    out = subprocess.run([sys.executable, "-m", "viz"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["plain,none", "plain,shapes", "plain,values"]
    env.update(COMP_WORDS="viz diagram gated-rnn -o ", COMP_CWORD="4")
    out = subprocess.run([sys.executable, "-m", "viz"], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["file,"]   # the shell completes file names
    script = subprocess.run([sys.executable, "-m", "viz"], capture_output=True, text=True,
                            env={**ENV, "_VIZ_COMPLETE": "bash_source"})
    assert "complete -o nosort -F _viz_completion viz" in script.stdout


# ---------------------------------------------------------------------------------------------------
# viz shape: channels, groups and output padding checked before anything runs (issue 15 items 4, 9)


@pytest.mark.parametrize("args,needle", [
    (["--in-channels", "3"], "--filters: is required with --in-channels"),
    (["--filters", "3"], "--in-channels: is required with --filters"),
    (["--in-channels", "4", "--filters", "4", "--groups", "3"],
     "--groups: groups must divide in_channels = 4 (got groups = 3)"),
    (["--in-channels", "6", "--filters", "4", "--groups", "3"], "--groups: groups must divide filters = 4"),
    (["--groups", "2"], "--groups: needs --in-channels and --filters (got --groups 2 alone)"),
    (["--output-padding", "1"], "--output-padding: applies only with --transposed (got 1)"),
    (["--transposed", "--stride", "2", "--output-padding", "2"], "smaller than stride or dilation"),
])
def test_shape_combinations_are_refused_up_front(args, needle):
    result = run(["shape", "--input", "7", "--kernel", "3", *args])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and needle in result.stderr and "Traceback" not in result.stderr
    raw = {a[2:].replace("-", "_"): (True if a == "--transposed" else v) for a, v in zip(args, args[1:] + [""])
           if a.startswith("--")}
    with pytest.raises(ValueError, match=needle.split(": ", 1)[-1][:20]):
        registry.get("shape").validate({"input": "7", "kernel": "3", **raw})   # manifests: same check


def test_output_padding_is_bounded_like_torch():
    torch = torch_or_skip()
    result = run(["shape", "--input", "2", "--kernel", "1", "--stride", "32", "--transposed",
                  "--output-padding", "17"])
    assert result.exit_code == 0, result.stderr
    assert "-> out 50" in result.stdout   # inverts --input 50 --kernel 1 --stride 32
    assert conv.conv_transpose_output_shape(2, 1, 32, 0, 1, 17) == (50,)
    assert registry.get("shape").param("output_padding").max >= registry.get("shape").param("stride").max
    for s in (1, 2, 3):
        for d in (1, 2, 3):
            for a in range(4):
                x, w = torch.zeros(1, 1, 4, dtype=torch.float64), torch.zeros(1, 1, 2, dtype=torch.float64)
                try:
                    want = torch.nn.functional.conv_transpose1d(x, w, stride=s, dilation=d, output_padding=a).shape[-1]
                except RuntimeError:
                    want = None
                values = {"input": "4", "kernel": "2", "stride": str(s), "dilation": str(d), "transposed": True,
                          "output_padding": str(a)}
                try:
                    got = registry.get("shape").validate(values) and conv.conv_transpose_output_shape(4, 2, s, 0, d, a)[0]
                except ValueError:
                    got = None
                assert got == want, (s, d, a)


_JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                                    max_size=3),
                        max_leaves=8)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.data())
def test_any_input_parses_or_fails_with_one_line_naming_the_flag(data):
    """Fuzz: whatever a manifest, the explorer or a shell hands over, the answer is a value or a
    ParamError (never another exception), on one line, naming the flag; a value parses to itself."""
    kind, p = data.draw(st.sampled_from(ALL_PARAMS))
    raw = data.draw(st.text(max_size=12) | _JSONISH)
    try:
        value = p.parse(raw)
    except params.ParamError as err:
        message = str(err)
        assert message.startswith(p.flag + ": ") and len(message.splitlines()) == 1, message
        assert err.param == p.name
    else:
        assert p.parse(value) == value, (kind.key, p.name, raw)
        if value is not None:      # None is "not given" (a parameter without a default), not a spelling
            assert p.parse(p.format(value)) == value, (kind.key, p.name, raw)
