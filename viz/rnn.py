"""The gated RNN of MATH.md section 3: forward trace, backpropagation through time, Jacobians.

    c[t] = σ(W_c x[t] + W_h h[t-1])                      (the gate, in (0,1)^m)
    h[t] = c[t] ⊙ h[t-1] + (1 - c[t]) ⊙ W_x x[t]         (h[t], not z[t] as some sheets print)

with x[t] in R^n, h[t] in R^m, W_c, W_x in R^{m x n}, W_h in R^{m x m} and h[0] = 0.

INDEXING (read this before using a trace)
-----------------------------------------
The course counts time from 1; arrays count from 0. A `GatedTrace` keeps both readable:

* `trace.h` has T+1 rows and `trace.h[t]` IS the course's h[t] for t = 0..T (`trace.h[0]` = 0).
* Every per-step array (`xs`, `z`, `c`, `u`, and `dl_dh`, `delta` in the backward pass) has T rows and
  row t-1 is step t: `trace.c[t-1]` is c[t], `grads.delta[t-1]` is δ[t].

Batches: `xs` may also be (T, B, n); then `h` is (T+1, B, m), per-step arrays are (T, B, m) and the
weight gradients are summed over the batch.

The backward pass is the forward recursion run in reverse through the transposed Jacobians
(δ[T] = p[T], δ[t] = p[t] + J[t+1]^T δ[t+1]), accumulating the weight gradients at every step with
the totals δ[t] (using the partials p[t] there is the common mistake the tests show is wrong).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GatedRNN", "GatedTrace", "GatedGrads", "sigmoid", "gated_step", "gated_step_backward",
    "jacobian", "jacobian_product", "jacobian_bound", "random_inputs", "preset_inputs",
    "last_step_upstream", "PRESETS", "edge_gains", "WEIGHT_NAMES",
]

PRESETS = ("vanish", "survive", "explode")
WEIGHT_NAMES = ("W_c", "W_h", "W_x")     # the names a file of the user's weights gives them (viz.rnn_weights)


# --------------------------------------------------------------------------------------------------
# Parameter checks (shared with viz.attention): one line naming the parameter and the allowed range
# --------------------------------------------------------------------------------------------------

def check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum} (got {value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} (got {value})")
    return int(value)


def check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")
    return float(value)


def check_array(name: str, value, shape: tuple) -> np.ndarray:
    """A float64 copy of `value`, which must have exactly `shape`."""
    arr = np.array(value, dtype=np.float64)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (got {arr.shape})")
    return arr


def check_sequence(name: str, xs, n: int, allow_batch: bool) -> np.ndarray:
    """xs as float64 (T, n) or, if allow_batch, (T, B, n), with T >= 1 and B >= 1."""
    arr = np.asarray(xs, dtype=np.float64)
    ok_ndim = arr.ndim == 2 or (allow_batch and arr.ndim == 3)
    wanted = "(T, n) or (T, B, n)" if allow_batch else "(T, n)"
    if not ok_ndim or arr.shape[-1] != n or 0 in arr.shape:
        raise ValueError(f"{name} must have shape {wanted} with n = {n}, T >= 1"
                         + (", B >= 1" if allow_batch else "") + f" (got {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    return arr


# --------------------------------------------------------------------------------------------------
# One step: the forward rule and, next to it, its local backward rule
# --------------------------------------------------------------------------------------------------

def sigmoid(z):
    """σ(z) = 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) for z < 0: the same function, but each
    branch takes e^-|z| <= 1, so nothing overflows (no warning at z = -1000) and tiny values keep
    their relative precision (σ(-700) = 9.86e-305; the form 0.5*(1 + tanh(z/2)) gave exactly 0
    below z = -37 and lost digits from z = -20 on). σ(0) is exactly 1/2."""
    z = np.asarray(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))[()]


def _outer_sum(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Σ over the batch of g x^T: (m,),(n,) -> (m,n) and (B,m),(B,n) -> (m,n)."""
    return g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1])


