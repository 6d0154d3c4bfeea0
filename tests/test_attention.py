"""viz.attention (AttentionRNN(k) and AttentionRNN(∞), MATH.md section 4) against finite differences and
an independent PyTorch version.

Loss throughout: ℓ = Σ_t p[t]·h[t] for random p (direct gradients exactly p; totals δ[t] are what a
perturbation added to h[t], before later steps read it, changes ℓ by).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracles import assert_close, central_diff, central_jacobian, torch_or_skip
from viz import attention
from viz.attention import (BASE_CASES, PRESET_NOTES, PRESETS, AttentionRNN, hops, jacobian, param_index,
                           path_lengths, preset_inputs, total_jacobian)
from viz.rnn import last_step_upstream, random_inputs

# --------------------------------------------------------------------------------------------------
# Independent implementations of MATH.md section 4 (written from the equations, not viz.attention)
# --------------------------------------------------------------------------------------------------


def included(k, base_case, t):
    """(lag, real state?) pairs step t puts in its softmax."""
    if k is None:
        return [(i, True) for i in range(t)]
    if base_case == "zeros":
        return [(i, i == 0 or t - i >= 1) for i in range(k + 1)]
    return [(i, True) for i in range(min(k, t - 1) + 1)]


def naive_states(Q, K, V, k, base_case, xs, bump_at=None, bump=None, read=None):
    """h[0..T] as a list. `bump` is added to h[bump_at] right after it is computed. `read` = (t, lag, vec)
    replaces what step t reads at that lag (only there), for partial derivatives ∂h[t]/∂h[t-lag]."""
    n = xs.shape[1]
    h = [np.zeros(n)]
    for t in range(1, len(xs) + 1):
        logits, values = [], []
        for lag, real in included(k, base_case, t):
            j = lag if k is not None else min(lag, 1)
            src = xs[t - 1] if lag == 0 else (h[t - lag] if real else np.zeros(n))
            if read is not None and read[0] == t and read[1] == lag:
                src = read[2]
            logits.append(float((Q[j] @ src) @ (K[j] @ src)))
            values.append(V[j] @ src)
        e = np.exp(np.array(logits) - max(logits))
        new = sum(w * v for w, v in zip(e / e.sum(), values))
        if bump_at == t:
            new = new + bump
        h.append(new)
    return h


def naive_loss(Q, K, V, k, base_case, xs, p, **kw):
    h = naive_states(Q, K, V, k, base_case, xs, **kw)
    return float(sum(p[t - 1] @ h[t] for t in range(1, len(xs) + 1)))


def torch_reference(Q, K, V, k, base_case, xs, p):
    """PyTorch float64 autograd of the same equations: δ (retained grads), dQ, dK, dV, dxs."""
    torch = torch_or_skip()
    f64 = torch.float64
    tQ, tK, tV = (torch.tensor(A, dtype=f64, requires_grad=True) for A in (Q, K, V))
    X = torch.tensor(xs, dtype=f64, requires_grad=True)
    n = xs.shape[1]
    hs = [torch.zeros(n, dtype=f64)]
    for t in range(1, len(xs) + 1):
        logits, values = [], []
        for lag, real in included(k, base_case, t):
            j = lag if k is not None else min(lag, 1)
            src = X[t - 1] if lag == 0 else (hs[t - lag] if real else torch.zeros(n, dtype=f64))
            logits.append(torch.dot(tQ[j] @ src, tK[j] @ src))
            values.append(tV[j] @ src)
        a = torch.softmax(torch.stack(logits), dim=0)
        h = a @ torch.stack(values)
        h.retain_grad()
        hs.append(h)
    loss = sum(torch.dot(torch.tensor(p[t - 1], dtype=f64), hs[t]) for t in range(1, len(xs) + 1))
    loss.backward()
    return {"h": torch.stack(hs).detach().numpy(),
            "delta": torch.stack([h.grad for h in hs[1:]]).numpy(),
            "dQ": tQ.grad.numpy(), "dK": tK.grad.numpy(), "dV": tV.grad.numpy(),
            "dxs": X.grad.numpy()}


# --------------------------------------------------------------------------------------------------
# Random configurations: n 1..5, T 1..8, k 1..4 (including k >= T) or ∞, both base cases
# --------------------------------------------------------------------------------------------------

configs = st.fixed_dictionaries({
    "n": st.integers(1, 5),
    "T": st.integers(1, 8),
    "k": st.sampled_from([None, 1, 2, 3, 4]),
    "base_case": st.sampled_from(BASE_CASES),
    "seed": st.integers(0, 10_000),
    "scale": st.sampled_from([0.5, 1.0, 1.5]),
})


def setup(cfg):
    model = AttentionRNN(cfg["n"], cfg["k"], seed=cfg["seed"], base_case=cfg["base_case"],
                         scale=cfg["scale"])
    xs = random_inputs(cfg["T"], cfg["n"], seed=cfg["seed"] + 1)
    p = np.random.default_rng(cfg["seed"] + 2).standard_normal((cfg["T"], cfg["n"]))
    return model, xs, p


def params(model):
    return (model.Q, model.K, model.V, model.k, model.base_case)


# --------------------------------------------------------------------------------------------------
# Forward: structure of the trace and values
# --------------------------------------------------------------------------------------------------

@settings(max_examples=150)
@given(configs)
def test_forward_trace_structure_and_values(cfg):
    model, xs, _ = setup(cfg)
    n, T, k = cfg["n"], cfg["T"], cfg["k"]
    tr = model.forward(xs)
    P = 2 if k is None else k + 1
    assert model.Q.shape == model.K.shape == model.V.shape == tr.Q.shape == (P, n, n)
    assert tr.h.shape == (T + 1, n) and np.all(tr.h[0] == 0)
    assert (tr.T, tr.n, tr.window) == (T, n, k)
    assert tr.base_case == ("mask" if k is None else cfg["base_case"])
    assert_close(tr.h, np.stack(naive_states(*params(model), xs)), what="h")
    for t in range(1, T + 1):
        lags = tr.lags[t - 1]
        # |a[t]|: k+1 (zeros), min(k, t-1)+1 (mask), t (∞)
        if k is None:
            L = t
        elif cfg["base_case"] == "zeros":
            L = k + 1
        else:
            L = min(k, t - 1) + 1
        assert list(lags) == list(range(L))
        assert list(tr.sources[t - 1]) == [t - i for i in range(L)]
        assert list(tr.present[t - 1]) == [i == 0 or t - i >= 1 for i in range(L)]
        assert list(tr.index[t - 1]) == [param_index(k, i) for i in range(L)]
        for name in ("logits", "a"):
            assert getattr(tr, name)[t - 1].shape == (L,)
        for name in ("q", "k", "v"):
            assert getattr(tr, name)[t - 1].shape == (L, n)
        assert tr.a[t - 1].sum() == pytest.approx(1.0)
        # each lag's q, k, v, logit from its own matrices and source
        for j, i in enumerate(lags):
            src = xs[t - 1] if i == 0 else (tr.h[t - i] if t - i >= 1 else np.zeros(n))
            pi = param_index(k, i)
            assert_close(tr.q[t - 1][j], model.Q[pi] @ src, what="q")
            assert_close(tr.k[t - 1][j], model.K[pi] @ src, what="k")
            assert_close(tr.v[t - 1][j], model.V[pi] @ src, what="v")
            assert tr.logits[t - 1][j] == pytest.approx(tr.q[t - 1][j] @ tr.k[t - 1][j], abs=1e-12)
        assert_close(tr.h[t], tr.a[t - 1] @ tr.v[t - 1], what="h[t]")


def test_param_index():
    assert [param_index(3, i) for i in range(4)] == [0, 1, 2, 3]
    assert [param_index(None, i) for i in range(5)] == [0, 1, 1, 1, 1]
    assert AttentionRNN(2, None).param_index(7) == 1
    with pytest.raises(ValueError, match=r"^lag must be in 0..3 for k = 3 \(got 4\)"):
        param_index(3, 4)
    with pytest.raises(ValueError, match="^lag must be >= 0"):
        param_index(None, -1)


# --------------------------------------------------------------------------------------------------
# Base case (MATH.md: "zero states still get logit 0 and softmax mass")
# --------------------------------------------------------------------------------------------------

def test_base_case_zeros_gives_zero_states_softmax_mass_by_hand():
    model = AttentionRNN(3, 3, seed=4, base_case="zeros")
    x1 = np.array([0.5, -1.0, 2.0])
    tr = model.forward(x1[None])
    w0 = (model.Q[0] @ x1) @ (model.K[0] @ x1)
    assert w0 != 0
    assert_close(tr.logits[0], [w0, 0, 0, 0], what="logits")
    expected = np.array([math.exp(w0), 1, 1, 1]) / (math.exp(w0) + 3)
    assert_close(tr.a[0], expected, what="a[1]")
    assert list(tr.present[0]) == [True, False, False, False]
    assert list(tr.sources[0]) == [1, 0, -1, -2]
    # h[1] = a_0 V_0 x[1]: the zero states take mass but add nothing
    assert_close(tr.h[1], expected[0] * model.V[0] @ x1, what="h[1]")
    # with q_0^T k_0 = 0 the four entries are equal: a quarter each (a third each of what lag 0 leaves)
    model.Q = np.zeros_like(model.Q)
    assert_close(model.forward(x1[None]).a[0], np.full(4, 0.25), what="a[1] with w_0 = 0")


def test_base_case_mask_gives_all_mass_to_the_input_at_step_one():
    model = AttentionRNN(3, 3, seed=4, base_case="mask")
    xs = random_inputs(5, 3, seed=1)
    tr = model.forward(xs)
    assert_close(tr.a[0], [1.0], what="a[1]")
    assert list(tr.lags[0]) == [0]
    assert_close(tr.h[1], model.V[0] @ xs[0], what="h[1]")
    assert [len(a) for a in tr.a] == [1, 2, 3, 4, 4]
    assert all(np.all(pr) for pr in tr.present)
    # the literal rule gives the zero states mass, so h[1] shrinks towards 0
    zeros = AttentionRNN(3, 3, seed=4, base_case="zeros").forward(xs)
    assert not np.allclose(zeros.h[1], tr.h[1])


def test_infinite_window_is_always_masked_and_shares_parameters():
    for base_case in BASE_CASES:
        model = AttentionRNN(2, None, seed=3, base_case=base_case)
        assert model.base_case == "mask" and model.Q.shape == (2, 2, 2)
        tr = model.forward(random_inputs(6, 2))
        assert [len(a) for a in tr.a] == [1, 2, 3, 4, 5, 6]
        assert [list(i) for i in tr.index] == [[0] + [1] * (t - 1) for t in range(1, 7)]


# --------------------------------------------------------------------------------------------------
# Backward: every gradient against PyTorch and central finite differences
# --------------------------------------------------------------------------------------------------

@settings(max_examples=200)
@given(configs)
def test_backward_matches_pytorch_autograd(cfg):
    model, xs, p = setup(cfg)
    grads = model.backward(model.forward(xs), p)
    ref = torch_reference(*params(model), xs, p)
    for name in ("delta", "dQ", "dK", "dV", "dxs"):
        assert_close(getattr(grads, name), ref[name], rtol=1e-10, atol=1e-12, what=name)
    assert_close(grads.delta_norms, np.linalg.norm(ref["delta"], axis=1), what="delta_norms")
    assert grads.delta_norms.shape == (cfg["T"],)


@settings(max_examples=80)
@given(configs)
def test_backward_matches_finite_differences(cfg):
    model, xs, p = setup(cfg)
    grads = model.backward(model.forward(xs), p)
    Q, K, V, k, base_case = params(model)
    loss = {
        "dQ": lambda A: naive_loss(A, K, V, k, base_case, xs, p),
        "dK": lambda A: naive_loss(Q, A, V, k, base_case, xs, p),
        "dV": lambda A: naive_loss(Q, K, A, k, base_case, xs, p),
    }
    for name, f in loss.items():
        fd = central_diff(f, getattr(model, name[1]).copy())
        assert_close(getattr(grads, name), fd, rtol=1e-5, atol=1e-7, what=name)
    fd_x = central_diff(lambda x: naive_loss(Q, K, V, k, base_case, x, p), xs.copy())
    assert_close(grads.dxs, fd_x, rtol=1e-5, atol=1e-7, what="dxs")
    for t in range(1, cfg["T"] + 1):
        fd_t = central_diff(lambda b: naive_loss(*params(model), xs, p, bump_at=t, bump=b),
                            np.zeros(cfg["n"]))
        assert_close(grads.delta[t - 1], fd_t, rtol=1e-5, atol=1e-7, what=f"delta[{t}]")


@settings(max_examples=80)
@given(configs)
def test_delta_recursion_over_the_k_readers(cfg):
    """MATH.md: δ[t] = p[t] + Σ_{i=1..k} (∂h[t+i]/∂h[t])^T δ[t+i], terms past T dropped; and
    δ[t] = Σ_{s>=t} (dh[s]/dh[t])^T p[s]."""
    model, xs, p = setup(cfg)
    tr = model.forward(xs)
    grads = model.backward(tr, p)
    T = cfg["T"]
    reach = T if cfg["k"] is None else cfg["k"]
    for t in range(1, T + 1):
        readers = sum((jacobian(tr, t + i, i).T @ grads.delta[t + i - 1]
                       for i in range(1, reach + 1) if t + i <= T), np.zeros(cfg["n"]))
        assert_close(grads.delta[t - 1], p[t - 1] + readers, rtol=1e-9, atol=1e-11, what="recursion")
        unrolled = sum(total_jacobian(tr, s, t).T @ p[s - 1] for s in range(t, T + 1))
        assert_close(grads.delta[t - 1], unrolled, rtol=1e-9, atol=1e-11, what="unrolled")


# --------------------------------------------------------------------------------------------------
# Jacobians
# --------------------------------------------------------------------------------------------------

@settings(max_examples=150)
@given(configs)
def test_jacobian_closed_form_matches_finite_differences_and_pytorch(cfg):
    torch = torch_or_skip()
    model, xs, _ = setup(cfg)
    tr = model.forward(xs)
    n, T, k = cfg["n"], cfg["T"], cfg["k"]
    for t in range(1, T + 1):
        for lag in range(1, (T if k is None else k) + 2):
            J = jacobian(tr, t, lag)
            assert J.shape == (n, n)
            real = lag in tr.lags[t - 1] and t - lag >= 1
            if not real:              # not in the softmax, or the zero base case: not a state
                assert np.all(J == 0)
                continue
            step = lambda s: naive_states(*params(model), xs[:t], read=(t, lag, s))[t]  # noqa: E731
            fd = central_jacobian(step, tr.h[t - lag].copy())
            assert_close(J, fd, rtol=1e-6, atol=1e-8, what=f"dh[{t}]/dh[{t - lag}] vs FD")
            # PyTorch: the same partial derivative of one step with the source as the variable
            j = param_index(k, lag)
            Qi, Ki, Vi = (torch.tensor(A[j]) for A in (model.Q, model.K, model.V))
            others = [(tr.logits[t - 1][c], torch.tensor(tr.v[t - 1][c]))
                      for c, i in enumerate(tr.lags[t - 1]) if i != lag]

            def one_step(s):
                logits = [torch.dot(Qi @ s, Ki @ s)] + [torch.tensor(w) for w, _ in others]
                values = [Vi @ s] + [v for _, v in others]
                return torch.softmax(torch.stack(logits), 0) @ torch.stack(values)
            auto = torch.autograd.functional.jacobian(one_step, torch.tensor(tr.h[t - lag])).numpy()
            assert_close(J, auto, rtol=1e-10, atol=1e-12, what="vs torch")


@settings(max_examples=100)
@given(configs, st.data())
def test_total_jacobian_matches_finite_differences_and_pytorch(cfg, data):
    torch = torch_or_skip()
    model, xs, _ = setup(cfg)
    tr = model.forward(xs)
    T, n = cfg["T"], cfg["n"]
    t = data.draw(st.integers(1, T))
    s = data.draw(st.integers(t, T))
    D = total_jacobian(tr, s, t)
    fd = central_jacobian(lambda b: naive_states(*params(model), xs, bump_at=t, bump=b)[s],
                          np.zeros(n))
    assert_close(D, fd, rtol=1e-6, atol=1e-8, what=f"dh[{s}]/dh[{t}] vs FD")

    def forward_from(bump):
        ref_h = [torch.tensor(r) for r in tr.h]
        hs = ref_h[:t] + [ref_h[t] + bump]
        Q, K, V = (torch.tensor(A) for A in (model.Q, model.K, model.V))
        for r in range(t + 1, s + 1):
            logits, values = [], []
            for lag, real in included(cfg["k"], model.base_case, r):
                j = param_index(cfg["k"], lag)
                src = (torch.tensor(xs[r - 1]) if lag == 0 else
                       hs[r - lag] if real else torch.zeros(n, dtype=torch.float64))
                logits.append(torch.dot(Q[j] @ src, K[j] @ src))
                values.append(V[j] @ src)
            hs.append(torch.softmax(torch.stack(logits), 0) @ torch.stack(values))
        return hs[s]
    auto = torch.autograd.functional.jacobian(forward_from, torch.zeros(n, dtype=torch.float64))
    assert_close(D, auto.numpy(), rtol=1e-9, atol=1e-11, what="vs torch")
    if s == t:
        assert np.array_equal(D, np.eye(n))


def test_total_jacobian_validates_its_steps():
    tr = AttentionRNN(2, 2).forward(random_inputs(4, 2))
    with pytest.raises(ValueError, match=r"^s must be in 3..4 \(got 2\)"):
        total_jacobian(tr, 2, 3)
    with pytest.raises(ValueError, match=r"^t must be in 1..4 \(got 0\)"):
        total_jacobian(tr, 2, 0)
    with pytest.raises(ValueError, match=r"^t must be in 1..4 \(got 5\)"):
        jacobian(tr, 5, 1)
    with pytest.raises(ValueError, match="^lag must be >= 1"):
        jacobian(tr, 2, 0)


# --------------------------------------------------------------------------------------------------
# The wrong variants MATH.md names
# --------------------------------------------------------------------------------------------------

def jacobian_without_KtQ(tr, t, lag):
    """The common mistake: M_i = Q_i^T K_i only (dropping K_i^T Q_i)."""
    j = list(tr.lags[t - 1]).index(lag)
    pi = tr.index[t - 1][j]
    s = tr.h[t - lag]
    M = tr.Q[pi].T @ tr.K[pi]
    return tr.a[t - 1][j] * (tr.V[pi] + np.outer(tr.V[pi] @ s - tr.h[t], s @ M))


@pytest.mark.parametrize("k", [1, 2, None])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dropping_half_of_M_is_detected(k, seed):
    model = AttentionRNN(3, k, seed=seed, base_case="mask")
    xs = random_inputs(4, 3, seed=seed + 10)
    tr = model.forward(xs)
    for lag in (1, 2) if k != 1 else (1,):
        t = 4
        fd = central_jacobian(
            lambda s: naive_states(*params(model), xs, read=(t, lag, s))[t], tr.h[t - lag].copy())
        scale = np.linalg.norm(fd)
        # the reference is within finite-difference noise, the mistake 10^4 times further off
        assert np.linalg.norm(jacobian(tr, t, lag) - fd) < 1e-7 * scale
        assert np.linalg.norm(jacobian_without_KtQ(tr, t, lag) - fd) > 1e-3 * scale


@pytest.mark.parametrize("k,base_case", [(1, "zeros"), (2, "mask"), (3, "zeros"), (None, "mask")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partials_in_place_of_totals_is_detected(k, base_case, seed):
    model = AttentionRNN(3, k, seed=seed, base_case=base_case)
    xs = random_inputs(6, 3, seed=seed + 10)
    p = np.random.default_rng(seed + 20).standard_normal((6, 3))
    tr = model.forward(xs)
    right = model.backward(tr, p)
    # the mistake: each step's parameter gradient from the direct p[t] instead of the total δ[t]
    wrong = {name: sum(_step_param_grad(tr, t, p[t - 1], name) for t in range(1, 7))
             for name in ("dQ", "dK", "dV")}
    for name, f in {"dQ": lambda A: naive_loss(A, model.K, model.V, k, base_case, xs, p),
                    "dK": lambda A: naive_loss(model.Q, A, model.V, k, base_case, xs, p),
                    "dV": lambda A: naive_loss(model.Q, model.K, A, k, base_case, xs, p)}.items():
        fd = central_diff(f, getattr(model, name[1]).copy())
        scale = np.linalg.norm(fd)
        assert np.linalg.norm(getattr(right, name) - fd) < 1e-7 * scale
        assert np.linalg.norm(wrong[name] - fd) > 1e-2 * scale, name


def _step_param_grad(tr, t, g, name):
    """Parameter gradient of step t alone, with upstream g at h[t] (no flow to earlier states)."""
    index = tr.index[t - 1]
    _, gQ, gK, gV = attention.attention_step_backward(
        tr.Q[index], tr.K[index], tr.V[index], tr.states(t), tr.q[t - 1], tr.k[t - 1],
        tr.v[t - 1], tr.a[t - 1], g)
    out = np.zeros_like(tr.Q)
    np.add.at(out, index, {"dQ": gQ, "dK": gK, "dV": gV}[name])
    return out


# --------------------------------------------------------------------------------------------------
# Hops: gradients cross T steps in about T/k hops
# --------------------------------------------------------------------------------------------------

def bfs_hops(tr, T):
    """Fewest reads from h[T] back to each h[t] in the trace's own dependency graph."""
    dist = {T: 0}
    for s in range(T, 0, -1):
        if s not in dist:
            continue
        for lag, real in zip(tr.lags[s - 1], tr.present[s - 1]):
            if lag >= 1 and real:
                src = s - lag
                dist[src] = min(dist.get(src, 10 ** 9), dist[s] + 1)
    return np.array([dist[t] for t in range(1, T + 1)])


