"""Static vector figures of a convolution (and of its transposed form, and of pooling): small multiples of
the window positions in the style of Dumoulin & Visin's conv-arithmetic figures, drawn from a Story.

Each panel is one Story step: every grid the step lights or writes, side by side (input, then output),
with the cells lit per role: the window's taps, the taps that read padding, the output cell written.
Padding cells are drawn dashed and empty, zeros the stride inserted grey, cells never read (or, for
the transposed form, never reached by a stamp) hatched, every other cell pale in its role's colour. Below each panel, the step's label and the first line it shows ("y[2] reads x[·, 3..5]").
Several input channels or output maps (the transposed convolution's `--channels`, `--filters`) are all
drawn: a 1-D grid's channels as its rows, a 2-D grid's stacked one empty row apart. The figure computes nothing: cells, roles and words are the Story's. SVG, PDF (vector, tight) and PNG
through matplotlib, byte-identical across runs (no dates, fixed ids).
"""
from __future__ import annotations

import math
from pathlib import Path

from diagrams.style import DARK, LIGHT
from viz.io import atomic_path
from viz.story.core import Grid, Step, Story

CELL = 0.22            # inches per cell
GAP = 0.35             # inches between the grids of one panel, and between panels
LABEL_H = 0.42         # inches under a panel for its label (at least)
LABEL_PT = 7           # its font size
LABEL_LINE_H = LABEL_PT * 1.2 / 72     # inches a line of it takes
LABEL_CHAR_W = LABEL_PT * 0.62 / 72    # inches a character takes at most (DejaVu Sans is ~0.55 em on average)
MAX_COLS = 4
MARGIN = 0.05          # inches around everything (outlines are not cut at the page edge)
ROLE_OF_GRID = {"input": "input", "kernel": "parameter", "output": "state", "gradient": "gradient",
                "bias": "parameter"}


def _cells(grid: Grid):
    """(rows, cols, place) of a grid as drawn: a 1-D array is one row; 2-D arrays as they are (a 1-D
    input's channels are its rows); a 3-D (channels, rows, cols) array as its channels stacked, one
    empty row between two (`_gap_rows`; one channel: just its rows)."""
    if len(grid.shape) == 1:
        return 1, grid.shape[0], lambda c: (0, int(c[-1]))
    if len(grid.shape) == 3 and grid.shape[0] > 1:
        n, h, w = grid.shape
        return n * (h + 1) - 1, w, lambda c: (int(c[0]) * (h + 1) + int(c[1]), int(c[2]))
    return grid.shape[-2], grid.shape[-1], lambda c: (int(c[-2]), int(c[-1]))


def _gap_rows(grid: Grid) -> set:
    if len(grid.shape) == 3 and grid.shape[0] > 1:
        return {c * (grid.shape[1] + 1) + grid.shape[1] for c in range(grid.shape[0] - 1)}
    return set()


def _panel_grids(story: Story, step: Step) -> list[Grid]:
    names = []
    for lit in step.lit:
        if lit.target not in names and lit.role in ("window", "padding_tap", "output", "muted"):
            names.append(lit.target)
    for w in step.writes:
        if w.target not in names:
            names.append(w.target)
    grids = {g.name: g for g in story.grids}
    # the kernel is the same in every panel: the figure shows where it lands, not its taps
    return [grids[n] for n in names if n in grids and grids[n].role != "kernel"]


def _panel_size(grids) -> tuple[float, float]:
    w = sum(_cells(g)[1] * CELL for g in grids) + GAP * (len(grids) - 1)
    h = max(_cells(g)[0] * CELL for g in grids)
    return w, h + LABEL_H


def _draw_grid(ax, grid: Grid, step: Step, x0: float, top: float, theme, never=()) -> float:
    from matplotlib.patches import Rectangle

    rows, cols, place = _cells(grid)
    role = theme.role(ROLE_OF_GRID.get(grid.role, "input"))
    lit = {}
    for lt in step.lit:
        if lt.target == grid.name:
            for c in lt.cells:
                lit.setdefault(place(tuple(c)), lt.role)
    for w in step.writes:
        if w.target == grid.name:
            lit[place(tuple(w.cell))] = "output"
    pad = set(place(c) for c in _flag_cells(grid, grid.padding))
    unread = set(place(tuple(c)) for c in never)
    muted = set(place(c) for c in _flag_cells(grid, grid.muted))
    fills = {"window": theme.role("parameter").strong, "output": theme.role("state").strong,
             "padding_tap": theme.role("padding").fill, "muted": theme.role("padding").fill}
    gaps = _gap_rows(grid)
    for r in range(rows):
        for c in range(cols if r not in gaps else 0):
            kind = lit.get((r, c))
            x, y = x0 + c * CELL, top - (r + 1) * CELL
            if (r, c) in pad:
                face, edge, style = (fills["padding_tap"] if kind else "none"), theme.role("padding").line, "--"
            elif (r, c) in muted:
                face, edge, style = theme.role("padding").fill, theme.role("padding").line, "-"
            else:
                face, edge, style = fills.get(kind, role.fill), role.line, "-"
            ax.add_patch(Rectangle((x, y), CELL, CELL, facecolor=face, edgecolor=edge, linestyle=style,
                                   linewidth=0.8 if kind else 0.5))
            if (r, c) in unread and not kind:     # never read / never reached: hatched, not outlined
                ax.add_patch(Rectangle((x, y), CELL, CELL, facecolor="none", hatch="////", linewidth=0,
                                       edgecolor=theme.role("never_read").line))
    return x0 + cols * CELL


