"""AttentionRNN(k) and AttentionRNN(∞) of MATH.md section 4: forward trace, backward, Jacobians.

At step t (course index, 1-based), with x[t], h[t] in R^n and h[0] = 0:

    q_0, k_0, v_0 = Q_0 x[t], K_0 x[t], V_0 x[t]                    (lag 0: the current input)
    q_i, k_i, v_i = Q_i h[t-i], K_i h[t-i], V_i h[t-i]             (lag i = 1..k: a past state)
    w_i = q_i^T k_i,   a[t] = softmax(w over the included lags),   h[t] = Σ_i a_i[t] v_i

Which lags a step includes (`AttentionTrace.lags[t-1]`, always lag 0 first):

* finite k, base_case "zeros" (the literal rule): all lags 0..k at every step, a[t] in R^{k+1}. A lag
  whose source t-i < 1 reads the zero state h[t-i] = 0: q = k = v = 0, logit 0, and it still takes
  softmax mass (k = 3, t = 1: a[1] = (e^{w_0}, 1, 1, 1) / (e^{w_0} + 3)).
* finite k, base_case "mask": only lags whose state exists (t-i >= 1): lags 0..min(k, t-1).
* k = None, AttentionRNN(∞): lags 0..t-1, so a[t] in R^t grows with t. The softmax is always over
  existing states only (there are infinitely many zero states to give mass to otherwise), so the
  base case is always "mask"-like; `base_case` is accepted for a uniform signature and recorded as
  "mask". Q_i, K_i, V_i are shared for i >= 1.

Parameters: arrays Q, K, V of shape (P, n, n). Finite k: P = k+1 and index i is lag i. AttentionRNN(∞):
P = 2, index 0 for the current input, index 1 shared by all lags >= 1 (`param_index(lag)`).

INDEXING: `trace.h[t]` IS h[t] for t = 0..T (h[0] = 0); every per-step list or array has T entries
and entry t-1 is step t (`trace.a[t-1]` is a[t], `grads.delta[t-1]` is δ[t]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from viz.rnn import (FigureRun, _check_step, check_array, check_int, check_positive, check_sequence,
                     figure_run, random_inputs)

__all__ = [
    "AttentionRNN", "AttentionTrace", "AttentionGrads", "BASE_CASES", "param_index", "step_lags",
    "softmax", "attention_step", "attention_step_backward", "jacobian", "total_jacobian", "hops",
    "path_lengths", "PRESETS", "PRESET_NOTES", "preset_inputs", "STEP_GAIN", "VANISH_GAIN", "comparison_preset",
    "comparison_run", "edge_gains", "step_gains", "strongest_path", "weight_names",
]

BASE_CASES = ("zeros", "mask")
PRESETS = ("vanish", "survive", "explode")

# One caption line per preset: why the gradient through time does what it does (figures show it).
PRESET_NOTES = {
    "vanish": "weights ×0.3 make ∂h[t]/∂h[t−i] ≈ a_i V_i small: products decay; ∞: one hop to h[1]",
    "survive": "V_i = I and a_1 ≈ 1 copy h[t−1]: ∂h[t]/∂h[t−1] ≈ I; ∞ averages equal states: ‖δ[t]‖ ≈ 1/t",
    "explode": "V_i = 2I doubles h[t−1], the newest, largest state: a_1 ≈ 1 (∞ too), ∂h[t]/∂h[t−1] ≈ 2I",
}
SCORE = 5.0          # lag 1 (∞: every lag >= 1) scores q^T k = SCORE ||h[t-1]||^2 in survive/explode


def _check_k(k):
    return None if k is None else check_int("k", k, 1)


def param_index(k: int | None, lag: int) -> int:
    """Index into Q, K, V for a lag: the lag itself for finite k (0..k), min(lag, 1) for k = None."""
    if k is None:
        return min(check_int("lag", lag, 0), 1)
    lag = check_int("lag", lag, 0)
    if lag > k:
        raise ValueError(f"lag must be in 0..{k} for k = {k} (got {lag})")
    return lag


def weight_names(k: int | None) -> tuple[str, ...]:
    """The names a file of the user's weights gives Q, K, V (viz.rnn_weights): Q_i, K_i, V_i for every
    parameter index i (0..k; AttentionRNN(∞): 0 for x[t] and 1 shared by every lag >= 1)."""
    count = 2 if _check_k(k) is None else k + 1
    return tuple(f"{letter}_{i}" for letter in "QKV" for i in range(count))


def step_lags(k: int | None, base_case: str, t: int) -> np.ndarray:
    """The lags step t includes in its softmax, lag 0 first (see the module docstring)."""
    t = check_int("t", t, 1)
    if k is None:
        return np.arange(t)
    if base_case == "zeros":
        return np.arange(k + 1)
    return np.arange(min(k, t - 1) + 1)


# --------------------------------------------------------------------------------------------------
# One step: the forward rule and, next to it, its local backward rule
# --------------------------------------------------------------------------------------------------

def softmax(w: np.ndarray) -> np.ndarray:
    e = np.exp(w - np.max(w))      # shift: same result, no overflow
    return e / e.sum()


def attention_step(Qs, Ks, Vs, S):
    """Forward, one step. S (L, n): the vectors the lags read, row 0 = x[t], row j = h[t - lag_j]
    (zero for an absent state); Qs, Ks, Vs (L, n, n) the matrices of those lags.
    Returns (h[t], q, k, v, w, a) with q, k, v (L, n) and logits w, weights a (L,).
    """
    q = np.einsum("lij,lj->li", Qs, S)
    k = np.einsum("lij,lj->li", Ks, S)
    v = np.einsum("lij,lj->li", Vs, S)
    w = np.sum(q * k, axis=1)
    a = softmax(w)
    return a @ v, q, k, v, w, a


def attention_step_backward(Qs, Ks, Vs, S, q, k, v, a, dh):
    """Backward of `attention_step`: dh = δ[t] -> (dS (L, n), dQs, dKs, dVs (L, n, n)).

        dv_i = a_i δ,   da_i = v_i^T δ,   dw_i = a_i (da_i - Σ_j a_j da_j)      (softmax)
        dq_i = dw_i k_i,   dk_i = dw_i q_i
        dS_i = V_i^T dv_i + Q_i^T dq_i + K_i^T dk_i
             = a_i [V_i + (v_i - h[t]) S_i^T M_i]^T δ with M_i = Q_i^T K_i + K_i^T Q_i
        dQ_i = dq_i S_i^T,  dK_i = dk_i S_i^T,  dV_i = dv_i S_i^T
    """
    dv = a[:, None] * dh
    da = v @ dh
    dw = a * (da - a @ da)
    dq = dw[:, None] * k
    dk = dw[:, None] * q
    dS = (np.einsum("lij,li->lj", Vs, dv) + np.einsum("lij,li->lj", Qs, dq)
          + np.einsum("lij,li->lj", Ks, dk))
    outer = lambda g: np.einsum("li,lj->lij", g, S)  # noqa: E731
    return dS, outer(dq), outer(dk), outer(dv)


# --------------------------------------------------------------------------------------------------
# Trace and gradients
# --------------------------------------------------------------------------------------------------

@dataclass
class AttentionTrace:
    """Everything the forward pass computed (course index t <-> list entry t-1, h row t).

    xs (T, n)              row t-1 = x[t]
    h  (T+1, n)            row t = h[t], h[0] = 0
    per step t, entry t-1 of each list (L_t = number of lags step t includes):
    lags     int (L_t,)    the lags in the softmax, 0 first
    sources  int (L_t,)    the course time index t - lag each lag reads (< 1: a zero state)
    present  bool (L_t,)   that source is a real state (t - lag >= 1); lag 0 (the input) always True
    index    int (L_t,)    index of each lag's Q, K, V (param_index)
    logits   (L_t,)        w_i = q_i^T k_i
    a        (L_t,)        attention weights, softmax of logits
    q, k, v  (L_t, n)      per lag, in the order of `lags`
    Q, K, V  (P, n, n)     copies of the parameters used; window = k (None for ∞); base_case
    """
    xs: np.ndarray
    h: np.ndarray
    lags: list
    sources: list
    present: list
    index: list
    logits: list
    a: list
    q: list
    k: list
    v: list
    Q: np.ndarray
    K: np.ndarray
    V: np.ndarray
    window: int | None
    base_case: str
    T: int
    n: int

    def states(self, t: int) -> np.ndarray:
        """S (L_t, n): what step t's lags read: x[t], then h[t - lag] (zeros for absent states)."""
        S = np.where(self.present[t - 1][:, None], self.h[np.maximum(self.sources[t - 1], 0)], 0.0)
        S[0] = self.xs[t - 1]
        return S


