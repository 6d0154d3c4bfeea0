"""Drawing a Story: `GridView` (a Story Grid as cell panels, with its axis labels) and `StoryPlayer`
(the steps on the Story's timeline: each step's lit cells, written outputs and lines, one screen each).

The player computes nothing: cells, texts and times all come from the Story. Per step k it calls
`scene.begin_step(k)`, fades the previous step's highlights and lines out and this step's in (a short
transition, never a text morph; sped-up steps cut), fills the cells the step writes, and holds until
the step's end, so any frame of the hold shows that step and nothing of another.
"""
from __future__ import annotations

import numpy as np

from . import style
from .common import _MONO_SIZE, CellGrid, _manim, fit, index_labels, text

ROLE_TEXT_COLORS = {"window": style.HIGHLIGHT, "output": style.OUTPUT, "never_read": style.NEVER_READ,
                    "gradient": style.GRADIENT, "kernel": style.KERNEL, "input": style.INPUT}


MIN_INDEXED_CELL = 0.2   # below this cell size a grid drops its 1-based position labels


class GridView:
    """A Story `Grid` drawn as CellGrid panels: shape (n,) is one row, (r, c) one panel, (C, r, c) one
    panel per channel. `locate(cell)` maps a Story cell (0-based, as in Lit/Write) to (panel, row, col).

    Labels come from the Grid: `axis_labels` beside rows / above columns, `label` above a panel (or
    the channel labels above per-channel panels). `empty=True` draws the cells only (filled by writes).
    """

    def __init__(self, grid, cell: float, empty: bool = False, col_labels: bool = True,
                 row_labels: bool = True, numbered: bool | None = None):
        m = _manim()
        self.grid = grid
        shape = tuple(grid.shape)
        a = np.asarray(grid.values, float).reshape(shape)
        texts = np.asarray(grid.texts, dtype=object).reshape(shape) if grid.texts else None
        mask = lambda flat: np.asarray(flat, bool).reshape(shape) if flat else None  # noqa: E731
        pad, muted = mask(grid.padding), mask(grid.muted)
        self.depth = len(shape)
        stack = (lambda v: v[None]) if self.depth == 1 else (lambda v: v[None]) if self.depth == 2 else (lambda v: v)
        a, texts = stack(a), None if texts is None else stack(texts)
        pad, muted = (None if v is None else stack(v) for v in (pad, muted))
        integer = all("." not in t for t in grid.texts)
        self.panels = [CellGrid(a[i], grid.role, cell, integer, padding=None if pad is None else pad[i],
                                muted=None if muted is None else muted[i], empty=empty,
                                texts=None if texts is None else texts[i], numbered=numbered)
                       for i in range(a.shape[0])]
        self.labels = m.VGroup()
        self.col_labels, self.row_labels = col_labels, row_labels
        self.group = m.VGroup(*[p.group for p in self.panels], self.labels)

    def locate(self, cell):
        cell = tuple(int(v) for v in cell)
        if self.depth == 1:
            return self.panels[0], 0, cell[0]
        if self.depth == 2:
            return self.panels[0], cell[0], cell[1]
        return self.panels[cell[0]], cell[1], cell[2]

    def centre(self, cell):
        p, r, c = self.locate(cell)
        return p.position(r, c)

    @property
    def cell(self) -> float:
        return self.panels[0].cell

    def place(self, x0: float, y_top: float, columns: int = 1, sep: float = 0.35, label_h: float = 0.0):
        """Put the panels in a grid of `columns`, the first panel's top-left cell at (x0, y_top)."""
        p0 = self.panels[0]
        w, h = p0.cols * p0.step, p0.rows * p0.step
        for i, p in enumerate(self.panels):
            r_, c_ = divmod(i, columns)
            target = np.array([x0 + c_ * (w + sep) + p.cell / 2, y_top - r_ * (h + sep + label_h) - p.cell / 2, 0])
            p.group.shift(target - p.position(0, 0))
        self._draw_labels()
        return self

    def _draw_labels(self):
        m = _manim()
        self.labels.remove(*self.labels.submobjects)
        axes = self.grid.axis_labels
        color = style.ROLE_COLORS.get(self.grid.role, style.TEXT)
        size = style.SMALL_SIZE * min(1.0, max(self.cell, 0.3) / 0.45)
        for i, p in enumerate(self.panels):
            title, rows, cols = self._axes(i)
            if title:
                t = text(title, size=style.LABEL_SIZE * 0.75, color=color, font=style.FONT)
                fit(t, max(p.cols * p.step, 0.6), 0.32)
                t.next_to(p.square(0, 0), m.UP, buff=0.1 + (0.3 if self.col_labels and cols else 0),
                          aligned_edge=m.LEFT)
                self.labels.add(t)
            indices = self.cell >= MIN_INDEXED_CELL    # position labels only where they stay legible
            if cols and self.col_labels and indices:
                self.labels.add(index_labels(p, list(cols), "cols", size=size))
            if rows and self.row_labels and (indices or not all(lab.isdigit() or not lab for lab in rows)):
                for r, lab in enumerate(rows):
                    if not lab:
                        continue
                    index = lab.isdigit()       # a position ("3") or a name ("x2", "w1")
                    t = text(lab, size=size if index else style.LABEL_SIZE * 0.7,
                             color=style.MUTED if index else color)
                    fit(t, 1.1, p.cell * (0.8 if index else 1.0))
                    t.next_to(p.square(r, 0), m.LEFT, buff=0.12)
                    self.labels.add(t)

    def _axes(self, i: int):
        """(title above panel i, its row labels, its column labels), from the Grid's axis labels."""
        axes = self.grid.axis_labels
        if self.depth == 1:
            return None, (self.grid.label,), (axes[0] if axes else None)
        if self.depth == 2:
            rows, cols = (axes[0], axes[1]) if axes else (None, None)
            names = rows and not all(lab.isdigit() or not lab for lab in rows)
            return (None if names else self.grid.label), rows, cols
        return (axes[0][i] if axes else self.grid.label), *((axes[1], axes[2]) if axes else (None, None))

    def fills(self, cells, color: str, opacity: float):
        """Filled cells; on cells too small for numbers (shaded by value) nearly opaque, so a lit
        cell never reads as a dark or a light value."""
        m = _manim()
        by_panel = {}
        for cell in cells:
            p, r, c = self.locate(cell)
            by_panel.setdefault(id(p), (p, []))[1].append((r, c))
        return m.VGroup(*[p.fills(rc, color, opacity if p.numbered else max(opacity, 0.85))
                          for p, rc in by_panel.values()])

    def outlines(self, cells, color: str = style.HIGHLIGHT):
        m = _manim()
        by_panel = {}
        for cell in cells:
            p, r, c = self.locate(cell)
            by_panel.setdefault(id(p), (p, []))[1].append((r, c))
        return m.VGroup(*[p.outline(rc, color=color).set_z_index(style.Z_OUTLINE) for p, rc in by_panel.values()])


