"""Colours, shapes and fonts of every diagram, in a light and a dark theme.

One meaning, one colour, in every figure and in the animations (scenes/style.py uses the same roles):
the palette is Okabe–Ito, which stays distinguishable under the common colour-vision deficiencies.

    input       sky blue        x[t]
    parameter   orange          W_c, W_h, W_x, Q_i, K_i, V_i (kernels / weights)
    state       bluish green    h[t]: states and outputs
    gradient    reddish purple  δ[t], ∂ℓ/∂W (and every edge of the backward pass)
    padding     grey, dashed    h[t] = 0 for t < 1, read under the literal base case
    never_read  vermillion, dotted outline   a state nothing reads
    gate        neutral hexagon c[t], a[t]: mixing weights in (0, 1). The palette has no colour left
                                that means nothing else (yellow is the animations' highlight), so
                                gates are told apart by their shape.

Each role has a `line` colour (outline, edges, at least 3:1 contrast with the background; the light
theme darkens the hue, the dark theme uses it as is), a pale `fill` under text-coloured labels (at least
4.5:1 for the text) and a `strong` fill that still keeps text readable (the top of an intensity ramp).
Shape is a second cue besides colour: parameters are square boxes, inputs rounded boxes, states ellipses,
gates hexagons, gradients dashed rounded boxes, ops circles.

Plain values only: importing this module costs nothing (no Graphviz).
"""
from __future__ import annotations

from dataclasses import dataclass

FONT = "DejaVu Sans"
FONT_SIZE = 14          # node labels: ~10 px when a 900 pt wide figure is shown 700 px wide
SMALL_SIZE = 10         # shapes, values under a label
EDGE_FONT_SIZE = 11
TITLE_SIZE = 16
LEGEND_SIZE = 12

# The Okabe–Ito colours the roles are named after (also in scenes/style.py).
OKABE_ITO = {
    "input": "#56B4E9",
    "parameter": "#E69F00",
    "state": "#009E73",
    "gradient": "#CC79A7",
    "padding": "#7A7F88",
    "never_read": "#D55E00",
}


@dataclass(frozen=True)
class Role:
    line: str
    fill: str
    strong: str


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    text: str
    muted: str          # secondary text, cluster frames, op outlines' secondary lines
    op_fill: str
    op_line: str
    roles: dict

    def role(self, kind: str) -> Role:
        return self.roles[kind]


LIGHT = Theme(
    name="light",
    background="#FFFFFF",
    text="#1A1A1A",
    muted="#5F6368",
    op_fill="#FFFFFF",
    op_line="#1A1A1A",
    roles={
        "input": Role(line="#3F8AB8", fill="#DAEEFA", strong="#6FBFEC"),
        "parameter": Role(line="#A87400", fill="#FAEAC7", strong="#EAAD26"),
        "state": Role(line="#008862", fill="#C7EAE0", strong="#26AD88"),
        "gradient": Role(line="#B0588A", fill="#F4E2EC", strong="#D48DB4"),
        "padding": Role(line="#6E737C", fill="#E2E3E5", strong="#8E929A"),
        "never_read": Role(line="#C05400", fill="#FFFFFF", strong="#DB7626"),
        "gate": Role(line="#1A1A1A", fill="#F1F1F1", strong="#D9D9D9"),
        "loss": Role(line="#1A1A1A", fill="#FFFFFF", strong="#FFFFFF"),
        "op": Role(line="#1A1A1A", fill="#FFFFFF", strong="#FFFFFF"),
        "note": Role(line="#5F6368", fill="#FFFFFF", strong="#FFFFFF"),
    },
)

DARK = Theme(
    name="dark",
    background="#16181D",      # the animations' background
    text="#EDEDED",
    muted="#9AA0A6",
    op_fill="#23262D",
    op_line="#EDEDED",
    roles={
        "input": Role(line="#56B4E9", fill="#284456", strong="#396E8D"),
        "parameter": Role(line="#E69F00", fill="#503E15", strong="#8A6209"),
        "state": Role(line="#1DB488", fill="#103E35", strong="#086F55"),
        "gradient": Role(line="#CC79A7", fill="#493344", strong="#8C5777"),
        "padding": Role(line="#8E939C", fill="#32353B", strong="#575B63"),
        "never_read": Role(line="#E8691A", fill="#16181D", strong="#92460A"),
        "gate": Role(line="#EDEDED", fill="#2E3138", strong="#454951"),
        "loss": Role(line="#EDEDED", fill="#23262D", strong="#23262D"),
        "op": Role(line="#EDEDED", fill="#23262D", strong="#23262D"),
        "note": Role(line="#9AA0A6", fill="#16181D", strong="#16181D"),
    },
)

THEMES = {"light": LIGHT, "dark": DARK}


def theme(name: str) -> Theme:
    if name not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)} (got {name!r})")
    return THEMES[name]


# Graphviz shape and style per node kind (colours come from the theme).
NODE_SHAPE = {
    "input": ("box", "rounded,filled"),
    "parameter": ("box", "filled"),
    "op": ("circle", "filled"),
    "state": ("ellipse", "filled"),
    "gate": ("hexagon", "filled"),
    "loss": ("doublecircle", "filled"),
    "gradient": ("box", "rounded,filled,dashed"),
    "padding": ("ellipse", "filled,dashed"),
    "never_read": ("ellipse", "filled,dotted"),
    "note": ("plaintext", "solid"),
}

# Line style per edge kind; None colour = the colour of the node the edge leaves.
EDGE_STYLE = {
    "data": ("solid", None),
    "attention": ("solid", None),
    "shared": ("dotted", "parameter"),
    "gradient": ("dashed", "gradient"),
    "masked": ("dotted", "never_read"),
    "invisible": ("invis", None),
}

NODE_PENWIDTH = 1.4
EDGE_PENWIDTH = 1.3

# What the legend calls each kind.
NODE_LEGEND = {
    "input": "input",
    "parameter": "parameter (weights)",
    "op": "operation",
    "state": "state / output",
    "gate": "gate / mixing weight",
    "loss": "loss",
    "gradient": "gradient",
    "padding": "zero state (padding)",
    "never_read": "never read",
}
EDGE_LEGEND = {
    "data": ("──▶", "value"),
    "attention": ("━━▶", "attention read (width ∝ a)"),
    "shared": ("┈┈▶", "shared (tied) weights"),
    "gradient": ("◀╌╌", "gradient, flows backward"),
    "masked": ("┈┈▶", "masked read"),
}


def mix(a: str, b: str, t: float) -> str:
    """The colour a fraction t of the way from a to b (hex #RRGGBB), for intensity ramps."""
    t = min(1.0, max(0.0, float(t)))
    ca = [int(a[i:i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02X}" for x, y in zip(ca, cb))


def luminance(color: str) -> float:
    """WCAG relative luminance of #RRGGBB."""
    def lin(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(int(color[i:i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio (1..21) of two colours."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)
