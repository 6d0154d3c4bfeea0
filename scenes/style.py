"""Colours, sizes, fonts and timings shared by every Manim scene.

One meaning, one colour, everywhere (the diagrams use the same meanings): the palette is Okabe–Ito,
which stays distinguishable under the common colour-vision deficiencies, on a dark background where
every colour below reads at small sizes. Cells are drawn as a translucent fill of their role's colour
with a solid outline of the same colour, and their numbers in TEXT, so the number is always legible.

This module only holds plain values (strings, floats): it imports nothing from Manim, so reading it is
free and the constants can be shared with tests and benchmarks.
"""
from __future__ import annotations

# ---- background and text -------------------------------------------------------------------------
BACKGROUND = "#16181D"    # near-black slate: softer than pure black, keeps every role colour readable
TEXT = "#EDEDED"          # numbers, labels
MUTED = "#9AA0A6"         # secondary captions, axis names, zeros inserted by dilation

# ---- roles (Okabe–Ito) ---------------------------------------------------------------------------
INPUT = "#56B4E9"         # sky blue: x, activations entering an operation
KERNEL = "#E69F00"        # orange: kernel / weights (W, U, V, filters)
WEIGHTS = KERNEL
OUTPUT = "#009E73"        # bluish green: y, outputs, hidden states produced
GRADIENT = "#CC79A7"      # reddish purple: anything ∂ℓ/∂· (upstream and computed gradients)
PADDING = "#7A7F88"       # grey: padding cells (drawn dashed), inserted zeros
NEVER_READ = "#D55E00"    # vermillion: inputs no window reads (they get exactly zero gradient)
HIGHLIGHT = "#F0E442"     # yellow: the current focus (window, the cell being written)
HIDDEN = "#0072B2"        # blue: recurrent state when it must differ from OUTPUT (bptt)
LOSS = NEVER_READ         # a loss value / a warning; never shown next to never-read cells

ROLE_COLORS = {
    "input": INPUT,
    "kernel": KERNEL,
    "weights": WEIGHTS,
    "output": OUTPUT,
    "gradient": GRADIENT,
    "padding": PADDING,
    "never_read": NEVER_READ,
    "highlight": HIGHLIGHT,
    "hidden": HIDDEN,
    "loss": LOSS,
    "text": TEXT,
    "muted": MUTED,
    "bias": KERNEL,                # a bias is a weight too
}

CELL_FILL_OPACITY = 0.28          # translucent role fill under a TEXT-coloured number
CELL_FILL_OPACITY_STRONG = 0.60   # a filled output cell / an emphasised cell
CELL_STROKE_WIDTH = 2.0
HIGHLIGHT_STROKE_WIDTH = 5.0
PADDING_DASH_LENGTH = 0.06        # padding cells: dashed outline, no fill
PADDING_TEXT = "#B4B9C0"          # the "0" of a padding cell: muted, yet legible at every cell size
WINDOW_FILL_OPACITY = 0.50        # the cells a step's window reads: HIGHLIGHT fill under the number
NEVER_READ_FILL_OPACITY = 0.55    # never-read inputs: filled (outlines fused into a lattice on 2-D grids)
Z_HIGHLIGHT = 1                   # z-order: cells 0 < step fills 1 < outlines 2 < numbers 3
Z_OUTLINE = 2
Z_NUMBERS = 3

# ---- fonts (DejaVu ships with the system packages `./tasks` installs) --------------------------
FONT = "DejaVu Sans"
MONO = "DejaVu Sans Mono"         # numbers and formulas: aligned digits
TITLE_SIZE = 34
LABEL_SIZE = 24
FORMULA_SIZE = 22
CELL_FONT_SIZE = 20               # numbers inside a cell of CELL_SIZE
SMALL_SIZE = 16

# ---- geometry (Manim units; the frame is 14.22 x 8 units at 16:9) -----------------------------
CELL_SIZE = 0.62                  # side of one numbered cell
CELL_GAP = 0.06                   # space between neighbouring cells
MIN_CELL_SIZE = 0.12              # large grids shrink their cells down to this, then drop the numbers
MIN_NUMBERED_CELL_SIZE = 0.27     # below this a cell shows no number (28x28 grids): its shade shows the value
FRAME_MARGIN = 0.35               # keep every mobject this far inside the frame edge

# ---- timing (seconds of video) -----------------------------------------------------------------
INTRO_TIME = 1.0                  # titles and first layout
STEP_TIME = 1.2                   # one output position shown in full (window moves, products, sum)
STORY_STEP_TIME = 3.0             # a fully shown Story step stays this long (--step-time; >= 3 s to read)
TRANSITION_TIME = 0.3             # fade between two Story steps (at most a quarter of the step)
MIN_ANIMATED_STEP = 0.6           # shorter (sped-up) steps cut without a fade
FAST_STEP_TIME = 0.12             # one output position after the speed-up
FULL_STEPS = 4                    # positions shown in full before speeding up...
ALL_FULL_UP_TO = 9                # ...unless there are at most this many: then all are shown in full
MAX_FAST_TIME = 8.0               # the sped-up part never lasts longer than this in total
PAUSE = 0.6                       # a beat to read a result
OUTRO_TIME = 2.0                  # the final frame stays up this long

# ---- legibility at 1080p (scenes/conv_layout.py) --------------------------------------------------
MIN_GLYPH_PX = 14                 # every number and line keeps digits at least this tall at 1080p
MONO_DIGIT_HEIGHT = 0.0105        # digit height of DejaVu Sans Mono, in units per point of font size
MONO_ADVANCE = 0.00836            # its advance per character, in units per point of font size