LINE_PITCH = 1.45   # line spacing of a text block, in font heights


def lines_block(lines, anchor, size: float):
    """Story Lines as left-aligned monospaced text, the first line's top-left at `anchor`."""
    m = _manim()
    g = m.VGroup()
    pitch = size / _MONO_SIZE * 0.75 * LINE_PITCH
    for i, line in enumerate(lines):
        t = text(line.text, size=size, color=ROLE_TEXT_COLORS.get(line.role, style.TEXT))
        t.move_to(np.asarray(anchor) + np.array([0, -pitch * (i + 0.5), 0]), aligned_edge=m.LEFT)
        g.add(t)
    return g.set_z_index(style.Z_NUMBERS)


class StoryPlayer:
    """Plays a Story's steps on its timeline: per step, the lit cells (window filled, padding taps
    and the written cell outlined, never-read cells filled), the written outputs and the text lines
    appear together after a short fade, then hold until the step ends. Text never morphs.

    views: {grid name: GridView}; text_at(step) -> (anchor, font size) of the step's lines;
    extra(step) -> more mobjects of the step (e.g. a zoomed inset), or None. The renderer computes
    nothing: cells, texts and times all come from the Story. `shown` records, per step, what was drawn.
    """

    def __init__(self, scene, views: dict, text_at, extra=None):
        self.scene, self.views, self.text_at, self.extra = scene, views, text_at, extra
        self.current = None
        self.shown: list[dict] = []
        self.numbers: dict = {}      # (grid, cell) -> the number written there last (a rewrite replaces it)

    def highlight(self, step):
        m = _manim()
        g = m.VGroup()
        for lit in step.lit:
            view = self.views.get(lit.target)
            if view is None or not lit.cells:
                continue
            if lit.role in ("window", "bias"):
                g.add(view.fills(lit.cells, style.HIGHLIGHT, style.WINDOW_FILL_OPACITY))
            elif lit.role == "never_read":
                g.add(view.fills(lit.cells, style.NEVER_READ, style.NEVER_READ_FILL_OPACITY))
            elif lit.role in ("padding_tap", "muted", "output"):
                g.add(view.outlines(lit.cells))
            elif lit.role == "highlight":         # the cell a step picks (a max pool's maximum)
                g.add(view.outlines(lit.cells, style.OUTPUT))
        return g

    def writes(self, step, animate: bool):
        """Fill the cells this step writes: (animations, mobjects to add at once). A cell written
        before (a running sum) loses its previous number: `self.replaced` holds those to take off."""
        anims, numbers = [], []
        self.replaced = []
        for w in step.writes:
            view = self.views.get(w.target)
            if view is None:
                continue
            p, r, c = view.locate(w.cell)
            fill, number = p.fill_animations(r, c, w.value, w.text)
            if animate:
                anims += fill
            else:
                p.square(r, c).set_fill(p.color, opacity=style.CELL_FILL_OPACITY_STRONG if p.numbered
                                        else p._shade(w.value))
            if number is not None:
                numbers.append(number)
                old = self.numbers.pop((w.target, tuple(w.cell)), None)
                if old is not None:
                    p.written.remove(old)
                    self.replaced.append(old)
                self.numbers[w.target, tuple(w.cell)] = number
        return anims, numbers

    def play(self, index: int, start: float, end: float):
        m = _manim()
        scene, step = self.scene, self.scene.story.steps[index]
        scene.begin_step(index)
        anchor, size = self.text_at(step)
        new = m.VGroup(self.highlight(step), lines_block(step.lines, anchor, size))
        more = self.extra(step) if self.extra else None
        if more is not None:
            new.add(more)
        fade = min(style.TRANSITION_TIME, (end - start) / 4)
        animate = end - start >= style.MIN_ANIMATED_STEP
        fills, numbers = self.writes(step, animate)
        if animate:
            anims = [m.FadeIn(new)] + fills + ([m.FadeIn(m.VGroup(*numbers))] if numbers else [])
            if self.current is not None:
                anims.append(m.FadeOut(self.current))
            anims += [m.FadeOut(old) for old in self.replaced]
            scene.play(*anims, run_time=fade)
        else:
            if self.current is not None:
                scene.remove(self.current)
            scene.remove(*self.replaced)
            scene.add(new, *numbers)
        self.current = new
        self.shown.append({"id": step.id, "lines": [ln.text for ln in step.lines],
                           "lit": {(lit.target, lit.role): list(lit.cells) for lit in step.lit},
                           "writes": [(w.target, tuple(w.cell), w.text) for w in step.writes]})
        frame = 1.0 / float(scene.camera.frame_rate)
        if end - scene.clock() >= frame - 1e-9 or index == len(scene.story.steps) - 1:
            scene.hold_until(end)
