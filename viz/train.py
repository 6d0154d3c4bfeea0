"""Training RNNs on the temporal-order task: why loss curves spike, and why clipping fixes it.

MATH.md section 5. A sequence of length T holds distractor symbols and two markers, X or Y, one in
the first half and one in the second half; the class is the markers' order (XX, XY, YX, YY). The
model reads the whole sequence and classifies it from its last state:

    logits = W_o h[T] + b_o,   loss = mean over the batch of -log softmax(logits)[class].

At initialisation the logits are about 0, so the loss is about ln 4 ≈ 1.386 and the accuracy is
chance, 25%. Without clipping, a step taken at a cliff of the loss surface (an exploding gradient
norm) throws the network far off and the loss can jump above ln 4 (cross-entropy is unbounded);
gradient-norm clipping caps the step and removes those spikes.

Everything is NumPy, float64, vectorised over the batch. The two cells share one interface: a
constructor `(n, m, seed=0, scale=1.0)`, `forward(xs)` returning a trace whose `h` has h[0] = 0, and
`backward(trace, dl_dh)` (row t-1 of dl_dh is the direct gradient ∂ℓ/∂h[t]) returning the weight
gradients. The vanilla tanh cell is defined here; the gated cell is `viz.rnn.GatedRNN` (MATH.md 3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from viz.rnn import GatedRNN, check_array, check_int, check_positive, check_sequence

CLASSES = ("XX", "XY", "YX", "YY")
LN4 = math.log(4.0)
CHANCE = 1.0 / len(CLASSES)

# Defaults, chosen by a sweep (lr, W_h scale, T, hidden size, batch size, clip) for a run that
# learns, then spikes above ln 4 without clipping, and learns without any spike with clipping:
# plain SGD at lr 0.1 from an orthogonal W_h (spectral radius 1). For seeds 0-7 every unclipped
# run spikes above its initial loss (the peaks reach 1.8-4.9) and no clipped run spikes.
T_DEFAULT = 10
N_DISTRACTORS = 4
HIDDEN = 32
BATCH_SIZE = 128
SCALE = 1.0
LR = 0.1
OPTIMIZER = "sgd"
STEPS = 400
CLIP = 1.0
SPIKE_JUMP = 0.5      # nats above the running minimum that make a step part of a spike


# --------------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """One batch of the temporal-order task.

    xs        (T, B, n) one-hot inputs, n = n_distractors + 2 (X is symbol n-2, Y is symbol n-1)
    symbols   (T, B)    the symbol index at every position
    labels    (B,)      class index into CLASSES: 2·[first marker is Y] + [second marker is Y]
    positions (B, 2)    0-based positions of the first and second marker
    """
    xs: np.ndarray
    symbols: np.ndarray
    labels: np.ndarray
    positions: np.ndarray


@dataclass(frozen=True)
class TemporalOrderTask:
    """Sequences of length T over n_distractors distractor symbols plus the markers X and Y.

    The first marker sits uniformly in positions [0, T//2), the second in [T//2, T); every other
    position holds a uniformly drawn distractor. Classes are balanced: a batch of B sequences holds
    each class B//4 times (the B % 4 left over are drawn at random), in a random order.
    `make_batch(B, step)` is a pure function of (seed, step), so a training run can be replayed and
    any step's batch rebuilt (PyTorch comparisons use this).
    """
    T: int = T_DEFAULT
    n_distractors: int = N_DISTRACTORS
    seed: int = 0

    def __post_init__(self):
        check_int("T", self.T, 2)
        check_int("n_distractors", self.n_distractors, 1)
        check_int("seed", self.seed, 0)

    @property
    def n_symbols(self) -> int:
        return self.n_distractors + 2

    @property
    def X(self) -> int:
        return self.n_distractors

    @property
    def Y(self) -> int:
        return self.n_distractors + 1

    def make_batch(self, batch_size: int, step: int = 0) -> Batch:
        batch_size = check_int("batch_size", batch_size, 1)
        step = check_int("step", step, 0)
        rng = np.random.default_rng([self.seed, step])
        T, B = self.T, batch_size
        labels = np.concatenate([np.arange(B - B % 4) % 4, rng.integers(0, 4, B % 4)])
        labels = rng.permutation(labels)
        half = T // 2
        first = rng.integers(0, half, B)
        second = rng.integers(half, T, B)
        symbols = rng.integers(0, self.n_distractors, (T, B))
        cols = np.arange(B)
        symbols[first, cols] = self.X + labels // 2    # X or Y
        symbols[second, cols] = self.X + labels % 2
        xs = np.zeros((T, B, self.n_symbols))
        xs[np.arange(T)[:, None], cols[None, :], symbols] = 1.0
        return Batch(xs=xs, symbols=symbols, labels=labels,
                     positions=np.stack([first, second], axis=1))


def make_batch(batch_size: int, T: int = T_DEFAULT, n_distractors: int = N_DISTRACTORS,
               seed: int = 0, step: int = 0) -> Batch:
    """Shortcut for TemporalOrderTask(T, n_distractors, seed).make_batch(batch_size, step)."""
    return TemporalOrderTask(T=T, n_distractors=n_distractors, seed=seed).make_batch(batch_size, step)


# --------------------------------------------------------------------------------------------------
# The vanilla tanh RNN (the gated one is viz.rnn.GatedRNN)
# --------------------------------------------------------------------------------------------------

def vanilla_step(W_x, W_h, b, x, h_prev):
    """Forward, one step t: h[t] = tanh(W_x x[t] + W_h h[t-1] + b). Vectors are rows: x (n,) or
    (B, n), h_prev (m,) or (B, m)."""
    return np.tanh(x @ W_x.T + h_prev @ W_h.T + b)


def vanilla_step_backward(W_h, x, h_prev, h, dh):
    """Backward of `vanilla_step`: dh = δ[t] (total dℓ/dh[t]) -> (dℓ/dh[t-1] through this step,
    dW_x, dW_h, db of this step, summed over the batch).

        g = (1 - h[t]²) ⊙ δ[t]               (tanh' = 1 - tanh²)
        dh[t-1] = W_hᵀ g = J[t]ᵀ δ[t]        (J[t] = diag(1 - h[t]²) W_h)
        dW_x = g x[t]ᵀ,  dW_h = g h[t-1]ᵀ,  db = g
    """
    g = (1.0 - h * h) * dh
    g2 = g.reshape(-1, g.shape[-1])
    return (g @ W_h, g2.T @ x.reshape(g2.shape[0], -1), g2.T @ h_prev.reshape(g2.shape),
            g2.sum(axis=0))


@dataclass
class VanillaTrace:
    """Forward intermediates: xs (T, [B,] n) and h (T+1, [B,] m); h[t] is the course's h[t], h[0] = 0."""
    xs: np.ndarray
    h: np.ndarray


@dataclass
class VanillaGrads:
    """delta (T, [B,] m): row t-1 = δ[t], the total dℓ/dh[t]; weight gradients summed over time
    and batch."""
    delta: np.ndarray
    dW_x: np.ndarray
    dW_h: np.ndarray
    db: np.ndarray


class VanillaRNN:
    """h[t] = tanh(W_x x[t] + W_h h[t-1] + b),  h[0] = 0.

    Initialisation (seeded): W_x ~ N(0, 1/n), W_h = scale · (a random orthogonal matrix), b = 0.
    `scale` is the spectral radius of W_h: above 1 the one-step Jacobian
    J[t] = diag(1 - h[t]²) W_h can expand. At scale 1 nothing explodes at initialisation; training
    grows W_h until some inputs sit on a cliff, which is what the default run shows.
    """

    def __init__(self, n: int, m: int, seed: int = 0, scale: float = 1.0):
        self.n = check_int("n", n, 1)
        self.m = check_int("m", m, 1)
        scale = check_positive("scale", scale)
        rng = np.random.default_rng(check_int("seed", seed, 0))
        self.W_x = rng.normal(0.0, 1.0 / math.sqrt(n), (m, n))
        q, r = np.linalg.qr(rng.normal(size=(m, m)))
        self.W_h = scale * q * np.sign(np.diag(r))      # sign fix: Haar-distributed orthogonal
        self.b = np.zeros(m)

    def forward(self, xs) -> VanillaTrace:
        """Run the recursion over xs (T, n) or (T, B, n) from h[0] = 0."""
        xs = check_sequence("xs", xs, self.n, allow_batch=True)
        T = xs.shape[0]
        h = np.zeros((T + 1,) + xs.shape[1:-1] + (self.m,))
        for t in range(1, T + 1):
            h[t] = vanilla_step(self.W_x, self.W_h, self.b, xs[t - 1], h[t - 1])
        return VanillaTrace(xs=xs, h=h)

    def backward(self, trace: VanillaTrace, dl_dh) -> VanillaGrads:
        """BPTT from the direct gradients p[t] = ∂ℓ/∂h[t] (dl_dh, row t-1 = step t):

            δ[T] = p[T],  δ[t] = p[t] + J[t+1]ᵀ δ[t+1],  J[t] = diag(1 - h[t]²) W_h
            ∂ℓ/∂W_x = Σ_t g[t] x[t]ᵀ,  ∂ℓ/∂W_h = Σ_t g[t] h[t-1]ᵀ,  ∂ℓ/∂b = Σ_t g[t],
            g[t] = (1 - h[t]²) ⊙ δ[t]
        """
        xs, h = trace.xs, trace.h
        dl_dh = check_array("dl_dh", dl_dh, h[1:].shape)
        delta = np.zeros_like(dl_dh)
        dW_x = np.zeros_like(self.W_x)
        dW_h = np.zeros_like(self.W_h)
        db = np.zeros_like(self.b)
        carry = np.zeros_like(h[0])                      # J[t+1]ᵀ δ[t+1]; nothing past step T
        for t in range(xs.shape[0], 0, -1):
            delta[t - 1] = dl_dh[t - 1] + carry
            carry, gW_x, gW_h, gb = vanilla_step_backward(self.W_h, xs[t - 1], h[t - 1], h[t],
                                                          delta[t - 1])
            dW_x += gW_x
            dW_h += gW_h
            db += gb
        return VanillaGrads(delta=delta, dW_x=dW_x, dW_h=dW_h, db=db)


def _make_cell(model: str, n: int, m: int, seed: int, scale: float):
    if model == "vanilla":
        return VanillaRNN(n, m, seed=seed, scale=scale)
    return GatedRNN(n, m, seed=seed, scale=scale)


def _cell_grads(model: str, grads) -> dict:
    if model == "vanilla":
        return {"W_x": grads.dW_x, "W_h": grads.dW_h, "b": grads.db}
    return {"W_c": grads.dW_c, "W_h": grads.dW_h, "W_x": grads.dW_x}


CELL_PARAMS = {"vanilla": ("W_x", "W_h", "b"), "gated": ("W_c", "W_h", "W_x")}
MODELS = tuple(CELL_PARAMS)
OPTIMIZERS = ("sgd", "adam")


# --------------------------------------------------------------------------------------------------
# The classifier: cell + linear read-out of h[T] + softmax cross-entropy
# --------------------------------------------------------------------------------------------------

@dataclass
class Evaluation:
    """loss (mean cross-entropy), accuracy, logits (B, 4), and the gradient of the loss per parameter."""
    loss: float
    accuracy: float
    logits: np.ndarray
    grads: dict


class SequenceClassifier:
    """A recurrent cell read out linearly from its last state: logits = W_o h[T] + b_o.

    W_o ~ N(0, readout_std²) with a small std and b_o = 0, so the initial logits are near 0 and the
    initial loss near ln 4. `params` maps names to the live arrays (cell weights, then W_o, b_o);
    optimisers update them in place.
    """

    def __init__(self, model: str, n: int, m: int, n_classes: int = 4, seed: int = 0,
                 scale: float = 1.0, readout_std: float = 0.01):
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)} (got {model!r})")
        self.model = model
        self.cell = _make_cell(model, n, m, seed, scale)
        rng = np.random.default_rng([check_int("seed", seed, 0), 1])
        self.W_o = rng.normal(0.0, check_positive("readout_std", readout_std),
                              (n_classes, m))
        self.b_o = np.zeros(n_classes)

    @property
    def params(self) -> dict:
        p = {name: getattr(self.cell, name) for name in CELL_PARAMS[self.model]}
        p["W_o"] = self.W_o
        p["b_o"] = self.b_o
        return p

    def logits(self, xs: np.ndarray) -> np.ndarray:
        return self.cell.forward(xs).h[-1] @ self.W_o.T + self.b_o

    def evaluate(self, xs: np.ndarray, labels: np.ndarray) -> Evaluation:
        """Loss, accuracy and gradients on one batch xs (T, B, n), labels (B,).

            loss = -(1/B) Σ_b log softmax(logits_b)[y_b],  ∂loss/∂logits = (softmax - onehot(y)) / B
            ∂loss/∂W_o = Σ_b d_b h_b[T]ᵀ,  ∂loss/∂b_o = Σ_b d_b,  p[T] = W_oᵀ d  (p[t] = 0 for t < T)
        """
        trace = self.cell.forward(xs)
        if trace.h.ndim != 3:
            raise ValueError(f"xs must have shape (T, B, n) (got {np.shape(xs)})")
        labels = np.asarray(labels)
        if labels.shape != trace.h.shape[1:2] or not np.issubdtype(labels.dtype, np.integer) \
                or labels.min() < 0 or labels.max() >= len(self.b_o):
            raise ValueError(f"labels must be {trace.h.shape[1]} integers in 0..{len(self.b_o) - 1}"
                             f" (got shape {labels.shape}, dtype {labels.dtype})")
        hT = trace.h[-1]                                      # (B, m)
        logits = hT @ self.W_o.T + self.b_o                   # (B, K)
        B = logits.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)  # log-sum-exp without overflow
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(B)
        loss = float(-log_p[rows, labels].mean())
        accuracy = float((logits.argmax(axis=1) == labels).mean())
        d_logits = np.exp(log_p)
        d_logits[rows, labels] -= 1.0
        d_logits /= B
        grads_o = {"W_o": d_logits.T @ hT, "b_o": d_logits.sum(axis=0)}
        dl_dh = np.zeros((trace.h.shape[0] - 1,) + hT.shape)
        dl_dh[-1] = d_logits @ self.W_o                       # only h[T] feeds the loss directly
        grads = _cell_grads(self.model, self.cell.backward(trace, dl_dh))
        grads.update(grads_o)
        return Evaluation(loss=loss, accuracy=accuracy, logits=logits, grads=grads)