@settings(max_examples=100)
@given(configs)
def test_path_lengths_are_the_shortest_paths_of_the_trace(cfg):
    tr = setup(cfg)[0].forward(random_inputs(cfg["T"], cfg["n"]))
    lengths = path_lengths(cfg["k"], cfg["T"])
    assert np.array_equal(lengths, bfs_hops(tr, cfg["T"]))
    # and a nonzero total Jacobian exists exactly along those paths (some path reaches every state)
    assert all(np.any(total_jacobian(tr, cfg["T"], t) != 0) for t in range(1, cfg["T"] + 1))


def test_hops_values():
    assert [hops(1, d) for d in range(5)] == [0, 1, 2, 3, 4]
    assert [hops(3, d) for d in (0, 1, 3, 4, 9, 10)] == [0, 1, 1, 2, 3, 4]
    assert [hops(None, d) for d in (0, 1, 50)] == [0, 1, 1]
    assert list(path_lengths(2, 7)) == [3, 3, 2, 2, 1, 1, 0]
    with pytest.raises(ValueError, match="^distance must be >= 0"):
        hops(2, -1)


# --------------------------------------------------------------------------------------------------
# Presets: gradients through time vanish, survive, explode (loss read at h[T]: last_step_upstream)
# --------------------------------------------------------------------------------------------------

