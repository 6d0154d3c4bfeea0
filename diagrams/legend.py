"""The caption under every diagram: its title, one swatch per node and edge kind it uses, its notes
(the legend lines of the graph model), wrapped so the caption is no wider than a figure."""
from __future__ import annotations

import re

from diagrams import style
from viz.story.graphs.model import Graph, esc


def _html(fragment: str) -> str:
    return f"<{fragment}>"


NOTE_WIDTH = 96     # characters per legend line: notes wrap so the caption is no wider than a figure


def _words(fragment: str) -> list[str]:
    """Split at spaces outside tags."""
    words, cur, in_tag = [], [], False
    for ch in fragment:
        if ch == "<":
            in_tag = True
        elif ch == ">":
            in_tag = False
        if ch == " " and not in_tag:
            words.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    words.append("".join(cur))
    return words


def _visible(word: str) -> int:
    return len(re.sub(r"&\w+;", "x", re.sub(r"<[^>]+>", "", word)))


def wrap(fragment: str, width: int = NOTE_WIDTH) -> str:
    """Break an HTML-like fragment into lines of at most `width` visible characters at spaces outside
    tags; continuation lines are indented."""
    lines, line, size = [], [], 0
    for w in _words(fragment):
        if line and size + 1 + _visible(w) > width:
            lines.append(" ".join(line))
            line, size = [], 3
        size += _visible(w) + (1 if line else 0)
        line.append(w)
    lines.append(" ".join(line))
    return '<br align="left"/>    '.join(lines)


def legend_label(graph: Graph, th: style.Theme) -> str:
    """The caption under every figure: title, one swatch per node kind and edge kind used, notes."""
    node_kinds, edge_kinds = graph.kinds_used()
    node_kinds = [k for k in node_kinds if k in style.NODE_LEGEND]
    edge_kinds = [k for k in edge_kinds if k in style.EDGE_LEGEND]
    cells = []
    for k in node_kinds:
        role = th.role(k)
        fill = th.op_fill if k == "op" else role.fill
        cells.append(f'<td width="14" height="12" fixedsize="true" bgcolor="{fill}" color="{role.line}" border="1"></td>'
                     f'<td align="left">{esc(style.NODE_LEGEND[k])}</td>')
    for k in edge_kinds:
        sym, text = style.EDGE_LEGEND[k]
        line_style, role = style.EDGE_STYLE[k]
        color = th.text if role is None else th.role(role).line
        cells.append(f'<td><font color="{color}">{sym}</font></td><td align="left">{esc(text)}</td>')
    per_row = 4
    rows = []
    for i in range(0, len(cells), per_row):
        chunk = cells[i:i + per_row]
        chunk += ['<td></td><td></td>'] * (per_row - len(chunk))
        rows.append(f'<tr>{"".join(chunk)}</tr>')
    swatches = (f'<tr><td><table border="0" cellspacing="3" cellpadding="1">{"".join(rows)}</table></td></tr>'
                if rows else "")
    title = f'<tr><td><font point-size="{style.TITLE_SIZE}"><b>{graph.title}</b></font></td></tr>'
    notes = [graph.scale_note] if graph.scale_note else []
    notes = notes + list(graph.notes)
    note_rows = "".join(f'<tr><td align="left" balign="left"><font color="{th.muted}">{wrap(n)}</font></td></tr>'
                        for n in notes)
    return _html(f'<table border="0" cellspacing="0" cellpadding="2">{title}{swatches}{note_rows}</table>')
