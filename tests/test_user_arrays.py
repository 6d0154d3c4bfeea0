"""User arrays (--x, --w, --b, --grad-y) flow through the conv Stories unchanged: the forward Story's
written outputs equal torch.nn.functional.conv1d/conv2d on the same arrays, the backward Story's
∂ℓ/∂w, ∂ℓ/∂x, ∂ℓ/∂b equal torch's autograd for the given ∂ℓ/∂y, over random geometries (hypothesis),
1-D and 2-D; every bad array (wrong shape, ragged, non-numeric, NaN/inf, empty, a single number,
unreadable or missing file) is one line naming the flag, exit 2, no file written."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from viz.app.registry import ParamError, get
from viz.story.conv import forward_story
from viz.story.conv_backward import backward_story

torch = pytest.importorskip("torch")
F = torch.nn.functional


@st.composite
def cases(draw):
    nd = draw(st.integers(1, 2))
    i = tuple(draw(st.integers(2, 5)) for _ in range(nd))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = draw(st.integers(0, 1))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c = groups * draw(st.integers(1, 3 if groups == 1 else 2))
    f = groups * draw(st.integers(1, 2))         # F > 1 and groups (depthwise when c = f = groups)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    decimals = draw(st.sampled_from([0, 2]))
    arr = lambda *shape: np.round(rng.uniform(-3, 3, size=shape), decimals)  # noqa: E731
    return dict(input=i, kernel=k, stride=s, padding=p, dilation=d, channels=c, filters=f, groups=groups,
                x=arr(c, *i).tolist(), w=arr(f, c // groups, *k).tolist(), b=arr(f).tolist()), rng, decimals


def _maps(story, name: str, filters: int):
    """A per-filter grid as (F, ...) (one filter: drawn without the filter axis)."""
    a = story.grid(name).array()
    return a if filters > 1 else a[None]


def _validated(kind, raw):
    try:
        return get(kind).validate(raw)
    except (ParamError, ValueError):
        assume(False)          # a geometry the animation refuses (too large to draw, padding too large)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(cases())
def test_forward_story_uses_the_given_arrays(case):
    raw, _, _ = case
    values = _validated("animate conv", raw)
    story = forward_story(values)
    x, w, b = (torch.tensor(np.asarray(raw[n], float)) for n in ("x", "w", "b"))
    conv = F.conv1d if len(raw["input"]) == 1 else F.conv2d
    nf = raw["filters"]
    ref = conv(x[None], w, b, stride=raw["stride"], padding=raw["padding"], dilation=raw["dilation"],
               groups=raw["groups"])[0].numpy()
    written = {tuple(wr.cell): wr.value for s in story.steps for wr in s.writes if wr.target == "y"}
    ref = ref if nf > 1 else ref[0]
    assert set(written) == set(np.ndindex(*ref.shape))
    for cell, v in written.items():
        assert abs(v - ref[cell]) <= 1e-9
    xg = story.grid("x")
    pad = np.asarray(xg.padding, bool).reshape(xg.shape) if xg.padding else np.zeros(xg.shape, bool)
    np.testing.assert_array_equal(xg.array()[~pad], np.asarray(raw["x"]).ravel())
    w_given = np.asarray(raw["w"])
    np.testing.assert_array_equal(story.grid("w").array(), w_given.reshape(-1, *w_given.shape[2:]))
    # each filter's steps light only the channels of its group
    per = raw["channels"] // raw["groups"]
    for s in story.steps:
        if s.part == "forward":
            f = s.data.get("filter", 0)
            lit = {cell[0] for lt in s.lit if lt.target == "x" for cell in lt.cells}
            first = f // (nf // raw["groups"]) * per
            assert lit <= set(range(first, first + per)), (s.id, lit)
    np.testing.assert_array_equal(story.grid("b").array(), np.asarray(raw["b"]))
    assert not story.failed_claims()


@settings(max_examples=30, deadline=None, derandomize=True)
@given(cases())
def test_backward_story_equals_autograd_for_the_given_gradient(case):
    raw, rng, decimals = case
    from viz import conv as V

    try:
        g = V.conv_geometry(raw["input"], raw["kernel"], raw["stride"], raw["padding"], raw["dilation"])
    except ValueError:
        assume(False)
    nf = raw["filters"]
    raw = {**raw, "grad_y": np.round(rng.uniform(-2, 2, size=(nf, *g.out_shape)), decimals).tolist()}
    values = _validated("animate conv-backward", raw)
    story = backward_story(values)
    x, w, b = (torch.tensor(np.asarray(raw[n], float), requires_grad=True) for n in ("x", "w", "b"))
    conv = F.conv1d if len(raw["input"]) == 1 else F.conv2d
    y = conv(x[None], w, b, stride=raw["stride"], padding=raw["padding"], dilation=raw["dilation"],
             groups=raw["groups"])
    y.backward(torch.tensor(np.asarray(raw["grad_y"], float))[None])
    np.testing.assert_allclose(story.grid("grad_w").array(), w.grad.numpy().reshape(-1, *w.shape[2:]), atol=1e-9)
    np.testing.assert_allclose(story.grid("grad_x").array(), x.grad.numpy(), atol=1e-9)
    np.testing.assert_allclose(story.grid("grad_b").array(), b.grad.numpy(), atol=1e-9)
    np.testing.assert_array_equal(_maps(story, "grad_y", nf), np.asarray(raw["grad_y"]))
    # the values the steps write are the ones drawn (every ∂ℓ/∂w and ∂ℓ/∂x cell written once)
    written = {(wr.target, tuple(wr.cell)): wr.value for s in story.steps for wr in s.writes}
    for name in ("grad_w", "grad_x"):
        a = story.grid(name).array()
        assert {c for t, c in written if t == name} == set(np.ndindex(*a.shape))
        for (t, cell), v in written.items():
            if t == name:
                assert abs(v - a[cell]) <= 1e-12


def test_integer_arrays_read_as_integers_decimals_as_decimals():
    base = dict(input=(4,), kernel=(2,), stride=(1,), channels=1)
    ints = forward_story(get("animate conv").validate({**base, "x": "[[1, 2, 3, 4]]", "w": "[[[1, -1]]]"}))
    dec = forward_story(get("animate conv").validate({**base, "x": "[[1, 2, 3, 4.5]]"}))
    assert ints.grid("x").texts == ("1", "2", "3", "4") and "4.5" in dec.grid("x").texts


def _cli(args, tmp_path):
    from viz.app.cli import cli

    out = tmp_path / "fig.story.json"
    r = CliRunner().invoke(cli, [*args, "-o", str(out)], prog_name="viz")
    return r, out


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "good.npy", np.ones((1, 7)))
    (tmp_path / "bad.npy").write_bytes(b"not a numpy file")
    (tmp_path / "bad.csv").write_text("1,2,x\n")
    (tmp_path / "good.csv").write_text("1,2,3,4,5,6,7\n")
    (tmp_path / "ragged.json").write_text(json.dumps([[1, 2], [3]]))
    (tmp_path / "w.txt").write_text("[1]")
    return tmp_path


@pytest.mark.parametrize("flag, value, words", [
    ("--w", "[[[1, 2]]]", "--w: expected shape 1x1x3 for 1 filter, 1 input channel and kernel 3, got 1x1x2"),
    ("--x", "[[1, 2, 3]]", "--x: expected shape 1x7 for 1 input channel and input 7, got 1x3"),
    ("--b", "[1, 2]", "--b: expected shape 1 for 1 filter, got 2"),
    ("--bias", "[1, 2]", "--bias: expected shape 1 for 1 filter, got 2"),     # --bias ARRAY: the array
    ("--bias", "[Infinity]", "--bias: must be finite"),
    ("--grad-y", "[[1, 2]]", "--grad-y: expected shape 1x3 for 1 filter and output 3, got 1x2"),
    ("--x", "[[1, 2], [3]]", "--x: must be a rectangular array of numbers (ragged"),
    ("--x", '[[1, "a", 3]]', "--x: must be a rectangular array of numbers (not all numbers)"),
    ("--x", "[[1, NaN, 3]]", "--x: must be finite"),
    ("--x", "[[1, Infinity, 3]]", "--x: must be finite"),
    ("--x", "[]", "--x: is empty"),
    ("--b", "2", "--b: no such file '2' (give a JSON array"),
    ("--x", "[[1, 2", "--x: not a JSON array"),
    ("--x", "{files}/bad.npy", "--x: cannot read"),
    ("--x", "{files}/bad.csv", "--x: "),
    ("--x", "{files}/ragged.json", "--x: must be a rectangular array of numbers (ragged"),
    ("--x", "{files}/missing.npy", "--x: no such file"),
    ("--w", "{files}/w.txt", "--w: "),
])
def test_bad_arrays_are_one_line_exit_2_no_file(files, flag, value, words):
    r, out = _cli(["animate", "conv", "--input", "7", "--channels", "1", "--kernel", "3", "--stride", "2",
                   flag, value.format(files=files)], files)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and words in lines[0], r.output
    assert "Traceback" not in r.output and not out.exists()


def test_bias_takes_your_array_or_alone_a_seeded_one(tmp_path):
    """--bias ARRAY is --b ARRAY (the issue's spelling); --bias alone the seeded bias; both: one line."""
    base = ["animate", "conv", "--input", "5", "--channels", "1", "--kernel", "3", "--stride", "1"]
    stories = {}
    for name, extra in {"bias-array": ["--bias", "[7]"], "b-array": ["--b", "[7]"], "seeded": ["--bias"],
                        "none": []}.items():
        r, out = _cli(base + extra, tmp_path / name)
        assert r.exit_code == 0, r.output
        stories[name] = json.loads(out.read_text())
    b = lambda s: next((g["values"] for g in s["grids"] if g["name"] == "b"), None)  # noqa: E731
    assert b(stories["bias-array"]) == b(stories["b-array"]) == [7.0]
    assert stories["bias-array"]["steps"] == stories["b-array"]["steps"]
    assert b(stories["seeded"]) is not None and b(stories["seeded"]) != [7.0] and b(stories["none"]) is None
    r, out = _cli(base + ["--bias", "[7]", "--b", "[7]"], tmp_path / "both")
    assert r.exit_code == 2 and "--bias: given an array and --b too" in r.output and not out.exists()
    values = get("animate conv").validate({"input": 5, "channels": 1, "kernel": 3, "bias": [2.5]})   # a manifest
    assert values["bias"] is True and values["b"] == (2.5,)


def test_good_files_are_read(files):
    r, out = _cli(["animate", "conv", "--input", "7", "--channels", "1", "--kernel", "3", "--stride", "2",
                   "--x", str(files / "good.csv")], files)
    assert r.exit_code == 0, r.output
    story = json.loads(out.read_text())
    x = next(g for g in story["grids"] if g["name"] == "x")
    assert x["values"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    r, out = _cli(["animate", "conv-backward", "--input", "7", "--channels", "1", "--kernel", "3", "--stride", "2",
                   "--x", str(files / "good.npy")], files)
    assert r.exit_code == 0, r.output


def test_manifest_arrays_inline_or_relative_to_the_manifest(tmp_path):
    from viz.app.build.manifest import ManifestError, load_manifest

    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.arange(7.0).reshape(1, 7))
    entry = '[[figure]]\nname = "{n}"\nkind = "animate conv"\nformats = ["story.json"]\n' \
            '[figure.params]\ninput = 7\nchannels = 1\n{p}\n'
    good = entry.format(n="mine", p='x = "data/x.npy"\nw = [[[1, 0, -1]]]')
    (tmp_path / "gallery.toml").write_text(good)
    (e,) = load_manifest(tmp_path / "gallery.toml").entries
    assert e.values["x"] == (tuple(float(v) for v in range(7)),) and e.values["w"] == (((1.0, 0.0, -1.0),),)
    (tmp_path / "bad.toml").write_text(entry.format(n="bad", p="w = [[[1, 0]]]"))
    with pytest.raises(ManifestError) as err:
        load_manifest(tmp_path / "bad.toml")
    assert err.value.errors == ["bad.toml:8: figure \"bad\": --w: expected shape 1x1x3 for 1 filter, 1 input "
                                "channel and kernel 3, got 1x1x2"]


# ---- from a PyTorch layer (viz.app.layer reads it by duck typing) ----------------------------------

@pytest.mark.parametrize("make, x_shape", [
    (lambda: torch.nn.Conv1d(3, 1, 3, stride=2, padding=1, dilation=1), (3, 7)),
    (lambda: torch.nn.Conv1d(2, 1, 2, stride=1, padding=0, dilation=2, bias=False), (1, 2, 6)),   # a batch of one
    (lambda: torch.nn.Conv2d(2, 1, (2, 3), stride=(2, 1), padding=(1, 0)), (2, 4, 5)),
    (lambda: torch.nn.Conv1d(2, 3, 2, stride=2), (2, 5)),                                   # F > 1
    (lambda: torch.nn.Conv1d(4, 2, 2, groups=2, bias=False), (4, 5)),                         # groups
    (lambda: torch.nn.Conv1d(3, 3, 2, groups=3), (3, 5)),                                     # depthwise
    (lambda: torch.nn.Conv2d(1, 2, 2), (1, 3, 3)),                                            # 2-D, F > 1
])
def test_figure_from_a_torch_layer_equals_the_layer(make, x_shape):
    import viz

    torch.manual_seed(0)
    layer = make()
    x = torch.randn(*x_shape, dtype=torch.float32)
    fig = viz.figure("animate conv", layer=layer, x=x)
    story = forward_story(fig.values)
    with torch.no_grad():
        ref = layer(x if x.dim() == layer.weight.dim() else x[None])[0].double().numpy()
    ref = ref if layer.out_channels > 1 else ref[0]
    assert fig.values["filters"] == layer.out_channels and fig.values["groups"] == layer.groups
    written = {tuple(wr.cell): wr.value for s in story.steps for wr in s.writes if wr.target == "y"}
    assert set(written) == set(np.ndindex(*ref.shape))
    for cell, v in written.items():
        assert abs(v - ref[cell]) <= 1e-5                      # float32 layer against the float64 story
    assert fig.values["bias"] == (layer.bias is not None)
    back = viz.figure("animate conv-backward", layer=layer, x=x).values
    assert back["w"] == fig.values["w"] and back["stride"] == fig.values["stride"]


@pytest.mark.parametrize("make, words", [
    (lambda: torch.nn.Conv1d(1, 1, 3, padding=1, padding_mode="reflect"), "padding_mode must be 'zeros'"),
    (lambda: torch.nn.Conv3d(1, 1, 3), "Conv1d and Conv2d"),
    (lambda: torch.nn.ConvTranspose1d(1, 1, 3), 'a transposed convolution layer is drawn by "animate conv-transpose"'),
    (lambda: torch.nn.Linear(3, 1), "must be a convolution layer"),
])
def test_layers_that_cannot_be_drawn_are_one_line(make, words):
    import viz

    with pytest.raises(ParamError) as err:
        viz.figure("animate conv", layer=make())
    assert words in str(err.value) and len(str(err.value).splitlines()) == 1


def test_layer_input_must_match_and_geometry_is_not_given_twice():
    import viz

    layer = torch.nn.Conv1d(3, 1, 3)
    with pytest.raises(ParamError, match=r"^--x: expected shape 3x\*input .* got 2x7$"):
        viz.figure("animate conv", layer=layer, x=torch.zeros(2, 7))
    with pytest.raises(ParamError, match="^kernel=: given with layer="):
        viz.figure("animate conv", layer=layer, kernel=3)
    fig = viz.figure("animate conv", layer=layer, input=9)   # no x: the seeded example input, 3 channels
    assert fig.values["channels"] == 3 and fig.values["input"] == (9,) and fig.values["x"] is None


def test_the_command_line_shown_reproduces_a_figure_with_arrays(tmp_path):
    """The `viz ...` line galleries and the explorer show is one shell word per value (arrays quoted,
    whole numbers without ".0") and, run, draws the same Story."""
    import shlex

    from viz.app.cli import cli

    kind = get("animate conv")
    values = kind.validate({"input": 5, "channels": 2, "filters": 2, "kernel": 2, "stride": 2,
                            "x": [[1, 2, 3, 4.5, 5], [0, -1, 2, 1, 3]], "bias": "[2, -1]"})
    out = tmp_path / "my fig.story.json"
    line = kind.command_line(values, "story.json", str(out))
    assert "'[[1,2,3,4.5,5],[0,-1,2,1,3]]'" in line and "--b '[2,-1]'" in line, line
    words = shlex.split(line)
    r = CliRunner().invoke(cli, words[1:], prog_name="viz")
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text()) == forward_story(values).to_dict()