def preset_run(name, n, k, seed, T, base_case="zeros"):
    """(trace, ||δ[t]|| for t = 1..T) for a loss read at h[T] only, so δ[t] = (dh[T]/dh[t])^T p[T]."""
    model = AttentionRNN.preset(name, n=n, k=k, seed=seed, base_case=base_case)
    tr = model.forward(preset_inputs(name, T, n, seed))
    return tr, model.backward(tr, last_step_upstream(T, n, seed)).delta_norms


def ratio(norms):
    return norms[0] / norms[-1]


GRID = [(n, seed) for n in range(1, 9) for seed in range(21)]       # n 1..8, seeds 0..20


@pytest.mark.parametrize("base_case", BASE_CASES)
def test_vanish_preset_vanishes_for_finite_k_and_levels_off_for_infinite_k(base_case):
    """Finite k: ||δ[1]||/||δ[T]|| < 1e-2 at T = 12 and < 1e-5 at T = 24, and ||dh[12]/dh[1]|| < 1e-2.
    ∞ (skip paths: h[T] reads h[1] directly): the ratio stays above 1e-4 and at least 1e4 times
    k = 1's; doubling T divides it by less than 4 (k = 1: by more than 1e4)."""
    for n, seed in GRID:
        finite = {}
        for k in (1, 2, 3):
            tr, norms = preset_run("vanish", n, k, seed, 12, base_case)
            finite[k] = ratio(norms)
            assert finite[k] < 1e-2, (n, seed, k, finite[k])
            assert np.linalg.norm(total_jacobian(tr, 12, 1), 2) < 1e-2
            assert ratio(preset_run("vanish", n, k, seed, 24, base_case)[1]) < 1e-5
        inf12 = ratio(preset_run("vanish", n, None, seed, 12, base_case)[1])
        inf24 = ratio(preset_run("vanish", n, None, seed, 24, base_case)[1])
        k1_24 = ratio(preset_run("vanish", n, 1, seed, 24, base_case)[1])
        assert inf12 > 1e-4 and inf12 > 1e4 * finite[1], (n, seed, inf12, finite[1])
        assert inf24 > inf12 / 4 and k1_24 < finite[1] / 1e4, (n, seed)


