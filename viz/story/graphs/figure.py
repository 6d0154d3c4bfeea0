"""A diagram kind's figure: one reference run -> the graph model the renderer draws + the same figure
as a Story (a plain summary of the graph, the caption with its claims, alt text and a description).

    figure(kind, values) -> Figure(graph, story)       kind "gated-rnn" or "attention-rnn"
    gated_story(values), attention_story(values)       the registry's story builders (-o x.story.json)

`values` are the kind's validated parameters (viz.app.registry validates them once): view "cell" |
"unrolled" | "backward", steps T, n, m (gated), k int or None = ∞ and base_case (attention), preset,
scale, seed, annotate, theme. The backward figures read the loss at h[T] only
(`viz.rnn.last_step_upstream`), so ‖δ[t]‖ is the size of the Jacobian product from T back to t:

    δ[t] = ∂ℓ/∂h[t] + Σ_i (∂h[t+i]/∂h[t])ᵀ δ[t+i],   per-step factor ρ = (‖δ[1]‖ / ‖δ[T]‖)^(1/(T-1))

and the caption says "vanishes" when ρ < 0.9, "explodes" when ρ > 1.1, "survives" otherwise, with a
Claim holding ρ and the bound. Every other claim carries the numbers it rests on (gate range, softmax
sums, mass on zero states, reads of h[0], the loss's direct gradients).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viz.story.core import Caption, Claim, Edge, Graph, Line, Lit, Node, Step, Story
from viz.story.graphs import model
from viz.story.graphs.model import fmt_num, plain

KINDS = ("gated-rnn", "attention-rnn")
VIEWS = ("cell", "unrolled", "backward")
DESCRIBED_WEIGHTS = 8            # the description reads out every a[t] up to this many steps
VANISH, EXPLODE = 0.9, 1.1      # bounds on the per-step factor of ‖δ[t]‖ for "vanishes" / "explodes"

# Node kinds of the graph model -> the Story's roles (one meaning, one colour in every renderer).
ROLE = {"input": "input", "parameter": "kernel", "op": "text", "state": "output", "gate": "text",
        "loss": "loss", "gradient": "gradient", "padding": "padding", "never_read": "never_read",
        "note": "muted"}
EDGE_ROLE = {"gradient": "gradient", "masked": "never_read", "shared": "kernel"}


@dataclass(frozen=True)
class Figure:
    graph: model.Graph      # what diagrams/render.py draws
    story: Story            # the same figure as data


def gated_story(values: dict) -> Story:
    return figure("gated-rnn", values).story


def attention_story(values: dict) -> Story:
    return figure("attention-rnn", values).story


def run(kind: str, values: dict):
    """The reference run (viz.rnn.FigureRun) the figure draws: gradients only for the backward view."""
    backward = values["view"] == "backward"
    if kind == "gated-rnn":
        from viz import rnn
        return rnn.gated_run(values["steps"], values["n"], values["m"], seed=values["seed"],
                             preset=values["preset"], scale=values["scale"], backward=backward)
    from viz import attention
    return attention.attention_run(values["steps"], values["n"], values["k"], seed=values["seed"],
                                   preset=values["preset"], base_case=values["base_case"],
                                   scale=values["scale"], backward=backward)


def graph_model(kind: str, values: dict, r) -> model.Graph:
    """The graph model of the figure from its run `r`."""
    view, annotate = values["view"], values["annotate"]
    if kind == "gated-rnn":
        from viz.story.graphs import gated_rnn as g
        if view == "cell":
            return g.cell(r.model, r.trace, r.trace.T, annotate, values["preset"])
        return g.unrolled(r.model, r.trace, annotate, r.grads, r.dl_dh, values["preset"])
    from viz.story.graphs import attention_rnn as a
    if view == "cell":
        return a.cell(r.model, r.trace, r.trace.T, annotate)
    return a.unrolled(r.model, r.trace, annotate, r.grads, r.dl_dh)


def figure(kind: str, values: dict) -> Figure:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if values.get("view") not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)} (got {values.get('view')!r})")
    r = run(kind, values)
    g = graph_model(kind, values, r)
    return Figure(g, story(kind, values, r, g))


# ---- the Story ---------------------------------------------------------------------------------------

def story_graph(g: model.Graph) -> Graph:
    """The drawn nodes and edges as plain data: labels in plain text, roles, rank = grid column."""
    nodes = tuple(Node(n.id, plain(n.label), ROLE[n.kind], int(g.grid.get(n.id, (0, 0))[0]))
                  for n in g.nodes.values())
    drawn = [e for e in g.edges if e.kind != "invisible"]
    edges = tuple(Edge(f"e{i}", e.tail, e.head, EDGE_ROLE.get(e.kind, ROLE[g.nodes[e.tail].kind]),
                       plain(e.label or ""), 1.0 if e.value is None else float(e.value))
                  for i, e in enumerate(drawn))
    return Graph(nodes, edges)


def story(kind: str, values: dict, r, g: model.Graph) -> Story:
    captions = (_gated_captions if kind == "gated-rnn" else _attention_captions)(values, r, g)
    title = plain(g.title)
    lines = tuple(Line(plain(n)) for n in ([g.scale_note] if g.scale_note else []) + list(g.notes))
    lit = (Lit("graph", "output", tuple(n.id for n in g.nodes_of("state"))),)
    if kind == "attention-rnn" and values["view"] != "cell":
        lines += tuple(_weights_line(r.trace, t) for t in range(1, r.trace.T + 1))
    if r.grads is not None:
        norms = r.grads.delta_norms
        lines += tuple(Line(f"‖δ[{t}]‖ = {plain(fmt_num(v))}", "gradient", (float(v),))
                       for t, v in enumerate(norms, 1))
        lit += (Lit("graph", "gradient", tuple(n.id for n in g.nodes_of("gradient"))),)
    step = Step("figure", title, captions[0].text, lit=lit, lines=lines, part=values["view"])
    alt = f"{title}. {captions[0].text}"
    said = {c.text.lower() for c in captions}
    told = [ln for ln in lines if ln.text.lower() + "." not in said
            and (ln.role != "highlight" or r.trace.T <= DESCRIBED_WEIGHTS)]
    description = " ".join([alt] + [c.text for c in captions[1:]] + [_inventory(g)]
                           + [ln.text + "." for ln in told])
    return Story(kind=f"diagram {kind}", params=dict(values), title=title,
                 formula=tuple(plain(n) for n in g.notes[:1]), graph=story_graph(g), steps=(step,),
                 captions=captions, alt=alt, description=description)


def _weights_line(tr, t: int) -> Line:
    """Step t's softmax weights in the trace's lag order: a_0[t] (x[t]), then a_i[t] of h[t-i]."""
    a = [float(v) for v in tr.a[t - 1]]
    terms = ", ".join(f"a_{int(lag)} = {plain(fmt_num(v))}" + ("" if present else " (zero state)")
                      for lag, v, present in zip(tr.lags[t - 1], a, tr.present[t - 1]))
    return Line(f"a[{t}]: {terms}", "highlight", tuple(a))


KIND_WORDS = {"input": "inputs", "parameter": "weights", "op": "operations", "state": "states",
              "gate": "gates", "loss": "loss", "gradient": "gradients", "padding": "zero states",
              "never_read": "states never read", "note": "notes"}


def _inventory(g: model.Graph) -> str:
    """What the drawing holds, kind by kind: "Drawn: inputs x[1], x[2]; states h[1], h[2]; ..."."""
    parts = []
    for kind in model.NODE_KINDS:
        labels = list(dict.fromkeys(plain(n.label) for n in g.nodes_of(kind)))     # distinct, in order
        if labels:
            shown = labels if len(labels) <= 8 else labels[:3] + ["…"] + labels[-2:]
            parts.append(f"{KIND_WORDS[kind]} {', '.join(shown)}")
    edges = sum(1 for e in g.edges if e.kind != "invisible")
    return f"Drawn: {'; '.join(parts)}; {edges} arrows."


def _num(x: float) -> str:
    return plain(fmt_num(x))


def _gradient_caption(r, base: str = "") -> Caption:
    """What the measured norms say: the gradient vanishes, survives or explodes from h[T] back to h[1]."""
    norms, T = r.grads.delta_norms, r.trace.T
    first, last = float(norms[0]), float(norms[-1])
    direct = Claim("loss_at_T", "the loss reads h[T] only: ∂ℓ/∂h[t] = 0 for t < T",
                   float(np.abs(r.dl_dh[:-1]).max()) if T > 1 else 0.0, "==", 0.0,
                   "max |∂ℓ/∂h[t]|, t < T", "0")
    if T == 1:
        return Caption(f"One step: δ[1] = ∂ℓ/∂h[1], ‖δ[1]‖ = {_num(first)}.{base}", (direct,))
    ratio = first / last if last > 0 else float("inf")
    rho = ratio ** (1.0 / (T - 1))
    if rho < VANISH:
        verdict, rel, bound = "vanishes", "<", VANISH
    elif rho > EXPLODE:
        verdict, rel, bound = "explodes", ">", EXPLODE
    else:
        verdict, rel, bound = "survives", "<=", EXPLODE
    text = (f"The gradient {verdict} on its way back: ‖δ[t]‖ goes from {_num(last)} at t = {T} to "
            f"{_num(first)} at t = 1, a factor {_num(ratio)} over {T - 1} steps "
            f"({_num(rho)} per step).{base}")
    label = "(‖δ[1]‖ / ‖δ[T]‖)^(1/(T-1))"
    claims = [Claim(verdict, f"the gradient {verdict}: per-step factor {rel} {_num(bound)}",
                    rho, rel, bound, label, _num(bound)), direct]
    if verdict == "survives":
        claims.insert(1, Claim("survives_low", f"and does not vanish: per-step factor ≥ {_num(VANISH)}",
                               rho, ">=", VANISH, label, _num(VANISH)))
    return Caption(text, tuple(claims))


def _gated_captions(values: dict, r, g: model.Graph) -> tuple[Caption, ...]:
    tr, T = r.trace, r.trace.T
    gates = _gates_caption(np.asarray(tr.c))
    if values["view"] == "cell":
        mix = tr.c[T - 1] * tr.h[T - 1] + (1 - tr.c[T - 1]) * tr.u[T - 1]
        step = Caption(f"One step of the gated RNN (n = {values['n']}, m = {values['m']}): the gate "
                       f"c[t] = σ(W_c x[t] + W_h h[t-1]) weighs the previous state h[t-1] against the "
                       f"candidate u[t] = W_x x[t]; h[t] = c[t] ⊙ h[t-1] + (1 − c[t]) ⊙ u[t].",
                       (Claim("mix", "h[t] = c[t] ⊙ h[t-1] + (1 − c[t]) ⊙ u[t] at t = T",
                              float(np.abs(tr.h[T] - mix).max()), "<=", 1e-12, "max residual", "10⁻¹²"),))
        return step, gates
    tied = Caption(f"The gated RNN unrolled over T = {T} steps: one set of weights W_c, W_h, W_x is "
                   f"shared by every step, and h[0] = 0.",
                   (Claim("tied", "one weight node for all steps", float(len(g.nodes_of("parameter"))),
                          "==", 1.0, "weight nodes", "1"),))
    shown = (tied,) if g.nodes_of("parameter") else ()      # compact backward: the gradient path only
    if values["view"] == "backward":
        return (_gradient_caption(r),) + shown + (gates,)
    return shown + (gates,)


def _gates_caption(c: np.ndarray) -> Caption:
    """c[t] = σ(z[t]) lies in (0, 1); in float64 it rounds to exactly 0 or 1 once |z| passes ~37
    (large weight scales), and then the caption says so instead."""
    saturated = int(np.sum((c <= 0) | (c >= 1)))
    if saturated:
        return Caption(f"{saturated} of {c.size} gate values are saturated: c[t] = σ(z[t]) rounds to "
                       f"exactly 0 or 1 in float64, so there h[t] copies u[t] = W_x x[t] or h[t-1] and "
                       f"no gradient passes through the gate.",
                       (Claim("gates_saturated", "some c[t] is exactly 0 or 1", float(saturated), ">", 0.0,
                              "saturated gate values", "0"),))
    return Caption("Every gate value lies strictly between 0 and 1 (c[t] = σ(z[t])), so h[t] mixes "
                   "h[t-1] and u[t] = W_x x[t] without leaving their range.",
                   (Claim("gate_above_0", "c[t] > 0", float(c.min()), ">", 0.0, "min c[t]", "0"),
                    Claim("gate_below_1", "c[t] < 1", float(c.max()), "<", 1.0, "max c[t]", "1")))


def _attention_captions(values: dict, r, g: model.Graph) -> tuple[Caption, ...]:
    from viz.story.graphs.attention_rnn import base_case_note

    tr, T, m = r.trace, r.trace.T, r.model
    span = "∞" if m.k is None else str(m.k)
    note = plain(base_case_note(m))
    said, claims = _base_case_claims(tr)
    base = Caption(note[:1].upper() + note[1:] + "." + said, claims)
    sums = np.array([float(np.sum(a)) for a in tr.a])
    softmax = Caption(f"AttentionRNN({span}) (n = {m.n}): step t mixes x[t] and the states it reads with "
                      f"softmax weights a[t], which sum to 1 at every step.",
                      (Claim("softmax_sums", "Σ_i a_i[t] = 1 at every step", float(np.abs(sums - 1).max()),
                             "<=", 1e-12, "max |Σ_i a_i[t] − 1|", "10⁻¹²"),))
    if values["view"] == "backward":
        return _gradient_caption(r), base, softmax
    return softmax, base


def _base_case_claims(tr) -> tuple[str, tuple[Claim, ...]]:
    """The numbers behind the base-case sentence (and what it adds): softmax mass on zero states at
    step 1, reads of h[0]. At large weight scales the zero states' exp(0) underflows beside x[1]'s
    logit and their share is exactly 0 in float64: then the caption says that instead."""
    zero_mass = [float(np.sum(np.asarray(a)[~np.asarray(p)])) for a, p in zip(tr.a, tr.present)]
    reads_h0 = sum(int(np.sum((np.asarray(s) == 0) & np.asarray(p) & (np.asarray(lag) > 0)))
                   for s, p, lag in zip(tr.sources, tr.present, tr.lags))
    if tr.window is None:
        return "", (Claim("h0_never_read", "h[0] is never read", float(reads_h0), "==", 0.0,
                          "reads of h[0]", "0"),)
    if tr.base_case == "mask":
        return "", (Claim("no_zero_mass", "states before h[1] get no softmax mass", max(zero_mass), "==", 0.0,
                          "max mass on zero states", "0"),)
    if zero_mass[0] > 0:
        return (f" At t = 1 the zero states take {_num(zero_mass[0])} of the softmax mass.",
                (Claim("zero_mass", "zero states take softmax mass at step 1", zero_mass[0], ">", 0.0,
                       "mass on zero states at t = 1", "0"),))
    return (" At this weight scale their share underflows: at t = 1 it is exactly 0 in float64 "
            "(x[1]'s logit dominates the softmax).",
            (Claim("zero_mass_underflow", "the zero states' share at step 1 is 0 in float64", zero_mass[0],
                   "==", 0.0, "mass on zero states at t = 1", "0"),))