def gated_step(W_c, W_h, W_x, x, h_prev):
    """Forward, one step t: returns (h[t], z[t], c[t], u[t]).

        z = W_c x[t] + W_h h[t-1],  c = σ(z),  u = W_x x[t],  h[t] = c ⊙ h[t-1] + (1 - c) ⊙ u

    Vectors are rows, so x may be (n,) or (B, n) and h_prev (m,) or (B, m).
    """
    z = x @ W_c.T + h_prev @ W_h.T
    c = sigmoid(z)
    u = x @ W_x.T
    h = c * h_prev + (1.0 - c) * u
    return h, z, c, u


def gated_step_backward(W_c, W_h, W_x, x, h_prev, c, u, dh):
    """Backward of `gated_step`: dh = δ[t] = dℓ/dh[t] (total) -> (dℓ/dh[t-1] through this step,
    dW_c, dW_h, dW_x of this step, dℓ/dx[t]).

        du = (1 - c) ⊙ δ                      (h = ... + (1 - c) ⊙ u)
        dz = δ ⊙ (h[t-1] - u) ⊙ c ⊙ (1 - c)   (h = u + c ⊙ (h[t-1] - u), σ' = c(1 - c))
        dh[t-1] = c ⊙ δ + W_h^T dz = J[t]^T δ
        dW_c = dz x^T,  dW_h = dz h[t-1]^T,  dW_x = du x^T,  dx = W_c^T dz + W_x^T du
    """
    du = (1.0 - c) * dh
    dz = dh * (h_prev - u) * c * (1.0 - c)
    dh_prev = c * dh + dz @ W_h
    dx = dz @ W_c + du @ W_x
    return dh_prev, _outer_sum(dz, x), _outer_sum(dz, h_prev), _outer_sum(du, x), dx


# --------------------------------------------------------------------------------------------------
# Trace and gradients
# --------------------------------------------------------------------------------------------------

@dataclass
class GatedTrace:
    """Everything the forward pass computed. Course index t <-> array index (see module docstring):

    xs   (T, n)   / (T, B, n)    row t-1 = x[t]
    h    (T+1, m) / (T+1, B, m)  row t   = h[t], h[0] = 0
    z    (T, m)   / (T, B, m)    row t-1 = W_c x[t] + W_h h[t-1]  (gate pre-activation)
    c    (T, m)   / (T, B, m)    row t-1 = c[t] = σ(z[t])
    u    (T, m)   / (T, B, m)    row t-1 = u[t] = W_x x[t]
    W_c, W_h, W_x                copies of the weights the trace was computed with
    T, n, m; batch = B or None for an unbatched trace
    """
    xs: np.ndarray
    h: np.ndarray
    z: np.ndarray
    c: np.ndarray
    u: np.ndarray
    W_c: np.ndarray
    W_h: np.ndarray
    W_x: np.ndarray
    T: int
    n: int
    m: int
    batch: int | None = None

    @property
    def batched(self) -> bool:
        return self.batch is not None


@dataclass
class GatedGrads:
    """Result of the backward pass (row t-1 = step t, as in the trace).

    delta        (T, m) / (T, B, m)  totals δ[t] = dℓ/dh[t]
    dW_c, dW_h, dW_x                 dℓ/dW (shapes of the weights; summed over the batch)
    dh0          (m,) / (B, m)       dℓ/dh[0] = J[1]^T δ[1]
    dxs          (T, n) / (T, B, n)  dℓ/dx[t]
    delta_norms  (T,) / (T, B)       ||δ[t]||_2 (per sequence when batched)
    """
    delta: np.ndarray
    dW_c: np.ndarray
    dW_h: np.ndarray
    dW_x: np.ndarray
    dh0: np.ndarray
    dxs: np.ndarray
    delta_norms: np.ndarray


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------

