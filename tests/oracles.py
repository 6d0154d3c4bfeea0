"""Independent oracles the reference is checked against: central finite differences and PyTorch.

Every gradient test in this suite compares the reference with at least one of these.
"""
from __future__ import annotations

import numpy as np
import pytest


def central_diff(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar function f at x by central differences, same shape as x.

    (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every element i; x is restored afterwards.
    """
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f(x)
        flat[i] = old - eps
        lo = f(x)
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return grad


def central_jacobian(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Jacobian d f(x) / d x by central differences: shape f(x).shape + x.shape."""
    x = np.asarray(x, dtype=np.float64)
    y0 = np.asarray(f(x))
    jac = np.zeros(y0.shape + x.shape)
    flat = x.reshape(-1)
    jflat = jac.reshape(y0.size, flat.size)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = np.asarray(f(x)).reshape(-1)
        flat[i] = old - eps
        lo = np.asarray(f(x)).reshape(-1)
        flat[i] = old
        jflat[:, i] = (hi - lo) / (2 * eps)
    return jac


def torch_or_skip():
    """The torch module in float64 mode, or skip the test when PyTorch is not installed."""
    torch = pytest.importorskip("torch")
    return torch


def assert_close(actual, expected, rtol=1e-7, atol=1e-9, what=""):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def torch_rnn_last_state(torch, model: str, params: dict, xs, hidden: int, dtype):
    """h[T] of viz.train's recurrences written with torch ops (the training oracle; the benchmark
    times it too): vanilla h[t] = tanh(W_x x[t] + W_h h[t-1] + b), gated
    c[t] = σ(W_c x[t] + W_h h[t-1]), h[t] = c[t] ⊙ h[t-1] + (1 - c[t]) ⊙ W_x x[t]; h[0] = 0."""
    h = torch.zeros(xs.shape[1], hidden, dtype=dtype)
    for x in xs:
        if model == "vanilla":
            h = torch.tanh(x @ params["W_x"].T + h @ params["W_h"].T + params["b"])
        else:
            c = torch.sigmoid(x @ params["W_c"].T + h @ params["W_h"].T)
            h = c * h + (1 - c) * (x @ params["W_x"].T)
    return h