def global_norm(grads: dict) -> float:
    """sqrt(Σ over all parameters of the squared gradient entries): the norm clipping acts on."""
    return math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))


def clip_by_global_norm(grads: dict, clip: float | None) -> tuple[dict, float]:
    """Scale all gradients by min(1, clip / ||g||): afterwards ||g|| <= clip. Returns (grads, norm before)."""
    norm = global_norm(grads)
    if clip is None or norm <= clip:
        return grads, norm
    factor = clip / norm
    return {k: g * factor for k, g in grads.items()}, norm


# --------------------------------------------------------------------------------------------------
# Optimisers (PyTorch's update rules, so a torch.optim step on the same gradients gives the same weights)
# --------------------------------------------------------------------------------------------------

class SGD:
    """θ ← θ - lr · g."""

    def __init__(self, params: dict, lr: float):
        self.params, self.lr = params, lr

    def step(self, grads: dict) -> float:
        """Update in place; return the norm of the applied step ||Δθ||."""
        sq = 0.0
        for name, p in self.params.items():
            d = -self.lr * grads[name]
            p += d
            sq += float(np.sum(d * d))
        return math.sqrt(sq)


class Adam:
    """torch.optim.Adam: m ← β1 m + (1-β1) g, v ← β2 v + (1-β2) g²,
    θ ← θ - (lr / (1-β1^k)) · m / (sqrt(v) / sqrt(1-β2^k) + eps)."""

    def __init__(self, params: dict, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.k = 0

    def step(self, grads: dict) -> float:
        b1, b2 = self.betas
        self.k += 1
        bc1, bc2 = 1.0 - b1 ** self.k, 1.0 - b2 ** self.k
        sq = 0.0
        for name, p in self.params.items():
            g = grads[name]
            self.m[name] = b1 * self.m[name] + (1.0 - b1) * g
            self.v[name] = b2 * self.v[name] + (1.0 - b2) * g * g
            denom = np.sqrt(self.v[name]) / math.sqrt(bc2) + self.eps
            d = -(self.lr / bc1) * self.m[name] / denom
            p += d
            sq += float(np.sum(d * d))
        return math.sqrt(sq)


def make_optimizer(name: str, params: dict, lr: float):
    if name == "sgd":
        return SGD(params, lr)
    if name == "adam":
        return Adam(params, lr)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {name!r})")


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spike:
    """A loss spike (steps 0-based).

    step        where the excursion peaks; loss is the loss there
    cause_step  the step with the largest gradient norm among the updates that carried the loss from
                its last normal value to the peak (steps start-1 .. step-1); grad_norm is that norm
    start       the first step of the excursion
    above_initial  whether the peak exceeds the run's initial loss (loss[0])
    """
    step: int
    loss: float
    grad_norm: float
    cause_step: int
    start: int
    above_initial: bool


