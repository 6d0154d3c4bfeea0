"""Shared pieces of the scenes: monospaced text from cached outlines, grids of numbered cells, and the
Story player.

Nothing here computes mathematics. `GridView` draws a Story `Grid` (its values, texts, masks and axis
labels) as cell panels; `StoryPlayer` plays a Story's steps on its timeline: each step's lit cells,
written outputs and lines, from the Story, with a short fade and a hold (one step, one screen).

Manim is imported lazily by the functions that draw, so this module loads with NumPy only.
"""
from __future__ import annotations

import numpy as np

from viz.text import fmt_value

from . import style


# ---- drawing ----------------------------------------------------------------------------------------

def gap_for(cell: float) -> float:
    """Space between neighbouring cells: style.CELL_GAP, or a ninth of the cell for small cells."""
    return min(style.CELL_GAP, cell / 9)


def cell_for_pitch(pitch: float, max_cell: float = style.CELL_SIZE) -> float:
    """The cell side when cells repeat every `pitch` units (cell + gap = pitch), at most max_cell."""
    cell = pitch - min(style.CELL_GAP, pitch / 10)
    return max(min(max_cell, cell), 0.02)


def _manim():
    from .render import import_manim
    return import_manim()


_TEXT_CACHE: dict = {}


def _lighten(mob):
    """Drop the parsed SVG path each glyph keeps after its points are built (Manim never reads it
    again): deep-copying it made every copy of a Text (each FadeIn/Transform copies) ~6x slower."""
    for part in mob.get_family():
        if getattr(part, "path_obj", None) is not None:
            part.path_obj = None
    return mob


