"""Gated RNN figures, built from the reference's trace (viz.rnn): cell, unrolled, backward.

    c[t] = σ(W_c x[t] + W_h h[t-1])
    h[t] = c[t] ⊙ h[t-1] + (1 - c[t]) ⊙ W_x x[t]

The figures read `GatedTrace` (h, z, c, u) and `GatedGrads` (delta_norms, dW_*); they never compute
a formula. Everything a person reads is 1-based: h[0] = 0, steps 1..T.
"""
from __future__ import annotations

from viz.story.graphs import common
from viz.story.graphs.model import Graph, hbox, idx, jacobian, small, sub, summary

W_C, W_H, W_X = sub("W", "c"), sub("W", "h"), sub("W", "x")


def _sizes(model) -> tuple[int, int]:
    m, n = model.W_x.shape
    return n, m


def _edge_label(name: str, annotate: str, dims: str, value=None) -> str:
    if annotate == "none":
        return name
    text = f"{name}<br/>{small(dims)}"
    if annotate == "values" and value is not None:
        text += f"<br/>{small(summary(value, 'values'))}"
    return text


def _title(model, what: str, preset: str | None) -> str:
    n, m = _sizes(model)
    p = f", preset “{preset}”" if preset and preset != "none" else ""
    return f"Gated RNN — {what} (n = {n}, m = {m}{p})"


# ---- cell: one step at the level of the equations -------------------------------------------------

def cell(model, trace, t: int, annotate: str = "shapes", preset: str | None = None) -> Graph:
    """One step t (1-based) as matrix products, sum, σ, 1 − c, two Hadamard products and the final sum.

    With annotate="values" the numbers are those of step t of the reference run `trace`.
    """
    n, m = _sizes(model)
    r = t - 1                      # row of the per-step arrays
    g = Graph(name="gated_rnn_cell", title=_title(model, "one time step t", preset), direction="TB")
    g.notes = [
        f"c[t] = σ({W_C} x[t] + {W_H} h[t-1]),   h[t] = c[t] ⊙ h[t-1] + (1 − c[t]) ⊙ {W_X} x[t]",
        f"z[t] = {W_C} x[t] + {W_H} h[t-1] is the gate's pre-activation, u[t] = {W_X} x[t];"
        f"  ⊙ multiplies element by element",
    ]
    if annotate == "values":
        g.notes.append(f"numbers: step t = {t} of a reference run; ‖·‖ is the Euclidean (Frobenius) norm")
    dm, dn = f"m = {m}", f"n = {n}"
    g.node("x", "input", idx("x", "t"), info=common.node_info(annotate, dn, trace.xs[r]))
    g.node("h_prev", "state", idx("h", "t-1"), info=common.node_info(annotate, dm, trace.h[t - 1]))
    g.node("W_c", "parameter", W_C, info=common.node_info(annotate, f"m×n = {m}×{n}", model.W_c))
    g.node("W_h", "parameter", W_H, info=common.node_info(annotate, f"m×m = {m}×{m}", model.W_h))
    g.node("W_x", "parameter", W_X, info=common.node_info(annotate, f"m×n = {m}×{n}", model.W_x))
    g.node("mul_c", "op", "×", tooltip="W_c x[t]")
    g.node("mul_h", "op", "×", tooltip="W_h h[t-1]")
    g.node("mul_x", "op", "×", tooltip="u[t] = W_x x[t]")
    g.node("add_z", "op", "+", tooltip="z[t] = W_c x[t] + W_h h[t-1]")
    g.node("sigma", "op", "σ", tooltip="c[t] = σ(z[t])")
    g.node("gate", "gate", idx("c", "t"), info=common.node_info(annotate, dm, trace.c[r]))
    g.node("one_minus", "op", "1 − ·", shape="box", tooltip="1 - c[t]")
    g.node("had_h", "op", "⊙", tooltip="c[t] ⊙ h[t-1]")
    g.node("had_u", "op", "⊙", tooltip="(1 - c[t]) ⊙ u[t]")
    g.node("add_h", "op", "+", tooltip="h[t]")
    g.node("h", "state", idx("h", "t"), info=common.node_info(annotate, dm, trace.h[t]))

    g.edge("W_c", "mul_c")
    g.edge("x", "mul_c")
    g.edge("W_h", "mul_h")
    g.edge("h_prev", "mul_h")
    g.edge("mul_c", "add_z")
    g.edge("mul_h", "add_z")
    g.edge("add_z", "sigma", label=_edge_label("z[t]", annotate, dm, trace.z[r]))
    g.edge("sigma", "gate")
    g.edge("W_x", "mul_x")
    g.edge("x", "mul_x")
    g.edge("gate", "had_h")
    g.edge("h_prev", "had_h")
    g.edge("gate", "one_minus")
    g.edge("one_minus", "had_u", label=_edge_label("1 − c[t]", annotate, dm))
    g.edge("mul_x", "had_u", label=_edge_label("u[t]", annotate, dm, trace.u[r]))
    g.edge("had_h", "add_h", label=_edge_label("c[t] ⊙ h[t-1]", annotate, dm))
    g.edge("had_u", "add_h", label=_edge_label("(1 − c[t]) ⊙ u[t]", annotate, dm))
    g.edge("add_h", "h")
    common.order_rows(g, [["W_x", "x", "W_c", "W_h", "h_prev"], ["mul_x", "mul_c", "mul_h"]])
    return g