@dataclass
class TrainingRun:
    """Per-step records of one training run; step k holds the batch-k values at the weights
    before update k (so loss[0] is the fresh model's loss).

    loss, accuracy  the training batch's mean cross-entropy and accuracy
    grad_norm       the global gradient norm before clipping (what explodes)
    step_norm       the norm of the update actually applied, ||Δθ|| (what clipping bounds:
                    for SGD ||Δθ|| = lr · min(||g||, clip))
    clipped         whether clipping scaled the gradient at that step
    diverged_at     the first step whose loss or gradient was not finite (training stopped there;
                    later entries are NaN), or None
    params          the weights after the last update (copies), by name
    """
    config: dict
    loss: np.ndarray
    accuracy: np.ndarray
    grad_norm: np.ndarray
    step_norm: np.ndarray
    clipped: np.ndarray
    diverged_at: int | None = None
    params: dict | None = None

    @property
    def steps(self) -> int:
        return len(self.loss)

    @property
    def initial_loss(self) -> float:
        return float(self.loss[0])

    def spikes(self, jump: float = SPIKE_JUMP) -> list[Spike]:
        """Loss spikes, one per excursion, at the excursion's peak.

        Rule: step k is in a spike when its loss is more than `jump` nats above the lowest loss
        seen before it (the running minimum of loss[0..k-1]). Consecutive such steps form one
        excursion; its spike is reported at the highest loss, with the largest gradient norm
        among the updates that led up to it (the update of step k changes the loss of step k+1).
        The batch noise of the default runs stays well below `jump`. Steps from a divergence on
        are not considered.
        """
        jump = check_positive("jump", jump)
        end = self.steps if self.diverged_at is None else self.diverged_at
        loss = self.loss[:end]
        if len(loss) < 2:
            return []
        running_min = np.minimum.accumulate(loss)
        above = np.zeros(len(loss), dtype=bool)
        above[1:] = loss[1:] > running_min[:-1] + jump
        out = []
        k = 1
        while k < len(loss):
            if not above[k]:
                k += 1
                continue
            start = k
            while k < len(loss) and above[k]:
                k += 1
            peak = start + int(np.argmax(loss[start:k]))
            # the updates of steps start-1 .. peak-1 produced the losses start .. peak
            cause = start - 1 + int(np.argmax(self.grad_norm[start - 1:peak]))
            out.append(Spike(step=peak, loss=float(loss[peak]),
                             grad_norm=float(self.grad_norm[cause]), cause_step=cause,
                             start=start, above_initial=bool(loss[peak] > loss[0])))
        return out

    def first_spike(self, jump: float = SPIKE_JUMP) -> Spike | None:
        """The first spike that rises above the initial loss, else the first spike, else None."""
        spikes = self.spikes(jump)
        above = [s for s in spikes if s.above_initial]
        return (above or spikes or [None])[0]


