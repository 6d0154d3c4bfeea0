"""AttentionRNN(k) and AttentionRNN(∞) figures, built from the reference's trace (viz.attention).

    q_0, k_0, v_0 = Q_0 x[t], K_0 x[t], V_0 x[t]
    q_i, k_i, v_i = Q_i h[t-i], K_i h[t-i], V_i h[t-i]        i = 1..k  (∞: i = 1..t-1, Q_i = Q_1 ...)
    w_i = q_iᵀ k_i,   a[t] = softmax(w_0, ..., w_k),   h[t] = Σ_i a_i[t] v_i

Which lags a step reads, which of them are zero states and every weight a_i[t] come from the trace
(`lags`, `sources`, `present`, `a`); the backward figure's norms from `AttentionGrads.delta_norms`.
Nothing here computes a formula. Everything a person reads is 1-based.
"""
from __future__ import annotations

from viz.story.graphs import common
from viz.story.graphs.model import Graph, idx, jacobian, small, sub, summary

# Compact figures draw, of every step, its reads of lags 1..COMPACT_LAGS, and every read of the last
# step (all reads exist; the figure's Story lists every weight of every step).
COMPACT_LAGS = 2
# A detailed figure with more attention edges than this is drawn compact (one label per edge).
DETAILED_MAX_EDGES = 24            # more attention reads than this are drawn compact: past it, dot's crossing
DETAILED_MAX_BACKWARD_EDGES = 18   # minimisation drops states off the row and the arcs tangle (T = 8, k = ∞)
# Zero states drawn one by one up to this many; beyond, one node stands for all of them.
MAX_ZERO_NODES = 4


def _span(model) -> str:
    return "∞" if model.k is None else str(model.k)


def _title(model, what: str) -> str:
    return f"AttentionRNN({_span(model)}) — {what} (n = {model.n})"


def base_case_note(model) -> str:
    if model.k is None:
        return ("AttentionRNN(∞): step t reads every earlier state h[1..t-1] (a[t] has t entries); "
                "h[0] is never read")
    if model.base_case == "zeros":
        return ("base case “zeros” (the literal rule): h[t-i] = 0 for t-i &lt; 1 still gets logit 0 and "
                "softmax mass; that share of h[t] is lost (its v = 0)")
    return "base case “mask”: states before h[1] are left out of the softmax (they get no mass)"


def _params_label(lag) -> str:
    return f"{sub('Q', lag)}, {sub('K', lag)}, {sub('V', lag)}"


# ---- cell: one step at the level of the equations -------------------------------------------------