def test_vanish_preset_numbers_quoted_in_the_docstring():
    norms = {k: preset_run("vanish", 3, k, 0, 12)[1] for k in (1, None)}
    assert ratio(norms[1]) == pytest.approx(8.6e-10, rel=0.01)
    assert_close(norms[None][:-1], np.full(11, 0.03), rtol=0.15, atol=0, what="∞ levels off")
    assert AttentionRNN.preset("vanish", 3, 2, seed=4).scale == 0.3


@pytest.mark.parametrize("base_case", BASE_CASES)
@pytest.mark.parametrize("T", [8, 24])
def test_survive_preset_keeps_every_gradient_at_one_for_finite_k(base_case, T):
    """||δ[t]|| = 1 to 1e-5 for every t; a_1 ≈ 1, h[t] ≈ h[1] with ||h[1]|| = 2; dh[T]/dh[1] ≈ I."""
    for n, seed in GRID[::3]:
        for k in (1, 2, 3):
            tr, norms = preset_run("survive", n, k, seed, T, base_case)
            assert_close(norms, np.ones(T), atol=1e-5, rtol=0, what=f"n={n} seed={seed} k={k}")
            assert min(a[list(lags).index(1)] for a, lags in zip(tr.a[1:], tr.lags[1:])) > 1 - 1e-8
            assert np.linalg.norm(tr.h[1]) == pytest.approx(2.0)
            assert_close(tr.h[1:], np.tile(tr.h[1], (T, 1)), atol=1e-6, rtol=0, what="copies")
            assert_close(jacobian(tr, T, 1), np.eye(n), atol=1e-6, rtol=0, what="∂h[T]/∂h[T-1]")
            assert_close(total_jacobian(tr, T, 1), np.eye(n), atol=1e-5, rtol=0, what="dh[T]/dh[1]")