class GatedRNN:
    """Gated RNN with settable weights W_c (m, n), W_h (m, m), W_x (m, n).

    Initialisation (seeded, `np.random.default_rng(seed)`, drawn in the order W_c, W_h, W_x):
    N(0, 1) / sqrt(fan_in) times `scale`; fan_in = n for W_c and W_x, m for W_h. A small scale
    (0.1) makes gradients through time vanish; see also `GatedRNN.preset`.
    """

    PRESETS = PRESETS

    def __init__(self, n: int, m: int, seed: int = 0, scale: float = 1.0):
        self.n = check_int("n", n, 1)
        self.m = check_int("m", m, 1)
        self.seed = check_int("seed", seed, 0)
        self.scale = check_positive("scale", scale)
        rng = np.random.default_rng(self.seed)
        self.W_c = rng.standard_normal((self.m, self.n)) / math.sqrt(self.n) * self.scale
        self.W_h = rng.standard_normal((self.m, self.m)) / math.sqrt(self.m) * self.scale
        self.W_x = rng.standard_normal((self.m, self.n)) / math.sqrt(self.n) * self.scale

    # Weights are validated (shape) and stored as float64 copies whenever they are set.
    @property
    def W_c(self) -> np.ndarray:
        return self._W_c

    @W_c.setter
    def W_c(self, value):
        self._W_c = check_array("W_c", value, (self.m, self.n))

    @property
    def W_h(self) -> np.ndarray:
        return self._W_h

    @W_h.setter
    def W_h(self, value):
        self._W_h = check_array("W_h", value, (self.m, self.m))

    @property
    def W_x(self) -> np.ndarray:
        return self._W_x

    @W_x.setter
    def W_x(self, value):
        self._W_x = check_array("W_x", value, (self.m, self.n))

    def __repr__(self) -> str:
        return f"GatedRNN(n={self.n}, m={self.m}, seed={self.seed}, scale={self.scale})"

    # ---- presets -------------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str, n: int = 3, m: int = 3, seed: int = 0) -> "GatedRNN":
        """Weights that make gradients through time vanish, survive or explode.

        Use them with `preset_inputs(name, T, n, seed)`, the inputs each preset is designed for.

        vanish   all weights x0.1 (`scale=0.1`): z ≈ 0, c ≈ 1/2, W_h small, so J[t] ≈ diag(c) ≈ I/2 and
                 ||∂h[T]/∂h[0]|| decays like 2^-T (T = 50: about 1e-15).
        survive  W_c = 12/n (all entries) with positive inputs (entries in [0.5, 1.5]): z >= 6, so
                 c > 0.997: a leaky integrator, J[t] ≈ I, and ||∂h[T]/∂h[0]|| stays near 1.
        explode  W_c = 0 (so c = σ(W_h h[t-1])), W_h = 5 (I - S) with S the cyclic shift of the m
                 units (||W_h||_2 = 10 for even m), every row of W_x the same positive vector (entries
                 summing to about 1), inputs alternating in sign. All units then carry the same state,
                 so W_h h[t-1] = 0 and c = 1/2 exactly, while u[t] flips sign every step and the gap
                 h[t-1] - u[t] stays near ∓4/3. Along the unit-difference direction (1, -1, ...) J[t]
                 multiplies by 1/2 + (1/4)·10·(h[t-1] - u[t]): alternately about -2.8 and 3.8 (MATH.md's
                 numbers), so ||∂h[30]/∂h[0]|| ~ 1e14. The states stay equal because the computation
                 is bitwise identical for every unit and the dyadic weights and inputs make every sum
                 exact; that keeps the forward pass on the edge where the gradient explodes: perturb
                 one unit's state and the difference grows just as fast (a 'cliff'). Needs m >= 2
                 (one unit has no second direction to explode along).
        """
        if name not in PRESETS:
            raise ValueError(f"name must be one of {PRESETS} (got {name!r})")
        n = check_int("n", n, 1)
        m = check_int("m", m, 1)
        seed = check_int("seed", seed, 0)
        if name == "vanish":
            return cls(n, m, seed=seed, scale=0.1)
        model = cls(n, m, seed=seed, scale=1.0)
        if name == "survive":
            model.W_c = np.full((m, n), 12.0 / n)
            return model
        if m < 2:
            raise ValueError(f"m must be >= 2 for preset 'explode' (got {m}): one unit has no second "
                             "direction for the gradient to explode along")
        shift = np.roll(np.eye(m), 1, axis=1)
        model.W_c = np.zeros((m, n))
        model.W_h = 5.0 * (np.eye(m) - shift)
        row = _dyadic(np.random.default_rng([seed, 7]).uniform(0.75, 1.25, n) / n)
        model.W_x = np.tile(row, (m, 1))
        return model

    # ---- forward and backward --------------------------------------------------------------------

    def forward(self, xs) -> GatedTrace:
        """Run the recursion over xs (T, n) or (T, B, n) from h[0] = 0; see GatedTrace for indexing."""
        xs = check_sequence("xs", xs, self.n, allow_batch=True)
        T = xs.shape[0]
        batch = xs.shape[1] if xs.ndim == 3 else None
        state = xs.shape[1:-1] + (self.m,)
        h = np.zeros((T + 1,) + state)
        z = np.zeros((T,) + state)
        c = np.zeros((T,) + state)
        u = np.zeros((T,) + state)
        for t in range(1, T + 1):
            h[t], z[t - 1], c[t - 1], u[t - 1] = gated_step(self.W_c, self.W_h, self.W_x,
                                                             xs[t - 1], h[t - 1])
        return GatedTrace(xs=xs, h=h, z=z, c=c, u=u, W_c=self.W_c.copy(), W_h=self.W_h.copy(),
                          W_x=self.W_x.copy(), T=T, n=self.n, m=self.m, batch=batch)

    def backward(self, trace: GatedTrace, dl_dh) -> GatedGrads:
        """BPTT from the direct gradients p[t] = ∂ℓ/∂h[t]: dl_dh has the shape of trace.h[1:] and row
        t-1 is step t.

            δ[T] = p[T],  δ[t] = p[t] + J[t+1]^T δ[t+1]
            ∂ℓ/∂W_x = Σ_t ((1 - c[t]) ⊙ δ[t]) x[t]^T
            ∂ℓ/∂W_c = Σ_t (δ[t] ⊙ (h[t-1] - u[t]) ⊙ c[t] ⊙ (1 - c[t])) x[t]^T
            ∂ℓ/∂W_h = Σ_t (δ[t] ⊙ (h[t-1] - u[t]) ⊙ c[t] ⊙ (1 - c[t])) h[t-1]^T

        Uses the weights stored in the trace (those of the forward pass).
        """
        dl_dh = check_array("dl_dh", dl_dh, trace.h[1:].shape)
        delta = np.zeros_like(dl_dh)
        dxs = np.zeros_like(trace.xs)
        dW_c = np.zeros_like(trace.W_c)
        dW_h = np.zeros_like(trace.W_h)
        dW_x = np.zeros_like(trace.W_x)
        carry = np.zeros_like(trace.h[0])         # J[t+1]^T δ[t+1]; nothing past step T
        for t in range(trace.T, 0, -1):
            delta[t - 1] = dl_dh[t - 1] + carry
            carry, gW_c, gW_h, gW_x, dxs[t - 1] = gated_step_backward(
                trace.W_c, trace.W_h, trace.W_x, trace.xs[t - 1], trace.h[t - 1],
                trace.c[t - 1], trace.u[t - 1], delta[t - 1])
            dW_c += gW_c
            dW_h += gW_h
            dW_x += gW_x
        return GatedGrads(delta=delta, dW_c=dW_c, dW_h=dW_h, dW_x=dW_x, dh0=carry, dxs=dxs,
                          delta_norms=np.linalg.norm(delta, axis=-1))

    # Convenience: the module-level Jacobian functions, as methods.
    def jacobian(self, trace: GatedTrace, t: int) -> np.ndarray:
        return jacobian(trace, t)

    def jacobian_product(self, trace: GatedTrace, s: int, t: int) -> np.ndarray:
        return jacobian_product(trace, s, t)

    def jacobian_bound(self, trace: GatedTrace, t: int) -> float:
        return jacobian_bound(trace, t)


