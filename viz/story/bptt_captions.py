"""The BPTT Story's captions, each with the claims that check it against the run's numbers.

    preset runs    `preset_caption` (what the preset was designed to do, checked), `comparison_caption`
                   (AttentionRNN against the gated RNN at its gain per step)
    your numbers   `own_caption`: only what the measured norms say (verdict from the per-step factor,
                   the Jacobians' sizes where they hold at every step); no preset's promise
    every run      `model_caption`, `path_caption` (the strongest path back and its share of δ[1]),
                   `axis_caption` (the log axis every bar stands on)

A run is `viz.story.bptt.Run` (read by its fields only: this module does not import that one).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from viz import attention as A
from viz import rnn
from viz.story.core import Caption, Claim
from viz.story.graphs.figure import EXPLODE, VANISH
from viz.text import fmt_decade, fmt_sci, fmt_value

ROUNDING = 1e-9           # relative slack for claims that hold with equality in exact arithmetic
SLACK = 1e-4              # decades: a norm of 1.0002 (a copy model's leak) stays under the decade 1
FLOOR = 0.25              # decades: the smallest bar stands at least this high above the axis' bottom

if TYPE_CHECKING:
    from viz.story.bptt import Run


def _claim(cid, text, lhs, relation, rhs, lhs_label="", rhs_label="") -> Claim:
    return Claim(cid, text, float(lhs), relation, float(rhs), lhs_label, rhs_label)


def times(ts) -> str:
    ts = list(ts)
    return " → ".join(f"h[{t}]" for t in ts) if len(ts) <= 5 else \
        f"h[{ts[0]}] → h[{ts[1]}] → … → h[{ts[-2]}] → h[{ts[-1]}]"


def fewest_hops_path(T: int, k) -> list[int]:
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


def path_gain(gains: dict, path) -> float:
    return float(np.prod([gains.get((b, a), 0.0) for a, b in zip(path, path[1:])]))


# ---------------------------------------------------------------------------------------------------
# Captions with their claims


def preset_caption(r: Run, preset: str, gain: float) -> Caption:
    T, norms = r.T, r.norms
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


def own_caption(r: Run, preset: str) -> Caption:
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


def path_caption(r: Run, path: list[int], gain: float) -> Caption:
    T = r.T
    if T == 1:
        return Caption("The loss reads h[1] directly: δ[1] = ∂ℓ/∂h[1].",
                       (_claim("direct", "‖δ[1]‖ = ‖∂ℓ/∂h[1]‖ = 1", abs(r.norms[0] - 1), "<", 1e-12),))
    caption = _path_sentence(r, path, gain)
    with np.errstate(all="ignore"):
        share = path_share(r, path)
    if not (math.isfinite(share) and math.isfinite(gain)):     # only the user's numbers get here
        raise path_overflow(r)
    # the paths' parts are vectors: beside a path carrying more than all of δ[1], the others cancel some
    rest = ("the other paths add the rest" if share < 0.995 else "the gradient takes this path"
            if share <= 1.005 else "the other paths partly cancel it")
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
            f"One way back: the chain {times(path)}, {hops} hops (yellow); the product of its ‖J[t]‖₂, "
            f"{fmt_sci(gain)}, bounds ‖δ[1]‖/‖δ[{T}]‖ = {fmt_sci(r.ratio)}.",
            (_claim("hops", "the chain has T − 1 hops", hops, "==", T - 1),
             _claim("bound", "the chain's gain bounds ‖δ[1]‖/‖δ[T]‖", r.ratio, "<=", gain * (1 + ROUNDING))))
    fewest = A.hops(r.k, T - 1)
    shortcut = fewest_hops_path(T, r.k)
    if hops == fewest:
        return Caption(
            f"The strongest path back (yellow: the largest product of the norms ‖∂h[t]/∂h[t−i]‖₂ over all "
            f"paths, {fmt_sci(gain)}) takes {hops} hop{'s' if hops > 1 else ''}, the fewest possible: "
            f"{times(path)}.",
            (_claim("fewest-hops", "the strongest path takes the fewest hops", hops, "==", fewest),))
    return Caption(
        f"The strongest path back is the {hops}-hop chain {times(path)} (yellow, gain {fmt_sci(gain)}), "
        f"not the {fewest}-hop shortcut over skip edges (gain {fmt_sci(path_gain(r.gains, shortcut))})"
        + ("." if r.own else ": the skip edges get almost no attention."),
        (_claim("chain-beats-shortcut", "the chain carries more than the shortcut", gain, ">",
                path_gain(r.gains, shortcut), "strongest path's gain", "fewest-hops path's gain"),))


def comparison_caption(r: Run, gated: Run, preset: str, gain: float) -> Caption | None:
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


def axis_caption(r: Run, lo: int, hi: int) -> Caption:
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


def model_caption(r: Run) -> Caption:
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


def path_overflow(r: Run) -> ValueError:
    flag = "--weights" if "weights" in r.own else "--inputs"
    return ValueError(f"{flag}: with {r.own or 'these numbers'} the Jacobian product along the strongest path "
                      "overflows float64; use smaller numbers")
