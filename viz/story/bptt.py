"""The BPTT Story: the gradient of a loss at h[T] travelling back through time, ‖δ[t]‖ on a log scale.

    gated RNN      δ[T] = ∂ℓ/∂h[T],  δ[t] = J[t+1]ᵀ δ[t+1],  J[t] = ∂h[t]/∂h[t−1]
    AttentionRNN   δ[t] = Σ_{i>=1} (∂h[t+i]/∂h[t])ᵀ δ[t+i]   (k lags; every later step for ∞)

Runs: `viz.rnn.gated_run` and, for AttentionRNN, `viz.attention.comparison_run` (the preset at the gated
RNN's gain per step, so the two can be compared). Every figure of one preset, T, n and seed shares one
log axis (`Series.limits`), spanning the gated RNN and AttentionRNN(1, 2, 3, ∞).

Steps: "forward" (the chain computed once, the loss reads h[T]), then the backward sweep t = T … 1 (one
step per δ[t]: role "highlight" = h[t] and the edges its gradient arrived over, "gradient" = what the
sweep has reached before), then "summary" (role "path": the strongest path back,
`viz.attention.strongest_path`, the largest product of Jacobian norms over all paths).

Graph ids: nodes "h0" … "hT", "loss"; edges "h{s}-h{t}" (step t read h[s]; weight = its attention
weight a, 1 in the gated RNN) and "hT-loss". Series "delta": x = t (1 … T), y = ‖δ[t]‖; `Lit` cells on
it are x values, `Write` cells 0-based point indices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from viz import attention as A
from viz import rnn
from viz.story.core import Caption, Claim, Edge, Graph, Line, Lit, Node, Series, Step, Story, Write
from viz.story.graphs.figure import EXPLODE, VANISH, check_finite, source_words, story_params, user_captions, user_data
from viz.text import fmt_decade, fmt_sci, fmt_value

MODELS = ("gated", "attention")
FULL_STEPS = 3            # backward steps shown in full (formula and norm); later ones: the norm, shorter
ROUNDING = 1e-9           # relative slack for claims that hold with equality in exact arithmetic
SLACK = 1e-4              # decades: a norm of 1.0002 (a copy model's leak) stays under the decade 1
FLOOR = 0.25              # decades: the smallest bar stands at least this high above the axis' bottom


@dataclass(frozen=True)
class Run:
    """What the Story needs from one reference run (1-based times)."""
    model: str
    k: int | None
    T: int
    run: rnn.FigureRun
    reads: tuple               # (s, t) for every state h[s] a step t read (h[0] included in the chain)
    weights: dict              # (s, t) -> attention weight a (1.0 in the gated RNN)
    gains: dict                # (s, t) -> ||∂h[t]/∂h[s]||_2 for real states s >= 1
    norms: np.ndarray          # (T,) ||δ[t]||
    own: str = ""              # "your weights", "your inputs", both: the user's numbers, not a preset's

    @property
    def ratio(self) -> float:
        """||δ[1]|| / ||δ[T]||."""
        return float(self.norms[0] / self.norms[-1])


def gated_gain(gated: Run, preset: str) -> float | None:
    """The gain per step AttentionRNN is compared at: the gated RNN's, the geometric mean of its
    ||J[t]||_2 (t = 2..T; `STEP_GAIN` for T = 1); None for survive (the copy model: gain 1)."""
    if preset == "survive":
        return None
    gains = np.array(list(gated.gains.values()))
    return float(np.exp(np.mean(np.log(gains)))) if gains.size else A.STEP_GAIN[preset]


def reference_run(model: str, k, T: int, n: int, m: int, seed: int, preset: str,
                  gain: float | None = None, user: dict | None = None) -> Run:
    """One run of the figure. `user` ({"weights", "inputs"}, either None) replaces the preset's numbers:
    the gated RNN takes them into `rnn.gated_run`; AttentionRNN runs `attention.attention_run` with them
    (its own preset's weights when only inputs are given: no gated RNN gain to compare at)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)} (got {model!r})")
    T = rnn.check_int("steps", T, 1)
    own = bool(user) and any(v is not None for v in user.values())
    if model == "gated":
        run = check_finite(rnn.gated_run(T, n, m, seed=seed, preset=preset, **(user if own else {})), user or {})
        reads = tuple((t - 1, t) for t in range(1, T + 1))
        weights = {e: 1.0 for e in reads}
        gains = rnn.edge_gains(run.trace)
    else:
        run = check_finite(A.attention_run(T, n, k, seed=seed, preset=preset if user["weights"] is None else "none",
                                           **user), user) if own else \
            A.comparison_run(T, n, k, seed=seed, preset=preset, gain=gain)
        tr, reads, weights = run.trace, [], {}
        for t in range(1, T + 1):
            for lag, present, a in zip(tr.lags[t - 1], tr.present[t - 1], tr.a[t - 1]):
                if lag >= 1 and present:
                    reads.append((t - int(lag), t))
                    weights[(t - int(lag), t)] = float(a)
        reads, gains = tuple(reads), A.edge_gains(tr)
    return Run(model, k, T, run, reads, weights, gains, np.asarray(run.grads.delta_norms, dtype=float),
               source_words(user or {}))


def shared_limits(gated: Run, n: int, seed: int, preset: str, gain: float, also: Run) -> tuple[int, int]:
    """Decades (lo, hi) of the log axis every BPTT figure of this preset, T, n, seed shares: they cover
    ||δ[t]|| of the gated RNN and of AttentionRNN(k) for k = 1, 2, 3, ∞ at its gain (and of `also`,
    the figure's own run, should another k reach further)."""
    runs = [gated, also] + [reference_run("attention", k, gated.T, n, 1, seed, preset, gain)
                            for k in (1, 2, 3, None)]
    return limits(np.concatenate([r.norms for r in runs]))


def limits(norms: np.ndarray) -> tuple[int, int]:
    """Decades (lo, hi) of a log axis every positive norm stands on: at least FLOOR above lo, below hi."""
    positive = norms[norms > 0]
    lo = math.floor(math.log10(positive.min()) - FLOOR) if positive.size else -1
    hi = max(math.ceil(math.log10(positive.max()) - SLACK) if positive.size else 0, lo + 1)
    return lo, hi


def _comparison_m(m: int, preset: str) -> int:
    return max(m, 2) if preset == "explode" else m     # the gated explode preset needs two units


def _claim(cid, text, lhs, relation, rhs, lhs_label="", rhs_label="") -> Claim:
    return Claim(cid, text, float(lhs), relation, float(rhs), lhs_label, rhs_label)


def _times(ts) -> str:
    ts = list(ts)
    return " → ".join(f"h[{t}]" for t in ts) if len(ts) <= 5 else \
        f"h[{ts[0]}] → h[{ts[1]}] → … → h[{ts[-2]}] → h[{ts[-1]}]"


def _fewest_hops_path(T: int, k) -> list[int]:
    """One path of `viz.attention.hops(k, T - 1)` hops from h[T] to h[1]: jumps of k, the rest last."""
    if k is None:
        return [T, 1] if T > 1 else [T]
    path = [T]
    while path[-1] > 1:
        path.append(max(1, path[-1] - k))
    return path


def path_share(r: Run, path) -> float:
    """||(∂h[T]/∂h[1] along `path` only)ᵀ δ[T]|| / ||δ[1]||: the share of δ[1] this one path carries
    (δ[1] is the sum over all paths of such products; their norms need not add up to 1)."""
    v = r.run.dl_dh[-1].copy()
    for a, b in zip(path, path[1:]):                     # h[a] read h[b]: v <- (∂h[a]/∂h[b])ᵀ v
        J = rnn.jacobian(r.run.trace, a) if r.model == "gated" else A.jacobian(r.run.trace, a, a - b)
        v = J.T @ v
    return float(np.linalg.norm(v) / r.norms[0]) if r.norms[0] > 0 else 0.0


def _path_gain(gains: dict, path) -> float:
    return float(np.prod([gains.get((b, a), 0.0) for a, b in zip(path, path[1:])]))


# ---------------------------------------------------------------------------------------------------
# Captions with their claims


def _preset_caption(r: Run, preset: str, gain: float) -> Caption:
    T, norms, k = r.T, r.norms, r.k
    back = norms[:-1] / norms[1:] if T > 1 else np.ones(0)        # ||δ[t]|| / ||δ[t+1]||, t = 1..T-1
    if r.model == "gated":
        J = np.array(list(r.gains.values())) if r.gains else np.ones(1)
        span = f"‖J[t]‖₂ = {fmt_value(J.min())} … {fmt_value(J.max())}"
        if preset == "vanish":
            text = (f"vanish: small weights (×0.1) make c[t] ≈ ½ and J[t] ≈ diag(c[t]): {span} < 1, "
                    "so every step back shrinks δ.")
            claims = [_claim("contracts", "every J[t] shrinks", J.max(), "<", 1, "max ‖J[t]‖₂"),
                      _claim("shrinks", "every step back shrinks δ", back.max(initial=0), "<", 1,
                             "max ‖δ[t]‖/‖δ[t+1]‖")]
        elif preset == "survive":
            text = (f"survive: W_c x[t] ≥ 6 keeps every gate open (c ≈ 1), so J[t] ≈ I ({span}) and "
                    f"‖δ[t]‖ stays at {fmt_value(norms[-1])}.")
            claims = [_claim("near-identity", "J[t] ≈ I", np.abs(J - 1).max(), "<", 0.01, "max |‖J[t]‖₂ − 1|"),
                      _claim("survives", "‖δ[t]‖ stays at ‖δ[T]‖", np.abs(norms / norms[-1] - 1).max(), "<",
                             0.01, "max |‖δ[t]‖/‖δ[T]‖ − 1|")]
        else:
            text = (f"explode: a large W_h with unsaturated gates (c = ½) makes {span} > 1, and every "
                    "step back grows δ.")
            claims = [_claim("expands", "every J[t] expands", J.min(), ">", 1, "min ‖J[t]‖₂"),
                      _claim("grows", "every step back grows δ", back.min(initial=np.inf), ">", 1,
                             "min ‖δ[t]‖/‖δ[t+1]‖")]
        return Caption(text, tuple(c for c in claims if T > 1))
    return _attention_preset_caption(r, preset, gain, back)


def _attention_preset_caption(r: Run, preset: str, gain: float, back: np.ndarray) -> Caption:
    T, norms, k, tr = r.T, r.norms, r.k, r.run.trace
    a1 = np.array([tr.a[t - 1][1] for t in range(2, T + 1)]) if T > 1 else np.ones(1)
    if preset == "vanish":
        g = fmt_value(gain)
        if k is None:
            text = (f"vanish at the gated RNN's gain per step, g = {g} (the geometric mean of its ‖J[t]‖₂): "
                    f"uniform attention over every earlier state (Q = K = 0) and V = {g}·I make "
                    f"∂h[t]/∂h[t−i] = (g/t)·I, so step t passes back g·(t−1)/t < g.")
            per_edge = [v * t / gain for (s, t), v in r.gains.items()]
        else:
            text = (f"vanish at the gated RNN's gain per step, g = {g} (the geometric mean of its ‖J[t]‖₂): "
                    f"uniform attention (Q = K = 0) and V_i = {fmt_value(gain * (k + 1) / k)}·I make every "
                    f"∂h[t]/∂h[t−i] = (g/{k})·I: the {k} lag{'s' if k > 1 else ''} pass back g per step.")
            per_edge = [v * k / gain for v in r.gains.values()]
        claims = [_claim("edge-gain", "every edge has the gain the caption gives",
                         np.abs(np.array(per_edge) - 1).max(initial=0), "<", 1e-9,
                         "max |gain / its value − 1|")]
    elif preset == "survive" and k is None:
        text = ("survive: equal scores split a[t] evenly, so h[t] is the mean of the states before it and "
                "∂h[r]/∂h[t] = I/(r−1); then δ[t] = Σ_{r>t} δ[r]/(r−1) = δ[T]/t: ‖δ[t]‖ = 1/t for t < T.")
        t = np.arange(1, T)
        claims = [_claim("one-over-t", "‖δ[t]‖ = ‖δ[T]‖/t for t < T",
                         np.abs(t * norms[:-1] / norms[-1] - 1).max(initial=0), "<", 1e-4,
                         "max |t·‖δ[t]‖/‖δ[T]‖ − 1|")]
    elif preset == "survive":
        text = ("survive: V_i = I and a_1 ≈ 1 copy h[t−1] into h[t]: ∂h[t]/∂h[t−1] ≈ I, and ‖δ[t]‖ "
                f"stays at {fmt_value(norms[-1])}.")
        claims = [_claim("copies", "a_1 ≈ 1", a1.min(), ">", 0.999, "min a_1[t]"),
                  _claim("survives", "‖δ[t]‖ stays at ‖δ[T]‖", np.abs(norms / norms[-1] - 1).max(), "<", 1e-4,
                         "max |‖δ[t]‖/‖δ[T]‖ − 1|")]
    else:
        g = fmt_value(gain)
        text = (f"explode at the gated RNN's gain per step, g = {g} (the geometric mean of its ‖J[t]‖₂): "
                f"V_i = {g}·I multiplies h[t−1], the newest and largest state, which takes the attention "
                f"(a_1 ≈ 1): ∂h[t]/∂h[t−1] ≈ g·I and ‖δ[t]‖ = g^(T−t)·‖δ[T]‖.")
        claims = [_claim("copies", "a_1 ≈ 1", a1.min(), ">", 0.999, "min a_1[t]"),
                  _claim("multiplies", "δ grows by g at every step back",
                         np.abs(np.log(back) / math.log(gain) - 1).max(initial=0), "<", 1e-4,
                         "max |log(‖δ[t]‖/‖δ[t+1]‖)/log g − 1|")]
    return Caption(text, tuple(c for c in claims if T > 1))


def _own_caption(r: Run, preset: str) -> Caption:
    """The user's numbers: what the measured norms say, nothing a preset promised. The verdict is the
    diagrams' (per-step factor ρ = (‖δ[1]‖/‖δ[T]‖)^(1/(T−1)) below VANISH, above EXPLODE, or between);
    the Jacobians' sizes are said only where they hold for every step, each with its claim."""
    T, norms = r.T, r.norms
    weights = "your weights" if "weights" in r.own else f"the {preset} preset's weights"
    inputs = "your inputs" if "inputs" in r.own else ("seeded inputs" if "weights" in r.own else "")
    head = f"{weights[0].upper()}{weights[1:]} on {inputs or 'their inputs'}"
    if T == 1:
        return Caption(f"{head}: one step, so δ[1] = ∂ℓ/∂h[1] and nothing travels back.")
    ratio = float(norms[0] / norms[-1])
    rho = ratio ** (1.0 / (T - 1))
    verdict, rel, bound = ("vanishes", "<", VANISH) if rho < VANISH else ("explodes", ">", EXPLODE) \
        if rho > EXPLODE else ("survives", "<=", EXPLODE)
    claims = [_claim(verdict, f"the gradient {verdict}: per-step factor {rel} {bound:g}", rho, rel, bound,
                     "(‖δ[1]‖/‖δ[T]‖)^(1/(T−1))")]
    if verdict == "survives":
        claims.append(_claim("survives-low", f"and does not vanish: per-step factor ≥ {VANISH:g}", rho, ">=",
                             VANISH, "(‖δ[1]‖/‖δ[T]‖)^(1/(T−1))"))
    text = (f"{head}: the gradient {verdict} on its way back, ‖δ[1]‖/‖δ[{T}]‖ = {fmt_sci(ratio)} over {T - 1} "
            f"steps ({fmt_value(rho)} per step).")
    what = "‖J[t]‖₂" if r.model == "gated" else "‖∂h[t]/∂h[t−i]‖₂"
    gains = np.array(list(r.gains.values())) if r.gains else np.ones(1)
    back = norms[:-1] / np.where(norms[1:] > 0, norms[1:], np.inf)      # ‖δ[t]‖/‖δ[t+1]‖ (0 after a 0)
    text += f" {what} = {fmt_value(gains.min())} … {fmt_value(gains.max())}"
    if gains.max() < 1:
        text += ": every one shrinks"
        claims.append(_claim("contracts", f"every {what} < 1", gains.max(), "<", 1, f"max {what}"))
    elif gains.min() > 1:
        text += ": every one stretches some direction"
        claims.append(_claim("expands", f"every {what} > 1", gains.min(), ">", 1, f"min {what}"))
    if back.max() < 1:
        text += "; every step back shrinks δ."
        claims.append(_claim("shrinks", "every step back shrinks δ", back.max(), "<", 1, "max ‖δ[t]‖/‖δ[t+1]‖"))
    elif back.min() > 1:
        text += "; every step back grows δ."
        claims.append(_claim("grows", "every step back grows δ", back.min(), ">", 1, "min ‖δ[t]‖/‖δ[t+1]‖"))
    else:
        text += "."
    return Caption(text, tuple(claims))


def _path_caption(r: Run, path: list[int], gain: float) -> Caption:
    T = r.T
    if T == 1:
        return Caption("The loss reads h[1] directly: δ[1] = ∂ℓ/∂h[1].",
                       (_claim("direct", "‖δ[1]‖ = ‖∂ℓ/∂h[1]‖ = 1", abs(r.norms[0] - 1), "<", 1e-12),))
    caption = _path_sentence(r, path, gain)
    with np.errstate(all="ignore"):
        share = path_share(r, path)
    if not (math.isfinite(share) and math.isfinite(gain)):     # only the user's numbers get here
        raise _path_overflow(r)
    rest = ("the other paths add the rest" if share < 0.995 else "the gradient takes this path")
    return Caption(f"{caption.text} Alone it carries {fmt_value(100 * share, integer=share >= 0.1)}% of ‖δ[1]‖: "
                   f"{rest}.",
                   caption.claims + (_claim("path-bound", "no path carries more than its gain",
                                            share * r.ratio, "<=", gain * (1 + ROUNDING),
                                            "‖path's part of δ[1]‖/‖δ[T]‖", "path's gain"),))


def _path_sentence(r: Run, path: list[int], gain: float) -> Caption:
    T = r.T
    hops = len(path) - 1
    if r.model == "gated":
        return Caption(
            f"One way back: the chain {_times(path)}, {hops} hops (yellow); the product of its ‖J[t]‖₂, "
            f"{fmt_sci(gain)}, bounds ‖δ[1]‖/‖δ[{T}]‖ = {fmt_sci(r.ratio)}.",
            (_claim("hops", "the chain has T − 1 hops", hops, "==", T - 1),
             _claim("bound", "the chain's gain bounds ‖δ[1]‖/‖δ[T]‖", r.ratio, "<=", gain * (1 + ROUNDING))))
    fewest = A.hops(r.k, T - 1)
    shortcut = _fewest_hops_path(T, r.k)
    if hops == fewest:
        return Caption(
            f"The strongest path back (yellow: the largest product of the norms ‖∂h[t]/∂h[t−i]‖₂ over all "
            f"paths, {fmt_sci(gain)}) takes {hops} hop{'s' if hops > 1 else ''}, the fewest possible: "
            f"{_times(path)}.",
            (_claim("fewest-hops", "the strongest path takes the fewest hops", hops, "==", fewest),))
    return Caption(
        f"The strongest path back is the {hops}-hop chain {_times(path)} (yellow, gain {fmt_sci(gain)}), "
        f"not the {fewest}-hop shortcut over skip edges (gain {fmt_sci(_path_gain(r.gains, shortcut))})"
        + ("." if r.own else ": the skip edges get almost no attention."),
        (_claim("chain-beats-shortcut", "the chain carries more than the shortcut", gain, ">",
                _path_gain(r.gains, shortcut), "strongest path's gain", "fewest-hops path's gain"),))


def _comparison_caption(r: Run, gated: Run, preset: str, gain: float) -> Caption | None:
    """AttentionRNN against the gated RNN at the same gain per step: do skip paths help?"""
    a, g, span = r.ratio, gated.ratio, "∞" if r.k is None else str(r.k)
    if r.model == "attention" and preset == "explode" and r.T >= 2:
        return Caption(
            f"At the gated RNN's gain per step AttentionRNN({span}) grows to ‖δ[1]‖/‖δ[{r.T}]‖ = {fmt_sci(a)} = "
            f"g^{r.T - 1}, the product of the gated RNN's ‖J[t]‖₂, which bounds the gated RNN's {fmt_sci(g)}: "
            "with a_1 ≈ 1 both take the chain, and the skip edges change nothing.",
            (_claim("chain-like", "the gated RNN stays under AttentionRNN's g^(T−1) (to 0.1%)", g / a, "<=", 1.001,
                    "gated ratio / AttentionRNN ratio"),))
    if r.model != "attention" or preset != "vanish" or r.T < 3:
        return None
    same = _claim("same-gain", "no step passes back more than the gated RNN's gain per step",
                  A.step_gains(r.run.trace).max(), "<=", gain * (1 + ROUNDING),
                  "max ‖Σ_i ∂h[t]/∂h[t−i]‖₂", "geometric mean of the gated RNN's ‖J[t]‖₂")
    if r.k == 1:
        return Caption(
            f"AttentionRNN(1) has no skip edges: at the gated RNN's gain per step it keeps ‖δ[1]‖/‖δ[{r.T}]‖ = "
            f"{fmt_sci(a)}, the product of the gated RNN's ‖J[t]‖₂, which bounds the gated RNN's {fmt_sci(g)}.",
            (same, _claim("chain-bound", "the chain's product bounds the gated RNN's ratio", g, "<=",
                          a * (1 + ROUNDING), "gated RNN ‖δ[1]‖/‖δ[T]‖", "AttentionRNN(1) ‖δ[1]‖/‖δ[T]‖")))
    if a > g:
        return Caption(
            f"Skip paths keep the gradient: at the same gain per step, AttentionRNN({span}) keeps "
            f"‖δ[1]‖/‖δ[{r.T}]‖ = {fmt_sci(a)}, the gated RNN {fmt_sci(g)} ({fmt_value(a / g, integer=True)}× more).",
            (same, _claim("skip-paths-keep-gradient", "skip paths keep more of the gradient", a, ">", g,
                          f"AttentionRNN({span}) ‖δ[1]‖/‖δ[T]‖", "gated RNN ‖δ[1]‖/‖δ[T]‖")))
    return Caption(
        f"At T = {r.T} the skip edges do not yet keep more than the gated RNN: ‖δ[1]‖/‖δ[{r.T}]‖ = "
        f"{fmt_sci(a)} against {fmt_sci(g)}.",
        (same, _claim("skip-paths-not-yet", "no more than the gated RNN", a, "<=", g)))


def _axis_caption(r: Run, lo: int, hi: int) -> Caption:
    positive = r.norms[r.norms > 0]
    shared = (f"The log axis, {fmt_decade(lo)} … {fmt_decade(hi)}, spans this run's ‖δ[t]‖ ({r.own}: no axis "
              "shared with the presets' figures)." if r.own else
              f"The bars share one log axis, {fmt_decade(lo)} … {fmt_decade(hi)}, with every BPTT figure of this "
              "preset, T, n and seed (gated RNN and AttentionRNN(1, 2, 3, ∞)), so they can be compared.")
    return Caption(
        shared,
        (_claim("axis-low", "every bar stands at least a quarter decade above the axis' bottom",
                math.log10(positive.min()), ">=", lo + FLOOR, "log10 min ‖δ[t]‖"),
         _claim("axis-high", "every bar is below the axis' top (to 1e−4 of a decade)",
                math.log10(positive.max()), "<=", hi + SLACK, "log10 max ‖δ[t]‖")))


# ---------------------------------------------------------------------------------------------------
# The story


def _title(model: str, k, T: int, n: int, m: int) -> str:
    if model == "gated":
        return f"Backpropagation through time: gated RNN (n = {n}, m = {m}), T = {T}"
    return f"Backpropagation through time: AttentionRNN({'∞' if k is None else k}) (n = {n}), T = {T}"


FORMULAS = {
    "gated": ("δ[t] = J[t+1]ᵀ δ[t+1]",
              "J[t] = diag(c[t]) + diag(c[t] ⊙ (1 − c[t]) ⊙ (h[t−1] − u[t])) W_h"),
    "attention": ("δ[t] = Σᵢ (∂h[t+i]/∂h[t])ᵀ δ[t+i]",
                  "∂h[t]/∂h[t−i] = aᵢ [Vᵢ + (vᵢ − h[t]) h[t−i]ᵀ (Qᵢᵀ Kᵢ + Kᵢᵀ Qᵢ)]"),
}


def _model_caption(r: Run) -> Caption:
    if r.model == "gated":
        return Caption(f"Gated RNN, T = {r.T}: one way back, through the T − 1 Jacobians J[t] = ∂h[t]/∂h[t−1]; "
                       "the loss ℓ reads h[T] only.")
    if r.k is None:
        reach = "every earlier state"
    else:
        reach = {1: "h[t−1]", 2: "h[t−1], h[t−2]"}.get(r.k, f"h[t−1] … h[t−{r.k}]")
    return Caption(f"AttentionRNN({'∞' if r.k is None else r.k}), T = {r.T}: h[t] attends to x[t] and {reach}; "
                   "δ[t] sums the gradients of the steps that read h[t]. Arcs are skip edges, drawn with "
                   "opacity ∝ their attention weight a; the loss ℓ reads h[T] only. " + _base_case_words(r))


def _base_case_words(r: Run) -> str:
    """Which base case the run uses (the two give different numbers; every AttentionRNN figure says it)."""
    if getattr(r.run.model, "base_case", "mask") == "zeros":
        return ("Base case: the literal rule, states before h[1] are zeros that still take softmax mass "
                "(logit 0).")
    return "Base case: states before h[1] are masked, the softmax runs over existing states only."


def _edge_id(s: int, t) -> str:
    return f"h{s}-{'loss' if t == 'loss' else f'h{t}'}"


def _delta_line(r: Run, t: int, sources: list[int]) -> Line:
    if t == r.T:
        return Line(f"δ[{t}] = ∂ℓ/∂h[{t}]", "gradient")
    if r.model == "gated":
        return Line(f"δ[{t}] = J[{t + 1}]ᵀ δ[{t + 1}]", "gradient")
    if len(sources) <= 2:
        return Line(f"δ[{t}] = " + " + ".join(f"(∂h[{u}]/∂h[{t}])ᵀ δ[{u}]" for u in sources), "gradient")
    return Line(f"δ[{t}] = Σ (∂h[u]/∂h[{t}])ᵀ δ[u] over u = {sources[0]} … {sources[-1]}", "gradient")


def _norm_line(r: Run, t: int) -> Line:
    norm = float(r.norms[t - 1])
    if t == r.T:
        return Line(f"‖δ[{t}]‖ = {fmt_sci(norm)}", "gradient", (norm,))
    if r.norms[t] == 0:       # δ[t+1] = 0 (a saturated gate, zero weights): nothing to compare to
        return Line(f"‖δ[{t}]‖ = {fmt_sci(norm)}", "gradient", (norm,))
    factor = norm / float(r.norms[t])
    return Line(f"‖δ[{t}]‖ = {fmt_sci(norm)}   (×{fmt_sci(factor)} of ‖δ[{t + 1}]‖)", "gradient",
                (norm, factor))


def rest_weight(T: int) -> float:
    """Duration weight of the backward steps after the first FULL_STEPS: the sweep stays short."""
    return min(0.5, max(0.25, 4.0 / max(T - FULL_STEPS, 1)))


def _graph(r: Run) -> Graph:
    T = r.T
    nodes = [Node("h0", "h[0]", "muted", 0)] + [Node(f"h{t}", f"h[{t}]", "hidden", t) for t in range(1, T + 1)]
    nodes.append(Node("loss", "ℓ", "loss", T + 1))
    edges = [Edge(_edge_id(s, t), f"h{s}", f"h{t}", "hidden", "", r.weights[(s, t)]) for s, t in r.reads]
    edges.append(Edge(_edge_id(T, "loss"), f"h{T}", "loss", "loss"))
    return Graph(tuple(nodes), tuple(edges))


def _series(r: Run, lo: int, hi: int) -> Series:
    decades = range(lo, hi + 1)
    return Series("delta", "‖δ[t]‖, log scale", "gradient", tuple(float(t) for t in range(1, r.T + 1)),
                  tuple(float(v) for v in r.norms), "log", limits=(10.0 ** lo, 10.0 ** hi),
                  ticks=tuple(10.0 ** d for d in decades), tick_labels=tuple(fmt_decade(d) for d in decades))


def _forward_step(r: Run, graph: Graph) -> Step:
    T, p_T = r.T, float(np.linalg.norm(r.run.dl_dh[-1]))
    return Step("forward", "forward", f"Forward: h[1] … h[{T}] from x[1] … x[{T}] (h[0] = 0); the loss ℓ "
                f"reads h[{T}].", part="forward",
                lit=(Lit("graph", "hidden", tuple(f"h{t}" for t in range(1, T + 1))
                         + tuple(e.id for e in graph.edges[:-1])),
                     Lit("graph", "loss", ("loss", graph.edges[-1].id))),
                lines=(Line(f"forward: h[1] … h[{T}] computed, ℓ reads h[{T}]"),
                       Line(f"‖∂ℓ/∂h[{T}]‖ = {fmt_sci(p_T)}", "loss", (p_T,))))


def _sweep_steps(r: Run) -> tuple[list[Step], list[str]]:
    """The backward sweep t = T … 1, and the ids it lit (for the summary)."""
    T, steps, done = r.T, [], []
    for i, t in enumerate(range(T, 0, -1)):
        sources = sorted(u for s, u in r.reads if s == t)
        incoming = [_edge_id(t, u) for u in sources] + ([_edge_id(T, "loss")] if t == T else [])
        norm = float(r.norms[t - 1])
        steps.append(Step(
            f"delta-{t}", f"δ[{t}]", f"Back to h[{t}]: ‖δ[{t}]‖ = {fmt_sci(norm)}"
            + ("" if t == T else f", from δ at {', '.join(f'h[{u}]' for u in sources)}") + ".",
            part="bptt", weight=1.0 if i < FULL_STEPS else rest_weight(T),
            lit=(Lit("graph", "highlight", (f"h{t}", *incoming)), Lit("graph", "gradient", tuple(done)),
                 Lit("delta", "highlight", (float(t),)),
                 Lit("delta", "gradient", tuple(float(u) for u in range(t + 1, T + 1)))),
            lines=(_delta_line(r, t, sources), _norm_line(r, t)) if i < FULL_STEPS else (_norm_line(r, t),),
            writes=(Write("delta", (t - 1,), norm, fmt_sci(norm)),),
            data={"t": t, "norm": norm, "sources": sources}))
        done += [f"h{t}", *incoming]
    return steps, done


def _summary_step(r: Run, path: list[int], gain: float, done: list[str]) -> Step:
    path_ids = tuple(f"h{t}" for t in path) + tuple(_edge_id(b, a) for a, b in zip(path, path[1:]))
    if r.T == 1:
        lines = (Line(f"the loss reads h[1] directly: ‖δ[1]‖ = {fmt_sci(r.norms[0])}", "highlight",
                      (float(r.norms[0]),)),)
    else:
        hops = len(path) - 1
        lines = (Line(f"‖δ[1]‖ / ‖δ[{r.T}]‖ = {fmt_sci(r.ratio)}", "highlight", (r.ratio,)),
                 Line(f"strongest path back: {_times(path)}, {hops} hop{'s' if hops > 1 else ''}, "
                      f"gain {fmt_sci(gain)}", "path", (float(hops), gain)))
    return Step("summary", "the way back", lines[-1].text[0].upper() + lines[-1].text[1:] + ".",
                part="summary", weight=1.5,
                lit=(Lit("graph", "gradient", tuple(c for c in done if c not in path_ids)),
                     Lit("graph", "path", path_ids)),
                lines=lines, data={"path": path, "gain": gain})


def _path_overflow(r: Run) -> ValueError:
    flag = "--weights" if "weights" in r.own else "--inputs"
    return ValueError(f"{flag}: with {r.own or 'these numbers'} the Jacobian product along the strongest path "
                      "overflows float64; use smaller numbers")


def _strongest_path(r: Run) -> tuple[list[int], float]:
    """`A.strongest_path`, with the fewest-hops path where it is as strong (a tie the captions would
    otherwise call a win) or where every path has gain 0 (an exactly zero Jacobian: no strongest one)."""
    if r.T == 1:
        return [1], 1.0
    try:
        path, gain = A.strongest_path(r.gains, r.T)
    except OverflowError:
        raise _path_overflow(r) from None
    shortcut = _fewest_hops_path(r.T, 1 if r.model == "gated" else r.k)
    if not path or _path_gain(r.gains, shortcut) >= gain:
        return shortcut, _path_gain(r.gains, shortcut)
    return path, gain


def bptt_story(values: dict) -> Story:
    """The Story of `viz animate bptt` for validated values (model, k, steps, preset, n, m, seed, and the
    user's weights and inputs, either None). With the user's numbers the figure is their run alone:
    captions from its measured norms, its own log axis, no comparison at a preset's gain."""
    model, k, T = values.get("model", "gated"), values.get("k", 2), values.get("steps", 12)
    preset, n, m, seed = values.get("preset", "vanish"), values.get("n", 3), values.get("m", 3), values.get("seed", 0)
    k = k if model == "attention" else None
    own = source_words(values)
    if own:
        with np.errstate(all="ignore"):          # overflow is said in one line (check_finite)
            r = reference_run(model, k, T, n, m, seed, preset, user=user_data(values))
        lo, hi = limits(r.norms)
    else:
        gated = reference_run("gated", None, T, n, m if model == "gated" else _comparison_m(m, preset), seed, preset)
        gain = gated_gain(gated, preset)
        r = gated if model == "gated" else reference_run(model, k, T, n, m, seed, preset, gain)
        lo, hi = shared_limits(gated, n, seed, preset, gain, r)
    T = r.T
    path, path_gain = _strongest_path(r)
    graph = _graph(r)
    sweep, done = _sweep_steps(r)
    steps = [_forward_step(r, graph), *sweep, _summary_step(r, path, path_gain, done)]
    if own:
        captions = [_model_caption(r), _own_caption(r, preset), _path_caption(r, path, path_gain)]
    else:
        captions = [_model_caption(r), _preset_caption(r, preset, gain), _path_caption(r, path, path_gain)]
        comparison = _comparison_caption(r, gated, preset, gain)
        captions += [comparison] if comparison else []
    captions += [*user_captions("gated-rnn" if model == "gated" else "attention-rnn", values, r.run),
                 _axis_caption(r, lo, hi)]
    name = "gated RNN" if model == "gated" else f"AttentionRNN({'∞' if k is None else k})"
    alt = (f"Bar chart on a log scale under the unrolled {name}: ‖δ[t]‖ for t = {T} … 1 with "
           f"{own or f'the {preset} preset'}, from {fmt_sci(r.norms[-1])} at t = {T} to {fmt_sci(r.norms[0])} at t = 1"
           + (f"; the strongest path back, {len(path) - 1} hop{'s' if len(path) > 2 else ''}, in yellow."
              if T > 1 else "."))
    params = {"model": model, "k": k, "steps": T, "preset": preset, "n": n, "m": m, "seed": seed}
    if own:
        params = story_params({**params, "weights": values.get("weights"), "inputs": values.get("inputs")})
    title = _title(model, k, T, n, m) + (f", {own}" if own else "")
    return Story("animate bptt", params, title, FORMULAS[model], graph=graph,
                 series=(_series(r, lo, hi),), steps=tuple(steps), captions=tuple(captions), alt=alt,
                 description=" ".join(c.text for c in captions))
