"""The conv-arithmetic animations beside the convolution, drawn from their Stories
(`viz.story.arithmetic`): `TransposeScene` (`animate conv-transpose`: the scatter form, then the
gather form on the same numbers) and `PoolScene` (`animate pool`: max or average pooling, forward
then backward).

Both lay their grids out in rows, one general mechanism (`RowsScene`): each row is a list of Story
grids drawn side by side, the rows stacked under the title, the step's lines below them; the cell is
the largest that lets every row fit the frame's width and all rows, plus the tallest step's lines,
its height. Then `StoryPlayer` plays the steps on the Story's timeline (one step, one screen; a cell
written again, a running sum, replaces its number).

    conv-transpose:  x  w  y           (scatter: each x[n] times w stamped onto y, overlaps add)
                     x_spread  flip(w)  y_gather   (gather: zeros inserted, padded, flipped kernel)
    pool:            x (padded)  y      (forward: the max / mean of each window)
                     ∂ℓ/∂y  ∂ℓ/∂x       (backward: routed to the argmax / spread over the window)
"""
from __future__ import annotations

import numpy as np

from viz.story import arithmetic as SA
from viz.story import transposed as ST

from . import style
from .conv import LEFT_X, RIGHT_X, ConvScene
from .conv_plan import GAP, LABEL_W, TEXT_GAP
from .player import GridView, StoryPlayer
from .rows_plan import ROW_GAP, TOP_ROOM
from . import rows_plan

MAX_CELL = style.CELL_SIZE


GOOD_CELL = 0.42        # the first layout whose cells are at least this big wins (else the biggest)


class RowsScene(ConvScene):
    """A Story drawn as rows of grids on pages. `LAYOUTS`: candidate layouts, each a tuple of pages,
    each page a tuple of rows of grid names; a step is drawn on the first page holding every grid it
    lights or writes, and the page changes (a cut) when the steps move on. `EMPTY`: the grids the
    steps' writes fill."""

    LAYOUTS: tuple = ()
    EMPTY: tuple[str, ...] = ()
    LEGEND: list = []
    PARAMS: tuple[str, ...] = ()
    builder = None

    def __init__(self, *, story=None, step_time: float = style.STORY_STEP_TIME, **kwargs):
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in self.PARAMS}
        story = story if story is not None else type(self).builder(params)
        super(ConvScene, self).__init__(story=story, step_time=step_time, **kwargs)
        self.captions, self.layout, self.shown = [], {}, []
        self.pages: list[dict] = []          # per page, the layout of its grids (as `layout`)
        self.page_of_step: list[int] = []

    # ---- the layout --------------------------------------------------------------------------------
    def text_size(self, width: float) -> float:
        """One font size for every step's lines: the widest line fits `width`, at most FORMULA_SIZE."""
        return rows_plan.text_size(self.story, width)

    def text_height(self, size: float) -> float:
        return rows_plan.text_height(self.story, size)

    def present(self, rows):
        names = {g.name for g in self.story.grids}
        return [[n for n in row if n in names] for row in rows]

    def columns(self, grid) -> int:
        """How many panels of a (C, r, c) grid sit side by side (1: stacked)."""
        return 1

    def cell_for(self, rows, top: float, bottom: float, text_h: float) -> float:
        """The largest cell (at most MAX_CELL) with which every row fits the width and all rows the
        height left above the text (`rows_plan.cell_for`)."""
        return rows_plan.cell_for([[(self.story.grid(n).shape, self.columns(self.story.grid(n))) for n in row]
                                   for row in rows], top, bottom, text_h)

    def place_rows(self, rows, cell: float, top: float) -> dict:
        views, y = {}, top
        for row in rows:
            x = LEFT_X
            placed = []
            for name in row:
                v = GridView(self.story.grid(name), cell, empty=name in self.EMPTY)
                v.place(x + LABEL_W, y - TOP_ROOM, columns=self.columns(self.story.grid(name)))
                v.group.shift(np.array([x - v.group.get_left()[0], 0, 0]))   # labels start at x
                x = v.group.get_right()[0] + GAP
                placed.append(v)
                views[name] = v
            dy = y - max(v.group.get_top()[1] for v in placed)     # the row's labels start at y
            for v in placed:
                v.group.shift(np.array([0, dy, 0]))
            y = min(v.group.get_bottom()[1] for v in placed) - ROW_GAP
        return views

    def fit_page(self, rows, cell, top, bottom, text_h) -> dict:
        """The page's views, shrunk until the grids, their labels and the text fit the frame."""
        views = self.place_rows(rows, cell, top)
        for _ in range(6):      # labels and gaps took more room than estimated
            low = min(v.group.get_bottom()[1] for v in views.values())
            right = max(v.group.get_right()[0] for v in views.values())
            if low - TEXT_GAP - text_h >= bottom - 1e-6 and right <= RIGHT_X + 1e-6:
                break
            over = max((bottom - (low - TEXT_GAP - text_h)) / max(top - low, 1e-6),
                       (right - RIGHT_X) / (right - LEFT_X))
            cell = max(cell * (1 - over) * 0.97, style.MIN_CELL_SIZE)
            views = self.place_rows(rows, cell, top)
        return views

    def choose(self, top, bottom, text_h):
        """The first candidate layout whose smallest page cell is at least GOOD_CELL, else the best."""
        scored = []
        for pages in self.LAYOUTS:
            pages = [self.present(rows) for rows in pages]
            pages = [rows for rows in pages if any(rows)]
            cell = min(self.cell_for([r for r in rows if r], top, bottom, text_h) for rows in pages)
            if cell >= GOOD_CELL:
                return pages, cell
            scored.append((cell, -len(scored), pages))
        cell, _, pages = max(scored, key=lambda t: t[:2])
        return pages, cell

    def page_for(self, step, pages) -> int:
        used = {lit.target for lit in step.lit if lit.cells} | {w.target for w in step.writes}
        for i, rows in enumerate(pages):
            if used <= {n for row in rows for n in row}:
                return i
        return 0

    def construct(self):
        head = self.story_header()
        never = any(s.part == "never_read" for s in self.story.steps)
        has = any(item[0] == "never_read" for item in self.LEGEND)
        foot = self.story_legend(self.LEGEND + ([("never_read", "never read")] if never and not has else []))
        top = head.get_bottom()[1] - 0.25
        bottom = foot.get_top()[1] + 0.15
        size = self.text_size(RIGHT_X - LEFT_X)
        text_h = self.text_height(size)
        pages, cell = self.choose(top, bottom, text_h)
        views = [self.fit_page([r for r in rows if r], cell, top, bottom, text_h) for rows in pages]
        for page in views:      # centre each page's grids and lines in the room left
            low = min(v.group.get_bottom()[1] for v in page.values()) - TEXT_GAP - text_h
            for v in page.values():
                v.group.shift(np.array([0, -max(0.0, low - bottom) / 2, 0]))
        self.page_of_step = [self.page_for(s, pages) for s in self.story.steps]
        anchors = []
        for page in views:
            self.record_layout(page)
            self.pages.append({name: self.layout.pop(name) for name in page})
            low = min(v.group.get_bottom()[1] for v in page.values())
            anchors.append(np.array([LEFT_X, low - TEXT_GAP, 0]))
        self.text_tops = [float(a[1]) for a in anchors]      # per page, the top of the step's lines
        self.body = (float(top), float(bottom))               # under the header, above the legend
        self.layout.update(self.pages[0])
        first = anchors[self.page_of_step[0]] if self.story.steps else anchors[0]
        self.layout["text"] = {"left": float(first[0]), "top": float(first[1]),
                               "width": float(RIGHT_X - LEFT_X), "height": float(text_h)}
        self.play_pages(views, anchors, size, (head, foot))

    def play_pages(self, views, anchors, size, still):
        """Like ConvScene.play_story, one StoryPlayer per page; the page shown is the step's."""
        self.add(*still)
        shown = self.page_of_step[0] if self.story.steps else 0
        self.add(*[v.group for v in views[shown].values()])
        self.hold_until(self.intro_time)
        players = [StoryPlayer(self, page, lambda step, a=a: (a, size)) for page, a in zip(views, anchors)]
        self.players = players
        for k, (start, end) in enumerate(self.timeline):
            page = self.page_of_step[k]
            if page != shown:                 # a new page: cut to its grids at the step's start
                old = players[shown]
                if old.current is not None:
                    self.remove(old.current)
                    old.current = None
                self.remove(*[v.group for v in views[shown].values()], *old.numbers.values())
                self.add(*[v.group for v in views[page].values()])
                shown = page
            players[page].play(k, start, end)
            self.shown.append(players[page].shown[-1])


