"""viz.rnn (gated RNN, MATH.md section 3) against finite differences and an independent PyTorch version.

The loss used throughout is ℓ = Σ_t p[t]·h[t] for random p, so its direct gradients are exactly p and the
totals δ[t] = dℓ/dh[t] are what a perturbation added to h[t] (before later steps read it) changes ℓ by.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracles import assert_close, central_diff, central_jacobian, torch_or_skip
from viz import rnn
from viz.rnn import (PRESETS, GatedRNN, jacobian, jacobian_bound, jacobian_product, last_step_upstream,
                     preset_inputs, random_inputs)

# --------------------------------------------------------------------------------------------------
# Independent implementations of MATH.md section 3 (written from the equations, not from viz.rnn)
# --------------------------------------------------------------------------------------------------


def naive_states(W_c, W_h, W_x, xs, bump_at=None, bump=None):
    """h[0..T] as a list, with `bump` added to h[bump_at] right after it is computed."""
    h = [np.zeros(xs.shape[1:-1] + (W_h.shape[0],))]
    if bump_at == 0:
        h[0] = h[0] + bump
    for t in range(1, len(xs) + 1):
        x = xs[t - 1]
        z = np.einsum("ij,...j->...i", W_c, x) + np.einsum("ij,...j->...i", W_h, h[t - 1])
        c = 1.0 / (1.0 + np.exp(-z))
        new = c * h[t - 1] + (1.0 - c) * np.einsum("ij,...j->...i", W_x, x)
        if bump_at == t:
            new = new + bump
        h.append(new)
    return h


def naive_loss(W_c, W_h, W_x, xs, p, bump_at=None, bump=None):
    h = naive_states(W_c, W_h, W_x, xs, bump_at, bump)
    return float(sum(np.sum(p[t - 1] * h[t]) for t in range(1, len(xs) + 1)))


def torch_reference(W_c, W_h, W_x, xs, p):
    """PyTorch float64 autograd of the same equations: δ (via retained grads), weights, h[0], xs."""
    torch = torch_or_skip()
    f64 = torch.float64
    Wc, Wh, Wx = (torch.tensor(W, dtype=f64, requires_grad=True) for W in (W_c, W_h, W_x))
    X = torch.tensor(xs, dtype=f64, requires_grad=True)
    h0 = torch.zeros(xs.shape[1:-1] + (W_h.shape[0],), dtype=f64, requires_grad=True)
    hs = [h0]
    for t in range(len(xs)):
        c = torch.sigmoid(X[t] @ Wc.T + hs[-1] @ Wh.T)
        h = c * hs[-1] + (1 - c) * (X[t] @ Wx.T)
        h.retain_grad()
        hs.append(h)
    loss = sum((torch.tensor(p[t], dtype=f64) * hs[t + 1]).sum() for t in range(len(xs)))
    loss.backward()
    return {
        "h": torch.stack(hs).detach().numpy(),
        "delta": torch.stack([h.grad for h in hs[1:]]).numpy(),
        "dW_c": Wc.grad.numpy(), "dW_h": Wh.grad.numpy(), "dW_x": Wx.grad.numpy(),
        "dh0": h0.grad.numpy(), "dxs": X.grad.numpy(),
    }


# --------------------------------------------------------------------------------------------------
# Random configurations
# --------------------------------------------------------------------------------------------------

configs = st.fixed_dictionaries({
    "n": st.integers(1, 5),
    "m": st.integers(1, 5),
    "T": st.integers(1, 8),
    "batch": st.sampled_from([None, 1, 2, 3]),
    "seed": st.integers(0, 10_000),
    "scale": st.sampled_from([0.3, 1.0, 2.0]),
})


def setup(cfg):
    model = GatedRNN(cfg["n"], cfg["m"], seed=cfg["seed"], scale=cfg["scale"])
    xs = random_inputs(cfg["T"], cfg["n"], seed=cfg["seed"] + 1, batch=cfg["batch"])
    p = np.random.default_rng(cfg["seed"] + 2).standard_normal(xs.shape[:-1] + (cfg["m"],))
    return model, xs, p


# --------------------------------------------------------------------------------------------------
# Forward: shapes and values
# --------------------------------------------------------------------------------------------------

@settings(max_examples=150)
@given(configs)
def test_forward_shapes_and_values_match_the_equations(cfg):
    model, xs, _ = setup(cfg)
    T, m = cfg["T"], cfg["m"]
    tr = model.forward(xs)
    state = () if cfg["batch"] is None else (cfg["batch"],)
    assert tr.h.shape == (T + 1,) + state + (m,)
    for name in ("z", "c", "u"):
        assert getattr(tr, name).shape == (T,) + state + (m,), name
    assert (tr.T, tr.n, tr.m, tr.batch) == (T, cfg["n"], m, cfg["batch"])
    assert np.all(tr.h[0] == 0)
    assert_close(tr.h, np.stack(naive_states(model.W_c, model.W_h, model.W_x, xs)), what="h")
    # row t-1 of the per-step arrays is step t: check the definitions of z, c, u one by one
    for t in range(1, T + 1):
        x = xs[t - 1]
        assert_close(tr.u[t - 1], x @ model.W_x.T, what="u")
        assert_close(tr.z[t - 1], x @ model.W_c.T + tr.h[t - 1] @ model.W_h.T, what="z")
        assert_close(tr.c[t - 1], 1 / (1 + np.exp(-tr.z[t - 1])), what="c")
        assert_close(tr.h[t], tr.c[t - 1] * tr.h[t - 1] + (1 - tr.c[t - 1]) * tr.u[t - 1], what="h[t]")


def test_batched_forward_and_backward_equal_per_sequence_runs():
    model = GatedRNN(3, 4, seed=5)
    xs = random_inputs(6, 3, seed=1, batch=3)
    p = np.random.default_rng(2).standard_normal((6, 3, 4))
    tr = model.forward(xs)
    grads = model.backward(tr, p)
    total = {name: 0 for name in ("dW_c", "dW_h", "dW_x")}
    for b in range(3):
        tr_b = model.forward(xs[:, b])
        g_b = model.backward(tr_b, p[:, b])
        assert_close(tr.h[:, b], tr_b.h, what="h")
        assert_close(grads.delta[:, b], g_b.delta, what="delta")
        assert_close(grads.delta_norms[:, b], g_b.delta_norms, what="delta_norms")
        assert_close(grads.dh0[b], g_b.dh0, what="dh0")
        for name in total:
            total[name] = total[name] + getattr(g_b, name)
    for name, value in total.items():
        assert_close(getattr(grads, name), value, what=name)
    assert grads.delta_norms.shape == (6, 3)


# --------------------------------------------------------------------------------------------------
# Backward: every gradient against PyTorch and central finite differences
# --------------------------------------------------------------------------------------------------

@settings(max_examples=200)
@given(configs)
def test_backward_matches_pytorch_autograd(cfg):
    model, xs, p = setup(cfg)
    grads = model.backward(model.forward(xs), p)
    ref = torch_reference(model.W_c, model.W_h, model.W_x, xs, p)
    for name in ("delta", "dW_c", "dW_h", "dW_x", "dh0", "dxs"):
        assert_close(getattr(grads, name), ref[name], rtol=1e-10, atol=1e-12, what=name)
    assert_close(grads.delta_norms, np.linalg.norm(ref["delta"], axis=-1), what="delta_norms")
    assert grads.delta_norms.shape == xs.shape[:-1]


@settings(max_examples=100)
@given(configs)
def test_backward_matches_finite_differences(cfg):
    model, xs, p = setup(cfg)
    grads = model.backward(model.forward(xs), p)
    W = {"W_c": model.W_c.copy(), "W_h": model.W_h.copy(), "W_x": model.W_x.copy()}

    def loss_with(name):
        return lambda value: naive_loss(**{**W, name: value}, xs=xs, p=p)

    for name in W:
        fd = central_diff(loss_with(name), W[name].copy())
        assert_close(getattr(grads, "d" + name), fd, rtol=1e-5, atol=1e-7, what="d" + name)
    fd_x = central_diff(lambda x: naive_loss(**W, xs=x, p=p), xs.copy())
    assert_close(grads.dxs, fd_x, rtol=1e-5, atol=1e-7, what="dxs")
    # totals δ[t] (and dℓ/dh[0]): perturb h[t] where later steps read it
    zero = np.zeros(xs.shape[1:-1] + (cfg["m"],))
    for t in range(0, cfg["T"] + 1):
        fd_t = central_diff(lambda b: naive_loss(**W, xs=xs, p=p, bump_at=t, bump=b), zero.copy())
        got = grads.dh0 if t == 0 else grads.delta[t - 1]
        assert_close(got, fd_t, rtol=1e-5, atol=1e-7, what=f"delta[{t}]")


def test_delta_is_the_sum_of_jacobian_products():
    """δ[t] = Σ_{s>=t} (∂h[s]/∂h[t])^T p[s]: the backward recursion unrolled (MATH.md)."""
    model = GatedRNN(3, 4, seed=11)
    xs = random_inputs(7, 3, seed=12)
    p = np.random.default_rng(13).standard_normal((7, 4))
    tr = model.forward(xs)
    grads = model.backward(tr, p)
    for t in range(1, 8):
        expected = sum(jacobian_product(tr, s, t).T @ p[s - 1] for s in range(t, 8))
        assert_close(grads.delta[t - 1], expected, what=f"delta[{t}]")
    assert_close(grads.dh0, jacobian(tr, 1).T @ grads.delta[0], what="dh0")


# --------------------------------------------------------------------------------------------------
# The wrong variant MATH.md names: partials p[t] in place of totals δ[t] in the weight gradients
# --------------------------------------------------------------------------------------------------

def weight_grads_from(tr, g):
    """The MATH.md weight-gradient sums with per-step vectors g (δ is right, p is the mistake)."""
    gate = g * (tr.h[:-1] - tr.u) * tr.c * (1 - tr.c)
    return {"dW_x": np.einsum("ti,tj->ij", (1 - tr.c) * g, tr.xs),
            "dW_c": np.einsum("ti,tj->ij", gate, tr.xs),
            "dW_h": np.einsum("ti,tj->ij", gate, tr.h[:-1])}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_partials_in_place_of_totals_is_detected(seed):
    model = GatedRNN(3, 3, seed=seed)
    xs = random_inputs(6, 3, seed=seed + 100)
    p = np.random.default_rng(seed + 200).standard_normal((6, 3))
    tr = model.forward(xs)
    grads = model.backward(tr, p)
    right = weight_grads_from(tr, grads.delta)
    wrong = weight_grads_from(tr, p)
    W = {"W_c": model.W_c, "W_h": model.W_h, "W_x": model.W_x}
    for name in W:
        fd = central_diff(lambda v: naive_loss(**{**W, name: v}, xs=xs, p=p), W[name].copy())
        scale = np.linalg.norm(fd)
        assert np.linalg.norm(getattr(grads, "d" + name) - fd) < 1e-6 * scale
        assert np.linalg.norm(right["d" + name] - fd) < 1e-6 * scale
        assert np.linalg.norm(wrong["d" + name] - fd) > 0.1 * scale, name


# --------------------------------------------------------------------------------------------------
# Jacobians
# --------------------------------------------------------------------------------------------------

unbatched = configs.map(lambda c: {**c, "batch": None})


def one_step(model, x):
    return lambda h_prev: naive_states(model.W_c, model.W_h, model.W_x, x[None], 0,
                                       h_prev)[1]


@settings(max_examples=120)
@given(unbatched)
def test_jacobian_closed_form_matches_finite_differences_and_pytorch(cfg):
    torch = torch_or_skip()
    model, xs, _ = setup(cfg)
    tr = model.forward(xs)
    Wc, Wh, Wx = (torch.tensor(W) for W in (model.W_c, model.W_h, model.W_x))
    for t in range(1, cfg["T"] + 1):
        J = jacobian(tr, t)
        assert J.shape == (cfg["m"], cfg["m"])
        fd = central_jacobian(one_step(model, xs[t - 1]), tr.h[t - 1].copy())
        assert_close(J, fd, rtol=1e-6, atol=1e-8, what=f"J[{t}] vs FD")
        x = torch.tensor(xs[t - 1])

        def step(h):
            c = torch.sigmoid(Wc @ x + Wh @ h)
            return c * h + (1 - c) * (Wx @ x)
        auto = torch.autograd.functional.jacobian(step, torch.tensor(tr.h[t - 1])).numpy()
        assert_close(J, auto, rtol=1e-10, atol=1e-12, what=f"J[{t}] vs torch")
        assert model.jacobian(tr, t) is not None


@settings(max_examples=100)
@given(unbatched, st.data())
def test_jacobian_product_matches_finite_differences(cfg, data):
    model, xs, _ = setup(cfg)
    tr = model.forward(xs)
    T, m = cfg["T"], cfg["m"]
    t = data.draw(st.integers(0, T))
    s = data.draw(st.integers(t, T))
    P = jacobian_product(tr, s, t)
    W = (model.W_c, model.W_h, model.W_x)
    fd = central_jacobian(lambda b: naive_states(*W, xs, t, b)[s], np.zeros(m))
    assert_close(P, fd, rtol=1e-6, atol=1e-8, what=f"dh[{s}]/dh[{t}]")
    if s == t:
        assert np.array_equal(P, np.eye(m))
    else:
        assert_close(P, jacobian(tr, s) @ jacobian_product(tr, s - 1, t), what="chain rule")


@settings(max_examples=200)
@given(unbatched)
def test_jacobian_norm_bound_holds(cfg):
    model, xs, _ = setup(cfg)
    tr = model.forward(xs)
    for t in range(1, cfg["T"] + 1):
        norm = np.linalg.norm(jacobian(tr, t), 2)
        bound = jacobian_bound(tr, t)
        assert norm <= bound * (1 + 1e-12) + 1e-15
        # the bound is built from the right pieces: max c plus the W_h term (checked separately)
        assert bound >= np.max(tr.c[t - 1])


def test_jacobian_bound_is_not_vacuous():
    """A bound that is just 'large' would pass the test above: check it against its formula."""
    model = GatedRNN(2, 2, seed=3)
    tr = model.forward(random_inputs(3, 2, seed=4))
    c, gap = tr.c[1], np.abs(tr.h[1] - tr.u[1]).max()
    expected = c.max() + 0.25 * gap * np.linalg.norm(model.W_h, 2)
    assert jacobian_bound(tr, 2) == pytest.approx(expected, rel=1e-14)


def test_jacobians_reject_batched_traces_and_bad_steps():
    model = GatedRNN(2, 2)
    tr = model.forward(random_inputs(3, 2))
    with pytest.raises(ValueError, match="^t must be in 1..3"):
        jacobian(tr, 4)
    with pytest.raises(ValueError, match="^t must be in 1..3 \\(got 0\\)"):
        jacobian(tr, 0)
    with pytest.raises(ValueError, match="^s must be in 2..3"):
        jacobian_product(tr, 1, 2)
    with pytest.raises(ValueError, match="^trace must be unbatched"):
        jacobian(model.forward(random_inputs(3, 2, batch=2)), 1)


# --------------------------------------------------------------------------------------------------
# Presets: gradients vanish, survive, explode
# --------------------------------------------------------------------------------------------------

def preset_run(name, n, m, seed, T):
    model = GatedRNN.preset(name, n=n, m=m, seed=seed)
    tr = model.forward(preset_inputs(name, T, n, seed))
    grads = model.backward(tr, last_step_upstream(T, m, seed))
    return model, tr, grads, np.linalg.norm(jacobian_product(tr, T, 0), 2)


sizes = [(1, 2), (3, 3), (2, 5), (5, 4), (4, 8)]


@pytest.mark.parametrize("n,m", sizes + [(1, 1), (3, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_vanish_preset_makes_gradients_vanish(n, m, seed):
    for T in (20, 30):
        _, tr, grads, norm = preset_run("vanish", n, m, seed, T)
        assert norm < 1e-4 * 0.6 ** (T - 20)        # about 2^-T: 1e-6 at T = 20
        ratio = grads.delta_norms[0] / grads.delta_norms[-1]
        assert ratio < 1e-4
        assert np.all(np.diff(np.log(grads.delta_norms)) > 0)   # shrinks at every step back


@pytest.mark.parametrize("n,m", sizes + [(1, 1), (3, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_survive_preset_keeps_gradients_order_one(n, m, seed):
    for T in (20, 30):
        _, tr, grads, norm = preset_run("survive", n, m, seed, T)
        assert tr.c.min() > 0.99                     # a leaky integrator
        assert 0.5 < norm < 2.0
        assert_close(jacobian_product(tr, T, 0), np.eye(m), atol=0.1, rtol=0, what="J ≈ I")
        assert 0.5 < grads.delta_norms[0] / grads.delta_norms[-1] < 2.0


@pytest.mark.parametrize("n,m", sizes)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_explode_preset_makes_gradients_explode(n, m, seed):
    for T in (20, 30):
        _, tr, grads, norm = preset_run("explode", n, m, seed, T)
        assert norm > 10 ** (6 + 0.4 * (T - 20))     # 1e6 at T = 20, 1e10 at T = 30
        assert grads.delta_norms[0] / grads.delta_norms[-1] > 1e5
        assert np.all(tr.c == 0.5)                   # c = 1/2 exactly: the states never split
        assert np.all(tr.h == tr.h[:, :1])
        for t in range(1, T + 1):                    # the bound allows it: ||W_h|| ~ 10, gap ~ 1
            assert np.linalg.norm(jacobian(tr, t), 2) <= jacobian_bound(tr, t) * (1 + 1e-12)


def test_explode_preset_matches_math_md_numbers():
    """Inputs of magnitude exactly 1 and W_x rows summing to 1: |J| alternates 2.83 / 3.83."""
    model = GatedRNN.preset("explode", n=1, m=2)
    model.W_x = np.ones((2, 1))
    xs = (-1.0) ** np.arange(1, 41)[:, None]
    tr = model.forward(xs)
    norms = [np.linalg.norm(jacobian(tr, t), 2) for t in range(31, 41)]
    assert_close(sorted(set(np.round(norms, 2))), [2.83, 3.83], what="|J|")
    total = np.linalg.norm(jacobian_product(tr, 30, 0), 2)
    assert 1e14 < total < 1e17                       # MATH.md: T = 30 gives ~1e15


def test_presets_in_batches_behave_like_single_sequences():
    for name in PRESETS:
        model = GatedRNN.preset(name, 3, 4, seed=1)
        xs = preset_inputs(name, 25, 3, seed=1, batch=2)
        tr = model.forward(xs)
        for b in range(2):
            assert_close(tr.h[:, b], model.forward(xs[:, b]).h, what=name)


def test_presets_and_helpers_validate_and_are_deterministic():
    assert GatedRNN.PRESETS == PRESETS == ("vanish", "survive", "explode")
    with pytest.raises(ValueError, match="^name must be one of"):
        GatedRNN.preset("wobble")
    with pytest.raises(ValueError, match="^name must be one of"):
        preset_inputs("wobble", 3)
    with pytest.raises(ValueError, match="^m must be >= 2 for preset 'explode'"):
        GatedRNN.preset("explode", n=3, m=1)
    for name in PRESETS:
        a, b = GatedRNN.preset(name, 2, 3, seed=4), GatedRNN.preset(name, 2, 3, seed=4)
        assert all(np.array_equal(getattr(a, w), getattr(b, w)) for w in ("W_c", "W_h", "W_x"))
        assert np.array_equal(preset_inputs(name, 5, 2, 4), preset_inputs(name, 5, 2, 4))
        assert preset_inputs(name, 5, 2, 4, batch=3).shape == (5, 3, 2)
    assert np.all(preset_inputs("survive", 50, 3) >= 0.5)
    signs = np.sign(preset_inputs("explode", 6, 2))
    assert np.array_equal(signs, np.array([[-1, -1], [1, 1]] * 3))


def test_last_step_upstream_and_random_inputs():
    p = last_step_upstream(5, 3, seed=2)
    assert p.shape == (5, 3)
    assert np.all(p[:-1] == 0)
    assert np.linalg.norm(p[-1]) == pytest.approx(1.0)
    assert np.array_equal(p, last_step_upstream(5, 3, seed=2))
    assert not np.array_equal(p, last_step_upstream(5, 3, seed=3))
    assert random_inputs(4, 2).shape == (4, 2)
    assert random_inputs(4, 2, batch=3).shape == (4, 3, 2)
    assert np.array_equal(random_inputs(4, 2, seed=9), random_inputs(4, 2, seed=9))
    # with the last-step upstream, ||δ[t]|| is the Jacobian product along p[T]
    model = GatedRNN(2, 3, seed=1)
    tr = model.forward(random_inputs(5, 2))
    grads = model.backward(tr, p)
    for t in range(1, 6):
        assert grads.delta_norms[t - 1] == pytest.approx(
            np.linalg.norm(jacobian_product(tr, 5, t).T @ p[-1]), rel=1e-12)


# --------------------------------------------------------------------------------------------------
# Parameters and validation
# --------------------------------------------------------------------------------------------------

def test_initialisation_is_seeded_and_scaled():
    a, b = GatedRNN(3, 4, seed=7), GatedRNN(3, 4, seed=7, scale=2.5)
    assert a.W_c.shape == a.W_x.shape == (4, 3) and a.W_h.shape == (4, 4)
    for name in ("W_c", "W_h", "W_x"):
        assert_close(getattr(b, name), 2.5 * getattr(a, name), what=name)
    assert not np.array_equal(a.W_c, GatedRNN(3, 4, seed=8).W_c)


def test_weights_are_settable_and_shape_checked():
    model = GatedRNN(2, 3)
    model.W_h = np.eye(3)
    assert np.array_equal(model.W_h, np.eye(3))
    tr = model.forward(random_inputs(2, 2))
    model.W_h = 2 * np.eye(3)                        # the trace keeps the weights it used
    assert np.array_equal(tr.W_h, np.eye(3))
    with pytest.raises(ValueError, match=r"^W_c must have shape \(3, 2\)"):
        model.W_c = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"^W_h must have shape \(3, 3\)"):
        model.W_h = np.zeros((3,))


@pytest.mark.parametrize("kwargs,message", [
    ({"n": 0, "m": 2}, "^n must be >= 1"),
    ({"n": 2, "m": 0}, "^m must be >= 1"),
    ({"n": 2.5, "m": 2}, "^n must be an integer >= 1"),
    ({"n": True, "m": 2}, "^n must be an integer >= 1"),
    ({"n": 2, "m": 2, "scale": 0}, "^scale must be a finite number > 0"),
    ({"n": 2, "m": 2, "scale": float("nan")}, "^scale must be a finite number > 0"),
    ({"n": 2, "m": 2, "seed": -1}, "^seed must be >= 0"),
])
def test_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GatedRNN(**kwargs)


@pytest.mark.parametrize("shape", [(4,), (4, 3), (0, 2), (4, 0, 2), (2, 2, 2, 2), (3, 2, 3)])
def test_forward_rejects_wrong_input_shapes(shape):
    with pytest.raises(ValueError, match=r"^xs must have shape \(T, n\) or \(T, B, n\) with n = 2"):
        GatedRNN(2, 3).forward(np.zeros(shape))


def test_backward_rejects_wrong_upstream_shape():
    model = GatedRNN(2, 3)
    tr = model.forward(random_inputs(4, 2))
    with pytest.raises(ValueError, match=r"^dl_dh must have shape \(4, 3\)"):
        model.backward(tr, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="^T must be >= 1"):
        random_inputs(0, 2)


def test_module_is_numpy_only():
    import sys
    src = open(rnn.__file__).read()
    for heavy in ("torch", "manim", "graphviz", "matplotlib"):
        assert f"import {heavy}" not in src
    assert "viz.rnn" in sys.modules


def test_gated_run_is_the_figures_run():
    from viz.rnn import GatedRNN, gated_run, last_step_upstream, preset_inputs

    run = gated_run(6, 2, 3, seed=4, preset="explode")
    model = GatedRNN.preset("explode", n=2, m=3, seed=4)
    trace = model.forward(preset_inputs("explode", 6, n=2, seed=4))
    np.testing.assert_array_equal(run.trace.h, trace.h)
    np.testing.assert_array_equal(run.dl_dh, last_step_upstream(6, 3, seed=4))
    np.testing.assert_array_equal(run.grads.delta, model.backward(trace, run.dl_dh).delta)
    plain = gated_run(5, 2, 3, seed=1, scale=0.5, backward=False)
    assert plain.grads is None and plain.dl_dh is None
    np.testing.assert_array_equal(plain.model.W_h, GatedRNN(2, 3, seed=1, scale=0.5).W_h)