def _dyadic(values: np.ndarray, bits: int = 6) -> np.ndarray:
    """Round to multiples of 2^-bits so products and short sums of such numbers are exact."""
    return np.round(np.asarray(values) * 2 ** bits) / 2 ** bits


# --------------------------------------------------------------------------------------------------
# Jacobians through time (unbatched traces)
# --------------------------------------------------------------------------------------------------

def _check_unbatched(trace: GatedTrace) -> None:
    if trace.batched:
        raise ValueError(f"trace must be unbatched for Jacobians (got batch = {trace.batch}); "
                         "run forward on one sequence xs (T, n)")


def _check_step(name: str, t, lo: int, hi: int) -> int:
    if isinstance(t, bool) or not isinstance(t, numbers.Integral):
        raise ValueError(f"{name} must be an integer in {lo}..{hi} (got {t!r})")
    if not lo <= t <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi} (got {t})")
    return int(t)


def jacobian(trace: GatedTrace, t: int) -> np.ndarray:
    """J[t] = ∂h[t]/∂h[t-1] = diag(c[t]) + diag(c[t] ⊙ (1 - c[t]) ⊙ (h[t-1] - u[t])) W_h (t = 1..T)."""
    _check_unbatched(trace)
    t = _check_step("t", t, 1, trace.T)
    c, u, h_prev = trace.c[t - 1], trace.u[t - 1], trace.h[t - 1]
    return np.diag(c) + (c * (1.0 - c) * (h_prev - u))[:, None] * trace.W_h


