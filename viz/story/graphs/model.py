"""The graph model every diagram is built in: plain data, deterministic, no Graphviz.

A figure builder (gated_rnn.py, attention_rnn.py) turns a reference trace into a `Graph`; the renderer
(diagrams/render.py) turns a `Graph` into DOT and `figure.py` summarises it in the figure's Story. Keeping the model separate means the tests can check a figure's
structure (which nodes, which edges, which numbers on them) without running Graphviz, and the renderer
is the only place that knows Graphviz attribute names.

Determinism: ids are derived from meaning (``t3_gate``, ``h0``), nodes/edges/clusters keep insertion
order (dicts and lists, never sets), and nothing depends on ``id()`` or hashing.

Labels are HTML-like fragments (the inside of Graphviz's ``<...>``): ``W<sub>c</sub>``, ``h[t-1]``.
Helpers below escape plain text (`esc`) and write the few math pieces figures share (`sub`, `idx`).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import numpy as np
from viz.text import fmt_num, fmt_shape  # noqa: F401  (re-exported: node labels write numbers with them)

# What a node is. The renderer gives each kind one colour and one shape in every figure.
NODE_KINDS = (
    "input",       # x[t]
    "parameter",   # W_c, W_h, W_x, Q_i, K_i, V_i (kernels / weights)
    "op",          # ×, +, σ, ⊙, softmax, ...: an operation, no value of its own
    "state",       # h[t]: the recurrent state / output of a step
    "gate",        # c[t], a[t]: mixing weights in (0, 1)
    "loss",        # ℓ
    "gradient",    # δ[t], ∂ℓ/∂W
    "padding",     # h[t] = 0 for t < 1 when the rule reads it
    "never_read",  # a state nothing reads (masked zero states, h[0] under AttentionRNN(∞))
    "note",        # free text inside the drawing (ellipsis, "steps 9–16 ...")
)

# What an edge carries. "data" edges take the colour of the node they leave (an edge carries its tail's
# value); the other kinds have their own line style.
EDGE_KINDS = (
    "data",        # forward value flow
    "attention",   # h[t-i] read by step t with weight a_i[t] (width and label from the trace)
    "shared",      # a tied parameter used by a step
    "gradient",    # backward flow (drawn reversed, dashed)
    "masked",      # a read that the base case removes (mask) / that takes no part
    "invisible",   # layout only (row order); never drawn
)


@dataclass
class Node:
    id: str
    kind: str
    label: str                     # HTML-like fragment, e.g. "h[2]" or "W<sub>c</sub>"
    cluster: str | None = None     # id of the enclosing cluster
    shape: str | None = None       # Graphviz shape; None = the kind's default shape
    info: tuple[str, ...] = ()     # extra lines under the label (shape, value, norm): HTML fragments
    intensity: float | None = None  # 0..1: how strongly to fill (gradient norms on a log scale)
    penwidth: float | None = None
    tooltip: str | None = None     # plain text, shown on hover in SVG
    group: str | None = None       # layout: nodes of one group are kept in a straight line
    compact: bool = False          # a small node (a number): tight margins
    ordering: str | None = None    # layout: "in" keeps the in-edges' tails in the order the edges were added

    def __post_init__(self):
        if self.kind not in NODE_KINDS:
            raise ValueError(f"node kind must be one of {', '.join(NODE_KINDS)} (got {self.kind!r})")


@dataclass
class Edge:
    tail: str
    head: str
    kind: str = "data"
    label: str | None = None       # HTML-like fragment
    width: float | None = None     # penwidth; None = the style's default
    value: float | None = None     # the number the edge stands for (attention weight), for tests and tooltips
    reverse: bool = False          # draw the arrow tail-ward (gradients: laid out forward in time, pointing back)
    constraint: bool = True        # False: the edge does not influence the layout's ranks
    weight: int | None = None      # layout weight (straighter, shorter)
    tooltip: str | None = None
    overlay: bool = False          # drawn after the layout as a straight line: never moves a node

    def __post_init__(self):
        if self.kind not in EDGE_KINDS:
            raise ValueError(f"edge kind must be one of {', '.join(EDGE_KINDS)} (got {self.kind!r})")


@dataclass
class Cluster:
    id: str
    label: str
    parent: str | None = None
    kind: str = "step"             # "step" (one time step, framed), "group" (framed) or "invisible"


@dataclass
class Graph:
    """A figure: nodes, edges, clusters, rank constraints, a title and the legend's notes.

    `layout` holds a few renderer-neutral layout choices: ``direction`` ("LR" or "TB"), ``compact``
    (smaller separations), and `rows` (lists of node ids kept on one rank, in order).
    """

    name: str                       # Graphviz graph name (also the SVG <title>): stable, no spaces
    title: str                      # HTML-like fragment shown above the legend
    notes: list[str] = field(default_factory=list)   # legend lines (HTML-like fragments)
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    ranks: list[list[str]] = field(default_factory=list)
    direction: str = "LR"
    compact: bool = False
    scale_note: str | None = None   # legend line for an intensity scale (backward figures)
    grid: dict = field(default_factory=dict)   # node id -> (column, row) when laid out by common.grid
    rank_gap: float | None = None   # inches between ranks (columns); None = the renderer's default

    # ---- building ------------------------------------------------------------------------------
    def node(self, id: str, kind: str, label: str, **kw) -> Node:
        if id in self.nodes:
            raise ValueError(f"duplicate node id {id!r}")
        _check_id(id)
        if kw.get("cluster") is not None and kw["cluster"] not in self.clusters:
            raise ValueError(f"node {id!r}: unknown cluster {kw['cluster']!r}")
        n = Node(id, kind, label, **kw)
        self.nodes[id] = n
        return n

    def edge(self, tail: str, head: str, kind: str = "data", **kw) -> Edge:
        for end in (tail, head):
            if end not in self.nodes:
                raise ValueError(f"edge {tail}->{head}: unknown node {end!r}")
        e = Edge(tail, head, kind, **kw)
        self.edges.append(e)
        return e

    def cluster(self, id: str, label: str, parent: str | None = None, kind: str = "step") -> Cluster:
        if id in self.clusters:
            raise ValueError(f"duplicate cluster id {id!r}")
        _check_id(id)
        c = Cluster(id, label, parent, kind)
        self.clusters[id] = c
        return c

    def same_rank(self, ids: list[str]) -> None:
        for i in ids:
            if i not in self.nodes:
                raise ValueError(f"rank: unknown node {i!r}")
        self.ranks.append(list(ids))

    # ---- reading (tests, legend) ---------------------------------------------------------------
    def edges_of(self, kind: str) -> list[Edge]:
        return [e for e in self.edges if e.kind == kind]

    def nodes_of(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]

    def kinds_used(self) -> tuple[list[str], list[str]]:
        """Node kinds and edge kinds that appear, in the fixed order of NODE_KINDS / EDGE_KINDS."""
        nk = {n.kind for n in self.nodes.values()}
        ek = {e.kind for e in self.edges}
        return [k for k in NODE_KINDS if k in nk], [k for k in EDGE_KINDS if k in ek]


_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_id(id: str) -> None:
    if not _ID.fullmatch(id):
        raise ValueError(f"ids are identifiers like t3_gate (got {id!r})")


# ---- label helpers -----------------------------------------------------------------------------

def esc(text: str) -> str:
    """Plain text -> HTML-like label text (escapes &, <, >)."""
    return html.escape(str(text), quote=False)


def sub(name: str, index) -> str:
    """name with a subscript: sub("W", "c") -> W<sub>c</sub>."""
    return f"{esc(name)}<sub>{esc(index)}</sub>"


def idx(name: str, t) -> str:
    """Course indexing, 1-based as a person reads it: idx("h", 3) -> h[3]; idx("h", "t-1") -> h[t-1]."""
    return f"{name}[{esc(t)}]"


def frac(num: str, den: str, sup: str = "") -> str:
    """A stacked fraction num/den (optionally with a superscript such as T) as an HTML-like table.

    Narrower than "(∂h[3]/∂h[2])ᵀ" on one line, so Jacobians fit between two time steps.
    """
    s = f'<td rowspan="2" valign="top"><font point-size="9">{sup}</font></td>' if sup else ""
    return (f'<table border="0" cellborder="0" cellspacing="0" cellpadding="0">'
            f'<tr><td>{num}</td>{s}</tr><tr><td border="1" sides="t">{den}</td></tr></table>')


def jacobian(t_out, t_in, transpose: bool = True) -> str:
    """∂h[t_out]/∂h[t_in] as a stacked fraction, transposed (ᵀ) for the backward pass by default."""
    return frac(f"∂h[{t_out}]", f"∂h[{t_in}]", "T" if transpose else "")


def hbox(*parts: str) -> str:
    """Label pieces side by side (text and fractions), vertically centred, as one HTML-like table."""
    cells = "".join(f"<td>{p}</td>" for p in parts)
    return f'<table border="0" cellborder="0" cellspacing="0" cellpadding="0"><tr>{cells}</tr></table>'


def small(text: str) -> str:
    """A smaller secondary line (shapes, values) inside a label."""
    return f'<font point-size="10">{text}</font>'


def summary(value, mode: str, max_numbers: int = 4) -> str | None:
    """The micrograd-style annotation of an array: "shapes" -> its shape; "values" -> the numbers when
    there are at most `max_numbers` of them (a vector as a column, one per line), else the shape and
    the Euclidean norm; "norm" -> the
    Euclidean (Frobenius) norm; "none" -> None.

    This summarises numbers the reference computed; it computes nothing about the model.
    """
    if mode == "none" or value is None:
        return None
    a = np.asarray(value, dtype=float)
    if mode == "shapes":
        return fmt_shape(a.shape)
    if mode == "norm":
        return fmt_num(np.linalg.norm(a))
    if mode != "values":
        raise ValueError(f"annotate must be one of none, shapes, values (got {mode!r})")
    if a.size <= max_numbers:
        if a.ndim == 1:          # a column vector, one number per line: narrow figures
            return "<br/>".join(fmt_num(v) for v in a)
        nums = ", ".join(fmt_num(v) for v in a.reshape(-1))
        return f"[{nums}]" if a.ndim else nums
    return f"{fmt_shape(a.shape)}, ‖·‖ = {fmt_num(np.linalg.norm(a))}"


_SUPERSCRIPT = str.maketrans("0123456789-−+T", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻⁺ᵀ")
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_FRAC = re.compile(r'<table[^>]*><tr><td>((?:(?!<table).)*?)</td>(?:<td rowspan="2"[^>]*><font[^>]*>(.*?)</font></td>)?'
                   r'</tr><tr><td border="1" sides="t">(.*?)</td></tr></table>')


def _script(text: str, table: dict, mark: str) -> str:
    """Unicode super/subscripts when every character has one ("10⁻⁷", "log₁₀"), else "^T", "_(t-1)"."""
    if text and all(ord(ch) in table for ch in text):
        return text.translate(table)
    return f"{mark}{text}" if len(text) == 1 else f"{mark}({text})"


def plain(fragment: str) -> str:
    """An HTML-like label fragment as plain text for alt text, descriptions and the Story:
    "W<sub>c</sub>" -> "W_c", "10<sup>−7</sup>" -> "10⁻⁷", a stacked fraction -> "(∂h[3]/∂h[2])ᵀ"."""
    def frac_text(m: re.Match) -> str:
        num, sup, den = m.group(1), m.group(2) or "", m.group(3)
        return f"({num}/{den})" + (f"<sup>{sup}</sup>" if sup else "")

    text = _FRAC.sub(frac_text, fragment)
    text = re.sub(r"<sup>(.*?)</sup>", lambda m: _script(m.group(1), _SUPERSCRIPT, "^"), text)
    text = re.sub(r"<sub>(.*?)</sub>", lambda m: _script(m.group(1), _SUBSCRIPT, "_"), text)
    text = re.sub(r"<br[^>]*>", " ", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\s+", " ", text).strip()
