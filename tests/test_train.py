"""viz.train: the temporal-order task, the vanilla cell's BPTT, the classifier's gradients, training.

Oracles: central finite differences (tests/oracles.py) and a PyTorch float64 autograd re-implementation
trained on the same batches with torch.optim.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracles import assert_close, central_diff, torch_or_skip, torch_rnn_last_state
from viz import train as tr

# ---------------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(T=st.integers(2, 30), n_distractors=st.integers(1, 6), B=st.integers(1, 50),
       seed=st.integers(0, 2**31), step=st.integers(0, 1000))
def test_batch_is_one_hot_with_two_markers_in_order(T, n_distractors, B, seed, step):
    task = tr.TemporalOrderTask(T=T, n_distractors=n_distractors, seed=seed)
    batch = task.make_batch(B, step)
    n = n_distractors + 2
    assert batch.xs.shape == (T, B, n)
    assert batch.symbols.shape == (T, B) and batch.labels.shape == (B,)
    assert np.all(batch.xs.sum(axis=2) == 1.0)
    assert np.array_equal(batch.xs.argmax(axis=2), batch.symbols)
    is_marker = batch.symbols >= task.X
    assert np.all(is_marker.sum(axis=0) == 2)
    first, second = batch.positions.T
    assert np.all(first < T // 2) and np.all(second >= T // 2) and np.all(second < T)
    assert np.array_equal(np.argmax(is_marker, axis=0), first)
    cols = np.arange(B)
    # class = 2·[first is Y] + [second is Y], i.e. the order XX, XY, YX, YY of CLASSES
    decoded = 2 * (batch.symbols[first, cols] == task.Y) + (batch.symbols[second, cols] == task.Y)
    assert np.array_equal(decoded, batch.labels)
    counts = np.bincount(batch.labels, minlength=4)
    assert np.all(counts >= B // 4) and counts.sum() == B


def test_batch_is_balanced_and_reproducible():
    task = tr.TemporalOrderTask(T=12, n_distractors=3, seed=5)
    b = task.make_batch(64, 3)
    assert np.array_equal(np.bincount(b.labels), [16, 16, 16, 16])
    again = tr.TemporalOrderTask(T=12, n_distractors=3, seed=5).make_batch(64, 3)
    assert np.array_equal(b.xs, again.xs) and np.array_equal(b.labels, again.labels)
    assert not np.array_equal(task.make_batch(64, 4).symbols, b.symbols)
    assert not np.array_equal(tr.TemporalOrderTask(T=12, n_distractors=3, seed=6)
                              .make_batch(64, 3).symbols, b.symbols)
    # markers land everywhere they may (not always at one position), distractors are all used
    big = task.make_batch(2000, 0)
    assert set(np.unique(big.positions[:, 0])) == set(range(6))
    assert set(np.unique(big.positions[:, 1])) == set(range(6, 12))
    assert set(np.unique(big.symbols)) == set(range(5))
    assert tr.CLASSES == ("XX", "XY", "YX", "YY")


@pytest.mark.parametrize("kwargs, name", [
    (dict(T=1), "T"), (dict(n_distractors=0), "n_distractors"), (dict(seed=-1), "seed"),
    (dict(T=2.5), "T"),
])
def test_task_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tr.TemporalOrderTask(**kwargs)


def test_make_batch_validation():
    task = tr.TemporalOrderTask()
    with pytest.raises(ValueError, match="batch_size"):
        task.make_batch(0)
    with pytest.raises(ValueError, match="step"):
        task.make_batch(4, -1)


# ---------------------------------------------------------------------------------------------------
# The vanilla tanh cell: BPTT against finite differences and a naive loop
# ---------------------------------------------------------------------------------------------------

def _vanilla_loss_fn(cell, xs, P, name):
    """ℓ = Σ_t <P[t-1], h[t]> as a function of one weight (the weight array is perturbed in place)."""
    def f(_):
        return float(np.sum(P * cell.forward(xs).h[1:]))
    return f


@settings(max_examples=15)
@given(T=st.integers(1, 6), n=st.integers(1, 4), m=st.integers(1, 4),
       B=st.one_of(st.none(), st.integers(1, 3)), seed=st.integers(0, 1000))
def test_vanilla_bptt_matches_finite_differences(T, n, m, B, seed):
    rng = np.random.default_rng(seed)
    cell = tr.VanillaRNN(n, m, seed=seed, scale=1.3)
    cell.b = rng.normal(size=m)
    shape = (T, n) if B is None else (T, B, n)
    xs = rng.normal(size=shape)
    trace = cell.forward(xs)
    assert trace.h.shape == (T + 1,) + shape[1:-1] + (m,)
    assert np.all(trace.h[0] == 0)
    P = rng.normal(size=trace.h[1:].shape)               # direct gradients at every step
    grads = cell.backward(trace, P)
    for name, g in (("W_x", grads.dW_x), ("W_h", grads.dW_h), ("b", grads.db)):
        fd = central_diff(_vanilla_loss_fn(cell, xs, P, name), getattr(cell, name))
        assert_close(g, fd, rtol=1e-6, atol=1e-8, what=name)
    # δ[t] is the total gradient ∂ℓ/∂h[t]: perturb h[t] inside the recursion
    for t in range(1, T + 1):
        def f_ht(v, t=t):
            h = np.zeros_like(trace.h)
            total = 0.0
            for s in range(1, T + 1):
                h[s] = v if s == t else tr.vanilla_step(cell.W_x, cell.W_h, cell.b, xs[s - 1], h[s - 1])
                total += float(np.sum(P[s - 1] * h[s]))
            return total
        assert_close(grads.delta[t - 1], central_diff(f_ht, trace.h[t].copy()), rtol=1e-6,
                     atol=1e-8, what=f"delta[{t}]")


def test_vanilla_batched_equals_sum_of_single_sequences():
    rng = np.random.default_rng(1)
    cell = tr.VanillaRNN(3, 4, seed=2, scale=1.2)
    xs = rng.normal(size=(5, 6, 3))
    P = rng.normal(size=(5, 6, 4))
    g = cell.backward(cell.forward(xs), P)
    singles = [cell.backward(cell.forward(xs[:, b]), P[:, b]) for b in range(6)]
    assert_close(g.dW_h, sum(s.dW_h for s in singles), what="dW_h")
    assert_close(g.dW_x, sum(s.dW_x for s in singles), what="dW_x")
    assert_close(g.db, sum(s.db for s in singles), what="db")
    assert_close(g.delta, np.stack([s.delta for s in singles], axis=1), what="delta")


def test_truncated_bptt_is_detected():
    """The wrong variant (weight gradients from the direct p[t] instead of the totals δ[t], i.e.
    no gradient through time) differs from finite differences: the check above can fail."""
    rng = np.random.default_rng(0)
    cell = tr.VanillaRNN(2, 3, seed=0, scale=1.5)
    xs = rng.normal(size=(6, 2))
    trace = cell.forward(xs)
    P = np.zeros((6, 3))
    P[-1] = rng.normal(size=3)
    wrong = sum(np.outer((1 - trace.h[t] ** 2) * P[t - 1], trace.h[t - 1]) for t in range(1, 7))
    fd = central_diff(_vanilla_loss_fn(cell, xs, P, "W_h"), cell.W_h)
    assert_close(cell.backward(trace, P).dW_h, fd, rtol=1e-6, atol=1e-8)
    assert np.abs(wrong - fd).max() > 1e-2


def test_vanilla_validation():
    with pytest.raises(ValueError, match="scale"):
        tr.VanillaRNN(2, 3, scale=0.0)
    with pytest.raises(ValueError, match="m "):
        tr.VanillaRNN(2, 0)
    cell = tr.VanillaRNN(2, 3)
    with pytest.raises(ValueError, match="xs"):
        cell.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="dl_dh"):
        cell.backward(cell.forward(np.zeros((4, 2))), np.zeros((5, 3)))


# ---------------------------------------------------------------------------------------------------
# The classifier (cell + read-out + softmax cross-entropy): gradients of the mean loss
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", tr.MODELS)
def test_classifier_gradients_match_finite_differences(model):
    task = tr.TemporalOrderTask(T=6, n_distractors=2, seed=3)
    batch = task.make_batch(8, 0)
    net = tr.SequenceClassifier(model, task.n_symbols, 5, seed=4, scale=1.2, readout_std=0.5)
    if model == "vanilla":
        net.cell.b[:] = np.random.default_rng(0).normal(size=5)
    net.b_o[:] = [0.1, -0.2, 0.3, 0.0]
    ev = net.evaluate(batch.xs, batch.labels)
    assert set(ev.grads) == set(net.params) == set(tr.CELL_PARAMS[model]) | {"W_o", "b_o"}
    for name, p in net.params.items():
        fd = central_diff(lambda _: net.evaluate(batch.xs, batch.labels).loss, p)
        assert_close(ev.grads[name], fd, rtol=1e-6, atol=1e-9, what=name)
    # loss and accuracy against a per-sample loop
    logits = net.logits(batch.xs)
    naive = np.mean([math.log(np.exp(z).sum()) - z[y] for z, y in zip(logits, batch.labels)])
    assert ev.loss == pytest.approx(naive, rel=1e-12)
    assert ev.accuracy == np.mean([np.argmax(z) == y for z, y in zip(logits, batch.labels)])


def test_classifier_validation():
    with pytest.raises(ValueError, match="model"):
        tr.SequenceClassifier("lstm", 3, 4)
    net = tr.SequenceClassifier("vanilla", 6, 4)
    xs = tr.make_batch(4, T=5).xs
    with pytest.raises(ValueError, match="labels"):
        net.evaluate(xs, np.array([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="labels"):
        net.evaluate(xs, np.array([0, 1, 2]))


def test_clip_by_global_norm():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert tr.global_norm(g) == 5.0
    clipped, norm = tr.clip_by_global_norm(g, 1.0)
    assert norm == 5.0 and tr.global_norm(clipped) == pytest.approx(1.0, rel=1e-15)
    assert_close(clipped["a"], [0.6, 0.0])
    same, _ = tr.clip_by_global_norm(g, 10.0)
    assert same is g
    assert tr.clip_by_global_norm(g, None)[0] is g


# ---------------------------------------------------------------------------------------------------
# Against PyTorch: the same model, batches, clipping and optimiser give the same training
# ---------------------------------------------------------------------------------------------------

def _torch_train(torch, model, config, steps):
    """Re-implementation with torch autograd in float64: returns (losses, final params)."""
    task = tr.TemporalOrderTask(T=config["T"], n_distractors=config["n_distractors"],
                                seed=config["seed"])
    net = tr.SequenceClassifier(model, task.n_symbols, config["hidden"], seed=config["seed"],
                                scale=config["scale"])
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in net.params.items()}
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[config["optimizer"]]
    opt = opt_cls(list(params.values()), lr=config["lr"])
    losses = []
    for k in range(steps):
        batch = task.make_batch(config["batch_size"], k)
        h = torch_rnn_last_state(torch, model, params, torch.tensor(batch.xs), config["hidden"], torch.float64)
        logits = h @ params["W_o"].T + params["b_o"]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(batch.labels))
        opt.zero_grad()
        loss.backward()
        if config["clip"] is not None:
            norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params.values()))
            if norm > config["clip"]:
                for p in params.values():
                    p.grad *= config["clip"] / norm
        opt.step()
        losses.append(loss.item())
    return np.array(losses), {k: v.detach().numpy() for k, v in params.items()}


@pytest.mark.parametrize("model, optimizer, clip", [
    ("vanilla", "sgd", None), ("vanilla", "sgd", 0.05), ("vanilla", "adam", None),
    ("gated", "sgd", 0.05), ("gated", "adam", None),
])
def test_training_matches_pytorch(model, optimizer, clip):
    torch = torch_or_skip()
    steps = 4
    run = tr.train(model=model, steps=steps, clip=clip, seed=2, lr=0.3 if optimizer == "sgd" else 0.01,
                   optimizer=optimizer, T=7, n_distractors=3, hidden=6, batch_size=16, scale=1.4)
    losses, params = _torch_train(torch, model, run.config, steps)
    assert_close(run.loss, losses, rtol=0, atol=1e-10, what="loss per step")
    for name, p in params.items():
        assert_close(run.params[name], p, rtol=0, atol=1e-10, what=name)
    if clip is not None:
        assert run.clipped.any(), "clipping must have acted for the test to mean something"
    # and the comparison can fail: one more step changes the weights by far more than 1e-10
    moved = max(np.abs(run.params[k] - tr.train(**{**run.config, "steps": steps + 1}).params[k]).max()
                for k in params)
    assert moved > 1e-6


# ---------------------------------------------------------------------------------------------------
# The phenomena of MATH.md section 5
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", tr.MODELS)
def test_fresh_model_loss_is_ln4_and_accuracy_is_chance(model):
    """A fresh model's logits are ≈ 0: loss within 0.1 of ln 4 for every seed; the accuracy of the
    argmax of near-equal logits is chance on average over initialisations (one model's argmax can
    correlate with the last marker, so single seeds scatter)."""
    task = tr.TemporalOrderTask(T=tr.T_DEFAULT, n_distractors=tr.N_DISTRACTORS, seed=11)
    batch = task.make_batch(1024, 0)
    rows = np.arange(1024)
    losses, accs = [], []
    for seed in range(20):
        net = tr.SequenceClassifier(model, task.n_symbols, tr.HIDDEN, seed=seed, scale=tr.SCALE)
        z = net.logits(batch.xs)                          # (evaluate's loss is checked above)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        losses.append(-log_p[rows, batch.labels].mean())
        accs.append(np.mean(z.argmax(axis=1) == batch.labels))
    assert np.all(np.abs(np.array(losses) - tr.LN4) < 0.1)
    assert np.all(np.abs(np.array(losses) - tr.LN4) < 0.01)      # in fact much closer
    # 20 x 1024 predictions; the standard error of the mean over models is ≈ 0.02 at worst
    assert abs(np.mean(accs) - 0.25) < 0.05
    assert 0.1 < min(accs) and max(accs) < 0.5


@pytest.fixture(scope="module")
def default_runs():
    return tr.train(), tr.train(clip=tr.CLIP)


def test_default_run_without_clipping_spikes_above_initial_loss(default_runs):
    run, _ = default_runs
    assert run.config == {**tr.DEFAULTS, "clip": None}
    assert abs(run.initial_loss - tr.LN4) < 0.1
    assert abs(run.accuracy[0] - 0.25) < 0.1
    assert run.diverged_at is None
    above = [s for s in run.spikes() if s.above_initial]
    assert above, "the unclipped default run must spike above its initial loss"
    first = run.first_spike()
    assert first == above[0]
    assert first.loss > run.initial_loss + 1.0                 # far above: a real spike
    assert run.loss[:first.start].min() < 0.5                  # after the network had learned
    # the spike's gradient norm is the exploding one: far above the typical norm, and above clip
    assert first.grad_norm > 10 * np.median(run.grad_norm)
    assert first.grad_norm > tr.CLIP
    assert run.grad_norm[first.cause_step] == first.grad_norm
    assert first.start - 1 <= first.cause_step < first.step


def test_default_run_with_clipping_does_not_spike(default_runs):
    unclipped, run = default_runs
    assert run.loss[0] == unclipped.loss[0]                     # same start, only clipping differs
    assert run.spikes() == []
    assert run.loss[1:].max() <= run.initial_loss
    assert run.loss[-100:].mean() < 0.05                       # and it learns the task
    assert run.clipped.any()
    # the applied step is bounded by the clip value: ||Δθ|| = lr · min(||g||, clip) <= lr · clip
    lr, clip = run.config["lr"], run.config["clip"]
    assert run.step_norm.max() <= lr * clip * (1 + 1e-12)
    assert_close(run.step_norm, lr * np.minimum(run.grad_norm, clip), rtol=1e-12, atol=0)
    assert unclipped.step_norm.max() > 5 * lr * clip           # without it, steps are far larger


# ---------------------------------------------------------------------------------------------------
# The spike rule on hand-made curves
# ---------------------------------------------------------------------------------------------------

def _run_with(loss, grad_norm=None):
    loss = np.asarray(loss, dtype=float)
    g = np.arange(len(loss), dtype=float) if grad_norm is None else np.asarray(grad_norm, float)
    z = np.zeros(len(loss))
    return tr.TrainingRun(config={}, loss=loss, accuracy=z, grad_norm=g, step_norm=z,
                          clipped=z.astype(bool))


def test_spike_rule():
    run = _run_with([1.4, 1.0, 0.5, 0.3, 0.9, 2.0, 1.1, 0.3, 0.2, 0.25, 0.8],
                    [1, 1, 1, 1, 50, 3, 1, 1, 1, 1, 7])
    spikes = run.spikes()
    assert [(s.step, s.start, s.cause_step, s.grad_norm, s.above_initial) for s in spikes] == [
        (5, 4, 4, 50.0, True), (10, 10, 9, 1.0, False)]
    assert run.first_spike() == spikes[0]
    assert _run_with([1.4, 1.3, 1.35, 1.2]).spikes() == []        # noise below the jump
    assert _run_with([1.4, 1.3, 1.35, 1.2]).first_spike() is None
    assert _run_with([1.4]).spikes() == []
    with pytest.raises(ValueError, match="jump"):
        run.spikes(jump=0)
    # a diverged run: steps from the divergence on are ignored
    d = _run_with([1.4, 0.2, 3.0, np.inf, np.nan])
    d.diverged_at = 3
    assert [s.step for s in d.spikes()] == [2]


# ---------------------------------------------------------------------------------------------------
# Validation and divergence
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(model="lstm"), "model"), (dict(steps=0), "steps"), (dict(clip=0.0), "clip"),
    (dict(clip=-1), "clip"), (dict(lr=0), "lr"), (dict(lr=float("nan")), "lr"),
    (dict(optimizer="rmsprop"), "optimizer"), (dict(T=1), "T"), (dict(hidden=0), "hidden"),
    (dict(batch_size=0), "batch_size"), (dict(seed=-2), "seed"), (dict(scale=-1), "scale"),
    (dict(n_distractors=0), "n_distractors"), (dict(steps=2.0), "steps"),
])
def test_train_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tr.train(**{"steps": 2, **kwargs})


def test_divergence_stops_the_run():
    # the gated cell's state is unbounded (the tanh cell's is not): a huge lr overflows it
    run = tr.train(model="gated", steps=30, lr=1e4, scale=3.0, batch_size=8)
    assert run.diverged_at is not None and run.diverged_at < 30
    assert np.all(np.isnan(run.loss[run.diverged_at + 1:]))
    assert np.all(np.isfinite(run.loss[:run.diverged_at]))
