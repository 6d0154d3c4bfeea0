"""What the conv-arithmetic figures (transposed convolution, pooling) add to an explorer answer: the
bound on a transposed Story's size, what a padding cell is, and each stamp's products as text.

    check_transpose(values)         ParamError past MAX_TAPS window taps (the reference's geometry first)
    padding_note(kind_key, values)  "padding (a 0)", "padding (never the maximum)", ...
    stamp_products(story)           {step id: ["x[n]·w[j] = x·w = p → y[m]", ...]}  (1-based, viz.text)
"""
from __future__ import annotations

from math import prod

import numpy as np

from viz.app import registry as figures
from viz.text import fmt_factor, fmt_index, fmt_value

MAX_TAPS = 1 << 18     # window taps a Story may list (steps × kernel cells): ~10 MB of JSON, ~3 s to build


def check_transpose(values: dict) -> None:
    """The reference's geometry, then the size of the Story: the gather form lists every output's
    whole window (prod(o')·prod(k) taps), which the largest allowed sizes make far too many to draw."""
    from viz import conv

    g = conv.conv_transpose_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                                     values["dilation"], values["output_padding"])
    taps = prod(g.out_shape if values["form"] == "gather" else g.in_shape) * prod(g.kernel)
    if taps > MAX_TAPS:
        raise figures.ParamError("input", f"--input: the {values['form']} form of this geometry reads {taps} window "
                                          f"taps; the explorer draws at most {MAX_TAPS} (a smaller input, kernel, "
                                          "stride or dilation)")


def padding_note(kind_key: str, values: dict) -> str:
    """What a padding cell is, for the page to say when a window reaches one."""
    if kind_key != "diagram pool":
        return "padding (a 0)"
    if values.get("mode") == "max":
        return "padding (never the maximum)"
    return "padding (a 0, " + ("counted" if values.get("count_include_pad") else "not counted") + " in the divisor)"


def stamp_products(story: dict) -> dict:
    """For each scatter step (data "input", "taps", "stamp", "products": a transposed convolution's
    stamp), one text per stamp cell and map, in the stamp's order: "x[n]·w[j] = x·w = product → y[m]"
    (1-based, viz.text's typography), so the page shows the products without formatting a number.
    With several channels or maps (data "channel", "maps") the names are the Story's own, e.g.
    "x2[n]·w2[y3][j] = … → y3[m]"."""
    grids = {g["name"]: g for g in story.get("grids", ())}
    arrays = {n: np.asarray(g["values"], dtype=float).reshape(g["shape"]) for n, g in grids.items()}
    integer = (story.get("params") or {}).get("values", "int") == "int"
    out = {}
    for step in story.get("steps", ()):
        d = step.get("data") or {}
        if not {"input", "taps", "stamp", "products"} <= set(d) or not {"x", "w"} <= set(arrays):
            continue
        n, c = tuple(d["input"]), int(d.get("channel", 0))
        maps = d.get("maps", [0])
        names = lambda g, i, plain: (grids[g].get("axis_labels") or [[plain]])[0][i] if d.get("maps") else plain  # noqa: E731
        xv = arrays["x"][(c, *n)]
        texts, products = [], iter(d["products"])
        for i, f in enumerate(maps):
            row = c * len(maps) + i                   # w's drawn rows: channel c's slices, map by map
            y_name = names("y", f, "y") if len(arrays["y"].shape) > len(n) else "y"
            for j, m in zip(d["taps"], d["stamp"]):
                texts.append(f"{names('x', c, 'x')}[{fmt_index(n)}]·{names('w', row, 'w')}[{fmt_index(j)}] = "
                             f"{fmt_factor(xv, integer)}·{fmt_factor(arrays['w'][(row, *j)], integer)} = "
                             f"{fmt_value(next(products), integer)} → {y_name}[{fmt_index(m)}]")
        out[step["id"]] = texts
    return out
