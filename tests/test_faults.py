"""Fault tests: what viz does under bad input, hostile outputs and extreme numbers.

Each test is built so that the defect it guards against makes it fail: bad values are generated from
the registry for every parameter of every kind (one line on stderr, exit status 2, no file, no
traceback); outputs that must be written through (devices, FIFOs, descriptor links, standard output)
or replaced atomically (symlink targets); read-only and full file systems (a small tmpfs mounted in a
private mount namespace, root only); and the sigmoid down to z = -700 against PyTorch.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.oracles import torch_or_skip
from viz import rnn
from viz.app import cli, registry
from viz.io import EXIT_IO

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SHAPE = ["shape", "--input", "7", "--kernel", "3"]
SHAPE_TEXT = ("conv 1-D: in 7, kernel 3, stride 1, dilation 1, padding (0,0) -> out 5\n"
              "  axis 1: floor((7 + 0 + 0 - 1*(3-1) - 1)/1) + 1 = 5\n")


def viz(*args, **kw):
    """`python -m viz ARGS` in a real process (exit status, stderr and file descriptors as a user has)."""
    return subprocess.run([sys.executable, "-m", "viz", *map(str, args)], capture_output=True, text=True,
                          env=ENV, **kw)


def invoke(args):
    """The same command in this process through click's CliRunner and `cli.main` (fast)."""
    runner = CliRunner()
    return runner.invoke(cli.cli, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(stderr: str, status: int, expected: int, needle: str = "") -> str:
    assert status == expected, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("viz: error: "), stderr
    assert needle in lines[0], stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------------
# The sigmoid (issue 15, item 7)


def test_sigmoid_matches_torch_down_to_minus_700_without_warnings():
    torch = torch_or_skip()
    z = np.concatenate([np.linspace(-700, 700, 2801), [-745.0, -37.5, -24.5, -1e-300, 0.0, 1e-300, 36.9]])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        ours = rnn.sigmoid(z)
        assert rnn.sigmoid(-1000.0) == 0.0 and rnn.sigmoid(1000.0) == 1.0
    theirs = torch.sigmoid(torch.tensor(z, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=4e-16, atol=5e-324)   # relative: tiny values keep digits
    assert rnn.sigmoid(0.0) == 0.5 and rnn.sigmoid(np.zeros(3)).tolist() == [0.5] * 3
    assert rnn.sigmoid(-700.0) == pytest.approx(np.exp(-700.0), rel=1e-15) and rnn.sigmoid(-700.0) > 0
    assert rnn.sigmoid(np.float32(-3.0)).dtype == np.float32   # dtype kept, scalars stay scalars
    assert np.ndim(rnn.sigmoid(2.0)) == 0


@pytest.mark.parametrize("scale", [5.0, 20.0, 100.0])
def test_backward_through_saturated_gates_matches_torch(scale):
    """At large --scale the gates saturate: c and δ become tiny but are not zero (issue 15 item 7)."""
    from tests.test_rnn import torch_reference

    run = rnn.gated_run(7, 6, 1, seed=5541, scale=scale)
    model, trace = run.model, run.trace
    oracle = torch_reference(model.W_c, model.W_h, model.W_x, trace.xs, run.dl_dh)
    np.testing.assert_allclose(trace.h, oracle["h"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(run.grads.delta, oracle["delta"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(run.grads.dW_c, oracle["dW_c"], rtol=1e-9, atol=1e-300)
    if scale == 5.0:   # the numbers of the issue, which the tanh form printed as 0
        assert trace.c[2, 0] == pytest.approx(3.77e-18, rel=1e-2)
        assert run.grads.delta[0, 0] == pytest.approx(6.41e-24, rel=1e-2)
        assert run.grads.delta[1, 0] == pytest.approx(2.32e-22, rel=1e-2)


# ---------------------------------------------------------------------------------------------------
# Bad values for every parameter of every kind, generated from the registry


def bad_values(p: registry.Param) -> list:
    """Command-line spellings `p` must refuse: out of range by one, malformed, lenient look-alikes."""
    lo, hi = p.min, p.max
    common = ["", "x", "a\nb", "٣", "３"]   # empty, junk, a newline, Arabic-Indic and full-width digits
    if p.type in ("int", "k"):
        return common + [str(lo - 1), str(hi + 1), "1.5", f"+{lo}", "1_0", "0x10"] + \
            (["infinity!"] if p.type == "k" else [])
    if p.type == "float":
        return common + [repr(lo / 2 if lo > 0 else lo - 1), repr(hi * 2), "nan", "inf", "1_0", f"+{hi}",
                         "1e400"]
    if p.type == "choice":
        return common + [p.choices[0].upper() if p.choices[0].upper() != p.choices[0] else "?",
                         " " + p.choices[0]]
    if p.type == "shape":
        return common + [str(lo - 1), str(hi + 1), f"{lo}x", f"x{lo}", "x".join([str(lo)] * (p.max_axes + 1)),
                         f"+{lo}", f"{lo}.5"]
    if p.type == "padding":
        return common + [str(hi + 1), "-1", "1:2:3", "sane", f"{hi + 1}:0"]
    if p.type == "list":
        return common + [str(lo - 1), str(hi + 1), f"{lo},", ",", f"{lo},,{lo}", f"+{lo}", "al", f"{lo};{lo}"]
    if p.type == "array":      # viz.arrays says why: no such file, ragged, not numbers, empty, not finite
        return common + ["[[1], [2, 3]]", '["a"]', "[]", "[1, NaN]", "[1, Infinity]", "[[1, 2]", "nope.npy"]
    if p.type == "weights":    # viz.rnn_weights says why: no such file, not .npz/.json, not an object, bad entry
        return common + ["nope.npz", "w.npy", "[1, 2]", "{}", '{"W_c": [[1], [2, 3]]}', '{"W_c": "x.npy"}',
                         '{"W_c": [[NaN]]}', "{W_c: 1}"]
    return common   # a type this file does not know yet (test_every_parameter_type_has_its_bad_values fails)


KNOWN_TYPES = ("int", "k", "float", "choice", "flag", "shape", "padding", "list", "array", "weights")


def test_every_parameter_type_has_its_bad_values():
    used = {p.type for kind in registry.KINDS.values() for p in kind.params}
    assert used <= set(KNOWN_TYPES), f"say in bad_values() which values {sorted(used - set(KNOWN_TYPES))} must refuse"


def _cases():
    for kind in registry.KINDS.values():
        for p in kind.params:
            if p.type == "flag":
                yield pytest.param(kind, p, "maybe", id=f"{kind.key}-{p.name}=maybe")
                continue
            for raw in bad_values(p):
                yield pytest.param(kind, p, raw, id=f"{kind.key}-{p.name}-{raw!r}")


def _required(kind, skip: str) -> list[str]:
    """Valid values for the kind's required parameters other than `skip` (viz shape's input, kernel)."""
    words = []
    for p in kind.params:
        if p.required and p.name != skip:
            words += [p.flag, {"input": "7", "kernel": "3"}[p.name]]
    return words


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory):
    """One folder for the ~1000 cases below (a fresh tmp_path each would cost more than the case)."""
    return tmp_path_factory.mktemp("bad-values")


@pytest.mark.parametrize("kind,param,raw", list(_cases()))
def test_every_bad_value_is_one_line_exit_2_and_no_file(empty_dir, kind, param, raw):
    tmp_path = empty_dir
    target = tmp_path / f"figure.{kind.formats[0]}"
    value = [f"{param.flag}={raw}"] if param.type == "flag" else [param.flag, raw]
    result = invoke([*kind.key.split(), *_required(kind, param.name), *value, "-o", target])
    line = assert_one_line_error(result.stderr, result.exit_code, 2, param.flag)
    if param.type not in ("flag", "array", "weights"):   # click names a flag given a value; arrays say why
        assert f"must be {param.describe_range()}" in line
    assert list(tmp_path.iterdir()) == []
    assert result.stdout == ""


@pytest.mark.parametrize("kind", list(registry.KINDS.values()), ids=lambda k: k.key)
def test_every_manifest_style_bad_value_names_the_parameter(kind):
    """The same parse behind manifests and the explorer: JSON/TOML values of the wrong type or range."""
    base = {p.name: "7" if p.name == "input" else "3" for p in kind.params if p.required}
    for p in kind.params:
        wrong = {"flag": ["maybe", 2, [True]], "choice": [1, None, ["a"]],
                 "float": [True, [1.0], {"x": 1}, float("nan")],
                 "shape": [True, [], [1.5], [[1]], (p.min or 0) - 1], "padding": [True, [[1, 2, 3]], -1],
                 "int": [True, 2.5, [1], None], "k": [True, 0, 2.5], "list": [True, [1.5], [[1]], (p.min or 0) - 1],
                 "array": [True, [[1], [2, 3]], ["a"], [], [float("nan")]],
                 "weights": [True, [[1.0]], {}, {"W_c": [[1], [2, 3]]}, {"W_c": [float("nan")]}, {1: [1.0]}],
                 }.get(p.type, [True])
        for raw in wrong:
            if raw is None and p.default is None:
                continue   # None is this parameter's "not given"
            with pytest.raises(registry.ParamError) as err:
                kind.validate({**base, p.name: raw})
            assert str(err.value).startswith(p.flag + ":") and "\n" not in str(err.value), (p.name, raw)
            assert err.value.param == p.name


def test_bad_values_in_a_real_process_too(tmp_path):
    for args in (["diagram", "gated-rnn", "--steps", "+2"], ["animate", "conv", "--input", "٧"],
                 ["plot", "training", "--clip", "1_0"], ["diagram", "attention-rnn", "--view", "a\nb"]):
        out = viz(*args, "-o", tmp_path / "f.svg")
        line = assert_one_line_error(out.stderr, out.returncode, 2, args[2])
        assert "\\n" in line or "\n" not in args[3]
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------
# Outputs that must be written through, replaced, or refused


def test_outputs_of_every_kind_in_a_real_process(tmp_path):
    """A device, a descriptor link, a symlink and '-' at the command line (viz shape: no renderer)."""
    if os.geteuid() == 0:
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out = viz(*SHAPE, "--format", "txt", "-o", tmp_path / "null")
        assert out.returncode == 0, out.stderr
        assert stat.S_ISCHR((tmp_path / "null").lstat().st_mode)
        os.mknod(tmp_path / "full.txt", 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        out = viz(*SHAPE, "-o", tmp_path / "full.txt")
        assert_one_line_error(out.stderr, out.returncode, EXIT_IO,
                              f"cannot write '{tmp_path / 'full.txt'}': No space left on device")
    (tmp_path / "fd.txt").symlink_to("/proc/self/fd/1")
    out = viz(*SHAPE, "-o", tmp_path / "fd.txt")
    assert (out.returncode, out.stdout) == (0, SHAPE_TEXT) and (tmp_path / "fd.txt").is_symlink()
    (tmp_path / "real.md").write_text("old")
    (tmp_path / "link.md").symlink_to("real.md")
    assert viz(*SHAPE, "-o", tmp_path / "link.md").returncode == 0
    assert (tmp_path / "link.md").is_symlink() and "→" in (tmp_path / "real.md").read_text()
    out = viz(*SHAPE, "--format", "json", "-o", "-")
    assert out.returncode == 0 and '"out_shape": [\n    5\n  ]' in out.stdout
    names = {"null", "full.txt"} if os.geteuid() == 0 else set()
    assert {p.name for p in tmp_path.iterdir()} == names | {"fd.txt", "real.md", "link.md"}


def test_standard_output_full_or_closed():
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "viz", *SHAPE, "-o", "-"], stdout=full, stderr=subprocess.PIPE,
                             text=True, env=ENV)
    assert_one_line_error(out.stderr, out.returncode, EXIT_IO, "cannot write standard output: No space left")
    shut = subprocess.run(f"{sys.executable} -m viz diagram gated-rnn --steps 2 --format dot -o - | head -c 10",
                          shell=True, capture_output=True, text=True, env=ENV)
    assert shut.stdout == "digraph G " or len(shut.stdout) == 10
    assert "Traceback" not in shut.stderr and "Exception ignored" not in shut.stderr


@pytest.mark.parametrize("args,needle", [
    (["--format", "png", "-o", "x.svg"], "--format: png does not match the file name 'x.svg' (a .svg file)"),
    (["-o", "x.SVG"], "cannot tell the format from 'x.SVG' (suffixes are lower case: .svg)"),
    (["-o", "x.story.JSON"], "cannot tell the format from 'x.story.JSON'"),
    (["--format", "svg", "-o", "x.story.json"], "does not match the file name 'x.story.json'"),
    (["-o", ""], "-o: must be a file name, or - for standard output (got '')"),
    (["-o", "-"], "--format: is required with -o -"),
    (["--format", "svg", "-o", "new/"], "-o: new/ names a folder; give a file name in it"),
    (["-o", "a\nb.svg", "--steps", "0"], "--steps: must be"),
])
def test_output_names_that_are_refused(tmp_path, args, needle):
    os.chdir(tmp_path)
    result = invoke(["diagram", "gated-rnn", *args])
    assert_one_line_error(result.stderr, result.exit_code, 2, needle)
    assert list(tmp_path.iterdir()) == []


def test_shape_output_names_are_checked_like_every_command(tmp_path):
    os.chdir(tmp_path)
    for args, needle in ((["-o", ""], "-o: must be a file name"), (["--json", "-o", "x.md"], "does not match"),
                         (["--json", "--format", "md"], "--json: conflicts with --format md"),
                         (["-o", "X.TXT"], "suffixes are lower case: .txt")):
        result = invoke([*SHAPE, *args])
        assert_one_line_error(result.stderr, result.exit_code, 2, needle)
    assert list(tmp_path.iterdir()) == []


def test_binary_formats_are_not_written_to_a_terminal():
    pty = pytest.importorskip("pty")
    code = ("import sys; from viz.app.cli import main; "
            "sys.argv = ['viz', 'diagram', 'gated-rnn', '--format', 'png', '-o', '-']; main()")
    primary, secondary = pty.openpty()
    try:
        out = subprocess.run([sys.executable, "-c", code], stdout=secondary, stderr=subprocess.PIPE, text=True,
                             env=ENV, timeout=120)
    finally:
        os.close(secondary)
        os.close(primary)
    assert_one_line_error(out.stderr, out.returncode, 2, "-o -: png is binary and standard output is a terminal")


# ---------------------------------------------------------------------------------------------------
# Read-only and full file systems (a private tmpfs; root only)


def _in_private_tmpfs(script: str, mount_options: str) -> subprocess.CompletedProcess:
    """Run a shell script with /mnt/viz a fresh tmpfs (`mount_options`) in a private mount namespace."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to mount a private tmpfs")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m refused here: {probe.stderr.decode().strip()}")
    mnt = "/tmp/viz-fault-mnt"
    os.makedirs(mnt, exist_ok=True)
    setup = f"mount --make-rprivate / 2>/dev/null; mount -t tmpfs -o {mount_options} viz-test {mnt} && cd {mnt} && "
    return subprocess.run(["unshare", "-m", "sh", "-c", setup + script.replace("MNT", mnt)],
                          capture_output=True, text=True, env={**ENV, "VIZ": f"{sys.executable} -m viz"})


def test_a_full_file_system_is_one_line_exit_74_and_leaves_nothing():
    out = _in_private_tmpfs(
        "mkdir out && head -c 1000000 /dev/zero > filler 2>/dev/null; "
        "$VIZ shape --input 7 --kernel 3 -o out/s.txt; echo status=$?; "
        "$VIZ diagram gated-rnn --steps 2 -o out/g.dot; echo status=$?; ls -A out", "size=64k")
    lines = out.stdout.split()
    assert lines[:2] == ["status=74", "status=74"], out
    assert lines[2:] == [], f"left behind: {lines[2:]}"
    errors = out.stderr.strip().splitlines()
    assert errors == ["viz: error: cannot write 'out/s.txt': No space left on device",
                      "viz: error: cannot write 'out/g.dot': No space left on device"], out.stderr


def test_a_read_only_file_system_is_one_line_exit_74():
    out = _in_private_tmpfs("$VIZ shape --input 7 --kernel 3 -o MNT/s.txt; echo status=$?; "
                            "$VIZ shape --input 7 --kernel 3 -o MNT/new/s.md; echo status=$?; ls -A MNT",
                            "ro,size=64k")
    assert out.stdout.split() == ["status=74", "status=74"], out
    assert out.stderr.strip().splitlines() == [
        "viz: error: cannot write '/tmp/viz-fault-mnt/s.txt': Read-only file system",
        "viz: error: cannot write '/tmp/viz-fault-mnt/new/s.md': Read-only file system"], out.stderr


def test_a_cache_folder_that_is_a_file_is_one_line_exit_74(tmp_path):
    (tmp_path / "cache").write_text("")   # XDG_CACHE_HOME is a file: viz/manim/work cannot be made under it
    out = subprocess.run([sys.executable, "-m", "viz", "animate", "conv", "--format", "png", "-o", tmp_path / "a.png"],
                         capture_output=True, text=True, env={**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert_one_line_error(out.stderr, out.returncode, EXIT_IO, f"'{tmp_path / 'cache'}/viz/manim/work': cannot use it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_a_bad_output_fails_before_the_render_starts(tmp_path):
    (tmp_path / "afile").write_text("")
    code = ("import sys; from viz.app.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as done:\n"
            "    print(done.code, 'manim' in sys.modules, 'matplotlib' in sys.modules)")
    for args in (["animate", "conv", "-o", tmp_path / "afile" / "x.mp4"],
                 ["plot", "training", "-o", tmp_path / "afile" / "x.svg"],
                 ["animate", "bptt", "-o", tmp_path / ("n" * 300 + ".gif")]):
        out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=ENV)
        assert out.stdout.split() == ["74", "False", "False"], out   # no renderer was even imported
        assert_one_line_error(out.stderr, 74, 74, "cannot write '")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]