@dataclass
class AttentionGrads:
    """Result of the backward pass (row t-1 = step t).

    delta (T, n)        totals δ[t] = dℓ/dh[t]
    dQ, dK, dV          dℓ/dQ etc., shapes of the parameters (P, n, n)
    dxs (T, n)          dℓ/dx[t]
    delta_norms (T,)    ||δ[t]||_2
    """
    delta: np.ndarray
    dQ: np.ndarray
    dK: np.ndarray
    dV: np.ndarray
    dxs: np.ndarray
    delta_norms: np.ndarray


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------

class AttentionRNN:
    """AttentionRNN(k) for a positive int k, AttentionRNN(∞) for k = None (module docstring).

    Parameters Q, K, V (P, n, n), settable; initialised (seeded, drawn in the order Q, K, V) as
    N(0, 1) / sqrt(n) times `scale`.
    """

    BASE_CASES = BASE_CASES
    PRESETS = PRESETS
    PRESET_NOTES = PRESET_NOTES

    def __init__(self, n: int, k: int | None, seed: int = 0, base_case: str = "zeros",
                 scale: float = 1.0):
        self.n = check_int("n", n, 1)
        self.k = _check_k(k)
        if base_case not in BASE_CASES:
            raise ValueError(f"base_case must be one of {BASE_CASES} (got {base_case!r})")
        self.base_case = "mask" if self.k is None else base_case
        self.seed = check_int("seed", seed, 0)
        self.scale = check_positive("scale", scale)
        rng = np.random.default_rng(self.seed)
        shape = self.param_shape
        self.Q = rng.standard_normal(shape) / math.sqrt(self.n) * self.scale
        self.K = rng.standard_normal(shape) / math.sqrt(self.n) * self.scale
        self.V = rng.standard_normal(shape) / math.sqrt(self.n) * self.scale

    @property
    def param_shape(self) -> tuple:
        return ((2 if self.k is None else self.k + 1), self.n, self.n)

    @property
    def Q(self) -> np.ndarray:
        return self._Q

    @Q.setter
    def Q(self, value):
        self._Q = check_array("Q", value, self.param_shape)

    @property
    def K(self) -> np.ndarray:
        return self._K

    @K.setter
    def K(self, value):
        self._K = check_array("K", value, self.param_shape)

    @property
    def V(self) -> np.ndarray:
        return self._V

    @V.setter
    def V(self, value):
        self._V = check_array("V", value, self.param_shape)

    def __repr__(self) -> str:
        k = "None" if self.k is None else self.k
        return (f"AttentionRNN(n={self.n}, k={k}, seed={self.seed}, base_case={self.base_case!r}, "
                f"scale={self.scale})")

    # ---- presets -------------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str, n: int = 3, k: int | None = 2, seed: int = 0,
               base_case: str = "zeros") -> "AttentionRNN":
        """Parameters that make gradients through time vanish, survive or explode (k None = ∞).

        Use them with `preset_inputs(name, T, n, seed)`. The lag-i Jacobian (MATH.md section 4) is
        ∂h[t]/∂h[t-i] = a_i [V_i + (V_i h[t-i] - h[t]) h[t-i]^T M_i]; a loss at h[T] sees the sum over
        all paths back of their products (`total_jacobian`).

        vanish   all weights x0.3 (`scale=0.3`, seeded N(0, 1)/sqrt(n)), standard normal inputs: the
                 logits are near 0, a[t] is nearly uniform and every Jacobian is about a_i V_i, small,
                 so products of them decay. k = 1: ||δ[1]|| / ||δ[T]|| about (||V_1|| / 2)^(T-1)
                 (T = 12: 8.6e-10 for n = 3, seed 0). Skip paths take fewer hops, so larger k decays
                 slower, but still geometrically (T = 12: below 2e-3 for k = 1, 2, 3, n = 1..8, seeds
                 0..20, either base case). AttentionRNN(∞) does NOT vanish: h[T] reads every h[t]
                 directly, one hop of weight a_{T-t}[T] ~ 1/T, so ||δ[t]|| levels off (n = 3, seed 0,
                 T = 12: 0.03 for every t < T; over that grid between 2e-4 and 0.1, and doubling T
                 only divides it by 1.25 .. 3.1) where k = 1 has 1e-10.
        survive  the copy model: Q_0 = K_0 = 0 (x[t] scores 0), Q_1 = I, K_1 = 5 I (h[t-1] scores
                 5 ||h[t-1]||^2), Q_i = K_i = 0 for i >= 2 (score 0), V_i = I for all i >= 1, and
                 V_0 = 2 L R (R a seeded orthogonal matrix, L the number of lags in step 1's softmax)
                 with unit-norm inputs, so ||h[1]|| = 2 whatever k and the base case, and h[t-1]
                 scores 20: 1 - a_1 ≈ k e^-20 = k·2e-9. Then h[t] = h[t-1] up to that leak of x[t], the M_1
                 term is multiplied by V_1 h[t-1] - h[t] ≈ 0, and ∂h[t]/∂h[t-1] ≈ I: ||δ[t]|| = 1
                 (to 1e-5) for every t. AttentionRNN(∞) shares Q_i, K_i over the lags, so the equal
                 past states score the same and split a[t] evenly: h[t] is their mean,
                 ∂h[t]/∂h[t-i] = I / (t-1), and ||δ[t]|| = 1/t for 1 < t < T — no geometric decay —
                 while ||δ[1]|| = 1 (h[1] reaches h[T] through every state).
        explode  survive with V_i = 2 I for i >= 1: each state doubles the one before, so the newest
                 state is the largest and takes the attention (for ∞ too, where a score sees only its
                 state), a_1 ≈ 1 and ∂h[t]/∂h[t-1] ≈ 2 I: ||δ[t]|| = 2^(T-t) (to 1e-6). The states
                 grow as 2^t (the scores overflow for T beyond about 500).
        """
        if name not in PRESETS:
            raise ValueError(f"preset name must be one of {PRESETS} (got {name!r})")
        if name == "vanish":
            return cls(n, k, seed=seed, base_case=base_case, scale=0.3)
        model = cls(n, k, seed=seed, base_case=base_case)
        n, eye = model.n, np.eye(model.n)
        Q, K, V = (np.zeros(model.param_shape) for _ in range(3))
        Q[1], K[1] = eye, SCORE * eye            # only lag 1 (∞: every lag >= 1) has a score
        V[1:] = (1.0 if name == "survive" else 2.0) * eye
        first = len(model.lags(1))                # lags in step 1's softmax (zero states share a[1])
        orthogonal = np.linalg.qr(np.random.default_rng([model.seed, 1]).standard_normal((n, n)))[0]
        V[0] = 2.0 * first * orthogonal           # ||h[1]|| = 2 for a unit-norm x[1]
        model.Q, model.K, model.V = Q, K, V
        return model

    def param_index(self, lag: int) -> int:
        """Index into Q, K, V of a lag (lag for finite k, min(lag, 1) for ∞)."""
        return param_index(self.k, lag)

    def lags(self, t: int) -> np.ndarray:
        """The lags step t (1-based) includes in its softmax, lag 0 first."""
        return step_lags(self.k, self.base_case, t)

    def forward(self, xs) -> AttentionTrace:
        """Run the recursion over xs (T, n) from h[0] = 0 (and h[t] = 0 for t < 1)."""
        xs = check_sequence("xs", xs, self.n, allow_batch=False)
        T = xs.shape[0]
        h = np.zeros((T + 1, self.n))
        fields = {name: [] for name in ("lags", "sources", "present", "index", "logits", "a",
                                        "q", "k", "v")}
        for t in range(1, T + 1):
            lags = self.lags(t)
            sources = t - lags
            present = (sources >= 1) | (lags == 0)
            index = np.array([self.param_index(i) for i in lags], dtype=int)
            S = np.where(present[:, None], h[np.maximum(sources, 0)], 0.0)
            S[0] = xs[t - 1]
            h[t], q, k, v, w, a = attention_step(self.Q[index], self.K[index], self.V[index], S)
            for name, value in zip(fields, (lags, sources, present, index, w, a, q, k, v)):
                fields[name].append(value)
        return AttentionTrace(xs=xs, h=h, Q=self.Q.copy(), K=self.K.copy(), V=self.V.copy(),
                              window=self.k, base_case=self.base_case, T=T, n=self.n, **fields)

    def backward(self, trace: AttentionTrace, dl_dh) -> AttentionGrads:
        """Totals and parameter gradients from the direct gradients p[t] = ∂ℓ/∂h[t] (dl_dh (T, n)).

        Only the steps t+1..t+k read h[t] (all later steps for ∞), so in reverse order
        δ[t] = p[t] + Σ_{i>=1} (∂h[t+i]/∂h[t])^T δ[t+i] is complete when step t is reached; each
        step then sends its share to the states it read and adds its parameter gradients (with δ,
        not p).
        Uses the parameters stored in the trace.
        """
        dl_dh = check_array("dl_dh", dl_dh, (trace.T, trace.n))
        delta = np.zeros_like(dl_dh)
        dxs = np.zeros_like(trace.xs)
        dQ, dK, dV = (np.zeros_like(trace.Q) for _ in range(3))
        inbox = np.zeros_like(trace.h)            # inbox[t] = Σ_i (∂h[t+i]/∂h[t])^T δ[t+i] so far
        for t in range(trace.T, 0, -1):
            delta[t - 1] = dl_dh[t - 1] + inbox[t]
            index, present, sources = trace.index[t - 1], trace.present[t - 1], trace.sources[t - 1]
            dS, gQ, gK, gV = attention_step_backward(
                trace.Q[index], trace.K[index], trace.V[index], trace.states(t),
                trace.q[t - 1], trace.k[t - 1], trace.v[t - 1], trace.a[t - 1], delta[t - 1])
            np.add.at(dQ, index, gQ)               # ∞: all lags >= 1 share index 1
            np.add.at(dK, index, gK)
            np.add.at(dV, index, gV)
            dxs[t - 1] = dS[0]
            real = present & (np.arange(len(index)) > 0)     # real past states, not x, not zeros
            np.add.at(inbox, sources[real], dS[real])
        return AttentionGrads(delta=delta, dQ=dQ, dK=dK, dV=dV, dxs=dxs,
                              delta_norms=np.linalg.norm(delta, axis=-1))

    def jacobian(self, trace: AttentionTrace, t: int, lag: int) -> np.ndarray:
        return jacobian(trace, t, lag)

    def total_jacobian(self, trace: AttentionTrace, s: int, t: int) -> np.ndarray:
        return total_jacobian(trace, s, t)


