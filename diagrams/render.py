"""Graph model -> DOT (Python `graphviz` builder) -> file, deterministically and atomically.

    dot_source(graph, theme)                 DOT text; needs no Graphviz program
    pipe(source, fmt)                        bytes from `dot -T<fmt>`; MissingProgram when dot is absent
    render(graph, out, fmt, theme, story=)   writes out atomically (fmt "dot" writes the source)
    svg_text(graph, theme, story=)           SVG as text

Every colour, shape and font comes from style.py; the graph model (viz.story.graphs.model) says what
things are, this module says how Graphviz draws them.

SVG is Cairo's (`-Tsvg:cairo`, the renderer of the PNG): text as glyph outlines, so a browser draws it
as the PNG shows it whatever fonts the reader has (Graphviz's own SVG placed text fragment by fragment
in DejaVu Sans: gaps and overlaps in Chromium). `portable_svg` then makes it accessible and embeddable:
`role="img"` with `<title>`/`<desc>` from the Story's alt text and description, every id prefixed
with a hash of the figure's parameters (several figures on one page), and `max-width: 100%`.
PDF: no Cairo page margin, the page cropped to the ink (`_tight_pdf`), a fixed date, Graphviz run in
UTC. The byte-level work is in files.py.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from diagrams import files, style
from diagrams.legend import legend_label
from viz.io import MissingProgram, atomic_path
from viz.story.graphs.model import EDGE_KINDS, Edge, Graph, Node, plain

FORMATS = ("svg", "png", "pdf", "dot")

INSTALL_HINT = ("Graphviz's `dot` program is needed to render svg/png/pdf (the dot format works without it): "
                "install Graphviz with `apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` "
                "(macOS), then check that `dot -V` runs.")


# ---- graph -> DOT --------------------------------------------------------------------------------

def _html(fragment: str) -> str:
    return f"<{fragment}>"


def _node_label(node: Node, th: style.Theme) -> str:
    text = node.label
    for line in node.info:
        text += f'<br/><font point-size="{style.SMALL_SIZE}" color="{th.muted if node.kind != "gradient" else th.text}">{line}</font>'
    return _html(text)


def _node_attrs(node: Node, th: style.Theme) -> dict:
    shape, line_style = style.NODE_SHAPE[node.kind]
    role = th.role(node.kind)
    fill = role.fill
    if node.intensity is not None:      # from almost the background (tiny) to the strong fill (large)
        fill = style.mix(style.mix(role.fill, th.background, 0.6), role.strong, node.intensity)
    attrs = {
        "shape": node.shape or shape,
        "style": line_style,
        "color": role.line,
        "fillcolor": fill,
    }
    if node.kind == "op":
        attrs.update(fillcolor=th.op_fill, color=th.op_line, margin="0.02")
        if attrs["shape"] == "circle":
            attrs.update(width="0.36", fontsize="15")
    if node.kind == "never_read":
        attrs["fontcolor"] = th.muted
    if node.kind == "note":
        attrs["fontcolor"] = th.muted
    if node.penwidth is not None:
        attrs["penwidth"] = f"{node.penwidth:.2f}"
    if node.tooltip:
        attrs["tooltip"] = node.tooltip
    if node.group:
        attrs["group"] = node.group
    if node.ordering:
        attrs["ordering"] = node.ordering
    if node.compact:
        attrs.update(margin="0.03,0.01", height="0.2", width="0.3")
    return attrs


def _edge_attrs(edge: Edge, graph: Graph, th: style.Theme, rank_of: dict | None = None) -> dict:
    line_style, role = style.EDGE_STYLE[edge.kind]
    if role is None:
        role = graph.nodes[edge.tail].kind
    color = th.role(role).line
    attrs = {"style": line_style, "color": color}
    if edge.kind == "gradient":
        attrs["fontcolor"] = th.role("gradient").line
    if edge.label is not None:
        # Graphviz's router fails on labelled edges inside one rank ("lost edge"): label them outside
        flat = rank_of is not None and rank_of.get(edge.tail, -1) == rank_of.get(edge.head, -2)
        attrs["xlabel" if flat else "label"] = _html(edge.label)
    if edge.width is not None:
        attrs["penwidth"] = f"{edge.width:.2f}"
        attrs["arrowsize"] = f"{min(1.2, 0.6 + 0.1 * edge.width):.2f}"
    if edge.reverse:
        attrs["dir"] = "back"
    if not edge.constraint:
        attrs["constraint"] = "false"
    if edge.weight is not None:
        attrs["weight"] = str(edge.weight)
    if edge.tooltip:
        attrs["tooltip"] = edge.tooltip
    return attrs


def _emit_clusters(g, graph: Graph, th: style.Theme) -> None:
    """Nodes inside their (nested) clusters, in insertion order."""
    children: dict[str | None, list[str]] = {}
    for c in graph.clusters.values():
        children.setdefault(c.parent, []).append(c.id)
    members: dict[str | None, list[Node]] = {}
    for n in graph.nodes.values():
        members.setdefault(n.cluster, []).append(n)

    def emit_nodes(sub, cluster_id):
        for n in members.get(cluster_id, []):
            sub.node(n.id, label=_node_label(n, th), _attributes=_node_attrs(n, th))

    def emit_cluster(parent, cid):
        c = graph.clusters[cid]
        with parent.subgraph(name=f"cluster_{cid}") as sub:
            if c.kind == "invisible":
                sub.attr(label="", peripheries="0", margin="0")
            else:
                sub.attr(label=_html(c.label), style="rounded,dashed" if c.kind == "step" else "rounded",
                         color=th.muted, fontcolor=th.muted, fontsize=str(style.EDGE_FONT_SIZE),
                         labeljust="l", labelloc="t", margin="6", penwidth="0.8")
            emit_nodes(sub, cid)
            for child in children.get(cid, []):
                emit_cluster(sub, child)

    emit_nodes(g, None)
    for cid in children.get(None, []):
        emit_cluster(g, cid)


INK_DPI = 96            # the PDF page is cropped to the ink of a PNG this fine (3/4 pt)


def to_digraph(graph: Graph, theme: str = "light", dpi: float | None = None, overlay: bool = True,
               page: bool = False):
    """The graphviz.Digraph of a Graph (import of `graphviz` happens here, not at module import).

    overlay=False leaves out the overlay edges (they are added after the layout, see render_bytes);
    page=True (PDF) drops Cairo's 36 pt page margin and keeps a 4 pt pad (so no outline touches the
    page edge), then the page is cropped to the ink (`crop_pdf`).
    """
    import graphviz

    th = style.theme(theme)
    g = graphviz.Digraph(name=graph.name, strict=False)
    compact = graph.compact
    gattrs = {
        "rankdir": graph.direction,
        "bgcolor": th.background,
        "fontname": style.FONT,
        "fontsize": str(style.LEGEND_SIZE),
        "fontcolor": th.text,
        "label": legend_label(graph, th),
        "labelloc": "b",
        "labeljust": "c",
        "newrank": "true",
        "nodesep": "0.18" if compact else "0.25",
        "ranksep": f"{graph.rank_gap:g}" if graph.rank_gap else ("0.3" if compact else "0.35"),
        "forcelabels": "true",
        "outputorder": "edgesfirst",   # nodes are drawn over edges: no line through a label
        "pad": "0.15",
        "charset": "UTF-8",
        "tooltip": re.sub(r"<[^>]+>", "", graph.title),
    }
    if dpi is not None:
        gattrs["dpi"] = f"{dpi:g}"
    if page:
        gattrs.update(margin="0", pad=f"{4 / 72:.4f}")
    g.attr("graph", **gattrs)
    g.attr("node", fontname=style.FONT, fontsize=str(style.FONT_SIZE), fontcolor=th.text,
           penwidth=str(style.NODE_PENWIDTH), margin="0.08,0.04", height="0.3")
    g.attr("edge", fontname=style.FONT, fontsize=str(style.EDGE_FONT_SIZE), fontcolor=th.text,
           penwidth=str(style.EDGE_PENWIDTH), arrowsize="0.7")

    if graph.grid:
        # Grid figures: no Graphviz clusters (they break the column order); frames come after layout.
        for n in graph.nodes.values():
            g.node(n.id, label=_node_label(n, th), _attributes=_node_attrs(n, th))
    else:
        _emit_clusters(g, graph, th)
    for i, group in enumerate(graph.ranks):
        with g.subgraph(name=f"rank_{i}") as sub:
            sub.attr(rank="same")
            for nid in group:
                sub.node(nid)
    rank_of = {nid: i for i, group in enumerate(graph.ranks) for nid in group}
    for e in graph.edges:
        if overlay or not e.overlay:
            g.edge(e.tail, e.head, _attributes=_edge_attrs(e, graph, th, rank_of))
    return g


def dot_source(graph: Graph, theme: str = "light", dpi: float | None = None, overlay: bool = True,
               page: bool = False) -> str:
    """The DOT text of a figure. Deterministic; works without the Graphviz programs.

    It holds every node and edge; rendered by viz, step frames and overlay edges are added after
    Graphviz's layout (render_bytes), so `dot` alone draws the same figure without the frames.
    """
    return to_digraph(graph, theme, dpi, overlay, page).source


# ---- DOT -> bytes --------------------------------------------------------------------------------

# Graphviz output formats: SVG through Cairo (glyph outlines, the PNG's renderer)
_DEVICE = {"svg": "svg:cairo", "png": "png", "pdf": "pdf", "dot": "dot", "plain": "plain"}


def _run(source: str, fmt: str, engine: str = "dot", no_op: int | None = None) -> bytes:
    """`engine -T<device>` on DOT text, in UTC (Cairo writes local time into PDFs)."""
    cmd = [engine, f"-T{_DEVICE[fmt]}"] + ([f"-n{no_op}"] if no_op else [])
    try:
        done = subprocess.run(cmd, input=source.encode("utf-8"), capture_output=True,
                              env={**os.environ, "TZ": "UTC"})
    except FileNotFoundError as exc:
        raise MissingProgram(INSTALL_HINT) from exc
    if done.returncode != 0:
        raise RuntimeError(f"{engine} failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


def pipe(source: str, fmt: str) -> bytes:
    """Run `dot -T<fmt>` on DOT text. Raises MissingProgram (with install instructions) without dot."""
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"format must be one of svg, png, pdf here (got {fmt!r})")
    return _clean(_run(source, fmt), fmt)


# ---- frames of grid figures ------------------------------------------------------------------------
# Graphviz clusters break the column order of grid figures, so their step clusters are drawn as frames
# after the layout: `dot -Tdot` lays the figure out, a dashed box is added around each step's nodes,
# and `neato -n2` draws the result without moving anything (it only recomputes the bounding box and
# places the caption below everything).

_STATEMENT = re.compile(r'^\t+(\w+)\t\[(.*?)\];$', re.M | re.S)
FRAME_MARGIN = 7.0       # points around a step's nodes
FRAME_LABEL = 14.0       # extra points at the bottom for "step t" (arcs pass over the top)


def node_boxes(laid_out: str) -> dict[str, tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) in points of every node in `dot -Tdot` output."""
    boxes = {}
    for m in _STATEMENT.finditer(laid_out):
        body = m.group(2)
        pos = re.search(r'\bpos="([-\d.e]+),([-\d.e]+)"', body)
        w = re.search(r'\bwidth=([\d.e]+)', body)
        h = re.search(r'\bheight=([\d.e]+)', body)
        if pos and w and h:
            x, y = float(pos.group(1)), float(pos.group(2))
            hw, hh = float(w.group(1)) * 36, float(h.group(1)) * 36
            boxes[m.group(1)] = (x - hw, y - hh, x + hw, y + hh)
    return boxes