@pytest.mark.parametrize("make, x_shape", [
    (lambda: torch.nn.ConvTranspose1d(2, 2, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False), (2, 4)),
    (lambda: torch.nn.ConvTranspose2d(1, 2, 2, stride=2, bias=False), (1, 2, 2)),
])
def test_figure_from_a_torch_transposed_layer_equals_the_layer(make, x_shape):
    """ConvTranspose layers by duck typing (weight C_in x F/groups x *kernel, output_padding): the
    Story's output equals the layer's; a forward kind refuses them, as a transposed kind refuses Conv."""
    import viz
    from viz.story.transposed import transpose_animation_story

    torch.manual_seed(1)
    layer = make()
    with torch.no_grad():           # small integers: a float layer's many decimals need larger cells
        layer.weight.copy_(torch.randint(-2, 3, layer.weight.shape))
    x = torch.randint(-3, 4, x_shape).float()
    fig = viz.figure("animate conv-transpose", layer=layer, x=x)
    story = transpose_animation_story(fig.values)
    with torch.no_grad():
        ref = layer(x[None])[0].double().numpy()
    y = story.grid("y").array()
    np.testing.assert_allclose(y if layer.out_channels > 1 else y[None], ref, atol=1e-5)
    with pytest.raises(ParamError, match='^layer=: a convolution layer is drawn by "animate conv"'):
        viz.figure("animate conv-transpose", layer=torch.nn.Conv1d(1, 1, 3))
    with pytest.raises(ParamError, match="bias=False"):
        viz.figure("animate conv-transpose", layer=torch.nn.ConvTranspose1d(1, 1, 3))


def test_conv_groups_claim_fails_when_a_filter_reads_outside_its_group():
    """The forward's groups claim counts the steps' lit cells: a step of filter 1 lighting channel 3
    (group 2) makes filter 1's claim fail and leaves the others holding."""
    import dataclasses

    from viz.story.conv import _groups_caption, _Setup
    from viz.story.core import Lit

    values = get("animate conv").validate({"input": 5, "channels": 4, "filters": 4, "groups": 2, "kernel": 2})
    story = forward_story(values)
    caption = next(c for c in story.captions if "groups" in c.text)
    assert len(caption.claims) == 4 and all(c.holds() for c in caption.claims)
    k = next(i for i, s in enumerate(story.steps) if s.data.get("filter") == 0)
    bad = dataclasses.replace(story.steps[k], lit=story.steps[k].lit + (Lit("x", "window", ((2, 0),)),))
    claims = _groups_caption(_Setup(values), story.steps[:k] + (bad,) + story.steps[k + 1:]).claims
    assert [c.holds() for c in claims] == [False, True, True, True]