@pytest.mark.parametrize("base_case", BASE_CASES)
@pytest.mark.parametrize("T", [8, 12, 24])
def test_survive_preset_with_infinite_k_averages_and_keeps_the_first_gradient(base_case, T):
    """∞: the equal states share a[t] evenly (1/(t-1) each), so ||δ[t]|| = 1/t for 1 < t < T and
    ||δ[1]|| = ||δ[T]|| = 1: no geometric decay, and the ratio is in [0.2, 5]."""
    t = np.arange(1, T + 1)
    expected = np.where((t > 1) & (t < T), 1.0 / t, 1.0)
    for n, seed in GRID[::3]:
        tr, norms = preset_run("survive", n, None, seed, T, base_case)
        assert_close(norms, expected, rtol=1e-6, atol=0, what=f"n={n} seed={seed}")
        assert 0.2 <= ratio(norms) <= 5
        for s in range(2, T + 1):
            assert_close(tr.a[s - 1][1:], np.full(s - 1, 1.0 / (s - 1)), rtol=1e-6, atol=0,
                         what="even attention")
        assert_close(total_jacobian(tr, T, 1), np.eye(n), atol=1e-6, rtol=0, what="dh[T]/dh[1]")
        assert_close(total_jacobian(tr, T, 2), np.eye(n) / 2, atol=1e-6, rtol=0, what="dh[T]/dh[2]")


