"""Pieces both recurrent figures share: the log scale of gradient norms, row wrapping of long chains,
and the loss / gradient nodes of a backward figure. Display logic only: every number comes from the
reference's trace and gradients.
"""
from __future__ import annotations

import math

import numpy as np

from viz.story.graphs.model import Graph, fmt_num, frac, idx, summary

# Detailed layouts (one cluster per step, left to right) up to this many steps; longer chains are drawn
# compact: one node per step, wrapped into rows of ROW_STEPS so a 700 px wide page can still read them.
DETAILED_MAX_STEPS = 8
ROW_STEPS = 8

# Fixed decades of the gradient-norm colour scale, widened when the data leave it, so figures of the
# vanish and explode presets can be compared side by side.
LOG_LO, LOG_HI = -2, 2


def norm_scale(norms) -> tuple[list[float], int, int]:
    """Intensities in [0, 1] of positive norms on a log10 scale, with the scale's decades (lo, hi).

    Zero norms get intensity 0. 10^lo -> 0, 10^hi -> 1.
    """
    norms = np.asarray(norms, dtype=float)
    logs = [math.log10(v) for v in norms if v > 0]
    lo = min([LOG_LO] + [math.floor(v) for v in logs])
    hi = max([LOG_HI] + [math.ceil(v) for v in logs])
    out = []
    for v in norms:
        out.append(0.0 if v <= 0 else (math.log10(v) - lo) / (hi - lo))
    return out, lo, hi


def scale_note(lo: int, hi: int) -> str:
    return (f"gradient fill and line width grow with log<sub>10</sub>‖δ[t]‖ "
            f"(palest 10<sup>{lo}</sup>, strongest 10<sup>{hi}</sup>)")


def gradient_width(intensity: float) -> float:
    return 0.8 + 4.2 * intensity


def norm_text(name: str, value: float) -> str:
    return f"‖{name}‖ = {fmt_num(value)}"


def rows_of(steps: int, per_row: int = ROW_STEPS) -> list[list[int]]:
    """1-based steps split into rows: rows_of(10, 4) -> [[1,2,3,4],[5,6,7,8],[9,10]]."""
    return [list(range(s, min(s + per_row, steps + 1))) for s in range(1, steps + 1, per_row)]


def is_compact(steps: int) -> bool:
    return steps > DETAILED_MAX_STEPS


def grid(g: Graph, cells: dict[str, tuple[int, int]]) -> None:
    """Place nodes on a grid: node id -> (column, row), columns left to right, row 0 on top.

    Graphviz keeps ranks exactly but orders the nodes inside a rank heuristically. Direction LR makes
    each column a rank (detailed figures: time runs along the ranks); direction TB makes each row a
    rank (compact figures that wrap into rows). Either way invisible edges alone fix the ranks and,
    as flat edges, the order inside each rank (a flat edge's tail comes first: above in LR, left in
    TB), and invisible edges along the other axis keep rows straight / columns aligned. Drawn edges
    inside a rank or against the rank order are made non-constraining. Graphviz honours
    flat-edge order only outside clusters, so the renderer draws the step clusters of a grid figure
    as frames after the layout (render.py). tests/test_diagrams_layout.py checks the result.
    """
    if g.direction not in ("LR", "TB"):
        raise ValueError(f"grid: direction must be LR or TB (got {g.direction!r})")
    g.grid = dict(cells)
    for nid in cells:
        if nid not in g.nodes:
            raise ValueError(f"grid: unknown node {nid!r}")
    rank_of = (lambda c, r: c) if g.direction == "LR" else (lambda c, r: r)
    place_of = (lambda c, r: r) if g.direction == "LR" else (lambda c, r: c)
    ranks: dict[int, list[tuple[int, str]]] = {}
    lines: dict[int, list[tuple[int, str]]] = {}     # rows (LR) or columns (TB), across the ranks
    for nid, (c, r) in cells.items():
        ranks.setdefault(rank_of(c, r), []).append((place_of(c, r), nid))
        lines.setdefault(place_of(c, r), []).append((rank_of(c, r), nid))
    for e in g.edges:
        tail, head = cells.get(e.tail), cells.get(e.head)
        if e.kind != "invisible" and tail and head and rank_of(*tail) >= rank_of(*head):
            e.constraint = False
    firsts = []
    for k in sorted(ranks):
        members = [nid for _, nid in sorted(ranks[k])]
        g.same_rank(members)
        for a, b in zip(members, members[1:]):
            g.edge(a, b, "invisible", weight=1)     # order (weight 0 would not keep it); little pull
        firsts.append(members[0])
    for a, b in zip(firsts, firsts[1:]):
        g.edge(a, b, "invisible", weight=0)
    for k in sorted(lines):     # keep rows straight (LR) / columns aligned (TB)
        members = [nid for _, nid in sorted(lines[k])]
        for a, b in zip(members, members[1:]):
            g.edge(a, b, "invisible", weight=20)
        for nid in members:
            g.nodes[nid].group = f"line{k}"