def cell(model, trace, t: int, annotate: str = "shapes") -> Graph:
    """One step t: per lag the three products q_i, k_i, v_i, the dot product w_i, then the softmax
    and the weighted sum. Shows lags 0..k (∞: 0, 1, …, t-1), eliding the middle when there are many.
    With annotate="values" the numbers are those of step t of `trace` (where that lag exists).
    """
    n = model.n
    g = Graph(name="attention_rnn_cell", title=_title(model, "one time step t"), direction="TB")
    if model.k is None:
        shown = [0, 1, "…", "t-1"]
    elif model.k <= 3:
        shown = list(range(model.k + 1))
    else:
        shown = [0, 1, "…", model.k]
    # the trace row of each lag at step t (values mode), where the lag exists at that step
    lags_t = [int(i) for i in trace.lags[t - 1]]

    def row_of(lag):
        concrete = t - 1 if lag == "t-1" else lag
        return lags_t.index(concrete) if isinstance(concrete, int) and concrete in lags_t else None

    def values(name, lag):
        r = row_of(lag)
        if annotate != "values" or r is None:
            return None
        return getattr(trace, name)[t - 1][r]

    def info(dims, value=None):
        return common.node_info(annotate, dims, value)

    top, products, dots = [], [], []
    g.node("softmax", "op", "softmax", shape="box", tooltip="a[t] = softmax(w_0, ..., w_k)")
    size_a = "t" if model.k is None else f"k+1 = {model.k + 1}"
    g.node("a", "gate", "a[t]", info=info(size_a, trace.a[t - 1] if annotate == "values" else None))
    g.node("wsum", "op", "Σ<sub>i</sub> a<sub>i</sub> v<sub>i</sub>", shape="box",
           tooltip="h[t] = sum_i a_i[t] v_i")
    g.node("h", "state", idx("h", "t"), info=info(f"n = {n}", trace.h[t] if annotate == "values" else None))
    g.edge("softmax", "a")
    g.edge("a", "wsum")
    g.edge("wsum", "h")

    shared = model.k is None
    for lag in shown:
        if lag == "…":
            g.node("gap", "note", "⋯", tooltip="the lags in between, drawn the same way")
            top.append("gap")
            continue
        tag = "tm1" if lag == "t-1" else str(lag)
        src = f"s{tag}"
        if lag == 0:
            g.node(src, "input", idx("x", "t"), info=info(f"n = {n}", trace.xs[t - 1] if annotate == "values" else None))
        else:
            r = row_of(lag)
            value = None
            if annotate == "values" and r is not None:
                value = trace.states(t)[r]
            label = idx("h", "1") if lag == "t-1" else idx("h", f"t-{lag}")
            g.node(src, "state", label, info=info(f"n = {n}", value))
        p_index = 0 if lag == 0 else (1 if shared else lag)
        pid = f"P{p_index}"
        if pid not in g.nodes:
            note = "shared by every lag ≥ 1" if shared and p_index == 1 else f"each n×n = {n}×{n}"
            g.node(pid, "parameter", _params_label(p_index),
                   info=(note,) if annotate == "none" else (note,) if shared and p_index == 1 else info(note))
            top.append(pid)
        top.append(src)
        i = "t-1" if lag == "t-1" else lag
        for name, mat in (("q", "Q"), ("k", "K"), ("v", "V")):
            op = f"{name}{tag}"
            g.node(op, "op", "×", tooltip=f"{name}_{i} = {mat}_{p_index} s_{i}")
            g.edge(src, op)
            g.edge(pid, op)
            products.append(op)
        g.node(f"dot{tag}", "op", "·", tooltip=f"w_{i} = q_{i}^T k_{i}")
        dots.append(f"dot{tag}")
        sub_i = sub("q", i), sub("k", i), sub("v", i)
        g.edge(f"q{tag}", f"dot{tag}", label=_edge_label(sub_i[0], values("q", lag)))
        g.edge(f"k{tag}", f"dot{tag}", label=_edge_label(sub_i[1], values("k", lag)))
        g.edge(f"dot{tag}", "softmax", label=_edge_label(sub("w", i), values("logits", lag)))
        g.edge(f"v{tag}", "wsum", label=_edge_label(sub_i[2], values("v", lag)))
    common.order_rows(g, [top, products, dots])
    g.notes = [
        "q<sub>i</sub>, k<sub>i</sub>, v<sub>i</sub> = Q<sub>i</sub> h[t-i], K<sub>i</sub> h[t-i], "
        "V<sub>i</sub> h[t-i]  (lag 0 reads x[t]),   w<sub>i</sub> = q<sub>i</sub><sup>T</sup>k<sub>i</sub>,"
        "   a[t] = softmax(w),   h[t] = Σ<sub>i</sub> a<sub>i</sub>[t] v<sub>i</sub>",
        base_case_note(model),
    ]
    if shown[-1] != model.k and model.k is not None:
        g.notes.append(f"lags 2 … {model.k - 1} are drawn as ⋯ (they look like lag 1)")
    if annotate == "values":
        g.notes.append(f"numbers: step t = {t} of a reference run (a lag that does not exist at that step "
                       "has none)")
    return g


def _edge_label(name: str, value) -> str:
    return name if value is None else f"{name}<br/>{small(summary(value, 'values'))}"


# ---- unrolled and backward ------------------------------------------------------------------------

def _reads(trace, t: int) -> list[tuple[int, int, bool, float]]:
    """(lag, source, present, a) of every lag step t includes, in the trace's order (lag 0 first)."""
    return [(int(i), int(s), bool(p), float(a)) for i, s, p, a in
            zip(trace.lags[t - 1], trace.sources[t - 1], trace.present[t - 1], trace.a[t - 1])]