def _overlay_statements(graph: Graph, th: style.Theme) -> str:
    import graphviz

    g = graphviz.Digraph()
    for e in graph.edges:
        if e.overlay:
            g.edge(e.tail, e.head, _attributes=_edge_attrs(e, graph, th))
    return "".join(g.body)


def add_frames(laid_out: str, graph: Graph, th: style.Theme) -> str:
    """The laid-out DOT with one dashed frame per step cluster and the overlay edges (which `neato -n2`
    draws as straight lines), ready for `neato -n2`."""
    boxes = node_boxes(laid_out)
    frames = []
    for c in graph.clusters.values():
        if c.kind == "invisible":
            continue
        member = [boxes[n.id] for n in graph.nodes.values() if n.cluster == c.id and n.id in boxes]
        if not member:
            continue
        x0 = min(b[0] for b in member) - FRAME_MARGIN
        y0 = min(b[1] for b in member) - FRAME_MARGIN - FRAME_LABEL
        x1 = max(b[2] for b in member) + FRAME_MARGIN
        y1 = max(b[3] for b in member) + FRAME_MARGIN
        frames.append(
            f'\tframe_{c.id}\t[shape=box style="rounded,dashed" color="{th.muted}" fontcolor="{th.muted}" '
            f'fontsize={style.EDGE_FONT_SIZE} penwidth=0.8 fixedsize=true labelloc=b '
            f'label={_html(c.label)} pos="{(x0 + x1) / 2:.2f},{(y0 + y1) / 2:.2f}" '
            f'width={(x1 - x0) / 72:.4f} height={(y1 - y0) / 72:.4f} fillcolor=none];\n')
    # neato -n2 recomputes the bounding box and the caption's place when they are absent
    head_start = laid_out.index("graph [")
    head_end = laid_out.index("];", head_start)
    head = re.sub(r'\b(bb|lp)="[^"]*",?\s*', "", laid_out[head_start:head_end])
    text = laid_out[:head_start] + head + laid_out[head_end:]
    # frames go first among the nodes, so every node is drawn over them
    at = text.index("];\n", text.index("\tedge [")) + 3
    text = text[:at] + "".join(frames) + text[at:]
    end = text.rindex("}")
    return text[:end] + _overlay_statements(graph, th) + text[end:]