def jacobian_product(trace: GatedTrace, s: int, t: int) -> np.ndarray:
    """∂h[s]/∂h[t] = J[s] J[s-1] ··· J[t+1] for 0 <= t <= s <= T (the identity when s == t)."""
    _check_unbatched(trace)
    t = _check_step("t", t, 0, trace.T)
    s = _check_step("s", s, t, trace.T)
    product = np.eye(trace.m)
    for r in range(t + 1, s + 1):
        product = jacobian(trace, r) @ product
    return product


def edge_gains(trace: GatedTrace) -> dict:
    """{(t-1, t): ||J[t]||_2} for t = 2..T: the gain of every edge the gradient can take back from
    h[T] (the chain; h[0] is fixed, so J[1] leads nowhere). Same form as `viz.attention.edge_gains`."""
    _check_unbatched(trace)
    return {(t - 1, t): float(np.linalg.norm(jacobian(trace, t), 2)) for t in range(2, trace.T + 1)}


def jacobian_bound(trace: GatedTrace, t: int) -> float:
    """MATH.md's bound ||J[t]||_2 <= max_i c_i[t] + 1/4 ||h[t-1] - u[t]||_inf ||W_h||_2 (t = 1..T)."""
    _check_unbatched(trace)
    t = _check_step("t", t, 1, trace.T)
    gap = np.max(np.abs(trace.h[t - 1] - trace.u[t - 1]))
    return float(np.max(trace.c[t - 1]) + 0.25 * gap * np.linalg.norm(trace.W_h, 2))


# --------------------------------------------------------------------------------------------------
# Inputs and upstream gradients for reproducible figures
# --------------------------------------------------------------------------------------------------

def _shape(T: int, n: int, batch) -> tuple:
    T = check_int("T", T, 1)
    n = check_int("n", n, 1)
    if batch is None:
        return (T, n)
    return (T, check_int("batch", batch, 1), n)


def random_inputs(T: int, n: int, seed: int = 0, batch: int | None = None) -> np.ndarray:
    """Standard normal inputs, (T, n) or (T, batch, n); row t-1 is x[t]. Seeded and deterministic."""
    shape = _shape(T, n, batch)
    return np.random.default_rng(check_int("seed", seed, 0)).standard_normal(shape)