# ---- unrolled and backward ------------------------------------------------------------------------

def unrolled(model, trace, annotate: str = "shapes", grads=None, dl_dh=None, preset: str | None = None) -> Graph:
    """T steps left to right, one framed column per step, the tied weights drawn once, h[0] = 0.

    Each column holds, top to bottom, (J[t], δ[t],) h[t], c[t], x[t]. With `grads` (and the upstream
    `dl_dh` it was computed from) this is the backward figure: the gradient path drawn in reverse,
    δ[t] → "× (∂h[t]/∂h[t-1])ᵀ" (above δ[t]) → δ[t-1], and ‖δ[t]‖ from the reference on a log colour
    scale.
    Long chains (T > common.DETAILED_MAX_STEPS) are drawn compact (see `_compact`).
    """
    T = trace.T
    n, m = _sizes(model)
    backward = grads is not None
    if common.is_compact(T):
        return _compact(model, trace, annotate, grads, dl_dh, preset)
    what = f"backward through T = {T} steps" if backward else f"unrolled over T = {T} steps"
    g = Graph(name="gated_rnn_backward" if backward else "gated_rnn_unrolled",
              title=_title(model, what, preset), direction="LR", rank_gap=0.2 if backward else 0.5)
    g.notes = [EQUATIONS]
    dm, dn = f"m = {m}", f"n = {n}"
    lv = {"J": 0, "d": 1, "h": 2, "c": 3, "x": 4} if backward else {"h": 0, "c": 1, "x": 2}

    cells = {"W": (0, lv["c"]), "h0": (0, lv["h"])}
    _weights_node(g, T, m, n, annotate)
    g.node("h0", "padding", "h[0] = 0", info=common.node_info(annotate, dm))
    if backward:
        intensities, lo, hi = common.norm_scale(grads.delta_norms)
        _weight_grads_node(g, grads, T, annotate)
        cells["dW"] = (0, lv["d"])

    col = 1
    for t in range(1, T + 1):
        if backward and t > 1:
            # δ[t-1] = ∂ℓ/∂h[t-1] + (∂h[t]/∂h[t-1])ᵀ δ[t]: "multiply by the transposed Jacobian"
            g.node(f"J{t}", "op", hbox("× ", jacobian(t, t - 1)), shape="box",
                   tooltip=f"multiply by the transposed Jacobian (dh[{t}]/dh[{t - 1}])^T")
            cells[f"J{t}"] = (col, lv["J"])       # above δ[t]: δ[t] → J[t] → δ[t-1]
        cl = f"step{t}"
        g.cluster(cl, f"step {t}")
        g.node(f"x{t}", "input", idx("x", t), cluster=cl, info=common.node_info(annotate, dn, trace.xs[t - 1]))
        g.node(f"c{t}", "gate", idx("c", t), cluster=cl, info=common.node_info(annotate, dm, trace.c[t - 1]))
        g.node(f"h{t}", "state", idx("h", t), cluster=cl, info=common.node_info(annotate, dm, trace.h[t]))
        cells.update({f"x{t}": (col, lv["x"]), f"c{t}": (col, lv["c"]), f"h{t}": (col, lv["h"])})
        if backward:
            common.delta_node(g, grads, t, intensities[t - 1], annotate, cluster=cl)
            cells[f"d{t}"] = (col, lv["d"])
        col += 1

    for t in range(1, T + 1):
        prev = "h0" if t == 1 else f"h{t - 1}"
        g.edge(prev, f"h{t}", weight=5)
        g.edge(prev, f"c{t}")
        g.edge(f"x{t}", f"c{t}")
        g.edge(f"c{t}", f"h{t}")
        g.edge(f"x{t}", f"h{t}")

    if backward:
        g.node("loss", "loss", "ℓ")
        cells["loss"] = (col, lv["h"])
        g.edge(f"h{T}", "loss", weight=5)
        common.loss_edges(g, T, dl_dh, intensities)
        for t in range(T, 1, -1):
            width = common.gradient_width(intensities[t - 1])
            g.edge(f"J{t}", f"d{t}", "gradient", reverse=True, weight=5, width=width)
            g.edge(f"d{t - 1}", f"J{t}", "gradient", reverse=True, weight=5, width=width)
        g.scale_note = common.scale_note(lo, hi)
        g.notes += [DELTA_RULE, JACOBIAN.format(name="∂h[t]/∂h[t-1]")]
    common.grid(g, cells)
    return g