@pytest.mark.parametrize("base_case", BASE_CASES)
@pytest.mark.parametrize("T", [8, 12, 24])
def test_explode_preset_doubles_the_gradient_at_every_step_back(base_case, T):
    """||δ[t]|| = 2^(T-t) to 1e-6 (so ||δ[1]||/||δ[T]|| >= 128 > 1e2 from T = 8) for k = 1, 2, 3, ∞;
    the newest state takes the attention and dh[T]/dh[1] = 2^(T-1) I."""
    for n, seed in GRID[::3]:
        for k in (1, 2, 3, None):
            tr, norms = preset_run("explode", n, k, seed, T, base_case)
            assert_close(norms, 2.0 ** (T - np.arange(1, T + 1)), rtol=1e-6, atol=0,
                         what=f"n={n} seed={seed} k={k}")
            assert ratio(norms) > 1e2
            assert min(a[1] for a in tr.a[1:]) > 1 - 1e-8            # lag 1 is entry 1 (lags 0, 1, ...)
            assert_close(total_jacobian(tr, T, 1) / 2.0 ** (T - 1), np.eye(n), atol=1e-6, rtol=0,
                         what="dh[T]/dh[1] / 2^(T-1)")


def test_survive_needs_the_first_state_scaled_past_the_zero_states():
    """Why V_0 = 2 L R: with V_0 = 2 R, base case "zeros" and k = 3, h[1] = a_0 V_0 x[1] has norm 1/2
    (the three zero states take 3/4 of a[1]), h[1]'s score is only 5/4, a_1 ≈ 0.54: h[t] is no copy
    of h[t-1] and ||δ[t]|| wanders away from 1."""
    for seed in range(5):
        model = AttentionRNN.preset("survive", 3, 3, seed=seed)
        model.V = np.concatenate([model.V[:1] / 4, model.V[1:]])      # L = 4 lags at step 1
        tr = model.forward(preset_inputs("survive", 12, 3, seed))
        norms = model.backward(tr, last_step_upstream(12, 3, seed)).delta_norms
        assert np.linalg.norm(tr.h[1]) == pytest.approx(0.5) and tr.a[1][1] < 0.6
        assert np.max(np.abs(norms - 1)) > 0.1


