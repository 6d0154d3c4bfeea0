"""The BPTT Story: the gradient of a loss at h[T] travelling back through time, ‖δ[t]‖ on a log scale.

    gated RNN      δ[T] = ∂ℓ/∂h[T],  δ[t] = J[t+1]ᵀ δ[t+1],  J[t] = ∂h[t]/∂h[t−1]
    AttentionRNN   δ[t] = Σ_{i>=1} (∂h[t+i]/∂h[t])ᵀ δ[t+i]   (k lags; every later step for ∞)

Runs: `viz.rnn.gated_run` and, for AttentionRNN, `viz.attention.comparison_run` (the preset at the gated
RNN's gain per step, so the two can be compared). Every figure of one preset, T, n and seed shares one
log axis (`Series.limits`), spanning the gated RNN and AttentionRNN(1, 2, 3, ∞). With the user's weights
or inputs (`values["weights"]`, `values["inputs"]`) the figure is their run alone: `attention_run` /
`gated_run` on those numbers, its own log axis, and captions computed from them (`bptt_captions`).

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
from viz.story.core import Edge, Graph, Line, Lit, Node, Series, Step, Story, Write
from viz.story.bptt_captions import (FLOOR, SLACK, axis_caption, comparison_caption, fewest_hops_path,
                                     model_caption, own_caption, path_caption, path_gain, path_overflow,
                                     path_share, preset_caption, times)  # noqa: F401 (path_share: re-exported)
from viz.story.graphs.figure import check_finite, source_words, story_params, user_captions, user_data
from viz.text import fmt_decade, fmt_sci

MODELS = ("gated", "attention")
FULL_STEPS = 3            # backward steps shown in full (formula and norm); later ones: the norm, shorter


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
                 Line(f"strongest path back: {times(path)}, {hops} hop{'s' if hops > 1 else ''}, "
                      f"gain {fmt_sci(gain)}", "path", (float(hops), gain)))
    return Step("summary", "the way back", lines[-1].text[0].upper() + lines[-1].text[1:] + ".",
                part="summary", weight=1.5,
                lit=(Lit("graph", "gradient", tuple(c for c in done if c not in path_ids)),
                     Lit("graph", "path", path_ids)),
                lines=lines, data={"path": path, "gain": gain})


def _strongest_path(r: Run) -> tuple[list[int], float]:
    """`A.strongest_path`, with the fewest-hops path where it is as strong (a tie the captions would
    otherwise call a win) or where every path has gain 0 (an exactly zero Jacobian: no strongest one)."""
    if r.T == 1:
        return [1], 1.0
    try:
        path, gain = A.strongest_path(r.gains, r.T)
    except OverflowError:
        raise path_overflow(r) from None
    shortcut = fewest_hops_path(r.T, 1 if r.model == "gated" else r.k)
    if not path or path_gain(r.gains, shortcut) >= gain:
        return shortcut, path_gain(r.gains, shortcut)
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
        captions = [model_caption(r), own_caption(r, preset), path_caption(r, path, path_gain)]
    else:
        captions = [model_caption(r), preset_caption(r, preset, gain), path_caption(r, path, path_gain)]
        comparison = comparison_caption(r, gated, preset, gain)
        captions += [comparison] if comparison else []
    captions += [*user_captions("gated-rnn" if model == "gated" else "attention-rnn", values, r.run),
                 axis_caption(r, lo, hi)]
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