# Every monospaced text is composed from one shaped line holding each character once: in a
# monospaced font a character's outline only moves by one advance per position, so any line is a
# copy of cached outlines, shifted with NumPy, in ONE VMobject. Shaping a Text per string (Pango,
# an SVG file, its parse) and deep-copying its tree of glyphs on every animation cost 10-100x more.
_CHARSET = ("0123456789−+-·=()[],.:;/|'*×…Σ∂ℓ≈<>!?%_{}—"
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0")   # starts and ends with "0"
_MONO_SIZE = 48.0


class _MonoFont:
    def __init__(self):
        m = _manim()
        line = m.Text(_CHARSET, font=style.MONO, font_size=_MONO_SIZE)
        xs = [g.get_center()[0] for g in line.submobjects]
        if len(xs) != len(_CHARSET) or any(b <= a for a, b in zip(xs, xs[1:])):
            self.glyphs = {}   # a glyph missing or merged, or Pango wrapped the line: use Text
            return
        first, last = line.submobjects[0], line.submobjects[-1]
        self.advance = (last.get_center()[0] - first.get_center()[0]) / (len(_CHARSET) - 1)
        origin = first.get_center() - np.array([0.0, first.get_center()[1], 0.0])
        self.glyphs = {}
        for i, (ch, glyph) in enumerate(zip(_CHARSET, line.submobjects)):
            if ch not in self.glyphs:
                shift = origin + np.array([i * self.advance, 0.0, 0.0])
                self.glyphs[ch] = [part.points - shift for part in glyph.family_members_with_points()]

    def can_draw(self, s: str) -> bool:
        return bool(self.glyphs) and all(ch == " " or ch in self.glyphs for ch in s)

    def points(self, s: str, size: float):
        """Outline point arrays of `s` at font size `size`, centred on the origin."""
        scale = size / _MONO_SIZE
        parts = [(p + np.array([j * self.advance, 0.0, 0.0])) * scale
                 for j, ch in enumerate(s) if ch != " " for p in self.glyphs[ch]]
        if not parts:
            return []
        allp = np.concatenate(parts)
        centre = (allp.min(axis=0) + allp.max(axis=0)) / 2
        return [p - centre for p in parts]


_MONO: _MonoFont | None = None


def _mono() -> _MonoFont:
    global _MONO
    if _MONO is None:
        _MONO = _MonoFont()
    return _MONO


def text(s: str, size: float = style.LABEL_SIZE, color: str = style.TEXT, font: str = style.MONO):
    """Text without LaTeX: monospaced text is one VMobject composed from cached outlines; other fonts
    (and characters outside the cached set) are a Manim Text, built once per string and copied."""
    m = _manim()
    if font == style.MONO and _mono().can_draw(s):
        vm = m.VMobject(fill_color=color, fill_opacity=1.0, stroke_width=0)
        for pts in _mono().points(s, size):
            vm.append_points(pts)
        return vm
    key = (s, size, color, font)
    if len(s) > 16:
        return _lighten(m.Text(s, font=font, font_size=size, color=color))
    if key not in _TEXT_CACHE:
        _TEXT_CACHE[key] = _lighten(m.Text(s, font=font, font_size=size, color=color))
    return _TEXT_CACHE[key].copy()


def markup(s: str, size: float = style.LABEL_SIZE, color: str = style.TEXT, font: str = style.FONT):
    """A MarkupText (Pango markup: <sub>, <b>, <span foreground=...>)."""
    m = _manim()
    key = ("markup", s, size, color, font)
    if key not in _TEXT_CACHE:
        _TEXT_CACHE[key] = _lighten(m.MarkupText(s, font=font, font_size=size, color=color))
    return _TEXT_CACHE[key].copy()


def fit(mob, width: float, height: float):
    """Scale `mob` down (never up) to fit in width x height."""
    if mob.width > width:
        mob.scale_to_fit_width(width)
    if mob.height > height:
        mob.scale_to_fit_height(height)
    return mob


def color_span(s: str, color: str) -> str:
    return f'<span foreground="{color}">{s}</span>'


def glyphs(entries, color: str):
    """One VMobject holding many short monospaced texts: entries = [(string, font size, centre,
    max width, max height), ...], each scaled down to fit its box. A grid of numbers is then one
    mobject instead of hundreds, which keeps every play call (Manim walks the scene's whole family
    each time) fast."""
    m = _manim()
    merged = m.VMobject(fill_color=color, fill_opacity=1.0, stroke_width=0)
    for s, size, centre, max_w, max_h in entries:
        if _mono().can_draw(s):
            parts = _mono().points(s, size)
        else:
            parts = [p.points - text(s, size, color, font=style.FONT).get_center()
                     for p in text(s, size, color, font=style.FONT).family_members_with_points()]
        if not parts:
            continue
        allp = np.concatenate(parts)
        w, h = np.ptp(allp[:, 0]), np.ptp(allp[:, 1])
        scale = min(1.0, max_w / max(w, 1e-9), max_h / max(h, 1e-9))
        for p in parts:
            merged.append_points(p * scale + np.asarray(centre))
    return merged


def dashed_squares(centres, side: float, color: str, width: float, dashes_per_side: int = 2,
                   ratio: float = 0.55):
    """Dashed square outlines around many centres, as one VMobject (padding cells)."""
    m = _manim()
    vm = m.VMobject(stroke_color=color, stroke_width=width, fill_opacity=0.0)
    h = side / 2
    unit = [np.array(v, dtype=float) for v in ((-h, h, 0), (h, h, 0), (h, -h, 0), (-h, -h, 0))]
    for centre in centres:
        corners = [np.asarray(centre) + u for u in unit]
        for a, b in zip(corners, corners[1:] + corners[:1]):
            for k in range(dashes_per_side):
                t0 = (k + (1 - ratio) / 2) / dashes_per_side
                t1 = t0 + ratio / dashes_per_side
                vm.start_new_path(a + (b - a) * t0)
                vm.add_line_to(a + (b - a) * t1)
    return vm


class CellGrid:
    """A rows x cols grid of square cells, optionally numbered, built once and animated by cell.

    values: (rows, cols) floats; padding: (rows, cols) bool, padding cells (dashed grey outline,
    their "0" muted); muted: cells drawn grey (zeros inserted by dilation); role: colour role of the
    real cells. Cells smaller than style.MIN_NUMBERED_CELL_SIZE show no numbers: their fill opacity
    follows the value instead. `group` is the VGroup to add to the scene; `square(r, c)` the cell's
    square (invisible for padding cells, whose dashes are drawn together).
    """

    def __init__(self, values, role: str, cell: float, integer: bool = True, padding=None,
                 muted=None, empty: bool = False, gap: float | None = None, number_size=None, texts=None,
                 numbered: bool | None = None):
        """empty=True draws the outlines only (an output still to be computed); `values` then only
        sets the range of the fill shading used when cells are too small for numbers. texts: the
        numbers as shown (a Story's Grid.texts, same shape as values); default: formatted values."""
        m = _manim()
        values = np.asarray(values, dtype=float)
        if values.ndim == 1:
            values = values[None, :]
        self.values = values
        self.rows, self.cols = values.shape
        self.cell = cell
        self.step = cell + (gap_for(cell) if gap is None else gap)
        self.role = role
        self.color = style.ROLE_COLORS[role]
        self.integer = integer
        self.numbered = cell >= style.MIN_NUMBERED_CELL_SIZE if numbered is None else numbered
        self.padding = np.zeros(values.shape, bool) if padding is None else np.asarray(padding, bool)
        self.muted = np.zeros(values.shape, bool) if muted is None else np.asarray(muted, bool)
        self.number_size = number_size or style.CELL_FONT_SIZE * min(1.0, cell / style.CELL_SIZE)
        if texts is not None:
            # the Story's texts, one size for the whole grid: the widest still fits its cell
            texts = np.asarray(texts, dtype=object).reshape(values.shape)
            widest = max((len(str(t)) for t in texts.ravel()), default=1)
            self.number_size = min(self.number_size, cell * 0.86 / (max(widest, 1) * style.MONO_ADVANCE))
        finite = values[np.isfinite(values) & ~self.padding & ~self.muted]
        self._lo = float(finite.min()) if finite.size else 0.0
        self._hi = float(finite.max()) if finite.size else 1.0
        self.group = m.VGroup()
        self.written = m.VGroup()   # numbers written later by fill_animations
        self.squares = {}
        for r in range(self.rows):
            for c in range(self.cols):
                self.squares[r, c] = self._square(r, c, empty)
                self.group.add(self.squares[r, c])
        pads = [self.center_of(r, c) for r, c in zip(*np.nonzero(self.padding))]
        if pads:
            self.group.add(dashed_squares(pads, cell, style.PADDING, style.CELL_STROKE_WIDTH * 0.8
                                          * min(1, cell / 0.4)))
        if self.numbered and not empty:
            plain, grey = [], []
            for r in range(self.rows):
                for c in range(self.cols):
                    if np.isfinite(values[r, c]):
                        shown = fmt_value(values[r, c], integer) if texts is None else texts[r][c]
                        entry = (shown, self.number_size, self.center_of(r, c), cell * 0.86, cell * 0.8)
                        (grey if self.padding[r, c] or self.muted[r, c] else plain).append(entry)
            for entries, color in ((plain, style.TEXT), (grey, style.PADDING_TEXT)):
                if entries:
                    self.group.add(glyphs(entries, color).set_z_index(style.Z_NUMBERS))

    def center_of(self, r: int, c: int):
        """Where cell (r, c) was built (before the group is moved into place)."""
        return np.array([c * self.step, -r * self.step, 0.0])

    def _shade(self, v: float) -> float:
        if not np.isfinite(v) or self._hi <= self._lo:
            return style.CELL_FILL_OPACITY
        return 0.12 + 0.78 * (v - self._lo) / (self._hi - self._lo)

    def _square(self, r, c, empty):
        m = _manim()
        if self.padding[r, c]:   # an invisible anchor: the dashes are drawn for all padding cells at once
            sq = m.Square(self.cell, stroke_opacity=0.0, fill_opacity=0.0, stroke_width=0)
            return sq.move_to(self.center_of(r, c))
        color = style.MUTED if self.muted[r, c] else self.color
        if empty:
            opacity = 0.0
        elif self.numbered or self.muted[r, c]:
            opacity = style.CELL_FILL_OPACITY * (0.5 if self.muted[r, c] else 1.0)
        else:
            opacity = self._shade(self.values[r, c])
        sq = m.Square(self.cell, stroke_color=color, stroke_width=style.CELL_STROKE_WIDTH * min(1, self.cell / 0.4),
                      fill_color=color, fill_opacity=opacity)
        return sq.move_to(self.center_of(r, c))

    def square(self, r, c):
        return self.squares[r, c]

    def position(self, r, c):
        return self.squares[r, c].get_center()

    def fill_animations(self, r, c, value: float, shown: str, color: str | None = None):
        """Write `shown` into an (empty) cell and fill it: the output being computed.

        Returns (animations of the cell's fill, the number mobject to fade in or None)."""
        color = color or self.color
        sq = self.squares[r, c]
        opacity = style.CELL_FILL_OPACITY_STRONG if self.numbered else self._shade(value)
        anims = [sq.animate.set_fill(color, opacity=opacity)]
        number = None
        if self.numbered:
            number = glyphs([(shown, self.number_size, sq.get_center(), self.cell * 0.86, self.cell * 0.8)],
                            style.TEXT).set_z_index(style.Z_NUMBERS)
            self.written.add(number)
        return anims, number

    def mobjects(self):
        """Everything this grid put on screen: the cells and the numbers written into them."""
        m = _manim()
        return m.VGroup(self.group, self.written)

    def outline(self, cells, color: str = style.HIGHLIGHT, width: float = style.HIGHLIGHT_STROKE_WIDTH):
        """Outlines around `cells` (a footprint), as one VMobject."""
        m = _manim()
        width = width * min(1.0, self.cell / 0.4) + 1.0
        h = self.cell * 0.52
        vm = m.VMobject(stroke_color=color, stroke_width=width, fill_opacity=0.0)
        for r, c in cells:
            centre = self.position(r, c)
            corners = [centre + np.array(v) for v in ((-h, h, 0), (h, h, 0), (h, -h, 0), (-h, -h, 0))]
            vm.start_new_path(corners[0])
            for corner in corners[1:] + corners[:1]:
                vm.add_line_to(corner)
        return vm

    def fills(self, cells, color: str, opacity: float, inset: float = 0.0):
        """Filled squares (no outline) over `cells`, as one VMobject drawn under the numbers."""
        m = _manim()
        vm = m.VMobject(fill_color=color, fill_opacity=opacity, stroke_width=0)
        h = self.cell * (0.5 - inset)
        for r, c in cells:
            centre = self.position(r, c)
            vm.start_new_path(centre + np.array((-h, h, 0)))
            for corner in ((h, h, 0), (h, -h, 0), (-h, -h, 0), (-h, h, 0)):
                vm.add_line_to(centre + np.array(corner))
        return vm.set_z_index(style.Z_HIGHLIGHT)

    def box(self, r0, c0, r1, c1, color: str = style.HIGHLIGHT):
        """A thin rectangle around cells r0..r1 x c0..c1 (inclusive): the footprint's extent."""
        m = _manim()
        a = self.position(r0, c0)
        b = self.position(r1, c1)
        w = abs(b[0] - a[0]) + self.cell * 1.25
        h = abs(b[1] - a[1]) + self.cell * 1.25
        rect = m.Rectangle(width=w, height=h, stroke_color=color, stroke_width=1.5, stroke_opacity=0.8,
                           fill_color=color, fill_opacity=0.06)
        rect.move_to((a + b) / 2)
        return rect


def index_labels(grid: CellGrid, labels, axis: str, size: float = style.SMALL_SIZE, color=style.MUTED):
    """Small labels above the columns (axis="cols") or left of the rows (axis="rows"); None = no label."""
    m = _manim()
    g = m.VGroup()
    for i, lab in enumerate(labels):
        if lab is None:
            continue
        t = text(str(lab), size=size, color=color)
        fit(t, grid.cell * 1.1, grid.cell * 0.7)
        if axis == "cols":
            t.next_to(grid.square(0, i), m.UP, buff=0.16)
        else:
            t.next_to(grid.square(i, 0), m.LEFT, buff=0.1)
        g.add(t)
    return g


def legend(items, size: float = style.SMALL_SIZE):
    """A row of (colour swatch, caption) pairs; items: [(role, caption), ...]."""
    m = _manim()
    g = m.VGroup()
    for role, caption in items:
        color = style.ROLE_COLORS[role]
        sw = m.Square(0.22, stroke_color=color, fill_color=color,
                      fill_opacity=0.0 if role == "padding" else style.CELL_FILL_OPACITY_STRONG,
                      stroke_width=2)
        if role == "padding":
            sw = m.DashedVMobject(sw, num_dashes=8)
        t = text(caption, size=size, color=style.TEXT, font=style.FONT)
        g.add(m.VGroup(sw, t).arrange(m.RIGHT, buff=0.1))
    g.arrange(m.RIGHT, buff=0.4)
    return g


# ---- drawing a Story ----------------------------------------------------------------------------------

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
        return g

    def writes(self, step, animate: bool):
        """Fill the cells this step writes: (animations, mobjects to add at once)."""
        anims, numbers = [], []
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
            scene.play(*anims, run_time=fade)
        else:
            if self.current is not None:
                scene.remove(self.current)
            scene.add(new, *numbers)
        self.current = new
        self.shown.append({"id": step.id, "lines": [ln.text for ln in step.lines],
                           "lit": {(lit.target, lit.role): list(lit.cells) for lit in step.lit},
                           "writes": [(w.target, tuple(w.cell), w.text) for w in step.writes]})
        frame = 1.0 / float(scene.camera.frame_rate)
        if end - scene.clock() >= frame - 1e-9 or index == len(scene.story.steps) - 1:
            scene.hold_until(end)