def _zero_sources(trace) -> list[int]:
    """Course times < 1 of zero states some step reads (base case "zeros"), oldest first."""
    out = set()
    for t in range(1, trace.T + 1):
        for lag, src, present, _ in _reads(trace, t):
            if lag > 0 and not present:
                out.add(src)
    return sorted(out)


def _zero_id(src: int, merged: bool) -> str:
    return "hz" if merged else ("h0" if src == 0 else f"hm{-src}")


def _width(a: float) -> float:
    return 0.6 + 5.0 * a


def _a_label(a: float) -> str:
    return f"{a:.2f}"


def _step_tooltip(trace, t: int) -> str:
    parts = [f"a_{lag}={a:.4f}" + ("" if present else " (zero state)")
             for lag, _, present, a in _reads(trace, t)]
    return f"h[{t}]: " + ", ".join(parts)


def _attention_edges(trace) -> int:
    return sum(len(trace.lags[t - 1]) for t in range(1, trace.T + 1))


def unrolled(model, trace, annotate: str = "shapes", grads=None, dl_dh=None) -> Graph:
    """T steps left to right, one framed column per step; each arrow into h[t] is one term of
    h[t] = Σ_i a_i[t] v_i, from x[t] (lag 0) or h[t-i], labelled with a_i[t] and as wide as it.

    Zero states read under the literal base case are grey dashed nodes h[0], h[-1], ... stacked left
    of h[1], with their arrows (that is where their softmax mass goes). With `grads` (and the upstream
    `dl_dh`) this is the backward figure: every read of a real state carries gradient back,
    δ[t] → δ[t-i], labelled with the transposed Jacobian (∂h[t]/∂h[t-i])ᵀ.
    Long runs or many reads are drawn compact (`_compact`).
    """
    T = trace.T
    backward = grads is not None
    limit = DETAILED_MAX_BACKWARD_EDGES if backward else DETAILED_MAX_EDGES
    if common.is_compact(T) or _attention_edges(trace) > limit:
        return _compact(model, trace, annotate, grads, dl_dh)
    n = model.n
    what = f"backward through T = {T} steps" if backward else f"unrolled over T = {T} steps"
    g = Graph(name="attention_rnn_backward" if backward else "attention_rnn_unrolled",
              title=_title(model, what), direction="LR", rank_gap=0.3)
    dn = f"n = {n}"
    reads = {t: _reads(trace, t) for t in range(1, T + 1)}
    zeros = _zero_sources(trace)
    merged = len(zeros) > MAX_ZERO_NODES
    # rows, top to bottom: δ (backward; its arcs pass over it), h, x. Zero states older than h[0] are
    # stacked in the first column: above h[0] in the forward figure (their arcs then pass over the
    # states like every read of an older state), below it in the backward figure (above would be
    # past the gradients).
    older = 0 if merged else sum(1 for z in zeros if z < 0)
    above = older if not backward else 0
    row_d = above
    row_h = above + (1 if backward else 0)
    row_x = row_h + 1
    cells = {}

    _params_node(g, model, T, annotate)
    cells["P"] = (0, row_x + (older if backward else 0))
    if backward:
        intensities, lo, hi = common.norm_scale(grads.delta_norms)
        _param_grads_node(g, grads, T, annotate)
        cells["dP"] = (0, row_d)
    if merged:
        g.node("hz", "padding", "h[t-i] = 0<br/>(t-i &lt; 1)", tooltip="every zero state the steps read")
        cells["hz"] = (0, row_h)
    else:
        for src in zeros:
            zid = _zero_id(src, False)
            g.node(zid, "padding", f"h[{src}] = 0", tooltip="a zero state read under the literal base case")
            cells[zid] = (0, row_h - src if backward else row_h + src)
    if not zeros:
        g.node("h0", "never_read", "h[0] = 0", info=("never read",),
               tooltip="no step reads h[0]: the base case leaves states before h[1] out")
        cells["h0"] = (0, row_h)

    for t in range(1, T + 1):
        cl = f"step{t}"
        g.cluster(cl, f"step {t}")
        g.node(f"x{t}", "input", idx("x", t), cluster=cl, info=common.node_info(annotate, dn, trace.xs[t - 1]))
        g.node(f"h{t}", "state", idx("h", t), cluster=cl, info=common.node_info(annotate, dn, trace.h[t]),
               tooltip=_step_tooltip(trace, t))
        cells.update({f"x{t}": (t, row_x), f"h{t}": (t, row_h)})
        if backward:
            common.delta_node(g, grads, t, intensities[t - 1], annotate, cluster=cl)
            cells[f"d{t}"] = (t, row_d)
        g.nodes[f"h{t}"].ordering = "in"     # older sources above: the arcs pass over the states
        for lag, src, present, a in sorted(reads[t], key=lambda r: -r[0] if r[0] else 1):
            tail = f"x{t}" if lag == 0 else (f"h{src}" if present else _zero_id(src, merged))
            g.edge(tail, f"h{t}", "attention", label=None if backward else _a_label(a), width=_width(a), value=a,
                   weight=4 if lag == 1 else 1,
                   tooltip=f"a_{lag}[{t}] = {a:.6g}" + ("" if present else " (zero state)"))

    if backward:
        g.node("loss", "loss", "ℓ")
        cells["loss"] = (T + 1, row_h)
        g.edge(f"h{T}", "loss")
        common.loss_edges(g, T, dl_dh, intensities)
        for t in range(T, 0, -1):
            g.nodes[f"d{t}"].ordering = "in"
            for lag, src, present, a in sorted(reads[t], key=lambda r: -r[0]):  # older sources above
                if lag == 0 or not present:
                    continue        # gradients to x[t] and to constant zero states are not drawn
                g.edge(f"d{src}", f"d{t}", "gradient", reverse=True, label=jacobian(t, src),
                       width=common.gradient_width(intensities[t - 1]), weight=4 if lag == 1 else 1,
                       tooltip=f"times (dh[{t}]/dh[{src}])^T")
        g.scale_note = common.scale_note(lo, hi)
        g.notes += [DELTA_RULE, JACOBIAN]

    reads_note = ("arrow into h[t]: one term a<sub>i</sub>[t] v<sub>i</sub>; "
                  + ("width" if backward else "label and width")
                  + ": the attention weight a<sub>i</sub>[t] of the reference run")
    g.notes = [EQUATIONS, reads_note, base_case_note(model)] + g.notes
    common.grid(g, cells)
    return g