def test_presets_are_deterministic_and_seeded():
    for name in PRESETS:
        for k in (1, 3, None):
            a, b = (AttentionRNN.preset(name, 3, k, seed=4) for _ in range(2))
            assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in "QKV")
            assert (a.n, a.k, a.seed) == (3, k, 4)
            assert not np.array_equal(a.V, AttentionRNN.preset(name, 3, k, seed=5).V)
        xs = preset_inputs(name, 5, 2, 4)
        assert xs.shape == (5, 2) and np.array_equal(xs, preset_inputs(name, 5, 2, 4))
        assert not np.array_equal(xs, preset_inputs(name, 5, 2, 5))
    assert_close(np.linalg.norm(preset_inputs("explode", 9, 4), axis=1), np.ones(9), what="unit inputs")
    assert np.array_equal(preset_inputs("vanish", 6, 3, 2), random_inputs(6, 3, 2))
    assert AttentionRNN.preset("survive", 2, None, base_case="zeros").base_case == "mask"
    assert AttentionRNN.preset("explode", 2, 2, base_case="mask").base_case == "mask"


def test_preset_notes_are_one_caption_line_each():
    assert AttentionRNN.PRESETS == PRESETS == ("vanish", "survive", "explode")
    assert AttentionRNN.PRESET_NOTES is PRESET_NOTES and set(PRESET_NOTES) == set(PRESETS)
    for note in PRESET_NOTES.values():
        assert "\n" not in note and 40 < len(note) <= 90 and "∞" in note


