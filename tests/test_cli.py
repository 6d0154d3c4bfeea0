"""The registry and the command line generated from it: parsing, one-line errors, exit codes."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from viz.app import registry as figures

ROOT = Path(__file__).resolve().parents[1]
VIZ = [sys.executable, "-m", "viz"]


def run_viz(*args, cwd=None):
    return subprocess.run(VIZ + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_import_viz_stays_light():
    code = ("import sys, viz, viz.app.registry, viz.app.cli, viz.conv, viz.rnn, viz.attention; "
            "heavy = [m for m in ('manim', 'graphviz', 'matplotlib', 'torch', 'cairo') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_version():
    out = run_viz("--version")
    assert out.returncode == 0
    assert "viz, version" in out.stdout


@pytest.mark.parametrize("param,raw,expected", [
    ("input", "21x12", (21, 12)),
    ("input", "7", (7,)),
    ("input", [4, 5], (4, 5)),
    ("input", 9, (9,)),
    ("padding", "same", "same"),
    ("padding", "2", 2),
    ("padding", "1x2", (1, 2)),
    ("padding", "1:2x0:1", ((1, 2), (0, 1))),
    ("padding", [[1, 2], [0, 1]], ((1, 2), (0, 1))),
    ("transposed", "true", True),
])
def test_param_parse(param, raw, expected):
    p = figures.get("shape").param(param)
    assert p.parse(raw) == expected
    # parse is idempotent (front ends may parse twice) and format is its inverse
    assert p.parse(p.parse(raw)) == expected
    assert p.parse(p.format(expected)) == expected


def test_k_accepts_inf():
    p = figures.get("diagram attention-rnn").param("k")
    assert p.parse("inf") is None
    assert p.parse("3") == 3
    assert p.format(None) == "inf"
    with pytest.raises(figures.ParamError, match=r"--k: must be an integer in 1\.\.64 or inf \(got 0\)"):
        p.parse("0")


@pytest.mark.parametrize("raw", ["0", "-1", "x", "1.5", "", "65", True])
def test_int_out_of_range_names_param_and_range(raw):
    p = figures.get("diagram gated-rnn").param("steps")
    with pytest.raises(figures.ParamError) as err:
        p.parse(raw)
    assert str(err.value).startswith("--steps: must be an integer in 1..64 (got ")
    assert "\n" not in str(err.value)


@given(st.sampled_from(list(figures.KINDS.values())))
def test_defaults_are_valid_values(kind):
    raw = {p.name: p.default for p in kind.params if p.default is not None}
    if kind.key == "shape":
        raw.update(input=(8, 8), kernel=(3, 3))
    values = kind.validate(raw)
    for p in kind.params:
        assert p.parse(p.format(values[p.name])) == values[p.name] if values[p.name] is not None else True


def test_validate_rejects_unknown_parameter():
    with pytest.raises(figures.ParamError, match="unknown parameter 'strid'"):
        figures.get("shape").validate({"input": "7", "kernel": "3", "strid": 2})


def test_validate_requires_input():
    with pytest.raises(figures.ParamError, match="--input: is required"):
        figures.get("shape").validate({"kernel": "3"})


def test_command_line_round_trip():
    kind = figures.get("diagram attention-rnn")
    values = kind.validate({"k": "inf", "steps": 6})
    line = kind.command_line(values, "svg", "a.svg")
    assert line == "viz diagram attention-rnn --k inf --format svg -o a.svg"


@pytest.mark.parametrize("args,needle", [
    (["diagram", "gated-rnn", "--steps", "0"], "--steps: must be an integer in 1..64 (got 0)"),
    (["diagram", "attention-rnn", "--k", "0"], "--k: must be an integer in 1..64 or inf (got 0)"),
    (["diagram", "gated-rnn", "--n", "0"], "--n: must be an integer in 1..8 (got 0)"),
    (["diagram", "gated-rnn", "--view", "sideways"], "--view: must be one of cell, unrolled, backward"),
    (["animate", "conv", "--stride", "0"], "--stride: must be sizes like"),
    (["shape", "--input", "3", "--kernel", "4", "--stride", "2"], "axis"),
    (["shape", "--kernel", "4"], "--input: is required"),
    (["diagram", "gated-rnn"], "Missing option '-o'"),
])
def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path, args, needle):
    out_file = tmp_path / "figure.svg"
    extra = ["-o", out_file] if "Missing option" not in needle and args[0] != "shape" else []
    out = run_viz(*args, *extra, cwd=tmp_path)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("viz: error: ")
    assert needle in lines[0]
    assert not out_file.exists()
    assert list(tmp_path.iterdir()) == []


def test_unknown_output_suffix_asks_for_format(tmp_path):
    out = run_viz("diagram", "gated-rnn", "-o", tmp_path / "figure.xyz")
    assert out.returncode == 2
    assert "--format: cannot tell the format" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_shape_homework_examples():
    out = run_viz("shape", "--input", "21x12", "--kernel", "4x5", "--stride", "4")
    assert out.returncode == 0, out.stderr
    assert "-> out 5x2" in out.stdout
    assert "floor((21 + 0 + 0 - 1*(4-1) - 1)/4) + 1 = 5" in out.stdout
    assert "floor((12 + 0 + 0 - 1*(5-1) - 1)/4) + 1 = 2" in out.stdout
    assert "never read (1-based): 10, 11, 12" in out.stdout

    out = run_viz("shape", "--input", "7", "--kernel", "3", "--stride", "2", "--in-channels", "5", "--filters", "1")
    assert out.returncode == 0, out.stderr
    assert "floor((7 + 0 + 0 - 1*(3-1) - 1)/2) + 1 = 3" in out.stdout
    assert "weight 1x5x3" in out.stdout

    out = run_viz("shape", "--input", "3x3", "--kernel", "3", "--stride", "2", "--transposed",
                  "--output-padding", "1")
    assert "-> out 8x8" in out.stdout


def test_shape_json_and_file(tmp_path):
    import json

    out = run_viz("shape", "--input", "10x10", "--kernel", "3", "--dilation", "2", "--stride", "3",
                  "--padding", "1", "--json")
    data = json.loads(out.stdout)
    assert data["out_shape"] == [3, 3]
    assert data["unread"] == [[0, 8], [0, 8]]
    target = tmp_path / "s.md"
    out = run_viz("shape", "--input", "6x6", "--kernel", "4", "--padding", "same", "-o", target)
    assert out.returncode == 0, out.stderr
    assert "6×6 → 6×6" in target.read_text()


def test_explode_preset_needs_two_units():
    for key in ("diagram gated-rnn", "animate bptt"):
        with pytest.raises(figures.ParamError, match=r"--m: the explode preset needs m >= 2 \(got 1\)"):
            figures.get(key).validate({"preset": "explode", "m": 1})
        figures.get(key).validate({"preset": "explode", "m": 2})


def test_k_inf_reaches_the_figure(tmp_path):
    # --k inf parses to None; the command must not mistake it for "not given" (default k = 2).
    out = run_viz("diagram", "attention-rnn", "--k", "inf", "--steps", "3", "-o", tmp_path / "a.dot")
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "a.dot").read_text()
    assert "AttentionRNN(∞)" in text
    assert "AttentionRNN(2)" not in text


def test_preset_and_scale_reach_the_reference(tmp_path):
    # The explode preset of AttentionRNN gives ||δ[t]|| = 2^(T-t) exactly (viz.attention docstring).
    out = run_viz("diagram", "attention-rnn", "--view", "backward", "--preset", "explode", "--steps", "6",
                  "-o", tmp_path / "a.dot")
    assert out.returncode == 0, out.stderr
    assert "‖δ‖ = 32" in (tmp_path / "a.dot").read_text()
    texts = []
    for scale in ("1", "0.05"):
        target = tmp_path / f"g{scale}.dot"
        assert run_viz("diagram", "gated-rnn", "--view", "backward", "--scale", scale, "-o", target).returncode == 0
        texts.append(target.read_text())
    assert texts[0] != texts[1]


def test_animation_geometry_errors_match_viz_shape(tmp_path):
    # The same reference message as `viz shape`, before any renderer (Manim) is loaded.
    shape = run_viz("shape", "--input", "3", "--kernel", "4", "--stride", "2")
    anim = run_viz("animate", "conv", "--input", "3", "--channels", "1", "--kernel", "4", "--stride", "2",
                   "-o", tmp_path / "a.mp4")
    assert shape.returncode == anim.returncode == 2
    assert shape.stderr == anim.stderr
    assert "kernel too large on axis 1" in anim.stderr
    assert list(tmp_path.iterdir()) == []
    code = ("import sys; from viz.app import registry as figures\n"
            "try:\n    figures.render('animate conv', {'input': 3, 'kernel': 4}, 'x.mp4')\n"
            "except ValueError: pass\n"
            "print('manim' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "False", out.stderr


def test_params_that_do_not_apply_stay_out_of_commands():
    kind = figures.get("animate bptt")
    gated = kind.validate({"model": "gated", "k": "3", "m": 4})
    assert not kind.param("k").applies_to(gated) and kind.param("m").applies_to(gated)
    assert kind.command_line(gated) == "viz animate bptt --m 4"
    attention = kind.validate({"model": "attention", "k": "inf", "m": 4})
    assert kind.command_line(attention) == "viz animate bptt --model attention --k inf"
    assert kind.param("k").to_json()["applies"] == {"model": ["attention"]}


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signals_stop_cleanly_with_128_plus_signal(tmp_path, signum, status):
    """Stopped while blocked writing into a FIFO nobody reads: the temporary output goes, the FIFO stays."""
    fifo, tmpdir = tmp_path / "out.txt", tmp_path / "tmp"
    os.mkfifo(fifo)
    tmpdir.mkdir()
    proc = subprocess.Popen(VIZ + ["shape", "--input", "7", "--kernel", "3", "-o", str(fifo)],
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmpdir)})
    deadline = time.monotonic() + 30
    try:
        # the rendered report waits in viz-out-*; (tempfile's own probe of TMPDIR comes and goes before it)
        while not list(tmpdir.glob("viz-out-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p.name[:8] for p in tmpdir.iterdir()] == ["viz-out-"]
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:   # never leave it blocked on the FIFO
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1   # (click ends a ^C line first)
    assert list(tmpdir.iterdir()) == [] and stat.S_ISFIFO(fifo.lstat().st_mode)


def test_missing_folders_of_the_output_are_created(tmp_path):
    # the documented choice (viz ... --help: "Missing folders are created")
    out = run_viz("shape", "--input", "6", "--kernel", "4", "-o", tmp_path / "new" / "deeper" / "s.md")
    assert out.returncode == 0, out.stderr
    assert "6 → 3" in (tmp_path / "new" / "deeper" / "s.md").read_text()
    assert out.stderr.startswith(f"wrote {tmp_path / 'new' / 'deeper' / 's.md'} (")