def _two_pass(graph: Graph) -> bool:
    """Frames (grid figures' step clusters) or overlay edges are added after the layout."""
    frames = bool(graph.grid) and any(c.kind != "invisible" for c in graph.clusters.values())
    return frames or any(e.overlay for e in graph.edges)


def _clean(data: bytes, fmt: str) -> bytes:
    return files.clean_pdf(data) if fmt == "pdf" else data


def _with_graph_attrs(dot: str, **attrs) -> str:
    """DOT text with root-graph attributes set at its end (after the layout's own)."""
    end = dot.rindex("}")
    return dot[:end] + "\tgraph [" + " ".join(f"{k}={v}" for k, v in attrs.items()) + "];\n" + dot[end:]


def _tight_pdf(final: str, engine: str, no_op: int | None, background: str, title: str) -> bytes:
    """The PDF of DOT text `final` on a page cropped to its ink (measured on a PNG of the same text),
    titled with the figure's alt text."""
    png = _run(_with_graph_attrs(final, dpi=INK_DPI), "png", engine, no_op)
    ink = files.ink_box(png, background, INK_DPI / 72)
    return files.titled_pdf(files.crop_pdf(_clean(_run(final, "pdf", engine, no_op), "pdf"), ink), title)


def render_bytes(graph: Graph, fmt: str, theme: str = "light", dpi: float | None = None, story=None) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if fmt == "png" and dpi is None:
        dpi = 144    # crisp on high-density screens; the SVG is the resolution-free original
    if fmt == "dot":
        return dot_source(graph, theme).encode("utf-8")
    source = dot_source(graph, theme, dpi if fmt == "png" else None, overlay=False, page=fmt == "pdf")
    final, engine, no_op = source, "dot", None
    if _two_pass(graph):
        laid_out = _run(source, "dot").decode("utf-8")
        final, engine, no_op = add_frames(laid_out, graph, style.theme(theme)), "neato", 2
    if fmt == "pdf":
        title = story.alt if story is not None else plain(graph.title)
        return _tight_pdf(final, engine, no_op, style.theme(theme).background, title)
    data = _clean(_run(final, fmt, engine, no_op), fmt)
    if fmt == "svg":
        title = story.alt if story is not None else plain(graph.title)
        desc = story.description if story is not None else " ".join(plain(n) for n in graph.notes)
        data = files.portable_svg(data, title, desc, files.figure_id(story, graph, theme))
    return data


