"""How a convolution window and its products read: the one place that writes them (NumPy-free).

    products   "2·1 + 0·(−1) + 3·2 = 8", or "Σ of 9 products = 8" past MAX_TERMS_INLINE terms
    row_lines  a 2-D single-channel window, one kernel row per line, then "= v"
    reads_text "x[·, 3..5]", "x[·, 1..3, {2, 4}] and 2 padding zeros" (1-based, as a person counts)

Every number goes through `viz.text`; the story builders (`viz.story.conv`, `viz.story.arithmetic`)
assemble these lines into steps.
"""
from __future__ import annotations

from viz.story.core import Line
from viz.text import fmt_factor, fmt_index, fmt_value, fmt_shape

MAX_TERMS_INLINE = 6     # a products line with more terms reads "Σ of N products = v"
MAX_ROW_LINES = 5        # a 2-D single-channel window is written one kernel row per line up to this


def products(pairs, value: float, integer: bool, head: str = "", extra=()) -> Line:
    """ "head2·1 + 0·(−1) + 3·2 = 8" from (a, b) factor pairs, or "headΣ of 9 products = 8" when
    there are more than MAX_TERMS_INLINE of them. `extra`: (number, label) terms added after the
    products, e.g. the bias "+ 1 (bias)". numbers = the factors shown, the extra terms, the sum."""
    tail = "".join(f" + {fmt_factor(v, integer)} ({label})" for v, label in extra)
    if len(pairs) <= MAX_TERMS_INLINE:
        body = " + ".join(f"{fmt_factor(a, integer)}·{fmt_factor(b, integer)}" for a, b in pairs) or "0"
        shown = tuple(float(v) for ab in pairs for v in ab)
    else:
        body, shown = f"Σ of {len(pairs)} products", (float(len(pairs)),)
    numbers = shown + tuple(float(v) for v, _ in extra) + (float(value),)
    return Line(f"{head}{body}{tail} = {fmt_value(value, integer)}", "text", numbers)


def row_lines(head: str, pairs, n_cols: int, value: float, integer: bool, extra=()) -> list[Line]:
    """A 2-D window with one channel: "head", then one line of products per kernel row, then "= v".
    Falls back to one `products` line when a row is too long or there are too many rows."""
    rows = [pairs[r:r + n_cols] for r in range(0, len(pairs), n_cols)]
    if n_cols > MAX_TERMS_INLINE or len(rows) > MAX_ROW_LINES:
        return [products(pairs, value, integer, head=head, extra=extra)]
    out = [Line(head.rstrip(), "text", ())]
    for i, r in enumerate(rows):
        body = " + ".join(f"{fmt_factor(a, integer)}·{fmt_factor(b, integer)}" for a, b in r)
        out.append(Line(("  " if i == 0 else "+ ") + body, "text", tuple(float(v) for ab in r for v in ab)))
    for v, label in extra:
        out.append(Line(f"+ {fmt_factor(v, integer)} ({label})", "text", (float(v),)))
    out.append(Line(f"= {fmt_value(value, integer)}", "output", (float(value),)))
    return out


def positions(values) -> str:
    """1-based positions on one axis: "3..5" when consecutive, "1, 3, 5" otherwise, "7" alone."""
    v = [int(i) + 1 for i in values]
    if len(v) >= 2 and all(b - a == 1 for a, b in zip(v, v[1:])):
        return f"{v[0]}..{v[-1]}"
    return ", ".join(map(str, v))


def reads_text(name: str, cells, n_pad: int, channel: bool = True) -> str:
    """What a window reads, in words: "x[·, 3..5]", "x[·, 1..3, {2, 4}]", "+ 2 padding zeros".
    cells: the real cells read (0-based, without the channel axis); the window is a box of them."""
    pad_words = f"{n_pad} padding zero{'s' if n_pad != 1 else ''}"
    if not cells:
        return f"only {pad_words}"
    axes = [sorted({c[a] for c in cells}) for a in range(len(cells[0]))]
    parts = [positions(ax) for ax in axes]
    if len(axes) > 1:
        parts = [p if ", " not in p else "{" + p + "}" for p in parts]
    head = f"{name}[{'·, ' if channel else ''}{', '.join(parts)}]"
    return head + (f" and {pad_words}" if n_pad else "")


def _shape_str(shape) -> str:
    return fmt_shape(shape)


def params_text(g) -> str:
    """The geometry in words, only what differs from the defaults: "kernel 3, stride 2"."""
    parts = [f"kernel {_shape_str(g.kernel)}"]
    if any(s != 1 for s in g.stride):
        parts.append(f"stride {_shape_str(g.stride)}")
    if any(d != 1 for d in g.dilation):
        parts.append(f"dilation {_shape_str(g.dilation)}")
    if any(lo or hi for lo, hi in g.padding):
        if all(lo == hi for lo, hi in g.padding):
            parts.append(f"padding {_shape_str([lo for lo, _ in g.padding])}")
        else:
            parts.append("padding " + "×".join(f"({lo},{hi})" for lo, hi in g.padding))
    return ", ".join(parts)


def positions_labels(n: int, first: int = 0, count: int | None = None, order=None) -> tuple[str, ...]:
    """Labels of the n cells of one drawn axis: 1-based positions for the `count` cells starting at
    `first` (the real ones), "" for the rest (padding); `order`: the 0-based position each cell shows."""
    count = n - first if count is None else count
    if order is not None:
        return tuple("" if p is None else str(int(p) + 1) for p in order)
    return tuple(str(i - int(first) + 1) if int(first) <= i < int(first) + count else "" for i in range(n))


def names(cells, limit: int = 8) -> str:
    """1-based names of input positions: "8" (1-D) or "(1,2), (1,4)" (2-D), at most `limit` of them."""
    shown = ", ".join(fmt_index(i) if len(i) == 1 else f"({fmt_index(i)})" for i in cells[:limit])
    return shown + (f" and {len(cells) - limit} more" if len(cells) > limit else "")
