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
SHAPE_TEXT = "conv 1-D: in 7, kernel 3, stride 1, dilation 1, padding (0,0) -> out 5\n"


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