def preset_inputs(name: str, T: int, n: int = 3, seed: int = 0, batch: int | None = None) -> np.ndarray:
    """The inputs preset `name` is designed for, (T, n) or (T, batch, n); row t-1 is x[t].

    vanish   standard normal (`random_inputs`)
    survive  uniform in [0.5, 1.5) (positive, so the gate W_c x[t] >= 6 stays saturated open)
    explode  (-1)^t times a magnitude in [0.75, 1.25), rounded to multiples of 1/64 (exact sums)
    """
    if name not in PRESETS:
        raise ValueError(f"name must be one of {PRESETS} (got {name!r})")
    shape = _shape(T, n, batch)
    seed = check_int("seed", seed, 0)
    if name == "vanish":
        return random_inputs(T, n, seed, batch)
    rng = np.random.default_rng(seed)
    if name == "survive":
        return rng.uniform(0.5, 1.5, shape)
    sign = (-1.0) ** np.arange(1, shape[0] + 1)
    return sign.reshape((-1,) + (1,) * (len(shape) - 1)) * _dyadic(rng.uniform(0.75, 1.25, shape))


def last_step_upstream(T: int, m: int, seed: int = 0) -> np.ndarray:
    """Direct gradients p (T, m) of a loss read at h[T] only: zero rows except the last, a seeded
    unit vector. With it, δ[t] = (∂h[T]/∂h[t])^T p[T], so BPTT figures show the gradient travelling
    back from the loss and ||δ[t]|| is exactly the size of the Jacobian product along p[T].
    """
    T = check_int("T", T, 1)
    m = check_int("m", m, 1)
    direction = np.random.default_rng(check_int("seed", seed, 0)).standard_normal(m)
    p = np.zeros((T, m))
    p[-1] = direction / np.linalg.norm(direction)
    return p


@dataclass(frozen=True)
class FigureRun:
    """One reference run as the figures show it: the model, its trace and, for backward figures, the
    loss read at h[T] (`last_step_upstream`) with the gradients it sends back. Diagrams, scenes and
    the explorer all take their numbers from these runs, so the same parameters give the same numbers."""
    model: object
    trace: object
    dl_dh: np.ndarray | None = None
    grads: object | None = None


def figure_run(model, xs: np.ndarray, seed: int, backward: bool) -> FigureRun:
    """Forward `xs`; with `backward`, a loss read at h[T] only and its BPTT."""
    trace = model.forward(xs)
    if not backward:
        return FigureRun(model, trace)
    dl_dh = last_step_upstream(trace.T, trace.h.shape[-1], seed=seed)
    return FigureRun(model, trace, dl_dh, model.backward(trace, dl_dh))


def gated_run(T: int, n: int, m: int, seed: int = 0, preset: str = "none", scale: float = 1.0,
              backward: bool = True, weights: dict | None = None, inputs=None) -> FigureRun:
    """The gated RNN the figures draw: preset "none" is `GatedRNN(n, m, seed, scale)` on
    `random_inputs`; a preset name (PRESETS) is `GatedRNN.preset` on its `preset_inputs`.
    `weights` ({W_c, W_h, W_x}) replace the model's weights and `inputs` (T, n) its inputs: the user's
    own numbers (viz.rnn_weights checks them with one-line messages; here the setters check shapes)."""
    if preset == "none":
        model, xs = GatedRNN(n, m, seed=seed, scale=scale), random_inputs(T, n, seed=seed)
    else:
        model, xs = GatedRNN.preset(preset, n=n, m=m, seed=seed), preset_inputs(preset, T, n=n, seed=seed)
    if weights is not None:
        model.W_c, model.W_h, model.W_x = (weights[name] for name in WEIGHT_NAMES)
    if inputs is not None:
        xs = check_array("inputs", inputs, (T, n))
    return figure_run(model, xs, seed, backward)