def _flag_cells(grid: Grid, flags):
    if not flags:
        return []
    import numpy as np

    return [tuple(int(v) for v in idx) for idx in np.argwhere(np.asarray(flags, bool).reshape(grid.shape))]


def figure_steps(story: Story) -> list[Step]:
    """The panels: the steps of the story's first part (the forward windows, or the stamps)."""
    first = story.steps[0].part if story.steps else ""
    return [s for s in story.steps if s.part == first and _panel_grids(story, s)]


def conv_figure(story: Story, out, fmt: str, theme: str = "light", positions=None) -> None:
    """Small multiples of `story`'s steps (all, or the 1-based `positions`) written to `out` as fmt."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    th = {"light": LIGHT, "dark": DARK}[theme]
    steps = figure_steps(story)
    if positions:
        bad = [p for p in positions if not 1 <= p <= len(steps)]
        if bad:
            raise ValueError(f"--positions: each must be in 1..{len(steps)} (got {bad[0]})")
        steps = [steps[p - 1] for p in positions]
    never = {}
    for s in story.steps:
        for lit in s.lit:
            if lit.role == "never_read":
                never.setdefault(lit.target, []).extend(lit.cells)
    cols = min(MAX_COLS, len(steps))
    rows = math.ceil(len(steps) / cols)
    pw, ph = max(_panel_size(_panel_grids(story, s))[0] for s in steps), \
        max(_panel_size(_panel_grids(story, s))[1] for s in steps)
    # a label wider than its panel wraps (never into the next panel); more lines, a taller label row
    labels = [_wrap(s.lines[0].text if s.lines else s.label, pw) for s in steps]
    ph += max(0.0, max(len(lines) for lines in labels) * LABEL_LINE_H + 0.12 - LABEL_H)
    width, height = cols * pw + (cols - 1) * GAP, rows * ph + (rows - 1) * GAP * 0.5
    fig = Figure(figsize=(width + 2 * MARGIN, height + 2 * MARGIN))
    fig.patch.set_facecolor(th.background)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-MARGIN, width + MARGIN)
    ax.set_ylim(-MARGIN, height + MARGIN)
    ax.set_axis_off()
    for i, step in enumerate(steps):
        r, c = divmod(i, cols)
        x = c * (pw + GAP)
        top = height - r * (ph + GAP * 0.5)
        grids = _panel_grids(story, step)
        for grid in grids:
            x = _draw_grid(ax, grid, step, x, top, th, never.get(grid.name, ())) + GAP
        below = top - max(_cells(g)[0] for g in grids) * CELL - 0.12
        ax.text(c * (pw + GAP), below, "\n".join(labels[i]), fontsize=LABEL_PT, color=th.text,
                family="DejaVu Sans", va="top", ha="left", linespacing=1.2)
    _save(fig, out, fmt, story.alt)


def _wrap(words: str, width: float) -> list[str]:
    """`words` in lines that fit `width` inches at LABEL_PT (DejaVu Sans: at most LABEL_CHAR_W a character)."""
    import re
    import textwrap

    # an index ("y[1..2, 3..4]") is never split: its spaces are no-break spaces (textwrap breaks at ASCII ones)
    kept = re.sub(r"\[[^\]]*\]", lambda m: m.group(0).replace(" ", "\u00a0"), words)
    return textwrap.wrap(kept, width=max(12, int(width / LABEL_CHAR_W))) or [""]


def _save(fig, out, fmt: str, title: str) -> None:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "viz"          # stable clip-path ids
    matplotlib.rcParams["svg.fonttype"] = "path"          # text as outlines: renders the same everywhere
    matplotlib.rcParams["pdf.fonttype"] = 42              # embedded TrueType
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    metadata = {"svg": {"Date": None, "Title": title}, "pdf": {"CreationDate": None, "Title": title},
                "png": {"Software": None}}[fmt]
    with atomic_path(Path(out)) as tmp:
        fig.savefig(tmp, format=fmt, metadata=metadata, dpi=200, facecolor=fig.get_facecolor(),
                    bbox_inches="tight", pad_inches=0.02)