MAX_LABELLED_SPIKES = 3      # the figures label at most this many spikes (more labels would overlap)


def labelled_spikes(run: TrainingRun, limit: int = MAX_LABELLED_SPIKES, jump: float = SPIKE_JUMP) -> list[Spike]:
    """The spikes the figures label, plot and animation alike: the first spike above the initial loss
    (`TrainingRun.first_spike`), then the highest of the others, at most `limit` in all (that order).
    Every spike of `run.spikes()` is a spike by the one rule; these are the ones worth a label."""
    limit = check_int("limit", limit, 1)
    spikes = run.spikes(jump)
    first = run.first_spike(jump)
    return ([first] if first else []) + sorted((s for s in spikes if s != first), key=lambda s: -s.loss)[:limit - 1]


DEFAULTS = dict(model="vanilla", steps=STEPS, clip=None, seed=0, lr=LR, optimizer=OPTIMIZER,
                T=T_DEFAULT, n_distractors=N_DISTRACTORS, hidden=HIDDEN, batch_size=BATCH_SIZE,
                scale=SCALE)


def train(model: str = "vanilla", steps: int = STEPS, clip: float | None = None, seed: int = 0,
          lr: float = LR, optimizer: str = OPTIMIZER, T: int = T_DEFAULT,
          n_distractors: int = N_DISTRACTORS, hidden: int = HIDDEN, batch_size: int = BATCH_SIZE,
          scale: float = SCALE) -> TrainingRun:
    """Train `model` on TemporalOrderTask(T, n_distractors, seed) and record every step.

    Step k draws batch k (a pure function of seed and k), evaluates loss, accuracy and gradients at
    the current weights, clips the gradient to global norm `clip` (None: no clipping), and applies
    one `optimizer` update. The same seed gives the same initial weights and batches with or
    without clipping, so the two runs differ only by the clipping. A run whose loss or gradient
    overflows stops there (`TrainingRun.diverged_at`).

    Defaults (vanilla, seed 0, 400 steps, ~0.4 s; steps 0-based): initial loss 1.385 (ln 4 =
    1.386), accuracy 26%; without clipping the loss falls to 0.03 by step 219, then climbs to 4.76
    at step 232 (gradient norm 11.6 at step 229, against a median of 0.28); with clip = 1 the
    maximum after step 0 is 1.382 and the last 100 steps average 0.023. The gated cell at the same
    settings does not spike (its largest gradient norm is 0.24).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)} (got {model!r})")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {optimizer!r})")
    steps = check_int("steps", steps, 1)
    if clip is not None:
        clip = check_positive("clip", clip)
    lr = check_positive("lr", lr)
    hidden = check_int("hidden", hidden, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    task = TemporalOrderTask(T=T, n_distractors=n_distractors, seed=seed)
    net = SequenceClassifier(model, task.n_symbols, hidden, seed=seed, scale=scale)
    opt = make_optimizer(optimizer, net.params, lr)
    config = dict(model=model, steps=steps, clip=clip, seed=seed, lr=lr, optimizer=optimizer, T=T,
                  n_distractors=n_distractors, hidden=hidden, batch_size=batch_size, scale=scale)
    rec = {k: np.full(steps, np.nan) for k in ("loss", "accuracy", "grad_norm", "step_norm")}
    clipped = np.zeros(steps, dtype=bool)
    diverged_at = None
    for k in range(steps):
        batch = task.make_batch(batch_size, k)
        with np.errstate(over="ignore", invalid="ignore"):   # overflow is detected below
            ev = net.evaluate(batch.xs, batch.labels)
            grads, norm = clip_by_global_norm(ev.grads, clip)
        rec["loss"][k] = ev.loss
        rec["accuracy"][k] = ev.accuracy
        rec["grad_norm"][k] = norm
        if not (math.isfinite(ev.loss) and math.isfinite(norm)):
            diverged_at = k
            break
        clipped[k] = clip is not None and norm > clip
        rec["step_norm"][k] = opt.step(grads)
    return TrainingRun(config=config, clipped=clipped, diverged_at=diverged_at,
                       params={k: p.copy() for k, p in net.params.items()}, **rec)


def clipping_comparison(model: str = "vanilla", clip: float = CLIP, steps: int = STEPS,
                        seed: int = 0, **kwargs) -> tuple[TrainingRun, TrainingRun]:
    """The same training run without and with gradient-norm clipping at `clip` (same seed, weights
    and batches): what the training plot and animation show side by side."""
    if clip is None:
        raise ValueError("clip must be a finite number > 0 (got None)")
    return (train(model=model, steps=steps, clip=None, seed=seed, **kwargs),
            train(model=model, steps=steps, clip=clip, seed=seed, **kwargs))