def render(graph: Graph, out, fmt: str | None = None, theme: str = "light", dpi: float | None = None,
           story=None) -> Path:
    """Write the figure to `out` atomically: the whole file appears, or nothing (no partial file).

    The bytes are produced before the target is touched, so a missing `dot` leaves no file behind.
    """
    out = Path(out)
    fmt = fmt or out.suffix.lstrip(".")
    data = render_bytes(graph, fmt, theme, dpi, story)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return out


def svg_text(graph: Graph, theme: str = "light", story=None) -> str:
    return render_bytes(graph, "svg", theme, story=story).decode("utf-8")


assert set(style.EDGE_STYLE) == set(EDGE_KINDS)


def positions(graph: Graph, theme: str = "light") -> dict[str, tuple[float, float]]:
    """Node centres (inches, y up) after Graphviz's layout, from `dot -Tplain`: to check layouts in tests."""
    text = _run(dot_source(graph, theme, overlay=False), "plain")
    out = {}
    for line in text.decode("utf-8").splitlines():
        parts = line.split()
        if parts and parts[0] == "node":
            out[parts[1].strip('"')] = (float(parts[2]), float(parts[3]))
    return out


def grid_violations(graph: Graph, pos: dict[str, tuple[float, float]]) -> list[str]:
    """Where a layout breaks the graph's grid (common.grid): columns must run left to right and rows
    top to bottom, in the order of their indices. Empty when the picture is as designed."""
    bad = []
    cells = graph.grid
    for axis, name in ((0, "column"), (1, "row")):
        groups: dict[int, list[str]] = {}
        for nid, cr in cells.items():
            groups.setdefault(cr[axis], []).append(nid)
        keys = sorted(groups)
        # x grows with the column, y (up) falls with the row
        coord = (lambda n: pos[n][0]) if axis == 0 else (lambda n: -pos[n][1])
        for k1, k2 in zip(keys, keys[1:]):
            hi = max(coord(n) for n in groups[k1])
            lo = min(coord(n) for n in groups[k2])
            if not hi < lo:
                bad.append(f"{name} {k2} is not after {name} {k1}")
    return bad