def preset_inputs(name: str, T: int, n: int = 3, seed: int = 0) -> np.ndarray:
    """The inputs preset `name` is designed for, (T, n); row t-1 is x[t]. Seeded and deterministic.

    vanish             standard normal (`viz.rnn.random_inputs`)
    survive, explode   seeded random unit vectors (so ||h[1]|| = 2 exactly, see `AttentionRNN.preset`)
    """
    if name not in PRESETS:
        raise ValueError(f"preset name must be one of {PRESETS} (got {name!r})")
    xs = random_inputs(T, n, check_int("seed", seed, 0))
    if name == "vanish":
        return xs
    return xs / np.linalg.norm(xs, axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------------
# Jacobians
# --------------------------------------------------------------------------------------------------

def jacobian(trace: AttentionTrace, t: int, lag: int) -> np.ndarray:
    """∂h[t]/∂h[t-lag] (n, n) for t = 1..T, lag >= 1:

        a_i [V_i + (V_i h[t-i] - h[t]) h[t-i]^T M_i],   M_i = Q_i^T K_i + K_i^T Q_i

    Zero when step t does not include the lag or its source t-lag is not a real state (t-lag < 1).
    """
    t = _check_step("t", t, 1, trace.T)
    lag = check_int("lag", lag, 1)
    hits = np.flatnonzero((trace.lags[t - 1] == lag) & trace.present[t - 1])
    if hits.size == 0:
        return np.zeros((trace.n, trace.n))
    j = hits[0]
    p = trace.index[t - 1][j]
    Q, K, V = trace.Q[p], trace.K[p], trace.V[p]
    s = trace.h[t - lag]
    M = Q.T @ K + K.T @ Q
    return trace.a[t - 1][j] * (V + np.outer(V @ s - trace.h[t], s @ M))


def total_jacobian(trace: AttentionTrace, s: int, t: int) -> np.ndarray:
    """dh[s]/dh[t] for 1 <= t <= s <= T, through every path (MATH.md section 4):

        dh[t]/dh[t] = I,   dh[r]/dh[t] = Σ_{i >= 1} (∂h[r]/∂h[r-i]) dh[r-i]/dh[t]   (r > t)

    where terms with r - i < t vanish (h[r-i] does not depend on h[t]).
    """
    t = _check_step("t", t, 1, trace.T)
    s = _check_step("s", s, t, trace.T)
    D = {t: np.eye(trace.n)}
    for r in range(t + 1, s + 1):
        D[r] = np.zeros((trace.n, trace.n))
        for lag in trace.lags[r - 1][1:]:
            if r - lag >= t:
                D[r] += jacobian(trace, r, int(lag)) @ D[r - lag]
    return D[s]


# --------------------------------------------------------------------------------------------------
# Hops: how many steps the gradient needs to cross a distance
# --------------------------------------------------------------------------------------------------

def hops(k: int | None, distance: int) -> int:
    """Fewest reads (edges h[t-i] -> h[t], 1 <= i <= k) from h[t] to h[t + distance]:
    ceil(distance / k), 1 for AttentionRNN(∞) (distance >= 1), 0 for distance 0.
    The gated RNN is the case k = 1 (one hop per step)."""
    k = _check_k(k)
    distance = check_int("distance", distance, 0)
    if distance == 0:
        return 0
    return 1 if k is None else -(-distance // k)


def path_lengths(k: int | None, T: int) -> np.ndarray:
    """int (T,): entry t-1 = hops(k, T - t), the fewest hops the gradient of a loss at h[T] needs to
    reach h[t]. Gradients cross T steps in about T/k hops instead of T."""
    T = check_int("T", T, 1)
    return np.array([hops(k, T - t) for t in range(1, T + 1)], dtype=int)


def attention_run(T: int, n: int, k: int | None, seed: int = 0, preset: str = "none",
                  base_case: str = "zeros", scale: float = 1.0, backward: bool = True,
                  weights: dict | None = None, inputs=None) -> FigureRun:
    """The AttentionRNN the figures draw: preset "none" is `AttentionRNN(n, k, seed, base_case, scale)`
    on `random_inputs`; a preset name (PRESETS) is `AttentionRNN.preset` on its `preset_inputs`.
    `weights` ({Q_i, K_i, V_i}, `weight_names(k)`) replace Q, K, V and `inputs` (T, n) the inputs."""
    if preset == "none":
        model = AttentionRNN(n, k, seed=seed, base_case=base_case, scale=scale)
        xs = random_inputs(T, n, seed=seed)
    else:
        model = AttentionRNN.preset(preset, n=n, k=k, seed=seed, base_case=base_case)
        xs = preset_inputs(preset, T, n=n, seed=seed)
    if weights is not None:
        set_weights(model, weights)
    if inputs is not None:
        xs = check_array("inputs", inputs, (T, n))
    return figure_run(model, xs, seed, backward)


def set_weights(model: AttentionRNN, weights: dict) -> AttentionRNN:
    """Q, K, V stacked from {Q_i, K_i, V_i} (`weight_names(model.k)`): index i is `param_index`'s."""
    count = model.param_shape[0]
    model.Q, model.K, model.V = (np.stack([np.asarray(weights[f"{letter}_{i}"], dtype=float)
                                           for i in range(count)]) for letter in "QKV")
    return model


# --------------------------------------------------------------------------------------------------
# BPTT figures: presets compared with the gated RNN at the same gain, and the path carrying δ
# --------------------------------------------------------------------------------------------------

STEP_GAIN = {"vanish": 0.5, "survive": 1.0, "explode": 2.0}   # gain per step when none is given
VANISH_GAIN = STEP_GAIN["vanish"]   # the gated RNN's vanish preset: J[t] ≈ diag(c[t]) with c ≈ 1/2


def comparison_preset(name: str, n: int = 3, k: int | None = 2, seed: int = 0,
                      gain: float | None = None) -> AttentionRNN:
    """The AttentionRNN the BPTT figures set beside the gated RNN's preset `name`, at `gain` per step
    (default `STEP_GAIN[name]`; the figures pass the gated RNN's own: the geometric mean of its
    ||J[t]||_2). The gain of step t is ||Σ_{i>=1} ∂h[t]/∂h[t-i]||_2, what h[t] passes back.

    vanish   uniform attention at that gain g: Q = K = 0 (every logit 0, so a[t] is uniform over the
             lags of step t and M_i = 0), V_0 a seeded orthogonal matrix, V_i = γ I for i >= 1 with
             γ = g (k+1)/k (base case "zeros": k past lags of weight 1/(k+1) each), so
             ∂h[t]/∂h[t-i] = (g/k) I exactly for every real lag, and the lags sum to g I once t > k.
             AttentionRNN(∞): γ = g, a_i = 1/t, ∂h[t]/∂h[t-i] = (g/t) I (step gain g (t-1)/t < g).
    survive  `AttentionRNN.preset("survive")`: a_1 ≈ 1 and V_1 = I, gain 1 (`gain` must be 1 or None).
    explode  `AttentionRNN.preset("explode")` with V_i = g I (g > 1) for i >= 1: each state is g times
             the one before, so the newest is the largest and takes the attention, a_1 ≈ 1, and
             ∂h[t]/∂h[t-1] ≈ g I (the preset itself is g = 2).
    """
    if name not in PRESETS:
        raise ValueError(f"preset name must be one of {PRESETS} (got {name!r})")
    gain = STEP_GAIN[name] if gain is None else check_positive("gain", gain)
    if name == "survive":
        if gain != 1.0:
            raise ValueError(f"gain must be 1 for preset 'survive' (got {gain})")
        return AttentionRNN.preset(name, n=n, k=k, seed=seed)
    if name == "explode":
        if gain <= 1.0:
            raise ValueError(f"gain must be > 1 for preset 'explode' (got {gain})")
        model = AttentionRNN.preset(name, n=n, k=k, seed=seed)
        V = model.V.copy()
        V[1:] = gain * np.eye(model.n)
        model.V = V
        return model
    model = AttentionRNN(n, k, seed=seed)
    Q, K, V = (np.zeros(model.param_shape) for _ in range(3))
    V[1:] = (gain if model.k is None else gain * (model.k + 1) / model.k) * np.eye(model.n)
    V[0] = np.linalg.qr(np.random.default_rng([model.seed, 1]).standard_normal((model.n, model.n)))[0]
    model.Q, model.K, model.V = Q, K, V
    return model


def comparison_run(T: int, n: int, k: int | None, seed: int = 0, preset: str = "vanish",
                   gain: float | None = None) -> FigureRun:
    """`comparison_preset` on the preset's inputs (`preset_inputs`), loss read at h[T], with BPTT."""
    model = comparison_preset(preset, n=n, k=k, seed=seed, gain=gain)
    return figure_run(model, preset_inputs(preset, T, n=n, seed=seed), seed, True)


def edge_gains(trace: AttentionTrace) -> dict:
    """{(s, t): ||∂h[t]/∂h[s]||_2} for every real past state h[s] (s >= 1) step t read (1-based)."""
    gains = {}
    for t in range(1, trace.T + 1):
        for lag, present in zip(trace.lags[t - 1], trace.present[t - 1]):
            if lag >= 1 and present:
                gains[(t - int(lag), t)] = float(np.linalg.norm(jacobian(trace, t, int(lag)), 2))
    return gains


def step_gains(trace: AttentionTrace) -> np.ndarray:
    """(T,): entry t-1 = ||Σ_{i>=1} ∂h[t]/∂h[t-i]||_2, the gain of step t (0 for t = 1: h[0] = 0)."""
    out = np.zeros(trace.T)
    for t in range(1, trace.T + 1):
        total = sum((jacobian(trace, t, int(i)) for i in trace.lags[t - 1][1:]), np.zeros((trace.n,) * 2))
        out[t - 1] = np.linalg.norm(total, 2)
    return out


def strongest_path(gains: dict, T: int, start: int = 1) -> tuple[list[int], float]:
    """The path h[T] -> ... -> h[start] along edges (s, t) of `gains` with the largest product of gains,
    and that product: ([T, ..., start], gain); ([], 0.0) when no path exists.

    The gradient a path carries is the product of its Jacobians applied to δ[T], at most the product
    of their norms (equal when the Jacobians are multiples of I, as in the presets): this is the path
    that can carry the largest share of δ[start]. Dynamic programming from T down (Viterbi in
    log space); gains equal to 1e-9 in log space tie, and ties go to the path with fewer hops, then to
    the one whose hops from h[T] back are longest first (T, T-k, T-2k, ... for equal gains).
    """
    T = check_int("T", T, 1)
    best = {T: (0.0, 0, None)}                # t -> (log gain, hops, next state towards T)
    for s in range(T - 1, start - 1, -1):
        options = [(math.log(g) if g > 0 else -math.inf, best[t][1] + 1, t)
                   for (a, t), g in gains.items() if a == s and t in best]
        options = [(lg + best[t][0], hops, t) for lg, hops, t in options]
        if options:
            best[s] = max(options, key=lambda o: (round(o[0], 9), -o[1], -o[2]))
    if start not in best or best[start][0] == -math.inf:
        return [], 0.0
    path, s = [start], start
    while best[s][2] is not None:
        s = best[s][2]
        path.append(s)
    return path[::-1], math.exp(best[start][0])
