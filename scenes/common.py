"""Shared pieces of the scenes: monospaced text from cached outlines, grids of numbered cells, legends.

Nothing here computes mathematics: a CellGrid draws the values and texts it is given (a Story's grid,
through `scenes.player.GridView`). Manim is imported lazily by the functions that draw, so this module
loads with NumPy only.
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