class TransposeScene(RowsScene):
    """`animate conv-transpose`: each input's stamp of the kernel on y, the running sums rewritten
    where stamps overlap; the outputs no stamp reaches (output padding adds the last ones); then the
    same y gathered: flip(w) over the input spread by the stride and padded by d(k−1)−p."""

    LAYOUTS = rows_plan.TRANSPOSE_LAYOUTS     # several channels or maps: rows_plan.transpose_layouts
    EMPTY = ("y", "y_gather")
    LEGEND = [("input", "input x"), ("padding", "padding (0)"), ("kernel", "kernel w"), ("output", "output y"),
              ("highlight", "stamp / window"), ("never_read", "never reached")]
    PARAMS = ("input", "kernel", "stride", "padding", "dilation", "output_padding", "values", "seed", "x", "w",
              "channels", "filters", "groups")
    builder = staticmethod(ST.transpose_animation_story)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.LAYOUTS = rows_plan.transpose_layouts(self.story)

    def columns(self, grid) -> int:
        return rows_plan.transpose_columns(grid)


class PoolScene(RowsScene):
    """`animate pool`: each window's max or mean written to y, then each ∂ℓ/∂y[o] routed to its
    window's argmax (max) or spread over its window (average), ∂ℓ/∂x summing what arrives."""

    LAYOUTS = (((("x", "y", "grad_y", "grad_x"),),),                              # all in one row
               ((("x", "y"), ("grad_y", "grad_x")),),                              # forward above backward
               ((("x", "y"),), (("x", "grad_y", "grad_x"),)))                      # forward, then backward
    EMPTY = ("y", "grad_x")
    LEGEND = [("input", "input x"), ("padding", "padding"), ("output", "output y"), ("gradient", "gradient"),
              ("highlight", "window")]
    PARAMS = ("input", "kernel", "stride", "padding", "dilation", "mode", "ceil_mode", "count_include_pad",
              "values", "seed", "x", "grad_y")
    builder = staticmethod(SA.pool_animation_story)