EQUATIONS = ("h[t] = Σ<sub>i</sub> a<sub>i</sub>[t] V<sub>i</sub> s<sub>i</sub>,  a[t] = softmax"
             "<sub>i</sub>((Q<sub>i</sub>s<sub>i</sub>)<sup>T</sup>K<sub>i</sub>s<sub>i</sub>),  "
             "s<sub>0</sub> = x[t], s<sub>i</sub> = h[t-i]")
DELTA_RULE = ("δ[t] = dℓ/dh[t] = ∂ℓ/∂h[t] + Σ<sub>i≥1</sub> (∂h[t+i]/∂h[t])<sup>T</sup> δ[t+i]   "
              "(‖δ[t]‖ measured by the reference)")
JACOBIAN = ("∂h[t]/∂h[t-i] = a<sub>i</sub> [V<sub>i</sub> + (V<sub>i</sub>h[t-i] − h[t]) h[t-i]<sup>T</sup>"
            " (Q<sub>i</sub><sup>T</sup>K<sub>i</sub> + K<sub>i</sub><sup>T</sup>Q<sub>i</sub>)]")


def _params_node(g: Graph, model, T: int, annotate: str) -> None:
    if model.k is None:
        label = f"{_params_label(0)},<br/>{_params_label(1)}"
        lines = ["index 1 shared by every lag ≥ 1"]
    else:
        last = model.k
        label = f"{_params_label(0)} … <br/>{_params_label(last)}" if last > 1 else \
            f"{_params_label(0)},<br/>{_params_label(1)}"
        lines = []
    lines.append(f"shared by steps 1–{T}")
    if annotate != "none":
        P = model.param_shape[0]
        lines.append(f"3 × {P}×{model.n}×{model.n}")
    g.node("P", "parameter", label, info=tuple(lines), tooltip="Q, K, V: one set for every step")


def _param_grads_node(g: Graph, grads, T: int, annotate: str) -> None:
    common.param_grads_node(g, "dP", "∂ℓ/∂Q, ∂ℓ/∂K, ∂ℓ/∂V", (grads.dQ, grads.dK, grads.dV), T, annotate)


