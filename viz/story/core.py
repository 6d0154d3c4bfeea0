"""The Story: a figure as plain data, built by NumPy-only code from the reference.

Every renderer (Manim scenes, Graphviz diagrams, the explorer, slides, captions tracks, alt text) draws
a Story and computes nothing; the tests check the Story against the reference and the renders against
the Story. A Story is a frozen tree of the dataclasses below and round-trips through JSON
(`Story.to_json` / `Story.from_json`), so anyone can check or redraw a figure with their own tools.

Indices in a Story are **0-based** (the reference's coordinates); everything written for a person
(`Line.text`, labels, narration, captions) is already 1-based, as the course writes it.

Schema (`SCHEMA`, the JSON's "schema" field), every field of every class below:

    Story    kind, params, title, formula, grids, graph, series, steps, captions, alt, description
    Grid     name, label, role, shape, values (flat, row-major), texts (flat), padding, muted
             (flat booleans, or empty: none), axis_labels (per axis, one label per index, as
             shown: "x1", "3"; "" for none; optional)
    Graph    nodes (id, label, role, rank), edges (id, source, target, role, label, weight)
    Series   name, label, role, x, y, scale ("linear" | "log"), limits (lo, hi or empty), ticks,
             tick_labels, x_ticks, x_tick_labels (optional axes)
    Step     id, part, label, narration, lit, lines, writes, weight, data
    Lit      target (a grid name, or "graph", or a series name), role, cells: 0-based index tuples
             into the grid, or node/edge ids in the graph, or x positions of a series
    Line     text (as shown), role, numbers (the numbers the text shows, in order)
    Write    target, cell, value, text: a cell of a grid filled at this step
    Caption  text, claims
    Claim    id, text, lhs, relation, rhs, lhs_label, rhs_label: the numbers that must hold for it
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "viz.story/1"

# Roles: one meaning, one colour in every renderer (style modules map them to colours).
ROLES = ("input", "kernel", "output", "gradient", "padding", "never_read", "highlight", "window",
         "padding_tap", "muted", "hidden", "loss", "path", "text", "bias")


@dataclass(frozen=True)
class Line:
    """One line of text shown, with the numbers it shows (so tests can compare them to the reference)."""
    text: str
    role: str = "text"
    numbers: tuple[float, ...] = ()


@dataclass(frozen=True)
class Lit:
    """What one step lights in one role: cells of a grid (0-based index tuples), or graph node/edge ids."""
    target: str
    role: str
    cells: tuple = ()


@dataclass(frozen=True)
class Write:
    """An output cell filled at this step, with the value and the text written into it."""
    target: str
    cell: tuple[int, ...]
    value: float
    text: str


@dataclass(frozen=True)
class Step:
    """One step of the story: one screen of a video, one slide, one captions cue.

    `weight` scales the step's duration (1.0 = one full step time); `part` groups steps of one phase
    ("forward", "grad_w", "grad_x", "bptt", ...); `data` holds plain extra numbers for renderers and tests.
    """
    id: str
    label: str
    narration: str
    lit: tuple[Lit, ...] = ()
    lines: tuple[Line, ...] = ()
    writes: tuple[Write, ...] = ()
    weight: float = 1.0
    part: str = ""
    data: dict = field(default_factory=dict)

    def lit_cells(self, target: str, role: str) -> tuple:
        """The cells this step lights on `target` in `role` (empty if none)."""
        return tuple(c for lit in self.lit if lit.target == target and lit.role == role for c in lit.cells)


@dataclass(frozen=True)
class Claim:
    """A statement a caption makes, with the two numbers that must stand in `relation` for it to hold."""
    id: str
    text: str
    lhs: float
    relation: str          # "<", "<=", ">", ">=", "==", "!="
    rhs: float
    lhs_label: str = ""
    rhs_label: str = ""

    def holds(self) -> bool:
        a, b = float(self.lhs), float(self.rhs)
        if math.isnan(a) or math.isnan(b):
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b,
                "!=": a != b}[self.relation]


@dataclass(frozen=True)
class Caption:
    text: str
    claims: tuple[Claim, ...] = ()


@dataclass(frozen=True)
class Grid:
    """An array as drawn: values and their texts flat in row-major order, masks flat (or empty)."""
    name: str
    label: str
    role: str
    shape: tuple[int, ...]
    values: tuple[float, ...]
    texts: tuple[str, ...] = ()
    padding: tuple[bool, ...] = ()
    muted: tuple[bool, ...] = ()
    axis_labels: tuple[tuple[str, ...], ...] = ()   # per axis, a label per index ("" = none), or empty

    def array(self):
        import numpy as np
        return np.asarray(self.values, dtype=float).reshape(self.shape)


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    role: str = "text"
    rank: int = 0


@dataclass(frozen=True)
class Edge:
    id: str
    source: str
    target: str
    role: str = "text"
    label: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()


@dataclass(frozen=True)
class Series:
    """A curve or bar chart: ‖δ[t]‖ per step, a loss per training step."""
    name: str
    label: str
    role: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    scale: str = "linear"
    # optional axes (empty: none given): value-axis range (lo, hi) shared by figures meant to be
    # compared, its ticks with their texts, and the x axis' ticks with their texts
    limits: tuple[float, ...] = ()
    ticks: tuple[float, ...] = ()
    tick_labels: tuple[str, ...] = ()
    x_ticks: tuple[float, ...] = ()
    x_tick_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Story:
    kind: str
    params: dict
    title: str
    formula: tuple[str, ...] = ()
    grids: tuple[Grid, ...] = ()
    graph: Graph | None = None
    series: tuple[Series, ...] = ()
    steps: tuple[Step, ...] = ()
    captions: tuple[Caption, ...] = ()
    alt: str = ""
    description: str = ""

    # ---- look-ups --------------------------------------------------------------------------------
    def grid(self, name: str) -> Grid:
        for g in self.grids:
            if g.name == name:
                return g
        raise KeyError(name)

    @property
    def claims(self) -> tuple[Claim, ...]:
        return tuple(c for cap in self.captions for c in cap.claims)

    def failed_claims(self) -> list[Claim]:
        return [c for c in self.claims if not c.holds()]

    # ---- time: the one timeline every renderer follows -------------------------------------------
    def timeline(self, step_time: float, intro: float = 0.0) -> list[tuple[float, float]]:
        """(start, end) in seconds of every step in a video whose steps take `weight * step_time`
        after an `intro` of that many seconds. Video, captions track and slides all use this."""
        out, t = [], float(intro)
        for s in self.steps:
            d = float(s.weight) * float(step_time)
            out.append((t, t + d))
            t += d
        return out

    # ---- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **_plain(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> "Story":
        data = dict(data)
        schema = data.pop("schema", SCHEMA)
        if schema != SCHEMA:
            raise ValueError(f"story schema must be {SCHEMA!r} (got {schema!r})")
        return _build(cls, data)

    @classmethod
    def from_json(cls, text: str) -> "Story":
        return cls.from_dict(json.loads(text))


_FIELDS: dict[type, tuple[str, ...]] = {}     # dataclass -> its field names (a Story has ~10^5 values)


def _plain(value: Any):
    """Dataclasses -> dicts, tuples -> lists, NumPy scalars -> Python numbers; non-finite floats -> None."""
    t = type(value)          # the exact built-in types first: nearly every value of a Story is one
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        return value if math.isfinite(value) else None
    if t is tuple or t is list:
        return [_plain(v) for v in value]
    names = _FIELDS.get(t)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[t] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {n: _plain(getattr(value, n)) for n in names}
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item"):                      # NumPy scalar
        return _plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise TypeError(f"not plain story data: {value!r}")


_CHILDREN = {
    "grids": "Grid", "graph": "Graph", "series": "Series", "steps": "Step", "captions": "Caption",
    "claims": "Claim", "lit": "Lit", "lines": "Line", "writes": "Write", "nodes": "Node", "edges": "Edge",
}


def _build(cls, data: dict):
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        if v is None:
            kwargs[f.name] = None
            continue
        child = _CHILDREN.get(f.name)
        if child:
            ccls = globals()[child]
            v = _build(ccls, v) if isinstance(v, dict) else tuple(_build(ccls, x) for x in v)
        elif f.name in ("params", "data"):
            v = dict(v)
        else:
            v = _tuples(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def _tuples(v):
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v