EQUATIONS = (f"c[t] = σ({W_C} x[t] + {W_H} h[t-1]),   h[t] = c[t] ⊙ h[t-1] + (1 − c[t]) ⊙ {W_X} x[t]")
DELTA_RULE = ("δ[t] = dℓ/dh[t] = ∂ℓ/∂h[t] + (∂h[t+1]/∂h[t])<sup>T</sup> δ[t+1]   "
              "(‖δ[t]‖ measured by the reference)")
JACOBIAN = ("{name} = diag(c[t]) + diag(c[t] ⊙ (1 − c[t]) ⊙ (h[t-1] − u[t])) " + W_H
            + ",  u[t] = " + W_X + " x[t]")


def _weights_node(g: Graph, T: int, m: int, n: int, annotate: str) -> None:
    info = (f"shared by steps 1–{T}",)
    if annotate != "none":
        info += (f"{m}×{n}, {m}×{m}, {m}×{n}",)
    g.node("W", "parameter", f"{W_C}, {W_H}, {W_X}", info=info,
           tooltip="the one set of weights every step uses (tied weights)")


def _weight_grads_node(g: Graph, grads, T: int, annotate: str) -> None:
    common.param_grads_node(g, "dW", f"∂ℓ/∂{W_C}, ∂ℓ/∂{W_H},<br/>∂ℓ/∂{W_X}",
                            (grads.dW_c, grads.dW_h, grads.dW_x), T, annotate)


def _compact(model, trace, annotate: str, grads, dl_dh, preset) -> Graph:
    """Long chains: one node per step (no gates, no frames), wrapped into rows of ROW_STEPS steps.

    Unrolled: a row of inputs over a row of states. Backward: the gradient path only, δ[t] with its
    norm and each arrow labelled J[t]ᵀ.
    """
    T = trace.T
    n, m = _sizes(model)
    backward = grads is not None
    R = common.ROW_STEPS
    what = f"backward through T = {T} steps" if backward else f"unrolled over T = {T} steps"
    g = Graph(name="gated_rnn_backward" if backward else "gated_rnn_unrolled",
              title=_title(model, what, preset), direction="TB", compact=True, rank_gap=0.45)
    g.notes = [EQUATIONS]
    dm, dn = f"m = {m}", f"n = {n}"
    cells = {}
    if backward:
        _weight_grads_node(g, grads, T, annotate)
        intensities, lo, hi = common.compact_backward_nodes(g, grads, dl_dh, T, annotate, cells, "dW")
        for t in range(T, 1, -1):
            g.edge(f"d{t - 1}", f"d{t}", "gradient", reverse=True,
                   width=common.gradient_width(intensities[t - 1]), tooltip=f"times J[{t}]^T")
        g.scale_note = common.scale_note(lo, hi)
        g.notes += [DELTA_RULE.replace("(‖δ[t]‖", "(number under δ[t]: ‖δ[t]‖"),
                    "the arrow from δ[t] to δ[t-1] multiplies by J[t]<sup>T</sup>, "
                    + JACOBIAN.format(name="J[t] = ∂h[t]/∂h[t-1]"), common.loss_note(T, dl_dh),
                    f"T = {T}: the gradient path only, {R} steps per row "
                    f"(the forward graph is in the unrolled view)"]
    else:
        _weights_node(g, T, m, n, annotate)
        g.node("h0", "padding", "h[0] = 0", info=common.node_info(annotate, dm))
        cells.update({"W": (0, 0), "h0": (0, 1)})
        for t in range(1, T + 1):
            r, j = divmod(t - 1, R)
            g.node(f"x{t}", "input", idx("x", t), info=common.node_info(annotate, dn, trace.xs[t - 1]))
            g.node(f"h{t}", "state", idx("h", t), info=common.node_info(annotate, dm, trace.h[t]))
            cells.update({f"x{t}": (j + 1, 2 * r), f"h{t}": (j + 1, 2 * r + 1)})
            g.edge("h0" if t == 1 else f"h{t - 1}", f"h{t}", weight=5)
            g.edge(f"x{t}", f"h{t}")
        g.notes.append(f"T = {T}: one column per step without the gates c[t], {R} steps per row")
    common.grid(g, cells)
    return g