def order_rows(g: Graph, rows: list[list[str]]) -> None:
    """In a TB figure without clusters: keep each list of nodes on one rank, in this order left to right."""
    for row in rows:
        g.same_rank(row)
        for a, b in zip(row, row[1:]):
            g.edge(a, b, "invisible")


def node_info(annotate: str, dims: str, value=None) -> tuple[str, ...]:
    """Node annotation lines: the symbolic size with its numbers (shapes), then the values (values)."""
    if annotate == "none":
        return ()
    lines = [dims]
    if annotate == "values" and value is not None:
        lines.append(summary(value, "values"))
    return tuple(lines)


# ---- the gradient side of backward figures (both networks) ------------------------------------------

def param_grads_node(g: Graph, node_id: str, label: str, arrays, T: int, annotate: str) -> None:
    """One node for the parameter gradients, summed over the steps with the totals δ[t]."""
    info = (f"Σ over steps 1–{T}",)
    if annotate == "values":
        info += ("‖·‖ = " + ", ".join(summary(a, "norm") for a in arrays),)
    g.node(node_id, "gradient", label, info=info,
           tooltip="parameter gradients, accumulated over every step with the totals delta[t]")


def delta_node(g: Graph, grads, t: int, intensity: float, annotate: str, cluster=None,
               short: bool = False) -> None:
    """δ[t] with its measured norm (and its numbers, when annotated and there is room)."""
    norm = float(grads.delta_norms[t - 1])
    info = (fmt_num(norm),) if short else (norm_text("δ", norm),)
    if annotate == "values" and not short:
        info += (summary(grads.delta[t - 1], "values"),)
    g.node(f"d{t}", "gradient", idx("δ", t), cluster=cluster, info=info, intensity=intensity,
           tooltip=f"delta[{t}] = dl/dh[{t}], norm {norm:.6g}")


def loss_reads(T: int, dl_dh) -> list[int]:
    """The steps (1-based) whose state the loss reads: the nonzero rows of dl_dh (all without it)."""
    return [t for t in range(1, T + 1) if dl_dh is None or bool((abs(dl_dh[t - 1]) > 0).any())]


def loss_edges(g: Graph, T: int, dl_dh, intensities, labelled: bool = True) -> None:
    """The direct gradients ∂ℓ/∂h[t], wherever the loss reads a state. Unlabelled in compact figures,
    where the loss sits beside δ[T] in one row and Graphviz puts the label across the arrow; the
    legend says it there (`loss_note`)."""
    for t in loss_reads(T, dl_dh):
        g.edge(f"d{t}", "loss", "gradient", reverse=True, label=frac("∂ℓ", f"∂h[{t}]") if labelled else None,
               width=gradient_width(intensities[t - 1]))


def loss_note(T: int, dl_dh) -> str:
    """The legend's words for the unlabelled loss arrows of a compact figure."""
    reads = loss_reads(T, dl_dh)
    if len(reads) == 1:
        t = reads[0]
        return f"the arrow from ℓ into δ[{t}] is the direct gradient ∂ℓ/∂h[{t}] (the loss reads h[{t}] only)"
    return "each arrow from ℓ into δ[t] is the direct gradient ∂ℓ/∂h[t]"


def compact_backward_nodes(g: Graph, grads, dl_dh, T: int, annotate: str, cells: dict, grads_node: str):
    """Compact backward figures: δ[1..T] in rows of ROW_STEPS beside the parameter-gradient node
    `grads_node` (already added), the loss after δ[T]; fills `cells` (grid positions) and returns the
    intensities and the ends of the log scale."""
    intensities, lo, hi = norm_scale(grads.delta_norms)
    cells[grads_node] = (0, 0)
    for t in range(1, T + 1):
        r, j = divmod(t - 1, ROW_STEPS)
        delta_node(g, grads, t, intensities[t - 1], annotate, short=True)
        cells[f"d{t}"] = (j + 1, r)
    g.node("loss", "loss", "ℓ")
    cells["loss"] = ((T - 1) % ROW_STEPS + 2, (T - 1) // ROW_STEPS)
    loss_edges(g, T, dl_dh, intensities, labelled=False)
    return intensities, lo, hi
