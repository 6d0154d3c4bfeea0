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


def user_data(values: dict) -> dict:
    """The user's own numbers among `values`, as the runs take them: {"weights": {key: array} or None,
    "inputs": (T, n) array or None} (viz.app.registry has checked names and shapes)."""
    weights, inputs = values.get("weights"), values.get("inputs")
    return {"weights": None if weights is None else {key: np.asarray(a, dtype=float) for key, a in dict(weights).items()},
            "inputs": None if inputs is None else np.asarray(inputs, dtype=float)}


def source_words(values: dict) -> str:
    """Whose numbers the figure draws, for titles and captions: "your weights", "your inputs", both or ""."""
    given = [w for w in ("weights", "inputs") if values.get(w) is not None]
    return "your " + " and ".join(given) if given else ""


def run(kind: str, values: dict):
    """The reference run (viz.rnn.FigureRun) the figure draws: gradients only for the backward view."""
    backward = values["view"] == "backward"
    with np.errstate(all="ignore"):        # the user's numbers may overflow: said below in one line
        if kind == "gated-rnn":
            from viz import rnn
            r = rnn.gated_run(values["steps"], values["n"], values["m"], seed=values["seed"],
                              preset=values["preset"], scale=values["scale"], backward=backward,
                              **user_data(values))
        else:
            from viz import attention
            r = attention.attention_run(values["steps"], values["n"], values["k"], seed=values["seed"],
                                        preset=values["preset"], base_case=values["base_case"],
                                        scale=values["scale"], backward=backward, **user_data(values))
    return check_finite(r, values)


def check_finite(r, values: dict):
    """`r` if its states and gradients are finite; else ValueError naming the user's flag: with their
    numbers float64 can overflow (huge weights, AttentionRNN's growing states), and nothing is drawn."""
    if not source_words(values):
        return r
    flag = "--weights" if values.get("weights") is not None else "--inputs"
    h = np.asarray(r.trace.h, dtype=float).reshape(r.trace.T + 1, -1)
    rows = [t for t in range(r.trace.T + 1) if not np.all(np.isfinite(h[t]))]
    if rows:
        raise ValueError(f"{flag}: with {source_words(values)} the states overflow float64 (h[{rows[0]}] is not "
                         "finite); use smaller numbers")
    norms = np.asarray(r.grads.delta_norms if r.grads is not None else (), dtype=float)
    if not np.all(np.isfinite(norms)):
        t = int(np.flatnonzero(~np.isfinite(norms))[-1]) + 1
        raise ValueError(f"{flag}: with {source_words(values)} the gradient overflows float64 on its way back "
                         f"(‖δ[{t}]‖ is not finite); use smaller numbers")
    return r


def graph_model(kind: str, values: dict, r) -> model.Graph:
    """The graph model of the figure from its run `r` (its title says whose numbers it draws)."""
    g = _graph_model(kind, values, r)
    if source_words(values):
        g.title = f"{g.title}, with {source_words(values)}"
    return g


def _graph_model(kind: str, values: dict, r) -> model.Graph:
    view, annotate = values["view"], values["annotate"]
    preset = None if values.get("weights") is not None else values["preset"]
    if kind == "gated-rnn":
        from viz.story.graphs import gated_rnn as g
        if view == "cell":
            return g.cell(r.model, r.trace, r.trace.T, annotate, preset)
        return g.unrolled(r.model, r.trace, annotate, r.grads, r.dl_dh, preset)
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
    captions += user_captions(kind, values, r)
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
    return Story(kind=f"diagram {kind}", params=story_params(values), title=title,
                 formula=tuple(plain(n) for n in g.notes[:1]), graph=story_graph(g), steps=(step,),
                 captions=captions, alt=alt, description=description)


def story_params(values: dict) -> dict:
    """The Story's params: the values, the user's weights as {key: nested lists} (plain data); with
    them no preset or scale applies, so those say "your weights" and None."""
    params = dict(values)
    if params.get("weights") is not None:
        params["weights"] = {key: _lists(a) for key, a in dict(params["weights"]).items()}
        params.update(preset="your weights", **({"scale": None} if "scale" in params else {}))
    return params


def _lists(a):
    return [_lists(v) for v in a] if isinstance(a, (tuple, list)) else a


def user_captions(kind: str, values: dict, r) -> tuple[Caption, ...]:
    """What says the numbers are the user's, with claims that the run used exactly them."""
    given = user_data(values)
    if given["weights"] is None and given["inputs"] is None:
        return ()
    claims, parts = [], []
    tr = r.trace
    if given["weights"] is not None:
        drawn = user_weights_of(kind, tr)
        names = list(drawn)
        diff = max(float(np.abs(drawn[key] - given["weights"][key]).max()) for key in names)
        parts.append(f"your weights ({', '.join(names) if len(names) <= 6 else f'{names[0]} … {names[-1]}'})")
        claims.append(Claim("your_weights", "the run uses your weights exactly", diff, "==", 0.0,
                            "max |drawn − given| over the weights", "0"))
    else:
        parts.append("the preset's weights" if values.get("preset", "none") != "none" else "seeded weights")
    if given["inputs"] is not None:
        parts.append(f"your inputs x[1..{tr.T}]")
        claims.append(Claim("your_inputs", "the run reads your inputs exactly",
                            float(np.abs(tr.xs - given["inputs"]).max()), "==", 0.0, "max |x drawn − given|", "0"))
    else:
        parts.append("seeded inputs")
    text = f"The numbers are {parts[0]} on {parts[1]}; every claim above is computed from them."
    return (Caption(text, tuple(claims)),)


def user_weights_of(kind: str, tr) -> dict:
    """The weights a trace ran with, under the names a weights file gives them (viz.rnn_weights)."""
    if kind == "gated-rnn":
        return {"W_c": tr.W_c, "W_h": tr.W_h, "W_x": tr.W_x}
    from viz.attention import weight_names
    names = weight_names(tr.window)
    count = len(names) // 3
    return {name: getattr(tr, name[0])[i % count] for i, name in enumerate(names)}


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