def _compact_lags(trace) -> int:
    """Lags every step's reads are drawn for in a compact figure: COMPACT_LAGS, 1 for AttentionRNN(∞)."""
    return 1 if trace.window is None else min(trace.window, COMPACT_LAGS)


def _compact_reads(trace, t: int) -> list[tuple[int, int, bool, float]]:
    """The reads of earlier (or zero) states a compact figure draws for step t (see COMPACT_LAGS)."""
    return [r for r in _reads(trace, t) if r[0] > 0 and (r[0] <= _compact_lags(trace) or t == trace.T)]


def _compact(model, trace, annotate: str, grads, dl_dh) -> Graph:
    """Long runs: one node per step in rows of ROW_STEPS; of the reads, those of lags up to COMPACT_LAGS
    for every step and all reads of the last step are drawn (AttentionRNN(∞): the chain, and h[T]
    reading every earlier state), width ∝ a_i[t]; every weight is in the figure's Story (story.json).
    Backward: the δ[t] nodes with their norms and the gradient along the same reads.
    """
    T = trace.T
    R = common.ROW_STEPS
    backward = grads is not None
    what = f"backward through T = {T} steps" if backward else f"unrolled over T = {T} steps"
    g = Graph(name="attention_rnn_backward" if backward else "attention_rnn_unrolled",
              title=_title(model, what), direction="TB", compact=True, rank_gap=0.5)
    cells = {}
    drawn = {t: _compact_reads(trace, t) for t in range(1, T + 1)}
    total = sum(1 for t in range(1, T + 1) for r in _reads(trace, t) if r[0] > 0)
    shown = sum(len(v) for v in drawn.values())
    uses_zero = any(not p for reads in drawn.values() for _, _, p, _ in reads)
    if backward:
        _param_grads_node(g, grads, T, annotate)
        intensities, lo, hi = common.compact_backward_nodes(g, grads, dl_dh, T, annotate, cells, "dP")
        for t in range(T, 0, -1):
            for lag, src, present, a in drawn[t]:
                if present:
                    g.edge(f"d{src}", f"d{t}", "gradient", reverse=True,
                           width=common.gradient_width(intensities[t - 1]),
                           tooltip=f"times (dh[{t}]/dh[{src}])^T",
                           overlay=cells[f"d{src}"][1] != cells[f"d{t}"][1])
        g.scale_note = common.scale_note(lo, hi)
        g.notes = [base_case_note(model), DELTA_RULE.replace("(‖δ[t]‖", "(number under δ[t]: ‖δ[t]‖"),
                   JACOBIAN, common.loss_note(T, dl_dh)]
    else:
        if uses_zero:
            g.node("hz", "padding", "h[t-i] = 0<br/>(t-i &lt; 1)")
            cells["hz"] = (0, 0)
        offset = 1 if uses_zero else 0
        for t in range(1, T + 1):
            r, j = divmod(t - 1, R)
            g.node(f"h{t}", "state", idx("h", t), tooltip=_step_tooltip(trace, t))
            cells[f"h{t}"] = (j + offset, r)
        for t in range(1, T + 1):
            for lag, src, present, a in drawn[t]:
                tail = f"h{src}" if present else "hz"
                g.edge(tail, f"h{t}", "attention", width=_width(a), value=a,
                       tooltip=f"a_{lag}[{t}] = {a:.6g}", overlay=cells[tail][1] != cells[f"h{t}"][1])
        g.notes = [EQUATIONS, base_case_note(model),
                   f"Q<sub>i</sub>, K<sub>i</sub>, V<sub>i</sub> are shared by steps 1–{T}"]
    lags = "lag 1" if _compact_lags(trace) == 1 else f"lags 1–{_compact_lags(trace)}"
    g.notes.append(f"T = {T}: one node per step, {R} steps per row, inputs x[t] not drawn; drawn: the reads "
                   f"of {lags} of every step and all reads of step {T} ({shown} of {total} reads; "
                   f"width ∝ a<sub>i</sub>[t]; every weight a[t] is in the figure's story.json)")
    common.grid(g, cells)
    return g