@pytest.mark.parametrize("bad", ["wobble", "Vanish", None, 1])
def test_bad_preset_names_raise(bad):
    message = r"^preset name must be one of \('vanish', 'survive', 'explode'\)"
    with pytest.raises(ValueError, match=message):
        AttentionRNN.preset(bad)
    with pytest.raises(ValueError, match=message):
        preset_inputs(bad, 3)


def test_preset_parameters_are_validated():
    with pytest.raises(ValueError, match="^k must be >= 1"):
        AttentionRNN.preset("survive", k=0)
    with pytest.raises(ValueError, match="^n must be >= 1"):
        AttentionRNN.preset("explode", n=0)
    with pytest.raises(ValueError, match="^base_case must be one of"):
        AttentionRNN.preset("vanish", base_case="pad")
    with pytest.raises(ValueError, match="^seed must be >= 0"):
        preset_inputs("survive", 3, seed=-1)
    with pytest.raises(ValueError, match="^T must be >= 1"):
        preset_inputs("survive", 0)


# --------------------------------------------------------------------------------------------------
# Parameters and validation
# --------------------------------------------------------------------------------------------------

def test_initialisation_and_settable_parameters():
    a, b = AttentionRNN(3, 2, seed=5), AttentionRNN(3, 2, seed=5, scale=2.0)
    for name in ("Q", "K", "V"):
        assert_close(getattr(b, name), 2.0 * getattr(a, name), what=name)
    assert not np.array_equal(a.Q, AttentionRNN(3, 2, seed=6).Q)
    a.V = np.zeros((3, 3, 3))
    tr = a.forward(random_inputs(3, 3))
    assert np.all(tr.h == 0)
    a.V = np.ones((3, 3, 3))
    assert np.all(tr.V == 0)                         # the trace keeps the parameters it used
    with pytest.raises(ValueError, match=r"^Q must have shape \(3, 3, 3\)"):
        a.Q = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match=r"^K must have shape \(2, 2, 2\)"):
        AttentionRNN(2, None).K = np.zeros((3, 2, 2))


@pytest.mark.parametrize("args,kwargs,message", [
    ((0, 2), {}, "^n must be >= 1"),
    ((2, 0), {}, "^k must be >= 1"),
    ((2, -3), {}, "^k must be >= 1"),
    ((2, 1.5), {}, "^k must be an integer >= 1"),
    ((2, 2), {"base_case": "pad"}, r"^base_case must be one of \('zeros', 'mask'\)"),
    ((2, None), {"base_case": "pad"}, "^base_case must be one of"),
    ((2, 2), {"scale": -1.0}, "^scale must be a finite number > 0"),
    ((2, 2), {"seed": -1}, "^seed must be >= 0"),
])
def test_constructor_validation(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttentionRNN(*args, **kwargs)


@pytest.mark.parametrize("shape", [(4,), (4, 3), (0, 2), (4, 1, 2)])
def test_forward_rejects_wrong_input_shapes(shape):
    with pytest.raises(ValueError, match=r"^xs must have shape \(T, n\) with n = 2"):
        AttentionRNN(2, 2).forward(np.zeros(shape))


def test_backward_rejects_wrong_upstream_shape():
    model = AttentionRNN(2, 2)
    tr = model.forward(random_inputs(4, 2))
    with pytest.raises(ValueError, match=r"^dl_dh must have shape \(4, 2\)"):
        model.backward(tr, np.zeros((4, 3)))


def test_module_is_numpy_only():
    src = open(attention.__file__).read()
    for heavy in ("torch", "manim", "graphviz", "matplotlib"):
        assert f"import {heavy}" not in src


def test_attention_run_is_the_figures_run():
    from viz.attention import AttentionRNN, attention_run, preset_inputs
    from viz.rnn import last_step_upstream, random_inputs

    run = attention_run(6, 3, None, seed=2, preset="vanish")
    model = AttentionRNN.preset("vanish", n=3, k=None, seed=2)
    trace = model.forward(preset_inputs("vanish", 6, n=3, seed=2))
    np.testing.assert_array_equal(run.trace.h, trace.h)
    np.testing.assert_array_equal(run.grads.delta, model.backward(trace, last_step_upstream(6, 3, seed=2)).delta)
    plain = attention_run(4, 2, 2, seed=1, base_case="mask", scale=2.0, backward=False)
    assert plain.grads is None
    np.testing.assert_array_equal(plain.trace.h, AttentionRNN(2, 2, seed=1, base_case="mask", scale=2.0)
                                  .forward(random_inputs(4, 2, seed=1)).h)
